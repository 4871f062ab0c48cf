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

/* Appends every request/inference series and the process_* gauges. */
void mdl_metrics_render(const mdl_metrics_t *m, mdl_buf_t *out);

#endif
