/* Decoder-only transformer inference: load weights, keep a KV cache per sequence, run a
 * prompt as one batch (prefill) and advance many sequences by one token in one batched
 * step (decode). No tokenizer and no sampling here: token ids in, float32 logits out.
 *
 * Model formats (a version folder, or one of its files):
 *   - Hugging Face: config.json (LlamaForCausalLM or GPT2LMHeadModel, see config.h),
 *     model.safetensors or model.safetensors.index.json + shards (see safetensors.h), in
 *     F32, F16 or BF16; optional generation_config.json.
 *   - llama2.c legacy model.bin: 7 little-endian int32 (dim, hidden_dim, n_layers, n_heads,
 *     n_kv_heads, vocab_size, seq_len; vocab_size < 0 means an untied classifier follows),
 *     then float32 token_embedding [vocab, dim], rms_att [L, dim], wq [L, dim, dim],
 *     wk [L, kv_dim, dim], wv [L, kv_dim, dim], wo [L, dim, dim], rms_ffn [L, dim],
 *     w1 [L, hidden, dim], w2 [L, dim, hidden], w3 [L, hidden, dim], rms_final [dim],
 *     freq_cis_real and freq_cis_imag [seq_len, head_dim / 2] (unused), classifier
 *     [vocab, dim] if untied. The file size must match the header exactly. RoPE is the
 *     interleaved convention, theta 10000, RMSNorm eps 1e-5 (llama2.c hard-codes both).
 * Every tensor is checked (present, dtype, shape) against the config before use; a bad
 * file is refused with -EBADMSG and a message naming the file and the tensor.
 *
 * Weights stay in the mmapped file in their stored dtype (F16/BF16 are widened inside the
 * matmul); only small vectors (norm gains, biases) are copied to float32, and GPT-2's
 * Conv1D matrices ([in, out]) are transposed once into [out, in] copies in their dtype.
 * All arithmetic accumulates in float32.
 *
 * Threads: a loaded model is immutable and may be shared by any number of threads. A
 * sequence and a runner belong to one thread at a time (the generation thread); the
 * runner's worker team splits each matmul and the attention across its threads. */
#ifndef MDL_TRANSFORMER_H
#define MDL_TRANSFORMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "models/err.h"
#include "config.h"
#include "safetensors.h"

/* Prompt rows processed per weight pass in prefill (longer prompts take several). */
#define MDL_TF_PREFILL_CHUNK 128
/* Most sequences one decode step takes; most tokens one mdl_tf_step takes in all. */
#define MDL_TF_MAX_BATCH 256
#define MDL_TF_MAX_STEP_TOKENS 1024

typedef struct mdl_tf_model mdl_tf_model_t;
typedef struct mdl_tf_seq mdl_tf_seq_t;
typedef struct mdl_tf_runner mdl_tf_runner_t;

/* Loads a model from `path`: a folder (model.safetensors.index.json, else
 * model.safetensors, else model.bin), or one of those files directly. max_file_bytes
 * bounds each weight file (0 = none). Returns 0 and the model in *ret, or -EBADMSG,
 * -ENOENT, -E2BIG, -ENOMEM with reterr naming the file (and tensor). Any thread. */
int mdl_tf_load(const char *path, size_t max_file_bytes, mdl_tf_model_t **ret, mdl_err_t *reterr);

/* How a model holds its matmul weights (q/k/v/o, the feed-forward matrices and the
 * output head): as stored in the file (F32/F16/BF16, read in place), or quantized once at
 * load into heap copies in Q8_0 (int8 blocks of 32 with one binary16 scale each, see
 * q8.h; about 1.06 bytes per weight, so a decode step moves ~3.8x fewer bytes than F32).
 * The token embedding (row lookups), norms, biases and GPT-2's position table stay as
 * stored. Q8_0 logits differ from the stored weights' by the rounding (see README). */
typedef enum mdl_tf_weights {
    MDL_TF_WEIGHTS_STORED = 0,
    MDL_TF_WEIGHTS_Q8_0,
} mdl_tf_weights_t;

/* "stored" or "q8_0" -> *ret; -EINVAL for anything else (NULL included). */
int mdl_tf_weights_parse(const char *name, mdl_tf_weights_t *ret);
const char *mdl_tf_weights_name(mdl_tf_weights_t w);

/* Converts a freshly loaded model's matmul weights to `w` (STORED: nothing to do). Call it
 * before the model is shared: it rewrites the model. The copies belong to the model and
 * are freed with it; mdl_tf_weight_bytes then counts them. Errors: -ERANGE a weight is
 * not finite or beyond binary16 scales (reterr names the tensor), -EINVAL the model is
 * already quantized, -ENOMEM; after an error the model is half converted: free it. */
int mdl_tf_quantize(mdl_tf_model_t *m, mdl_tf_weights_t w, mdl_err_t *reterr);
mdl_tf_weights_t mdl_tf_weights(const mdl_tf_model_t *m);
/* Heap bytes the quantized copies take (0 when the weights are as stored). */
size_t mdl_tf_quantized_bytes(const mdl_tf_model_t *m);

/* Frees the model (unmaps the files). Sequences made from it must be freed first.
 * NULL-safe; returns NULL. */
mdl_tf_model_t *mdl_tf_free(mdl_tf_model_t *m);

const mdl_tf_config_t *mdl_tf_config(const mdl_tf_model_t *m);
/* generation_config.json values ("unset" fields where the folder has no such file). */
const mdl_tf_gen_defaults_t *mdl_tf_gen_defaults(const mdl_tf_model_t *m);
size_t mdl_tf_vocab_size(const mdl_tf_model_t *m);
size_t mdl_tf_context(const mdl_tf_model_t *m);          /* most tokens a sequence holds */
long mdl_tf_bos(const mdl_tf_model_t *m);                /* -1 = none */
size_t mdl_tf_eos(const mdl_tf_model_t *m, const long **ret_ids); /* count; ids in *ret_ids */
const char *mdl_tf_format(const mdl_tf_model_t *m);      /* "safetensors", "llama2.c" */
const char *mdl_tf_arch_name(const mdl_tf_model_t *m);   /* "llama", "gpt2" */
mdl_dtype_t mdl_tf_dtype(const mdl_tf_model_t *m);       /* of the token embedding */
size_t mdl_tf_weight_bytes(const mdl_tf_model_t *m);     /* bytes of weights read per token */
/* Bytes of KV cache one sequence of max_tokens positions needs. */
size_t mdl_tf_seq_bytes(const mdl_tf_model_t *m, size_t max_tokens);

/* A sequence: the KV cache of one stream, for up to max_tokens positions (0 = the model's
 * context; more than the context is -EINVAL). It keeps a pointer to the model, which must
 * outlive it. 0, -EINVAL or -ENOMEM. */
int mdl_tf_seq_new(const mdl_tf_model_t *m, size_t max_tokens, mdl_tf_seq_t **ret,
                   mdl_err_t *reterr);
mdl_tf_seq_t *mdl_tf_seq_free(mdl_tf_seq_t *s);
size_t mdl_tf_seq_len(const mdl_tf_seq_t *s);      /* positions filled */
size_t mdl_tf_seq_capacity(const mdl_tf_seq_t *s); /* max_tokens */
/* Forgets positions n.. (keeps a prefix for reuse); n > len is clamped. */
void mdl_tf_seq_truncate(mdl_tf_seq_t *s, size_t n);

/* A runner: the thread team (n_threads members including the calling thread, 1..64) and
 * scratch buffers, grown on demand; usable with any model. 0, -EINVAL, -ENOMEM. */
int mdl_tf_runner_new(size_t n_threads, mdl_tf_runner_t **ret, mdl_err_t *reterr);
mdl_tf_runner_t *mdl_tf_runner_free(mdl_tf_runner_t *r);
size_t mdl_tf_runner_threads(const mdl_tf_runner_t *r);

/* Appends n >= 1 prompt tokens to s and computes them as a batch (each weight matrix is
 * read once per MDL_TF_PREFILL_CHUNK tokens). logits receives vocab floats for the last
 * token, or n x vocab (row per token) if all_positions; NULL = no logits. Errors, with
 * s unchanged: -ERANGE a token id outside the vocabulary (message gives id and index),
 * -E2BIG the tokens do not fit in the sequence's capacity, -EINVAL n == 0, -ENOMEM. */
int mdl_tf_prefill(mdl_tf_runner_t *r, mdl_tf_seq_t *s, const int32_t *tokens, size_t n,
                   float *logits, bool all_positions, mdl_err_t *reterr);

/* One decode step for n_seqs (1..MDL_TF_MAX_BATCH) distinct sequences of the same model:
 * appends tokens[i] to seqs[i] and writes its next-token logits to logits + i * vocab.
 * Each weight matrix is read once for all of them. Errors (nothing changed): -ERANGE bad
 * token id, -E2BIG a sequence is full (message names its index and the context length),
 * -EINVAL empty batch, a sequence twice or of another model, -ENOMEM. */
int mdl_tf_decode(mdl_tf_runner_t *r, mdl_tf_seq_t *const *seqs, const int32_t *tokens,
                  size_t n_seqs, float *logits, mdl_err_t *reterr);

/* The general step, for continuous batching that admits a new prompt (or a chunk of it)
 * into the same weight pass as the running sequences' next tokens: appends counts[i] >= 1
 * tokens to seqs[i] (tokens holds them concatenated in sequence order; at most
 * MDL_TF_MAX_STEP_TOKENS in all) and writes the logits after the last token of each
 * sequence to logits + i * vocab. mdl_tf_decode is this with every count 1. Errors as for
 * mdl_tf_decode (token indexes count across the concatenation); nothing changes on error. */
int mdl_tf_step(mdl_tf_runner_t *r, mdl_tf_seq_t *const *seqs, const int32_t *tokens,
                const size_t *counts, size_t n_seqs, float *logits, mdl_err_t *reterr);

#endif
