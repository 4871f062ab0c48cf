/* Scoring one dense batch of rows for a request: one or more outputs of a tabular model,
 * run inline on the loop when cheap, else on an inference worker. :predict and the V2
 * infer handler share it, so both decide where to run and measure the same way. */
#ifndef MDL_SCORE_H
#define MDL_SCORE_H

#include <stddef.h>

#include "handler.h"

#define MDL_SCORE_MAX_OUTPUTS 3 /* value, margin, leaf */

typedef struct mdl_score_out {
    mdl_output_t kind;
    size_t width;      /* values per row */
    double *values;    /* n_rows x width, inside the job's own block */
} mdl_score_out_t;

typedef struct mdl_score_job {
    double *rows;      /* n_rows x n_features, row-major, NaN = missing; owned */
    size_t n_rows;
    size_t n_outputs;
    mdl_score_out_t outputs[MDL_SCORE_MAX_OUTPUTS];
    int rc;            /* after scoring: 0 or the first failing output's code */
    mdl_err_t err;
    double t_ready;    /* mdl_now() when the rows were decoded, or 0: a score run inline
                          starts its clock there instead of reading it again */
    int form;          /* the handler's own: how to shape the reply */
    void *ctx;         /* the handler's own state for its reply; freed with the job */
    void (*ctx_free)(void *ctx);
} mdl_score_job_t;

/* A job scoring `kinds` (n_kinds <= MDL_SCORE_MAX_OUTPUTS, each supported by m) on rows.
 * Takes over rows: they are freed with the job, or here when it returns NULL. NULL on
 * out of memory. */
mdl_score_job_t *mdl_score_job_new(const mdl_model_t *m, double *rows, size_t n_rows,
                                   const mdl_output_t *kinds, size_t n_kinds);
/* Frees the job, its rows and its ctx (ctx_free). NULL-safe. */
void mdl_score_job_free(mdl_score_job_t *job);

/* Sets req->job = job and scores it with req->model: here when rows x cost per row x
 * outputs fits inline_max_values, else on an inference worker. reply(srv, req, cancelled)
 * then runs once on the loop thread; it takes req->job, clears it and frees it. When the
 * worker queue is full the job is freed here and the reply is a 503 (overloaded). */
void mdl_score_start(mdl_server_t *srv, mdl_request_t *req, mdl_score_job_t *job, mdl_done_fn *reply);

#endif
