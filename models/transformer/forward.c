/* The forward pass over a batch of rows. A row is one token of one sequence at one
 * position: prefill passes the prompt's tokens of one sequence, decode one token of each of
 * B sequences, a step any mix of the two. Every matmul multiplies each weight matrix by all
 * rows at once, so the weights (the memory traffic that bounds speed) are read once per
 * pass; attention then runs per (row, head) against that row's own sequence cache. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "q8.h"
#include "team.h"

/* Output rows per work item of a matmul: at least MM_CHUNK, and about 1/8 of a thread's
 * share, so each thread streams long contiguous runs of weights (what the prefetchers like)
 * while a thread that gets descheduled still leaves most of the work to the others. */
#define MM_CHUNK 16

struct mdl_tf_runner {
    mdl_tf_team_t *team;
    float *buf;              /* scratch, see layout() */
    size_t buf_floats;
    mdl_tf_seq_t **row_seq;  /* per row */
    size_t *row_pos;
    size_t *out_rows;        /* rows whose logits a step returns */
    size_t rows_cap;
    int8_t *xq;              /* Q8_0 models: a matmul's inputs quantized, rows x blocks x 32 */
    float *xd;               /* their scales, rows x blocks */
    size_t xq_blocks;        /* blocks allocated in xd */
    float *q8_rows;          /* Q8_0 models: per thread, MDL_Q8_FLOAT_ROWS widened rows */
    float *xf;               /* Q8_0 models: quantized inputs widened back, xq_blocks x 32 */
    size_t q8_rows_floats;   /* allocated in q8_rows, all threads */
};

/* Scratch for R rows of model m. */
typedef struct pass {
    const mdl_tf_model_t *m;
    mdl_tf_runner_t *run;
    size_t R;
    mdl_tf_seq_t **seq;      /* R */
    size_t *pos;             /* R */
    float *x;                /* R x dim, the residual stream */
    float *xb;               /* R x max(dim, q_dim), normed input */
    float *q;                /* R x q_dim */
    float *k, *v;            /* R x kv_dim */
    float *att;              /* R x q_dim, attention output */
    float *hb, *hb2;         /* R x hidden */
    float *rope;             /* R x head_dim: cos[hd/2] then sin[hd/2] */
    float *scores;           /* threads x context */
    size_t layer;            /* for the attention job */
} pass_t;

/* ---- jobs on the team ---- */

typedef struct mm_task {
    const mdl_tf_mat_t *W;
    const float *bias;
    const float *x;
    size_t xs;
    float *y;
    size_t ys;
    bool acc;
    const int8_t *xq;        /* Q8_0 weights: x quantized (set by matmuls) */
    const float *xd;
} mm_task_t;

typedef struct mm_job {
    mdl_tf_runner_t *run;
    mm_task_t t[3];
    size_t n_t, B;
    size_t chunk;            /* rows per work item */
    size_t chunks[3];        /* work items per task */
    size_t total;
    atomic_size_t next;
} mm_job_t;

static void mm_work(void *arg, size_t tid)
{
    mm_job_t *j = arg;
    size_t per_thread = j->run->q8_rows_floats / mdl_tf_team_size(j->run->team);

    for (;;) {
        size_t c = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed), i = 0;
        if (c >= j->total)
            return;
        while (c >= j->chunks[i])
            c -= j->chunks[i++];
        const mm_task_t *t = &j->t[i];
        size_t r0 = c * j->chunk, r1 = r0 + j->chunk < t->W->rows ? r0 + j->chunk : t->W->rows;
        if (t->W->q8_d)
            mdl__q8_matmul(t->W, t->bias, t->x, t->xs, t->xq, t->xd, j->run->q8_rows + tid * per_thread,
                           t->y, t->ys, j->B, r0, r1, t->acc);
        else
            mdl__tf_matmul(t->W, t->bias, t->x, t->xs, t->y, t->ys, j->B, r0, r1, t->acc);
    }
}

/* Runs up to three matmuls over the same B rows as one team job. */
static void matmuls(mdl_tf_runner_t *run, const mm_task_t *tasks, size_t n, size_t B)
{
    mm_job_t j = {.run = run, .n_t = n, .B = B};
    size_t rows = 0;

    for (size_t i = 0; i < n; i++)
        rows += tasks[i].W->rows;
    j.chunk = rows / (8 * mdl_tf_team_size(run->team)) & ~(size_t)3;
    if (j.chunk < MM_CHUNK)
        j.chunk = MM_CHUNK;
    for (size_t i = 0; i < n; i++) {
        j.t[i] = tasks[i];
        j.chunks[i] = (tasks[i].W->rows + j.chunk - 1) / j.chunk;
        j.total += j.chunks[i];
        if (tasks[i].W->q8_d) {
            /* the tasks of one call share their input (q/k/v, gate/up): quantize it once,
             * into the runner's scratch that layout() sized for this pass (and widen it
             * back for the float path, see q8.h) */
            size_t cols = tasks[i].W->cols, nb = mdl_q8_blocks(cols);
            bool wide = B >= MDL_Q8_FLOAT_MIN_BATCH;
            if (i == 0 || tasks[i].x != tasks[i - 1].x || !tasks[i - 1].W->q8_d ||
                cols != tasks[i - 1].W->cols)
                for (size_t b = 0; b < B; b++) {
                    int8_t *q = run->xq + b * nb * MDL_Q8_BLOCK;
                    mdl__q8_quantize_act(tasks[i].x + b * tasks[i].xs, cols, q, run->xd + b * nb);
                    if (wide)
                        mdl__q8_dequantize_act(q, run->xd + b * nb, cols, run->xf + b * cols);
                }
            j.t[i].xq = run->xq;
            j.t[i].xd = run->xd;
            if (wide) {
                j.t[i].x = run->xf;
                j.t[i].xs = cols;
            }
        }
    }
    atomic_init(&j.next, 0);
    mdl_tf_team_run(run->team, mm_work, &j);
}

static void matmul1(mdl_tf_runner_t *run, const mdl_tf_mat_t *W, const float *bias, const float *x,
                    size_t xs, float *y, size_t ys, size_t B, bool acc)
{
    mm_task_t t = {W, bias, x, xs, y, ys, acc, NULL, NULL};
    matmuls(run, &t, 1, B);
}

typedef struct att_job {
    pass_t *p;
    atomic_size_t next;
} att_job_t;

/* Causal attention of one row and one query head over its sequence's cache. */
static void attend(const pass_t *p, size_t r, size_t h, float *scores)
{
    const mdl_tf_config_t *c = &p->m->cfg;
    const mdl_tf_seq_t *s = p->seq[r];
    size_t hd = c->head_dim, kvd = c->n_kv_heads * hd, qd = c->n_heads * hd;
    size_t kvh = h / (c->n_heads / c->n_kv_heads), n = p->pos[r] + 1;
    const float *q = p->q + r * qd + h * hd;
    const float *kc = s->k + p->layer * s->cap * kvd + kvh * hd;
    const float *vc = s->v + p->layer * s->cap * kvd + kvh * hd;
    float *out = p->att + r * qd + h * hd, scale = 1.0f / sqrtf((float)hd), max = -INFINITY, sum = 0;

    for (size_t t = 0; t < n; t++) {
        scores[t] = mdl__tf_dot(q, kc + t * kvd, hd) * scale;
        if (scores[t] > max)
            max = scores[t];
    }
    for (size_t t = 0; t < n; t++)
        sum += scores[t] = expf(scores[t] - max);
    memset(out, 0, hd * sizeof *out);
    for (size_t t = 0; t < n; t++)
        mdl__tf_axpy(out, scores[t] / sum, vc + t * kvd, hd);
}

static void att_work(void *arg, size_t tid)
{
    att_job_t *j = arg;
    pass_t *p = j->p;
    size_t heads = p->m->cfg.n_heads;
    float *scores = p->scores + tid * p->m->cfg.context;

    for (;;) {
        size_t i = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (i >= p->R * heads)
            return;
        attend(p, i / heads, i % heads, scores);
    }
}

/* ---- row-wise pieces (cheap; on the calling thread) ---- */

static void rmsnorm(float *out, const float *x, const float *w, size_t n, float eps)
{
    float ss = 0;
    for (size_t i = 0; i < n; i++)
        ss += x[i] * x[i];
    ss = 1.0f / sqrtf(ss / (float)n + eps);
    for (size_t i = 0; i < n; i++)
        out[i] = x[i] * ss * w[i];
}

static void layernorm(float *out, const float *x, const float *w, const float *b, size_t n, float eps)
{
    float mean = 0, var = 0;
    for (size_t i = 0; i < n; i++)
        mean += x[i];
    mean /= (float)n;
    for (size_t i = 0; i < n; i++)
        var += (x[i] - mean) * (x[i] - mean);
    var = 1.0f / sqrtf(var / (float)n + eps);
    for (size_t i = 0; i < n; i++)
        out[i] = (x[i] - mean) * var * w[i] + b[i];
}

static void norm_rows(const pass_t *p, float *out, size_t out_stride, const float *w,
                      const float *b, size_t r0, size_t r1)
{
    const mdl_tf_config_t *c = &p->m->cfg;
    for (size_t r = r0; r < r1; r++) {
        if (b)
            layernorm(out + (r - r0) * out_stride, p->x + r * c->dim, w, b, c->dim, (float)c->norm_eps);
        else
            rmsnorm(out + (r - r0) * out_stride, p->x + r * c->dim, w, c->dim, (float)c->norm_eps);
    }
}

/* cos/sin of pos x theta^(-2j/head_dim), in double so only the final rounding differs
 * from the float64 reference. */
static void rope_tables(const pass_t *p)
{
    const mdl_tf_config_t *c = &p->m->cfg;
    size_t half = c->head_dim / 2;
    for (size_t r = 0; r < p->R; r++) {
        float *cs = p->rope + r * c->head_dim;
        for (size_t j = 0; j < half; j++) {
            double a = (double)p->pos[r] * pow(c->rope_theta, -(double)(2 * j) / (double)c->head_dim);
            cs[j] = (float)cos(a);
            cs[half + j] = (float)sin(a);
        }
    }
}

static void rope_heads(const mdl_tf_config_t *c, float *x, size_t n_heads, const float *cs)
{
    size_t hd = c->head_dim, half = hd / 2;
    const float *sn = cs + half;
    for (size_t h = 0; h < n_heads; h++, x += hd) {
        if (c->rope == MDL_TF_ROPE_HALF) {
            for (size_t j = 0; j < half; j++) {
                float a = x[j], b = x[j + half];
                x[j] = a * cs[j] - b * sn[j];
                x[j + half] = b * cs[j] + a * sn[j];
            }
        } else {
            for (size_t j = 0; j < half; j++) {
                float a = x[2 * j], b = x[2 * j + 1];
                x[2 * j] = a * cs[j] - b * sn[j];
                x[2 * j + 1] = a * sn[j] + b * cs[j];
            }
        }
    }
}

static float gelu_new(float x)
{
    return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}

/* ---- the pass ---- */

static size_t q_dim(const mdl_tf_config_t *c) { return c->n_heads * c->head_dim; }
static size_t kv_dim(const mdl_tf_config_t *c) { return c->n_kv_heads * c->head_dim; }

/* Lays out scratch for R rows, growing the runner's buffers if needed. */
static int layout(mdl_tf_runner_t *run, const mdl_tf_model_t *m, size_t R, pass_t *p)
{
    const mdl_tf_config_t *c = &m->cfg;
    size_t qd = q_dim(c), kvd = kv_dim(c), wide = qd > c->dim ? qd : c->dim;
    size_t per_row = c->dim + wide + 2 * qd + 2 * kvd + 2 * c->hidden_dim + c->head_dim;
    size_t need = R * per_row + mdl_tf_team_size(run->team) * c->context;
    float *f;

    if (need > run->buf_floats) {
        f = realloc(run->buf, need * sizeof *f);
        if (!f)
            return -ENOMEM;
        run->buf = f;
        run->buf_floats = need;
    }
    if (m->weights == MDL_TF_WEIGHTS_Q8_0) {
        size_t widest = wide > c->hidden_dim ? wide : c->hidden_dim, blocks = R * mdl_q8_blocks(widest);
        if (blocks > run->xq_blocks) {
            int8_t *q = realloc(run->xq, blocks * MDL_Q8_BLOCK);
            if (q)
                run->xq = q;
            float *d = realloc(run->xd, blocks * sizeof *d);
            if (d)
                run->xd = d;
            float *xf = realloc(run->xf, blocks * MDL_Q8_BLOCK * sizeof *xf);
            if (xf)
                run->xf = xf;
            if (!q || !d || !xf)
                return -ENOMEM;
            run->xq_blocks = blocks;
        }
        size_t rows = mdl_tf_team_size(run->team) * MDL_Q8_FLOAT_ROWS * widest;
        if (R >= MDL_Q8_FLOAT_MIN_BATCH && rows > run->q8_rows_floats) {
            float *wr = realloc(run->q8_rows, rows * sizeof *wr);
            if (!wr)
                return -ENOMEM;
            run->q8_rows = wr;
            run->q8_rows_floats = rows;
        }
    }
    if (R > run->rows_cap) {
        mdl_tf_seq_t **s = realloc(run->row_seq, R * sizeof *s);
        if (s)
            run->row_seq = s;
        size_t *ps = realloc(run->row_pos, R * sizeof *ps);
        if (ps)
            run->row_pos = ps;
        size_t *os = realloc(run->out_rows, R * sizeof *os);
        if (os)
            run->out_rows = os;
        if (!s || !ps || !os)
            return -ENOMEM;
        run->rows_cap = R;
    }
    f = run->buf;
    *p = (pass_t){.m = m, .run = run, .R = R, .seq = run->row_seq, .pos = run->row_pos};
    p->x = f, f += R * c->dim;
    p->xb = f, f += R * wide;
    p->q = f, f += R * qd;
    p->k = f, f += R * kvd;
    p->v = f, f += R * kvd;
    p->att = f, f += R * qd;
    p->hb = f, f += R * c->hidden_dim;
    p->hb2 = f, f += R * c->hidden_dim;
    p->rope = f, f += R * c->head_dim;
    p->scores = f;
    return 0;
}

/* Runs rows p->seq/pos with tokens; writes the logits of n_out rows to logits (row-major,
 * vocab each): rows out_rows[0..n_out), or the last n_out rows if out_rows is NULL. The
 * caches of the sequences receive K/V at the rows' positions. */
static void forward(pass_t *p, const int32_t *tokens, const size_t *out_rows, size_t n_out,
                    float *logits)
{
    const mdl_tf_model_t *m = p->m;
    const mdl_tf_config_t *c = &m->cfg;
    mdl_tf_runner_t *run = p->run;
    size_t R = p->R, dim = c->dim, qd = q_dim(c), kvd = kv_dim(c), hid = c->hidden_dim;
    size_t wide = qd > dim ? qd : dim;

    for (size_t r = 0; r < R; r++) {
        const mdl_tf_mat_t *E = &m->embed;
        mdl__tf_to_f32((const uint8_t *)E->w + (size_t)tokens[r] * dim * mdl_dtype_size(E->dtype),
                       E->dtype, p->x + r * dim, dim);
        if (c->arch == MDL_TF_GPT2) {
            const mdl_tf_mat_t *P = &m->pos_embed;
            float *pe = p->xb; /* scratch row */
            mdl__tf_to_f32((const uint8_t *)P->w + p->pos[r] * dim * mdl_dtype_size(P->dtype),
                           P->dtype, pe, dim);
            for (size_t i = 0; i < dim; i++)
                p->x[r * dim + i] += pe[i];
        }
    }
    if (c->rope != MDL_TF_ROPE_NONE)
        rope_tables(p);
    for (size_t l = 0; l < c->n_layers; l++) {
        const mdl__tf_layer_t *L = &m->layers[l];
        norm_rows(p, p->xb, wide, L->attn_norm, L->attn_norm_b, 0, R);
        mm_task_t qkv[3] = {{&L->wq, L->bq, p->xb, wide, p->q, qd, false, NULL, NULL},
                            {&L->wk, L->bk, p->xb, wide, p->k, kvd, false, NULL, NULL},
                            {&L->wv, L->bv, p->xb, wide, p->v, kvd, false, NULL, NULL}};
        matmuls(run, qkv, 3, R);
        for (size_t r = 0; r < R; r++) {
            mdl_tf_seq_t *s = p->seq[r];
            if (c->rope != MDL_TF_ROPE_NONE) {
                rope_heads(c, p->q + r * qd, c->n_heads, p->rope + r * c->head_dim);
                rope_heads(c, p->k + r * kvd, c->n_kv_heads, p->rope + r * c->head_dim);
            }
            memcpy(s->k + (l * s->cap + p->pos[r]) * kvd, p->k + r * kvd, kvd * sizeof(float));
            memcpy(s->v + (l * s->cap + p->pos[r]) * kvd, p->v + r * kvd, kvd * sizeof(float));
        }
        att_job_t aj = {.p = p};
        atomic_init(&aj.next, 0);
        p->layer = l;
        mdl_tf_team_run(run->team, att_work, &aj);
        matmul1(run, &L->wo, L->bo, p->att, qd, p->x, dim, R, true);

        norm_rows(p, p->xb, wide, L->ffn_norm, L->ffn_norm_b, 0, R);
        if (c->arch == MDL_TF_LLAMA) {
            mm_task_t gu[2] = {{&L->w_gate, NULL, p->xb, wide, p->hb, hid, false, NULL, NULL},
                               {&L->w_up, NULL, p->xb, wide, p->hb2, hid, false, NULL, NULL}};
            matmuls(run, gu, 2, R);
            for (size_t i = 0; i < R * hid; i++) {
                float g = p->hb[i];
                p->hb[i] = g / (1.0f + expf(-g)) * p->hb2[i];
            }
        } else {
            matmul1(run, &L->w_up, L->b_up, p->xb, wide, p->hb, hid, R, false);
            for (size_t i = 0; i < R * hid; i++)
                p->hb[i] = gelu_new(p->hb[i]);
        }
        matmul1(run, &L->w_down, L->b_down, p->hb, hid, p->x, dim, R, true);
    }
    if (!logits || !n_out)
        return;
    for (size_t k = 0; k < n_out; k++) {
        size_t r = out_rows ? out_rows[k] : R - n_out + k;
        norm_rows(p, p->xb + k * wide, wide, m->final_norm, m->final_norm_b, r, r + 1);
    }
    matmul1(run, &m->lm_head, NULL, p->xb, wide, logits, c->vocab_size, n_out, false);
}

/* ---- sequences ---- */

size_t mdl_tf_seq_bytes(const mdl_tf_model_t *m, size_t max_tokens)
{
    if (!max_tokens || max_tokens > m->cfg.context)
        max_tokens = m->cfg.context;
    return 2 * m->cfg.n_layers * max_tokens * kv_dim(&m->cfg) * sizeof(float);
}

int mdl_tf_seq_new(const mdl_tf_model_t *m, size_t max_tokens, mdl_tf_seq_t **ret,
                   mdl_err_t *reterr)
{
    mdl_tf_seq_t *s;
    size_t n;

    if (max_tokens > m->cfg.context)
        return mdl_err_set(reterr, -EINVAL, "a sequence of %zu tokens exceeds the context length %zu",
                           max_tokens, m->cfg.context);
    s = calloc(1, sizeof *s);
    if (!s)
        return mdl_err_set(reterr, -ENOMEM, "out of memory");
    s->model = m;
    s->cap = max_tokens ? max_tokens : m->cfg.context;
    n = m->cfg.n_layers * s->cap * kv_dim(&m->cfg);
    s->k = malloc(n * sizeof(float));
    s->v = malloc(n * sizeof(float));
    if (!s->k || !s->v) {
        mdl_tf_seq_free(s);
        return mdl_err_set(reterr, -ENOMEM, "out of memory for a KV cache of %zu bytes",
                           2 * n * sizeof(float));
    }
    *ret = s;
    return 0;
}

mdl_tf_seq_t *mdl_tf_seq_free(mdl_tf_seq_t *s)
{
    if (s) {
        free(s->k);
        free(s->v);
        free(s);
    }
    return NULL;
}

size_t mdl_tf_seq_len(const mdl_tf_seq_t *s) { return s->len; }
size_t mdl_tf_seq_capacity(const mdl_tf_seq_t *s) { return s->cap; }

void mdl_tf_seq_truncate(mdl_tf_seq_t *s, size_t n)
{
    if (n < s->len)
        s->len = n;
}

/* ---- runner ---- */

int mdl_tf_runner_new(size_t n_threads, mdl_tf_runner_t **ret, mdl_err_t *reterr)
{
    mdl_tf_runner_t *run;
    int r;

    if (n_threads < 1 || n_threads > MDL_TF_MAX_THREADS)
        return mdl_err_set(reterr, -EINVAL, "threads must be 1..%d, got %zu", MDL_TF_MAX_THREADS,
                           n_threads);
    run = calloc(1, sizeof *run);
    if (!run)
        return mdl_err_set(reterr, -ENOMEM, "out of memory");
    r = mdl_tf_team_new(n_threads, &run->team);
    if (r < 0) {
        free(run);
        return mdl_err_set(reterr, r, "cannot start %zu threads", n_threads);
    }
    *ret = run;
    return 0;
}

mdl_tf_runner_t *mdl_tf_runner_free(mdl_tf_runner_t *run)
{
    if (run) {
        mdl_tf_team_free(run->team);
        free(run->buf);
        free(run->row_seq);
        free(run->row_pos);
        free(run->out_rows);
        free(run->xq);
        free(run->xd);
        free(run->q8_rows);
        free(run->xf);
        free(run);
    }
    return NULL;
}

size_t mdl_tf_runner_threads(const mdl_tf_runner_t *run)
{
    return mdl_tf_team_size(run->team);
}

static int check_tokens(const mdl_tf_model_t *m, const int32_t *tokens, size_t n, mdl_err_t *reterr)
{
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || (size_t)tokens[i] >= m->cfg.vocab_size)
            return mdl_err_set(reterr, -ERANGE,
                               "token id %ld at index %zu is outside the vocabulary [0, %zu)",
                               (long)tokens[i], i, m->cfg.vocab_size);
    return 0;
}

int mdl_tf_prefill(mdl_tf_runner_t *run, mdl_tf_seq_t *s, const int32_t *tokens, size_t n,
                   float *logits, bool all_positions, mdl_err_t *reterr)
{
    const mdl_tf_model_t *m = s->model;
    size_t V = m->cfg.vocab_size;
    int r;

    if (n == 0)
        return mdl_err_set(reterr, -EINVAL, "prefill needs at least one token");
    if ((r = check_tokens(m, tokens, n, reterr)) < 0)
        return r;
    if (n > s->cap - s->len)
        return mdl_err_set(reterr, -E2BIG,
                           "%zu tokens at position %zu exceed the context length of %zu tokens", n,
                           s->len, s->cap);
    for (size_t done = 0; done < n;) {
        size_t R = n - done < MDL_TF_PREFILL_CHUNK ? n - done : MDL_TF_PREFILL_CHUNK;
        bool last = done + R == n;
        pass_t p;
        if (layout(run, m, R, &p) < 0)
            return mdl_err_set(reterr, -ENOMEM, "out of memory for a batch of %zu tokens", R);
        for (size_t i = 0; i < R; i++) {
            p.seq[i] = s;
            p.pos[i] = s->len + i;
        }
        if (all_positions)
            forward(&p, tokens + done, NULL, R, logits ? logits + done * V : NULL);
        else
            forward(&p, tokens + done, NULL, last ? 1 : 0, last ? logits : NULL);
        s->len += R;
        done += R;
    }
    return 0;
}

/* A batched pass over several sequences, counts[i] tokens each (NULL = one each), logits
 * for the last token of each. Everything is checked before anything changes. */
static int step(mdl_tf_runner_t *run, mdl_tf_seq_t *const *seqs, const int32_t *tokens,
                const size_t *counts, size_t n_seqs, float *logits, mdl_err_t *reterr)
{
    const mdl_tf_model_t *m;
    size_t total = 0, row = 0;
    pass_t p;
    int r;

    if (n_seqs == 0 || n_seqs > MDL_TF_MAX_BATCH)
        return mdl_err_set(reterr, -EINVAL, "a step takes 1..%d sequences, got %zu",
                           MDL_TF_MAX_BATCH, n_seqs);
    m = seqs[0]->model;
    for (size_t i = 0; i < n_seqs; i++) {
        size_t n = counts ? counts[i] : 1;
        if (seqs[i]->model != m)
            return mdl_err_set(reterr, -EINVAL, "sequence %zu belongs to another model", i);
        if (n == 0 || n > MDL_TF_MAX_STEP_TOKENS - total)
            return mdl_err_set(reterr, -EINVAL,
                               "a step takes 1..%d tokens per sequence and %d in all (sequence %zu)",
                               MDL_TF_MAX_STEP_TOKENS, MDL_TF_MAX_STEP_TOKENS, i);
        if (seqs[i]->len == seqs[i]->cap)
            return mdl_err_set(reterr, -E2BIG,
                               "sequence %zu is full: the context length of %zu tokens is reached",
                               i, seqs[i]->cap);
        if (n > seqs[i]->cap - seqs[i]->len)
            return mdl_err_set(reterr, -E2BIG,
                               "sequence %zu: %zu tokens at position %zu exceed the context length "
                               "of %zu tokens", i, n, seqs[i]->len, seqs[i]->cap);
        for (size_t j = 0; j < i; j++)
            if (seqs[j] == seqs[i])
                return mdl_err_set(reterr, -EINVAL, "sequence %zu appears twice in the batch", i);
        total += n;
    }
    if ((r = check_tokens(m, tokens, total, reterr)) < 0)
        return r;
    if (layout(run, m, total, &p) < 0)
        return mdl_err_set(reterr, -ENOMEM, "out of memory for a batch of %zu tokens", total);
    for (size_t i = 0; i < n_seqs; i++) {
        size_t n = counts ? counts[i] : 1;
        for (size_t j = 0; j < n; j++, row++) {
            p.seq[row] = seqs[i];
            p.pos[row] = seqs[i]->len + j;
        }
        run->out_rows[i] = row - 1;
    }
    forward(&p, tokens, run->out_rows, n_seqs, logits);
    for (size_t i = 0; i < n_seqs; i++)
        seqs[i]->len += counts ? counts[i] : 1;
    return 0;
}

int mdl_tf_decode(mdl_tf_runner_t *run, mdl_tf_seq_t *const *seqs, const int32_t *tokens,
                  size_t n_seqs, float *logits, mdl_err_t *reterr)
{
    return step(run, seqs, tokens, NULL, n_seqs, logits, reterr);
}

int mdl_tf_step(mdl_tf_runner_t *run, mdl_tf_seq_t *const *seqs, const int32_t *tokens,
                const size_t *counts, size_t n_seqs, float *logits, mdl_err_t *reterr)
{
    return step(run, seqs, tokens, counts, n_seqs, logits, reterr);
}
