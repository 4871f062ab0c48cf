#include "evalstream.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tabular.h"

#define MAX_TEXT 1024       /* group and class strings, CSV header names */
#define BATCH_VALUES 262144 /* feature values scored per model call (2 MiB of rows) */

typedef struct dvec {
    double *v;
    size_t n, cap;
} dvec_t;

/* Group values interned to 0, 1, 2 ... in order of first appearance. Keys are a type byte
 * ('n' number bits, 's' string) and the bytes, kept in one arena. */
typedef struct interner {
    uint32_t *slots; /* index + 1; 0 = empty */
    size_t n_slots;
    size_t *key_off; /* per group: offset of its key in the arena (length prefix, bytes) */
    size_t n, cap;
    char *arena;
    size_t arena_len, arena_cap;
} interner_t;

enum { F_NONE, F_INSTANCES, F_SCORES, F_LABELS, F_WEIGHTS, F_GROUPS, F_THRESHOLD, F_K, F_NBINS, F_TASK };
enum { C_FEATURE, C_LABEL, C_WEIGHT, C_GROUP, C_SCORE };
/* JSON states: what comes next. */
enum { J_START, J_FIRST_KEY, J_KEY, J_COLON, J_VALUE, J_FIRST_ELEM, J_ELEM, J_ELEM_SEP, J_AFTER_VALUE, J_DONE };

struct mdl_evalstream {
    mdl_eval_format_t format;
    const mdl_model_t *m;
    size_t max_rows, nf;
    size_t width;               /* scores per row; 0 until known (precomputed scores) */
    dvec_t scores, labels, weights;
    uint32_t *groups;
    size_t n_group_ids, groups_cap;
    interner_t gi;
    double *batch;              /* feature rows waiting to be scored */
    size_t batch_rows, batch_cap;
    size_t n_feature_rows, n_score_rows;
    size_t pos;                 /* bytes consumed before the current piece */
    size_t line;                /* lines consumed (NDJSON, CSV) */
    /* JSON */
    int js, field;
    unsigned seen;              /* fields seen, as bits */
    size_t index;               /* element index in the current array */
    /* CSV */
    bool have_header;
    size_t n_cols;
    int *col_kind;
    long *col_arg;              /* feature column or score index */
    bool csv_scores;            /* the header has score columns */
    char *scratch;              /* unescaped CSV fields */
    size_t scratch_cap;
    const char **fields;
    size_t *field_len;
    mdl_eval_columns_t opts;
};

/* ---- small containers ---- */

static int dvec_reserve(dvec_t *d, size_t more)
{
    if (d->n + more > d->cap) {
        size_t cap = d->cap ? d->cap : 1024;
        double *v;
        while (cap < d->n + more)
            cap *= 2;
        if (cap > SIZE_MAX / sizeof(double) || !(v = realloc(d->v, cap * sizeof(double))))
            return -ENOMEM;
        d->v = v, d->cap = cap;
    }
    return 0;
}

static int dvec_push(dvec_t *d, double x)
{
    if (d->n == d->cap && dvec_reserve(d, 1) < 0)
        return -ENOMEM;
    d->v[d->n++] = x;
    return 0;
}

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;

    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h ^ (h >> 29);
}

static const char *key_at(const interner_t *t, uint32_t g, size_t *ret_len)
{
    const char *k = t->arena + t->key_off[g];
    uint32_t n;

    memcpy(&n, k, sizeof n);
    *ret_len = n;
    return k + sizeof n;
}

static int intern_grow(interner_t *t)
{
    size_t n_slots = t->n_slots ? t->n_slots * 2 : 1024;
    uint32_t *slots = calloc(n_slots, sizeof *slots);

    if (!slots)
        return -ENOMEM;
    for (uint32_t g = 0; g < t->n; g++) {
        size_t len;
        const char *k = key_at(t, g, &len);
        size_t i = hash_bytes(k, len) & (n_slots - 1);
        while (slots[i])
            i = (i + 1) & (n_slots - 1);
        slots[i] = g + 1;
    }
    free(t->slots);
    t->slots = slots, t->n_slots = n_slots;
    return 0;
}

/* The group index of key[0..len), adding it if new. */
static long intern(interner_t *t, const char *key, size_t len)
{
    size_t i, need;
    uint32_t n32 = (uint32_t)len;

    if ((t->n + 1) * 2 > t->n_slots && intern_grow(t) < 0)
        return -ENOMEM;
    i = hash_bytes(key, len) & (t->n_slots - 1);
    while (t->slots[i]) {
        size_t klen;
        const char *k = key_at(t, t->slots[i] - 1, &klen);
        if (klen == len && memcmp(k, key, len) == 0)
            return t->slots[i] - 1;
        i = (i + 1) & (t->n_slots - 1);
    }
    if (t->n >= UINT32_MAX - 1)
        return -E2BIG;
    need = sizeof n32 + len;
    if (t->arena_len + need > t->arena_cap) {
        size_t cap = t->arena_cap ? t->arena_cap * 2 : 65536;
        char *a;
        while (cap < t->arena_len + need)
            cap *= 2;
        if (!(a = realloc(t->arena, cap)))
            return -ENOMEM;
        t->arena = a, t->arena_cap = cap;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 1024;
        size_t *o = realloc(t->key_off, cap * sizeof *o);
        if (!o)
            return -ENOMEM;
        t->key_off = o, t->cap = cap;
    }
    t->key_off[t->n] = t->arena_len;
    memcpy(t->arena + t->arena_len, &n32, sizeof n32);
    memcpy(t->arena + t->arena_len + sizeof n32, key, len);
    t->arena_len += need;
    t->slots[i] = (uint32_t)t->n + 1;
    return (long)t->n++;
}

/* ---- lifecycle ---- */

mdl_evalstream_t *mdl_evalstream_new(mdl_eval_format_t format, const mdl_model_t *m, size_t max_rows)
{
    mdl_evalstream_t *s = calloc(1, sizeof *s);

    if (!s)
        return NULL;
    s->format = format;
    s->m = m;
    s->max_rows = max_rows;
    s->nf = m ? m->n_features : 0;
    s->width = m ? mdl_model_output_width(m, MDL_OUTPUT_VALUE) : 0;
    if (m) {
        size_t nf = s->nf ? s->nf : 1;
        s->batch_cap = BATCH_VALUES / nf;
        if (s->batch_cap < 16)
            s->batch_cap = 16;
        if (s->batch_cap > 8192)
            s->batch_cap = 8192;
        s->batch = malloc(s->batch_cap * nf * sizeof(double));
        if (!s->batch) {
            free(s);
            return NULL;
        }
    }
    s->opts.threshold = NAN;
    s->opts.k = -1;
    s->opts.n_bins = -1;
    return s;
}

void mdl_evalstream_free(mdl_evalstream_t *s)
{
    if (!s)
        return;
    free(s->scores.v);
    free(s->labels.v);
    free(s->weights.v);
    free(s->groups);
    free(s->gi.slots);
    free(s->gi.key_off);
    free(s->gi.arena);
    free(s->batch);
    free(s->col_kind);
    free(s->col_arg);
    free(s->scratch);
    free(s->fields);
    free(s->field_len);
    free(s);
}

/* ---- rows ---- */

/* "line 3: " for line formats, "" for JSON (its messages carry byte offsets). */
#define WHERE_LINE(s) ((s)->format == MDL_EVAL_JSON ? "" : line_prefix((s), (char[40]){0}))
static const char *line_prefix(const mdl_evalstream_t *s, char *buf)
{
    snprintf(buf, 40, "line %zu: ", s->line + 1);
    return buf;
}

static int too_many(mdl_evalstream_t *s, const char *what, mdl_err_t *reterr)
{
    return mdl_err_set(reterr, -E2BIG, "%smore than %zu %s (the max_eval_rows limit)", WHERE_LINE(s),
                       s->max_rows, what);
}

static int score_batch(mdl_evalstream_t *s, mdl_err_t *reterr)
{
    size_t first = s->n_feature_rows - s->batch_rows, n = s->batch_rows * s->width;
    int r;

    if (!s->batch_rows)
        return 0;
    if (dvec_reserve(&s->scores, n) < 0)
        return mdl_err_set(reterr, -ENOMEM, "out of memory for %zu scores", s->scores.n + n);
    r = mdl_model_score(s->m, s->batch, s->batch_rows, MDL_OUTPUT_VALUE, s->scores.v + s->scores.n, reterr);
    if (r < 0) {
        mdl_err_prefix(reterr, "rows %zu..%zu: ", first, first + s->batch_rows - 1);
        return r;
    }
    for (size_t i = 0; i < n; i++)
        if (!isfinite(s->scores.v[s->scores.n + i]))
            return mdl_err_set(reterr, -ERANGE, "row %zu scores to a non-finite value (inputs out of range?)",
                               first + i / s->width);
    s->scores.n += n;
    s->batch_rows = 0;
    return 0;
}

/* A slot for the next feature row; the batch is scored first when full. */
static double *feature_row(mdl_evalstream_t *s, mdl_err_t *reterr)
{
    if (s->n_score_rows) {
        mdl_err_set(reterr, -EPROTO, "%sfeature rows and precomputed scores cannot be mixed", WHERE_LINE(s));
        return NULL;
    }
    if (s->n_feature_rows >= s->max_rows) {
        too_many(s, "rows", reterr);
        return NULL;
    }
    if (s->batch_rows == s->batch_cap && score_batch(s, reterr) < 0)
        return NULL;
    s->n_feature_rows++;
    return s->batch + s->batch_rows++ * (s->nf ? s->nf : 1);
}

/* Precomputed scores of one row: width values. */
static int push_scores(mdl_evalstream_t *s, const double *v, size_t width, mdl_err_t *reterr)
{
    if (s->n_feature_rows)
        return mdl_err_set(reterr, -EPROTO, "%sfeature rows and precomputed scores cannot be mixed",
                           WHERE_LINE(s));
    if (s->n_score_rows >= s->max_rows)
        return too_many(s, "rows", reterr);
    if (!s->width)
        s->width = width;
    if (width != s->width)
        return mdl_err_set(reterr, -EPROTO, "%sscores[%zu]: %zu values, but earlier rows have %zu",
                           WHERE_LINE(s), s->n_score_rows, width, s->width);
    for (size_t i = 0; i < width; i++)
        if (!isfinite(v[i]))
            return mdl_err_set(reterr, -EPROTO, "%sscores[%zu] is not a finite number", WHERE_LINE(s),
                               s->n_score_rows);
    if (dvec_reserve(&s->scores, width) < 0)
        return mdl_err_set(reterr, -ENOMEM, "out of memory");
    memcpy(s->scores.v + s->scores.n, v, width * sizeof *v);
    s->scores.n += width;
    s->n_score_rows++;
    return 0;
}

static int push_label(mdl_evalstream_t *s, double y, mdl_err_t *reterr)
{
    if (s->labels.n >= s->max_rows)
        return too_many(s, "labels", reterr);
    return dvec_push(&s->labels, y) < 0 ? mdl_err_set(reterr, -ENOMEM, "out of memory") : 0;
}

static int push_weight(mdl_evalstream_t *s, double w, mdl_err_t *reterr)
{
    if (s->weights.n >= s->max_rows)
        return too_many(s, "weights", reterr);
    return dvec_push(&s->weights, w) < 0 ? mdl_err_set(reterr, -ENOMEM, "out of memory") : 0;
}

/* Interns a group key (type byte + bytes) and appends its index. */
static int push_group(mdl_evalstream_t *s, char type, const char *bytes, size_t len, mdl_err_t *reterr)
{
    char key[MAX_TEXT + 1];
    long g;

    if (s->n_group_ids >= s->max_rows)
        return too_many(s, "groups", reterr);
    key[0] = type;
    memcpy(key + 1, bytes, len);
    g = intern(&s->gi, key, len + 1);
    if (g < 0)
        return mdl_err_set(reterr, (int)g, g == -E2BIG ? "too many groups" : "out of memory");
    if (s->n_group_ids == s->groups_cap) {
        size_t cap = s->groups_cap ? s->groups_cap * 2 : 1024;
        uint32_t *v = realloc(s->groups, cap * sizeof *v);
        if (!v)
            return mdl_err_set(reterr, -ENOMEM, "out of memory");
        s->groups = v, s->groups_cap = cap;
    }
    s->groups[s->n_group_ids++] = (uint32_t)g;
    return 0;
}

/* ---- scalar values (JSON text) ---- */

/* A whole slice that is one JSON number. */
static bool json_number(const char *t, size_t len, double *ret)
{
    return len && mdl_json_parse_number(t, t + len, ret) == len;
}

/* Class label text -> class index (models with class labels), or -1. */
static long class_index(const mdl_model_t *m, const char *text)
{
    for (size_t i = 0; m && i < m->n_classes; i++)
        if (strcmp(m->classes[i], text) == 0)
            return (long)i;
    return -1;
}

/* A label: number, true/false, or one of the model's class labels as a string. */
static int json_label(mdl_evalstream_t *s, const char *t, size_t len, const char *what, mdl_err_t *reterr)
{
    double y;

    if (json_number(t, len, &y))
        return push_label(s, y, reterr);
    if (len == 4 && memcmp(t, "true", 4) == 0)
        return push_label(s, 1, reterr);
    if (len == 5 && memcmp(t, "false", 5) == 0)
        return push_label(s, 0, reterr);
    if (t[0] == '"') {
        char text[MAX_TEXT];
        size_t used;
        long c;
        int r = mdl_json_parse_string(t, t + len, text, sizeof text, &used, reterr);
        if (r < 0)
            return mdl_err_set(reterr, -EPROTO, "%s%s: malformed or too long string", WHERE_LINE(s), what);
        if ((c = class_index(s->m, text)) < 0)
            return mdl_err_set(reterr, -EPROTO, "%s%s: \"%.64s\" is not a class label of the model%s",
                               WHERE_LINE(s), what, text, s->m ? "" : " (no model: labels are numbers)");
        return push_label(s, (double)c, reterr);
    }
    return mdl_err_set(reterr, -EPROTO, "%s%s: expected a number (or a class label)", WHERE_LINE(s), what);
}

static int json_weight(mdl_evalstream_t *s, const char *t, size_t len, const char *what, mdl_err_t *reterr)
{
    double w;

    if (!json_number(t, len, &w))
        return mdl_err_set(reterr, -EPROTO, "%s%s: expected a number", WHERE_LINE(s), what);
    return push_weight(s, w, reterr);
}

static int json_group(mdl_evalstream_t *s, const char *t, size_t len, const char *what, mdl_err_t *reterr)
{
    double g;

    if (json_number(t, len, &g))
        return push_group(s, 'n', (const char *)&g, sizeof g, reterr);
    if (t[0] == '"') {
        char text[MAX_TEXT];
        size_t used;
        int r = mdl_json_parse_string(t, t + len, text, sizeof text, &used, reterr);
        if (r < 0)
            return mdl_err_set(reterr, -EPROTO, "%s%s: malformed or too long string", WHERE_LINE(s), what);
        return push_group(s, 's', text, strlen(text), reterr);
    }
    return mdl_err_set(reterr, -EPROTO, "%s%s: expected a number or a string", WHERE_LINE(s), what);
}

/* A score: a number, or an array of numbers (one per class). */
static int json_score(mdl_evalstream_t *s, const char *t, size_t len, const char *what, mdl_err_t *reterr)
{
    double v[256];
    size_t n = 0;

    if (json_number(t, len, &v[0]))
        return push_scores(s, v, 1, reterr);
    if (t[0] == '[') {
        const char *p = t + 1, *end = t + len - 1; /* inside the brackets */
        for (;;) {
            size_t used;
            while (p < end && strchr(" \t\r\n", *p))
                p++;
            if (p == end && n == 0)
                break;
            if (n == sizeof v / sizeof v[0])
                return mdl_err_set(reterr, -EPROTO, "%s%s: more than %zu classes", WHERE_LINE(s), what, n);
            if (!(used = mdl_json_parse_number(p, end, &v[n])))
                break;
            n++;
            p += used;
            while (p < end && strchr(" \t\r\n", *p))
                p++;
            if (p == end)
                return push_scores(s, v, n, reterr);
            if (*p++ != ',')
                break;
        }
    }
    return mdl_err_set(reterr, -EPROTO, "%s%s: expected a number or an array of numbers", WHERE_LINE(s), what);
}

/* ---- JSON body ---- */

static int json_syntax(mdl_evalstream_t *s, size_t at, const char *what, mdl_err_t *reterr)
{
    return mdl_err_set(reterr, -EBADMSG, "malformed JSON: %s at byte %zu", what, s->pos + at);
}

static const struct {
    const char *name;
    int field;
} json_fields[] = {{"instances", F_INSTANCES}, {"scores", F_SCORES}, {"labels", F_LABELS},
                   {"weights", F_WEIGHTS},     {"groups", F_GROUPS}, {"threshold", F_THRESHOLD},
                   {"k", F_K},                 {"n_bins", F_NBINS},  {"task", F_TASK}};

static const char *field_name(int field)
{
    for (size_t i = 0; i < sizeof json_fields / sizeof json_fields[0]; i++)
        if (json_fields[i].field == field)
            return json_fields[i].name;
    return "?";
}

static int json_element(mdl_evalstream_t *s, const char *t, size_t len, size_t at, mdl_err_t *reterr)
{
    char what[48];

    snprintf(what, sizeof what, "%s[%zu]", field_name(s->field), s->index);
    switch (s->field) {
    case F_INSTANCES: {
        mdl_row_opts_t o = {.key = "instances", .index = s->index, .base = s->pos + at};
        double *row = feature_row(s, reterr);
        if (!row)
            return reterr->code;
        return mdl_tabular_parse_row(s->m, t, len, &o, row, reterr);
    }
    case F_SCORES:
        return json_score(s, t, len, what, reterr);
    case F_LABELS:
        return json_label(s, t, len, what, reterr);
    case F_WEIGHTS:
        return json_weight(s, t, len, what, reterr);
    default:
        return json_group(s, t, len, what, reterr);
    }
}

static int json_option(mdl_evalstream_t *s, const char *t, size_t len, mdl_err_t *reterr)
{
    double v;

    if (s->field == F_TASK) {
        size_t used;
        if (t[0] != '"' || mdl_json_parse_string(t, t + len, s->opts.task, sizeof s->opts.task, &used, reterr) < 0)
            return mdl_err_set(reterr, -EPROTO, "task: expected \"binary\", \"multiclass\" or \"ranking\"");
        return 0;
    }
    if (!json_number(t, len, &v))
        return mdl_err_set(reterr, -EPROTO, "%s: expected a number", field_name(s->field));
    if (s->field == F_THRESHOLD)
        s->opts.threshold = v;
    else if (s->field == F_K)
        s->opts.k = v;
    else
        s->opts.n_bins = v;
    return 0;
}

static long feed_json(mdl_evalstream_t *s, const char *data, size_t len, bool final, mdl_err_t *reterr)
{
    const char *p = data, *end = data + len;
    int r;

#define MORE()                                                                     \
    do {                                                                           \
        while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))   \
            p++;                                                                   \
        if (p == end)                                                              \
            goto need_more;                                                        \
    } while (0)
    for (;;) {
        switch (s->js) {
        case J_START:
            MORE();
            if (*p != '{')
                return json_syntax(s, (size_t)(p - data), "the body must be a JSON object; expected '{'", reterr);
            p++;
            s->js = J_FIRST_KEY;
            break;
        case J_FIRST_KEY:
            MORE();
            if (*p == '}') {
                p++;
                s->js = J_DONE;
                break;
            }
            s->js = J_KEY;
            break;
        case J_KEY: {
            char key[32];
            size_t used;
            long n;
            MORE();
            if (*p != '"')
                return json_syntax(s, (size_t)(p - data), "expected a string key", reterr);
            if ((n = mdl_json_scan_value(p, end)) == 0)
                goto need_more;
            if (mdl_json_parse_string(p, p + n, key, sizeof key, &used, reterr) < 0)
                return mdl_err_set(reterr, -EPROTO, "unknown field (expected instances, scores, labels, "
                                                    "weights, groups, threshold, k, n_bins, task)");
            s->field = F_NONE;
            for (size_t i = 0; i < sizeof json_fields / sizeof json_fields[0]; i++)
                if (strcmp(key, json_fields[i].name) == 0)
                    s->field = json_fields[i].field;
            if (s->field == F_NONE)
                return mdl_err_set(reterr, -EPROTO, "unknown field '%.31s' (expected instances, scores, labels, "
                                                    "weights, groups, threshold, k, n_bins, task)", key);
            if (s->seen & (1u << s->field))
                return mdl_err_set(reterr, -EPROTO, "field '%s' given twice", key);
            s->seen |= 1u << s->field;
            if (s->field == F_INSTANCES && !s->m)
                return mdl_err_set(reterr, -EPROTO, "instances: no model scores them here; send \"scores\" "
                                                    "or use /v1/models/{m}:score-auc");
            if ((s->seen & (1u << F_INSTANCES)) && (s->seen & (1u << F_SCORES)))
                return mdl_err_set(reterr, -EPROTO, "exactly one of \"instances\" or \"scores\" is allowed");
            p += n;
            s->js = J_COLON;
            break;
        }
        case J_COLON:
            MORE();
            if (*p != ':')
                return json_syntax(s, (size_t)(p - data), "expected ':'", reterr);
            p++;
            s->js = J_VALUE;
            break;
        case J_VALUE:
            MORE();
            if (s->field >= F_THRESHOLD) {
                long n = mdl_json_scan_value(p, end);
                if (n == 0 && final)
                    n = (long)(end - p);
                if (n == 0)
                    goto need_more;
                if (n < 0)
                    return json_syntax(s, (size_t)(p - data), "expected a value", reterr);
                if ((r = json_option(s, p, (size_t)n, reterr)) < 0)
                    return r;
                p += n;
                s->js = J_AFTER_VALUE;
                break;
            }
            if (*p != '[')
                return mdl_err_set(reterr, -EPROTO, "%s: expected an array", field_name(s->field));
            p++;
            s->index = 0;
            s->js = J_FIRST_ELEM;
            break;
        case J_FIRST_ELEM:
            MORE();
            if (*p == ']') {
                p++;
                s->js = J_AFTER_VALUE;
                break;
            }
            s->js = J_ELEM;
            break;
        case J_ELEM: {
            long n;
            MORE();
            n = mdl_json_scan_value(p, end);
            if (n < 0)
                return json_syntax(s, (size_t)(p - data), "expected a value", reterr);
            if (n == 0)
                goto need_more;
            if ((r = json_element(s, p, (size_t)n, (size_t)(p - data), reterr)) < 0)
                return r;
            p += n;
            s->index++;
            s->js = J_ELEM_SEP;
            break;
        }
        case J_ELEM_SEP:
            MORE();
            if (*p == ',')
                s->js = J_ELEM;
            else if (*p == ']')
                s->js = J_AFTER_VALUE;
            else
                return json_syntax(s, (size_t)(p - data), "expected ',' or ']' in array", reterr);
            p++;
            break;
        case J_AFTER_VALUE:
            MORE();
            if (*p == ',')
                s->js = J_KEY;
            else if (*p == '}')
                s->js = J_DONE;
            else
                return json_syntax(s, (size_t)(p - data), "expected ',' or '}' in object", reterr);
            p++;
            break;
        default: /* J_DONE */
            MORE();
            return json_syntax(s, (size_t)(p - data), "unexpected data after the JSON value", reterr);
        }
    }
need_more:
    if (final && s->js != J_DONE)
        return json_syntax(s, len, "unexpected end of body", reterr);
    if (!final && (size_t)(end - p) > MDL_EVALSTREAM_MAX_ROW_BYTES)
        return mdl_err_set(reterr, -EPROTO, "an element at byte %zu is larger than %zu bytes", s->pos + (size_t)(p - data),
                           MDL_EVALSTREAM_MAX_ROW_BYTES);
#undef MORE
    s->pos += (size_t)(p - data);
    return p - data;
}

/* ---- NDJSON ---- */

/* The "features" row at p (line t), into the next feature row; *ret_used its length. */
static int ndjson_features(mdl_evalstream_t *s, const char *t, const char *p, const char *end, size_t *ret_used,
                           mdl_err_t *reterr)
{
    mdl_row_opts_t o = {.key = "features", .index = SIZE_MAX, .base = (size_t)(p - t), .ret_used = ret_used};
    double *x;
    int r;

    if (!s->m)
        return mdl_err_set(reterr, -EPROTO, "line %zu: features: no model scores them here; send \"score\"",
                           s->line + 1);
    if (!(x = feature_row(s, reterr)))
        return reterr->code;
    if ((r = mdl_tabular_parse_row(s->m, p, (size_t)(end - p), &o, x, reterr)) < 0)
        mdl_err_prefix(reterr, "line %zu: ", s->line + 1); /* byte offsets are columns of the line */
    return r;
}

static int ndjson_line(mdl_evalstream_t *s, const char *t, size_t len, mdl_err_t *reterr)
{
    const char *p = t, *end = t + len;
    const char *features = NULL, *score = NULL, *label = NULL, *weight = NULL, *group = NULL;
    size_t nfeat = 0, nscore = 0, nlabel = 0, nweight = 0, ngroup = 0;
    size_t row = s->labels.n, used = 0;
    char key[32];
    int r;

#define WS() while (p < end && (*p == ' ' || *p == '\t')) p++
    WS();
    if (p == end)
        return 0; /* blank line */
    if (*p++ != '{')
        return mdl_err_set(reterr, -EBADMSG, "line %zu: expected a JSON object ('{') at column %zu", s->line + 1,
                           (size_t)(p - t));
    WS();
    if (p < end && *p == '}')
        p++;
    else
        for (;;) {
            long n;
            WS();
            if (p >= end || *p != '"' || (n = mdl_json_scan_value(p, end)) <= 0)
                return mdl_err_set(reterr, -EBADMSG, "line %zu: malformed JSON: expected a string key at column %zu",
                                   s->line + 1, (size_t)(p - t) + 1);
            if (mdl_json_parse_string(p, p + n, key, sizeof key, &used, reterr) < 0)
                key[0] = '\0';
            p += n;
            WS();
            if (p >= end || *p++ != ':')
                return mdl_err_set(reterr, -EBADMSG, "line %zu: malformed JSON: expected ':' at column %zu",
                                   s->line + 1, (size_t)(p - t));
            WS();
            if (strcmp(key, "features") == 0 && p < end && (*p == '[' || *p == '{')) {
                /* Decoded in place (no scan first: rows are most of the bytes). */
                if ((r = ndjson_features(s, t, p, end, &used, reterr)) < 0)
                    return r;
                features = p;
                p += used;
                goto next;
            }
            n = p < end ? mdl_json_scan_value(p, end) : -1;
            if (n == 0)
                n = (long)(end - p); /* a scalar running to the end of the line */
            if (n <= 0)
                return mdl_err_set(reterr, -EBADMSG, "line %zu: malformed JSON: expected a value at column %zu",
                                   s->line + 1, (size_t)(p - t) + 1);
            if (strcmp(key, "features") == 0)
                features = p, nfeat = (size_t)n;
            else if (strcmp(key, "score") == 0)
                score = p, nscore = (size_t)n;
            else if (strcmp(key, "label") == 0)
                label = p, nlabel = (size_t)n;
            else if (strcmp(key, "weight") == 0)
                weight = p, nweight = (size_t)n;
            else if (strcmp(key, "group") == 0)
                group = p, ngroup = (size_t)n;
            else
                return mdl_err_set(reterr, -EPROTO, "line %zu: unknown field '%.31s' (expected features, score, "
                                                    "label, weight, group)", s->line + 1, key);
            p += n;
        next:
            WS();
            if (p < end && *p == ',') {
                p++;
                continue;
            }
            if (p < end && *p == '}') {
                p++;
                break;
            }
            return mdl_err_set(reterr, -EBADMSG, "line %zu: malformed JSON: expected ',' or '}' at column %zu",
                               s->line + 1, (size_t)(p - t) + 1);
        }
    WS();
    if (p != end)
        return mdl_err_set(reterr, -EBADMSG, "line %zu: unexpected data after the object at column %zu",
                           s->line + 1, (size_t)(p - t) + 1);
#undef WS
    if (!label)
        return mdl_err_set(reterr, -EPROTO, "line %zu: \"label\" is required", s->line + 1);
    if (!features == !score)
        return mdl_err_set(reterr, -EPROTO, "line %zu: exactly one of \"features\" or \"score\" is required",
                           s->line + 1);
    if (features && nfeat) { /* not an array or object: the decoder names the problem */
        if ((r = ndjson_features(s, t, features, features + nfeat, &used, reterr)) < 0)
            return r;
    } else if (!features && (r = json_score(s, score, nscore, "score", reterr)) < 0) {
        return r;
    }
    if ((r = json_label(s, label, nlabel, "label", reterr)) < 0)
        return r;
    if (weight && s->weights.n != row)
        return mdl_err_set(reterr, -EPROTO, "line %zu: \"weight\" given, but earlier rows have none", s->line + 1);
    if (weight && (r = json_weight(s, weight, nweight, "weight", reterr)) < 0)
        return r;
    if (!weight && s->weights.n)
        return mdl_err_set(reterr, -EPROTO, "line %zu: \"weight\" missing (earlier rows have one)", s->line + 1);
    if ((group && s->n_group_ids != row) || (!group && s->n_group_ids))
        return mdl_err_set(reterr, -EPROTO, "line %zu: %s", s->line + 1,
                           group ? "\"group\" given, but earlier rows have none" : "\"group\" missing (earlier rows have one)");
    if (group && (r = json_group(s, group, ngroup, "group", reterr)) < 0)
        return r;
    return 0;
}

/* ---- CSV ---- */

/* Splits a line into fields (quotes unescaped into s->scratch). Returns the count, or -1
 * for a malformed quote. */
static long csv_split(mdl_evalstream_t *s, const char *t, size_t len, size_t max_fields)
{
    const char *p = t, *end = t + len;
    char *out;
    size_t n = 0;

    if (len + 1 > s->scratch_cap) {
        char *sc = realloc(s->scratch, len + 1);
        if (!sc)
            return -2;
        s->scratch = sc, s->scratch_cap = len + 1;
    }
    out = s->scratch;
    for (;;) {
        const char *start;
        if (n == max_fields)
            return (long)n + 1; /* too many: the caller reports it */
        if (p < end && *p == '"') {
            start = out;
            for (p++;; p++) {
                if (p >= end)
                    return -1;
                if (*p == '"') {
                    if (p + 1 < end && p[1] == '"')
                        *out++ = *p++;
                    else
                        break;
                } else {
                    *out++ = *p;
                }
            }
            p++;
            s->fields[n] = start;
            s->field_len[n] = (size_t)(out - start);
            n++;
            if (p < end && *p != ',')
                return -1;
        } else {
            start = p;
            while (p < end && *p != ',')
                p++;
            s->fields[n] = start;
            s->field_len[n] = (size_t)(p - start);
            n++;
        }
        if (p >= end)
            return (long)n;
        p++; /* ',' */
    }
}

static int csv_header(mdl_evalstream_t *s, const char *t, size_t len, mdl_err_t *reterr)
{
    size_t cap = 1;
    long n;
    bool has_label = false, has_feature = false;

    for (size_t i = 0; i < len; i++)
        cap += t[i] == ',';
    if (!(s->fields = malloc(cap * sizeof *s->fields)) || !(s->field_len = malloc(cap * sizeof *s->field_len)) ||
        !(s->col_kind = calloc(cap, sizeof *s->col_kind)) || !(s->col_arg = calloc(cap, sizeof *s->col_arg)))
        return mdl_err_set(reterr, -ENOMEM, "out of memory");
    n = csv_split(s, t, len, cap);
    if (n < 0)
        return mdl_err_set(reterr, -EBADMSG, "line 1 (header): unbalanced quote");
    s->n_cols = (size_t)n;
    for (size_t i = 0; i < s->n_cols; i++) {
        char name[MAX_TEXT];
        size_t nl = s->field_len[i] < sizeof name - 1 ? s->field_len[i] : sizeof name - 1;
        memcpy(name, s->fields[i], nl);
        name[nl] = '\0';
        if (strcmp(name, "label") == 0) {
            s->col_kind[i] = C_LABEL;
            has_label = true;
        } else if (strcmp(name, "weight") == 0) {
            s->col_kind[i] = C_WEIGHT;
        } else if (strcmp(name, "group") == 0) {
            s->col_kind[i] = C_GROUP;
        } else if (strcmp(name, "score") == 0 ||
                   (strncmp(name, "score_", 6) == 0 && name[6] && strspn(name + 6, "0123456789") == strlen(name + 6))) {
            long k = name[5] ? strtol(name + 6, NULL, 10) : 0;
            if (k >= 256)
                return mdl_err_set(reterr, -EPROTO, "line 1 (header): column '%s': at most 256 score columns", name);
            s->col_kind[i] = C_SCORE;
            s->col_arg[i] = k;
            s->csv_scores = true;
        } else {
            long col = s->m ? mdl_model_feature_index(s->m, name) : -1;
            if (col < 0)
                return mdl_err_set(reterr, -EPROTO, "line 1 (header): column '%.64s' is %s", name,
                                   s->m ? "not a feature of the model (nor label, weight, group, score)"
                                        : "not one of score, score_<i>, label, weight, group");
            s->col_kind[i] = C_FEATURE;
            s->col_arg[i] = col;
            has_feature = true;
        }
        for (size_t j = 0; j < i; j++)
            if (s->col_kind[j] == s->col_kind[i] && s->col_arg[j] == s->col_arg[i])
                return mdl_err_set(reterr, -EPROTO, "line 1 (header): column '%.64s' appears twice", name);
    }
    if (!has_label)
        return mdl_err_set(reterr, -EPROTO, "line 1 (header): a 'label' column is required");
    if (s->csv_scores && has_feature)
        return mdl_err_set(reterr, -EPROTO, "line 1 (header): score columns and feature columns cannot be mixed");
    if (!s->csv_scores && !has_feature && !s->m)
        return mdl_err_set(reterr, -EPROTO, "line 1 (header): a 'score' column is required");
    if (s->csv_scores) { /* score_0 .. score_{C-1}, all present */
        size_t width = 0;
        for (size_t i = 0; i < s->n_cols; i++)
            width += s->col_kind[i] == C_SCORE;
        for (size_t i = 0; i < s->n_cols; i++)
            if (s->col_kind[i] == C_SCORE && (size_t)s->col_arg[i] >= width)
                return mdl_err_set(reterr, -EPROTO, "line 1 (header): score columns must be score or score_0 .. score_%zu",
                                   width - 1);
        s->width = width;
    }
    s->have_header = true;
    return 0;
}

/* A CSV cell as a number (JSON syntax, or what strtod reads in full). */
static bool csv_number(const char *t, size_t len, double *ret)
{
    char buf[64];
    char *end;

    while (len && (*t == ' ' || *t == '\t'))
        t++, len--;
    while (len && (t[len - 1] == ' ' || t[len - 1] == '\t'))
        len--;
    if (json_number(t, len, ret))
        return true;
    if (!len || len >= sizeof buf)
        return false;
    memcpy(buf, t, len);
    buf[len] = '\0';
    *ret = strtod(buf, &end);
    return *end == '\0';
}

static int csv_row(mdl_evalstream_t *s, const char *t, size_t len, mdl_err_t *reterr)
{
    double scores[256], *x = NULL;
    long n = csv_split(s, t, len, s->n_cols);
    int r;

    if (n == -2)
        return mdl_err_set(reterr, -ENOMEM, "out of memory");
    if (n < 0)
        return mdl_err_set(reterr, -EBADMSG, "line %zu: unbalanced quote", s->line + 1);
    if ((size_t)n != s->n_cols)
        return mdl_err_set(reterr, -EPROTO, "line %zu: expected %zu fields (as the header), got %s%ld", s->line + 1,
                           s->n_cols, (size_t)n > s->n_cols ? "more: " : "", n);
    if (!s->csv_scores) {
        if (!(x = feature_row(s, reterr)))
            return reterr->code;
        for (size_t j = 0; j < s->nf; j++)
            x[j] = NAN;
    }
    for (size_t i = 0; i < s->n_cols; i++) {
        const char *f = s->fields[i];
        size_t fl = s->field_len[i];
        char text[MAX_TEXT];
        double v;
        long c;
        size_t tl = fl < sizeof text - 1 ? fl : sizeof text - 1;
        memcpy(text, f, tl);
        text[tl] = '\0';
        switch (s->col_kind[i]) {
        case C_FEATURE: {
            const mdl_feature_t *feat = &s->m->features[s->col_arg[i]];
            if (fl == 0 || strcmp(text, "NaN") == 0 || strcmp(text, "nan") == 0 || strcmp(text, "NA") == 0)
                v = NAN;
            else if (feat->n_categories)
                v = (double)mdl_model_category_index(s->m, (size_t)s->col_arg[i], text);
            else if (!csv_number(f, fl, &v) || !isfinite(v))
                return mdl_err_set(reterr, -EPROTO, "line %zu, column '%s': expected a number, got '%.32s'",
                                   s->line + 1, feat->name, text);
            x[s->col_arg[i]] = v;
            break;
        }
        case C_SCORE:
            if (!csv_number(f, fl, &v))
                return mdl_err_set(reterr, -EPROTO, "line %zu, column %zu: score: expected a number, got '%.32s'",
                                   s->line + 1, i + 1, text);
            scores[s->col_arg[i]] = v;
            break;
        case C_LABEL:
            if (csv_number(f, fl, &v))
                r = push_label(s, v, reterr);
            else if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0)
                r = push_label(s, text[0] == 't', reterr);
            else if ((c = class_index(s->m, text)) >= 0)
                r = push_label(s, (double)c, reterr);
            else
                r = mdl_err_set(reterr, -EPROTO, "line %zu: label: expected a number (or a class label), got '%.32s'",
                                s->line + 1, text);
            if (r < 0)
                return r;
            break;
        case C_WEIGHT:
            if (!csv_number(f, fl, &v))
                return mdl_err_set(reterr, -EPROTO, "line %zu: weight: expected a number, got '%.32s'", s->line + 1, text);
            if ((r = push_weight(s, v, reterr)) < 0)
                return r;
            break;
        default: /* C_GROUP */
            if ((r = push_group(s, 's', text, tl, reterr)) < 0)
                return r;
        }
    }
    if (s->csv_scores)
        return push_scores(s, scores, s->width, reterr);
    return 0;
}

/* ---- lines ---- */

static long feed_lines(mdl_evalstream_t *s, const char *data, size_t len, bool final, mdl_err_t *reterr)
{
    const char *p = data, *end = data + len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        size_t n;
        int r;
        if (!nl && !final) {
            if ((size_t)(end - p) > MDL_EVALSTREAM_MAX_ROW_BYTES)
                return mdl_err_set(reterr, -EPROTO, "line %zu is longer than %zu bytes", s->line + 1,
                                   MDL_EVALSTREAM_MAX_ROW_BYTES);
            break;
        }
        n = (size_t)(stop - p);
        if (n && p[n - 1] == '\r')
            n--;
        if (s->format == MDL_EVAL_NDJSON)
            r = ndjson_line(s, p, n, reterr);
        else if (n == 0)
            r = 0; /* blank line */
        else if (!s->have_header)
            r = csv_header(s, p, n, reterr);
        else
            r = csv_row(s, p, n, reterr);
        if (r < 0)
            return r;
        s->line++;
        p = nl ? nl + 1 : end;
    }
    s->pos += (size_t)(p - data);
    return p - data;
}

long mdl_evalstream_feed(mdl_evalstream_t *s, const char *data, size_t len, bool final, mdl_err_t *reterr)
{
    if (s->format == MDL_EVAL_JSON)
        return feed_json(s, data, len, final, reterr);
    return feed_lines(s, data, len, final, reterr);
}

int mdl_evalstream_finish(mdl_evalstream_t *s, mdl_eval_columns_t *ret, mdl_err_t *reterr)
{
    size_t rows;
    int r;

    if (s->batch_rows && (r = score_batch(s, reterr)) < 0)
        return r;
    rows = s->n_feature_rows + s->n_score_rows;
    if (s->format == MDL_EVAL_CSV && !s->have_header)
        return mdl_err_set(reterr, -EPROTO, "empty input: the CSV body has no header line");
    if (rows == 0 && s->labels.n == 0)
        return mdl_err_set(reterr, -EPROTO, "empty input: no rows");
    if (s->format == MDL_EVAL_JSON && !(s->seen & ((1u << F_INSTANCES) | (1u << F_SCORES))))
        return mdl_err_set(reterr, -EPROTO, "exactly one of \"instances\" or \"scores\" is required");
    if (s->labels.n != rows)
        return mdl_err_set(reterr, -EPROTO, "length mismatch: %zu labels for %zu %s", s->labels.n, rows,
                           s->n_feature_rows ? "instances" : "scores");
    if (rows == 0)
        return mdl_err_set(reterr, -EPROTO, "empty input: no rows");
    if (s->weights.n && s->weights.n != rows)
        return mdl_err_set(reterr, -EPROTO, "length mismatch: %zu weights for %zu rows", s->weights.n, rows);
    if (s->n_group_ids && s->n_group_ids != rows)
        return mdl_err_set(reterr, -EPROTO, "length mismatch: %zu groups for %zu rows", s->n_group_ids, rows);
    if (s->format == MDL_EVAL_JSON && (s->seen & (1u << F_WEIGHTS)) && !s->weights.n)
        return mdl_err_set(reterr, -EPROTO, "length mismatch: 0 weights for %zu rows", rows);
    if (s->format == MDL_EVAL_JSON && (s->seen & (1u << F_GROUPS)) && !s->n_group_ids)
        return mdl_err_set(reterr, -EPROTO, "length mismatch: 0 groups for %zu rows", rows);
    *ret = s->opts;
    ret->scores = s->scores.v;
    ret->width = s->width;
    ret->labels = s->labels.v;
    ret->n_rows = rows;
    ret->weights = s->weights.n ? s->weights.v : NULL;
    ret->groups = s->n_group_ids ? s->groups : NULL;
    ret->n_groups = s->gi.n;
    return 0;
}
