/* The transformer core against the float64 references in ../shared/fixtures/transformer
 * (made with PyTorch / an independent forward, see the README there): logits, argmax at
 * every position, 20-token greedy continuations through the decode step, alone and in a
 * batched step of 3 sequences; loading through a folder, model.bin, shards and the model
 * kind; and every kind of bad file refused with a message naming the problem. */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "models/file.h"
#include "models/json.h"
#include "models/model.h"
#include "models/transformer/kernels.h"
#include "models/transformer/kind.h"
#include "models/transformer/safetensors.h"
#include "models/transformer/transformer.h"
#include "check.h"

#define FIX "../shared/fixtures/transformer"
#define TOL 2e-4

static char tmpdir[64];

/* ---- reference.json ---- */

typedef struct ref_case {
    size_t n;
    int32_t ids[64];
    int32_t argmax[64];
    int32_t greedy[20];
    const mdl_json_t *last_logits, *all_logits, *greedy_last_logits;
} ref_case_t;

typedef struct ref {
    mdl_json_doc_t *doc;
    char *text;
    size_t n_cases;
    ref_case_t cases[8];
} ref_t;

static int ints(const mdl_json_t *arr, int32_t *out, size_t max)
{
    size_t n = 0;
    if (!arr || arr->type != MDL_JSON_ARRAY || arr->len > max)
        return -1;
    MDL_JSON_FOREACH(v, arr)
        out[n++] = (int32_t)v->u.num;
    return (int)n;
}

static int ref_load(const char *dir, ref_t *ref)
{
    char path[512];
    size_t len;
    mdl_err_t err = {0};
    const mdl_json_t *cases;

    memset(ref, 0, sizeof *ref);
    snprintf(path, sizeof path, "%s/reference.json", dir);
    if (mdl_file_read(path, 64 << 20, &ref->text, &len, NULL, &err) < 0 ||
        mdl_json_parse(ref->text, len, 16, &ref->doc, &err) < 0) {
        fprintf(stderr, "  %s: %s\n", path, err.msg);
        return -1;
    }
    cases = mdl_json_find(mdl_json_doc_root(ref->doc), "cases");
    MDL_JSON_FOREACH(c, cases) {
        ref_case_t *rc = &ref->cases[ref->n_cases++];
        int n = ints(mdl_json_find(c, "ids"), rc->ids, 64);
        rc->n = (size_t)n;
        if (n <= 0 || ints(mdl_json_find(c, "argmax_per_position"), rc->argmax, 64) != n ||
            ints(mdl_json_find(c, "greedy_continuation"), rc->greedy, 20) != 20)
            return -1;
        rc->last_logits = mdl_json_find(c, "last_logits");
        rc->all_logits = mdl_json_find(c, "logits_all_positions");
        rc->greedy_last_logits = mdl_json_find(c, "greedy_last_step_logits");
        if (ref->n_cases == 8)
            break;
    }
    return ref->n_cases ? 0 : -1;
}

static void ref_done(ref_t *ref)
{
    mdl_json_doc_free(ref->doc);
    free(ref->text);
}

/* max |logits - ref| over vocab entries; +inf if the reference row is malformed. */
static double max_diff(const float *logits, const mdl_json_t *ref, size_t vocab)
{
    double d = 0;
    size_t i = 0;
    if (!ref || ref->type != MDL_JSON_ARRAY || ref->len != vocab)
        return INFINITY;
    MDL_JSON_FOREACH(v, ref) {
        double e = fabs((double)logits[i++] - v->u.num);
        if (!(e <= d))
            d = e;
    }
    return d;
}

static int32_t argmax(const float *v, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return (int32_t)best;
}

/* ---- fixtures against their references ---- */

typedef struct fixture {
    const char *dir;  /* holds reference.json */
    const char *load; /* what to load */
} fixture_t;

static const fixture_t fixtures[] = {
    {FIX "/tiny_llama", FIX "/tiny_llama"}, /* picks model.safetensors */
    {FIX "/tiny_llama", FIX "/tiny_llama/model.bin"},
    {FIX "/tiny_llama_bf16", FIX "/tiny_llama_bf16"},
    {FIX "/tiny_gpt2", FIX "/tiny_gpt2"},
    {FIX "/tiny_gpt2_fp16", FIX "/tiny_gpt2_fp16"},
};

/* Runs every case of one fixture with a runner of n_threads; returns the max |diff|. */
static double check_fixture(const fixture_t *fx, size_t n_threads)
{
    mdl_tf_model_t *m = NULL;
    mdl_tf_runner_t *run = NULL;
    mdl_err_t err = {0};
    ref_t ref;
    double worst = 0;
    size_t V;
    float *logits;

    if (ref_load(fx->dir, &ref) < 0) {
        CHECK(!"reference.json readable");
        return INFINITY;
    }
    CHECK_EQ_INT(mdl_tf_load(fx->load, 0, &m, &err), 0);
    CHECK_EQ_INT(mdl_tf_runner_new(n_threads, &run, &err), 0);
    if (!m || !run) {
        fprintf(stderr, "  %s: %s\n", fx->load, err.msg);
        ref_done(&ref);
        mdl_tf_free(m);
        return INFINITY;
    }
    V = mdl_tf_vocab_size(m);
    logits = malloc(64 * V * sizeof *logits);

    for (size_t ci = 0; ci < ref.n_cases; ci++) {
        const ref_case_t *rc = &ref.cases[ci];
        mdl_tf_seq_t *s = NULL;
        double d;

        /* every position's logits from one batched prefill */
        CHECK_EQ_INT(mdl_tf_seq_new(m, 0, &s, &err), 0);
        CHECK_EQ_INT(mdl_tf_prefill(run, s, rc->ids, rc->n, logits, true, &err), 0);
        for (size_t i = 0; i < rc->n; i++)
            CHECK_EQ_INT(argmax(logits + i * V, V), rc->argmax[i]);
        d = max_diff(logits + (rc->n - 1) * V, rc->last_logits, V);
        CHECK(d <= TOL);
        worst = fmax(worst, d);
        if (rc->all_logits) {
            size_t i = 0;
            MDL_JSON_FOREACH(row, rc->all_logits) {
                d = max_diff(logits + i++ * V, row, V);
                CHECK(d <= TOL);
                worst = fmax(worst, d);
            }
            CHECK_EQ_INT(i, rc->n);
        }
        s = mdl_tf_seq_free(s);

        /* last-position prefill, then 20 greedy decode steps */
        CHECK_EQ_INT(mdl_tf_seq_new(m, 0, &s, &err), 0);
        CHECK_EQ_INT(mdl_tf_prefill(run, s, rc->ids, rc->n, logits, false, &err), 0);
        d = max_diff(logits, rc->last_logits, V);
        CHECK(d <= TOL);
        worst = fmax(worst, d);
        for (size_t step = 0; step < 20; step++) {
            int32_t next = argmax(logits, V);
            CHECK_EQ_INT(next, rc->greedy[step]);
            if (step == 19) {
                d = max_diff(logits, rc->greedy_last_logits, V);
                CHECK(d <= TOL);
                worst = fmax(worst, d);
                break;
            }
            CHECK_EQ_INT(mdl_tf_decode(run, &s, &next, 1, logits, &err), 0);
        }
        CHECK_EQ_INT(mdl_tf_seq_len(s), rc->n + 19);
        s = mdl_tf_seq_free(s);
    }

    /* all cases at once: each decode step advances every sequence in one batch */
    {
        size_t B = ref.n_cases;
        mdl_tf_seq_t *seqs[8] = {0};
        int32_t next[8];
        int32_t all_ids[8 * 64];
        size_t counts[8], n_all = 0;
        /* the prompts go in together too: one mdl_tf_step over all of them */
        for (size_t b = 0; b < B; b++) {
            CHECK_EQ_INT(mdl_tf_seq_new(m, 0, &seqs[b], &err), 0);
            memcpy(all_ids + n_all, ref.cases[b].ids, ref.cases[b].n * sizeof *all_ids);
            n_all += counts[b] = ref.cases[b].n;
        }
        CHECK_EQ_INT(mdl_tf_step(run, seqs, all_ids, counts, B, logits, &err), 0);
        for (size_t b = 0; b < B; b++) {
            double d = max_diff(logits + b * V, ref.cases[b].last_logits, V);
            CHECK(d <= TOL);
            worst = fmax(worst, d);
        }
        for (size_t step = 0; step < 20; step++) {
            for (size_t b = 0; b < B; b++) {
                next[b] = argmax(logits + b * V, V);
                CHECK_EQ_INT(next[b], ref.cases[b].greedy[step]);
            }
            if (step < 19)
                CHECK_EQ_INT(mdl_tf_decode(run, seqs, next, B, logits, &err), 0);
        }
        for (size_t b = 0; b < B; b++) {
            double d = max_diff(logits + b * V, ref.cases[b].greedy_last_logits, V);
            CHECK(d <= TOL);
            worst = fmax(worst, d);
            mdl_tf_seq_free(seqs[b]);
        }
    }
    free(logits);
    mdl_tf_runner_free(run);
    mdl_tf_free(m);
    ref_done(&ref);
    return worst;
}

static void test_fixtures(void)
{
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) {
        double d1 = check_fixture(&fixtures[i], 1), d2 = check_fixture(&fixtures[i], 2);
        printf("  %-45s max |logit - ref| %.2e (1 thread), %.2e (2 threads)%s\n", fixtures[i].load,
               d1, d2, mdl__tf_simd() ? "" : " [portable kernels]");
        CHECK(d1 <= TOL && d2 <= TOL);
    }
}

/* The portable kernels (machines without AVX2) must pass the same references. */
static void test_fixtures_portable(void)
{
    bool was = mdl__tf_simd();
    mdl__tf_set_simd(false);
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) {
        double d = check_fixture(&fixtures[i], 2);
        printf("  %-45s max |logit - ref| %.2e (portable kernels)\n", fixtures[i].load, d);
        CHECK(d <= TOL);
    }
    mdl__tf_set_simd(was);
}

/* ---- F16 decoding ---- */

static void test_f16(void)
{
    static float got[65536];
    uint16_t *all = malloc(65536 * sizeof *all);
    size_t bad = 0, bad_simd = 0;

    for (uint32_t i = 0; i < 65536; i++)
        all[i] = (uint16_t)i;
    mdl__tf_to_f32(all, MDL_DTYPE_F16, got, 65536);
    for (uint32_t i = 0; i < 65536; i++) {
        union { uint16_t u; _Float16 h; } in = {.u = (uint16_t)i};
        float want = (float)in.h, mine = mdl_f16_to_f32((uint16_t)i);
        if (isnan(want) ? !isnan(mine) : memcmp(&want, &mine, 4) != 0)
            bad++;
        if (isnan(want) ? !isnan(got[i]) : memcmp(&want, &got[i], 4) != 0)
            bad_simd++;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(bad_simd, 0);
    CHECK(mdl_f16_to_f32(0x0001) == ldexpf(1, -24)); /* smallest subnormal */
    CHECK(mdl_f16_to_f32(0x03ff) == 1023 * ldexpf(1, -24));
    CHECK(mdl_f16_to_f32(0x8400) == -ldexpf(1, -14));
    CHECK(isinf(mdl_f16_to_f32(0x7c00)) && mdl_f16_to_f32(0x7c00) > 0);
    CHECK(isinf(mdl_f16_to_f32(0xfc00)) && mdl_f16_to_f32(0xfc00) < 0);
    CHECK(isnan(mdl_f16_to_f32(0x7e00)));
    CHECK(mdl_f16_to_f32(0x3c00) == 1.0f && mdl_f16_to_f32(0xc000) == -2.0f);
    CHECK(mdl_bf16_to_f32(0x3f80) == 1.0f);
    free(all);
}

/* ---- temp files ---- */

static char *slurp(const char *path, size_t *len)
{
    char *data = NULL;
    mdl_err_t err;
    if (mdl_file_read(path, 64 << 20, &data, len, NULL, &err) < 0)
        return NULL;
    return data;
}

static int spit(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    int r = f && fwrite(data, 1, len, f) == len ? 0 : -1;
    if (f)
        fclose(f);
    return r;
}

static int spit_str(const char *path, const char *text)
{
    return spit(path, text, strlen(text));
}

static const char *tmp(const char *name)
{
    static char path[384];
    snprintf(path, sizeof path, "%s/%.255s", tmpdir, name);
    return path;
}

static void clear_tmp(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.')
            unlink(tmp(e->d_name));
    if (d)
        closedir(d);
}

/* Copies a fixture folder's config.json into the temp dir, replacing `from` with `to`. */
static void put_config(const char *fixture, const char *from, const char *to)
{
    char src[256], *text, *out, *hit;
    size_t len;

    snprintf(src, sizeof src, FIX "/%s/config.json", fixture);
    text = slurp(src, &len);
    out = malloc(len + (to ? strlen(to) : 0) + 1);
    hit = from ? strstr(text, from) : NULL;
    if (hit)
        sprintf(out, "%.*s%s%s", (int)(hit - text), text, to, hit + strlen(from));
    else
        strcpy(out, text);
    CHECK(!from || hit);
    spit(tmp("config.json"), out, strlen(out));
    free(text);
    free(out);
}

/* Writes fixture's model.safetensors to the temp dir with the first `from` in its header
 * replaced by `to` (the header length is rewritten; data offsets are relative, so the data
 * section stays valid). */
static void put_weights(const char *fixture, const char *from, const char *to)
{
    char src[256], *text, *hit, *head;
    size_t len, hlen = 0, nlen;
    FILE *f;

    snprintf(src, sizeof src, FIX "/%s/model.safetensors", fixture);
    text = slurp(src, &len);
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | (uint8_t)text[i];
    head = strndup(text + 8, hlen);
    hit = from ? strstr(head, from) : NULL;
    CHECK(!from || hit);
    f = fopen(tmp("model.safetensors"), "wb");
    nlen = hlen + (hit ? strlen(to) - strlen(from) : 0);
    for (int i = 0; i < 8; i++)
        fputc((int)(nlen >> (8 * i) & 0xff), f);
    if (hit) {
        fwrite(head, 1, (size_t)(hit - head), f);
        fputs(to, f);
        fputs(hit + strlen(from), f);
    } else {
        fwrite(head, 1, hlen, f);
    }
    fwrite(text + 8 + hlen, 1, len - 8 - hlen, f);
    fclose(f);
    free(head);
    free(text);
}

/* Loads the temp dir; expects failure with code and every needle in the message. */
static void expect_refusal(int code, const char *needle, const char *needle2)
{
    mdl_tf_model_t *m = NULL;
    mdl_err_t err = {0};
    int r = mdl_tf_load(tmpdir, 0, &m, &err);

    CHECK_EQ_INT(r, code);
    CHECK(m == NULL);
    if (!strstr(err.msg, needle) || (needle2 && !strstr(err.msg, needle2)))
        CHECK_FAIL_("message \"%s\" lacks \"%s\"%s%s", err.msg, needle, needle2 ? " / " : "",
                    needle2 ? needle2 : "");
    mdl_tf_free(m);
}

/* data_offsets of a tensor of tiny_llama/model.safetensors */
static void offsets(const char *name, size_t *begin, size_t *end)
{
    mdl_st_t *st = NULL;
    mdl_err_t err = {0};
    const mdl_st_tensor_t *t, *first;

    *begin = *end = 0;
    CHECK_EQ_INT(mdl_st_open(FIX "/tiny_llama/model.safetensors", 0, &st, &err), 0);
    if (!st)
        return;
    t = mdl_st_find(st, name);
    first = mdl_st_find(st, "model.embed_tokens.weight"); /* at offset 0 in this file */
    *begin = (size_t)((const char *)t->data - (const char *)first->data);
    *end = *begin + t->n_bytes;
    mdl_st_free(st);
}

static void test_bad_safetensors(void)
{
    char *text;
    size_t len;

    clear_tmp();
    put_config("tiny_llama", NULL, NULL);

    /* the unmodified copy loads (so each refusal below is caused by its edit) */
    put_weights("tiny_llama", NULL, NULL);
    {
        mdl_tf_model_t *m = NULL;
        mdl_err_t err = {0};
        CHECK_EQ_INT(mdl_tf_load(tmpdir, 0, &m, &err), 0);
        mdl_tf_free(m);
    }

    /* truncated: the data section ends early; the last tensor in the data runs past it */
    text = slurp(FIX "/tiny_llama/model.safetensors", &len);
    spit(tmp("model.safetensors"), text, len - 100);
    expect_refusal(-EBADMSG, "run past the end of the data section", "tensor '");
    /* truncated inside the header */
    spit(tmp("model.safetensors"), text, 1000);
    expect_refusal(-EBADMSG, "header length 2064 runs past the end of the file (1000 bytes)", NULL);
    spit(tmp("model.safetensors"), text, 5);
    expect_refusal(-EBADMSG, "too short for the 8-byte header length", NULL);
    /* header length huge */
    memset(text, 0xff, 8);
    spit(tmp("model.safetensors"), text, len);
    expect_refusal(-EBADMSG, "header length 18446744073709551615 is over", NULL);
    free(text);

    {
        char from[128], to[128], want[128];
        size_t b, e;
        offsets("model.norm.weight", &b, &e);
        snprintf(from, sizeof from, "\"data_offsets\":[%zu,%zu]", b, e);
        snprintf(to, sizeof to, "\"data_offsets\":[%zu,900000]", b);
        snprintf(want, sizeof want, "tensor 'model.norm.weight': data_offsets [%zu, 900000] run past", b);
        put_weights("tiny_llama", from, to);
        expect_refusal(-EBADMSG, want, "the end of the data section");

        /* a short tensor: 32 bytes fewer than its shape needs */
        offsets("model.layers.1.self_attn.q_proj.weight", &b, &e);
        snprintf(from, sizeof from, "\"data_offsets\":[%zu,%zu]", b, e);
        snprintf(to, sizeof to, "\"data_offsets\":[%zu,%zu]", b, e - 32);
        put_weights("tiny_llama", from, to);
        expect_refusal(-EBADMSG, "tensor 'model.layers.1.self_attn.q_proj.weight'",
                       "hold 16352 bytes, but F32 x 4096 elements need 16384");
    }

    /* overlapping tensors: k_proj of layer 0 given v_proj's bytes */
    {
        char from[256], to[256];
        size_t kb, ke, vb, ve;
        offsets("model.layers.0.self_attn.k_proj.weight", &kb, &ke);
        offsets("model.layers.0.self_attn.v_proj.weight", &vb, &ve);
        snprintf(from, sizeof from, "\"data_offsets\":[%zu,%zu]", kb, ke);
        snprintf(to, sizeof to, "\"data_offsets\":[%zu,%zu]", vb, ve);
        put_weights("tiny_llama", from, to);
        expect_refusal(-EBADMSG, "overlap", "model.layers.0.self_attn.k_proj.weight");
    }

    /* unsupported dtype; dtype other than config.json's torch_dtype */
    put_weights("tiny_llama", "{\"dtype\":\"F32\",\"shape\":[64]", "{\"dtype\":\"I32\",\"shape\":[64]");
    expect_refusal(-EBADMSG, "dtype 'I32' is not supported (F32, F16, BF16)", "tensor '");
    put_weights("tiny_llama", NULL, NULL);
    put_config("tiny_llama", "\"float32\"", "\"bfloat16\"");
    expect_refusal(-EBADMSG, "tensor 'model.embed_tokens.weight' is F32, but config.json torch_dtype says BF16",
                   NULL);

    /* shape against the config */
    put_config("tiny_llama", "\"intermediate_size\": 172", "\"intermediate_size\": 170");
    expect_refusal(-EBADMSG, "tensor 'model.layers.0.mlp.gate_proj.weight' has shape [172, 64], the config needs [170, 64]",
                   NULL);
    put_config("tiny_llama", "\"num_key_value_heads\": 2", "\"num_key_value_heads\": 4");
    expect_refusal(-EBADMSG, "tensor 'model.layers.0.self_attn.k_proj.weight' has shape [32, 64], the config needs [64, 64]",
                   NULL);

    /* a missing tensor; an untied model without lm_head */
    put_config("tiny_llama", NULL, NULL);
    put_weights("tiny_llama", "\"model.norm.weight\"", "\"model.norm.weightX\"");
    expect_refusal(-EBADMSG, "tensor 'model.norm.weight' is missing", NULL);
    put_weights("tiny_llama", NULL, NULL);
    put_config("tiny_llama", "\"tie_word_embeddings\": true", "\"tie_word_embeddings\": false");
    expect_refusal(-EBADMSG, "tensor 'lm_head.weight' is missing", NULL);

    /* config problems */
    put_config("tiny_llama", "\"LlamaForCausalLM\"", "\"MistralForCausalLM\"");
    expect_refusal(-EBADMSG, "architecture 'MistralForCausalLM' is not supported", NULL);
    put_config("tiny_llama", "\"rope_scaling\": null", "\"rope_scaling\": {\"type\": \"linear\"}");
    expect_refusal(-EBADMSG, "rope_scaling is not supported", NULL);
    put_config("tiny_llama", "\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3");
    expect_refusal(-EBADMSG, "4 attention heads are not a multiple of 3 key/value heads", NULL);

    /* GPT-2 Conv1D layout is checked too */
    clear_tmp();
    put_config("tiny_gpt2", "\"n_inner\": null", "\"n_inner\": 128");
    put_weights("tiny_gpt2", NULL, NULL);
    expect_refusal(-EBADMSG, "tensor 'transformer.h.0.mlp.c_fc.weight' has shape [64, 256], the config needs [64, 128]",
                   NULL);
    clear_tmp();
}

static void test_bad_llama2c(void)
{
    char *text;
    size_t len;

    clear_tmp();
    text = slurp(FIX "/tiny_llama/model.bin", &len);
    spit(tmp("model.bin"), text, len - 4);
    expect_refusal(-EBADMSG, "but its header (dim 64, hidden 172, layers 2, heads 4/2, vocab 512, seq_len 128) needs 503068",
                   NULL);
    spit(tmp("model.bin"), text, len + 4);
    expect_refusal(-EBADMSG, "needs 503068", NULL);
    /* negative vocab: an untied classifier should follow, and does not */
    {
        int32_t v = -512;
        memcpy(text + 20, &v, 4);
        spit(tmp("model.bin"), text, len);
        expect_refusal(-EBADMSG, "vocab 512 untied", NULL);
        v = 0;
        memcpy(text + 20, &v, 4);
        spit(tmp("model.bin"), text, len);
        expect_refusal(-EBADMSG, "header field 5 is 0", NULL);
    }
    spit(tmp("model.bin"), text, 20);
    expect_refusal(-EBADMSG, "too short for the 28-byte header", NULL);
    free(text);
    clear_tmp();
}

/* Context overflow and token ids outside the vocabulary: refused, sequence unchanged. */
static void test_runtime_errors(void)
{
    mdl_tf_model_t *m = NULL;
    mdl_tf_runner_t *run = NULL;
    mdl_tf_seq_t *s = NULL, *s2 = NULL, *pair[2];
    mdl_err_t err = {0};
    int32_t ids[10] = {1, 5, 9, 0, 511, 7, 8, 9, 10, 11}, bad = 512, two[2] = {3, 4};
    float *logits;

    CHECK_EQ_INT(mdl_tf_load(FIX "/tiny_llama", 0, &m, &err), 0);
    CHECK_EQ_INT(mdl_tf_runner_new(2, &run, &err), 0);
    logits = malloc(10 * 512 * sizeof *logits);
    CHECK_EQ_INT(mdl_tf_seq_new(m, 129, &s, &err), -EINVAL);
    CHECK(strstr(err.msg, "exceeds the context length 128") != NULL);
    CHECK_EQ_INT(mdl_tf_seq_new(m, 8, &s, &err), 0);
    CHECK_EQ_INT(mdl_tf_prefill(run, s, ids, 9, logits, false, &err), -E2BIG);
    CHECK(strstr(err.msg, "9 tokens at position 0 exceed the context length of 8 tokens") != NULL);
    CHECK_EQ_INT(mdl_tf_seq_len(s), 0);
    ids[3] = 512;
    CHECK_EQ_INT(mdl_tf_prefill(run, s, ids, 5, logits, false, &err), -ERANGE);
    CHECK(strstr(err.msg, "token id 512 at index 3 is outside the vocabulary [0, 512)") != NULL);
    ids[3] = -1;
    CHECK_EQ_INT(mdl_tf_prefill(run, s, ids, 5, logits, false, &err), -ERANGE);
    CHECK(strstr(err.msg, "token id -1 at index 3") != NULL);
    ids[3] = 0;
    CHECK_EQ_INT(mdl_tf_prefill(run, s, ids, 0, logits, false, &err), -EINVAL);
    CHECK_EQ_INT(mdl_tf_prefill(run, s, ids, 7, logits, false, &err), 0);
    CHECK_EQ_INT(mdl_tf_decode(run, &s, &bad, 1, logits, &err), -ERANGE);
    CHECK_EQ_INT(mdl_tf_decode(run, &s, &two[0], 1, logits, &err), 0);
    CHECK_EQ_INT(mdl_tf_seq_len(s), 8);
    CHECK_EQ_INT(mdl_tf_decode(run, &s, &two[1], 1, logits, &err), -E2BIG);
    CHECK(strstr(err.msg, "sequence 0 is full: the context length of 8 tokens is reached") != NULL);
    CHECK_EQ_INT(mdl_tf_seq_len(s), 8);
    /* mdl_tf_step: counts checked, capacity per sequence named */
    {
        size_t counts[2] = {1, 0};
        mdl_tf_seq_t *one[1] = {s};
        CHECK_EQ_INT(mdl_tf_step(run, one, ids, counts, 1, logits, &err), -E2BIG);
        CHECK(strstr(err.msg, "sequence 0 is full") != NULL);
        CHECK_EQ_INT(mdl_tf_seq_new(m, 4, &s2, &err), 0);
        one[0] = s2;
        counts[0] = 5;
        CHECK_EQ_INT(mdl_tf_step(run, one, ids, counts, 1, logits, &err), -E2BIG);
        CHECK(strstr(err.msg, "sequence 0: 5 tokens at position 0 exceed the context length of 4 tokens") != NULL);
        counts[0] = 0;
        CHECK_EQ_INT(mdl_tf_step(run, one, ids, counts, 1, logits, &err), -EINVAL);
        counts[0] = 2000;
        CHECK_EQ_INT(mdl_tf_step(run, one, ids, counts, 1, logits, &err), -EINVAL);
        CHECK(strstr(err.msg, "1024 in all") != NULL);
        CHECK_EQ_INT(mdl_tf_seq_len(s2), 0);
        s2 = mdl_tf_seq_free(s2);
    }
    /* a batch naming one sequence twice */
    CHECK_EQ_INT(mdl_tf_seq_new(m, 0, &s2, &err), 0);
    pair[0] = s2;
    pair[1] = s2;
    CHECK_EQ_INT(mdl_tf_decode(run, pair, two, 2, logits, &err), -EINVAL);
    CHECK(strstr(err.msg, "appears twice") != NULL);
    CHECK_EQ_INT(mdl_tf_decode(run, pair, two, 0, logits, &err), -EINVAL);
    /* truncating makes room again, and the result matches a fresh run */
    mdl_tf_seq_truncate(s, 3);
    CHECK_EQ_INT(mdl_tf_prefill(run, s, ids + 3, 4, logits, false, &err), 0);
    CHECK_EQ_INT(mdl_tf_prefill(run, s2, ids, 7, logits + 512, false, &err), 0);
    /* (not bit-identical: the rows fall into different register blocks of the matmul) */
    for (int i = 0; i < 512; i++)
        CHECK_NEAR(logits[i], logits[512 + i], 1e-5);
    mdl_tf_seq_free(s);
    mdl_tf_seq_free(s2);
    free(logits);
    mdl_tf_runner_free(run);
    mdl_tf_free(m);
}

/* A long prompt crosses prefill chunks: same logits as token-by-token decoding. */
static void test_prefill_chunks(void)
{
    mdl_tf_model_t *m = NULL;
    mdl_tf_runner_t *run = NULL;
    mdl_tf_seq_t *a = NULL, *b = NULL;
    mdl_err_t err = {0};
    int32_t ids[128];
    float *la = malloc(512 * sizeof *la), *lb = malloc(512 * sizeof *lb);
    double d = 0;

    for (int i = 0; i < 128; i++)
        ids[i] = (int32_t)((i * 37 + 11) % 512);
    CHECK_EQ_INT(mdl_tf_load(FIX "/tiny_gpt2", 0, &m, &err), 0);
    CHECK_EQ_INT(mdl_tf_runner_new(2, &run, &err), 0);
    CHECK_EQ_INT(mdl_tf_seq_new(m, 0, &a, &err), 0);
    CHECK_EQ_INT(mdl_tf_seq_new(m, 0, &b, &err), 0);
    CHECK_EQ_INT(mdl_tf_prefill(run, a, ids, 128, la, false, &err), 0);
    for (int i = 0; i < 128; i++)
        CHECK_EQ_INT(mdl_tf_decode(run, &b, &ids[i], 1, lb, &err), 0);
    for (int i = 0; i < 512; i++)
        d = fmax(d, fabs(la[i] - lb[i]));
    CHECK(d < 1e-4);
    CHECK_EQ_INT(argmax(la, 512), argmax(lb, 512));
    mdl_tf_seq_free(a);
    mdl_tf_seq_free(b);
    mdl_tf_runner_free(run);
    mdl_tf_free(m);
    free(la);
    free(lb);
}

/* A prompt longer than MDL_TF_PREFILL_CHUNK runs in several passes: every position's
 * logits (all_positions) match decoding token by token. tiny_llama has no position table,
 * so its config can claim a longer context. */
static void test_prefill_long(void)
{
    enum { N = MDL_TF_PREFILL_CHUNK + 72 };
    mdl_tf_model_t *m = NULL;
    mdl_tf_runner_t *run = NULL;
    mdl_tf_seq_t *a = NULL, *b = NULL;
    mdl_err_t err = {0};
    int32_t ids[N];
    float *all = malloc((size_t)N * 512 * sizeof *all), *one = malloc(512 * sizeof *one), *last = malloc(512 * sizeof *last);
    double d = 0;

    clear_tmp();
    put_config("tiny_llama", "\"max_position_embeddings\": 128", "\"max_position_embeddings\": 256");
    put_weights("tiny_llama", NULL, NULL);
    for (int i = 0; i < N; i++)
        ids[i] = (int32_t)((i * 131 + 7) % 512);
    CHECK_EQ_INT(mdl_tf_load(tmpdir, 0, &m, &err), 0);
    CHECK_EQ_INT(mdl_tf_runner_new(2, &run, &err), 0);
    if (!m || !run)
        goto out;
    CHECK_EQ_INT(mdl_tf_context(m), 256);
    CHECK_EQ_INT(mdl_tf_seq_new(m, 0, &a, &err), 0);
    CHECK_EQ_INT(mdl_tf_seq_new(m, 0, &b, &err), 0);
    CHECK_EQ_INT(mdl_tf_prefill(run, a, ids, N, all, true, &err), 0);
    CHECK_EQ_INT(mdl_tf_seq_len(a), N);
    for (int i = 0; i < N; i++) {
        CHECK_EQ_INT(mdl_tf_decode(run, &b, &ids[i], 1, one, &err), 0);
        for (int j = 0; j < 512; j++)
            d = fmax(d, fabs(all[(size_t)i * 512 + j] - one[j]));
        CHECK_EQ_INT(argmax(all + (size_t)i * 512, 512), argmax(one, 512));
    }
    CHECK(d < 1e-4);
    /* the last-position form gives the same last row */
    mdl_tf_seq_truncate(a, 0);
    CHECK_EQ_INT(mdl_tf_prefill(run, a, ids, N, last, false, &err), 0);
    for (int j = 0; j < 512; j++)
        CHECK_NEAR(last[j], all[(size_t)(N - 1) * 512 + j], 1e-5);
out:
    mdl_tf_seq_free(a);
    mdl_tf_seq_free(b);
    mdl_tf_runner_free(run);
    mdl_tf_free(m);
    free(all);
    free(one);
    free(last);
    clear_tmp();
}

/* A running sequence's next token and a new prompt in one mdl_tf_step give what a decode
 * step and a prefill give separately. */
static void test_step_mixed(void)
{
    mdl_tf_model_t *m = NULL;
    mdl_tf_runner_t *run = NULL;
    mdl_tf_seq_t *a = NULL, *b = NULL, *pair[2];
    mdl_err_t err = {0};
    int32_t prompt_a[5] = {1, 17, 300, 42, 7}, prompt_b[6] = {1, 2, 3, 500, 511, 0}, next = 99;
    int32_t mixed[7];
    size_t counts[2] = {1, 6};
    float *alone = malloc(2 * 512 * sizeof *alone), *both = malloc(2 * 512 * sizeof *both);

    CHECK_EQ_INT(mdl_tf_load(FIX "/tiny_llama", 0, &m, &err), 0);
    CHECK_EQ_INT(mdl_tf_runner_new(2, &run, &err), 0);
    CHECK_EQ_INT(mdl_tf_seq_new(m, 0, &a, &err), 0);
    CHECK_EQ_INT(mdl_tf_seq_new(m, 0, &b, &err), 0);
    CHECK_EQ_INT(mdl_tf_prefill(run, a, prompt_a, 5, alone, false, &err), 0);
    CHECK_EQ_INT(mdl_tf_decode(run, &a, &next, 1, alone, &err), 0);
    CHECK_EQ_INT(mdl_tf_prefill(run, b, prompt_b, 6, alone + 512, false, &err), 0);
    mdl_tf_seq_truncate(a, 5);
    mdl_tf_seq_truncate(b, 0);
    mixed[0] = next;
    memcpy(mixed + 1, prompt_b, sizeof prompt_b);
    pair[0] = a;
    pair[1] = b;
    CHECK_EQ_INT(mdl_tf_step(run, pair, mixed, counts, 2, both, &err), 0);
    CHECK_EQ_INT(mdl_tf_seq_len(a), 6);
    CHECK_EQ_INT(mdl_tf_seq_len(b), 6);
    for (int i = 0; i < 2 * 512; i++)
        CHECK_NEAR(both[i], alone[i], 1e-5);
    mixed[3] = 512;
    CHECK_EQ_INT(mdl_tf_step(run, pair, mixed, counts, 2, both, &err), -ERANGE);
    CHECK(strstr(err.msg, "token id 512 at index 3") != NULL);
    mdl_tf_seq_free(a);
    mdl_tf_seq_free(b);
    mdl_tf_runner_free(run);
    mdl_tf_free(m);
    free(alone);
    free(both);
}

/* ---- shards: the fixture's tensors split over two files + an index ---- */

static void write_shard(const char *name, const mdl_st_t *st, int parity, FILE *index, bool *first)
{
    char *head = malloc(1 << 16);
    size_t off = 0, hl = 0, data = 0;
    FILE *f;

    hl += (size_t)sprintf(head + hl, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (size_t i = 0; i < mdl_st_count(st); i++) {
        const mdl_st_tensor_t *t = mdl_st_at(st, i);
        if ((int)(i % 2) != parity)
            continue;
        hl += (size_t)sprintf(head + hl, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t->name,
                              mdl_dtype_name(t->dtype));
        for (unsigned d = 0; d < t->n_dims; d++)
            hl += (size_t)sprintf(head + hl, "%s%llu", d ? "," : "", (unsigned long long)t->shape[d]);
        hl += (size_t)sprintf(head + hl, "],\"data_offsets\":[%zu,%zu]}", off, off + t->n_bytes);
        off += t->n_bytes;
        fprintf(index, "%s\"%s\": \"%s\"", *first ? "" : ",\n", t->name, name);
        *first = false;
    }
    hl += (size_t)sprintf(head + hl, "}");
    while ((8 + hl) % 8)
        head[hl++] = ' ';
    f = fopen(tmp(name), "wb");
    for (int i = 0; i < 8; i++)
        fputc((int)(hl >> (8 * i) & 0xff), f);
    fwrite(head, 1, hl, f);
    for (size_t i = 0; i < mdl_st_count(st); i++) {
        const mdl_st_tensor_t *t = mdl_st_at(st, i);
        if ((int)(i % 2) == parity) {
            fwrite(t->data, 1, t->n_bytes, f);
            data += t->n_bytes;
        }
    }
    fclose(f);
    CHECK_EQ_INT(data, off);
    free(head);
}

static void test_shards_and_kind(void)
{
    mdl_st_t *st = NULL;
    mdl_err_t err = {0};
    mdl_tf_model_t *a = NULL, *b = NULL;
    mdl_tf_runner_t *run = NULL;
    mdl_tf_seq_t *sa = NULL, *sb = NULL;
    mdl_model_t *mm = NULL;
    int32_t ids[5] = {1, 100, 200, 300, 400};
    float la[512], lb[512];
    bool first = true;
    FILE *index;

    clear_tmp();
    put_config("tiny_llama_bf16", NULL, NULL);
    CHECK_EQ_INT(mdl_st_open(FIX "/tiny_llama_bf16/model.safetensors", 0, &st, &err), 0);
    index = fopen(tmp("model.safetensors.index.json"), "w");
    fprintf(index, "{\"metadata\": {\"total_size\": 1}, \"weight_map\": {\n");
    write_shard("model-00001-of-00002.safetensors", st, 0, index, &first);
    write_shard("model-00002-of-00002.safetensors", st, 1, index, &first);
    fprintf(index, "}}\n");
    fclose(index);
    mdl_st_free(st);

    spit_str(tmp("generation_config.json"), "{\"temperature\": 0.6, \"top_k\": 20, \"eos_token_id\": [2, 3]}");
    CHECK_EQ_INT(mdl_tf_load(tmpdir, 0, &a, &err), 0);
    CHECK_EQ_INT(mdl_tf_load(FIX "/tiny_llama_bf16", 0, &b, &err), 0);
    if (a) {
        const mdl_tf_gen_defaults_t *g = mdl_tf_gen_defaults(a);
        CHECK(g->temperature == 0.6 && g->top_k == 20 && g->n_eos == 2 && g->eos_ids[1] == 3);
        CHECK(isnan(g->top_p));
    }
    if (b)
        CHECK(isnan(mdl_tf_gen_defaults(b)->temperature)); /* the fixture has none */
    CHECK_EQ_INT(mdl_tf_runner_new(1, &run, &err), 0);
    if (!a || !b || !run) {
        fprintf(stderr, "  %s\n", err.msg);
        return;
    }
    CHECK_EQ_INT(mdl_tf_dtype(a), MDL_DTYPE_BF16);
    CHECK_EQ_STR(mdl_tf_format(a), "safetensors");
    CHECK_EQ_INT(mdl_tf_seq_new(a, 0, &sa, &err), 0);
    CHECK_EQ_INT(mdl_tf_seq_new(b, 0, &sb, &err), 0);
    CHECK_EQ_INT(mdl_tf_prefill(run, sa, ids, 5, la, false, &err), 0);
    CHECK_EQ_INT(mdl_tf_prefill(run, sb, ids, 5, lb, false, &err), 0);
    CHECK(memcmp(la, lb, sizeof la) == 0);
    mdl_tf_seq_free(sa);
    mdl_tf_seq_free(sb);
    mdl_tf_free(a);

    /* a bad generation_config.json refuses the load, naming the file and field */
    spit_str(tmp("generation_config.json"), "{\"top_k\": -1}");
    expect_refusal(-EBADMSG, "generation_config.json: top_k", NULL);
    unlink(tmp("generation_config.json"));

    /* the index names a shard a tensor is not in */
    {
        size_t len;
        char *text = slurp(tmp("model.safetensors.index.json"), &len);
        char *p = strstr(text, "00002-of");
        p[4] = '1';
        spit(tmp("model.safetensors.index.json"), text, len);
        expect_refusal(-EBADMSG, "is not in shard model-00001-of-00002.safetensors", "tensor '");
        p[4] = '2';
        p = strstr(text, "model-00001-of-00002");
        memcpy(p, "../m", 4);
        spit(tmp("model.safetensors.index.json"), text, len);
        expect_refusal(-EBADMSG, "must be a shard file name in the same folder", NULL);
        free(text);
    }

    /* the model kind: a version folder loads through mdl_model_load_dir */
    CHECK_EQ_INT(mdl_model_load_dir(FIX "/tiny_gpt2", NULL, &mm, &err), 0);
    if (mm) {
        const mdl_tf_model_t *tf = mdl_model_lm(mm)->tf;
        double row = 0, out;
        CHECK_EQ_STR(mm->kind->name, "transformer");
        CHECK_EQ_STR(mdl_task_name(mm->task), "generation");
        CHECK(!mdl_model_is_tabular(mm));
        CHECK(tf != NULL);
        CHECK_EQ_INT(tf ? mdl_tf_vocab_size(tf) : 0, 512);
        CHECK_EQ_INT(tf ? mdl_tf_context(tf) : 0, 128);
        CHECK_EQ_INT(tf ? mdl_tf_bos(tf) : 0, 511);
        CHECK_EQ_STR(tf ? mdl_tf_arch_name(tf) : "", "gpt2");
        CHECK_EQ_INT(mdl_model_score(mm, &row, 1, MDL_OUTPUT_VALUE, &out, &err), -EINVAL);
        CHECK(strstr(err.msg, "does not score rows") != NULL);
        CHECK_EQ_INT(strlen(mm->sha256), 64);
        mdl_model_unref(mm);
    } else {
        fprintf(stderr, "  %s\n", err.msg);
    }
    CHECK_EQ_INT(mdl_model_load_dir(FIX "/tiny_llama", NULL, &mm, &err), 0);
    if (mm) {
        CHECK(strstr(mm->artifact, "model.safetensors") != NULL);
        CHECK_EQ_STR(mdl_tf_format(mdl_model_lm(mm)->tf), "safetensors");
        mdl_model_unref(mm);
    }
    mdl_tf_free(b);
    mdl_tf_runner_free(run);
    clear_tmp();
}

/* Config details: defaults, eos lists, generation_config.json. */
static void test_config(void)
{
    mdl_tf_config_t c;
    mdl_tf_gen_defaults_t g;
    mdl_err_t err = {0};
    const char *llama = "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 96, "
                        "\"intermediate_size\": 200, \"num_hidden_layers\": 2, \"num_attention_heads\": 6, "
                        "\"max_position_embeddings\": 64, \"vocab_size\": 100, \"rms_norm_eps\": 1e-6, "
                        "\"bos_token_id\": 1, \"eos_token_id\": [2, 7]}";
    const char *gen = "{\"temperature\": 0.7, \"top_p\": 0.9, \"top_k\": 40, \"max_new_tokens\": 64, "
                      "\"do_sample\": true, \"repetition_penalty\": 1.1, \"eos_token_id\": 5}";

    CHECK_EQ_INT(mdl_tf_config_parse(llama, strlen(llama), "c.json", &c, &err), 0);
    CHECK_EQ_INT(c.head_dim, 16);
    CHECK_EQ_INT(c.n_kv_heads, 6);
    CHECK(c.rope_theta == 10000.0 && c.norm_eps == 1e-6 && !c.tied);
    CHECK_EQ_INT(c.n_eos, 2);
    CHECK_EQ_INT(c.eos_ids[1], 7);
    CHECK_EQ_INT(c.bos_id, 1);
    CHECK_EQ_INT(c.dtype, -1);
    mdl_tf_gen_defaults_init(&g);
    CHECK(isnan(g.temperature) && g.top_k == -1 && g.do_sample == -1);
    CHECK_EQ_INT(mdl_tf_gen_defaults_parse(gen, strlen(gen), "g.json", &g, &err), 0);
    CHECK(g.temperature == 0.7 && g.top_p == 0.9 && g.top_k == 40 && g.max_new_tokens == 64);
    CHECK(g.do_sample == 1 && g.repetition_penalty == 1.1 && g.n_eos == 1 && g.eos_ids[0] == 5);
    CHECK_EQ_INT(mdl_tf_gen_defaults_parse("{\"top_p\": 2}", 12, "g.json", &g, &err), -EBADMSG);
    CHECK(strstr(err.msg, "g.json: top_p = 2 is outside [0, 1]") != NULL);
    CHECK_EQ_INT(mdl_tf_config_parse("{\"model_type\": \"bert\"}", 22, "c.json", &c, &err), -EBADMSG);
    CHECK(strstr(err.msg, "architecture 'bert' is not supported") != NULL);
    CHECK_EQ_INT(mdl_tf_config_parse("{\"architectures\": [\"LlamaForCausalLM\"]}", 39, "c.json", &c, &err),
                 -EBADMSG);
    CHECK(strstr(err.msg, "c.json: hidden_size is missing") != NULL);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_transformer.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_f16);
    RUN(test_config);
    RUN(test_fixtures);
    RUN(test_fixtures_portable);
    RUN(test_runtime_errors);
    RUN(test_prefill_chunks);
    RUN(test_step_mixed);
    RUN(test_prefill_long);
    RUN(test_bad_safetensors);
    RUN(test_bad_llama2c);
    RUN(test_shards_and_kind);
    clear_tmp();
    rmdir(tmpdir);
    return check_summary();
}
