/* libFuzzer target: the XGBoost UBJ loader (models/gbdt/xgboost.c) on arbitrary bytes,
 * then every output kind of whatever loads, on rows of edge values (NaN, zeros, float
 * overflow, category codes around the bitset). A load either succeeds or fails with a
 * message and one of the loader's codes. Seeds: tests/fuzz/corpus/xgboost_ubj/ (tiny
 * models written by XGBoost 1.7.4: gbtree, dart, categorical, multiclass). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "models/gbdt/forest.h"
#include "models/gbdt/gbdt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const double probe[] = {NAN, 0.0, -0.0, 1e-40, -0.5, 3.7, -1.0, 1e39, 1e30, 40.0, 31.0};
    mdl_forest_t *f = NULL;
    mdl_err_t err;
    int r;

    memset(&err, 0, sizeof err);
    r = mdl_gbdt_load_xgboost_ubj((const char *)data, size, &f, &err);
    if (r < 0) {
        if ((r != -EBADMSG && r != -E2BIG && r != -ENOMEM) || err.code != r || !err.msg[0])
            abort();
        return 0;
    }
    const mdl_forest_info_t *info = mdl_forest_info(f);
    size_t nf = info->n_features, nr = sizeof probe / sizeof probe[0];
    size_t w = mdl_forest_output_width(f, MDL_OUTPUT_LEAF);
    if (mdl_forest_output_width(f, MDL_OUTPUT_MARGIN) > w)
        w = mdl_forest_output_width(f, MDL_OUTPUT_MARGIN);
    if (nf <= 4096 && w <= 4096) {
        double *rows = malloc(nr * nf * sizeof *rows), *out = malloc(nr * w * sizeof *out);
        if (rows && out) {
            for (size_t i = 0; i < nr; i++)
                for (size_t j = 0; j < nf; j++)
                    rows[i * nf + j] = probe[(i + j) % nr];
            for (int k = MDL_OUTPUT_VALUE; k <= MDL_OUTPUT_LEAF; k++)
                if (mdl_forest_score(f, rows, nr, (mdl_output_t)k, out, &err) < 0)
                    abort();
        }
        free(rows);
        free(out);
    }
    mdl_forest_free(f);
    return 0;
}
