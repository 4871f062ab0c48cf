/* Load-time conversion of a model's matmul weights to Q8_0 (see transformer.h, q8.h). */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "q8.h"

int mdl_tf_weights_parse(const char *name, mdl_tf_weights_t *ret)
{
    if (name && strcmp(name, "stored") == 0)
        *ret = MDL_TF_WEIGHTS_STORED;
    else if (name && strcmp(name, "q8_0") == 0)
        *ret = MDL_TF_WEIGHTS_Q8_0;
    else
        return -EINVAL;
    return 0;
}

const char *mdl_tf_weights_name(mdl_tf_weights_t w)
{
    return w == MDL_TF_WEIGHTS_Q8_0 ? "q8_0" : "stored";
}

mdl_tf_weights_t mdl_tf_weights(const mdl_tf_model_t *m) { return m->weights; }
size_t mdl_tf_quantized_bytes(const mdl_tf_model_t *m) { return m->q8_bytes; }

/* Replaces *W by a Q8_0 copy; `what` names it in messages. */
static int quantize_mat(mdl_tf_model_t *m, mdl_tf_mat_t *W, const char *what, mdl_err_t *reterr)
{
    size_t nb = mdl_q8_blocks(W->cols), es = mdl_dtype_size(W->dtype);
    int8_t *q = mdl__tf_heap_alloc(m, W->rows * nb * MDL_Q8_BLOCK);
    uint16_t *d = mdl__tf_heap_alloc(m, W->rows * nb * sizeof *d);

    if (!q || !d)
        return mdl_err_set(reterr, -ENOMEM, "out of memory for the q8_0 copy of %s (%zu x %zu)",
                           what, W->rows, W->cols);
    for (size_t r = 0; r < W->rows; r++)
        if (mdl__q8_quantize_row((const uint8_t *)W->w + r * W->cols * es, W->dtype, W->cols,
                                 q + r * nb * MDL_Q8_BLOCK, d + r * nb) < 0)
            return mdl_err_set(reterr, -ERANGE,
                               "%s row %zu: a weight is not finite or too large for q8_0", what, r);
    m->q8_bytes += W->rows * nb * (MDL_Q8_BLOCK + sizeof *d);
    /* per-token traffic: the copy replaces the stored matrix */
    m->weight_bytes = m->weight_bytes - W->rows * W->cols * es + W->rows * nb * (MDL_Q8_BLOCK + sizeof *d);
    *W = (mdl_tf_mat_t){.w = q, .dtype = W->dtype, .rows = W->rows, .cols = W->cols, .q8_d = d};
    return 0;
}

int mdl_tf_quantize(mdl_tf_model_t *m, mdl_tf_weights_t w, mdl_err_t *reterr)
{
    char what[64];
    int r;

    if (w == MDL_TF_WEIGHTS_STORED)
        return 0;
    if (m->weights != MDL_TF_WEIGHTS_STORED)
        return mdl_err_set(reterr, -EINVAL, "the model's weights are already %s",
                           mdl_tf_weights_name(m->weights));
    for (size_t l = 0; l < m->cfg.n_layers; l++) {
        mdl__tf_layer_t *L = &m->layers[l];
        struct { mdl_tf_mat_t *W; const char *name; } mats[] = {
            {&L->wq, "wq"}, {&L->wk, "wk"}, {&L->wv, "wv"}, {&L->wo, "wo"},
            {&L->w_gate, "w_gate"}, {&L->w_up, "w_up"}, {&L->w_down, "w_down"},
        };
        for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) {
            if (!mats[i].W->w) /* GPT-2 has no gate */
                continue;
            snprintf(what, sizeof what, "layer %zu %s", l, mats[i].name);
            if ((r = quantize_mat(m, mats[i].W, what, reterr)) < 0)
                return r;
        }
    }
    /* A tied head gets its own copy: the embedding stays as stored for row lookups (the
     * loader counted the shared matrix once, as the embedding, so the copy replaces it). */
    if ((r = quantize_mat(m, &m->lm_head, "the output head", reterr)) < 0)
        return r;
    m->weights = w;
    return 0;
}
