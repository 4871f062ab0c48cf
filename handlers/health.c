/* Liveness and readiness probes. Both answer on the loop without touching a model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handler.h"
#include "server/server.h"

void mdl_handle_healthz(mdl_server_t *srv, mdl_request_t *req)
{
    static const char body[] = "{\"status\":\"ok\"}";
    char *copy = malloc(sizeof body);
    (void)srv;

    if (!copy) {
        mdl_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    memcpy(copy, body, sizeof body);
    mdl_reply(req, 200, "application/json", copy, sizeof body - 1);
}

/* Whether readiness waits for this model: config ready_models lists them
 * (comma-separated), or, when it is empty, every model in the repository counts. */
static bool required(const mdl_server_t *srv, const char *name)
{
    const char *list = srv->config.ready_models;
    size_t n = strlen(name);

    if (!list[0])
        return true;
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, name, n) == 0)
            return true;
        p += len + (p[len] == ',');
    }
    return false;
}

static void add_not_ready(cJSON *list, const char *name, const char *state, const char *error)
{
    cJSON *item = cJSON_CreateObject();

    cJSON_AddStringToObject(item, "name", name);
    cJSON_AddStringToObject(item, "state", state);
    if (error && error[0])
        cJSON_AddStringToObject(item, "error", error);
    cJSON_AddItemToArray(list, item);
}

/* The models that keep the server unready (draining counts every required model), as a
 * JSON array, empty when ready. NULL on out of memory. */
static cJSON *not_ready_list(const mdl_server_t *srv)
{
    cJSON *list = cJSON_CreateArray();
    const char *names = srv->config.ready_models;

    if (!list)
        return NULL;
    for (size_t i = 0; i < mdl_registry_count(srv->registry); i++) {
        const mdl_slot_t *slot = mdl_registry_at(srv->registry, i);
        bool explicit = names[0] != '\0';
        if (slot->removed || !required(srv, slot->name) || (slot->unloaded && !explicit))
            continue;
        if (srv->draining)
            add_not_ready(list, slot->name, "draining", NULL);
        else if (slot->state != MDL_SLOT_READY)
            add_not_ready(list, slot->name, mdl_slot_state_name(slot->state), slot->last_error);
    }
    for (const char *p = names; *p;) { /* required models the repository does not have */
        char name[65];
        size_t len = strcspn(p, ",");
        snprintf(name, sizeof name, "%.*s", (int)(len < 64 ? len : 64), p);
        if (len && !mdl_registry_find(srv->registry, name))
            add_not_ready(list, name, "missing", "no such model folder in the repository");
        p += len + (p[len] == ',');
    }
    return list;
}

bool mdl_server_ready(const mdl_server_t *srv)
{
    cJSON *list = not_ready_list(srv);
    bool ready = list && !srv->draining && cJSON_GetArraySize(list) == 0;

    cJSON_Delete(list);
    return ready;
}

/* 200 when every required model serves and the server is not draining; else 503 with the
 * models that keep it unready. A model that serves keeps it ready even if a newer version
 * failed to load. */
void mdl_handle_readyz(mdl_server_t *srv, mdl_request_t *req)
{
    cJSON *root = cJSON_CreateObject(), *list = not_ready_list(srv);
    bool ready = list && !srv->draining && cJSON_GetArraySize(list) == 0;

    cJSON_AddStringToObject(root, "status", ready ? "ready" : srv->draining ? "draining" : "not_ready");
    if (ready)
        cJSON_Delete(list);
    else
        cJSON_AddItemToObject(root, "not_ready", list);
    mdl_reply_json(req, ready ? 200 : 503, root);
}
