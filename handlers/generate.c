/* POST /v1/models/{m}[/versions/{v}]:generate — modeld's own generation API: the prompt as
 * text or token ids, every sampling field, token ids and log-probabilities in the answer,
 * and Server-Sent Events with "stream": true. See docs/api.md. */
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "server/server.h"

static cJSON *logprobs_json(const gen_job_t *j, size_t first, size_t n)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = first; i < first + n; i++) {
        const mdl_pick_t *p = &j->picks[i];
        cJSON *e = cJSON_CreateObject(), *top = cJSON_CreateArray();
        cJSON_AddNumberToObject(e, "token_id", p->token);
        cJSON_AddNumberToObject(e, "logprob", p->logprob);
        for (size_t k = 0; k < p->n_top; k++) {
            cJSON *t = cJSON_CreateObject();
            cJSON_AddNumberToObject(t, "token_id", p->top[k].token);
            cJSON_AddNumberToObject(t, "logprob", p->top[k].logprob);
            cJSON_AddItemToArray(top, t);
        }
        cJSON_AddItemToObject(e, "top", top);
        cJSON_AddItemToArray(arr, e);
    }
    return arr;
}

static cJSON *ids_json(const gen_job_t *j, size_t first, size_t n)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = first; i < first + n; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateNumber(j->ids[i]));
    return arr;
}

static cJSON *model_json(const gen_job_t *j)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "name", j->model_name);
    cJSON_AddNumberToObject(m, "version", (double)j->version);
    return m;
}

static cJSON *usage_json(const gen_job_t *j)
{
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)j->n_prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", (double)j->n_ids);
    return u;
}

static void chunk(gen_job_t *j, mdl_buf_t *out, const char *text, size_t text_len, size_t first, size_t n)
{
    cJSON *e = cJSON_CreateObject();
    if (j->lm->tok) {
        char *t = strndup(text, text_len);
        cJSON_AddStringToObject(e, "text", t ? t : "");
        free(t);
    }
    cJSON_AddItemToObject(e, "token_ids", ids_json(j, first, n));
    if (j->picks)
        cJSON_AddItemToObject(e, "logprobs", logprobs_json(j, first, n));
    gen_sse_event(out, e);
}

static void stream_end(gen_job_t *j, mdl_buf_t *out)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "finish_reason", gen_finish_reason(j));
    cJSON_AddItemToObject(e, "usage", usage_json(j));
    cJSON_AddItemToObject(e, "timings", gen_timings_json(j));
    cJSON_AddItemToObject(e, "model", model_json(j));
    gen_sse_event(out, e);
}

static cJSON *answer(gen_job_t *j)
{
    cJSON *a = cJSON_CreateObject();
    if (j->lm->tok)
        cJSON_AddStringToObject(a, "text", j->text.data ? j->text.data : "");
    cJSON_AddItemToObject(a, "token_ids", ids_json(j, 0, j->n_ids));
    cJSON_AddStringToObject(a, "finish_reason", gen_finish_reason(j));
    if (j->picks)
        cJSON_AddItemToObject(a, "logprobs", logprobs_json(j, 0, j->n_ids));
    cJSON_AddItemToObject(a, "usage", usage_json(j));
    cJSON_AddItemToObject(a, "timings", gen_timings_json(j));
    cJSON_AddItemToObject(a, "model", model_json(j));
    return a;
}

static const gen_api_t native_api = {"generate", chunk, stream_end, answer};

static const char *const native_fields[] = {"prompt", "logprobs", NULL};

/* The prompt as token ids: a non-empty array of integers (checked against the vocabulary
 * by the engine). */
static int prompt_ids(mdl_request_t *req, const cJSON *p, int32_t **ret, size_t *ret_n)
{
    size_t n = (size_t)cJSON_GetArraySize(p), i = 0;
    int32_t *ids = n ? malloc(n * sizeof *ids) : NULL;

    if (n == 0) {
        mdl_reply_error(req, 400, "invalid_argument", "prompt: must not be empty");
        return -1;
    }
    if (!ids) {
        mdl_reply_error(req, 500, "internal", "out of memory");
        return -1;
    }
    for (const cJSON *e = p->child; e; e = e->next, i++) {
        if (!cJSON_IsNumber(e) || e->valuedouble != (double)(int32_t)e->valuedouble) {
            free(ids);
            mdl_reply_error(req, 400, "invalid_argument", "prompt[%zu]: must be a token id (an integer)", i);
            return -1;
        }
        ids[i] = (int32_t)e->valuedouble;
    }
    *ret = ids;
    *ret_n = n;
    return 0;
}

void mdl_handle_generate(mdl_server_t *srv, mdl_request_t *req)
{
    const mdl_lm_t *lm = gen_model_lm(req);
    gen_options_t opt;
    cJSON *body, *prompt, *lp;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    double t0 = mdl_now();

    if (!lm || mdl_request_check_depth(srv, req) < 0)
        return;
    body = cJSON_ParseWithLength(req->body, req->body_len);
    if (!cJSON_IsObject(body)) {
        cJSON_Delete(body);
        mdl_reply_error(req, 400, "invalid_json", "the body must be a JSON object");
        return;
    }
    gen_options_defaults(lm, &opt);
    if (gen_options_parse(req, body, native_fields, &opt) < 0)
        goto out;
    lp = cJSON_GetObjectItemCaseSensitive(body, "logprobs");
    if (lp && !cJSON_IsNull(lp)) {
        long long n = -1;
        if (!cJSON_IsNumber(lp) || lp->valuedouble != (double)(long long)lp->valuedouble ||
            lp->valuedouble < 0 || lp->valuedouble > MDL_SAMPLER_MAX_LOGPROBS) {
            mdl_reply_error(req, 400, "invalid_argument", "logprobs: must be an integer in [0, %d]",
                            MDL_SAMPLER_MAX_LOGPROBS);
            goto out;
        }
        n = (long long)lp->valuedouble;
        opt.params.logprobs = true;
        opt.params.sampling.n_logprobs = (size_t)n;
    }
    prompt = cJSON_GetObjectItemCaseSensitive(body, "prompt");
    if (cJSON_IsString(prompt)) {
        if (gen_encode_prompt(req, lm, prompt->valuestring, strlen(prompt->valuestring), false, &ids, &n_ids) < 0)
            goto out;
        if (n_ids == 0) {
            mdl_reply_error(req, 400, "invalid_argument", "prompt: encodes to no tokens");
            goto out;
        }
    } else if (cJSON_IsArray(prompt)) {
        if (prompt_ids(req, prompt, &ids, &n_ids) < 0)
            goto out;
    } else {
        mdl_reply_error(req, 400, "invalid_argument", "prompt: required, a string or an array of token ids");
        goto out;
    }
    req->parse_s = mdl_now() - t0;
    gen_start(srv, req, &native_api, lm, ids, n_ids, &opt, "gen-");
out:
    gen_options_done(&opt);
    free(ids);
    cJSON_Delete(body);
}
