/* Model kind "transformer": a version folder holding a Hugging Face model (config.json +
 * model.safetensors or model.safetensors.index.json) or a llama2.c model.bin, with its
 * tokenizer when the folder has one, loaded through mdl_model_load_dir like the tabular
 * kinds. Loading also starts the model's generation engine (its thread sleeps until a
 * request arrives). It has no tabular capability; handlers reach it with mdl_model_lm(). */
#ifndef MDL_TRANSFORMER_KIND_H
#define MDL_TRANSFORMER_KIND_H

#include "models/model.h"
#include "models/transformer/chat.h"
#include "models/transformer/engine.h"
#include "models/transformer/tokenizer.h"
#include "models/transformer/transformer.h"

extern const mdl_kind_t mdl_kind_transformer;

/* What a loaded transformer model is made of; immutable after load except for the
 * engine's internal state (the engine is thread-safe). */
struct mdl_lm {
    mdl_tf_model_t *tf;
    mdl_tokenizer_t *tok;           /* NULL: the folder has no tokenizer; token ids only */
    mdl_gen_engine_t *engine;
    mdl_chat_template_t chat;       /* from the tokenizer's chat_template, else plain */
};

#endif
