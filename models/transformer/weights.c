/* Loading: finds the files of a version folder, reads the config, maps the weights and
 * binds every tensor the architecture needs after checking its name, dtype and shape. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "models/file.h"

/* A loader's view while binding: where names are looked up and what dtype is expected. */
typedef struct binder {
    mdl_tf_model_t *m;
    const char *file;     /* weights file, for messages */
    bool want_dtype;      /* config.json named torch_dtype */
    mdl_dtype_t dtype;
} binder_t;

static int keep(mdl_tf_model_t *m, void *p)
{
    void **h = realloc(m->heap, (m->n_heap + 1) * sizeof *h);
    if (!h)
        return -ENOMEM;
    m->heap = h;
    m->heap[m->n_heap++] = p;
    return 0;
}

static void *heap_alloc(mdl_tf_model_t *m, size_t bytes)
{
    /* 64-byte aligned: vector loads of weight rows never split a cache line needlessly */
    void *p = aligned_alloc(64, bytes ? (bytes + 63) & ~(size_t)63 : 64);
    if (p && keep(m, p) < 0) {
        free(p);
        return NULL;
    }
    return p;
}

void *mdl__tf_heap_alloc(mdl_tf_model_t *m, size_t bytes)
{
    return heap_alloc(m, bytes);
}

mdl_tf_model_t *mdl_tf_free(mdl_tf_model_t *m)
{
    if (!m)
        return NULL;
    for (size_t i = 0; i < m->n_heap; i++)
        free(m->heap[i]);
    free(m->heap);
    free(m->layers);
    mdl_st_free(m->st);
    if (m->bin)
        munmap(m->bin, m->bin_len);
    free(m);
    return NULL;
}

static void fmt_shape(char *buf, size_t size, const uint64_t *shape, unsigned n)
{
    size_t off = 0;
    off += (size_t)snprintf(buf, size, "[");
    for (unsigned i = 0; i < n && off < size; i++)
        off += (size_t)snprintf(buf + off, size - off, "%s%llu", i ? ", " : "",
                                (unsigned long long)shape[i]);
    if (off < size)
        snprintf(buf + off, size - off, "]");
}

/* The tensor `name` with exactly the shape [d0] or [d0, d1] (n_dims 1 or 2). */
static int find(binder_t *b, const char *name, unsigned n_dims, uint64_t d0, uint64_t d1,
                const mdl_st_tensor_t **ret, mdl_err_t *reterr)
{
    const mdl_st_tensor_t *t = mdl_st_find(b->m->st, name);
    uint64_t want[2] = {d0, d1};
    char got[96], need[64];

    if (!t)
        return mdl_err_set(reterr, -EBADMSG, "%s: tensor '%s' is missing", b->file, name);
    if (t->n_dims != n_dims || t->shape[0] != d0 || (n_dims == 2 && t->shape[1] != d1)) {
        fmt_shape(got, sizeof got, t->shape, t->n_dims);
        fmt_shape(need, sizeof need, want, n_dims);
        return mdl_err_set(reterr, -EBADMSG, "%s: tensor '%s' has shape %s, the config needs %s",
                           t->file, name, got, need);
    }
    *ret = t;
    return 0;
}

/* Data of t usable in place (aligned to its element size), or an aligned heap copy. */
static const void *aligned_data(binder_t *b, const mdl_st_tensor_t *t)
{
    void *copy;

    if ((uintptr_t)t->data % mdl_dtype_size(t->dtype) == 0)
        return t->data;
    copy = heap_alloc(b->m, t->n_bytes);
    if (copy)
        memcpy(copy, t->data, t->n_bytes);
    return copy;
}

/* A matrix [rows, cols] (as stored if !conv1d; stored as [cols, rows] and transposed if
 * conv1d). Matrices must be in the model's dtype when config.json names one. */
static int bind_mat(binder_t *b, const char *name, size_t rows, size_t cols, bool conv1d,
                    mdl_tf_mat_t *ret, mdl_err_t *reterr)
{
    const mdl_st_tensor_t *t;
    int r = find(b, name, 2, conv1d ? cols : rows, conv1d ? rows : cols, &t, reterr);

    if (r < 0)
        return r;
    if (b->want_dtype && t->dtype != b->dtype)
        return mdl_err_set(reterr, -EBADMSG,
                           "%s: tensor '%s' is %s, but config.json torch_dtype says %s", t->file,
                           name, mdl_dtype_name(t->dtype), mdl_dtype_name(b->dtype));
    ret->dtype = t->dtype;
    ret->rows = rows;
    ret->cols = cols;
    if (!conv1d) {
        ret->w = aligned_data(b, t);
    } else {
        /* [in = cols, out = rows] -> [rows, cols], element by element in the stored dtype */
        size_t es = mdl_dtype_size(t->dtype);
        uint8_t *dst = heap_alloc(b->m, t->n_bytes);
        const uint8_t *src = t->data;
        if (dst)
            for (size_t i = 0; i < cols; i++)
                for (size_t o = 0; o < rows; o++)
                    memcpy(dst + (o * cols + i) * es, src + (i * rows + o) * es, es);
        ret->w = dst;
    }
    if (!ret->w)
        return mdl_err_set(reterr, -ENOMEM, "out of memory");
    b->m->weight_bytes += t->n_bytes;
    return 0;
}

/* A vector of n, converted to float32 (any of the three dtypes). */
static int bind_vec(binder_t *b, const char *name, size_t n, const float **ret, mdl_err_t *reterr)
{
    const mdl_st_tensor_t *t;
    float *v;
    int r = find(b, name, 1, n, 0, &t, reterr);

    if (r < 0)
        return r;
    v = heap_alloc(b->m, n * sizeof *v);
    if (!v)
        return mdl_err_set(reterr, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        float f;
        if (t->dtype == MDL_DTYPE_F32) {
            memcpy(&f, (const uint8_t *)t->data + 4 * i, 4);
        } else {
            memcpy(&h, (const uint8_t *)t->data + 2 * i, 2);
            f = t->dtype == MDL_DTYPE_F16 ? mdl_f16_to_f32(h) : mdl_bf16_to_f32(h);
        }
        v[i] = f;
    }
    b->m->weight_bytes += t->n_bytes;
    *ret = v;
    return 0;
}

#define NAME(...) (snprintf(name, sizeof name, __VA_ARGS__), name)

static int bind_llama(binder_t *b, mdl_err_t *reterr)
{
    mdl_tf_model_t *m = b->m;
    const mdl_tf_config_t *c = &m->cfg;
    size_t qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    char name[160];
    int r;

    if ((r = bind_mat(b, "model.embed_tokens.weight", c->vocab_size, c->dim, false, &m->embed,
                      reterr)) < 0)
        return r;
    for (size_t l = 0; l < c->n_layers; l++) {
        mdl__tf_layer_t *L = &m->layers[l];
        const char *p = "model.layers";
        if ((r = bind_vec(b, NAME("%s.%zu.input_layernorm.weight", p, l), c->dim, &L->attn_norm, reterr)) < 0 ||
            (r = bind_mat(b, NAME("%s.%zu.self_attn.q_proj.weight", p, l), qd, c->dim, false, &L->wq, reterr)) < 0 ||
            (r = bind_mat(b, NAME("%s.%zu.self_attn.k_proj.weight", p, l), kvd, c->dim, false, &L->wk, reterr)) < 0 ||
            (r = bind_mat(b, NAME("%s.%zu.self_attn.v_proj.weight", p, l), kvd, c->dim, false, &L->wv, reterr)) < 0 ||
            (r = bind_mat(b, NAME("%s.%zu.self_attn.o_proj.weight", p, l), c->dim, qd, false, &L->wo, reterr)) < 0 ||
            (r = bind_vec(b, NAME("%s.%zu.post_attention_layernorm.weight", p, l), c->dim, &L->ffn_norm, reterr)) < 0 ||
            (r = bind_mat(b, NAME("%s.%zu.mlp.gate_proj.weight", p, l), c->hidden_dim, c->dim, false, &L->w_gate, reterr)) < 0 ||
            (r = bind_mat(b, NAME("%s.%zu.mlp.up_proj.weight", p, l), c->hidden_dim, c->dim, false, &L->w_up, reterr)) < 0 ||
            (r = bind_mat(b, NAME("%s.%zu.mlp.down_proj.weight", p, l), c->dim, c->hidden_dim, false, &L->w_down, reterr)) < 0)
            return r;
    }
    if ((r = bind_vec(b, "model.norm.weight", c->dim, &m->final_norm, reterr)) < 0)
        return r;
    if (c->tied) {
        m->lm_head = m->embed;
        return 0;
    }
    return bind_mat(b, "lm_head.weight", c->vocab_size, c->dim, false, &m->lm_head, reterr);
}

/* GPT-2: names with or without the "transformer." prefix (HF vs original OpenAI files). */
static int bind_gpt2(binder_t *b, mdl_err_t *reterr)
{
    mdl_tf_model_t *m = b->m;
    const mdl_tf_config_t *c = &m->cfg;
    const char *p = mdl_st_find(m->st, "transformer.wte.weight") ? "transformer." : "";
    size_t d = c->dim;
    char name[160];
    int r;

    if (!mdl_st_find(m->st, "transformer.wte.weight") && !mdl_st_find(m->st, "wte.weight"))
        return mdl_err_set(reterr, -EBADMSG, "%s: tensor 'transformer.wte.weight' is missing",
                           b->file);
    if ((r = bind_mat(b, NAME("%swte.weight", p), c->vocab_size, d, false, &m->embed, reterr)) < 0 ||
        (r = bind_mat(b, NAME("%swpe.weight", p), c->context, d, false, &m->pos_embed, reterr)) < 0)
        return r;
    for (size_t l = 0; l < c->n_layers; l++) {
        mdl__tf_layer_t *L = &m->layers[l];
        mdl_tf_mat_t qkv;
        const float *bqkv;
        if ((r = bind_vec(b, NAME("%sh.%zu.ln_1.weight", p, l), d, &L->attn_norm, reterr)) < 0 ||
            (r = bind_vec(b, NAME("%sh.%zu.ln_1.bias", p, l), d, &L->attn_norm_b, reterr)) < 0 ||
            (r = bind_mat(b, NAME("%sh.%zu.attn.c_attn.weight", p, l), 3 * d, d, true, &qkv, reterr)) < 0 ||
            (r = bind_vec(b, NAME("%sh.%zu.attn.c_attn.bias", p, l), 3 * d, &bqkv, reterr)) < 0 ||
            (r = bind_mat(b, NAME("%sh.%zu.attn.c_proj.weight", p, l), d, d, true, &L->wo, reterr)) < 0 ||
            (r = bind_vec(b, NAME("%sh.%zu.attn.c_proj.bias", p, l), d, &L->bo, reterr)) < 0 ||
            (r = bind_vec(b, NAME("%sh.%zu.ln_2.weight", p, l), d, &L->ffn_norm, reterr)) < 0 ||
            (r = bind_vec(b, NAME("%sh.%zu.ln_2.bias", p, l), d, &L->ffn_norm_b, reterr)) < 0 ||
            (r = bind_mat(b, NAME("%sh.%zu.mlp.c_fc.weight", p, l), c->hidden_dim, d, true, &L->w_up, reterr)) < 0 ||
            (r = bind_vec(b, NAME("%sh.%zu.mlp.c_fc.bias", p, l), c->hidden_dim, &L->b_up, reterr)) < 0 ||
            (r = bind_mat(b, NAME("%sh.%zu.mlp.c_proj.weight", p, l), d, c->hidden_dim, true, &L->w_down, reterr)) < 0 ||
            (r = bind_vec(b, NAME("%sh.%zu.mlp.c_proj.bias", p, l), d, &L->b_down, reterr)) < 0)
            return r;
        /* c_attn's output columns are [q | k | v]: three row blocks of the transposed copy */
        size_t es = mdl_dtype_size(qkv.dtype);
        L->wq = L->wk = L->wv = (mdl_tf_mat_t){.w = qkv.w, .dtype = qkv.dtype, .rows = d, .cols = d};
        L->wk.w = (const uint8_t *)qkv.w + d * d * es;
        L->wv.w = (const uint8_t *)qkv.w + 2 * d * d * es;
        L->bq = bqkv;
        L->bk = bqkv + d;
        L->bv = bqkv + 2 * d;
    }
    if ((r = bind_vec(b, NAME("%sln_f.weight", p), d, &m->final_norm, reterr)) < 0 ||
        (r = bind_vec(b, NAME("%sln_f.bias", p), d, &m->final_norm_b, reterr)) < 0)
        return r;
    m->lm_head = m->embed;
    return 0;
}

static int read_gen_config(mdl_tf_model_t *m, const char *dir, mdl_err_t *reterr)
{
    char path[4096 + 64], *text;
    size_t len;
    struct stat sb;
    int r;

    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    if (stat(path, &sb) != 0)
        return 0;
    r = mdl_file_read(path, MDL_TF_MAX_CONFIG_BYTES, &text, &len, NULL, reterr);
    if (r < 0)
        return r;
    r = mdl_tf_gen_defaults_parse(text, len, path, &m->gen, reterr);
    free(text);
    return r;
}

static int load_safetensors(mdl_tf_model_t *m, const char *dir, const char *weights,
                            size_t max_bytes, mdl_err_t *reterr)
{
    char path[4096 + 64], *text = NULL;
    size_t len;
    binder_t b = {.m = m, .file = weights};
    int r;

    snprintf(path, sizeof path, "%s/config.json", dir);
    r = mdl_file_read(path, MDL_TF_MAX_CONFIG_BYTES, &text, &len, NULL, reterr);
    if (r < 0)
        return r;
    r = mdl_tf_config_parse(text, len, path, &m->cfg, reterr);
    free(text);
    if (r < 0)
        return r;
    b.want_dtype = m->cfg.dtype >= 0;
    b.dtype = (mdl_dtype_t)(b.want_dtype ? m->cfg.dtype : 0);
    if ((r = mdl_st_open(weights, max_bytes, &m->st, reterr)) < 0)
        return r;
    m->format = "safetensors";
    m->layers = calloc(m->cfg.n_layers, sizeof *m->layers);
    if (!m->layers)
        return mdl_err_set(reterr, -ENOMEM, "out of memory");
    r = m->cfg.arch == MDL_TF_LLAMA ? bind_llama(&b, reterr) : bind_gpt2(&b, reterr);
    if (r == -ENOMEM)
        mdl_err_set(reterr, -ENOMEM, "out of memory");
    return r;
}

/* llama2.c model.bin: header, then float32 arrays whose total must equal the file size. */
static int load_llama2c(mdl_tf_model_t *m, const char *path, size_t max_bytes, mdl_err_t *reterr)
{
    mdl_tf_config_t *c = &m->cfg;
    int32_t h[7];
    uint64_t need, vocab, dim, hid, L, kvd, hd;
    const float *p;
    int r = mdl_file_map(path, sizeof h, "the 28-byte header", max_bytes, &m->bin, &m->bin_len, reterr);

    if (r < 0)
        return r;
    memcpy(h, m->bin, sizeof h);
    for (int i = 0; i < 7; i++)
        if (h[i] == 0 || (h[i] < 0 && i != 5) || h[i] == INT32_MIN)
            return mdl_err_set(reterr, -EBADMSG, "%s: header field %d is %d", path, i, h[i]);
    *c = (mdl_tf_config_t){.arch = MDL_TF_LLAMA, .rope = MDL_TF_ROPE_INTERLEAVED,
                           .dim = (size_t)h[0], .hidden_dim = (size_t)h[1], .n_layers = (size_t)h[2],
                           .n_heads = (size_t)h[3], .n_kv_heads = (size_t)h[4],
                           .vocab_size = (size_t)(h[5] < 0 ? -h[5] : h[5]), .context = (size_t)h[6],
                           .norm_eps = 1e-5, .rope_theta = 10000.0, .tied = h[5] > 0, .dtype = MDL_DTYPE_F32,
                           .bos_id = 1, .eos_ids = {2}, .n_eos = 1};
    if (c->dim > MDL_TF_MAX_DIM || c->hidden_dim > MDL_TF_MAX_HIDDEN || c->n_layers > MDL_TF_MAX_LAYERS ||
        c->n_heads > MDL_TF_MAX_HEADS || c->vocab_size > MDL_TF_MAX_VOCAB || c->context > MDL_TF_MAX_CONTEXT)
        return mdl_err_set(reterr, -EBADMSG, "%s: header sizes out of range (dim %zu, hidden %zu, "
                           "layers %zu, heads %zu, vocab %zu, seq_len %zu)", path, c->dim,
                           c->hidden_dim, c->n_layers, c->n_heads, c->vocab_size, c->context);
    if (c->dim % c->n_heads)
        return mdl_err_set(reterr, -EBADMSG, "%s: dim %zu is not a multiple of n_heads %zu", path,
                           c->dim, c->n_heads);
    c->head_dim = c->dim / c->n_heads;
    if (c->bos_id >= (long)c->vocab_size)
        c->bos_id = -1;
    if (c->eos_ids[0] >= (long)c->vocab_size)
        c->n_eos = 0;
    r = mdl_tf_config_check(c, path, reterr);
    if (r < 0)
        return r;
    vocab = c->vocab_size, dim = c->dim, hid = c->hidden_dim, L = c->n_layers, hd = c->head_dim;
    kvd = c->n_kv_heads * hd;
    /* all factors are bounded above, so these products fit in 64 bits */
    need = vocab * dim + L * dim * 2 + L * dim * dim * 2 + L * kvd * dim * 2 + L * hid * dim * 3 +
           dim + c->context * hd + (c->tied ? 0 : vocab * dim);
    if (need * 4 + sizeof h != (uint64_t)m->bin_len)
        return mdl_err_set(reterr, -EBADMSG,
                           "%s: file is %lld bytes, but its header (dim %zu, hidden %zu, layers %zu, "
                           "heads %zu/%zu, vocab %zu%s, seq_len %zu) needs %llu",
                           path, (long long)m->bin_len, c->dim, c->hidden_dim, c->n_layers,
                           c->n_heads, c->n_kv_heads, c->vocab_size, c->tied ? "" : " untied",
                           c->context, (unsigned long long)(need * 4 + sizeof h));
    m->format = "llama2.c";
    m->layers = calloc(L, sizeof *m->layers);
    if (!m->layers)
        return mdl_err_set(reterr, -ENOMEM, "out of memory");
    p = (const float *)((const uint8_t *)m->bin + sizeof h);
#define MAT(rows_, cols_) ((mdl_tf_mat_t){.w = p, .dtype = MDL_DTYPE_F32, .rows = (rows_), .cols = (cols_)})
    m->embed = MAT(vocab, dim);
    p += vocab * dim;
    for (size_t l = 0; l < L; l++)
        m->layers[l].attn_norm = p + l * dim;
    p += L * dim;
    for (size_t l = 0; l < L; l++, p += dim * dim)
        m->layers[l].wq = MAT(dim, dim);
    for (size_t l = 0; l < L; l++, p += kvd * dim)
        m->layers[l].wk = MAT(kvd, dim);
    for (size_t l = 0; l < L; l++, p += kvd * dim)
        m->layers[l].wv = MAT(kvd, dim);
    for (size_t l = 0; l < L; l++, p += dim * dim)
        m->layers[l].wo = MAT(dim, dim);
    for (size_t l = 0; l < L; l++)
        m->layers[l].ffn_norm = p + l * dim;
    p += L * dim;
    for (size_t l = 0; l < L; l++, p += hid * dim)
        m->layers[l].w_gate = MAT(hid, dim);
    for (size_t l = 0; l < L; l++, p += dim * hid)
        m->layers[l].w_down = MAT(dim, hid);
    for (size_t l = 0; l < L; l++, p += hid * dim)
        m->layers[l].w_up = MAT(hid, dim);
    m->final_norm = p;
    p += dim + c->context * hd; /* skip freq_cis_real / imag */
    m->lm_head = c->tied ? m->embed : MAT(vocab, dim);
#undef MAT
    m->weight_bytes = (size_t)(need - c->context * hd) * 4;
    return 0;
}

static bool is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

int mdl_tf_load(const char *path, size_t max_file_bytes, mdl_tf_model_t **ret, mdl_err_t *reterr)
{
    static const char *const names[] = {"model.safetensors.index.json", "model.safetensors",
                                        "model.bin"};
    char dir[4096], file[4096 + 64];
    struct stat sb;
    mdl_tf_model_t *m;
    int r;

    if (stat(path, &sb) != 0)
        return mdl_err_set(reterr, -ENOENT, "%s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        snprintf(dir, sizeof dir, "%s", path);
        file[0] = 0;
        for (size_t i = 0; i < sizeof names / sizeof names[0] && !file[0]; i++) {
            snprintf(file, sizeof file, "%s/%s", dir, names[i]);
            if (!is_file(file))
                file[0] = 0;
        }
        if (!file[0])
            return mdl_err_set(reterr, -ENOENT,
                               "%s: no model.safetensors, model.safetensors.index.json or model.bin",
                               path);
    } else {
        const char *slash = strrchr(path, '/');
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
        snprintf(file, sizeof file, "%s", path);
    }
    m = calloc(1, sizeof *m);
    if (!m)
        return mdl_err_set(reterr, -ENOMEM, "out of memory");
    mdl_tf_gen_defaults_init(&m->gen);
    if (ends_with(file, ".safetensors") || ends_with(file, ".index.json"))
        r = load_safetensors(m, dir, file, max_file_bytes, reterr);
    else
        r = load_llama2c(m, file, max_file_bytes, reterr);
    if (r == 0)
        r = read_gen_config(m, dir, reterr);
    if (r < 0) {
        mdl_tf_free(m);
        return r;
    }
    *ret = m;
    return 0;
}

const mdl_tf_config_t *mdl_tf_config(const mdl_tf_model_t *m) { return &m->cfg; }
const mdl_tf_gen_defaults_t *mdl_tf_gen_defaults(const mdl_tf_model_t *m) { return &m->gen; }
size_t mdl_tf_vocab_size(const mdl_tf_model_t *m) { return m->cfg.vocab_size; }
size_t mdl_tf_context(const mdl_tf_model_t *m) { return m->cfg.context; }
long mdl_tf_bos(const mdl_tf_model_t *m) { return m->cfg.bos_id; }
const char *mdl_tf_format(const mdl_tf_model_t *m) { return m->format; }
mdl_dtype_t mdl_tf_dtype(const mdl_tf_model_t *m) { return m->embed.dtype; }
size_t mdl_tf_weight_bytes(const mdl_tf_model_t *m) { return m->weight_bytes; }

size_t mdl_tf_eos(const mdl_tf_model_t *m, const long **ret_ids)
{
    *ret_ids = m->cfg.eos_ids;
    return m->cfg.n_eos;
}

const char *mdl_tf_arch_name(const mdl_tf_model_t *m)
{
    return m->cfg.arch == MDL_TF_LLAMA ? "llama" : "gpt2";
}
