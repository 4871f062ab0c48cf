/* Logistic regression and linear SVM models (kind "lr"), loaded from modeld's own small
 * JSON artifact `lr.json` written by tools/export_sklearn_lr.py. The format is described
 * in docs/lr-format.md. */
#ifndef MDL_LR_H
#define MDL_LR_H

#include <stddef.h>

#include "model.h"

extern const mdl_kind_t mdl_kind_lr;

/* Parses an lr.json document held in memory (len bytes, need not be NUL-terminated) into
 * m (impl, task, features, classes). Used by the kind's loader and by fuzzers. */
int mdl_lr_load_mem(const char *data, size_t len, mdl_model_t *m, mdl_err_t *reterr);

#endif
