#include "engine.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct mdl_gen_seq {
    mdl_gen_engine_t *e;
    mdl_gen_seq_t *next;         /* in the engine's pending or active list */
    int32_t *prompt;
    size_t n_prompt;
    mdl_gen_params_t params;
    mdl_gen_notify_fn *notify;
    void *user;
    atomic_bool cancel;

    /* Engine thread only. */
    mdl_tf_seq_t *kv;
    mdl_sampler_t *sampler;
    int32_t next_token;          /* fed to the next decode step */
    size_t fed;                  /* prompt tokens in the KV cache so far */
    double t_prefill;            /* when the prompt's first chunk ran */
    bool done;                   /* finished; the engine lets go when it unlinks it */

    /* Under lock: what readers see. */
    pthread_mutex_t lock;
    int32_t *ids;
    mdl_pick_t *picks;           /* when params.logprobs */
    double *times;
    mdl_gen_status_t st;
    int holders;                 /* engine + requester */
};

struct mdl_gen_engine {
    const mdl_tf_model_t *m;
    mdl_tf_runner_t *runner;                   /* created with the thread */
    size_t max_active, vocab, n_threads;
    pthread_t thread;
    bool started;                              /* under lock */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    mdl_gen_seq_t *pending_head, *pending_tail; /* under lock */
    size_t n_live;                             /* under lock: submitted, not finished */
    bool stopping;                             /* under lock */
    mdl_gen_seq_t *active;                     /* engine thread only */
    float *logits;                             /* max_active x vocab */
    mdl_tf_seq_t **batch_kv;
    size_t *batch_count;                       /* tokens per sequence in the step */
    int32_t *batch_tok;                        /* MDL_TF_MAX_STEP_TOKENS */
    mdl_gen_seq_t **batch_seq;
};

/* Prompt tokens one step takes, across the sequences still reading their prompt: enough
 * to keep the weight pass busy, few enough that the running sequences' next token is not
 * held up long by someone else's long prompt. */
#define PROMPT_TOKENS_PER_STEP MDL_TF_PREFILL_CHUNK

double mdl_gen_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void seq_free(mdl_gen_seq_t *s)
{
    mdl_tf_seq_free(s->kv);
    mdl_sampler_free(s->sampler);
    pthread_mutex_destroy(&s->lock);
    free(s->prompt);
    free(s->ids);
    free(s->picks);
    free(s->times);
    free(s);
}

/* Drops one holder; the last frees. */
static void seq_let_go(mdl_gen_seq_t *s)
{
    pthread_mutex_lock(&s->lock);
    int left = --s->holders;
    pthread_mutex_unlock(&s->lock);
    if (left == 0)
        seq_free(s);
}

/* Engine thread: ends s and tells the requester. The engine still holds s (the caller
 * lets go once s is off its lists). notify runs under s->lock, here and in seq_step: a
 * requester that sees the final status therefore knows the engine's last notify has
 * returned, and may free what notify touches. */
static void seq_finish(mdl_gen_engine_t *e, mdl_gen_seq_t *s, mdl_gen_finish_t why, const mdl_err_t *err)
{
    s->kv = mdl_tf_seq_free(s->kv);
    mdl_sampler_free(s->sampler);
    s->sampler = NULL;
    s->done = true;
    pthread_mutex_lock(&e->lock);
    e->n_live--;
    pthread_mutex_unlock(&e->lock);
    pthread_mutex_lock(&s->lock);
    s->st.finish = why;
    s->st.t_end = mdl_gen_now();
    if (err)
        snprintf(s->st.error, sizeof s->st.error, "%s", err->msg);
    s->notify(s->user);
    pthread_mutex_unlock(&s->lock);
}

static bool is_stop_token(const mdl_gen_engine_t *e, const mdl_gen_seq_t *s, int32_t tok)
{
    if (!s->params.ignore_eos) {
        const long *eos;
        size_t n = mdl_tf_eos(e->m, &eos);
        for (size_t i = 0; i < n; i++)
            if (eos[i] == tok)
                return true;
    }
    for (size_t i = 0; i < s->params.n_stop_ids; i++)
        if (s->params.stop_ids[i] == tok)
            return true;
    return false;
}

/* Samples the next token of s from logits and publishes it. Returns true while s runs. */
static bool seq_step(mdl_gen_engine_t *e, mdl_gen_seq_t *s, float *logits)
{
    mdl_pick_t pick;
    double now;

    mdl_sampler_pick(s->sampler, logits, &pick);
    now = mdl_gen_now();
    pthread_mutex_lock(&s->lock);
    if (s->st.t_first_token == 0)
        s->st.t_first_token = now;
    if (is_stop_token(e, s, pick.token)) {
        s->st.stop_token = pick.token;
        pthread_mutex_unlock(&s->lock);
        seq_finish(e, s, MDL_GEN_STOP, NULL);
        return false;
    }
    size_t i = s->st.n_generated++;
    s->ids[i] = pick.token;
    s->times[i] = now;
    if (s->picks)
        s->picks[i] = pick;
    if (i + 1 < s->params.max_tokens)
        s->notify(s->user);
    pthread_mutex_unlock(&s->lock);
    mdl_sampler_observe(s->sampler, pick.token, true);
    s->next_token = pick.token;
    if (i + 1 == s->params.max_tokens) {
        seq_finish(e, s, MDL_GEN_LENGTH, NULL);
        return false;
    }
    return true;
}

/* Readies a newly admitted sequence: its sampler and KV cache (the prompt runs in the
 * steps). false if it failed (then finished). */
static bool seq_start(mdl_gen_engine_t *e, mdl_gen_seq_t *s)
{
    mdl_err_t err = {0};

    s->sampler = mdl_sampler_new(&s->params.sampling, e->vocab);
    if (!s->sampler) {
        mdl_err_set(&err, -ENOMEM, "out of memory for the sampler");
        goto fail;
    }
    for (size_t i = 0; i < s->n_prompt; i++)
        mdl_sampler_observe(s->sampler, s->prompt[i], false);
    if (mdl_tf_seq_new(e->m, s->n_prompt + s->params.max_tokens, &s->kv, &err) < 0)
        goto fail;
    return true;
fail:
    seq_finish(e, s, MDL_GEN_ERROR, &err);
    return false;
}

/* One pass over the weights: every running sequence's next token, plus chunks of the
 * prompts still being read (up to PROMPT_TOKENS_PER_STEP), in batches the logits buffer
 * holds. Then each sequence that produced logits at the end of its input samples. */
static void run_step(mdl_gen_engine_t *e)
{
    mdl_gen_seq_t *s = e->active;
    size_t prompt_budget = PROMPT_TOKENS_PER_STEP;

    while (s) {
        size_t n = 0, n_tok = 0, cap = e->max_active < MDL_TF_MAX_BATCH ? e->max_active : MDL_TF_MAX_BATCH;
        for (; s && n < cap; s = s->next) {
            size_t count = 1;
            if (s->fed < s->n_prompt) {
                count = s->n_prompt - s->fed;
                if (count > prompt_budget)
                    count = prompt_budget;
                if (count == 0 || n_tok + count > MDL_TF_MAX_STEP_TOKENS)
                    continue; /* its prompt waits for a later step */
                prompt_budget -= count;
                memcpy(e->batch_tok + n_tok, s->prompt + s->fed, count * sizeof *e->batch_tok);
                if (s->fed == 0)
                    s->t_prefill = mdl_gen_now();
            } else {
                if (n_tok + 1 > MDL_TF_MAX_STEP_TOKENS)
                    break;
                e->batch_tok[n_tok] = s->next_token;
            }
            e->batch_seq[n] = s;
            e->batch_kv[n] = s->kv;
            e->batch_count[n] = count;
            n_tok += count;
            n++;
        }
        if (n == 0)
            break;
        mdl_err_t err = {0};
        if (mdl_tf_step(e->runner, e->batch_kv, e->batch_tok, e->batch_count, n, e->logits, &err) < 0) {
            for (size_t i = 0; i < n; i++)
                seq_finish(e, e->batch_seq[i], MDL_GEN_ERROR, &err);
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            mdl_gen_seq_t *q = e->batch_seq[i];
            if (q->fed < q->n_prompt) {
                q->fed += e->batch_count[i];
                if (q->fed < q->n_prompt)
                    continue; /* mid-prompt: these logits are not needed */
                pthread_mutex_lock(&q->lock);
                q->st.prefill_s = mdl_gen_now() - q->t_prefill;
                pthread_mutex_unlock(&q->lock);
            }
            seq_step(e, q, e->logits + i * e->vocab);
        }
    }
}

/* Unlinks finished and cancelled sequences and lets go of them. */
static void prune_active(mdl_gen_engine_t *e)
{
    mdl_gen_seq_t **link = &e->active;
    while (*link) {
        mdl_gen_seq_t *s = *link;
        if (!s->done && !atomic_load(&s->cancel)) {
            link = &s->next;
            continue;
        }
        *link = s->next;
        if (!s->done)
            seq_finish(e, s, MDL_GEN_CANCELLED, NULL);
        seq_let_go(s);
    }
}

static void *engine_main(void *arg)
{
    mdl_gen_engine_t *e = arg;

    pthread_mutex_lock(&e->lock);
    for (;;) {
        while (!e->stopping && !e->pending_head && !e->active)
            pthread_cond_wait(&e->cond, &e->lock);
        if (e->stopping)
            break;
        mdl_gen_seq_t *fresh = e->pending_head;
        e->pending_head = e->pending_tail = NULL;
        pthread_mutex_unlock(&e->lock);

        /* New sequences join at this step, behind the running ones (their prompts run in
         * arrival order as the prompt budget allows). */
        mdl_gen_seq_t **tail = &e->active;
        while (*tail)
            tail = &(*tail)->next;
        while (fresh) {
            mdl_gen_seq_t *s = fresh;
            fresh = s->next;
            s->next = NULL;
            if (atomic_load(&s->cancel))
                seq_finish(e, s, MDL_GEN_CANCELLED, NULL);
            else
                seq_start(e, s);
            if (s->done) {
                seq_let_go(s);
                continue;
            }
            *tail = s;
            tail = &s->next;
        }
        prune_active(e);
        run_step(e);
        prune_active(e);
        pthread_mutex_lock(&e->lock);
    }
    /* Stopping: nobody will run what is left. */
    mdl_gen_seq_t *left = e->pending_head;
    e->pending_head = e->pending_tail = NULL;
    pthread_mutex_unlock(&e->lock);
    while (left) {
        mdl_gen_seq_t *s = left;
        left = s->next;
        seq_finish(e, s, MDL_GEN_CANCELLED, NULL);
        seq_let_go(s);
    }
    while (e->active) {
        mdl_gen_seq_t *s = e->active;
        e->active = s->next;
        if (!s->done)
            seq_finish(e, s, MDL_GEN_CANCELLED, NULL);
        seq_let_go(s);
    }
    return NULL;
}

int mdl_gen_engine_new(const mdl_tf_model_t *m, size_t n_threads, size_t max_active,
                       mdl_gen_engine_t **ret, mdl_err_t *reterr)
{
    mdl_gen_engine_t *e = calloc(1, sizeof *e);
    int r;

    if (!e)
        return mdl_err_set(reterr, -ENOMEM, "out of memory");
    if (max_active == 0)
        max_active = 1;
    e->m = m;
    e->max_active = max_active;
    e->vocab = mdl_tf_vocab_size(m);
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->cond, NULL);
    size_t batch = max_active < MDL_TF_MAX_BATCH ? max_active : MDL_TF_MAX_BATCH;
    e->logits = malloc(batch * e->vocab * sizeof *e->logits);
    e->batch_kv = malloc(batch * sizeof *e->batch_kv);
    e->batch_count = malloc(batch * sizeof *e->batch_count);
    e->batch_tok = malloc(MDL_TF_MAX_STEP_TOKENS * sizeof *e->batch_tok);
    e->batch_seq = malloc(batch * sizeof *e->batch_seq);
    if (!e->logits || !e->batch_kv || !e->batch_count || !e->batch_tok || !e->batch_seq) {
        r = mdl_err_set(reterr, -ENOMEM, "out of memory for %zu sequences' logits", batch);
        goto fail;
    }
    e->n_threads = n_threads;
    *ret = e;
    return 0;
fail:
    mdl_gen_engine_free(e);
    return r;
}

/* Starts the engine's thread and its matmul team, under e->lock. They start with the first
 * request, on the requester's thread, not at load: loads run on a pool that lowers its own
 * priority (server/registry.c), threads inherit their creator's nice value, and an
 * unprivileged process cannot raise it again, so threads made there would generate at
 * the loader's low priority for the model's whole life. */
static int engine_start(mdl_gen_engine_t *e, mdl_err_t *reterr)
{
    int r = mdl_tf_runner_new(e->n_threads, &e->runner, reterr);

    if (r < 0)
        return r;
    r = -pthread_create(&e->thread, NULL, engine_main, e);
    if (r < 0) {
        e->runner = mdl_tf_runner_free(e->runner);
        return mdl_err_set(reterr, r == -EAGAIN ? -ENOMEM : r, "cannot start the generation thread");
    }
    /* named here, not in the thread: the name shows before the thread first runs */
    pthread_setname_np(e->thread, "modeld-gen");
    e->started = true;
    return 0;
}

mdl_gen_engine_t *mdl_gen_engine_free(mdl_gen_engine_t *e)
{
    if (!e)
        return NULL;
    if (e->started) {
        pthread_mutex_lock(&e->lock);
        e->stopping = true;
        pthread_cond_signal(&e->cond);
        pthread_mutex_unlock(&e->lock);
        pthread_join(e->thread, NULL);
    }
    mdl_tf_runner_free(e->runner);
    pthread_mutex_destroy(&e->lock);
    pthread_cond_destroy(&e->cond);
    free(e->logits);
    free(e->batch_kv);
    free(e->batch_count);
    free(e->batch_tok);
    free(e->batch_seq);
    free(e);
    return NULL;
}

size_t mdl_gen_engine_active(mdl_gen_engine_t *e)
{
    pthread_mutex_lock(&e->lock);
    size_t n = e->n_live;
    pthread_mutex_unlock(&e->lock);
    return n;
}

int mdl_gen_submit(mdl_gen_engine_t *e, const int32_t *prompt, size_t n_prompt,
                   const mdl_gen_params_t *params, mdl_gen_notify_fn *notify, void *user,
                   mdl_gen_seq_t **ret, mdl_err_t *reterr)
{
    size_t context = mdl_tf_context(e->m);
    int r;

    if (n_prompt == 0)
        return mdl_err_set(reterr, -EINVAL, "the prompt is empty");
    if (params->max_tokens == 0)
        return mdl_err_set(reterr, -EINVAL, "max_tokens must be at least 1");
    if (params->n_stop_ids > MDL_GEN_MAX_STOP_IDS)
        return mdl_err_set(reterr, -EINVAL, "at most %d stop token ids", MDL_GEN_MAX_STOP_IDS);
    if (n_prompt > context || params->max_tokens > context - n_prompt)
        return mdl_err_set(reterr, -E2BIG,
                           "the prompt (%zu tokens) and max_tokens (%zu) exceed the model's "
                           "context of %zu tokens",
                           n_prompt, params->max_tokens, context);
    for (size_t i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || (size_t)prompt[i] >= e->vocab)
            return mdl_err_set(reterr, -ERANGE, "prompt[%zu]: token id %ld is outside the vocabulary (0..%zu)",
                               i, (long)prompt[i], e->vocab - 1);
    r = mdl_sampling_validate(&params->sampling, reterr);
    if (r < 0)
        return r;

    mdl_gen_seq_t *s = calloc(1, sizeof *s);
    if (!s)
        return mdl_err_set(reterr, -ENOMEM, "out of memory");
    pthread_mutex_init(&s->lock, NULL);
    s->e = e;
    s->params = *params;
    s->notify = notify;
    s->user = user;
    s->n_prompt = n_prompt;
    s->holders = 2;
    s->st.n_prompt = n_prompt;
    s->st.stop_token = -1;
    s->st.t_submit = mdl_gen_now();
    s->prompt = malloc(n_prompt * sizeof *s->prompt);
    s->ids = malloc(params->max_tokens * sizeof *s->ids);
    s->times = malloc(params->max_tokens * sizeof *s->times);
    if (params->logprobs)
        s->picks = malloc(params->max_tokens * sizeof *s->picks);
    if (!s->prompt || !s->ids || !s->times || (params->logprobs && !s->picks)) {
        seq_free(s);
        return mdl_err_set(reterr, -ENOMEM, "out of memory for %zu tokens", params->max_tokens);
    }
    memcpy(s->prompt, prompt, n_prompt * sizeof *prompt);

    pthread_mutex_lock(&e->lock);
    if (e->n_live >= e->max_active || e->stopping) {
        pthread_mutex_unlock(&e->lock);
        seq_free(s);
        return mdl_err_set(reterr, -EBUSY, "%zu sequences are already generating (the limit)",
                           e->max_active);
    }
    if (!e->started && (r = engine_start(e, reterr)) < 0) {
        pthread_mutex_unlock(&e->lock);
        seq_free(s);
        return r;
    }
    e->n_live++;
    if (e->pending_tail)
        e->pending_tail->next = s;
    else
        e->pending_head = s;
    e->pending_tail = s;
    pthread_cond_signal(&e->cond);
    pthread_mutex_unlock(&e->lock);
    *ret = s;
    return 0;
}

size_t mdl_gen_read(mdl_gen_seq_t *s, size_t from, int32_t *ids, mdl_pick_t *picks,
                    double *times, size_t max, mdl_gen_status_t *ret_status)
{
    size_t n = 0;

    pthread_mutex_lock(&s->lock);
    if (from < s->st.n_generated) {
        n = s->st.n_generated - from;
        n = n < max ? n : max;
        if (ids)
            memcpy(ids, s->ids + from, n * sizeof *ids);
        if (times)
            memcpy(times, s->times + from, n * sizeof *times);
        if (picks) {
            if (s->picks)
                memcpy(picks, s->picks + from, n * sizeof *picks);
            else
                memset(picks, 0, n * sizeof *picks);
        }
    }
    if (ret_status)
        *ret_status = s->st;
    pthread_mutex_unlock(&s->lock);
    return n;
}

void mdl_gen_cancel(mdl_gen_seq_t *s)
{
    atomic_store(&s->cancel, true);
    mdl_gen_engine_t *e = s->e;
    pthread_mutex_lock(&e->lock);
    pthread_cond_signal(&e->cond); /* it may be waiting with nothing else to do */
    pthread_mutex_unlock(&e->lock);
}

void mdl_gen_release(mdl_gen_seq_t *s)
{
    if (s)
        seq_let_go(s);
}
