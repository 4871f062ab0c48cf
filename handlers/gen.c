#include "gen.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "server/server.h"

static gen_job_t *live; /* every generation not yet freed (loop thread) */

/* ---- request fields ---- */

static const char *const shared_fields[] = {
    "max_tokens", "temperature", "top_k", "top_p", "min_p", "repetition_penalty",
    "presence_penalty", "frequency_penalty", "seed", "stop", "stop_token_ids", "ignore_eos",
    "stream", "stream_options", NULL};

static bool in_list(const char *const *list, const char *s)
{
    for (; list && *list; list++)
        if (strcmp(*list, s) == 0)
            return true;
    return false;
}

static int bad_field(mdl_request_t *req, const char *field, const char *what)
{
    mdl_reply_error(req, 400, "invalid_argument", "%s: %s", field, what);
    return -1;
}

/* A JSON number that is an integer in [lo, hi]. */
static int get_int(mdl_request_t *req, const cJSON *v, const char *field, double lo, double hi, long long *ret)
{
    char what[96];
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || !(v->valuedouble >= lo) ||
        !(v->valuedouble <= hi)) {
        snprintf(what, sizeof what, "must be an integer in [%.0f, %.0f]", lo, hi);
        return bad_field(req, field, what);
    }
    *ret = (long long)v->valuedouble;
    return 0;
}

static int get_number(mdl_request_t *req, const cJSON *v, const char *field, double lo, double hi,
                      bool lo_open, double *ret)
{
    char what[96];
    if (!cJSON_IsNumber(v) || !(lo_open ? v->valuedouble > lo : v->valuedouble >= lo) ||
        !(v->valuedouble <= hi)) {
        snprintf(what, sizeof what, "must be a number in %s%g, %g]", lo_open ? "(" : "[", lo, hi);
        return bad_field(req, field, what);
    }
    *ret = v->valuedouble;
    return 0;
}

static int get_bool(mdl_request_t *req, const cJSON *v, const char *field, bool *ret)
{
    if (!cJSON_IsBool(v))
        return bad_field(req, field, "must be true or false");
    *ret = cJSON_IsTrue(v);
    return 0;
}

static int add_stop(mdl_request_t *req, gen_options_t *opt, const cJSON *s)
{
    if (!cJSON_IsString(s) || !s->valuestring[0] || strlen(s->valuestring) > MDL_STOP_MAX_BYTES)
        return bad_field(req, "stop", "each stop string must be a non-empty string of at most 256 bytes");
    if (opt->n_stops == MDL_STOP_MAX)
        return bad_field(req, "stop", "at most 8 stop strings");
    opt->stops[opt->n_stops] = strdup(s->valuestring);
    if (!opt->stops[opt->n_stops]) {
        mdl_reply_error(req, 500, "internal", "out of memory");
        return -1;
    }
    opt->n_stops++;
    return 0;
}

static int parse_field(mdl_request_t *req, const cJSON *v, gen_options_t *opt)
{
    const char *k = v->string;
    mdl_sampling_t *s = &opt->params.sampling;
    long long n;

    if (strcmp(k, "max_tokens") == 0) {
        if (cJSON_IsNull(v))
            return 0;
        if (get_int(req, v, k, 1, 1e9, &n) < 0)
            return -1;
        opt->params.max_tokens = (size_t)n;
        opt->max_tokens_set = true;
        return 0;
    }
    if (strcmp(k, "temperature") == 0)
        return cJSON_IsNull(v) ? 0 : get_number(req, v, k, 0, 100, false, &s->temperature);
    if (strcmp(k, "top_p") == 0)
        return cJSON_IsNull(v) ? 0 : get_number(req, v, k, 0, 1, true, &s->top_p);
    if (strcmp(k, "min_p") == 0)
        return cJSON_IsNull(v) ? 0 : get_number(req, v, k, 0, 1, false, &s->min_p);
    if (strcmp(k, "repetition_penalty") == 0)
        return cJSON_IsNull(v) ? 0 : get_number(req, v, k, 0, 100, true, &s->repetition_penalty);
    if (strcmp(k, "presence_penalty") == 0)
        return cJSON_IsNull(v) ? 0 : get_number(req, v, k, -2, 2, false, &s->presence_penalty);
    if (strcmp(k, "frequency_penalty") == 0)
        return cJSON_IsNull(v) ? 0 : get_number(req, v, k, -2, 2, false, &s->frequency_penalty);
    if (strcmp(k, "top_k") == 0) {
        if (cJSON_IsNull(v))
            return 0;
        if (get_int(req, v, k, -1, 1e9, &n) < 0)
            return -1;
        s->top_k = n < 0 ? 0 : (size_t)n; /* -1 = off, as vLLM takes it */
        return 0;
    }
    if (strcmp(k, "seed") == 0) {
        if (cJSON_IsNull(v))
            return 0;
        if (get_int(req, v, k, -9007199254740991.0, 9007199254740991.0, &n) < 0)
            return -1;
        s->seed = (uint64_t)n;
        opt->seed_set = true;
        return 0;
    }
    if (strcmp(k, "stop") == 0) {
        if (cJSON_IsNull(v))
            return 0;
        if (cJSON_IsString(v))
            return add_stop(req, opt, v);
        if (!cJSON_IsArray(v))
            return bad_field(req, k, "must be a string or an array of strings");
        for (const cJSON *e = v->child; e; e = e->next)
            if (add_stop(req, opt, e) < 0)
                return -1;
        return 0;
    }
    if (strcmp(k, "stop_token_ids") == 0) {
        if (cJSON_IsNull(v))
            return 0;
        /* counted with any earlier "stop_token_ids" of the same body (a duplicate key
         * appends, as "stop" does): checking one array alone let two overflow stop_ids */
        if (!cJSON_IsArray(v) ||
            (size_t)cJSON_GetArraySize(v) > MDL_GEN_MAX_STOP_IDS - opt->params.n_stop_ids)
            return bad_field(req, k, "must be an array of at most 16 token ids");
        for (const cJSON *e = v->child; e; e = e->next) {
            if (get_int(req, e, k, 0, 2147483647.0, &n) < 0)
                return -1;
            opt->params.stop_ids[opt->params.n_stop_ids++] = (int32_t)n;
        }
        return 0;
    }
    if (strcmp(k, "ignore_eos") == 0)
        return get_bool(req, v, k, &opt->params.ignore_eos);
    if (strcmp(k, "stream") == 0)
        return cJSON_IsNull(v) ? 0 : get_bool(req, v, k, &opt->stream);
    if (strcmp(k, "stream_options") == 0) {
        if (cJSON_IsNull(v))
            return 0;
        if (!cJSON_IsObject(v))
            return bad_field(req, k, "must be an object");
        for (const cJSON *e = v->child; e; e = e->next) {
            if (strcmp(e->string, "include_usage") != 0)
                return bad_field(req, "stream_options", "the only option is include_usage");
            if (get_bool(req, e, "stream_options.include_usage", &opt->include_usage) < 0)
                return -1;
        }
        return 0;
    }
    return 0; /* an API field: its handler reads it */
}

int gen_options_parse(mdl_request_t *req, const cJSON *body, const char *const *allowed,
                      gen_options_t *opt)
{
    for (const cJSON *v = body->child; v; v = v->next) {
        if (!in_list(shared_fields, v->string) && !in_list(allowed, v->string)) {
            mdl_reply_error(req, 400, "unknown_field", "unknown field '%.64s'", v->string);
            return -1;
        }
        if (parse_field(req, v, opt) < 0)
            return -1;
    }
    return 0;
}

void gen_options_done(gen_options_t *opt)
{
    for (size_t i = 0; i < opt->n_stops; i++)
        free(opt->stops[i]);
    opt->n_stops = 0;
    free(opt->echo_id);
    opt->echo_id = NULL;
}

void gen_options_defaults(const mdl_lm_t *lm, gen_options_t *opt)
{
    const mdl_tf_gen_defaults_t *d = mdl_tf_gen_defaults(lm->tf);
    mdl_sampling_t *s = &opt->params.sampling;

    memset(opt, 0, sizeof *opt);
    mdl_sampling_defaults(s);
    /* Hugging Face samples only with do_sample; a file that sets a temperature without it
     * means it, so that counts too. */
    if (d->do_sample == 1 || (d->do_sample == -1 && !isnan(d->temperature))) {
        s->temperature = isnan(d->temperature) ? 1.0 : d->temperature;
        if (!isnan(d->top_p))
            s->top_p = d->top_p;
        if (d->top_k > 0)
            s->top_k = (size_t)d->top_k;
    }
    if (!isnan(d->repetition_penalty))
        s->repetition_penalty = d->repetition_penalty;
    if (d->max_new_tokens > 0)
        opt->params.max_tokens = (size_t)d->max_new_tokens;
}

const mdl_lm_t *gen_model_lm(mdl_request_t *req)
{
    const mdl_lm_t *lm = mdl_model_lm(req->model);
    if (!lm)
        mdl_reply_error(req, 400, "invalid_argument",
                        "model '%s' (kind %s) does not generate text; use :predict", req->slot->name,
                        req->model->kind->name);
    return lm;
}

int gen_encode_prompt(mdl_request_t *req, const mdl_lm_t *lm, const char *text, size_t len,
                      bool no_bos, int32_t **ret_ids, size_t *ret_n)
{
    mdl_err_t err = {0};
    unsigned flags = MDL_TOK_ALLOW_SPECIAL;

    if (!lm->tok) {
        mdl_reply_error(req, 400, "invalid_argument",
                        "model '%s' has no tokenizer: send the prompt as an array of token ids",
                        req->slot->name);
        return -1;
    }
    if (!no_bos && mdl_tokenizer_add_bos_default(lm->tok))
        flags |= MDL_TOK_ADD_BOS;
    if (mdl_tokenizer_encode(lm->tok, text, len, flags, ret_ids, ret_n, &err) < 0) {
        mdl_reply_error(req, 400, "invalid_argument", "prompt: %s", err.msg);
        return -1;
    }
    return 0;
}

cJSON *mdl_generation_describe(const mdl_model_t *m)
{
    const mdl_lm_t *lm = mdl_model_lm(m);
    const mdl_tf_gen_defaults_t *d = mdl_tf_gen_defaults(lm->tf);
    cJSON *g = cJSON_CreateObject(), *eos = cJSON_CreateArray(), *defaults;
    const long *eos_ids;
    size_t n_eos = mdl_tf_eos(lm->tf, &eos_ids);

    cJSON_AddStringToObject(g, "architecture", mdl_tf_arch_name(lm->tf));
    cJSON_AddStringToObject(g, "format", mdl_tf_format(lm->tf));
    cJSON_AddStringToObject(g, "dtype", mdl_dtype_name(mdl_tf_dtype(lm->tf)));
    cJSON_AddStringToObject(g, "weights", mdl_tf_weights_name(mdl_tf_weights(lm->tf)));
    cJSON_AddNumberToObject(g, "weight_bytes_per_token", (double)mdl_tf_weight_bytes(lm->tf));
    cJSON_AddNumberToObject(g, "quantized_bytes", (double)mdl_tf_quantized_bytes(lm->tf));
    cJSON_AddNumberToObject(g, "vocab_size", (double)mdl_tf_vocab_size(lm->tf));
    cJSON_AddNumberToObject(g, "context", (double)mdl_tf_context(lm->tf));
    if (lm->tok)
        cJSON_AddStringToObject(g, "tokenizer", mdl_tok_kind_name(mdl_tokenizer_kind(lm->tok)));
    else
        cJSON_AddNullToObject(g, "tokenizer");
    cJSON_AddStringToObject(g, "chat_template", mdl_chat_template_name(lm->chat));
    if (mdl_tf_bos(lm->tf) >= 0)
        cJSON_AddNumberToObject(g, "bos_id", (double)mdl_tf_bos(lm->tf));
    else
        cJSON_AddNullToObject(g, "bos_id");
    for (size_t i = 0; i < n_eos; i++)
        cJSON_AddItemToArray(eos, cJSON_CreateNumber((double)eos_ids[i]));
    cJSON_AddItemToObject(g, "eos_ids", eos);
    defaults = cJSON_AddObjectToObject(g, "defaults");
    if (!isnan(d->temperature))
        cJSON_AddNumberToObject(defaults, "temperature", d->temperature);
    if (!isnan(d->top_p))
        cJSON_AddNumberToObject(defaults, "top_p", d->top_p);
    if (d->top_k >= 0)
        cJSON_AddNumberToObject(defaults, "top_k", (double)d->top_k);
    if (!isnan(d->repetition_penalty))
        cJSON_AddNumberToObject(defaults, "repetition_penalty", d->repetition_penalty);
    if (d->max_new_tokens >= 0)
        cJSON_AddNumberToObject(defaults, "max_tokens", (double)d->max_new_tokens);
    if (d->do_sample >= 0)
        cJSON_AddBoolToObject(defaults, "do_sample", d->do_sample == 1);
    return g;
}

cJSON *gen_parse_body(mdl_server_t *srv, mdl_request_t *req)
{
    cJSON *body;

    if (mdl_request_check_depth(srv, req) < 0)
        return NULL;
    body = cJSON_ParseWithLength(req->body, req->body_len);
    if (!cJSON_IsObject(body)) {
        cJSON_Delete(body);
        mdl_reply_error(req, 400, "invalid_json", "the body must be a JSON object");
        return NULL;
    }
    return body;
}

int gen_prompt(mdl_request_t *req, const mdl_lm_t *lm, const cJSON *prompt, const char *field,
               int32_t **ret_ids, size_t *ret_n)
{
    size_t n = 0, i = 0;
    int32_t *ids;

    if (cJSON_IsString(prompt)) {
        if (gen_encode_prompt(req, lm, prompt->valuestring, strlen(prompt->valuestring), false, ret_ids, ret_n) < 0)
            return -1;
        if (*ret_n == 0) {
            free(*ret_ids);
            *ret_ids = NULL;
            mdl_reply_error(req, 400, "invalid_argument", "%s: encodes to no tokens", field);
            return -1;
        }
        return 0;
    }
    if (!cJSON_IsArray(prompt) || (n = (size_t)cJSON_GetArraySize(prompt)) == 0) {
        mdl_reply_error(req, 400, "invalid_argument", "%s: required, a string or a non-empty array of token ids", field);
        return -1;
    }
    if (!(ids = malloc(n * sizeof *ids))) {
        mdl_reply_error(req, 500, "internal", "out of memory");
        return -1;
    }
    for (const cJSON *e = prompt->child; e; e = e->next, i++) {
        if (!cJSON_IsNumber(e) || e->valuedouble != (double)(int32_t)e->valuedouble) {
            free(ids);
            mdl_reply_error(req, 400, "invalid_argument", "%s[%zu]: must be a token id (an integer)", field, i);
            return -1;
        }
        ids[i] = (int32_t)e->valuedouble;
    }
    *ret_ids = ids;
    *ret_n = n;
    return 0;
}

int gen_logprobs_count(mdl_request_t *req, const cJSON *v, const char *field, gen_options_t *opt)
{
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 0 ||
        v->valuedouble > MDL_SAMPLER_MAX_LOGPROBS) {
        mdl_reply_error(req, 400, "invalid_argument", "%s: must be an integer in [0, %d]", field,
                        MDL_SAMPLER_MAX_LOGPROBS);
        return -1;
    }
    opt->params.logprobs = true;
    opt->params.sampling.n_logprobs = (size_t)v->valuedouble;
    return 0;
}

/* ---- the life of a generation ---- */

static void job_maybe_free(gen_job_t *j)
{
    if (!j->engine_done || !j->http_done)
        return;
    if (j->prev)
        j->prev->next = j->next;
    else
        live = j->next;
    if (j->next)
        j->next->prev = j->prev;
    mdl_gen_release(j->seq);
    if (j->has_detok)
        mdl_tok_stream_done(&j->detok);
    mdl_stop_done(&j->stop);
    mdl_buf_done(&j->text);
    gen_options_done(&j->opt);
    free(j->ids);
    free(j->picks);
    free(j->times);
    mdl_registry_release(j->srv->registry, j->model);
    free(j);
}

/* Appends text released by the stop matcher; a completed stop string ends the job. */
static void take_text(gen_job_t *j, const char *piece, size_t len)
{
    const char *out;
    size_t n;
    int r = mdl_stop_feed(&j->stop, piece, len, &out, &n);

    mdl_buf_append(&j->text, out, n);
    if (r == 1 && !j->stopped_by_text) {
        j->stopped_by_text = true;
        mdl_gen_cancel(j->seq); /* the engine may already be a token or two further */
    }
}

/* Turns newly read ids [from, to) into text, up to a stop string. */
static void take_tokens(gen_job_t *j, size_t from, size_t to)
{
    for (size_t i = from; i < to && !j->stopped_by_text; i++) {
        j->n_ids = i + 1;
        if (j->has_detok) {
            const char *piece;
            size_t len;
            mdl_err_t err = {0};
            if (mdl_tok_stream_push(&j->detok, j->ids[i], &piece, &len, &err) == 0)
                take_text(j, piece, len);
        }
    }
}

static void stream_out(gen_job_t *j)
{
    mdl_buf_t out = {0};
    size_t text_len = j->text.len - j->text_sent;

    if (text_len == 0 && j->n_ids == j->ids_sent)
        return;
    j->api->stream_chunk(j, &out, j->text.data ? j->text.data + j->text_sent : "", text_len,
                         j->ids_sent, j->n_ids - j->ids_sent);
    j->text_sent = j->text.len;
    j->ids_sent = j->n_ids;
    if (out.len && mdl_stream_write(j->req, out.data, out.len) < 0)
        mdl_gen_cancel(j->seq);
    mdl_buf_done(&out);
}

static void on_held_done(mdl_server_t *srv, mdl_request_t *req, int cancelled)
{
    gen_job_t *j = req->job;
    (void)srv, (void)cancelled;

    req->job = NULL;
    if (j->st.finish == MDL_GEN_ERROR)
        mdl_reply_error(req, 500, "generation_failed", "%s", j->st.error);
    else if (!j->finish)
        mdl_reply_error(req, 503, "cancelled", "the generation was cancelled (server shutting down)");
    else
        mdl_reply_json(req, 200, j->api->answer(j));
}

static void record_metrics(gen_job_t *j)
{
    mdl_metrics_t *m = j->srv->metrics;
    double gaps[64];
    size_t n = 0;

    for (size_t i = 1; i < j->n_read; i++) {
        gaps[n++] = j->times[i] - j->times[i - 1];
        if (n == sizeof gaps / sizeof gaps[0] || i + 1 == j->n_read) {
            mdl_metrics_generation(m, j->model_name, -1, gaps, n, 0, 0);
            n = 0;
        }
    }
    mdl_metrics_generation(m, j->model_name,
                           j->st.t_first_token > 0 ? j->st.t_first_token - j->st.t_submit : -1, NULL,
                           0, j->n_prompt, j->n_ids);
    mdl_metrics_active_sequences(m, j->model_name, -1);
}

/* The engine is done with the sequence: finish the text and the HTTP side. */
static void job_finish(gen_job_t *j)
{
    j->engine_done = true;
    if (!j->stopped_by_text && j->has_detok) {
        const char *piece, *out;
        size_t len, n;
        mdl_tok_stream_finish(&j->detok, &piece, &len);
        take_text(j, piece, len);
        if (!j->stopped_by_text) {
            mdl_stop_flush(&j->stop, &out, &n);
            mdl_buf_append(&j->text, out, n);
        }
    }
    if (j->stopped_by_text || j->st.finish == MDL_GEN_STOP)
        j->finish = "stop";
    else if (j->st.finish == MDL_GEN_LENGTH)
        j->finish = "length";
    record_metrics(j);
    if (j->req) {
        mdl_request_t *req = j->req;
        j->req = NULL;
        j->http_done = true;
        if (j->opt.stream) {
            mdl_buf_t out = {0};
            j->req = req; /* stream_out writes through it */
            stream_out(j);
            j->req = NULL;
            if (j->st.finish == MDL_GEN_ERROR) {
                cJSON *e = cJSON_CreateObject();
                cJSON *inner = cJSON_AddObjectToObject(e, "error");
                cJSON_AddStringToObject(inner, "code", "generation_failed");
                cJSON_AddStringToObject(inner, "message", j->st.error);
                gen_sse_event(&out, e);
            } else {
                j->api->stream_end(j, &out);
            }
            if (out.len)
                mdl_stream_write(req, out.data, out.len);
            mdl_buf_done(&out);
            req->job = NULL;
            mdl_stream_end(req);
        } else {
            mdl_request_release(j->srv, req);
        }
    }
    mdl_pool_unpost(j->srv->pool, &j->post);
    job_maybe_free(j);
}

/* Reads what the engine produced since the last call and passes it on. */
static void job_pump(gen_job_t *j)
{
    size_t room = j->opt.params.max_tokens - j->n_read;
    size_t n = mdl_gen_read(j->seq, j->n_read, j->ids + j->n_read, j->picks ? j->picks + j->n_read : NULL,
                            j->times + j->n_read, room, &j->st);

    take_tokens(j, j->n_read, j->n_read + n);
    j->n_read += n;
    if (j->req && j->st.finish == MDL_GEN_RUNNING && mdl_request_client_gone(j->req))
        mdl_gen_cancel(j->seq); /* nobody to answer: free the sequence now */
    if (j->req && j->opt.stream)
        stream_out(j);
    if (j->st.finish != MDL_GEN_RUNNING)
        job_finish(j);
}

static void on_post(mdl_post_t *post)
{
    gen_job_t *j = (gen_job_t *)post;
    if (!j->engine_done)
        job_pump(j);
}

/* Engine thread. */
static void gen_notify(void *user)
{
    gen_job_t *j = user;
    mdl_pool_post(j->srv->pool, &j->post);
}

/* The client of a stream went away: stop generating; the job ends with the engine. */
static void on_stream_gone(mdl_server_t *srv, mdl_request_t *req)
{
    gen_job_t *j = req->job;
    (void)srv;

    req->job = NULL;
    j->req = NULL;
    j->http_done = true;
    mdl_gen_cancel(j->seq);
}

static uint64_t random_seed(void)
{
    uint64_t s;
    if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s)
        s = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    return s;
}

void gen_start(mdl_server_t *srv, mdl_request_t *req, const gen_api_t *api, const mdl_lm_t *lm,
               const int32_t *prompt, size_t n_prompt, gen_options_t *opt, const char *id_prefix)
{
    size_t context = mdl_tf_context(lm->tf);
    mdl_err_t err = {0};
    gen_job_t *j;
    int r;

    if (opt->n_stops && !lm->tok) {
        gen_options_done(opt);
        mdl_reply_error(req, 400, "invalid_argument",
                        "stop: model '%s' has no tokenizer, so stop strings cannot be matched "
                        "(use stop_token_ids)", req->slot->name);
        return;
    }
    if (!opt->max_tokens_set) {
        size_t left = n_prompt < context ? context - n_prompt : 0;
        if (opt->params.max_tokens == 0 || opt->params.max_tokens > left)
            opt->params.max_tokens = left ? left : 1; /* 1: let the engine report the overflow */
        if (opt->params.max_tokens > srv->config.max_generate_tokens)
            opt->params.max_tokens = srv->config.max_generate_tokens;
    } else if (opt->params.max_tokens > srv->config.max_generate_tokens) {
        gen_options_done(opt);
        mdl_reply_error(req, 400, "limit_exceeded", "max_tokens: %zu is over this server's limit of %zu",
                        opt->params.max_tokens, srv->config.max_generate_tokens);
        return;
    }
    if (!opt->seed_set)
        opt->params.sampling.seed = random_seed();

    j = calloc(1, sizeof *j);
    if (!j) {
        gen_options_done(opt);
        mdl_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    j->post.fn = on_post;
    j->srv = srv;
    j->api = api;
    j->lm = lm;
    j->opt = *opt;
    memset(opt, 0, sizeof *opt); /* the job owns the stop strings now */
    j->n_prompt = n_prompt;
    j->version = req->version;
    snprintf(j->model_name, sizeof j->model_name, "%s", req->slot->name);
    snprintf(j->id, sizeof j->id, "%s%s", id_prefix, req->request_id);
    j->created = (long long)time(NULL);
    j->engine_done = j->http_done = true; /* until the sequence and the request are ours */
    size_t max = j->opt.params.max_tokens;
    j->ids = malloc(max * sizeof *j->ids);
    j->times = malloc(max * sizeof *j->times);
    if (j->opt.params.logprobs)
        j->picks = malloc(max * sizeof *j->picks);
    mdl_stop_init(&j->stop, (const char *const *)j->opt.stops, j->opt.n_stops);
    if (lm->tok) {
        if (mdl_tok_stream_init(&j->detok, lm->tok, prompt[n_prompt - 1], MDL_TOK_SKIP_SPECIAL) < 0)
            goto oom;
        j->has_detok = true;
    }
    if (!j->ids || !j->times || (j->opt.params.logprobs && !j->picks))
        goto oom;
    j->model = mdl_model_ref(req->model);
    j->next = live;
    if (live)
        live->prev = j;
    live = j;

    r = mdl_gen_submit(lm->engine, prompt, n_prompt, &j->opt.params, gen_notify, j, &j->seq, &err);
    if (r < 0) {
        if (r == -EBUSY) {
            req->retry_after_s = 1;
            mdl_reply_error(req, 429, "too_many_sequences", "model '%s': %s", j->model_name, err.msg);
        } else if (r == -E2BIG) {
            mdl_reply_error(req, 400, "context_length_exceeded", "%s", err.msg);
        } else if (r == -ENOMEM) {
            mdl_reply_error(req, 500, "internal", "%s", err.msg);
        } else {
            mdl_reply_error(req, 400, "invalid_argument", "%s", err.msg);
        }
        job_maybe_free(j);
        return;
    }
    j->engine_done = j->http_done = false;
    j->req = req;
    req->job = j;
    mdl_metrics_active_sequences(srv->metrics, j->model_name, 1);
    if (j->opt.stream)
        mdl_request_stream(srv, req, "text/event-stream", on_stream_gone);
    else
        mdl_request_hold(srv, req, on_held_done);
    return;
oom:
    if (j->has_detok)
        mdl_tok_stream_done(&j->detok);
    mdl_stop_done(&j->stop);
    gen_options_done(&j->opt);
    free(j->ids);
    free(j->times);
    free(j->picks);
    free(j);
    mdl_reply_error(req, 500, "internal", "out of memory");
}

/* ---- printing helpers ---- */

const char *gen_finish_reason(const gen_job_t *j)
{
    return j->finish;
}

cJSON *gen_usage_json(const gen_job_t *j)
{
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)j->n_prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", (double)j->n_ids);
    cJSON_AddNumberToObject(u, "total_tokens", (double)(j->n_prompt + j->n_ids));
    return u;
}

cJSON *gen_timings_json(const gen_job_t *j)
{
    cJSON *t = cJSON_CreateObject();
    cJSON_AddNumberToObject(t, "prompt_ms", j->st.prefill_s * 1e3);
    if (j->st.t_first_token > 0)
        cJSON_AddNumberToObject(t, "first_token_ms", (j->st.t_first_token - j->st.t_submit) * 1e3);
    if (j->n_read >= 2) {
        double per = (j->times[j->n_read - 1] - j->times[0]) / (double)(j->n_read - 1);
        cJSON_AddNumberToObject(t, "per_token_ms", per * 1e3);
        cJSON_AddNumberToObject(t, "tokens_per_second", per > 0 ? 1.0 / per : 0);
    } else {
        cJSON_AddNullToObject(t, "per_token_ms");
        cJSON_AddNullToObject(t, "tokens_per_second");
    }
    return t;
}

void gen_sse_event(mdl_buf_t *out, cJSON *json)
{
    char *text = json ? cJSON_PrintUnformatted(json) : NULL;
    if (text) {
        mdl_buf_puts(out, "data: ");
        mdl_buf_puts(out, text);
        mdl_buf_puts(out, "\n\n");
    } else {
        out->failed = true;
    }
    free(text);
    cJSON_Delete(json);
}

cJSON *gen_piece_json(const gen_job_t *j, int32_t id)
{
    size_t len = 0;
    const char *p = j->lm->tok ? mdl_tokenizer_piece(j->lm->tok, id, &len) : NULL;
    mdl_utf8_fix_t fix;
    char *text;
    cJSON *s;

    if (!p)
        return cJSON_CreateString("");
    /* A piece may be a fragment of a character: JSON needs valid UTF-8. */
    text = malloc(3 * (len + 3) + 10);
    if (!text)
        return NULL;
    mdl_utf8_fix_init(&fix, false);
    size_t n = mdl_utf8_fix_feed(&fix, (const uint8_t *)p, len, (uint8_t *)text);
    n += mdl_utf8_fix_finish(&fix, (uint8_t *)text + n);
    text[n] = '\0';
    s = cJSON_CreateString(text);
    free(text);
    return s;
}

void mdl_generate_shutdown(mdl_server_t *srv)
{
    (void)srv;
    /* Posts no longer run (the pool stopped): wait for each sequence's end here. */
    while (live) {
        gen_job_t *j = live;
        if (!j->engine_done) {
            mdl_gen_cancel(j->seq);
            for (int i = 0; i < 5000; i++) {
                mdl_gen_read(j->seq, 0, NULL, NULL, NULL, 0, &j->st);
                if (j->st.finish != MDL_GEN_RUNNING)
                    break;
                usleep(1000);
            }
            job_pump(j);
        }
        if (live == j) {
            /* The engine never ended it: leave it (and its model) rather than free what
             * the engine thread may still post to. */
            live = j->next;
            j->prev = j->next = NULL;
        }
    }
}
