/* What every forest-loader fuzz target does: load arbitrary bytes, and if they load, score
 * rows of edge values with every output kind. A failed load must carry a message and one
 * of the loader's codes; scoring a loaded forest must never fail. Any breach aborts. */
#ifndef MDL_FUZZ_FOREST_H
#define MDL_FUZZ_FOREST_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "models/gbdt/forest.h"
#include "models/gbdt/gbdt.h"

typedef int fuzz_forest_load_fn(const char *data, size_t len, mdl_forest_t **ret, mdl_err_t *reterr);

static inline int fuzz_forest(fuzz_forest_load_fn *load, const uint8_t *data, size_t size,
                              const double *probe, size_t n_probe)
{
    mdl_forest_t *f = NULL;
    mdl_err_t err;
    int r;

    memset(&err, 0, sizeof err);
    r = load((const char *)data, size, &f, &err);
    if (r < 0) {
        if ((r != -EBADMSG && r != -E2BIG && r != -ENOMEM) || err.code != r || !err.msg[0])
            abort();
        return 0;
    }
    const mdl_forest_info_t *info = mdl_forest_info(f);
    size_t nf = info->n_features;
    size_t w = mdl_forest_output_width(f, MDL_OUTPUT_LEAF);
    if (mdl_forest_output_width(f, MDL_OUTPUT_MARGIN) > w)
        w = mdl_forest_output_width(f, MDL_OUTPUT_MARGIN);
    if (nf <= 4096 && w <= 4096) {
        double *rows = malloc(n_probe * nf * sizeof *rows), *out = malloc(n_probe * w * sizeof *out);
        if (rows && out) {
            for (size_t i = 0; i < n_probe; i++)
                for (size_t j = 0; j < nf; j++)
                    rows[i * nf + j] = probe[(i + j) % n_probe];
            for (int k = MDL_OUTPUT_VALUE; k <= MDL_OUTPUT_LEAF; k++)
                if (mdl_forest_score(f, rows, n_probe, (mdl_output_t)k, out, &err) < 0)
                    abort();
        }
        free(rows);
        free(out);
    }
    mdl_forest_free(f);
    return 0;
}

#endif
