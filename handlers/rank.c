/* POST /v1/models/{m}[/versions/{v}]:rank — the ranking-service backend: score a query's
 * candidates with any one-output tabular model and return the top k.
 *
 * Body: {"query": {shared features}, "candidates": [{"id": ..., features}, ...],
 * "top_k"?: k, "return_all_scores"?: bool}, or many at once: {"queries": [that, ...]}
 * (top_k / return_all_scores at the top level are the default for every query).
 * The query's features are merged into each candidate (the candidate wins), every
 * candidate of every query is scored in one batch, and each query's candidates are
 * sorted by score descending, ties in input order. Decoded without a JSON tree, as
 * :predict does. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handler.h"
#include "server/server.h"
#include "tabular.h"

typedef struct rank_query {
    size_t first, n;      /* its candidates: rows first .. first+n-1 */
    size_t top_k;         /* 0 = all */
    bool all_scores;
} rank_query_t;

typedef struct rank_job {
    double *rows;         /* all candidates, n_rows x n_features */
    size_t n_rows, cap;
    double *scores;       /* n_rows */
    const char **ids;     /* raw JSON of each candidate's id (in req->body), or NULL */
    size_t *id_len;
    rank_query_t *queries;
    size_t n_queries;
    bool multi;           /* answered as {"queries": [...]} */
    int rc;
    mdl_err_t err;
} rank_job_t;

static void job_free(rank_job_t *job)
{
    if (!job)
        return;
    free(job->rows);
    free(job->scores);
    free(job->ids);
    free(job->id_len);
    free(job->queries);
    free(job);
}

/* ---- decoding ---- */

typedef struct cur {
    const char *start, *p, *end;
} cur_t;

static void ws(cur_t *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
        c->p++;
}

static int bad_json(cur_t *c, const char *what, mdl_err_t *err)
{
    return mdl_err_set(err, -EBADMSG, "malformed JSON: %s at byte %zu", what, (size_t)(c->p - c->start));
}

/* The next value's slice (after whitespace). */
static int value(cur_t *c, const char **ret, size_t *ret_len, mdl_err_t *err)
{
    long n;

    ws(c);
    n = mdl_json_scan_value(c->p, c->end);
    if (n == 0 && c->p < c->end)
        n = (long)(c->end - c->p); /* a scalar at the very end: the parse that follows checks it */
    if (n <= 0)
        return bad_json(c, "expected a value", err);
    *ret = c->p;
    *ret_len = (size_t)n;
    c->p += n;
    return 0;
}

/* Calls on_key for each "key": value of the object at c (cursor on '{'). */
typedef int key_fn(void *arg, const char *key, cur_t *c, mdl_err_t *err);
static int each_key(cur_t *c, key_fn *fn, void *arg, mdl_err_t *err)
{
    int r;

    ws(c);
    if (c->p >= c->end || *c->p != '{')
        return bad_json(c, "expected '{'", err);
    c->p++;
    ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        return 0;
    }
    for (;;) {
        char key[64];
        size_t used;
        ws(c);
        if (c->p >= c->end || *c->p != '"')
            return bad_json(c, "expected a string key", err);
        if ((r = mdl_json_parse_string(c->p, c->end, key, sizeof key, &used, err)) < 0)
            return r == -EPROTO ? mdl_err_set(err, -EPROTO, "unknown field (a key longer than 63 bytes)") : r;
        c->p += used;
        ws(c);
        if (c->p >= c->end || *c->p != ':')
            return bad_json(c, "expected ':'", err);
        c->p++;
        if ((r = fn(arg, key, c, err)) < 0)
            return r;
        ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == '}') {
            c->p++;
            return 0;
        }
        return bad_json(c, "expected ',' or '}' in object", err);
    }
}

typedef struct parse_ctx {
    const mdl_model_t *m;
    mdl_server_t *srv;
    rank_job_t *job;
    cur_t *top;
    /* The query object being read. */
    const char *query, *candidates, *top_k, *all;
    size_t query_len, candidates_len, top_k_len, all_len;
    /* Top-level defaults and the list of queries. */
    const char *def_top_k, *def_all, *queries;
    size_t def_top_k_len, def_all_len, queries_len;
    size_t qi;        /* index of the query being read (for messages) */
} parse_ctx_t;

static int query_key(void *arg, const char *key, cur_t *c, mdl_err_t *err)
{
    parse_ctx_t *px = arg;

    if (strcmp(key, "query") == 0)
        return value(c, &px->query, &px->query_len, err);
    if (strcmp(key, "candidates") == 0)
        return value(c, &px->candidates, &px->candidates_len, err);
    if (strcmp(key, "top_k") == 0)
        return value(c, &px->top_k, &px->top_k_len, err);
    if (strcmp(key, "return_all_scores") == 0)
        return value(c, &px->all, &px->all_len, err);
    return mdl_err_set(err, -EPROTO, "unknown field '%s' (expected query, candidates, top_k, return_all_scores)", key);
}

static int top_key(void *arg, const char *key, cur_t *c, mdl_err_t *err)
{
    parse_ctx_t *px = arg;

    if (strcmp(key, "queries") == 0)
        return value(c, &px->queries, &px->queries_len, err);
    if (strcmp(key, "top_k") == 0)
        return value(c, &px->def_top_k, &px->def_top_k_len, err);
    if (strcmp(key, "return_all_scores") == 0)
        return value(c, &px->def_all, &px->def_all_len, err);
    return query_key(arg, key, c, err);
}

/* "queries[2]." or "" for a single query. */
#define QP(px) ((px)->job->multi ? qprefix((px), (char[40]){0}) : "")
static const char *qprefix(const parse_ctx_t *px, char *buf)
{
    snprintf(buf, 40, "queries[%zu].", px->qi);
    return buf;
}

static int parse_top_k(parse_ctx_t *px, const char *t, size_t len, size_t *ret, mdl_err_t *err)
{
    double v;

    if (!t)
        return 0;
    if (mdl_json_parse_number(t, t + len, &v) != len || v < 1 || v != floor(v) || v > 1e9)
        return mdl_err_set(err, -EPROTO, "%stop_k: expected a positive integer", QP(px));
    *ret = (size_t)v;
    return 0;
}

static int parse_bool(parse_ctx_t *px, const char *t, size_t len, bool *ret, mdl_err_t *err)
{
    if (!t)
        return 0;
    if (len == 4 && memcmp(t, "true", 4) == 0)
        *ret = true;
    else if (len == 5 && memcmp(t, "false", 5) == 0)
        *ret = false;
    else
        return mdl_err_set(err, -EPROTO, "%sreturn_all_scores: expected true or false", QP(px));
    return 0;
}

/* A candidate's id must be a JSON string or number: it is echoed back as written. */
static bool valid_id(const char *t, size_t len)
{
    double v;
    char buf[256];
    size_t used;
    mdl_err_t ignore;

    if (t[0] == '"')
        return mdl_json_parse_string(t, t + len, buf, sizeof buf, &used, &ignore) == 0 && used == len;
    return mdl_json_parse_number(t, t + len, &v) == len;
}

static int add_rows(rank_job_t *job, size_t n, size_t nf, mdl_err_t *err)
{
    if (job->n_rows + n > job->cap) {
        size_t cap = job->cap ? job->cap : 64;
        double *rows;
        const char **ids;
        size_t *id_len;
        while (cap < job->n_rows + n)
            cap *= 2;
        if (!(rows = realloc(job->rows, cap * nf * sizeof *rows)))
            return mdl_err_set(err, -ENOMEM, "out of memory");
        job->rows = rows;
        if (!(ids = realloc(job->ids, cap * sizeof *ids)))
            return mdl_err_set(err, -ENOMEM, "out of memory");
        job->ids = ids;
        if (!(id_len = realloc(job->id_len, cap * sizeof *id_len)))
            return mdl_err_set(err, -ENOMEM, "out of memory");
        job->id_len = id_len;
        job->cap = cap;
    }
    return 0;
}

/* One query from the slices px holds. */
static int parse_query(parse_ctx_t *px, mdl_err_t *err)
{
    const mdl_model_t *m = px->m;
    rank_job_t *job = px->job;
    size_t nf = m->n_features ? m->n_features : 1, limit = px->srv->config.max_rank_candidates;
    rank_query_t *q = &job->queries[job->n_queries];
    double *shared = NULL;
    char key[48];
    cur_t c;
    int r;

    *q = (rank_query_t){.first = job->n_rows};
    if ((r = parse_top_k(px, px->def_top_k, px->def_top_k_len, &q->top_k, err)) < 0 ||
        (r = parse_top_k(px, px->top_k, px->top_k_len, &q->top_k, err)) < 0 ||
        (r = parse_bool(px, px->def_all, px->def_all_len, &q->all_scores, err)) < 0 ||
        (r = parse_bool(px, px->all, px->all_len, &q->all_scores, err)) < 0)
        return r;
    if (!px->candidates)
        return mdl_err_set(err, -EPROTO, "%scandidates: required (an array of candidate objects)", QP(px));
    if (px->query) {
        mdl_row_opts_t o = {.key = key, .index = SIZE_MAX, .base = (size_t)(px->query - px->top->start)};
        snprintf(key, sizeof key, "%squery", QP(px));
        if (px->query[0] != '{')
            return mdl_err_set(err, -EPROTO, "%s: expected an object keyed by feature name", key);
        if (!(shared = malloc(nf * sizeof *shared)))
            return mdl_err_set(err, -ENOMEM, "out of memory");
        if ((r = mdl_tabular_parse_row(m, px->query, px->query_len, &o, shared, err)) < 0) {
            free(shared);
            return r;
        }
    }
    c = (cur_t){px->top->start, px->candidates, px->candidates + px->candidates_len};
    snprintf(key, sizeof key, "%scandidates", QP(px));
    r = 0;
    if (c.p[0] != '[')
        r = mdl_err_set(err, -EPROTO, "%s: expected an array of candidate objects", key);
    c.p++;
    ws(&c);
    if (r == 0 && c.p < c.end && *c.p == ']')
        r = mdl_err_set(err, -EPROTO, "%s: must hold at least one candidate", key);
    while (r == 0) {
        const char *t;
        size_t len, i = job->n_rows - q->first;
        mdl_row_opts_t o = {.key = key, .index = i, .defaults = shared, .id_key = "id"};
        if (i >= limit) {
            r = mdl_err_set(err, -E2BIG, "%s: more than %zu candidates (the max_rank_candidates limit)", key, limit);
            break;
        }
        if ((r = add_rows(job, 1, nf, err)) < 0)
            break;
        ws(&c);
        if (c.p >= c.end || *c.p != '{') {
            r = mdl_err_set(err, -EPROTO, "%s[%zu]: expected an object keyed by feature name", key, i);
            break;
        }
        /* Decoded where it stands (no scan for its end first: candidates are the bytes). */
        t = c.p;
        o.base = (size_t)(t - px->top->start);
        o.ret_id = &job->ids[job->n_rows];
        o.ret_id_len = &job->id_len[job->n_rows];
        o.ret_used = &len;
        if ((r = mdl_tabular_parse_row(m, t, (size_t)(c.end - t), &o, job->rows + job->n_rows * nf, err)) < 0)
            break;
        c.p += len;
        if (job->ids[job->n_rows] && !valid_id(job->ids[job->n_rows], job->id_len[job->n_rows])) {
            r = mdl_err_set(err, -EPROTO, "%s[%zu].id: expected a string or a number", key, i);
            break;
        }
        job->n_rows++;
        ws(&c);
        if (c.p < c.end && *c.p == ',') {
            c.p++;
            continue;
        }
        if (c.p < c.end && *c.p == ']')
            break;
        r = bad_json(&c, "expected ',' or ']' in array", err);
    }
    free(shared);
    if (r < 0)
        return r;
    q->n = job->n_rows - q->first;
    job->n_queries++;
    return 0;
}

static int parse_body(mdl_server_t *srv, const mdl_model_t *m, const char *body, size_t len, rank_job_t *job,
                      mdl_err_t *err)
{
    cur_t top = {body, body, body + len};
    parse_ctx_t px = {.m = m, .srv = srv, .job = job, .top = &top};
    size_t limit = srv->config.max_rank_queries;
    int r;

    if ((r = each_key(&top, top_key, &px, err)) < 0)
        return r;
    ws(&top);
    if (top.p < top.end)
        return bad_json(&top, "unexpected data after the JSON value", err);
    if (!px.queries) {
        if (!(job->queries = malloc(sizeof *job->queries)))
            return mdl_err_set(err, -ENOMEM, "out of memory");
        return parse_query(&px, err);
    }
    if (px.query || px.candidates)
        return mdl_err_set(err, -EPROTO, "give either \"queries\" or one \"query\" + \"candidates\", not both");
    job->multi = true;
    {
        cur_t c = {body, px.queries, px.queries + px.queries_len};
        size_t cap = 0;
        if (*c.p != '[')
            return mdl_err_set(err, -EPROTO, "queries: expected an array of query objects");
        c.p++;
        ws(&c);
        if (c.p < c.end && *c.p == ']')
            return mdl_err_set(err, -EPROTO, "queries: must hold at least one query");
        for (;;) {
            if (job->n_queries >= limit)
                return mdl_err_set(err, -E2BIG, "queries: more than %zu queries (the max_rank_queries limit)", limit);
            if (job->n_queries == cap) {
                rank_query_t *qs;
                cap = cap ? cap * 2 : 8;
                if (!(qs = realloc(job->queries, cap * sizeof *qs)))
                    return mdl_err_set(err, -ENOMEM, "out of memory");
                job->queries = qs;
            }
            px.query = px.candidates = px.top_k = px.all = NULL;
            px.qi = job->n_queries;
            ws(&c);
            if (c.p >= c.end || *c.p != '{')
                return mdl_err_set(err, -EPROTO, "queries[%zu]: expected an object", px.qi);
            if ((r = each_key(&c, query_key, &px, err)) < 0 || (r = parse_query(&px, err)) < 0)
                return r;
            ws(&c);
            if (c.p < c.end && *c.p == ',') {
                c.p++;
                continue;
            }
            if (c.p < c.end && *c.p == ']')
                return 0;
            return bad_json(&c, "expected ',' or ']' in array", err);
        }
    }
}

/* ---- scoring and the answer ---- */

static void rank_work(mdl_request_t *req)
{
    rank_job_t *job = req->job;
    double t0 = mdl_now();

    job->rc = mdl_model_score(req->model, job->rows, job->n_rows, MDL_OUTPUT_VALUE, job->scores, &job->err);
    req->infer_s = mdl_now() - t0;
    req->batch_rows = job->n_rows;
}

/* Sorting key: score descending, then input position (a stable order). */
typedef struct ranked {
    double score;
    size_t i;
} ranked_t;

static int cmp_ranked(const void *a, const void *b)
{
    const ranked_t *x = a, *y = b;

    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

static void put_id(mdl_buf_t *out, const rank_job_t *job, size_t row, size_t index)
{
    char num[24];

    if (job->ids[row])
        mdl_buf_append(out, job->ids[row], job->id_len[row]);
    else
        mdl_buf_append(out, num, mdl_fmt_uint(num, index));
}

static int put_query(mdl_buf_t *out, const rank_job_t *job, const rank_query_t *q, ranked_t *tmp)
{
    size_t k = q->top_k && q->top_k < q->n ? q->top_k : q->n;
    char num[24];

    for (size_t i = 0; i < q->n; i++) {
        tmp[i] = (ranked_t){job->scores[q->first + i], i};
        if (!isfinite(tmp[i].score))
            return (int)i;
    }
    qsort(tmp, q->n, sizeof *tmp, cmp_ranked);
    mdl_buf_puts(out, "{\"results\":[");
    for (size_t r = 0; r < k; r++) {
        if (r)
            mdl_buf_puts(out, ",");
        mdl_buf_puts(out, "{\"id\":");
        put_id(out, job, q->first + tmp[r].i, tmp[r].i);
        mdl_buf_puts(out, ",\"score\":");
        mdl_json_put_double(out, tmp[r].score);
        mdl_buf_puts(out, ",\"rank\":");
        mdl_buf_append(out, num, mdl_fmt_uint(num, r + 1));
        mdl_buf_puts(out, "}");
    }
    mdl_buf_puts(out, "]");
    if (q->all_scores) { /* every candidate, in input order */
        mdl_buf_puts(out, ",\"all_scores\":[");
        for (size_t i = 0; i < q->n; i++) {
            if (i)
                mdl_buf_puts(out, ",");
            mdl_json_put_double(out, job->scores[q->first + i]);
        }
        mdl_buf_puts(out, "]");
    }
    mdl_buf_puts(out, "}");
    return -1;
}

static void rank_reply(mdl_server_t *srv, mdl_request_t *req, int cancelled)
{
    rank_job_t *job = req->job;
    mdl_buf_t out = {0};
    ranked_t *tmp = NULL;
    size_t most = 0;
    bool multi = job->multi;
    char version[24], *text;
    size_t len;
    (void)srv;

    req->job = NULL;
    if (cancelled) {
        job_free(job);
        return;
    }
    if (job->rc < 0) {
        mdl_reply_err(req, &job->err);
        job_free(job);
        return;
    }
    for (size_t i = 0; i < job->n_queries; i++)
        most = job->queries[i].n > most ? job->queries[i].n : most;
    if (!(tmp = malloc(most * sizeof *tmp))) {
        job_free(job);
        mdl_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    /* One query answers its object itself; many answer {"queries": [...]}. */
    if (job->multi)
        mdl_buf_puts(&out, "{\"queries\":[");
    for (size_t i = 0; i < job->n_queries; i++) {
        int bad;
        if (i)
            mdl_buf_puts(&out, ",");
        if ((bad = put_query(&out, job, &job->queries[i], tmp)) >= 0) {
            mdl_buf_done(&out);
            mdl_reply_error(req, 400, "invalid_argument",
                            "the score of queries[%zu].candidates[%d] is not finite (inputs out of range?)", i, bad);
            free(tmp);
            job_free(job);
            return;
        }
    }
    free(tmp);
    job_free(job);
    if (multi)
        mdl_buf_puts(&out, "]}");
    /* Both shapes end with the model: drop the closing brace to add it. */
    out.len--;
    mdl_buf_puts(&out, ",\"model\":{\"name\":\"");
    mdl_buf_puts(&out, req->slot->name);
    mdl_buf_puts(&out, "\",\"version\":");
    mdl_buf_append(&out, version, mdl_fmt_uint(version, (unsigned long long)req->version));
    mdl_buf_puts(&out, "}}");
    if (out.failed) {
        mdl_buf_done(&out);
        mdl_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    text = mdl_buf_steal(&out, &len);
    mdl_reply(req, 200, "application/json", text, len);
}

void mdl_handle_rank(mdl_server_t *srv, mdl_request_t *req)
{
    const mdl_model_t *m = req->model;
    rank_job_t *job;
    double t0 = mdl_now();
    int r;

    if (!mdl_model_is_tabular(m) || mdl_model_output_width(m, MDL_OUTPUT_VALUE) != 1) {
        mdl_reply_error(req, 400, "invalid_argument", "model '%s' (%s %s) does not give one score per row to rank by",
                        req->slot->name, m->kind->name, mdl_task_name(m->task));
        return;
    }
    if (!(job = calloc(1, sizeof *job))) {
        mdl_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    r = parse_body(srv, m, req->body, req->body_len, job, &job->err);
    if (r == 0 && !(job->scores = malloc((job->n_rows ? job->n_rows : 1) * sizeof *job->scores)))
        r = mdl_err_set(&job->err, -ENOMEM, "out of memory");
    req->parse_s = mdl_now() - t0;
    /* The decoder does not recurse, so nesting only matters to name a failure right. */
    if (r < 0 && mdl_request_check_depth(srv, req) < 0) {
        job_free(job);
        return;
    }
    if (r < 0) {
        if (r == -EBADMSG)
            mdl_reply_error(req, 400, "invalid_json", "%s", job->err.msg);
        else
            mdl_reply_err(req, &job->err);
        job_free(job);
        return;
    }
    req->job = job;
    if (job->n_rows * (m->cost_per_row ? m->cost_per_row : m->n_features) <= srv->config.inline_max_values) {
        rank_work(req);
        rank_reply(srv, req, 0);
        return;
    }
    if (mdl_request_defer(srv, req, rank_work, rank_reply) < 0) {
        req->job = NULL;
        job_free(job);
        mdl_reply_overloaded(req);
    }
}
