/* Liveness and readiness probes. Both answer on the loop without touching a model. */
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

void mdl_handle_readyz(mdl_server_t *srv, mdl_request_t *req)
{
    cJSON *root = cJSON_CreateObject(), *list;
    bool ready = !srv->draining && mdl_registry_all_ready(srv->registry);

    cJSON_AddStringToObject(root, "status", ready ? "ready" : srv->draining ? "draining" : "not_ready");
    if (!ready) {
        list = cJSON_AddArrayToObject(root, "not_ready");
        for (size_t i = 0; i < mdl_registry_count(srv->registry); i++) {
            const mdl_slot_t *slot = mdl_registry_at(srv->registry, i);
            cJSON *item;
            if (slot->removed || (slot->state == MDL_SLOT_READY && !srv->draining))
                continue;
            item = cJSON_CreateObject();
            cJSON_AddStringToObject(item, "name", slot->name);
            cJSON_AddStringToObject(item, "state", srv->draining && slot->state == MDL_SLOT_READY
                                                       ? "draining"
                                                       : mdl_slot_state_name(slot->state));
            if (slot->last_error[0])
                cJSON_AddStringToObject(item, "error", slot->last_error);
            cJSON_AddItemToArray(list, item);
        }
    }
    mdl_reply_json(req, ready ? 200 : 503, root);
}
