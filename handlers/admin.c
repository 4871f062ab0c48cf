/* Admin calls on the repository: load, unload and reload a model (native and the KServe
 * repository extension), and the repository index. The router has already checked the
 * bearer token. Loads answer once the model has settled (loaded or failed). */
#include <stdio.h>
#include <stdlib.h>

#include "handler.h"
#include "server/server.h"

static cJSON *describe(const mdl_slot_t *slot)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "name", slot->name);
    if (slot->version >= 0)
        cJSON_AddNumberToObject(o, "version", (double)slot->version);
    else
        cJSON_AddNullToObject(o, "version");
    cJSON_AddStringToObject(o, "state", mdl_slot_state_name(slot->state));
    if (slot->last_error[0])
        cJSON_AddStringToObject(o, "last_error", slot->last_error);
    return o;
}

/* The answer once the model has settled: 200 if it serves, else the load error. */
static void reply_settled(mdl_server_t *srv, mdl_request_t *req, int cancelled)
{
    const mdl_slot_t *slot = mdl_registry_find(srv->registry, req->model_name);
    (void)cancelled;

    if (!slot)
        mdl_reply_error(req, 404, "model_not_found", "model '%s' is no longer in the repository", req->model_name);
    else if (slot->state == MDL_SLOT_READY)
        mdl_reply_json(req, 200, describe(slot));
    else
        mdl_reply_error(req, 400, "load_failed", "model '%s' did not load: %s", slot->name,
                        slot->last_error[0] ? slot->last_error : "no version to serve");
}

static void on_settled(void *arg)
{
    mdl_request_t *req = arg;
    mdl_request_release(req->job, req);
}

typedef int registry_op_fn(mdl_registry_t *reg, const char *name, mdl_err_t *reterr);

static void load_and_wait(mdl_server_t *srv, mdl_request_t *req, registry_op_fn *op)
{
    mdl_err_t err = {0};
    mdl_slot_t *slot;

    if (op(srv->registry, req->model_name, &err) < 0 ||
        !(slot = mdl_registry_find(srv->registry, req->model_name))) {
        mdl_reply_error(req, 404, "model_not_found", "%s", err.msg[0] ? err.msg : "model not found");
        return;
    }
    req->job = srv; /* for on_settled */
    mdl_request_hold(srv, req, reply_settled);
    if (mdl_registry_when_settled(srv->registry, slot, on_settled, req) < 0)
        mdl_request_release(srv, req); /* out of memory: answer with the state as it is */
}

void mdl_handle_model_load(mdl_server_t *srv, mdl_request_t *req)
{
    load_and_wait(srv, req, mdl_registry_load);
}

void mdl_handle_model_reload(mdl_server_t *srv, mdl_request_t *req)
{
    load_and_wait(srv, req, mdl_registry_reload);
}

void mdl_handle_model_unload(mdl_server_t *srv, mdl_request_t *req)
{
    mdl_err_t err = {0};

    if (mdl_registry_unload(srv->registry, req->model_name, &err) < 0) {
        mdl_reply_error(req, 404, "model_not_found", "%s", err.msg);
        return;
    }
    mdl_reply_json(req, 200, describe(mdl_registry_find(srv->registry, req->model_name)));
}

/* KServe repository index: every model with its state, as READY / UNAVAILABLE / LOADING. */
void mdl_handle_repository_index(mdl_server_t *srv, mdl_request_t *req)
{
    cJSON *list = cJSON_CreateArray();

    mdl_registry_rescan(srv->registry);
    for (size_t i = 0; i < mdl_registry_count(srv->registry); i++) {
        const mdl_slot_t *slot = mdl_registry_at(srv->registry, i);
        cJSON *o;
        if (slot->removed)
            continue;
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", slot->name);
        if (slot->version >= 0) {
            char v[24];
            snprintf(v, sizeof v, "%ld", slot->version);
            cJSON_AddStringToObject(o, "version", v);
        }
        cJSON_AddStringToObject(o, "state", slot->state == MDL_SLOT_READY     ? "READY"
                                            : slot->state == MDL_SLOT_LOADING ? "LOADING"
                                                                              : "UNAVAILABLE");
        cJSON_AddStringToObject(o, "reason", slot->last_error);
        cJSON_AddItemToArray(list, o);
    }
    mdl_reply_json(req, 200, list);
}
