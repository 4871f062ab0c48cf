/* The OpenAI-compatible routes: POST /v1/completions and POST /v1/chat/completions, with
 * the model named in the body, answers and Server-Sent Events in OpenAI's shapes (the
 * official clients drive them), and the vLLM-style extensions top_k, min_p,
 * repetition_penalty, ignore_eos and stop_token_ids. n, best_of, echo, suffix and
 * logit_bias are accepted only at their neutral values. */
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "server/names.h"
#include "server/server.h"

/* ---- printing ---- */

static cJSON *envelope(const gen_job_t *j, const char *object)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "id", j->id);
    cJSON_AddStringToObject(e, "object", object);
    cJSON_AddNumberToObject(e, "created", (double)j->created);
    cJSON_AddStringToObject(e, "model", j->model_name);
    return e;
}

static void add_text(cJSON *obj, const char *key, const char *text, size_t len)
{
    char *t = strndup(text ? text : "", len);
    cJSON_AddStringToObject(obj, key, t ? t : "");
    free(t);
}

static void add_finish(cJSON *choice, const gen_job_t *j, bool final)
{
    const char *f = final ? gen_finish_reason(j) : NULL;
    if (f)
        cJSON_AddStringToObject(choice, "finish_reason", f);
    else
        cJSON_AddNullToObject(choice, "finish_reason");
}

/* Completions: {"tokens", "token_logprobs", "top_logprobs", "text_offset"}. */
static cJSON *completion_logprobs(const gen_job_t *j, size_t first, size_t n, size_t offset)
{
    cJSON *lp = cJSON_CreateObject();
    cJSON *tokens = cJSON_AddArrayToObject(lp, "tokens");
    cJSON *values = cJSON_AddArrayToObject(lp, "token_logprobs");
    cJSON *tops = cJSON_AddArrayToObject(lp, "top_logprobs");
    cJSON *offsets = cJSON_AddArrayToObject(lp, "text_offset");
    for (size_t i = first; i < first + n; i++) {
        const mdl_pick_t *p = &j->picks[i];
        cJSON *piece = gen_piece_json(j, p->token);
        cJSON *top = cJSON_CreateObject();
        cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)offset));
        offset += piece && piece->valuestring ? strlen(piece->valuestring) : 0;
        cJSON_AddItemToArray(tokens, piece);
        cJSON_AddItemToArray(values, cJSON_CreateNumber(p->logprob));
        for (size_t k = 0; k < p->n_top; k++) {
            cJSON *name = gen_piece_json(j, p->top[k].token);
            if (name && name->valuestring && !cJSON_GetObjectItemCaseSensitive(top, name->valuestring))
                cJSON_AddNumberToObject(top, name->valuestring, p->top[k].logprob);
            cJSON_Delete(name);
        }
        cJSON_AddItemToArray(tops, top);
    }
    return lp;
}

/* Chat: {"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}. */
static cJSON *token_entry(const gen_job_t *j, int32_t id, float logprob)
{
    cJSON *e = cJSON_CreateObject(), *bytes = cJSON_CreateArray();
    size_t len = 0;
    const char *p = mdl_tokenizer_piece(j->lm->tok, id, &len);
    cJSON_AddItemToObject(e, "token", gen_piece_json(j, id));
    cJSON_AddNumberToObject(e, "logprob", logprob);
    for (size_t i = 0; p && i < len; i++)
        cJSON_AddItemToArray(bytes, cJSON_CreateNumber((unsigned char)p[i]));
    cJSON_AddItemToObject(e, "bytes", bytes);
    return e;
}

static cJSON *chat_logprobs(const gen_job_t *j, size_t first, size_t n)
{
    cJSON *lp = cJSON_CreateObject(), *content = cJSON_AddArrayToObject(lp, "content");
    for (size_t i = first; i < first + n; i++) {
        const mdl_pick_t *p = &j->picks[i];
        cJSON *e = token_entry(j, p->token, p->logprob), *top = cJSON_CreateArray();
        for (size_t k = 0; k < p->n_top; k++)
            cJSON_AddItemToArray(top, token_entry(j, p->top[k].token, p->top[k].logprob));
        cJSON_AddItemToObject(e, "top_logprobs", top);
        cJSON_AddItemToArray(content, e);
    }
    return lp;
}

static void add_usage_null(cJSON *e, const gen_job_t *j)
{
    if (j->opt.include_usage)
        cJSON_AddNullToObject(e, "usage");
}

/* An OpenAI envelope whose "choices" holds one choice (index 0), returned in *ret_choice.
 * The choice's "logprobs" is lp, or null; its "finish_reason" is set when final. */
static cJSON *with_choice(const gen_job_t *j, const char *object, cJSON *lp, bool final, cJSON **ret_choice)
{
    cJSON *e = envelope(j, object), *c = cJSON_CreateObject();

    cJSON_AddItemToArray(cJSON_AddArrayToObject(e, "choices"), c);
    cJSON_AddNumberToObject(c, "index", 0);
    if (lp)
        cJSON_AddItemToObject(c, "logprobs", lp);
    else
        cJSON_AddNullToObject(c, "logprobs");
    add_finish(c, j, final);
    *ret_choice = c;
    return e;
}

static void completion_chunk(gen_job_t *j, mdl_buf_t *out, const char *text, size_t len, size_t first,
                             size_t n)
{
    cJSON *c, *e;
    if (len == 0 && !j->picks)
        return; /* ids whose text is held back: nothing to show yet */
    e = with_choice(j, "text_completion", j->picks ? completion_logprobs(j, first, n, j->text_sent) : NULL,
                    false, &c);
    add_text(c, "text", text, len);
    add_usage_null(e, j);
    gen_sse_event(out, e);
}

static void usage_chunk(gen_job_t *j, mdl_buf_t *out, const char *object)
{
    if (j->opt.include_usage) {
        cJSON *e = envelope(j, object);
        cJSON_AddArrayToObject(e, "choices");
        cJSON_AddItemToObject(e, "usage", gen_usage_json(j));
        gen_sse_event(out, e);
    }
    mdl_buf_puts(out, "data: [DONE]\n\n");
}

static void completion_end(gen_job_t *j, mdl_buf_t *out)
{
    cJSON *c, *e = with_choice(j, "text_completion", NULL, true, &c);
    cJSON_AddStringToObject(c, "text", "");
    add_usage_null(e, j);
    gen_sse_event(out, e);
    usage_chunk(j, out, "text_completion");
}

static cJSON *completion_answer(gen_job_t *j)
{
    cJSON *c, *e = with_choice(j, "text_completion", j->picks ? completion_logprobs(j, 0, j->n_ids, 0) : NULL,
                               true, &c);
    add_text(c, "text", j->text.data, j->text.len);
    cJSON_AddItemToObject(e, "usage", gen_usage_json(j));
    return e;
}

static void chat_chunk(gen_job_t *j, mdl_buf_t *out, const char *text, size_t len, size_t first, size_t n)
{
    bool first_chunk = j->ids_sent == 0 && j->text_sent == 0;
    cJSON *c, *e, *delta;
    if (len == 0 && !j->picks && !first_chunk)
        return;
    e = with_choice(j, "chat.completion.chunk", j->picks ? chat_logprobs(j, first, n) : NULL, false, &c);
    delta = cJSON_AddObjectToObject(c, "delta");
    if (first_chunk)
        cJSON_AddStringToObject(delta, "role", "assistant");
    add_text(delta, "content", text, len);
    add_usage_null(e, j);
    gen_sse_event(out, e);
}

static void chat_end(gen_job_t *j, mdl_buf_t *out)
{
    cJSON *c, *e = with_choice(j, "chat.completion.chunk", NULL, true, &c);
    cJSON_AddObjectToObject(c, "delta");
    add_usage_null(e, j);
    gen_sse_event(out, e);
    usage_chunk(j, out, "chat.completion.chunk");
}

static cJSON *chat_answer(gen_job_t *j)
{
    cJSON *c, *e = with_choice(j, "chat.completion", j->picks ? chat_logprobs(j, 0, j->n_ids) : NULL, true, &c);
    cJSON *msg = cJSON_AddObjectToObject(c, "message");
    cJSON_AddStringToObject(msg, "role", "assistant");
    add_text(msg, "content", j->text.data, j->text.len);
    cJSON_AddItemToObject(e, "usage", gen_usage_json(j));
    return e;
}

static const gen_api_t completions_api = {"completions", completion_chunk, completion_end, completion_answer};
static const gen_api_t chat_api = {"chat", chat_chunk, chat_end, chat_answer};

/* ---- requests ---- */

/* The fields OpenAI defines that only have one value here. */
static int check_neutral(mdl_request_t *req, const cJSON *body)
{
    const cJSON *v;
    if ((v = cJSON_GetObjectItemCaseSensitive(body, "n")) && !cJSON_IsNull(v) &&
        !(cJSON_IsNumber(v) && v->valuedouble == 1)) {
        mdl_reply_error(req, 400, "invalid_argument", "n: only 1 is supported");
        return -1;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(body, "best_of")) && !cJSON_IsNull(v) &&
        !(cJSON_IsNumber(v) && v->valuedouble == 1)) {
        mdl_reply_error(req, 400, "invalid_argument", "best_of: only 1 is supported");
        return -1;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(body, "echo")) && !cJSON_IsNull(v) && !cJSON_IsFalse(v)) {
        mdl_reply_error(req, 400, "invalid_argument", "echo: only false is supported");
        return -1;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(body, "suffix")) && !cJSON_IsNull(v)) {
        mdl_reply_error(req, 400, "invalid_argument", "suffix: not supported");
        return -1;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(body, "logit_bias")) && !cJSON_IsNull(v) &&
        !(cJSON_IsObject(v) && !v->child)) {
        mdl_reply_error(req, 400, "invalid_argument", "logit_bias: not supported");
        return -1;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(body, "user")) && !cJSON_IsNull(v) && !cJSON_IsString(v)) {
        mdl_reply_error(req, 400, "invalid_argument", "user: must be a string");
        return -1;
    }
    return 0;
}

/* Resolves the body's "model" like the router resolves {m}: the request then holds a
 * reference, released by the HTTP layer. */
static const mdl_lm_t *body_model(mdl_server_t *srv, mdl_request_t *req, const cJSON *body)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(body, "model");
    mdl_slot_t *slot;

    if (!cJSON_IsString(name)) {
        mdl_reply_error(req, 400, "invalid_argument", "model: required, the name of a model");
        return NULL;
    }
    /* the same names the router accepts in a URL (and never a path or control bytes) */
    if (!mdl_name_valid(name->valuestring)) {
        mdl_reply_error(req, 400, "invalid_argument",
                        "model: 1 to %d characters of [A-Za-z0-9._-], not starting with '.'", MDL_NAME_MAX);
        return NULL;
    }
    slot = mdl_registry_find(srv->registry, name->valuestring);
    if (!slot) {
        mdl_reply_error(req, 404, "model_not_found", "model '%.64s' not found", name->valuestring);
        return NULL;
    }
    req->slot = slot;
    req->model = mdl_registry_acquire(slot, -1);
    if (!req->model) {
        mdl_reply_error(req, 503, "model_not_ready", "model '%s' is not loaded", slot->name);
        return NULL;
    }
    req->version = slot->version;
    const mdl_lm_t *lm = gen_model_lm(req);
    if (lm && !lm->tok) {
        mdl_reply_error(req, 400, "invalid_argument",
                        "model '%s' has no tokenizer; the OpenAI routes need text (use :generate "
                        "with token ids)", slot->name);
        return NULL;
    }
    return lm;
}

/* What both routes do first: the body, its model, the neutral-only fields, and the shared
 * sampling fields over the model's defaults with max_tokens defaulting to default_max.
 * NULL after replying; else the model, with *ret_body (the caller deletes it) and opt. */
static const mdl_lm_t *begin(mdl_server_t *srv, mdl_request_t *req, const char *const *fields,
                             size_t default_max, cJSON **ret_body, gen_options_t *opt)
{
    const mdl_lm_t *lm;

    if (!(*ret_body = gen_parse_body(srv, req)) || !(lm = body_model(srv, req, *ret_body)) ||
        check_neutral(req, *ret_body) < 0)
        return NULL;
    gen_options_defaults(lm, opt);
    opt->params.max_tokens = default_max;
    return gen_options_parse(req, *ret_body, fields, opt) < 0 ? NULL : lm;
}

static const char *const completion_fields[] = {"model", "prompt", "logprobs", "n", "best_of", "echo",
                                                "suffix", "logit_bias", "user", NULL};

void mdl_handle_completions(mdl_server_t *srv, mdl_request_t *req)
{
    cJSON *body = NULL, *prompt;
    gen_options_t opt = {0};
    int32_t *ids = NULL;
    size_t n_ids = 0;
    /* 16: OpenAI's default for completions */
    const mdl_lm_t *lm = begin(srv, req, completion_fields, 16, &body, &opt);

    if (!lm)
        goto out;
    if (gen_logprobs_count(req, cJSON_GetObjectItemCaseSensitive(body, "logprobs"), "logprobs", &opt) < 0)
        goto out;
    prompt = cJSON_GetObjectItemCaseSensitive(body, "prompt");
    if (cJSON_IsArray(prompt) && cJSON_GetArraySize(prompt) == 1 && cJSON_IsString(prompt->child))
        prompt = prompt->child; /* ["text"]: one prompt */
    if (gen_prompt(req, lm, prompt, "prompt", &ids, &n_ids) < 0)
        goto out;
    gen_start(srv, req, &completions_api, lm, ids, n_ids, &opt, "cmpl-");
out:
    gen_options_done(&opt);
    free(ids);
    cJSON_Delete(body);
}

static const char *const chat_fields[] = {"model", "messages", "logprobs", "top_logprobs", "n",
                                          "max_completion_tokens", "user", "logit_bias",
                                          "response_format", NULL};

/* A message's content: a string, or an array of {"type": "text", "text": ...} parts. The
 * parts are joined into *ret (malloc'd). */
static int message_content(mdl_request_t *req, const cJSON *c, size_t i, char **ret)
{
    mdl_buf_t b = {0};
    if (cJSON_IsString(c)) {
        *ret = strdup(c->valuestring);
        return *ret ? 0 : -1;
    }
    if (!cJSON_IsArray(c)) {
        mdl_reply_error(req, 400, "invalid_argument", "messages[%zu].content: must be a string or an array of text parts", i);
        return -1;
    }
    for (const cJSON *p = c->child; p; p = p->next) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(p, "type");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(p, "text");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "text") != 0 || !cJSON_IsString(text)) {
            mdl_buf_done(&b);
            mdl_reply_error(req, 400, "invalid_argument", "messages[%zu].content: only text parts are supported", i);
            return -1;
        }
        mdl_buf_puts(&b, text->valuestring);
    }
    *ret = b.data ? mdl_buf_steal(&b, NULL) : strdup("");
    return *ret ? 0 : -1;
}

/* Renders messages with the model's chat template and encodes the result. */
static int chat_prompt(mdl_request_t *req, const mdl_lm_t *lm, const cJSON *messages, int32_t **ret_ids,
                       size_t *ret_n)
{
    size_t n = (size_t)cJSON_GetArraySize(messages), i = 0;
    mdl_chat_message_t *msgs;
    char **contents;
    mdl_err_t err = {0};
    int rc = -1;

    if (!cJSON_IsArray(messages) || n == 0) {
        mdl_reply_error(req, 400, "invalid_argument", "messages: required, a non-empty array");
        return -1;
    }
    msgs = calloc(n, sizeof *msgs);
    contents = calloc(n, sizeof *contents);
    if (!msgs || !contents) {
        mdl_reply_error(req, 500, "internal", "out of memory");
        goto out;
    }
    for (const cJSON *m = messages->child; m; m = m->next, i++) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsObject(m) || !cJSON_IsString(role)) {
            mdl_reply_error(req, 400, "invalid_argument", "messages[%zu]: needs a role and a content", i);
            goto out;
        }
        if (message_content(req, cJSON_GetObjectItemCaseSensitive(m, "content"), i, &contents[i]) < 0) {
            if (!req->resp)
                mdl_reply_error(req, 500, "internal", "out of memory");
            goto out;
        }
        msgs[i].role = role->valuestring;
        msgs[i].content = contents[i];
    }
    {
        size_t bl = 0, el = 0;
        const long *eos;
        const char *bos = mdl_tokenizer_bos(lm->tok) >= 0 ? mdl_tokenizer_piece(lm->tok, mdl_tokenizer_bos(lm->tok), &bl) : NULL;
        const char *eos_text = mdl_tf_eos(lm->tf, &eos) > 0 ? mdl_tokenizer_piece(lm->tok, (int32_t)eos[0], &el) : NULL;
        char *bos_s = bos ? strndup(bos, bl) : NULL, *eos_s = eos_text ? strndup(eos_text, el) : NULL;
        char *text = mdl_chat_render(lm->chat, msgs, n, bos_s, eos_s, &err);
        free(bos_s);
        free(eos_s);
        if (!text) {
            mdl_reply_error(req, err.code == -ENOMEM ? 500 : 400, "invalid_argument", "%s", err.msg);
            goto out;
        }
        /* Llama-2's template writes BOS itself. */
        rc = gen_encode_prompt(req, lm, text, strlen(text), lm->chat == MDL_CHAT_TEMPLATE_LLAMA2, ret_ids, ret_n);
        free(text);
    }
out:
    for (size_t k = 0; contents && k < n; k++)
        free(contents[k]);
    free(contents);
    free(msgs);
    return rc;
}

void mdl_handle_chat_completions(mdl_server_t *srv, mdl_request_t *req)
{
    cJSON *body = NULL, *v;
    gen_options_t opt = {0};
    int32_t *ids = NULL;
    size_t n_ids = 0;
    /* 0: OpenAI's default, up to the context */
    const mdl_lm_t *lm = begin(srv, req, chat_fields, 0, &body, &opt);

    if (!lm)
        goto out;
    if ((v = cJSON_GetObjectItemCaseSensitive(body, "max_completion_tokens")) && !cJSON_IsNull(v)) {
        if (!cJSON_IsNumber(v) || v->valuedouble != (double)(long)v->valuedouble || v->valuedouble < 1) {
            mdl_reply_error(req, 400, "invalid_argument", "max_completion_tokens: must be a positive integer");
            goto out;
        }
        opt.params.max_tokens = (size_t)v->valuedouble;
        opt.max_tokens_set = true;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(body, "response_format")) && !cJSON_IsNull(v)) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(v, "type");
        if (!cJSON_IsString(t) || strcmp(t->valuestring, "text") != 0) {
            mdl_reply_error(req, 400, "invalid_argument", "response_format: only {\"type\": \"text\"} is supported");
            goto out;
        }
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(body, "logprobs")) && !cJSON_IsNull(v)) {
        if (!cJSON_IsBool(v)) {
            mdl_reply_error(req, 400, "invalid_argument", "logprobs: must be true or false");
            goto out;
        }
        opt.params.logprobs = cJSON_IsTrue(v);
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(body, "top_logprobs")) && !cJSON_IsNull(v)) {
        if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int)v->valuedouble || v->valuedouble < 0 ||
            v->valuedouble > MDL_SAMPLER_MAX_LOGPROBS || !opt.params.logprobs) {
            mdl_reply_error(req, 400, "invalid_argument", "top_logprobs: an integer in [0, %d], with logprobs true",
                            MDL_SAMPLER_MAX_LOGPROBS);
            goto out;
        }
        opt.params.sampling.n_logprobs = (size_t)v->valuedouble;
    }
    /* The template's end-of-turn marker ends the answer: as a token when the tokenizer
     * has it, else as a stop string. */
    {
        const char *end = mdl_chat_stop_text(lm->chat);
        int32_t id = end ? mdl_tokenizer_find(lm->tok, end, strlen(end)) : -1;
        if (id >= 0 && opt.params.n_stop_ids < MDL_GEN_MAX_STOP_IDS)
            opt.params.stop_ids[opt.params.n_stop_ids++] = id;
        else if (end && opt.n_stops < MDL_STOP_MAX && (opt.stops[opt.n_stops] = strdup(end)))
            opt.n_stops++;
    }
    if (chat_prompt(req, lm, cJSON_GetObjectItemCaseSensitive(body, "messages"), &ids, &n_ids) < 0)
        goto out;
    if (n_ids == 0) {
        mdl_reply_error(req, 400, "invalid_argument", "messages: render to no tokens");
        goto out;
    }
    gen_start(srv, req, &chat_api, lm, ids, n_ids, &opt, "chatcmpl-");
out:
    gen_options_done(&opt);
    free(ids);
    cJSON_Delete(body);
}
