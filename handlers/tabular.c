#include "tabular.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One JSON value for column col. */
static int put_value(const mdl_model_t *m, size_t col, const cJSON *v, const char *where,
                     double *out, mdl_err_t *reterr)
{
    const mdl_feature_t *f = &m->features[col];

    if (!v || cJSON_IsNull(v)) {
        *out = NAN;
        return 0;
    }
    if (f->n_categories) {
        char num[40];
        const char *text = NULL;
        if (cJSON_IsString(v)) {
            text = v->valuestring;
        } else if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) {
            /* Numeric categories are stored as their text: 3 -> "3", 2.5 -> "2.5". */
            double d = v->valuedouble;
            if (d == floor(d) && fabs(d) < 1e15)
                snprintf(num, sizeof num, "%.0f", d);
            else
                snprintf(num, sizeof num, "%.17g", d);
            text = num;
        } else {
            return mdl_err_set(reterr, -EPROTO, "%s.%s: expected a category (string), got %s", where,
                               f->name, cJSON_IsBool(v) ? "a boolean" : "a non-scalar");
        }
        *out = (double)mdl_model_category_index(m, col, text);
        return 0;
    }
    if (!cJSON_IsNumber(v))
        return mdl_err_set(reterr, -EPROTO, "%s.%s: expected a number or null, got %s", where,
                           f->name,
                           cJSON_IsString(v)   ? "a string"
                           : cJSON_IsBool(v)   ? "a boolean"
                           : cJSON_IsArray(v)  ? "an array"
                                               : "an object");
    if (!isfinite(v->valuedouble))
        return mdl_err_set(reterr, -EPROTO, "%s.%s: number out of range", where, f->name);
    *out = v->valuedouble;
    return 0;
}

int mdl_tabular_row(const mdl_model_t *m, const cJSON *instance, const char *where, double *row,
                    mdl_err_t *reterr)
{
    const cJSON *v;
    size_t i = 0;
    int r;

    if (cJSON_IsArray(instance)) {
        size_t n = (size_t)cJSON_GetArraySize(instance);
        if (n != m->n_features)
            return mdl_err_set(reterr, -EPROTO, "%s: expected %zu feature values, got %zu", where,
                               m->n_features, n);
        cJSON_ArrayForEach(v, instance) {
            if ((r = put_value(m, i, v, where, &row[i], reterr)) < 0)
                return r;
            i++;
        }
        return 0;
    }
    if (!cJSON_IsObject(instance))
        return mdl_err_set(reterr, -EPROTO, "%s: expected an array of feature values or an object keyed by feature name",
                           where);
    for (i = 0; i < m->n_features; i++)
        row[i] = NAN;
    cJSON_ArrayForEach(v, instance) {
        long col = mdl_model_feature_index(m, v->string);
        if (col < 0)
            return mdl_err_set(reterr, -EPROTO, "%s: unknown feature '%.64s'", where, v->string);
        if ((r = put_value(m, (size_t)col, v, where, &row[col], reterr)) < 0)
            return r;
    }
    return 0;
}

static int alloc_rows(const mdl_model_t *m, size_t n, size_t max_rows, const char *key,
                      double **ret, mdl_err_t *reterr)
{
    if (n == 0)
        return mdl_err_set(reterr, -EPROTO, "%s: must hold at least one instance", key);
    if (n > max_rows)
        return mdl_err_set(reterr, -EPROTO, "%s: %zu instances; the limit is %zu", key, n, max_rows);
    if (m->n_features && n > SIZE_MAX / sizeof(double) / m->n_features)
        return mdl_err_set(reterr, -EPROTO, "%s: too many values", key);
    *ret = malloc(n * (m->n_features ? m->n_features : 1) * sizeof(double));
    return *ret ? 0 : mdl_err_set(reterr, -ENOMEM, "out of memory");
}

int mdl_tabular_rows(const mdl_model_t *m, const cJSON *list, const char *key, size_t max_rows,
                     double **ret_rows, size_t *ret_n, mdl_err_t *reterr)
{
    const cJSON *item;
    double *rows;
    size_t n, i = 0;
    int r;

    if (!cJSON_IsArray(list))
        return mdl_err_set(reterr, -EPROTO, "%s: expected an array of instances", key);
    n = (size_t)cJSON_GetArraySize(list);
    if ((r = alloc_rows(m, n, max_rows, key, &rows, reterr)) < 0)
        return r;
    cJSON_ArrayForEach(item, list) {
        char where[64];
        snprintf(where, sizeof where, "%s[%zu]", key, i);
        if ((r = mdl_tabular_row(m, item, where, rows + i * m->n_features, reterr)) < 0) {
            free(rows);
            return r;
        }
        i++;
    }
    *ret_rows = rows;
    *ret_n = n;
    return 0;
}

int mdl_tabular_columns(const mdl_model_t *m, const cJSON *columns, const char *key,
                        size_t max_rows, double **ret_rows, size_t *ret_n, mdl_err_t *reterr)
{
    const cJSON *col;
    double *rows;
    size_t n = 0;
    int r;

    if (!cJSON_IsObject(columns) || !columns->child)
        return mdl_err_set(reterr, -EPROTO, "%s: expected an object of feature columns", key);
    cJSON_ArrayForEach(col, columns) {
        size_t len;
        if (!cJSON_IsArray(col))
            return mdl_err_set(reterr, -EPROTO, "%s.%.64s: expected an array (one value per instance)",
                               key, col->string);
        len = (size_t)cJSON_GetArraySize(col);
        if (col == columns->child)
            n = len;
        else if (len != n)
            return mdl_err_set(reterr, -EPROTO, "%s.%.64s: %zu values, but the first column has %zu",
                               key, col->string, len, n);
    }
    if ((r = alloc_rows(m, n, max_rows, key, &rows, reterr)) < 0)
        return r;
    for (size_t i = 0; i < n * m->n_features; i++)
        rows[i] = NAN;
    cJSON_ArrayForEach(col, columns) {
        long c = mdl_model_feature_index(m, col->string);
        const cJSON *v;
        size_t i = 0;
        if (c < 0) {
            free(rows);
            return mdl_err_set(reterr, -EPROTO, "%s: unknown feature '%.64s'", key, col->string);
        }
        cJSON_ArrayForEach(v, col) {
            char where[80];
            snprintf(where, sizeof where, "%s[%zu]", key, i);
            if ((r = put_value(m, (size_t)c, v, where, &rows[i * m->n_features + (size_t)c], reterr)) < 0) {
                free(rows);
                return r;
            }
            i++;
        }
    }
    *ret_rows = rows;
    *ret_n = n;
    return 0;
}

void mdl_json_put_double(mdl_buf_t *out, double v)
{
    char text[32];

    for (int digits = 15; digits <= 17; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, v);
        if (strtod(text, NULL) == v)
            break;
    }
    mdl_buf_puts(out, text);
}
