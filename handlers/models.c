/* GET /v1/models and GET /v1/models/{m}[/versions/{v}]: what is served and how to call it. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "handler.h"
#include "server/router.h"
#include "server/server.h"

static const char *slot_kind(const mdl_slot_t *slot)
{
    if (slot->model)
        return slot->model->kind->name;
    return slot->kind[0] ? slot->kind : NULL;
}

static void add_nullable_string(cJSON *obj, const char *key, const char *value)
{
    if (value && value[0])
        cJSON_AddStringToObject(obj, key, value);
    else
        cJSON_AddNullToObject(obj, key);
}

static void add_version(cJSON *obj, long version)
{
    if (version >= 0)
        cJSON_AddNumberToObject(obj, "version", (double)version);
    else
        cJSON_AddNullToObject(obj, "version");
}

/* The list carries two shapes: modeld's own "models" and, for OpenAI clients (which read
 * only these keys), "object": "list" with "data" entries {id, object, created, owned_by}. */
void mdl_handle_models_list(mdl_server_t *srv, mdl_request_t *req)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(root, "models");
    cJSON *data;

    cJSON_AddStringToObject(root, "object", "list");
    data = cJSON_AddArrayToObject(root, "data");

    for (size_t i = 0; i < mdl_registry_count(srv->registry); i++) {
        const mdl_slot_t *slot = mdl_registry_at(srv->registry, i);
        cJSON *item;
        if (slot->removed)
            continue;
        item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, "name", slot->name);
        add_nullable_string(item, "kind", slot_kind(slot));
        add_version(item, slot->version);
        cJSON_AddStringToObject(item, "state", mdl_slot_state_name(slot->state));
        cJSON_AddItemToArray(list, item);
        item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, "id", slot->name);
        cJSON_AddStringToObject(item, "object", "model");
        cJSON_AddNumberToObject(item, "created", (double)(long long)slot->loaded_at);
        cJSON_AddStringToObject(item, "owned_by", "modeld");
        cJSON_AddItemToArray(data, item);
    }
    mdl_reply_json(req, 200, root);
}

static cJSON *describe_inputs(const mdl_model_t *m)
{
    cJSON *inputs = cJSON_CreateArray();

    for (size_t i = 0; i < m->n_features; i++) {
        const mdl_feature_t *f = &m->features[i];
        cJSON *item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, "name", f->name);
        cJSON_AddStringToObject(item, "type", f->n_categories ? "category" : "number");
        if (f->ignored)
            cJSON_AddTrueToObject(item, "ignored");
        if (f->n_categories)
            cJSON_AddItemToObject(item, "categories",
                                  cJSON_CreateStringArray((const char *const *)f->categories,
                                                          (int)f->n_categories));
        cJSON_AddItemToArray(inputs, item);
    }
    return inputs;
}

static cJSON *describe_outputs(const mdl_model_t *m)
{
    static const struct {
        mdl_output_t kind;
        const char *name;
    } kinds[] = {{MDL_OUTPUT_VALUE, "value"}, {MDL_OUTPUT_MARGIN, "margin"}, {MDL_OUTPUT_LEAF, "leaf"}};
    cJSON *outputs = cJSON_CreateArray();

    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        size_t width = mdl_model_output_width(m, kinds[i].kind);
        cJSON *item;
        if (!width)
            continue;
        item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, "name", kinds[i].name);
        cJSON_AddNumberToObject(item, "width", (double)width);
        cJSON_AddItemToArray(outputs, item);
    }
    return outputs;
}

static const char *version_state(const mdl_version_t *v)
{
    return v->model ? "ready" : v->loading || v->settling ? "loading" : "failed";
}

static cJSON *describe_versions(const mdl_slot_t *slot)
{
    cJSON *list = cJSON_CreateArray();

    for (size_t i = 0; i < slot->n_versions; i++) {
        const mdl_version_t *v = &slot->versions[i];
        cJSON *item = cJSON_CreateObject();
        cJSON_AddNumberToObject(item, "version", (double)v->number);
        cJSON_AddStringToObject(item, "state", version_state(v));
        add_nullable_string(item, "error", v->error);
        cJSON_AddItemToArray(list, item);
    }
    return list;
}

/* TF Serving's GetModelStatus shape: every version (or the one the path names) with
 * state START | LOADING | AVAILABLE | UNLOADING | END and a status. */
static cJSON *tf_version_status(const mdl_slot_t *slot, long only)
{
    cJSON *list = cJSON_CreateArray();

    for (size_t i = 0; i < slot->n_versions; i++) {
        const mdl_version_t *v = &slot->versions[i];
        cJSON *item, *status;
        char num[24];
        if (only >= 0 && v->number != only)
            continue;
        item = cJSON_CreateObject();
        snprintf(num, sizeof num, "%ld", v->number);
        cJSON_AddStringToObject(item, "version", num);
        cJSON_AddStringToObject(item, "state", v->model ? "AVAILABLE" : v->loading || v->settling ? "LOADING" : "END");
        status = cJSON_AddObjectToObject(item, "status");
        cJSON_AddStringToObject(status, "error_code", !v->model && v->error[0] ? "UNKNOWN" : "OK");
        cJSON_AddStringToObject(status, "error_message", v->model ? "" : v->error);
        cJSON_AddItemToArray(list, item);
    }
    return list;
}

/* Describes the serving version, or the one the path names. */
void mdl_handle_model_get(mdl_server_t *srv, mdl_request_t *req)
{
    const mdl_slot_t *slot = req->slot;
    const mdl_version_t *v = mdl_slot_version(slot, req->version);
    const mdl_model_t *m = v ? v->model : NULL;
    cJSON *root = cJSON_CreateObject();
    (void)srv;

    cJSON_AddStringToObject(root, "name", slot->name);
    add_nullable_string(root, "kind", m ? m->kind->name : slot_kind(slot));
    add_version(root, req->version);
    cJSON_AddStringToObject(root, "state", v ? version_state(v) : mdl_slot_state_name(slot->state));
    if (m) {
        char when[40];
        time_t secs = (time_t)v->loaded_at;
        struct tm tm;
        cJSON *artifact;

        cJSON_AddStringToObject(root, "task", mdl_task_name(m->task));
        if (m->negative_sampling_rate > 0)
            cJSON_AddNumberToObject(root, "negative_sampling_rate", m->negative_sampling_rate);
        else
            cJSON_AddNullToObject(root, "negative_sampling_rate");
        cJSON_AddItemToObject(root, "inputs", describe_inputs(m));
        cJSON_AddItemToObject(root, "outputs", describe_outputs(m));
        if (mdl_model_lm(m))
            cJSON_AddItemToObject(root, "generation", mdl_generation_describe(m));
        if (m->n_classes)
            cJSON_AddItemToObject(root, "classes",
                                  cJSON_CreateStringArray((const char *const *)m->classes,
                                                          (int)m->n_classes));
        gmtime_r(&secs, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        cJSON_AddStringToObject(root, "loaded_at", when);
        artifact = cJSON_AddObjectToObject(root, "artifact");
        cJSON_AddStringToObject(artifact, "path", m->artifact);
        cJSON_AddStringToObject(artifact, "sha256", m->sha256);
        cJSON_AddNumberToObject(artifact, "bytes", (double)m->artifact_bytes);
    }
    cJSON_AddItemToObject(root, "versions", describe_versions(slot));
    cJSON_AddItemToObject(root, "model_version_status",
                          tf_version_status(slot, strstr(req->route->pattern, "{v}") ? req->version : -1));
    add_nullable_string(root, "last_error", slot->last_error);
    mdl_reply_json(req, 200, root);
}
