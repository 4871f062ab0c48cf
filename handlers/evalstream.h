/* Incremental decoding of :score-auc bodies into the columns the metrics need. Bytes are
 * fed in pieces as they arrive; each call consumes every complete row (or JSON array
 * element) and leaves the rest for the next call. Feature rows are scored by the model in
 * batches as soon as a batch is full, so what is kept per row is the score(s), the label
 * and, when given, the weight and the interned group: about 16-28 bytes.
 *
 * Formats (docs/api.md, "Evaluation bodies"):
 *   JSON    {"instances" | "scores": [...], "labels": [...], "weights"?: [...],
 *            "groups"?: [...], "threshold"?, "k"?, "n_bins"?, "task"?}
 *   NDJSON  one object per line: {"features": row | "score": s, "label": y,
 *            "weight"?: w, "group"?: g}; blank lines are skipped
 *   CSV     a header naming the columns: model features, "label", optional "weight" and
 *            "group", or (no model) "score" / "score_0".."score_{C-1}"; one row per line,
 *            comma-separated, "double quoted" fields with "" for a quote, empty = missing
 * Labels are numbers, booleans, or a class label of the model as a string.
 *
 * Pure: one owner at a time (the worker running a step), no logging, libc only. */
#ifndef MDL_EVALSTREAM_H
#define MDL_EVALSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "models/model.h"

typedef enum { MDL_EVAL_JSON, MDL_EVAL_NDJSON, MDL_EVAL_CSV } mdl_eval_format_t;

typedef struct mdl_evalstream mdl_evalstream_t;

/* The columns, valid after mdl_evalstream_finish. Arrays owned by the stream. */
typedef struct mdl_eval_columns {
    const double *scores;   /* n_rows x width */
    size_t width;           /* scores per row (classes for multiclass) */
    const double *labels;
    size_t n_rows;
    const double *weights;  /* NULL = none given */
    const uint32_t *groups; /* NULL = none given */
    size_t n_groups;        /* distinct group values */
    /* Options found in a JSON body (NaN / 0 / NULL when absent). */
    double threshold;
    double k;               /* -1 absent */
    double n_bins;          /* -1 absent */
    char task[16];          /* "" absent */
} mdl_eval_columns_t;

/* m: the model that scores "instances"/"features" (NULL: scores must be given).
 * max_rows bounds the rows. NULL on out of memory. */
mdl_evalstream_t *mdl_evalstream_new(mdl_eval_format_t format, const mdl_model_t *m, size_t max_rows);
void mdl_evalstream_free(mdl_evalstream_t *s);

/* Consumes complete rows from data[0..len); returns the bytes consumed (the caller keeps
 * the rest and feeds it again with more bytes after it), or a negative code with reterr:
 * -EBADMSG malformed (message has the line or byte), -EPROTO well-formed but wrong,
 * -E2BIG over max_rows, -ENOMEM. final: no more bytes follow (everything must parse). */
long mdl_evalstream_feed(mdl_evalstream_t *s, const char *data, size_t len, bool final,
                         mdl_err_t *reterr);

/* After the final feed: scores what is left, checks the columns agree in length and
 * fills *ret. 0 or a negative code with reterr. */
int mdl_evalstream_finish(mdl_evalstream_t *s, mdl_eval_columns_t *ret, mdl_err_t *reterr);

/* Bytes a row may take at most before the stream is refused (it is held until whole). */
#define MDL_EVALSTREAM_MAX_ROW_BYTES ((size_t)64 << 20)

#endif
