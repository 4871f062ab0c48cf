#include "kind.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const artifacts[] = {"model.safetensors.index.json", "model.safetensors",
                                        "model.bin", NULL};

static void destroy(void *impl)
{
    mdl_lm_t *lm = impl;

    if (!lm)
        return;
    /* The engine first: its thread reads the weights. */
    mdl_gen_engine_free(lm->engine);
    mdl_tokenizer_free(lm->tok);
    mdl_tf_free(lm->tf);
    free(lm);
}

static mdl_chat_template_t chat_template_of(const mdl_tokenizer_t *tok)
{
    switch (tok ? mdl_tokenizer_chat_format(tok) : MDL_CHAT_NONE) {
    case MDL_CHAT_CHATML:
        return MDL_CHAT_TEMPLATE_CHATML;
    case MDL_CHAT_LLAMA2:
        return MDL_CHAT_TEMPLATE_LLAMA2;
    default:
        return MDL_CHAT_TEMPLATE_PLAIN;
    }
}

/* path is the artifact mdl_model_load_dir found (first of `artifacts` present). */
static int load(const char *path, const mdl_load_opts_t *opts, mdl_model_t *m, mdl_err_t *reterr)
{
    mdl_lm_t *lm = calloc(1, sizeof *lm);
    char dir[sizeof m->artifact];
    mdl_tf_weights_t weights = MDL_TF_WEIGHTS_STORED;
    int r;

    if (!lm)
        return mdl_err_set(reterr, -ENOMEM, "out of memory");
    snprintf(dir, sizeof dir, "%s", path);
    if (opts && opts->weights && mdl_tf_weights_parse(opts->weights, &weights) < 0) {
        r = mdl_err_set(reterr, -EINVAL, "weights: expected \"stored\" or \"q8_0\", got \"%s\"",
                        opts->weights);
        goto fail;
    }
    r = mdl_tf_load(path, opts ? opts->max_artifact_bytes : 0, &lm->tf, reterr);
    if (r < 0)
        goto fail;
    r = mdl_tf_quantize(lm->tf, weights, reterr);
    if (r < 0)
        goto fail;
    r = mdl_tokenizer_load_dir(dirname(dir), &lm->tok, reterr);
    if (r == -ENOENT) {
        lm->tok = NULL;
    } else if (r < 0) {
        goto fail;
    } else if (mdl_tokenizer_vocab_size(lm->tok) > mdl_tf_vocab_size(lm->tf)) {
        r = mdl_err_set(reterr, -EBADMSG, "the tokenizer has %zu tokens but the model's vocabulary is %zu",
                        mdl_tokenizer_vocab_size(lm->tok), mdl_tf_vocab_size(lm->tf));
        goto fail;
    }
    lm->chat = chat_template_of(lm->tok);
    if (opts && opts->chat_template && mdl_chat_template_parse(opts->chat_template, &lm->chat, reterr) < 0) {
        r = -EINVAL;
        goto fail;
    }
    r = mdl_gen_engine_new(lm->tf, opts && opts->gen_threads ? opts->gen_threads : 1,
                           opts && opts->max_sequences ? opts->max_sequences : 16, &lm->engine, reterr);
    if (r < 0)
        goto fail;
    m->impl = lm;
    m->task = MDL_TASK_GENERATION;
    return 0;
fail:
    destroy(lm);
    return r;
}

const mdl_kind_t mdl_kind_transformer = {
    .name = "transformer",
    .artifacts = artifacts,
    .load = load,
    .destroy = destroy,
    .tabular = NULL,
};
