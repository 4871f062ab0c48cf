#include "config.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/file.h"

typedef enum { T_UINT, T_SIZE, T_STRING, T_LISTEN, T_LEVEL, T_FORMAT, T_BOOL } type_t;

/* Every key the file may hold, with its bounds. Keys not here are errors. */
static const struct option {
    const char *key;
    type_t type;
    size_t offset, size; /* size: of the string buffer */
    unsigned long long min, max;
} options[] = {
#define U(k, lo, hi) {#k, T_UINT, offsetof(mdl_config_t, k), 0, lo, hi}
#define Z(k, lo, hi) {#k, T_SIZE, offsetof(mdl_config_t, k), 0, lo, hi}
#define S(k) {#k, T_STRING, offsetof(mdl_config_t, k), sizeof(((mdl_config_t *)0)->k), 0, 0}
    {"listen", T_LISTEN, 0, 0, 0, 0},
    S(model_repository),
    S(ready_file),
    U(workers, 1, 256),
    U(max_queue, 0, 1000000),
    Z(max_body_bytes, 64, 1ULL << 34),
    U(max_json_depth, 2, 10000),
    Z(max_url_bytes, 64, 65536),
    Z(max_header_bytes, 4096, 1 << 20),
    U(drain_timeout_ms, 0, 3600000),
    U(max_connections, 1, 1000000),
    U(connection_timeout_s, 1, 86400),
    U(max_connections_per_ip, 0, 1000000),
    U(header_timeout_s, 1, 3600),
    U(body_timeout_s, 1, 86400),
    Z(body_min_rate, 1, 1ULL << 40),
    U(request_timeout_ms, 0, 86400000),
    Z(inline_max_values, 0, 1ULL << 32),
    Z(max_instances, 1, 1ULL << 32),
    Z(max_eval_body_bytes, 64, 1ULL << 40),
    Z(max_eval_rows, 1, 1ULL << 32),
    Z(max_rank_candidates, 1, 1ULL << 24),
    Z(max_rank_queries, 1, 1ULL << 20),
    Z(max_model_bytes, 1024, 1ULL << 40),
    U(generate_threads, 1, 64),
    U(max_sequences, 1, 256),
    Z(max_generate_tokens, 1, 1 << 20),
    U(repository_poll_ms, 0, 86400000),
    U(repository_settle_ms, 0, 600000),
    S(ready_models),
    S(admin_token_file),
    {"admin_allow_unauthenticated_loopback", T_BOOL, offsetof(mdl_config_t, admin_allow_loopback), 0, 0, 0},
    {"allow_symlinks_outside", T_BOOL, offsetof(mdl_config_t, allow_symlinks_outside), 0, 0, 0},
    {"log_level", T_LEVEL, offsetof(mdl_config_t, log_level), 0, 0, 0},
    {"log_format", T_FORMAT, offsetof(mdl_config_t, log_format), 0, 0, 0},
#undef U
#undef Z
#undef S
};

void mdl_config_defaults(mdl_config_t *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->listen_host, sizeof c->listen_host, "127.0.0.1");
    c->listen_port = 8080;
    snprintf(c->model_repository, sizeof c->model_repository, "conf/models");
    c->workers = 2;
    c->max_queue = 64;
    c->max_body_bytes = 16u << 20;
    c->max_json_depth = 32;
    c->max_url_bytes = 2048;
    c->max_header_bytes = 8192;
    c->drain_timeout_ms = 10000;
    c->max_connections = 4096;
    c->connection_timeout_s = 60;
    c->max_connections_per_ip = 1024; /* one address cannot take every connection */
    c->header_timeout_s = 10;
    c->body_timeout_s = 30;
    c->body_min_rate = 16384;
    c->request_timeout_ms = 30000;
    c->inline_max_values = 4096;
    c->max_instances = 100000;
    c->max_eval_body_bytes = 2ULL << 30;
    c->max_eval_rows = 100000000;
    c->max_rank_candidates = 10000;
    c->max_rank_queries = 256;
    c->max_model_bytes = 1ULL << 30;
    c->generate_threads = 2;
    c->max_sequences = 32;
    c->max_generate_tokens = 4096;
    c->repository_poll_ms = 2000;
    c->repository_settle_ms = 500;
    c->log_level = MDL_LOG_INFO;
    c->log_format = MDL_LOG_TEXT;
}

static const struct option *find_option(const char *key)
{
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
        if (strcmp(options[i].key, key) == 0)
            return &options[i];
    return NULL;
}

int mdl_config_set_listen(mdl_config_t *c, const char *hostport, mdl_err_t *reterr)
{
    const char *colon = strrchr(hostport, ':');
    const char *host = hostport;
    size_t host_len;
    char *end;
    unsigned long port;

    if (!colon || colon == hostport)
        return mdl_err_set(reterr, -EINVAL, "listen: expected HOST:PORT, got '%s'", hostport);
    host_len = (size_t)(colon - hostport);
    if (host[0] == '[') {
        if (host_len < 3 || host[host_len - 1] != ']')
            return mdl_err_set(reterr, -EINVAL, "listen: bad IPv6 address in '%s'", hostport);
        host++, host_len -= 2;
    }
    if (host_len >= sizeof c->listen_host)
        return mdl_err_set(reterr, -EINVAL, "listen: host too long in '%s'", hostport);
    errno = 0;
    port = strtoul(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || port > 65535)
        return mdl_err_set(reterr, -EINVAL, "listen: bad port in '%s'", hostport);
    memcpy(c->listen_host, host, host_len);
    c->listen_host[host_len] = '\0';
    c->listen_port = (unsigned)port;
    return 0;
}

static int set_number(mdl_config_t *c, const struct option *o, double v, mdl_err_t *reterr)
{
    if (!(v >= (double)o->min && v <= (double)o->max) || v != (double)(unsigned long long)v)
        return mdl_err_set(reterr, -EINVAL, "%s: must be an integer in [%llu, %llu]", o->key, o->min,
                           o->max);
    if (o->type == T_UINT)
        *(unsigned *)((char *)c + o->offset) = (unsigned)v;
    else
        *(size_t *)((char *)c + o->offset) = (size_t)v;
    return 0;
}

static int set_text(mdl_config_t *c, const struct option *o, const char *v, mdl_err_t *reterr)
{
    switch (o->type) {
    case T_LISTEN:
        return mdl_config_set_listen(c, v, reterr);
    case T_STRING:
        if (strlen(v) >= o->size)
            return mdl_err_set(reterr, -EINVAL, "%s: longer than %zu bytes", o->key, o->size - 1);
        memcpy((char *)c + o->offset, v, strlen(v) + 1);
        return 0;
    case T_LEVEL:
        if (mdl_log_level_parse(v, (mdl_log_level_t *)((char *)c + o->offset)) < 0)
            return mdl_err_set(reterr, -EINVAL, "%s: expected debug, info, warn or error, got '%s'",
                               o->key, v);
        return 0;
    case T_BOOL:
        if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
            return mdl_err_set(reterr, -EINVAL, "%s: expected true or false, got '%s'", o->key, v);
        *(bool *)((char *)c + o->offset) = v[0] == 't';
        return 0;
    case T_FORMAT:
        if (mdl_log_format_parse(v, (mdl_log_format_t *)((char *)c + o->offset)) < 0)
            return mdl_err_set(reterr, -EINVAL, "%s: expected text or json, got '%s'", o->key, v);
        return 0;
    default:
        return mdl_err_set(reterr, -EINVAL, "%s: expected a number", o->key);
    }
}

int mdl_config_set(mdl_config_t *c, const char *key, const char *value, mdl_err_t *reterr)
{
    const struct option *o = find_option(key);
    char *end;
    double v;

    if (!o)
        return mdl_err_set(reterr, -EINVAL, "unknown setting '%s'", key);
    if (o->type != T_UINT && o->type != T_SIZE)
        return set_text(c, o, value, reterr);
    v = strtod(value, &end);
    if (end == value || *end)
        return mdl_err_set(reterr, -EINVAL, "%s: expected a number, got '%s'", key, value);
    return set_number(c, o, v, reterr);
}

int mdl_config_load_text(mdl_config_t *c, const char *name, const char *data, size_t len,
                         mdl_err_t *reterr)
{
    const char *end = NULL;
    cJSON *root, *item;
    int r = 0;

    root = cJSON_ParseWithLengthOpts(data, len, &end, 0);
    /* cJSON stops after the first value: text after it (a second object pasted in, a
     * truncated edit) would be ignored silently */
    if (root && end) {
        while (end < data + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
            end++;
        if (end < data + len) {
            r = mdl_err_set(reterr, -EINVAL, "%s: invalid JSON: data after the object at byte %ld", name,
                            (long)(end - data));
            goto out;
        }
    }
    if (!root || !cJSON_IsObject(root)) {
        r = mdl_err_set(reterr, -EINVAL, "%s: %s at byte %ld", name,
                        root ? "expected a JSON object" : "invalid JSON",
                        root ? 0L : (long)(end ? end - data : 0));
        goto out;
    }
    cJSON_ArrayForEach(item, root) {
        const struct option *o = find_option(item->string);
        if (!o) {
            r = mdl_err_set(reterr, -EINVAL, "%s: unknown key '%s'", name, item->string);
            break;
        }
        if (o->type == T_BOOL) {
            if (!cJSON_IsBool(item))
                r = mdl_err_set(reterr, -EINVAL, "%s: %s: expected true or false", name, o->key);
            else
                *(bool *)((char *)c + o->offset) = cJSON_IsTrue(item);
        } else if (o->type == T_UINT || o->type == T_SIZE) {
            if (!cJSON_IsNumber(item))
                r = mdl_err_set(reterr, -EINVAL, "%s: %s: expected a number", name, o->key);
            else if ((r = set_number(c, o, item->valuedouble, reterr)) < 0)
                mdl_err_prefix(reterr, "%s: ", name);
        } else if (!cJSON_IsString(item)) {
            r = mdl_err_set(reterr, -EINVAL, "%s: %s: expected a string", name, o->key);
        } else if ((r = set_text(c, o, item->valuestring, reterr)) < 0) {
            mdl_err_prefix(reterr, "%s: ", name);
        }
        if (r < 0)
            break;
    }
out:
    cJSON_Delete(root);
    return r;
}

int mdl_config_load_file(mdl_config_t *c, const char *path, mdl_err_t *reterr)
{
    char *data;
    size_t len;
    int r;

    r = mdl_file_read(path, 1 << 20, &data, &len, NULL, reterr);
    if (r < 0)
        return r;
    r = mdl_config_load_text(c, path, data, len, reterr);
    free(data);
    return r;
}
