#include "kernels.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_X86 1
#include <cpuid.h>
#include <immintrin.h>
#define AVX __attribute__((target("avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))
#endif

float mdl_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    union { uint32_t u; float f; } v;

    if (exp == 0x1f)
        v.u = sign | 0x7f800000u | man << 13; /* inf, NaN (payload kept) */
    else if (exp)
        v.u = sign | (exp + 112) << 23 | man << 13; /* rebias 15 -> 127 */
    else {
        v.f = (float)man * 5.9604644775390625e-08f; /* subnormal: man x 2^-24, exact */
        v.u |= sign;
    }
    return v.f;
}

static inline float elem(const void *w, size_t i, mdl_dtype_t t)
{
    switch (t) {
    case MDL_DTYPE_F16: return mdl_f16_to_f32(((const uint16_t *)w)[i]);
    case MDL_DTYPE_BF16: return mdl_bf16_to_f32(((const uint16_t *)w)[i]);
    case MDL_DTYPE_F32: break;
    }
    return ((const float *)w)[i];
}

static inline const void *row_ptr(const mdl_tf_mat_t *W, size_t r)
{
    return (const uint8_t *)W->w + r * W->cols * (W->dtype == MDL_DTYPE_F32 ? 4 : 2);
}

static inline void store(float *y, float v, const float *bias, size_t o, bool acc)
{
    if (bias)
        v += bias[o];
    *y = acc ? *y + v : v;
}

/* ---- portable versions ---- */

static void matmul_c(const mdl_tf_mat_t *W, const float *bias, const float *x, size_t xs, float *y,
                     size_t ys, size_t B, size_t r0, size_t r1, bool acc)
{
    for (size_t r = r0; r < r1; r++) {
        const void *w = row_ptr(W, r);
        for (size_t b = 0; b < B; b++) {
            const float *xb = x + b * xs;
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            size_t i = 0;
            for (; i + 4 <= W->cols; i += 4) {
                s0 += elem(w, i, W->dtype) * xb[i];
                s1 += elem(w, i + 1, W->dtype) * xb[i + 1];
                s2 += elem(w, i + 2, W->dtype) * xb[i + 2];
                s3 += elem(w, i + 3, W->dtype) * xb[i + 3];
            }
            for (; i < W->cols; i++)
                s0 += elem(w, i, W->dtype) * xb[i];
            store(&y[b * ys + r], (s0 + s1) + (s2 + s3), bias, r, acc);
        }
    }
}

static float dot_c(const float *a, const float *b, size_t n)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++)
        s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

static void axpy_c(float *y, float a, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] += a * x[i];
}

static void to_f32_c(const void *src, mdl_dtype_t t, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = elem(src, i, t);
}

/* ---- AVX2 + FMA + F16C versions ---- */
#ifdef HAVE_X86

AVX INLINE __m256 load8(const void *w, size_t i, mdl_dtype_t t)
{
    switch (t) {
    case MDL_DTYPE_F16:
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i)));
    case MDL_DTYPE_BF16:
        return _mm256_castsi256_ps(_mm256_slli_epi32(
            _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i))), 16));
    case MDL_DTYPE_F32: break;
    }
    return _mm256_loadu_ps((const float *)w + i);
}

AVX INLINE float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/* The scalar tail [n8, cols) of one row times one input. */
INLINE float tail(const void *w, const float *x, size_t n8, size_t cols, mdl_dtype_t t)
{
    float s = 0;
    for (size_t i = n8; i < cols; i++)
        s += elem(w, i, t) * x[i];
    return s;
}

/* Loads a weight vector once for both inputs: without this GCC folds the load into each
 * FMA, doubling the loads, which then bound the loop instead of the FMAs. */
#define KEEP_IN_REGISTER(v) __asm__("" : "+x"(v))

/* One row times one input, streaming the row front to back (what the hardware prefetcher
 * follows best when a lone input makes this purely a memory stream); 4 accumulators hide
 * the FMA latency. */
AVX INLINE float dot_row(const void *w, const float *x, size_t cols, mdl_dtype_t t)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 32 <= cols; i += 32) {
        a0 = _mm256_fmadd_ps(load8(w, i, t), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(load8(w, i + 8, t), _mm256_loadu_ps(x + i + 8), a1);
        a2 = _mm256_fmadd_ps(load8(w, i + 16, t), _mm256_loadu_ps(x + i + 16), a2);
        a3 = _mm256_fmadd_ps(load8(w, i + 24, t), _mm256_loadu_ps(x + i + 24), a3);
    }
    for (; i + 8 <= cols; i += 8)
        a0 = _mm256_fmadd_ps(load8(w, i, t), _mm256_loadu_ps(x + i), a0);
    return hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3))) + tail(w, x, i, cols, t);
}

/* One row times nb <= 8 inputs (nb a constant at each call site): each weight vector is
 * loaded once and feeds nb FMAs, and the row is streamed front to back, so for a decode
 * batch the weights are read from memory exactly once while the arithmetic overlaps the
 * stream (the inputs stay in L1). */
AVX INLINE void row_multi(const void *w, const float *x, size_t xs, size_t cols, mdl_dtype_t t,
                          size_t nb, float *out)
{
    __m256 a[8];
    size_t i = 0;

#pragma GCC unroll 8
    for (size_t k = 0; k < nb; k++)
        a[k] = _mm256_setzero_ps();
    for (; i + 8 <= cols; i += 8) {
        __m256 wv = load8(w, i, t);
#pragma GCC unroll 8
        for (size_t k = 0; k < nb; k++)
            a[k] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + k * xs + i), a[k]);
    }
#pragma GCC unroll 8
    for (size_t k = 0; k < nb; k++)
        out[k] = hsum(a[k]) + tail(w, x + k * xs, i, cols, t);
}

/* A decode batch (B <= 8): row by row, all inputs at once. (Measured on weights streamed
 * from memory, 8 inputs: ~35-40 GFLOP per CPU-second against ~30 for the 4 x 2 blocks and
 * for 2 rows x 4 inputs; from L1 the 4 x 2 blocks win, which is why prefill uses them.) */
AVX INLINE void matmul_rows(const mdl_tf_mat_t *W, const float *bias, const float *x, size_t xs,
                            float *y, size_t ys, size_t B, size_t r0, size_t r1, bool acc,
                            mdl_dtype_t t)
{
    float out[8];
    size_t r = r0;

    for (; r < r1; r++) {
        const void *w = row_ptr(W, r);
        size_t b = 0;
        if (B == 1) {
            out[0] = dot_row(w, x, W->cols, t);
            b = 1;
        }
        for (; b + 8 <= B; b += 8) {
            row_multi(w, x + b * xs, xs, W->cols, t, 8, out);
            for (size_t k = 0; k < 8; k++)
                store(&y[(b + k) * ys + r], out[k], bias, r, acc);
        }
        if (B - b >= 4) {
            row_multi(w, x + b * xs, xs, W->cols, t, 4, out);
            for (size_t k = 0; k < 4; k++)
                store(&y[(b + k) * ys + r], out[k], bias, r, acc);
            b += 4;
        }
        if (B - b >= 2) {
            row_multi(w, x + b * xs, xs, W->cols, t, 2, out);
            for (size_t k = 0; k < 2; k++)
                store(&y[(b + k) * ys + r], out[k], bias, r, acc);
            b += 2;
        }
        if (B - b == 1) {
            row_multi(w, x + b * xs, xs, W->cols, t, 1, out);
            store(&y[b * ys + r], out[0], bias, r, acc);
        } else if (B == 1) {
            store(&y[r], out[0], bias, r, acc);
        }
    }
}

/* Register blocks: 4 weight rows x 2 inputs (8 accumulators), so each loaded weight vector
 * feeds 2 FMAs and each input vector 4; a lone input uses 4 rows x 1. */
AVX INLINE void matmul_avx(const mdl_tf_mat_t *W, const float *bias, const float *x, size_t xs,
                           float *y, size_t ys, size_t B, size_t r0, size_t r1, bool acc,
                           mdl_dtype_t t)
{
    size_t cols = W->cols, n8 = cols & ~(size_t)7, r = r0;

    for (; r + 4 <= r1; r += 4) {
        const void *w0 = row_ptr(W, r), *w1 = row_ptr(W, r + 1), *w2 = row_ptr(W, r + 2),
                   *w3 = row_ptr(W, r + 3);
        size_t b = 0;
        for (; b + 2 <= B; b += 2) {
            const float *x0 = x + b * xs, *x1 = x0 + xs;
            __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00,
                   a21 = a00, a30 = a00, a31 = a00;
            for (size_t i = 0; i < n8; i += 8) {
                __m256 v0 = _mm256_loadu_ps(x0 + i), v1 = _mm256_loadu_ps(x1 + i), w;
                w = load8(w0, i, t);
                KEEP_IN_REGISTER(w);
                a00 = _mm256_fmadd_ps(w, v0, a00);
                a01 = _mm256_fmadd_ps(w, v1, a01);
                w = load8(w1, i, t);
                KEEP_IN_REGISTER(w);
                a10 = _mm256_fmadd_ps(w, v0, a10);
                a11 = _mm256_fmadd_ps(w, v1, a11);
                w = load8(w2, i, t);
                KEEP_IN_REGISTER(w);
                a20 = _mm256_fmadd_ps(w, v0, a20);
                a21 = _mm256_fmadd_ps(w, v1, a21);
                w = load8(w3, i, t);
                KEEP_IN_REGISTER(w);
                a30 = _mm256_fmadd_ps(w, v0, a30);
                a31 = _mm256_fmadd_ps(w, v1, a31);
            }
            store(&y[b * ys + r], hsum(a00) + tail(w0, x0, n8, cols, t), bias, r, acc);
            store(&y[b * ys + r + 1], hsum(a10) + tail(w1, x0, n8, cols, t), bias, r + 1, acc);
            store(&y[b * ys + r + 2], hsum(a20) + tail(w2, x0, n8, cols, t), bias, r + 2, acc);
            store(&y[b * ys + r + 3], hsum(a30) + tail(w3, x0, n8, cols, t), bias, r + 3, acc);
            store(&y[(b + 1) * ys + r], hsum(a01) + tail(w0, x1, n8, cols, t), bias, r, acc);
            store(&y[(b + 1) * ys + r + 1], hsum(a11) + tail(w1, x1, n8, cols, t), bias, r + 1, acc);
            store(&y[(b + 1) * ys + r + 2], hsum(a21) + tail(w2, x1, n8, cols, t), bias, r + 2, acc);
            store(&y[(b + 1) * ys + r + 3], hsum(a31) + tail(w3, x1, n8, cols, t), bias, r + 3, acc);
        }
        for (; b < B; b++)
            for (size_t k = 0; k < 4; k++)
                store(&y[b * ys + r + k], dot_row(row_ptr(W, r + k), x + b * xs, cols, t), bias,
                      r + k, acc);
    }
    for (; r < r1; r++)
        for (size_t b = 0; b < B; b++)
            store(&y[b * ys + r], dot_row(row_ptr(W, r), x + b * xs, cols, t), bias, r, acc);
}

/* Inputs per pass over a chunk of rows: 8 inputs of up to a few thousand floats stay in L1
 * next to the chunk's weight rows, so a long prompt re-reads the rows from L1, not x from L2. */
#define B_TILE 8

AVX INLINE void matmul_tiled(const mdl_tf_mat_t *W, const float *bias, const float *x, size_t xs,
                             float *y, size_t ys, size_t B, size_t r0, size_t r1, bool acc,
                             mdl_dtype_t t)
{
    if (B <= B_TILE) {
        matmul_rows(W, bias, x, xs, y, ys, B, r0, r1, acc, t);
        return;
    }
    for (size_t b = 0; b < B; b += B_TILE)
        matmul_avx(W, bias, x + b * xs, xs, y + b * ys, ys, B - b < B_TILE ? B - b : B_TILE, r0, r1,
                   acc, t);
}

AVX static void matmul_avx_f32(const mdl_tf_mat_t *W, const float *bias, const float *x, size_t xs,
                               float *y, size_t ys, size_t B, size_t r0, size_t r1, bool acc)
{
    matmul_tiled(W, bias, x, xs, y, ys, B, r0, r1, acc, MDL_DTYPE_F32);
}

AVX static void matmul_avx_f16(const mdl_tf_mat_t *W, const float *bias, const float *x, size_t xs,
                               float *y, size_t ys, size_t B, size_t r0, size_t r1, bool acc)
{
    matmul_tiled(W, bias, x, xs, y, ys, B, r0, r1, acc, MDL_DTYPE_F16);
}

AVX static void matmul_avx_bf16(const mdl_tf_mat_t *W, const float *bias, const float *x, size_t xs,
                                float *y, size_t ys, size_t B, size_t r0, size_t r1, bool acc)
{
    matmul_tiled(W, bias, x, xs, y, ys, B, r0, r1, acc, MDL_DTYPE_BF16);
}

AVX static float dot_avx(const float *a, const float *b, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum(_mm256_add_ps(s0, s1));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

AVX static void axpy_avx(float *y, float a, const float *x, size_t n)
{
    __m256 va = _mm256_set1_ps(a);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += a * x[i];
}

AVX static void to_f32_avx(const void *src, mdl_dtype_t t, float *dst, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, load8(src, i, t));
    for (; i < n; i++)
        dst[i] = elem(src, i, t);
}
#endif

/* ---- dispatch ---- */

static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_bool simd;

static bool cpu_has_avx2(void)
{
#ifdef HAVE_X86
    unsigned a, b, c, d;
    /* leaf 1: FMA (ecx 12), OSXSAVE (27), AVX (28), F16C (29); leaf 7: AVX2 (ebx 5);
     * XCR0: the OS saves the xmm and ymm state */
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return false;
    if (!(c & 1u << 12) || !(c & 1u << 27) || !(c & 1u << 28) || !(c & 1u << 29))
        return false;
    unsigned lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6) != 6)
        return false;
    if (__get_cpuid_max(0, NULL) < 7)
        return false;
    __cpuid_count(7, 0, a, b, c, d);
    return (b & 1u << 5) != 0;
#else
    return false;
#endif
}

static void detect(void)
{
    atomic_store(&simd, cpu_has_avx2());
}

bool mdl__tf_simd(void)
{
    pthread_once(&once, detect);
    return atomic_load_explicit(&simd, memory_order_relaxed);
}

void mdl__tf_set_simd(bool on)
{
    pthread_once(&once, detect);
    atomic_store(&simd, on && cpu_has_avx2());
}

void mdl__tf_matmul(const mdl_tf_mat_t *W, const float *bias, const float *x, size_t xs, float *y,
                    size_t ys, size_t B, size_t r0, size_t r1, bool acc)
{
#ifdef HAVE_X86
    if (mdl__tf_simd()) {
        switch (W->dtype) {
        case MDL_DTYPE_F32: matmul_avx_f32(W, bias, x, xs, y, ys, B, r0, r1, acc); return;
        case MDL_DTYPE_F16: matmul_avx_f16(W, bias, x, xs, y, ys, B, r0, r1, acc); return;
        case MDL_DTYPE_BF16: matmul_avx_bf16(W, bias, x, xs, y, ys, B, r0, r1, acc); return;
        }
    }
#endif
    matmul_c(W, bias, x, xs, y, ys, B, r0, r1, acc);
}

float mdl__tf_dot(const float *a, const float *b, size_t n)
{
#ifdef HAVE_X86
    if (mdl__tf_simd())
        return dot_avx(a, b, n);
#endif
    return dot_c(a, b, n);
}

void mdl__tf_axpy(float *y, float a, const float *x, size_t n)
{
#ifdef HAVE_X86
    if (mdl__tf_simd()) {
        axpy_avx(y, a, x, n);
        return;
    }
#endif
    axpy_c(y, a, x, n);
}

void mdl__tf_to_f32(const void *src, mdl_dtype_t t, float *dst, size_t n)
{
#ifdef HAVE_X86
    if (mdl__tf_simd()) {
        to_f32_avx(src, t, dst, n);
        return;
    }
#endif
    to_f32_c(src, t, dst, n);
}
