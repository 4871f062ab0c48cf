/* NDCG@k and MAP@k per query. Rows are counted into their query's segment in input
 * order, each segment is sorted by descending score with a stable sort (ties keep input
 * order, which MAP@k uses; NDCG averages over tie blocks so the order inside a block does
 * not matter), and the ideal ordering comes from sorting the segment's labels. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "internal.h"

/* Inverse of mdl__eval_key for keys of non-negative doubles. */
static double key_value(uint64_t k)
{
    uint64_t u = k & ~UINT64_C(0x8000000000000000);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

int mdl_eval_ranking(const mdl_eval_input_t *in, const mdl_eval_opts_t *opts,
                     mdl_eval_ranking_t *ret, mdl_err_t *reterr)
{
    int rc = mdl__eval_check(in, 1, reterr);
    if (rc < 0)
        return rc;
    if (!in->groups)
        return mdl_err_set(reterr, -EPROTO, "ranking metrics need a query (group) per row");
    const size_t n = in->n_labels, n_q = in->n_groups;
    for (size_t r = 0; r < n; r++)
        if (!isfinite(in->labels[r]) || in->labels[r] < 0)
            return mdl_err_set(reterr, -EPROTO,
                               "labels[%zu] is %g: relevance labels must be finite and >= 0", r,
                               in->labels[r]);

    mdl_eval_ranking_t res;
    memset(&res, 0, sizeof res);
    res.k = opts->k;
    rc = -ENOMEM;
    size_t *off = calloc(n_q + 1, sizeof *off), *cur = malloc((n_q + 1) * sizeof *cur);
    uint64_t *keys = malloc(n * sizeof *keys), *tmp = malloc(n * sizeof *tmp);
    double *lab = malloc(n * sizeof *lab), *tlab = malloc(n * sizeof *tlab);
    uint64_t *ideal = NULL;
    double *disc = NULL;
    if (!off || !cur || !keys || !tmp || !lab || !tlab)
        goto oom;
    for (size_t r = 0; r < n; r++)
        off[in->groups[r] + 1]++;
    size_t max_len = 0;
    for (size_t q = 0; q < n_q; q++) {
        if (off[q + 1] > max_len)
            max_len = off[q + 1];
        off[q + 1] += off[q];
    }
    memcpy(cur, off, (n_q + 1) * sizeof *cur);
    for (size_t r = 0; r < n; r++) {
        size_t at = cur[in->groups[r]]++;
        keys[at] = ~mdl__eval_key(in->scores[r]); /* ascending keys = descending scores */
        lab[at] = in->labels[r];
    }
    /* sklearn's discount, 1 / (log(i + 2) / log(2)), zero from rank k on */
    const size_t dlen = opts->k && opts->k < max_len ? opts->k : max_len;
    ideal = malloc(max_len * sizeof *ideal);
    disc = malloc((dlen ? dlen : 1) * sizeof *disc);
    if (!ideal || !disc)
        goto oom;
    for (size_t i = 0; i < dlen; i++)
        disc[i] = 1 / (log((double)i + 2) / log(2.0));

    double ndcg_sum = 0, map_sum = 0;
    size_t map_n = 0;
    for (size_t q = 0; q < n_q; q++) {
        const size_t a = off[q], m = off[q + 1] - a;
        if (m == 0)
            continue;
        res.n_queries++;
        uint64_t *kq = keys + a;
        double *lq = lab + a;
        if ((rc = mdl__eval_sort(kq, lq, m, tmp, tlab)) < 0)
            goto oom;

        /* DCG, ties averaged: a block of equal scores gets its mean gain times the sum
         * of the discounts of the ranks it occupies (only those below k count) */
        double dcg = 0;
        for (size_t i = 0; i < m && i < dlen;) {
            size_t j = i + 1;
            double gain = lq[i];
            while (j < m && kq[j] == kq[i])
                gain += lq[j++];
            double dsum = 0;
            for (size_t t = i; t < j && t < dlen; t++)
                dsum += disc[t];
            dcg += gain / (double)(j - i) * dsum;
            i = j;
        }
        /* ideal DCG: labels in descending order */
        for (size_t t = 0; t < m; t++)
            ideal[t] = ~mdl__eval_key(lq[t]);
        if ((rc = mdl__eval_sort(ideal, NULL, m, tmp, NULL)) < 0)
            goto oom;
        double idcg = 0;
        for (size_t t = 0; t < m && t < dlen; t++)
            idcg += key_value(~ideal[t]) * disc[t];
        if (idcg == 0)
            res.ndcg_all_irrelevant++;
        else
            ndcg_sum += dcg / idcg;

        /* AP@k */
        size_t rel = 0, hits = 0;
        double ap = 0;
        for (size_t t = 0; t < m; t++)
            rel += lq[t] > 0;
        if (rel == 0) {
            res.map_queries_skipped++;
            continue;
        }
        const size_t top = opts->k && opts->k < m ? opts->k : m;
        for (size_t t = 0; t < top; t++)
            if (lq[t] > 0)
                ap += (double)++hits / (double)(t + 1);
        map_sum += ap / (double)(opts->k && opts->k < rel ? opts->k : rel);
        map_n++;
    }
    res.ndcg = (mdl_metric_t){ndcg_sum / (double)res.n_queries, NULL};
    res.map = map_n ? (mdl_metric_t){map_sum / (double)map_n, NULL}
                    : (mdl_metric_t){NAN, "no query has a relevant row"};
    *ret = res;
    rc = 0;
    goto out;
oom:
    rc = mdl_err_set(reterr, -ENOMEM, "out of memory for ranking metrics over %zu rows", n);
out:
    free(off);
    free(cur);
    free(keys);
    free(tmp);
    free(lab);
    free(tlab);
    free(ideal);
    free(disc);
    return rc;
}
