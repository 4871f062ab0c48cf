/* The model the request-decoder fuzz targets decode against: logistic regression over a
 * numeric feature, a second numeric one and a categorical one (one-hot, unknown ignored),
 * written to a temporary folder and loaded once per process. Any failure aborts. */
#ifndef MDL_FUZZ_MODEL_H
#define MDL_FUZZ_MODEL_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "models/model.h"

static inline const mdl_model_t *fuzz_model(void)
{
    static mdl_model_t *m;
    char dir[64], path[128];
    mdl_err_t err = {0};
    FILE *f;

    if (m)
        return m;
    snprintf(dir, sizeof dir, "/tmp/modeld-fuzz-model-%ld", (long)getpid());
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

/* A failed decode must carry one of the documented codes, and the same code and a
 * message in reterr. */
static inline void fuzz_check_err(int rc, const mdl_err_t *err, const int *codes, size_t n)
{
    size_t i;

    for (i = 0; i < n && codes[i] != rc; i++)
        ;
    if (i == n || err->code != rc || !err->msg[0])
        abort();
}

#endif
