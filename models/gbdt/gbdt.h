/* Kind "gbdt": gradient-boosted tree ensembles saved by XGBoost (Booster.save_model, JSON
 * or UBJSON) or LightGBM (save_model text). The artifact file name picks the loader:
 *   model.json -> XGBoost JSON, model.ubj -> XGBoost UBJSON, model.txt -> LightGBM text.
 * Every loader parses and checks its format and describes the trees to the forest builder
 * (forest.h), which validates them and compiles the one layout the scorer walks.
 *
 * Loader contract (all three): data[0..len) is the whole file, need not be
 * NUL-terminated. Returns 0 and a new forest in *ret, or a negative code with reterr
 * naming what is wrong and where (JSON path, byte offset or line): -EBADMSG malformed or
 * unsupported file, -E2BIG a declared size over the limits of forest.h, -ENOMEM.
 * Any thread; no logging; no global state. */
#ifndef MDL_GBDT_H
#define MDL_GBDT_H

#include <stddef.h>

#include "models/err.h"
#include "models/gbdt/forest.h"
#include "models/model.h"

/* Largest artifact the kind reads (a further bound may come from mdl_load_opts_t). */
#define MDL_GBDT_MAX_FILE_BYTES ((size_t)1 << 30)

extern const mdl_kind_t mdl_kind_gbdt;

/* XGBoost JSON model (models/gbdt/xgboost.c). */
int mdl_gbdt_load_xgboost_json(const char *data, size_t len, mdl_forest_t **ret,
                               mdl_err_t *reterr);

/* XGBoost UBJSON model (models/gbdt/xgboost.c). */
int mdl_gbdt_load_xgboost_ubj(const char *data, size_t len, mdl_forest_t **ret,
                              mdl_err_t *reterr);

/* LightGBM text model, v3 and v4 (models/gbdt/lightgbm.c, the LightGBM engineer's). */
int mdl_gbdt_load_lightgbm(const char *data, size_t len, mdl_forest_t **ret, mdl_err_t *reterr);

/* Loads an artifact held in memory, dispatching on its file name ("model.json",
 * "model.ubj", "model.txt"; only the part after the last '/' counts), and fills m (impl,
 * task, features, classes) like the kind's loader. For tests and fuzzers. */
int mdl_gbdt_load_mem(const char *name, const char *data, size_t len, mdl_model_t *m,
                      mdl_err_t *reterr);

#endif
