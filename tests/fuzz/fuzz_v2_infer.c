/* libFuzzer target: the V2 infer decoder (handlers/v2_infer.c) on arbitrary bytes, for a
 * model with numeric and categorical features. The first byte picks where the JSON part
 * ends (the binary tensor data extension's header); a request either decodes into rows
 * that are then encoded back, or fails with one of the decoder's codes. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "handlers/v2_infer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static mdl_model_t *model(void)
{
    static mdl_model_t *m;
    char dir[64], path[128];
    mdl_err_t err = {0};
    FILE *f;

    if (m)
        return m;
    snprintf(dir, sizeof dir, "/tmp/modeld-fuzz-v2-%ld", (long)getpid());
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/lr.json", dir);
    if (!(f = fopen(path, "w")))
        abort();
    fputs("{\"format\":\"modeld-lr\",\"format_version\":1,\"estimator\":\"LogisticRegression\","
          "\"task\":\"binary\",\"classes\":[\"no\",\"yes\"],"
          "\"features\":[{\"name\":\"age\"},{\"name\":\"input\"},"
          "{\"name\":\"city\",\"categories\":[\"paris\",\"rome\",\"7\"]}],"
          "\"preprocess\":{\"type\":\"column_transformer\",\"remainder\":\"passthrough\","
          "\"transformers\":[{\"columns\":[2],\"step\":{\"type\":\"one_hot_encoder\",\"handle_unknown\":\"ignore\"}}]},"
          "\"coef\":[[1,2,3,4,5]],\"intercept\":[0]}",
          f);
    fclose(f);
    if (mdl_model_load_dir(dir, NULL, &m, &err) < 0)
        abort();
    unlink(path);
    rmdir(dir);
    return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const mdl_model_t *m = model();
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
