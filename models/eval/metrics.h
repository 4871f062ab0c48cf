/* Evaluation metrics over scored, labelled rows: ROC-AUC, average precision, logloss,
 * Brier, threshold metrics, a calibration table, group AUC, NDCG@k / MAP@k per query,
 * and multiclass one-vs-rest AUC and logloss. Each metric is defined as scikit-learn
 * 1.2.1 defines it (the field comments say which function, and where we differ).
 *
 * Pure libc (no uv, MHD or cJSON): a handler collects the rows it streams in (scores,
 * labels, optional weights, optional group indices it interned itself) into arrays and
 * calls one function. Nothing here logs or keeps state; every function is reentrant and
 * may run on any thread. Rankings use an LSD radix sort on the score bits, so the work is
 * O(n) and the memory a few arrays of n words (about 16-32 bytes per row).
 *
 * Errors (negative code, reterr names the offending index and value):
 *   -EPROTO  bad input: no rows, length mismatch, NaN/infinite score, label outside the
 *            task's set, negative or non-finite weight, group index >= n_groups
 *   -E2BIG   more than MDL_EVAL_MAX_ROWS rows
 *   -EINVAL  bad options (n_bins, threshold, n_classes)
 *   -ENOMEM
 * A metric that cannot be computed from valid input (one class only, no relevant row,
 * scores that are not probabilities for logloss, ...) is not an error: its mdl_metric_t
 * carries a reason and the other metrics are still computed. */
#ifndef MDL_EVAL_METRICS_H
#define MDL_EVAL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "models/err.h"

#define MDL_EVAL_MAX_ROWS ((size_t)UINT32_MAX) /* row and group counts fit in 32 bits */
#define MDL_EVAL_MAX_BINS 100                  /* calibration bins */

/* One metric: defined (reason == NULL, value meaningful) or undefined (reason is a static
 * string saying why, value is NaN). */
typedef struct mdl_metric {
    double value;
    const char *reason;
} mdl_metric_t;

/* The rows. n_labels is the row count; every other array given must match it (scores:
 * n_labels x n_classes for multiclass). Arrays are borrowed for the call only. */
typedef struct mdl_eval_input {
    const double *scores; /* finite; binary/ranking: one per row; multiclass: row-major
                             n_rows x n_classes (class probabilities) */
    size_t n_scores;
    const double *labels; /* binary: 0 or 1; ranking: graded relevance, finite, >= 0;
                             multiclass: class index 0 .. n_classes-1 */
    size_t n_labels;
    const double *weights; /* sample weights, finite, >= 0; NULL = unweighted */
    size_t n_weights;
    const uint32_t *groups; /* group (query, user) index per row, < n_groups; NULL = none */
    size_t n_group_ids;
    size_t n_groups; /* number of distinct group indices the caller interned */
} mdl_eval_input_t;

typedef struct mdl_eval_opts {
    double threshold; /* accuracy/precision/recall/F1: a row is predicted positive iff
                         score >= threshold (as precision_recall_curve's thresholds;
                         note LogisticRegression.predict uses p > 0.5). Finite. */
    unsigned n_bins;  /* calibration bins, 1 .. MDL_EVAL_MAX_BINS */
    size_t k;         /* NDCG@k / MAP@k cutoff per query; 0 = the whole query */
} mdl_eval_opts_t;

/* threshold 0.5, 10 bins, k = 0. */
void mdl_eval_opts_default(mdl_eval_opts_t *opts);

/* One calibration bin: np.linspace(0, 1, n_bins + 1) edges and the bin a score falls in
 * as sklearn.calibration.calibration_curve(strategy="uniform") puts it: bin b holds
 * lo < score <= hi (bin 0 also holds 0). Empty bins are listed with count 0. */
typedef struct mdl_calib_bin {
    double lo, hi;     /* edges */
    size_t count;      /* rows in the bin */
    double weight;     /* sum of their weights (= count unweighted) */
    double mean_score; /* weighted mean score (calibration_curve's prob_pred); NaN if empty */
    double pos_rate;   /* weighted fraction of positives (prob_true); NaN if empty */
} mdl_calib_bin_t;

typedef struct mdl_eval_binary {
    size_t n_rows, n_pos, n_neg; /* row counts */
    double w_pos, w_neg;         /* weight sums (= counts unweighted) */

    /* roc_auc_score: pairs of (positive, negative) rows, a tie counting one half.
     * roc_auc ignores the weights; roc_auc_weighted uses them (undefined without weights).
     * Undefined when only one class is present (or has non-zero weight). */
    mdl_metric_t roc_auc, roc_auc_weighted;

    /* Every metric below uses the weights when they are given. */
    mdl_metric_t pr_auc; /* average_precision_score; undefined with no positive weight
                            (sklearn warns and returns 0 there) */
    mdl_metric_t logloss; /* log_loss(eps="auto"): p clipped to [2^-52, 1 - 2^-52], then
                             divided by (1 - p) + p; undefined if a score is outside [0, 1]
                             (sklearn 1.2.1 would clip silently) or weights sum to 0 */
    mdl_metric_t brier;   /* brier_score_loss; undefined if a score is outside [0, 1] */
    mdl_metric_t accuracy, precision, recall, f1; /* at opts.threshold; precision undefined
                             with no row predicted positive, recall with no positive row,
                             f1 = 2tp / (2tp + fp + fn) undefined when that is 0/0 (sklearn
                             reports 0 with a warning in these cases) */

    unsigned n_bins; /* calibration table; empty (n_bins = 0) with calib_reason set if a
                        score is outside [0, 1] */
    const char *calib_reason;
    mdl_calib_bin_t bins[MDL_EVAL_MAX_BINS];

    /* Group AUC: sum over groups g of size_g * AUC_g / sum of size_g, over groups that
     * have both classes; size_g and AUC_g are weighted when weights are given (size_g =
     * the group's weight sum). Undefined without groups or when no group has both. */
    mdl_metric_t gauc;
    size_t gauc_groups;         /* groups that counted */
    size_t gauc_groups_skipped; /* groups with rows of one class only (or one class all
                                   zero weight) */
    size_t gauc_groups_empty;   /* group indices < n_groups with no row */
} mdl_eval_binary_t;

/* Binary metrics. in->labels 0/1; groups optional (gauc). Fills *ret on success. */
int mdl_eval_binary(const mdl_eval_input_t *in, const mdl_eval_opts_t *opts,
                    mdl_eval_binary_t *ret, mdl_err_t *reterr);

typedef struct mdl_eval_ranking {
    size_t n_queries; /* groups with at least one row */
    size_t k;         /* the cutoff used (0 = whole query) */

    /* sklearn.metrics.ndcg_score(k, ignore_ties=False) per query, averaged over queries:
     * gain = the label itself (not 2^label - 1), discount 1 / log2(rank + 1) for ranks
     * 1..k; rows with tied scores share the mean gain of their tie block and the block's
     * summed discounts (so a block straddling k counts partly). A query whose labels are
     * all 0 scores 0 and counts in the mean (sklearn's convention). A one-row query is
     * computed by the same formula (sklearn refuses one-column input). */
    mdl_metric_t ndcg;
    size_t ndcg_all_irrelevant; /* queries that scored 0 for having no relevant row */

    /* MAP@k. Relevant = label > 0. A query's rows are ranked by score descending, ties
     * kept in input order (the order :rank returns). With R relevant rows in the query,
     * hits(i) = relevant rows among ranks 1..i, and
     *     AP@k = sum over ranks i = 1 .. min(k, n) with row i relevant of hits(i) / i,
     *            divided by min(k, R)        (k = 0: by R).
     * MAP@k = mean of AP@k over queries with R > 0; queries with R = 0 are skipped and
     * counted. Undefined when no query has a relevant row. */
    mdl_metric_t map;
    size_t map_queries_skipped;
} mdl_eval_ranking_t;

/* Ranking metrics per query. in->groups required (the query of each row), labels graded
 * (finite, >= 0); weights, if given, are validated but not used. */
int mdl_eval_ranking(const mdl_eval_input_t *in, const mdl_eval_opts_t *opts,
                     mdl_eval_ranking_t *ret, mdl_err_t *reterr);

typedef struct mdl_eval_multiclass {
    size_t n_rows, n_classes;

    /* roc_auc_score(multi_class="ovr"): per class c, the binary AUC of (label == c) by
     * score column c (weighted when weights are given). macro = mean over classes,
     * weighted = mean weighted by each class's (weighted) row count. A class absent from
     * the labels, or the only one present, has no AUC: it is left out of both averages
     * and counted (sklearn refuses the whole call there). Undefined if no class has one.
     * sklearn also requires the score rows to sum to 1; we do not. */
    mdl_metric_t auc_macro, auc_weighted;
    size_t auc_classes_skipped;

    /* log_loss(eps="auto"): each probability clipped to [2^-52, 1 - 2^-52], the row
     * renormalised by its sum, -log of the true class's; weighted mean. Undefined if a
     * score is outside [0, 1] or the weights sum to 0. */
    mdl_metric_t logloss;
} mdl_eval_multiclass_t;

/* Multiclass metrics; n_classes >= 2. class_auc, if not NULL, receives n_classes per-class
 * AUCs. Groups are ignored. */
int mdl_eval_multiclass(const mdl_eval_input_t *in, size_t n_classes, mdl_eval_multiclass_t *ret,
                        mdl_metric_t *class_auc, mdl_err_t *reterr);

/* The ROC-AUC core alone (the benchmark's subject): binary labels 0/1, optional weights.
 * *ret_auc gets the plain AUC, *ret_auc_weighted (may be NULL) the weighted one (= plain
 * without weights). Undefined metrics come back as NaN with 0 returned. */
int mdl_eval_roc_auc(const double *scores, const double *labels, const double *weights, size_t n,
                     double *ret_auc, double *ret_auc_weighted, mdl_err_t *reterr);

#endif
