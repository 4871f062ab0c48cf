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

/* One row alone (streamed bodies, :rank candidates): text[0..len) is exactly one row value,
 * positional array or object. key[index] names it in messages; base is the offset of text
 * in the body (for byte positions). Object rows start from defaults (n_features values)
 * when given, else all missing. If id_key is set, that key of an object row is not a
 * feature: its raw JSON value is returned through ret_id / ret_id_len (NULL if absent).
 * If ret_used is set, text may go on after the row: *ret_used gets the row's length. */
typedef struct mdl_row_opts {
    const char *key;
    size_t index;
    size_t base;
    const double *defaults;
    const char *id_key;
    const char **ret_id;
    size_t *ret_id_len;
    size_t *ret_used;
} mdl_row_opts_t;
int mdl_tabular_parse_row(const mdl_model_t *m, const char *text, size_t len, const mdl_row_opts_t *o,
                          double *row, mdl_err_t *reterr);

/* Length of the JSON value starting at s (no leading whitespace): > 0 when it is complete
 * before end, 0 when it may continue past end (a scalar running into end counts), -1 when
 * s cannot start a value or closes a bracket it did not open. Strings and brackets are
 * matched, not validated: parse the slice to validate it. */
long mdl_json_scan_value(const char *s, const char *end);

/* A JSON string at s (at its quote) unescaped into out (cap bytes, NUL-terminated);
 * *ret_len gets the bytes consumed. -EBADMSG malformed, -EPROTO too long / not a string. */
int mdl_json_parse_string(const char *s, const char *end, char *out, size_t cap, size_t *ret_len,
                          mdl_err_t *reterr);

/* Parses one JSON number at s (strict JSON grammar) into *ret; returns the bytes consumed
 * or 0 if s does not start with a number. Exact (correctly rounded) like strtod. */
size_t mdl_json_parse_number(const char *s, const char *end, double *ret);

/* Appends v as the shortest JSON number that reads back as the same double. */
void mdl_json_put_double(mdl_buf_t *out, double v);

#endif
