/* The generation engine of one loaded transformer: a thread that runs every active
 * sequence of that model by continuous batching. Each step is one pass over the weights
 * (mdl_tf_step) that advances every running sequence by one token and reads the next
 * chunk of the prompts that arrived (a bounded number of prompt tokens per step, so a
 * long prompt does not stall the others); each sequence whose input is all in samples its
 * next token and publishes it.
 *
 * A request submits a prompt and gets an mdl_gen_seq_t. The engine appends generated
 * tokens to it and calls notify(user) on the engine thread after each step that added
 * something (the server turns that into a loop wake-up); the request reads what is new
 * with mdl_gen_read from any thread. mdl_gen_cancel asks the engine to drop a sequence at
 * its next step (a client went away); its KV cache is freed there.
 *
 * Ownership: a sequence has two holders, the engine and the requester. The engine lets
 * go after its final notify (finished, cancelled or failed); the requester with
 * mdl_gen_release, at most once, once it no longer reads. The last one frees it.
 *
 * Threads: engine_new/free from one controlling thread; submit/read/cancel/release from
 * any thread. Idle engines sleep on a condition variable (no CPU). */
#ifndef MDL_ENGINE_H
#define MDL_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "models/err.h"
#include "models/transformer/sampler.h"
#include "models/transformer/transformer.h"

#define MDL_GEN_MAX_STOP_IDS 16

typedef struct mdl_gen_engine mdl_gen_engine_t;
typedef struct mdl_gen_seq mdl_gen_seq_t;

typedef enum mdl_gen_finish {
    MDL_GEN_RUNNING = 0,
    MDL_GEN_STOP,      /* an end-of-sequence or stop token was generated (not emitted) */
    MDL_GEN_LENGTH,    /* max_tokens reached */
    MDL_GEN_CANCELLED, /* mdl_gen_cancel */
    MDL_GEN_ERROR,     /* see status.error */
} mdl_gen_finish_t;

typedef struct mdl_gen_params {
    mdl_sampling_t sampling;
    size_t max_tokens;                     /* >= 1 */
    bool logprobs;                         /* keep each pick's log-probabilities (and
                                              sampling.n_logprobs alternatives) */
    bool ignore_eos;                       /* keep going past the model's EOS ids */
    int32_t stop_ids[MDL_GEN_MAX_STOP_IDS]; /* more ids that end generation */
    size_t n_stop_ids;
} mdl_gen_params_t;

/* A snapshot of a sequence's progress. Times are monotonic seconds (mdl_gen_now). */
typedef struct mdl_gen_status {
    mdl_gen_finish_t finish;
    size_t n_generated;     /* tokens emitted so far */
    size_t n_prompt;
    double t_submit, t_first_token, t_end; /* 0 = not yet */
    double prefill_s;       /* time in the prompt's forward pass */
    int32_t stop_token;     /* the token that ended it (MDL_GEN_STOP), else -1 */
    char error[256];        /* MDL_GEN_ERROR */
} mdl_gen_status_t;

/* Runs on the engine thread with the sequence's lock held (so a reader that sees the final
 * status knows the last notify has returned): it must be quick, must not call back into
 * the engine, and must not take a lock that is held around mdl_gen_* calls. */
typedef void mdl_gen_notify_fn(void *user);

double mdl_gen_now(void);

/* An engine for model m (which must outlive it) with a runner of n_threads and at most
 * max_active sequences at once; its threads start with the first submit, on the
 * submitter's thread (so they take its scheduling priority). 0 or -errno with reterr. */
int mdl_gen_engine_new(const mdl_tf_model_t *m, size_t n_threads, size_t max_active,
                       mdl_gen_engine_t **ret, mdl_err_t *reterr);

/* Stops the thread and frees the engine. Sequences still held by requesters are finished
 * as cancelled first (they stay readable until released). NULL-safe; returns NULL. */
mdl_gen_engine_t *mdl_gen_engine_free(mdl_gen_engine_t *e);

/* Sequences submitted and not yet finished. */
size_t mdl_gen_engine_active(mdl_gen_engine_t *e);

/* Queues a generation of params->max_tokens tokens after prompt[0..n_prompt) (copied).
 * Errors: -EBUSY max_active sequences already (the caller answers 429), -E2BIG the prompt
 * and max_tokens do not fit in the context, -ERANGE a prompt id outside the vocabulary,
 * -EINVAL an empty prompt or bad parameters, -ENOMEM. */
int mdl_gen_submit(mdl_gen_engine_t *e, const int32_t *prompt, size_t n_prompt,
                   const mdl_gen_params_t *params, mdl_gen_notify_fn *notify, void *user,
                   mdl_gen_seq_t **ret, mdl_err_t *reterr);

/* Copies up to max generated tokens starting at index `from` into ids (and their picks
 * into picks, when not NULL and logprobs were asked for; else zeroed), and the status.
 * Returns how many were copied. */
size_t mdl_gen_read(mdl_gen_seq_t *s, size_t from, int32_t *ids, mdl_pick_t *picks,
                    double *times, size_t max, mdl_gen_status_t *ret_status);

void mdl_gen_cancel(mdl_gen_seq_t *s);
void mdl_gen_release(mdl_gen_seq_t *s);

#endif
