/* What a handler sees: one HTTP request that already passed the router's checks (route
 * exists, method allowed, body within limits, content type, request id, model resolved),
 * and the calls it uses to answer it. Handlers never include uv.h or microhttpd.h.
 *
 * Threads: handlers and `done` callbacks run on the loop thread; a `work` callback runs on
 * an inference worker and may touch only req->job, req->model and the timing fields. */
#ifndef MDL_HANDLER_H
#define MDL_HANDLER_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "models/model.h"

typedef struct mdl_server mdl_server_t;
typedef struct mdl_request mdl_request_t;
typedef struct mdl_route mdl_route_t;
typedef struct mdl_slot mdl_slot_t;

typedef void mdl_handler_fn(mdl_server_t *srv, mdl_request_t *req);
typedef void mdl_work_fn(mdl_request_t *req);
typedef void mdl_done_fn(mdl_server_t *srv, mdl_request_t *req, int cancelled);

struct mdl_request {
    /* Set by the HTTP layer before the handler runs; read-only for handlers. */
    const mdl_route_t *route;
    const char *method, *path;
    const char *body;           /* NUL-terminated, body_len bytes */
    size_t body_len;
    char request_id[129];
    mdl_slot_t *slot;           /* the {m} of the path, for model routes; else NULL */
    mdl_model_t *model;         /* a reference for this request when the route needs a loaded
                                   model; released by the HTTP layer, never by handlers */
    long version;               /* version of `model`, or -1 */
    char model_name[65];        /* the {m} of the path, as given (admin routes) */

    /* Measured by the handler (seconds), reported in Server-Timing, logs and metrics. */
    double t_start, parse_s, queue_s, infer_s;
    size_t batch_rows;

    /* Private to the handler that set it: state carried from handler to work to done. */
    void *job;

    /* The response, set with mdl_reply*(). */
    int status;
    char *resp;                 /* owned, malloc'd */
    size_t resp_len;
    const char *content_type;   /* static string */
    unsigned retry_after_s;     /* 0 = no Retry-After */
    const char *allow;          /* static string for 405, or NULL */
    const char *extra_header;   /* static header name to add with extra_value, or NULL */
    char extra_value[32];
};

/* The value of request header `name` (case-insensitive), or NULL. Loop thread; valid
 * until the response is sent. */
const char *mdl_request_header(const mdl_request_t *req, const char *name);

/* Monotonic clock in seconds. */
double mdl_now(void);

/* Sets the response; takes ownership of body (malloc'd). */
void mdl_reply(mdl_request_t *req, int status, const char *content_type, char *body, size_t len);
/* Prints json compactly as the response and frees json. A print failure becomes a 500. */
void mdl_reply_json(mdl_request_t *req, int status, cJSON *json);
/* {"error": {"code": code, "message": ...}}; on /v2 paths the Open Inference Protocol's
 * {"error": "message"} instead (the code is dropped: that protocol has none). */
void mdl_reply_error(mdl_request_t *req, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Maps an mdl_err_t from a lower layer onto status + code (see models/err.h). */
void mdl_reply_err(mdl_request_t *req, const mdl_err_t *err);

/* Checks req->body's JSON nesting against the configured bound before any parser sees
 * it: 0, or -1 after setting a json_too_deep error reply. */
int mdl_request_check_depth(mdl_server_t *srv, mdl_request_t *req);

/* Runs work(req) on an inference worker, then done(srv, req, cancelled) back on the loop
 * thread; the HTTP layer holds the connection meanwhile. Returns 0, or -EBUSY when the
 * queue is full: the handler then answers (usually mdl_reply_overloaded). */
int mdl_request_defer(mdl_server_t *srv, mdl_request_t *req, mdl_work_fn *work, mdl_done_fn *done);
void mdl_reply_overloaded(mdl_request_t *req);

/* For handlers that wait on the loop for something other than a worker (an admin load):
 * hold keeps the connection open after the handler returns; release (loop thread, at most
 * once, possibly before the handler has returned) calls done(srv, req, 0) to set the
 * response and sends it. */
void mdl_request_hold(mdl_server_t *srv, mdl_request_t *req, mdl_done_fn *done);
void mdl_request_release(mdl_server_t *srv, mdl_request_t *req);

/* Streaming responses (Server-Sent Events). Called by a handler instead of replying: the
 * status line (200) and headers go out when the handler returns, and the body follows as
 * the handler's machinery appends with mdl_stream_write and finishes with mdl_stream_end
 * (loop thread only, both). If the client goes away before the end, on_gone(srv, req)
 * runs once on the loop, after which req must not be touched. */
typedef void mdl_stream_gone_fn(mdl_server_t *srv, mdl_request_t *req);
void mdl_request_stream(mdl_server_t *srv, mdl_request_t *req, const char *content_type,
                        mdl_stream_gone_fn *on_gone);
int mdl_stream_write(mdl_request_t *req, const char *data, size_t len); /* 0 or -ENOMEM */
void mdl_stream_end(mdl_request_t *req);

/* Whether the client has closed its side of a held or streaming request (loop thread; a
 * non-blocking peek at the socket), so long work for it can stop early. */
bool mdl_request_client_gone(mdl_request_t *req);
/* Readiness as /readyz decides it: every required model serves and no drain began. */
bool mdl_server_ready(const mdl_server_t *srv);
/* Streaming bodies (routes flagged MDL_ROUTE_STREAM). The handler runs as soon as the
 * headers have passed the checks (req->body is NULL) and either answers at once or calls
 * mdl_request_stream_body(); then, on the loop thread:
 *   data(srv, req, bytes, len) gets each piece as it arrives (bytes valid during the call
 *     only; the body limit is enforced before). Returns 0 for more, 1 to pause delivery
 *     until mdl_request_resume(), or -1 after setting an error answer: it is sent once
 *     the rest of the body has been read and dropped.
 *   end(srv, req) runs once the body is complete; it answers as a handler does (reply,
 *     mdl_request_defer, or hold).
 *   abort(req) runs instead of end when the stream stops early (an error answer, 413, the
 *     client left, shutdown): it frees what the handler keeps in req->job.
 * mdl_request_step() runs work(req) on an inference worker while the body keeps arriving,
 * then after(srv, req, 0) on the loop; after may start the next step, resume delivery, or
 * set an error answer (the stream then stops as with data's -1). At most one step or
 * defer runs at a time; end and abort wait for a running step. */
typedef int mdl_data_fn(mdl_server_t *srv, mdl_request_t *req, const char *data, size_t len);
typedef struct mdl_body_ops {
    mdl_data_fn *data;
    void (*end)(mdl_server_t *srv, mdl_request_t *req);
    void (*abort)(mdl_request_t *req);
} mdl_body_ops_t;

void mdl_request_stream_body(mdl_request_t *req, const mdl_body_ops_t *ops);
void mdl_request_resume(mdl_server_t *srv, mdl_request_t *req);
/* 0, or -EBUSY (queue full) / -ECANCELED (shutting down): the handler then answers. */
int mdl_request_step(mdl_server_t *srv, mdl_request_t *req, mdl_work_fn *work, mdl_done_fn *after);

/* A query-string argument (decoded), or NULL; loop thread. */
const char *mdl_request_arg(const mdl_request_t *req, const char *name);

/* The handlers, one per API surface; the route table in server/router.c points at them. */
mdl_handler_fn mdl_handle_healthz, mdl_handle_readyz, mdl_handle_metrics;
mdl_handler_fn mdl_handle_models_list, mdl_handle_model_get;
mdl_handler_fn mdl_handle_predict;
mdl_handler_fn mdl_handle_generate, mdl_handle_completions, mdl_handle_chat_completions;
/* Open Inference Protocol inference and metadata for generative models (handlers/
 * v2_generate.c): a BYTES "text_input" in, a BYTES "text_output" out, sampling fields in
 * the request's "parameters". */
void mdl_v2_generate(mdl_server_t *srv, mdl_request_t *req);
void mdl_v2_generate_metadata(mdl_server_t *srv, mdl_request_t *req);
/* What GET /v1/models/{m} says about a generative model: architecture, weights, context,
 * tokenizer, chat template, generation defaults. */
cJSON *mdl_generation_describe(const mdl_model_t *m);
/* Shutdown, after the worker pool stopped and before the HTTP layer stops: ends every
 * generation still streaming or waiting (their connections resume) and frees it. */
void mdl_generate_shutdown(mdl_server_t *srv);
mdl_handler_fn mdl_handle_model_load, mdl_handle_model_unload, mdl_handle_model_reload;
mdl_handler_fn mdl_handle_repository_index;
/* Open Inference Protocol (KServe V2), handlers/v2.c. */
mdl_handler_fn mdl_handle_v2_server, mdl_handle_v2_live, mdl_handle_v2_ready;
mdl_handler_fn mdl_handle_v2_model, mdl_handle_v2_model_ready, mdl_handle_v2_infer, mdl_handle_v2_stats;
mdl_handler_fn mdl_handle_rank, mdl_handle_score_auc;

#endif
