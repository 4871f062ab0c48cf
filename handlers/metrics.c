/* GET /metrics: the Prometheus text exposition format 0.0.4. */
#include "handler.h"
#include "server/buf.h"
#include "server/server.h"

void mdl_handle_metrics(mdl_server_t *srv, mdl_request_t *req)
{
    mdl_buf_t out = {0};
    size_t len;
    char *text;

    mdl_metrics_render(srv->metrics, &out);
    mdl_buf_puts(&out, "# HELP modeld_model_loaded 1 for the version of each model that is serving.\n"
                       "# TYPE modeld_model_loaded gauge\n");
    for (size_t i = 0; i < mdl_registry_count(srv->registry); i++) {
        const mdl_slot_t *slot = mdl_registry_at(srv->registry, i);
        if (slot->model)
            mdl_buf_printf(&out, "modeld_model_loaded{model=\"%s\",version=\"%ld\"} 1\n", slot->name,
                           slot->version);
    }
    if (out.failed) {
        mdl_buf_done(&out);
        mdl_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    text = mdl_buf_steal(&out, &len);
    mdl_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}
