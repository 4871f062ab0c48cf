/* libFuzzer target: the XGBoost UBJ loader (models/gbdt/xgboost.c) on arbitrary bytes,
 * then every output kind of whatever loads, on rows of edge values (NaN, zeros, float
 * overflow, category codes around the bitset). A load either succeeds or fails with a
 * message and one of the loader's codes. Seeds: tests/fuzz/corpus/xgboost_ubj/ (tiny
 * models written by XGBoost 1.7.4: gbtree, dart, categorical, multiclass). */
#include "fuzz_forest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const double probe[] = {NAN, 0.0, -0.0, 1e-40, -0.5, 3.7, -1.0, 1e39, 1e30, 40.0, 31.0};
    return fuzz_forest(mdl_gbdt_load_xgboost_ubj, data, size, probe, sizeof probe / sizeof probe[0]);
}
