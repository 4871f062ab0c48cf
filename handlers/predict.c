/* POST /v1/models/{m}[/versions/{v}]:predict — score instances with any tabular model.
 * Small batches are scored right here on the loop (cheaper than a thread hop); larger ones
 * go to an inference worker. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handler.h"
#include "server/server.h"
#include "score.h"
#include "tabular.h"

static void predict_reply(mdl_server_t *srv, mdl_request_t *req, int cancelled)
{
    mdl_score_job_t *job = req->job;
    const mdl_score_out_t *o = &job->outputs[0];
    /* One number per row unless the model has several outputs per row (classes, trees). */
    int scalar = o->width == 1;
    int columnar = job->form; /* answer "outputs" instead of "predictions" */
    mdl_buf_t out = {0};
    char version[24], *text;
    size_t len;
    (void)srv;

    req->job = NULL;
    if (cancelled) {
        mdl_score_job_free(job);
        return; /* the HTTP layer answers 503 */
    }
    if (job->rc < 0) {
        mdl_reply_err(req, &job->err);
        mdl_score_job_free(job);
        return;
    }
    mdl_buf_puts(&out, columnar ? "{\"outputs\":[" : "{\"predictions\":[");
    for (size_t i = 0; i < job->n_rows; i++) {
        const double *v = o->values + i * o->width;
        if (i)
            mdl_buf_puts(&out, ",");
        if (!scalar)
            mdl_buf_puts(&out, "[");
        for (size_t j = 0; j < o->width; j++) {
            if (!isfinite(v[j])) {
                mdl_buf_done(&out);
                mdl_reply_error(req, 400, "invalid_argument",
                                "the prediction for instance %zu is not finite (inputs out of range?)", i);
                mdl_score_job_free(job);
                return;
            }
            if (j)
                mdl_buf_puts(&out, ",");
            mdl_json_put_double(&out, v[j]);
        }
        if (!scalar)
            mdl_buf_puts(&out, "]");
    }
    /* Registry names are [A-Za-z0-9._-]: nothing to escape. */
    mdl_buf_puts(&out, "],\"model\":{\"name\":\"");
    mdl_buf_puts(&out, req->slot->name);
    mdl_buf_puts(&out, "\",\"version\":");
    mdl_buf_append(&out, version, mdl_fmt_uint(version, (unsigned long long)req->version));
    mdl_buf_puts(&out, "}}");
    mdl_score_job_free(job);
    if (out.failed) {
        mdl_buf_done(&out);
        mdl_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    text = mdl_buf_steal(&out, &len);
    mdl_reply(req, 200, "application/json", text, len);
}

void mdl_handle_predict(mdl_server_t *srv, mdl_request_t *req)
{
    const mdl_model_t *m = req->model;
    mdl_tabular_body_t body;
    mdl_score_job_t *job;
    mdl_err_t err = {0};
    double t0 = mdl_now(), t1;
    size_t width;
    int r;

    if (!mdl_model_is_tabular(m)) {
        mdl_reply_error(req, 400, "invalid_argument", "model '%s' (kind %s) does not score rows",
                        req->slot->name, m->kind->name);
        return;
    }
    /* A body the decoder accepts is at most three levels deep, so the depth bound only
     * needs checking when it is lower than that or when decoding failed (to report
     * json_too_deep rather than a type error). */
    if (srv->config.max_json_depth < 3 && mdl_request_check_depth(srv, req) < 0)
        return;
    r = mdl_tabular_body_parse(m, req->body, req->body_len, srv->config.max_instances, &body, &err);
    t1 = mdl_now();
    req->parse_s = t1 - t0;
    if (r < 0 && mdl_request_check_depth(srv, req) < 0)
        return;
    if (r == -EBADMSG) {
        mdl_reply_error(req, 400, "invalid_json", "%s", err.msg);
        return;
    }
    if (r < 0) {
        mdl_reply_err(req, &err);
        return;
    }
    width = mdl_model_output_width(m, body.output);
    if (!width) {
        mdl_tabular_body_done(&body);
        mdl_reply_error(req, 400, "invalid_argument", "output '%s' is not available for this %s model",
                        body.output_name, m->kind->name);
        return;
    }
    job = mdl_score_job_new(m, body.rows, body.n_rows, &body.output, 1); /* takes the rows */
    if (!job) {
        mdl_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    job->form = body.columnar;
    job->t_ready = t1;
    mdl_score_start(srv, req, job, predict_reply);
}
