/* POST /v1/models/{m}[/versions/{v}]:score-auc and POST /v1/score-auc — evaluation of
 * labelled rows: ROC-AUC and friends (models/eval), on rows the model scores or on
 * precomputed scores.
 *
 * The body streams in (JSON, NDJSON or CSV by Content-Type) and is never held whole:
 * bytes collect on the loop until a chunk is there, then a step on an inference worker
 * parses the complete rows of it and scores them in batches (handlers/evalstream.c),
 * keeping only scores, labels, weights and groups. While a step runs the next chunk
 * collects; when that one is full too, delivery pauses until the step is done (the
 * socket then fills and TCP slows the client). The metrics run on a worker at the end. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "evalstream.h"
#include "handler.h"
#include "models/eval/metrics.h"
#include "server/server.h"

#define CHUNK ((size_t)1 << 20)    /* bytes per parsing step */
#define PAUSE_AT ((size_t)4 << 20) /* collected bytes that pause delivery while a step runs */

typedef enum { TASK_BINARY, TASK_MULTICLASS, TASK_RANKING } task_t;

typedef struct eval_job {
    mdl_evalstream_t *stream;
    mdl_buf_t in;             /* loop: arrived, not yet given to a step */
    mdl_buf_t work;           /* step: the unparsed tail of earlier bytes + a chunk */
    bool step_running;
    bool final;
    long rc;
    mdl_err_t err;
    double parse_s;
    /* Options from the query string; a JSON body's fields override them. */
    double threshold, k, n_bins;
    char task_name[16];
    /* Results (final step). */
    task_t task;
    mdl_eval_opts_t opts;
    mdl_eval_columns_t cols;
    mdl_eval_binary_t bin;
    mdl_eval_ranking_t rank;
    bool has_rank;
    const char *rank_reason;  /* why ranking metrics are absent */
    mdl_eval_multiclass_t multi;
    mdl_metric_t *class_auc;
} eval_job_t;

static void job_free(eval_job_t *job)
{
    if (!job)
        return;
    mdl_evalstream_free(job->stream);
    mdl_buf_done(&job->in);
    mdl_buf_done(&job->work);
    free(job->class_auc);
    free(job);
}

/* ---- options ---- */

static int parse_task(const char *name, const mdl_model_t *m, size_t width, task_t *ret, mdl_err_t *err)
{
    if (!name[0]) {
        if (width > 1)
            *ret = TASK_MULTICLASS;
        else if (m && (m->task == MDL_TASK_RANKING || m->task == MDL_TASK_REGRESSION))
            *ret = TASK_RANKING;
        else
            *ret = TASK_BINARY;
    } else if (strcmp(name, "binary") == 0) {
        *ret = TASK_BINARY;
    } else if (strcmp(name, "multiclass") == 0) {
        *ret = TASK_MULTICLASS;
    } else if (strcmp(name, "ranking") == 0) {
        *ret = TASK_RANKING;
    } else {
        return mdl_err_set(err, -EINVAL, "task: expected \"binary\", \"multiclass\" or \"ranking\", got \"%.15s\"",
                           name);
    }
    if (*ret == TASK_MULTICLASS && width < 2)
        return mdl_err_set(err, -EINVAL, "task multiclass needs one score per class per row (got %zu per row)", width);
    if (*ret != TASK_MULTICLASS && width != 1)
        return mdl_err_set(err, -EINVAL, "task %s needs one score per row (got %zu per row)", name[0] ? name : "binary",
                           width);
    return 0;
}

/* threshold, k, n_bins into opts, checked. */
static int resolve_opts(eval_job_t *job, mdl_err_t *err)
{
    const mdl_eval_columns_t *c = &job->cols;
    double threshold = isnan(c->threshold) ? job->threshold : c->threshold;
    double k = c->k >= 0 ? c->k : job->k;
    double n_bins = c->n_bins >= 0 ? c->n_bins : job->n_bins;

    mdl_eval_opts_default(&job->opts);
    if (!isnan(threshold)) {
        if (!isfinite(threshold))
            return mdl_err_set(err, -EINVAL, "threshold must be a finite number");
        job->opts.threshold = threshold;
    }
    if (k >= 0) {
        if (k != floor(k) || k > 1e9)
            return mdl_err_set(err, -EINVAL, "k must be a non-negative integer (0 = the whole query)");
        job->opts.k = (size_t)k;
    }
    if (n_bins >= 0) {
        if (n_bins != floor(n_bins) || n_bins < 1 || n_bins > MDL_EVAL_MAX_BINS)
            return mdl_err_set(err, -EINVAL, "n_bins must be an integer in 1..%d", MDL_EVAL_MAX_BINS);
        job->opts.n_bins = (unsigned)n_bins;
    }
    return 0;
}

/* A query-string number; NaN (or -1 for counts) when absent. 0 or -1 on a bad value. */
static int query_number(mdl_request_t *req, const char *name, double absent, double *ret)
{
    const char *v = mdl_request_arg(req, name);
    char *end;

    *ret = absent;
    if (!v)
        return 0;
    *ret = strtod(v, &end);
    if (!*v || *end || isnan(*ret) || (absent < 0 && *ret < 0)) {
        mdl_reply_error(req, 400, "invalid_argument", "query parameter %s: expected a %snumber, got '%.32s'", name,
                        absent < 0 ? "non-negative " : "", v);
        return -1;
    }
    return 0;
}

/* ---- work (inference worker) ---- */

/* Parses what is complete in job->work and keeps the rest for the next step. */
static void feed(eval_job_t *job)
{
    double t0 = mdl_now();
    long used = mdl_evalstream_feed(job->stream, job->work.data ? job->work.data : "", job->work.len,
                                    job->final, &job->err);

    if (used < 0) {
        job->rc = used;
    } else if (used > 0) {
        memmove(job->work.data, job->work.data + used, job->work.len - (size_t)used);
        job->work.len -= (size_t)used;
    }
    job->parse_s += mdl_now() - t0;
}

static void step_work(mdl_request_t *req)
{
    feed(req->job);
}

static void final_work(mdl_request_t *req)
{
    eval_job_t *job = req->job;
    mdl_eval_input_t in;
    double t0;

    job->final = true;
    feed(job);
    if (job->rc < 0)
        return;
    t0 = mdl_now();
    if ((job->rc = mdl_evalstream_finish(job->stream, &job->cols, &job->err)) < 0 ||
        (job->rc = resolve_opts(job, &job->err)) < 0 ||
        (job->rc = parse_task(job->cols.task[0] ? job->cols.task : job->task_name, req->model,
                              job->cols.width, &job->task, &job->err)) < 0)
        return;
    in = (mdl_eval_input_t){.scores = job->cols.scores, .n_scores = job->cols.n_rows * job->cols.width,
                            .labels = job->cols.labels, .n_labels = job->cols.n_rows,
                            .weights = job->cols.weights, .n_weights = job->cols.weights ? job->cols.n_rows : 0,
                            .groups = job->cols.groups, .n_group_ids = job->cols.groups ? job->cols.n_rows : 0,
                            .n_groups = job->cols.n_groups};
    if (job->task == TASK_MULTICLASS) {
        job->class_auc = calloc(job->cols.width, sizeof *job->class_auc);
        if (!job->class_auc) {
            job->rc = mdl_err_set(&job->err, -ENOMEM, "out of memory");
            return;
        }
        job->rc = mdl_eval_multiclass(&in, job->cols.width, &job->multi, job->class_auc, &job->err);
    } else if (job->task == TASK_RANKING) {
        if (!in.groups) {
            job->rc = mdl_err_set(&job->err, -EPROTO, "ranking metrics need groups (the query of each row)");
            return;
        }
        job->rc = mdl_eval_ranking(&in, &job->opts, &job->rank, &job->err);
        job->has_rank = true;
    } else {
        job->rc = mdl_eval_binary(&in, &job->opts, &job->bin, &job->err);
        /* With groups, binary labels also rank each group's rows. */
        if (job->rc == 0 && in.groups) {
            job->rc = mdl_eval_ranking(&in, &job->opts, &job->rank, &job->err);
            job->has_rank = true;
        }
        job->rank_reason = in.groups ? NULL : "no groups given";
    }
    req->infer_s = mdl_now() - t0;
    req->batch_rows = job->cols.n_rows;
}

/* ---- the answer ---- */

static void add_metric(cJSON *metrics, cJSON *reasons, const char *name, mdl_metric_t v)
{
    if (v.reason || !isfinite(v.value)) {
        cJSON_AddNullToObject(metrics, name);
        cJSON_AddStringToObject(reasons, name, v.reason ? v.reason : "not finite");
    } else {
        cJSON_AddNumberToObject(metrics, name, v.value);
    }
}

static void add_nullable(cJSON *obj, const char *name, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(obj, name, v);
    else
        cJSON_AddNullToObject(obj, name);
}

static void add_binary(cJSON *root, cJSON *metrics, cJSON *reasons, const eval_job_t *job)
{
    const mdl_eval_binary_t *b = &job->bin;
    mdl_metric_t weighted = b->roc_auc_weighted;
    cJSON *calib, *groups;

    if (!job->cols.weights)
        weighted = (mdl_metric_t){NAN, "no weights given"};
    cJSON_AddNumberToObject(root, "positives", (double)b->n_pos);
    cJSON_AddNumberToObject(root, "negatives", (double)b->n_neg);
    if (job->cols.weights) {
        cJSON_AddNumberToObject(root, "positive_weight", b->w_pos);
        cJSON_AddNumberToObject(root, "negative_weight", b->w_neg);
    }
    cJSON_AddNumberToObject(root, "threshold", job->opts.threshold);
    add_metric(metrics, reasons, "roc_auc", b->roc_auc);
    add_metric(metrics, reasons, "roc_auc_weighted", weighted);
    add_metric(metrics, reasons, "pr_auc", b->pr_auc);
    add_metric(metrics, reasons, "logloss", b->logloss);
    add_metric(metrics, reasons, "brier", b->brier);
    add_metric(metrics, reasons, "accuracy", b->accuracy);
    add_metric(metrics, reasons, "precision", b->precision);
    add_metric(metrics, reasons, "recall", b->recall);
    add_metric(metrics, reasons, "f1", b->f1);
    add_metric(metrics, reasons, "gauc", job->cols.groups ? b->gauc : (mdl_metric_t){NAN, "no groups given"});
    calib = cJSON_AddArrayToObject(root, "calibration");
    if (b->calib_reason)
        cJSON_AddStringToObject(reasons, "calibration", b->calib_reason);
    for (unsigned i = 0; i < b->n_bins; i++) {
        const mdl_calib_bin_t *bin = &b->bins[i];
        cJSON *item = cJSON_CreateObject();
        cJSON_AddNumberToObject(item, "lo", bin->lo);
        cJSON_AddNumberToObject(item, "hi", bin->hi);
        cJSON_AddNumberToObject(item, "count", (double)bin->count);
        if (job->cols.weights)
            cJSON_AddNumberToObject(item, "weight", bin->weight);
        add_nullable(item, "mean_score", bin->mean_score);
        add_nullable(item, "pos_rate", bin->pos_rate);
        cJSON_AddItemToArray(calib, item);
    }
    if (job->cols.groups) {
        groups = cJSON_GetObjectItem(root, "groups");
        cJSON_AddNumberToObject(groups, "gauc_groups", (double)b->gauc_groups);
        cJSON_AddNumberToObject(groups, "gauc_skipped_one_class", (double)b->gauc_groups_skipped);
    }
}

static void add_ranking(cJSON *root, cJSON *metrics, cJSON *reasons, const eval_job_t *job)
{
    const mdl_eval_ranking_t *r = &job->rank;
    cJSON *groups;

    cJSON_AddNumberToObject(root, "k", (double)job->opts.k);
    if (!job->has_rank) {
        add_metric(metrics, reasons, "ndcg", (mdl_metric_t){NAN, job->rank_reason});
        add_metric(metrics, reasons, "map", (mdl_metric_t){NAN, job->rank_reason});
        return;
    }
    add_metric(metrics, reasons, "ndcg", r->ndcg);
    add_metric(metrics, reasons, "map", r->map);
    groups = cJSON_GetObjectItem(root, "groups");
    cJSON_AddNumberToObject(groups, "queries", (double)r->n_queries);
    cJSON_AddNumberToObject(groups, "ndcg_all_irrelevant", (double)r->ndcg_all_irrelevant);
    cJSON_AddNumberToObject(groups, "map_skipped_no_relevant", (double)r->map_queries_skipped);
}

static void add_multiclass(cJSON *root, cJSON *metrics, cJSON *reasons, const eval_job_t *job,
                           const mdl_model_t *m)
{
    const mdl_eval_multiclass_t *mc = &job->multi;
    cJSON *per_class = cJSON_AddArrayToObject(root, "classes");

    cJSON_AddNumberToObject(root, "n_classes", (double)mc->n_classes);
    add_metric(metrics, reasons, "roc_auc_ovr_macro", mc->auc_macro);
    add_metric(metrics, reasons, "roc_auc_ovr_weighted", mc->auc_weighted);
    add_metric(metrics, reasons, "logloss", mc->logloss);
    cJSON_AddNumberToObject(root, "auc_classes_skipped", (double)mc->auc_classes_skipped);
    for (size_t c = 0; c < mc->n_classes; c++) {
        cJSON *item = cJSON_CreateObject();
        if (m && c < m->n_classes)
            cJSON_AddStringToObject(item, "class", m->classes[c]);
        else
            cJSON_AddNumberToObject(item, "class", (double)c);
        add_nullable(item, "roc_auc", job->class_auc[c].reason ? NAN : job->class_auc[c].value);
        if (job->class_auc[c].reason)
            cJSON_AddStringToObject(item, "reason", job->class_auc[c].reason);
        cJSON_AddItemToArray(per_class, item);
    }
}

static const char *task_label(task_t t)
{
    return t == TASK_MULTICLASS ? "multiclass" : t == TASK_RANKING ? "ranking" : "binary";
}

static void final_reply(mdl_server_t *srv, mdl_request_t *req, int cancelled)
{
    eval_job_t *job = req->job;
    cJSON *root, *metrics, *reasons;
    (void)srv;

    req->job = NULL;
    req->parse_s = job->parse_s;
    if (cancelled) {
        job_free(job);
        return;
    }
    if (job->rc < 0) {
        if (job->rc == -EBADMSG)
            mdl_reply_error(req, 400, "invalid_json", "%s", job->err.msg);
        else
            mdl_reply_err(req, &job->err);
        job_free(job);
        return;
    }
    root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "task", task_label(job->task));
    if (req->model) {
        cJSON *model = cJSON_AddObjectToObject(root, "model");
        cJSON_AddStringToObject(model, "name", req->slot->name);
        cJSON_AddNumberToObject(model, "version", (double)req->version);
    }
    cJSON_AddNumberToObject(root, "rows", (double)job->cols.n_rows);
    cJSON_AddBoolToObject(root, "weighted", job->cols.weights != NULL);
    if (job->cols.groups) {
        cJSON *groups = cJSON_AddObjectToObject(root, "groups");
        cJSON_AddNumberToObject(groups, "count", (double)job->cols.n_groups);
    }
    metrics = cJSON_AddObjectToObject(root, "metrics");
    reasons = cJSON_CreateObject();
    if (job->task == TASK_MULTICLASS) {
        add_multiclass(root, metrics, reasons, job, req->model);
    } else {
        if (job->task == TASK_BINARY)
            add_binary(root, metrics, reasons, job);
        add_ranking(root, metrics, reasons, job);
    }
    cJSON_AddItemToObject(root, "reasons", reasons);
    job_free(job);
    mdl_reply_json(req, 200, root);
}

/* ---- the stream ---- */

static void start_step(mdl_server_t *srv, mdl_request_t *req);

static void step_after(mdl_server_t *srv, mdl_request_t *req, int cancelled)
{
    eval_job_t *job = req->job;
    (void)cancelled; /* the HTTP layer aborts cancelled steps itself */

    job->step_running = false;
    if (job->rc < 0) {
        if (job->rc == -EBADMSG)
            mdl_reply_error(req, 400, "invalid_json", "%s", job->err.msg);
        else
            mdl_reply_err(req, &job->err);
        return;
    }
    if (job->in.len >= CHUNK)
        start_step(srv, req);
    if (job->in.len < PAUSE_AT)
        mdl_request_resume(srv, req);
}

/* Hands what has arrived to a step (with the tail the last one left). */
static void start_step(mdl_server_t *srv, mdl_request_t *req)
{
    eval_job_t *job = req->job;

    if (job->in.len)
        mdl_buf_append(&job->work, job->in.data, job->in.len);
    job->in.len = 0;
    if (job->work.failed) {
        mdl_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    if (mdl_request_step(srv, req, step_work, step_after) < 0) {
        mdl_reply_overloaded(req);
        return;
    }
    job->step_running = true;
}

static int on_data(mdl_server_t *srv, mdl_request_t *req, const char *data, size_t len)
{
    eval_job_t *job = req->job;

    mdl_buf_append(&job->in, data, len);
    if (job->in.failed) {
        mdl_reply_error(req, 500, "internal", "out of memory");
        return -1;
    }
    if (!job->step_running && job->in.len >= CHUNK) {
        start_step(srv, req);
        if (req->resp)
            return -1;
    }
    return job->step_running && job->in.len >= PAUSE_AT ? 1 : 0;
}

static void on_end(mdl_server_t *srv, mdl_request_t *req)
{
    eval_job_t *job = req->job;

    if (job->in.len)
        mdl_buf_append(&job->work, job->in.data, job->in.len);
    job->in.len = 0;
    if (job->work.failed) {
        req->job = NULL;
        job_free(job);
        mdl_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    if (mdl_request_defer(srv, req, final_work, final_reply) < 0) {
        req->job = NULL;
        job_free(job);
        mdl_reply_overloaded(req);
    }
}

static void on_abort(mdl_request_t *req)
{
    job_free(req->job);
    req->job = NULL;
}

static const mdl_body_ops_t stream_ops = {on_data, on_end, on_abort};

/* Content-Type -> body format; -1 if none fits. */
static int body_format(const char *ct)
{
    static const struct {
        const char *type;
        mdl_eval_format_t format;
    } types[] = {{"application/json", MDL_EVAL_JSON},
                 {"application/x-ndjson", MDL_EVAL_NDJSON},
                 {"application/ndjson", MDL_EVAL_NDJSON},
                 {"application/jsonl", MDL_EVAL_NDJSON},
                 {"text/csv", MDL_EVAL_CSV}};

    for (size_t i = 0; ct && i < sizeof types / sizeof types[0]; i++) {
        size_t n = strlen(types[i].type);
        if (strncasecmp(ct, types[i].type, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' '))
            return (int)types[i].format;
    }
    return -1;
}

void mdl_handle_score_auc(mdl_server_t *srv, mdl_request_t *req)
{
    const mdl_model_t *m = req->model;
    const char *ct = mdl_request_header(req, "Content-Type");
    const char *task = mdl_request_arg(req, "task");
    int format = body_format(ct);
    eval_job_t *job;

    if (format < 0) {
        mdl_reply_error(req, 415, "unsupported_media_type",
                        "Content-Type must be application/json, application/x-ndjson or text/csv, got '%s'",
                        ct ? ct : "(none)");
        return;
    }
    if (m && !mdl_model_is_tabular(m)) {
        mdl_reply_error(req, 400, "invalid_argument", "model '%s' (kind %s) does not score rows", req->slot->name,
                        m->kind->name);
        return;
    }
    job = calloc(1, sizeof *job);
    if (!job) {
        mdl_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    if (query_number(req, "threshold", NAN, &job->threshold) < 0 || query_number(req, "k", -1, &job->k) < 0 ||
        query_number(req, "n_bins", -1, &job->n_bins) < 0) {
        free(job);
        return;
    }
    snprintf(job->task_name, sizeof job->task_name, "%s", task ? task : "");
    job->stream = mdl_evalstream_new((mdl_eval_format_t)format, m, srv->config.max_eval_rows);
    if (!job->stream) {
        free(job);
        mdl_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    req->job = job;
    mdl_request_stream_body(req, &stream_ops);
}
