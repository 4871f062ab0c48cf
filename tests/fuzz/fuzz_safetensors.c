/* libFuzzer target: the safetensors header reader (models/transformer/safetensors.c) on
 * arbitrary bytes. A file either loads, and then every tensor it exposes lies inside the
 * input with exactly numel x dtype-size bytes and no two overlap (each byte is read here,
 * so ASan sees any escape), or it is refused with -EBADMSG / -ENOMEM and a message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/transformer/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mdl_st_t *st = NULL;
    mdl_err_t err = {0};
    int r = mdl_st_open_mem(data, size, "fuzz.safetensors", &st, &err);
    volatile uint8_t sink = 0;

    if (r < 0) {
        if ((r != -EBADMSG && r != -ENOMEM) || !err.msg[0])
            abort();
        return 0;
    }
    for (size_t i = 0; i < mdl_st_count(st); i++) {
        const mdl_st_tensor_t *t = mdl_st_at(st, i);
        const uint8_t *p = t->data;
        if (p < data || p + t->n_bytes > data + size || t->n_bytes != t->numel * mdl_dtype_size(t->dtype) ||
            mdl_st_find(st, t->name) != t)
            abort();
        for (size_t j = 0; j < t->n_bytes; j++)
            sink ^= p[j];
    }
    (void)sink;
    mdl_st_free(st);
    return 0;
}
