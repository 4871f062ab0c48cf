/* Turning JSON instances into the dense row matrix tabular models score, and scores back
 * into JSON numbers. Shared by predict (and later rank and score-auc). Any thread (pure). */
#ifndef MDL_TABULAR_H
#define MDL_TABULAR_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "models/model.h"
#include "server/buf.h"

/* One instance into row[0..n_features): a positional array of n_features values or an
 * object keyed by feature name (absent = missing). null = missing (NaN); categorical
 * features take their category string (unknown -> -1). `where` names the instance in
 * errors ("instances[3]"). Returns 0 or -EPROTO with a message naming the field. */
int mdl_tabular_row(const mdl_model_t *m, const cJSON *instance, const char *where, double *row,
                    mdl_err_t *reterr);

/* An array of instances into a malloc'd n x n_features matrix (caller frees). Rejects an
 * empty list and more than max_rows rows. key names the list in errors. */
int mdl_tabular_rows(const mdl_model_t *m, const cJSON *list, const char *key, size_t max_rows,
                     double **ret_rows, size_t *ret_n, mdl_err_t *reterr);

/* Columnar form {"feature": [v_row0, v_row1, ...], ...}: every column the same length. */
int mdl_tabular_columns(const mdl_model_t *m, const cJSON *columns, const char *key,
                        size_t max_rows, double **ret_rows, size_t *ret_n, mdl_err_t *reterr);

/* Appends v as the shortest JSON number that reads back as the same double. */
void mdl_json_put_double(mdl_buf_t *out, double v);

#endif
