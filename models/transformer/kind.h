/* Model kind "transformer": a version folder holding a Hugging Face model (config.json +
 * model.safetensors or model.safetensors.index.json) or a llama2.c model.bin, loaded
 * through mdl_model_load_dir like the tabular kinds. It has no tabular capability;
 * handlers reach the model with mdl_model_transformer() (model.h). */
#ifndef MDL_TRANSFORMER_KIND_H
#define MDL_TRANSFORMER_KIND_H

#include "models/model.h"

extern const mdl_kind_t mdl_kind_transformer;

#endif
