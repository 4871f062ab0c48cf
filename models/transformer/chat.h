/* Renders an OpenAI-style list of chat messages into the prompt text a model was trained
 * on. Three templates: ChatML (<|im_start|>role ... <|im_end|>), Llama-2 ([INST] with an
 * optional <<SYS>> block, roles alternating user/assistant) and a plain "role: content"
 * transcript for models without one. The rendered text contains the special tokens as
 * text; the caller encodes it with special tokens allowed and without adding BOS again
 * (Llama-2 writes its own BOS before every [INST]). */
#ifndef MDL_CHAT_H
#define MDL_CHAT_H

#include <stddef.h>

#include "models/err.h"

typedef enum mdl_chat_template {
    MDL_CHAT_TEMPLATE_PLAIN = 0,
    MDL_CHAT_TEMPLATE_CHATML,
    MDL_CHAT_TEMPLATE_LLAMA2,
} mdl_chat_template_t;

typedef struct mdl_chat_message {
    const char *role;    /* "system", "user" or "assistant" */
    const char *content; /* UTF-8 */
} mdl_chat_message_t;

/* "plain", "chatml", "llama2" -> template; -EINVAL for anything else. */
int mdl_chat_template_parse(const char *name, mdl_chat_template_t *ret, mdl_err_t *reterr);
const char *mdl_chat_template_name(mdl_chat_template_t t);

/* The text that ends an assistant turn in this template, which generation should stop at
 * ("<|im_end|>" for ChatML), or NULL when the model's EOS token ends it. */
const char *mdl_chat_stop_text(mdl_chat_template_t t);

/* Renders msgs[0..n) followed by the opening of the assistant's turn. bos/eos are the
 * tokenizer's BOS/EOS token texts (Llama-2 uses them; may be NULL for the others).
 * Returns a malloc'd NUL-terminated string (the caller frees it) or NULL with reterr
 * (-EPROTO naming the message at fault, -ENOMEM). */
char *mdl_chat_render(mdl_chat_template_t t, const mdl_chat_message_t *msgs, size_t n,
                      const char *bos, const char *eos, mdl_err_t *reterr);

#endif
