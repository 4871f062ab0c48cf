/* libFuzzer target: the V2 infer decoder (handlers/v2_infer.c) on arbitrary bytes, for a
 * model with numeric and categorical features. The first byte picks where the JSON part
 * ends (the binary tensor data extension's header); a request either decodes into rows
 * that are then encoded back, or fails with one of the decoder's codes. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_model.h"
#include "handlers/v2_infer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const mdl_model_t *m = fuzz_model();
    mdl_v2_infer_t r;
    mdl_err_t err = {0};
    size_t json_len;
    char *body;
    int rc;

    if (size < 1)
        return 0;
    /* a NUL-terminated exact copy, as the HTTP layer hands bodies over */
    body = malloc(size);
    if (!body)
        return 0;
    memcpy(body, data + 1, size - 1);
    body[size - 1] = '\0';
    json_len = data[0] == 255 ? size - 1 : (size - 1) * data[0] / 255;
    rc = mdl_v2_infer_parse(m, body, size - 1, json_len, 64, &r, &err);
    if (rc == 0) {
        double *values[MDL_V2_MAX_OUTPUTS];
        size_t widths[MDL_V2_MAX_OUTPUTS], len, jl;
        char *out;
        for (size_t i = 0; i < r.n_outputs; i++) {
            widths[i] = mdl_model_output_width(m, r.outputs[i].kind);
            values[i] = calloc(r.n_rows * widths[i] + 1, sizeof(double));
            if (!values[i] || mdl_model_score(m, r.rows, r.n_rows, r.outputs[i].kind, values[i], &err) < 0)
                memset(values[i], 0, (r.n_rows * widths[i] + 1) * sizeof(double));
        }
        if (mdl_v2_infer_encode(&r, "m", 1, (const double *const *)values, widths, &out, &len, &jl, &err) == 0) {
            if (jl > len)
                abort();
            free(out);
        }
        for (size_t i = 0; i < r.n_outputs; i++)
            free(values[i]);
        mdl_v2_infer_done(&r);
    } else if (rc != -EBADMSG && rc != -EPROTO && rc != -ENOMEM) {
        abort();
    }
    free(body);
    return 0;
}
