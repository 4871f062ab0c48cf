/* In-process speed of the gbdt scorer (not part of the build; for the numbers in issue 3).
 *
 *   cc -O2 -std=c11 -D_GNU_SOURCE -I. -o /tmp/gbdt_speed tools/gbdt_speed.c \
 *      build/release/libmodeld.a -lpthread -lm
 *   /tmp/gbdt_speed MODEL_FILE ROWS.f64 N_FEATURES [EXPECTED_MARGIN.f64]
 *
 * ROWS.f64 holds row-major doubles (n_rows x n_features). Prints microseconds per row of
 * MDL_OUTPUT_VALUE at batch 1, 16, 256 and 10000 with one thread, and at 10000 with two
 * threads (each scoring half the rows), best of several runs; with an expected-margin
 * file it first checks every margin bit for bit. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "models/file.h"
#include "models/gbdt/gbdt.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(getenv("WALL") ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct job {
    const mdl_model_t *m;
    const double *rows;
    size_t n;
    double *out;
} job_t;

static void *run_job(void *arg)
{
    job_t *j = arg;
    mdl_err_t err;
    mdl_kind_gbdt.tabular->score(j->m->impl, j->rows, j->n, MDL_OUTPUT_VALUE, j->out, &err);
    return NULL;
}

int main(int argc, char **argv)
{
    char *data, *rdata;
    size_t len, rlen, nf, n_rows;
    mdl_model_t m;
    mdl_err_t err;
    double *out;
    const size_t batches[] = {1, 16, 256, 10000};

    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL ROWS.f64 N_FEATURES [EXPECTED_MARGIN.f64]\n", argv[0]);
        return 2;
    }
    memset(&m, 0, sizeof m);
    double t0 = now_s();
    if (mdl_file_read(argv[1], (size_t)1 << 31, &data, &len, NULL, &err) < 0 ||
        mdl_gbdt_load_mem(argv[1], data, len, &m, &err) < 0 ||
        mdl_file_read(argv[2], (size_t)1 << 31, &rdata, &rlen, NULL, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    nf = strtoul(argv[3], NULL, 10);
    n_rows = rlen / sizeof(double) / nf;
    out = malloc(n_rows * sizeof *out * 4);
    printf("load: %.1f ms (%zu bytes)\n", (now_s() - t0) * 1e3, len);
    if (argc > 4) {
        char *edata;
        size_t elen, bad = 0;
        mdl_file_read(argv[4], (size_t)1 << 31, &edata, &elen, NULL, &err);
        mdl_kind_gbdt.tabular->score(m.impl, (double *)rdata, n_rows, MDL_OUTPUT_MARGIN, out, &err);
        for (size_t i = 0; i < n_rows && i * 8 < elen; i++)
            if (out[i] != ((double *)edata)[i])
                bad++;
        printf("margins: %zu of %zu differ from the expected file\n", bad, n_rows);
        free(edata);
    }
    for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
        size_t bs = batches[b] < n_rows ? batches[b] : n_rows;
        double best = 1e30;
        for (int rep = 0; rep < 5; rep++) {
            size_t done = 0;
            double t0 = now_s();
            /* at least 10000 rows per measurement */
            while (done < 10000) {
                size_t off = (done % n_rows) + bs <= n_rows ? done % n_rows : 0;
                mdl_kind_gbdt.tabular->score(m.impl, (double *)rdata + off * nf, bs,
                                             MDL_OUTPUT_VALUE, out, &err);
                done += bs;
            }
            double us = (now_s() - t0) * 1e6 / (double)done;
            if (us < best)
                best = us;
        }
        printf("batch %5zu, 1 thread:  %8.2f us/row\n", bs, best);
    }
    {
        double best = 1e30;
        size_t half = n_rows / 2;
        for (int rep = 0; rep < 5; rep++) {
            pthread_t t[2];
            job_t j[2] = {{&m, (double *)rdata, half, out},
                          {&m, (double *)rdata + half * nf, n_rows - half, out + n_rows}};
            double t0 = now_s();
            for (int i = 0; i < 2; i++)
                pthread_create(&t[i], NULL, run_job, &j[i]);
            for (int i = 0; i < 2; i++)
                pthread_join(t[i], NULL);
            double us = (now_s() - t0) * 1e6 / (double)n_rows;
            if (us < best)
                best = us;
        }
        printf("batch %5zu, 2 threads: %8.2f us/row\n", n_rows, best);
    }
    return 0;
}
