/* models/lr: link functions, preprocessing, score-time errors, loader validation.
 *
 * Expected numbers are worked out by hand (the preprocessing cases use coefficients that
 * make the decision function exact) or with Python's math module, as noted; never by
 * modeld. Documents are written with ' for " to keep them readable. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "models/lr.h"
#include "tests/unit/check.h"

#define HDR "'format':'modeld-lr','format_version':1,"
#define BIN "'estimator':'LogisticRegression','task':'binary','classes':[0,1],"
#define FEAT2 "'features':[{'name':'a'},{'name':'b'}],"
#define W2 "'coef':[[0.5,-1.25]],'intercept':[0.25]"
#define GOOD "{" HDR BIN FEAT2 W2 "}"

static char *dq(const char *sq)
{
    char *s = strdup(sq);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    return s;
}

static void release(mdl_model_t *m)
{
    mdl_kind_lr.destroy(m->impl);
    mdl_model_free_metadata(m);
    memset(m, 0, sizeof *m);
}

static int load(const char *sq, mdl_model_t *m, mdl_err_t *err)
{
    char *s = dq(sq);
    int r;

    memset(m, 0, sizeof *m);
    memset(err, 0, sizeof *err);
    r = mdl_lr_load_mem(s, strlen(s), m, err);
    free(s);
    return r;
}

static int score(const mdl_model_t *m, const double *x, size_t n, mdl_output_t kind, double *out,
                 mdl_err_t *err)
{
    memset(err, 0, sizeof *err);
    return mdl_kind_lr.tabular->score(m->impl, x, n, kind, out, err);
}

static size_t width(const mdl_model_t *m, mdl_output_t kind)
{
    return mdl_kind_lr.tabular->output_width(m->impl, kind);
}

#define CHECK_MSG(err, sub)                                                                        \
    do {                                                                                           \
        if (!strstr((err).msg, (sub)))                                                             \
            CHECK_FAIL_("message \"%s\" lacks \"%s\"", (err).msg, (sub));                          \
    } while (0)

/* ---- link functions -------------------------------------------------------------------- */

/* m = 0.5a - 1.25b + 0.25: rows (1, 2) -> -1.75 and (-2, 0.4) -> -1.25. Probabilities from
 * Python: 1 / (1 + math.exp(-z)). */
static void test_binary_ovr(void)
{
    mdl_model_t m;
    mdl_err_t err;
    const double x[] = {1, 2, -2, 0.4};
    double out[2];

    CHECK_EQ_INT(load(GOOD, &m, &err), 0);
    CHECK_EQ_INT(m.task, MDL_TASK_BINARY);
    CHECK_EQ_INT(m.n_features, 2);
    CHECK_EQ_STR(m.features[1].name, "b");
    CHECK_EQ_INT(m.n_classes, 2);
    CHECK_EQ_STR(m.classes[0], "0");
    CHECK_EQ_STR(m.classes[1], "1");
    CHECK_EQ_INT(width(&m, MDL_OUTPUT_VALUE), 1);
    CHECK_EQ_INT(width(&m, MDL_OUTPUT_MARGIN), 1);
    CHECK_EQ_INT(width(&m, MDL_OUTPUT_LEAF), 0);
    CHECK_EQ_INT(score(&m, x, 2, MDL_OUTPUT_VALUE, out, &err), 0);
    CHECK_NEAR(out[0], 0.14804719803168948, 1e-15);
    CHECK_NEAR(out[1], 0.22270013882530884, 1e-15);
    CHECK_EQ_INT(score(&m, x, 2, MDL_OUTPUT_MARGIN, out, &err), 0);
    CHECK_NEAR(out[0], -1.75, 0);
    CHECK_NEAR(out[1], -1.25, 0);
    CHECK_EQ_INT(score(&m, x, 2, MDL_OUTPUT_LEAF, out, &err), -EINVAL);
    CHECK_EQ_INT(score(&m, x, 0, MDL_OUTPUT_VALUE, out, &err), 0);
    release(&m);
}

/* sklearn's binary multinomial: softmax([-m, m])[1] = 1 / (1 + exp(-2m)). */
static void test_binary_multinomial(void)
{
    mdl_model_t m;
    mdl_err_t err;
    const double x[] = {1, 2, -2, 0.4};
    double out[2];

    CHECK_EQ_INT(load("{" HDR BIN "'multi_class':'multinomial'," FEAT2 W2 "}", &m, &err), 0);
    CHECK_EQ_INT(score(&m, x, 2, MDL_OUTPUT_VALUE, out, &err), 0);
    CHECK_NEAR(out[0], 0.02931223075135632, 1e-15);
    CHECK_NEAR(out[1], 0.07585818002124355, 1e-15);
    CHECK_EQ_INT(score(&m, x, 2, MDL_OUTPUT_MARGIN, out, &err), 0);
    CHECK_NEAR(out[0], -1.75, 0);
    release(&m);
}

#define MC3(est, task, mc)                                                                         \
    "{" HDR "'estimator':'" est "','task':'" task "'," mc "'classes':['x','y','z']," FEAT2        \
    "'coef':[[1,0],[0,1],[-1,-1]],'intercept':[0,0.5,-0.5]}"

/* Row (0.2, -0.3): m = (0.2, 0.2, -0.4). Softmax and normalised sigmoids from Python. */
static void test_multiclass(void)
{
    mdl_model_t m;
    mdl_err_t err;
    const double x[] = {0.2, -0.3};
    double out[3];

    CHECK_EQ_INT(load(MC3("LogisticRegression", "multiclass", "'multi_class':'multinomial',"), &m, &err), 0);
    CHECK_EQ_INT(m.task, MDL_TASK_MULTICLASS);
    CHECK_EQ_INT(width(&m, MDL_OUTPUT_VALUE), 3);
    CHECK_EQ_STR(m.classes[2], "z");
    CHECK_EQ_INT(score(&m, x, 1, MDL_OUTPUT_VALUE, out, &err), 0);
    CHECK_NEAR(out[0], 0.3923397028791302, 1e-15);
    CHECK_NEAR(out[1], 0.3923397028791302, 1e-15);
    CHECK_NEAR(out[2], 0.21532059424173966, 1e-15);
    CHECK_EQ_INT(score(&m, x, 1, MDL_OUTPUT_MARGIN, out, &err), 0);
    CHECK_NEAR(out[0], 0.2, 1e-15);
    CHECK_NEAR(out[1], 0.2, 1e-15);
    CHECK_NEAR(out[2], -0.4, 1e-15);
    release(&m);

    CHECK_EQ_INT(load(MC3("LogisticRegression", "multiclass", "'multi_class':'ovr',"), &m, &err), 0);
    CHECK_EQ_INT(score(&m, x, 1, MDL_OUTPUT_VALUE, out, &err), 0);
    CHECK_NEAR(out[0], 0.36631658967807584, 1e-15);
    CHECK_NEAR(out[1], 0.36631658967807584, 1e-15);
    CHECK_NEAR(out[2], 0.26736682064384826, 1e-15);
    release(&m);

    CHECK_EQ_INT(load(MC3("LinearSVC", "decision", ""), &m, &err), 0);
    CHECK_EQ_INT(m.task, MDL_TASK_DECISION);
    CHECK_EQ_INT(score(&m, x, 1, MDL_OUTPUT_VALUE, out, &err), 0);
    CHECK_NEAR(out[0], 0.2, 1e-15);
    CHECK_NEAR(out[2], -0.4, 1e-15);
    release(&m);
}

static void test_svc_binary(void)
{
    mdl_model_t m;
    mdl_err_t err;
    const double x[] = {1, 2};
    double v, mg;

    CHECK_EQ_INT(load("{" HDR "'estimator':'LinearSVC','task':'decision','classes':['no','yes']," FEAT2 W2 "}",
                      &m, &err), 0);
    CHECK_EQ_INT(m.task, MDL_TASK_DECISION);
    CHECK_EQ_INT(width(&m, MDL_OUTPUT_VALUE), 1);
    CHECK_EQ_INT(score(&m, x, 1, MDL_OUTPUT_VALUE, &v, &err), 0);
    CHECK_EQ_INT(score(&m, x, 1, MDL_OUTPUT_MARGIN, &mg, &err), 0);
    CHECK_NEAR(v, -1.75, 0);
    CHECK_NEAR(mg, -1.75, 0);
    release(&m);
}

/* Class labels keep the text of what the exporter wrote. */
static void test_class_labels(void)
{
    mdl_model_t m;
    mdl_err_t err;

    CHECK_EQ_INT(load("{" HDR "'estimator':'LogisticRegression','task':'multiclass','multi_class':'ovr',"
                      "'classes':[-3, 2.5, true, 'x']," FEAT2
                      "'coef':[[1,0],[0,1],[1,1],[0,0]],'intercept':[0,0,0,0]}", &m, &err), 0);
    CHECK_EQ_STR(m.classes[0], "-3");
    CHECK_EQ_STR(m.classes[1], "2.5");
    CHECK_EQ_STR(m.classes[2], "true");
    CHECK_EQ_STR(m.classes[3], "x");
    release(&m);
}

/* ---- preprocessing (margins worked out by hand) ---------------------------------------- */

#define LIN(coef, icpt) "'coef':[" coef "],'intercept':[" icpt "]"
#define PRE(step) "'preprocess':" step ","

static double margin1(const char *doc, const double *x, int *ret, mdl_err_t *err)
{
    mdl_model_t m;
    double out = NAN;

    *ret = load(doc, &m, err);
    if (*ret < 0)
        return NAN;
    *ret = score(&m, x, 1, MDL_OUTPUT_MARGIN, &out, err);
    release(&m);
    return out;
}

static void test_scalers_imputers(void)
{
    static const struct {
        const char *pre;
        double x[2];
        double want;
    } cases[] = {
        /* (3-1)/2 = 1, (10-2)/4 = 2 -> 1 + 10*2 */
        {"{'type':'standard_scaler','mean':[1,2],'scale':[2,4]}", {3, 10}, 21},
        /* with_mean off: 3/2, 10/4 -> 1.5 + 25 */
        {"{'type':'standard_scaler','mean':null,'scale':[2,4]}", {3, 10}, 26.5},
        /* with_std off: 3-1, 10-2 -> 2 + 80 */
        {"{'type':'standard_scaler','mean':[1,2]}", {3, 10}, 82},
        /* 4*0.5-1 = 1, 1*2+0.5 = 2.5 -> 1 + 25 */
        {"{'type':'min_max_scaler','scale':[0.5,2],'min':[-1,0.5]}", {4, 1}, 26},
        /* impute 5 then scale: (5-1)/2 = 2, (10-2)/4 = 2 -> 2 + 20 */
        {"{'type':'pipeline','steps':[{'type':'simple_imputer','fill':[5,6]},"
         "{'type':'standard_scaler','mean':[1,2],'scale':[2,4]}]}", {NAN, 10}, 22},
        /* scale (NaN stays NaN) then impute -7: -7 + 10*(6-2)/4 */
        {"{'type':'pipeline','steps':[{'type':'standard_scaler','mean':[1,2],'scale':[2,4]},"
         "{'type':'simple_imputer','fill':[-7,0]}]}", {NAN, 6}, 3},
        /* a second imputer never sees the value the first one filled */
        {"{'type':'pipeline','steps':[{'type':'simple_imputer','fill':[1,1]},"
         "{'type':'simple_imputer','fill':[100,100]}]}", {NAN, NAN}, 11},
        {"{'type':'pipeline','steps':[]}", {1, 2}, 21},
        {"{'type':'passthrough'}", {1, 2}, 21},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char doc[1024];
        mdl_err_t err;
        int r;
        snprintf(doc, sizeof doc, "{" HDR BIN FEAT2 "'preprocess':%s," LIN("[1,10]", "0") "}",
                 cases[i].pre);
        double got = margin1(doc, cases[i].x, &r, &err);
        CHECK_EQ_INT(r, 0);
        if (got != cases[i].want)
            CHECK_FAIL_("case %zu: margin %.17g, want %.17g", i, got, cases[i].want);
    }
}

/* n numeric, c categorical {x, y, z}: c is imputed with 'z' and one-hot encoded, n passes
 * through as the remainder, so the linear part sees (c=x, c=y, c=z, n). */
#define ONEHOT_DOC(hu, fill)                                                                       \
    "{" HDR BIN "'features':[{'name':'n'},{'name':'c','categories':['x','y','z']}],"                \
    PRE("{'type':'column_transformer','remainder':'passthrough','transformers':[{'name':'cat',"    \
        "'columns':[1],'step':{'type':'pipeline','steps':[{'type':'simple_imputer','fill':['"      \
        fill "']},{'type':'one_hot_encoder','handle_unknown':'" hu "'}]}}]}")                      \
    LIN("[1,10,100,1000]", "0.5") "}"

static void test_onehot(void)
{
    static const struct {
        double x[2];
        double want;
    } ok[] = {
        {{2, 0}, 1 + 2000.5},
        {{2, 1}, 10 + 2000.5},
        {{2, 2}, 100 + 2000.5},
        {{2, NAN}, 100 + 2000.5}, /* imputed 'z' */
        {{2, -1}, 0 + 2000.5},    /* unknown -> all zeros */
        {{-3, 0}, 1 - 3000 + 0.5},
    };
    mdl_model_t m;
    mdl_err_t err;
    double out;

    CHECK_EQ_INT(load(ONEHOT_DOC("ignore", "z"), &m, &err), 0);
    CHECK_EQ_INT(m.features[1].n_categories, 3);
    CHECK_EQ_STR(m.features[1].categories[2], "z");
    CHECK_EQ_INT(m.features[0].n_categories, 0);
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        CHECK_EQ_INT(score(&m, ok[i].x, 1, MDL_OUTPUT_MARGIN, &out, &err), 0);
        if (out != ok[i].want)
            CHECK_FAIL_("row %zu: margin %.17g, want %.17g", i, out, ok[i].want);
    }
    /* the scorer validates category indices and numeric values */
    const double bad[][2] = {{2, 1.5}, {2, 3}, {2, -2}};
    for (size_t i = 0; i < 3; i++) {
        CHECK_EQ_INT(score(&m, bad[i], 1, MDL_OUTPUT_MARGIN, &out, &err), -EPROTO);
        CHECK_MSG(err, "feature 'c'");
        CHECK_MSG(err, "not a category index");
    }
    const double missing[] = {NAN, 0};
    CHECK_EQ_INT(score(&m, missing, 1, MDL_OUTPUT_MARGIN, &out, &err), -EPROTO);
    CHECK_MSG(err, "row 0: feature 'n' is missing and the model has no imputer for it");
    const double rows[] = {2, 0, 2, 1, INFINITY, 0};
    double outs[3];
    CHECK_EQ_INT(score(&m, rows, 3, MDL_OUTPUT_MARGIN, outs, &err), -EPROTO);
    CHECK_MSG(err, "row 2: feature 'n' is not finite");
    release(&m);

    /* handle_unknown='error'; the fill value 'w' is itself unknown, as in sklearn */
    CHECK_EQ_INT(load(ONEHOT_DOC("error", "w"), &m, &err), 0);
    const double known[] = {2, 1};
    CHECK_EQ_INT(score(&m, known, 1, MDL_OUTPUT_MARGIN, &out, &err), 0);
    CHECK_NEAR(out, 2010.5, 0);
    const double unknown[] = {2, -1}, absent[] = {2, NAN};
    CHECK_EQ_INT(score(&m, unknown, 1, MDL_OUTPUT_MARGIN, &out, &err), -EPROTO);
    CHECK_MSG(err, "feature 'c' has an unknown category");
    CHECK_EQ_INT(score(&m, absent, 1, MDL_OUTPUT_MARGIN, &out, &err), -EPROTO);
    CHECK_MSG(err, "feature 'c' has an unknown category");
    release(&m);

    /* no imputer on the categorical column: a missing category is an error */
    CHECK_EQ_INT(load("{" HDR BIN "'features':[{'name':'c','categories':['x','y']}],"
                      PRE("{'type':'one_hot_encoder','handle_unknown':'ignore'}")
                      LIN("[1,2]", "0") "}", &m, &err), 0);
    const double cat_missing[] = {NAN};
    CHECK_EQ_INT(score(&m, cat_missing, 1, MDL_OUTPUT_MARGIN, &out, &err), -EPROTO);
    CHECK_MSG(err, "feature 'c' is missing");
    release(&m);
}

/* One-hot outputs scaled with a mean (the dense StandardScaler after an encoder):
 * a: ((1-0.5)/0.5, (0-0.25)/2) = (1, -0.125) -> 1 - 1 = 0
 * b: ((0-0.5)/0.5, (1-0.25)/2) = (-1, 0.375) -> -1 + 3 = 2
 * unknown: (-1, -0.125) -> -2 */
static void test_onehot_scaled(void)
{
    mdl_model_t m;
    mdl_err_t err;
    const double x[] = {0, 1, -1};
    double out[3];

    CHECK_EQ_INT(load("{" HDR BIN "'features':[{'name':'c','categories':['a','b']}],"
                      PRE("{'type':'pipeline','steps':[{'type':'one_hot_encoder','handle_unknown':'ignore'},"
                          "{'type':'standard_scaler','mean':[0.5,0.25],'scale':[0.5,2]}]}")
                      LIN("[1,8]", "0") "}", &m, &err), 0);
    CHECK_EQ_INT(score(&m, x, 3, MDL_OUTPUT_MARGIN, out, &err), 0);
    CHECK_NEAR(out[0], 0, 0);
    CHECK_NEAR(out[1], 2, 0);
    CHECK_NEAR(out[2], -2, 0);
    release(&m);
}

/* ColumnTransformer: outputs in transformer order, repeated columns allowed, 'drop'
 * entries consume their columns, then the remainder in input order. Inputs a, b, c, d:
 * [c, a] passthrough, [a] scaled (a-1)/1, [b] dropped, remainder d. */
static void test_column_transformer(void)
{
#define CT(rem, coef)                                                                              \
    "{" HDR BIN "'features':[{'name':'a'},{'name':'b'},{'name':'c'},{'name':'d'}],"                \
    PRE("{'type':'column_transformer','remainder':'" rem "','transformers':["                      \
        "{'name':'p','columns':[2,0],'step':{'type':'passthrough'}},"                              \
        "{'columns':[0],'step':{'type':'standard_scaler','mean':[1],'scale':[1]}},"                \
        "{'name':'gone','columns':[1],'step':{'type':'drop'}}]}")                                  \
    LIN(coef, "0") "}"
    const double x[] = {2, NAN, 3, 4}; /* b is dropped, so missing is fine */
    int r;
    mdl_err_t err;

    /* c + 10a + 100(a-1) + 1000d = 3 + 20 + 100 + 4000 */
    CHECK_NEAR(margin1(CT("passthrough", "[1,10,100,1000]"), x, &r, &err), 4123, 0);
    CHECK_EQ_INT(r, 0);
    CHECK_NEAR(margin1(CT("drop", "[1,10,100]"), x, &r, &err), 123, 0);
    CHECK_EQ_INT(r, 0);
#undef CT
}

static void test_result_not_finite(void)
{
    mdl_model_t m;
    mdl_err_t err;
    const double x[] = {1, -1}, y[] = {1e308, 1e308};
    double out;

    CHECK_EQ_INT(load("{" HDR BIN FEAT2 LIN("[1e308,1e308]", "0") "}", &m, &err), 0);
    CHECK_EQ_INT(score(&m, x, 1, MDL_OUTPUT_MARGIN, &out, &err), 0);
    CHECK_NEAR(out, 0, 0);
    /* 1e308 * 1e308 overflows */
    CHECK_EQ_INT(score(&m, y, 1, MDL_OUTPUT_MARGIN, &out, &err), -EPROTO);
    CHECK_MSG(err, "row 0: the result is not finite");
    release(&m);
}

/* ---- loader validation ------------------------------------------------------------------ */

static void test_loader_errors(void)
{
    static const struct {
        const char *doc;
        const char *msg; /* the field path and what is wrong */
    } cases[] = {
        {"[1]", "(document): expected an object, got an array"},
        {"{" HDR BIN FEAT2 "'coef':[[0.5,-1.25]],'intercept':[0.25]", "expected ',' or '}'"},
        {"{'format':'modeld-gbdt','format_version':1}", "format: expected \"modeld-lr\", got \"modeld-gbdt\""},
        {"{'format_version':1}", "format: required field is missing"},
        {"{'format':'modeld-lr','format_version':2," BIN FEAT2 W2 "}", "format_version: 2 is not supported"},
        {"{'format':'modeld-lr','format_version':'1'," BIN FEAT2 W2 "}", "format_version: expected a number, got a string"},
        {"{'format':'modeld-lr','format_version':1.5," BIN FEAT2 W2 "}", "format_version: expected an integer"},
        {"{" HDR BIN FEAT2 W2 ",'bogus':1}", "bogus: unknown field"},
        {"{" HDR BIN FEAT2 W2 ",'coef':[[1,2]]}", "coef: duplicate field"},
        {"{" HDR "'estimator':'SVC','task':'binary','classes':[0,1]," FEAT2 W2 "}", "estimator: expected \"LogisticRegression\" or \"LinearSVC\", got \"SVC\""},
        {"{" HDR "'estimator':'LogisticRegression','task':'multiclass','classes':[0,1]," FEAT2 W2 "}", "task: expected \"binary\""},
        {"{" HDR "'estimator':'LinearSVC','task':'binary','classes':[0,1]," FEAT2 W2 "}", "task: expected \"decision\""},
        {"{" HDR "'estimator':'LogisticRegression','classes':[0,1]," FEAT2 W2 "}", "task: required field is missing"},
        {"{" HDR BIN "'multi_class':'auto'," FEAT2 W2 "}", "multi_class: expected \"ovr\" or \"multinomial\", got \"auto\""},
        {"{" HDR "'estimator':'LinearSVC','task':'decision','multi_class':'ovr','classes':[0,1]," FEAT2 W2 "}", "multi_class: only allowed for LogisticRegression"},
        {"{" HDR "'estimator':'LogisticRegression','task':'multiclass','classes':[0,1,2]," FEAT2 "'coef':[[1,2],[3,4],[5,6]],'intercept':[0,0,0]}", "multi_class: required"},
        {"{" HDR "'estimator':'LogisticRegression','task':'binary','classes':[0]," FEAT2 W2 "}", "classes: expected at least 2 classes, got 1"},
        {"{" HDR "'estimator':'LogisticRegression','task':'binary','classes':['a','a']," FEAT2 W2 "}", "classes: duplicate class \"a\""},
        {"{" HDR "'estimator':'LogisticRegression','task':'binary','classes':[1,1.0]," FEAT2 W2 "}", "classes: duplicate class \"1\""},
        {"{" HDR "'estimator':'LogisticRegression','task':'binary','classes':[0,null]," FEAT2 W2 "}", "classes[1]: expected a string, number or boolean, got null"},
        {"{" HDR BIN W2 "}", "features: required field is missing"},
        {"{" HDR BIN "'features':[]," W2 "}", "features: must not be empty"},
        {"{" HDR BIN "'features':[{'name':'a'},{'name':'a'}]," W2 "}", "features: duplicate feature name \"a\""},
        {"{" HDR BIN "'features':[{'name':'a'},{'name':''}]," W2 "}", "features[1].name: must be a non-empty string"},
        {"{" HDR BIN "'features':[{'name':'a'},{'name':'b\\u0000c'}]," W2 "}", "features[1].name: must be a non-empty string without \\u0000"},
        {"{" HDR BIN "'features':[{'name':'a'},{'nam':'b'}]," W2 "}", "features[1].nam: unknown field"},
        {"{" HDR BIN "'features':[{'name':'a'},{}]," W2 "}", "features[1].name: required field is missing"},
        {"{" HDR BIN "'features':[{'name':'a'},{'name':7}]," W2 "}", "features[1].name: expected a string, got a number"},
        {"{" HDR BIN "'features':[{'name':'a'},{'name':'b','categories':[]}]," W2 "}", "features[1].categories: must not be empty"},
        {"{" HDR BIN "'features':[{'name':'a'},{'name':'b','categories':['x','y','x']}]," W2 "}", "features[1].categories: duplicate category \"x\""},
        {"{" HDR BIN "'features':[{'name':'a'},{'name':'b','categories':['x',3]}]," W2 "}", "features[1].categories[1]: expected a string, got a number"},
        {"{" HDR BIN "'features':[{'name':'a'},{'name':'b','categories':'x'}]," W2 "}", "features[1].categories: expected an array"},
        {"{" HDR BIN FEAT2 "'intercept':[0.25]}", "coef: required field is missing"},
        {"{" HDR BIN FEAT2 "'coef':[[0.5,-1.25]]}", "intercept: required field is missing"},
        {"{" HDR BIN FEAT2 "'coef':[[0.5,-1.25],[1,2]],'intercept':[0.25]}", "coef: expected 1 row (one per model for 2 classes), got 2"},
        {"{" HDR BIN FEAT2 "'coef':[0.5,-1.25],'intercept':[0.25]}", "coef: expected 1 row"},
        {"{" HDR BIN FEAT2 "'coef':[[0.5,-1.25,3]],'intercept':[0.25]}", "coef: rows have 3 columns but the features after preprocessing are 2 wide"},
        {"{" HDR BIN FEAT2 "'coef':[[]],'intercept':[0.25]}", "coef[0]: must not be empty"},
        {"{" HDR BIN FEAT2 "'coef':[[0.5,'x']],'intercept':[0.25]}", "coef[0][1]: expected a number, got a string"},
        {"{" HDR BIN FEAT2 "'coef':[[0.5,1e999]],'intercept':[0.25]}", "in coef[0][1]: number 1e999 is out of range"},
        {"{" HDR BIN FEAT2 "'coef':[[0.5,-1.25]],'intercept':[-1e400]}", "in intercept[0]: number -1e400 is out of range"},
        {"{" HDR BIN FEAT2 "'coef':[[0.5,NaN]],'intercept':[0.25]}", "in coef[0][1]: expected a JSON value"},
        {"{" HDR BIN FEAT2 "'coef':[[0.5,-1.25]],'intercept':[0.25,1]}", "intercept: expected 1 numbers, got 2"},
        {"{" HDR "'estimator':'LogisticRegression','task':'multiclass','multi_class':'ovr','classes':[0,1,2]," FEAT2 "'coef':[[1,2],[3,4],[5]],'intercept':[0,0,0]}", "coef[2]: expected 2 numbers like coef[0], got 1"},
        {"{" HDR "'estimator':'LogisticRegression','task':'multiclass','multi_class':'ovr','classes':[0,1,2]," FEAT2 "'coef':[[1,2],[3,4]],'intercept':[0,0]}", "coef: expected 3 rows (one per class for 3 classes), got 2"},
        /* preprocessing */
        {"{" HDR BIN FEAT2 PRE("{'type':'standard_scaler','mean':[1,2],'scale':[1,0]}") W2 "}", "preprocess.scale[1]: must not be zero"},
        {"{" HDR BIN FEAT2 PRE("{'type':'standard_scaler','mean':[1],'scale':[1,1]}") W2 "}", "preprocess.mean: expected 2 numbers (the width of the step's input), got 1"},
        {"{" HDR BIN FEAT2 PRE("{'type':'standard_scaler','mean':[1,'2']}") W2 "}", "preprocess.mean[1]: expected a number, got a string"},
        {"{" HDR BIN FEAT2 PRE("{'type':'min_max_scaler','scale':[1,0],'min':[0,0]}") W2 "}", "preprocess.scale[1]: must not be zero"},
        {"{" HDR BIN FEAT2 PRE("{'type':'min_max_scaler','scale':[1,1]}") W2 "}", "preprocess.min: required field is missing"},
        {"{" HDR BIN FEAT2 PRE("{'type':'standard_scaler','with_mean':false}") W2 "}", "preprocess.with_mean: unknown field"},
        {"{" HDR BIN FEAT2 PRE("{'type':'quantile_transformer'}") W2 "}", "preprocess.type: unknown step type \"quantile_transformer\""},
        {"{" HDR BIN FEAT2 PRE("{'steps':[]}") W2 "}", "preprocess.type: required field is missing"},
        {"{" HDR BIN FEAT2 PRE("[]") W2 "}", "preprocess: expected an object, got an array"},
        {"{" HDR BIN FEAT2 PRE("{'type':'pipeline','steps':[{'type':'passthrough'},{'type':'simple_imputer','fill':[1]}]}") W2 "}", "preprocess.steps[1].fill: expected 2 values"},
        {"{" HDR BIN FEAT2 PRE("{'type':'simple_imputer','fill':[1,'x']}") W2 "}", "preprocess.fill[1]: expected a number for numeric column 'b', got a string"},
        {"{" HDR BIN FEAT2 PRE("{'type':'one_hot_encoder','handle_unknown':'ignore'}") W2 "}", "preprocess: column 0 (feature 'a') is not categorical"},
        {"{" HDR BIN FEAT2 PRE("{'type':'column_transformer','remainder':'drop','transformers':[{'columns':[2],'step':{'type':'passthrough'}}]}") W2 "}", "preprocess.transformers[0].columns[0]: expected a column index in [0, 2)"},
        {"{" HDR BIN FEAT2 PRE("{'type':'column_transformer','remainder':'drop','transformers':[{'columns':[0.5],'step':{'type':'passthrough'}}]}") W2 "}", "preprocess.transformers[0].columns[0]: expected a column index"},
        {"{" HDR BIN FEAT2 PRE("{'type':'column_transformer','remainder':'keep','transformers':[]}") W2 "}", "preprocess.remainder: expected \"drop\" or \"passthrough\", got \"keep\""},
        {"{" HDR BIN FEAT2 PRE("{'type':'column_transformer','remainder':'drop','transformers':[{'columns':[0],'step':{'type':'passthrough'},'weight':2}]}") W2 "}", "preprocess.transformers[0].weight: unknown field"},
        {"{" HDR BIN FEAT2 PRE("{'type':'column_transformer','remainder':'drop','transformers':[{'columns':[0,1],'step':{'type':'pipeline','steps':[{'type':'standard_scaler','scale':[1,0]}]}}]}") W2 "}", "preprocess.transformers[0].step.steps[0].scale[1]: must not be zero"},
        {"{" HDR BIN FEAT2 PRE("{'type':'column_transformer','remainder':'drop','transformers':[{'columns':[0],'step':{'type':'passthrough'}}]}") W2 "}", "coef: rows have 2 columns but the features after preprocessing are 1 wide"},
        {"{" HDR BIN "'features':[{'name':'a'},{'name':'c','categories':['x']}]," W2 "}", "categorical feature 'c' reaches the linear model without one_hot_encoder"},
        {"{" HDR BIN "'features':[{'name':'a'},{'name':'c','categories':['x']}]," PRE("{'type':'standard_scaler','scale':[1,1]}") W2 "}", "preprocess: column 1 is categorical feature 'c'"},
        {"{" HDR BIN "'features':[{'name':'a'},{'name':'c','categories':['x']}]," PRE("{'type':'simple_imputer','fill':[0,1]}") W2 "}", "preprocess.fill[1]: expected a string for categorical feature 'c', got a number"},
        {"{" HDR BIN "'features':[{'name':'c','categories':['x','y']}]," PRE("{'type':'one_hot_encoder','handle_unknown':'infrequent_if_exist'}") W2 "}", "preprocess.handle_unknown: expected \"ignore\" or \"error\""},
        {"{" HDR BIN "'features':[{'name':'c','categories':['x','y']}]," PRE("{'type':'pipeline','steps':[{'type':'one_hot_encoder','handle_unknown':'ignore'},{'type':'one_hot_encoder','handle_unknown':'ignore'}]}") W2 "}", "preprocess.steps[1]: column 0 (feature 'c') is not categorical"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        mdl_model_t m;
        mdl_err_t err = {0};
        char *s = dq(cases[i].doc);
        memset(&m, 0, sizeof m);
        int r = mdl_lr_load_mem(s, strlen(s), &m, &err);
        free(s);
        if (r != -EBADMSG || err.code != -EBADMSG || !strstr(err.msg, cases[i].msg))
            CHECK_FAIL_("case %zu: got %d \"%s\", want -EBADMSG \"%s\"", i, r, err.msg, cases[i].msg);
        /* a failed load leaves the model as it was */
        CHECK(m.impl == NULL && m.features == NULL && m.classes == NULL);
        CHECK_EQ_INT(m.n_features + m.n_classes, 0);
    }
}

/* Every prefix of a valid document (a truncated file) is refused, never crashes. */
static void test_truncated(void)
{
    static const char doc[] =
        "{" HDR BIN "'features':[{'name':'n'},{'name':'c','categories':['x','y']}],"
        PRE("{'type':'column_transformer','remainder':'passthrough','transformers':[{'columns':[1],"
            "'step':{'type':'one_hot_encoder','handle_unknown':'ignore'}}]}")
        LIN("[1,2,3]", "0") "}";
    char *s = dq(doc);
    size_t n = strlen(s);
    int bad = 0;

    for (size_t len = 0; len < n; len++) {
        mdl_model_t m;
        mdl_err_t err = {0};
        char *cut = malloc(len ? len : 1);
        memcpy(cut, s, len);
        memset(&m, 0, sizeof m);
        if (mdl_lr_load_mem(cut, len, &m, &err) != -EBADMSG || !strstr(err.msg, "JSON error at byte"))
            bad++;
        free(cut);
    }
    CHECK_EQ_INT(bad, 0);
    mdl_model_t m;
    mdl_err_t err;
    CHECK_EQ_INT(load(doc, &m, &err), 0);
    release(&m);
    free(s);
}

static void test_depth_limit(void)
{
    char doc[4096];
    size_t used = 0;
    mdl_model_t m;
    mdl_err_t err;

    used += (size_t)snprintf(doc + used, sizeof doc - used, "{" HDR BIN FEAT2 W2 ",'preprocess':");
    for (int i = 0; i < MDL_LR_MAX_JSON_DEPTH; i++)
        used += (size_t)snprintf(doc + used, sizeof doc - used, "{'type':'pipeline','steps':[");
    used += (size_t)snprintf(doc + used, sizeof doc - used, "{'type':'passthrough'}");
    for (int i = 0; i < MDL_LR_MAX_JSON_DEPTH; i++)
        used += (size_t)snprintf(doc + used, sizeof doc - used, "]}");
    snprintf(doc + used, sizeof doc - used, "}");
    CHECK_EQ_INT(load(doc, &m, &err), -EBADMSG);
    CHECK_MSG(err, "nesting deeper than 64 levels");
}

/* A few hundred KB that would make the compile step do ~10^8 copies: refused, quickly. */
static void test_preprocess_budget(void)
{
    size_t cap = 1 << 20, used = 0;
    char *doc = malloc(cap);
    mdl_model_t m;
    mdl_err_t err = {0};

    used += (size_t)snprintf(doc + used, cap - used,
                             "{" HDR BIN "'features':[{'name':'a'}],'coef':[[1]],'intercept':[0],"
                             "'preprocess':{'type':'pipeline','steps':[{'type':'column_transformer',"
                             "'remainder':'drop','transformers':[{'columns':[0");
    for (int i = 1; i < 4096; i++)
        used += (size_t)snprintf(doc + used, cap - used, ",0");
    used += (size_t)snprintf(doc + used, cap - used, "],'step':{'type':'passthrough'}}]}");
    for (int i = 0; i < 20000; i++)
        used += (size_t)snprintf(doc + used, cap - used, ",{'type':'passthrough'}");
    snprintf(doc + used, cap - used, "]}}");
    CHECK_EQ_INT(load(doc, &m, &err), -EBADMSG);
    CHECK_MSG(err, "preprocess: too large");
    free(doc);
}

/* Through the kind's loader and model.c: file bounds, the path in messages. */
static void test_load_file(void)
{
    char dir[] = "/tmp/test_lr.XXXXXX", path[256];
    mdl_model_t *m = NULL;
    mdl_err_t err = {0};
    FILE *f;
    char *good = dq(GOOD);
    double x[] = {1, 2}, out;

    if (!mkdtemp(dir)) {
        CHECK(!"mkdtemp");
        return;
    }
    snprintf(path, sizeof path, "%s/lr.json", dir);
    f = fopen(path, "w");
    fputs(good, f);
    fclose(f);
    CHECK_EQ_INT(mdl_model_load_dir(dir, &(mdl_load_opts_t){.kind = "lr"}, &m, &err), 0);
    if (m) {
        CHECK_EQ_INT(mdl_model_score(m, x, 1, MDL_OUTPUT_MARGIN, &out, &err), 0);
        CHECK_NEAR(out, -1.75, 0);
        CHECK_EQ_INT(mdl_model_feature_index(m, "b"), 1);
        m = mdl_model_unref(m);
    }
    CHECK_EQ_INT(mdl_model_load_dir(dir, &(mdl_load_opts_t){.max_artifact_bytes = 20}, &m, &err),
                 -E2BIG);
    CHECK_MSG(err, path);
    CHECK(m == NULL);

    f = fopen(path, "w");
    fwrite(good, 1, strlen(good) / 2, f);
    fclose(f);
    CHECK_EQ_INT(mdl_model_load_dir(dir, NULL, &m, &err), -EBADMSG);
    CHECK_MSG(err, path);
    CHECK_MSG(err, "JSON error at byte");
    unlink(path);
    rmdir(dir);
    free(good);
}

int main(void)
{
    RUN(test_binary_ovr);
    RUN(test_binary_multinomial);
    RUN(test_multiclass);
    RUN(test_svc_binary);
    RUN(test_class_labels);
    RUN(test_scalers_imputers);
    RUN(test_onehot);
    RUN(test_onehot_scaled);
    RUN(test_column_transformer);
    RUN(test_result_not_finite);
    RUN(test_loader_errors);
    RUN(test_truncated);
    RUN(test_depth_limit);
    RUN(test_preprocess_budget);
    RUN(test_load_file);
    return check_summary();
}
