/* The JSON reader: a recursive-descent parser (depth bounded) that appends nodes to one
 * growing array and decodes strings into one arena sized from the input, so parsing costs
 * a fixed number of allocations whatever the document holds. See json.h for the layout. */
#include "json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mdl_json_doc {
    mdl_json_t *nodes; /* n_nodes, in document order; nodes[0] is the root */
    size_t n_nodes;
    char *strings;     /* decoded strings, NUL-terminated, pointed to by STRING nodes */
};

#define NO_KEY UINT32_MAX

/* One open container, so an error can say where in the document it happened. */
typedef struct frame {
    uint32_t node;  /* index of the container node */
    uint32_t index; /* array: index of the element being parsed */
    uint32_t key;   /* object: index of the key node of the member being parsed, or NO_KEY */
} frame_t;

typedef struct parser {
    const unsigned char *start, *p, *end;
    mdl_json_t *nodes;
    size_t n_nodes, cap;
    char *strings;   /* arena of len + 1 bytes: decoded strings never outgrow their source */
    size_t str_used;
    frame_t *frames; /* max_depth entries; frames[0..depth) are open */
    unsigned depth, max_depth;
    mdl_err_t *err;
} parser_t;

static const char *const type_names[] = {
    [MDL_JSON_NULL] = "null",      [MDL_JSON_BOOL] = "a boolean", [MDL_JSON_NUMBER] = "a number",
    [MDL_JSON_STRING] = "a string", [MDL_JSON_ARRAY] = "an array", [MDL_JSON_OBJECT] = "an object",
};

const char *mdl_json_type_name(mdl_json_type_t t)
{
    return (unsigned)t < sizeof type_names / sizeof *type_names ? type_names[t] : "?";
}

/* ---- errors ------------------------------------------------------------------------- */

/* Writes the path of the value being parsed ("coef[2][0]") into buf. */
static void format_path(const parser_t *ps, char *buf, size_t size)
{
    size_t used = 0;

    buf[0] = '\0';
    for (unsigned d = 0; d < ps->depth && used + 1 < size; d++) {
        const frame_t *f = &ps->frames[d];
        int n;
        if (ps->nodes[f->node].type == MDL_JSON_ARRAY) {
            n = snprintf(buf + used, size - used, "[%u]", f->index);
        } else if (f->key != NO_KEY) {
            n = snprintf(buf + used, size - used, "%s%s", used ? "." : "",
                         ps->nodes[f->key].u.str);
        } else {
            break;
        }
        if (n < 0)
            break;
        used += (size_t)n;
    }
    if (used >= size && size > 4)
        memcpy(buf + size - 4, "...", 4);
}

/* What is at `at`, for "got ..." in messages. */
static void describe(const parser_t *ps, const unsigned char *at, char *buf, size_t size)
{
    if (at >= ps->end)
        snprintf(buf, size, "end of input");
    else if (*at >= 0x20 && *at < 0x7f)
        snprintf(buf, size, "'%c'", *at);
    else
        snprintf(buf, size, "byte 0x%02x", *at);
}

__attribute__((format(printf, 3, 4))) static int fail(parser_t *ps, const unsigned char *at,
                                                      const char *fmt, ...)
{
    char what[160], path[96];
    size_t line = 1, col = 1;
    va_list ap;

    if (at > ps->end)
        at = ps->end;
    for (const unsigned char *q = ps->start; q < at; q++) {
        if (*q == '\n')
            line++, col = 1;
        else
            col++;
    }
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    format_path(ps, path, sizeof path);
    return mdl_err_set(ps->err, -EBADMSG, "JSON error at byte %zu (line %zu, col %zu)%s%s: %s",
                       (size_t)(at - ps->start), line, col, path[0] ? " in " : "", path, what);
}

static int fail_got(parser_t *ps, const unsigned char *at, const char *expected)
{
    char got[32];

    describe(ps, at, got, sizeof got);
    return fail(ps, at, "expected %s, got %s", expected, got);
}

/* ---- lexing --------------------------------------------------------------------------- */

static void skip_ws(parser_t *ps)
{
    const unsigned char *p = ps->p, *end = ps->end;

    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    ps->p = p;
}

static int new_node(parser_t *ps, mdl_json_type_t type, const unsigned char *at,
                    uint32_t *ret_idx)
{
    mdl_json_t *n;

    if (ps->n_nodes == ps->cap) {
        size_t ncap = ps->cap * 2;
        mdl_json_t *nn = realloc(ps->nodes, ncap * sizeof *nn);
        if (!nn)
            return mdl_err_set(ps->err, -ENOMEM, "JSON: out of memory (%zu nodes)", ncap);
        ps->nodes = nn, ps->cap = ncap;
    }
    n = &ps->nodes[ps->n_nodes];
    memset(n, 0, sizeof *n);
    n->type = (uint8_t)type;
    n->offset = (uint32_t)(at - ps->start);
    n->span = 1;
    *ret_idx = (uint32_t)ps->n_nodes++;
    return 0;
}

static int hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The 4 hex digits at q as a number, or -1. */
static long hex4(const parser_t *ps, const unsigned char *q)
{
    long v = 0;

    if (ps->end - q < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(q[i]);
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Length of the valid UTF-8 sequence (2..4 bytes) starting at q, or 0 (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_seq_len(const unsigned char *q, const unsigned char *end)
{
    unsigned char c = q[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf;

    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if ((size_t)(end - q) < n)
        return 0;
    if (q[1] < lo || q[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (q[i] < 0x80 || q[i] > 0xbf)
            return 0;
    return n;
}

static char *put_utf8(char *d, unsigned long cp)
{
    if (cp < 0x80) {
        *d++ = (char)cp;
    } else if (cp < 0x800) {
        *d++ = (char)(0xc0 | (cp >> 6));
        *d++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *d++ = (char)(0xe0 | (cp >> 12));
        *d++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *d++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *d++ = (char)(0xf0 | (cp >> 18));
        *d++ = (char)(0x80 | ((cp >> 12) & 0x3f));
        *d++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *d++ = (char)(0x80 | (cp & 0x3f));
    }
    return d;
}

/* ps->p is at the opening quote. Decodes into the arena; an escape never decodes to more
 * bytes than it occupies, so the arena (input length + 1) cannot overflow. */
static int parse_string(parser_t *ps)
{
    const unsigned char *open = ps->p, *q = ps->p + 1, *end = ps->end;
    char *dst = ps->strings + ps->str_used, *d = dst;
    uint32_t idx;
    int r;

    r = new_node(ps, MDL_JSON_STRING, open, &idx);
    if (r < 0)
        return r;
    for (;;) {
        while (q < end && *q >= 0x20 && *q < 0x80 && *q != '"' && *q != '\\')
            *d++ = (char)*q++;
        if (q >= end)
            return fail(ps, q, "unterminated string (opened at byte %zu)", (size_t)(open - ps->start));
        if (*q == '"')
            break;
        if (*q < 0x20)
            return fail(ps, q, "control character 0x%02x in a string (it must be escaped)", *q);
        if (*q >= 0x80) {
            size_t n = utf8_seq_len(q, end);
            if (n == 0)
                return fail(ps, q, "invalid UTF-8 byte 0x%02x in a string", *q);
            memcpy(d, q, n);
            d += n, q += n;
            continue;
        }
        /* a backslash */
        if (end - q < 2)
            return fail(ps, q + 1, "unterminated escape in a string");
        switch (q[1]) {
        case '"': *d++ = '"'; break;
        case '\\': *d++ = '\\'; break;
        case '/': *d++ = '/'; break;
        case 'b': *d++ = '\b'; break;
        case 'f': *d++ = '\f'; break;
        case 'n': *d++ = '\n'; break;
        case 'r': *d++ = '\r'; break;
        case 't': *d++ = '\t'; break;
        case 'u': {
            long cp = hex4(ps, q + 2), lo;
            if (cp < 0)
                return fail(ps, q, "expected 4 hex digits after \\u");
            if (cp >= 0xdc00 && cp <= 0xdfff)
                return fail(ps, q, "unpaired low surrogate \\u%04lx", cp);
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (end - q < 12 || q[6] != '\\' || q[7] != 'u' || (lo = hex4(ps, q + 8)) < 0 ||
                    lo < 0xdc00 || lo > 0xdfff)
                    return fail(ps, q,
                                "unpaired high surrogate \\u%04lx (expected a \\udc00-\\udfff escape "
                                "after it)", cp);
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                q += 6;
            }
            d = put_utf8(d, (unsigned long)cp);
            q += 6;
            continue;
        }
        default: {
            char got[32];
            describe(ps, q + 1, got, sizeof got);
            return fail(ps, q, "invalid escape: expected one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u "
                               "after a backslash, got %s", got);
        }
        }
        q += 2;
    }
    *d++ = '\0';
    ps->nodes[idx].len = (uint32_t)(d - dst - 1);
    ps->nodes[idx].u.str = dst;
    ps->str_used += (size_t)(d - dst);
    ps->p = q + 1;
    return 0;
}

static int is_digit(const parser_t *ps, const unsigned char *q)
{
    return q < ps->end && *q >= '0' && *q <= '9';
}

/* Powers of ten that are exact doubles (10^22 < 2^53 * 2^22). */
static const double exact_pow10[] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static int parse_number(parser_t *ps)
{
    const unsigned char *s = ps->p, *q = ps->p;
    char small[64], *buf = small;
    uint64_t mant = 0;  /* all digits of integer and fraction parts, while they fit */
    int n_digits = 0;   /* digits accumulated into mant, leading zeros included */
    long exp10 = 0;     /* the value is mant * 10^exp10 */
    long e = 0;
    bool neg = false, eneg = false, slow = false;
    size_t n;
    double v;
    uint32_t idx;
    int r;

    if (*q == '-')
        q++, neg = true;
    if (!is_digit(ps, q))
        return fail_got(ps, q, "a digit");
    if (*q == '0') {
        q++;
        if (is_digit(ps, q))
            return fail(ps, q - 1, "leading zeros are not allowed in numbers");
    } else {
        while (is_digit(ps, q)) {
            if (n_digits < 19)
                mant = mant * 10 + (uint64_t)(*q - '0'), n_digits++;
            else
                slow = true;
            q++;
        }
    }
    if (q < ps->end && *q == '.') {
        q++;
        if (!is_digit(ps, q))
            return fail_got(ps, q, "a digit after the decimal point");
        while (is_digit(ps, q)) {
            if (n_digits < 19)
                mant = mant * 10 + (uint64_t)(*q - '0'), n_digits++, exp10--;
            else
                slow = true;
            q++;
        }
    }
    if (q < ps->end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < ps->end && (*q == '+' || *q == '-'))
            eneg = *q++ == '-';
        if (!is_digit(ps, q))
            return fail_got(ps, q, "a digit in the exponent");
        while (is_digit(ps, q)) {
            if (e < 100000)
                e = e * 10 + (*q - '0');
            q++;
        }
        exp10 += eneg ? -e : e;
    }
    /* Fast path (exact): when the digits fit in 53 bits and 10^|exp10| is an exact double,
     * mant and the power are both exact, so one IEEE multiply or divide rounds correctly
     * and gives the very double strtod would. Anything else goes to strtod. */
    if (!slow && mant <= (UINT64_C(1) << 53) && exp10 >= -22 && exp10 <= 22) {
        v = (double)mant;
        v = exp10 < 0 ? v / exact_pow10[-exp10] : v * exact_pow10[exp10];
        if (neg)
            v = -v;
        goto done;
    }
    /* strtod needs a terminated string and the input need not be; copy the token. */
    n = (size_t)(q - s);
    if (n >= sizeof small) {
        buf = malloc(n + 1);
        if (!buf)
            return mdl_err_set(ps->err, -ENOMEM, "JSON: out of memory");
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    v = strtod(buf, NULL);
    if (buf != small)
        free(buf);
done:
    n = (size_t)(q - s);
    if (isinf(v))
        return fail(ps, s, "number %.*s is out of range for a double", n > 40 ? 40 : (int)n, s);
    r = new_node(ps, MDL_JSON_NUMBER, s, &idx);
    if (r < 0)
        return r;
    ps->nodes[idx].u.num = v;
    ps->p = q;
    return 0;
}

static int parse_value(parser_t *ps);

static int open_container(parser_t *ps, mdl_json_type_t type, uint32_t *ret_idx)
{
    int r;

    if (ps->depth >= ps->max_depth)
        return fail(ps, ps->p, "nesting deeper than %u levels", ps->max_depth);
    r = new_node(ps, type, ps->p, ret_idx);
    if (r < 0)
        return r;
    ps->frames[ps->depth++] = (frame_t){.node = *ret_idx, .index = 0, .key = NO_KEY};
    ps->p++;
    return 0;
}

static void close_container(parser_t *ps, uint32_t idx, uint32_t count)
{
    ps->nodes[idx].len = count;
    ps->nodes[idx].span = (uint32_t)(ps->n_nodes - idx);
    ps->depth--;
    ps->p++;
}

static int parse_array(parser_t *ps)
{
    uint32_t idx, count = 0;
    frame_t *f;
    int r;

    r = open_container(ps, MDL_JSON_ARRAY, &idx);
    if (r < 0)
        return r;
    f = &ps->frames[ps->depth - 1];
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        close_container(ps, idx, 0);
        return 0;
    }
    for (;;) {
        f->index = count;
        r = parse_value(ps);
        if (r < 0)
            return r;
        count++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == ']')
                return fail(ps, ps->p, "trailing comma before ']'");
            continue;
        }
        if (ps->p < ps->end && *ps->p == ']')
            break;
        return fail_got(ps, ps->p, "',' or ']' after an array element");
    }
    close_container(ps, idx, count);
    return 0;
}

static int parse_object(parser_t *ps)
{
    uint32_t idx, count = 0;
    frame_t *f;
    int r;

    r = open_container(ps, MDL_JSON_OBJECT, &idx);
    if (r < 0)
        return r;
    f = &ps->frames[ps->depth - 1];
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        close_container(ps, idx, 0);
        return 0;
    }
    for (;;) {
        uint32_t key = (uint32_t)ps->n_nodes;
        f->key = NO_KEY;
        if (ps->p >= ps->end || *ps->p != '"')
            return fail_got(ps, ps->p, count ? "a string key after ','" : "a string key or '}'");
        r = parse_string(ps);
        if (r < 0)
            return r;
        f->key = key;
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != ':')
            return fail_got(ps, ps->p, "':' after an object key");
        ps->p++;
        r = parse_value(ps);
        if (r < 0)
            return r;
        count++;
        f->key = NO_KEY; /* errors between members belong to the object */
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == '}')
                return fail(ps, ps->p, "trailing comma before '}'");
            continue;
        }
        if (ps->p < ps->end && *ps->p == '}')
            break;
        return fail_got(ps, ps->p, "',' or '}' after an object member");
    }
    close_container(ps, idx, count);
    return 0;
}

static int parse_literal(parser_t *ps, const char *word, mdl_json_type_t type, bool b)
{
    size_t n = strlen(word);
    uint32_t idx;
    int r;

    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return fail(ps, ps->p, "invalid literal: expected '%s'", word);
    r = new_node(ps, type, ps->p, &idx);
    if (r < 0)
        return r;
    ps->nodes[idx].u.boolean = b;
    ps->p += n;
    return 0;
}

static int parse_value(parser_t *ps)
{
    skip_ws(ps);
    if (ps->p >= ps->end)
        return fail_got(ps, ps->p, "a JSON value");
    switch (*ps->p) {
    case '{': return parse_object(ps);
    case '[': return parse_array(ps);
    case '"': return parse_string(ps);
    case 't': return parse_literal(ps, "true", MDL_JSON_BOOL, true);
    case 'f': return parse_literal(ps, "false", MDL_JSON_BOOL, false);
    case 'n': return parse_literal(ps, "null", MDL_JSON_NULL, false);
    default:
        if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
            return parse_number(ps);
        return fail_got(ps, ps->p, "a JSON value (object, array, string, number, true, false or null)");
    }
}

int mdl_json_parse(const char *data, size_t len, unsigned max_depth, mdl_json_doc_t **ret_doc,
                   mdl_err_t *reterr)
{
    parser_t ps = {0};
    mdl_json_doc_t *doc = NULL;
    int r;

    if (len >= UINT32_MAX)
        return mdl_err_set(reterr, -E2BIG, "JSON: document of %zu bytes is too large", len);
    if (max_depth > MDL_JSON_MAX_DEPTH)
        max_depth = MDL_JSON_MAX_DEPTH;
    ps.start = ps.p = (const unsigned char *)data;
    ps.end = ps.start + len;
    ps.max_depth = max_depth;
    ps.err = reterr;
    /* A guess that avoids most regrowth for number-heavy files without overcommitting. */
    ps.cap = len / 8 + 16;
    ps.nodes = malloc(ps.cap * sizeof *ps.nodes);
    ps.strings = malloc(len + 1);
    ps.frames = malloc((max_depth ? max_depth : 1) * sizeof *ps.frames);
    doc = malloc(sizeof *doc);
    if (!ps.nodes || !ps.strings || !ps.frames || !doc) {
        r = mdl_err_set(reterr, -ENOMEM, "JSON: out of memory");
        goto fail;
    }
    r = parse_value(&ps);
    if (r < 0)
        goto fail;
    skip_ws(&ps);
    if (ps.p < ps.end) {
        r = fail_got(&ps, ps.p, "end of input after the top-level value");
        goto fail;
    }
    free(ps.frames);
    doc->nodes = ps.nodes;
    doc->n_nodes = ps.n_nodes;
    doc->strings = ps.strings;
    *ret_doc = doc;
    return 0;
fail:
    free(ps.nodes);
    free(ps.strings);
    free(ps.frames);
    free(doc);
    return r;
}

mdl_json_doc_t *mdl_json_doc_free(mdl_json_doc_t *doc)
{
    if (doc) {
        free(doc->nodes);
        free(doc->strings);
        free(doc);
    }
    return NULL;
}

const mdl_json_t *mdl_json_doc_root(const mdl_json_doc_t *doc)
{
    return &doc->nodes[0];
}

size_t mdl_json_doc_nodes(const mdl_json_doc_t *doc)
{
    return doc->n_nodes;
}

/* ---- access --------------------------------------------------------------------------- */

const mdl_json_t *mdl_json_at(const mdl_json_t *v, size_t i)
{
    const mdl_json_t *it;

    if (!v || v->type != MDL_JSON_ARRAY || i >= v->len)
        return NULL;
    if (v->span == v->len + 1) /* every element is a scalar: direct index */
        return v + 1 + i;
    it = v + 1;
    while (i--)
        it += it->span;
    return it;
}

const mdl_json_t *mdl_json_find(const mdl_json_t *v, const char *key)
{
    size_t n;

    if (!v || v->type != MDL_JSON_OBJECT)
        return NULL;
    n = strlen(key);
    MDL_JSON_FOREACH_MEMBER(k, v)
        if (k->len == n && memcmp(k->u.str, key, n) == 0)
            return k + 1;
    return NULL;
}

/* Appends src at buf[n] within size (truncating like snprintf); returns the new length.
 * The path builders run for every member a loader reads (a 30 MB XGBoost model: millions
 * of calls), so they copy bytes instead of going through snprintf, which took 40 % of that
 * load. */
static size_t path_append(char *buf, size_t size, size_t n, const char *src, size_t len)
{
    if (n + 1 >= size)
        return n;
    if (len > size - 1 - n)
        len = size - 1 - n;
    memcpy(buf + n, src, len);
    buf[n + len] = '\0';
    return n + len;
}

char *mdl_json_path_key(char *buf, size_t size, const char *parent, const char *key)
{
    size_t n = 0;

    if (size == 0)
        return buf;
    buf[0] = '\0';
    if (parent && parent[0]) {
        n = path_append(buf, size, n, parent, strlen(parent));
        n = path_append(buf, size, n, ".", 1);
    }
    path_append(buf, size, n, key, strlen(key));
    return buf;
}

char *mdl_json_path_index(char *buf, size_t size, const char *parent, size_t i)
{
    char digits[24];
    size_t n = 0, d = sizeof digits;

    if (size == 0)
        return buf;
    buf[0] = '\0';
    digits[--d] = ']';
    do
        digits[--d] = (char)('0' + i % 10);
    while ((i /= 10) != 0);
    digits[--d] = '[';
    if (parent)
        n = path_append(buf, size, n, parent, strlen(parent));
    path_append(buf, size, n, digits + d, sizeof digits - d);
    return buf;
}

static const char *show(const char *path)
{
    return path && path[0] ? path : "(document)";
}

int mdl_json_expect(const mdl_json_t *v, mdl_json_type_t t, const char *path, mdl_err_t *reterr)
{
    if (v->type == t)
        return 0;
    return mdl_err_set(reterr, -EBADMSG, "%s: expected %s, got %s (byte %u)", show(path),
                       mdl_json_type_name(t), mdl_json_type_name(v->type), v->offset);
}

int mdl_json_get(const mdl_json_t *obj, const char *path, const char *key, mdl_json_type_t t,
                 const mdl_json_t **ret, mdl_err_t *reterr)
{
    char p[160];
    const mdl_json_t *v;
    int r;

    r = mdl_json_expect(obj, MDL_JSON_OBJECT, path, reterr);
    if (r < 0)
        return r;
    mdl_json_path_key(p, sizeof p, path, key);
    v = mdl_json_find(obj, key);
    if (!v)
        return mdl_err_set(reterr, -EBADMSG, "%s: required field is missing (object at byte %u)", p,
                           obj->offset);
    r = mdl_json_expect(v, t, p, reterr);
    if (r < 0)
        return r;
    *ret = v;
    return 0;
}

int mdl_json_get_number(const mdl_json_t *obj, const char *path, const char *key, double *ret,
                        mdl_err_t *reterr)
{
    const mdl_json_t *v;
    int r = mdl_json_get(obj, path, key, MDL_JSON_NUMBER, &v, reterr);

    if (r < 0)
        return r;
    *ret = v->u.num;
    return 0;
}

int mdl_json_get_int(const mdl_json_t *obj, const char *path, const char *key, long long min,
                     long long max, long long *ret, mdl_err_t *reterr)
{
    const mdl_json_t *v;
    char p[160];
    int r = mdl_json_get(obj, path, key, MDL_JSON_NUMBER, &v, reterr);

    if (r < 0)
        return r;
    /* Compare in double: min/max are small enough in practice to be exact. */
    if (v->u.num != floor(v->u.num) || v->u.num < (double)min || v->u.num > (double)max)
        return mdl_err_set(reterr, -EBADMSG, "%s: expected an integer in [%lld, %lld], got %.17g (byte %u)",
                           mdl_json_path_key(p, sizeof p, path, key), min, max, v->u.num, v->offset);
    *ret = (long long)v->u.num;
    return 0;
}

int mdl_json_get_bool(const mdl_json_t *obj, const char *path, const char *key, bool *ret,
                      mdl_err_t *reterr)
{
    const mdl_json_t *v;
    int r = mdl_json_get(obj, path, key, MDL_JSON_BOOL, &v, reterr);

    if (r < 0)
        return r;
    *ret = v->u.boolean;
    return 0;
}

int mdl_json_get_string(const mdl_json_t *obj, const char *path, const char *key,
                        const char **ret, mdl_err_t *reterr)
{
    const mdl_json_t *v;
    char p[160];
    int r = mdl_json_get(obj, path, key, MDL_JSON_STRING, &v, reterr);

    if (r < 0)
        return r;
    if (strlen(v->u.str) != v->len)
        return mdl_err_set(reterr, -EBADMSG, "%s: must not contain \\u0000 (byte %u)",
                           mdl_json_path_key(p, sizeof p, path, key), v->offset);
    *ret = v->u.str;
    return 0;
}

int mdl_json_numbers(const mdl_json_t *v, const char *path, double *out, size_t n,
                     mdl_err_t *reterr)
{
    size_t i = 0;
    int r;

    r = mdl_json_expect(v, MDL_JSON_ARRAY, path, reterr);
    if (r < 0)
        return r;
    if (v->len != n)
        return mdl_err_set(reterr, -EBADMSG, "%s: expected %zu numbers, got %u (byte %u)", show(path),
                           n, v->len, v->offset);
    MDL_JSON_FOREACH(it, v) {
        if (it->type != MDL_JSON_NUMBER)
            return mdl_err_set(reterr, -EBADMSG, "%s[%zu]: expected a number, got %s (byte %u)",
                               show(path), i, mdl_json_type_name(it->type), it->offset);
        out[i++] = it->u.num;
    }
    return 0;
}

int mdl_json_check_members(const mdl_json_t *obj, const char *path, const char *const *allowed,
                           mdl_err_t *reterr)
{
    uint64_t seen = 0;
    char p[160];
    int r;

    r = mdl_json_expect(obj, MDL_JSON_OBJECT, path, reterr);
    if (r < 0)
        return r;
    MDL_JSON_FOREACH_MEMBER(k, obj) {
        size_t i;
        for (i = 0; allowed[i]; i++)
            if (strlen(allowed[i]) == k->len && memcmp(allowed[i], k->u.str, k->len) == 0)
                break;
        /* Bitmask bookkeeping keeps this O(members x allowed) even for hostile input. */
        if (!allowed[i] || i >= 64)
            return mdl_err_set(reterr, -EBADMSG, "%s: unknown field (byte %u)",
                               mdl_json_path_key(p, sizeof p, path, k->u.str), k->offset);
        if (seen & (UINT64_C(1) << i))
            return mdl_err_set(reterr, -EBADMSG, "%s: duplicate field (byte %u)",
                               mdl_json_path_key(p, sizeof p, path, k->u.str), k->offset);
        seen |= UINT64_C(1) << i;
    }
    return 0;
}
