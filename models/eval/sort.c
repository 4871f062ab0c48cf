/* A stable LSD radix sort of uint64 keys with an optional double payload.
 *
 * Why radix: ROC-AUC, average precision, group AUC and NDCG all need rows ranked by
 * score, and at 10^7 rows a comparison sort dominates the evaluation. Keys come from
 * mdl__eval_key, so sorting the integers sorts the scores. All digit histograms are
 * counted in one read of the keys; a pass whose digit is the same for every key (the
 * sign and high exponent bits of scores in [0, 1], say) is skipped. Small inputs (group
 * segments) use 8-bit digits with a stack histogram, tiny ones insertion sort. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define INSERTION_MAX 32
#define SMALL_MAX 65536

static void insertion_sort(uint64_t *k, double *p, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        uint64_t key = k[i];
        double pv = p ? p[i] : 0;
        size_t j = i;
        while (j > 0 && k[j - 1] > key) {
            k[j] = k[j - 1];
            if (p)
                p[j] = p[j - 1];
            j--;
        }
        k[j] = key;
        if (p)
            p[j] = pv;
    }
}

/* LSD passes of `bits`-bit digits using histograms hist[n_pass << bits] (zeroed). */
static void radix(uint64_t *keys, double *payload, size_t n, uint64_t *tmp_keys,
                  double *tmp_payload, unsigned bits, uint32_t *hist)
{
    const unsigned n_pass = (64 + bits - 1) / bits;
    const size_t n_digits = (size_t)1 << bits;
    const uint64_t mask = n_digits - 1;

    for (size_t i = 0; i < n; i++) {
        uint64_t k = keys[i];
        for (unsigned p = 0; p < n_pass; p++)
            hist[(p << bits) + ((k >> (p * bits)) & mask)]++;
    }

    uint64_t *src = keys, *dst = tmp_keys;
    double *psrc = payload, *pdst = tmp_payload;
    for (unsigned p = 0; p < n_pass; p++) {
        uint32_t *h = hist + (p << bits);
        const unsigned shift = p * bits;
        if (h[(src[0] >> shift) & mask] == n)
            continue; /* every key has this digit: the pass would move nothing */
        uint32_t sum = 0;
        for (size_t d = 0; d < n_digits; d++) {
            uint32_t c = h[d];
            h[d] = sum;
            sum += c;
        }
        if (psrc) {
            for (size_t i = 0; i < n; i++) {
                uint32_t at = h[(src[i] >> shift) & mask]++;
                dst[at] = src[i];
                pdst[at] = psrc[i];
            }
            double *pt = psrc;
            psrc = pdst;
            pdst = pt;
        } else {
            for (size_t i = 0; i < n; i++)
                dst[h[(src[i] >> shift) & mask]++] = src[i];
        }
        uint64_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != keys) {
        memcpy(keys, src, n * sizeof *keys);
        if (payload)
            memcpy(payload, psrc, n * sizeof *payload);
    }
}

int mdl__eval_sort(uint64_t *keys, double *payload, size_t n, uint64_t *tmp_keys,
                   double *tmp_payload)
{
    if (n <= INSERTION_MAX) {
        insertion_sort(keys, payload, n);
        return 0;
    }
    if (n <= SMALL_MAX) {
        uint32_t hist[8 << 8];
        memset(hist, 0, sizeof hist);
        radix(keys, payload, n, tmp_keys, tmp_payload, 8, hist);
        return 0;
    }
    /* 11-bit digits: 6 passes, 2048 buckets (48 KiB of counts) */
    uint32_t *hist = calloc((size_t)6 << 11, sizeof *hist);
    if (!hist)
        return -ENOMEM;
    radix(keys, payload, n, tmp_keys, tmp_payload, 11, hist);
    free(hist);
    return 0;
}
