/* Replies and request-body parsing shared by every handler. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "handler.h"
#include "server/server.h"

double mdl_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void mdl_reply(mdl_request_t *req, int status, const char *content_type, char *body, size_t len)
{
    free(req->resp);
    req->status = status;
    req->content_type = content_type;
    req->resp = body;
    req->resp_len = len;
}

void mdl_reply_json(mdl_request_t *req, int status, cJSON *json)
{
    char *text = json ? cJSON_PrintUnformatted(json) : NULL;

    cJSON_Delete(json);
    if (!text) {
        mdl_reply_error(req, 500, "internal", "could not build the response (out of memory)");
        return;
    }
    mdl_reply(req, status, "application/json", text, strlen(text));
}

/* Requests to the Open Inference Protocol's paths (/v2 and below) get its error shape. */
static bool v2_path(const mdl_request_t *req)
{
    const char *p = req->path;

    return p && strncmp(p, "/v2", 3) == 0 && (p[3] == '\0' || p[3] == '/');
}

void mdl_reply_error(mdl_request_t *req, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    cJSON *root = cJSON_CreateObject(), *err = cJSON_CreateObject();
    char *text;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* User text only ever enters as a cJSON string value, so it is escaped. */
    if (root && v2_path(req)) {
        cJSON_AddStringToObject(root, "error", msg);
    } else if (root && err && cJSON_AddItemToObject(root, "error", err)) {
        err = NULL;
        cJSON_AddStringToObject(cJSON_GetObjectItem(root, "error"), "code", code);
        cJSON_AddStringToObject(cJSON_GetObjectItem(root, "error"), "message", msg);
    }
    cJSON_Delete(err);
    text = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text) {
        static const char oom[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
        text = malloc(sizeof oom);
        if (text)
            memcpy(text, oom, sizeof oom);
        status = 500;
    }
    mdl_reply(req, status, "application/json", text, text ? strlen(text) : 0);
}

void mdl_reply_err(mdl_request_t *req, const mdl_err_t *err)
{
    switch (err->code) {
    case -EPROTO:
    case -EINVAL:
    case -ERANGE:
        mdl_reply_error(req, 400, "invalid_argument", "%s", err->msg);
        break;
    case -E2BIG:
        mdl_reply_error(req, 413, "too_large", "%s", err->msg);
        break;
    case -ENOENT:
        mdl_reply_error(req, 404, "not_found", "%s", err->msg);
        break;
    case -EBUSY:
        mdl_reply_overloaded(req);
        break;
    default:
        mdl_reply_error(req, 500, "internal", "%s", err->msg);
    }
}

void mdl_reply_overloaded(mdl_request_t *req)
{
    /* 429, not 503: the server is healthy, this client should slow down (a load balancer
     * would take a 503 as the instance failing) */
    mdl_reply_error(req, 429, "overloaded", "all inference workers are busy and the queue is full; retry later");
    req->retry_after_s = 1;
}

/* Depth of the deepest [ or { outside strings; cJSON's own limit is a compile-time 1000,
 * too deep for a server, so the configured bound is checked first. */
static unsigned json_depth(const char *s, size_t len, size_t *ret_pos, unsigned limit)
{
    unsigned depth = 0, max = 0;
    int in_string = 0;

    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max) {
                max = depth;
                if (max > limit) {
                    *ret_pos = i;
                    return max;
                }
            }
        } else if (c == ']' || c == '}') {
            if (depth)
                depth--;
        }
    }
    return max;
}

int mdl_request_check_depth(mdl_server_t *srv, mdl_request_t *req)
{
    unsigned limit = srv->config.max_json_depth;
    size_t pos = 0;

    if (json_depth(req->body, req->body_len, &pos, limit) > limit) {
        mdl_reply_error(req, 400, "json_too_deep", "JSON nesting exceeds the limit of %u at byte %zu",
                        limit, pos);
        return -1;
    }
    return 0;
}
