/* models/gbdt/lightgbm.c: LightGBM text models through the forest.
 *
 * - Golden fixtures: every lgb_* case in ../shared/fixtures/gbdt (made by LightGBM v4.6.0
 *   itself, see the README there) must reproduce the expected margins and predictions row
 *   by row; we count how many match bit for bit and require all to be within
 *   1e-6 x max(1, |expected|).
 * - Small hand-written models for what the fixtures lack (missing types None and Zero,
 *   categorical edge values, linear trees, single-leaf trees, rf averaging, the other
 *   objectives, v3 files without tree_sizes, CRLF). Their expected values are worked out
 *   by hand from LightGBM's rules (tree.h Decision / Predict, the objectives' ConvertOutput).
 * - A corrupt-file table: each mutation is rejected with its own message. */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/file.h"
#include "models/gbdt/forest.h"
#include "models/gbdt/forest_impl.h" /* f->bin: which layout a forest got */
#include "models/gbdt/gbdt.h"
#include "tests/unit/check.h"

#define FIXTURES "../shared/fixtures/gbdt"
#define OWN_FIXTURES "tests/fixtures/lightgbm"

#define CHECK_MSG(err, sub)                                                                        \
    do {                                                                                           \
        if (!strstr((err).msg, (sub)))                                                             \
            CHECK_FAIL_("message \"%s\" lacks \"%s\"", (err).msg, (sub));                          \
    } while (0)

static int load(const char *text, size_t len, mdl_forest_t **f, mdl_err_t *err)
{
    memset(err, 0, sizeof *err);
    *f = NULL;
    return mdl_gbdt_load_lightgbm(text, len, f, err);
}

static int load_str(const char *text, mdl_forest_t **f, mdl_err_t *err)
{
    return load(text, strlen(text), f, err);
}

/* ---- CSV ------------------------------------------------------------------------------- */

typedef struct csv {
    size_t n_rows, n_cols;
    double *v; /* n_rows x n_cols; empty field = NaN */
} csv_t;

/* Reads a fixture CSV (header line, then numbers; empty = NaN). 0 or -1. */
static int csv_read(const char *path, csv_t *c)
{
    char *data = NULL;
    size_t len = 0, cap = 0;
    mdl_err_t err;

    memset(c, 0, sizeof *c);
    if (mdl_file_read(path, 1 << 26, &data, &len, NULL, &err) < 0) {
        fprintf(stderr, "  %s\n", err.msg);
        return -1;
    }
    char *p = data, *end = data + len;
    char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl)
        goto bad;
    c->n_cols = 1;
    for (char *q = p; q < nl; q++)
        c->n_cols += *q == ',';
    p = nl + 1;
    while (p < end) {
        nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            nl = end;
        if (nl == p) {
            p++;
            continue;
        }
        if ((c->n_rows + 1) * c->n_cols > cap) {
            cap = cap ? 2 * cap : 1024;
            while (cap < (c->n_rows + 1) * c->n_cols)
                cap *= 2;
            double *nv = realloc(c->v, cap * sizeof *nv);
            if (!nv)
                goto bad;
            c->v = nv;
        }
        double *row = c->v + c->n_rows * c->n_cols;
        size_t col = 0;
        char *q = p;
        for (;;) {
            char *comma = memchr(q, ',', (size_t)(nl - q));
            char *fe = comma ? comma : nl;
            if (col >= c->n_cols)
                goto bad;
            if (fe == q) {
                row[col] = NAN;
            } else {
                char buf[64], *e;
                if ((size_t)(fe - q) >= sizeof buf)
                    goto bad;
                memcpy(buf, q, (size_t)(fe - q));
                buf[fe - q] = '\0';
                row[col] = strtod(buf, &e);
                if (*e)
                    goto bad;
            }
            col++;
            if (!comma)
                break;
            q = comma + 1;
        }
        if (col != c->n_cols)
            goto bad;
        c->n_rows++;
        p = nl + 1;
    }
    free(data);
    return 0;
bad:
    fprintf(stderr, "  %s: not the CSV we expect\n", path);
    free(data);
    free(c->v);
    c->v = NULL;
    return -1;
}

static char *read_text(const char *path, size_t *len)
{
    char *data = NULL;
    mdl_err_t err;

    if (mdl_file_read(path, 1 << 28, &data, len, NULL, &err) < 0) {
        fprintf(stderr, "  %s (run the unit tests from the repository root, with shared/ "
                        "beside it)\n", err.msg);
        return NULL;
    }
    return data;
}

/* ---- golden fixtures ------------------------------------------------------------------- */

static double tol(double e)
{
    return 1e-6 * (fabs(e) > 1 ? fabs(e) : 1);
}

/* Compares `got` (n_rows x width) with the CSV; returns the number of values that are not
 * bit-identical, fails the test for any beyond the tolerance. */
static size_t compare(const char *name, const char *what, const double *got, const csv_t *want,
                      size_t width)
{
    size_t inexact = 0, bad = 0;
    double worst = 0;

    CHECK_EQ_INT(want->n_cols, width);
    if (want->n_cols != width)
        return SIZE_MAX;
    for (size_t i = 0; i < want->n_rows * width; i++) {
        double g = got[i], e = want->v[i];
        if (memcmp(&g, &e, sizeof g) != 0)
            inexact++;
        double d = fabs(g - e) / (fabs(e) > 1 ? fabs(e) : 1);
        if (d > worst || isnan(d))
            worst = d;
        if (!(fabs(g - e) <= tol(e))) {
            if (bad++ < 5)
                CHECK_FAIL_("%s %s: row %zu col %zu: got %.17g, expected %.17g", name, what,
                            i / width, i % width, g, e);
        }
    }
    if (bad)
        CHECK_FAIL_("%s %s: %zu of %zu values off", name, what, bad, want->n_rows * width);
    printf("  %-10s %-6s %4zu rows: %zu of %zu values bit-exact (max rel. diff %.3g)\n", name,
           what, want->n_rows, want->n_rows * width - inexact, want->n_rows * width, worst);
    return inexact;
}

static bool exists(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f)
        fclose(f);
    return f != NULL;
}

/* Scores `in` with output `kind` and compares with the CSV at path (if there is one).
 * Returns the number of values that are not bit-exact. */
static size_t check_output(const char *name, const char *what, const mdl_forest_t *f,
                           const csv_t *in, mdl_output_t kind, const char *path)
{
    csv_t want;
    mdl_err_t err;
    size_t inexact;

    if (!exists(path))
        return 0;
    if (csv_read(path, &want) < 0) {
        CHECK_FAIL_("%s: cannot read %s", name, path);
        return SIZE_MAX;
    }
    CHECK_EQ_INT(want.n_rows, in->n_rows);
    size_t w = mdl_forest_output_width(f, kind);
    double *out = calloc(in->n_rows * w + 1, sizeof *out);
    CHECK_EQ_INT(mdl_forest_score(f, in->v, in->n_rows, kind, out, &err), 0);
    inexact = want.n_rows == in->n_rows ? compare(name, what, out, &want, w) : SIZE_MAX;
    free(out);
    free(want.v);
    return inexact;
}

/* Loads the fixture in folder dir (model.txt, input.csv, expected_margin.csv and, where
 * present, expected_pred.csv and expected_leaf.csv) and checks every output. Returns the
 * number of values that are not bit-exact. */
static size_t run_fixture_dir(const char *dir, const char *name)
{
    char path[512];
    char *text;
    size_t len, inexact = 0;
    mdl_forest_t *f = NULL;
    mdl_err_t err;
    csv_t in;

    snprintf(path, sizeof path, "%s/model.txt", dir);
    if (!(text = read_text(path, &len))) {
        CHECK_FAIL_("fixture %s missing", name);
        return SIZE_MAX;
    }
    int r = load(text, len, &f, &err);
    free(text);
    if (r < 0) {
        CHECK_FAIL_("%s: load failed: %s", name, err.msg);
        return SIZE_MAX;
    }
    snprintf(path, sizeof path, "%s/input.csv", dir);
    if (csv_read(path, &in) < 0) {
        CHECK_FAIL_("%s: cannot read %s", name, path);
        mdl_forest_free(f);
        return SIZE_MAX;
    }
    CHECK_EQ_INT(mdl_forest_info(f)->n_features, in.n_cols);
    if (mdl_forest_info(f)->n_features == in.n_cols) {
        snprintf(path, sizeof path, "%s/expected_margin.csv", dir);
        CHECK(exists(path));
        inexact += check_output(name, "margin", f, &in, MDL_OUTPUT_MARGIN, path);
        snprintf(path, sizeof path, "%s/expected_pred.csv", dir);
        inexact += check_output(name, "pred", f, &in, MDL_OUTPUT_VALUE, path);
        snprintf(path, sizeof path, "%s/expected_leaf.csv", dir);
        inexact += check_output(name, "leaf", f, &in, MDL_OUTPUT_LEAF, path);
    }
    free(in.v);
    mdl_forest_free(f);
    return inexact;
}

static size_t run_fixture(const char *name)
{
    char dir[256];

    snprintf(dir, sizeof dir, FIXTURES "/%s", name);
    return run_fixture_dir(dir, name);
}

/* LightGBM outputs are doubles computed the way we compute them: expect every bit. */
static void test_fixture_binary(void)
{
    CHECK_EQ_INT(run_fixture("lgb_binary"), 0);
}

static void test_fixture_cat(void)
{
    CHECK_EQ_INT(run_fixture("lgb_cat"), 0);
}

static void test_fixture_multi(void)
{
    CHECK_EQ_INT(run_fixture("lgb_multi"), 0);
}

static void test_fixture_rank(void)
{
    CHECK_EQ_INT(run_fixture("lgb_rank"), 0);
}

static void test_fixture_reg(void)
{
    CHECK_EQ_INT(run_fixture("lgb_reg"), 0);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Our own LightGBM fixtures (tools/gen_lgb_fixtures.cpp, LightGBM v4.6.0 built from
 * source): linear trees, rf, poisson, gamma, sqrt, one-vs-all, missing types Zero and None,
 * cross-entropy, wide categorical bitsets, constant trees; rows on split thresholds and
 * their neighbours, and around LightGBM's zero threshold. */
static void test_own_fixtures(void)
{
    struct dirent **ents;
    int n = scandir(OWN_FIXTURES, &ents, NULL, by_name), cases = 0;

    if (n < 0) {
        CHECK_FAIL_("%s", "no " OWN_FIXTURES " (run from the repository root)");
        return;
    }
    for (int i = 0; i < n; i++) {
        char dir[512], model[600];
        snprintf(dir, sizeof dir, OWN_FIXTURES "/%s", ents[i]->d_name);
        snprintf(model, sizeof model, "%s/model.txt", dir);
        if (ents[i]->d_name[0] != '.' && exists(model)) {
            cases++;
            CHECK_EQ_INT(run_fixture_dir(dir, ents[i]->d_name), 0);
        }
        free(ents[i]);
    }
    free(ents);
    CHECK(cases >= 10);
}

/* Metadata of a fixture: task, classes, names, objective text. */
static void test_fixture_info(void)
{
    char *text;
    size_t len;
    mdl_forest_t *f;
    mdl_err_t err;

    if (!(text = read_text(FIXTURES "/lgb_multi/model.txt", &len))) {
        CHECK_FAIL_("%s", "fixture lgb_multi missing");
        return;
    }
    CHECK_EQ_INT(load(text, len, &f, &err), 0);
    free(text);
    if (!f)
        return;
    const mdl_forest_info_t *info = mdl_forest_info(f);
    CHECK_EQ_INT(info->flavor, MDL_FOREST_LIGHTGBM);
    CHECK_EQ_INT(info->task, MDL_TASK_MULTICLASS);
    CHECK_EQ_INT(info->n_outputs, 3);
    CHECK_EQ_INT(info->n_classes, 3);
    CHECK_EQ_INT(info->n_trees, 90);
    CHECK_EQ_INT(info->n_features, 10);
    CHECK_EQ_STR(info->feature_names[0], "f0");
    CHECK_EQ_STR(info->feature_names[9], "f9");
    CHECK_EQ_INT(info->transform, MDL_TRANSFORM_SOFTMAX);
    CHECK_EQ_STR(info->objective, "multiclass num_class:3");
    mdl_forest_free(f);
}

/* ---- hand-written models ------------------------------------------------------------------ */

/* Assembles a v4 model from a header tail (objective and anything after it, each line
 * ending in \n) and tree bodies (the lines after "Tree=i", each ending in \n), computing
 * tree_sizes like LightGBM does. n_feat features f0..; returns a malloc'd string. */
static char *model_text(int n_class, int n_feat, const char *objective_lines,
                        const char *const *trees, size_t n_trees, bool with_sizes)
{
    size_t cap = 4096;
    for (size_t i = 0; i < n_trees; i++)
        cap += strlen(trees[i]) + 64;
    char *s = malloc(cap), *p = s;
    p += sprintf(p, "tree\nversion=v4\nnum_class=%d\nnum_tree_per_iteration=%d\nlabel_index=0\n"
                    "max_feature_idx=%d\n%s", n_class, n_class, n_feat - 1, objective_lines);
    p += sprintf(p, "feature_names=");
    for (int i = 0; i < n_feat; i++)
        p += sprintf(p, "%sf%d", i ? " " : "", i);
    p += sprintf(p, "\nfeature_infos=");
    for (int i = 0; i < n_feat; i++)
        p += sprintf(p, "%s[-10:10]", i ? " " : "");
    p += sprintf(p, "\n");
    if (with_sizes) {
        p += sprintf(p, "tree_sizes=");
        for (size_t i = 0; i < n_trees; i++) {
            char head[32];
            /* "Tree=i\n" + body + "\n\n" (LightGBM: the tree ends in a blank line, then one
             * more newline) */
            size_t n = (size_t)sprintf(head, "Tree=%zu\n", i) + strlen(trees[i]) + 2;
            p += sprintf(p, "%s%zu", i ? " " : "", n);
        }
        p += sprintf(p, "\n");
    }
    p += sprintf(p, "\n");
    for (size_t i = 0; i < n_trees; i++)
        p += sprintf(p, "Tree=%zu\n%s\n\n", i, trees[i]);
    p += sprintf(p, "end of trees\n\nfeature_importances:\nf0=1\n\nparameters:\n[boosting: gbdt]\n"
                    "end of parameters\n\npandas_categorical:null\n");
    return s;
}

static double score1(const mdl_forest_t *f, mdl_output_t kind, const double *row)
{
    double out[8] = {0};
    mdl_err_t err;

    CHECK_EQ_INT(mdl_forest_score(f, row, 1, kind, out, &err), 0);
    return out[0];
}

/* node 0: f0 <= 0.5 ? node 1 : leaf 2;  node 1: f1 <= 1.5 ? leaf 0 : leaf 1.
 * decision types given per test; leaf values 1, 2, 4. */
#define TREE3(dt0, dt1)                                                                            \
    "num_leaves=3\nnum_cat=0\nsplit_feature=0 1\nsplit_gain=1 1\nthreshold=0.5 1.5\n"            \
    "decision_type=" dt0 " " dt1 "\nleft_child=1 -1\nright_child=-3 -2\nleaf_value=1 2 4\n"      \
    "leaf_weight=1 1 1\nleaf_count=1 1 1\ninternal_value=0 0\ninternal_weight=0 0\n"             \
    "internal_count=3 2\nis_linear=0\nshrinkage=1\n"

/* Missing types: None (NaN read as 0), Zero (|x| <= 1e-35f or NaN -> default), NaN. */
static void test_missing_types(void)
{
    const char *none_tree[] = {TREE3("0", "2")};   /* node 0 None; node 1 None, default left */
    const char *zero_tree[] = {TREE3("4", "6")};   /* node 0 Zero default right; node 1 Zero left */
    const char *nan_tree[] = {TREE3("8", "10")};   /* node 0 NaN default right; node 1 NaN left */
    mdl_forest_t *f;
    mdl_err_t err;
    char *s;

    s = model_text(1, 2, "objective=regression\n", none_tree, 1, true);
    CHECK_EQ_INT(load_str(s, &f, &err), 0);
    free(s);
    if (f) {
        CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){0.5, 1.5}), 1);
        CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){0.50000000000000011, 0}), 4);
        CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){NAN, 2}), 2); /* NaN -> 0 <= 0.5 */
        CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){NAN, NAN}), 1);
        CHECK_EQ_INT(score1(f, MDL_OUTPUT_LEAF, (double[]){NAN, NAN}), 0);
        CHECK_EQ_INT(score1(f, MDL_OUTPUT_LEAF, (double[]){9, 0}), 2);
        mdl_forest_free(f);
    }
    s = model_text(1, 2, "objective=regression\n", zero_tree, 1, true);
    CHECK_EQ_INT(load_str(s, &f, &err), 0);
    free(s);
    if (f) {
        CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){0, 0}), 4);       /* zero -> right */
        CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){-0.0, 0}), 4);
        CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){1e-36, 0}), 4);
        CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){NAN, 0}), 4);     /* NaN is zero */
        CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){1e-30, 0}), 1);   /* default left */
        CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){0.25, NAN}), 1);
        CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){0.25, 1.0}), 1);
        CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){0.25, 1.75}), 2);
        /* 1e-35f as a double is the edge of zero; its successor is not zero */
        CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){0.25, (double)1e-35f}), 1);
        CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){(double)-1e-35f, 0}), 4);
        CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN,
                            (double[]){nextafter((double)-1e-35f, -1), 0}), 1);
        mdl_forest_free(f);
    }
    s = model_text(1, 2, "objective=regression\n", nan_tree, 1, true);
    CHECK_EQ_INT(load_str(s, &f, &err), 0);
    free(s);
    if (f) {
        CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){NAN, 0}), 4);     /* default right */
        CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){0, NAN}), 1);     /* default left */
        CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){0, 3}), 2);
        CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){-INFINITY, INFINITY}), 2);
        CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){INFINITY, 0}), 4);
        mdl_forest_free(f);
    }
}

/* Categorical split on f0 with the set {1, 3, 40} (words 0b1010 and bit 8 of word 1), then
 * numeric f1. Leaf 0 (in set) = 1, leaf 1 = 2, leaf 2 = 4. */
static void test_categorical(void)
{
    const char *tree[] = {
        "num_leaves=3\nnum_cat=1\nsplit_feature=0 1\nsplit_gain=1 1\nthreshold=0 1.5\n"
        "decision_type=9 2\nleft_child=-1 -2\nright_child=1 -3\nleaf_value=1 2 4\n"
        "leaf_weight=1 1 1\nleaf_count=1 1 1\ninternal_value=0 0\ninternal_weight=0 0\n"
        "internal_count=3 2\ncat_boundaries=0 2\ncat_threshold=10 256\nis_linear=0\nshrinkage=1\n"};
    mdl_forest_t *f;
    mdl_err_t err;
    char *s = model_text(1, 2, "objective=regression\n", tree, 1, true);

    CHECK_EQ_INT(load_str(s, &f, &err), 0);
    free(s);
    if (!f) {
        fprintf(stderr, "  %s\n", err.msg);
        return;
    }
    CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){1, 0}), 1);
    CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){3, 0}), 1);
    CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){40, 0}), 1);
    CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){3.7, 0}), 1);    /* (int)3.7 = 3 */
    CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){2, 0}), 2);      /* not in set */
    CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){0, 9}), 4);
    CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){-0.5, 0}), 2);   /* (int)-0.5 = 0 */
    CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){-1, 0}), 2);     /* negative: right */
    CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){NAN, 0}), 2);    /* NaN: right */
    CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){64, 0}), 2);     /* past the bitset */
    CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){1e300, 0}), 2);
    CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){INFINITY, 0}), 2);
    CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){-INFINITY, 0}), 2);
    mdl_forest_free(f);
}

/* Linear leaves: leaf 0 = 0.5 + 2*f1 - 1*f0, leaf 1 = -1 (no terms); leaf_value used when
 * a term's input is NaN. A single-leaf linear tree adds 0.25 + 0.5*f1. */
static void test_linear(void)
{
    const char *trees[] = {
        "num_leaves=2\nnum_cat=0\nsplit_feature=0\nsplit_gain=1\nthreshold=0\n"
        "decision_type=2\nleft_child=-1\nright_child=-2\nleaf_value=10 20\n"
        "leaf_weight=1 1\nleaf_count=1 1\ninternal_value=0\ninternal_weight=0\n"
        "internal_count=2\nis_linear=1\nleaf_const=0.5 -1\nnum_features=2 0\n"
        "leaf_features=1 0  \nleaf_coeff=2 -1  \nshrinkage=1\n",
        "num_leaves=1\nnum_cat=0\nsplit_feature=\nsplit_gain=\nthreshold=\ndecision_type=\n"
        "left_child=\nright_child=\nleaf_value=7\nleaf_weight=1\nleaf_count=1\n"
        "internal_value=\ninternal_weight=\ninternal_count=\nis_linear=1\nleaf_const=0.25\n"
        "num_features=1\nleaf_features=1 \nleaf_coeff=0.5 \nshrinkage=1\n",
    };
    mdl_forest_t *f;
    mdl_err_t err;
    char *s = model_text(1, 2, "objective=regression\n", trees, 2, true);

    CHECK_EQ_INT(load_str(s, &f, &err), 0);
    free(s);
    if (!f) {
        fprintf(stderr, "  %s\n", err.msg);
        return;
    }
    /* f0 = -1 (left): (0.5 + 2*3 - 1*-1) + (0.25 + 0.5*3) = 7.5 + 1.75 */
    CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){-1, 3}) * 4, 37);
    /* f0 = 2 (right): -1 + (0.25 + 0.5*1) */
    CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){2, 1}) * 4, -1);
    /* f1 NaN: leaf values 10 and 7 */
    CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){-1, NAN}), 17);
    mdl_forest_free(f);
}

/* A constant tree and a split, two rounds of rf (average_output): prediction = sigmoid of
 * the mean; LightGBM's raw score is the sum (PredictRaw does not average). */
static void test_single_leaf_and_average(void)
{
    const char *trees[] = {
        "num_leaves=1\nnum_cat=0\nsplit_feature=\nsplit_gain=\nthreshold=\ndecision_type=\n"
        "left_child=\nright_child=\nleaf_value=0.5\nleaf_weight=1\nleaf_count=1\n"
        "internal_value=\ninternal_weight=\ninternal_count=\nis_linear=0\nshrinkage=1\n",
        TREE3("2", "2"),
    };
    mdl_forest_t *f;
    mdl_err_t err;
    char *s = model_text(1, 2, "objective=binary sigmoid:2\naverage_output\n", trees, 2, true);

    CHECK_EQ_INT(load_str(s, &f, &err), 0);
    free(s);
    if (!f) {
        fprintf(stderr, "  %s\n", err.msg);
        return;
    }
    /* trees: 0.5 + 4 = 4.5; mean 2.25; p = 1 / (1 + exp(-2 * 2.25)) */
    double row[2] = {1, 0};
    CHECK(score1(f, MDL_OUTPUT_VALUE, row) == 1.0 / (1.0 + exp(-2 * 2.25)));
    /* LightGBM's raw score (PredictRaw) is the sum: only Predict averages */
    CHECK(score1(f, MDL_OUTPUT_MARGIN, row) == 4.5);
    CHECK_EQ_INT(score1(f, MDL_OUTPUT_LEAF, row), 0); /* tree 0 has the one leaf 0 */
    mdl_forest_free(f);
}

/* Objectives and their transforms on a one-leaf model with value v. */
static void test_objectives(void)
{
    static const char *leaf =
        "num_leaves=1\nnum_cat=0\nsplit_feature=\nsplit_gain=\nthreshold=\ndecision_type=\n"
        "left_child=\nright_child=\nleaf_value=-1.5\nleaf_weight=1\nleaf_count=1\n"
        "internal_value=\ninternal_weight=\ninternal_count=\nis_linear=0\nshrinkage=1\n";
    static const struct {
        const char *objective;
        double want;
        int task;
    } cases[] = {
        {"objective=regression sqrt\n", -2.25, MDL_TASK_REGRESSION},
        {"objective=regression\n", -1.5, MDL_TASK_REGRESSION},
        {"objective=regression_l1 sqrt\n", -2.25, MDL_TASK_REGRESSION},
        {"objective=huber sqrt\n", -1.5, MDL_TASK_REGRESSION}, /* huber drops sqrt */
        {"objective=poisson\n", 0.22313016014842982, MDL_TASK_REGRESSION},
        {"objective=gamma\n", 0.22313016014842982, MDL_TASK_REGRESSION},
        {"objective=tweedie\n", 0.22313016014842982, MDL_TASK_REGRESSION},
        {"objective=cross_entropy\n", 0.18242552380635635, MDL_TASK_BINARY},
        {"objective=xentropy\n", 0.18242552380635635, MDL_TASK_BINARY},
        {"objective=cross_entropy_lambda\n", 0.2014132779827524, MDL_TASK_REGRESSION},
        {"objective=lambdarank\n", -1.5, MDL_TASK_RANKING},
        {"objective=rank_xendcg\n", -1.5, MDL_TASK_RANKING},
        {"objective=custom\n", -1.5, MDL_TASK_REGRESSION},
        {"", -1.5, MDL_TASK_REGRESSION},
        {"objective=binary sigmoid:0.5\n", 0.320821300824607, MDL_TASK_BINARY},
    };
    const char *trees[] = {leaf};

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mdl_forest_t *f;
        mdl_err_t err;
        char *s = model_text(1, 1, cases[i].objective, trees, 1, true);
        int r = load_str(s, &f, &err);
        free(s);
        if (r < 0) {
            CHECK_FAIL_("%s: %s", cases[i].objective, err.msg);
            continue;
        }
        double v = score1(f, MDL_OUTPUT_VALUE, (double[]){0});
        if (fabs(v - cases[i].want) > 1e-15)
            CHECK_FAIL_("%s: value %.17g, expected %.17g", cases[i].objective, v, cases[i].want);
        CHECK_EQ_INT(mdl_forest_info(f)->task, cases[i].task);
        CHECK(score1(f, MDL_OUTPUT_MARGIN, (double[]){0}) == -1.5);
        mdl_forest_free(f);
    }
}

/* Multiclass softmax and one-vs-all: 2 rounds x 3 classes, tree i -> class i % 3. */
static void test_multiclass(void)
{
    char leaves[6][512];
    const char *trees[6];
    static const double v[6] = {0.5, -1, 2, 0.25, 1, -0.5}; /* class sums 0.75, 0, 1.5 */
    mdl_err_t err;
    mdl_forest_t *f;
    double out[3];

    for (int i = 0; i < 6; i++) {
        snprintf(leaves[i], sizeof leaves[i],
                 "num_leaves=1\nnum_cat=0\nsplit_feature=\nsplit_gain=\nthreshold=\n"
                 "decision_type=\nleft_child=\nright_child=\nleaf_value=%g\nleaf_weight=1\n"
                 "leaf_count=1\ninternal_value=\ninternal_weight=\ninternal_count=\n"
                 "is_linear=0\nshrinkage=1\n", v[i]);
        trees[i] = leaves[i];
    }
    char *s = model_text(3, 1, "objective=multiclass num_class:3\n", trees, 6, true);
    CHECK_EQ_INT(load_str(s, &f, &err), 0);
    free(s);
    if (f) {
        CHECK_EQ_INT(mdl_forest_score(f, (double[]){0}, 1, MDL_OUTPUT_MARGIN, out, &err), 0);
        CHECK(out[0] == 0.75 && out[1] == 0 && out[2] == 1.5);
        CHECK_EQ_INT(mdl_forest_score(f, (double[]){0}, 1, MDL_OUTPUT_VALUE, out, &err), 0);
        double e0 = exp(0.75 - 1.5), e1 = exp(0 - 1.5), e2 = exp(0.0), sum = e0 + e1 + e2;
        CHECK(out[0] == e0 / sum && out[1] == e1 / sum && out[2] == e2 / sum);
        mdl_forest_free(f);
    }
    s = model_text(3, 1, "objective=multiclassova num_class:3 sigmoid:1.5\n", trees, 6, true);
    CHECK_EQ_INT(load_str(s, &f, &err), 0);
    free(s);
    if (f) {
        CHECK_EQ_INT(mdl_forest_score(f, (double[]){0}, 1, MDL_OUTPUT_VALUE, out, &err), 0);
        CHECK(out[0] == 1.0 / (1.0 + exp(-1.5 * 0.75)));
        CHECK(out[1] == 0.5);
        CHECK(out[2] == 1.0 / (1.0 + exp(-1.5 * 1.5)));
        CHECK_EQ_INT(mdl_forest_info(f)->task, MDL_TASK_MULTICLASS);
        mdl_forest_free(f);
    }
}

/* A v3 file without tree_sizes, with CRLF line ends, no parameters section, and header
 * lines modeld does not use (monotone_constraints, an unknown key): ignored like LightGBM
 * ignores them. */
static void test_v3_crlf(void)
{
    const char *trees[] = {TREE3("2", "2")};
    char *s = model_text(1, 2, "objective=regression\nmonotone_constraints=0 0\nfuture_key=1\n",
                         trees, 1, false);
    char *v3 = strstr(s, "version=v4");
    mdl_forest_t *f;
    mdl_err_t err;

    v3[9] = '3';
    *strstr(s, "feature_importances:") = '\0';
    /* LF -> CRLF */
    size_t n = strlen(s), lf = 0;
    for (size_t i = 0; i < n; i++)
        lf += s[i] == '\n';
    char *crlf = malloc(n + lf + 1), *q = crlf;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n')
            *q++ = '\r';
        *q++ = s[i];
    }
    *q = '\0';
    CHECK_EQ_INT(load_str(crlf, &f, &err), 0);
    if (f) {
        CHECK_EQ_INT(score1(f, MDL_OUTPUT_MARGIN, (double[]){0, 2}), 2);
        mdl_forest_free(f);
    } else {
        fprintf(stderr, "  %s\n", err.msg);
    }
    free(crlf);
    free(s);
}

/* ---- corrupt files ----------------------------------------------------------------------- */

/* Replaces the first occurrence of `from` in s with `to`; returns a new string. */
static char *subst(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);
    if (!at)
        return NULL;
    size_t a = (size_t)(at - s), nf = strlen(from), nt = strlen(to), n = strlen(s);
    char *out = malloc(n - nf + nt + 1);
    memcpy(out, s, a);
    memcpy(out + a, to, nt);
    memcpy(out + a + nt, at + nf, n - a - nf + 1);
    return out;
}

static void test_corrupt_table(void)
{
    const char *two[] = {TREE3("2", "8"), TREE3("0", "2")};
    char *good = model_text(1, 2, "objective=binary sigmoid:1\n", two, 2, false);
    static const struct {
        const char *from, *to; /* edit of the good text */
        int code;
        const char *msg;       /* substring of the message */
    } cases[] = {
        {"tree\n", "", -EBADMSG, "not a LightGBM text model"},
        {"version=v4", "version=v9", -EBADMSG, "unsupported version 'v9'"},
        {"num_class=1\n", "", -EBADMSG, "no num_class line"},
        {"num_class=1", "num_class=x", -EBADMSG, "num_class 'x' is not an integer"},
        {"num_tree_per_iteration=1", "num_tree_per_iteration=2", -EBADMSG,
         "num_tree_per_iteration=2 differs from num_class=1"},
        {"max_feature_idx=1", "max_feature_idx=99999999999", -EBADMSG, "max_feature_idx '9999"},
        {"max_feature_idx=1", "max_feature_idx=2", -EBADMSG, "feature_names has 2 names"},
        {"feature_infos=[-10:10] [-10:10]", "feature_infos=[-10:10]", -EBADMSG,
         "feature_infos has 1 entries"},
        {"objective=binary sigmoid:1", "objective=frobnicate", -EBADMSG,
         "unknown objective 'frobnicate'"},
        {"objective=binary sigmoid:1", "objective=binary", -EBADMSG, "lacks sigmoid"},
        {"objective=binary sigmoid:1", "objective=binary sigmoid:-1", -EBADMSG,
         "sigmoid '-1' is not a positive number"},
        {"objective=binary sigmoid:1", "objective=multiclass num_class:3", -EBADMSG,
         "num_class:3 differs from num_class=1"},
        {"label_index=0\n", "label_index=0\nlabel_index=0\n", -EBADMSG, "appears twice"},
        {"Tree=0\n", "Tree=7\n", -EBADMSG, "expected Tree=0"},
        {"num_leaves=3\nnum_cat=0\nsplit_feature=0 1\nsplit_gain=1 1\nthreshold=0.5 1.5\n"
         "decision_type=2 8",
         "num_leaves=4\nnum_cat=0\nsplit_feature=0 1\nsplit_gain=1 1\nthreshold=0.5 1.5\n"
         "decision_type=2 8", -EBADMSG, "leaf_value has 3 values, num_leaves=4 needs 4"},
        {"num_leaves=3", "num_leaves=99999999999", -EBADMSG, "num_leaves '99999999999'"},
        {"num_leaves=3", "num_leaves=0", -EBADMSG, "num_leaves '0'"},
        {"num_leaves=3\n", "", -EBADMSG, "tree 0): no num_leaves line"},
        {"threshold=0.5 1.5", "threshold=0.5", -EBADMSG, "threshold has 1 values"},
        {"threshold=0.5 1.5", "threshold=0.5 1.5 2.5", -EBADMSG, "threshold has 3 values"},
        {"threshold=0.5 1.5", "threshold=abc", -EBADMSG, "threshold has 1 values"},
        {"split_gain=1 1", "split_gain=x 1 1", -EBADMSG, "split_gain has 3 values"},
        {"split_gain=1 1", "split_gain=1 x", -EBADMSG, "split_gain[1] 'x' is not a number"},
        {"threshold=0.5 1.5", "threshold=0.5 abc", -EBADMSG, "threshold[1] 'abc' is not a number"},
        {"threshold=0.5 1.5", "threshold=0.5 0x1p3", -EBADMSG, "is not a number"},
        {"threshold=0.5 1.5", "threshold=0.5 nan", -EBADMSG, "threshold[1] is NaN"},
        {"leaf_value=1 2 4", "leaf_value=1 inf 4", -EBADMSG, "leaf_value[1] 'inf' is not finite"},
        {"split_feature=0 1", "split_feature=0 2", -EBADMSG, "split_feature[1] '2' is not an integer in 0..1"},
        {"left_child=1 -1", "left_child=5 -1", -EBADMSG, "left_child[0] '5' is not an integer"},
        {"right_child=-3 -2", "right_child=-3 -9", -EBADMSG, "right_child[1] '-9'"},
        {"left_child=1 -1", "left_child=1 1", -EBADMSG, "cycle"},
        {"left_child=1 -1", "left_child=1 0", -EBADMSG, "the root cannot be a child"},
        {"left_child=1 -1\nright_child=-3 -2", "left_child=1 -1\nright_child=-3 -1", -EBADMSG,
         "reached twice"},
        {"left_child=1 -1\nright_child=-3 -2", "left_child=-2 -1\nright_child=-3 -2", -EBADMSG,
         "internal node 1 is not reached from the root"},
        {"decision_type=2 8", "decision_type=2 12", -EBADMSG, "decision_type[1] = 12"},
        {"decision_type=2 8", "decision_type=2 1", -EBADMSG, "categorical split is not a category"},
        {"decision_type=2 8", "decision_type=2 300", -EBADMSG, "decision_type[1] '300'"},
        {"leaf_count=1 1 1", "leaf_count=1 1", -EBADMSG, "leaf_count has 2 values"},
        {"internal_count=3 2", "internal_count=3", -EBADMSG, "internal_count has 1 values"},
        {"internal_count=3 2", "internal_count=3 x", -EBADMSG,
         "internal_count[1] 'x' is not an integer in 0..4294967295"},
        {"internal_count=3 2", "internal_count=3 -2", -EBADMSG,
         "internal_count[1] '-2' is not an integer"},
        {"internal_count=3 2", "internal_count=3 2.5", -EBADMSG,
         "internal_count[1] '2.5' is not an integer"},
        {"num_cat=0", "num_cat=5", -EBADMSG, "num_cat '5' is not an integer in 0..2"},
        {"is_linear=0", "is_linear=1", -EBADMSG, "no leaf_const line"},
        {"is_linear=0", "is_linear=2", -EBADMSG, "is_linear '2'"},
        {"shrinkage=1\n", "shrinkage=1\nbroken line\n", -EBADMSG, "'broken line' is not key=value"},
        {"end of trees\n", "", -EBADMSG, "expected Tree=2 or 'end of trees'"},
        {"\nend of trees\n", "\nTree=2\n\nend of trees\n", -EBADMSG, "no num_leaves"},
        {"end of parameters\n", "", -EBADMSG, "no 'end of parameters'"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *bad = subst(good, cases[i].from, cases[i].to);
        mdl_forest_t *f = NULL;
        mdl_err_t err;
        if (!bad) {
            CHECK_FAIL_("case %zu: '%s' not in the model", i, cases[i].from);
            continue;
        }
        int r = load_str(bad, &f, &err);
        if (r != cases[i].code || !strstr(err.msg, cases[i].msg))
            CHECK_FAIL_("case %zu: got %d \"%s\", expected %d \"...%s...\"", i, r, err.msg,
                        cases[i].code, cases[i].msg);
        CHECK(f == NULL);
        mdl_forest_free(f);
        free(bad);
    }
    /* the untouched text loads */
    mdl_forest_t *f;
    mdl_err_t err;
    CHECK_EQ_INT(load_str(good, &f, &err), 0);
    mdl_forest_free(f);
    free(good);
}

/* Structural corruption the text edits above cannot reach. */
static void test_corrupt_misc(void)
{
    const char *one[] = {TREE3("2", "8")};
    mdl_forest_t *f;
    mdl_err_t err;

    CHECK_EQ_INT(load("", 0, &f, &err), -EBADMSG);
    CHECK_MSG(err, "empty file");
    CHECK_EQ_INT(load("tree\nver\0sion=v4\n", 17, &f, &err), -EBADMSG);
    CHECK_MSG(err, "NUL byte");
    CHECK_EQ_INT(load_str("tree\nversion=v4\n", &f, &err), -EBADMSG);
    CHECK_MSG(err, "ends in the header");
    CHECK_EQ_INT(load_str("{\"learner\": {}}", &f, &err), -EBADMSG);
    CHECK_MSG(err, "not a LightGBM text model");

    /* no trees at all */
    char *s = model_text(1, 2, "objective=regression\n", one, 0, true);
    CHECK_EQ_INT(load_str(s, &f, &err), -EBADMSG);
    CHECK_MSG(err, "no trees");
    free(s);

    /* 2 classes but 3 trees */
    const char *three[] = {TREE3("2", "8"), TREE3("2", "8"), TREE3("2", "8")};
    s = model_text(2, 2, "objective=multiclass num_class:2\n", three, 3, true);
    CHECK_EQ_INT(load_str(s, &f, &err), -EBADMSG);
    CHECK_MSG(err, "not a whole number of rounds");
    free(s);

    /* tree_sizes that do not match the blocks */
    s = model_text(1, 2, "objective=regression\n", three, 3, true);
    char *bad = subst(s, "tree_sizes=", "tree_sizes=1");
    CHECK_EQ_INT(load_str(bad, &f, &err), -EBADMSG);
    CHECK_MSG(err, "tree_sizes[0] '1");
    free(bad);
    /* first size one byte short: tree 1 is not where tree_sizes puts it */
    char *first = strstr(s, "tree_sizes=") + strlen("tree_sizes="), *end;
    long size0 = strtol(first, &end, 10);
    char from[64], to[64];
    snprintf(from, sizeof from, "tree_sizes=%.*s", (int)(end - first), first);
    snprintf(to, sizeof to, "tree_sizes=%ld", size0 - 1);
    bad = subst(s, from, to);
    CHECK_EQ_INT(load_str(bad, &f, &err), -EBADMSG);
    CHECK_MSG(err, "tree_sizes says");
    free(bad);
    char *sz = strstr(s, "tree_sizes="), *nl = strchr(sz, '\n'), *last = nl;
    while (last[-1] != ' ')
        last--;
    memmove(last - 1, nl, strlen(nl) + 1); /* drop the last size */
    CHECK_EQ_INT(load_str(s, &f, &err), -EBADMSG);
    CHECK_MSG(err, "tree_sizes lists only 2 trees");
    free(s);

    /* a huge declared tree_sizes count is bounded by the text, a huge num_cat by num_leaves */
    s = model_text(1, 2, "objective=regression\n", one, 1, true);
    bad = subst(s, "tree_sizes=", "tree_sizes=99999999999999999999 ");
    CHECK_EQ_INT(load_str(bad, &f, &err), -EBADMSG);
    CHECK_MSG(err, "tree_sizes[0]");
    free(bad);
    free(s);

    /* cat_boundaries declaring more bitset words than there are */
    const char *cat[] = {
        "num_leaves=2\nnum_cat=1\nsplit_feature=0\nsplit_gain=1\nthreshold=0\n"
        "decision_type=1\nleft_child=-1\nright_child=-2\nleaf_value=1 2\n"
        "cat_boundaries=0 4000000000\ncat_threshold=1\nis_linear=0\nshrinkage=1\n"};
    s = model_text(1, 2, "objective=regression\n", cat, 1, true);
    CHECK_EQ_INT(load_str(s, &f, &err), -E2BIG);
    CHECK_MSG(err, "bitset words");
    free(s);
    const char *cat2[] = {
        "num_leaves=2\nnum_cat=1\nsplit_feature=0\nsplit_gain=1\nthreshold=0\n"
        "decision_type=1\nleft_child=-1\nright_child=-2\nleaf_value=1 2\n"
        "cat_boundaries=0 3\ncat_threshold=1 2\nis_linear=0\nshrinkage=1\n"};
    s = model_text(1, 2, "objective=regression\n", cat2, 1, true);
    CHECK_EQ_INT(load_str(s, &f, &err), -EBADMSG);
    CHECK_MSG(err, "cat_threshold has 2 values, cat_boundaries[1]=3 needs 3");
    free(s);

    /* linear terms that do not add up */
    const char *lin[] = {
        "num_leaves=2\nnum_cat=0\nsplit_feature=0\nsplit_gain=1\nthreshold=0\n"
        "decision_type=2\nleft_child=-1\nright_child=-2\nleaf_value=1 2\n"
        "is_linear=1\nleaf_const=0 0\nnum_features=2 1\nleaf_features=0 1 \n"
        "leaf_coeff=1 1 1\nshrinkage=1\n"};
    s = model_text(1, 2, "objective=regression\n", lin, 1, true);
    CHECK_EQ_INT(load_str(s, &f, &err), -EBADMSG);
    CHECK_MSG(err, "leaf_features has 2 values, the sum of num_features (3) needs 3");
    free(s);
}

/* The lgb_binary fixture cut at several points: each cut is reported, none crashes. */
static void test_truncated_fixture(void)
{
    char *text;
    size_t len;

    if (!(text = read_text(FIXTURES "/lgb_binary/model.txt", &len))) {
        CHECK_FAIL_("%s", "fixture lgb_binary missing");
        return;
    }
    const char *tree3 = strstr(text, "Tree=3\n"), *eot = strstr(text, "end of trees");
    const char *params = strstr(text, "[learning_rate");
    struct {
        size_t at;
        const char *msg;
    } cuts[] = {
        {3, "not a LightGBM text model"},
        {60, "ends in the header"},
        {(size_t)(strstr(text, "feature_infos=") - text) + 40, "ends in the header"},
        {(size_t)(tree3 - text), "without 'end of trees'"},
        {(size_t)(tree3 - text) + 200, "(tree 3): no leaf_value line"},
        {(size_t)(eot - text), "without 'end of trees'"},
        {(size_t)(eot - text) + 5, "expected Tree=50 or 'end of trees'"},
        {(size_t)(params - text), "no 'end of parameters'"},
    };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        mdl_forest_t *f = NULL;
        mdl_err_t err;
        int r = load(text, cuts[i].at, &f, &err);
        if (r != -EBADMSG || !strstr(err.msg, cuts[i].msg))
            CHECK_FAIL_("cut at %zu: got %d \"%s\", expected \"...%s...\"", cuts[i].at, r,
                        err.msg, cuts[i].msg);
        mdl_forest_free(f);
    }
    /* every cut inside the trees fails cleanly (a cut at a line end in the
     * parameters section is the only kind that may still load) */
    size_t step = len / 97 + 1, fails = 0, tries = 0;
    for (size_t at = 0; at < (size_t)(eot - text); at += step) {
        mdl_forest_t *f = NULL;
        mdl_err_t err;
        tries++;
        if (load(text, at, &f, &err) == -EBADMSG)
            fails++;
        mdl_forest_free(f);
    }
    CHECK_EQ_INT(fails, tries);
    free(text);
}

/* ---- the binned layout (forest_bin.c) against a plain walk with LightGBM's rules ---- */

static uint64_t rnd_state = 7;
static uint32_t rnd(uint32_t n)
{
    rnd_state = rnd_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rnd_state >> 33) % n;
}

#define KZ ((double)1e-35f)

/* Thresholds: infinities, zeros, the edges of LightGBM's zero band and their neighbours. */
static double rnd_threshold(void)
{
    static const double pool[] = {-INFINITY, -2.5, -1.0, -KZ, -1e-300, -0.0, 0.0, 1e-300, KZ,
                                  0.75, 1.0, 3.0, INFINITY};
    double t = pool[rnd(sizeof pool / sizeof pool[0])];

    if (rnd(4) == 0 && isfinite(t))
        t = nextafter(t, rnd(2) ? INFINITY : -INFINITY);
    return t;
}

/* Inputs: the thresholds and their neighbours, NaN, +-inf, -0.0, tiny values. */
static double rnd_input(void)
{
    double x;

    switch (rnd(6)) {
    case 0:
        return NAN;
    case 1:
        return (double)(int)(rnd(4001) - 2000) / 1000.0; /* feature 2's grid */
    default:
        x = rnd_threshold();
        if (rnd(3) == 0)
            x = nextafter(x, rnd(2) ? INFINITY : -INFINITY);
        return x;
    }
}

/* A random LightGBM subtree of depth <= d at nodes[*n]; feature 2 splits on a grid of
 * thousands of values (many bins in one column). */
static int32_t lgb_subtree(mdl_forest_node_in_t *nodes, int32_t *n, int d)
{
    int32_t i = (*n)++;

    if (d == 0 || rnd(5) == 0) {
        nodes[i] = (mdl_forest_node_in_t){.type = MDL_NODE_LEAF, .id = i,
                                          .value = (double)(int)(rnd(20001) - 10000) / 1024.0};
        return i;
    }
    nodes[i] = (mdl_forest_node_in_t){.type = MDL_NODE_NUMERIC, .feature = rnd(4),
                                      .missing = (uint8_t)rnd(3), .default_left = rnd(2),
                                      .count = rnd(100)};
    nodes[i].threshold = nodes[i].feature == 2 ? (double)(int)(rnd(4001) - 2000) / 1000.0
                                               : rnd_threshold();
    nodes[i].left = lgb_subtree(nodes, n, d - 1);
    nodes[i].right = lgb_subtree(nodes, n, d - 1);
    return i;
}

/* LightGBM's Tree::NumericalDecision, written out independently of the scorer. */
static int32_t lgb_ref_leaf(const mdl_forest_node_in_t *nodes, const double *row)
{
    int32_t i = 0;

    while (nodes[i].type != MDL_NODE_LEAF) {
        const mdl_forest_node_in_t *nd = &nodes[i];
        double x = row[nd->feature];
        bool left;
        if (isnan(x) && nd->missing != MDL_MISSING_NAN)
            x = 0.0;
        if ((nd->missing == MDL_MISSING_ZERO && x >= -KZ && x <= KZ) ||
            (nd->missing == MDL_MISSING_NAN && isnan(x)))
            left = nd->default_left;
        else
            left = x <= nd->threshold;
        i = left ? nd->left : nd->right;
    }
    return i;
}

enum { LT_TREES = 60, LT_NODES = 256, LT_ROWS = 700, LT_F = 4, LT_OUT = 2 }; /* depth 7: <= 255 nodes */

/* Scores rows in every batch size around the scorer's block edges and with threads: each
 * margin must equal the reference sum (trees in order, in double) bit for bit, and the
 * leaf output the reference leaf. */
static void check_lgb_forest(const mdl_forest_t *f, mdl_forest_node_in_t (*nodes)[LT_NODES],
                             size_t n_trees, const double *rows, size_t n_rows)
{
    static const size_t batches[] = {1, 2, 15, 16, 23, 24, 25, 31, 255, 256, 257, 700};
    static double out[LT_ROWS * LT_OUT], out3[LT_ROWS * LT_OUT], ref[LT_ROWS * LT_OUT];
    static double leaf[LT_ROWS * LT_TREES];
    size_t bad = 0, bad_leaf = 0;
    mdl_err_t err;

    for (size_t r = 0; r < n_rows; r++) {
        ref[r * LT_OUT] = ref[r * LT_OUT + 1] = 0.0;
        for (size_t t = 0; t < n_trees; t++)
            ref[r * LT_OUT + t % LT_OUT] += nodes[t][lgb_ref_leaf(nodes[t], rows + r * LT_F)].value;
    }
    for (size_t bi = 0; bi < sizeof batches / sizeof batches[0]; bi++) {
        size_t bs = batches[bi];
        for (size_t r0 = 0; r0 < n_rows; r0 += bs) {
            size_t nb = n_rows - r0 < bs ? n_rows - r0 : bs;
            CHECK_EQ_INT(mdl_forest_score(f, rows + r0 * LT_F, nb, MDL_OUTPUT_MARGIN,
                                          out + r0 * LT_OUT, &err), 0);
        }
        for (size_t i = 0; i < n_rows * LT_OUT; i++)
            bad += memcmp(&out[i], &ref[i], sizeof out[i]) != 0;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(mdl_forest_score(f, rows, n_rows, MDL_OUTPUT_VALUE, out, &err), 0);
    CHECK_EQ_INT(mdl_forest_score_threads(f, rows, n_rows, MDL_OUTPUT_VALUE, out3, 2, &err), 0);
    CHECK(memcmp(out, ref, n_rows * LT_OUT * sizeof *out) == 0);
    CHECK(memcmp(out3, ref, n_rows * LT_OUT * sizeof *out) == 0);
    CHECK_EQ_INT(mdl_forest_score(f, rows, n_rows, MDL_OUTPUT_LEAF, leaf, &err), 0);
    for (size_t r = 0; r < n_rows; r++)
        for (size_t t = 0; t < n_trees; t++)
            bad_leaf += leaf[r * n_trees + t] != (double)lgb_ref_leaf(nodes[t], rows + r * LT_F);
    CHECK_EQ_INT(bad_leaf, 0);
}

static mdl_forest_t *build_lgb(mdl_forest_node_in_t (*nodes)[LT_NODES], const int32_t *n_nodes,
                               size_t n_trees)
{
    mdl_forest_params_t p = {.flavor = MDL_FOREST_LIGHTGBM, .task = MDL_TASK_REGRESSION,
                             .n_features = LT_F, .n_outputs = LT_OUT};
    mdl_forest_builder_t *b;
    mdl_forest_t *f = NULL;
    mdl_err_t err;

    CHECK_EQ_INT(mdl_forest_builder_new(&p, &b, &err), 0);
    for (size_t t = 0; t < n_trees; t++) {
        mdl_forest_tree_in_t tr = {.n_nodes = (size_t)n_nodes[t], .nodes = nodes[t],
                                   .group = (uint32_t)(t % LT_OUT), .weight = 1.0};
        if (mdl_forest_builder_add_tree(b, &tr, &err) < 0) {
            CHECK_FAIL_("tree %zu: %s", t, err.msg);
            mdl_forest_builder_free(b);
            return NULL;
        }
    }
    CHECK_EQ_INT(mdl_forest_builder_finish(b, &f, &err), 0);
    return f;
}

/* Random trees (every missing type with both default sides, thresholds at +-inf, +-0 and
 * +-1e-35f and their neighbours, one feature with thousands of bins), single-leaf trees
 * and deep unbalanced chains (depth 60, leaves on alternating sides); random training
 * counts, so the path order puts left and right subtrees first. */
static void test_binned_layout(void)
{
    static mdl_forest_node_in_t nodes[LT_TREES][LT_NODES];
    static double rows[LT_ROWS * LT_F];
    int32_t n_nodes[LT_TREES];
    mdl_forest_t *f;

    for (size_t t = 0; t < LT_TREES; t++) {
        int32_t n = 0;
        if (t % 10 == 3) { /* single leaf */
            nodes[t][0] = (mdl_forest_node_in_t){.type = MDL_NODE_LEAF, .value = -0.5 - t};
            n = 1;
        } else if (t % 10 == 7) { /* chain: split k at node 2k, its leaf at 2k + 1 */
            for (int32_t k = 0; k < 60; k++) {
                bool leaf_left = k % 2;
                nodes[t][2 * k] = (mdl_forest_node_in_t){
                    .type = MDL_NODE_NUMERIC, .feature = rnd(4), .missing = (uint8_t)rnd(3),
                    .default_left = rnd(2), .threshold = rnd_threshold(), .count = rnd(100),
                    .left = leaf_left ? 2 * k + 1 : 2 * k + 2,
                    .right = leaf_left ? 2 * k + 2 : 2 * k + 1};
                nodes[t][2 * k + 1] = (mdl_forest_node_in_t){.type = MDL_NODE_LEAF, .id = 2 * k + 1,
                                                             .value = k * 0.125 + t};
            }
            nodes[t][120] = (mdl_forest_node_in_t){.type = MDL_NODE_LEAF, .value = 1e3, .id = 120};
            n = 121;
        } else {
            lgb_subtree(nodes[t], &n, 7);
        }
        n_nodes[t] = n;
    }
    for (size_t i = 0; i < LT_ROWS * LT_F; i++)
        rows[i] = rnd_input();
    f = build_lgb(nodes, n_nodes, LT_TREES);
    if (!f)
        return;
    CHECK(f->bin != NULL);
    check_lgb_forest(f, nodes, LT_TREES, rows, LT_ROWS);
    mdl_forest_free(f);
    /* a count the builder cannot order by */
    {
        mdl_forest_params_t p = {.flavor = MDL_FOREST_LIGHTGBM, .task = MDL_TASK_REGRESSION,
                                 .n_features = LT_F, .n_outputs = 1};
        mdl_forest_node_in_t nd[3] = {
            {.type = MDL_NODE_NUMERIC, .left = 1, .right = 2, .count = NAN},
            {.type = MDL_NODE_LEAF, .value = 1},
            {.type = MDL_NODE_LEAF, .value = 2}};
        mdl_forest_tree_in_t tr = {.n_nodes = 3, .nodes = nd, .weight = 1.0};
        mdl_forest_builder_t *b;
        mdl_err_t err;
        CHECK_EQ_INT(mdl_forest_builder_new(&p, &b, &err), 0);
        CHECK_EQ_INT(mdl_forest_builder_add_tree(b, &tr, &err), -EBADMSG);
        CHECK(strstr(err.msg, "tree 0 node 0: count nan is not a finite number >= 0") != NULL);
        mdl_forest_builder_free(b);
    }
    /* only single leaves: no split, no column */
    n_nodes[0] = 1;
    nodes[0][0] = (mdl_forest_node_in_t){.type = MDL_NODE_LEAF, .value = 0.25};
    f = build_lgb(nodes, n_nodes, 1);
    if (f) {
        CHECK(f->bin != NULL);
        check_lgb_forest(f, nodes, 1, rows, LT_ROWS);
        mdl_forest_free(f);
    }
}

/* A column with 65534 distinct thresholds still fits the bins (uint16, 0..65534); one with
 * 65535 keeps the forest on the general layout. Both score as the plain walk. */
static void check_many_thresholds(size_t distinct)
{
    enum { SPLITS = 65535, ROWS = 400 };
    mdl_forest_params_t p = {.flavor = MDL_FOREST_LIGHTGBM, .task = MDL_TASK_REGRESSION,
                             .n_features = 1, .n_outputs = 1};
    mdl_forest_node_in_t *nodes = calloc(2 * SPLITS + 1, sizeof *nodes);
    double rows[ROWS], out[ROWS];
    mdl_forest_builder_t *b;
    mdl_forest_t *f = NULL;
    mdl_err_t err;
    size_t bad = 0;

    if (!nodes) {
        CHECK(nodes != NULL);
        return;
    }
    /* complete search tree in heap order: split i (0-based) has children 2i+1, 2i+2;
     * thresholds are the in-order ranks (so a row x lands in leaf ~x) */
    for (size_t i = 0; i < 2 * SPLITS + 1; i++) {
        if (i < SPLITS) {
            size_t lo = i, depth = 0, rank;
            while (lo > 0) {
                lo = (lo - 1) / 2;
                depth++;
            }
            /* in-order rank of heap node i in a complete tree of depth 16 */
            size_t pos = i - ((1u << depth) - 1);
            rank = (2 * pos + 1) << (15 - depth);
            nodes[i] = (mdl_forest_node_in_t){.type = MDL_NODE_NUMERIC, .feature = 0,
                                              .missing = MDL_MISSING_NAN, .default_left = true,
                                              .threshold = (double)rank - 0.5,
                                              .left = (int32_t)(2 * i + 1),
                                              .right = (int32_t)(2 * i + 2)};
        } else {
            nodes[i] = (mdl_forest_node_in_t){.type = MDL_NODE_LEAF, .id = (int32_t)i,
                                              .value = (double)(i - SPLITS)};
        }
    }
    if (distinct < SPLITS) /* the last split repeats another's threshold */
        nodes[SPLITS - 1].threshold = nodes[SPLITS - 2].threshold;
    CHECK_EQ_INT(mdl_forest_builder_new(&p, &b, &err), 0);
    mdl_forest_tree_in_t tr = {.n_nodes = 2 * SPLITS + 1, .nodes = nodes, .weight = 1.0};
    CHECK_EQ_INT(mdl_forest_builder_add_tree(b, &tr, &err), 0);
    CHECK_EQ_INT(mdl_forest_builder_finish(b, &f, &err), 0);
    if (f) {
        if (distinct < SPLITS)
            CHECK(f->bin != NULL);
        else
            CHECK(f->bin == NULL);
        for (size_t r = 0; r < ROWS; r++)
            rows[r] = r % 7 == 0 ? NAN : (double)rnd(70000) - 1000.0 + (rnd(3) - 1.0) * 0.5;
        CHECK_EQ_INT(mdl_forest_score(f, rows, ROWS, MDL_OUTPUT_MARGIN, out, &err), 0);
        for (size_t r = 0; r < ROWS; r++)
            bad += out[r] != nodes[lgb_ref_leaf(nodes, &rows[r])].value;
        CHECK_EQ_INT(bad, 0);
        CHECK_EQ_INT(mdl_forest_score(f, rows, 1, MDL_OUTPUT_MARGIN, out, &err), 0);
        CHECK(out[0] == nodes[lgb_ref_leaf(nodes, &rows[0])].value);
        mdl_forest_free(f);
    }
    free(nodes);
}

static void test_binned_limits(void)
{
    check_many_thresholds(65534);
    check_many_thresholds(65535);
}

/* Categorical splits and linear leaves keep the general layout. */
static void test_binned_not_taken(void)
{
    static const uint32_t bits[1] = {0x5};
    mdl_forest_node_in_t nodes[3] = {
        {.type = MDL_NODE_CATEGORICAL, .feature = 0, .missing = MDL_MISSING_NAN, .left = 1,
         .right = 2, .cat_offset = 0, .cat_words = 1},
        {.type = MDL_NODE_LEAF, .value = 1.0},
        {.type = MDL_NODE_LEAF, .value = 2.0, .id = 1},
    };
    mdl_forest_params_t p = {.flavor = MDL_FOREST_LIGHTGBM, .task = MDL_TASK_REGRESSION,
                             .n_features = 1, .n_outputs = 1};
    mdl_forest_tree_in_t tr = {.n_nodes = 3, .nodes = nodes, .n_cat_words = 1,
                               .cat_bits = bits, .weight = 1.0};
    mdl_forest_builder_t *b;
    mdl_forest_t *f = NULL;
    mdl_err_t err;
    double out[3];

    CHECK_EQ_INT(mdl_forest_builder_new(&p, &b, &err), 0);
    CHECK_EQ_INT(mdl_forest_builder_add_tree(b, &tr, &err), 0);
    CHECK_EQ_INT(mdl_forest_builder_finish(b, &f, &err), 0);
    if (f) {
        CHECK(f->bin == NULL);
        CHECK_EQ_INT(mdl_forest_score(f, (double[]){2, 1, NAN}, 3, MDL_OUTPUT_MARGIN, out, &err),
                     0);
        CHECK(out[0] == 1.0 && out[1] == 2.0 && out[2] == 2.0);
        mdl_forest_free(f);
    }
}

int main(void)
{
    RUN(test_fixture_binary);
    RUN(test_fixture_cat);
    RUN(test_fixture_multi);
    RUN(test_fixture_rank);
    RUN(test_fixture_reg);
    RUN(test_own_fixtures);
    RUN(test_fixture_info);
    RUN(test_missing_types);
    RUN(test_categorical);
    RUN(test_linear);
    RUN(test_single_leaf_and_average);
    RUN(test_objectives);
    RUN(test_multiclass);
    RUN(test_v3_crlf);
    RUN(test_corrupt_table);
    RUN(test_corrupt_misc);
    RUN(test_truncated_fixture);
    RUN(test_binned_layout);
    RUN(test_binned_limits);
    RUN(test_binned_not_taken);
    return check_summary();
}
