/* Q8_0 weights (models/transformer/q8.c, quantize.c): binary16 rounding, quantize /
 * dequantize round trips, the AVX2 kernels against the portable ones, and every fixture in
 * ../shared/fixtures/transformer quantized at load against its float64 reference and
 * against the same model with its weights as stored. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "models/file.h"
#include "models/json.h"
#include "models/model.h"
#include "models/transformer/kind.h"
#include "models/transformer/q8.h"
#include "models/transformer/transformer.h"
#include "check.h"

#define FIX "../shared/fixtures/transformer"

/* Deterministic N(0, 1)-ish values (sum of uniforms), no libc rand state. */
static uint64_t rng = 0x9e3779b97f4a7c15u;
static float gauss(void)
{
    float s = 0;
    for (int i = 0; i < 4; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        s += (float)(rng >> 40) / (float)(1u << 24);
    }
    return (s - 2.0f) * 1.7320508f;
}

/* ---- binary16 ---- */

static void test_f32_to_f16(void)
{
    size_t bad = 0;

    /* every finite half round-trips exactly */
    for (uint32_t h = 0; h < 0x10000; h++)
        if ((h & 0x7c00) != 0x7c00 && mdl_f32_to_f16(mdl_f16_to_f32((uint16_t)h)) != h)
            bad++;
    CHECK_EQ_INT(bad, 0);
    /* against the compiler's conversion, which rounds to nearest even */
    bad = 0;
    for (int i = 0; i < 200000; i++) {
        float f = ldexpf(gauss(), (i % 50) - 30);
        union { _Float16 h; uint16_t u; } want = {.h = (_Float16)f};
        if (mdl_f32_to_f16(f) != want.u)
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(mdl_f32_to_f16(1.0f), 0x3c00);
    CHECK_EQ_INT(mdl_f32_to_f16(65504.0f), 0x7bff);
    CHECK_EQ_INT(mdl_f32_to_f16(65520.0f), 0x7c00);       /* rounds up to infinity */
    CHECK_EQ_INT(mdl_f32_to_f16(1.0f + ldexpf(1, -11)), 0x3c00); /* tie to even */
    CHECK_EQ_INT(mdl_f32_to_f16(ldexpf(1, -25)), 0x0000);  /* tie to even: 0 */
    CHECK_EQ_INT(mdl_f32_to_f16(ldexpf(3, -25)), 0x0002);  /* 1.5 units: to even 2 */
    CHECK_EQ_INT(mdl_f32_to_f16(-ldexpf(1, -14)), 0x8400);
}

/* ---- quantize / dequantize ---- */

static void test_round_trip(void)
{
    enum { N = 1000 }; /* not a multiple of 32: the last block is padded */
    static float src[N], back[N];
    static int8_t q[32 * 32];
    static uint16_t d[32], src16[N];
    size_t nb = mdl_q8_blocks(N);
    double worst = 0;

    CHECK_EQ_INT(nb, 32);
    for (size_t i = 0; i < N; i++)
        src[i] = gauss() * (i < 500 ? 0.02f : 3.0f); /* two scales of weights */
    memset(q, 0x55, sizeof q);
    CHECK_EQ_INT(mdl__q8_quantize_row(src, MDL_DTYPE_F32, N, q, d), 0);
    mdl__q8_dequantize_row(q, d, N, back);
    for (size_t j = 0; j < nb; j++) {
        float amax = 0, scale = mdl_f16_to_f32(d[j]);
        size_t end = (j + 1) * 32 < N ? (j + 1) * 32 : N;
        for (size_t i = j * 32; i < end; i++)
            amax = fmaxf(amax, fabsf(src[i]));
        /* the scale is max |v| / 127 rounded to binary16 */
        CHECK_EQ_INT(d[j], mdl_f32_to_f16(amax / 127));
        for (size_t i = j * 32; i < end; i++) {
            double e = fabs((double)back[i] - src[i]);
            /* half a step, plus the rounding of the scale at the clamped ends */
            if (!(e <= scale * 0.5 * (1 + 1e-6) + amax * ldexp(1, -11)))
                CHECK_FAIL_("block %zu value %zu: |%g - %g| > half step %g", j, i, back[i], src[i], scale / 2);
            worst = fmax(worst, e / amax);
        }
        for (size_t i = end; i < (j + 1) * 32; i++)
            CHECK_EQ_INT(q[i], 0); /* padding */
        for (size_t i = j * 32; i < end; i++)
            CHECK(q[i] >= -127 && q[i] <= 127);
    }
    printf("  round trip: max |error| / block max = %.2e (half a step is %.2e)\n", worst, 0.5 / 127);
    CHECK(worst <= 0.5 / 127 * 1.001);

    /* an F16 source gives the same blocks as its float32 values */
    {
        static int8_t q2[32 * 32];
        static uint16_t d2[32];
        for (size_t i = 0; i < N; i++) {
            src16[i] = mdl_f32_to_f16(src[i]);
            src[i] = mdl_f16_to_f32(src16[i]);
        }
        CHECK_EQ_INT(mdl__q8_quantize_row(src16, MDL_DTYPE_F16, N, q2, d2), 0);
        CHECK_EQ_INT(mdl__q8_quantize_row(src, MDL_DTYPE_F32, N, q, d), 0);
        CHECK(memcmp(q, q2, sizeof q) == 0 && memcmp(d, d2, sizeof d) == 0);
    }
    /* exact values: a block of k/127 quantizes to k with scale 1/127 */
    {
        float v[32];
        for (int i = 0; i < 32; i++)
            v[i] = (float)(i * 8 - 127) / 127.0f * 2.0f;
        v[31] = 2.0f;
        CHECK_EQ_INT(mdl__q8_quantize_row(v, MDL_DTYPE_F32, 32, q, d), 0);
        CHECK_EQ_INT(q[0], -127);
        CHECK_EQ_INT(q[1], -119);
        CHECK_EQ_INT(q[31], 127);
        CHECK_EQ_INT(d[0], mdl_f32_to_f16(2.0f / 127));
    }
    /* zeros: scale 0, all q 0 */
    {
        float z[40] = {0};
        CHECK_EQ_INT(mdl__q8_quantize_row(z, MDL_DTYPE_F32, 40, q, d), 0);
        CHECK_EQ_INT(d[0], 0);
        CHECK_EQ_INT(d[1], 0);
        CHECK_EQ_INT(q[0], 0);
    }
    /* refusals: NaN, infinity, a value past binary16 scales */
    {
        float bad[32] = {0};
        bad[7] = NAN;
        CHECK_EQ_INT(mdl__q8_quantize_row(bad, MDL_DTYPE_F32, 32, q, d), -ERANGE);
        bad[7] = INFINITY;
        CHECK_EQ_INT(mdl__q8_quantize_row(bad, MDL_DTYPE_F32, 32, q, d), -ERANGE);
        bad[7] = 1e7f;
        CHECK_EQ_INT(mdl__q8_quantize_row(bad, MDL_DTYPE_F32, 32, q, d), -ERANGE);
        bad[7] = 8e6f; /* 8e6 / 127 < 65504: fine */
        CHECK_EQ_INT(mdl__q8_quantize_row(bad, MDL_DTYPE_F32, 32, q, d), 0);
    }
}

/* Activations: both versions give the same bytes, within half a step of the input. */
static void test_quantize_act(void)
{
    enum { N = 1000 };
    static float x[N];
    static int8_t qa[32 * 32], qc[32 * 32];
    static float da[32], dc[32];
    bool was = mdl__tf_simd();

    for (size_t i = 0; i < N; i++)
        x[i] = gauss() * (i % 3 ? 1.0f : 40.0f);
    x[100] = 0; /* and a block of zeros */
    for (size_t i = 64; i < 96; i++)
        x[i] = 0;
    mdl__tf_set_simd(false);
    mdl__q8_quantize_act(x, N, qc, dc);
    mdl__tf_set_simd(true);
    mdl__q8_quantize_act(x, N, qa, da);
    mdl__tf_set_simd(was);
    CHECK(memcmp(qa, qc, sizeof qa) == 0);
    CHECK(memcmp(da, dc, sizeof da) == 0);
    CHECK(dc[2] == 0);
    for (size_t i = 0; i < N; i++)
        if (!(fabsf(dc[i / 32] * qc[i] - x[i]) <= dc[i / 32] * 0.5f * 1.0001f))
            CHECK_FAIL_("activation %zu: %g vs %g", i, dc[i / 32] * qc[i], x[i]);
    for (size_t i = N; i < 32 * 32; i++)
        CHECK_EQ_INT(qc[i], 0);
}

/* ---- kernels: AVX2 against portable ---- */

typedef struct qmat {
    mdl_tf_mat_t W;
    int8_t *q;
    uint16_t *d;
} qmat_t;

static void qmat_make(qmat_t *m, size_t rows, size_t cols, bool integers)
{
    size_t nb = mdl_q8_blocks(cols);
    float *row = malloc(cols * sizeof *row);

    m->q = malloc(rows * nb * 32);
    m->d = malloc(rows * nb * sizeof *m->d);
    for (size_t r = 0; r < rows; r++) {
        for (size_t i = 0; i < cols; i++)
            row[i] = integers ? (float)((int)(gauss() * 40) % 128) : gauss() * 0.05f;
        for (size_t i = 0; integers && i < cols; i += 32)
            row[i] = 127; /* every block's scale exactly 1 */
        CHECK_EQ_INT(mdl__q8_quantize_row(row, MDL_DTYPE_F32, cols, m->q + r * nb * 32, m->d + r * nb), 0);
    }
    m->W = (mdl_tf_mat_t){.w = m->q, .dtype = MDL_DTYPE_F32, .rows = rows, .cols = cols, .q8_d = m->d};
    free(row);
}

static void kernel_case(size_t rows, size_t cols, size_t B, bool integers, bool bias, bool acc)
{
    size_t nb = mdl_q8_blocks(cols);
    qmat_t m;
    float *x = malloc(B * cols * sizeof *x), *xd = malloc(B * nb * sizeof *xd);
    int8_t *xq = malloc(B * nb * 32);
    float *ya = malloc(B * rows * sizeof *ya), *yc = malloc(B * rows * sizeof *yc);
    float *bv = malloc(rows * sizeof *bv);
    float *scratch = malloc(MDL_Q8_FLOAT_ROWS * cols * sizeof *scratch);
    bool was = mdl__tf_simd(), wide = B >= MDL_Q8_FLOAT_MIN_BATCH;
    double worst = 0;

    qmat_make(&m, rows, cols, integers);
    for (size_t i = 0; i < B * cols; i++)
        x[i] = integers ? (float)((int)(gauss() * 40) % 128) : gauss();
    for (size_t b = 0; b < B; b++) {
        for (size_t i = 0; integers && i < cols; i += 32)
            x[b * cols + i] = 127;
        mdl__q8_quantize_act(x + b * cols, cols, xq + b * nb * 32, xd + b * nb);
    }
    for (size_t i = 0; i < rows; i++)
        bv[i] = gauss();
    for (size_t i = 0; i < B * rows; i++)
        ya[i] = yc[i] = (float)i;
    mdl__tf_set_simd(false);
    mdl__q8_matmul(&m.W, bias ? bv : NULL, x, cols, xq, xd, scratch, yc, rows, B, 0, rows, acc);
    mdl__tf_set_simd(true);
    /* in two row ranges, as the thread team splits it */
    mdl__q8_matmul(&m.W, bias ? bv : NULL, x, cols, xq, xd, scratch, ya, rows, B, 0, rows / 3, acc);
    mdl__q8_matmul(&m.W, bias ? bv : NULL, x, cols, xq, xd, scratch, ya, rows, B, rows / 3, rows, acc);
    mdl__tf_set_simd(was);
    for (size_t b = 0; b < B; b++)
        for (size_t r = 0; r < rows; r++) {
            /* integer weights and inputs with scale 1: every sum is an exact float */
            float c = yc[b * rows + r], a = ya[b * rows + r];
            double e = fabs((double)a - c);
            if (integers && !bias && !acc && a != c)
                CHECK_FAIL_("rows %zu cols %zu B %zu: y[%zu][%zu] %.9g != %.9g", rows, cols, B, b, r, a, c);
            if (!(e <= 1e-5 * (1 + fabs(c))))
                CHECK_FAIL_("rows %zu cols %zu B %zu: y[%zu][%zu] %.9g vs %.9g", rows, cols, B, b, r, a, c);
            worst = fmax(worst, e);
        }
    /* and the portable kernel against a plain float64 sum of the dequantized weights times
     * the inputs, quantized ones below MDL_Q8_FLOAT_MIN_BATCH */
    {
        float *wrow = malloc(cols * sizeof *wrow), *xrow = malloc(cols * sizeof *xrow);
        for (size_t b = 0; b < B && !integers && !acc; b++) {
            for (size_t i = 0; i < cols; i++)
                xrow[i] = wide ? x[b * cols + i] : xd[b * nb + i / 32] * xq[b * nb * 32 + i];
            for (size_t r = 0; r < rows; r++) {
                double s = bias ? bv[r] : 0;
                mdl__q8_dequantize_row(m.q + r * nb * 32, m.d + r * nb, cols, wrow);
                for (size_t i = 0; i < cols; i++)
                    s += (double)wrow[i] * xrow[i];
                CHECK_NEAR(yc[b * rows + r], s, 1e-5 * (1 + fabs(s)));
            }
        }
        free(wrow);
        free(xrow);
    }
    free(m.q);
    free(m.d);
    free(x);
    free(xd);
    free(xq);
    free(ya);
    free(yc);
    free(bv);
    free(scratch);
}

static void test_kernels(void)
{
    static const size_t shapes[][2] = {{37, 64}, {16, 288}, {33, 172}, {8, 768}, {5, 31}, {3, 2048}};
    static const size_t batches[] = {1, 2, 3, 4, 5, 7, 8, 9, 16, 21};

    if (!mdl__tf_simd())
        printf("  no AVX2 on this CPU: only the portable kernels run\n");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
            kernel_case(shapes[s][0], shapes[s][1], batches[b], true, false, false);
            kernel_case(shapes[s][0], shapes[s][1], batches[b], false, b % 2, b % 3 == 0);
        }
}

/* ---- fixtures ---- */

typedef struct fixture {
    const char *dir;  /* holds reference.json */
    const char *load;
} fixture_t;

static const fixture_t fixtures[] = {
    {FIX "/tiny_llama", FIX "/tiny_llama"},
    {FIX "/tiny_llama", FIX "/tiny_llama/model.bin"},
    {FIX "/tiny_llama_bf16", FIX "/tiny_llama_bf16"},
    {FIX "/tiny_gpt2", FIX "/tiny_gpt2"},
    {FIX "/tiny_gpt2_fp16", FIX "/tiny_gpt2_fp16"},
};

static int32_t argmax(const float *v, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return (int32_t)best;
}

/* Largest |logit| of the reference rows seen, for the relative figure. */
static double ref_scale;

/* max |a - ref| over the row; +inf if the reference row is malformed. */
static double diff_ref(const float *a, const mdl_json_t *ref, size_t V)
{
    double d = 0;
    size_t i = 0;
    if (!ref || ref->type != MDL_JSON_ARRAY || ref->len != V)
        return INFINITY;
    MDL_JSON_FOREACH(v, ref) {
        double e = fabs((double)a[i++] - v->u.num);
        ref_scale = fmax(ref_scale, fabs(v->u.num));
        if (!(e <= d))
            d = e;
    }
    return d;
}

static double diff(const float *a, const float *b, size_t V)
{
    double d = 0;
    for (size_t i = 0; i < V; i++)
        d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

/* Logits after each case's prompt, one prefill each, into out (cases x V). */
static size_t run_cases(mdl_tf_model_t *m, const mdl_json_t *cases, size_t threads, float *out)
{
    mdl_tf_runner_t *run = NULL;
    mdl_err_t err = {0};
    size_t n = 0;

    CHECK_EQ_INT(mdl_tf_runner_new(threads, &run, &err), 0);
    MDL_JSON_FOREACH(c, cases) {
        const mdl_json_t *ids = mdl_json_find(c, "ids");
        int32_t tok[64];
        size_t k = 0;
        mdl_tf_seq_t *s = NULL;
        MDL_JSON_FOREACH(v, ids)
            if (k < 64)
                tok[k++] = (int32_t)v->u.num;
        CHECK_EQ_INT(mdl_tf_seq_new(m, 0, &s, &err), 0);
        CHECK_EQ_INT(mdl_tf_prefill(run, s, tok, k, out + n * mdl_tf_vocab_size(m), false, &err), 0);
        mdl_tf_seq_free(s);
        if (++n == 8)
            break;
    }
    mdl_tf_runner_free(run);
    return n;
}

/* The q8_0 model's last-position logits against reference.json and against the model
 * with stored weights; returns the max |difference| to the reference. */
static double check_fixture(const fixture_t *fx, size_t threads, double *ret_vs_stored,
                            size_t *ret_argmax_same, size_t *ret_cases)
{
    char path[512], *text = NULL;
    size_t len, V, n = 0;
    mdl_json_doc_t *doc = NULL;
    mdl_err_t err = {0};
    mdl_tf_model_t *f = NULL, *q = NULL;
    double worst = 0, vs = 0;
    float *lf, *lq;
    const mdl_json_t *cases;

    snprintf(path, sizeof path, "%s/reference.json", fx->dir);
    CHECK_EQ_INT(mdl_file_read(path, 64 << 20, &text, &len, NULL, &err), 0);
    CHECK_EQ_INT(mdl_json_parse(text, len, 16, &doc, &err), 0);
    CHECK_EQ_INT(mdl_tf_load(fx->load, 0, &f, &err), 0);
    CHECK_EQ_INT(mdl_tf_load(fx->load, 0, &q, &err), 0);
    if (!doc || !f || !q) {
        fprintf(stderr, "  %s: %s\n", fx->load, err.msg);
        return INFINITY;
    }
    CHECK_EQ_INT(mdl_tf_quantize(q, MDL_TF_WEIGHTS_Q8_0, &err), 0);
    CHECK_EQ_INT(mdl_tf_weights(q), MDL_TF_WEIGHTS_Q8_0);
    CHECK_EQ_INT(mdl_tf_weights(f), MDL_TF_WEIGHTS_STORED);
    CHECK(mdl_tf_quantized_bytes(q) > 0 && mdl_tf_quantized_bytes(f) == 0);
    CHECK(mdl_tf_weight_bytes(q) < mdl_tf_weight_bytes(f));
    /* a second conversion is refused */
    CHECK_EQ_INT(mdl_tf_quantize(q, MDL_TF_WEIGHTS_Q8_0, &err), -EINVAL);
    V = mdl_tf_vocab_size(f);
    lf = malloc(8 * V * sizeof *lf);
    lq = malloc(8 * V * sizeof *lq);
    cases = mdl_json_find(mdl_json_doc_root(doc), "cases");
    n = run_cases(f, cases, threads, lf);
    CHECK_EQ_INT(run_cases(q, cases, threads, lq), n);
    *ret_argmax_same = 0;
    {
        size_t i = 0;
        MDL_JSON_FOREACH(c, cases) {
            const mdl_json_t *am = mdl_json_find(c, "argmax_per_position");
            int32_t want = -1;
            MDL_JSON_FOREACH(v, am)
                want = (int32_t)v->u.num; /* the last position's */
            worst = fmax(worst, diff_ref(lq + i * V, mdl_json_find(c, "last_logits"), V));
            vs = fmax(vs, diff(lq + i * V, lf + i * V, V));
            CHECK_EQ_INT(argmax(lf + i * V, V), want);
            *ret_argmax_same += argmax(lq + i * V, V) == want;
            if (++i == n)
                break;
        }
    }
    *ret_vs_stored = vs;
    *ret_cases = n;
    free(lf);
    free(lq);
    mdl_tf_free(f);
    mdl_tf_free(q);
    mdl_json_doc_free(doc);
    free(text);
    return worst;
}

static void test_fixtures(void)
{
    for (int simd = 1; simd >= 0; simd--) {
        bool was = mdl__tf_simd();
        mdl__tf_set_simd(simd);
        for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) {
            double vs, d;
            size_t same, n;
            ref_scale = 0;
            d = check_fixture(&fixtures[i], 2, &vs, &same, &n);
            printf("  %-42s q8_0: max |logit - ref| %.2e, vs stored weights %.2e (logits up to "
                   "%.1f), argmax %zu/%zu%s\n", fixtures[i].load, d, vs, ref_scale, same, n,
                   mdl__tf_simd() ? "" : " [portable]");
            /* These fixtures' weights are large on purpose (logits O(10), see their
             * README), which magnifies rounding: weight rounding alone moves the logits by
             * ~0.26 (tiny_llama), activations add the rest. Measured: 0.30-0.42, i.e.
             * 1.8-3.0% of the largest |logit|; the bound is 5%. Weights of a usual
             * scale: test_small_weights. */
            CHECK(d <= 0.05 * ref_scale);
            CHECK(vs <= 0.05 * ref_scale);
            CHECK_EQ_INT(same, n);
        }
        mdl__tf_set_simd(was);
    }
}

/* A llama2.c model.bin of stories15M's widths (dim 288, hidden 768, 6 heads) with fewer
 * layers and tokens, weights N(0, 0.02^2) as in bench/generate/make_model.py: q8_0 logits
 * against the stored weights' through prefill and 24 batched decode steps, and greedy
 * picks the same tokens. Measured max |difference| 2.5e-2 with logits up to 2.1: the
 * issue's 1e-2 is not reachable by 8-bit blocks here either (weight rounding alone is
 * ~0.6% of a dot product, and the max over the vocabulary is ~3 such deviations); the
 * bound is 5e-2. */
static void test_small_weights(void)
{
    enum { DIM = 288, HID = 768, L = 2, H = 6, V = 1024, T = 64 };
    char path[] = "/tmp/modeld-test-q8-XXXXXX";
    int fd = mkstemp(path);
    int32_t hdr[7] = {DIM, HID, L, H, H, V, T};
    size_t n = (size_t)V * DIM + 2 * L * DIM + (size_t)L * (4 * DIM * DIM + 3 * DIM * HID) + DIM + T * (DIM / H);
    float *w = malloc(n * sizeof *w), *p = w;
    mdl_tf_model_t *f = NULL, *q = NULL;
    mdl_tf_runner_t *run = NULL;
    mdl_err_t err = {0};
    float *lf = malloc(3 * V * sizeof *lf), *lq = malloc(3 * V * sizeof *lq);
    double worst = 0, top = 0;
    size_t agree = 0, total = 0;

    CHECK(fd >= 0);
    /* embedding, rms_att, wq wk wv wo, rms_ffn, w1 w2 w3, rms_final, freq tables */
    for (size_t i = 0; i < (size_t)V * DIM; i++)
        *p++ = gauss() * 0.02f;
    for (size_t i = 0; i < (size_t)L * DIM; i++)
        *p++ = 1;
    for (size_t i = 0; i < (size_t)L * 4 * DIM * DIM; i++)
        *p++ = gauss() * 0.02f;
    for (size_t i = 0; i < (size_t)L * DIM; i++)
        *p++ = 1;
    for (size_t i = 0; i < (size_t)L * 3 * DIM * HID; i++)
        *p++ = gauss() * 0.02f;
    for (size_t i = 0; i < DIM + T * (DIM / H); i++)
        *p++ = 1;
    CHECK_EQ_INT(p - w, (long)n);
    CHECK_EQ_INT(write(fd, hdr, sizeof hdr), (long)sizeof hdr);
    CHECK_EQ_INT(write(fd, w, n * sizeof *w), (long)(n * sizeof *w));
    close(fd);
    CHECK_EQ_INT(mdl_tf_load(path, 0, &f, &err), 0);
    CHECK_EQ_INT(mdl_tf_load(path, 0, &q, &err), 0);
    unlink(path);
    if (!f || !q)
        goto out;
    CHECK_EQ_INT(mdl_tf_quantize(q, MDL_TF_WEIGHTS_Q8_0, &err), 0);
    CHECK_EQ_INT(mdl_tf_runner_new(2, &run, &err), 0);
    {
        mdl_tf_seq_t *sf[3], *sq[3];
        int32_t prompt[3][8], tf[3], tq[3];
        for (size_t b = 0; b < 3; b++) {
            for (size_t i = 0; i < 8; i++)
                prompt[b][i] = (int32_t)((b * 131 + i * 17 + 1) % V);
            CHECK_EQ_INT(mdl_tf_seq_new(f, 0, &sf[b], &err), 0);
            CHECK_EQ_INT(mdl_tf_seq_new(q, 0, &sq[b], &err), 0);
            CHECK_EQ_INT(mdl_tf_prefill(run, sf[b], prompt[b], 8, lf + b * V, false, &err), 0);
            CHECK_EQ_INT(mdl_tf_prefill(run, sq[b], prompt[b], 8, lq + b * V, false, &err), 0);
        }
        for (size_t step = 0; step < 24; step++) {
            for (size_t b = 0; b < 3; b++) {
                worst = fmax(worst, diff(lf + b * V, lq + b * V, V));
                for (size_t i = 0; i < V; i++)
                    top = fmax(top, fabs(lf[b * V + i]));
                tf[b] = argmax(lf + b * V, V);
                tq[b] = argmax(lq + b * V, V);
                agree += tf[b] == tq[b];
                total++;
            }
            /* both continue with the stored-weight model's pick, so they stay comparable */
            CHECK_EQ_INT(mdl_tf_decode(run, sf, tf, 3, lf, &err), 0);
            CHECK_EQ_INT(mdl_tf_decode(run, sq, tf, 3, lq, &err), 0);
        }
        for (size_t b = 0; b < 3; b++) {
            mdl_tf_seq_free(sf[b]);
            mdl_tf_seq_free(sq[b]);
        }
    }
    printf("  std-0.02 weights: q8_0 max |logit - stored| %.2e over %zu steps (logits up to %.2f), "
           "argmax %zu/%zu\n", worst, total, top, agree, total);
    CHECK(worst <= 5e-2);
    CHECK_EQ_INT(agree, total);
out:
    mdl_tf_runner_free(run);
    mdl_tf_free(f);
    mdl_tf_free(q);
    free(w);
    free(lf);
    free(lq);
}

/* A sequence's logits do not depend on what shares its step: one token decoded alone (the
 * int8 path) and the same token in a step with a 20-token prompt (16+ rows: the float
 * path) give the same logits up to float rounding (measured 1.9e-6 on logits up to 17; a
 * rounding that moved an activation across an int8 boundary could make it more, hence the
 * bound 1e-4). Had the float path used the unquantized inputs, the difference would be
 * ~0.3, as large as the quantization error itself. */
static void test_batch_independent(void)
{
    mdl_tf_model_t *m = NULL;
    mdl_tf_runner_t *run = NULL;
    mdl_err_t err = {0};
    mdl_tf_seq_t *a = NULL, *b = NULL, *c = NULL;
    int32_t prompt[5] = {1, 50, 300, 7, 99}, tok = 42, other[20], step_tok[21];
    size_t counts[2] = {1, 20};
    float *alone, *both;
    size_t V;
    double d;

    CHECK_EQ_INT(mdl_tf_load(FIX "/tiny_llama", 0, &m, &err), 0);
    if (!m)
        return;
    CHECK_EQ_INT(mdl_tf_quantize(m, MDL_TF_WEIGHTS_Q8_0, &err), 0);
    CHECK_EQ_INT(mdl_tf_runner_new(2, &run, &err), 0);
    V = mdl_tf_vocab_size(m);
    alone = malloc(V * sizeof *alone);
    both = malloc(2 * V * sizeof *both);
    for (int i = 0; i < 20; i++)
        other[i] = (int32_t)(i * 23 + 3);
    CHECK_EQ_INT(mdl_tf_seq_new(m, 0, &a, &err), 0);
    CHECK_EQ_INT(mdl_tf_seq_new(m, 0, &b, &err), 0);
    CHECK_EQ_INT(mdl_tf_seq_new(m, 0, &c, &err), 0);
    CHECK_EQ_INT(mdl_tf_prefill(run, a, prompt, 5, NULL, false, &err), 0);
    CHECK_EQ_INT(mdl_tf_prefill(run, b, prompt, 5, NULL, false, &err), 0);
    CHECK_EQ_INT(mdl_tf_decode(run, &a, &tok, 1, alone, &err), 0);
    step_tok[0] = tok;
    memcpy(step_tok + 1, other, sizeof other);
    {
        mdl_tf_seq_t *seqs[2] = {b, c};
        CHECK_EQ_INT(mdl_tf_step(run, seqs, step_tok, counts, 2, both, &err), 0);
    }
    d = diff(alone, both, V);
    printf("  one token alone vs beside a 20-token prompt: max |logit difference| %.2e\n", d);
    CHECK(d <= 1e-4);
    CHECK_EQ_INT(argmax(alone, V), argmax(both, V));
    mdl_tf_seq_free(a);
    mdl_tf_seq_free(b);
    mdl_tf_seq_free(c);
    free(alone);
    free(both);
    mdl_tf_runner_free(run);
    mdl_tf_free(m);
}

int main(void)
{
    RUN(test_f32_to_f16);
    RUN(test_round_trip);
    RUN(test_quantize_act);
    RUN(test_kernels);
    RUN(test_fixtures);
    RUN(test_small_weights);
    RUN(test_batch_independent);
    return check_summary();
}
