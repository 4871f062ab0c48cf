#include "metrics.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CODES 24 /* distinct status codes per series; more fold into the last */
#define MAX_BUCKETS 20

typedef struct histogram {
    uint64_t buckets[MAX_BUCKETS]; /* non-cumulative; rendered cumulative */
    uint64_t count;
    double sum;
} histogram_t;

static const double latency_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                        0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5,
                                        5,      10,      30};
static const double batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384, 65536};
static const double token_bounds[] = {0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05,
                                      0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define N_TOKEN (sizeof token_bounds / sizeof token_bounds[0])
static const double load_bounds[] = {0.001, 0.005, 0.025, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300};
#define N_LOAD (sizeof load_bounds / sizeof load_bounds[0])
#define N_LATENCY (sizeof latency_bounds / sizeof latency_bounds[0])
#define N_BATCH (sizeof batch_bounds / sizeof batch_bounds[0])

typedef struct request_series {
    const char *endpoint;
    char *model;
    int codes[MAX_CODES];
    uint64_t code_counts[MAX_CODES];
    size_t n_codes;
    histogram_t duration;
} request_series_t;

typedef struct model_series {
    char *model;
    histogram_t infer, queue, batch;
    uint64_t loads_ok, loads_error;
    histogram_t load;
    bool generative;              /* has generation series */
    histogram_t ttft, inter_token;
    uint64_t prompt_tokens, completion_tokens;
    long active_sequences;
} model_series_t;

typedef struct stats_series {
    char *model;
    long version;
    mdl_infer_stats_t stats;
} stats_series_t;

struct mdl_metrics {
    stats_series_t *stats;
    size_t n_stats, cap_stats;
    request_series_t *req;
    size_t n_req, cap_req;
    model_series_t *mod;
    size_t n_mod, cap_mod;
    long inflight;
    double start_time;
};

mdl_metrics_t *mdl_metrics_new(void)
{
    mdl_metrics_t *m = calloc(1, sizeof *m);
    struct timespec ts;

    if (!m)
        return NULL;
    clock_gettime(CLOCK_REALTIME, &ts);
    m->start_time = (double)ts.tv_sec + ts.tv_nsec / 1e9;
    return m;
}

mdl_metrics_t *mdl_metrics_free(mdl_metrics_t *m)
{
    if (!m)
        return NULL;
    for (size_t i = 0; i < m->n_req; i++)
        free(m->req[i].model);
    for (size_t i = 0; i < m->n_mod; i++)
        free(m->mod[i].model);
    for (size_t i = 0; i < m->n_stats; i++)
        free(m->stats[i].model);
    free(m->stats);
    free(m->req);
    free(m->mod);
    free(m);
    return NULL;
}

static void observe(histogram_t *h, const double *bounds, size_t n_bounds, double v)
{
    size_t i = 0;

    while (i < n_bounds && v > bounds[i])
        i++;
    h->buckets[i]++;
    h->count++;
    h->sum += v;
}

/* Grows an array of `size`-byte elements by one; NULL on OOM (the sample is dropped). */
static void *grow(void **arr, size_t *n, size_t *cap, size_t size)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        void *na = realloc(*arr, ncap * size);
        if (!na)
            return NULL;
        *arr = na, *cap = ncap;
    }
    memset((char *)*arr + *n * size, 0, size);
    return (char *)*arr + (*n)++ * size;
}

static request_series_t *request_series(mdl_metrics_t *m, const char *endpoint, const char *model)
{
    request_series_t *s;

    for (size_t i = 0; i < m->n_req; i++)
        if (m->req[i].endpoint == endpoint && strcmp(m->req[i].model, model) == 0)
            return &m->req[i];
    s = grow((void **)&m->req, &m->n_req, &m->cap_req, sizeof *s);
    if (!s)
        return NULL;
    s->endpoint = endpoint;
    s->model = strdup(model);
    if (!s->model) {
        m->n_req--;
        return NULL;
    }
    return s;
}

static model_series_t *model_series(mdl_metrics_t *m, const char *model)
{
    model_series_t *s;

    for (size_t i = 0; i < m->n_mod; i++)
        if (strcmp(m->mod[i].model, model) == 0)
            return &m->mod[i];
    s = grow((void **)&m->mod, &m->n_mod, &m->cap_mod, sizeof *s);
    if (!s)
        return NULL;
    s->model = strdup(model);
    if (!s->model) {
        m->n_mod--;
        return NULL;
    }
    return s;
}

void mdl_metrics_request(mdl_metrics_t *m, const char *endpoint, const char *model, int code,
                         double seconds)
{
    request_series_t *s = request_series(m, endpoint, model);
    size_t i;

    if (!s)
        return;
    for (i = 0; i < s->n_codes && s->codes[i] != code; i++)
        ;
    if (i == s->n_codes) {
        if (s->n_codes == MAX_CODES)
            i = MAX_CODES - 1;
        else
            s->codes[s->n_codes++] = code;
    }
    s->code_counts[i]++;
    observe(&s->duration, latency_bounds, N_LATENCY, seconds);
}

void mdl_metrics_inference(mdl_metrics_t *m, const char *model, double infer_s, double queue_s,
                           size_t rows)
{
    model_series_t *s = model_series(m, model);

    if (!s)
        return;
    observe(&s->infer, latency_bounds, N_LATENCY, infer_s);
    observe(&s->queue, latency_bounds, N_LATENCY, queue_s);
    observe(&s->batch, batch_bounds, N_BATCH, (double)rows);
}

void mdl_metrics_model_load(mdl_metrics_t *m, const char *model, int ok, double seconds)
{
    model_series_t *s = model_series(m, model);

    if (!s)
        return;
    if (ok)
        s->loads_ok++;
    else
        s->loads_error++;
    observe(&s->load, load_bounds, N_LOAD, seconds);
}

void mdl_metrics_generation(mdl_metrics_t *m, const char *model, double ttft_s,
                            const double *inter_token_s, size_t n_inter, size_t prompt_tokens,
                            size_t completion_tokens)
{
    model_series_t *s = model_series(m, model);

    if (!s)
        return;
    s->generative = true;
    if (ttft_s >= 0)
        observe(&s->ttft, token_bounds, N_TOKEN, ttft_s);
    for (size_t i = 0; i < n_inter; i++)
        observe(&s->inter_token, token_bounds, N_TOKEN, inter_token_s[i]);
    s->prompt_tokens += prompt_tokens;
    s->completion_tokens += completion_tokens;
}

void mdl_metrics_active_sequences(mdl_metrics_t *m, const char *model, int delta)
{
    model_series_t *s = model_series(m, model);

    if (!s)
        return;
    s->generative = true;
    s->active_sequences += delta;
}

static unsigned long long to_ns(double seconds)
{
    return seconds > 0 ? (unsigned long long)(seconds * 1e9 + 0.5) : 0;
}

void mdl_metrics_infer_stats(mdl_metrics_t *m, const char *model, long version,
                             const mdl_infer_sample_t *smp)
{
    stats_series_t *s = NULL;
    mdl_infer_stats_t *st;
    struct timespec ts;

    for (size_t i = 0; i < m->n_stats && !s; i++)
        if (m->stats[i].version == version && strcmp(m->stats[i].model, model) == 0)
            s = &m->stats[i];
    if (!s) {
        s = grow((void **)&m->stats, &m->n_stats, &m->cap_stats, sizeof *s);
        if (!s)
            return;
        s->version = version;
        if (!(s->model = strdup(model))) {
            m->n_stats--;
            return;
        }
    }
    st = &s->stats;
    if (smp->ok) {
        st->success_count++;
        st->success_ns += to_ns(smp->total_s);
    } else {
        st->fail_count++;
        st->fail_ns += to_ns(smp->total_s);
    }
    if (smp->rows) {
        double rest = smp->total_s - smp->parse_s - smp->queue_s - smp->infer_s;
        st->batches++;
        st->rows += smp->rows;
        st->queue_ns += to_ns(smp->queue_s);
        st->input_ns += to_ns(smp->parse_s);
        st->infer_ns += to_ns(smp->infer_s);
        st->output_ns += to_ns(rest); /* the answer's encoding and the rest of the request */
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    st->last_unix_s = (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

const mdl_infer_stats_t *mdl_metrics_get_infer_stats(const mdl_metrics_t *m, const char *model,
                                                     long version)
{
    for (size_t i = 0; i < m->n_stats; i++)
        if (m->stats[i].version == version && strcmp(m->stats[i].model, model) == 0)
            return &m->stats[i].stats;
    return NULL;
}

void mdl_metrics_inflight(mdl_metrics_t *m, int delta)
{
    m->inflight += delta;
}

/* Label values are registry names ([A-Za-z0-9._-]) or route names, but escape anyway so
 * the output stays valid whatever a later caller passes. */
static void put_label_value(mdl_buf_t *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            mdl_buf_printf(out, "\\%c", *v);
        else if (*v == '\n')
            mdl_buf_puts(out, "\\n");
        else
            mdl_buf_append(out, v, 1);
    }
}

static void render_histogram(mdl_buf_t *out, const char *name, const char *labels,
                             const histogram_t *h, const double *bounds, size_t n_bounds)
{
    uint64_t cumulative = 0;
    const char *sep = labels[0] ? "," : "";

    for (size_t i = 0; i < n_bounds; i++) {
        cumulative += h->buckets[i];
        mdl_buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, bounds[i],
                       (unsigned long long)cumulative);
    }
    mdl_buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                   (unsigned long long)h->count);
    mdl_buf_printf(out, "%s_sum{%s} %.9g\n%s_count{%s} %llu\n", name, labels, h->sum, name, labels,
                   (unsigned long long)h->count);
}

static void labels_for(mdl_buf_t *lb, const char *endpoint, const char *model)
{
    lb->len = 0;
    if (endpoint) {
        mdl_buf_printf(lb, "endpoint=\"%s\",", endpoint);
    }
    mdl_buf_puts(lb, "model=\"");
    put_label_value(lb, model);
    mdl_buf_puts(lb, "\"");
}

static void render_model_histograms(const mdl_metrics_t *m, mdl_buf_t *out, mdl_buf_t *lb,
                                    const char *name, const char *help, size_t which)
{
    mdl_buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (size_t i = 0; i < m->n_mod; i++) {
        const model_series_t *s = &m->mod[i];
        const histogram_t *h = which == 0 ? &s->infer : which == 1 ? &s->queue : which == 2 ? &s->batch : &s->load;
        labels_for(lb, NULL, s->model);
        if (which == 2)
            render_histogram(out, name, lb->data, h, batch_bounds, N_BATCH);
        else if (which == 3)
            render_histogram(out, name, lb->data, h, load_bounds, N_LOAD);
        else
            render_histogram(out, name, lb->data, h, latency_bounds, N_LATENCY);
    }
}

/* Only for models that generate: a tabular model has no tokens to count. */
static void render_generation(const mdl_metrics_t *m, mdl_buf_t *out, mdl_buf_t *lb)
{
    static const char *const names[2] = {"modeld_generate_time_to_first_token_seconds",
                                         "modeld_generate_inter_token_seconds"};
    static const char *const helps[2] = {"Time from request to its first generated token.",
                                         "Time between consecutive generated tokens of a sequence."};
    bool any = false;

    for (size_t i = 0; i < m->n_mod; i++)
        any |= m->mod[i].generative;
    if (!any)
        return;
    for (int w = 0; w < 2; w++) {
        mdl_buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", names[w], helps[w], names[w]);
        for (size_t i = 0; i < m->n_mod; i++) {
            if (!m->mod[i].generative)
                continue;
            labels_for(lb, NULL, m->mod[i].model);
            render_histogram(out, names[w], lb->data, w == 0 ? &m->mod[i].ttft : &m->mod[i].inter_token,
                             token_bounds, N_TOKEN);
        }
    }
    mdl_buf_puts(out, "# HELP modeld_generate_tokens_total Tokens processed by generation, by kind.\n"
                      "# TYPE modeld_generate_tokens_total counter\n");
    for (size_t i = 0; i < m->n_mod; i++) {
        if (!m->mod[i].generative)
            continue;
        labels_for(lb, NULL, m->mod[i].model);
        mdl_buf_printf(out, "modeld_generate_tokens_total{%s,kind=\"prompt\"} %llu\n", lb->data,
                       (unsigned long long)m->mod[i].prompt_tokens);
        mdl_buf_printf(out, "modeld_generate_tokens_total{%s,kind=\"completion\"} %llu\n", lb->data,
                       (unsigned long long)m->mod[i].completion_tokens);
    }
    mdl_buf_puts(out, "# HELP modeld_generate_active_sequences Sequences generating now.\n"
                      "# TYPE modeld_generate_active_sequences gauge\n");
    for (size_t i = 0; i < m->n_mod; i++) {
        if (!m->mod[i].generative)
            continue;
        labels_for(lb, NULL, m->mod[i].model);
        mdl_buf_printf(out, "modeld_generate_active_sequences{%s} %ld\n", lb->data,
                       m->mod[i].active_sequences);
    }
}

static void render_process(const mdl_metrics_t *m, mdl_buf_t *out)
{
    long page = sysconf(_SC_PAGESIZE), ticks = sysconf(_SC_CLK_TCK);
    unsigned long long size = 0, resident = 0, utime = 0, stime = 0;
    FILE *f;
    DIR *d;
    long fds = 0;

    if ((f = fopen("/proc/self/statm", "r"))) {
        if (fscanf(f, "%llu %llu", &size, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    if ((f = fopen("/proc/self/stat", "r"))) {
        char buf[1024];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        char *p;
        buf[n] = '\0';
        /* Fields after the parenthesised command name: state is field 3, utime 14, stime 15. */
        p = strrchr(buf, ')');
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
            utime = stime = 0;
        fclose(f);
    }
    if ((d = opendir("/proc/self/fd"))) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.')
                fds++;
        closedir(d);
        fds--; /* the directory stream itself */
    }
    mdl_buf_printf(out,
                   "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                   "# TYPE process_resident_memory_bytes gauge\n"
                   "process_resident_memory_bytes %llu\n"
                   "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
                   "# TYPE process_virtual_memory_bytes gauge\n"
                   "process_virtual_memory_bytes %llu\n"
                   "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
                   "# TYPE process_cpu_seconds_total counter\n"
                   "process_cpu_seconds_total %.2f\n"
                   "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
                   "# TYPE process_start_time_seconds gauge\n"
                   "process_start_time_seconds %.3f\n"
                   "# HELP process_open_fds Number of open file descriptors.\n"
                   "# TYPE process_open_fds gauge\n"
                   "process_open_fds %ld\n",
                   resident * (unsigned long long)page, size * (unsigned long long)page,
                   (double)(utime + stime) / (double)ticks, m->start_time, fds);
}

void mdl_metrics_render(const mdl_metrics_t *m, mdl_buf_t *out)
{
    mdl_buf_t lb = {0};

    mdl_buf_puts(out, "# HELP modeld_requests_total HTTP requests answered, by endpoint, model and status code.\n"
                      "# TYPE modeld_requests_total counter\n");
    for (size_t i = 0; i < m->n_req; i++) {
        const request_series_t *s = &m->req[i];
        labels_for(&lb, s->endpoint, s->model);
        for (size_t j = 0; j < s->n_codes; j++)
            mdl_buf_printf(out, "modeld_requests_total{%s,code=\"%d\"} %llu\n", lb.data, s->codes[j],
                           (unsigned long long)s->code_counts[j]);
    }
    mdl_buf_puts(out, "# HELP modeld_request_duration_seconds Time from request headers to response queued.\n"
                      "# TYPE modeld_request_duration_seconds histogram\n");
    for (size_t i = 0; i < m->n_req; i++) {
        labels_for(&lb, m->req[i].endpoint, m->req[i].model);
        render_histogram(out, "modeld_request_duration_seconds", lb.data, &m->req[i].duration,
                         latency_bounds, N_LATENCY);
    }
    render_model_histograms(m, out, &lb, "modeld_inference_duration_seconds",
                            "Time spent scoring a batch.", 0);
    render_model_histograms(m, out, &lb, "modeld_queue_duration_seconds",
                            "Time a batch waited for a worker (0 when scored inline).", 1);
    render_model_histograms(m, out, &lb, "modeld_batch_size", "Rows per scored batch.", 2);
    render_model_histograms(m, out, &lb, "modeld_model_load_duration_seconds",
                            "Time to load and validate a model version.", 3);
    mdl_buf_puts(out, "# HELP modeld_model_load_total Model version loads, by result.\n"
                      "# TYPE modeld_model_load_total counter\n");
    for (size_t i = 0; i < m->n_mod; i++) {
        labels_for(&lb, NULL, m->mod[i].model);
        mdl_buf_printf(out, "modeld_model_load_total{%s,result=\"ok\"} %llu\n", lb.data,
                       (unsigned long long)m->mod[i].loads_ok);
        mdl_buf_printf(out, "modeld_model_load_total{%s,result=\"error\"} %llu\n", lb.data,
                       (unsigned long long)m->mod[i].loads_error);
    }
    render_generation(m, out, &lb);
    mdl_buf_printf(out, "# HELP modeld_inflight_requests Requests received and not yet completed.\n"
                        "# TYPE modeld_inflight_requests gauge\nmodeld_inflight_requests %ld\n",
                   m->inflight);
    render_process(m, out);
    mdl_buf_done(&lb);
}
