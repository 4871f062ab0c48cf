/* Decoding tabular request bodies straight into the dense row matrix models score, without
 * building a JSON tree (a tree node and a strtod per value were most of a small predict's
 * cost), and encoding scores back as JSON numbers. Pure functions; any thread.
 *
 * Body: {"instances": [row, ...]} or {"inputs": [row, ...]} or
 * {"inputs": {"feature": [v_row0, v_row1, ...], ...}}, plus optional "output": "value" |
 * "margin" | "leaf", and TF Serving's "signature_name": "serving_default". A row is a
 * positional array of n_features values or an object keyed
 * by feature name (absent = missing). Values: number, null (missing), or for categorical
 * features the category string (unknown category -> -1). */
#ifndef MDL_TABULAR_H
#define MDL_TABULAR_H

#include <stdbool.h>
#include <stddef.h>

#include "models/model.h"
#include "server/buf.h"

typedef struct mdl_tabular_body {
    double *rows;        /* n_rows x n_features, row-major, NaN = missing; owned */
    size_t n_rows;
    mdl_output_t output; /* MDL_OUTPUT_VALUE unless "output" says otherwise */
    const char *output_name; /* static: "value", "margin" or "leaf" */
    bool columnar;       /* came as "inputs" (answer "outputs", as TF Serving does) */
} mdl_tabular_body_t;

/* Parses a whole body. Returns 0, -EBADMSG for malformed JSON (message has the byte
 * offset), -EPROTO for well-formed JSON that does not fit the model (message names the
 * field path), -ENOMEM. max_rows bounds the rows accepted. */
int mdl_tabular_body_parse(const mdl_model_t *m, const char *body, size_t len, size_t max_rows,
                           mdl_tabular_body_t *ret, mdl_err_t *reterr);
void mdl_tabular_body_done(mdl_tabular_body_t *b);

/* Parses one JSON number at s (strict JSON grammar) into *ret; returns the bytes consumed
 * or 0 if s does not start with a number. Exact (correctly rounded) like strtod. */
size_t mdl_json_parse_number(const char *s, const char *end, double *ret);

/* Appends v as the shortest JSON number that reads back as the same double. */
void mdl_json_put_double(mdl_buf_t *out, double v);

#endif
