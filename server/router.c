#include "router.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char mdl_route_none[] = "none";

#define DATA SIZE_MAX
#define ADMIN_BODY 65536 /* admin calls carry at most a small JSON body, which they ignore */

/* Matched in order, so the hot routes come first. */
static const mdl_route_t routes[] = {
    {"predict", "POST", "/v1/models/{m}:predict", mdl_handle_predict,
     MDL_ROUTE_MODEL | MDL_ROUTE_READY | MDL_ROUTE_JSON, DATA},
    {"predict", "POST", "/v1/models/{m}/versions/{v}:predict", mdl_handle_predict,
     MDL_ROUTE_MODEL | MDL_ROUTE_READY | MDL_ROUTE_JSON, DATA},
    {"generate", "POST", "/v1/models/{m}:generate", mdl_handle_generate,
     MDL_ROUTE_MODEL | MDL_ROUTE_READY | MDL_ROUTE_JSON, DATA},
    {"generate", "POST", "/v1/models/{m}/versions/{v}:generate", mdl_handle_generate,
     MDL_ROUTE_MODEL | MDL_ROUTE_READY | MDL_ROUTE_JSON, DATA},
    /* The OpenAI routes name the model in the body; their handlers resolve it. */
    {"completions", "POST", "/v1/completions", mdl_handle_completions, MDL_ROUTE_JSON, DATA},
    {"chat_completions", "POST", "/v1/chat/completions", mdl_handle_chat_completions, MDL_ROUTE_JSON, DATA},
    {"healthz", "GET", "/healthz", mdl_handle_healthz, 0, 0},
    {"readyz", "GET", "/readyz", mdl_handle_readyz, 0, 0},
    {"metrics", "GET", "/metrics", mdl_handle_metrics, 0, 0},
    {"models", "GET", "/v1/models", mdl_handle_models_list, 0, 0},
    {"model", "GET", "/v1/models/{m}", mdl_handle_model_get, MDL_ROUTE_MODEL, 0},
    {"model", "GET", "/v1/models/{m}/versions/{v}", mdl_handle_model_get, MDL_ROUTE_MODEL, 0},
    {"admin", "POST", "/v1/models/{m}:load", mdl_handle_model_load, MDL_ROUTE_ADMIN, ADMIN_BODY},
    {"admin", "POST", "/v1/models/{m}:unload", mdl_handle_model_unload, MDL_ROUTE_ADMIN, ADMIN_BODY},
    {"admin", "POST", "/v1/models/{m}:reload", mdl_handle_model_reload, MDL_ROUTE_ADMIN, ADMIN_BODY},
    {"admin", "POST", "/v2/repository/index", mdl_handle_repository_index, MDL_ROUTE_ADMIN, ADMIN_BODY},
    {"admin", "POST", "/v2/repository/models/{m}/load", mdl_handle_model_load, MDL_ROUTE_ADMIN, ADMIN_BODY},
    {"admin", "POST", "/v2/repository/models/{m}/unload", mdl_handle_model_unload, MDL_ROUTE_ADMIN, ADMIN_BODY},

    /* Open Inference Protocol (KServe V2), handlers/v2.c. infer takes JSON or the binary
     * tensor data extension's framing, so its handler checks the content type. */
    {"infer", "POST", "/v2/models/{m}/infer", mdl_handle_v2_infer, MDL_ROUTE_MODEL | MDL_ROUTE_READY, DATA},
    {"infer", "POST", "/v2/models/{m}/versions/{v}/infer", mdl_handle_v2_infer,
     MDL_ROUTE_MODEL | MDL_ROUTE_READY, DATA},
    {"v2_server", "GET", "/v2", mdl_handle_v2_server, 0, 0},
    {"v2_health", "GET", "/v2/health/live", mdl_handle_v2_live, 0, 0},
    {"v2_health", "GET", "/v2/health/ready", mdl_handle_v2_ready, 0, 0},
    {"v2_model", "GET", "/v2/models/{m}", mdl_handle_v2_model, MDL_ROUTE_MODEL, 0},
    {"v2_model", "GET", "/v2/models/{m}/versions/{v}", mdl_handle_v2_model, MDL_ROUTE_MODEL, 0},
    {"v2_model", "GET", "/v2/models/{m}/ready", mdl_handle_v2_model_ready, MDL_ROUTE_MODEL, 0},
    {"v2_model", "GET", "/v2/models/{m}/versions/{v}/ready", mdl_handle_v2_model_ready, MDL_ROUTE_MODEL, 0},
    {"v2_stats", "GET", "/v2/models/{m}/stats", mdl_handle_v2_stats, MDL_ROUTE_MODEL, 0},
    {"v2_stats", "GET", "/v2/models/{m}/versions/{v}/stats", mdl_handle_v2_stats, MDL_ROUTE_MODEL, 0},
    /* Issue 5: ranking and evaluation. */
    {"rank", "POST", "/v1/models/{m}:rank", mdl_handle_rank,
     MDL_ROUTE_MODEL | MDL_ROUTE_READY | MDL_ROUTE_JSON, DATA},
    {"rank", "POST", "/v1/models/{m}/versions/{v}:rank", mdl_handle_rank,
     MDL_ROUTE_MODEL | MDL_ROUTE_READY | MDL_ROUTE_JSON, DATA},
    {"score_auc", "POST", "/v1/models/{m}:score-auc", mdl_handle_score_auc,
     MDL_ROUTE_MODEL | MDL_ROUTE_READY | MDL_ROUTE_STREAM, MDL_BODY_EVAL},
    {"score_auc", "POST", "/v1/models/{m}/versions/{v}:score-auc", mdl_handle_score_auc,
     MDL_ROUTE_MODEL | MDL_ROUTE_READY | MDL_ROUTE_STREAM, MDL_BODY_EVAL},
    {"score_auc", "POST", "/v1/score-auc", mdl_handle_score_auc, MDL_ROUTE_STREAM, MDL_BODY_EVAL},
};

#define N_ROUTES (sizeof routes / sizeof routes[0])

static int is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

/* Matches path against pattern, filling the captures. 1 on match. */
static int match_pattern(const char *pattern, const char *path, mdl_route_match_t *m)
{
    const char *p = pattern, *s = path;

    m->model[0] = '\0';
    m->version = -1;
    while (*p) {
        if (p[0] == '{' && p[2] == '}') {
            size_t n = 0;
            if (p[1] == 'm') {
                while (is_name_char(s[n]))
                    n++;
                if (n == 0 || n > MDL_NAME_MAX)
                    return 0;
                memcpy(m->model, s, n);
                m->model[n] = '\0';
                if (!mdl_name_valid(m->model)) /* "..", ".hidden": never a model */
                    return 0;
            } else {
                while (s[n] >= '0' && s[n] <= '9')
                    n++;
                if (n == 0 || n > 18)
                    return 0;
                m->version = strtol(s, NULL, 10);
            }
            s += n;
            p += 3;
        } else if (*p++ != *s++) {
            return 0;
        }
    }
    return *s == '\0';
}

int mdl_router_match(const char *method, const char *path, mdl_route_match_t *ret)
{
    mdl_route_match_t m;
    int path_known = 0;

    ret->allow[0] = '\0';
    for (size_t i = 0; i < N_ROUTES; i++) {
        if (!match_pattern(routes[i].pattern, path, &m))
            continue;
        if (strcmp(routes[i].method, method) == 0) {
            *ret = m;
            ret->route = &routes[i];
            return 0;
        }
        if (!strstr(ret->allow, routes[i].method)) {
            size_t len = strlen(ret->allow);
            snprintf(ret->allow + len, sizeof ret->allow - len, "%s%s", len ? ", " : "",
                     routes[i].method);
        }
        path_known = 1;
    }
    return path_known ? -EPERM : -ENOENT;
}

size_t mdl_router_count(void)
{
    return N_ROUTES;
}

const mdl_route_t *mdl_router_at(size_t i)
{
    return i < N_ROUTES ? &routes[i] : NULL;
}
