/* Request and inference metrics, rendered in the Prometheus text format 0.0.4.
 * Loop thread only: counters are plain integers because nothing else writes them.
 * Label values must come from the route table and the repository, never from a URL. */
#ifndef MDL_METRICS_H
#define MDL_METRICS_H

#include <stddef.h>

#include "buf.h"

typedef struct mdl_metrics mdl_metrics_t;

mdl_metrics_t *mdl_metrics_new(void);
mdl_metrics_t *mdl_metrics_free(mdl_metrics_t *m);

/* endpoint: a route name (static string); model: registry name or "". */
void mdl_metrics_request(mdl_metrics_t *m, const char *endpoint, const char *model, int code,
                         double seconds);
/* One scored batch of `rows` rows on `model`. */
void mdl_metrics_inference(mdl_metrics_t *m, const char *model, double infer_s, double queue_s,
                           size_t rows);
void mdl_metrics_inflight(mdl_metrics_t *m, int delta);
/* One finished generation on `model`: time to first token (< 0: none was generated), the
 * gaps between its tokens, and its token counts. */
void mdl_metrics_generation(mdl_metrics_t *m, const char *model, double ttft_s,
                            const double *inter_token_s, size_t n_inter, size_t prompt_tokens,
                            size_t completion_tokens);
/* Sequences generating on `model` now (+1 when one starts, -1 when it ends). */
void mdl_metrics_active_sequences(mdl_metrics_t *m, const char *model, int delta);
/* One finished model load (ok or not) and how long it took. */
void mdl_metrics_model_load(mdl_metrics_t *m, const char *model, int ok, double seconds);

/* One finished inference request (a request that needed a loaded model), for the V2
 * statistics extension; kept per model and version. */
typedef struct mdl_infer_sample {
    int ok;                 /* answered 2xx */
    double total_s, parse_s, queue_s, infer_s;
    size_t rows;            /* 0 when nothing was scored */
} mdl_infer_sample_t;

/* Cumulative figures of one model version (nanoseconds, counts). */
typedef struct mdl_infer_stats {
    unsigned long long success_count, success_ns;   /* 2xx answers, their total durations */
    unsigned long long fail_count, fail_ns;         /* other answers */
    unsigned long long batches, rows;               /* scored batches and their rows */
    unsigned long long queue_ns, input_ns, infer_ns, output_ns; /* over the scored batches */
    double last_unix_s;     /* wall clock of the last request, 0 = none */
} mdl_infer_stats_t;

void mdl_metrics_infer_stats(mdl_metrics_t *m, const char *model, long version,
                             const mdl_infer_sample_t *s);
/* The figures of one model version, or NULL if it has none yet. */
const mdl_infer_stats_t *mdl_metrics_get_infer_stats(const mdl_metrics_t *m, const char *model,
                                                     long version);

/* Appends every request/inference series and the process_* gauges. */
void mdl_metrics_render(const mdl_metrics_t *m, mdl_buf_t *out);

#endif
