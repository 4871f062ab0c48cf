/* Shared between the transformer's loader (weights.c) and its forward pass (forward.c). */
#ifndef MDL_TRANSFORMER_INTERNAL_H
#define MDL_TRANSFORMER_INTERNAL_H

#include "kernels.h"
#include "safetensors.h"
#include "transformer.h"

/* One block. Llama leaves the biases and *_b norms NULL; GPT-2 leaves w_gate empty. */
typedef struct mdl__tf_layer {
    const float *attn_norm, *attn_norm_b; /* [dim] */
    mdl_tf_mat_t wq;                      /* [n_heads * head_dim, dim] */
    mdl_tf_mat_t wk, wv;                  /* [n_kv_heads * head_dim, dim] */
    mdl_tf_mat_t wo;                      /* [dim, n_heads * head_dim] */
    const float *bq, *bk, *bv, *bo;
    const float *ffn_norm, *ffn_norm_b;   /* [dim] */
    mdl_tf_mat_t w_gate, w_up;            /* [hidden, dim] */
    mdl_tf_mat_t w_down;                  /* [dim, hidden] */
    const float *b_up, *b_down;
} mdl__tf_layer_t;

struct mdl_tf_model {
    mdl_tf_config_t cfg;
    mdl_tf_gen_defaults_t gen;
    const char *format;         /* "safetensors" | "llama2.c" */
    mdl_st_t *st;               /* owned (safetensors) */
    void *bin;                  /* owned mmap (llama2.c) */
    size_t bin_len;
    void **heap;                /* owned copies: float32 vectors, transposed matrices */
    size_t n_heap;
    mdl_tf_mat_t embed;         /* [vocab, dim] */
    mdl_tf_mat_t pos_embed;     /* GPT-2: [context, dim] */
    mdl__tf_layer_t *layers;    /* n_layers */
    const float *final_norm, *final_norm_b;
    mdl_tf_mat_t lm_head;       /* [vocab, dim]; the embedding when tied */
    size_t weight_bytes;
    mdl_tf_weights_t weights;   /* as stored, or quantized at load (quantize.c) */
    size_t q8_bytes;            /* heap bytes of the Q8_0 copies */
};

/* A heap block the model owns and frees with itself (64-byte aligned); NULL when out of
 * memory. */
void *mdl__tf_heap_alloc(mdl_tf_model_t *m, size_t bytes);

struct mdl_tf_seq {
    const mdl_tf_model_t *model;
    size_t len, cap;            /* positions filled / allocated */
    float *k, *v;               /* [n_layers][cap][n_kv_heads * head_dim] */
};

#endif
