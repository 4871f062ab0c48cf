/* Speed of the transformer core (no HTTP): single-stream greedy decode, prompt prefill and
 * batched decode, on any model modeld loads (bench/generate/make_model.py makes random ones).
 *
 *   tf_bench MODEL [--threads 2] [--tokens 256] [--prompt 128] [--batch 8] [--reps 3]
 *            [--weights stored|q8_0]
 *
 * --weights q8_0 quantizes the matmul weights at load as the model setting "weights" does
 * (the load time is printed) and also reports how far its logits are from the stored
 * weights' over the decode run (max |difference|, greedy picks that agree).
 * decode:  BOS, then greedy steps until `tokens` positions are filled; tokens/s counts the
 *          steps after the first (as llama2.c's run.c reports "achieved tok/s").
 * prefill: a `prompt`-token prompt in one mdl_tf_prefill call; prompt tokens/s.
 * batch:   `batch` sequences (different first tokens) decoded together for `tokens`
 *          positions; aggregate tokens/s over all sequences.
 * Prints the best of `reps` runs of each, one "key value" per line, with tokens per
 * process CPU-second alongside (on a shared machine that moves less with other load than
 * the wall-clock rate; with several threads it includes their spinning). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "models/transformer/kernels.h"
#include "models/transformer/transformer.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int32_t argmax(const float *v, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return (int32_t)best;
}

static void die(const char *what, const mdl_err_t *err)
{
    fprintf(stderr, "tf_bench: %s: %s\n", what, err->msg);
    exit(1);
}

/* Greedy decode of `tokens` positions on the stored weights, fed to the quantized model
 * too (so both see the same tokens): max |logit difference| and how many picks agree. */
static void compare_stored(const char *path, const mdl_tf_model_t *q, mdl_tf_runner_t *run,
                           size_t tokens)
{
    mdl_tf_model_t *f;
    mdl_tf_seq_t *sf, *sq;
    mdl_err_t err = {0};
    size_t V = mdl_tf_vocab_size(q), agree = 0;
    float *lf = malloc(V * sizeof *lf), *lq = malloc(V * sizeof *lq);
    int32_t tok = (int32_t)(mdl_tf_bos(q) >= 0 ? mdl_tf_bos(q) : 0);
    double worst = 0, top = 0;

    if (mdl_tf_load(path, 0, &f, &err) < 0)
        die(path, &err);
    if (mdl_tf_seq_new(f, tokens, &sf, &err) < 0 || mdl_tf_seq_new(q, tokens, &sq, &err) < 0)
        die("seq", &err);
    for (size_t pos = 0; pos < tokens; pos++) {
        if (mdl_tf_decode(run, &sf, &tok, 1, lf, &err) < 0 || mdl_tf_decode(run, &sq, &tok, 1, lq, &err) < 0)
            die("decode", &err);
        for (size_t i = 0; i < V; i++) {
            double d = fabs((double)lf[i] - lq[i]);
            worst = d > worst ? d : worst;
            top = fabs(lf[i]) > top ? fabs(lf[i]) : top;
        }
        tok = argmax(lf, V);
        agree += argmax(lq, V) == tok;
    }
    printf("vs_stored max |logit difference| %.3g (logits up to %.3g), greedy picks agree %zu/%zu\n",
           worst, top, agree, tokens);
    mdl_tf_seq_free(sf);
    mdl_tf_seq_free(sq);
    mdl_tf_free(f);
    free(lf);
    free(lq);
}

int main(int argc, char **argv)
{
    size_t threads = 2, tokens = 256, prompt = 128, batch = 8, reps = 3;
    mdl_tf_model_t *m;
    mdl_tf_runner_t *run;
    mdl_err_t err = {0};
    double best_dec = 0, best_pre = 0, best_batch = 0, cpu_dec = 0, cpu_pre = 0, cpu_batch = 0;
    size_t V;
    float *logits;
    int32_t *ids;
    mdl_tf_weights_t weights = MDL_TF_WEIGHTS_STORED;
    double load_s = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: tf_bench MODEL [--threads N] [--tokens N] [--prompt N] [--batch N] [--reps N] "
                        "[--weights stored|q8_0]\n");
        return 2;
    }
    for (int i = 2; i + 1 < argc; i += 2) {
        size_t v = strtoul(argv[i + 1], NULL, 10);
        if (!strcmp(argv[i], "--weights")) {
            if (mdl_tf_weights_parse(argv[i + 1], &weights) < 0) {
                fprintf(stderr, "tf_bench: --weights: expected stored or q8_0\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--threads")) threads = v;
        else if (!strcmp(argv[i], "--tokens")) tokens = v;
        else if (!strcmp(argv[i], "--prompt")) prompt = v;
        else if (!strcmp(argv[i], "--batch")) batch = v;
        else if (!strcmp(argv[i], "--reps")) reps = v;
        else { fprintf(stderr, "tf_bench: unknown option %s\n", argv[i]); return 2; }
    }
    double t_load = now();
    if (mdl_tf_load(argv[1], 0, &m, &err) < 0)
        die(argv[1], &err);
    if (mdl_tf_quantize(m, weights, &err) < 0)
        die("quantize", &err);
    load_s = now() - t_load;
    if (mdl_tf_runner_new(threads, &run, &err) < 0)
        die("runner", &err);
    if (tokens > mdl_tf_context(m))
        tokens = mdl_tf_context(m);
    if (prompt > mdl_tf_context(m))
        prompt = mdl_tf_context(m);
    V = mdl_tf_vocab_size(m);
    logits = malloc((batch ? batch : 1) * V * sizeof *logits);
    ids = malloc((prompt > batch ? prompt : batch) * sizeof *ids);
    printf("model %s (%s, %s, %s, weights %s), %zu threads, simd %s, %.1f MB of weights per token, "
           "loaded in %.2f s\n", argv[1], mdl_tf_arch_name(m), mdl_tf_format(m),
           mdl_dtype_name(mdl_tf_dtype(m)), mdl_tf_weights_name(mdl_tf_weights(m)), threads,
           mdl__tf_simd() ? "avx2" : "off", (double)mdl_tf_weight_bytes(m) / 1e6, load_s);

    for (size_t rep = 0; rep < reps; rep++) {
        mdl_tf_seq_t *s;
        int32_t tok = (int32_t)(mdl_tf_bos(m) >= 0 ? mdl_tf_bos(m) : 0);
        double t0 = 0, c0 = 0;
        if (mdl_tf_seq_new(m, tokens, &s, &err) < 0)
            die("seq", &err);
        for (size_t pos = 0; pos < tokens; pos++) {
            if (mdl_tf_decode(run, &s, &tok, 1, logits, &err) < 0)
                die("decode", &err);
            if (pos == 0)
                t0 = now(), c0 = cpu_now();
            tok = argmax(logits, V);
        }
        double tps = (double)(tokens - 1) / (now() - t0);
        if (tps > best_dec)
            best_dec = tps, cpu_dec = (double)(tokens - 1) / (cpu_now() - c0);
        mdl_tf_seq_free(s);
    }
    printf("decode_tokens_per_s %.1f (%.1f per CPU-second)\n", best_dec, cpu_dec);

    for (size_t i = 0; i < prompt; i++)
        ids[i] = (int32_t)((i * 7919 + 13) % V);
    for (size_t rep = 0; rep < reps && prompt; rep++) {
        mdl_tf_seq_t *s;
        if (mdl_tf_seq_new(m, prompt, &s, &err) < 0)
            die("seq", &err);
        double t0 = now(), c0 = cpu_now();
        if (mdl_tf_prefill(run, s, ids, prompt, logits, false, &err) < 0)
            die("prefill", &err);
        double tps = (double)prompt / (now() - t0);
        if (tps > best_pre)
            best_pre = tps, cpu_pre = (double)prompt / (cpu_now() - c0);
        mdl_tf_seq_free(s);
    }
    printf("prefill_tokens_per_s %.1f (prompt of %zu; %.1f per CPU-second)\n", best_pre, prompt,
           cpu_pre);

    for (size_t rep = 0; rep < reps && batch; rep++) {
        mdl_tf_seq_t **seqs = calloc(batch, sizeof *seqs);
        double t0 = 0, c0 = 0;
        for (size_t b = 0; b < batch; b++) {
            if (mdl_tf_seq_new(m, tokens, &seqs[b], &err) < 0)
                die("seq", &err);
            ids[b] = (int32_t)((b * 7919 + 1) % V);
        }
        for (size_t pos = 0; pos < tokens; pos++) {
            if (mdl_tf_decode(run, seqs, ids, batch, logits, &err) < 0)
                die("decode", &err);
            if (pos == 0)
                t0 = now(), c0 = cpu_now();
            for (size_t b = 0; b < batch; b++)
                ids[b] = argmax(logits + b * V, V);
        }
        double tps = (double)(tokens - 1) * (double)batch / (now() - t0);
        if (tps > best_batch)
            best_batch = tps, cpu_batch = (double)(tokens - 1) * (double)batch / (cpu_now() - c0);
        for (size_t b = 0; b < batch; b++)
            mdl_tf_seq_free(seqs[b]);
        free(seqs);
    }
    printf("batch%zu_tokens_per_s %.1f (aggregate; %.1f per CPU-second)\n", batch, best_batch, cpu_batch);
    if (weights != MDL_TF_WEIGHTS_STORED)
        compare_stored(argv[1], m, run, tokens);
    free(ids);
    free(logits);
    mdl_tf_runner_free(run);
    mdl_tf_free(m);
    return 0;
}
