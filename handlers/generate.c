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

void mdl_handle_generate(mdl_server_t *srv, mdl_request_t *req)
{
    const mdl_lm_t *lm = gen_model_lm(req);
    gen_options_t opt = {0};
    cJSON *body = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    double t0 = mdl_now();

    if (!lm || !(body = gen_parse_body(srv, req)))
        return;
    gen_options_defaults(lm, &opt);
    if (gen_options_parse(req, body, native_fields, &opt) < 0 ||
        gen_logprobs_count(req, cJSON_GetObjectItemCaseSensitive(body, "logprobs"), "logprobs", &opt) < 0 ||
        gen_prompt(req, lm, cJSON_GetObjectItemCaseSensitive(body, "prompt"), "prompt", &ids, &n_ids) < 0)
        goto out;
    req->parse_s = mdl_now() - t0;
    gen_start(srv, req, &native_api, lm, ids, n_ids, &opt, "gen-");
out:
    gen_options_done(&opt);
    free(ids);
    cJSON_Delete(body);
}
