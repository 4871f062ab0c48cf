/* Logistic regression and linear SVM models (kind "lr"), loaded from modeld's own small
 * JSON artifact `lr.json` written by tools/export_sklearn_lr.py. The format is described
 * in docs/lr-format.md: estimator, classes, input features (numeric or categorical),
 * a preprocessing tree mirroring scikit-learn's Pipeline / ColumnTransformer /
 * StandardScaler / MinMaxScaler / SimpleImputer / OneHotEncoder, and coef/intercept.
 *
 * At load the preprocessing tree is compiled into a flat list of terms, one per column of
 * the linear part, each tracing back to a single input column; scoring walks that list
 * without allocating. Outputs (per row):
 *   LogisticRegression, 2 classes:  value = P(classes[1]), margin = decision function (1)
 *   LogisticRegression, K classes:  value = K probabilities (softmax or normalised OvR),
 *                                   margin = K decision values
 *   LinearSVC:                      value = margin = decision function (1 or K)
 * Score errors: -EPROTO (a missing value with no imputer, an unknown category under
 * handle_unknown='error', an infinite input, a non-finite result; the message names the
 * row and feature), -EINVAL (output kind not supported). */
#ifndef MDL_LR_H
#define MDL_LR_H

#include <stddef.h>

#include "model.h"

/* Largest lr.json the loader reads (a further bound may come from mdl_load_opts_t). */
#define MDL_LR_MAX_FILE_BYTES ((size_t)64 << 20)
/* Nesting bound for lr.json (pipelines inside column transformers inside pipelines...). */
#define MDL_LR_MAX_JSON_DEPTH 64

extern const mdl_kind_t mdl_kind_lr;

/* Parses an lr.json document held in memory (len bytes, need not be NUL-terminated) into
 * m (impl, task, features, classes). Used by the kind's loader and by fuzzers. Returns 0,
 * or -EBADMSG (the message names the JSON field path or byte offset) / -ENOMEM. m must come
 * in with impl, features and classes unset; on failure they are left unset (NULL / 0).
 * Any thread; no logging. */
int mdl_lr_load_mem(const char *data, size_t len, mdl_model_t *m, mdl_err_t *reterr);

#endif
