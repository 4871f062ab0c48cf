/* Text generation shared by POST :generate (gen_native.c) and the OpenAI-compatible
 * routes (openai.c): reading the sampling fields of a request, submitting it to the
 * model's engine, turning generated ids into text (incremental detokenisation, stop
 * strings), and finishing the HTTP side — one JSON answer, or Server-Sent Events as the
 * tokens come. The three APIs differ only in field names and in how they print, which
 * is what gen_api_t hooks supply.
 *
 * Lifetime of a generation (a gen_job_t): created by the handler; tokens arrive on the
 * loop through a post from the engine thread; it ends when both the engine has finished
 * the sequence and the HTTP side is done (answer sent, stream ended or client gone).
 * Loop thread only, except gen_notify (engine thread). */
#ifndef MDL_GEN_H
#define MDL_GEN_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "handler.h"
#include "models/transformer/kind.h"
#include "models/transformer/stop.h"
#include "server/buf.h"
#include "server/pool.h"

typedef struct gen_job gen_job_t;

/* How one API reads its request and prints its answer. */
typedef struct gen_api {
    const char *name;            /* "generate", "completions", "chat" */
    /* Streaming: the text and ids that arrived since the last chunk (n >= 1, or text
     * only). Writes its SSE event(s) into out. */
    void (*stream_chunk)(gen_job_t *j, mdl_buf_t *out, const char *text, size_t text_len,
                         size_t first, size_t n);
    /* Streaming: the closing event(s) after the last chunk. */
    void (*stream_end)(gen_job_t *j, mdl_buf_t *out);
    /* Not streaming: the whole answer. */
    cJSON *(*answer)(gen_job_t *j);
} gen_api_t;

/* The sampling and stopping fields every API shares, after parsing. */
typedef struct gen_options {
    mdl_gen_params_t params;
    bool max_tokens_set;
    bool seed_set;
    char *stops[MDL_STOP_MAX];   /* owned */
    size_t n_stops;
    bool stream, include_usage;
    char *echo_id;               /* owned: an id the API echoes (V2 "id"), or NULL */
} gen_options_t;

struct gen_job {
    mdl_post_t post;             /* engine -> loop: new tokens or the end */
    gen_job_t *prev, *next;      /* live jobs, for shutdown */
    mdl_server_t *srv;
    const gen_api_t *api;
    mdl_request_t *req;          /* NULL once the HTTP side is done */
    mdl_model_t *model;          /* own reference */
    const mdl_lm_t *lm;
    char model_name[65];
    long version;
    char id[160];                /* "cmpl-<request id>" and the like */
    long long created;           /* unix seconds */
    gen_options_t opt;
    size_t n_prompt;
    mdl_gen_seq_t *seq;

    /* Output so far. */
    int32_t *ids;                /* params.max_tokens slots; [0, n_ids) kept */
    mdl_pick_t *picks;           /* when logprobs */
    double *times;
    size_t n_read, n_ids, ids_sent;
    mdl_buf_t text;              /* released text; [0, text_sent) already streamed */
    size_t text_sent;
    bool has_detok;
    mdl_tok_stream_t detok;
    mdl_stop_t stop;
    bool stopped_by_text;
    bool engine_done, http_done;
    mdl_gen_status_t st;
    const char *finish;          /* "stop", "length", or NULL while running / on error */
};

/* Reads the shared fields of `body` (an object) into opt. `allowed` lists the API's own
 * fields (NULL-terminated); any other field is refused. max_tokens_key names the field
 * for the token budget ("max_tokens"). Returns 0, or -1 after replying 400. */
int gen_options_parse(mdl_request_t *req, const cJSON *body, const char *const *allowed,
                      gen_options_t *opt);
void gen_options_done(gen_options_t *opt);

/* Starts opt from the model's generation_config.json (temperature, top_p, top_k,
 * repetition_penalty, max_new_tokens as the default budget; do_sample false = greedy). */
void gen_options_defaults(const mdl_lm_t *lm, gen_options_t *opt);

/* The model's transformer for a handler, or NULL after replying 400 (tabular model). */
const mdl_lm_t *gen_model_lm(mdl_request_t *req);

/* Submits prompt[0..n) with opt (consumed: the job owns it now, success or not) and
 * starts answering: streams or holds the request. Replies itself on any error. */
void gen_start(mdl_server_t *srv, mdl_request_t *req, const gen_api_t *api, const mdl_lm_t *lm,
               const int32_t *prompt, size_t n_prompt, gen_options_t *opt, const char *id_prefix);

/* The body as a JSON object (depth-checked), or NULL after replying 400. */
cJSON *gen_parse_body(mdl_server_t *srv, mdl_request_t *req);

/* Encodes a text prompt with the model's tokenizer (special tokens matched; BOS as the
 * tokenizer's default unless no_bos). 0, or -1 after replying 400. */
int gen_encode_prompt(mdl_request_t *req, const mdl_lm_t *lm, const char *text, size_t len,
                      bool no_bos, int32_t **ret_ids, size_t *ret_n);

/* A prompt field: a string (encoded as above) or a non-empty array of token ids (used as
 * given; the engine checks them against the vocabulary). `field` names it in errors.
 * 0 with a malloc'd, non-empty *ret_ids, or -1 after replying 400. */
int gen_prompt(mdl_request_t *req, const mdl_lm_t *lm, const cJSON *prompt, const char *field,
               int32_t **ret_ids, size_t *ret_n);

/* A logprobs count field (an integer in [0, MDL_SAMPLER_MAX_LOGPROBS]; null = absent):
 * sets opt to keep log-probabilities with that many alternatives. 0, or -1 after replying. */
int gen_logprobs_count(mdl_request_t *req, const cJSON *v, const char *field, gen_options_t *opt);

/* Helpers for the APIs' printers. */
const char *gen_finish_reason(const gen_job_t *j);     /* "stop", "length" or NULL */
cJSON *gen_usage_json(const gen_job_t *j);               /* prompt/completion/total tokens */
cJSON *gen_timings_json(const gen_job_t *j);             /* prompt_ms, per_token_ms, ... */
void gen_sse_event(mdl_buf_t *out, cJSON *json);         /* "data: <json>\n\n"; frees json */
/* Token text for logprobs: the piece as valid UTF-8 (bad bytes as U+FFFD). */
cJSON *gen_piece_json(const gen_job_t *j, int32_t id);

#endif
