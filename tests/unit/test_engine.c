/* The generation engine on the tiny fixtures: greedy continuations equal the references
 * (../shared/fixtures/transformer, made by PyTorch) alone and when several sequences share
 * decode steps; stop ids, max_tokens, cancel, limits; seeded sampling repeats itself. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/file.h"
#include "models/json.h"
#include "models/transformer/engine.h"
#include "check.h"

#define FIX "../shared/fixtures/transformer"

typedef struct ref_case {
    size_t n;
    int32_t ids[64];
    int32_t greedy[20];
} ref_case_t;

static size_t n_cases;
static ref_case_t cases[8];

static int ints(const mdl_json_t *arr, int32_t *out, size_t max)
{
    size_t n = 0;
    if (!arr || arr->type != MDL_JSON_ARRAY || arr->len > max)
        return -1;
    MDL_JSON_FOREACH(v, arr)
        out[n++] = (int32_t)v->u.num;
    return (int)n;
}

static int load_cases(const char *fixture)
{
    char path[256], *text;
    size_t len;
    mdl_err_t err = {0};
    mdl_json_doc_t *doc;

    n_cases = 0;
    snprintf(path, sizeof path, FIX "/%s/reference.json", fixture);
    if (mdl_file_read(path, 64 << 20, &text, &len, NULL, &err) < 0 ||
        mdl_json_parse(text, len, 16, &doc, &err) < 0) {
        fprintf(stderr, "  %s: %s\n", path, err.msg);
        return -1;
    }
    MDL_JSON_FOREACH(c, mdl_json_find(mdl_json_doc_root(doc), "cases")) {
        ref_case_t *rc = &cases[n_cases++];
        rc->n = (size_t)ints(mdl_json_find(c, "ids"), rc->ids, 64);
        ints(mdl_json_find(c, "greedy_continuation"), rc->greedy, 20);
        if (n_cases == 8)
            break;
    }
    mdl_json_doc_free(doc);
    free(text);
    return 0;
}

/* Notifications arrive on the engine thread; the test waits on them here. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static long notified;

static void on_notify(void *user)
{
    (void)user;
    pthread_mutex_lock(&lock);
    notified++;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

/* notify runs under the sequence's lock, so never call the engine holding `lock`. */
static void wait_finished(mdl_gen_seq_t *s, mdl_gen_status_t *st)
{
    for (;;) {
        pthread_mutex_lock(&lock);
        long seen = notified;
        pthread_mutex_unlock(&lock);
        mdl_gen_read(s, 0, NULL, NULL, NULL, 0, st);
        if (st->finish != MDL_GEN_RUNNING)
            break;
        pthread_mutex_lock(&lock);
        while (notified == seen)
            pthread_cond_wait(&cond, &lock);
        pthread_mutex_unlock(&lock);
    }
}

static mdl_gen_params_t greedy_params(size_t max_tokens)
{
    mdl_gen_params_t p;
    memset(&p, 0, sizeof p);
    mdl_sampling_defaults(&p.sampling);
    p.max_tokens = max_tokens;
    p.ignore_eos = true; /* the references never stop at EOS */
    return p;
}

static mdl_tf_model_t *load(const char *fixture)
{
    char path[256];
    mdl_tf_model_t *m = NULL;
    mdl_err_t err = {0};
    snprintf(path, sizeof path, FIX "/%s", fixture);
    if (mdl_tf_load(path, 0, &m, &err) < 0)
        fprintf(stderr, "  %s: %s\n", path, err.msg);
    return m;
}

/* Every case at once, sharing decode steps: each still gets its own reference. */
static void check_greedy_batched(const char *fixture, size_t threads)
{
    mdl_tf_model_t *m = load(fixture);
    mdl_gen_engine_t *e = NULL;
    mdl_gen_seq_t *seqs[8];
    mdl_err_t err = {0};

    CHECK(m != NULL && load_cases(fixture) == 0);
    if (!m)
        return;
    CHECK_EQ_INT(mdl_gen_engine_new(m, threads, 8, &e, &err), 0);
    mdl_gen_params_t p = greedy_params(20);
    for (size_t i = 0; i < n_cases; i++)
        CHECK_EQ_INT(mdl_gen_submit(e, cases[i].ids, cases[i].n, &p, on_notify, NULL, &seqs[i], &err), 0);
    for (size_t i = 0; i < n_cases; i++) {
        mdl_gen_status_t st;
        int32_t ids[20];
        wait_finished(seqs[i], &st);
        CHECK_EQ_INT(st.finish, MDL_GEN_LENGTH);
        CHECK_EQ_INT(mdl_gen_read(seqs[i], 0, ids, NULL, NULL, 20, &st), 20);
        for (int k = 0; k < 20; k++)
            CHECK_EQ_INT(ids[k], cases[i].greedy[k]);
        CHECK(st.t_first_token >= st.t_submit && st.t_end >= st.t_first_token && st.prefill_s > 0);
        mdl_gen_release(seqs[i]);
    }
    CHECK_EQ_INT(mdl_gen_engine_active(e), 0);
    mdl_gen_engine_free(e);
    mdl_tf_free(m);
}

static void test_greedy_llama(void)
{
    check_greedy_batched("tiny_llama", 1);
    check_greedy_batched("tiny_llama", 2);
}

static void test_greedy_gpt2(void)
{
    check_greedy_batched("tiny_gpt2", 2);
}

/* Five 40-token prompts at once: more prompt than one step reads (128 tokens), so some
 * are read in chunks across steps while others already decode; all equal the reference. */
static void test_prompts_split_across_steps(void)
{
    mdl_tf_model_t *m = load("tiny_llama");
    mdl_gen_engine_t *e = NULL;
    mdl_gen_seq_t *seqs[5];
    mdl_err_t err = {0};

    CHECK(m != NULL && load_cases("tiny_llama") == 0);
    if (!m)
        return;
    const ref_case_t *c = &cases[2];
    CHECK_EQ_INT(c->n, 40);
    CHECK_EQ_INT(mdl_gen_engine_new(m, 2, 8, &e, &err), 0);
    mdl_gen_params_t p = greedy_params(20);
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(mdl_gen_submit(e, c->ids, c->n, &p, on_notify, NULL, &seqs[i], &err), 0);
    for (int i = 0; i < 5; i++) {
        mdl_gen_status_t st;
        int32_t ids[20];
        wait_finished(seqs[i], &st);
        CHECK_EQ_INT(mdl_gen_read(seqs[i], 0, ids, NULL, NULL, 20, &st), 20);
        for (int k = 0; k < 20; k++)
            CHECK_EQ_INT(ids[k], c->greedy[k]);
        mdl_gen_release(seqs[i]);
    }
    mdl_gen_engine_free(e);
    mdl_tf_free(m);
}

static void test_stop_id_and_length(void)
{
    mdl_tf_model_t *m = load("tiny_llama");
    mdl_gen_engine_t *e = NULL;
    mdl_gen_seq_t *s;
    mdl_gen_status_t st;
    mdl_err_t err = {0};
    int32_t ids[20];

    CHECK(m != NULL && load_cases("tiny_llama") == 0);
    if (!m)
        return;
    CHECK_EQ_INT(mdl_gen_engine_new(m, 1, 4, &e, &err), 0);
    const ref_case_t *c = &cases[2];
    size_t first = 0; /* first position of the stop id in the greedy continuation */
    while (c->greedy[first] != c->greedy[6])
        first++;
    mdl_gen_params_t p = greedy_params(20);
    p.stop_ids[p.n_stop_ids++] = c->greedy[6];
    CHECK_EQ_INT(mdl_gen_submit(e, c->ids, c->n, &p, on_notify, NULL, &s, &err), 0);
    wait_finished(s, &st);
    CHECK_EQ_INT(st.finish, MDL_GEN_STOP);
    CHECK_EQ_INT(st.stop_token, c->greedy[6]);
    CHECK_EQ_INT(st.n_generated, first); /* the stop token itself is not emitted */
    CHECK_EQ_INT(mdl_gen_read(s, 0, ids, NULL, NULL, 20, &st), first);
    for (size_t k = 0; k < first; k++)
        CHECK_EQ_INT(ids[k], c->greedy[k]);
    mdl_gen_release(s);

    p = greedy_params(5);
    CHECK_EQ_INT(mdl_gen_submit(e, c->ids, c->n, &p, on_notify, NULL, &s, &err), 0);
    wait_finished(s, &st);
    CHECK_EQ_INT(st.finish, MDL_GEN_LENGTH);
    CHECK_EQ_INT(st.n_generated, 5);
    mdl_gen_release(s);
    mdl_gen_engine_free(e);
    mdl_tf_free(m);
}

static void test_limits_and_cancel(void)
{
    mdl_tf_model_t *m = load("tiny_llama");
    mdl_gen_engine_t *e = NULL;
    mdl_gen_seq_t *a, *b, *c;
    mdl_gen_status_t st;
    mdl_err_t err = {0};
    int32_t prompt[3] = {1, 5, 9}, bad[2] = {1, 512};

    CHECK(m != NULL);
    if (!m)
        return;
    CHECK_EQ_INT(mdl_gen_engine_new(m, 1, 2, &e, &err), 0);
    mdl_gen_params_t p = greedy_params(120);
    CHECK_EQ_INT(mdl_gen_submit(e, prompt, 3, &p, on_notify, NULL, &a, &err), 0);
    CHECK_EQ_INT(mdl_gen_submit(e, prompt, 3, &p, on_notify, NULL, &b, &err), 0);
    CHECK_EQ_INT(mdl_gen_submit(e, prompt, 3, &p, on_notify, NULL, &c, &err), -EBUSY);
    CHECK(strstr(err.msg, "2 sequences") != NULL);
    mdl_gen_cancel(a);
    mdl_gen_cancel(b);
    wait_finished(a, &st);
    CHECK_EQ_INT(st.finish, MDL_GEN_CANCELLED);
    CHECK(st.n_generated < 120);
    wait_finished(b, &st);
    CHECK_EQ_INT(st.finish, MDL_GEN_CANCELLED);
    mdl_gen_release(a);
    mdl_gen_release(b);

    p = greedy_params(126); /* 3 + 126 > 128 */
    CHECK_EQ_INT(mdl_gen_submit(e, prompt, 3, &p, on_notify, NULL, &c, &err), -E2BIG);
    CHECK(strstr(err.msg, "context of 128") != NULL);
    p = greedy_params(4);
    CHECK_EQ_INT(mdl_gen_submit(e, bad, 2, &p, on_notify, NULL, &c, &err), -ERANGE);
    CHECK(strstr(err.msg, "prompt[1]") != NULL);
    p.sampling.top_p = 0;
    CHECK_EQ_INT(mdl_gen_submit(e, prompt, 3, &p, on_notify, NULL, &c, &err), -ERANGE);
    CHECK(strstr(err.msg, "top_p") != NULL);
    mdl_gen_engine_free(e);
    mdl_tf_free(m);
}

/* A requester that lets go before the end, and an engine freed with work in flight. */
static void test_release_early_and_free_busy(void)
{
    mdl_tf_model_t *m = load("tiny_gpt2");
    mdl_gen_engine_t *e = NULL;
    mdl_gen_seq_t *a, *b;
    mdl_gen_status_t st;
    mdl_err_t err = {0};
    int32_t prompt[2] = {511, 7};

    CHECK(m != NULL);
    if (!m)
        return;
    CHECK_EQ_INT(mdl_gen_engine_new(m, 2, 4, &e, &err), 0);
    mdl_gen_params_t p = greedy_params(100);
    CHECK_EQ_INT(mdl_gen_submit(e, prompt, 2, &p, on_notify, NULL, &a, &err), 0);
    CHECK_EQ_INT(mdl_gen_submit(e, prompt, 2, &p, on_notify, NULL, &b, &err), 0);
    mdl_gen_cancel(a);
    mdl_gen_release(a);  /* the engine frees it when it lets go */
    mdl_gen_engine_free(e); /* b still running: finished as cancelled, still readable */
    mdl_gen_read(b, 0, NULL, NULL, NULL, 0, &st);
    CHECK(st.finish == MDL_GEN_CANCELLED || st.finish == MDL_GEN_LENGTH);
    mdl_gen_release(b);
    mdl_tf_free(m);
}

static void test_seeded_sampling_repeats(void)
{
    mdl_tf_model_t *m = load("tiny_llama");
    mdl_gen_engine_t *e = NULL;
    mdl_gen_seq_t *s[3];
    mdl_gen_status_t st;
    mdl_err_t err = {0};
    int32_t prompt[4] = {1, 100, 200, 300}, out[3][40];

    CHECK(m != NULL);
    if (!m)
        return;
    CHECK_EQ_INT(mdl_gen_engine_new(m, 2, 4, &e, &err), 0);
    mdl_gen_params_t p = greedy_params(40);
    p.sampling.temperature = 1.0;
    p.sampling.top_k = 50;
    p.sampling.seed = 42;
    for (int i = 0; i < 3; i++) {
        if (i == 2)
            p.sampling.seed = 43;
        CHECK_EQ_INT(mdl_gen_submit(e, prompt, 4, &p, on_notify, NULL, &s[i], &err), 0);
    }
    for (int i = 0; i < 3; i++) {
        wait_finished(s[i], &st);
        CHECK_EQ_INT(mdl_gen_read(s[i], 0, out[i], NULL, NULL, 40, &st), 40);
        mdl_gen_release(s[i]);
    }
    CHECK(memcmp(out[0], out[1], sizeof out[0]) == 0);
    CHECK(memcmp(out[0], out[2], sizeof out[0]) != 0);
    mdl_gen_engine_free(e);
    mdl_tf_free(m);
}

int main(void)
{
    RUN(test_greedy_llama);
    RUN(test_greedy_gpt2);
    RUN(test_prompts_split_across_steps);
    RUN(test_stop_id_and_length);
    RUN(test_limits_and_cancel);
    RUN(test_release_early_and_free_busy);
    RUN(test_seeded_sampling_repeats);
    return check_summary();
}
