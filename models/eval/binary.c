/* Binary metrics: one pass over the rows for the counts, losses, confusion counts and
 * calibration sums (and the keys for the ranking metrics), then the sorted merge for
 * ROC-AUC and average precision, then group AUC from a counting sort by group. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "internal.h"

void mdl_eval_opts_default(mdl_eval_opts_t *opts)
{
    opts->threshold = 0.5;
    opts->n_bins = 10;
    opts->k = 0;
}

int mdl__eval_check(const mdl_eval_input_t *in, size_t score_width, mdl_err_t *reterr)
{
    size_t n = in->n_labels;
    if (!in->labels || n == 0)
        return mdl_err_set(reterr, -EPROTO, "no rows: labels are empty");
    if (n > MDL_EVAL_MAX_ROWS)
        return mdl_err_set(reterr, -E2BIG, "%zu rows, at most %zu", n, MDL_EVAL_MAX_ROWS);
    if (!in->scores || in->n_scores / score_width != n || in->n_scores % score_width != 0) {
        if (score_width == 1)
            return mdl_err_set(reterr, -EPROTO, "length mismatch: %zu labels but %zu scores", n,
                               in->scores ? in->n_scores : 0);
        return mdl_err_set(reterr, -EPROTO,
                           "length mismatch: %zu labels need %zu x %zu scores, got %zu", n, n,
                           score_width, in->scores ? in->n_scores : 0);
    }
    if (in->weights && in->n_weights != n)
        return mdl_err_set(reterr, -EPROTO, "length mismatch: %zu labels but %zu weights", n,
                           in->n_weights);
    if (in->groups && in->n_group_ids != n)
        return mdl_err_set(reterr, -EPROTO, "length mismatch: %zu labels but %zu group ids", n,
                           in->n_group_ids);
    if (in->groups && in->n_groups > MDL_EVAL_MAX_ROWS)
        return mdl_err_set(reterr, -E2BIG, "%zu groups, at most %zu", in->n_groups,
                           MDL_EVAL_MAX_ROWS);
    for (size_t i = 0; i < in->n_scores; i++)
        if (!isfinite(in->scores[i]))
            return mdl_err_set(reterr, -EPROTO, "scores[%zu] is %g: scores must be finite", i,
                               in->scores[i]);
    if (in->weights)
        for (size_t i = 0; i < n; i++)
            if (!isfinite(in->weights[i]) || in->weights[i] < 0)
                return mdl_err_set(reterr, -EPROTO,
                                   "weights[%zu] is %g: weights must be finite and >= 0", i,
                                   in->weights[i]);
    if (in->groups)
        for (size_t i = 0; i < n; i++)
            if (in->groups[i] >= in->n_groups)
                return mdl_err_set(reterr, -EPROTO, "groups[%zu] is %u: not below n_groups %zu",
                                   i, (unsigned)in->groups[i], in->n_groups);
    return 0;
}

static mdl_metric_t defined(double v)
{
    return (mdl_metric_t){v, NULL};
}

static mdl_metric_t undefined(const char *reason)
{
    return (mdl_metric_t){NAN, reason};
}

static mdl_metric_t ratio(double num, double den, const char *reason)
{
    return den > 0 ? defined(num / den) : undefined(reason);
}

/* np.linspace(0, 1, n_bins + 1)[i], as numpy computes it: i * (1 / n_bins). */
static double bin_edge(unsigned i, unsigned n_bins)
{
    return i >= n_bins ? 1.0 : (double)i * (1.0 / (double)n_bins);
}

/* np.searchsorted(edges[1:-1], s): the number of inner edges below s. */
static unsigned bin_of(double s, unsigned n_bins)
{
    double g = floor(s * n_bins);
    unsigned b = g <= 0 ? 0 : g >= n_bins - 1 ? n_bins - 1 : (unsigned)g;
    while (b > 0 && bin_edge(b, n_bins) >= s)
        b--;
    while (b + 1 < n_bins && bin_edge(b + 1, n_bins) < s)
        b++;
    return b;
}

/* Group AUC: rows counted into (group, label) segments, each sorted and merged. keys, tmp
 * (and w, tw when weighted) are n-long scratch the caller has finished with. */
static int group_auc(const mdl_eval_input_t *in, mdl_eval_binary_t *ret, uint64_t *keys,
                     uint64_t *tmp, double *w, double *tw, mdl_err_t *reterr)
{
    const size_t n = in->n_labels, n_seg = 2 * in->n_groups;
    const double *wt = in->weights;
    int rc = -ENOMEM;
    size_t *off = calloc(n_seg + 1, sizeof *off), *cur = malloc((n_seg + 1) * sizeof *cur);
    if (!off || !cur) {
        mdl_err_set(reterr, rc, "out of memory for group AUC over %zu rows", n);
        goto out;
    }
    /* segment 2g: negatives of group g, 2g + 1: its positives */
    for (size_t r = 0; r < n; r++)
        off[2 * (size_t)in->groups[r] + (in->labels[r] == 1) + 1]++;
    for (size_t s = 0; s < n_seg; s++)
        off[s + 1] += off[s];
    memcpy(cur, off, (n_seg + 1) * sizeof *cur);
    for (size_t r = 0; r < n; r++) {
        size_t at = cur[2 * (size_t)in->groups[r] + (in->labels[r] == 1)]++;
        keys[at] = mdl__eval_key(in->scores[r]);
        if (wt)
            w[at] = wt[r];
    }

    double num = 0, den = 0;
    for (size_t g = 0; g < in->n_groups; g++) {
        size_t a = off[2 * g], b = off[2 * g + 1], c = off[2 * g + 2];
        if (a == c) {
            ret->gauc_groups_empty++;
            continue;
        }
        if (a == b || b == c) {
            ret->gauc_groups_skipped++;
            continue;
        }
        if ((rc = mdl__eval_sort(keys + a, w ? w + a : NULL, b - a, tmp, tw)) < 0 ||
            (rc = mdl__eval_sort(keys + b, w ? w + b : NULL, c - b, tmp, tw)) < 0) {
            mdl_err_set(reterr, rc, "out of memory sorting group %zu", g);
            goto out;
        }
        mdl__eval_pairs_t pr;
        mdl__eval_pairs(keys + b, w ? w + b : NULL, c - b, keys + a, w ? w + a : NULL, b - a, &pr);
        if (isnan(pr.auc_weighted)) {
            ret->gauc_groups_skipped++;
            continue;
        }
        double size = 0;
        if (w)
            for (size_t i = a; i < c; i++)
                size += w[i];
        else
            size = (double)(c - a);
        num += size * pr.auc_weighted;
        den += size;
        ret->gauc_groups++;
    }
    ret->gauc = ret->gauc_groups ? defined(num / den) : undefined("no group has both classes");
    rc = 0;
out:
    free(off);
    free(cur);
    return rc;
}

int mdl_eval_binary(const mdl_eval_input_t *in, const mdl_eval_opts_t *opts,
                    mdl_eval_binary_t *ret, mdl_err_t *reterr)
{
    if (!isfinite(opts->threshold))
        return mdl_err_set(reterr, -EINVAL, "threshold %g is not finite", opts->threshold);
    if (opts->n_bins < 1 || opts->n_bins > MDL_EVAL_MAX_BINS)
        return mdl_err_set(reterr, -EINVAL, "n_bins %u: between 1 and %d", opts->n_bins,
                           MDL_EVAL_MAX_BINS);
    int rc = mdl__eval_check(in, 1, reterr);
    if (rc < 0)
        return rc;
    const size_t n = in->n_labels;
    for (size_t r = 0; r < n; r++)
        if (in->labels[r] != 0 && in->labels[r] != 1)
            return mdl_err_set(reterr, -EPROTO, "labels[%zu] is %g: binary labels are 0 or 1", r,
                               in->labels[r]);

    mdl_eval_binary_t res;
    memset(&res, 0, sizeof res);
    res.n_rows = n;
    const unsigned nb = opts->n_bins;
    const double *wt = in->weights;
    rc = -ENOMEM;
    mdl__eval_scratch_t scratch;
    int nomem = mdl__eval_scratch_alloc(&scratch, n, wt != NULL) < 0;
    uint64_t *keys = scratch.keys, *tmp = scratch.tmp;
    double *w = scratch.w, *tw = scratch.tw;
    if (nomem) {
        mdl_err_set(reterr, rc, "out of memory for %zu rows", n);
        goto out;
    }

    /* One pass: sums in long double, so 10^7 terms lose nothing that shows at 1e-12. */
    long double loss = 0, sq = 0, tp = 0, fp = 0, tn = 0, fn = 0, wsum = 0;
    long double bw[MDL_EVAL_MAX_BINS] = {0}, bs[MDL_EVAL_MAX_BINS] = {0},
                bp[MDL_EVAL_MAX_BINS] = {0};
    bool probs = true;
    size_t np = 0, nn = 0;
    for (size_t r = 0; r < n; r++) {
        const double s = in->scores[r], x = wt ? wt[r] : 1.0;
        const bool pos = in->labels[r] == 1;
        const size_t at = pos ? np++ : n - 1 - nn++;
        keys[at] = mdl__eval_key(s);
        if (w)
            w[at] = x;
        wsum += x;
        if (s >= opts->threshold) {
            if (pos)
                tp += x;
            else
                fp += x;
        } else {
            if (pos)
                fn += x;
            else
                tn += x;
        }
        if (!(s >= 0 && s <= 1)) {
            probs = false;
            continue;
        }
        /* log_loss: clip, append 1 - p, renormalise by the row sum */
        double pc = s < DBL_EPSILON ? DBL_EPSILON : s > 1 - DBL_EPSILON ? 1 - DBL_EPSILON : s;
        double rs = (1 - pc) + pc;
        loss -= x * log((pos ? pc : 1 - pc) / rs);
        sq += x * ((pos ? 1 : 0) - s) * ((pos ? 1 : 0) - s);
        unsigned b = bin_of(s, nb);
        res.bins[b].count++;
        bw[b] += x;
        bs[b] += x * s;
        if (pos)
            bp[b] += x;
    }
    res.n_pos = np;
    res.n_neg = nn;
    res.w_pos = (double)(tp + fn);
    res.w_neg = (double)(fp + tn);

    if ((rc = mdl__eval_sort(keys, w, np, tmp, tw)) < 0 ||
        (rc = mdl__eval_sort(keys + np, w ? w + np : NULL, nn, tmp, tw)) < 0) {
        mdl_err_set(reterr, rc, "out of memory sorting %zu rows", n);
        goto out;
    }
    mdl__eval_pairs_t pr;
    mdl__eval_pairs(keys, w, np, keys + np, w ? w + np : NULL, nn, &pr);
    const char *one_class = "only one class present in labels";
    res.roc_auc = np && nn ? defined(pr.auc) : undefined(one_class);
    if (!wt)
        res.roc_auc_weighted = undefined("no sample weights given");
    else if (!np || !nn)
        res.roc_auc_weighted = undefined(one_class);
    else
        res.roc_auc_weighted = isnan(pr.auc_weighted)
                                   ? undefined("one class has zero total weight")
                                   : defined(pr.auc_weighted);
    res.pr_auc = isnan(pr.ap) ? undefined("no positive rows (or all have zero weight)")
                              : defined(pr.ap);

    const char *not_probs = "scores are not probabilities (outside [0, 1])";
    const char *no_weight = "weights sum to zero";
    if (!probs) {
        res.logloss = res.brier = undefined(not_probs);
        res.calib_reason = not_probs;
    } else {
        res.logloss = ratio((double)loss, (double)wsum, no_weight);
        res.brier = ratio((double)sq, (double)wsum, no_weight);
        res.n_bins = nb;
        for (unsigned b = 0; b < nb; b++) {
            mdl_calib_bin_t *cb = &res.bins[b];
            cb->lo = bin_edge(b, nb);
            cb->hi = bin_edge(b + 1, nb);
            cb->weight = (double)bw[b];
            cb->mean_score = bw[b] > 0 ? (double)(bs[b] / bw[b]) : NAN;
            cb->pos_rate = bw[b] > 0 ? (double)(bp[b] / bw[b]) : NAN;
        }
    }
    if (!probs)
        memset(res.bins, 0, sizeof res.bins);
    res.accuracy = ratio((double)(tp + tn), (double)wsum, no_weight);
    res.precision = ratio((double)tp, (double)(tp + fp), "no row predicted positive");
    res.recall = ratio((double)tp, (double)(tp + fn), "no positive rows");
    res.f1 = ratio((double)(2 * tp), (double)(2 * tp + fp + fn),
                   "no positive rows and none predicted positive");

    if (in->groups) {
        if ((rc = group_auc(in, &res, keys, tmp, w, tw, reterr)) < 0)
            goto out;
    } else {
        res.gauc = undefined("no groups given");
    }
    *ret = res;
    rc = 0;
out:
    mdl__eval_scratch_free(&scratch);
    return rc;
}
