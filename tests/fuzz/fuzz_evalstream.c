/* libFuzzer target: the :score-auc / :rank body reader (handlers/evalstream.c) in all
 * three formats, fed in random pieces as the HTTP layer hands them over. Byte 0 picks the
 * format, whether a model scores "features" rows, and the row limit; byte 1 seeds the
 * piece sizes. The caller's contract is followed exactly: unconsumed bytes are fed again
 * with the next piece. Any result is fine except a crash, a code that is not documented,
 * a consumed count past the input, or columns that disagree in length. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/evalstream.h"
#include "tests/fuzz/fuzz_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int codes[] = {-EBADMSG, -EPROTO, -E2BIG, -ENOMEM};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mdl_eval_format_t format;
    mdl_evalstream_t *s;
    mdl_eval_columns_t cols;
    mdl_err_t err = {0};
    uint32_t seed;
    char *held = NULL;
    size_t held_len = 0, pos = 2;
    long rc = 0;

    if (size < 2)
        return 0;
    format = (mdl_eval_format_t)(data[0] % 3);
    seed = data[1] * 2654435761u + 1;
    s = mdl_evalstream_new(format, (data[0] & 4) ? fuzz_model() : NULL, 1 + (data[0] >> 3) * 8);
    if (!s)
        return 0;
    held = malloc(size);
    if (!held)
        abort();
    for (;;) {
        size_t piece;
        bool final;
        seed = seed * 1103515245u + 12345u;
        piece = (seed >> 16) % 64;
        if (piece > size - pos)
            piece = size - pos;
        memcpy(held + held_len, data + pos, piece);
        held_len += piece;
        pos += piece;
        final = pos == size;
        rc = mdl_evalstream_feed(s, held, held_len, final, &err);
        if (rc < 0)
            break;
        if ((size_t)rc > held_len)
            abort();
        memmove(held, held + rc, held_len - (size_t)rc);
        held_len -= (size_t)rc;
        if (final)
            break;
    }
    if (rc >= 0) {
        rc = mdl_evalstream_finish(s, &cols, &err);
        if (rc == 0) {
            /* every column is as long as the rows it claims */
            volatile double sink = 0;
            for (size_t i = 0; i < cols.n_rows * cols.width; i++)
                sink += cols.scores[i];
            for (size_t i = 0; i < cols.n_rows; i++) {
                sink += cols.labels[i];
                if (cols.weights)
                    sink += cols.weights[i];
                if (cols.groups && cols.groups[i] >= cols.n_groups)
                    abort();
            }
            (void)sink;
        }
    }
    if (rc < 0)
        fuzz_check_err((int)rc, &err, codes, 4);
    free(held);
    mdl_evalstream_free(s);
    return 0;
}
