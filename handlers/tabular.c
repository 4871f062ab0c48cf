#include "tabular.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEY 1024       /* feature names and category strings, unescaped */
#define MAX_NUMBER_TEXT 400

/* A cursor over the body with the context needed to name errors. */
typedef struct cursor {
    const char *start, *p, *end;
    const mdl_model_t *m;
    mdl_err_t *err;
    size_t base;  /* byte offset of start in the whole body, for messages */
} cursor_t;

/* Names the instance an error is about ("instances[3]"), formatted only on error. */
typedef struct where {
    const char *key;
    size_t index; /* SIZE_MAX: the key alone */
} where_t;

#define WHERE(w) where_text(w, (char[80]){0}, 80)
static const char *where_text(const where_t *w, char *buf, size_t size)
{
    if (w->index == SIZE_MAX)
        return w->key;
    snprintf(buf, size, "%s[%zu]", w->key, w->index);
    return buf;
}

static int syntax_error(cursor_t *c, const char *what)
{
    size_t at = c->base + (size_t)(c->p - c->start);

    if (c->p >= c->end)
        return mdl_err_set(c->err, -EBADMSG, "malformed JSON: %s at byte %zu (end of body)", what, at);
    /* bounded by end: a streamed row is a slice of a buffer, not NUL-terminated (reading
     * to a NUL read past it and could echo other memory back to the client) */
    size_t near = (size_t)(c->end - c->p) < 16 ? (size_t)(c->end - c->p) : 16;
    return mdl_err_set(c->err, -EBADMSG, "malformed JSON: %s at byte %zu (near '%.*s')", what, at,
                       (int)near, c->p);
}

static void skip_ws(cursor_t *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
        c->p++;
}

/* Consumes ch after optional whitespace; 1 if it was there. Inline, and whitespace looked
 * for only when ch is not next: a row of numbers calls it once per value. */
static inline int eat(cursor_t *c, char ch)
{
    if (c->p == c->end || *c->p != ch)
        skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

static int put_utf8(char *out, size_t *n, size_t cap, uint32_t cp)
{
    unsigned char b[4];
    size_t k;

    if (cp < 0x80)
        b[0] = (unsigned char)cp, k = 1;
    else if (cp < 0x800)
        b[0] = (unsigned char)(0xC0 | cp >> 6), b[1] = (unsigned char)(0x80 | (cp & 0x3F)), k = 2;
    else if (cp < 0x10000)
        b[0] = (unsigned char)(0xE0 | cp >> 12), b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)),
        b[2] = (unsigned char)(0x80 | (cp & 0x3F)), k = 3;
    else
        b[0] = (unsigned char)(0xF0 | cp >> 18), b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F)),
        b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)), b[3] = (unsigned char)(0x80 | (cp & 0x3F)), k = 4;
    if (*n + k >= cap)
        return -1;
    memcpy(out + *n, b, k);
    *n += k;
    return 0;
}

static int hex4(const char *s, uint32_t *ret)
{
    uint32_t v = 0;

    for (int i = 0; i < 4; i++) {
        char h = s[i];
        v <<= 4;
        if (h >= '0' && h <= '9')
            v |= (uint32_t)(h - '0');
        else if (h >= 'a' && h <= 'f')
            v |= (uint32_t)(h - 'a' + 10);
        else if (h >= 'A' && h <= 'F')
            v |= (uint32_t)(h - 'A' + 10);
        else
            return -1;
    }
    *ret = v;
    return 0;
}

/* A JSON string (cursor at the opening quote) unescaped into out (NUL-terminated). */
static int parse_string(cursor_t *c, char *out, size_t cap)
{
    size_t n = 0;

    c->p++; /* opening quote */
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '"') {
            c->p++;
            out[n] = '\0';
            return 0;
        }
        if (ch < 0x20)
            return syntax_error(c, "control character in string");
        if (ch != '\\') {
            if (n + 1 >= cap)
                return mdl_err_set(c->err, -EPROTO, "string at byte %zu is longer than %zu bytes",
                                   c->base + (size_t)(c->p - c->start), cap - 1);
            out[n++] = (char)ch;
            c->p++;
            continue;
        }
        if (c->end - c->p < 2)
            break;
        switch (c->p[1]) {
        case '"': case '\\': case '/': out[n] = c->p[1]; break;
        case 'b': out[n] = '\b'; break;
        case 'f': out[n] = '\f'; break;
        case 'n': out[n] = '\n'; break;
        case 'r': out[n] = '\r'; break;
        case 't': out[n] = '\t'; break;
        case 'u': {
            uint32_t cp, lo;
            if (c->end - c->p < 6 || hex4(c->p + 2, &cp) < 0)
                return syntax_error(c, "bad \\u escape");
            c->p += 6;
            if (cp >= 0xD800 && cp < 0xDC00) {
                if (c->end - c->p < 6 || c->p[0] != '\\' || c->p[1] != 'u' || hex4(c->p + 2, &lo) < 0 ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return syntax_error(c, "unpaired surrogate in \\u escape");
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                c->p += 6;
            } else if (cp >= 0xDC00 && cp < 0xE000) {
                return syntax_error(c, "unpaired surrogate in \\u escape");
            }
            if (put_utf8(out, &n, cap, cp) < 0)
                return mdl_err_set(c->err, -EPROTO, "string longer than %zu bytes", cap - 1);
            continue;
        }
        default:
            return syntax_error(c, "bad escape in string");
        }
        if (n + 1 >= cap)
            return mdl_err_set(c->err, -EPROTO, "string longer than %zu bytes", cap - 1);
        n++;
        c->p += 2;
    }
    return syntax_error(c, "unterminated string");
}

static const double exact_pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Digits at p into *mant (wrapping past 19 digits, which the caller then ignores); returns
 * how many there were. */
static size_t scan_digits(const char **p, const char *end, uint64_t *mant)
{
    const char *start = *p, *q = start;
    uint64_t m = *mant;

    while (q < end && (unsigned)(*q - '0') < 10)
        m = m * 10 + (uint64_t)(*q++ - '0');
    *mant = m;
    *p = q;
    return (size_t)(q - start);
}

size_t mdl_json_parse_number(const char *s, const char *end, double *ret)
{
    const char *p = s;
    uint64_t mant = 0;
    size_t n_int, n_frac = 0;
    int exp10 = 0, neg = 0;

    if (p < end && *p == '-')
        neg = 1, p++;
    if (p >= end || (unsigned)(*p - '0') >= 10)
        return 0;
    if (*p == '0') {
        p++;
        n_int = 1;
    } else {
        n_int = scan_digits(&p, end, &mant);
    }
    if (p < end && *p == '.') {
        p++;
        n_frac = scan_digits(&p, end, &mant);
        if (n_frac == 0)
            return 0;
        exp10 = -(int)n_frac;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        int eneg = 0, e = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p >= end || (unsigned)(*p - '0') >= 10)
            return 0;
        for (; p < end && (unsigned)(*p - '0') < 10; p++)
            if (e < 100000)
                e = e * 10 + (*p - '0');
        exp10 += eneg ? -e : e;
    }
    /* Clinger's fast path: at most 19 digits (so mant did not wrap), an exact integer
     * mantissa below 2^53 and an exact power of ten make one correctly rounded IEEE
     * operation. Everything else goes to strtod. */
    if (n_int + n_frac <= 19 && mant < (1ULL << 53) && exp10 >= -22 && exp10 <= 22) {
        double v = (double)mant;
        v = exp10 < 0 ? v / exact_pow10[-exp10] : v * exact_pow10[exp10];
        *ret = neg ? -v : v;
    } else {
        char text[MAX_NUMBER_TEXT + 1];
        size_t n = (size_t)(p - s);
        if (n > MAX_NUMBER_TEXT)
            return 0;
        memcpy(text, s, n);
        text[n] = '\0';
        *ret = strtod(text, NULL);
    }
    return (size_t)(p - s);
}

/* The usual shape of a feature value, -?int(.frac)? with at most 19 digits and no exponent,
 * in one pass: the same result as mdl_json_parse_number's exact path for those, which
 * this skips the generality of (30 of these are most of a small predict's parse). 0 when
 * the text has any other shape: the caller then takes the general path. */
static inline size_t parse_plain_number(const char *s, const char *end, double *ret)
{
    const char *p = s, *digits;
    uint64_t mant = 0;
    size_t n_int, n_frac = 0;
    double v;
    int neg = 0;

    if (p < end && *p == '-')
        neg = 1, p++;
    digits = p;
    while (p < end && (unsigned)(*p - '0') < 10)
        mant = mant * 10 + (uint64_t)(*p++ - '0');
    n_int = (size_t)(p - digits);
    if (n_int == 0 || (n_int > 1 && *digits == '0')) /* leading zeros are not JSON */
        return 0;
    if (p < end && *p == '.') {
        const char *frac = ++p;
        while (p < end && (unsigned)(*p - '0') < 10)
            mant = mant * 10 + (uint64_t)(*p++ - '0');
        n_frac = (size_t)(p - frac);
    }
    if ((p < end && (*p == 'e' || *p == 'E' || *p == '.')) || (n_frac == 0 && p > digits + n_int) ||
        n_int + n_frac > 19 || mant >= (1ULL << 53) || n_frac > 22)
        return 0;
    v = (double)mant / exact_pow10[n_frac];
    *ret = neg ? -v : v;
    return (size_t)(p - s);
}

/* One value for column col of a row, written to *out. where/what name it in errors. */
static int parse_value(cursor_t *c, size_t col, const where_t *where, double *out)
{
    const mdl_feature_t *f = &c->m->features[col];
    size_t n;

    skip_ws(c);
    if (c->p >= c->end)
        return syntax_error(c, "expected a value");
    if (!f->ignored && !f->n_categories && (n = parse_plain_number(c->p, c->end, out)) > 0) {
        c->p += n;
        return 0;
    }
    if (f->ignored) { /* any scalar; numbers and null take the usual path below */
        size_t left = (size_t)(c->end - c->p);
        if (*c->p == '"') {
            char text[MAX_KEY];
            int r = parse_string(c, text, sizeof text);
            if (r < 0)
                return r;
            *out = NAN;
            return 0;
        }
        if ((left >= 4 && memcmp(c->p, "true", 4) == 0) || (left >= 5 && memcmp(c->p, "false", 5) == 0)) {
            c->p += *c->p == 't' ? 4 : 5;
            *out = NAN;
            return 0;
        }
    }
    if (*c->p == '-' || (*c->p >= '0' && *c->p <= '9')) {
        double v;
        n = mdl_json_parse_number(c->p, c->end, &v);
        if (n == 0)
            return syntax_error(c, "bad number");
        c->p += n;
        if (!isfinite(v))
            return mdl_err_set(c->err, -EPROTO, "%s.%s: number out of range", WHERE(where), f->name);
        if (f->n_categories) {
            /* Numeric categories are stored as their text: 3 -> "3", 2.5 -> "2.5". */
            char text[40];
            if (v == floor(v) && fabs(v) < 1e15)
                snprintf(text, sizeof text, "%.0f", v);
            else
                snprintf(text, sizeof text, "%.17g", v);
            *out = (double)mdl_model_category_index(c->m, col, text);
        } else {
            *out = v;
        }
        return 0;
    }
    if (*c->p == '"') {
        char text[MAX_KEY];
        int r = parse_string(c, text, sizeof text);
        if (r < 0)
            return r;
        if (!f->n_categories)
            return mdl_err_set(c->err, -EPROTO, "%s.%s: expected a number or null, got a string", WHERE(where),
                               f->name);
        *out = (double)mdl_model_category_index(c->m, col, text);
        return 0;
    }
    if (c->end - c->p >= 4 && memcmp(c->p, "null", 4) == 0) {
        c->p += 4;
        *out = NAN;
        return 0;
    }
    if ((c->end - c->p >= 4 && memcmp(c->p, "true", 4) == 0) ||
        (c->end - c->p >= 5 && memcmp(c->p, "false", 5) == 0))
        return mdl_err_set(c->err, -EPROTO, "%s.%s: expected a %s, got a boolean", WHERE(where), f->name,
                           f->n_categories ? "category (string)" : "number or null");
    if (*c->p == '[' || *c->p == '{')
        return mdl_err_set(c->err, -EPROTO, "%s.%s: expected a %s, got %s", WHERE(where), f->name,
                           f->n_categories ? "category (string)" : "number or null",
                           *c->p == '[' ? "an array" : "an object");
    return syntax_error(c, "expected a value");
}

/* Appends one row slot to the matrix, growing it; NULL on OOM or over max_rows. */
static double *new_row(cursor_t *c, mdl_tabular_body_t *b, size_t *cap, size_t max_rows,
                       const char *key)
{
    size_t nf = c->m->n_features ? c->m->n_features : 1;

    if (b->n_rows >= max_rows) {
        mdl_err_set(c->err, -EPROTO, "%s: more than %zu instances (the limit)", key, max_rows);
        return NULL;
    }
    if (b->n_rows == *cap) {
        size_t ncap = *cap ? *cap * 2 : 1; /* one-row requests stay in malloc's small, fast bins */
        double *nr;
        if (ncap > max_rows)
            ncap = max_rows;
        if (ncap > SIZE_MAX / sizeof(double) / nf ||
            !(nr = realloc(b->rows, ncap * nf * sizeof(double)))) {
            mdl_err_set(c->err, -ENOMEM, "out of memory for %zu instances", ncap);
            return NULL;
        }
        b->rows = nr, *cap = ncap;
    }
    return b->rows + b->n_rows++ * nf;
}

/* `"name":` naming one of the model's features; name gets the unescaped key (MAX_KEY). */
static int parse_feature_key(cursor_t *c, const where_t *where, char *name, long *ret_col)
{
    int r;

    skip_ws(c);
    if (c->p >= c->end || *c->p != '"')
        return syntax_error(c, "expected a string key");
    if ((r = parse_string(c, name, MAX_KEY)) < 0)
        return r;
    if (!eat(c, ':'))
        return syntax_error(c, "expected ':'");
    *ret_col = mdl_model_feature_index(c->m, name);
    if (*ret_col < 0)
        return mdl_err_set(c->err, -EPROTO, "%s: unknown feature '%.64s'", WHERE(where), name);
    return 0;
}

/* Skips one JSON value of any kind (cursor at its first byte) and returns its length. */
static int skip_value(cursor_t *c)
{
    long n = mdl_json_scan_value(c->p, c->end);

    if (n <= 0)
        return syntax_error(c, "malformed value");
    c->p += n;
    return 0;
}

static int parse_row(cursor_t *c, const where_t *where, const mdl_row_opts_t *o, double *row)
{
    const mdl_model_t *m = c->m;
    int r;

    skip_ws(c);
    if (c->p < c->end && *c->p == '[') {
        size_t i = 0;
        c->p++;
        if (!eat(c, ']')) {
            do {
                const mdl_feature_t *f = &m->features[i];
                size_t n;
                if (i == m->n_features)
                    return mdl_err_set(c->err, -EPROTO, "%s: expected %zu feature values, got more",
                                       WHERE(where), m->n_features);
                skip_ws(c);
                /* plain numbers here, without a call per value; anything else in parse_value */
                if (!f->ignored && !f->n_categories && (n = parse_plain_number(c->p, c->end, &row[i])) > 0)
                    c->p += n;
                else if ((r = parse_value(c, i, where, &row[i])) < 0)
                    return r;
                i++;
            } while (eat(c, ','));
            if (!eat(c, ']'))
                return syntax_error(c, "expected ',' or ']' in array");
        }
        if (i != m->n_features)
            return mdl_err_set(c->err, -EPROTO, "%s: expected %zu feature values, got %zu", WHERE(where),
                               m->n_features, i);
        return 0;
    }
    if (c->p < c->end && *c->p == '{') {
        for (size_t i = 0; i < m->n_features; i++)
            row[i] = o && o->defaults ? o->defaults[i] : NAN;
        c->p++;
        if (eat(c, '}'))
            return 0;
        do {
            char name[MAX_KEY];
            long col;
            if (o && o->id_key) {
                /* The id is not a feature: note where its value is and skip it. */
                skip_ws(c);
                if (c->p >= c->end || *c->p != '"')
                    return syntax_error(c, "expected a string key");
                if ((r = parse_string(c, name, MAX_KEY)) < 0)
                    return r;
                if (!eat(c, ':'))
                    return syntax_error(c, "expected ':'");
                if (strcmp(name, o->id_key) == 0) {
                    skip_ws(c);
                    *o->ret_id = c->p;
                    if ((r = skip_value(c)) < 0)
                        return r;
                    *o->ret_id_len = (size_t)(c->p - *o->ret_id);
                    continue;
                }
                if ((col = mdl_model_feature_index(c->m, name)) < 0)
                    return mdl_err_set(c->err, -EPROTO, "%s: unknown feature '%.64s'", WHERE(where), name);
            } else if ((r = parse_feature_key(c, where, name, &col)) < 0) {
                return r;
            }
            if ((r = parse_value(c, (size_t)col, where, &row[col])) < 0)
                return r;
        } while (eat(c, ','));
        if (!eat(c, '}'))
            return syntax_error(c, "expected ',' or '}' in object");
        return 0;
    }
    if (c->p < c->end && strchr("-0123456789\"ntf", *c->p))
        return mdl_err_set(c->err, -EPROTO,
                           "%s: expected an array of feature values or an object keyed by feature name",
                           WHERE(where));
    return syntax_error(c, "expected a value");
}

int mdl_tabular_parse_row(const mdl_model_t *m, const char *text, size_t len, const mdl_row_opts_t *o,
                          double *row, mdl_err_t *reterr)
{
    cursor_t c = {text, text, text + len, m, reterr, o->base};
    where_t where = {o->key, o->index};
    int r;

    if (o->ret_id)
        *o->ret_id = NULL, *o->ret_id_len = 0;
    if ((r = parse_row(&c, &where, o, row)) < 0)
        return r;
    if (o->ret_used) {
        *o->ret_used = (size_t)(c.p - text);
        return 0;
    }
    skip_ws(&c);
    if (c.p < c.end)
        return syntax_error(&c, "unexpected data after the row");
    return 0;
}

long mdl_json_scan_value(const char *s, const char *end)
{
    const char *p = s;
    unsigned depth = 0;

    if (p >= end)
        return 0;
    if (*p != '[' && *p != '{' && *p != '"') {
        /* A scalar ends at a delimiter; running into the end means there may be more. */
        while (p < end && !strchr(",]} \t\r\n", *p))
            p++;
        if (p == s)
            return -1;
        return p < end ? (long)(p - s) : 0;
    }
    for (; p < end; p++) {
        char ch = *p;
        if (ch == '"') {
            for (p++; p < end && *p != '"'; p++)
                if (*p == '\\')
                    p++;
            if (p >= end)
                return 0;
            if (depth == 0)
                return (long)(p + 1 - s);
        } else if (ch == '[' || ch == '{') {
            depth++;
        } else if (ch == ']' || ch == '}') {
            if (depth == 0)
                return -1;
            if (--depth == 0)
                return (long)(p + 1 - s);
        }
    }
    return 0;
}

int mdl_json_parse_string(const char *s, const char *end, char *out, size_t cap, size_t *ret_len,
                          mdl_err_t *reterr)
{
    cursor_t c = {s, s, end, NULL, reterr, 0};
    int r;

    if (s >= end || *s != '"')
        return mdl_err_set(reterr, -EPROTO, "expected a string");
    if ((r = parse_string(&c, out, cap)) < 0)
        return r;
    *ret_len = (size_t)(c.p - s);
    return 0;
}

static int parse_row_list(cursor_t *c, const char *key, size_t max_rows, mdl_tabular_body_t *b)
{
    size_t cap = 0;
    int r;

    c->p++; /* '[' */
    if (eat(c, ']'))
        return mdl_err_set(c->err, -EPROTO, "%s: must hold at least one instance", key);
    do {
        double *row = new_row(c, b, &cap, max_rows, key);
        where_t where = {key, b->n_rows - 1};
        if (!row)
            return c->err->code;
        if ((r = parse_row(c, &where, NULL, row)) < 0)
            return r;
    } while (eat(c, ','));
    if (!eat(c, ']'))
        return syntax_error(c, "expected ',' or ']' in array");
    return 0;
}

/* {"feature": [v_row0, ...], ...}: the first column fixes the row count. */
static int parse_columns(cursor_t *c, const char *key, size_t max_rows, mdl_tabular_body_t *b)
{
    size_t nf = c->m->n_features, cap = 0;
    int first = 1, r;

    c->p++; /* '{' */
    if (eat(c, '}'))
        return mdl_err_set(c->err, -EPROTO, "%s: expected at least one feature column", key);
    do {
        char name[MAX_KEY];
        where_t where = {key, SIZE_MAX};
        size_t i = 0;
        long col;
        if ((r = parse_feature_key(c, &where, name, &col)) < 0)
            return r;
        if (!eat(c, '['))
            return mdl_err_set(c->err, -EPROTO, "%s.%.64s: expected an array (one value per instance)",
                               key, name);
        if (!eat(c, ']')) {
            do {
                double *cell;
                where.index = i;
                if (first) {
                    double *row = new_row(c, b, &cap, max_rows, key);
                    if (!row)
                        return c->err->code;
                    for (size_t j = 0; j < nf; j++)
                        row[j] = NAN;
                } else if (i >= b->n_rows) {
                    return mdl_err_set(c->err, -EPROTO, "%s.%.64s: more values than the first column's %zu",
                                       key, name, b->n_rows);
                }
                cell = &b->rows[i * nf + (size_t)col];
                if ((r = parse_value(c, (size_t)col, &where, cell)) < 0)
                    return r;
                i++;
            } while (eat(c, ','));
            if (!eat(c, ']'))
                return syntax_error(c, "expected ',' or ']' in array");
        }
        if (i != b->n_rows || i == 0)
            return mdl_err_set(c->err, -EPROTO, "%s.%.64s: %zu values, but %s", key, name, i,
                               i == 0 ? "at least one instance is required" : "the first column has a different count");
        first = 0;
    } while (eat(c, ','));
    if (!eat(c, '}'))
        return syntax_error(c, "expected ',' or '}' in object");
    return 0;
}

static int parse_output(cursor_t *c, mdl_tabular_body_t *b)
{
    static const struct {
        const char *name;
        mdl_output_t kind;
    } outputs[] = {{"value", MDL_OUTPUT_VALUE}, {"probability", MDL_OUTPUT_VALUE},
                   {"margin", MDL_OUTPUT_MARGIN}, {"leaf", MDL_OUTPUT_LEAF}};
    char name[32];
    int r;

    skip_ws(c);
    if (c->p >= c->end || *c->p != '"')
        return mdl_err_set(c->err, -EPROTO, "output: expected \"value\", \"margin\" or \"leaf\"");
    if ((r = parse_string(c, name, sizeof name)) < 0)
        return r == -EPROTO ? mdl_err_set(c->err, -EPROTO, "output: expected \"value\", \"margin\" or \"leaf\"") : r;
    for (size_t i = 0; i < sizeof outputs / sizeof outputs[0]; i++)
        if (strcmp(name, outputs[i].name) == 0) {
            b->output = outputs[i].kind;
            b->output_name = outputs[i].name;
            return 0;
        }
    return mdl_err_set(c->err, -EPROTO, "output: expected \"value\", \"margin\" or \"leaf\", got \"%.32s\"", name);
}

/* TF Serving clients name the signature; a modeld model has the one TF's default names. */
static int parse_signature(cursor_t *c)
{
    char name[64];
    int r;

    skip_ws(c);
    if (c->p >= c->end || *c->p != '"')
        return mdl_err_set(c->err, -EPROTO, "signature_name: expected a string");
    if ((r = parse_string(c, name, sizeof name)) < 0)
        return r == -EPROTO ? mdl_err_set(c->err, -EPROTO, "signature_name: unknown signature") : r;
    if (strcmp(name, "serving_default") != 0)
        return mdl_err_set(c->err, -EPROTO, "signature_name: unknown signature '%.63s' (models have only \"serving_default\")",
                           name);
    return 0;
}

int mdl_tabular_body_parse(const mdl_model_t *m, const char *body, size_t len, size_t max_rows,
                           mdl_tabular_body_t *ret, mdl_err_t *reterr)
{
    cursor_t c = {body, body, body + len, m, reterr, 0};
    mdl_tabular_body_t b = {.output = MDL_OUTPUT_VALUE, .output_name = "value"};
    int seen_rows = 0, r = 0;

    if (!eat(&c, '{')) {
        skip_ws(&c);
        if (c.p < c.end && strchr("[\"-0123456789tfn", *c.p))
            r = mdl_err_set(reterr, -EPROTO, "request body must be a JSON object with \"instances\" or \"inputs\"");
        else
            r = syntax_error(&c, len ? "expected '{'" : "empty body");
        goto fail;
    }
    if (!eat(&c, '}')) {
        do {
            char key[32];
            skip_ws(&c);
            if (c.p >= c.end || *c.p != '"') {
                r = syntax_error(&c, "expected a string key");
                goto fail;
            }
            if ((r = parse_string(&c, key, sizeof key)) < 0) {
                if (r == -EPROTO)
                    r = mdl_err_set(reterr, -EPROTO, "unknown field (expected instances, inputs, output, signature_name)");
                goto fail;
            }
            if (!eat(&c, ':')) {
                r = syntax_error(&c, "expected ':'");
                goto fail;
            }
            skip_ws(&c);
            if (strcmp(key, "instances") == 0 || strcmp(key, "inputs") == 0) {
                if (seen_rows++) {
                    r = mdl_err_set(reterr, -EPROTO, "exactly one of \"instances\" or \"inputs\" is allowed");
                    goto fail;
                }
                b.columnar = key[1] == 'n' && key[2] == 'p';
                if (c.p < c.end && *c.p == '[')
                    r = parse_row_list(&c, key, max_rows, &b);
                else if (c.p < c.end && *c.p == '{' && b.columnar)
                    r = parse_columns(&c, key, max_rows, &b);
                else
                    r = mdl_err_set(reterr, -EPROTO, "%s: expected an array of instances%s", key,
                                    b.columnar ? " or an object of feature columns" : "");
            } else if (strcmp(key, "output") == 0) {
                r = parse_output(&c, &b);
            } else if (strcmp(key, "signature_name") == 0) {
                r = parse_signature(&c);
            } else {
                r = mdl_err_set(reterr, -EPROTO, "unknown field '%.31s' (expected instances, inputs, output, signature_name)", key);
            }
            if (r < 0)
                goto fail;
        } while (eat(&c, ','));
        if (!eat(&c, '}')) {
            r = syntax_error(&c, "expected ',' or '}' in object");
            goto fail;
        }
    }
    skip_ws(&c);
    if (c.p < c.end) {
        r = syntax_error(&c, "unexpected data after the JSON value");
        goto fail;
    }
    if (!seen_rows) {
        r = mdl_err_set(reterr, -EPROTO, "exactly one of \"instances\" or \"inputs\" is required");
        goto fail;
    }
    *ret = b;
    return 0;
fail:
    free(b.rows);
    return r;
}

void mdl_tabular_body_done(mdl_tabular_body_t *b)
{
    free(b->rows);
    b->rows = NULL;
    b->n_rows = 0;
}

/* Writes digits d[0..n) with decimal exponent e (value = d0.d1d2... x 10^e) the way %.Pg
 * does: positional for -4 <= e < precision, else d0.d1...e+XX. Returns the length. */
static size_t format_decimal(char *out, int neg, const char *d, size_t n, int e, int precision)
{
    char *p = out;

    if (neg)
        *p++ = '-';
    if (e >= precision || e < -4) {
        *p++ = d[0];
        if (n > 1) {
            *p++ = '.';
            memcpy(p, d + 1, n - 1);
            p += n - 1;
        }
        p += sprintf(p, "e%+d", e);
    } else if (e < 0) {
        *p++ = '0';
        *p++ = '.';
        for (int i = -1; i > e; i--)
            *p++ = '0';
        memcpy(p, d, n);
        p += n;
    } else {
        for (int i = 0; i <= e; i++)
            *p++ = (size_t)i < n ? d[i] : '0';
        if (n > (size_t)e + 1) {
            *p++ = '.';
            memcpy(p, d + e + 1, n - (size_t)e - 1);
            p += n - (size_t)e - 1;
        }
    }
    *p = '\0';
    return (size_t)(p - out);
}

/* d[0..n) rounded up in place (a carry out of the first digit bumps *e). */
static void round_up(char *d, size_t n, int *e)
{
    size_t i = n;

    while (i > 0 && d[i - 1] == '9')
        d[--i] = '0';
    if (i == 0) {
        d[0] = '1';
        (*e)++;
    } else {
        d[i - 1]++;
    }
}

/* The shortest decimal that reads back as a (a finite positive double), choosing among
 * 15, 16 and 17 significant digits as the printf path below does, computed exactly with
 * 128-bit integers: a double is m x 2^e, so v x 10^p is m x 10^p / 2^-e, and every
 * candidate and rounding boundary is an integer in units of 2^(e-2) x 10^-p. Covers
 * 1e-5 <= a < 2^53 (probabilities and everyday values); returns 0 for anything else, or
 * the length of the text. Saves the printf and strtod round trips, most of a predict
 * reply's cost. */
static size_t shortest_exact(double a, int neg, char *text)
{
    static const uint64_t pow10_u64[] = {1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL,
                                         10000000ULL, 100000000ULL, 1000000000ULL, 10000000000ULL,
                                         100000000000ULL, 1000000000000ULL, 10000000000000ULL,
                                         100000000000000ULL, 1000000000000000ULL,
                                         10000000000000000ULL, 100000000000000000ULL,
                                         1000000000000000000ULL};
    typedef unsigned __int128 u128;
    uint64_t bits, m;
    int be, s, k, p;
    u128 x, q, lo, hi, scale;
    uint64_t q64 = 0;

    memcpy(&bits, &a, sizeof bits);
    be = (int)(bits >> 52) & 0x7ff;
    s = 1075 - be;                 /* a = m x 2^-s */
    if (s < 0 || s > 69)           /* >= 2^53 or < 2^-17 (or subnormal) */
        return 0;
    m = (bits & ((1ULL << 52) - 1)) | (1ULL << 52);
    /* k = floor(log10(a)), from the binary exponent and corrected once: a x 10^p has 17
     * digits before the point. */
    k = (int)floor((be - 1023) * 0.30102999566398120);
    for (;;) {
        p = 16 - k;
        if (p < 0 || p > 21)       /* 4m x 10^p must fit in 128 bits */
            return 0;
        scale = p <= 18 ? (u128)pow10_u64[p] : (u128)pow10_u64[18] * pow10_u64[p - 18];
        x = (u128)m * scale;
        q = x >> s;
        q64 = (uint64_t)q;
        if (q >= pow10_u64[17])
            k++;
        else if (q < pow10_u64[16])
            k--;
        else
            break;
    }
    /* The reading-back interval, in units of 2^-(s+2) x 10^-p: v +- half an ulp (the gap
     * below is half as wide at a power of two); its ends read back as v when m is even. */
    lo = ((u128)m * 4 - (m == (1ULL << 52) ? 1 : 2)) * scale;
    hi = ((u128)m * 4 + 2) * scale;
    x *= 4;
    for (int n = 15; n <= 17; n++) {
        uint64_t t = pow10_u64[17 - n], c[2], digits_of;
        u128 cv[2];
        int order;
        c[0] = q64 / t;
        c[1] = c[0] + 1;
        cv[0] = ((u128)c[0] * t) << (s + 2);
        cv[1] = ((u128)c[1] * t) << (s + 2);
        /* nearer first, ties to even: the correctly rounded n digits */
        order = x - cv[0] > cv[1] - x || (x - cv[0] == cv[1] - x && (c[0] & 1));
        if (n == 17) { /* 17 correctly rounded digits always read back */
            digits_of = c[order];
        } else {
            digits_of = 0;
            for (int i = 0; i < 2 && !digits_of; i++) {
                int j = order ^ i;
                if ((cv[j] > lo && cv[j] < hi) || ((m & 1) == 0 && (cv[j] == lo || cv[j] == hi)))
                    digits_of = c[j];
            }
            if (!digits_of)
                continue;
        }
        {
            char d[20];
            int de = k;
            size_t nd = (size_t)n;
            if (digits_of == pow10_u64[n]) { /* rounded up to the next power of ten */
                digits_of = pow10_u64[n - 1];
                de++;
            }
            for (int i = n - 1; i >= 0; i--, digits_of /= 10)
                d[i] = (char)('0' + digits_of % 10);
            while (nd > 1 && d[nd - 1] == '0')
                nd--;
            return format_decimal(text, neg, d, nd, de, n);
        }
    }
    return 0; /* not reached: 17 digits always answer */
}

void mdl_json_put_double(mdl_buf_t *out, double v)
{
    char sci[40], digits[20], text[48];
    int e, neg = v < 0 || (v == 0 && signbit(v));
    size_t len = 0;

    if (v == 0) {
        mdl_buf_puts(out, neg ? "-0" : "0");
        return;
    }
    if (isfinite(v) && (len = shortest_exact(fabs(v), neg, text)) > 0) {
        mdl_buf_append(out, text, len);
        return;
    }
    /* One printf for 17 significant digits (always enough to round-trip), then the
     * shortest 15- or 16-digit neighbour of it that still reads back as v. Both neighbours
     * are tried, nearer first: the 17 digits are themselves rounded, so "nearer" can be
     * wrong by half a unit. */
    snprintf(sci, sizeof sci, "%.16e", v);
    digits[0] = sci[neg];
    memcpy(digits + 1, sci + neg + 2, 16);
    e = atoi(sci + neg + 19);
    for (size_t n = 15; n <= 17; n++) {
        for (int attempt = 0; attempt < (n < 17 ? 2 : 1); attempt++) {
            char d[20];
            int de = e, up = (digits[n < 17 ? n : 16] >= '5') != (attempt == 1);
            double back;
            size_t nd = n;
            memcpy(d, digits, n);
            if (n < 17 && up)
                round_up(d, n, &de);
            while (nd > 1 && d[nd - 1] == '0')
                nd--;
            len = format_decimal(text, neg, d, nd, de, (int)n);
            if (n == 17 || (mdl_json_parse_number(text, text + len, &back) == len && back == v)) {
                mdl_buf_append(out, text, len);
                return;
            }
        }
    }
}
