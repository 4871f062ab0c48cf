/* Open Inference Protocol (KServe V2) over REST: server metadata and health, model
 * metadata and readiness, inference (JSON and the binary tensor data extension) and the
 * statistics extension. The repository extension shares handlers/admin.c. Errors on every
 * /v2 path have the protocol's {"error": "..."} shape (handlers/reply.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "handler.h"
#include "score.h"
#include "server/router.h"
#include "server/server.h"
#include "v2_infer.h"

#define HEADER_LENGTH "Inference-Header-Content-Length"

/* Health and readiness answers carry their result in the status; bodies are empty. */
static void reply_empty(mdl_request_t *req, int status)
{
    char *body = malloc(1);

    if (!body) {
        mdl_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    body[0] = '\0';
    mdl_reply(req, status, "text/plain", body, 0);
}

/* GET /v2: who we are and which extensions we speak. */
void mdl_handle_v2_server(mdl_server_t *srv, mdl_request_t *req)
{
    static const char *const extensions[] = {"binary_tensor_data", "statistics", "model_repository"};
    cJSON *root = cJSON_CreateObject();
    (void)srv;

    cJSON_AddStringToObject(root, "name", "modeld");
    cJSON_AddStringToObject(root, "version", MDL_VERSION);
    cJSON_AddItemToObject(root, "extensions", cJSON_CreateStringArray(extensions, 3));
    mdl_reply_json(req, 200, root);
}

void mdl_handle_v2_live(mdl_server_t *srv, mdl_request_t *req)
{
    (void)srv;
    reply_empty(req, 200);
}

/* 4xx means "not ready" in this protocol; 400 as Triton answers. */
void mdl_handle_v2_ready(mdl_server_t *srv, mdl_request_t *req)
{
    reply_empty(req, mdl_server_ready(srv) ? 200 : 400);
}

/* The version the path names, or the serving one; NULL if it is not loaded. */
static const mdl_model_t *addressed_model(const mdl_request_t *req)
{
    const mdl_version_t *v = mdl_slot_version(req->slot, req->version);

    return v ? v->model : NULL;
}

static cJSON *tensor_meta(const char *name, const char *datatype, long d0, long d1)
{
    cJSON *t = cJSON_CreateObject(), *shape = cJSON_CreateArray();

    cJSON_AddStringToObject(t, "name", name);
    cJSON_AddStringToObject(t, "datatype", datatype);
    cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)d0));
    if (d1 >= 0)
        cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)d1));
    cJSON_AddItemToObject(t, "shape", shape);
    return t;
}

/* GET /v2/models/{m}[/versions/{v}]: name, loaded versions, platform, and the tensors:
 * the matrix input and the outputs (-1 = any number of rows). */
void mdl_handle_v2_model(mdl_server_t *srv, mdl_request_t *req)
{
    const mdl_slot_t *slot = req->slot;
    const mdl_model_t *m = addressed_model(req);
    cJSON *root, *versions, *inputs, *outputs;
    mdl_output_t kinds[MDL_V2_MAX_OUTPUTS];
    const char *names[MDL_V2_MAX_OUTPUTS], *types[MDL_V2_MAX_OUTPUTS];
    char platform[64], num[24];
    size_t n;
    (void)srv;

    if (m && mdl_model_lm(m)) {
        mdl_v2_generate_metadata(srv, req);
        return;
    }
    if (!m || !mdl_model_is_tabular(m)) {
        mdl_reply_error(req, 400, "model_not_ready", "model '%s'%s is not loaded (%s)", slot->name,
                        req->version >= 0 ? " at that version" : "",
                        slot->last_error[0] ? slot->last_error : mdl_slot_state_name(slot->state));
        return;
    }
    root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "name", slot->name);
    versions = cJSON_AddArrayToObject(root, "versions");
    for (size_t i = 0; i < slot->n_versions; i++)
        if (slot->versions[i].model) {
            snprintf(num, sizeof num, "%ld", slot->versions[i].number);
            cJSON_AddItemToArray(versions, cJSON_CreateString(num));
        }
    snprintf(platform, sizeof platform, "modeld_%s", m->kind->name);
    cJSON_AddStringToObject(root, "platform", platform);
    inputs = cJSON_AddArrayToObject(root, "inputs");
    cJSON_AddItemToArray(inputs, tensor_meta("input", "FP64", -1, (long)m->n_features));
    outputs = cJSON_AddArrayToObject(root, "outputs");
    n = mdl_v2_model_outputs(m, kinds, names, types);
    for (size_t i = 0; i < n; i++) {
        size_t width = mdl_model_output_width(m, kinds[i]);
        cJSON_AddItemToArray(outputs, tensor_meta(names[i], types[i], -1, width > 1 ? (long)width : -1));
    }
    mdl_reply_json(req, 200, root);
}

/* GET /v2/models/{m}[/versions/{v}]/ready */
void mdl_handle_v2_model_ready(mdl_server_t *srv, mdl_request_t *req)
{
    (void)srv;
    reply_empty(req, addressed_model(req) ? 200 : 400);
}

/* ---- inference ---- */

static void ctx_free(void *ctx)
{
    mdl_v2_infer_t *r = ctx;

    if (r) {
        mdl_v2_infer_done(r);
        free(r);
    }
}

static void infer_reply(mdl_server_t *srv, mdl_request_t *req, int cancelled)
{
    mdl_score_job_t *job = req->job;
    mdl_v2_infer_t *r = job->ctx;
    const double *values[MDL_SCORE_MAX_OUTPUTS];
    size_t widths[MDL_SCORE_MAX_OUTPUTS], len, json_len;
    mdl_err_t err = {0};
    char *body;
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
    for (size_t i = 0; i < job->n_outputs; i++) {
        values[i] = job->outputs[i].values;
        widths[i] = job->outputs[i].width;
    }
    r->n_rows = job->n_rows;
    if (mdl_v2_infer_encode(r, req->slot->name, req->version, values, widths, &body, &len, &json_len, &err) < 0) {
        mdl_reply_err(req, &err);
        mdl_score_job_free(job);
        return;
    }
    mdl_score_job_free(job);
    if (json_len == len) {
        mdl_reply(req, 200, "application/json", body, len);
        return;
    }
    /* The binary tensor data extension: the JSON header's length in a header, the raw
     * output bytes after it. */
    mdl_reply(req, 200, "application/octet-stream", body, len);
    req->extra_header = HEADER_LENGTH;
    snprintf(req->extra_value, sizeof req->extra_value, "%zu", json_len);
}

static bool content_type_is(const char *ct, const char *want)
{
    size_t n = strlen(want);

    return ct && strncasecmp(ct, want, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* The JSON part's length: the extension's header, or the whole body. -1 (reply set) when
 * the header or the content type is wrong. */
static long long json_part_length(mdl_request_t *req)
{
    const char *hl = mdl_request_header(req, HEADER_LENGTH);
    const char *ct = mdl_request_header(req, "Content-Type");
    char *end;
    unsigned long long n;

    if (!hl) {
        if (!content_type_is(ct, "application/json")) {
            mdl_reply_error(req, 415, "unsupported_media_type",
                            "Content-Type must be application/json (or send the binary tensor data extension's "
                            HEADER_LENGTH " header), got '%s'", ct ? ct : "(none)");
            return -1;
        }
        return (long long)req->body_len;
    }
    n = strtoull(hl, &end, 10);
    if (hl[0] < '0' || hl[0] > '9' || *end != '\0' || n > req->body_len) {
        mdl_reply_error(req, 400, "invalid_argument",
                        HEADER_LENGTH " must be a byte count within the %zu-byte body, got '%.32s'",
                        req->body_len, hl);
        return -1;
    }
    return (long long)n;
}

/* POST /v2/models/{m}[/versions/{v}]/infer */
void mdl_handle_v2_infer(mdl_server_t *srv, mdl_request_t *req)
{
    const mdl_model_t *m = req->model;
    mdl_output_t kinds[MDL_V2_MAX_OUTPUTS];
    mdl_v2_infer_t parsed, *r;
    mdl_score_job_t *job;
    mdl_err_t err = {0};
    double t0 = mdl_now();
    long long json_len;
    size_t saved_len;
    int rc;

    if (mdl_model_lm(m)) {
        mdl_v2_generate(srv, req);
        return;
    }
    if (!mdl_model_is_tabular(m)) {
        mdl_reply_error(req, 400, "invalid_argument", "model '%s' (kind %s) does not score rows",
                        req->slot->name, m->kind->name);
        return;
    }
    if ((json_len = json_part_length(req)) < 0)
        return;
    /* The nesting bound applies to the JSON part only (binary data may hold any byte). */
    saved_len = req->body_len;
    req->body_len = (size_t)json_len;
    rc = mdl_request_check_depth(srv, req);
    req->body_len = saved_len;
    if (rc < 0)
        return;
    rc = mdl_v2_infer_parse(m, req->body, req->body_len, (size_t)json_len, srv->config.max_instances,
                            &parsed, &err);
    req->parse_s = mdl_now() - t0;
    if (rc < 0) {
        if (rc == -EBADMSG || rc == -EPROTO)
            mdl_reply_error(req, 400, "invalid_argument", "%s", err.msg);
        else
            mdl_reply_err(req, &err);
        return;
    }
    if (!(r = malloc(sizeof *r))) {
        mdl_v2_infer_done(&parsed);
        mdl_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    *r = parsed;
    for (size_t i = 0; i < r->n_outputs; i++)
        kinds[i] = r->outputs[i].kind;
    job = mdl_score_job_new(m, r->rows, r->n_rows, kinds, r->n_outputs); /* takes the rows */
    r->rows = NULL;
    if (!job) {
        ctx_free(r);
        mdl_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    job->ctx = r;
    job->ctx_free = ctx_free;
    mdl_score_start(srv, req, job, infer_reply);
}

/* ---- statistics extension ---- */

static cJSON *duration(unsigned long long count, unsigned long long ns)
{
    cJSON *d = cJSON_CreateObject();

    cJSON_AddNumberToObject(d, "count", (double)count);
    cJSON_AddNumberToObject(d, "ns", (double)ns);
    return d;
}

static cJSON *version_stats(const mdl_server_t *srv, const mdl_slot_t *slot, long version)
{
    const mdl_infer_stats_t *st = mdl_metrics_get_infer_stats(srv->metrics, slot->name, version);
    static const mdl_infer_stats_t none;
    cJSON *o = cJSON_CreateObject(), *is;
    char num[24];

    if (!st)
        st = &none;
    snprintf(num, sizeof num, "%ld", version);
    cJSON_AddStringToObject(o, "name", slot->name);
    cJSON_AddStringToObject(o, "version", num);
    cJSON_AddNumberToObject(o, "last_inference", (double)(unsigned long long)(st->last_unix_s * 1e3));
    cJSON_AddNumberToObject(o, "inference_count", (double)st->rows);
    cJSON_AddNumberToObject(o, "execution_count", (double)st->batches);
    is = cJSON_AddObjectToObject(o, "inference_stats");
    cJSON_AddItemToObject(is, "success", duration(st->success_count, st->success_ns));
    cJSON_AddItemToObject(is, "fail", duration(st->fail_count, st->fail_ns));
    cJSON_AddItemToObject(is, "queue", duration(st->batches, st->queue_ns));
    cJSON_AddItemToObject(is, "compute_input", duration(st->batches, st->input_ns));
    cJSON_AddItemToObject(is, "compute_infer", duration(st->batches, st->infer_ns));
    cJSON_AddItemToObject(is, "compute_output", duration(st->batches, st->output_ns));
    return o;
}

/* GET /v2/models/{m}[/versions/{v}]/stats: one entry per version (the one the path names,
 * or every version of the model present in the repository). */
void mdl_handle_v2_stats(mdl_server_t *srv, mdl_request_t *req)
{
    const mdl_slot_t *slot = req->slot;
    cJSON *root = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(root, "model_stats");
    bool one = strstr(req->route->pattern, "{v}") != NULL; /* the path names a version */

    for (size_t i = 0; i < slot->n_versions; i++)
        if (!one || slot->versions[i].number == req->version)
            cJSON_AddItemToArray(list, version_stats(srv, slot, slot->versions[i].number));
    mdl_reply_json(req, 200, root);
}
