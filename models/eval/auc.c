/* ROC-AUC and average precision from sorted keys, and the stand-alone AUC core.
 *
 * Positives and negatives are sorted apart (no label payload to move) and merged from the
 * top score down, one block of equal scores at a time:
 *   AUC  = sum over blocks of  neg_b * (pos_above + pos_b / 2)  / (P * N)
 *          (a positive-negative pair in one block counts one half: roc_auc_score's
 *          trapezoid over a curve with one point per distinct score)
 *   AP   = sum over blocks with pos_b > 0 of  (pos_b / P) * precision_b,
 *          precision_b = pos_at_or_above / rows_at_or_above
 *          (average_precision_score: recall steps times the precision at each threshold)
 * Plain counts go through integers (2 x area < 2^64 for n < 2^32), so the plain AUC is
 * the exact fraction rounded once. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "internal.h"

void mdl__eval_pairs(const uint64_t *pk, const double *pw, size_t np, const uint64_t *nk,
                     const double *nw, size_t nn, mdl__eval_pairs_t *ret)
{
    size_t i = np, j = nn;
    uint64_t area2 = 0, tp_n = 0;          /* plain: twice the area, positives above */
    double area_w = 0, tp_w = 0, fp_w = 0; /* weighted */
    double ap = 0;
    const int weighted = pw || nw;

    while (i > 0 || j > 0) {
        uint64_t v;
        if (i == 0)
            v = nk[j - 1];
        else if (j == 0)
            v = pk[i - 1];
        else
            v = pk[i - 1] > nk[j - 1] ? pk[i - 1] : nk[j - 1];
        size_t i0 = i, j0 = j;
        while (i > 0 && pk[i - 1] == v)
            i--;
        while (j > 0 && nk[j - 1] == v)
            j--;
        uint64_t cp = i0 - i, cn = j0 - j;
        area2 += cn * (2 * tp_n + cp);
        tp_n += cp;
        if (weighted) {
            double wp = 0, wn = 0;
            for (size_t a = i; a < i0; a++)
                wp += pw ? pw[a] : 1.0;
            for (size_t a = j; a < j0; a++)
                wn += nw ? nw[a] : 1.0;
            area_w += wn * (tp_w + 0.5 * wp);
            tp_w += wp;
            fp_w += wn;
            if (wp > 0)
                ap += wp * (tp_w / (tp_w + fp_w));
        } else {
            fp_w += (double)cn;
            if (cp > 0)
                ap += (double)cp * ((double)tp_n / ((double)tp_n + fp_w));
        }
    }
    ret->auc = np && nn ? (double)area2 / (2.0 * (double)np * (double)nn) : NAN;
    if (!weighted) {
        ret->auc_weighted = ret->auc;
        ret->ap = np ? ap / (double)np : NAN;
    } else {
        ret->auc_weighted = tp_w > 0 && fp_w > 0 ? area_w / (tp_w * fp_w) : NAN;
        ret->ap = tp_w > 0 ? ap / tp_w : NAN;
    }
}

int mdl_eval_roc_auc(const double *scores, const double *labels, const double *weights, size_t n,
                     double *ret_auc, double *ret_auc_weighted, mdl_err_t *reterr)
{
    if (n == 0)
        return mdl_err_set(reterr, -EPROTO, "no rows");
    if (n > MDL_EVAL_MAX_ROWS)
        return mdl_err_set(reterr, -E2BIG, "%zu rows, at most %zu", n, MDL_EVAL_MAX_ROWS);

    int rc = -ENOMEM;
    uint64_t *keys = malloc(n * sizeof *keys), *tmp = malloc(n * sizeof *tmp);
    double *w = NULL, *tw = NULL;
    if (weights) {
        w = malloc(n * sizeof *w);
        tw = malloc(n * sizeof *tw);
    }
    if (!keys || !tmp || (weights && (!w || !tw))) {
        mdl_err_set(reterr, rc, "out of memory for %zu rows", n);
        goto out;
    }

    /* positives fill keys from the front, negatives from the back */
    size_t np = 0, nn = 0;
    for (size_t r = 0; r < n; r++) {
        double s = scores[r], y = labels[r];
        if (!isfinite(s)) {
            rc = mdl_err_set(reterr, -EPROTO, "scores[%zu] is %g: scores must be finite", r, s);
            goto out;
        }
        size_t at;
        if (y == 1)
            at = np++;
        else if (y == 0)
            at = n - 1 - nn++;
        else {
            rc = mdl_err_set(reterr, -EPROTO, "labels[%zu] is %g: binary labels are 0 or 1", r, y);
            goto out;
        }
        keys[at] = mdl__eval_key(s);
        if (weights) {
            double wt = weights[r];
            if (!isfinite(wt) || wt < 0) {
                rc = mdl_err_set(reterr, -EPROTO,
                                 "weights[%zu] is %g: weights must be finite and >= 0", r, wt);
                goto out;
            }
            w[at] = wt;
        }
    }
    if ((rc = mdl__eval_sort(keys, w, np, tmp, tw)) < 0 ||
        (rc = mdl__eval_sort(keys + np, w ? w + np : NULL, nn, tmp, tw)) < 0) {
        mdl_err_set(reterr, rc, "out of memory sorting %zu rows", n);
        goto out;
    }
    mdl__eval_pairs_t pr;
    mdl__eval_pairs(keys, w, np, keys + np, w ? w + np : NULL, nn, &pr);
    *ret_auc = pr.auc;
    if (ret_auc_weighted)
        *ret_auc_weighted = pr.auc_weighted;
    rc = 0;
out:
    free(keys);
    free(tmp);
    free(w);
    free(tw);
    return rc;
}
