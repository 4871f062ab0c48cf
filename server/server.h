/* The one context every request reaches the process through: configuration, registry,
 * metrics, workers and the HTTP front. Owned by main(); loop thread only. */
#ifndef MDL_SERVER_H
#define MDL_SERVER_H

#include <stdbool.h>

#include "config.h"
#include "metrics.h"
#include "pool.h"
#include "registry.h"

#define MDL_VERSION "0.1.0" /* the daemon's release, reported by --version and GET /v2 */

struct uv_loop_s;
typedef struct mdl_http mdl_http_t;
typedef struct mdl_server mdl_server_t;

struct mdl_server {
    mdl_config_t config;
    struct uv_loop_s *loop;
    mdl_metrics_t *metrics;
    mdl_registry_t *registry;
    mdl_pool_t *pool;
    mdl_http_t *http;
    bool draining;  /* SIGTERM/SIGINT seen: readiness 503, listener closed */
    char admin_token[512]; /* from config admin_token_file; "" = none configured */
};

#endif
