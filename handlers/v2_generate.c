/* Generative models under the Open Inference Protocol, as Triton's text models do it:
 * POST /v2/models/{m}[/versions/{v}]/infer with one BYTES input "text_input" of shape [1]
 * (the prompt) answers one BYTES output "text_output" (the generated text). Sampling fields
 * (max_tokens, temperature, top_p, seed, stop, ...) go in the request's "parameters"; the
 * answer's "parameters" say finish_reason and the token counts. Not streamed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "server/server.h"

static cJSON *tensor(const char *name, long d0)
{
    cJSON *t = cJSON_CreateObject(), *shape = cJSON_CreateArray();
    cJSON_AddStringToObject(t, "name", name);
    cJSON_AddStringToObject(t, "datatype", "BYTES");
    cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)d0));
    cJSON_AddItemToObject(t, "shape", shape);
    return t;
}

void mdl_v2_generate_metadata(mdl_server_t *srv, mdl_request_t *req)
{
    const mdl_slot_t *slot = req->slot;
    cJSON *root = cJSON_CreateObject(), *versions, *inputs, *outputs;
    char num[24];
    (void)srv;

    cJSON_AddStringToObject(root, "name", slot->name);
    versions = cJSON_AddArrayToObject(root, "versions");
    for (size_t i = 0; i < slot->n_versions; i++)
        if (slot->versions[i].model) {
            snprintf(num, sizeof num, "%ld", slot->versions[i].number);
            cJSON_AddItemToArray(versions, cJSON_CreateString(num));
        }
    cJSON_AddStringToObject(root, "platform", "modeld_transformer");
    inputs = cJSON_AddArrayToObject(root, "inputs");
    cJSON_AddItemToArray(inputs, tensor("text_input", 1));
    outputs = cJSON_AddArrayToObject(root, "outputs");
    cJSON_AddItemToArray(outputs, tensor("text_output", 1));
    mdl_reply_json(req, 200, root);
}

static cJSON *answer(gen_job_t *j)
{
    cJSON *a = cJSON_CreateObject(), *outputs, *out, *data, *params;
    char version[24];

    cJSON_AddStringToObject(a, "model_name", j->model_name);
    snprintf(version, sizeof version, "%ld", j->version);
    cJSON_AddStringToObject(a, "model_version", version);
    if (j->opt.echo_id)
        cJSON_AddStringToObject(a, "id", j->opt.echo_id);
    outputs = cJSON_AddArrayToObject(a, "outputs");
    out = tensor("text_output", 1);
    data = cJSON_AddArrayToObject(out, "data");
    cJSON_AddItemToArray(data, cJSON_CreateString(j->text.data ? j->text.data : ""));
    cJSON_AddItemToArray(outputs, out);
    params = cJSON_AddObjectToObject(a, "parameters");
    cJSON_AddStringToObject(params, "finish_reason", gen_finish_reason(j));
    cJSON_AddNumberToObject(params, "prompt_tokens", (double)j->n_prompt);
    cJSON_AddNumberToObject(params, "completion_tokens", (double)j->n_ids);
    return a;
}

static const gen_api_t v2_api = {"v2", NULL, NULL, answer};

static const char *const request_fields[] = {"id", "inputs", "outputs", "parameters", NULL};

/* The prompt from inputs: exactly one, "text_input", BYTES, one element (shape [1] or
 * [1, 1]; data flat or nested). Returns the string node inside body, or NULL after
 * replying. */
static const cJSON *text_input(mdl_request_t *req, const cJSON *inputs)
{
    const cJSON *in, *name, *type, *shape, *data;
    long long elems = 1;

    if (!cJSON_IsArray(inputs) || cJSON_GetArraySize(inputs) != 1) {
        mdl_reply_error(req, 400, "invalid_argument", "inputs: a generative model takes exactly one input, 'text_input'");
        return NULL;
    }
    in = inputs->child;
    name = cJSON_GetObjectItemCaseSensitive(in, "name");
    type = cJSON_GetObjectItemCaseSensitive(in, "datatype");
    shape = cJSON_GetObjectItemCaseSensitive(in, "shape");
    data = cJSON_GetObjectItemCaseSensitive(in, "data");
    if (!cJSON_IsString(name) || strcmp(name->valuestring, "text_input") != 0) {
        mdl_reply_error(req, 400, "invalid_argument", "inputs[0].name: unknown input '%.64s' (the model takes 'text_input')",
                        cJSON_IsString(name) ? name->valuestring : "");
        return NULL;
    }
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "BYTES") != 0) {
        mdl_reply_error(req, 400, "invalid_argument", "inputs[0].datatype: 'text_input' is BYTES");
        return NULL;
    }
    if (!cJSON_IsArray(shape) || !shape->child) {
        mdl_reply_error(req, 400, "invalid_argument", "inputs[0].shape: required, [1]");
        return NULL;
    }
    for (const cJSON *d = shape->child; d; d = d->next)
        elems *= cJSON_IsNumber(d) ? (long long)d->valuedouble : -1;
    while (cJSON_IsArray(data) && cJSON_GetArraySize(data) == 1 && cJSON_IsArray(data->child))
        data = data->child; /* [["text"]] */
    if (elems != 1 || !cJSON_IsArray(data) || cJSON_GetArraySize(data) != 1 || !cJSON_IsString(data->child)) {
        mdl_reply_error(req, 400, "invalid_argument",
                        "inputs[0]: 'text_input' holds one string (shape [1], one prompt per request)");
        return NULL;
    }
    return data->child;
}

void mdl_v2_generate(mdl_server_t *srv, mdl_request_t *req)
{
    const mdl_lm_t *lm = mdl_model_lm(req->model);
    cJSON *body, *v;
    const cJSON *prompt;
    gen_options_t opt = {0};
    int32_t *ids = NULL;
    size_t n_ids = 0;

    if (!(body = gen_parse_body(srv, req)))
        return;
    gen_options_defaults(lm, &opt);
    for (v = body->child; v; v = v->next) {
        bool known = false;
        for (const char *const *f = request_fields; *f; f++)
            known |= strcmp(*f, v->string) == 0;
        if (!known) {
            mdl_reply_error(req, 400, "invalid_argument", "unknown field '%.64s'", v->string);
            goto out;
        }
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(body, "id")) && !cJSON_IsString(v)) {
        mdl_reply_error(req, 400, "invalid_argument", "id: must be a string");
        goto out;
    }
    if (v && !(opt.echo_id = strdup(v->valuestring))) {
        mdl_reply_error(req, 500, "internal", "out of memory");
        goto out;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(body, "outputs")) && !cJSON_IsNull(v)) {
        for (const cJSON *o = cJSON_IsArray(v) ? v->child : NULL; o; o = o->next) {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
            if (!cJSON_IsString(name) || strcmp(name->valuestring, "text_output") != 0) {
                mdl_reply_error(req, 400, "invalid_argument", "outputs: unknown output '%.64s' (the model has 'text_output')",
                                cJSON_IsString(name) ? name->valuestring : "");
                goto out;
            }
        }
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(body, "parameters")) && !cJSON_IsNull(v)) {
        if (!cJSON_IsObject(v)) {
            mdl_reply_error(req, 400, "invalid_argument", "parameters: must be an object");
            goto out;
        }
        if (gen_options_parse(req, v, NULL, &opt) < 0)
            goto out;
        if (opt.stream) {
            mdl_reply_error(req, 400, "invalid_argument", "parameters.stream: inference is not streamed (use :generate)");
            goto out;
        }
    }
    if (!(prompt = text_input(req, cJSON_GetObjectItemCaseSensitive(body, "inputs"))) ||
        gen_prompt(req, lm, prompt, "inputs[0].data[0]", &ids, &n_ids) < 0)
        goto out;
    gen_start(srv, req, &v2_api, lm, ids, n_ids, &opt, "v2-");
out:
    gen_options_done(&opt);
    free(ids);
    cJSON_Delete(body);
}
