/* The HTTP front: libmicrohttpd in external-polling mode, driven by the libuv loop (MHD's
 * epoll fd under a uv_poll_t, a uv_timer_t armed from MHD_get_timeout). Runs the per-request
 * state machine: route, checks, body accumulation, dispatch, suspend/resume around worker
 * jobs, response with X-Request-Id and Server-Timing, metrics and the access log.
 * Loop thread only. */
#ifndef MDL_HTTP_H
#define MDL_HTTP_H

#include <stddef.h>

#include "models/err.h"
#include "server.h"

/* Binds and starts serving on srv->config.listen_*; srv->http is set. The address actually
 * bound ("127.0.0.1:PORT") is written to bound. */
int mdl_http_start(mdl_server_t *srv, char *bound, size_t bound_size, mdl_err_t *reterr);

/* Stops accepting, lets in-flight requests finish (up to drain_timeout_ms), then calls
 * on_drained(srv) once. Keep-alive responses meanwhile carry Connection: close. */
void mdl_http_drain(mdl_http_t *http, void (*on_drained)(mdl_server_t *srv));

/* Final teardown after the worker pool has been stopped: resumes what is suspended,
 * stops MHD, closes the uv handles. */
void mdl_http_stop(mdl_http_t *http);

#endif
