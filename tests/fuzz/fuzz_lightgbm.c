/* libFuzzer target: the LightGBM text loader (models/gbdt/lightgbm.c) on arbitrary bytes,
 * then every output kind of whatever loads on a few rows (NaN, zero, large, categorical
 * edges). A load either succeeds or fails with a message and one of the loader's codes. */
#include "fuzz_forest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const double probe[] = {NAN, 0.0, -0.0, 1e-36, -0.5, 3.7, -1.0, 1e300, -INFINITY, 40.0};
    return fuzz_forest(mdl_gbdt_load_lightgbm, data, size, probe, sizeof probe / sizeof probe[0]);
}
