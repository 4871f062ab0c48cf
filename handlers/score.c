#include "score.h"

#include <stdint.h>
#include <stdlib.h>

#include "server/buf.h"
#include "server/server.h"

mdl_score_job_t *mdl_score_job_new(const mdl_model_t *m, double *rows, size_t n_rows,
                                   const mdl_output_t *kinds, size_t n_kinds)
{
    size_t total = 0;
    mdl_score_job_t *job;
    double *next;

    if (n_kinds > MDL_SCORE_MAX_OUTPUTS)
        goto fail;
    for (size_t i = 0; i < n_kinds; i++) {
        size_t w = mdl_model_output_width(m, kinds[i]);
        if (!w || (n_rows && w > (SIZE_MAX / sizeof(double) - total) / n_rows))
            goto fail;
        total += n_rows * w;
    }
    /* The job and every output in one block. */
    job = mdl_zalloc(sizeof *job + total * sizeof(double));
    if (!job)
        goto fail;
    job->rows = rows;
    job->n_rows = n_rows;
    job->n_outputs = n_kinds;
    next = (double *)(job + 1);
    for (size_t i = 0; i < n_kinds; i++) {
        mdl_score_out_t *o = &job->outputs[i];
        o->kind = kinds[i];
        o->width = mdl_model_output_width(m, kinds[i]);
        o->values = next;
        next += n_rows * o->width;
    }
    return job;
fail:
    free(rows);
    return NULL;
}

void mdl_score_job_free(mdl_score_job_t *job)
{
    if (!job)
        return;
    if (job->ctx_free)
        job->ctx_free(job->ctx);
    free(job->rows);
    free(job);
}

/* Worker thread or loop: touches only the job and the (immutable) model. t0: now. */
static void score_rows(mdl_request_t *req, double t0)
{
    mdl_score_job_t *job = req->job;

    job->rc = 0;
    for (size_t i = 0; i < job->n_outputs && job->rc == 0; i++)
        job->rc = mdl_model_score(req->model, job->rows, job->n_rows, job->outputs[i].kind,
                                  job->outputs[i].values, &job->err);
    req->infer_s = mdl_now() - t0;
    req->batch_rows = job->n_rows;
}

static void score_work(mdl_request_t *req)
{
    score_rows(req, mdl_now());
}

void mdl_score_start(mdl_server_t *srv, mdl_request_t *req, mdl_score_job_t *job, mdl_done_fn *reply)
{
    const mdl_model_t *m = req->model;
    size_t per_row = (m->cost_per_row ? m->cost_per_row : m->n_features) * (job->n_outputs ? job->n_outputs : 1);

    req->job = job;
    /* Cheap batches are scored here on the loop: a thread hop costs more than they do. */
    if (job->n_rows <= srv->config.inline_max_values / (per_row ? per_row : 1)) {
        score_rows(req, job->t_ready ? job->t_ready : mdl_now());
        reply(srv, req, 0);
        return;
    }
    if (mdl_request_defer(srv, req, score_work, reply) < 0) {
        req->job = NULL;
        mdl_score_job_free(job);
        mdl_reply_overloaded(req);
    }
}
