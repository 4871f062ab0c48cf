/* models/gbdt: the forest builder and scorer, the XGBoost JSON / UBJSON loaders, the kind.
 *
 * Golden cases come from the real library: ../shared/fixtures/gbdt/xgb_* (XGBoost 1.7.4,
 * see the README there) and the cases in tests/fixtures/gbdt (made by tools/gen_xgb_fixtures.py with
 * Debian's python3-xgboost). Each case holds the model file, input.csv and the library's
 * expected_margin.csv / expected_pred.csv (and expected_leaf.csv for ours); every row must
 * match within 1e-6 x max(1, |expected|), and we count how many margins match bit for bit.
 * Paths are relative to the repository root (the directory make runs in). */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/file.h"
#include "models/gbdt/forest.h"
#include "models/gbdt/gbdt.h"
#include "tests/unit/check.h"

#define SHARED_DIR "../shared/fixtures/gbdt"
#define OWN_DIR "tests/fixtures/gbdt"

/* ---- helpers -------------------------------------------------------------------------- */

typedef struct csv {
    size_t rows, cols;
    double *v; /* rows x cols */
} csv_t;

/* Reads a CSV of numbers with a header line; empty field = NaN. 0 or -1. */
static int csv_read(const char *path, csv_t *c)
{
    char *data, *p, *end;
    size_t len, cap = 0, n = 0, cols = 0, line_cols;
    mdl_err_t err;

    memset(c, 0, sizeof *c);
    if (mdl_file_read(path, (size_t)1 << 28, &data, &len, NULL, &err) < 0)
        return -1;
    p = strchr(data, '\n');
    if (!p) {
        free(data);
        return -1;
    }
    cols = 1;
    for (char *q = data; q < p; q++)
        cols += *q == ',';
    p++;
    while (*p) {
        line_cols = 0;
        for (;;) {
            double v;
            if (*p == ',' || *p == '\n' || *p == '\r' || !*p) {
                v = NAN;
            } else {
                v = strtod(p, &end);
                p = end;
            }
            if (n == cap) {
                cap = cap ? cap * 2 : 1024;
                c->v = realloc(c->v, cap * sizeof *c->v);
            }
            c->v[n++] = v;
            line_cols++;
            if (*p == ',') {
                p++;
                continue;
            }
            break;
        }
        while (*p == '\r' || *p == '\n')
            p++;
        if (line_cols != cols) {
            free(data);
            free(c->v);
            return -1;
        }
        c->rows++;
    }
    c->cols = cols;
    free(data);
    return 0;
}

static void release(mdl_model_t *m)
{
    mdl_kind_gbdt.destroy(m->impl);
    for (size_t i = 0; m->features && i < m->n_features; i++)
        free(m->features[i].name);
    free(m->features);
    for (size_t i = 0; m->classes && i < m->n_classes; i++)
        free(m->classes[i]);
    free(m->classes);
    memset(m, 0, sizeof *m);
}

static int load_file(const char *path, mdl_model_t *m, mdl_err_t *err)
{
    char *data;
    size_t len;
    int r;

    memset(m, 0, sizeof *m);
    memset(err, 0, sizeof *err);
    if ((r = mdl_file_read(path, (size_t)1 << 30, &data, &len, NULL, err)) < 0)
        return r;
    r = mdl_gbdt_load_mem(path, data, len, m, err);
    free(data);
    return r;
}

static __attribute__((unused)) int load_mem(const char *name, const char *data, size_t len, mdl_model_t *m,
                    mdl_err_t *err)
{
    memset(m, 0, sizeof *m);
    memset(err, 0, sizeof *err);
    return mdl_gbdt_load_mem(name, data, len, m, err);
}

static int exists(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f)
        fclose(f);
    return f != NULL;
}

/* Compares one output kind of a case; returns the number of bit-exact values. */
static size_t compare(const char *name, const char *what, const mdl_model_t *m,
                      const csv_t *in, mdl_output_t kind, const csv_t *exp)
{
    size_t w = m->kind ? 0 : 0, exact = 0;
    double *out, worst = 0;
    mdl_err_t err;

    w = mdl_kind_gbdt.tabular->output_width(m->impl, kind);
    if (w != exp->cols) {
        CHECK_FAIL_("%s %s: width %zu, expected file has %zu columns", name, what, w, exp->cols);
        return 0;
    }
    if (exp->rows != in->rows) {
        CHECK_FAIL_("%s %s: %zu expected rows for %zu input rows", name, what, exp->rows,
                    in->rows);
        return 0;
    }
    out = calloc(in->rows * w + 1, sizeof *out);
    CHECK_EQ_INT(mdl_kind_gbdt.tabular->score(m->impl, in->v, in->rows, kind, out, &err), 0);
    for (size_t i = 0; i < in->rows * w; i++) {
        double e = exp->v[i], g = out[i], tol = 1e-6 * fmax(1.0, fabs(e));
        if (memcmp(&e, &g, sizeof e) == 0 || (e == g))
            exact++;
        if (!(fabs(e - g) <= tol)) {
            if (!check_current_failed)
                CHECK_FAIL_("%s %s: row %zu col %zu: got %.17g, expected %.17g", name, what,
                            i / w, i % w, g, e);
            check_current_failed = 1;
        }
        if (fabs(e - g) / fmax(1.0, fabs(e)) > worst)
            worst = fabs(e - g) / fmax(1.0, fabs(e));
    }
    printf("  %-28s %-6s %4zu rows x %zu: %zu/%zu bit-exact, worst rel err %.3g\n", name, what,
           in->rows, w, exact, in->rows * w, worst);
    free(out);
    return exact;
}

/* Runs one golden case directory. */
static void run_case(const char *dir, const char *case_name)
{
    char path[512], model_path[512];
    const char *models[] = {"model.json", "model.ubj"};
    csv_t in, exp;
    mdl_model_t m;
    mdl_err_t err;
    int found = 0;

    snprintf(path, sizeof path, "%s/%s/input.csv", dir, case_name);
    if (csv_read(path, &in) < 0) {
        CHECK_FAIL_("%s: cannot read", path);
        return;
    }
    for (size_t k = 0; k < 2; k++) {
        char label[128];
        snprintf(model_path, sizeof model_path, "%s/%s/%s", dir, case_name, models[k]);
        if (!exists(model_path))
            continue;
        found++;
        if (load_file(model_path, &m, &err) != 0) {
            CHECK_FAIL_("%s: %s", model_path, err.msg);
            continue;
        }
        CHECK_EQ_INT(m.n_features, in.cols);
        snprintf(label, sizeof label, "%s%s", case_name, k ? " (ubj)" : "");
        snprintf(path, sizeof path, "%s/%s/expected_margin.csv", dir, case_name);
        if (csv_read(path, &exp) == 0) {
            compare(label, "margin", &m, &in, MDL_OUTPUT_MARGIN, &exp);
            free(exp.v);
        } else {
            CHECK_FAIL_("%s: cannot read", path);
        }
        snprintf(path, sizeof path, "%s/%s/expected_pred.csv", dir, case_name);
        if (exists(path) && csv_read(path, &exp) == 0) {
            compare(label, "value", &m, &in, MDL_OUTPUT_VALUE, &exp);
            free(exp.v);
        }
        snprintf(path, sizeof path, "%s/%s/expected_leaf.csv", dir, case_name);
        if (exists(path) && csv_read(path, &exp) == 0) {
            compare(label, "leaf", &m, &in, MDL_OUTPUT_LEAF, &exp);
            free(exp.v);
        }
        release(&m);
    }
    if (!found)
        CHECK_FAIL_("%s/%s: no model file", dir, case_name);
    free(in.v);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every case folder under dir whose name starts with prefix; returns how many. */
static size_t run_dir(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char *names[256];
    size_t n = 0;

    if (!d)
        return 0;
    while ((e = readdir(d)) && n < 256)
        if (e->d_name[0] != '.' && strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        run_case(dir, names[i]);
        free(names[i]);
    }
    return n;
}

/* ---- golden cases ------------------------------------------------------------------------ */

static void test_shared_xgboost_fixtures(void)
{
    size_t n = run_dir(SHARED_DIR, "xgb_");
    if (n == 0)
        CHECK_FAIL_("no XGBoost fixtures under %s (is ../shared beside the repo?)", SHARED_DIR);
}

static void test_own_xgboost_fixtures(void)
{
    size_t n = run_dir(OWN_DIR, "");
    if (n == 0)
        CHECK_FAIL_("no fixtures under %s", OWN_DIR);
}

int main(void)
{
    RUN(test_shared_xgboost_fixtures);
    RUN(test_own_xgboost_fixtures);
    return check_summary();
}
