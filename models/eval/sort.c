/* Radix sorts of uint64 keys, with an optional double payload moved along.
 *
 * Why radix: ROC-AUC, average precision, group AUC and NDCG all need rows ranked by
 * score, and at 10^7 rows a comparison sort dominates the evaluation. Keys come from
 * mdl__eval_key, so sorting the integers sorts the scores.
 *   - tiny inputs (<= 32): insertion sort; up to 1024: merge sort;
 *   - up to 64 Ki keys (group and query segments, MSD buckets): LSD with 8-bit digits and
 *     a stack histogram;
 *   - larger, keys alone (the AUC core): MSD first, see msd();
 *   - larger, with a payload: LSD with 11-bit digits (stable, which ranking needs).
 * LSD counts all digit histograms in one read of the keys and skips a pass whose digit
 * is the same for every key (the sign and high exponent bits of scores in [0, 1], say).
 * Every path with a payload is stable. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define INSERTION_MAX 32
#define MERGE_MAX 1024
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

/* Bottom-up merge sort for a few hundred keys (a typical group or query), where the 8-bit
 * LSD's 8 x 256 histogram work outweighs the keys: insertion-sorted runs of 16, then
 * merges between the arrays. Stable: on equal keys the left run goes first. */
static void merge_sort(uint64_t *keys, double *payload, size_t n, uint64_t *tmp_keys,
                       double *tmp_payload)
{
    const size_t run = 16;
    for (size_t a = 0; a < n; a += run)
        insertion_sort(keys + a, payload ? payload + a : NULL, n - a < run ? n - a : run);
    uint64_t *sk = keys, *dk = tmp_keys;
    double *sp = payload, *dp = tmp_payload;
    for (size_t w = run; w < n; w *= 2) {
        for (size_t a = 0; a < n; a += 2 * w) {
            size_t m = a + w < n ? a + w : n, e = a + 2 * w < n ? a + 2 * w : n;
            size_t i = a, j = m, o = a;
            while (i < m && j < e) {
                size_t from = sk[j] < sk[i] ? j++ : i++;
                dk[o] = sk[from];
                if (sp)
                    dp[o] = sp[from];
                o++;
            }
            for (; i < m; i++, o++) {
                dk[o] = sk[i];
                if (sp)
                    dp[o] = sp[i];
            }
            for (; j < e; j++, o++) {
                dk[o] = sk[j];
                if (sp)
                    dp[o] = sp[j];
            }
        }
        uint64_t *t = sk;
        sk = dk;
        dk = t;
        double *tp = sp;
        sp = dp;
        dp = tp;
    }
    if (sk != keys) {
        memcpy(keys, sk, n * sizeof *keys);
        if (payload)
            memcpy(payload, sp, n * sizeof *payload);
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

/* Keys alone, many of them: most-significant-digit first. One pass spreads the keys by the
 * 11 bits below the highest bit in which they differ; every bucket is then sorted on its
 * own, by LSD passes while it is small enough to stay in cache, else by recursing. So the
 * 10^7-key case makes one or two scatters through main memory instead of six. Each level
 * takes at least 11 bits off the varying range, so the recursion is at most 6 deep (8 KiB
 * of stack per level). */
static void msd(uint64_t *keys, uint64_t *tmp, size_t n, uint32_t *hist)
{
    uint64_t lo = keys[0], hi = keys[0];
    for (size_t i = 1; i < n; i++) {
        lo = keys[i] < lo ? keys[i] : lo;
        hi = keys[i] > hi ? keys[i] : hi;
    }
    if (lo == hi)
        return;
    const unsigned top = 64 - (unsigned)__builtin_clzll(lo ^ hi); /* bits that vary: [0, top) */
    const unsigned shift = top > 11 ? top - 11 : 0;
    const uint64_t mask = ((uint64_t)1 << (top - shift)) - 1;
    uint32_t *h = hist; /* 2048 counts, then the next free slot per bucket; free again
                           once the keys are spread, for the buckets' sorts */
    memset(h, 0, sizeof(uint32_t) << 11);
    for (size_t i = 0; i < n; i++)
        h[(keys[i] >> shift) & mask]++;
    uint32_t start[1 << 11], sum = 0;
    for (size_t d = 0; d <= mask; d++) {
        start[d] = sum;
        sum += h[d];
        h[d] = start[d];
    }
    for (size_t i = 0; i < n; i++)
        tmp[h[(keys[i] >> shift) & mask]++] = keys[i];
    memcpy(keys, tmp, n * sizeof *keys);
    for (size_t d = 0; d <= mask; d++) {
        size_t a = start[d], m = (d == mask ? n : start[d + 1]) - a;
        if (m <= INSERTION_MAX) {
            insertion_sort(keys + a, NULL, m);
        } else if (m <= MERGE_MAX) {
            merge_sort(keys + a, NULL, m, tmp, NULL);
        } else if (m <= SMALL_MAX) {
            memset(hist, 0, sizeof(uint32_t) << 11); /* 8 passes x 256 counts fit */
            radix(keys + a, NULL, m, tmp, NULL, 8, hist);
        } else {
            msd(keys + a, tmp, m, hist);
        }
    }
}

int mdl__eval_sort(uint64_t *keys, double *payload, size_t n, uint64_t *tmp_keys,
                   double *tmp_payload)
{
    if (n <= INSERTION_MAX) {
        insertion_sort(keys, payload, n);
        return 0;
    }
    if (n <= MERGE_MAX) {
        merge_sort(keys, payload, n, tmp_keys, tmp_payload);
        return 0;
    }
    if (n <= SMALL_MAX) {
        uint32_t hist[8 << 8];
        memset(hist, 0, sizeof hist);
        radix(keys, payload, n, tmp_keys, tmp_payload, 8, hist);
        return 0;
    }
    if (!payload) {
        uint32_t *hist = malloc(sizeof(uint32_t) << 11);
        if (!hist)
            return -ENOMEM;
        msd(keys, tmp_keys, n, hist);
        free(hist);
        return 0;
    }
    /* with a payload (stable order matters): 11-bit LSD digits, 6 passes, 2048 buckets */
    uint32_t *hist = calloc((size_t)6 << 11, sizeof *hist);
    if (!hist)
        return -ENOMEM;
    radix(keys, payload, n, tmp_keys, tmp_payload, 11, hist);
    free(hist);
    return 0;
}

int mdl__eval_scratch_alloc(mdl__eval_scratch_t *s, size_t n, int weighted)
{
    s->keys = malloc(n * sizeof *s->keys);
    s->tmp = malloc(n * sizeof *s->tmp);
    s->w = weighted ? malloc(n * sizeof *s->w) : NULL;
    s->tw = weighted ? malloc(n * sizeof *s->tw) : NULL;
    if (!s->keys || !s->tmp || (weighted && (!s->w || !s->tw))) {
        mdl__eval_scratch_free(s);
        return -ENOMEM;
    }
    return 0;
}

void mdl__eval_scratch_free(mdl__eval_scratch_t *s)
{
    free(s->keys);
    free(s->tmp);
    free(s->w);
    free(s->tw);
    memset(s, 0, sizeof *s);
}
