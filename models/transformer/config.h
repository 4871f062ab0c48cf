/* Transformer hyper-parameters and generation defaults, from Hugging Face config.json /
 * generation_config.json (or a llama2.c model.bin header, see weights.c).
 *
 * config.json: "architectures": ["LlamaForCausalLM"] (or "model_type": "llama") reads
 *   hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
 *   num_key_value_heads (default num_attention_heads), head_dim (default hidden/heads),
 *   rms_norm_eps, rope_theta (default 10000), max_position_embeddings, vocab_size,
 *   tie_word_embeddings (default false), bos_token_id, eos_token_id (int or list);
 *   refuses rope_scaling, attention_bias / mlp_bias and hidden_act other than silu.
 * "GPT2LMHeadModel" (or "model_type": "gpt2") reads n_embd, n_layer, n_head, n_inner
 *   (default 4 x n_embd), n_positions, layer_norm_epsilon, activation_function (gelu_new),
 *   vocab_size, bos/eos; the lm_head is always tied to wte.
 * Other architectures are refused naming what was found. Sizes are bounded (MDL_TF_MAX_*)
 * so later products cannot overflow. Errors: -EBADMSG with the file and field. */
#ifndef MDL_TRANSFORMER_CONFIG_H
#define MDL_TRANSFORMER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "models/err.h"

#define MDL_TF_MAX_DIM ((size_t)1 << 16)
#define MDL_TF_MAX_HIDDEN ((size_t)1 << 18)
#define MDL_TF_MAX_LAYERS ((size_t)1024)
#define MDL_TF_MAX_HEADS ((size_t)1024)
#define MDL_TF_MAX_VOCAB ((size_t)1 << 22)
#define MDL_TF_MAX_CONTEXT ((size_t)1 << 20)
#define MDL_TF_MAX_EOS 8
#define MDL_TF_MAX_CONFIG_BYTES ((size_t)1 << 20)

typedef enum mdl_tf_arch {
    MDL_TF_LLAMA = 0, /* RMSNorm, RoPE, SwiGLU, GQA, no biases */
    MDL_TF_GPT2,      /* LayerNorm, learned positions, gelu_new, biases */
} mdl_tf_arch_t;

typedef enum mdl_tf_rope {
    MDL_TF_ROPE_NONE = 0,    /* GPT-2 */
    MDL_TF_ROPE_HALF,        /* HF rotate_half: pairs (j, j + head_dim/2) */
    MDL_TF_ROPE_INTERLEAVED, /* Meta / llama2.c: pairs (2j, 2j+1) */
} mdl_tf_rope_t;

typedef struct mdl_tf_config {
    mdl_tf_arch_t arch;
    mdl_tf_rope_t rope;
    size_t dim;          /* residual width (hidden_size, n_embd) */
    size_t hidden_dim;   /* feed-forward width (intermediate_size, n_inner) */
    size_t n_layers;
    size_t n_heads;
    size_t n_kv_heads;   /* n_heads % n_kv_heads == 0 */
    size_t head_dim;     /* even for RoPE models */
    size_t vocab_size;
    size_t context;      /* max_position_embeddings, n_positions, seq_len */
    double norm_eps;
    double rope_theta;
    bool tied;           /* lm_head shares the token embedding */
    int dtype;           /* mdl_dtype_t that torch_dtype names (float32, float16, bfloat16),
                            which every weight matrix must have; -1 = not given */
    long bos_id;         /* -1 = none */
    long eos_ids[MDL_TF_MAX_EOS];
    size_t n_eos;
} mdl_tf_config_t;

/* generation_config.json values; a field the file does not set keeps its "unset" value. */
typedef struct mdl_tf_gen_defaults {
    double temperature;        /* NaN = unset */
    double top_p;              /* NaN = unset */
    long top_k;                /* -1 = unset */
    long max_new_tokens;       /* -1 = unset */
    double repetition_penalty; /* NaN = unset */
    int do_sample;             /* -1 unset, 0, 1 */
    long bos_id;               /* -1 = unset */
    long eos_ids[MDL_TF_MAX_EOS];
    size_t n_eos;              /* 0 = unset */
} mdl_tf_gen_defaults_t;

/* Parses config.json text (len bytes); `file` names it in messages. */
int mdl_tf_config_parse(const char *text, size_t len, const char *file, mdl_tf_config_t *ret,
                        mdl_err_t *reterr);

/* Checks the derived sizes of a filled config (also used for llama2.c headers). */
int mdl_tf_config_check(const mdl_tf_config_t *c, const char *file, mdl_err_t *reterr);

/* Sets every field of d to "unset". */
void mdl_tf_gen_defaults_init(mdl_tf_gen_defaults_t *d);

/* Parses generation_config.json text into d (fields absent stay as they are). */
int mdl_tf_gen_defaults_parse(const char *text, size_t len, const char *file,
                              mdl_tf_gen_defaults_t *d, mdl_err_t *reterr);

#endif
