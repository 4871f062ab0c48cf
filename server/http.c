#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <microhttpd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "buf.h"
#include "log.h"
#include "router.h"
#include "sockinfo.h"

typedef struct conn_ctx conn_ctx_t;
typedef struct track track_t;

struct mdl_http {
    mdl_server_t *srv;
    struct MHD_Daemon *daemon;
    uv_poll_t poll;           /* MHD's epoll fd */
    uv_timer_t timer;         /* MHD's own timeouts */
    uv_timer_t log_timer;     /* flushes buffered access lines */
    uv_timer_t drain_timer;
    uv_async_t kick;          /* runs MHD on the next loop turn (after a resume from anywhere) */
    long inflight;            /* requests between first callback and completion */
    unsigned quiet_ticks;     /* drain: consecutive checks with nothing in flight */
    double drain_deadline;
    void (*on_drained)(mdl_server_t *srv);
    uint64_t id_seed, id_counter;
    unsigned open_handles;    /* stop: freed when the last close callback has run */
    uv_timer_t sweep_timer;   /* header and body read deadlines; runs while connections are
                                 open, so an idle server has no wake-ups */
    track_t *tracks;          /* every open connection */
    unsigned eof_pending;     /* requests whose client closed mid-body, to check after MHD_run */
    bool conn_closed;         /* a connection closed during this MHD_run */
};

/* Per connection, from accept to close (MHD's socket context): what the read deadlines
 * need. MHD's own timeout is an idle timeout, which a client sending a byte now and then
 * never reaches. */
struct track {
    struct MHD_Connection *conn;
    int fd;
    conn_ctx_t *ctx;          /* the request being read or answered; NULL between requests */
    uint64_t bytes_seen;      /* bytes received up to the end of the last request */
    double header_since;      /* when bytes of a next request were first seen; 0 = idle */
    bool cut;                 /* we shut it down: MHD closes it on its next read */
    bool asked;               /* bytes_seen came from the kernel once: ask it from then on */
    track_t *prev, *next;
};

typedef enum { ST_NEW, ST_RUNNING, ST_REPLY, ST_SENT, ST_STREAM } conn_state_t;

/* Per-request state; lives from the first access-handler call to NOTIFY_COMPLETED, which
 * always comes after any worker job ends (the connection stays suspended until then). */
struct conn_ctx {
    mdl_request_t req;        /* what the handler sees */
    mdl_job_t job;            /* worker job, when deferred */
    mdl_http_t *http;
    struct MHD_Connection *conn;
    conn_state_t state;
    mdl_buf_t body;
    size_t body_limit, bytes_in;
    uint64_t body_wire;       /* the body's Content-Length (0 without a body), or UINT64_MAX:
                                 chunked or not known yet */
    int too_large;
    mdl_work_fn *work;
    mdl_done_fn *done;
    bool suspended;
    char allow[64];
    /* Streaming responses: what the handler wrote and MHD has not taken yet. */
    mdl_buf_t out;
    size_t out_sent, out_total;
    bool out_ended;
    mdl_stream_gone_fn *on_gone;
    /* Streaming bodies (MDL_ROUTE_STREAM): the handler's callbacks and where the body is. */
    const mdl_body_ops_t *stream;
    mdl_done_fn *step_after;  /* the running step's loop-side callback */
    bool step_running;        /* a step is on a worker: end/abort/free wait for it */
    bool paused;              /* suspended because the handler asked (data returned 1) */
    bool end_pending;         /* the body ended while a step ran */
    bool stream_failed;       /* an answer is set: the rest of the body is discarded */
    bool orphaned;            /* MHD completed the request while a step ran: free after it */
    bool aborted;             /* stream->abort has run */
    bool ended;               /* stream->end has run */
    /* Read deadlines and a client gone mid-body. */
    track_t *track;           /* its connection's, until NOTIFY_COMPLETED */
    double body_since;        /* the header was complete (moved on by pauses) */
    double paused_at;         /* when the handler last paused the body */
    bool peer_eof;            /* the client closed its side before the body was complete */
    bool timed_out;           /* its job waited past request_timeout_ms: 504 */
};

#define CTX_OF(ptr, field) ((conn_ctx_t *)((char *)(ptr)-offsetof(conn_ctx_t, field)))

/* ---- driving MHD from libuv ---- */

static void on_mhd_timer(uv_timer_t *t);
static void cut_stalled(mdl_http_t *http, bool eof_only);

static void run_mhd(mdl_http_t *http)
{
    MHD_UNSIGNED_LONG_LONG timeout;

    MHD_run(http->daemon);
    if (http->eof_pending)
        cut_stalled(http, true);
    /* At max_connections MHD takes its listening socket out of epoll, and puts it back
     * only at the start of a run after a connection closed: without another run now, a
     * freed slot stayed unused until some timeout (up to connection_timeout_s). */
    if (http->conn_closed) {
        http->conn_closed = false;
        timeout = 0;
    } else if (MHD_get_timeout(http->daemon, &timeout) != MHD_YES) {
        uv_timer_stop(&http->timer);
        return;
    }
    /* "Run again now" goes through the kick async, not a 0 ms timer: libuv 1.44 runs a
     * timer re-armed at 0 ms from its own callback again in the same pass, and MHD says 0
     * for as long as uploads leave data pending, so the loop never reached its poll
     * (signals, worker completions) for seconds. The async is seen at the next poll. */
    if (timeout == 0) {
        uv_timer_stop(&http->timer);
        uv_async_send(&http->kick);
    } else {
        uv_timer_start(&http->timer, on_mhd_timer, timeout, 0);
    }
}

static void on_mhd_timer(uv_timer_t *t)
{
    run_mhd(t->data);
}

static void on_mhd_poll(uv_poll_t *p, int status, int events)
{
    (void)status, (void)events;
    run_mhd(p->data);
}

static void on_kick(uv_async_t *a)
{
    run_mhd(a->data);
}

static void on_log_timer(uv_timer_t *t)
{
    (void)t;
    mdl_log_flush();
}

/* ---- request ids ---- */

static int valid_request_id(const char *s)
{
    size_t n = strlen(s);

    return n >= 1 && n <= 128 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") == n;
}

/* Unique within the process (an odd multiplier is a bijection mod 2^64) and unguessable
 * enough across restarts through the random seed. */
static void generate_request_id(mdl_http_t *http, char out[17])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t v = http->id_seed ^ (++http->id_counter * 0x9E3779B97F4A7C15ULL);

    for (int i = 15; i >= 0; i--, v >>= 4) /* "%016llx" without printf: it is per request */
        out[i] = hex[v & 15];
    out[16] = '\0';
}

/* ---- responses ---- */

static char *put_timing(char *p, const char *name, double seconds)
{
    while (*name)
        *p++ = *name++;
    return p + mdl_fmt_ms(p, seconds);
}

/* The headers every response carries. 0, or -1 if MHD refused one. */
static int add_common_headers(conn_ctx_t *ctx, struct MHD_Response *resp, double total_s)
{
    mdl_request_t *req = &ctx->req;
    char timing[160], retry[16], *p = timing;
    int failed = 0;

    p = put_timing(p, "parse;dur=", req->parse_s);
    p = put_timing(p, ", queue;dur=", req->queue_s);
    p = put_timing(p, ", infer;dur=", req->infer_s);
    put_timing(p, ", total;dur=", total_s);
    failed |= MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                      req->content_type ? req->content_type : "application/json") != MHD_YES;
    failed |= MHD_add_response_header(resp, "X-Request-Id", req->request_id) != MHD_YES;
    failed |= MHD_add_response_header(resp, "Server-Timing", timing) != MHD_YES;
    if (req->retry_after_s) {
        snprintf(retry, sizeof retry, "%u", req->retry_after_s);
        failed |= MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, retry) != MHD_YES;
    }
    if (req->allow)
        failed |= MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, req->allow) != MHD_YES;
    if (req->extra_header)
        failed |= MHD_add_response_header(resp, req->extra_header, req->extra_value) != MHD_YES;
    if (req->status == 401)
        failed |= MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer") != MHD_YES;
    if (ctx->http->srv->draining)
        failed |= MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close") != MHD_YES;
    return failed ? -1 : 0;
}

/* One access-log line and the request metrics, when the response is complete. */
static void account_request(conn_ctx_t *ctx, size_t bytes_out, double total_s)
{
    mdl_http_t *http = ctx->http;
    mdl_server_t *srv = http->srv;
    mdl_request_t *req = &ctx->req;
    const char *model = req->slot ? req->slot->name : "";
    mdl_access_entry_t e = {
        .request_id = req->request_id,
        .method = req->method,
        .path = req->path,
        .model = model,
        .version = req->version,
        .status = req->status,
        .bytes_in = ctx->bytes_in,
        .bytes_out = bytes_out,
        .parse_ms = req->parse_s * 1e3,
        .queue_ms = req->queue_s * 1e3,
        .infer_ms = req->infer_s * 1e3,
        .total_ms = total_s * 1e3,
    };
    mdl_metrics_request(srv->metrics, req->route ? req->route->name : mdl_route_none, model,
                        req->status, total_s);
    if (req->batch_rows)
        mdl_metrics_inference(srv->metrics, model, req->infer_s, req->queue_s, req->batch_rows);
    /* Requests that needed a loaded model are inference requests: the V2 statistics
     * extension reports them per version. */
    if (req->route && (req->route->flags & MDL_ROUTE_READY) && req->slot && req->version >= 0) {
        mdl_infer_sample_t s = {
            .ok = req->status >= 200 && req->status < 300,
            .total_s = total_s, .parse_s = req->parse_s, .queue_s = req->queue_s,
            .infer_s = req->infer_s, .rows = req->batch_rows,
        };
        mdl_metrics_infer_stats(srv->metrics, model, req->version, &s);
    }
    if (mdl_log_access(&e))
        uv_timer_start(&http->log_timer, on_log_timer, 200, 0);
}

static enum MHD_Result queue_reply(conn_ctx_t *ctx)
{
    mdl_request_t *req = &ctx->req;
    struct MHD_Response *resp;
    double total_s = mdl_now() - req->t_start;
    enum MHD_Result ok;

    if (!req->resp)
        mdl_reply_error(req, 500, "internal", "handler produced no response");
    resp = MHD_create_response_from_buffer(req->resp_len, req->resp, MHD_RESPMEM_MUST_FREE);
    if (!resp)
        return MHD_NO;
    req->resp = NULL; /* the response owns it now */
    if (add_common_headers(ctx, resp, total_s) < 0) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    ok = MHD_queue_response(ctx->conn, (unsigned)req->status, resp);
    MHD_destroy_response(resp);
    ctx->state = ST_SENT;
    account_request(ctx, req->resp_len, total_s);
    return ok;
}

/* ---- streaming responses ---- */

/* MHD pulls the body from here. With nothing buffered the connection is suspended rather
 * than polled (returning 0 would make MHD spin); mdl_stream_write resumes it. */
static ssize_t read_stream(void *cls, uint64_t pos, char *buf, size_t max)
{
    conn_ctx_t *ctx = cls;
    size_t avail = ctx->out.len - ctx->out_sent;
    (void)pos;

    if (avail == 0) {
        if (ctx->out_ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (!ctx->suspended) {
            MHD_suspend_connection(ctx->conn);
            ctx->suspended = true;
        }
        return 0;
    }
    size_t n = avail < max ? avail : max;
    memcpy(buf, ctx->out.data + ctx->out_sent, n);
    ctx->out_sent += n;
    if (ctx->out_sent == ctx->out.len)
        ctx->out.len = ctx->out_sent = 0; /* all taken: reuse the buffer from its start */
    return (ssize_t)n;
}

static enum MHD_Result queue_stream(conn_ctx_t *ctx)
{
    mdl_request_t *req = &ctx->req;
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384,
                                                                  read_stream, ctx, NULL);
    enum MHD_Result ok;

    if (!resp)
        return MHD_NO;
    if (add_common_headers(ctx, resp, mdl_now() - req->t_start) < 0 ||
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache") != MHD_YES ||
        MHD_add_response_header(resp, "X-Accel-Buffering", "no") != MHD_YES) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    ok = MHD_queue_response(ctx->conn, (unsigned)req->status, resp);
    MHD_destroy_response(resp);
    return ok;
}

void mdl_request_stream(mdl_server_t *srv, mdl_request_t *req, const char *content_type,
                        mdl_stream_gone_fn *on_gone)
{
    conn_ctx_t *ctx = CTX_OF(req, req);
    (void)srv;

    req->status = 200;
    req->content_type = content_type;
    ctx->on_gone = on_gone;
    ctx->state = ST_STREAM;
}

/* Wakes a connection suspended in read_stream. */
static void stream_wake(conn_ctx_t *ctx)
{
    if (ctx->suspended) {
        ctx->suspended = false;
        MHD_resume_connection(ctx->conn);
        uv_async_send(&ctx->http->kick);
    }
}

int mdl_stream_write(mdl_request_t *req, const char *data, size_t len)
{
    conn_ctx_t *ctx = CTX_OF(req, req);

    mdl_buf_append(&ctx->out, data, len);
    if (ctx->out.failed)
        return -ENOMEM;
    ctx->out_total += len;
    stream_wake(ctx);
    return 0;
}

void mdl_stream_end(mdl_request_t *req)
{
    conn_ctx_t *ctx = CTX_OF(req, req);

    ctx->out_ended = true;
    ctx->on_gone = NULL;
    stream_wake(ctx);
}

bool mdl_request_client_gone(mdl_request_t *req)
{
    conn_ctx_t *ctx = CTX_OF(req, req);
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(ctx->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    char c;

    if (!info)
        return false;
    /* A request is fully read before its handler runs, so the only thing left to read is a
     * pipelined request (data) or the client's FIN (0). */
    ssize_t n = recv(info->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* ---- deferral to the worker pool ---- */

static void on_job_work(mdl_job_t *job)
{
    conn_ctx_t *ctx = CTX_OF(job, job);
    ctx->work(&ctx->req);
}

/* A deferred job that waited past request_timeout_ms is dropped unstarted: its client has
 * likely given up, and running it would only lengthen the queue behind it. */
static void on_deferred_work(mdl_job_t *job)
{
    conn_ctx_t *ctx = CTX_OF(job, job);
    unsigned limit = ctx->http->srv->config.request_timeout_ms;

    if (limit && (job->t_start - job->t_submit) * 1e3 > limit) {
        ctx->timed_out = true;
        return;
    }
    ctx->work(&ctx->req);
}

static void on_job_done(mdl_job_t *job, int cancelled)
{
    conn_ctx_t *ctx = CTX_OF(job, job);
    mdl_http_t *http = ctx->http;

    if (!cancelled)
        ctx->req.queue_s = job->t_start - job->t_submit;
    if (ctx->timed_out) { /* the handler cleans up as for a cancel; the answer is ours */
        ctx->done(http->srv, &ctx->req, 1);
        free(ctx->req.resp);
        ctx->req.resp = NULL;
        mdl_reply_error(&ctx->req, 504, "timeout", "the request waited %.0f ms for a worker; the limit "
                        "(request_timeout_ms) is %u", ctx->req.queue_s * 1e3, http->srv->config.request_timeout_ms);
    } else {
        ctx->done(http->srv, &ctx->req, cancelled);
    }
    if (cancelled && !ctx->req.resp)
        mdl_reply_error(&ctx->req, 503, "shutting_down", "the server is shutting down");
    ctx->state = ST_REPLY;
    ctx->suspended = false;
    MHD_resume_connection(ctx->conn);
    run_mhd(http);
}

void mdl_request_hold(mdl_server_t *srv, mdl_request_t *req, mdl_done_fn *done)
{
    conn_ctx_t *ctx = CTX_OF(req, req);
    (void)srv;

    ctx->done = done;
    ctx->state = ST_RUNNING;
}

void mdl_request_release(mdl_server_t *srv, mdl_request_t *req)
{
    conn_ctx_t *ctx = CTX_OF(req, req);

    ctx->done(srv, req, 0);
    ctx->state = ST_REPLY;
    /* Released from inside the handler: the access handler sends it when it returns.
     * Otherwise resume, and run MHD on the next loop turn: this may be inside an MHD
     * callback (an admin call on another connection), where MHD_run must not recurse. */
    if (ctx->suspended) {
        ctx->suspended = false;
        MHD_resume_connection(ctx->conn);
        uv_async_send(&ctx->http->kick);
    }
}

int mdl_request_defer(mdl_server_t *srv, mdl_request_t *req, mdl_work_fn *work, mdl_done_fn *done)
{
    conn_ctx_t *ctx = CTX_OF(req, req);
    int r;

    ctx->work = work;
    ctx->done = done;
    ctx->job.work = on_deferred_work;
    ctx->job.done = on_job_done;
    r = mdl_pool_submit(srv->pool, &ctx->job);
    if (r == 0)
        ctx->state = ST_RUNNING;
    return r;
}

/* ---- streaming bodies ---- */

static void free_ctx(conn_ctx_t *ctx);
static void stream_end(conn_ctx_t *ctx);
static void note_piece(conn_ctx_t *ctx);
static bool body_late(const conn_ctx_t *ctx, double now);

void mdl_request_stream_body(mdl_request_t *req, const mdl_body_ops_t *ops)
{
    CTX_OF(req, req)->stream = ops;
}

/* Resumes MHD on a connection suspended for a step or an end; MHD runs on the next loop
 * turn (we may be inside an MHD callback, where MHD_run must not recurse). */
static void resume(conn_ctx_t *ctx)
{
    if (ctx->suspended) {
        if (ctx->paused) /* time the server held the body back is not the client's */
            ctx->body_since += mdl_now() - ctx->paused_at;
        ctx->suspended = false;
        ctx->paused = false;
        MHD_resume_connection(ctx->conn);
        uv_async_send(&ctx->http->kick);
    }
}

void mdl_request_resume(mdl_server_t *srv, mdl_request_t *req)
{
    conn_ctx_t *ctx = CTX_OF(req, req);
    (void)srv;

    if (ctx->paused)
        resume(ctx);
}

/* The handler's state goes exactly once: by abort when the stream stops without reaching
 * end (refused, answered early, client gone, shutdown); after end, its own callbacks. */
static void stream_abort(conn_ctx_t *ctx)
{
    if (!ctx->aborted) {
        ctx->aborted = true;
        ctx->stream->abort(&ctx->req);
    }
}

static void on_step_done(mdl_job_t *job, int cancelled)
{
    conn_ctx_t *ctx = CTX_OF(job, job);
    mdl_server_t *srv = ctx->http->srv;

    ctx->step_running = false;
    if (ctx->orphaned) { /* the client went away meanwhile */
        stream_abort(ctx);
        free_ctx(ctx);
        return;
    }
    if (cancelled || ctx->stream_failed) { /* shutting down, or the body was refused (413) */
        stream_abort(ctx);
        if (cancelled)
            mdl_reply_error(&ctx->req, 503, "shutting_down", "the server is shutting down");
        else if (ctx->too_large)
            mdl_reply_error(&ctx->req, 413, "body_too_large", "request body exceeds the %zu-byte limit",
                            ctx->body_limit);
    } else {
        ctx->step_after(srv, &ctx->req, 0);
        if (ctx->step_running) /* it started the next step */
            return;
        if (ctx->req.resp) /* it answered: an error in the body */
            stream_abort(ctx);
    }
    if (ctx->req.resp) {
        ctx->stream_failed = true; /* the rest of the body is read and dropped */
        if (ctx->end_pending)
            ctx->state = ST_REPLY;
        resume(ctx);
        return;
    }
    if (ctx->end_pending)
        stream_end(ctx);
}

int mdl_request_step(mdl_server_t *srv, mdl_request_t *req, mdl_work_fn *work, mdl_done_fn *after)
{
    conn_ctx_t *ctx = CTX_OF(req, req);
    int r;

    ctx->work = work;
    ctx->step_after = after;
    ctx->job.work = on_job_work;
    ctx->job.done = on_step_done;
    r = mdl_pool_submit(srv->pool, &ctx->job);
    if (r == 0)
        ctx->step_running = true;
    return r;
}

const char *mdl_request_header(const mdl_request_t *req, const char *name)
{
    return MHD_lookup_connection_value(CTX_OF(req, req)->conn, MHD_HEADER_KIND, name);
}

const char *mdl_request_arg(const mdl_request_t *req, const char *name)
{
    return MHD_lookup_connection_value(CTX_OF(req, req)->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* The whole body is in and accepted: the handler answers (now, or after a job). Called
 * with the connection suspended when it comes after a step; resumes it once answered. */
static void stream_end(conn_ctx_t *ctx)
{
    ctx->end_pending = false;
    ctx->state = ST_NEW;
    ctx->ended = true;
    ctx->stream->end(ctx->http->srv, &ctx->req);
    if (ctx->state == ST_RUNNING)
        return; /* deferred or held: its completion resumes the connection */
    ctx->state = ST_REPLY;
    resume(ctx);
}

/* Upload pieces and the end of the body for a streaming route. */
static enum MHD_Result on_stream_data(conn_ctx_t *ctx, const char *data, size_t *size)
{
    mdl_http_t *http = ctx->http;
    size_t n = *size;
    int r;

    if (n) {
        *size = 0;
        ctx->bytes_in += n;
        note_piece(ctx);
        if (ctx->bytes_in != ctx->body_wire && body_late(ctx, mdl_now()))
            return MHD_NO; /* trickled: close (MHD cannot answer mid-body) */
        if (!ctx->too_large && ctx->bytes_in > ctx->body_limit) {
            ctx->too_large = 1;
            ctx->stream_failed = true;
            if (!ctx->step_running)
                stream_abort(ctx);
        }
        if (ctx->too_large) /* as on the buffered path: read on a while, then hang up */
            return ctx->bytes_in > 4 * ctx->body_limit + 65536 ? MHD_NO : MHD_YES;
        if (ctx->stream_failed)
            return MHD_YES;
        r = ctx->stream->data(http->srv, &ctx->req, data, n);
        if (r < 0) { /* an answer is set */
            ctx->stream_failed = true;
            if (!ctx->step_running)
                stream_abort(ctx);
        } else if (r > 0) {
            MHD_suspend_connection(ctx->conn);
            ctx->suspended = ctx->paused = true;
            ctx->paused_at = mdl_now();
        }
        return MHD_YES;
    }
    if (ctx->too_large) {
        if (ctx->step_running) { /* wait for it: the step still uses the handler's state */
            ctx->end_pending = true;
            ctx->state = ST_RUNNING;
            MHD_suspend_connection(ctx->conn);
            ctx->suspended = true;
            return MHD_YES;
        }
        mdl_reply_error(&ctx->req, 413, "body_too_large", "request body exceeds the %zu-byte limit",
                        ctx->body_limit);
        return queue_reply(ctx);
    }
    if (ctx->stream_failed && !ctx->step_running)
        return queue_reply(ctx);
    if (ctx->step_running) {
        ctx->end_pending = true;
        ctx->state = ST_RUNNING;
        MHD_suspend_connection(ctx->conn);
        ctx->suspended = true;
        return MHD_YES;
    }
    ctx->ended = true;
    ctx->stream->end(http->srv, &ctx->req);
    if (ctx->state == ST_RUNNING) {
        MHD_suspend_connection(ctx->conn);
        ctx->suspended = true;
        return MHD_YES;
    }
    return queue_reply(ctx);
}

/* ---- read deadlines, and clients gone mid-body ---- */

/* Reading the body: not answered, not ended, not waiting on a step or on the handler. */
static bool reading_body(const conn_ctx_t *ctx)
{
    return ctx->state == ST_NEW && !ctx->ended && !ctx->end_pending && !ctx->suspended;
}

/* A body gets body_timeout_s, plus a second per body_min_rate bytes that came: a slow
 * honest upload keeps going, a trickle of bytes does not. Checked at each piece that
 * leaves the body incomplete (a piece that completes it is answered: no clock read on the
 * usual one-piece body) and by the sweep timer. */
static bool body_late(const conn_ctx_t *ctx, double now)
{
    const mdl_config_t *c = &ctx->http->srv->config;

    return now > ctx->body_since + c->body_timeout_s + (double)ctx->bytes_in / (double)c->body_min_rate;
}

/* MHD has no call to close a connection from outside its callbacks; shutting the socket
 * down makes its next read see the end (the shutdown wakes its epoll), and it closes the
 * connection and completes the request the usual way. */
static void cut(track_t *t, const char *why)
{
    if (t->cut)
        return;
    t->cut = true;
    /* Logged first: whoever sees the close can already read why. */
    mdl_log_event(MDL_LOG_INFO, "connection_cut", "reason", why, NULL);
    shutdown(t->fd, SHUT_RDWR);
}

/* Called for every piece of a body. MHD reads with edge-triggered epoll and takes a short
 * read to mean the socket is drained, so a FIN that came in the same burst as the last
 * bytes of an incomplete body is never read: the request would sit until the idle timeout
 * (and hold a drain that long). A peek after each piece sees that FIN. */
static void note_piece(conn_ctx_t *ctx)
{
    ssize_t n;
    char c;

    /* A piece that completes a Content-Length body needs no peek: the request is answered
     * whatever follows (a syscall saved per request on the hot path). */
    if (ctx->peer_eof || !ctx->track || ctx->bytes_in == ctx->body_wire)
        return;
    n = recv(ctx->track->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        ctx->peer_eof = true;
        ctx->http->eof_pending++;
    }
}

/* After MHD_run (eof_only): requests whose client closed and whose body MHD could not
 * finish from what it had buffered. From the sweep timer, also bodies and headers past
 * their deadlines. */
static void cut_stalled(mdl_http_t *http, bool eof_only)
{
    unsigned header_timeout = http->srv->config.header_timeout_s;
    double now = mdl_now();

    http->eof_pending = 0;
    for (track_t *t = http->tracks; t; t = t->next) {
        conn_ctx_t *ctx = t->ctx;
        if (t->cut)
            continue;
        if (ctx) {
            if (!reading_body(ctx))
                continue;
            if (ctx->peer_eof)
                cut(t, "client_closed_mid_body");
            else if (!eof_only && body_late(ctx, now))
                cut(t, "body_timeout");
        } else if (!eof_only) {
            /* Idle connections are MHD's (connection_timeout_s); the header clock starts
             * when bytes of a request are first seen. */
            if (!t->header_since) {
                if (mdl_sock_bytes_received(t->fd) != t->bytes_seen)
                    t->header_since = now;
            } else if (now - t->header_since > header_timeout) {
                cut(t, "header_timeout");
            }
        }
    }
}

static void on_sweep(uv_timer_t *timer)
{
    cut_stalled(timer->data, false);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    mdl_http_t *http = cls;
    track_t *t = *socket_context;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!info || !(t = calloc(1, sizeof *t)))
            return; /* untracked: only MHD's idle timeout applies to it */
        t->conn = conn;
        t->fd = info->connect_fd;
        if (!http->tracks)
            uv_timer_start(&http->sweep_timer, on_sweep, 250, 250);
        t->next = http->tracks;
        if (t->next)
            t->next->prev = t;
        http->tracks = t;
        *socket_context = t;
        return;
    }
    http->conn_closed = true;
    if (!t)
        return;
    if (t->ctx)
        t->ctx->track = NULL;
    if (t->prev)
        t->prev->next = t->next;
    else
        http->tracks = t->next;
    if (t->next)
        t->next->prev = t->prev;
    if (!http->tracks)
        uv_timer_stop(&http->sweep_timer);
    free(t);
    *socket_context = NULL;
}

/* ---- the access handler ---- */

static int content_type_is_json(struct MHD_Connection *conn)
{
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    size_t n = strlen("application/json");

    return ct && strncasecmp(ct, "application/json", n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static enum MHD_Result add_arg_length(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    *(size_t *)cls += strlen(key) + (value ? strlen(value) + 1 : 0) + 1;
    return MHD_YES;
}

/* MHD hands over the path without its query string; count both (decoded, near enough). */
static size_t url_length(struct MHD_Connection *conn, const char *path)
{
    size_t n = strlen(path);

    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, add_arg_length, &n);
    return n;
}

/* Constant time in the length of the expected token, whatever the caller sent. */
static bool token_equal(const char *given, const char *expected)
{
    size_t n = strlen(expected), g = strlen(given);
    unsigned char diff = (unsigned char)(g != n);

    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(expected[i] ^ (i < g ? given[i] : 0));
    return diff == 0;
}

static bool is_loopback(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = info ? info->client_addr : NULL;

    if (!sa)
        return false;
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return false;
}

/* Admin routes: a configured bearer token, or loopback when config allows that instead.
 * Sets the error reply and returns false when refused. The token is never logged. */
static bool admin_allowed(conn_ctx_t *ctx)
{
    mdl_server_t *srv = ctx->http->srv;
    const char *auth = MHD_lookup_connection_value(ctx->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);

    if (!srv->admin_token[0]) {
        if (srv->config.admin_allow_loopback && is_loopback(ctx->conn))
            return true;
        mdl_reply_error(&ctx->req, 403, "forbidden",
                        "the admin API is disabled: configure admin_token_file%s",
                        srv->config.admin_allow_loopback ? " (unauthenticated calls are allowed from loopback only)" : "");
        return false;
    }
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) {
        mdl_reply_error(&ctx->req, 401, "unauthorized", "admin calls need an Authorization: Bearer <token> header");
        return false;
    }
    if (!token_equal(auth + 7, srv->admin_token)) {
        mdl_reply_error(&ctx->req, 403, "forbidden", "the bearer token is not the admin token");
        return false;
    }
    return true;
}

/* Everything checked before the body is read. Sets an error reply on failure. */
static void check_request(conn_ctx_t *ctx, const char *url, const char *method)
{
    mdl_http_t *http = ctx->http;
    mdl_server_t *srv = http->srv;
    mdl_request_t *req = &ctx->req;
    const char *rid = MHD_lookup_connection_value(ctx->conn, MHD_HEADER_KIND, "X-Request-Id");
    const char *clen;
    mdl_route_match_t match;
    int r;

    if (rid && valid_request_id(rid)) {
        memcpy(req->request_id, rid, strlen(rid) + 1); /* valid: at most 128 bytes */
    } else {
        generate_request_id(http, req->request_id);
        if (rid) {
            mdl_reply_error(req, 400, "invalid_request_id",
                            "X-Request-Id must be 1 to 128 characters of [A-Za-z0-9._:-]");
            return;
        }
    }
    if (url_length(ctx->conn, url) > srv->config.max_url_bytes) {
        mdl_reply_error(req, 414, "uri_too_long", "request URL is %zu bytes; the limit is %zu",
                        url_length(ctx->conn, url), srv->config.max_url_bytes);
        return;
    }
    r = mdl_router_match(method, url, &match);
    if (r == -ENOENT) {
        mdl_reply_error(req, 404, "not_found", "no route for %s %s", method, url);
        return;
    }
    if (r == -EPERM) {
        snprintf(ctx->allow, sizeof ctx->allow, "%s", match.allow);
        req->allow = ctx->allow;
        mdl_reply_error(req, 405, "method_not_allowed", "%s is not allowed on %s; use %s", method,
                        url, match.allow);
        return;
    }
    req->route = match.route;
    {
        size_t n = strnlen(match.model, sizeof req->model_name - 1);
        memcpy(req->model_name, match.model, n);
        req->model_name[n] = '\0';
    }
    if ((match.route->flags & MDL_ROUTE_ADMIN) && !admin_allowed(ctx))
        return;
    if (match.route->flags & MDL_ROUTE_MODEL) {
        mdl_slot_t *slot = mdl_registry_find(srv->registry, match.model);
        if (!slot) {
            mdl_reply_error(req, 404, "model_not_found", "model '%s' not found", match.model);
            return;
        }
        req->slot = slot;
        if (match.version >= 0 && !mdl_slot_version(slot, match.version)) {
            mdl_reply_error(req, 404, "version_not_found", "model '%s' has no version %ld%s",
                            slot->name, match.version,
                            slot->version >= 0 ? "" : " (no version is loaded)");
            return;
        }
        req->version = match.version >= 0 ? match.version : slot->version;
        if (match.route->flags & MDL_ROUTE_READY) {
            req->model = mdl_registry_acquire(slot, match.version);
            if (!req->model) {
                const mdl_version_t *v = match.version >= 0 ? mdl_slot_version(slot, match.version) : NULL;
                if (slot->state == MDL_SLOT_UNLOADED)
                    mdl_reply_error(req, 503, "model_not_ready", "model '%s' is unloaded (an admin :load serves it again)",
                                    slot->name);
                else if (v ? v->loading || v->settling : slot->state == MDL_SLOT_LOADING)
                    mdl_reply_error(req, 503, "model_not_ready", "model '%s' is still loading", slot->name);
                else
                    mdl_reply_error(req, 503, "model_not_ready", "model '%s' failed to load: %s",
                                    slot->name, v && v->error[0] ? v->error : slot->last_error);
                return;
            }
        }
    }
    ctx->body_limit = match.route->max_body == SIZE_MAX       ? srv->config.max_body_bytes
                      : match.route->max_body == MDL_BODY_EVAL ? srv->config.max_eval_body_bytes
                                                               : match.route->max_body;
    clen = MHD_lookup_connection_value(ctx->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!clen && !MHD_lookup_connection_value(ctx->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING))
        ctx->body_wire = 0;
    if (clen) {
        char *end;
        unsigned long long n = strtoull(clen, &end, 10);
        if (*end == '\0' && clen[0] >= '0' && clen[0] <= '9')
            ctx->body_wire = n;
        if (*end == '\0' && n > ctx->body_limit) {
            mdl_reply_error(req, 413, "body_too_large", "request body is %llu bytes; the limit is %zu",
                            n, ctx->body_limit);
            return;
        }
    }
    if ((match.route->flags & MDL_ROUTE_JSON) && !content_type_is_json(ctx->conn)) {
        const char *ct = MHD_lookup_connection_value(ctx->conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_TYPE);
        mdl_reply_error(req, 415, "unsupported_media_type",
                        "Content-Type must be application/json, got '%s'", ct ? ct : "(none)");
        return;
    }
}

static int has_body(struct MHD_Connection *conn)
{
    const char *clen = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

    return (clen && strcmp(clen, "0") != 0) ||
           MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **req_cls)
{
    mdl_http_t *http = cls;
    conn_ctx_t *ctx = *req_cls;
    (void)version;

    if (!ctx) {
        ctx = mdl_zalloc(sizeof *ctx);
        if (!ctx)
            return MHD_NO;
        *req_cls = ctx;
        ctx->http = http;
        ctx->conn = conn;
        ctx->req.t_start = mdl_now();
        ctx->req.method = method;
        ctx->req.path = url;
        ctx->req.version = -1;
        ctx->body_wire = UINT64_MAX;
        ctx->body_since = ctx->req.t_start;
        {
            const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
            if (ci && (ctx->track = ci->socket_context))
                ctx->track->ctx = ctx;
        }
        http->inflight++;
        mdl_metrics_inflight(http->srv->metrics, 1);
        check_request(ctx, url, method);
        if (!ctx->req.resp && (ctx->req.route->flags & MDL_ROUTE_STREAM)) {
            /* A streaming handler runs now, to take the body as it comes (or refuse it). */
            ctx->req.route->handler(http->srv, &ctx->req);
            if (!ctx->req.resp && !ctx->stream)
                mdl_reply_error(&ctx->req, 500, "internal", "handler took no body and gave no answer");
        }
        if (ctx->req.resp) {
            /* Refused before the body: answering now closes the connection (the unread
             * body cannot be skipped), so a request without a body answers on the next
             * call and keeps its connection. */
            if (has_body(conn))
                return queue_reply(ctx);
            ctx->state = ST_REPLY;
        }
        return MHD_YES;
    }
    if (ctx->state == ST_REPLY)
        return queue_reply(ctx);
    if (ctx->state != ST_NEW)
        return MHD_YES;
    if (ctx->stream)
        return on_stream_data(ctx, upload_data, upload_data_size);
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        ctx->bytes_in += n;
        *upload_data_size = 0;
        note_piece(ctx);
        if (ctx->bytes_in != ctx->body_wire && body_late(ctx, mdl_now()))
            return MHD_NO; /* trickled: close (MHD cannot answer mid-body) */
        if (!ctx->too_large && ctx->body.len + n > ctx->body_limit) {
            ctx->too_large = 1;
            mdl_buf_done(&ctx->body);
        }
        if (ctx->too_large)
            return ctx->bytes_in > 4 * ctx->body_limit + 65536 ? MHD_NO : MHD_YES;
        mdl_buf_append(&ctx->body, upload_data, n);
        return ctx->body.failed ? MHD_NO : MHD_YES;
    }
    /* The whole body is here. */
    if (ctx->too_large) {
        mdl_reply_error(&ctx->req, 413, "body_too_large", "request body exceeds the %zu-byte limit",
                        ctx->body_limit);
        return queue_reply(ctx);
    }
    ctx->req.body = ctx->body.data ? ctx->body.data : "";
    ctx->req.body_len = ctx->body.len;
    ctx->req.route->handler(http->srv, &ctx->req);
    if (ctx->state == ST_STREAM)
        return queue_stream(ctx);
    if (ctx->state == ST_RUNNING) {
        MHD_suspend_connection(conn);
        ctx->suspended = true;
        return MHD_YES;
    }
    return queue_reply(ctx);
}

static void free_ctx(conn_ctx_t *ctx)
{
    mdl_http_t *http = ctx->http;

    if (ctx->state == ST_STREAM) {
        if (ctx->on_gone)
            ctx->on_gone(http->srv, &ctx->req); /* the client left before the end */
        account_request(ctx, ctx->out_total, mdl_now() - ctx->req.t_start);
        mdl_buf_done(&ctx->out);
    }
    mdl_registry_release(http->srv->registry, ctx->req.model);
    free(ctx->req.resp);
    mdl_buf_done(&ctx->body);
    free(ctx);
    http->inflight--;
    mdl_metrics_inflight(http->srv->metrics, -1);
}

/* Bytes received on t's connection up to the end of ctx's request, for the header clock.
 * Counted when the count is exact (what MHD parsed as the header, plus a Content-Length
 * body read in full, after an exact count), which saves a getsockopt per request; else
 * asked of the kernel, whose answer may include bytes of a pipelined next request, so the
 * connection is asked from then on. A count can only come out short, by bytes MHD skips
 * before a request line (stray CRLFs): the header clock then starts on the idle connection
 * and it is cut after header_timeout_s rather than connection_timeout_s. */
static uint64_t bytes_through(const conn_ctx_t *ctx, track_t *t)
{
    const union MHD_ConnectionInfo *ci;

    if (!t->asked && ctx->body_wire != UINT64_MAX && ctx->bytes_in == ctx->body_wire &&
        (ci = MHD_get_connection_info(ctx->conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE)) &&
        ci->header_size)
        return t->bytes_seen + ci->header_size + ctx->body_wire;
    t->asked = true;
    return mdl_sock_bytes_received(t->fd);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    conn_ctx_t *ctx = *req_cls;
    (void)cls, (void)conn, (void)toe;

    if (!ctx)
        return;
    *req_cls = NULL;
    if (ctx->track) { /* the connection goes idle: the next header's clock starts later */
        track_t *t = ctx->track;
        t->ctx = NULL;
        t->header_since = 0;
        t->bytes_seen = bytes_through(ctx, t);
        ctx->track = NULL;
    }
    if (ctx->step_running) { /* a worker still reads the request: its completion frees it */
        ctx->orphaned = true;
        return;
    }
    if (ctx->stream && !ctx->ended)
        stream_abort(ctx); /* the client left mid-body, or it was refused */
    free_ctx(ctx);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;
    (void)cls;

    vsnprintf(msg, sizeof msg, fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    mdl_log_event(MDL_LOG_DEBUG, "http", "msg", msg, NULL);
}

/* ---- start, drain, stop ---- */

static uint64_t random_seed(void)
{
    uint64_t v = 0;
    FILE *f = fopen("/dev/urandom", "rb");

    if (!f || fread(&v, sizeof v, 1, f) != 1)
        v = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    if (f)
        fclose(f);
    return v;
}

int mdl_http_start(mdl_server_t *srv, char *bound, size_t bound_size, mdl_err_t *reterr)
{
    mdl_http_t *http = calloc(1, sizeof *http);
    const mdl_config_t *c = &srv->config;
    struct sockaddr_storage addr;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_TURBO;
    const char *host = strcmp(c->listen_host, "localhost") == 0 ? "127.0.0.1" : c->listen_host;
    const union MHD_DaemonInfo *info;
    int r;

    if (!http)
        return mdl_err_set(reterr, -ENOMEM, "out of memory");
    http->srv = srv;
    http->id_seed = random_seed();
    memset(&addr, 0, sizeof addr);
    if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&addr)->sin_addr) == 1) {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&addr;
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)c->listen_port);
    } else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&addr)->sin6_addr) == 1) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&addr;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)c->listen_port);
        flags |= MHD_USE_IPv6;
    } else {
        free(http);
        return mdl_err_set(reterr, -EINVAL, "listen: '%s' is not a numeric IPv4/IPv6 address",
                           c->listen_host);
    }
    http->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, http, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)c->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)c->max_connections_per_ip, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)c->connection_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, c->max_header_bytes,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_NOTIFY_COMPLETED, on_completed, http,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, http,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, http, MHD_OPTION_END);
    if (!http->daemon) {
        free(http);
        return mdl_err_set(reterr, -EADDRINUSE, "cannot listen on %s:%u (address in use or not available)",
                           c->listen_host, c->listen_port);
    }
    info = MHD_get_daemon_info(http->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    r = uv_poll_init(srv->loop, &http->poll, info->epoll_fd);
    if (r < 0) {
        MHD_stop_daemon(http->daemon);
        free(http);
        return mdl_err_set(reterr, r, "uv_poll_init: %s", uv_strerror(r));
    }
    http->poll.data = http;
    uv_timer_init(srv->loop, &http->timer);
    http->timer.data = http;
    uv_timer_init(srv->loop, &http->log_timer);
    uv_timer_init(srv->loop, &http->drain_timer);
    http->drain_timer.data = http;
    uv_async_init(srv->loop, &http->kick, on_kick);
    http->kick.data = http;
    uv_timer_init(srv->loop, &http->sweep_timer);
    http->sweep_timer.data = http;
    uv_poll_start(&http->poll, UV_READABLE, on_mhd_poll);
    info = MHD_get_daemon_info(http->daemon, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(bound, bound_size, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, (unsigned)info->port);
    srv->http = http;
    run_mhd(http);
    return 0;
}

static void on_drain_tick(uv_timer_t *t)
{
    mdl_http_t *http = t->data;

    /* Quiet for 100 ms in a row: a keep-alive client that had a request on the wire when
     * draining began has had time to be seen. */
    http->quiet_ticks = http->inflight == 0 ? http->quiet_ticks + 1 : 0;
    if (http->quiet_ticks >= 5 || mdl_now() >= http->drain_deadline) {
        uv_timer_stop(t);
        if (http->inflight)
            mdl_log_event(MDL_LOG_WARN, "drain_deadline", "msg", "requests still in flight", NULL);
        http->on_drained(http->srv);
    }
}

void mdl_http_drain(mdl_http_t *http, void (*on_drained)(mdl_server_t *srv))
{
    MHD_socket fd;

    if (http->on_drained)
        return;
    http->on_drained = on_drained;
    http->drain_deadline = mdl_now() + http->srv->config.drain_timeout_ms / 1000.0;
    /* Connections the kernel completed before the signal were made by clients that sent
     * their request before draining began: take them all, then close the listener. */
    fd = MHD_quiesce_daemon(http->daemon);
    if (fd != MHD_INVALID_SOCKET) {
        struct sockaddr_storage addr;
        socklen_t len = sizeof addr;
        int c, n = 0;
        while (n++ < 65536 &&
               (c = accept4(fd, (struct sockaddr *)&addr, &len, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
            MHD_add_connection(http->daemon, c, (struct sockaddr *)&addr, len); /* closes c on failure */
            len = sizeof addr;
        }
        close(fd);
        run_mhd(http);
    }
    uv_timer_start(&http->drain_timer, on_drain_tick, 20, 20);
}

static void on_handle_closed(uv_handle_t *h)
{
    mdl_http_t *http = h->data;

    if (--http->open_handles == 0)
        free(http);
}

void mdl_http_stop(mdl_http_t *http)
{
    /* Every job's done callback has run (the pool is stopped), so nothing is suspended;
     * one more run sends what they queued. Then stop MHD before closing its fd's watcher
     * would leave it polling a dead fd: MHD may call NOTIFY_COMPLETED while stopping. */
    MHD_run(http->daemon);
    uv_poll_stop(&http->poll);
    MHD_stop_daemon(http->daemon);
    mdl_log_flush();
    http->log_timer.data = http;
    http->open_handles = 6;
    uv_timer_stop(&http->sweep_timer);
    uv_close((uv_handle_t *)&http->sweep_timer, on_handle_closed);
    uv_close((uv_handle_t *)&http->poll, on_handle_closed);
    uv_close((uv_handle_t *)&http->timer, on_handle_closed);
    uv_close((uv_handle_t *)&http->log_timer, on_handle_closed);
    uv_close((uv_handle_t *)&http->drain_timer, on_handle_closed);
    uv_close((uv_handle_t *)&http->kick, on_handle_closed);
}
