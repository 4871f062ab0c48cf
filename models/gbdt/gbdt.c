/* Kind "gbdt": picks the loader by artifact name, publishes the forest as the model's impl
 * and fills the metadata (task, feature names, class labels) from it. */
#include "gbdt.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* Frees what fill_model put in m (the caller owns m itself). */
static int fill_model(mdl_forest_t *f, mdl_model_t *m, mdl_err_t *reterr)
{
    const mdl_forest_info_t *info = mdl_forest_info(f);
    char label[32];

    if (mdl_model_alloc_features(m, info->n_features) < 0)
        goto nomem;
    for (size_t i = 0; i < info->n_features; i++)
        if (!(m->features[i].name = dup_str(info->feature_names[i])))
            goto nomem;
    if (info->n_classes > 0) {
        if (mdl_model_alloc_classes(m, info->n_classes) < 0)
            goto nomem;
        for (size_t i = 0; i < info->n_classes; i++) {
            snprintf(label, sizeof label, "%zu", i);
            if (!(m->classes[i] = dup_str(label)))
                goto nomem;
        }
    }
    m->task = info->task;
    /* A row visits about one node per level of each tree. */
    m->cost_per_row = info->n_trees ? info->n_trees * 8 : 1;
    m->impl = f;
    return 0;
nomem:
    mdl_model_free_metadata(m);
    return mdl_err_set(reterr, -ENOMEM, "out of memory");
}

int mdl_gbdt_load_mem(const char *name, const char *data, size_t len, mdl_model_t *m,
                      mdl_err_t *reterr)
{
    const char *base = base_name(name);
    mdl_forest_t *f = NULL;
    int r;

    /* An object in UBJSON opens with '{' and a key-length marker, in JSON with '{' and
     * whitespace, a '"' or '}': catch the swapped extension with a message that says so. */
    bool ubj_bytes = len > 1 && data[0] == '{' && strchr("iUIlL#$", data[1]) && data[1];
    bool json_bytes = len > 1 && data[0] == '{' && strchr(" \t\r\n\"}", data[1]) && data[1];

    if (strcmp(base, "model.json") == 0 && ubj_bytes)
        return mdl_err_set(reterr, -EBADMSG, "model.json holds UBJSON, not JSON (XGBoost "
                           "writes UBJSON for .ubj names): name it model.ubj");
    if (strcmp(base, "model.ubj") == 0 && json_bytes)
        return mdl_err_set(reterr, -EBADMSG, "model.ubj holds JSON, not UBJSON: name it "
                           "model.json");
    if (strcmp(base, "model.json") == 0)
        r = mdl_gbdt_load_xgboost_json(data, len, &f, reterr);
    else if (strcmp(base, "model.ubj") == 0)
        r = mdl_gbdt_load_xgboost_ubj(data, len, &f, reterr);
    else if (strcmp(base, "model.txt") == 0)
        r = mdl_gbdt_load_lightgbm(data, len, &f, reterr);
    else
        return mdl_err_set(reterr, -EINVAL, "gbdt: unknown artifact name '%s' (model.json, "
                           "model.ubj or model.txt)", base);
    if (r < 0)
        return r;
    r = fill_model(f, m, reterr);
    if (r < 0)
        mdl_forest_free(f);
    return r;
}

static int gbdt_load(const char *path, const mdl_load_opts_t *opts, mdl_model_t *m,
                     mdl_err_t *reterr)
{
    size_t len;
    char *data;
    int r;

    r = mdl_model_read_artifact(path, opts, MDL_GBDT_MAX_FILE_BYTES, m, &data, &len, reterr);
    if (r < 0)
        return r;
    r = mdl_gbdt_load_mem(path, data, len, m, reterr);
    free(data);
    return r;
}

static void gbdt_destroy(void *impl)
{
    mdl_forest_free(impl);
}

static size_t gbdt_output_width(const void *impl, mdl_output_t kind)
{
    return mdl_forest_output_width(impl, kind);
}

static int gbdt_score(const void *impl, const double *rows, size_t n_rows, mdl_output_t kind,
                      double *out, mdl_err_t *reterr)
{
    return mdl_forest_score(impl, rows, n_rows, kind, out, reterr);
}

static const char *const gbdt_artifacts[] = {"model.json", "model.ubj", "model.txt", NULL};

static const mdl_tabular_ops_t gbdt_tabular = {
    .output_width = gbdt_output_width,
    .score = gbdt_score,
};

const mdl_kind_t mdl_kind_gbdt = {
    .name = "gbdt",
    .artifacts = gbdt_artifacts,
    .load = gbdt_load,
    .destroy = gbdt_destroy,
    .tabular = &gbdt_tabular,
};
