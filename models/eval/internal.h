/* Shared by the files of models/eval: the score-to-key mapping, the radix sort and the
 * merge of sorted positive/negative keys that yields ROC-AUC and average precision. */
#ifndef MDL_EVAL_INTERNAL_H
#define MDL_EVAL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "metrics.h"

/* A finite double as a uint64 that sorts in the same order; -0.0 and +0.0 map to one key
 * (sklearn's tie detection, np.diff(score) != 0, treats them as equal). */
static inline uint64_t mdl__eval_key(double s)
{
    uint64_t u;
    if (s == 0)
        s = 0;
    memcpy(&u, &s, sizeof u);
    return (u & UINT64_C(0x8000000000000000)) ? ~u : u | UINT64_C(0x8000000000000000);
}

/* Sorts keys[0..n) ascending, moving payload[0..n) along when it is not NULL; with a
 * payload the sort is stable (equal keys keep their order). tmp_keys (n) and tmp_payload
 * (n, when payload is given) are scratch. n < 2^32. Returns 0 or -ENOMEM. */
int mdl__eval_sort(uint64_t *keys, double *payload, size_t n, uint64_t *tmp_keys,
                   double *tmp_payload);

/* The sort scratch of a scoring pass over n rows: keys and tmp (n each) always, w and tw
 * (n each) when weighted, else NULL. 0, or -ENOMEM with everything NULL. */
typedef struct mdl__eval_scratch {
    uint64_t *keys, *tmp;
    double *w, *tw;
} mdl__eval_scratch_t;

int mdl__eval_scratch_alloc(mdl__eval_scratch_t *s, size_t n, int weighted);
void mdl__eval_scratch_free(mdl__eval_scratch_t *s);

/* Pair statistics of ascending sorted positive keys pk[0..np) and negative keys
 * nk[0..nn), with weights pw/nw (NULL = 1 each). */
typedef struct mdl__eval_pairs {
    double auc;          /* plain: counts only; NaN if a class is empty */
    double auc_weighted; /* with weights; NaN if a class has zero weight */
    double ap;           /* average precision with weights; NaN if no positive weight */
} mdl__eval_pairs_t;

void mdl__eval_pairs(const uint64_t *pk, const double *pw, size_t np, const uint64_t *nk,
                     const double *nw, size_t nn, mdl__eval_pairs_t *ret);

/* Checks what every task shares: at least one row, at most MDL_EVAL_MAX_ROWS, the lengths
 * (scores = rows x score_width), finite scores, finite non-negative weights, group
 * indices < n_groups. Labels are the caller's. 0 or -EPROTO / -E2BIG with reterr. */
int mdl__eval_check(const mdl_eval_input_t *in, size_t score_width, mdl_err_t *reterr);

#endif
