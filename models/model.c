#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gbdt/gbdt.h"
#include "file.h"
#include "lr.h"
#include "sha256.h"
#include "transformer/kind.h"

const mdl_kind_t *const mdl_kinds[] = {&mdl_kind_lr, &mdl_kind_gbdt, &mdl_kind_transformer, NULL};

const mdl_kind_t *mdl_kind_find(const char *name)
{
    for (size_t i = 0; mdl_kinds[i]; i++)
        if (strcmp(mdl_kinds[i]->name, name) == 0)
            return mdl_kinds[i];
    return NULL;
}

const char *mdl_task_name(mdl_task_t t)
{
    switch (t) {
    case MDL_TASK_BINARY: return "binary";
    case MDL_TASK_MULTICLASS: return "multiclass";
    case MDL_TASK_REGRESSION: return "regression";
    case MDL_TASK_RANKING: return "ranking";
    case MDL_TASK_DECISION: return "decision";
    case MDL_TASK_GENERATION: return "generation";
    }
    return "unknown";
}

/* Finds the kind whose artifact exists in dir; ambiguity is an error, not a guess. */
static int detect_kind(const char *dir, const mdl_load_opts_t *opts, const mdl_kind_t **ret_kind,
                       char *path, size_t path_size, mdl_err_t *reterr)
{
    const mdl_kind_t *found = NULL;
    char candidate[512];

    for (size_t i = 0; mdl_kinds[i]; i++) {
        const mdl_kind_t *k = mdl_kinds[i];
        if (opts && opts->kind && strcmp(opts->kind, k->name) != 0)
            continue;
        for (size_t j = 0; k->artifacts[j]; j++) {
            struct stat st;
            snprintf(candidate, sizeof candidate, "%s/%s", dir, k->artifacts[j]);
            if (stat(candidate, &st) != 0 || !S_ISREG(st.st_mode))
                continue;
            if (found && found != k)
                return mdl_err_set(reterr, -EBADMSG,
                                   "%s: artifacts of both '%s' and '%s' present; set \"kind\" in config.json",
                                   dir, found->name, k->name);
            if (!found) {
                found = k;
                snprintf(path, path_size, "%s", candidate);
            }
        }
    }
    if (!found) {
        if (opts && opts->kind && !mdl_kind_find(opts->kind))
            return mdl_err_set(reterr, -EINVAL, "unknown model kind '%s'", opts->kind);
        return mdl_err_set(reterr, -ENOENT, "%s: no model artifact found%s%s", dir,
                           opts && opts->kind ? " for kind " : "", opts && opts->kind ? opts->kind : "");
    }
    *ret_kind = found;
    return 0;
}

static int hash_file(const char *path, char hex[65], size_t *ret_bytes, mdl_err_t *reterr)
{
    FILE *f = fopen(path, "rb");
    char buf[65536];
    size_t got;
    mdl_sha256_t s;

    if (!f)
        return mdl_err_set(reterr, -errno, "%s: %s", path, strerror(errno));
    mdl_sha256_init(&s);
    *ret_bytes = 0;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
        mdl_sha256_update(&s, buf, got);
        *ret_bytes += got;
    }
    fclose(f);
    mdl_sha256_final_hex(&s, hex);
    return 0;
}

static int cmp_feature_name(const void *a, const void *b)
{
    return strcmp((*(mdl_feature_t *const *)a)->name, (*(mdl_feature_t *const *)b)->name);
}

/* Builds m->_by_name so name lookups are a binary search, and rejects duplicate names. */
static int index_feature_names(mdl_model_t *m, mdl_err_t *reterr)
{
    size_t n = m->n_features;
    mdl_feature_t **sorted = malloc((n ? n : 1) * sizeof *sorted);
    int r = 0;

    m->_by_name = malloc((n ? n : 1) * sizeof *m->_by_name);
    if (!sorted || !m->_by_name) {
        r = mdl_err_set(reterr, -ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (!m->features[i].name) {
            r = mdl_err_set(reterr, -EBADMSG, "feature %zu has no name", i);
            goto out;
        }
        sorted[i] = &m->features[i];
    }
    qsort(sorted, n, sizeof *sorted, cmp_feature_name);
    for (size_t i = 0; i < n; i++) {
        m->_by_name[i] = (size_t)(sorted[i] - m->features);
        if (i > 0 && strcmp(sorted[i]->name, sorted[i - 1]->name) == 0) {
            r = mdl_err_set(reterr, -EBADMSG, "duplicate feature name '%s'", sorted[i]->name);
            goto out;
        }
    }
out:
    free(sorted);
    return r;
}

void mdl_model_free_metadata(mdl_model_t *m)
{
    for (size_t i = 0; m->features && i < m->n_features; i++) {
        free(m->features[i].name);
        for (size_t j = 0; m->features[i].categories && j < m->features[i].n_categories; j++)
            free(m->features[i].categories[j]);
        free(m->features[i].categories);
    }
    free(m->features);
    m->features = NULL;
    m->n_features = 0;
    for (size_t i = 0; m->classes && i < m->n_classes; i++)
        free(m->classes[i]);
    free(m->classes);
    m->classes = NULL;
    m->n_classes = 0;
    free(m->_by_name);
    m->_by_name = NULL;
}

static void model_free(mdl_model_t *m)
{
    if (m->kind && m->kind->destroy)
        m->kind->destroy(m->impl);
    mdl_model_free_metadata(m);
    free(m);
}

int mdl_model_load_dir(const char *dir, const mdl_load_opts_t *opts, mdl_model_t **ret,
                       mdl_err_t *reterr)
{
    const mdl_kind_t *kind;
    mdl_model_t *m;
    int r;

    m = calloc(1, sizeof *m);
    if (!m)
        return mdl_err_set(reterr, -ENOMEM, "out of memory");
    r = detect_kind(dir, opts, &kind, m->artifact, sizeof m->artifact, reterr);
    if (r < 0)
        goto fail;
    m->kind = kind;
    r = kind->load(m->artifact, opts, m, reterr);
    if (r < 0)
        goto fail;
    if (!m->sha256[0] && (r = hash_file(m->artifact, m->sha256, &m->artifact_bytes, reterr)) < 0)
        goto fail;
    r = index_feature_names(m, reterr);
    if (r < 0)
        goto fail;
    if (opts && opts->negative_sampling_rate > 0 && opts->negative_sampling_rate != 1) {
        if (m->task != MDL_TASK_BINARY || mdl_model_output_width(m, MDL_OUTPUT_VALUE) != 1) {
            r = mdl_err_set(reterr, -EINVAL, "negative_sampling_rate applies to binary models only (this one is %s)",
                            mdl_task_name(m->task));
            goto fail;
        }
        m->negative_sampling_rate = opts->negative_sampling_rate;
    }
    atomic_init(&m->_refs, 1);
    *ret = m;
    return 0;
fail:
    if (r != -ENOMEM && reterr && strncmp(reterr->msg, m->artifact, strlen(m->artifact)) != 0 &&
        m->artifact[0])
        mdl_err_prefix(reterr, "%s: ", m->artifact);
    model_free(m);
    return r;
}

mdl_model_t *mdl_model_ref(mdl_model_t *m)
{
    if (m)
        atomic_fetch_add_explicit(&m->_refs, 1, memory_order_relaxed);
    return m;
}

mdl_model_t *mdl_model_unref(mdl_model_t *m)
{
    if (m && atomic_fetch_sub_explicit(&m->_refs, 1, memory_order_acq_rel) == 1)
        model_free(m);
    return NULL;
}

bool mdl_model_is_tabular(const mdl_model_t *m)
{
    return m->kind->tabular != NULL;
}

const mdl_lm_t *mdl_model_lm(const mdl_model_t *m)
{
    return m->kind == &mdl_kind_transformer ? m->impl : NULL;
}

size_t mdl_model_output_width(const mdl_model_t *m, mdl_output_t kind)
{
    return m->kind->tabular ? m->kind->tabular->output_width(m->impl, kind) : 0;
}

int mdl_model_score(const mdl_model_t *m, const double *rows, size_t n_rows, mdl_output_t kind,
                    double *out, mdl_err_t *reterr)
{
    if (!m->kind->tabular)
        return mdl_err_set(reterr, -EINVAL, "model kind '%s' does not score rows", m->kind->name);
    int r = m->kind->tabular->score(m->impl, rows, n_rows, kind, out, reterr);
    double w = m->negative_sampling_rate;

    /* Undo negative down-sampling at rate w: odds scale by w, p' = p / (p + (1 - p) / w). */
    if (r == 0 && w > 0 && kind == MDL_OUTPUT_VALUE)
        for (size_t i = 0; i < n_rows; i++)
            out[i] = out[i] / (out[i] + (1 - out[i]) / w);
    return r;
}

long mdl_model_feature_index(const mdl_model_t *m, const char *name)
{
    size_t lo = 0, hi = m->n_features;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, m->features[m->_by_name[mid]].name);
        if (c == 0)
            return (long)m->_by_name[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

long mdl_model_category_index(const mdl_model_t *m, size_t col, const char *value)
{
    const mdl_feature_t *f = &m->features[col];

    for (size_t i = 0; i < f->n_categories; i++)
        if (strcmp(f->categories[i], value) == 0)
            return (long)i;
    return -1;
}

int mdl_model_read_artifact(const char *path, const mdl_load_opts_t *opts, size_t kind_max,
                            mdl_model_t *m, char **ret_data, size_t *ret_len, mdl_err_t *reterr)
{
    size_t max = kind_max;
    int r;

    if (opts && opts->max_artifact_bytes && opts->max_artifact_bytes < max)
        max = opts->max_artifact_bytes;
    r = mdl_file_read(path, max, ret_data, ret_len, m->sha256, reterr);
    if (r == 0)
        m->artifact_bytes = *ret_len;
    return r;
}

int mdl_model_alloc_features(mdl_model_t *m, size_t n)
{
    m->features = calloc(n ? n : 1, sizeof *m->features);
    if (!m->features)
        return -ENOMEM;
    m->n_features = n;
    return 0;
}

int mdl_model_alloc_classes(mdl_model_t *m, size_t n)
{
    m->classes = calloc(n ? n : 1, sizeof *m->classes);
    if (!m->classes)
        return -ENOMEM;
    m->n_classes = n;
    return 0;
}
