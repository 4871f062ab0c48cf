/* Times the ROC-AUC core (mdl_eval_roc_auc: validation, radix sort, merge) and the whole
 * binary evaluation (mdl_eval_binary: every binary metric) on rows from raw float64 files.
 *
 *   auc_bench SCORES.f64 LABELS.f64 RUNS
 *
 * Prints one JSON object: n, the AUC (%.17g), and per-run seconds for both calls.
 * bench/auc/run.py builds and runs it next to sklearn.metrics.roc_auc_score. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "models/eval/metrics.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double *read_f64(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f || fseek(f, 0, SEEK_END) != 0) {
        perror(path);
        exit(2);
    }
    long bytes = ftell(f);
    rewind(f);
    *n = (size_t)bytes / sizeof(double);
    double *v = malloc(*n * sizeof *v + 1);
    if (!v || fread(v, sizeof *v, *n, f) != *n) {
        fprintf(stderr, "%s: read failed\n", path);
        exit(2);
    }
    fclose(f);
    return v;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s SCORES.f64 LABELS.f64 RUNS\n", argv[0]);
        return 2;
    }
    size_t n, n_labels;
    double *s = read_f64(argv[1], &n), *y = read_f64(argv[2], &n_labels);
    int runs = atoi(argv[3]);
    if (n != n_labels || runs < 1) {
        fprintf(stderr, "length mismatch or bad RUNS\n");
        return 2;
    }
    mdl_err_t err = {0};
    double auc = 0;
    printf("{\"n\": %zu, \"core_s\": [", n);
    for (int r = 0; r < runs; r++) {
        double t0 = now();
        if (mdl_eval_roc_auc(s, y, NULL, n, &auc, NULL, &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        printf("%s%.6f", r ? ", " : "", now() - t0);
    }
    static mdl_eval_binary_t b;
    mdl_eval_input_t in = {.scores = s, .n_scores = n, .labels = y, .n_labels = n};
    mdl_eval_opts_t o;
    mdl_eval_opts_default(&o);
    printf("], \"binary_s\": [");
    for (int r = 0; r < runs; r++) {
        double t0 = now();
        if (mdl_eval_binary(&in, &o, &b, &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        printf("%s%.6f", r ? ", " : "", now() - t0);
    }
    printf("], \"auc\": %.17g, \"binary_auc\": %.17g}\n", auc, b.roc_auc.value);
    free(s);
    free(y);
    return 0;
}
