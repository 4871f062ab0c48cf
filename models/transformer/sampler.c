#include "sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct mdl_sampler {
    mdl_sampling_t s;
    size_t n_vocab;
    uint64_t rng[4];     /* xoshiro256** state */
    uint32_t *n_seen;    /* per token: times seen in prompt or output */
    uint32_t *n_output;  /* per token: times generated */
    int32_t *seen;       /* distinct tokens seen, so penalties touch only those */
    size_t n_distinct;
    int32_t *cand;       /* scratch: candidate ids */
    double *prob;        /* scratch: unnormalised probability per token */
};

void mdl_sampling_defaults(mdl_sampling_t *s)
{
    memset(s, 0, sizeof *s);
    s->top_p = 1.0;
    s->repetition_penalty = 1.0;
}

int mdl_sampling_validate(const mdl_sampling_t *s, mdl_err_t *reterr)
{
    /* Written so that NaN fails every test. */
    if (!(s->temperature >= 0.0 && s->temperature <= 100.0))
        return mdl_err_set(reterr, -ERANGE, "temperature must be in [0, 100]");
    if (!(s->top_p > 0.0 && s->top_p <= 1.0))
        return mdl_err_set(reterr, -ERANGE, "top_p must be in (0, 1]");
    if (!(s->min_p >= 0.0 && s->min_p <= 1.0))
        return mdl_err_set(reterr, -ERANGE, "min_p must be in [0, 1]");
    if (!(s->repetition_penalty > 0.0 && s->repetition_penalty <= 100.0))
        return mdl_err_set(reterr, -ERANGE, "repetition_penalty must be in (0, 100]");
    if (!(s->presence_penalty >= -2.0 && s->presence_penalty <= 2.0))
        return mdl_err_set(reterr, -ERANGE, "presence_penalty must be in [-2, 2]");
    if (!(s->frequency_penalty >= -2.0 && s->frequency_penalty <= 2.0))
        return mdl_err_set(reterr, -ERANGE, "frequency_penalty must be in [-2, 2]");
    if (s->n_logprobs > MDL_SAMPLER_MAX_LOGPROBS)
        return mdl_err_set(reterr, -ERANGE, "logprobs must be in [0, %d]", MDL_SAMPLER_MAX_LOGPROBS);
    return 0;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t next_u64(uint64_t st[4])
{
    uint64_t result = rotl(st[1] * 5, 7) * 9, t = st[1] << 17;
    st[2] ^= st[0];
    st[3] ^= st[1];
    st[1] ^= st[2];
    st[0] ^= st[3];
    st[2] ^= t;
    st[3] = rotl(st[3], 45);
    return result;
}

/* Uniform in [0, 1) with 53 random bits. */
static double next_unit(uint64_t st[4])
{
    return (double)(next_u64(st) >> 11) * 0x1.0p-53;
}

mdl_sampler_t *mdl_sampler_new(const mdl_sampling_t *s, size_t n_vocab)
{
    mdl_sampler_t *sp = calloc(1, sizeof *sp);
    if (!sp || n_vocab == 0)
        goto fail;
    sp->s = *s;
    sp->n_vocab = n_vocab;
    uint64_t x = s->seed;
    for (int i = 0; i < 4; i++)
        sp->rng[i] = splitmix64(&x);
    sp->n_seen = calloc(n_vocab, sizeof *sp->n_seen);
    sp->n_output = calloc(n_vocab, sizeof *sp->n_output);
    sp->seen = malloc(n_vocab * sizeof *sp->seen);
    sp->cand = malloc(n_vocab * sizeof *sp->cand);
    sp->prob = malloc(n_vocab * sizeof *sp->prob);
    if (!sp->n_seen || !sp->n_output || !sp->seen || !sp->cand || !sp->prob)
        goto fail;
    return sp;
fail:
    mdl_sampler_free(sp);
    return NULL;
}

void mdl_sampler_free(mdl_sampler_t *sp)
{
    if (!sp)
        return;
    free(sp->n_seen);
    free(sp->n_output);
    free(sp->seen);
    free(sp->cand);
    free(sp->prob);
    free(sp);
}

void mdl_sampler_observe(mdl_sampler_t *sp, int32_t token, bool generated)
{
    if (token < 0 || (size_t)token >= sp->n_vocab)
        return;
    if (sp->n_seen[token]++ == 0)
        sp->seen[sp->n_distinct++] = token;
    if (generated)
        sp->n_output[token]++;
}

void mdl_sampler_apply_penalties(const mdl_sampler_t *sp, float *logits)
{
    const mdl_sampling_t *s = &sp->s;
    for (size_t i = 0; i < sp->n_distinct; i++) {
        int32_t t = sp->seen[i];
        double l = logits[t];
        if (s->repetition_penalty != 1.0)
            l = l > 0 ? l / s->repetition_penalty : l * s->repetition_penalty;
        uint32_t n = sp->n_output[t];
        if (n > 0)
            l -= s->presence_penalty + s->frequency_penalty * n;
        logits[t] = (float)l;
    }
}

/* Higher logit first, then lower id: a total order, so results never depend on the sort. */
static bool ranks_before(const float *logits, int32_t x, int32_t y)
{
    return logits[x] > logits[y] || (logits[x] == logits[y] && x < y);
}

static int by_rank(const void *a, const void *b, void *logits)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return ranks_before(logits, x, y) ? -1 : ranks_before(logits, y, x);
}

/* Puts the k best-ranked of the V tokens in cand[0..k), best first: a min-heap of the k
 * best so far, O(V log k). */
static void select_top_k(const float *logits, size_t V, size_t k, int32_t *cand)
{
    for (size_t i = 0; i < V; i++) {
        int32_t t = (int32_t)i;
        size_t j;
        if (i < k) {
            j = i; /* sift up */
            while (j > 0 && ranks_before(logits, cand[(j - 1) / 2], t)) {
                cand[j] = cand[(j - 1) / 2];
                j = (j - 1) / 2;
            }
            cand[j] = t;
            continue;
        }
        if (!ranks_before(logits, t, cand[0]))
            continue;
        j = 0; /* replace the worst kept and sift down */
        for (;;) {
            size_t c = 2 * j + 1;
            if (c >= k)
                break;
            if (c + 1 < k && ranks_before(logits, cand[c], cand[c + 1]))
                c++;
            if (!ranks_before(logits, t, cand[c]))
                break;
            cand[j] = cand[c];
            j = c;
        }
        cand[j] = t;
    }
    qsort_r(cand, k, sizeof *cand, by_rank, (void *)logits);
}

static void fill_logprobs(const mdl_sampler_t *sp, const float *logits, float max, mdl_pick_t *ret)
{
    double sum = 0;
    for (size_t i = 0; i < sp->n_vocab; i++)
        sum += exp((double)logits[i] - max);
    double lse = max + log(sum);
    ret->logprob = (float)(logits[ret->token] - lse);

    /* The n most likely, by insertion into a short sorted list. */
    size_t n = sp->s.n_logprobs < sp->n_vocab ? sp->s.n_logprobs : sp->n_vocab, have = 0;
    for (size_t i = 0; i < sp->n_vocab && n > 0; i++) {
        float l = logits[i];
        if (have == n && !(l > ret->top[n - 1].logprob))
            continue;
        size_t j = have < n ? have++ : n - 1;
        while (j > 0 && l > ret->top[j - 1].logprob) {
            ret->top[j] = ret->top[j - 1];
            j--;
        }
        ret->top[j].token = (int32_t)i;
        ret->top[j].logprob = l;
    }
    for (size_t j = 0; j < have; j++)
        ret->top[j].logprob = (float)(ret->top[j].logprob - lse);
    ret->n_top = have;
}

void mdl_sampler_pick(mdl_sampler_t *sp, float *logits, mdl_pick_t *ret)
{
    const mdl_sampling_t *s = &sp->s;
    size_t V = sp->n_vocab;

    mdl_sampler_apply_penalties(sp, logits);
    size_t best = 0;
    for (size_t i = 1; i < V; i++)
        if (logits[i] > logits[best])
            best = i;
    float max = logits[best];
    ret->token = (int32_t)best;

    if (s->temperature > 0.0) {
        double inv_t = 1.0 / s->temperature, total = 0;
        for (size_t i = 0; i < V; i++)
            total += sp->prob[i] = exp(((double)logits[i] - max) * inv_t);

        int32_t *cand = sp->cand;
        size_t n = 0;
        double mass = 0;
        if (s->top_k > 0 && s->top_k < V) {
            select_top_k(logits, V, s->top_k, cand);
            n = s->top_k;
            for (size_t i = 0; i < n; i++)
                mass += sp->prob[cand[i]];
        } else {
            /* Below (1 - top_p) / (V - 1) of the mass a token other than the top one is
             * never in the nucleus (all such tokens together weigh less than 1 - top_p), so
             * only the rest needs sorting. */
            double cutoff = s->top_p < 1.0 && V > 1 ? (1.0 - s->top_p) / (double)(V - 1) * total : 0;
            cutoff = cutoff < 1.0 ? cutoff : 1.0; /* the top token (probability 1) always stays */
            for (size_t i = 0; i < V; i++)
                if (sp->prob[i] >= cutoff)
                    cand[n++] = (int32_t)i;
            if (s->top_p < 1.0)
                qsort_r(cand, n, sizeof *cand, by_rank, logits);
            mass = total;
        }
        if (s->top_p < 1.0) {
            double target = s->top_p * mass, acc = 0;
            size_t keep = 0;
            while (keep < n) {
                acc += sp->prob[cand[keep++]];
                if (acc >= target)
                    break;
            }
            n = keep;
        }
        /* min_p is relative to the top token, whose unnormalised probability is 1. */
        size_t kept = 0;
        mass = 0;
        for (size_t i = 0; i < n; i++) {
            if (sp->prob[cand[i]] >= s->min_p) {
                cand[kept++] = cand[i];
                mass += sp->prob[cand[i]];
            }
        }
        n = kept;
        double r = next_unit(sp->rng) * mass, acc = 0;
        ret->token = cand[n - 1]; /* where rounding leaves r beyond the sum */
        for (size_t i = 0; i < n; i++) {
            acc += sp->prob[cand[i]];
            if (r < acc) {
                ret->token = cand[i];
                break;
            }
        }
    }
    fill_logprobs(sp, logits, max, ret);
}
