/* Multiclass metrics: one-vs-rest ROC-AUC per class (each a binary AUC over a radix
 * sort of that class's score column) and log loss. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "internal.h"

int mdl_eval_multiclass(const mdl_eval_input_t *in, size_t n_classes, mdl_eval_multiclass_t *ret,
                        mdl_metric_t *class_auc, mdl_err_t *reterr)
{
    if (n_classes < 2 || n_classes > MDL_EVAL_MAX_ROWS)
        return mdl_err_set(reterr, -EINVAL, "n_classes %zu: need at least 2", n_classes);
    int rc = mdl__eval_check(in, n_classes, reterr);
    if (rc < 0)
        return rc;
    const size_t n = in->n_labels, C = n_classes;
    for (size_t r = 0; r < n; r++) {
        double y = in->labels[r];
        if (!(y >= 0 && y < (double)C && y == floor(y)))
            return mdl_err_set(reterr, -EPROTO,
                               "labels[%zu] is %g: class labels are integers 0 .. %zu", r, y,
                               C - 1);
    }

    mdl_eval_multiclass_t res;
    memset(&res, 0, sizeof res);
    res.n_rows = n;
    res.n_classes = C;
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

    /* log loss: clip every probability, renormalise the row, -log of the true class */
    bool probs = true;
    long double loss = 0, wsum = 0;
    for (size_t r = 0; r < n && probs; r++) {
        const double *row = in->scores + r * C;
        double rs = 0, py = 0;
        for (size_t c = 0; c < C; c++) {
            double p = row[c];
            if (!(p >= 0 && p <= 1)) {
                probs = false;
                break;
            }
            p = p < DBL_EPSILON ? DBL_EPSILON : p > 1 - DBL_EPSILON ? 1 - DBL_EPSILON : p;
            rs += p;
            if (c == (size_t)in->labels[r])
                py = p;
        }
        double x = wt ? wt[r] : 1.0;
        loss -= x * log(py / rs);
        wsum += x;
    }
    if (!probs)
        res.logloss = (mdl_metric_t){NAN, "scores are not probabilities (outside [0, 1])"};
    else if (wsum > 0)
        res.logloss = (mdl_metric_t){(double)(loss / wsum), NULL};
    else
        res.logloss = (mdl_metric_t){NAN, "weights sum to zero"};

    double macro = 0, wnum = 0, wden = 0;
    size_t used = 0;
    for (size_t c = 0; c < C; c++) {
        size_t np = 0, nn = 0;
        double cw = 0;
        for (size_t r = 0; r < n; r++) {
            bool pos = (size_t)in->labels[r] == c;
            size_t at = pos ? np++ : n - 1 - nn++;
            keys[at] = mdl__eval_key(in->scores[r * C + c]);
            if (w) {
                w[at] = wt[r];
                if (pos)
                    cw += wt[r];
            }
        }
        if (!w)
            cw = (double)np;
        mdl_metric_t m = {NAN, NULL};
        if (np == 0)
            m.reason = "class absent from the labels";
        else if (nn == 0)
            m.reason = "the only class present in the labels";
        else {
            if ((rc = mdl__eval_sort(keys, w, np, tmp, tw)) < 0 ||
                (rc = mdl__eval_sort(keys + np, w ? w + np : NULL, nn, tmp, tw)) < 0) {
                mdl_err_set(reterr, rc, "out of memory sorting %zu rows", n);
                goto out;
            }
            mdl__eval_pairs_t pr;
            mdl__eval_pairs(keys, w, np, keys + np, w ? w + np : NULL, nn, &pr);
            if (isnan(pr.auc_weighted))
                m.reason = "one side has zero total weight";
            else
                m.value = pr.auc_weighted;
        }
        if (class_auc)
            class_auc[c] = m;
        if (m.reason) {
            res.auc_classes_skipped++;
            continue;
        }
        macro += m.value;
        wnum += cw * m.value;
        wden += cw;
        used++;
    }
    if (used) {
        res.auc_macro = (mdl_metric_t){macro / (double)used, NULL};
        res.auc_weighted = wden > 0 ? (mdl_metric_t){wnum / wden, NULL}
                                    : (mdl_metric_t){NAN, "classes have zero total weight"};
    } else {
        res.auc_macro = res.auc_weighted = (mdl_metric_t){NAN, "no class has an AUC"};
    }
    *ret = res;
    rc = 0;
out:
    mdl__eval_scratch_free(&scratch);
    return rc;
}
