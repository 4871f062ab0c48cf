/* Picks the next token from a row of logits: penalties, then temperature, top-k, top-p,
 * min-p, then a draw from a seeded generator. One sampler per sequence (it keeps the
 * generator state and the token counts the penalties need); not shared between threads.
 *
 * Order of operations (as llama.cpp and vLLM apply them):
 *   1. repetition_penalty over every token seen (prompt and generated): a positive logit is
 *      divided by it, a negative one multiplied (the CTRL / Hugging Face rule);
 *      presence_penalty and frequency_penalty over generated tokens only (OpenAI's rule:
 *      logit -= presence * [count > 0] + frequency * count);
 *   2. temperature 0 = greedy: the highest logit wins, the lowest id on ties;
 *   3. otherwise softmax(logits / temperature), keep the top_k most likely (0 = all), then
 *      the smallest prefix whose mass reaches top_p (1 = all), then those with probability
 *      >= min_p x the top one (0 = all); renormalise and draw.
 * Log-probabilities reported with a pick are those of the model's distribution after the
 * penalties and before temperature and truncation, so they score the text independently
 * of how it was sampled. */
#ifndef MDL_SAMPLER_H
#define MDL_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "models/err.h"

#define MDL_SAMPLER_MAX_LOGPROBS 20

typedef struct mdl_sampling {
    double temperature;        /* >= 0; 0 = greedy */
    size_t top_k;              /* 0 = off */
    double top_p;              /* (0, 1]; 1 = off */
    double min_p;              /* [0, 1]; 0 = off */
    double repetition_penalty; /* > 0; 1 = off */
    double presence_penalty;   /* [-2, 2]; 0 = off */
    double frequency_penalty;  /* [-2, 2]; 0 = off */
    uint64_t seed;
    size_t n_logprobs;         /* alternatives reported per pick, <= MDL_SAMPLER_MAX_LOGPROBS */
} mdl_sampling_t;

/* The neutral settings: greedy, no penalties, seed 0. */
void mdl_sampling_defaults(mdl_sampling_t *s);

/* Checks ranges; -ERANGE with a message naming the field. */
int mdl_sampling_validate(const mdl_sampling_t *s, mdl_err_t *reterr);

typedef struct mdl_token_logprob {
    int32_t token;
    float logprob;
} mdl_token_logprob_t;

typedef struct mdl_pick {
    int32_t token;
    float logprob;                                        /* of `token` */
    size_t n_top;                                         /* = n_logprobs (or vocab if less) */
    mdl_token_logprob_t top[MDL_SAMPLER_MAX_LOGPROBS];    /* most likely first */
} mdl_pick_t;

typedef struct mdl_sampler mdl_sampler_t;

/* A sampler for a vocabulary of n_vocab tokens; NULL on allocation failure. */
mdl_sampler_t *mdl_sampler_new(const mdl_sampling_t *s, size_t n_vocab);
void mdl_sampler_free(mdl_sampler_t *sp);

/* Records a prompt token (repetition penalty only) or a generated one (all penalties).
 * Ids outside the vocabulary are ignored. */
void mdl_sampler_observe(mdl_sampler_t *sp, int32_t token, bool generated);

/* Applies the penalties to logits in place (exposed for tests). */
void mdl_sampler_apply_penalties(const mdl_sampler_t *sp, float *logits);

/* Chooses the next token from logits[n_vocab] (overwritten as scratch) and fills *ret.
 * Does not observe the token: the caller does, once it keeps it. */
void mdl_sampler_pick(mdl_sampler_t *sp, float *logits, mdl_pick_t *ret);

#endif
