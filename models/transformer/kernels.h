/* The transformer's inner loops: matrix x batch products on weights kept in their stored
 * dtype (F32, F16, BF16 converted in registers, so a half-precision model moves half the
 * bytes), dot products and axpy for attention, and dtype conversion.
 *
 * Every routine has a portable C version and an AVX2+FMA+F16C version compiled with a
 * target attribute (no -march flags in the build); the AVX2 one is picked at run time when
 * the CPU has those features. Both accumulate in float32. Any thread; no state. */
#ifndef MDL_TRANSFORMER_KERNELS_H
#define MDL_TRANSFORMER_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "safetensors.h"

/* A weight matrix W [rows, cols], row-major, y = W x. w is read-only (often mmapped) and
 * aligned to its element size. When q8_d is set the matrix is Q8_0 instead (see q8.h): w
 * holds its int8 blocks, q8_d their scales, dtype is what it was quantized from, and only
 * mdl__q8_matmul reads it. */
typedef struct mdl_tf_mat {
    const void *w;
    mdl_dtype_t dtype;
    size_t rows, cols;
    const uint16_t *q8_d;   /* Q8_0: [rows][ceil(cols / 32)] binary16 scales; else NULL */
} mdl_tf_mat_t;

/* For output rows [r0, r1) of W and B inputs x_b = x + b*x_stride (cols floats each):
 *   y[b*y_stride + o] = (accumulate ? y[...] : 0) + bias[o] (if bias) + sum_i W[o,i] x_b[i].
 * Each weight row is read once for all B inputs (4 rows x 2 inputs per register block). */
void mdl__tf_matmul(const mdl_tf_mat_t *W, const float *bias, const float *x, size_t x_stride,
                    float *y, size_t y_stride, size_t B, size_t r0, size_t r1, bool accumulate);

float mdl__tf_dot(const float *a, const float *b, size_t n);
/* y[i] += a * x[i] */
void mdl__tf_axpy(float *y, float a, const float *x, size_t n);

/* dst[i] = src[i] as float32, n elements of dtype t. */
void mdl__tf_to_f32(const void *src, mdl_dtype_t t, float *dst, size_t n);

/* Exact IEEE binary16 -> binary32 (normals, subnormals, zeros, infinities, NaN). */
float mdl_f16_to_f32(uint16_t h);
static inline float mdl_bf16_to_f32(uint16_t h)
{
    union { uint32_t u; float f; } v = {.u = (uint32_t)h << 16};
    return v.f;
}

/* Whether the AVX2 versions are in use (for benchmarks and tests); set_simd(false) forces
 * the portable ones (tests compare the two). */
bool mdl__tf_simd(void);
void mdl__tf_set_simd(bool on);

#endif
