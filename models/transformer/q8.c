#include "q8.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_X86 1
#include <immintrin.h>
#define AVX __attribute__((target("avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))
#endif

uint16_t mdl_f32_to_f16(float f)
{
    union { float f; uint32_t u; } v = {.f = f};
    uint32_t sign = (v.u >> 16) & 0x8000u, x = v.u & 0x7fffffffu;

    if (x > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00u); /* NaN */
    if (x >= 0x477ff000u)
        return (uint16_t)(sign | 0x7c00u); /* rounds past 65504 */
    if (x < 0x38800000u) {
        /* below 2^-14: a subnormal in units of 2^-24 (scaling by 2^24 is exact; rintf
         * rounds to even; 1024 units is the smallest normal, which encodes the same way) */
        return (uint16_t)(sign | (uint32_t)rintf(fabsf(f) * 16777216.0f));
    }
    /* drop 13 mantissa bits rounding to nearest even (a carry may bump the exponent,
     * which is right), then rebias the exponent 127 -> 15 */
    x += 0xfffu + ((x >> 13) & 1u);
    return (uint16_t)(sign | ((x >> 13) - (112u << 10)));
}

static inline float load_elem(const void *src, mdl_dtype_t t, size_t i)
{
    switch (t) {
    case MDL_DTYPE_F16: return mdl_f16_to_f32(((const uint16_t *)src)[i]);
    case MDL_DTYPE_BF16: return mdl_bf16_to_f32(((const uint16_t *)src)[i]);
    case MDL_DTYPE_F32: break;
    }
    return ((const float *)src)[i];
}

int mdl__q8_quantize_row(const void *src, mdl_dtype_t t, size_t n, int8_t *q, uint16_t *d)
{
    float v[MDL_Q8_BLOCK];

    for (size_t j = 0, nb = mdl_q8_blocks(n); j < nb; j++) {
        size_t len = n - j * MDL_Q8_BLOCK < MDL_Q8_BLOCK ? n - j * MDL_Q8_BLOCK : MDL_Q8_BLOCK;
        float amax = 0, scale, inv;
        for (size_t i = 0; i < len; i++) {
            v[i] = load_elem(src, t, j * MDL_Q8_BLOCK + i);
            if (!isfinite(v[i]))
                return -ERANGE;
            if (fabsf(v[i]) > amax)
                amax = fabsf(v[i]);
        }
        if (amax / 127.0f > 65504.0f)
            return -ERANGE;
        d[j] = mdl_f32_to_f16(amax / 127.0f);
        /* quantize against the scale as stored, so the rounding of d is not doubled */
        scale = mdl_f16_to_f32(d[j]);
        inv = scale > 0 ? 1.0f / scale : 0.0f;
        for (size_t i = 0; i < MDL_Q8_BLOCK; i++) {
            long r = i < len ? lrintf(v[i] * inv) : 0;
            q[j * MDL_Q8_BLOCK + i] = (int8_t)(r > 127 ? 127 : r < -127 ? -127 : r);
        }
    }
    return 0;
}

static void dequantize_c(const int8_t *q, const uint16_t *d, size_t n, float *dst)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = mdl_f16_to_f32(d[i / MDL_Q8_BLOCK]) * (float)q[i];
}

static inline void store(float *y, float v, const float *bias, size_t o, bool acc)
{
    if (bias)
        v += bias[o];
    *y = acc ? *y + v : v;
}

/* ---- portable versions ---- */

/* One block of up to 32 activations (len), zero-padded to 32. */
static void quantize_act_block(const float *x, size_t len, int8_t *q, float *d)
{
    float amax = 0, inv;

    for (size_t i = 0; i < len; i++)
        if (fabsf(x[i]) > amax)
            amax = fabsf(x[i]);
    *d = amax / 127.0f;
    inv = amax > 0 ? 127.0f / amax : 0.0f;
    for (size_t i = 0; i < MDL_Q8_BLOCK; i++)
        q[i] = (int8_t)(i < len ? lrintf(x[i] * inv) : 0); /* |x * inv| <= 127 */
}

static void dequantize_act_c(const int8_t *q, const float *d, size_t n, float *dst)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = d[i / MDL_Q8_BLOCK] * (float)q[i];
}

static void quantize_act_c(const float *x, size_t n, int8_t *q, float *d)
{
    for (size_t j = 0; j * MDL_Q8_BLOCK < n; j++) {
        size_t len = n - j * MDL_Q8_BLOCK < MDL_Q8_BLOCK ? n - j * MDL_Q8_BLOCK : MDL_Q8_BLOCK;
        quantize_act_block(x + j * MDL_Q8_BLOCK, len, q + j * MDL_Q8_BLOCK, d + j);
    }
}

static void matmul_c(const mdl_tf_mat_t *W, const float *bias, const int8_t *xq, const float *xd,
                     float *y, size_t ys, size_t B, size_t r0, size_t r1, bool acc)
{
    size_t nb = mdl_q8_blocks(W->cols), rl = nb * MDL_Q8_BLOCK;

    for (size_t r = r0; r < r1; r++) {
        const int8_t *w = (const int8_t *)W->w + r * rl;
        const uint16_t *wd = W->q8_d + r * nb;
        for (size_t b = 0; b < B; b++) {
            const int8_t *x = xq + b * rl;
            float s = 0;
            for (size_t j = 0; j < nb; j++) {
                int32_t dot = 0;
                for (size_t i = 0; i < MDL_Q8_BLOCK; i++)
                    dot += (int32_t)w[j * MDL_Q8_BLOCK + i] * (int32_t)x[j * MDL_Q8_BLOCK + i];
                s += (float)dot * (mdl_f16_to_f32(wd[j]) * xd[b * nb + j]);
            }
            store(&y[b * ys + r], s, bias, r, acc);
        }
    }
}

/* ---- AVX2 versions ---- */
#ifdef HAVE_X86

AVX INLINE float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

AVX static void quantize_act_avx(const float *x, size_t n, int8_t *q, float *d)
{
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    size_t j = 0;

    for (; (j + 1) * MDL_Q8_BLOCK <= n; j++) {
        const float *xb = x + j * MDL_Q8_BLOCK;
        __m256 v0 = _mm256_loadu_ps(xb), v1 = _mm256_loadu_ps(xb + 8),
               v2 = _mm256_loadu_ps(xb + 16), v3 = _mm256_loadu_ps(xb + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v0, abs_mask), _mm256_and_ps(v1, abs_mask)),
                                 _mm256_max_ps(_mm256_and_ps(v2, abs_mask), _mm256_and_ps(v3, abs_mask)));
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
        float amax = _mm_cvtss_f32(h);
        /* the same float operations as quantize_act_block, and cvtps rounds to nearest
         * even like lrintf, so both versions give the same bytes */
        d[j] = amax / 127.0f;
        __m256 inv = _mm256_set1_ps(amax > 0 ? 127.0f / amax : 0.0f);
        __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, inv)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, inv)),
                i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, inv)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, inv));
        /* the packs work per 128-bit lane; the permute puts the 4-byte groups back in order */
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
        _mm256_storeu_si256((__m256i *)(q + j * MDL_Q8_BLOCK), _mm256_permutevar8x32_epi32(p, order));
    }
    if (j * MDL_Q8_BLOCK < n)
        quantize_act_block(x + j * MDL_Q8_BLOCK, n - j * MDL_Q8_BLOCK, q + j * MDL_Q8_BLOCK, d + j);
}

AVX static void dequantize_act_avx(const int8_t *q, const float *d, size_t n, float *dst)
{
    size_t i = 0;
    for (; i + MDL_Q8_BLOCK <= n; i += MDL_Q8_BLOCK) {
        __m256 s = _mm256_set1_ps(d[i / MDL_Q8_BLOCK]);
        for (size_t k = 0; k < MDL_Q8_BLOCK; k += 8) {
            __m256i v = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q + i + k)));
            _mm256_storeu_ps(dst + i + k, _mm256_mul_ps(s, _mm256_cvtepi32_ps(v)));
        }
    }
    dequantize_act_c(q + i, d + i / MDL_Q8_BLOCK, n - i, dst + i);
}

/* Same products as dequantize_c (an exact int8 -> float conversion times the scale). */
AVX static void dequantize_avx(const int8_t *q, const uint16_t *d, size_t n, float *dst)
{
    size_t i = 0;
    for (; i + MDL_Q8_BLOCK <= n; i += MDL_Q8_BLOCK) {
        __m256 s = _mm256_set1_ps(_cvtsh_ss(d[i / MDL_Q8_BLOCK]));
        for (size_t k = 0; k < MDL_Q8_BLOCK; k += 8) {
            __m256i v = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q + i + k)));
            _mm256_storeu_ps(dst + i + k, _mm256_mul_ps(_mm256_cvtepi32_ps(v), s));
        }
    }
    dequantize_c(q + i, d + i / MDL_Q8_BLOCK, n - i, dst + i);
}

/* The 8 int32 partial sums of one 32-block product w . x as floats. maddubs multiplies
 * unsigned by signed bytes, so |w| goes in the unsigned slot and x takes w's sign; a pair
 * sum is at most 2 x 127 x 127, which fits the int16 it produces. */
AVX INLINE __m256 block_dot(__m256i w, __m256i aw, const int8_t *x)
{
    __m256i sx = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)x), w);
    __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sx), _mm256_set1_epi16(1));
    return _mm256_cvtepi32_ps(p);
}

/* One row times one input: two accumulators over alternate blocks, so the FMA chain does
 * not bound a loop that should be bound by the weight stream. */
AVX INLINE float row_one(const int8_t *w, const uint16_t *wd, const int8_t *x, const float *xd,
                         size_t nb)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    size_t j = 0;

    for (; j + 2 <= nb; j += 2) {
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(w + j * MDL_Q8_BLOCK));
        __m256i w1 = _mm256_loadu_si256((const __m256i *)(w + (j + 1) * MDL_Q8_BLOCK));
        __m256 s0 = block_dot(w0, _mm256_sign_epi8(w0, w0), x + j * MDL_Q8_BLOCK);
        __m256 s1 = block_dot(w1, _mm256_sign_epi8(w1, w1), x + (j + 1) * MDL_Q8_BLOCK);
        a0 = _mm256_fmadd_ps(s0, _mm256_set1_ps(_cvtsh_ss(wd[j]) * xd[j]), a0);
        a1 = _mm256_fmadd_ps(s1, _mm256_set1_ps(_cvtsh_ss(wd[j + 1]) * xd[j + 1]), a1);
    }
    if (j < nb) {
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(w + j * MDL_Q8_BLOCK));
        a0 = _mm256_fmadd_ps(block_dot(w0, _mm256_sign_epi8(w0, w0), x + j * MDL_Q8_BLOCK),
                             _mm256_set1_ps(_cvtsh_ss(wd[j]) * xd[j]), a0);
    }
    return hsum(_mm256_add_ps(a0, a1));
}

/* One row times n <= 8 inputs (a constant at each call site): each weight block is loaded
 * once and feeds all n products. */
AVX INLINE void row_multi(const int8_t *w, const uint16_t *wd, const int8_t *xq, const float *xd,
                          size_t nb, size_t n, float *out)
{
    size_t rl = nb * MDL_Q8_BLOCK;
    __m256 a[8];

#pragma GCC unroll 8
    for (size_t k = 0; k < n; k++)
        a[k] = _mm256_setzero_ps();
    for (size_t j = 0; j < nb; j++) {
        __m256i wv = _mm256_loadu_si256((const __m256i *)(w + j * MDL_Q8_BLOCK));
        __m256i aw = _mm256_sign_epi8(wv, wv);
        float dw = _cvtsh_ss(wd[j]);
#pragma GCC unroll 8
        for (size_t k = 0; k < n; k++)
            a[k] = _mm256_fmadd_ps(block_dot(wv, aw, xq + k * rl + j * MDL_Q8_BLOCK),
                                   _mm256_set1_ps(dw * xd[k * nb + j]), a[k]);
    }
#pragma GCC unroll 8
    for (size_t k = 0; k < n; k++)
        out[k] = hsum(a[k]);
}

/* Inputs b0..b0+n (n <= 8) against rows [r0, r1). */
AVX INLINE void rows_tile(const mdl_tf_mat_t *W, const float *bias, const int8_t *xq, const float *xd,
                          float *y, size_t ys, size_t n, size_t r0, size_t r1, bool acc)
{
    size_t nb = mdl_q8_blocks(W->cols), rl = nb * MDL_Q8_BLOCK;
    float out[8];

    for (size_t r = r0; r < r1; r++) {
        const int8_t *w = (const int8_t *)W->w + r * rl;
        const uint16_t *wd = W->q8_d + r * nb;
        size_t b = 0;
        if (n == 1) {
            store(&y[r], row_one(w, wd, xq, xd, nb), bias, r, acc);
            continue;
        }
        if (n == 8) {
            row_multi(w, wd, xq, xd, nb, 8, out);
            b = 8;
        } else {
            if (n - b >= 4) {
                row_multi(w, wd, xq + b * rl, xd + b * nb, nb, 4, out + b);
                b += 4;
            }
            if (n - b >= 2) {
                row_multi(w, wd, xq + b * rl, xd + b * nb, nb, 2, out + b);
                b += 2;
            }
            if (n - b == 1) {
                row_multi(w, wd, xq + b * rl, xd + b * nb, nb, 1, out + b);
                b += 1;
            }
        }
        for (size_t k = 0; k < n; k++)
            store(&y[k * ys + r], out[k], bias, r, acc);
    }
}

/* Inputs in tiles of 8 over the work item's rows: the rows (a few hundred KB at most) stay
 * in L2 across the tiles of a long prompt and each tile's inputs stay in L1. */
AVX static void matmul_avx(const mdl_tf_mat_t *W, const float *bias, const int8_t *xq, const float *xd,
                           float *y, size_t ys, size_t B, size_t r0, size_t r1, bool acc)
{
    size_t nb = mdl_q8_blocks(W->cols), rl = nb * MDL_Q8_BLOCK;

    for (size_t b = 0; b < B; b += 8)
        rows_tile(W, bias, xq + b * rl, xd + b * nb, y + b * ys, ys, B - b < 8 ? B - b : 8, r0, r1, acc);
}
#endif

/* ---- dispatch ---- */

static void dequantize_row(const int8_t *q, const uint16_t *d, size_t n, float *dst)
{
#ifdef HAVE_X86
    if (mdl__tf_simd()) {
        dequantize_avx(q, d, n, dst);
        return;
    }
#endif
    dequantize_c(q, d, n, dst);
}

void mdl__q8_dequantize_row(const int8_t *q, const uint16_t *d, size_t n, float *dst)
{
    dequantize_row(q, d, n, dst);
}

void mdl__q8_dequantize_act(const int8_t *q, const float *d, size_t n, float *dst)
{
#ifdef HAVE_X86
    if (mdl__tf_simd()) {
        dequantize_act_avx(q, d, n, dst);
        return;
    }
#endif
    dequantize_act_c(q, d, n, dst);
}

void mdl__q8_quantize_act(const float *x, size_t n, int8_t *q, float *d)
{
#ifdef HAVE_X86
    if (mdl__tf_simd()) {
        quantize_act_avx(x, n, q, d);
        return;
    }
#endif
    quantize_act_c(x, n, q, d);
}

void mdl__q8_matmul(const mdl_tf_mat_t *W, const float *bias, const float *x, size_t xs,
                    const int8_t *xq, const float *xd, float *scratch, float *y, size_t ys,
                    size_t B, size_t r0, size_t r1, bool acc)
{
    size_t nb = mdl_q8_blocks(W->cols), rl = nb * MDL_Q8_BLOCK;

    if (B >= MDL_Q8_FLOAT_MIN_BATCH) {
        for (size_t r = r0; r < r1; r += MDL_Q8_FLOAT_ROWS) {
            size_t n = r1 - r < MDL_Q8_FLOAT_ROWS ? r1 - r : MDL_Q8_FLOAT_ROWS;
            mdl_tf_mat_t rows = {.w = scratch, .dtype = MDL_DTYPE_F32, .rows = n, .cols = W->cols};
            for (size_t k = 0; k < n; k++)
                dequantize_row((const int8_t *)W->w + (r + k) * rl, W->q8_d + (r + k) * nb, W->cols,
                               scratch + k * W->cols);
            mdl__tf_matmul(&rows, bias ? bias + r : NULL, x, xs, y + r, ys, B, 0, n, acc);
        }
        return;
    }
#ifdef HAVE_X86
    if (mdl__tf_simd()) {
        matmul_avx(W, bias, xq, xd, y, ys, B, r0, r1, acc);
        return;
    }
#endif
    matmul_c(W, bias, xq, xd, y, ys, B, r0, r1, acc);
}
