#include "config.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "models/json.h"

/* A member that is absent or null counts as not given. */
static const mdl_json_t *given(const mdl_json_t *obj, const char *key)
{
    const mdl_json_t *v = mdl_json_find(obj, key);
    return v && v->type != MDL_JSON_NULL ? v : NULL;
}

/* Integer member in [min, max]; `def` when not given, or an error if def < min. */
static int get_size(const mdl_json_t *obj, const char *file, const char *key, long long min,
                    long long max, long long def, size_t *ret, mdl_err_t *reterr)
{
    long long v = def;

    if (given(obj, key)) {
        if (mdl_json_get_int(obj, "", key, min, max, &v, reterr) < 0) {
            mdl_err_prefix(reterr, "%s: ", file);
            return -EBADMSG;
        }
    } else if (def < min) {
        return mdl_err_set(reterr, -EBADMSG, "%s: %s is missing", file, key);
    }
    *ret = (size_t)v;
    return 0;
}

static int get_double(const mdl_json_t *obj, const char *file, const char *key, double min,
                      double max, double def, double *ret, mdl_err_t *reterr)
{
    double v = def;

    if (given(obj, key)) {
        if (mdl_json_get_number(obj, "", key, &v, reterr) < 0) {
            mdl_err_prefix(reterr, "%s: ", file);
            return -EBADMSG;
        }
        if (!(v >= min && v <= max))
            return mdl_err_set(reterr, -EBADMSG, "%s: %s = %g is outside [%g, %g]", file, key, v,
                               min, max);
    }
    *ret = v; /* def when not given (NaN = stays unset) */
    return 0;
}

/* bos: one id; eos: one id or a list. Ids must be in [0, MDL_TF_MAX_VOCAB). */
static int get_ids(const mdl_json_t *obj, const char *file, const char *key, long *ids,
                   size_t max, size_t *ret_n, mdl_err_t *reterr)
{
    const mdl_json_t *v = given(obj, key);
    size_t n = 0;

    if (!v)
        return 0;
    if (v->type == MDL_JSON_NUMBER) {
        long long id;
        if (mdl_json_get_int(obj, "", key, 0, MDL_TF_MAX_VOCAB - 1, &id, reterr) < 0) {
            mdl_err_prefix(reterr, "%s: ", file);
            return -EBADMSG;
        }
        ids[n++] = (long)id;
    } else if (v->type == MDL_JSON_ARRAY && v->len <= max) {
        MDL_JSON_FOREACH(e, v) {
            if (e->type != MDL_JSON_NUMBER || !(e->u.num >= 0) ||
                e->u.num >= (double)MDL_TF_MAX_VOCAB || e->u.num != floor(e->u.num))
                return mdl_err_set(reterr, -EBADMSG, "%s: %s[%zu] is not a token id", file, key,
                                   n);
            ids[n++] = (long)e->u.num;
        }
    } else {
        return mdl_err_set(reterr, -EBADMSG,
                           "%s: %s must be a token id or a list of at most %zu ids", file, key,
                           max);
    }
    *ret_n = n;
    return 0;
}

static int get_bool(const mdl_json_t *obj, const char *file, const char *key, bool def, bool *ret,
                    mdl_err_t *reterr)
{
    *ret = def;
    if (given(obj, key) && mdl_json_get_bool(obj, "", key, ret, reterr) < 0) {
        mdl_err_prefix(reterr, "%s: ", file);
        return -EBADMSG;
    }
    return 0;
}

/* Which architecture the file declares: "architectures"[0], else "model_type". */
static int detect_arch(const mdl_json_t *root, const char *file, mdl_tf_arch_t *ret,
                       mdl_err_t *reterr)
{
    const mdl_json_t *archs = given(root, "architectures"), *type = given(root, "model_type");
    const char *name = NULL;

    if (archs && archs->type == MDL_JSON_ARRAY && archs->len >= 1 && archs[1].type == MDL_JSON_STRING)
        name = archs[1].u.str;
    if (name && strcmp(name, "LlamaForCausalLM") == 0)
        return *ret = MDL_TF_LLAMA, 0;
    if (name && strcmp(name, "GPT2LMHeadModel") == 0)
        return *ret = MDL_TF_GPT2, 0;
    if (!name && type && type->type == MDL_JSON_STRING) {
        if (strcmp(type->u.str, "llama") == 0)
            return *ret = MDL_TF_LLAMA, 0;
        if (strcmp(type->u.str, "gpt2") == 0)
            return *ret = MDL_TF_GPT2, 0;
        name = type->u.str;
    }
    return mdl_err_set(reterr, -EBADMSG,
                       "%s: architecture '%.60s' is not supported (LlamaForCausalLM, GPT2LMHeadModel)",
                       file, name ? name : "(none given)");
}

static int refuse_if_set(const mdl_json_t *root, const char *file, const char *key,
                         mdl_err_t *reterr)
{
    const mdl_json_t *v = given(root, key);
    if (v && !(v->type == MDL_JSON_BOOL && !v->u.boolean))
        return mdl_err_set(reterr, -EBADMSG, "%s: %s is not supported", file, key);
    return 0;
}

static int parse_llama(const mdl_json_t *root, const char *file, mdl_tf_config_t *c,
                       mdl_err_t *reterr)
{
    const mdl_json_t *act = given(root, "hidden_act");
    size_t dflt;

    if (refuse_if_set(root, file, "rope_scaling", reterr) < 0 ||
        refuse_if_set(root, file, "attention_bias", reterr) < 0 ||
        refuse_if_set(root, file, "mlp_bias", reterr) < 0)
        return -EBADMSG;
    if (act && (act->type != MDL_JSON_STRING || strcmp(act->u.str, "silu") != 0))
        return mdl_err_set(reterr, -EBADMSG, "%s: hidden_act must be \"silu\"", file);
    c->rope = MDL_TF_ROPE_HALF;
    if (get_size(root, file, "hidden_size", 1, MDL_TF_MAX_DIM, -1, &c->dim, reterr) < 0 ||
        get_size(root, file, "intermediate_size", 1, MDL_TF_MAX_HIDDEN, -1, &c->hidden_dim, reterr) < 0 ||
        get_size(root, file, "num_hidden_layers", 1, MDL_TF_MAX_LAYERS, -1, &c->n_layers, reterr) < 0 ||
        get_size(root, file, "num_attention_heads", 1, MDL_TF_MAX_HEADS, -1, &c->n_heads, reterr) < 0 ||
        get_size(root, file, "num_key_value_heads", 1, MDL_TF_MAX_HEADS, (long long)c->n_heads,
                 &c->n_kv_heads, reterr) < 0)
        return -EBADMSG;
    dflt = c->dim / c->n_heads;
    if (!given(root, "head_dim") && dflt * c->n_heads != c->dim)
        return mdl_err_set(reterr, -EBADMSG,
                           "%s: hidden_size %zu is not a multiple of num_attention_heads %zu", file,
                           c->dim, c->n_heads);
    if (get_size(root, file, "head_dim", 2, MDL_TF_MAX_DIM, (long long)dflt, &c->head_dim, reterr) < 0 ||
        get_size(root, file, "max_position_embeddings", 1, MDL_TF_MAX_CONTEXT, -1, &c->context, reterr) < 0 ||
        get_size(root, file, "vocab_size", 1, MDL_TF_MAX_VOCAB, -1, &c->vocab_size, reterr) < 0 ||
        get_double(root, file, "rms_norm_eps", 0, 1, 1e-6, &c->norm_eps, reterr) < 0 ||
        get_double(root, file, "rope_theta", 1, 1e12, 10000.0, &c->rope_theta, reterr) < 0 ||
        get_bool(root, file, "tie_word_embeddings", false, &c->tied, reterr) < 0)
        return -EBADMSG;
    return 0;
}

static int parse_gpt2(const mdl_json_t *root, const char *file, mdl_tf_config_t *c,
                      mdl_err_t *reterr)
{
    const mdl_json_t *act = given(root, "activation_function");

    if (refuse_if_set(root, file, "scale_attn_by_inverse_layer_idx", reterr) < 0 ||
        refuse_if_set(root, file, "reorder_and_upcast_attn", reterr) < 0)
        return -EBADMSG;
    if (given(root, "scale_attn_weights")) {
        bool scale;
        if (get_bool(root, file, "scale_attn_weights", true, &scale, reterr) < 0)
            return -EBADMSG;
        if (!scale)
            return mdl_err_set(reterr, -EBADMSG, "%s: scale_attn_weights false is not supported",
                               file);
    }
    if (act && (act->type != MDL_JSON_STRING || (strcmp(act->u.str, "gelu_new") != 0 &&
                                                 strcmp(act->u.str, "gelu_pytorch_tanh") != 0)))
        return mdl_err_set(reterr, -EBADMSG,
                           "%s: activation_function must be \"gelu_new\" (tanh form)", file);
    c->rope = MDL_TF_ROPE_NONE;
    c->tied = true;
    if (get_size(root, file, "n_embd", 1, MDL_TF_MAX_DIM, 768, &c->dim, reterr) < 0 ||
        get_size(root, file, "n_layer", 1, MDL_TF_MAX_LAYERS, 12, &c->n_layers, reterr) < 0 ||
        get_size(root, file, "n_head", 1, MDL_TF_MAX_HEADS, 12, &c->n_heads, reterr) < 0 ||
        get_size(root, file, "n_inner", 1, MDL_TF_MAX_HIDDEN, 4 * (long long)c->dim, &c->hidden_dim,
                 reterr) < 0 ||
        get_size(root, file, "n_positions", 1, MDL_TF_MAX_CONTEXT, 1024, &c->context, reterr) < 0 ||
        get_size(root, file, "vocab_size", 1, MDL_TF_MAX_VOCAB, 50257, &c->vocab_size, reterr) < 0 ||
        get_double(root, file, "layer_norm_epsilon", 0, 1, 1e-5, &c->norm_eps, reterr) < 0)
        return -EBADMSG;
    if (c->dim % c->n_heads)
        return mdl_err_set(reterr, -EBADMSG, "%s: n_embd %zu is not a multiple of n_head %zu", file,
                           c->dim, c->n_heads);
    c->n_kv_heads = c->n_heads;
    c->head_dim = c->dim / c->n_heads;
    return 0;
}

int mdl_tf_config_check(const mdl_tf_config_t *c, const char *file, mdl_err_t *reterr)
{
    if (c->n_heads % c->n_kv_heads)
        return mdl_err_set(reterr, -EBADMSG,
                           "%s: %zu attention heads are not a multiple of %zu key/value heads", file,
                           c->n_heads, c->n_kv_heads);
    if (c->rope != MDL_TF_ROPE_NONE && c->head_dim % 2)
        return mdl_err_set(reterr, -EBADMSG, "%s: head_dim %zu must be even for RoPE", file,
                           c->head_dim);
    if (c->n_heads * c->head_dim > MDL_TF_MAX_DIM)
        return mdl_err_set(reterr, -EBADMSG, "%s: heads x head_dim = %zu is over %zu", file,
                           c->n_heads * c->head_dim, MDL_TF_MAX_DIM);
    if (c->bos_id >= (long)c->vocab_size)
        return mdl_err_set(reterr, -EBADMSG, "%s: bos_token_id %ld is outside the vocabulary (%zu)",
                           file, c->bos_id, c->vocab_size);
    for (size_t i = 0; i < c->n_eos; i++)
        if (c->eos_ids[i] >= (long)c->vocab_size)
            return mdl_err_set(reterr, -EBADMSG,
                               "%s: eos_token_id %ld is outside the vocabulary (%zu)", file,
                               c->eos_ids[i], c->vocab_size);
    return 0;
}

int mdl_tf_config_parse(const char *text, size_t len, const char *file, mdl_tf_config_t *ret,
                        mdl_err_t *reterr)
{
    mdl_tf_config_t c = {.bos_id = -1, .dtype = -1};
    const mdl_json_t *td;
    mdl_json_doc_t *doc = NULL;
    const mdl_json_t *root;
    size_t n_bos = 0;
    int r;

    r = mdl_json_parse(text, len, 32, &doc, reterr);
    if (r < 0) {
        mdl_err_prefix(reterr, "%s: ", file);
        return r;
    }
    root = mdl_json_doc_root(doc);
    if (root->type != MDL_JSON_OBJECT) {
        r = mdl_err_set(reterr, -EBADMSG, "%s: expected an object", file);
        goto out;
    }
    if ((r = detect_arch(root, file, &c.arch, reterr)) < 0)
        goto out;
    r = c.arch == MDL_TF_LLAMA ? parse_llama(root, file, &c, reterr) : parse_gpt2(root, file, &c, reterr);
    if (r < 0)
        goto out;
    if ((td = given(root, "torch_dtype")) && td->type == MDL_JSON_STRING)
        c.dtype = strcmp(td->u.str, "float32") == 0 ? 0 : strcmp(td->u.str, "float16") == 0 ? 1
                : strcmp(td->u.str, "bfloat16") == 0 ? 2 : -1; /* = mdl_dtype_t */
    if ((r = get_ids(root, file, "bos_token_id", &c.bos_id, 1, &n_bos, reterr)) < 0 ||
        (r = get_ids(root, file, "eos_token_id", c.eos_ids, MDL_TF_MAX_EOS, &c.n_eos, reterr)) < 0)
        goto out;
    if ((r = mdl_tf_config_check(&c, file, reterr)) < 0)
        goto out;
    *ret = c;
out:
    mdl_json_doc_free(doc);
    return r;
}

void mdl_tf_gen_defaults_init(mdl_tf_gen_defaults_t *d)
{
    memset(d, 0, sizeof *d);
    d->temperature = d->top_p = d->repetition_penalty = NAN;
    d->top_k = d->max_new_tokens = -1;
    d->do_sample = -1;
    d->bos_id = -1;
}

int mdl_tf_gen_defaults_parse(const char *text, size_t len, const char *file,
                              mdl_tf_gen_defaults_t *d, mdl_err_t *reterr)
{
    mdl_json_doc_t *doc = NULL;
    const mdl_json_t *root;
    size_t n;
    bool sample;
    int r;

    r = mdl_json_parse(text, len, 32, &doc, reterr);
    if (r < 0) {
        mdl_err_prefix(reterr, "%s: ", file);
        return r;
    }
    root = mdl_json_doc_root(doc);
    if (root->type != MDL_JSON_OBJECT) {
        r = mdl_err_set(reterr, -EBADMSG, "%s: expected an object", file);
        goto out;
    }
    if ((r = get_double(root, file, "temperature", 0, 1e6, d->temperature, &d->temperature, reterr)) < 0 ||
        (r = get_double(root, file, "top_p", 0, 1, d->top_p, &d->top_p, reterr)) < 0 ||
        (r = get_double(root, file, "repetition_penalty", 0, 1e6, d->repetition_penalty,
                        &d->repetition_penalty, reterr)) < 0)
        goto out;
    if (given(root, "top_k")) {
        size_t k;
        if ((r = get_size(root, file, "top_k", 0, INT32_MAX, 0, &k, reterr)) < 0)
            goto out;
        d->top_k = (long)k;
    }
    if (given(root, "max_new_tokens")) {
        size_t k;
        if ((r = get_size(root, file, "max_new_tokens", 0, INT32_MAX, 0, &k, reterr)) < 0)
            goto out;
        d->max_new_tokens = (long)k;
    }
    if (given(root, "do_sample")) {
        if ((r = get_bool(root, file, "do_sample", false, &sample, reterr)) < 0)
            goto out;
        d->do_sample = sample;
    }
    n = 0;
    if ((r = get_ids(root, file, "bos_token_id", &d->bos_id, 1, &n, reterr)) < 0 ||
        (r = get_ids(root, file, "eos_token_id", d->eos_ids, MDL_TF_MAX_EOS, &d->n_eos, reterr)) < 0)
        goto out;
out:
    mdl_json_doc_free(doc);
    return r;
}
