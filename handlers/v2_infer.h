/* Open Inference Protocol (KServe V2) inference requests for tabular models: decoding a
 * request (JSON, or with the binary tensor data extension) into the dense row matrix the
 * models score, and encoding the answer. Pure functions; any thread; no logging.
 *
 * A tabular model takes either one input named "input" of shape [rows, n_features] (data
 * row-major, flat or nested), or one input per feature named after it, of shape [rows] or
 * [rows, 1] (features without an input are missing). Numeric datatypes (BOOL, INT8..64,
 * UINT8..64, FP32, FP64) convert to the model's doubles as their type reads (an FP32 value
 * is rounded to float first); null in FP32/FP64 JSON data is a missing value; BYTES carries
 * category strings for categorical features. Outputs: "value" (FP64), "margin" (FP64),
 * "leaf" (INT64), as the model supports them. */
#ifndef MDL_V2_INFER_H
#define MDL_V2_INFER_H

#include <stdbool.h>
#include <stddef.h>

#include "models/model.h"

#define MDL_V2_MAX_OUTPUTS 3

typedef struct mdl_v2_output {
    mdl_output_t kind;
    const char *name;     /* static: "value", "margin" or "leaf" */
    bool binary;          /* answered as raw bytes after the JSON header */
} mdl_v2_output_t;

typedef struct mdl_v2_infer {
    char *id;             /* the request's "id", owned; NULL if none */
    double *rows;         /* n_rows x n_features, row-major, NaN = missing; owned */
    size_t n_rows;
    size_t n_outputs;
    mdl_v2_output_t outputs[MDL_V2_MAX_OUTPUTS];
} mdl_v2_infer_t;

/* The outputs model m supports, in order, as (kind, name, datatype); returns how many. */
size_t mdl_v2_model_outputs(const mdl_model_t *m, mdl_output_t *kinds, const char **names,
                            const char **datatypes);

/* Decodes a request body. json_len is the Inference-Header-Content-Length (the JSON part;
 * the binary tensor data follows it) or len when the body is all JSON. Returns 0 and *ret
 * (free with mdl_v2_infer_done); -EBADMSG malformed JSON; -EPROTO a request that does not
 * fit the protocol or the model (the message names the input, output or field); -ENOMEM.
 * max_rows bounds the rows accepted. */
int mdl_v2_infer_parse(const mdl_model_t *m, const char *body, size_t len, size_t json_len,
                       size_t max_rows, mdl_v2_infer_t *ret, mdl_err_t *reterr);
void mdl_v2_infer_done(mdl_v2_infer_t *r);

/* Encodes the response for r: values[i] holds n_rows x widths[i] scores of r->outputs[i].
 * *ret_body (malloc'd, caller frees) is the JSON, followed by the bytes of the binary
 * outputs; *ret_json_len is the JSON's length (== *ret_len when nothing is binary).
 * Returns 0; -ERANGE a value JSON cannot carry (not finite); -ENOMEM. */
int mdl_v2_infer_encode(const mdl_v2_infer_t *r, const char *model_name, long version,
                        const double *const *values, const size_t *widths, char **ret_body,
                        size_t *ret_len, size_t *ret_json_len, mdl_err_t *reterr);

#endif
