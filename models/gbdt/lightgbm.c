/* LightGBM text models (Booster.save_model / LGBM_BoosterSaveModel, format v2 to v4) read
 * into the forest builder (forest.h) with LightGBM's prediction semantics.
 *
 * The file, as LightGBM v4.6 writes it (lines end in "\n"; "\r\n" is accepted too):
 *
 *   tree                                  first line, always
 *   version=v4                            v2, v3 or v4
 *   num_class=1                           outputs per row
 *   num_tree_per_iteration=1              trees per boosting round (= num_class)
 *   label_index=0
 *   max_feature_idx=19                    input columns - 1
 *   objective=binary sigmoid:1            name, then words or key:value parameters
 *   average_output                        only for rf: the prediction is the tree mean
 *   feature_names=f0 f1 ...               max_feature_idx + 1 names, ' '-separated
 *   feature_infos=[-8.1:6.0] none 1:4:2   one per feature (range, none, or categories)
 *   tree_sizes=3316 3389 ...              bytes of each tree block (v2.2 and later)
 *   <blank line>
 *   Tree=0                                one block per tree, numbered from 0
 *   num_leaves=31                         n; the tree has n - 1 internal nodes
 *   num_cat=0                             categorical splits in this tree
 *   split_feature=...                     n - 1 input columns
 *   split_gain=...                        n - 1 (not used to predict)
 *   threshold=...                         n - 1 doubles; categorical: index into cat_boundaries
 *   decision_type=...                     n - 1 bit sets: 1 categorical, 2 default left,
 *                                         (dt >> 2) & 3 missing type 0 None, 1 Zero, 2 NaN
 *   left_child=... right_child=...        n - 1 each: >= 0 internal node, < 0 leaf ~c
 *   leaf_value=...                        n doubles (learning rate already applied)
 *   leaf_weight= leaf_count=              n each (not used to predict)
 *   internal_value= internal_weight=      n - 1 each (not used to predict)
 *   internal_count=                       n - 1 training rows per split (orders the scorer's
 *                                         memory, never changes a result)
 *   cat_boundaries=0 1 3 ...              num_cat + 1 offsets into cat_threshold (num_cat > 0)
 *   cat_threshold=...                     uint32 words: bit c set -> category c goes left
 *   is_linear=0                           1: linear leaves, then also
 *     leaf_const=...                      n doubles
 *     num_features=...                    n counts
 *     leaf_features=...                   sum(num_features) input columns, leaf by leaf
 *     leaf_coeff=...                      sum(num_features) doubles
 *   shrinkage=0.1
 *   <blank line>
 *   ...
 *   end of trees
 *   feature_importances: / parameters: ... end of parameters / pandas_categorical:...
 *
 * A tree with num_leaves=1 is a constant (its split lines are empty). Prediction, as
 * LightGBM's GBDT::Predict does it: tree t adds to output t % num_tree_per_iteration, in
 * tree order, in double; rf (average_output) divides the sums by the number of rounds
 * before the objective's transform; the raw score is the plain sum (LightGBM's PredictRaw
 * does not average). LightGBM's C API reads inputs with |x| <= 1e-35f as 0.0; numeric
 * thresholds are moved so that raw inputs split the same way (zero_flushed_threshold).
 *
 * The parser checks everything it reads: every declared count against the values on the
 * line, every number in full, every index in range, the tree structure, the tree_sizes
 * offsets and the "end of trees" line (so a truncated file is noticed). Messages name the
 * line, the tree and the field. */
#include "gbdt.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forest.h"

/* A tree block is at most this many lines (LightGBM writes at most 22 and reads no more). */
#define LGB_MAX_TREE_LINES 64
/* Longest number we read (LightGBM writes at most 24 characters). */
#define LGB_MAX_NUMBER_CHARS 64

/* ---- text ----------------------------------------------------------------------------- */

typedef struct span {
    const char *p;
    size_t n;
} span_t;

typedef struct reader {
    const char *p, *end;
    size_t line;          /* number of the line last returned, 1-based */
} reader_t;

/* Returns the next line without its terminator ("\n" or "\r\n") and advances; false at the
 * end of the data. */
static bool next_line(reader_t *r, span_t *ret)
{
    const char *nl;

    if (r->p >= r->end)
        return false;
    nl = memchr(r->p, '\n', (size_t)(r->end - r->p));
    ret->p = r->p;
    ret->n = (size_t)((nl ? nl : r->end) - r->p);
    r->p = nl ? nl + 1 : r->end;
    if (ret->n && ret->p[ret->n - 1] == '\r')
        ret->n--;
    r->line++;
    return true;
}

static bool span_eq(span_t s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.p, lit, n) == 0;
}

static bool span_starts(span_t s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n >= n && memcmp(s.p, lit, n) == 0;
}

/* Next ' '-separated token of *s. LightGBM splits on single spaces and skips empty tokens,
 * so runs of spaces separate like one (linear trees write them). */
static bool next_token(span_t *s, span_t *tok)
{
    while (s->n && *s->p == ' ') {
        s->p++;
        s->n--;
    }
    if (!s->n)
        return false;
    tok->p = s->p;
    while (s->n && *s->p != ' ') {
        s->p++;
        s->n--;
    }
    tok->n = (size_t)(s->p - tok->p);
    return true;
}

static size_t count_tokens(span_t s)
{
    span_t t;
    size_t n = 0;

    while (next_token(&s, &t))
        n++;
    return n;
}

/* True if the token is a number as LightGBM writes one ("%.17g", or inf / nan), with an
 * optional sign: [+-]? (digits [. digits*] | . digits) [(e|E) [+-]? digits], no hex, no
 * surrounding junk. */
static bool lex_number(span_t t)
{
    size_t i = 0, d = 0;

    if (i < t.n && (t.p[i] == '-' || t.p[i] == '+'))
        i++;
    if (t.n - i == 3 && (memcmp(t.p + i, "inf", 3) == 0 || memcmp(t.p + i, "nan", 3) == 0))
        return true;
    while (i < t.n && t.p[i] >= '0' && t.p[i] <= '9')
        i++, d++;
    if (i < t.n && t.p[i] == '.') {
        i++;
        while (i < t.n && t.p[i] >= '0' && t.p[i] <= '9')
            i++, d++;
    }
    if (d == 0)
        return false;
    if (i < t.n && (t.p[i] == 'e' || t.p[i] == 'E')) {
        i++;
        if (i < t.n && (t.p[i] == '-' || t.p[i] == '+'))
            i++;
        if (i == t.n)
            return false;
        while (i < t.n && t.p[i] >= '0' && t.p[i] <= '9')
            i++;
    }
    return i == t.n;
}

/* Parses a whole token (see lex_number) as a double, correctly rounded like LightGBM's
 * readers (strtod / fast_double_parser) for every value that matters to predictions. */
static bool parse_double(span_t t, double *ret)
{
    char buf[LGB_MAX_NUMBER_CHARS + 1], *end;

    if (t.n == 0 || t.n > LGB_MAX_NUMBER_CHARS || !lex_number(t))
        return false;
    memcpy(buf, t.p, t.n);
    buf[t.n] = '\0';
    *ret = strtod(buf, &end);
    return end == buf + t.n;
}

/* Parses a whole token as a decimal integer in [lo, hi]. */
static bool parse_int(span_t t, long long lo, long long hi, long long *ret)
{
    size_t i = 0;
    bool neg = false;
    unsigned long long v = 0;

    if (t.n && (t.p[0] == '-' || t.p[0] == '+')) {
        neg = t.p[0] == '-';
        i = 1;
    }
    if (i == t.n || t.n > 24)
        return false;
    for (; i < t.n; i++) {
        if (t.p[i] < '0' || t.p[i] > '9')
            return false;
        v = v * 10 + (unsigned)(t.p[i] - '0');
        if (v > ((unsigned long long)1 << 62))
            return false;
    }
    long long s = neg ? -(long long)v : (long long)v;
    if (s < lo || s > hi)
        return false;
    *ret = s;
    return true;
}

/* ---- errors --------------------------------------------------------------------------- */

/* Sets reterr to "line L (tree T): <message>" (tree part when tree >= 0, line part when
 * line > 0) and returns code. */
static int fail(mdl_err_t *reterr, int code, size_t line, long tree, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int fail(mdl_err_t *reterr, int code, size_t line, long tree, const char *fmt, ...)
{
    char msg[sizeof reterr->msg], where[64] = "";
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (line > 0 && tree >= 0)
        snprintf(where, sizeof where, "line %zu (tree %ld): ", line, tree);
    else if (line > 0)
        snprintf(where, sizeof where, "line %zu: ", line);
    else if (tree >= 0)
        snprintf(where, sizeof where, "tree %ld: ", tree);
    return mdl_err_set(reterr, code, "%s%s", where, msg);
}

/* At most 24 characters of s, for quoting file text in messages. */
#define QUOTE_MAX 24
#define QUOTE(s) (int)((s).n < QUOTE_MAX ? (s).n : QUOTE_MAX), (s).p

/* ---- the file, parsed ------------------------------------------------------------------ */

typedef enum lgb_objective_kind {
    OBJ_CUSTOM = 0,  /* no objective line, or custom: raw scores */
    OBJ_REGRESSION,  /* regression, regression_l1, huber, fair, quantile, mape (+ sqrt) */
    OBJ_EXP,         /* poisson, gamma, tweedie */
    OBJ_BINARY,
    OBJ_MULTICLASS,
    OBJ_MULTICLASSOVA,
    OBJ_XENTROPY,    /* cross_entropy: sigmoid */
    OBJ_XENTLAMBDA,  /* cross_entropy_lambda: log(1 + exp(x)) */
    OBJ_RANKING,     /* lambdarank, rank_xendcg */
} lgb_objective_kind_t;

typedef struct lgb_objective {
    lgb_objective_kind_t kind;
    double sigmoid;      /* binary, multiclassova */
    long long num_class; /* multiclass, multiclassova */
    bool sqrt;           /* regression family: prediction = sign(x) * x * x */
} lgb_objective_t;

typedef struct lgb_tree {
    size_t line;              /* of "Tree=" */
    size_t num_leaves;        /* n >= 1 */
    size_t num_cat;
    bool is_linear;
    int32_t *split_feature;   /* n - 1 */
    double *threshold;        /* n - 1 */
    uint8_t *decision_type;   /* n - 1 */
    int32_t *left, *right;    /* n - 1 each; < 0: leaf ~c */
    double *leaf_value;       /* n */
    uint32_t *internal_count; /* n - 1, or NULL when absent (see mdl_forest_node_in_t) */
    uint32_t *cat_boundaries; /* num_cat + 1 */
    uint32_t *cat_threshold;  /* cat_boundaries[num_cat] words */
    double *leaf_const;       /* linear: n */
    uint32_t *num_features;   /* linear: n */
    size_t n_lin;             /* linear: sum of num_features */
    uint32_t *leaf_features;  /* linear: n_lin */
    double *leaf_coeff;       /* linear: n_lin */
} lgb_tree_t;

typedef struct lgb_file {
    long long num_class, num_tree_per_iteration, max_feature_idx;
    bool average_output;
    bool has_objective;
    lgb_objective_t obj;
    char objective_text[128]; /* the objective line, for metadata (cut if longer) */
    size_t n_features;
    char **feature_names;     /* n_features */
    size_t n_trees, cap_trees;
    lgb_tree_t *trees;
} lgb_file_t;

static void tree_done(lgb_tree_t *t)
{
    free(t->split_feature);
    free(t->threshold);
    free(t->decision_type);
    free(t->left);
    free(t->right);
    free(t->leaf_value);
    free(t->internal_count);
    free(t->cat_boundaries);
    free(t->cat_threshold);
    free(t->leaf_const);
    free(t->num_features);
    free(t->leaf_features);
    free(t->leaf_coeff);
}

static void file_done(lgb_file_t *f)
{
    for (size_t i = 0; f->feature_names && i < f->n_features; i++)
        free(f->feature_names[i]);
    free(f->feature_names);
    for (size_t i = 0; i < f->n_trees; i++)
        tree_done(&f->trees[i]);
    free(f->trees);
}

/* ---- header -------------------------------------------------------------------------- */

/* Header keys we read; others are ignored like LightGBM does. */
enum {
    H_VERSION,
    H_NUM_CLASS,
    H_NUM_TREE_PER_ITERATION,
    H_LABEL_INDEX,
    H_MAX_FEATURE_IDX,
    H_OBJECTIVE,
    H_AVERAGE_OUTPUT,
    H_FEATURE_NAMES,
    H_FEATURE_INFOS,
    H_TREE_SIZES,
    H_COUNT
};

static const char *const header_keys[H_COUNT] = {
    "version", "num_class", "num_tree_per_iteration", "label_index", "max_feature_idx",
    "objective", "average_output", "feature_names", "feature_infos", "tree_sizes",
};

typedef struct header {
    bool has[H_COUNT];
    span_t val[H_COUNT];
    size_t line[H_COUNT];
} header_t;

/* LightGBM's objective aliases (config.h ParseObjectiveAlias), applied to the whole line
 * as LightGBM does: only a bare alias is renamed. */
static span_t objective_alias(span_t s)
{
    static const struct {
        const char *name, *canon;
    } alias[] = {
        {"regression_l2", "regression"}, {"mean_squared_error", "regression"},
        {"mse", "regression"}, {"l2", "regression"}, {"l2_root", "regression"},
        {"root_mean_squared_error", "regression"}, {"rmse", "regression"},
        {"mean_absolute_error", "regression_l1"}, {"l1", "regression_l1"},
        {"mae", "regression_l1"}, {"softmax", "multiclass"}, {"multiclass_ova", "multiclassova"},
        {"ova", "multiclassova"}, {"ovr", "multiclassova"}, {"xentropy", "cross_entropy"},
        {"xentlambda", "cross_entropy_lambda"}, {"mean_absolute_percentage_error", "mape"},
        {"xendcg", "rank_xendcg"}, {"xe_ndcg", "rank_xendcg"}, {"xe_ndcg_mart", "rank_xendcg"},
        {"xendcg_mart", "rank_xendcg"}, {"none", "custom"}, {"null", "custom"},
        {"na", "custom"},
    };
    for (size_t i = 0; i < sizeof alias / sizeof alias[0]; i++)
        if (span_eq(s, alias[i].name))
            return (span_t){alias[i].canon, strlen(alias[i].canon)};
    return s;
}

/* Parses the objective line ("binary sigmoid:1", "multiclass num_class:3", "regression
 * sqrt", ...) with the rules of LightGBM's objective constructors. */
static int parse_objective(span_t line_val, size_t line, lgb_objective_t *o, mdl_err_t *reterr)
{
    static const struct {
        const char *name;
        lgb_objective_kind_t kind;
        bool sqrt_ok;
    } names[] = {
        {"regression", OBJ_REGRESSION, true},   {"regression_l1", OBJ_REGRESSION, true},
        {"huber", OBJ_REGRESSION, false},       {"fair", OBJ_REGRESSION, true},
        {"quantile", OBJ_REGRESSION, true},     {"mape", OBJ_REGRESSION, true},
        {"poisson", OBJ_EXP, false},            {"gamma", OBJ_EXP, false},
        {"tweedie", OBJ_EXP, false},            {"binary", OBJ_BINARY, false},
        {"multiclass", OBJ_MULTICLASS, false},  {"multiclassova", OBJ_MULTICLASSOVA, false},
        {"cross_entropy", OBJ_XENTROPY, false}, {"cross_entropy_lambda", OBJ_XENTLAMBDA, false},
        {"lambdarank", OBJ_RANKING, false},     {"rank_xendcg", OBJ_RANKING, false},
        {"custom", OBJ_CUSTOM, false},
    };
    span_t s = objective_alias(line_val), type, tok;
    size_t i;
    bool sqrt_ok = false, has_sigmoid = false, has_num_class = false;

    memset(o, 0, sizeof *o);
    if (!next_token(&s, &type))
        return fail(reterr, -EBADMSG, line, -1, "objective is empty");
    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        if (span_eq(type, names[i].name))
            break;
    if (i == sizeof names / sizeof names[0])
        return fail(reterr, -EBADMSG, line, -1, "unknown objective '%.*s'", QUOTE(type));
    o->kind = names[i].kind;
    sqrt_ok = names[i].sqrt_ok;
    while (next_token(&s, &tok)) {
        const char *colon = memchr(tok.p, ':', tok.n);
        span_t key = {tok.p, colon ? (size_t)(colon - tok.p) : tok.n};
        span_t val = {colon ? colon + 1 : tok.p + tok.n, colon ? tok.n - key.n - 1 : 0};

        if (!colon) {
            /* LightGBM reads "sqrt" for the regression family (huber drops it) and ignores
             * other words. */
            if (span_eq(tok, "sqrt"))
                o->sqrt = sqrt_ok;
            continue;
        }
        if (span_eq(key, "sigmoid") &&
            (o->kind == OBJ_BINARY || o->kind == OBJ_MULTICLASSOVA)) {
            if (!parse_double(val, &o->sigmoid) || !isfinite(o->sigmoid) || !(o->sigmoid > 0))
                return fail(reterr, -EBADMSG, line, -1,
                            "objective: sigmoid '%.*s' is not a positive number", QUOTE(val));
            has_sigmoid = true;
        } else if (span_eq(key, "num_class") &&
                   (o->kind == OBJ_MULTICLASS || o->kind == OBJ_MULTICLASSOVA)) {
            if (!parse_int(val, 1, (long long)MDL_FOREST_MAX_OUTPUTS, &o->num_class))
                return fail(reterr, -EBADMSG, line, -1,
                            "objective: num_class '%.*s' is not in 1..%zu", QUOTE(val),
                            MDL_FOREST_MAX_OUTPUTS);
            has_num_class = true;
        }
    }
    if ((o->kind == OBJ_BINARY || o->kind == OBJ_MULTICLASSOVA) && !has_sigmoid)
        return fail(reterr, -EBADMSG, line, -1, "objective '%.*s' lacks sigmoid:<value>",
                    QUOTE(type));
    if ((o->kind == OBJ_MULTICLASS || o->kind == OBJ_MULTICLASSOVA) && !has_num_class)
        return fail(reterr, -EBADMSG, line, -1, "objective '%.*s' lacks num_class:<value>",
                    QUOTE(type));
    return 0;
}

/* Reads the header lines up to the first "Tree=" (or "end of trees") line into h. The
 * first line must be "tree". */
static int read_header(reader_t *r, header_t *h, span_t *ret_stop, mdl_err_t *reterr)
{
    span_t l;

    memset(h, 0, sizeof *h);
    if (!next_line(r, &l))
        return fail(reterr, -EBADMSG, 0, -1, "empty file");
    if (!span_eq(l, "tree"))
        return fail(reterr, -EBADMSG, 1, -1,
                    "not a LightGBM text model (the first line is '%.*s', not 'tree')", QUOTE(l));
    for (;;) {
        if (!next_line(r, &l))
            return fail(reterr, -EBADMSG, r->line, -1,
                        "the file ends in the header (no 'Tree=' or 'end of trees' line)");
        if (span_starts(l, "Tree=") || span_eq(l, "end of trees")) {
            *ret_stop = l;
            return 0;
        }
        if (l.n == 0)
            continue;
        const char *eq = memchr(l.p, '=', l.n);
        span_t key = {l.p, eq ? (size_t)(eq - l.p) : l.n};
        for (size_t k = 0; k < H_COUNT; k++) {
            if (!span_eq(key, header_keys[k]))
                continue;
            if (h->has[k])
                return fail(reterr, -EBADMSG, r->line, -1, "'%s' appears twice in the header",
                            header_keys[k]);
            h->has[k] = true;
            h->line[k] = r->line;
            h->val[k] = eq ? (span_t){eq + 1, l.n - key.n - 1} : (span_t){l.p + l.n, 0};
        }
    }
}

static int header_int(const header_t *h, int k, long long lo, long long hi, long long *ret,
                      mdl_err_t *reterr)
{
    if (!h->has[k])
        return fail(reterr, -EBADMSG, 0, -1, "the header has no %s line", header_keys[k]);
    if (!parse_int(h->val[k], lo, hi, ret))
        return fail(reterr, -EBADMSG, h->line[k], -1, "%s '%.*s' is not an integer in %lld..%lld",
                    header_keys[k], QUOTE(h->val[k]), lo, hi);
    return 0;
}

static int parse_header(const header_t *h, lgb_file_t *f, mdl_err_t *reterr)
{
    long long label_index;
    int r;

    if (!h->has[H_VERSION])
        return fail(reterr, -EBADMSG, 0, -1, "the header has no version line");
    if (!span_eq(h->val[H_VERSION], "v2") && !span_eq(h->val[H_VERSION], "v3") &&
        !span_eq(h->val[H_VERSION], "v4"))
        return fail(reterr, -EBADMSG, h->line[H_VERSION], -1,
                    "unsupported version '%.*s' (modeld reads v2, v3 and v4)",
                    QUOTE(h->val[H_VERSION]));
    if ((r = header_int(h, H_NUM_CLASS, 1, (long long)MDL_FOREST_MAX_OUTPUTS, &f->num_class,
                        reterr)) < 0)
        return r;
    f->num_tree_per_iteration = f->num_class;
    if (h->has[H_NUM_TREE_PER_ITERATION] &&
        (r = header_int(h, H_NUM_TREE_PER_ITERATION, 1, (long long)MDL_FOREST_MAX_OUTPUTS,
                        &f->num_tree_per_iteration, reterr)) < 0)
        return r;
    if (f->num_tree_per_iteration != f->num_class)
        return fail(reterr, -EBADMSG, h->line[H_NUM_TREE_PER_ITERATION], -1,
                    "num_tree_per_iteration=%lld differs from num_class=%lld",
                    f->num_tree_per_iteration, f->num_class);
    if ((r = header_int(h, H_LABEL_INDEX, -1, INT32_MAX, &label_index, reterr)) < 0)
        return r;
    if ((r = header_int(h, H_MAX_FEATURE_IDX, 0, (long long)MDL_FOREST_MAX_FEATURES - 1,
                        &f->max_feature_idx, reterr)) < 0)
        return r;
    f->n_features = (size_t)f->max_feature_idx + 1;
    f->average_output = h->has[H_AVERAGE_OUTPUT];

    if (h->has[H_OBJECTIVE]) {
        span_t v = h->val[H_OBJECTIVE];
        if ((r = parse_objective(v, h->line[H_OBJECTIVE], &f->obj, reterr)) < 0)
            return r;
        f->has_objective = true;
        snprintf(f->objective_text, sizeof f->objective_text, "%.*s",
                 (int)(v.n < sizeof f->objective_text ? v.n : sizeof f->objective_text - 1), v.p);
        if ((f->obj.kind == OBJ_MULTICLASS || f->obj.kind == OBJ_MULTICLASSOVA) &&
            f->obj.num_class != f->num_class)
            return fail(reterr, -EBADMSG, h->line[H_OBJECTIVE], -1,
                        "objective num_class:%lld differs from num_class=%lld", f->obj.num_class,
                        f->num_class);
        if (f->obj.kind != OBJ_MULTICLASS && f->obj.kind != OBJ_MULTICLASSOVA &&
            f->obj.kind != OBJ_CUSTOM && f->num_class != 1)
            return fail(reterr, -EBADMSG, h->line[H_OBJECTIVE], -1,
                        "objective '%.*s' has one output but num_class=%lld", QUOTE(v),
                        f->num_class);
    }

    /* feature_names: exactly max_feature_idx + 1 names */
    if (!h->has[H_FEATURE_NAMES])
        return fail(reterr, -EBADMSG, 0, -1, "the header has no feature_names line");
    span_t s = h->val[H_FEATURE_NAMES], tok;
    size_t n = count_tokens(s);
    if (n != f->n_features)
        return fail(reterr, -EBADMSG, h->line[H_FEATURE_NAMES], -1,
                    "feature_names has %zu names, max_feature_idx=%lld needs %zu", n,
                    f->max_feature_idx, f->n_features);
    f->feature_names = calloc(n, sizeof *f->feature_names);
    if (!f->feature_names)
        return mdl_err_set(reterr, -ENOMEM, "out of memory for %zu feature names", n);
    for (size_t i = 0; next_token(&s, &tok); i++) {
        f->feature_names[i] = strndup(tok.p, tok.n);
        if (!f->feature_names[i])
            return mdl_err_set(reterr, -ENOMEM, "out of memory for feature names");
    }
    if (!h->has[H_FEATURE_INFOS])
        return fail(reterr, -EBADMSG, 0, -1, "the header has no feature_infos line");
    n = count_tokens(h->val[H_FEATURE_INFOS]);
    if (n != f->n_features)
        return fail(reterr, -EBADMSG, h->line[H_FEATURE_INFOS], -1,
                    "feature_infos has %zu entries, max_feature_idx=%lld needs %zu", n,
                    f->max_feature_idx, f->n_features);
    return 0;
}

/* ---- trees --------------------------------------------------------------------------- */

/* Tree keys we read (the rest are statistics LightGBM does not need to predict, checked
 * only for their count). */
enum {
    T_NUM_LEAVES,
    T_NUM_CAT,
    T_SPLIT_FEATURE,
    T_SPLIT_GAIN,
    T_THRESHOLD,
    T_DECISION_TYPE,
    T_LEFT_CHILD,
    T_RIGHT_CHILD,
    T_LEAF_VALUE,
    T_LEAF_WEIGHT,
    T_LEAF_COUNT,
    T_INTERNAL_VALUE,
    T_INTERNAL_WEIGHT,
    T_INTERNAL_COUNT,
    T_CAT_BOUNDARIES,
    T_CAT_THRESHOLD,
    T_IS_LINEAR,
    T_LEAF_CONST,
    T_NUM_FEATURES,
    T_LEAF_FEATURES,
    T_LEAF_COEFF,
    T_SHRINKAGE,
    T_COUNT
};

static const char *const tree_keys[T_COUNT] = {
    "num_leaves",     "num_cat",        "split_feature",  "split_gain",    "threshold",
    "decision_type",  "left_child",     "right_child",    "leaf_value",    "leaf_weight",
    "leaf_count",     "internal_value", "internal_weight", "internal_count", "cat_boundaries",
    "cat_threshold",  "is_linear",      "leaf_const",     "num_features",  "leaf_features",
    "leaf_coeff",     "shrinkage",
};

typedef struct tree_lines {
    long index;        /* tree number, for messages */
    size_t tree_line;  /* line of "Tree=", for messages about absent fields */
    bool has[T_COUNT];
    span_t val[T_COUNT];
    size_t line[T_COUNT];
} tree_lines_t;

/* Checks that field k is there with exactly `want` values. */
static int field_count(const tree_lines_t *tl, int k, size_t want, const char *why,
                       mdl_err_t *reterr)
{
    size_t n;

    if (!tl->has[k])
        return fail(reterr, -EBADMSG, tl->tree_line, tl->index, "no %s line", tree_keys[k]);
    n = count_tokens(tl->val[k]);
    if (n != want)
        return fail(reterr, -EBADMSG, tl->line[k], tl->index, "%s has %zu values, %s needs %zu",
                    tree_keys[k], n, why, want);
    return 0;
}

/* Allocates n elements of size sz (at least one, so a count of zero still yields a
 * pointer). */
static void *alloc_n(size_t n, size_t sz)
{
    return calloc(n ? n : 1, sz);
}

static int oom(mdl_err_t *reterr, long tree)
{
    return fail(reterr, -ENOMEM, 0, tree, "out of memory");
}

/* Token i of field k is wrong (or one too many): the count error if the count is wrong
 * too, as field_count would say first, else "field[i] 'token' <what>". The readers below
 * check the count this way, in the pass that reads the tokens, instead of counting first:
 * tokenizing every field twice cost a tenth of a model's load. */
static int token_error(const tree_lines_t *tl, int k, size_t want, const char *why, size_t i,
                       span_t tok, const char *what, mdl_err_t *reterr)
{
    int r;

    if ((r = field_count(tl, k, want, why, reterr)) < 0)
        return r;
    return fail(reterr, -EBADMSG, tl->line[k], tl->index, "%s[%zu] '%.*s' %s", tree_keys[k], i,
                QUOTE(tok), what);
}

/* Reads field k as `want` doubles into a new array *ret; finite: reject inf and NaN. */
static int field_doubles(const tree_lines_t *tl, int k, size_t want, const char *why,
                         bool finite, double **ret, mdl_err_t *reterr)
{
    span_t s = tl->val[k], tok;
    size_t i = 0;

    if (!tl->has[k])
        return field_count(tl, k, want, why, reterr);
    if (!(*ret = alloc_n(want, sizeof **ret)))
        return oom(reterr, tl->index);
    for (; next_token(&s, &tok); i++) {
        if (i == want || !parse_double(tok, &(*ret)[i]))
            return token_error(tl, k, want, why, i, tok, "is not a number", reterr);
        if (finite && !isfinite((*ret)[i]))
            return token_error(tl, k, want, why, i, tok, "is not finite", reterr);
    }
    return i == want ? 0 : field_count(tl, k, want, why, reterr);
}

/* Reads field k as `want` integers in [lo, hi] (within int32 or uint32) into a new array
 * *ret of 32-bit words. */
static int field_integers(const tree_lines_t *tl, int k, size_t want, const char *why,
                          long long lo, long long hi, uint32_t **ret, mdl_err_t *reterr)
{
    span_t s = tl->val[k], tok;
    size_t i = 0;
    long long v;

    if (!tl->has[k])
        return field_count(tl, k, want, why, reterr);
    if (!(*ret = alloc_n(want, sizeof **ret)))
        return oom(reterr, tl->index);
    for (; next_token(&s, &tok); i++) {
        if (i == want || !parse_int(tok, lo, hi, &v)) {
            char what[80];
            snprintf(what, sizeof what, "is not an integer in %lld..%lld", lo, hi);
            return token_error(tl, k, want, why, i, tok, what, reterr);
        }
        (*ret)[i] = (uint32_t)v; /* an int32 reads it back (same width, two's complement) */
    }
    return i == want ? 0 : field_count(tl, k, want, why, reterr);
}

static int field_ints(const tree_lines_t *tl, int k, size_t want, const char *why, long long lo,
                      long long hi, int32_t **ret, mdl_err_t *reterr)
{
    uint32_t *words = NULL;
    int r = field_integers(tl, k, want, why, lo, hi, &words, reterr);

    *ret = (int32_t *)words;
    return r;
}

/* Same for unsigned 32-bit values. */
static int field_uints(const tree_lines_t *tl, int k, size_t want, const char *why,
                       long long hi, uint32_t **ret, mdl_err_t *reterr)
{
    return field_integers(tl, k, want, why, 0, hi, ret, reterr);
}

/* A statistics field (not used to predict): when present, it must have `want` numbers. */
static int field_stats(const tree_lines_t *tl, int k, size_t want, const char *why,
                       mdl_err_t *reterr)
{
    span_t s = tl->val[k], tok;
    size_t i = 0;

    if (!tl->has[k])
        return 0;
    /* syntax only: converting numbers nobody reads would double the load time */
    for (; next_token(&s, &tok); i++)
        if (i == want || !lex_number(tok))
            return token_error(tl, k, want, why, i, tok, "is not a number", reterr);
    return i == want ? 0 : field_count(tl, k, want, why, reterr);
}

/* Checks the node structure in LightGBM's terms: children in range, each internal node
 * but the root and each leaf the child of exactly one node, all reached from the root (so
 * no cycle). The forest builder checks again; this gives messages in the file's terms. */
static int check_structure(const lgb_tree_t *t, const tree_lines_t *tl, mdl_err_t *reterr)
{
    const size_t n_int = t->num_leaves - 1, n = t->num_leaves;
    uint8_t *seen;
    int32_t *stack;
    size_t sp = 0, reached = 0;
    int r = 0;

    /* 0..n_int-1 internal nodes, n_int..n_int+n-1 leaves */
    seen = calloc(n_int + n, 1);
    stack = malloc((n_int + n) * sizeof *stack);
    if (!seen || !stack) {
        r = oom(reterr, tl->index);
        goto out;
    }
    for (size_t i = 0; i < n_int; i++) {
        for (int side = 0; side < 2; side++) {
            int32_t c = side ? t->right[i] : t->left[i];
            int k = side ? T_RIGHT_CHILD : T_LEFT_CHILD;
            if (c >= 0 && (size_t)c >= n_int) {
                r = fail(reterr, -EBADMSG, tl->line[k], tl->index,
                         "%s[%zu] = %d: no such internal node (the tree has %zu)", tree_keys[k],
                         i, (int)c, n_int);
                goto out;
            }
            if (c < 0 && (size_t)~c >= n) {
                r = fail(reterr, -EBADMSG, tl->line[k], tl->index,
                         "%s[%zu] = %d: no such leaf ~%d (the tree has %zu leaves)", tree_keys[k],
                         i, (int)c, (int)~c, n);
                goto out;
            }
            if (c == 0) {
                r = fail(reterr, -EBADMSG, tl->line[k], tl->index,
                         "%s[%zu] = 0: the root cannot be a child (cycle)", tree_keys[k], i);
                goto out;
            }
        }
    }
    /* Walk from the root; with the root never a child, reaching a node twice means a cycle
     * or a shared subtree. */
    stack[sp++] = 0;
    seen[0] = 1;
    while (sp) {
        int32_t node = stack[--sp];
        reached++;
        for (int side = 0; side < 2; side++) {
            int32_t c = side ? t->right[node] : t->left[node];
            size_t idx = c >= 0 ? (size_t)c : n_int + (size_t)~c;
            if (seen[idx]) {
                r = fail(reterr, -EBADMSG, tl->line[side ? T_RIGHT_CHILD : T_LEFT_CHILD],
                         tl->index, "%s[%d] = %d: that %s is reached twice (cycle or shared "
                         "subtree)", tree_keys[side ? T_RIGHT_CHILD : T_LEFT_CHILD], (int)node,
                         (int)c, c >= 0 ? "node" : "leaf");
                goto out;
            }
            seen[idx] = 1;
            if (c >= 0)
                stack[sp++] = c;
            else
                reached++;
        }
    }
    if (reached != n_int + n) {
        size_t i = 0;
        while (i < n_int + n && seen[i])
            i++;
        if (i < n_int)
            r = fail(reterr, -EBADMSG, tl->line[T_LEFT_CHILD], tl->index,
                     "internal node %zu is not reached from the root", i);
        else
            r = fail(reterr, -EBADMSG, tl->line[T_LEFT_CHILD], tl->index,
                     "leaf %zu is not reached from the root", i - n_int);
    }
out:
    free(seen);
    free(stack);
    return r;
}

/* Builds t from the lines of one tree block, checking every field. */
static int parse_tree(const tree_lines_t *tl, const lgb_file_t *f, lgb_tree_t *t,
                      mdl_err_t *reterr)
{
    const long ti = tl->index;
    long long v;
    size_t n, n_int;
    char why[64];
    int r;

    if (!tl->has[T_NUM_LEAVES])
        return fail(reterr, -EBADMSG, tl->tree_line, ti, "no num_leaves line");
    if (!parse_int(tl->val[T_NUM_LEAVES], 1, (long long)(MDL_FOREST_MAX_NODES / 2), &v))
        return fail(reterr, -EBADMSG, tl->line[T_NUM_LEAVES], ti,
                    "num_leaves '%.*s' is not an integer in 1..%zu", QUOTE(tl->val[T_NUM_LEAVES]),
                    MDL_FOREST_MAX_NODES / 2);
    n = t->num_leaves = (size_t)v;
    n_int = n - 1;
    if (!tl->has[T_NUM_CAT])
        return fail(reterr, -EBADMSG, tl->tree_line, ti, "no num_cat line");
    if (!parse_int(tl->val[T_NUM_CAT], 0, (long long)n_int, &v))
        return fail(reterr, -EBADMSG, tl->line[T_NUM_CAT], ti,
                    "num_cat '%.*s' is not an integer in 0..%zu (num_leaves - 1)",
                    QUOTE(tl->val[T_NUM_CAT]), n_int);
    t->num_cat = (size_t)v;
    if (tl->has[T_IS_LINEAR]) {
        if (!parse_int(tl->val[T_IS_LINEAR], 0, 1, &v))
            return fail(reterr, -EBADMSG, tl->line[T_IS_LINEAR], ti, "is_linear '%.*s' is not 0 or 1",
                        QUOTE(tl->val[T_IS_LINEAR]));
        t->is_linear = v == 1;
    }
    if (tl->has[T_SHRINKAGE]) {
        double d;
        if (!parse_double(tl->val[T_SHRINKAGE], &d))
            return fail(reterr, -EBADMSG, tl->line[T_SHRINKAGE], ti, "shrinkage '%.*s' is not a number",
                        QUOTE(tl->val[T_SHRINKAGE]));
    }

    snprintf(why, sizeof why, "num_leaves=%zu", n);
    if ((r = field_doubles(tl, T_LEAF_VALUE, n, why, true, &t->leaf_value, reterr)) < 0 ||
        (r = field_stats(tl, T_LEAF_WEIGHT, n, why, reterr)) < 0 ||
        (r = field_stats(tl, T_LEAF_COUNT, n, why, reterr)) < 0)
        return r;

    if (n > 1) {
        snprintf(why, sizeof why, "num_leaves=%zu", n);
        if ((r = field_ints(tl, T_SPLIT_FEATURE, n_int, why, 0, f->max_feature_idx,
                            &t->split_feature, reterr)) < 0 ||
            (r = field_doubles(tl, T_THRESHOLD, n_int, why, false, &t->threshold, reterr)) < 0 ||
            (r = field_ints(tl, T_LEFT_CHILD, n_int, why, -(long long)n, (long long)n_int,
                            &t->left, reterr)) < 0 ||
            (r = field_ints(tl, T_RIGHT_CHILD, n_int, why, -(long long)n, (long long)n_int,
                            &t->right, reterr)) < 0 ||
            (r = field_stats(tl, T_SPLIT_GAIN, n_int, why, reterr)) < 0 ||
            (r = field_stats(tl, T_INTERNAL_VALUE, n_int, why, reterr)) < 0 ||
            (r = field_stats(tl, T_INTERNAL_WEIGHT, n_int, why, reterr)) < 0)
            return r;
        if (tl->has[T_INTERNAL_COUNT] &&
            (r = field_uints(tl, T_INTERNAL_COUNT, n_int, why, UINT32_MAX, &t->internal_count,
                             reterr)) < 0)
            return r;
        /* decision_type: absent means all 0 (numerical, default right, missing None) */
        if (!(t->decision_type = alloc_n(n_int, 1)))
            return oom(reterr, ti);
        if (tl->has[T_DECISION_TYPE]) {
            int32_t *dt = NULL;
            if ((r = field_ints(tl, T_DECISION_TYPE, n_int, why, 0, 127, &dt, reterr)) < 0) {
                free(dt);
                return r;
            }
            for (size_t i = 0; i < n_int; i++)
                t->decision_type[i] = (uint8_t)dt[i];
            free(dt);
        }
        for (size_t i = 0; i < n_int; i++) {
            uint8_t dt = t->decision_type[i];
            if ((dt & ~0xF) || ((dt >> 2) & 3) == 3)
                return fail(reterr, -EBADMSG, tl->line[T_DECISION_TYPE], ti,
                            "decision_type[%zu] = %u: unknown bits or missing type", i, dt);
            if (dt & 1) {
                double th = t->threshold[i];
                if (t->num_cat == 0 || !(th >= 0 && th < (double)t->num_cat) || th != floor(th))
                    return fail(reterr, -EBADMSG, tl->line[T_THRESHOLD], ti,
                                "threshold[%zu] = %g of a categorical split is not a category "
                                "set index in 0..%zu (num_cat=%zu)", i, th,
                                t->num_cat ? t->num_cat - 1 : 0, t->num_cat);
            } else if (isnan(t->threshold[i])) {
                /* +-inf is fine: LightGBM writes threshold=inf for a split that sends
                 * NaN one way and every number the other */
                return fail(reterr, -EBADMSG, tl->line[T_THRESHOLD], ti,
                            "threshold[%zu] is NaN", i);
            }
        }
        if (t->num_cat > 0) {
            snprintf(why, sizeof why, "num_cat=%zu", t->num_cat);
            if ((r = field_uints(tl, T_CAT_BOUNDARIES, t->num_cat + 1, why,
                                 (long long)UINT32_MAX, &t->cat_boundaries, reterr)) < 0)
                return r;
            if (t->cat_boundaries[0] != 0)
                return fail(reterr, -EBADMSG, tl->line[T_CAT_BOUNDARIES], ti,
                            "cat_boundaries[0] = %u, not 0", t->cat_boundaries[0]);
            for (size_t i = 1; i <= t->num_cat; i++)
                if (t->cat_boundaries[i] < t->cat_boundaries[i - 1])
                    return fail(reterr, -EBADMSG, tl->line[T_CAT_BOUNDARIES], ti,
                                "cat_boundaries[%zu] = %u is below cat_boundaries[%zu] = %u", i,
                                t->cat_boundaries[i], i - 1, t->cat_boundaries[i - 1]);
            size_t words = t->cat_boundaries[t->num_cat];
            if (words > MDL_FOREST_MAX_CAT_WORDS)
                return fail(reterr, -E2BIG, tl->line[T_CAT_BOUNDARIES], ti,
                            "cat_boundaries declares %zu bitset words (limit %zu)", words,
                            MDL_FOREST_MAX_CAT_WORDS);
            snprintf(why, sizeof why, "cat_boundaries[%zu]=%zu", t->num_cat, words);
            if ((r = field_uints(tl, T_CAT_THRESHOLD, words, why, (long long)UINT32_MAX,
                                 &t->cat_threshold, reterr)) < 0)
                return r;
        }
    }

    if (t->is_linear) {
        snprintf(why, sizeof why, "num_leaves=%zu", n);
        if ((r = field_doubles(tl, T_LEAF_CONST, n, why, true, &t->leaf_const, reterr)) < 0 ||
            (r = field_uints(tl, T_NUM_FEATURES, n, why, (long long)f->n_features,
                             &t->num_features, reterr)) < 0)
            return r;
        size_t total = 0;
        for (size_t i = 0; i < n; i++)
            total += t->num_features[i]; /* n <= 2^23 terms of <= 2^24: no overflow */
        snprintf(why, sizeof why, "the sum of num_features (%zu)", total);
        int32_t *feat = NULL;
        if ((r = field_ints(tl, T_LEAF_FEATURES, total, why, 0, f->max_feature_idx, &feat,
                            reterr)) < 0) {
            free(feat);
            return r;
        }
        t->leaf_features = (uint32_t *)feat; /* values are in 0..max_feature_idx */
        t->n_lin = total;
        if ((r = field_doubles(tl, T_LEAF_COEFF, total, why, true, &t->leaf_coeff, reterr)) < 0)
            return r;
    }
    if (n > 1 && (r = check_structure(t, tl, reterr)) < 0)
        return r;
    return 0;
}

/* Reads the tree blocks and the sections after them. `l` is the first "Tree=" or "end of
 * trees" line, already read. */
static int read_trees(reader_t *r, span_t l, const char *first_tree, lgb_file_t *f,
                      const header_t *h, mdl_err_t *reterr)
{
    const char *tree_start;
    uint64_t *sizes = NULL;
    size_t n_sizes = 0;
    uint64_t offset = 0;
    int rc = 0;

    /* tree_sizes (optional): where each tree block must start, relative to the first */
    if (h->has[H_TREE_SIZES]) {
        span_t s = h->val[H_TREE_SIZES], tok;
        long long v;
        n_sizes = count_tokens(s);
        if (n_sizes > MDL_FOREST_MAX_TREES)
            return fail(reterr, -E2BIG, h->line[H_TREE_SIZES], -1,
                        "tree_sizes declares %zu trees (limit %zu)", n_sizes, MDL_FOREST_MAX_TREES);
        if (!(sizes = alloc_n(n_sizes, sizeof *sizes)))
            return oom(reterr, -1);
        for (size_t i = 0; next_token(&s, &tok); i++) {
            /* a tree is no larger than the rest of the file: the sum cannot overflow */
            if (!parse_int(tok, 1, (long long)(r->end - first_tree), &v)) {
                rc = fail(reterr, -EBADMSG, h->line[H_TREE_SIZES], -1,
                          "tree_sizes[%zu] '%.*s' is not an integer in 1..%zu (the bytes after "
                          "the header)", i, QUOTE(tok), (size_t)(r->end - first_tree));
                goto out;
            }
            sizes[i] = (uint64_t)v;
        }
    }

    while (span_starts(l, "Tree=")) {
        tree_lines_t tl;
        span_t idx = {l.p + 5, l.n - 5};
        long long v;
        size_t n_lines = 0;

        tree_start = l.p;
        memset(&tl, 0, sizeof tl);
        tl.index = (long)f->n_trees;
        tl.tree_line = r->line;
        if (!parse_int(idx, 0, INT64_MAX, &v) || (size_t)v != f->n_trees) {
            rc = fail(reterr, -EBADMSG, r->line, (long)f->n_trees, "'%.*s': expected Tree=%zu",
                      QUOTE(l), f->n_trees);
            goto out;
        }
        if (f->n_trees >= MDL_FOREST_MAX_TREES) {
            rc = fail(reterr, -E2BIG, r->line, (long)f->n_trees, "more than %zu trees",
                      MDL_FOREST_MAX_TREES);
            goto out;
        }
        if (sizes) {
            if (f->n_trees >= n_sizes) {
                rc = fail(reterr, -EBADMSG, r->line, (long)f->n_trees,
                          "tree_sizes lists only %zu trees", n_sizes);
                goto out;
            }
            if ((uint64_t)(tree_start - first_tree) != offset) {
                rc = fail(reterr, -EBADMSG, r->line, (long)f->n_trees,
                          "the tree starts at byte %zu after the first, tree_sizes says %llu",
                          (size_t)(tree_start - first_tree), (unsigned long long)offset);
                goto out;
            }
            offset += sizes[f->n_trees];
        }
        const size_t tree_line = r->line;
        /* key=value lines up to a blank line */
        while (next_line(r, &l) && l.n > 0) {
            const char *eq = memchr(l.p, '=', l.n);
            if (!eq) {
                rc = fail(reterr, -EBADMSG, r->line, tl.index, "'%.*s' is not key=value",
                          QUOTE(l));
                goto out;
            }
            if (++n_lines > LGB_MAX_TREE_LINES) {
                rc = fail(reterr, -EBADMSG, r->line, tl.index,
                          "more than %d lines in a tree block (blank line missing?)",
                          LGB_MAX_TREE_LINES);
                goto out;
            }
            span_t key = {l.p, (size_t)(eq - l.p)};
            for (int k = 0; k < T_COUNT; k++) {
                if (!span_eq(key, tree_keys[k]))
                    continue;
                if (tl.has[k]) {
                    rc = fail(reterr, -EBADMSG, r->line, tl.index, "%s appears twice",
                              tree_keys[k]);
                    goto out;
                }
                tl.has[k] = true;
                tl.line[k] = r->line;
                tl.val[k] = (span_t){eq + 1, l.n - key.n - 1};
            }
        }
        if (f->n_trees == f->cap_trees) {
            size_t cap = f->cap_trees ? 2 * f->cap_trees : 64;
            lgb_tree_t *nt = realloc(f->trees, cap * sizeof *nt);
            if (!nt) {
                rc = oom(reterr, tl.index);
                goto out;
            }
            f->trees = nt;
            f->cap_trees = cap;
        }
        lgb_tree_t *t = &f->trees[f->n_trees++];
        memset(t, 0, sizeof *t);
        t->line = tree_line;
        if ((rc = parse_tree(&tl, f, t, reterr)) < 0)
            goto out;
        /* blank lines, then the next tree or the end */
        do {
            if (!next_line(r, &l)) {
                rc = fail(reterr, -EBADMSG, r->line, -1,
                          "the file ends after tree %zu without 'end of trees' (truncated?)",
                          f->n_trees - 1);
                goto out;
            }
        } while (l.n == 0);
        if (!span_starts(l, "Tree=") && !span_eq(l, "end of trees")) {
            rc = fail(reterr, -EBADMSG, r->line, -1,
                      "'%.*s' after tree %zu: expected Tree=%zu or 'end of trees'", QUOTE(l),
                      f->n_trees - 1, f->n_trees);
            goto out;
        }
    }
    if (!span_eq(l, "end of trees")) {
        rc = fail(reterr, -EBADMSG, r->line, -1, "'%.*s': expected Tree=%zu or 'end of trees'",
                  QUOTE(l), f->n_trees);
        goto out;
    }
    if (sizes && n_sizes != f->n_trees) {
        rc = fail(reterr, -EBADMSG, h->line[H_TREE_SIZES], -1,
                  "tree_sizes lists %zu trees, the file has %zu", n_sizes, f->n_trees);
        goto out;
    }
    if (sizes && (uint64_t)(l.p - first_tree) != offset) {
        rc = fail(reterr, -EBADMSG, r->line, -1,
                  "'end of trees' is at byte %zu after the first tree, tree_sizes says %llu",
                  (size_t)(l.p - first_tree), (unsigned long long)offset);
        goto out;
    }
    /* After the trees: feature importances, then the training parameters up to "end of
     * parameters" (optional, but once started they must end: a cut there means the file
     * was truncated), then whatever a wrapper appends (pandas_categorical). */
    while (next_line(r, &l)) {
        if (!span_eq(l, "parameters:"))
            continue;
        size_t start = r->line;
        while (next_line(r, &l) && !span_eq(l, "end of parameters"))
            ;
        if (!span_eq(l, "end of parameters")) {
            rc = fail(reterr, -EBADMSG, start, -1,
                      "the parameters section has no 'end of parameters' line (truncated?)");
            goto out;
        }
        break;
    }
out:
    free(sizes);
    return rc;
}

/* Parses the whole file into f (which the caller frees with file_done). */
static int parse_file(const char *data, size_t len, lgb_file_t *f, mdl_err_t *reterr)
{
    reader_t r = {data, data + len, 0};
    header_t h;
    span_t stop;
    const char *nul;
    int rc;

    if (len == 0)
        return fail(reterr, -EBADMSG, 0, -1, "empty file");
    if ((nul = memchr(data, '\0', len)) != NULL) {
        size_t line = 1;
        for (const char *p = data; p < nul; p++)
            line += *p == '\n';
        return fail(reterr, -EBADMSG, line, -1, "NUL byte at offset %zu (not a text model)",
                    (size_t)(nul - data));
    }
    if ((rc = read_header(&r, &h, &stop, reterr)) < 0 || (rc = parse_header(&h, f, reterr)) < 0)
        return rc;
    if ((rc = read_trees(&r, stop, stop.p, f, &h, reterr)) < 0)
        return rc;
    if (f->n_trees == 0)
        return fail(reterr, -EBADMSG, 0, -1, "the model has no trees");
    if (f->n_trees % (size_t)f->num_tree_per_iteration != 0)
        return fail(reterr, -EBADMSG, 0, -1,
                    "%zu trees is not a whole number of rounds of num_tree_per_iteration=%lld",
                    f->n_trees, f->num_tree_per_iteration);
    return 0;
}

/* ---- the forest ---------------------------------------------------------------------- */

/* LightGBM's kZeroThreshold: a float constant used as a double. */
#define LGB_KZERO ((double)1e-35f)

/* LightGBM's C API hands the trees a row in which every |x| <= kZeroThreshold is 0.0 (its
 * dense-row reader keeps only |x| > kZeroThreshold or NaN). For a numeric split that is
 * the same as comparing the raw x with a moved threshold t':
 *   t >= kZ or t < -kZ:  flush(x) <= t  <=>  x <= t                   (t' = t)
 *   -kZ <= t < 0:        flush(x) <= t  <=>  x < -kZ                  (t' = the double below -kZ)
 *   0 <= t < kZ:         flush(x) <= t  <=>  x <= kZ                  (t' = kZ)
 * The Zero missing type tests |x| <= kZ, which flushing does not change, and a categorical
 * split casts to int, where tiny values are 0 either way. (Linear leaves multiply the raw
 * x; there only the last bits of a result near 0 can differ.) */
static double zero_flushed_threshold(double t)
{
    if (t >= -LGB_KZERO && t < 0)
        return nextafter(-LGB_KZERO, -INFINITY);
    if (t >= 0 && t < LGB_KZERO)
        return LGB_KZERO;
    return t;
}

/* Describes tree t to the builder: internal node i stays node i, leaf j becomes node
 * num_leaves - 1 + j (and reports j as its leaf id, like LightGBM's pred_leaf). */
static int add_tree(mdl_forest_builder_t *b, const lgb_file_t *f, size_t ti, mdl_err_t *reterr)
{
    const lgb_tree_t *t = &f->trees[ti];
    const size_t n = t->num_leaves, n_int = n - 1;
    mdl_forest_node_in_t *nodes = calloc(n_int + n, sizeof *nodes);
    mdl_forest_tree_in_t in;
    size_t lin = 0;
    int r;

    if (!nodes)
        return oom(reterr, (long)ti);
    for (size_t i = 0; i < n_int; i++) {
        mdl_forest_node_in_t *nd = &nodes[i];
        uint8_t dt = t->decision_type[i];
        int32_t l = t->left[i], rr = t->right[i];

        nd->left = l >= 0 ? l : (int32_t)(n_int + (size_t)~l);
        nd->right = rr >= 0 ? rr : (int32_t)(n_int + (size_t)~rr);
        nd->feature = (uint32_t)t->split_feature[i];
        nd->count = t->internal_count ? t->internal_count[i] : 0.0;
        if (dt & 1) {
            /* LightGBM v3/v4: NaN always goes right, whatever the missing type says */
            size_t c = (size_t)t->threshold[i];
            nd->type = MDL_NODE_CATEGORICAL;
            nd->missing = MDL_MISSING_NAN;
            nd->default_left = false;
            nd->cat_offset = t->cat_boundaries[c];
            nd->cat_words = t->cat_boundaries[c + 1] - t->cat_boundaries[c];
        } else {
            static const uint8_t missing[3] = {MDL_MISSING_NONE, MDL_MISSING_ZERO,
                                               MDL_MISSING_NAN};
            nd->type = MDL_NODE_NUMERIC;
            nd->missing = missing[(dt >> 2) & 3];
            nd->default_left = (dt & 2) != 0;
            nd->threshold = zero_flushed_threshold(t->threshold[i]);
        }
    }
    for (size_t j = 0; j < n; j++) {
        mdl_forest_node_in_t *nd = &nodes[n_int + j];
        nd->type = MDL_NODE_LEAF;
        nd->value = t->leaf_value[j];
        nd->id = (int32_t)j;
        if (t->is_linear) {
            nd->lin_offset = (uint32_t)lin;
            nd->lin_terms = t->num_features[j];
            nd->lin_const = t->leaf_const[j];
            lin += t->num_features[j];
        }
    }
    memset(&in, 0, sizeof in);
    in.n_nodes = n_int + n;
    in.nodes = nodes;
    in.n_cat_words = t->num_cat ? t->cat_boundaries[t->num_cat] : 0;
    in.cat_bits = t->cat_threshold;
    in.linear = t->is_linear;
    in.n_lin = t->n_lin;
    in.lin_features = t->leaf_features;
    in.lin_coefs = t->leaf_coeff;
    in.group = (uint32_t)(ti % (size_t)f->num_tree_per_iteration);
    in.weight = 1.0;
    r = mdl_forest_builder_add_tree(b, &in, reterr);
    free(nodes);
    if (r < 0)
        mdl_err_prefix(reterr, "line %zu: ", t->line);
    return r;
}

/* The forest parameters for f's objective. */
static void forest_params(const lgb_file_t *f, mdl_forest_params_t *p)
{
    memset(p, 0, sizeof *p);
    p->flavor = MDL_FOREST_LIGHTGBM;
    p->n_features = f->n_features;
    p->feature_names = (const char *const *)f->feature_names;
    p->n_outputs = (size_t)f->num_tree_per_iteration;
    p->average = f->average_output;
    p->objective = f->has_objective ? f->objective_text : NULL;
    p->sigmoid = 1.0;
    p->transform = MDL_TRANSFORM_IDENTITY;
    p->task = f->num_class > 1 ? MDL_TASK_MULTICLASS : MDL_TASK_REGRESSION;
    p->n_classes = f->num_class > 1 ? (size_t)f->num_class : 0;
    switch (f->obj.kind) {
    case OBJ_CUSTOM:
        break;
    case OBJ_REGRESSION:
        p->task = MDL_TASK_REGRESSION;
        if (f->obj.sqrt)
            p->transform = MDL_TRANSFORM_SIGNED_SQUARE;
        break;
    case OBJ_EXP:
        p->task = MDL_TASK_REGRESSION;
        p->transform = MDL_TRANSFORM_EXP;
        break;
    case OBJ_BINARY:
        p->task = MDL_TASK_BINARY;
        p->n_classes = 2;
        p->transform = MDL_TRANSFORM_SIGMOID;
        p->sigmoid = f->obj.sigmoid;
        break;
    case OBJ_XENTROPY:
        p->task = MDL_TASK_BINARY;
        p->n_classes = 2;
        p->transform = MDL_TRANSFORM_SIGMOID;
        break;
    case OBJ_XENTLAMBDA:
        p->task = MDL_TASK_REGRESSION;
        p->transform = MDL_TRANSFORM_LOG1P_EXP;
        break;
    case OBJ_MULTICLASS:
        p->task = MDL_TASK_MULTICLASS;
        p->transform = MDL_TRANSFORM_SOFTMAX;
        break;
    case OBJ_MULTICLASSOVA:
        p->task = MDL_TASK_MULTICLASS;
        p->transform = MDL_TRANSFORM_SIGMOID;
        p->sigmoid = f->obj.sigmoid;
        break;
    case OBJ_RANKING:
        p->task = MDL_TASK_RANKING;
        break;
    }
}

int mdl_gbdt_load_lightgbm(const char *data, size_t len, mdl_forest_t **ret, mdl_err_t *reterr)
{
    lgb_file_t f;
    mdl_forest_params_t params;
    mdl_forest_builder_t *b = NULL;
    int r;

    memset(&f, 0, sizeof f);
    if ((r = parse_file(data, len, &f, reterr)) < 0)
        goto out;
    forest_params(&f, &params);
    if ((r = mdl_forest_builder_new(&params, &b, reterr)) < 0)
        goto out;
    for (size_t i = 0; i < f.n_trees; i++)
        if ((r = add_tree(b, &f, i, reterr)) < 0)
            goto out;
    r = mdl_forest_builder_finish(b, ret, reterr); /* frees b */
    b = NULL;
out:
    mdl_forest_builder_free(b);
    file_done(&f);
    return r;
}
