/* models/eval: hand-computed cases, ties, undefined metrics, rejected input, and the
 * radix sort and AUC core against brute force. (tests/eval compares with scikit-learn.) */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/eval/internal.h"
#include "models/eval/metrics.h"
#include "tests/unit/check.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static mdl_eval_input_t input(const double *s, size_t ns, const double *y, size_t ny)
{
    mdl_eval_input_t in;
    memset(&in, 0, sizeof in);
    in.scores = s;
    in.n_scores = ns;
    in.labels = y;
    in.n_labels = ny;
    return in;
}

static int binary(const mdl_eval_input_t *in, mdl_eval_binary_t *b, mdl_err_t *err)
{
    mdl_eval_opts_t o;
    mdl_eval_opts_default(&o);
    return mdl_eval_binary(in, &o, b, err);
}

static mdl_eval_binary_t res; /* 5 KB: keep it off the stack of every test */

static void test_auc_and_ap_by_hand(void)
{
    /* sklearn's docstring example: AUC 0.75, AP (1/2)(1) + (1/2)(2/3) */
    const double s[] = {0.1, 0.4, 0.35, 0.8}, y[] = {0, 0, 1, 1};
    mdl_eval_input_t in = input(s, 4, y, 4);
    mdl_err_t err = {0};
    CHECK_EQ_INT(binary(&in, &res, &err), 0);
    CHECK_NEAR(res.roc_auc.value, 0.75, 1e-15);
    CHECK(res.roc_auc.reason == NULL);
    CHECK_NEAR(res.pr_auc.value, 0.5 + 1.0 / 3, 1e-15);
    CHECK(res.roc_auc_weighted.reason != NULL); /* no weights given */
    CHECK_EQ_INT(res.n_rows, 4);
    CHECK_EQ_INT(res.n_pos, 2);
    CHECK_EQ_INT(res.n_neg, 2);
    CHECK(res.gauc.reason != NULL);
    double auc = 0;
    CHECK_EQ_INT(mdl_eval_roc_auc(s, y, NULL, 4, &auc, NULL, &err), 0);
    CHECK_NEAR(auc, 0.75, 1e-15);
}

static void test_ties_count_one_half(void)
{
    mdl_err_t err = {0};
    /* all tied: every pair is one half */
    const double s1[] = {0.5, 0.5, 0.5, 0.5}, y1[] = {0, 1, 0, 1};
    mdl_eval_input_t in = input(s1, 4, y1, 4);
    CHECK_EQ_INT(binary(&in, &res, &err), 0);
    CHECK_NEAR(res.roc_auc.value, 0.5, 1e-15);
    CHECK_NEAR(res.pr_auc.value, 0.5, 1e-15);
    /* (2 vs 1) 1, (2 vs 2) 1/2, (3 vs 1) 1, (3 vs 2) 1 -> 3.5 / 4 */
    const double s2[] = {1, 2, 2, 3}, y2[] = {0, 0, 1, 1};
    in = input(s2, 4, y2, 4);
    CHECK_EQ_INT(binary(&in, &res, &err), 0);
    CHECK_NEAR(res.roc_auc.value, 0.875, 1e-15);
    /* AP: block 3: recall 1/2 at precision 1; block 2: recall +1/2 at precision 2/3 */
    CHECK_NEAR(res.pr_auc.value, 0.5 + 1.0 / 3, 1e-15);
    /* -0.0 and +0.0 are one score */
    const double s3[] = {-0.0, 0.0}, y3[] = {0, 1};
    in = input(s3, 2, y3, 2);
    CHECK_EQ_INT(binary(&in, &res, &err), 0);
    CHECK_NEAR(res.roc_auc.value, 0.5, 1e-15);
}

static void test_weighted_auc(void)
{
    /* positive (w 2) at 2 beats the negative at 1 (w 1), loses to the one at 3 (w 3) */
    const double s[] = {1, 2, 3}, y[] = {0, 1, 0}, w[] = {1, 2, 3};
    mdl_eval_input_t in = input(s, 3, y, 3);
    in.weights = w;
    in.n_weights = 3;
    mdl_err_t err = {0};
    CHECK_EQ_INT(binary(&in, &res, &err), 0);
    CHECK_NEAR(res.roc_auc.value, 0.5, 1e-15);
    CHECK_NEAR(res.roc_auc_weighted.value, 2.0 / 8, 1e-15);
    CHECK_NEAR(res.w_pos, 2, 0);
    CHECK_NEAR(res.w_neg, 4, 0);
    /* AP: block 3 (neg), block 2: tp 2, fp 3 -> precision 2/5 at recall 1 */
    CHECK_NEAR(res.pr_auc.value, 0.4, 1e-15);
    double auc = 0, aucw = 0;
    CHECK_EQ_INT(mdl_eval_roc_auc(s, y, w, 3, &auc, &aucw, &err), 0);
    CHECK_NEAR(aucw, 0.25, 1e-15);
    /* zero weights take no part */
    const double s2[] = {1, 2, 3, 0.5}, y2[] = {0, 1, 0, 1}, w2[] = {1, 2, 3, 0};
    in = input(s2, 4, y2, 4);
    in.weights = w2;
    in.n_weights = 4;
    CHECK_EQ_INT(binary(&in, &res, &err), 0);
    CHECK_NEAR(res.roc_auc_weighted.value, 0.25, 1e-15);
    CHECK_NEAR(res.roc_auc.value, 0.25, 1e-15); /* unweighted: 1 of 4 pairs */
}

static void test_threshold_losses_calibration(void)
{
    const double s[] = {0.2, 0.6, 0.5, 0.9}, y[] = {0, 0, 1, 1};
    mdl_eval_input_t in = input(s, 4, y, 4);
    mdl_err_t err = {0};
    CHECK_EQ_INT(binary(&in, &res, &err), 0);
    /* score >= 0.5 is positive: tp 2, fp 1, tn 1, fn 0 */
    CHECK_NEAR(res.accuracy.value, 0.75, 1e-15);
    CHECK_NEAR(res.precision.value, 2.0 / 3, 1e-15);
    CHECK_NEAR(res.recall.value, 1, 1e-15);
    CHECK_NEAR(res.f1.value, 0.8, 1e-15);
    CHECK_NEAR(res.brier.value, (0.04 + 0.36 + 0.25 + 0.01) / 4, 1e-15);
    CHECK_NEAR(res.logloss.value, -(log(0.8) + log(0.4) + log(0.5) + log(0.9)) / 4, 1e-15);

    /* nothing predicted positive: precision undefined, recall 0, f1 0 */
    mdl_eval_opts_t o;
    mdl_eval_opts_default(&o);
    o.threshold = 2;
    CHECK_EQ_INT(mdl_eval_binary(&in, &o, &res, &err), 0);
    CHECK(res.precision.reason != NULL);
    CHECK(isnan(res.precision.value));
    CHECK_NEAR(res.recall.value, 0, 0);
    CHECK_NEAR(res.f1.value, 0, 0);

    /* calibration: an exact edge falls in the lower bin (0.1 -> bin 0), 1.0 in the last */
    const double c[] = {0.05, 0.1, 0.15, 1.0, 0.3}, cy[] = {0, 1, 1, 1, 0};
    in = input(c, 5, cy, 5);
    CHECK_EQ_INT(binary(&in, &res, &err), 0);
    CHECK_EQ_INT(res.n_bins, 10);
    CHECK_EQ_INT(res.bins[0].count, 2);
    CHECK_NEAR(res.bins[0].mean_score, 0.075, 1e-15);
    CHECK_NEAR(res.bins[0].pos_rate, 0.5, 0);
    CHECK_EQ_INT(res.bins[1].count, 1);
    CHECK_EQ_INT(res.bins[2].count, 1); /* 0.3 < 3 * 0.1 = 0.30000000000000004 */
    CHECK_EQ_INT(res.bins[9].count, 1);
    CHECK(isnan(res.bins[5].mean_score));
    CHECK_NEAR(res.bins[9].hi, 1, 0);
    CHECK_NEAR(res.bins[3].lo, 3 * 0.1, 0);
}

static void test_undefined_metrics(void)
{
    mdl_err_t err = {0};
    /* one class: AUCs undefined, the rest computed */
    const double s[] = {0.2, 0.7, 0.4}, y[] = {1, 1, 1};
    mdl_eval_input_t in = input(s, 3, y, 3);
    CHECK_EQ_INT(binary(&in, &res, &err), 0);
    CHECK(res.roc_auc.reason && strstr(res.roc_auc.reason, "one class"));
    CHECK(isnan(res.roc_auc.value));
    CHECK_NEAR(res.pr_auc.value, 1, 0);
    CHECK(res.logloss.reason == NULL);
    CHECK(res.brier.reason == NULL);
    const double yn[] = {0, 0, 0};
    in = input(s, 3, yn, 3);
    CHECK_EQ_INT(binary(&in, &res, &err), 0);
    CHECK(res.roc_auc.reason != NULL);
    CHECK(res.pr_auc.reason != NULL);
    CHECK(res.recall.reason != NULL);
    CHECK_NEAR(res.accuracy.value, 2.0 / 3, 1e-15);
    double auc = 0;
    CHECK_EQ_INT(mdl_eval_roc_auc(s, yn, NULL, 3, &auc, NULL, &err), 0);
    CHECK(isnan(auc));
    /* margins, not probabilities: AUC yes, logloss / brier / calibration no */
    const double m[] = {-3, -1, 2}, my[] = {0, 1, 1};
    in = input(m, 3, my, 3);
    CHECK_EQ_INT(binary(&in, &res, &err), 0);
    CHECK_NEAR(res.roc_auc.value, 1, 0);
    CHECK(res.logloss.reason != NULL);
    CHECK(res.brier.reason != NULL);
    CHECK(res.calib_reason != NULL);
    CHECK_EQ_INT(res.n_bins, 0);
    /* weights all zero on the positives */
    const double w[] = {1, 0, 0};
    in.weights = w;
    in.n_weights = 3;
    CHECK_EQ_INT(binary(&in, &res, &err), 0);
    CHECK(res.roc_auc.reason == NULL);
    CHECK(res.roc_auc_weighted.reason != NULL);
    CHECK(res.pr_auc.reason != NULL);
}

static void check_rejected(const mdl_eval_input_t *in, int code, const char *needle)
{
    mdl_err_t err = {0};
    int rc = binary(in, &res, &err);
    CHECK_EQ_INT(rc, code);
    if (!strstr(err.msg, needle))
        CHECK_FAIL_("message \"%s\" lacks \"%s\"", err.msg, needle);
}

static void test_bad_input_rejected(void)
{
    const double s[] = {0.1, 0.2, NAN, 0.4}, y[] = {0, 1, 0, 1};
    mdl_eval_input_t in = input(s, 4, y, 4);
    check_rejected(&in, -EPROTO, "scores[2]");
    const double si[] = {0.1, INFINITY, 0.3, 0.4};
    in = input(si, 4, y, 4);
    check_rejected(&in, -EPROTO, "scores[1]");
    const double ok[] = {0.1, 0.2, 0.3, 0.4}, yb[] = {0, 1, 2, 1};
    in = input(ok, 4, yb, 4);
    check_rejected(&in, -EPROTO, "labels[2]");
    const double yh[] = {0, 0.5, 1, 1};
    in = input(ok, 4, yh, 4);
    check_rejected(&in, -EPROTO, "labels[1]");
    in = input(ok, 4, y, 4);
    const double wneg[] = {1, 1, 1, -0.5}, wnan[] = {NAN, 1, 1, 1};
    in.weights = wneg;
    in.n_weights = 4;
    check_rejected(&in, -EPROTO, "weights[3]");
    in.weights = wnan;
    check_rejected(&in, -EPROTO, "weights[0]");
    /* length mismatches */
    in = input(ok, 3, y, 4);
    check_rejected(&in, -EPROTO, "4 labels but 3 scores");
    in = input(ok, 4, y, 4);
    const double w3[] = {1, 1, 1};
    in.weights = w3;
    in.n_weights = 3;
    check_rejected(&in, -EPROTO, "4 labels but 3 weights");
    in = input(ok, 4, y, 4);
    const uint32_t g[] = {0, 1, 2, 1};
    in.groups = g;
    in.n_group_ids = 3;
    in.n_groups = 3;
    check_rejected(&in, -EPROTO, "3 group ids");
    in.n_group_ids = 4;
    in.n_groups = 2;
    check_rejected(&in, -EPROTO, "groups[2]");
    /* empty */
    in = input(ok, 0, y, 0);
    check_rejected(&in, -EPROTO, "no rows");
    /* options */
    in = input(ok, 4, y, 4);
    mdl_eval_opts_t o;
    mdl_eval_opts_default(&o);
    mdl_err_t err = {0};
    o.n_bins = 0;
    CHECK_EQ_INT(mdl_eval_binary(&in, &o, &res, &err), -EINVAL);
    o.n_bins = 10;
    o.threshold = NAN;
    CHECK_EQ_INT(mdl_eval_binary(&in, &o, &res, &err), -EINVAL);
    /* the core checks the same */
    double auc;
    CHECK_EQ_INT(mdl_eval_roc_auc(s, y, NULL, 4, &auc, NULL, &err), -EPROTO);
    CHECK(strstr(err.msg, "scores[2]") != NULL);
    CHECK_EQ_INT(mdl_eval_roc_auc(ok, y, wneg, 4, &auc, NULL, &err), -EPROTO);
    CHECK(strstr(err.msg, "weights[3]") != NULL);
    CHECK_EQ_INT(mdl_eval_roc_auc(ok, y, NULL, 0, &auc, NULL, &err), -EPROTO);
}

static void test_gauc(void)
{
    /* g0: AUC 1 (2 rows); g1: AUC 0 (3 rows); g2: one class; g3: no rows */
    const double s[] = {0.1, 0.8, 0.9, 0.2, 0.5, 0.3, 0.4};
    const double y[] = {0, 0, 1, 1, 1, 1, 1};
    const uint32_t g[] = {0, 1, 0, 1, 1, 2, 2};
    mdl_eval_input_t in = input(s, 7, y, 7);
    in.groups = g;
    in.n_group_ids = 7;
    in.n_groups = 4;
    mdl_err_t err = {0};
    CHECK_EQ_INT(binary(&in, &res, &err), 0);
    CHECK_NEAR(res.gauc.value, (2 * 1.0 + 3 * 0.0) / 5, 1e-15);
    CHECK_EQ_INT(res.gauc_groups, 2);
    CHECK_EQ_INT(res.gauc_groups_skipped, 1);
    CHECK_EQ_INT(res.gauc_groups_empty, 1);
    /* weighted: group sizes are weight sums */
    const double w[] = {1, 1, 3, 1, 1, 1, 1};
    in.weights = w;
    in.n_weights = 7;
    CHECK_EQ_INT(binary(&in, &res, &err), 0);
    CHECK_NEAR(res.gauc.value, (4 * 1.0 + 3 * 0.0) / 7, 1e-15);
    /* no group with both classes */
    const double y1[] = {1, 1, 1, 1, 1, 1, 1};
    in.labels = y1;
    CHECK_EQ_INT(binary(&in, &res, &err), 0);
    CHECK(res.gauc.reason != NULL);
    CHECK_EQ_INT(res.gauc_groups_skipped, 3);
}

static mdl_eval_ranking_t ranking(const double *s, const double *y, const uint32_t *g, size_t n,
                                  size_t n_groups, size_t k, int *rc)
{
    mdl_eval_input_t in = input(s, n, y, n);
    in.groups = g;
    in.n_group_ids = n;
    in.n_groups = n_groups;
    mdl_eval_opts_t o;
    mdl_eval_opts_default(&o);
    o.k = k;
    mdl_eval_ranking_t r;
    memset(&r, 0, sizeof r);
    mdl_err_t err = {0};
    *rc = mdl_eval_ranking(&in, &o, &r, &err);
    return r;
}

static void test_ndcg_map(void)
{
    int rc;
    /* sklearn's ndcg_score docstring: 0.69..., with ties at k=1: (10/10 + 5/10) / 2 */
    const double y[] = {10, 0, 0, 1, 5}, s[] = {.1, .2, .3, 4, 70};
    const uint32_t g[] = {0, 0, 0, 0, 0};
    double dcg = 5 + 1 / log2(3) + 0 + 0 + 10 / log2(6);
    double idcg = 10 + 5 / log2(3) + 1 / 2.0;
    mdl_eval_ranking_t r = ranking(s, y, g, 5, 1, 0, &rc);
    CHECK_EQ_INT(rc, 0);
    CHECK_NEAR(r.ndcg.value, dcg / idcg, 1e-15);
    CHECK_NEAR(r.ndcg.value, 0.69569404438130, 1e-13);
    const double st[] = {1, 0, 0, 0, 1};
    r = ranking(st, y, g, 5, 1, 1, &rc);
    CHECK_NEAR(r.ndcg.value, 0.75, 1e-15);

    /* MAP: relevant at ranks 1 and 3 -> (1/1 + 2/3) / 2; @2 -> 1 / min(2, 2) */
    const double ms[] = {0.9, 0.8, 0.7, 0.6}, my[] = {1, 0, 2, 0};
    const uint32_t mg[] = {0, 0, 0, 0};
    r = ranking(ms, my, mg, 4, 1, 0, &rc);
    CHECK_NEAR(r.map.value, (1 + 2.0 / 3) / 2, 1e-15);
    r = ranking(ms, my, mg, 4, 1, 2, &rc);
    CHECK_NEAR(r.map.value, 0.5, 1e-15);
    r = ranking(ms, my, mg, 4, 1, 1, &rc);
    CHECK_NEAR(r.map.value, 1, 0); /* 1 / min(1, 2) */
    /* ties keep input order: the relevant row sent second ranks second */
    const double ts[] = {0.5, 0.5}, ty[] = {0, 1};
    const uint32_t tg[] = {0, 0};
    r = ranking(ts, ty, tg, 2, 1, 0, &rc);
    CHECK_NEAR(r.map.value, 0.5, 1e-15);
    CHECK_NEAR(r.ndcg.value, (0.5 * (1 + 1 / log2(3))) / 1, 1e-15); /* tie-averaged */

    /* queries interleaved; an all-irrelevant one scores 0 in NDCG and is skipped by MAP */
    const double qs[] = {0.9, 0.1, 0.3, 0.2, 0.8}, qy[] = {1, 0, 0, 0, 0};
    const uint32_t qg[] = {0, 1, 0, 1, 2};
    r = ranking(qs, qy, qg, 5, 4, 0, &rc);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(r.n_queries, 3);
    CHECK_EQ_INT(r.ndcg_all_irrelevant, 2);
    CHECK_NEAR(r.ndcg.value, 1.0 / 3, 1e-15);
    CHECK_NEAR(r.map.value, 1, 0);
    CHECK_EQ_INT(r.map_queries_skipped, 2);
    const double zy[] = {0, 0, 0, 0, 0};
    r = ranking(qs, zy, qg, 5, 4, 0, &rc);
    CHECK(r.map.reason != NULL);
    CHECK_NEAR(r.ndcg.value, 0, 0);

    /* rejected: negative relevance, no groups */
    const double ny[] = {1, -1, 0, 0, 0};
    ranking(qs, ny, qg, 5, 4, 0, &rc);
    CHECK_EQ_INT(rc, -EPROTO);
    ranking(qs, qy, NULL, 5, 4, 0, &rc);
    CHECK_EQ_INT(rc, -EPROTO);
}

static void test_multiclass(void)
{
    const double p[] = {0.7, 0.2, 0.1, /* y 0 */
                        0.2, 0.5, 0.3, /* y 1 */
                        0.1, 0.3, 0.6, /* y 2 */
                        0.3, 0.4, 0.3, /* y 1 */
                        0.4, 0.3, 0.3}; /* y 2 */
    const double y[] = {0, 1, 2, 1, 2};
    mdl_eval_input_t in = input(p, 15, y, 5);
    mdl_eval_multiclass_t m;
    mdl_metric_t per[3];
    mdl_err_t err = {0};
    CHECK_EQ_INT(mdl_eval_multiclass(&in, 3, &m, per, &err), 0);
    /* class 0: 0.7 above all four; class 1: 0.5, 0.4 vs 0.2 0.3 0.3 -> 1;
     * class 2: 0.6 vs 0.1 0.3 0.3 = 3, 0.3 vs (0.1: 1, 0.3: 1/2, 0.3: 1/2) = 2 -> 5/6 */
    CHECK_NEAR(per[0].value, 1, 0);
    CHECK_NEAR(per[1].value, 1, 0);
    CHECK_NEAR(per[2].value, 5.0 / 6, 1e-15);
    CHECK_NEAR(m.auc_macro.value, (2 + 5.0 / 6) / 3, 1e-15);
    CHECK_NEAR(m.auc_weighted.value, (1 + 2 + 2 * 5.0 / 6) / 5, 1e-15);
    CHECK_NEAR(m.logloss.value,
               -(log(0.7) + log(0.5) + log(0.6) + log(0.4) + log(0.3)) / 5, 1e-15);
    /* a class absent from the labels is skipped and counted */
    const double y2[] = {0, 1, 1, 1, 0};
    in.labels = y2;
    CHECK_EQ_INT(mdl_eval_multiclass(&in, 3, &m, per, &err), 0);
    CHECK_EQ_INT(m.auc_classes_skipped, 1);
    CHECK(per[2].reason != NULL);
    CHECK(m.auc_macro.reason == NULL);
    /* rejected */
    const double y3[] = {0, 1, 3, 1, 0};
    in.labels = y3;
    CHECK_EQ_INT(mdl_eval_multiclass(&in, 3, &m, per, &err), -EPROTO);
    CHECK(strstr(err.msg, "labels[2]") != NULL);
    in.labels = y;
    in.n_scores = 14;
    CHECK_EQ_INT(mdl_eval_multiclass(&in, 3, &m, per, &err), -EPROTO);
    CHECK_EQ_INT(mdl_eval_multiclass(&in, 1, &m, per, &err), -EINVAL);
}

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void test_radix_sort_against_qsort(void)
{
    /* sizes that take each path: insertion, 8-bit, 11-bit digits */
    const size_t sizes[] = {0, 1, 7, 32, 33, 100, 1000, 1024, 1025, 65536, 65537, 200000, 3000000};
    for (size_t t = 0; t < N(sizes); t++) {
        size_t n = sizes[t];
        double *v = malloc((n + 1) * sizeof *v), *pay = malloc((n + 1) * sizeof *pay),
               *tp = malloc((n + 1) * sizeof *tp);
        uint64_t *k = malloc((n + 1) * sizeof *k), *tk = malloc((n + 1) * sizeof *tk);
        for (size_t i = 0; i < n; i++) {
            uint64_t r = rnd();
            switch (r % 4) {
            case 0: v[i] = (double)(int64_t)(r >> 40) - 8e6; break;       /* integers, ties */
            case 1: v[i] = ((double)(r >> 11) / 9007199254740992.0) - 0.5; /* fine values */ break;
            case 2: v[i] = (r & 16) ? -0.0 : 0.0; break;
            default: v[i] = ldexp((double)(r >> 40), (int)(r % 200) - 100) * ((r & 32) ? -1 : 1);
            }
            k[i] = mdl__eval_key(v[i]);
            pay[i] = (double)i;
        }
        /* keys alone take the MSD path, keys with a payload the stable LSD one */
        uint64_t *k2 = malloc((n + 1) * sizeof *k2);
        memcpy(k2, k, n * sizeof *k);
        CHECK_EQ_INT(mdl__eval_sort(k, pay, n, tk, tp), 0);
        CHECK_EQ_INT(mdl__eval_sort(k2, NULL, n, tk, NULL), 0);
        qsort(v, n, sizeof *v, cmp_double);
        int ok = 1;
        for (size_t i = 0; i < n && ok; i++) {
            if (k[i] != mdl__eval_key(v[i]) || k2[i] != k[i])
                ok = 0;
            if (i && k[i] == k[i - 1] && pay[i] < pay[i - 1])
                ok = 0; /* stable */
        }
        if (!ok)
            CHECK_FAIL_("radix sort of %zu keys differs from qsort or is not stable", n);
        free(k2);
        free(v);
        free(pay);
        free(tp);
        free(k);
        free(tk);
    }
}

static void test_auc_against_pair_count(void)
{
    const size_t n = 1500;
    double *s = malloc(n * sizeof *s), *y = malloc(n * sizeof *y), *w = malloc(n * sizeof *w);
    for (size_t i = 0; i < n; i++) {
        uint64_t r = rnd();
        s[i] = (double)(r % 50) / 10 - 2; /* 50 distinct values: heavy ties */
        y[i] = (r >> 20) % 3 == 0;
        w[i] = (double)((r >> 30) % 5) / 2;
    }
    double num = 0, den = 0, wnum = 0, wden = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            if (y[i] == 1 && y[j] == 0) {
                double c = s[i] > s[j] ? 1 : s[i] == s[j] ? 0.5 : 0;
                num += c;
                den += 1;
                wnum += c * w[i] * w[j];
                wden += w[i] * w[j];
            }
    double auc, aucw;
    mdl_err_t err = {0};
    CHECK_EQ_INT(mdl_eval_roc_auc(s, y, w, n, &auc, &aucw, &err), 0);
    CHECK_NEAR(auc, num / den, 1e-13);
    CHECK_NEAR(aucw, wnum / wden, 1e-13);
    free(s);
    free(y);
    free(w);
}

int main(void)
{
    RUN(test_auc_and_ap_by_hand);
    RUN(test_ties_count_one_half);
    RUN(test_weighted_auc);
    RUN(test_threshold_losses_calibration);
    RUN(test_undefined_metrics);
    RUN(test_bad_input_rejected);
    RUN(test_gauc);
    RUN(test_ndcg_map);
    RUN(test_multiclass);
    RUN(test_radix_sort_against_qsort);
    RUN(test_auc_against_pair_count);
    return check_summary();
}
