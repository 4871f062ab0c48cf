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

static int load_mem(const char *name, const char *data, size_t len, mdl_model_t *m,
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
    /* The scorer takes other paths for small batches (one row, lanes of trees) and for the
     * tail of a block: each must give the very same numbers as the whole batch. */
    {
        const size_t sizes[] = {1, 3, 7, 9, 65};
        double *o2 = calloc(in->rows * w + 1, sizeof *o2);
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
            size_t bs = sizes[si];
            for (size_t r = 0; r < in->rows; r += bs) {
                size_t nb = in->rows - r < bs ? in->rows - r : bs;
                mdl_kind_gbdt.tabular->score(m->impl, in->v + r * in->cols, nb, kind, o2 + r * w,
                                             &err);
            }
            if (memcmp(o2, out, in->rows * w * sizeof *out) != 0)
                CHECK_FAIL_("%s %s: batches of %zu differ from one batch of %zu", name, what, bs,
                            in->rows);
        }
        free(o2);
    }
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
    while ((e = readdir(d)) && n < 256) {
        char probe[512];
        snprintf(probe, sizeof probe, "%s/%s/input.csv", dir, e->d_name);
        if (e->d_name[0] != '.' && strncmp(e->d_name, prefix, strlen(prefix)) == 0 &&
            exists(probe))
            names[n++] = strdup(e->d_name);
    }
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

/* ---- a tiny hand-written model and its corruptions ------------------------------------- */

/* One tree: node 0 splits feature 1 at 0.5 (NaN -> left), leaves -1 and 2; base 0.5.
 * Written with ' for " (see dq). */
#define TINY_TREE(ID, LEFT, RIGHT, SPLIT_IDX, COND, NODES)                                      \
    "{'base_weights':[0,0,0],'categories':[],'categories_nodes':[],'categories_segments':[],"  \
    "'categories_sizes':[],'default_left':[1,0,0],'id':" ID ",'left_children':" LEFT ","     \
    "'loss_changes':[0,0,0],'parents':[2147483647,0,0],'right_children':" RIGHT ","         \
    "'split_conditions':" COND ",'split_indices':" SPLIT_IDX ",'split_type':[0,0,0],"       \
    "'sum_hessian':[1,1,1],'tree_param':{'num_deleted':'0','num_feature':'3','num_nodes':'" \
    NODES "','size_leaf_vector':'0'}}"
#define GOOD_TREE TINY_TREE("0", "[1,-1,-1]", "[2,-1,-1]", "[1,0,0]", "[0.5,-1.0,2.0]", "3")
#define TINY(NAMES, BOOSTER, NTREES, INFO, TREES, BASE, NCLASS, OBJ)                             \
    "{'learner':{'attributes':{},'feature_names':" NAMES ",'feature_types':[],"                \
    "'gradient_booster':{'model':{'gbtree_model_param':{'num_parallel_tree':'1','num_trees':'" \
    NTREES "','size_leaf_vector':'0'},'tree_info':" INFO ",'trees':[" TREES "]},'name':'"      \
    BOOSTER "'},'learner_model_param':{'base_score':'" BASE "','boost_from_average':'1',"      \
    "'num_class':'" NCLASS "','num_feature':'3','num_target':'1'},'objective':{'name':'" OBJ  \
    "'}},'version':[1,7,4]}"
#define TINY_GOOD TINY("[]", "gbtree", "1", "[0]", GOOD_TREE, "5E-1", "0", "reg:squarederror")

static char *dq(const char *sq)
{
    char *s = strdup(sq);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    return s;
}

static int load_sq(const char *sq, mdl_model_t *m, mdl_err_t *err)
{
    char *s = dq(sq);
    int r = load_mem("model.json", s, strlen(s), m, err);
    free(s);
    return r;
}

static void test_tiny_model(void)
{
    const double rows[] = {0, 0.4, 0, 0, 0.5, 0, 0, NAN, 0, 0, 1e30, 0, 0, -1e30, 0};
    double out[5 * 1];
    mdl_model_t m;
    mdl_err_t err;

    if (load_sq(TINY_GOOD, &m, &err) != 0) {
        CHECK_FAIL_("tiny model: %s", err.msg);
        return;
    }
    CHECK_EQ_INT(m.task, MDL_TASK_REGRESSION);
    CHECK_EQ_INT(m.n_features, 3);
    CHECK_EQ_STR(m.features[2].name, "f2");
    CHECK_EQ_INT(m.n_classes, 0);
    CHECK_EQ_INT(mdl_kind_gbdt.tabular->output_width(m.impl, MDL_OUTPUT_VALUE), 1);
    CHECK_EQ_INT(mdl_kind_gbdt.tabular->output_width(m.impl, MDL_OUTPUT_LEAF), 1);
    CHECK_EQ_INT(mdl_kind_gbdt.tabular->score(m.impl, rows, 5, MDL_OUTPUT_VALUE, out, &err), 0);
    CHECK(out[0] == -0.5 && out[1] == 2.5 && out[2] == -0.5 && out[3] == 2.5 && out[4] == -0.5);
    CHECK_EQ_INT(mdl_kind_gbdt.tabular->score(m.impl, rows, 5, MDL_OUTPUT_LEAF, out, &err), 0);
    CHECK(out[0] == 1 && out[1] == 2 && out[2] == 1 && out[3] == 2 && out[4] == 1);
    release(&m);

    /* names and a binary objective */
    if (load_sq(TINY("['a','b','c']", "gbtree", "1", "[0]", GOOD_TREE, "5E-1", "0",
                     "binary:logistic"), &m, &err) != 0) {
        CHECK_FAIL_("tiny binary: %s", err.msg);
        return;
    }
    CHECK_EQ_INT(m.task, MDL_TASK_BINARY);
    CHECK_EQ_STR(m.features[1].name, "b");
    CHECK_EQ_INT(m.n_classes, 2);
    CHECK_EQ_STR(m.classes[1], "1");
    CHECK_EQ_INT(mdl_kind_gbdt.tabular->score(m.impl, rows, 1, MDL_OUTPUT_MARGIN, out, &err), 0);
    CHECK(out[0] == -1.0);
    release(&m);

    /* a single-leaf tree after a split tree: margin = 0.5 + leaf(x) + 0.25 */
    if (load_sq(TINY("[]", "gbtree", "2", "[0,0]",
                     GOOD_TREE ",{'base_weights':[0],'categories':[],'categories_nodes':[],"
                               "'categories_segments':[],'categories_sizes':[],"
                               "'default_left':[0],'id':1,'left_children':[-1],"
                               "'loss_changes':[0],'parents':[2147483647],'right_children':[-1],"
                               "'split_conditions':[0.25],'split_indices':[0],'split_type':[0],"
                               "'sum_hessian':[1],'tree_param':{'num_deleted':'0',"
                               "'num_feature':'3','num_nodes':'1','size_leaf_vector':'0'}}",
                     "5E-1", "0", "reg:squarederror"), &m, &err) != 0) {
        CHECK_FAIL_("single leaf: %s", err.msg);
        return;
    }
    CHECK_EQ_INT(mdl_kind_gbdt.tabular->score(m.impl, rows, 5, MDL_OUTPUT_VALUE, out, &err), 0);
    CHECK(out[0] == -0.25 && out[1] == 2.75 && out[2] == -0.25);
    CHECK_EQ_INT(mdl_kind_gbdt.tabular->score(m.impl, rows, 2, MDL_OUTPUT_LEAF, out, &err), 0);
    CHECK(out[0] == 1 && out[1] == 0 && out[2] == 2 && out[3] == 0);
    release(&m);
}

/* An XGBoost chain deeper than the perfect layout takes (12 splits): the general walk
 * must answer. Node 2i splits x0 < i + 1: left is leaf i (value i), right goes on; the last
 * right child is a leaf of value 100. NaN: default right at even splits, left at odd. */
static void test_deep_chain(void)
{
    enum { DEPTH = 12, N = 2 * DEPTH + 1 };
    mdl_forest_params_t p = {.flavor = MDL_FOREST_XGBOOST, .task = MDL_TASK_REGRESSION,
                             .n_features = 1, .n_outputs = 1};
    mdl_forest_node_in_t nodes[N];
    mdl_forest_tree_in_t t = {.n_nodes = N, .nodes = nodes, .weight = 1.0};
    mdl_forest_builder_t *b;
    mdl_forest_t *f;
    mdl_err_t err;
    double rows[DEPTH + 2], out[DEPTH + 2];

    memset(nodes, 0, sizeof nodes);
    for (int i = 0; i < DEPTH; i++) {
        nodes[2 * i] = (mdl_forest_node_in_t){.type = MDL_NODE_NUMERIC, .left = 2 * i + 1,
                                              .right = 2 * i + 2, .threshold = i + 1,
                                              .default_left = i % 2};
        nodes[2 * i + 1] = (mdl_forest_node_in_t){.type = MDL_NODE_LEAF, .value = i,
                                                  .id = 2 * i + 1};
    }
    nodes[N - 1] = (mdl_forest_node_in_t){.type = MDL_NODE_LEAF, .value = 100, .id = N - 1};
    CHECK_EQ_INT(mdl_forest_builder_new(&p, &b, &err), 0);
    CHECK_EQ_INT(mdl_forest_builder_add_tree(b, &t, &err), 0);
    CHECK_EQ_INT(mdl_forest_builder_finish(b, &f, &err), 0);
    for (int i = 0; i <= DEPTH; i++)
        rows[i] = i + 0.5;
    rows[DEPTH + 1] = NAN;
    CHECK_EQ_INT(mdl_forest_score(f, rows, DEPTH + 2, MDL_OUTPUT_MARGIN, out, &err), 0);
    for (int i = 0; i < DEPTH; i++)
        CHECK(out[i] == i);
    CHECK(out[DEPTH] == 100);
    CHECK(out[DEPTH + 1] == 1);
    CHECK_EQ_INT(mdl_forest_score(f, rows, DEPTH + 2, MDL_OUTPUT_LEAF, out, &err), 0);
    CHECK(out[3] == 7 && out[DEPTH] == N - 1 && out[DEPTH + 1] == 3);
    mdl_forest_free(f);
}

/* Random XGBoost trees (depth <= 5, thresholds among a few values and +-inf, random
 * default directions) scored by the perfect layout and by mdl_forest_score_threads must
 * equal a plain recursive walk with XGBoost's rules, bit for bit, for rows full of NaN,
 * +-inf and values at the thresholds. A default-left split at -inf sends only NaN left,
 * which the perfect layout cannot express: such a forest must still score right (it
 * falls back to the general layout). */
static uint64_t rnd_state = 42;
static uint32_t rnd(uint32_t n)
{
    rnd_state = rnd_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rnd_state >> 33) % n;
}

static const double rnd_values[] = {-INFINITY, -1.5, -0.0, 0.0, 0.25, 1.0, 3.0, INFINITY};
#define N_RND_VALUES (sizeof rnd_values / sizeof rnd_values[0])

/* Appends a random subtree of depth <= d at nodes[*n]; returns its index. */
static int32_t rnd_subtree(mdl_forest_node_in_t *nodes, int32_t *n, int d, bool allow_dl_ninf)
{
    int32_t i = (*n)++;
    if (d == 0 || rnd(4) == 0) {
        nodes[i] = (mdl_forest_node_in_t){.type = MDL_NODE_LEAF,
                                          .value = (double)(float)(rnd(2001) / 1000.0 - 1.0),
                                          .id = i};
        return i;
    }
    nodes[i] = (mdl_forest_node_in_t){.type = MDL_NODE_NUMERIC, .feature = rnd(3),
                                      .threshold = rnd_values[1 + rnd(N_RND_VALUES - 1)],
                                      .default_left = rnd(2)};
    if (allow_dl_ninf && rnd(3) == 0) {
        nodes[i].threshold = -INFINITY;
        nodes[i].default_left = true;
    }
    nodes[i].left = rnd_subtree(nodes, n, d - 1, allow_dl_ninf);
    nodes[i].right = rnd_subtree(nodes, n, d - 1, allow_dl_ninf);
    return i;
}

static double ref_leaf(const mdl_forest_node_in_t *nodes, int32_t i, const double *row)
{
    while (nodes[i].type != MDL_NODE_LEAF) {
        double x = row[nodes[i].feature];
        bool left = isnan(x) ? nodes[i].default_left : (double)(float)x < nodes[i].threshold;
        i = left ? nodes[i].left : nodes[i].right;
    }
    return nodes[i].value;
}

static void check_random_forest(bool allow_dl_ninf)
{
    enum { TREES = 40, ROWS = 1500, NODES = 64 };
    static mdl_forest_node_in_t nodes[TREES][NODES];
    static double rows[ROWS * 3], out[ROWS], out3[ROWS], leaf1[ROWS * TREES], leaf3[ROWS * TREES];
    mdl_forest_params_t p = {.flavor = MDL_FOREST_XGBOOST, .task = MDL_TASK_REGRESSION,
                             .n_features = 3, .n_outputs = 1};
    mdl_forest_builder_t *b;
    mdl_forest_t *f;
    mdl_err_t err;
    size_t bad = 0;

    CHECK_EQ_INT(mdl_forest_builder_new(&p, &b, &err), 0);
    for (int t = 0; t < TREES; t++) {
        int32_t n = 0;
        rnd_subtree(nodes[t], &n, 5, allow_dl_ninf);
        mdl_forest_tree_in_t tr = {.n_nodes = (size_t)n, .nodes = nodes[t], .weight = 1.0};
        CHECK_EQ_INT(mdl_forest_builder_add_tree(b, &tr, &err), 0);
    }
    CHECK_EQ_INT(mdl_forest_builder_finish(b, &f, &err), 0);
    for (size_t i = 0; i < ROWS * 3; i++)
        rows[i] = rnd(5) == 0 ? NAN : rnd_values[rnd(N_RND_VALUES)] + (rnd(3) == 0 ? 1e-9 : 0);
    for (size_t batch = 1; batch <= ROWS; batch = batch * 7 + 1) {
        for (size_t r0 = 0; r0 < ROWS; r0 += batch) {
            size_t nb = ROWS - r0 < batch ? ROWS - r0 : batch;
            CHECK_EQ_INT(mdl_forest_score(f, rows + r0 * 3, nb, MDL_OUTPUT_MARGIN, out + r0, &err),
                         0);
        }
        for (size_t r = 0; r < ROWS; r++) {
            float m = 0.0f;
            for (int t = 0; t < TREES; t++)
                m += (float)ref_leaf(nodes[t], 0, rows + r * 3);
            bad += out[r] != (double)m;
        }
    }
    CHECK_EQ_INT((int)bad, 0);
    /* threads: every output kind, the same bits as one call */
    for (int kind = MDL_OUTPUT_VALUE; kind <= MDL_OUTPUT_LEAF; kind++) {
        double *o1 = kind == MDL_OUTPUT_LEAF ? leaf1 : out, *o3 = kind == MDL_OUTPUT_LEAF ? leaf3 : out3;
        size_t w = mdl_forest_output_width(f, (mdl_output_t)kind);
        if (w == 0)
            continue;
        CHECK_EQ_INT(mdl_forest_score(f, rows, ROWS, (mdl_output_t)kind, o1, &err), 0);
        CHECK_EQ_INT(mdl_forest_score_threads(f, rows, ROWS, (mdl_output_t)kind, o3, 3, &err), 0);
        CHECK(memcmp(o1, o3, ROWS * w * sizeof *o1) == 0);
    }
    mdl_forest_free(f);
}

static void test_random_forests(void)
{
    check_random_forest(false);
    check_random_forest(true);
}

typedef struct bad_case {
    const char *name;
    const char *doc; /* ' for " */
    int code;
    const char *msg; /* a substring of the message */
} bad_case_t;

static const bad_case_t bad_json[] = {
    {"not an object", "[1,2]", -EBADMSG, "(root): expected an object"},
    {"no learner", "{'version':[1,7,4]}", -EBADMSG, "learner: missing"},
    {"unknown objective", TINY("[]", "gbtree", "1", "[0]", GOOD_TREE, "5E-1", "0", "reg:foo"),
     -EBADMSG, "unknown or unsupported objective \"reg:foo\""},
    {"gblinear", TINY("[]", "gblinear", "1", "[0]", GOOD_TREE, "5E-1", "0", "reg:squarederror"),
     -EBADMSG, "unsupported booster \"gblinear\""},
    {"empty forest", TINY("[]", "gbtree", "0", "[]", "", "5E-1", "0", "reg:squarederror"),
     -EBADMSG, "the model has no trees"},
    {"num_trees vs trees", TINY("[]", "gbtree", "2", "[0,0]", GOOD_TREE, "5E-1", "0",
                                "reg:squarederror"),
     -EBADMSG, "trees: has 1 elements, expected 2"},
    {"tree_info vs trees", TINY("[]", "gbtree", "1", "[0,0]", GOOD_TREE, "5E-1", "0",
                                "reg:squarederror"),
     -EBADMSG, "tree_info: has 2 elements, expected 1"},
    {"tree_info out of range", TINY("[]", "gbtree", "1", "[1]", GOOD_TREE, "5E-1", "0",
                                    "reg:squarederror"),
     -EBADMSG, "tree_info[0]: 1 is not an integer in 0..0"},
    {"huge num_trees", TINY("[]", "gbtree", "1e12", "[0]", GOOD_TREE, "5E-1", "0",
                            "reg:squarederror"),
     -EBADMSG, "num_trees: 1e+12 is not an integer in 0..1048576"},
    {"huge num_feature",
     "{'learner':{'feature_names':[],'learner_model_param':{'base_score':'0.5','num_class':'0',"
     "'num_feature':'100000000'},'objective':{'name':'reg:squarederror'},"
     "'gradient_booster':{'name':'gbtree','model':{}}}}",
     -EBADMSG, "num_feature: 1e+08 is not an integer in 0..262144"},
    {"huge num_nodes", TINY("[]", "gbtree", "1", "[0]",
                            TINY_TREE("0", "[1,-1,-1]", "[2,-1,-1]", "[1,0,0]", "[0.5,-1,2]",
                                      "99999999999"), "5E-1", "0", "reg:squarederror"),
     -EBADMSG, "num_nodes: 1e+11 is not an integer in 0..16777216"},
    {"node count mismatch", TINY("[]", "gbtree", "1", "[0]",
                                 TINY_TREE("0", "[1,-1,-1]", "[2,-1,-1]", "[1,0,0]",
                                           "[0.5,-1,2]", "4"), "5E-1", "0", "reg:squarederror"),
     -EBADMSG, "left_children: has 3 elements, expected 4"},
    {"child out of range", TINY("[]", "gbtree", "1", "[0]",
                                TINY_TREE("0", "[7,-1,-1]", "[2,-1,-1]", "[1,0,0]", "[0.5,-1,2]",
                                          "3"), "5E-1", "0", "reg:squarederror"),
     -EBADMSG, "tree 0 node 0: left child 7 out of range (tree has 3 nodes)"},
    {"cycle", TINY("[]", "gbtree", "1", "[0]",
                   TINY_TREE("0", "[1,0,-1]", "[2,2,-1]", "[1,0,0]", "[0.5,0.1,2]", "3"), "5E-1",
                   "0", "reg:squarederror"),
     -EBADMSG, "reached twice (cycle or shared subtree)"},
    {"self loop", TINY("[]", "gbtree", "1", "[0]",
                       TINY_TREE("0", "[0,-1,-1]", "[2,-1,-1]", "[1,0,0]", "[0.5,-1,2]", "3"),
                       "5E-1", "0", "reg:squarederror"),
     -EBADMSG, "left child 0 is reached twice"},
    {"fractional child", TINY("[]", "gbtree", "1", "[0]",
                              TINY_TREE("0", "[1.5,-1,-1]", "[2,-1,-1]", "[1,0,0]", "[0.5,-1,2]",
                                        "3"), "5E-1", "0", "reg:squarederror"),
     -EBADMSG, "left_children[0]: 1.5 is not an integer"},
    {"feature out of range", TINY("[]", "gbtree", "1", "[0]",
                                  TINY_TREE("0", "[1,-1,-1]", "[2,-1,-1]", "[5,0,0]",
                                            "[0.5,-1,2]", "3"), "5E-1", "0", "reg:squarederror"),
     -EBADMSG, "split feature 5 out of range (model has 3 features)"},
    {"NaN leaf", TINY("[]", "gbtree", "1", "[0]",
                      TINY_TREE("0", "[1,-1,-1]", "[2,-1,-1]", "[1,0,0]", "[0.5,NaN,2]", "3"),
                      "5E-1", "0", "reg:squarederror"),
     -EBADMSG, "tree 0 node 1: leaf value is not finite"},
    {"NaN threshold", TINY("[]", "gbtree", "1", "[0]",
                           TINY_TREE("0", "[1,-1,-1]", "[2,-1,-1]", "[1,0,0]", "[NaN,-1,2]", "3"),
                           "5E-1", "0", "reg:squarederror"),
     -EBADMSG, "tree 0 node 0: threshold is NaN"},
    {"text in numbers", TINY("[]", "gbtree", "1", "[0]",
                             TINY_TREE("0", "[1,-1,-1]", "[2,-1,-1]", "[1,0,0]", "[0.5,'x',2]",
                                       "3"), "5E-1", "0", "reg:squarederror"),
     -EBADMSG, "split_conditions[1]: expected a number, got a string"},
    {"repeated tree id", TINY("[]", "gbtree", "2", "[0,0]", GOOD_TREE "," GOOD_TREE, "5E-1", "0",
                              "reg:squarederror"),
     -EBADMSG, "trees[1]: id 0 is out of range or repeated"},
    {"softprob one class", TINY("[]", "gbtree", "1", "[0]", GOOD_TREE, "5E-1", "1",
                                "multi:softprob"),
     -EBADMSG, "multi:softprob needs num_class >= 2, got 1"},
    {"logistic base score", TINY("[]", "gbtree", "1", "[0]", GOOD_TREE, "2", "0",
                                 "binary:logistic"),
     -EBADMSG, "base_score: 2 must be in (0, 1) for binary:logistic"},
    {"base score text", TINY("[]", "gbtree", "1", "[0]", GOOD_TREE, "half", "0",
                             "reg:squarederror"),
     -EBADMSG, "expected a number, got \"half\""},
    {"feature name count", TINY("['a','b']", "gbtree", "1", "[0]", GOOD_TREE, "5E-1", "0",
                                "reg:squarederror"),
     -EBADMSG, "learner.feature_names: has 2 names for 3 features"},
    {"duplicate feature names", TINY("['a','b','a']", "gbtree", "1", "[0]", GOOD_TREE, "5E-1",
                                     "0", "reg:squarederror"),
     0, NULL}, /* the repository rejects duplicates when it indexes names (model.c) */
    {"dart without weights", TINY("[]", "dart", "1", "[0]", GOOD_TREE, "5E-1", "0",
                                  "reg:squarederror"),
     -EBADMSG, "learner.gradient_booster.gbtree: missing"},
};

static void test_corrupt_json(void)
{
    for (size_t i = 0; i < sizeof bad_json / sizeof bad_json[0]; i++) {
        const bad_case_t *c = &bad_json[i];
        mdl_model_t m;
        mdl_err_t err;
        int r = load_sq(c->doc, &m, &err);
        if (r == 0)
            release(&m);
        if (r != c->code) {
            CHECK_FAIL_("%s: code %d, expected %d (%s)", c->name, r, c->code, err.msg);
            continue;
        }
        if (c->msg && !strstr(err.msg, c->msg))
            CHECK_FAIL_("%s: message \"%s\" lacks \"%s\"", c->name, err.msg, c->msg);
    }
}

/* Every prefix of a real model must be refused with a message, never crash. */
static void check_truncations(const char *path, size_t step)
{
    char *data;
    size_t len, tried = 0;
    mdl_err_t err;
    mdl_model_t m;

    if (mdl_file_read(path, (size_t)1 << 28, &data, &len, NULL, &err) < 0) {
        CHECK_FAIL_("%s: %s", path, err.msg);
        return;
    }
    for (size_t cut = 0; cut < len; cut += step, tried++) {
        int r = load_mem(path, data, cut, &m, &err);
        if (r == 0) {
            release(&m);
            CHECK_FAIL_("%s truncated to %zu bytes: accepted", path, cut);
        } else if (r != -EBADMSG || !err.msg[0]) {
            CHECK_FAIL_("%s truncated to %zu bytes: code %d (%s)", path, cut, r, err.msg);
        }
    }
    CHECK(tried > 10);
    free(data);
}

static void test_truncated(void)
{
    check_truncations(OWN_DIR "/categorical/model.json", 211);
    check_truncations(OWN_DIR "/categorical/model.ubj", 97);
    check_truncations(OWN_DIR "/dart/model.ubj", 101);
}

/* UBJSON-specific lies: counts and lengths past the end, unknown markers. */
static void test_corrupt_ubj(void)
{
    static const struct {
        const char *name;
        const char *data;
        size_t len;
        const char *msg;
    } cases[] = {
        {"empty", "", 0, "truncated"},
        {"unknown marker", "{L\0\0\0\0\0\0\0\1aX}", 13, "unknown or unsupported marker 0x58"},
        {"huge typed count", "[$d#L\x7f\xff\xff\xff\xff\xff\xff\xff", 13, "count 9223372036854775807 "},
        {"typed count past end", "[$d#i\x05\0\0\0\0", 10, "runs past the end"},
        {"huge array count", "[#L\0\0\0\0\xff\xff\xff\xff", 12, "count 4294967295 out of range"},
        {"array count past end", "[#l\0\0\1\0ZZ", 8, "count 256 exceeds the 1 bytes left"},
        {"negative count", "[#i\xff", 4, "count -1 out of range"},
        {"string past end", "SL\0\0\0\0\0\0\1\0abc", 13, "runs past the end"},
        {"key past end", "{i\x40" "ab", 5, "runs past the end"},
        {"unclosed object", "{i\1aZ", 5, "truncated"},
        {"trailing bytes", "ZZ", 2, "1 bytes after the document"},
        {"typed object", "{$i#i\1", 6, "unsupported typed object"},
        {"not a model", "[#i\1Z", 5, "(root): expected an object, got an array"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mdl_model_t m;
        mdl_err_t err;
        int r = load_mem("model.ubj", cases[i].data, cases[i].len, &m, &err);
        if (r == 0) {
            release(&m);
            CHECK_FAIL_("%s: accepted", cases[i].name);
            continue;
        }
        if (!strstr(err.msg, cases[i].msg))
            CHECK_FAIL_("%s: message \"%s\" lacks \"%s\"", cases[i].name, err.msg, cases[i].msg);
    }
}

/* A JSON model saved as model.ubj and the other way round: a message that says so. */
static void test_swapped_extension(void)
{
    char *data;
    size_t len;
    mdl_err_t err;
    mdl_model_t m;

    if (mdl_file_read(OWN_DIR "/dart/model.ubj", 1 << 20, &data, &len, NULL, &err) < 0) {
        CHECK_FAIL_("%s", err.msg);
        return;
    }
    CHECK_EQ_INT(load_mem("model.json", data, len, &m, &err), -EBADMSG);
    CHECK(strstr(err.msg, "model.json holds UBJSON") != NULL);
    free(data);
    if (mdl_file_read(OWN_DIR "/dart/model.json", 1 << 20, &data, &len, NULL, &err) < 0) {
        CHECK_FAIL_("%s", err.msg);
        return;
    }
    CHECK_EQ_INT(load_mem("model.ubj", data, len, &m, &err), -EBADMSG);
    CHECK(strstr(err.msg, "model.ubj holds JSON") != NULL);
    free(data);
}

/* The forest builder's own checks, for what a loader might pass. */
static void test_forest_builder(void)
{
    mdl_forest_params_t p = {.flavor = MDL_FOREST_LIGHTGBM, .task = MDL_TASK_REGRESSION,
                             .n_features = 2, .n_outputs = 1};
    mdl_forest_node_in_t nodes[3] = {
        {.type = MDL_NODE_CATEGORICAL, .left = 1, .right = 2, .feature = 0, .cat_offset = 0,
         .cat_words = 2},
        {.type = MDL_NODE_LEAF, .value = 1.0, .id = 0},
        {.type = MDL_NODE_LEAF, .value = 2.0, .id = 1},
    };
    uint32_t bits[2] = {0x5u, 0x1u}; /* categories 0, 2, 32 go left */
    mdl_forest_tree_in_t t = {.n_nodes = 3, .nodes = nodes, .n_cat_words = 2, .cat_bits = bits,
                              .weight = 1.0};
    const double rows[] = {0, 0, 1, 0, 2, 0, 32, 0, 64, 0, -0.5, 0, -1, 0, NAN, 0, 2.9, 0};
    const double want[] = {1, 2, 1, 1, 2, 1, 2, 2, 1};
    double out[9];
    mdl_forest_builder_t *b;
    mdl_forest_t *f;
    mdl_err_t err;

    CHECK_EQ_INT(mdl_forest_builder_new(&p, &b, &err), 0);
    CHECK_EQ_INT(mdl_forest_builder_add_tree(b, &t, &err), 0);
    CHECK_EQ_INT(mdl_forest_builder_finish(b, &f, &err), 0);
    CHECK_EQ_INT(mdl_forest_score(f, rows, 9, MDL_OUTPUT_VALUE, out, &err), 0);
    for (size_t i = 0; i < 9; i++)
        if (out[i] != want[i])
            CHECK_FAIL_("LightGBM categorical row %zu: %g, expected %g", i, out[i], want[i]);
    mdl_forest_free(f);

    /* bitset out of bounds */
    nodes[0].cat_words = 3;
    CHECK_EQ_INT(mdl_forest_builder_new(&p, &b, &err), 0);
    CHECK_EQ_INT(mdl_forest_builder_add_tree(b, &t, &err), -EBADMSG);
    CHECK(strstr(err.msg, "category bitset [0, +3) out of range (tree has 2 words)") != NULL);
    mdl_forest_builder_free(b);
    nodes[0].cat_words = 2;

    /* no trees */
    CHECK_EQ_INT(mdl_forest_builder_new(&p, &b, &err), 0);
    CHECK_EQ_INT(mdl_forest_builder_finish(b, &f, &err), -EBADMSG);
    CHECK(strstr(err.msg, "no trees") != NULL);

    /* params */
    p.n_features = 0;
    CHECK_EQ_INT(mdl_forest_builder_new(&p, &b, &err), -EBADMSG);
    p.n_features = 2;
    p.transform = MDL_TRANSFORM_SOFTMAX;
    CHECK_EQ_INT(mdl_forest_builder_new(&p, &b, &err), -EBADMSG);
    CHECK(strstr(err.msg, "softmax needs 2 or more outputs") != NULL);
    p.transform = MDL_TRANSFORM_IDENTITY;

    /* LightGBM zero-as-missing and linear leaves */
    {
        mdl_forest_node_in_t n2[3] = {
            {.type = MDL_NODE_NUMERIC, .left = 1, .right = 2, .feature = 0, .threshold = 1.0,
             .missing = MDL_MISSING_ZERO, .default_left = false},
            {.type = MDL_NODE_LEAF, .value = 10.0, .id = 0, .lin_const = 1.0, .lin_offset = 0,
             .lin_terms = 1},
            {.type = MDL_NODE_LEAF, .value = 20.0, .id = 1, .lin_const = 2.0, .lin_offset = 1,
             .lin_terms = 1},
        };
        uint32_t lf[2] = {1, 0};
        double lc[2] = {0.5, 0.25};
        mdl_forest_tree_in_t t2 = {.n_nodes = 3, .nodes = n2, .linear = true, .n_lin = 2,
                                   .lin_features = lf, .lin_coefs = lc, .weight = 1.0};
        const double r2[] = {0.5, 4, 0, 4, NAN, 4, 3, 8, 0.5, NAN, 3, NAN};
        /* 0.5 <= 1 left: 1 + 0.5*4 = 3; 0 is "zero" -> default right: 2 + 0.25*0 = 2;
         * NaN -> 0 -> right: 2 + 0.25*NaN -> NaN in a used feature -> plain leaf 20;
         * 3 right: 2 + 0.25*3 = 2.75; left with NaN x1 -> 10; right, x0 = 3 -> 2.75 */
        const double w2[] = {3, 2, 20, 2.75, 10, 2.75};
        CHECK_EQ_INT(mdl_forest_builder_new(&p, &b, &err), 0);
        CHECK_EQ_INT(mdl_forest_builder_add_tree(b, &t2, &err), 0);
        CHECK_EQ_INT(mdl_forest_builder_finish(b, &f, &err), 0);
        CHECK_EQ_INT(mdl_forest_score(f, r2, 6, MDL_OUTPUT_MARGIN, out, &err), 0);
        for (size_t i = 0; i < 6; i++)
            if (out[i] != w2[i])
                CHECK_FAIL_("linear row %zu: %g, expected %g", i, out[i], w2[i]);
        mdl_forest_free(f);
        lf[0] = 2;
        CHECK_EQ_INT(mdl_forest_builder_new(&p, &b, &err), 0);
        CHECK_EQ_INT(mdl_forest_builder_add_tree(b, &t2, &err), -EBADMSG);
        CHECK(strstr(err.msg, "linear term 0: feature 2 out of range") != NULL);
        mdl_forest_builder_free(b);
    }
}

/* Through the repository path: kind detection by artifact name. */
static void test_load_dir(void)
{
    mdl_model_t *m = NULL;
    mdl_err_t err;
    mdl_load_opts_t o = {.kind = NULL};

    if (mdl_model_load_dir(OWN_DIR "/softmax", &o, &m, &err) != 0) {
        /* both model.json and model.ubj are there: same kind, the first artifact wins */
        CHECK_FAIL_("load_dir: %s", err.msg);
        return;
    }
    CHECK_EQ_STR(m->kind->name, "gbdt");
    CHECK_EQ_INT(m->task, MDL_TASK_MULTICLASS);
    CHECK_EQ_INT(m->n_classes, 4);
    CHECK_EQ_INT(mdl_model_output_width(m, MDL_OUTPUT_VALUE), 1);
    CHECK_EQ_INT(mdl_model_output_width(m, MDL_OUTPUT_MARGIN), 4);
    CHECK_EQ_INT(mdl_model_output_width(m, MDL_OUTPUT_LEAF), 32);
    CHECK(m->artifact_bytes > 0 && strlen(m->sha256) == 64);
    mdl_model_unref(m);
}

int main(void)
{
    RUN(test_shared_xgboost_fixtures);
    RUN(test_own_xgboost_fixtures);
    RUN(test_tiny_model);
    RUN(test_deep_chain);
    RUN(test_random_forests);
    RUN(test_corrupt_json);
    RUN(test_truncated);
    RUN(test_corrupt_ubj);
    RUN(test_swapped_extension);
    RUN(test_forest_builder);
    RUN(test_load_dir);
    return check_summary();
}
