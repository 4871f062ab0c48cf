/* POST /v1/models/{m}[/versions/{v}]:predict — score instances with any tabular model.
 * Small batches are scored right here on the loop (cheaper than a thread hop); larger ones
 * go to an inference worker. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handler.h"
#include "server/server.h"
#include "tabular.h"

typedef struct predict_job {
    double *rows;       /* n_rows x n_features, owned */
    size_t n_rows;
    mdl_output_t output;
    size_t width;       /* values per row */
    double *out;        /* n_rows x width, owned */
    int columnar;       /* answer "outputs" instead of "predictions" */
    int rc;
    mdl_err_t err;
} predict_job_t;

static void job_free(predict_job_t *job)
{
    if (job) {
        free(job->rows);
        free(job->out);
        free(job);
    }
}

/* Worker thread or loop: touches only the job and the (immutable) model. */
static void predict_work(mdl_request_t *req)
{
    predict_job_t *job = req->job;
    double t0 = mdl_now();

    job->rc = mdl_model_score(req->model, job->rows, job->n_rows, job->output, job->out, &job->err);
    req->infer_s = mdl_now() - t0;
    req->batch_rows = job->n_rows;
}

static void predict_reply(mdl_server_t *srv, mdl_request_t *req, int cancelled)
{
    predict_job_t *job = req->job;
    const mdl_model_t *m = req->model;
    /* One number per row unless the model has several outputs per row (classes). */
    int scalar = job->width == 1 && m->task != MDL_TASK_MULTICLASS;
    mdl_buf_t out = {0};
    size_t len;
    char *text;
    (void)srv;

    req->job = NULL;
    if (cancelled) {
        job_free(job);
        return; /* the HTTP layer answers 503 */
    }
    if (job->rc < 0) {
        mdl_reply_err(req, &job->err);
        job_free(job);
        return;
    }
    mdl_buf_puts(&out, job->columnar ? "{\"outputs\":[" : "{\"predictions\":[");
    for (size_t i = 0; i < job->n_rows; i++) {
        const double *v = job->out + i * job->width;
        if (i)
            mdl_buf_puts(&out, ",");
        if (!scalar)
            mdl_buf_puts(&out, "[");
        for (size_t j = 0; j < job->width; j++) {
            if (!isfinite(v[j])) {
                mdl_buf_done(&out);
                mdl_reply_error(req, 400, "invalid_argument",
                                "the prediction for instance %zu is not finite (inputs out of range?)", i);
                job_free(job);
                return;
            }
            if (j)
                mdl_buf_puts(&out, ",");
            mdl_json_put_double(&out, v[j]);
        }
        if (!scalar)
            mdl_buf_puts(&out, "]");
    }
    /* Registry names are [A-Za-z0-9._-], safe to print unquoted-escaped. */
    mdl_buf_printf(&out, "],\"model\":{\"name\":\"%s\",\"version\":%ld}}", req->slot->name, req->version);
    job_free(job);
    if (out.failed) {
        mdl_buf_done(&out);
        mdl_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    text = mdl_buf_steal(&out, &len);
    mdl_reply(req, 200, "application/json", text, len);
}

static int parse_output(const cJSON *v, mdl_output_t *ret, mdl_err_t *reterr)
{
    if (!v) {
        *ret = MDL_OUTPUT_VALUE;
        return 0;
    }
    if (cJSON_IsString(v)) {
        if (strcmp(v->valuestring, "value") == 0 || strcmp(v->valuestring, "probability") == 0) {
            *ret = MDL_OUTPUT_VALUE;
            return 0;
        }
        if (strcmp(v->valuestring, "margin") == 0) {
            *ret = MDL_OUTPUT_MARGIN;
            return 0;
        }
        if (strcmp(v->valuestring, "leaf") == 0) {
            *ret = MDL_OUTPUT_LEAF;
            return 0;
        }
    }
    return mdl_err_set(reterr, -EPROTO, "output: expected \"value\", \"margin\" or \"leaf\"");
}

/* Validates the body and fills a job; 0 or -EPROTO/-ENOMEM with reterr. */
static int build_job(mdl_server_t *srv, const mdl_model_t *m, const cJSON *root, predict_job_t *job,
                     mdl_err_t *reterr)
{
    const cJSON *instances = NULL, *inputs = NULL, *output = NULL, *item;
    int r;

    if (!cJSON_IsObject(root))
        return mdl_err_set(reterr, -EPROTO, "request body must be a JSON object with \"instances\" or \"inputs\"");
    cJSON_ArrayForEach(item, root) {
        if (strcmp(item->string, "instances") == 0)
            instances = item;
        else if (strcmp(item->string, "inputs") == 0)
            inputs = item;
        else if (strcmp(item->string, "output") == 0)
            output = item;
        else
            return mdl_err_set(reterr, -EPROTO, "unknown field '%.64s' (expected instances, inputs, output)",
                               item->string);
    }
    if (!instances == !inputs)
        return mdl_err_set(reterr, -EPROTO, "exactly one of \"instances\" or \"inputs\" is required");
    if ((r = parse_output(output, &job->output, reterr)) < 0)
        return r;
    job->width = mdl_model_output_width(m, job->output);
    if (!job->width)
        return mdl_err_set(reterr, -EPROTO, "output '%s' is not available for this %s model",
                           output->valuestring, m->kind->name);
    job->columnar = inputs != NULL;
    if (instances)
        r = mdl_tabular_rows(m, instances, "instances", srv->config.max_instances, &job->rows,
                             &job->n_rows, reterr);
    else if (cJSON_IsArray(inputs))
        r = mdl_tabular_rows(m, inputs, "inputs", srv->config.max_instances, &job->rows, &job->n_rows,
                             reterr);
    else
        r = mdl_tabular_columns(m, inputs, "inputs", srv->config.max_instances, &job->rows,
                                &job->n_rows, reterr);
    if (r < 0)
        return r;
    job->out = malloc(job->n_rows * job->width * sizeof *job->out);
    return job->out ? 0 : mdl_err_set(reterr, -ENOMEM, "out of memory");
}

void mdl_handle_predict(mdl_server_t *srv, mdl_request_t *req)
{
    predict_job_t *job;
    mdl_err_t err = {0};
    cJSON *root;
    double t0;
    int r;

    if (!mdl_model_is_tabular(req->model)) {
        mdl_reply_error(req, 400, "invalid_argument", "model '%s' (kind %s) does not score rows",
                        req->slot->name, req->model->kind->name);
        return;
    }
    root = mdl_request_parse_json(srv, req);
    if (!root)
        return;
    t0 = mdl_now();
    job = calloc(1, sizeof *job);
    r = job ? build_job(srv, req->model, root, job, &err) : mdl_err_set(&err, -ENOMEM, "out of memory");
    cJSON_Delete(root);
    req->parse_s += mdl_now() - t0;
    if (r < 0) {
        mdl_reply_err(req, &err);
        job_free(job);
        return;
    }
    req->job = job;
    if (job->n_rows * req->model->n_features <= srv->config.inline_max_values) {
        predict_work(req);
        predict_reply(srv, req, 0);
        return;
    }
    if (mdl_request_defer(srv, req, predict_work, predict_reply) < 0) {
        req->job = NULL;
        job_free(job);
        mdl_reply_overloaded(req);
    }
}
