/* GET /metrics: the Prometheus text exposition format 0.0.4. */
#include <string.h>

#include "handler.h"
#include "server/buf.h"
#include "server/server.h"

/* Gauges read off the registry at scrape time. */
static void render_registry(const mdl_registry_t *reg, mdl_buf_t *out)
{
    static const char *const help[] = {
        "modeld_model_loaded 1 for each loaded version of each model",
        "modeld_model_version The version requests without one are served by",
        "modeld_model_last_load_timestamp_seconds When the serving version was loaded",
        "modeld_model_bytes Artifact bytes of the loaded versions",
    };

    for (int g = 0; g < 4; g++) {
        const char *name = help[g];
        size_t name_len = strcspn(name, " ");
        mdl_buf_printf(out, "# HELP %s\n# TYPE %.*s gauge\n", name, (int)name_len, name);
        for (size_t i = 0; i < mdl_registry_count(reg); i++) {
            const mdl_slot_t *slot = mdl_registry_at(reg, i);
            size_t bytes = 0;
            if (slot->removed)
                continue;
            for (size_t j = 0; j < slot->n_versions; j++) {
                const mdl_version_t *v = &slot->versions[j];
                if (!v->model)
                    continue;
                bytes += v->model->artifact_bytes;
                if (g == 0)
                    mdl_buf_printf(out, "modeld_model_loaded{model=\"%s\",version=\"%ld\"} 1\n", slot->name,
                                   v->number);
            }
            if (g == 1 && slot->version >= 0)
                mdl_buf_printf(out, "modeld_model_version{model=\"%s\"} %ld\n", slot->name, slot->version);
            if (g == 2 && slot->version >= 0)
                mdl_buf_printf(out, "modeld_model_last_load_timestamp_seconds{model=\"%s\"} %.3f\n", slot->name,
                               slot->loaded_at);
            if (g == 3)
                mdl_buf_printf(out, "modeld_model_bytes{model=\"%s\"} %zu\n", slot->name, bytes);
        }
    }
}

void mdl_handle_metrics(mdl_server_t *srv, mdl_request_t *req)
{
    mdl_buf_t out = {0};
    size_t len;
    char *text;

    mdl_metrics_render(srv->metrics, &out);
    render_registry(srv->registry, &out);
    if (out.failed) {
        mdl_buf_done(&out);
        mdl_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    text = mdl_buf_steal(&out, &len);
    mdl_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}
