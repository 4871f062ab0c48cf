/* In-process speed of the gbdt scorer: modeld's side of bench/gbdt/run.sh (issue 3).
 *
 *   cc -O2 -std=c11 -D_GNU_SOURCE -I. -o gbdt_speed tools/gbdt_speed.c \
 *      build/release/libmodeld.a -lpthread -lm
 *   gbdt_speed MODEL_FILE ROWS.f64 N_FEATURES [EXPECTED_MARGIN.f64]
 *
 * ROWS.f64 holds row-major doubles (n_rows x n_features). With an expected-margin file it
 * first checks every margin bit for bit, scored as one batch and row by row (exit 1 if
 * one differs; single-output models: out + i is row i's margin). Then one line per cell:
 *
 *   modeld batch B threads T cpu_us_row C wall_us_row W
 *
 * MDL_OUTPUT_VALUE at batch 1, 16, 256, 10000 with one thread (C = CPU time of the calling
 * thread, the figure to compare on a shared machine), then the whole file (10000 rows)
 * through mdl_forest_score_threads with 2 threads (C = CPU time of the process, W = wall
 * time: the 1 -> 2 thread scaling is wall(1 thread) / wall(2 threads)). Each cell scores
 * at least 10000 rows per pass, consecutive slices of the file; best of 3 passes.
 * GBDT_SPEED_ROWS=N scores N rows per pass instead, once (for callgrind). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "models/file.h"
#include "models/gbdt/forest.h"
#include "models/gbdt/gbdt.h"

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static size_t min_rows = 10000;
static int passes = 3;

static void cell(const mdl_forest_t *f, const double *rows, size_t n_rows, size_t nf,
                 size_t bs, unsigned threads, double *out)
{
    clockid_t cpu = threads > 1 ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_THREAD_CPUTIME_ID;
    double best_c = 1e30, best_w = 1e30;
    mdl_err_t err;

    mdl_forest_score_threads(f, rows, bs, MDL_OUTPUT_VALUE, out, threads, &err); /* warm-up */
    for (int pass = 0; pass < passes; pass++) {
        size_t done = 0;
        double c0 = clock_s(cpu), w0 = clock_s(CLOCK_MONOTONIC);
        while (done < min_rows) {
            size_t off = done % n_rows + bs <= n_rows ? done % n_rows : 0;
            if (mdl_forest_score_threads(f, rows + off * nf, bs, MDL_OUTPUT_VALUE, out,
                                         threads, &err) < 0) {
                fprintf(stderr, "score: %s\n", err.msg);
                exit(1);
            }
            done += bs;
        }
        double c = (clock_s(cpu) - c0) * 1e6 / (double)done;
        double w = (clock_s(CLOCK_MONOTONIC) - w0) * 1e6 / (double)done;
        best_c = c < best_c ? c : best_c;
        best_w = w < best_w ? w : best_w;
    }
    printf("modeld batch %zu threads %u cpu_us_row %.3f wall_us_row %.3f\n", bs, threads,
           best_c, best_w);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    char *data, *rdata;
    size_t len, rlen, nf, n_rows;
    mdl_model_t m;
    mdl_err_t err;
    double *out, *rows;
    const size_t batches[] = {1, 16, 256, 10000};

    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL ROWS.f64 N_FEATURES [EXPECTED_MARGIN.f64]\n", argv[0]);
        return 2;
    }
    memset(&m, 0, sizeof m);
    if (getenv("GBDT_SPEED_ROWS")) {
        min_rows = strtoul(getenv("GBDT_SPEED_ROWS"), NULL, 10);
        passes = 1;
    }
    double t0 = clock_s(CLOCK_MONOTONIC);
    if (mdl_file_read(argv[1], (size_t)1 << 31, &data, &len, NULL, &err) < 0 ||
        mdl_gbdt_load_mem(argv[1], data, len, &m, &err) < 0 ||
        mdl_file_read(argv[2], (size_t)1 << 31, &rdata, &rlen, NULL, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const mdl_forest_t *f = m.impl;
    nf = strtoul(argv[3], NULL, 10);
    if (nf != mdl_forest_info(f)->n_features) {
        fprintf(stderr, "model has %zu features, not %zu\n", mdl_forest_info(f)->n_features, nf);
        return 1;
    }
    rows = (double *)rdata;
    n_rows = rlen / sizeof(double) / nf;
    out = malloc(n_rows * sizeof *out * mdl_forest_output_width(f, MDL_OUTPUT_MARGIN));
    printf("load %.1f ms (%zu bytes, %zu trees, %zu nodes, %zu rows)\n",
           (clock_s(CLOCK_MONOTONIC) - t0) * 1e3, len, mdl_forest_info(f)->n_trees,
           mdl_forest_info(f)->n_nodes, n_rows);
    if (argc > 4) {
        char *edata;
        size_t elen, bad = 0;
        if (mdl_file_read(argv[4], (size_t)1 << 31, &edata, &elen, NULL, &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        /* one batch of all rows, then row by row (the small-batch path) */
        for (int by_row = 0; by_row < 2; by_row++) {
            for (size_t i = 0; i < n_rows; i += by_row ? 1 : n_rows)
                mdl_forest_score(f, rows + i * nf, by_row ? 1 : n_rows, MDL_OUTPUT_MARGIN,
                                 out + i, &err);
            for (size_t i = 0; i < n_rows && i * 8 < elen; i++)
                if (out[i] != ((double *)edata)[i])
                    bad++;
        }
        printf("margins: %zu of 2 x %zu differ from the expected file\n", bad, n_rows);
        free(edata);
        if (bad)
            return 1;
    }
    for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++)
        cell(f, rows, n_rows, nf, batches[b] < n_rows ? batches[b] : n_rows, 1, out);
    cell(f, rows, n_rows, nf, n_rows, 2, out);
    free(out);
    free(rdata);
    free(data);
    mdl_model_free_metadata(&m);
    mdl_forest_free(m.impl);
    return 0;
}
