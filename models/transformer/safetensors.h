/* Reader for Hugging Face safetensors weight files, single or sharded, memory-mapped.
 *
 * File layout (little-endian):
 *   bytes 0..8        u64 N, the length of the JSON header
 *   bytes 8..8+N      UTF-8 JSON object: tensor name -> {"dtype": "F32"|"F16"|"BF16"|...,
 *                     "shape": [d0, d1, ...], "data_offsets": [begin, end]}, plus an optional
 *                     "__metadata__" object of strings that is not a tensor; keys in any order
 *   bytes 8+N..       the data section; a tensor's bytes are [8+N+begin, 8+N+end), row-major
 * A sharded model has model.safetensors.index.json: {"metadata": {...}, "weight_map":
 * {tensor name -> shard file name in the same folder}}.
 *
 * Everything is validated before a tensor is exposed: header length bounded (at most
 * MDL_ST_MAX_HEADER_BYTES and inside the file), dtype one of F32/F16/BF16, at most
 * MDL_ST_MAX_DIMS dims, element count overflow-checked, begin <= end inside the data
 * section, end - begin == elements x dtype size, no two tensors overlapping, no name twice.
 * Every refusal is -EBADMSG with a message naming the file and the tensor.
 *
 * Files are mapped read-only (MAP_PRIVATE); tensors point into the mapping, which lives as
 * long as the mdl_st_t. As with every mmap, a file truncated in place while mapped can
 * fault: publish new weights by writing a new file and renaming it. A loaded mdl_st_t is
 * immutable and may be read from any thread. */
#ifndef MDL_TRANSFORMER_SAFETENSORS_H
#define MDL_TRANSFORMER_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "models/err.h"

#define MDL_ST_MAX_HEADER_BYTES ((uint64_t)100 << 20)
#define MDL_ST_MAX_DIMS 8
#define MDL_ST_MAX_SHARDS 1024
#define MDL_ST_MAX_INDEX_BYTES ((size_t)64 << 20)

/* Element types the transformer reads as stored. */
typedef enum mdl_dtype {
    MDL_DTYPE_F32 = 0,
    MDL_DTYPE_F16,  /* IEEE binary16 */
    MDL_DTYPE_BF16, /* upper half of an IEEE binary32 */
} mdl_dtype_t;

size_t mdl_dtype_size(mdl_dtype_t t);
const char *mdl_dtype_name(mdl_dtype_t t); /* "F32", "F16", "BF16" */

typedef struct mdl_st_tensor {
    const char *name;               /* owned by the set */
    mdl_dtype_t dtype;
    unsigned n_dims;                /* 0 = scalar */
    uint64_t shape[MDL_ST_MAX_DIMS];
    uint64_t numel;                 /* product of shape */
    const void *data;               /* n_bytes inside the mapping (alignment as stored) */
    size_t n_bytes;
    const char *file;               /* file holding it, for messages; owned by the set */
} mdl_st_tensor_t;

typedef struct mdl_st mdl_st_t;

/* Maps `path`: a .safetensors file, or a model.safetensors.index.json whose shards are
 * mapped from the same folder (each shard must hold the tensors the weight_map gives it).
 * max_bytes bounds each file (0 = no bound). Returns 0 and the set in *ret, or -EBADMSG /
 * -ENOENT / -E2BIG / -ENOMEM with reterr. Any thread; no logging. */
int mdl_st_open(const char *path, size_t max_bytes, mdl_st_t **ret, mdl_err_t *reterr);

/* Same validation on bytes in memory (borrowed: they must outlive the set). `label` names
 * the "file" in messages. For tests and the fuzz target. */
int mdl_st_open_mem(const void *data, size_t len, const char *label, mdl_st_t **ret,
                    mdl_err_t *reterr);

/* Unmaps and frees; NULL-safe; returns NULL. */
mdl_st_t *mdl_st_free(mdl_st_t *st);

/* The tensor named `name`, or NULL. O(log n). */
const mdl_st_tensor_t *mdl_st_find(const mdl_st_t *st, const char *name);

/* Tensors in name order: count and i-th. */
size_t mdl_st_count(const mdl_st_t *st);
const mdl_st_tensor_t *mdl_st_at(const mdl_st_t *st, size_t i);

/* Total bytes mapped (all files). */
size_t mdl_st_mapped_bytes(const mdl_st_t *st);

#endif
