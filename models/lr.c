/* Kind "lr": linear models with scikit-learn-style preprocessing. See lr.h and
 * docs/lr-format.md.
 *
 * Every preprocessing step we support works column by column, so each column of the
 * vector the linear part sees (a "term") depends on exactly one input column. The loader
 * runs the preprocessing tree symbolically over "lanes" (one per column of the current
 * intermediate vector) and ends with one lane per term, each recording its input column
 * and the chain of scalar operations applied to it. Scoring is then one pass over the
 * terms, applying the operations in the order scikit-learn does (so rounding matches) and
 * accumulating coef x value into the output buffer. */
#include "lr.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* Bounds on compiling the preprocessing tree. A column transformer can copy a column many
 * times for a few bytes of file, and a passthrough step copies its whole input, so neither
 * the work nor the width is implied by the file size:
 *   LR_MAX_OPS    total length of all operation chains;
 *   LR_MAX_WIDTH  columns of any intermediate vector;
 *   LR_MAX_WORK   columns produced by all steps together. */
#define LR_MAX_OPS ((size_t)1 << 24)
#define LR_MAX_WIDTH ((size_t)1 << 22)
#define LR_MAX_WORK ((size_t)1 << 26)

typedef enum op_kind {
    OP_IMPUTE,   /* NaN -> a */
    OP_STANDARD, /* (x - a) / b   (StandardScaler: a = mean or 0, b = scale or 1) */
    OP_MINMAX,   /* x * a + b     (MinMaxScaler: a = scale_, b = min_) */
} op_kind_t;

typedef struct lr_op {
    uint8_t kind; /* op_kind_t */
    double a, b;
} lr_op_t;

typedef struct lr_term {
    uint32_t col;        /* input column the term reads */
    int32_t category;    /* -1: numeric term; else the category index this one-hot term marks */
    uint32_t op0, n_ops; /* numeric: ops[op0 .. op0 + n_ops) applied in order */
    bool unknown_error;  /* one-hot: an unknown category is an error (handle_unknown='error') */
    double cat_fill;     /* one-hot: category index used for a missing input; NaN = none */
    double z0, z1;       /* one-hot: the term's value when the category is absent / present */
} lr_term_t;

typedef enum lr_link {
    LINK_IDENTITY, /* LinearSVC */
    LINK_LOGISTIC, /* binary OvR: sigmoid(m) */
    LINK_LOGISTIC2, /* binary multinomial: softmax([-m, m])[1] = sigmoid(2m) */
    LINK_SOFTMAX,  /* multinomial */
    LINK_OVR,      /* per-class sigmoid, normalised to sum 1 (sklearn _predict_proba_lr) */
} lr_link_t;

typedef struct lr {
    size_t n_features;    /* input columns per row */
    size_t n_out;         /* outputs per row: 1 (two classes) or n_classes */
    size_t n_terms;       /* columns of the linear part */
    lr_link_t link;
    lr_term_t *terms;     /* n_terms */
    lr_op_t *ops;         /* all terms' chains */
    double *coef;         /* n_terms x n_out, term-major (transposed from the file) */
    double *intercept;    /* n_out */
    size_t n_cat_cols;
    uint32_t *cat_cols;   /* categorical input columns, for per-row index validation */
    uint32_t *n_cats;     /* n_features: categories per column, 0 = numeric */
    char **names;         /* n_features feature names, for messages (own copies) */
} lr_t;

/* ---- scoring -------------------------------------------------------------------------- */

static double sigmoid(double m)
{
    double e;

    if (m >= 0)
        return 1.0 / (1.0 + exp(-m));
    e = exp(m);
    return e / (1.0 + e);
}

static void apply_link(const lr_t *lr, double *o)
{
    size_t k, n = lr->n_out;
    double mx, sum = 0;

    switch (lr->link) {
    case LINK_IDENTITY:
        break;
    case LINK_LOGISTIC:
        o[0] = sigmoid(o[0]);
        break;
    case LINK_LOGISTIC2:
        o[0] = sigmoid(2.0 * o[0]);
        break;
    case LINK_SOFTMAX:
        mx = o[0];
        for (k = 1; k < n; k++)
            if (o[k] > mx)
                mx = o[k];
        for (k = 0; k < n; k++) {
            o[k] = exp(o[k] - mx);
            sum += o[k];
        }
        for (k = 0; k < n; k++)
            o[k] /= sum;
        break;
    case LINK_OVR:
        for (k = 0; k < n; k++) {
            o[k] = sigmoid(o[k]);
            sum += o[k];
        }
        for (k = 0; k < n; k++)
            o[k] /= sum;
        break;
    }
}

static double run_ops(const lr_op_t *op, size_t n, double z)
{
    for (size_t i = 0; i < n; i++, op++) {
        switch (op->kind) {
        case OP_IMPUTE:
            if (isnan(z))
                z = op->a;
            break;
        case OP_STANDARD:
            z = (z - op->a) / op->b;
            break;
        case OP_MINMAX:
            z = z * op->a;
            z = z + op->b;
            break;
        }
    }
    return z;
}

static size_t lr_output_width(const void *impl, mdl_output_t kind)
{
    const lr_t *lr = impl;

    return kind == MDL_OUTPUT_VALUE || kind == MDL_OUTPUT_MARGIN ? lr->n_out : 0;
}

/* Scores one row into o (n_out values). The hot path: no allocation, no logging. */
static int score_row(const lr_t *lr, const double *x, size_t row, mdl_output_t kind, double *o,
                     mdl_err_t *reterr)
{
    const size_t n_out = lr->n_out;

    for (size_t i = 0; i < lr->n_cat_cols; i++) {
        uint32_t c = lr->cat_cols[i];
        double v = x[c];
        if (!isnan(v) && v != -1.0 && !(v >= 0 && v < (double)lr->n_cats[c] && v == floor(v)))
            return mdl_err_set(reterr, -EPROTO, "row %zu: feature '%s': %g is not a category index",
                               row, lr->names[c], v);
    }
    /* Two-class models (one output) accumulate in a register: through o[] every term
     * would wait on a store to memory that may alias x. */
    double acc = 0.0;
    for (size_t k = 0; k < n_out; k++)
        o[k] = 0.0;
    for (size_t j = 0; j < lr->n_terms; j++) {
        const lr_term_t *t = &lr->terms[j];
        double v = x[t->col], z;
        if (t->category < 0) {
            if (isinf(v))
                return mdl_err_set(reterr, -EPROTO, "row %zu: feature '%s' is not finite", row,
                                   lr->names[t->col]);
            z = run_ops(lr->ops + t->op0, t->n_ops, v);
            if (isnan(z))
                return mdl_err_set(reterr, -EPROTO,
                                   "row %zu: feature '%s' is missing and the model has no imputer for it",
                                   row, lr->names[t->col]);
        } else {
            if (isnan(v)) {
                v = t->cat_fill;
                if (isnan(v))
                    return mdl_err_set(reterr, -EPROTO,
                                       "row %zu: feature '%s' is missing and the model has no imputer "
                                       "for it", row, lr->names[t->col]);
            }
            if (v < 0 && t->unknown_error)
                return mdl_err_set(reterr, -EPROTO,
                                   "row %zu: feature '%s' has an unknown category (the encoder was "
                                   "trained with handle_unknown='error')", row, lr->names[t->col]);
            z = v == (double)t->category ? t->z1 : t->z0;
        }
        if (n_out == 1) {
            acc += lr->coef[j] * z;
        } else if (z != 0.0) {
            const double *w = lr->coef + j * n_out;
            for (size_t k = 0; k < n_out; k++)
                o[k] += w[k] * z;
        }
    }
    if (n_out == 1)
        o[0] = acc;
    /* Like sklearn: the dot product first, then the intercept. */
    for (size_t k = 0; k < n_out; k++)
        o[k] += lr->intercept[k];
    if (kind == MDL_OUTPUT_VALUE)
        apply_link(lr, o);
    for (size_t k = 0; k < n_out; k++)
        if (!isfinite(o[k]))
            return mdl_err_set(reterr, -EPROTO, "row %zu: the result is not finite (inputs too large?)",
                               row);
    return 0;
}

static int lr_score(const void *impl, const double *rows, size_t n_rows, mdl_output_t kind,
                    double *out, mdl_err_t *reterr)
{
    const lr_t *lr = impl;

    if (kind != MDL_OUTPUT_VALUE && kind != MDL_OUTPUT_MARGIN)
        return mdl_err_set(reterr, -EINVAL, "lr models only have value and margin outputs");
    for (size_t i = 0; i < n_rows; i++) {
        int r = score_row(lr, rows + i * lr->n_features, i, kind, out + i * lr->n_out, reterr);
        if (r < 0)
            return r;
    }
    return 0;
}

static void lr_destroy(void *impl)
{
    lr_t *lr = impl;

    if (!lr)
        return;
    for (size_t i = 0; lr->names && i < lr->n_features; i++)
        free(lr->names[i]);
    free(lr->names);
    free(lr->terms);
    free(lr->ops);
    free(lr->coef);
    free(lr->intercept);
    free(lr->cat_cols);
    free(lr->n_cats);
    free(lr);
}

/* ---- compiling the preprocessing tree ------------------------------------------------- */

typedef enum lane_kind {
    LANE_NUM, /* a numeric input column, through the lane's ops */
    LANE_CAT, /* a categorical input column before one-hot encoding */
    LANE_HOT, /* one one-hot output column, through the lane's ops */
} lane_kind_t;

typedef struct lane {
    uint32_t col;
    uint8_t kind;       /* lane_kind_t */
    bool unknown_error; /* HOT */
    int32_t category;   /* HOT */
    double cat_fill;    /* CAT, HOT: category index for a missing input; NaN = none yet */
    int32_t last_op;    /* newest op of this lane's chain in the builder pool, -1 = none */
} lane_t;

typedef struct lanes {
    lane_t *v;
    size_t n, cap;
} lanes_t;

/* Chains are persistent linked lists (newest first) so copying a lane is O(1). */
typedef struct op_node {
    lr_op_t op;
    int32_t prev;
} op_node_t;

typedef struct builder {
    const mdl_model_t *m;
    op_node_t *pool;
    size_t n_pool, cap_pool;
    size_t work; /* lanes pushed so far, against LR_MAX_WORK */
    mdl_err_t *err;
} builder_t;

static int oom(mdl_err_t *reterr)
{
    return mdl_err_set(reterr, -ENOMEM, "out of memory");
}

static int lanes_push(builder_t *b, lanes_t *l, const lane_t *lane)
{
    if (++b->work > LR_MAX_WORK || l->n >= LR_MAX_WIDTH)
        return mdl_err_set(b->err, -EBADMSG,
                           "preprocess: too large (over %zu columns in a step or %zu in all steps)",
                           LR_MAX_WIDTH, LR_MAX_WORK);
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        lane_t *nv = realloc(l->v, ncap * sizeof *nv);
        if (!nv)
            return oom(b->err);
        l->v = nv, l->cap = ncap;
    }
    l->v[l->n++] = *lane;
    return 0;
}

static int add_op(builder_t *b, lane_t *lane, op_kind_t kind, double a, double bb)
{
    if (b->n_pool >= LR_MAX_OPS)
        return mdl_err_set(b->err, -EBADMSG, "preprocess: more than %zu operations in total",
                           LR_MAX_OPS);
    if (b->n_pool == b->cap_pool) {
        size_t ncap = b->cap_pool ? b->cap_pool * 2 : 64;
        op_node_t *np = realloc(b->pool, ncap * sizeof *np);
        if (!np)
            return oom(b->err);
        b->pool = np, b->cap_pool = ncap;
    }
    b->pool[b->n_pool] = (op_node_t){.op = {.kind = (uint8_t)kind, .a = a, .b = bb},
                                     .prev = lane->last_op};
    lane->last_op = (int32_t)b->n_pool++;
    return 0;
}

static const char *feature_name(const builder_t *b, const lane_t *lane)
{
    return b->m->features[lane->col].name;
}

static int compile_step(builder_t *b, const mdl_json_t *step, const char *path, const lane_t *in,
                        size_t n_in, lanes_t *out);

/* Optional array of n_in numbers (absent or null -> *ret_present = false). */
static int opt_numbers(builder_t *b, const mdl_json_t *step, const char *path, const char *key,
                       double *out, size_t n, bool nonzero, bool *ret_present)
{
    const mdl_json_t *v = mdl_json_find(step, key);
    char p[192];
    int r;

    mdl_json_path_key(p, sizeof p, path, key);
    if (!v || v->type == MDL_JSON_NULL) {
        *ret_present = false;
        return 0;
    }
    r = mdl_json_numbers(v, p, out, n, b->err);
    if (r < 0) {
        if (v->type == MDL_JSON_ARRAY && v->len != n)
            return mdl_err_set(b->err, -EBADMSG,
                               "%s: expected %zu numbers (the width of the step's input), got %u", p,
                               n, v->len);
        return r;
    }
    for (size_t i = 0; nonzero && i < n; i++)
        if (out[i] == 0.0)
            return mdl_err_set(b->err, -EBADMSG, "%s[%zu]: must not be zero", p, i);
    *ret_present = true;
    return 0;
}

static int require_numeric(builder_t *b, const char *path, const lane_t *in, size_t n_in)
{
    for (size_t i = 0; i < n_in; i++)
        if (in[i].kind == LANE_CAT)
            return mdl_err_set(b->err, -EBADMSG,
                               "%s: column %zu is categorical feature '%s' (not one-hot encoded yet)",
                               path, i, feature_name(b, &in[i]));
    return 0;
}

static int compile_scaler(builder_t *b, const mdl_json_t *step, const char *path, bool minmax,
                          const lane_t *in, size_t n_in, lanes_t *out)
{
    double *a = calloc(n_in ? n_in : 1, sizeof *a), *c = calloc(n_in ? n_in : 1, sizeof *c);
    bool has_a = false, has_c = false;
    int r;

    if (!a || !c) {
        r = oom(b->err);
        goto out;
    }
    r = require_numeric(b, path, in, n_in);
    if (r < 0)
        goto out;
    if (minmax) {
        r = opt_numbers(b, step, path, "scale", a, n_in, true, &has_a);
        if (r >= 0)
            r = opt_numbers(b, step, path, "min", c, n_in, false, &has_c);
        if (r >= 0 && (!has_a || !has_c))
            r = mdl_err_set(b->err, -EBADMSG, "%s.%s: required field is missing", path,
                            has_a ? "min" : "scale");
    } else {
        r = opt_numbers(b, step, path, "mean", a, n_in, false, &has_a);
        if (r >= 0)
            r = opt_numbers(b, step, path, "scale", c, n_in, true, &has_c);
    }
    if (r < 0)
        goto out;
    for (size_t i = 0; i < n_in; i++) {
        lane_t lane = in[i];
        if (minmax)
            r = add_op(b, &lane, OP_MINMAX, a[i], c[i]);
        else if (has_a || has_c)
            r = add_op(b, &lane, OP_STANDARD, has_a ? a[i] : 0.0, has_c ? c[i] : 1.0);
        if (r >= 0)
            r = lanes_push(b, out, &lane);
        if (r < 0)
            goto out;
    }
out:
    free(a);
    free(c);
    return r;
}

static int compile_imputer(builder_t *b, const mdl_json_t *step, const char *path,
                           const lane_t *in, size_t n_in, lanes_t *out)
{
    const mdl_json_t *fill, *it;
    char p[192];
    size_t i = 0;
    int r;

    r = mdl_json_get(step, path, "fill", MDL_JSON_ARRAY, &fill, b->err);
    if (r < 0)
        return r;
    mdl_json_path_key(p, sizeof p, path, "fill");
    if (fill->len != n_in)
        return mdl_err_set(b->err, -EBADMSG,
                           "%s: expected %zu values (the width of the step's input), got %u", p, n_in,
                           fill->len);
    it = fill + 1;
    for (i = 0; i < n_in; i++, it += it->span) {
        lane_t lane = in[i];
        if (lane.kind == LANE_CAT) {
            if (it->type != MDL_JSON_STRING)
                return mdl_err_set(b->err, -EBADMSG,
                                   "%s[%zu]: expected a string for categorical feature '%s', got %s",
                                   p, i, feature_name(b, &lane), mdl_json_type_name(it->type));
            /* Only the first imputer on a lane can see a missing value. A fill value the
             * encoder does not know is an unknown category (-1), as in scikit-learn. */
            if (isnan(lane.cat_fill)) {
                const mdl_feature_t *f = &b->m->features[lane.col];
                lane.cat_fill = -1.0;
                for (size_t k = 0; k < f->n_categories; k++)
                    if (strlen(f->categories[k]) == it->len &&
                        memcmp(f->categories[k], it->u.str, it->len) == 0)
                        lane.cat_fill = (double)k;
            }
        } else {
            if (it->type != MDL_JSON_NUMBER)
                return mdl_err_set(b->err, -EBADMSG,
                                   "%s[%zu]: expected a number for numeric column '%s', got %s", p, i,
                                   feature_name(b, &lane), mdl_json_type_name(it->type));
            r = add_op(b, &lane, OP_IMPUTE, it->u.num, 0.0);
            if (r < 0)
                return r;
        }
        r = lanes_push(b, out, &lane);
        if (r < 0)
            return r;
    }
    return 0;
}

static int compile_onehot(builder_t *b, const mdl_json_t *step, const char *path,
                          const lane_t *in, size_t n_in, lanes_t *out)
{
    const char *hu;
    bool error;
    int r;

    r = mdl_json_get_string(step, path, "handle_unknown", &hu, b->err);
    if (r < 0)
        return r;
    if (strcmp(hu, "ignore") == 0)
        error = false;
    else if (strcmp(hu, "error") == 0)
        error = true;
    else
        return mdl_err_set(b->err, -EBADMSG, "%s.handle_unknown: expected \"ignore\" or \"error\", got \"%s\"",
                           path, hu);
    for (size_t i = 0; i < n_in; i++) {
        const mdl_feature_t *f = &b->m->features[in[i].col];
        if (in[i].kind != LANE_CAT)
            return mdl_err_set(b->err, -EBADMSG,
                               "%s: column %zu (feature '%s') is not categorical: give the feature "
                               "\"categories\" in \"features\"", path, i, f->name);
        for (size_t k = 0; k < f->n_categories; k++) {
            lane_t lane = in[i];
            lane.kind = LANE_HOT;
            lane.category = (int32_t)k;
            lane.unknown_error = error;
            lane.last_op = -1;
            r = lanes_push(b, out, &lane);
            if (r < 0)
                return r;
        }
    }
    return 0;
}

static int compile_pipeline(builder_t *b, const mdl_json_t *step, const char *path,
                            const lane_t *in, size_t n_in, lanes_t *out)
{
    const mdl_json_t *steps;
    lanes_t cur = {0}, next = {0};
    char p[192];
    size_t i = 0;
    int r;

    r = mdl_json_get(step, path, "steps", MDL_JSON_ARRAY, &steps, b->err);
    if (r < 0)
        return r;
    for (size_t k = 0; k < n_in; k++) {
        r = lanes_push(b, &cur, &in[k]);
        if (r < 0)
            goto out;
    }
    MDL_JSON_FOREACH(s, steps) {
        char sp[192];
        mdl_json_path_key(p, sizeof p, path, "steps");
        mdl_json_path_index(sp, sizeof sp, p, i++);
        next.n = 0;
        r = compile_step(b, s, sp, cur.v, cur.n, &next);
        if (r < 0)
            goto out;
        lanes_t t = cur;
        cur = next;
        next = t;
    }
    for (size_t k = 0; k < cur.n; k++) {
        r = lanes_push(b, out, &cur.v[k]);
        if (r < 0)
            goto out;
    }
out:
    free(cur.v);
    free(next.v);
    return r;
}

/* scikit-learn's ColumnTransformer: each transformer's output in order, then (remainder
 * "passthrough") the columns no transformer selected, in input order. */
static int compile_column_transformer(builder_t *b, const mdl_json_t *step, const char *path,
                                      const lane_t *in, size_t n_in, lanes_t *out)
{
    const mdl_json_t *list;
    const char *remainder;
    bool *used = calloc(n_in ? n_in : 1, sizeof *used);
    lanes_t sel = {0};
    char p[192], tp[192], cp[192];
    size_t ti = 0;
    int r;

    if (!used)
        return oom(b->err);
    r = mdl_json_get_string(step, path, "remainder", &remainder, b->err);
    if (r < 0)
        goto out;
    if (strcmp(remainder, "drop") != 0 && strcmp(remainder, "passthrough") != 0) {
        r = mdl_err_set(b->err, -EBADMSG, "%s.remainder: expected \"drop\" or \"passthrough\", got \"%s\"",
                        path, remainder);
        goto out;
    }
    r = mdl_json_get(step, path, "transformers", MDL_JSON_ARRAY, &list, b->err);
    if (r < 0)
        goto out;
    mdl_json_path_key(p, sizeof p, path, "transformers");
    MDL_JSON_FOREACH(t, list) {
        static const char *const allowed[] = {"name", "columns", "step", NULL};
        const mdl_json_t *cols, *sub, *name;
        size_t ci = 0;

        mdl_json_path_index(tp, sizeof tp, p, ti++);
        r = mdl_json_check_members(t, tp, allowed, b->err);
        if (r < 0)
            goto out;
        name = mdl_json_find(t, "name");
        if (name && name->type != MDL_JSON_STRING) {
            r = mdl_json_expect(name, MDL_JSON_STRING, mdl_json_path_key(cp, sizeof cp, tp, "name"),
                                b->err);
            goto out;
        }
        r = mdl_json_get(t, tp, "columns", MDL_JSON_ARRAY, &cols, b->err);
        if (r >= 0)
            r = mdl_json_get(t, tp, "step", MDL_JSON_OBJECT, &sub, b->err);
        if (r < 0)
            goto out;
        sel.n = 0;
        MDL_JSON_FOREACH(c, cols) {
            double v = c->type == MDL_JSON_NUMBER ? c->u.num : -1.0;
            char ep[192];
            mdl_json_path_index(ep, sizeof ep, mdl_json_path_key(cp, sizeof cp, tp, "columns"), ci++);
            if (v != floor(v) || v < 0 || v >= (double)n_in) {
                r = mdl_err_set(b->err, -EBADMSG,
                                "%s: expected a column index in [0, %zu) (the width of the step's input)",
                                ep, n_in);
                goto out;
            }
            used[(size_t)v] = true;
            r = lanes_push(b, &sel, &in[(size_t)v]);
            if (r < 0)
                goto out;
        }
        r = compile_step(b, sub, mdl_json_path_key(cp, sizeof cp, tp, "step"), sel.v, sel.n, out);
        if (r < 0)
            goto out;
    }
    if (strcmp(remainder, "passthrough") == 0)
        for (size_t i = 0; i < n_in; i++)
            if (!used[i]) {
                r = lanes_push(b, out, &in[i]);
                if (r < 0)
                    goto out;
            }
out:
    free(sel.v);
    free(used);
    return r;
}

static int compile_passthrough(builder_t *b, const mdl_json_t *step, const char *path,
                               const lane_t *in, size_t n_in, lanes_t *out)
{
    (void)step, (void)path;
    for (size_t i = 0; i < n_in; i++) {
        int r = lanes_push(b, out, &in[i]);
        if (r < 0)
            return r;
    }
    return 0;
}

static int compile_drop(builder_t *b, const mdl_json_t *step, const char *path, const lane_t *in,
                        size_t n_in, lanes_t *out)
{
    (void)b, (void)step, (void)path, (void)in, (void)n_in, (void)out;
    return 0;
}

static int compile_standard_scaler(builder_t *b, const mdl_json_t *step, const char *path,
                                   const lane_t *in, size_t n_in, lanes_t *out)
{
    return compile_scaler(b, step, path, false, in, n_in, out);
}

static int compile_min_max_scaler(builder_t *b, const mdl_json_t *step, const char *path,
                                  const lane_t *in, size_t n_in, lanes_t *out)
{
    return compile_scaler(b, step, path, true, in, n_in, out);
}

/* Runs one step (an object with a "type") over the lanes `in`, appending its output lanes
 * to `out`. Recursion depth is bounded by the JSON nesting bound. */
static int compile_step(builder_t *b, const mdl_json_t *step, const char *path, const lane_t *in,
                        size_t n_in, lanes_t *out)
{
    typedef int compile_fn(builder_t *, const mdl_json_t *, const char *, const lane_t *, size_t,
                           lanes_t *);
    static const struct {
        const char *type;
        compile_fn *fn;
        const char *const allowed[4]; /* fields besides "type" */
    } steps[] = {
        {"pipeline", compile_pipeline, {"steps", NULL}},
        {"column_transformer", compile_column_transformer, {"transformers", "remainder", NULL}},
        {"passthrough", compile_passthrough, {NULL}},
        {"drop", compile_drop, {NULL}},
        {"standard_scaler", compile_standard_scaler, {"mean", "scale", NULL}},
        {"min_max_scaler", compile_min_max_scaler, {"scale", "min", NULL}},
        {"simple_imputer", compile_imputer, {"fill", NULL}},
        {"one_hot_encoder", compile_onehot, {"handle_unknown", NULL}},
    };
    const char *allowed[5] = {"type"};
    const char *type;
    size_t k;
    int r;

    r = mdl_json_expect(step, MDL_JSON_OBJECT, path, b->err);
    if (r >= 0)
        r = mdl_json_get_string(step, path, "type", &type, b->err);
    if (r < 0)
        return r;
    for (k = 0; k < sizeof steps / sizeof *steps; k++)
        if (strcmp(steps[k].type, type) == 0)
            break;
    if (k == sizeof steps / sizeof *steps)
        return mdl_err_set(b->err, -EBADMSG,
                           "%s.type: unknown step type \"%s\" (expected pipeline, column_transformer, "
                           "passthrough, drop, standard_scaler, min_max_scaler, simple_imputer or "
                           "one_hot_encoder)", path[0] ? path : "preprocess", type);
    for (size_t i = 0; steps[k].allowed[i]; i++)
        allowed[i + 1] = steps[k].allowed[i];
    r = mdl_json_check_members(step, path, allowed, b->err);
    if (r < 0)
        return r;
    return steps[k].fn(b, step, path, in, n_in, out);
}

/* Turns the final lanes into terms: chains are copied oldest-first into lr->ops, and a
 * one-hot term's chain is evaluated now on 0 and 1 (the only values it can see). */
static int build_terms(builder_t *b, const lanes_t *lanes, lr_t *lr)
{
    size_t n_ops = 0;

    for (size_t j = 0; j < lanes->n; j++) {
        const lane_t *l = &lanes->v[j];
        if (l->kind == LANE_CAT)
            return mdl_err_set(b->err, -EBADMSG,
                               "preprocess: categorical feature '%s' reaches the linear model without "
                               "one_hot_encoder", feature_name(b, l));
        if (l->kind == LANE_NUM)
            for (int32_t o = l->last_op; o >= 0; o = b->pool[o].prev)
                if (++n_ops > LR_MAX_OPS)
                    return mdl_err_set(b->err, -EBADMSG, "preprocess: more than %zu operations in total",
                                       LR_MAX_OPS);
    }
    lr->terms = calloc(lanes->n ? lanes->n : 1, sizeof *lr->terms);
    lr->ops = calloc(n_ops ? n_ops : 1, sizeof *lr->ops);
    if (!lr->terms || !lr->ops)
        return oom(b->err);
    lr->n_terms = lanes->n;
    n_ops = 0;
    for (size_t j = 0; j < lanes->n; j++) {
        const lane_t *l = &lanes->v[j];
        lr_term_t *t = &lr->terms[j];
        size_t len = 0;
        lr_op_t *chain;

        for (int32_t o = l->last_op; o >= 0; o = b->pool[o].prev)
            len++;
        t->col = l->col;
        t->category = l->kind == LANE_HOT ? l->category : -1;
        t->unknown_error = l->unknown_error;
        t->cat_fill = l->cat_fill;
        /* For one-hot terms the chain is written to the shared array only temporarily. */
        chain = lr->ops + n_ops;
        if (l->kind == LANE_HOT && len > 0) {
            lr_op_t *tmp = malloc(len * sizeof *tmp);
            if (!tmp)
                return oom(b->err);
            chain = tmp;
        }
        size_t i = len;
        for (int32_t o = l->last_op; o >= 0; o = b->pool[o].prev)
            chain[--i] = b->pool[o].op;
        if (l->kind == LANE_HOT) {
            t->z0 = run_ops(chain, len, 0.0);
            t->z1 = run_ops(chain, len, 1.0);
            if (len > 0)
                free(chain);
            if (!isfinite(t->z0) || !isfinite(t->z1))
                return mdl_err_set(b->err, -EBADMSG,
                                   "preprocess: one-hot column %zu of feature '%s' scales to a non-finite value",
                                   j, feature_name(b, l));
        } else {
            t->op0 = (uint32_t)n_ops;
            t->n_ops = (uint32_t)len;
            n_ops += len;
        }
    }
    return 0;
}

/* ---- loading -------------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Checks strs[0..n) for duplicates; on one, sets *ret_dup to it and returns 1. */
static int find_duplicate(char *const *strs, size_t n, const char **ret_dup, mdl_err_t *reterr)
{
    char **sorted = malloc((n ? n : 1) * sizeof *sorted);

    if (!sorted)
        return oom(reterr);
    memcpy(sorted, strs, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_str);
    for (size_t i = 1; i < n; i++)
        if (strcmp(sorted[i], sorted[i - 1]) == 0) {
            *ret_dup = sorted[i];
            free(sorted);
            return 1;
        }
    free(sorted);
    return 0;
}

/* A non-empty string without NUL bytes, copied. */
static int dup_string(const mdl_json_t *v, const char *path, char **ret, mdl_err_t *reterr)
{
    int r = mdl_json_expect(v, MDL_JSON_STRING, path, reterr);

    if (r < 0)
        return r;
    if (v->len == 0 || strlen(v->u.str) != v->len)
        return mdl_err_set(reterr, -EBADMSG, "%s: must be a non-empty string without \\u0000 (byte %u)",
                           path, v->offset);
    *ret = strdup(v->u.str);
    return *ret ? 0 : oom(reterr);
}

/* Class labels may be strings, numbers or booleans (scikit-learn keeps what y held);
 * numbers become their shortest round-trip text. */
static int class_label(const mdl_json_t *v, const char *path, char **ret, mdl_err_t *reterr)
{
    char buf[40];

    switch (v->type) {
    case MDL_JSON_STRING:
        return dup_string(v, path, ret, reterr);
    case MDL_JSON_BOOL:
        snprintf(buf, sizeof buf, "%s", v->u.boolean ? "true" : "false");
        break;
    case MDL_JSON_NUMBER:
        if (v->u.num == floor(v->u.num) && fabs(v->u.num) < 9007199254740992.0)
            snprintf(buf, sizeof buf, "%.0f", v->u.num);
        else
            for (int prec = 1; prec <= 17; prec++) {
                snprintf(buf, sizeof buf, "%.*g", prec, v->u.num);
                if (strtod(buf, NULL) == v->u.num)
                    break;
            }
        break;
    default:
        return mdl_err_set(reterr, -EBADMSG, "%s: expected a string, number or boolean, got %s (byte %u)",
                           path, mdl_json_type_name(v->type), v->offset);
    }
    *ret = strdup(buf);
    return *ret ? 0 : oom(reterr);
}

static int load_features(const mdl_json_t *root, mdl_model_t *m, mdl_err_t *reterr)
{
    static const char *const allowed[] = {"name", "categories", NULL};
    const mdl_json_t *list;
    char p[192], fp[192];
    size_t i = 0;
    const char *dup;
    char **names;
    int r;

    r = mdl_json_get(root, "", "features", MDL_JSON_ARRAY, &list, reterr);
    if (r < 0)
        return r;
    if (list->len == 0)
        return mdl_err_set(reterr, -EBADMSG, "features: must not be empty");
    if (mdl_model_alloc_features(m, list->len) < 0)
        return oom(reterr);
    MDL_JSON_FOREACH(f, list) {
        mdl_feature_t *feat = &m->features[i];
        const mdl_json_t *cats;
        size_t k = 0;

        mdl_json_path_index(fp, sizeof fp, "features", i++);
        r = mdl_json_check_members(f, fp, allowed, reterr);
        if (r < 0)
            return r;
        if (!mdl_json_find(f, "name"))
            return mdl_err_set(reterr, -EBADMSG, "%s.name: required field is missing", fp);
        r = dup_string(mdl_json_find(f, "name"), mdl_json_path_key(p, sizeof p, fp, "name"),
                       &feat->name, reterr);
        if (r < 0)
            return r;
        cats = mdl_json_find(f, "categories");
        if (!cats || cats->type == MDL_JSON_NULL)
            continue;
        mdl_json_path_key(p, sizeof p, fp, "categories");
        r = mdl_json_expect(cats, MDL_JSON_ARRAY, p, reterr);
        if (r < 0)
            return r;
        if (cats->len == 0)
            return mdl_err_set(reterr, -EBADMSG, "%s: must not be empty", p);
        feat->categories = calloc(cats->len, sizeof *feat->categories);
        if (!feat->categories)
            return oom(reterr);
        MDL_JSON_FOREACH(c, cats) {
            char cp[192];
            r = dup_string(c, mdl_json_path_index(cp, sizeof cp, p, k), &feat->categories[k], reterr);
            if (r < 0)
                return r;
            feat->n_categories = ++k;
        }
        r = find_duplicate(feat->categories, feat->n_categories, &dup, reterr);
        if (r != 0)
            return r < 0 ? r : mdl_err_set(reterr, -EBADMSG, "%s: duplicate category \"%s\"", p, dup);
    }
    names = malloc(m->n_features * sizeof *names);
    if (!names)
        return oom(reterr);
    for (i = 0; i < m->n_features; i++)
        names[i] = m->features[i].name;
    r = find_duplicate(names, m->n_features, &dup, reterr);
    if (r > 0)
        r = mdl_err_set(reterr, -EBADMSG, "features: duplicate feature name \"%s\"", dup);
    free(names);
    return r;
}

static int load_classes(const mdl_json_t *root, mdl_model_t *m, mdl_err_t *reterr)
{
    const mdl_json_t *list;
    char p[64];
    const char *dup;
    size_t i = 0;
    int r;

    r = mdl_json_get(root, "", "classes", MDL_JSON_ARRAY, &list, reterr);
    if (r < 0)
        return r;
    if (list->len < 2)
        return mdl_err_set(reterr, -EBADMSG, "classes: expected at least 2 classes, got %u", list->len);
    if (mdl_model_alloc_classes(m, list->len) < 0)
        return oom(reterr);
    MDL_JSON_FOREACH(c, list) {
        r = class_label(c, mdl_json_path_index(p, sizeof p, "classes", i), &m->classes[i], reterr);
        if (r < 0)
            return r;
        i++;
    }
    r = find_duplicate(m->classes, m->n_classes, &dup, reterr);
    if (r > 0)
        r = mdl_err_set(reterr, -EBADMSG, "classes: duplicate class \"%s\"", dup);
    return r;
}

/* estimator, multi_class and task -> link and task, checked against each other. */
static int load_link(const mdl_json_t *root, const mdl_model_t *m, lr_link_t *ret_link,
                     mdl_task_t *ret_task, mdl_err_t *reterr)
{
    const char *est, *task, *mc = NULL, *want;
    const mdl_json_t *mcv = mdl_json_find(root, "multi_class");
    bool binary = m->n_classes == 2;
    int r;

    r = mdl_json_get_string(root, "", "estimator", &est, reterr);
    if (r >= 0)
        r = mdl_json_get_string(root, "", "task", &task, reterr);
    if (r >= 0 && mcv)
        r = mdl_json_get_string(root, "", "multi_class", &mc, reterr);
    if (r < 0)
        return r;
    if (strcmp(est, "LinearSVC") == 0) {
        if (mc)
            return mdl_err_set(reterr, -EBADMSG, "multi_class: only allowed for LogisticRegression");
        *ret_link = LINK_IDENTITY;
        *ret_task = MDL_TASK_DECISION;
    } else if (strcmp(est, "LogisticRegression") == 0) {
        if (!mc && !binary)
            return mdl_err_set(reterr, -EBADMSG,
                               "multi_class: required for LogisticRegression with %zu classes "
                               "(\"ovr\" or \"multinomial\")", m->n_classes);
        if (!mc || strcmp(mc, "ovr") == 0)
            *ret_link = binary ? LINK_LOGISTIC : LINK_OVR;
        else if (strcmp(mc, "multinomial") == 0)
            *ret_link = binary ? LINK_LOGISTIC2 : LINK_SOFTMAX;
        else
            return mdl_err_set(reterr, -EBADMSG, "multi_class: expected \"ovr\" or \"multinomial\", got \"%s\"",
                               mc);
        *ret_task = binary ? MDL_TASK_BINARY : MDL_TASK_MULTICLASS;
    } else {
        return mdl_err_set(reterr, -EBADMSG,
                           "estimator: expected \"LogisticRegression\" or \"LinearSVC\", got \"%s\"", est);
    }
    want = mdl_task_name(*ret_task);
    if (strcmp(task, want) != 0)
        return mdl_err_set(reterr, -EBADMSG, "task: expected \"%s\" for a %s with %zu classes, got \"%s\"",
                           want, est, m->n_classes, task);
    return 0;
}

/* coef (n_out rows of equal width) and intercept (n_out), coef stored transposed. */
static int load_weights(const mdl_json_t *root, lr_t *lr, size_t n_classes, size_t *ret_width,
                        mdl_err_t *reterr)
{
    const mdl_json_t *coef, *icpt, *row0;
    size_t n_out = n_classes == 2 ? 1 : n_classes, width, i = 0;
    double *buf = NULL;
    char p[64];
    int r;

    r = mdl_json_get(root, "", "coef", MDL_JSON_ARRAY, &coef, reterr);
    if (r >= 0)
        r = mdl_json_get(root, "", "intercept", MDL_JSON_ARRAY, &icpt, reterr);
    if (r < 0)
        return r;
    if (coef->len != n_out)
        return mdl_err_set(reterr, -EBADMSG, "coef: expected %zu row%s (one per %s for %zu classes), got %u",
                           n_out, n_out == 1 ? "" : "s", n_out == 1 ? "model" : "class", n_classes,
                           coef->len);
    row0 = coef + 1;
    r = mdl_json_expect(row0, MDL_JSON_ARRAY, "coef[0]", reterr);
    if (r < 0)
        return r;
    width = row0->len;
    if (width == 0)
        return mdl_err_set(reterr, -EBADMSG, "coef[0]: must not be empty");
    lr->n_out = n_out;
    lr->coef = malloc(width * n_out * sizeof *lr->coef);
    lr->intercept = malloc(n_out * sizeof *lr->intercept);
    buf = malloc(width * sizeof *buf);
    if (!lr->coef || !lr->intercept || !buf) {
        r = oom(reterr);
        goto out;
    }
    MDL_JSON_FOREACH(row, coef) {
        r = mdl_json_numbers(row, mdl_json_path_index(p, sizeof p, "coef", i), buf, width, reterr);
        if (r < 0) {
            if (row->type == MDL_JSON_ARRAY && row->len != width)
                r = mdl_err_set(reterr, -EBADMSG, "%s: expected %zu numbers like coef[0], got %u", p,
                                width, row->len);
            goto out;
        }
        for (size_t j = 0; j < width; j++)
            lr->coef[j * n_out + i] = buf[j];
        i++;
    }
    r = mdl_json_numbers(icpt, "intercept", lr->intercept, n_out, reterr);
    if (r < 0)
        goto out;
    *ret_width = width;
out:
    free(buf);
    return r;
}

static int load_impl(const mdl_json_t *root, mdl_model_t *m, lr_t *lr, mdl_err_t *reterr)
{
    static const char *const allowed[] = {"format", "format_version", "producer", "estimator",
                                          "task", "multi_class", "classes", "features",
                                          "preprocess", "coef", "intercept", NULL};
    builder_t b = {.m = m, .err = reterr};
    lanes_t in = {0}, out = {0};
    const mdl_json_t *pre;
    const char *format;
    long long version;
    size_t width = 0;
    int r;

    r = mdl_json_expect(root, MDL_JSON_OBJECT, "", reterr);
    if (r >= 0)
        r = mdl_json_get_string(root, "", "format", &format, reterr);
    if (r < 0)
        return r;
    if (strcmp(format, "modeld-lr") != 0)
        return mdl_err_set(reterr, -EBADMSG, "format: expected \"modeld-lr\", got \"%s\"", format);
    r = mdl_json_get_int(root, "", "format_version", 1, INT32_MAX, &version, reterr);
    if (r < 0)
        return r;
    if (version != 1)
        return mdl_err_set(reterr, -EBADMSG,
                           "format_version: %lld is not supported (this modeld reads version 1)",
                           version);
    r = mdl_json_check_members(root, "", allowed, reterr);
    if (r < 0)
        return r;
    if (mdl_json_find(root, "producer")) {
        const char *producer;
        r = mdl_json_get_string(root, "", "producer", &producer, reterr);
        if (r < 0)
            return r;
    }
    r = load_classes(root, m, reterr);
    if (r >= 0)
        r = load_link(root, m, &lr->link, &m->task, reterr);
    if (r >= 0)
        r = load_features(root, m, reterr);
    if (r >= 0)
        r = load_weights(root, lr, m->n_classes, &width, reterr);
    if (r < 0)
        return r;

    lr->n_features = m->n_features;
    lr->n_cats = calloc(m->n_features, sizeof *lr->n_cats);
    lr->cat_cols = calloc(m->n_features, sizeof *lr->cat_cols);
    lr->names = calloc(m->n_features, sizeof *lr->names);
    if (!lr->n_cats || !lr->cat_cols || !lr->names)
        return oom(reterr);
    for (size_t c = 0; c < m->n_features; c++) {
        const mdl_feature_t *f = &m->features[c];
        lane_t lane = {.col = (uint32_t)c, .kind = f->n_categories ? LANE_CAT : LANE_NUM,
                       .category = -1, .cat_fill = NAN, .last_op = -1};
        lr->names[c] = strdup(f->name);
        if (!lr->names[c])
            return oom(reterr);
        lr->n_cats[c] = (uint32_t)f->n_categories;
        if (f->n_categories)
            lr->cat_cols[lr->n_cat_cols++] = (uint32_t)c;
        r = lanes_push(&b, &in, &lane);
        if (r < 0)
            goto out;
    }
    pre = mdl_json_find(root, "preprocess");
    if (pre && pre->type != MDL_JSON_NULL) {
        r = compile_step(&b, pre, "preprocess", in.v, in.n, &out);
        if (r < 0)
            goto out;
    } else {
        lanes_t t = in; /* no preprocessing: the features go straight to the linear part */
        in = out;
        out = t;
    }
    if (out.n != width) {
        r = mdl_err_set(reterr, -EBADMSG,
                        "coef: rows have %zu columns but the features after preprocessing are %zu wide",
                        width, out.n);
        goto out;
    }
    r = build_terms(&b, &out, lr);
out:
    free(in.v);
    free(out.v);
    free(b.pool);
    return r;
}

int mdl_lr_load_mem(const char *data, size_t len, mdl_model_t *m, mdl_err_t *reterr)
{
    mdl_json_doc_t *doc = NULL;
    lr_t *lr;
    int r;

    lr = calloc(1, sizeof *lr);
    if (!lr)
        return oom(reterr);
    r = mdl_json_parse(data, len, MDL_LR_MAX_JSON_DEPTH, &doc, reterr);
    if (r >= 0)
        r = load_impl(mdl_json_doc_root(doc), m, lr, reterr);
    mdl_json_doc_free(doc);
    if (r < 0) {
        lr_destroy(lr);
        mdl_model_free_metadata(m);
        return r;
    }
    /* A column no term reads was dropped by the pipeline: callers may send anything. */
    for (size_t j = 0; j < m->n_features; j++)
        m->features[j].ignored = true;
    for (size_t t = 0; t < lr->n_terms; t++)
        m->features[lr->terms[t].col].ignored = false;
    m->impl = lr;
    return 0;
}

static int lr_load(const char *path, const mdl_load_opts_t *opts, mdl_model_t *m,
                   mdl_err_t *reterr)
{
    size_t len;
    char *data;
    int r;

    r = mdl_model_read_artifact(path, opts, MDL_LR_MAX_FILE_BYTES, m, &data, &len, reterr);
    if (r < 0)
        return r;
    r = mdl_lr_load_mem(data, len, m, reterr);
    free(data);
    return r;
}

static const char *const lr_artifacts[] = {"lr.json", NULL};

static const mdl_tabular_ops_t lr_tabular = {
    .output_width = lr_output_width,
    .score = lr_score,
};

const mdl_kind_t mdl_kind_lr = {
    .name = "lr",
    .artifacts = lr_artifacts,
    .load = lr_load,
    .destroy = lr_destroy,
    .tabular = &lr_tabular,
};
