/* Runs the evaluation core on rows from a text file and prints the metrics as one JSON
 * object, for tests/eval/test_eval_sklearn.py.
 *
 *   eval_driver FILE
 *
 * FILE: a header line "TASK N N_CLASSES WEIGHTED GROUPED N_GROUPS THRESHOLD N_BINS K"
 * (TASK binary | ranking | multiclass; N_CLASSES 1 unless multiclass; WEIGHTED and
 * GROUPED 0/1), then N lines "SCORE... LABEL [WEIGHT] [GROUP]" (N_CLASSES scores).
 * An undefined metric prints as null with "<name>_reason". Exit 0, or 1 with the error
 * message on stderr (and its code as {"error": code, "message": ...} on stdout). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/eval/metrics.h"

static void put_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            putchar('\\');
        putchar(*s);
    }
    putchar('"');
}

static void put_metric(const char *name, mdl_metric_t m)
{
    if (m.reason) {
        printf(", \"%s\": null, \"%s_reason\": ", name, name);
        put_str(m.reason);
    } else {
        printf(", \"%s\": %.17g", name, m.value);
    }
}

static void put_double(double v)
{
    if (v != v)
        printf("null");
    else
        printf("%.17g", v);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    char task[32];
    size_t n, n_classes, n_groups, k;
    int weighted, grouped;
    unsigned n_bins;
    double threshold;
    if (fscanf(f, "%31s %zu %zu %d %d %zu %lf %u %zu", task, &n, &n_classes, &weighted, &grouped,
               &n_groups, &threshold, &n_bins, &k) != 9 ||
        n_classes < 1) {
        fprintf(stderr, "bad header\n");
        return 2;
    }
    double *scores = malloc((n * n_classes + 1) * sizeof *scores);
    double *labels = malloc((n + 1) * sizeof *labels);
    double *weights = malloc((n + 1) * sizeof *weights);
    uint32_t *groups = malloc((n + 1) * sizeof *groups);
    if (!scores || !labels || !weights || !groups)
        return 2;
    for (size_t r = 0; r < n; r++) {
        int ok = 1;
        for (size_t c = 0; c < n_classes; c++)
            ok &= fscanf(f, "%lf", &scores[r * n_classes + c]) == 1;
        ok &= fscanf(f, "%lf", &labels[r]) == 1;
        if (weighted)
            ok &= fscanf(f, "%lf", &weights[r]) == 1;
        if (grouped)
            ok &= fscanf(f, "%u", &groups[r]) == 1;
        if (!ok) {
            fprintf(stderr, "bad row %zu\n", r);
            return 2;
        }
    }
    fclose(f);

    mdl_eval_input_t in = {
        .scores = scores, .n_scores = n * n_classes, .labels = labels, .n_labels = n,
        .weights = weighted ? weights : NULL, .n_weights = n,
        .groups = grouped ? groups : NULL, .n_group_ids = n, .n_groups = n_groups,
    };
    mdl_eval_opts_t opts;
    mdl_eval_opts_default(&opts);
    opts.threshold = threshold;
    opts.n_bins = n_bins;
    opts.k = k;
    mdl_err_t err = {0};
    int rc;
    if (strcmp(task, "binary") == 0) {
        static mdl_eval_binary_t b;
        if ((rc = mdl_eval_binary(&in, &opts, &b, &err)) < 0)
            goto fail;
        printf("{\"n_rows\": %zu, \"n_pos\": %zu, \"n_neg\": %zu, \"w_pos\": %.17g, \"w_neg\": %.17g",
               b.n_rows, b.n_pos, b.n_neg, b.w_pos, b.w_neg);
        put_metric("roc_auc", b.roc_auc);
        put_metric("roc_auc_weighted", b.roc_auc_weighted);
        put_metric("pr_auc", b.pr_auc);
        put_metric("logloss", b.logloss);
        put_metric("brier", b.brier);
        put_metric("accuracy", b.accuracy);
        put_metric("precision", b.precision);
        put_metric("recall", b.recall);
        put_metric("f1", b.f1);
        put_metric("gauc", b.gauc);
        printf(", \"gauc_groups\": %zu, \"gauc_groups_skipped\": %zu, \"gauc_groups_empty\": %zu",
               b.gauc_groups, b.gauc_groups_skipped, b.gauc_groups_empty);
        printf(", \"calibration\": [");
        for (unsigned i = 0; i < b.n_bins; i++) {
            const mdl_calib_bin_t *cb = &b.bins[i];
            printf("%s{\"lo\": %.17g, \"hi\": %.17g, \"count\": %zu, \"weight\": %.17g, "
                   "\"mean_score\": ",
                   i ? ", " : "", cb->lo, cb->hi, cb->count, cb->weight);
            put_double(cb->mean_score);
            printf(", \"pos_rate\": ");
            put_double(cb->pos_rate);
            printf("}");
        }
        printf("]}\n");
    } else if (strcmp(task, "ranking") == 0) {
        mdl_eval_ranking_t q;
        if ((rc = mdl_eval_ranking(&in, &opts, &q, &err)) < 0)
            goto fail;
        printf("{\"n_queries\": %zu, \"k\": %zu", q.n_queries, q.k);
        put_metric("ndcg", q.ndcg);
        put_metric("map", q.map);
        printf(", \"ndcg_all_irrelevant\": %zu, \"map_queries_skipped\": %zu}\n",
               q.ndcg_all_irrelevant, q.map_queries_skipped);
    } else if (strcmp(task, "multiclass") == 0) {
        mdl_eval_multiclass_t m;
        mdl_metric_t *per = malloc(n_classes * sizeof *per);
        if (!per)
            return 2;
        if ((rc = mdl_eval_multiclass(&in, n_classes, &m, per, &err)) < 0) {
            free(per);
            goto fail;
        }
        printf("{\"n_rows\": %zu, \"n_classes\": %zu", m.n_rows, m.n_classes);
        put_metric("auc_macro", m.auc_macro);
        put_metric("auc_weighted", m.auc_weighted);
        put_metric("logloss", m.logloss);
        printf(", \"auc_classes_skipped\": %zu, \"class_auc\": [", m.auc_classes_skipped);
        for (size_t c = 0; c < n_classes; c++) {
            printf("%s", c ? ", " : "");
            put_double(per[c].value);
        }
        printf("]}\n");
        free(per);
    } else {
        fprintf(stderr, "unknown task %s\n", task);
        return 2;
    }
    free(scores);
    free(labels);
    free(weights);
    free(groups);
    return 0;
fail:
    printf("{\"error\": %d, \"message\": ", rc);
    put_str(err.msg);
    printf("}\n");
    fprintf(stderr, "%s\n", err.msg);
    free(scores);
    free(labels);
    free(weights);
    free(groups);
    return 1;
}
