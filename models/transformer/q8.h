/* Q8_0 weights and the int8 kernels that read them.
 *
 * A Q8_0 matrix [rows, cols] cuts each row into nb = ceil(cols / 32) blocks of 32 values;
 * block j of row r is 32 int8 q (the last block of a row zero-padded) and one IEEE binary16
 * scale d, value = d * q. The int8 values are one array [rows][nb * 32] and the scales
 * another [rows][nb], so every block starts 32-byte aligned for vector loads. That is
 * 34 bytes per 32 weights (1.06 bytes each, against 4 for F32 and 2 for F16), the same
 * numbers as llama.cpp's Q8_0, in a layout of our own.
 *
 * A matmul on Q8_0 weights takes its inputs quantized the same way per 32-block (float
 * scales), so each block's product is an exact int32 dot product; only the scale products
 * and the sum over blocks are float32. Quantization rounds to nearest (ties to even) and
 * clamps to [-127, 127] with d = max |v| / 127 per block, so a round trip is within d / 2.
 *
 * Every routine has a portable version and an AVX2 one picked at run time as in kernels.h
 * (mdl__tf_set_simd switches both). Any thread; no state. */
#ifndef MDL_TRANSFORMER_Q8_H
#define MDL_TRANSFORMER_Q8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels.h"

#define MDL_Q8_BLOCK 32

static inline size_t mdl_q8_blocks(size_t n) { return (n + MDL_Q8_BLOCK - 1) / MDL_Q8_BLOCK; }

/* Round-to-nearest-even binary32 -> binary16 for finite |f| <= 65504 (larger gives inf). */
uint16_t mdl_f32_to_f16(float f);

/* Quantizes one row of n values of dtype t (F32, F16 or BF16) into q[nb * 32] (the tail of
 * the last block set to 0) and f16 scales d[nb]. 0, or -ERANGE if a value is not finite or
 * a block's scale would not fit in binary16 (|v| > 8.3e6): nothing a real model holds. */
int mdl__q8_quantize_row(const void *src, mdl_dtype_t t, size_t n, int8_t *q, uint16_t *d);

/* dst[0..n) = d * q, the inverse of mdl__q8_quantize_row up to rounding. */
void mdl__q8_dequantize_row(const int8_t *q, const uint16_t *d, size_t n, float *dst);

/* Activations: x[0..n) -> q[nb * 32] (zero-padded) and float32 scales d[nb]. The portable
 * and AVX2 versions give identical bytes. */
void mdl__q8_quantize_act(const float *x, size_t n, int8_t *q, float *d);

/* dst[0..n) = d * q for activations quantized by mdl__q8_quantize_act. */
void mdl__q8_dequantize_act(const int8_t *q, const float *d, size_t n, float *dst);

/* From this many inputs on, mdl__q8_matmul widens a few weight rows at a time to float32
 * and multiplies them with float inputs by mdl__tf_matmul (the widening is paid once for
 * all inputs, and float FMAs on rows in L2 outrun the int8 path's per-input work); below
 * it, it takes the inputs quantized. Callers pass the float path inputs that went through
 * mdl__q8_quantize_act and mdl__q8_dequantize_act, so both paths compute the same products
 * (up to float rounding) and a sequence's logits do not depend on what shares its batch. */
#define MDL_Q8_FLOAT_MIN_BATCH 16
/* Rows widened at a time on that path: 16 rows of a 2048-wide matrix are 128 KB, which
 * stay in L2 while every input passes over them. */
#define MDL_Q8_FLOAT_ROWS 16

/* For output rows [r0, r1) of the Q8_0 matrix W (W->q8_d set) and B inputs x_b:
 *   y[b*y_stride + o] = (accumulate ? y[...] : 0) + bias[o] (if bias) + sum_i W[o,i] x_b[i].
 * B < MDL_Q8_FLOAT_MIN_BATCH reads the inputs quantized by mdl__q8_quantize_act, input b
 * at xq + b * nb * 32 and xd + b * nb (nb = blocks of W->cols), each weight row once per 8
 * inputs; larger B reads the float inputs x + b * x_stride (xq, xd unused) and uses
 * scratch, MDL_Q8_FLOAT_ROWS x W->cols floats of the caller's (one per thread). */
void mdl__q8_matmul(const mdl_tf_mat_t *W, const float *bias, const float *x, size_t x_stride,
                    const int8_t *xq, const float *xd, float *scratch, float *y, size_t y_stride,
                    size_t B, size_t r0, size_t r1, bool accumulate);

#endif
