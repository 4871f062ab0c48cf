/* The sampler: greedy, penalties, truncation filters, seeded draws, log-probabilities.
 * Expected values are worked out by hand from the definitions in sampler.h; the draw
 * frequencies are checked against the exact distribution within 6 standard deviations
 * (fixed seeds, so the runs are repeatable). */
#include <math.h>
#include <stdlib.h>

#include "models/transformer/sampler.h"
#include "check.h"

#define N_DRAWS 20000

static void log_of(const double *p, size_t n, float *logits)
{
    for (size_t i = 0; i < n; i++)
        logits[i] = (float)log(p[i]);
}

/* Draws N_DRAWS tokens over the distribution p[4] and counts them. */
static void draw_counts(const mdl_sampling_t *s, const double *p, size_t *counts)
{
    mdl_sampler_t *sp = mdl_sampler_new(s, 4);
    CHECK(sp != NULL);
    for (size_t i = 0; i < 4; i++)
        counts[i] = 0;
    for (int i = 0; i < N_DRAWS && sp; i++) {
        float logits[4];
        mdl_pick_t pick;
        log_of(p, 4, logits);
        mdl_sampler_pick(sp, logits, &pick);
        CHECK(pick.token >= 0 && pick.token < 4);
        counts[pick.token]++;
    }
    mdl_sampler_free(sp);
}

static void check_freq(size_t count, double expected)
{
    double f = (double)count / N_DRAWS, sd = sqrt(expected * (1 - expected) / N_DRAWS);
    CHECK_NEAR(f, expected, 6 * sd + 1e-12);
}

static const double P4[4] = {0.5, 0.3, 0.15, 0.05};

static void test_greedy_takes_highest_lowest_id_on_ties(void)
{
    mdl_sampling_t s;
    mdl_sampling_defaults(&s);
    mdl_sampler_t *sp = mdl_sampler_new(&s, 5);
    float logits[5] = {1.0f, 3.0f, -2.0f, 3.0f, 0.5f};
    mdl_pick_t pick;
    mdl_sampler_pick(sp, logits, &pick);
    CHECK_EQ_INT(pick.token, 1);
    mdl_sampler_free(sp);
}

static void expect_invalid(const mdl_sampling_t *s, const char *field)
{
    mdl_err_t err = {0};
    CHECK_EQ_INT(mdl_sampling_validate(s, &err), -ERANGE);
    CHECK(strstr(err.msg, field) != NULL);
}

static void test_validate_names_the_field(void)
{
    mdl_sampling_t ok, s;
    mdl_sampling_defaults(&ok);
    mdl_err_t err = {0};
    CHECK_EQ_INT(mdl_sampling_validate(&ok, &err), 0);

    s = ok, s.temperature = -0.1, expect_invalid(&s, "temperature");
    s = ok, s.temperature = NAN, expect_invalid(&s, "temperature");
    s = ok, s.top_p = 0, expect_invalid(&s, "top_p");
    s = ok, s.top_p = 1.01, expect_invalid(&s, "top_p");
    s = ok, s.min_p = -0.5, expect_invalid(&s, "min_p");
    s = ok, s.repetition_penalty = 0, expect_invalid(&s, "repetition_penalty");
    s = ok, s.presence_penalty = 2.5, expect_invalid(&s, "presence_penalty");
    s = ok, s.frequency_penalty = -3, expect_invalid(&s, "frequency_penalty");
    s = ok, s.n_logprobs = MDL_SAMPLER_MAX_LOGPROBS + 1, expect_invalid(&s, "logprobs");
}

static void test_penalties_follow_their_definitions(void)
{
    mdl_sampling_t s;
    mdl_sampling_defaults(&s);
    s.repetition_penalty = 2.0;
    s.presence_penalty = 0.5;
    s.frequency_penalty = 0.25;
    mdl_sampler_t *sp = mdl_sampler_new(&s, 6);
    mdl_sampler_observe(sp, 0, false); /* prompt: repetition penalty only */
    mdl_sampler_observe(sp, 1, false);
    mdl_sampler_observe(sp, 2, true);  /* generated twice */
    mdl_sampler_observe(sp, 2, true);
    mdl_sampler_observe(sp, 3, true);
    mdl_sampler_observe(sp, 99, true); /* outside the vocabulary: ignored */
    float logits[6] = {4.0f, -4.0f, 3.0f, -1.0f, 7.0f, 0.0f};
    mdl_sampler_apply_penalties(sp, logits);
    CHECK_NEAR(logits[0], 2.0, 0);                   /* 4 / 2 */
    CHECK_NEAR(logits[1], -8.0, 0);                  /* -4 * 2 */
    CHECK_NEAR(logits[2], 1.5 - 0.5 - 2 * 0.25, 0);  /* 3 / 2, then presence + 2 x frequency */
    CHECK_NEAR(logits[3], -2.0 - 0.5 - 0.25, 0);     /* -1 * 2, then presence + frequency */
    CHECK_NEAR(logits[4], 7.0, 0);
    CHECK_NEAR(logits[5], 0.0, 0);
    mdl_sampler_free(sp);
}

static void test_same_seed_same_draws(void)
{
    mdl_sampling_t s;
    mdl_sampling_defaults(&s);
    s.temperature = 1.0;
    int32_t first[64];
    int differs = 0;
    for (uint64_t seed = 7; seed <= 8; seed++) {
        for (int run = 0; run < 2; run++) {
            s.seed = seed;
            mdl_sampler_t *sp = mdl_sampler_new(&s, 100);
            for (int i = 0; i < 64; i++) {
                float logits[100] = {0};
                mdl_pick_t pick;
                mdl_sampler_pick(sp, logits, &pick);
                if (seed == 7 && run == 0)
                    first[i] = pick.token;
                else if (seed == 7)
                    CHECK_EQ_INT(pick.token, first[i]);
                else
                    differs += pick.token != first[i];
            }
            mdl_sampler_free(sp);
        }
    }
    CHECK(differs > 32); /* another seed: another sequence (2 x 64 draws, 1/100 match each) */
}

static void test_temperature_one_draws_the_softmax(void)
{
    mdl_sampling_t s;
    mdl_sampling_defaults(&s);
    s.temperature = 1.0;
    size_t c[4];
    draw_counts(&s, P4, c);
    for (int i = 0; i < 4; i++)
        check_freq(c[i], P4[i]);
}

static void test_temperature_two_flattens(void)
{
    mdl_sampling_t s;
    mdl_sampling_defaults(&s);
    s.temperature = 2.0;
    s.seed = 3;
    size_t c[4];
    draw_counts(&s, P4, c);
    double z = 0;
    for (int i = 0; i < 4; i++)
        z += sqrt(P4[i]);
    for (int i = 0; i < 4; i++)
        check_freq(c[i], sqrt(P4[i]) / z);
}

static void test_top_k_one_is_greedy(void)
{
    mdl_sampling_t s;
    mdl_sampling_defaults(&s);
    s.temperature = 5.0;
    s.top_k = 1;
    size_t c[4];
    draw_counts(&s, P4, c);
    CHECK_EQ_INT(c[0], N_DRAWS);
}

static void test_top_p_keeps_smallest_prefix(void)
{
    mdl_sampling_t s;
    mdl_sampling_defaults(&s);
    s.temperature = 1.0;
    s.top_p = 0.8; /* 0.5 + 0.3 reaches it: tokens 0 and 1 */
    size_t c[4];
    draw_counts(&s, P4, c);
    check_freq(c[0], 0.5 / 0.8);
    check_freq(c[1], 0.3 / 0.8);
    CHECK_EQ_INT(c[2] + c[3], 0);
}

static void test_top_p_measured_after_top_k(void)
{
    mdl_sampling_t s;
    mdl_sampling_defaults(&s);
    s.temperature = 1.0;
    s.top_p = 0.6;
    size_t c[4];
    draw_counts(&s, P4, c); /* nucleus of the whole: 0.5 < 0.6, so tokens 0 and 1 */
    CHECK(c[0] > 0 && c[1] > 0);
    CHECK_EQ_INT(c[2] + c[3], 0);
    s.top_k = 2;            /* top-2 mass 0.8, target 0.48: token 0 alone */
    draw_counts(&s, P4, c);
    CHECK_EQ_INT(c[0], N_DRAWS);
}

static void test_min_p_is_relative_to_the_top(void)
{
    mdl_sampling_t s;
    mdl_sampling_defaults(&s);
    s.temperature = 1.0;
    s.min_p = 0.5; /* relative: 1, 0.6, 0.3, 0.1 */
    size_t c[4];
    draw_counts(&s, P4, c);
    check_freq(c[0], 0.5 / 0.8);
    check_freq(c[1], 0.3 / 0.8);
    CHECK_EQ_INT(c[2] + c[3], 0);
}

static void test_tiny_top_p_keeps_the_top_token(void)
{
    mdl_sampling_t s;
    mdl_sampling_defaults(&s);
    s.temperature = 1.0;
    s.top_p = 0.01;
    mdl_sampler_t *sp = mdl_sampler_new(&s, 2);
    for (int i = 0; i < 100; i++) {
        float logits[2] = {0.0f, 0.0f};
        mdl_pick_t pick;
        mdl_sampler_pick(sp, logits, &pick);
        CHECK_EQ_INT(pick.token, 0);
    }
    mdl_sampler_free(sp);
}

/* On a realistic vocabulary every draw lies in the nucleus computed by a full sort. */
static int by_value_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x > y ? -1 : x < y;
}

static void test_nucleus_on_large_vocabulary(void)
{
    enum { V = 32000 };
    static float base[V], logits[V];
    static double sorted[V];
    srand(11);
    double z = 0;
    for (int i = 0; i < V; i++) {
        base[i] = (float)(8.0 * rand() / RAND_MAX);
        z += exp(base[i]);
    }
    for (int i = 0; i < V; i++)
        sorted[i] = exp(base[i]) / z;
    qsort(sorted, V, sizeof *sorted, by_value_desc);
    double acc = 0, smallest = 0;
    for (int i = 0; i < V && acc < 0.9; i++)
        acc += smallest = sorted[i];

    mdl_sampling_t s;
    mdl_sampling_defaults(&s);
    s.temperature = 1.0;
    s.top_p = 0.9;
    mdl_sampler_t *sp = mdl_sampler_new(&s, V);
    for (int i = 0; i < 200; i++) {
        memcpy(logits, base, sizeof logits);
        mdl_pick_t pick;
        mdl_sampler_pick(sp, logits, &pick);
        CHECK(exp(base[pick.token]) / z >= smallest * (1 - 1e-9));
    }
    mdl_sampler_free(sp);
}

static void test_logprobs_of_pick_and_alternatives(void)
{
    mdl_sampling_t s;
    mdl_sampling_defaults(&s);
    s.n_logprobs = 3;
    s.repetition_penalty = 2.0;
    mdl_sampler_t *sp = mdl_sampler_new(&s, 4);
    mdl_sampler_observe(sp, 0, true);
    float logits[4];
    log_of(P4, 4, logits); /* log 0.5 < 0 so the penalty doubles it: p0 becomes 0.25 / z */
    mdl_pick_t pick;
    mdl_sampler_pick(sp, logits, &pick);
    double z = 0.25 + 0.3 + 0.15 + 0.05;
    CHECK_EQ_INT(pick.token, 1);
    CHECK_NEAR(pick.logprob, log(0.3 / z), 1e-6);
    CHECK_EQ_INT(pick.n_top, 3);
    CHECK_EQ_INT(pick.top[0].token, 1);
    CHECK_EQ_INT(pick.top[1].token, 0);
    CHECK_EQ_INT(pick.top[2].token, 2);
    CHECK_NEAR(pick.top[1].logprob, log(0.25 / z), 1e-6);
    CHECK_NEAR(pick.top[2].logprob, log(0.15 / z), 1e-6);
    mdl_sampler_free(sp);
}

int main(void)
{
    RUN(test_greedy_takes_highest_lowest_id_on_ties);
    RUN(test_validate_names_the_field);
    RUN(test_penalties_follow_their_definitions);
    RUN(test_same_seed_same_draws);
    RUN(test_temperature_one_draws_the_softmax);
    RUN(test_temperature_two_flattens);
    RUN(test_top_k_one_is_greedy);
    RUN(test_top_p_keeps_smallest_prefix);
    RUN(test_top_p_measured_after_top_k);
    RUN(test_min_p_is_relative_to_the_top);
    RUN(test_tiny_top_p_keeps_the_top_token);
    RUN(test_nucleus_on_large_vocabulary);
    RUN(test_logprobs_of_pick_and_alternatives);
    return check_summary();
}
