/* XGBoost models as Booster.save_model writes them: JSON (via models/json.h) and UBJSON
 * (a small bounded reader below), schema of 1.7 and 2.x.
 *
 * Both formats hold the same document:
 *   { "version": [1, 7, 4],
 *     "learner": {
 *       "feature_names": [...], "feature_types": [...],
 *       "learner_model_param": { "base_score": "5E-1", "num_class": "0",
 *                                "num_feature": "20", "num_target": "1", ... },
 *       "objective": { "name": "binary:logistic", ... },
 *       "gradient_booster": { "name": "gbtree", "model": M }
 *                        or { "name": "dart", "gbtree": { "model": M }, "weight_drop": [...] }
 *   } }
 *   M = { "gbtree_model_param": { "num_trees": "50", "num_parallel_tree": "1" },
 *         "tree_info": [group of each tree], "trees": [T, ...] }
 *   T = { "id": i, "tree_param": { "num_nodes": "61", ... },
 *         "left_children", "right_children", "split_indices", "split_conditions",
 *         "default_left", "split_type" (0 numeric, 1 categorical): num_nodes each;
 *         "categories_nodes", "categories_segments", "categories_sizes": one per categorical
 *         node; "categories": the categories of all of them, concatenated }
 * A node is a leaf iff left_children is -1; its value is split_conditions. Numeric
 * parameters are strings ("5E-1"). The UBJSON writer uses typed arrays for the per-node
 * arrays ([$d#L<n> float32, [$l int32, [$U uint8, [$L int64), counted arrays ([#L<n>) and
 * 64-bit key lengths; all big-endian.
 *
 * base_score is stored in output space; the margin starts at ProbToMargin(base_score) of
 * the objective (logit for the logistic family, log for poisson / gamma / tweedie),
 * computed in float as XGBoost does. Categorical splits: XGBoost sends the listed
 * categories right; the forest sends set members left, so children (and the default
 * direction) are swapped for those nodes. */
#include "gbdt.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/json.h"

#define XGB_MAX_DEPTH 64          /* nesting of the document */
#define XGB_MAX_CATEGORY (1 << 24) /* XGBoost's own bound on category codes */

/* ---- one view over both document formats ----------------------------------------------- */

typedef enum xtype { XT_NULL, XT_BOOL, XT_NUM, XT_STR, XT_ARR, XT_OBJ } xtype_t;

/* A UBJSON value. Like models/json.h: a flat array in document order, a container's
 * children follow it, `span` counts a subtree's nodes; object members are a key node (STR)
 * followed by the value. Typed numeric arrays are one node pointing at the raw bytes. */
typedef struct unode {
    uint8_t type;    /* xtype_t */
    uint8_t elem;    /* ARR: UBJSON marker of a typed numeric array, 0 otherwise */
    uint32_t len;    /* STR bytes, ARR elements, OBJ members */
    uint32_t span;
    size_t off;      /* byte offset of the value's marker */
    union {
        double num;
        bool b;
        const char *str;          /* STR: into the input, not NUL-terminated */
        const unsigned char *raw; /* typed ARR: first element */
    } u;
} unode_t;

typedef struct xv {
    const void *p; /* const mdl_json_t * or const unode_t *; NULL = absent */
    bool ubj;
} xv_t;

static const mdl_json_t *J(xv_t v) { return v.p; }
static const unode_t *U(xv_t v) { return v.p; }

static xtype_t xv_type(xv_t v)
{
    if (!v.ubj) {
        switch (J(v)->type) {
        case MDL_JSON_NULL: return XT_NULL;
        case MDL_JSON_BOOL: return XT_BOOL;
        case MDL_JSON_NUMBER: return XT_NUM;
        case MDL_JSON_STRING: return XT_STR;
        case MDL_JSON_ARRAY: return XT_ARR;
        default: return XT_OBJ;
        }
    }
    return (xtype_t)U(v)->type;
}

static const char *xtype_name(xtype_t t)
{
    static const char *const names[] = {"null", "a boolean", "a number", "a string", "an array",
                                        "an object"};
    return names[t];
}

static size_t xv_len(xv_t v) { return v.ubj ? U(v)->len : J(v)->len; }
static size_t xv_off(xv_t v) { return v.ubj ? U(v)->off : J(v)->offset; }

/* Member `key` of object v, or absent. */
static xv_t xv_find(xv_t v, const char *key)
{
    xv_t r = {NULL, v.ubj};
    size_t klen = strlen(key);

    if (!v.p || xv_type(v) != XT_OBJ)
        return r;
    if (!v.ubj) {
        r.p = mdl_json_find(J(v), key);
        return r;
    }
    for (const unode_t *k = U(v) + 1, *end = U(v) + U(v)->span; k < end; k += 1 + k[1].span)
        if (k->len == klen && memcmp(k->u.str, key, klen) == 0) {
            r.p = k + 1;
            return r;
        }
    return r;
}

/* First element of an untyped array / next sibling. */
static xv_t xv_first(xv_t v)
{
    xv_t r = {NULL, v.ubj};
    if (xv_len(v) && (!v.ubj || !U(v)->elem))
        r.p = v.ubj ? (const void *)(U(v) + 1) : (const void *)(J(v) + 1);
    return r;
}

static xv_t xv_next(xv_t v)
{
    xv_t r = {v.ubj ? (const void *)(U(v) + U(v)->span) : (const void *)(J(v) + J(v)->span),
              v.ubj};
    return r;
}

static uint64_t be(const unsigned char *p, int n)
{
    uint64_t x = 0;
    for (int i = 0; i < n; i++)
        x = x << 8 | p[i];
    return x;
}

static int ubj_elem_size(unsigned char m)
{
    switch (m) {
    case 'i': case 'U': case 'C': return 1;
    case 'I': return 2;
    case 'l': case 'd': return 4;
    case 'L': case 'D': return 8;
    }
    return 0;
}

static double ubj_decode(unsigned char m, const unsigned char *p)
{
    union { uint32_t u; float f; } f32;
    union { uint64_t u; double d; } f64;

    switch (m) {
    case 'i': return (double)(int8_t)p[0];
    case 'U': case 'C': return (double)p[0];
    case 'I': return (double)(int16_t)(uint16_t)be(p, 2);
    case 'l': return (double)(int32_t)(uint32_t)be(p, 4);
    case 'L': return (double)(int64_t)be(p, 8);
    case 'd': f32.u = (uint32_t)be(p, 4); return (double)f32.f;
    default: f64.u = be(p, 8); return f64.d;
    }
}

static void xv_str(xv_t v, const char **s, size_t *len)
{
    if (v.ubj) {
        *s = U(v)->u.str;
        *len = U(v)->len;
    } else {
        *s = J(v)->u.str;
        *len = J(v)->len;
    }
}

/* ---- UBJSON reader ----------------------------------------------------------------------- */

typedef struct ubj {
    const unsigned char *data;
    size_t len, pos;
    unode_t *nodes;
    size_t n, cap;
    mdl_err_t *err;
} ubj_t;

static int ubj_fail(ubj_t *u, size_t off, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int ubj_fail(ubj_t *u, size_t off, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mdl_err_set(u->err, -EBADMSG, "UBJSON byte %zu: %s", off, msg);
}

static int ubj_new_node(ubj_t *u, size_t *ret)
{
    if (u->n == u->cap) {
        size_t cap = u->cap ? u->cap * 2 : 256;
        unode_t *p;
        if (cap > UINT32_MAX)
            return mdl_err_set(u->err, -E2BIG, "UBJSON: too many values");
        p = realloc(u->nodes, cap * sizeof *p);
        if (!p)
            return mdl_err_set(u->err, -ENOMEM, "out of memory");
        u->nodes = p;
        u->cap = cap;
    }
    memset(&u->nodes[u->n], 0, sizeof u->nodes[0]);
    *ret = u->n++;
    return 0;
}

/* Reads an integer given its marker (lengths and counts): 0..max. */
static int ubj_read_int(ubj_t *u, unsigned char m, size_t at, uint64_t max, uint64_t *ret,
                        const char *what)
{
    int sz = ubj_elem_size(m);
    double v;

    if (!sz || m == 'd' || m == 'D' || m == 'C')
        return ubj_fail(u, at, "%s: expected an integer marker, got 0x%02x", what, m);
    if (u->len - u->pos < (size_t)sz)
        return ubj_fail(u, u->pos, "%s: truncated", what);
    if (m == 'L') {
        int64_t x = (int64_t)be(u->data + u->pos, 8);
        if (x < 0 || (uint64_t)x > max)
            return ubj_fail(u, at, "%s %lld out of range (0..%llu)", what, (long long)x,
                            (unsigned long long)max);
        *ret = (uint64_t)x;
    } else {
        v = ubj_decode(m, u->data + u->pos);
        if (v < 0 || v > (double)max)
            return ubj_fail(u, at, "%s %.0f out of range (0..%llu)", what, v,
                            (unsigned long long)max);
        *ret = (uint64_t)v;
    }
    u->pos += (size_t)sz;
    return 0;
}

static int ubj_byte(ubj_t *u, unsigned char *ret, const char *what)
{
    if (u->pos >= u->len)
        return ubj_fail(u, u->pos, "truncated: expected %s", what);
    *ret = u->data[u->pos++];
    return 0;
}

static int ubj_value(ubj_t *u, unsigned char m, size_t at, unsigned depth);

/* Array or object body after '[' / '{'; `obj` selects keys. */
static int ubj_container(ubj_t *u, bool obj, size_t at, unsigned depth)
{
    size_t self, count_at = 0; /* set whenever typ is (a typed array needs a count) */
    uint64_t count = 0;
    bool counted = false;
    unsigned char m = 0, typ = 0;
    int r;

    if (depth >= XGB_MAX_DEPTH)
        return ubj_fail(u, at, "nesting deeper than %d", XGB_MAX_DEPTH);
    if ((r = ubj_new_node(u, &self)) < 0)
        return r;
    u->nodes[self].type = obj ? XT_OBJ : XT_ARR;
    u->nodes[self].off = at;
    if (u->pos < u->len && u->data[u->pos] == '$') {
        u->pos++;
        if ((r = ubj_byte(u, &typ, "a type marker")) < 0)
            return r;
        if (obj || !ubj_elem_size(typ) || typ == 'C')
            return ubj_fail(u, u->pos - 1, "unsupported typed %s of 0x%02x",
                            obj ? "object" : "array", typ);
        if (u->pos >= u->len || u->data[u->pos] != '#')
            return ubj_fail(u, u->pos, "typed array without a count");
    }
    if (u->pos < u->len && u->data[u->pos] == '#') {
        u->pos++;
        count_at = u->pos;
        if ((r = ubj_byte(u, &m, "a count marker")) < 0)
            return r;
        if ((r = ubj_read_int(u, m, count_at, UINT32_MAX - 1, &count, "count")) < 0)
            return r;
        counted = true;
    }
    if (typ) {
        size_t sz = (size_t)ubj_elem_size(typ);
        if (count > (u->len - u->pos) / sz)
            return ubj_fail(u, count_at, "typed array of %llu elements runs past the end "
                            "(%zu bytes left)", (unsigned long long)count, u->len - u->pos);
        u->nodes[self].elem = typ;
        u->nodes[self].len = (uint32_t)count;
        u->nodes[self].span = 1;
        u->nodes[self].u.raw = u->data + u->pos;
        u->pos += (size_t)count * sz;
        return 0;
    }
    /* every element takes at least one byte, so a count above the bytes left is a lie */
    if (counted && count > u->len - u->pos)
        return ubj_fail(u, count_at, "count %llu exceeds the %zu bytes left",
                        (unsigned long long)count, u->len - u->pos);
    for (uint64_t i = 0;; i++) {
        size_t el_at;
        if (counted && i == count)
            break;
        do {
            el_at = u->pos;
            if ((r = ubj_byte(u, &m, obj ? "a key or '}'" : "a value or ']'")) < 0)
                return r;
        } while (m == 'N');
        if (!counted && m == (obj ? '}' : ']'))
            break;
        if (i >= UINT32_MAX - 1)
            return ubj_fail(u, el_at, "too many elements");
        if (obj) {
            uint64_t klen;
            size_t k;
            if ((r = ubj_read_int(u, m, el_at, UINT32_MAX - 1, &klen, "key length")) < 0)
                return r;
            if (klen > u->len - u->pos)
                return ubj_fail(u, el_at, "key of %llu bytes runs past the end",
                                (unsigned long long)klen);
            if ((r = ubj_new_node(u, &k)) < 0)
                return r;
            u->nodes[k].type = XT_STR;
            u->nodes[k].off = el_at;
            u->nodes[k].len = (uint32_t)klen;
            u->nodes[k].span = 1;
            u->nodes[k].u.str = (const char *)u->data + u->pos;
            u->pos += klen;
            do {
                el_at = u->pos;
                if ((r = ubj_byte(u, &m, "a value")) < 0)
                    return r;
            } while (m == 'N');
        }
        if ((r = ubj_value(u, m, el_at, depth + 1)) < 0)
            return r;
        u->nodes[self].len = (uint32_t)(i + 1);
    }
    u->nodes[self].span = (uint32_t)(u->n - self);
    return 0;
}

static int ubj_value(ubj_t *u, unsigned char m, size_t at, unsigned depth)
{
    size_t k;
    uint64_t slen;
    int r, sz;

    switch (m) {
    case '[':
        return ubj_container(u, false, at, depth);
    case '{':
        return ubj_container(u, true, at, depth);
    }
    if ((r = ubj_new_node(u, &k)) < 0)
        return r;
    u->nodes[k].off = at;
    u->nodes[k].span = 1;
    switch (m) {
    case 'Z':
        u->nodes[k].type = XT_NULL;
        return 0;
    case 'T':
    case 'F':
        u->nodes[k].type = XT_BOOL;
        u->nodes[k].u.b = m == 'T';
        return 0;
    case 'S':
        if ((r = ubj_byte(u, &m, "a string length marker")) < 0)
            return r;
        if ((r = ubj_read_int(u, m, at, UINT32_MAX - 1, &slen, "string length")) < 0)
            return r;
        if (slen > u->len - u->pos)
            return ubj_fail(u, at, "string of %llu bytes runs past the end",
                            (unsigned long long)slen);
        u->nodes[k].type = XT_STR;
        u->nodes[k].len = (uint32_t)slen;
        u->nodes[k].u.str = (const char *)u->data + u->pos;
        u->pos += slen;
        return 0;
    }
    sz = ubj_elem_size(m);
    if (!sz)
        return ubj_fail(u, at, "unknown or unsupported marker 0x%02x", m);
    if (u->len - u->pos < (size_t)sz)
        return ubj_fail(u, at, "truncated number");
    u->nodes[k].type = XT_NUM;
    u->nodes[k].u.num = ubj_decode(m, u->data + u->pos);
    u->pos += (size_t)sz;
    if (!isfinite(u->nodes[k].u.num))
        return ubj_fail(u, at, "number is not finite");
    return 0;
}

static int ubj_parse(ubj_t *u)
{
    unsigned char m;
    size_t at;
    int r;

    do {
        at = u->pos;
        if ((r = ubj_byte(u, &m, "a value")) < 0)
            return r;
    } while (m == 'N');
    if ((r = ubj_value(u, m, at, 0)) < 0)
        return r;
    if (u->pos != u->len)
        return ubj_fail(u, u->pos, "%zu bytes after the document", u->len - u->pos);
    return 0;
}

/* ---- the loader -------------------------------------------------------------------------- */

typedef struct xload {
    mdl_err_t *err;
    double *arrays[16]; /* decoded numeric arrays of the tree being read (get_numbers) */
    size_t n_arrays;
    mdl_forest_node_in_t *nodes;
    size_t cap_nodes;
    uint32_t *cats;
    size_t cap_cats;
} xload_t;

static int fail(xload_t *x, xv_t v, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(xload_t *x, xv_t v, const char *path, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (v.p)
        return mdl_err_set(x->err, -EBADMSG, "%s: %s (byte %zu)", path, msg, xv_off(v));
    return mdl_err_set(x->err, -EBADMSG, "%s: %s", path, msg);
}

/* Member key of obj, of type t; `required` says whether absence is an error. */
static int get(xload_t *x, xv_t obj, const char *path, const char *key, xtype_t t, bool required,
               xv_t *ret)
{
    char p[256];
    xv_t v = xv_find(obj, key);

    mdl_json_path_key(p, sizeof p, path, key);
    if (!v.p) {
        if (!required) {
            *ret = v;
            return 0;
        }
        return fail(x, obj, p, "missing");
    }
    if (xv_type(v) != t)
        return fail(x, v, p, "expected %s, got %s", xtype_name(t), xtype_name(xv_type(v)));
    *ret = v;
    return 0;
}

/* A string member as a NUL-terminated copy in buf. */
static int get_str(xload_t *x, xv_t obj, const char *path, const char *key, char *buf,
                   size_t size, bool required)
{
    xv_t v;
    const char *s;
    size_t n;
    int r;
    char p[256];

    if ((r = get(x, obj, path, key, XT_STR, required, &v)) < 0)
        return r;
    if (!v.p) {
        buf[0] = 0;
        return 0;
    }
    xv_str(v, &s, &n);
    mdl_json_path_key(p, sizeof p, path, key);
    if (n >= size || memchr(s, 0, n))
        return fail(x, v, p, "string too long or with a NUL byte");
    memcpy(buf, s, n);
    buf[n] = 0;
    return 0;
}

/* A numeric parameter written as a string ("20", "5E-1"); or as a number. */
static int get_param(xload_t *x, xv_t obj, const char *path, const char *key, bool required,
                     double dflt, double *ret)
{
    char buf[64], p[256], *end;
    xv_t v = xv_find(obj, key);
    double d;
    int r;

    mdl_json_path_key(p, sizeof p, path, key);
    if (v.p && xv_type(v) == XT_NUM) {
        *ret = v.ubj ? U(v)->u.num : J(v)->u.num;
        return 0;
    }
    if ((r = get_str(x, obj, path, key, buf, sizeof buf, required)) < 0)
        return r;
    if (!v.p) {
        *ret = dflt;
        return 0;
    }
    errno = 0;
    d = strtod(buf, &end);
    if (end == buf || *end || !isfinite(d))
        return fail(x, v, p, "expected a finite number, got \"%s\"", buf);
    *ret = d;
    return 0;
}

static int get_count(xload_t *x, xv_t obj, const char *path, const char *key, bool required,
                     double dflt, double max, size_t *ret)
{
    double d = 0;
    char p[256];
    int r;

    if ((r = get_param(x, obj, path, key, required, dflt, &d)) < 0)
        return r;
    if (d != floor(d) || d < 0 || d > max) {
        mdl_json_path_key(p, sizeof p, path, key);
        return fail(x, xv_find(obj, key), p, "%g is not an integer in 0..%.0f", d, max);
    }
    *ret = (size_t)d;
    return 0;
}

/* Array member with exactly n elements (n = SIZE_MAX: any length, returned in *ret_n). */
static int get_array(xload_t *x, xv_t obj, const char *path, const char *key, size_t n,
                     bool required, xv_t *ret)
{
    char p[256];
    int r;

    if ((r = get(x, obj, path, key, XT_ARR, required, ret)) < 0 || !ret->p)
        return r;
    if (n != SIZE_MAX && xv_len(*ret) != n) {
        mdl_json_path_key(p, sizeof p, path, key);
        return fail(x, *ret, p, "has %zu elements, expected %zu", xv_len(*ret), n);
    }
    return 0;
}

/* XGBoost's JSON writer prints non-finite floats as bare NaN / Infinity / -Infinity (1.7
 * writes NaN as the split_conditions of categorical nodes), which strict JSON and
 * models/json.h refuse. mask_nonfinite() rewrites those tokens outside strings, in a copy
 * and keeping every byte offset, into placeholders no XGBoost number array holds:
 *   NaN -> {} (an empty object)   Infinity -> [1]   -Infinity -> [-1]   (space padded)
 * and decode() reads the placeholders back. Returns the copy, NULL if there was nothing to
 * rewrite, or sets *nomem. */
static char *mask_nonfinite(const char *data, size_t len, bool *nomem)
{
    char *copy = NULL;
    bool in_str = false;

    *nomem = false;
    for (size_t i = 0; i < len; i++) {
        char c = data[i];
        const char *tok = NULL, *rep = NULL;
        size_t n;
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"') {
            in_str = true;
            continue;
        }
        if (c == 'N' && len - i >= 3 && memcmp(data + i, "NaN", 3) == 0)
            tok = "NaN", rep = "{} ";
        else if (c == 'I' && len - i >= 8 && memcmp(data + i, "Infinity", 8) == 0)
            tok = "Infinity", rep = "[1]     ";
        else if (c == '-' && len - i >= 9 && memcmp(data + i, "-Infinity", 9) == 0)
            tok = "-Infinity", rep = "[-1]     ";
        if (!tok)
            continue;
        if (!copy) {
            copy = malloc(len ? len : 1);
            if (!copy) {
                *nomem = true;
                return NULL;
            }
            memcpy(copy, data, len);
        }
        n = strlen(tok);
        memcpy(copy + i, rep, n);
        i += n - 1;
    }
    return copy;
}

/* One JSON element as a number (placeholders of mask_nonfinite included). */
static bool json_elem_num(const mdl_json_t *e, double *ret)
{
    switch (e->type) {
    case MDL_JSON_NUMBER:
        *ret = e->u.num;
        return true;
    case MDL_JSON_BOOL:
        *ret = e->u.boolean ? 1.0 : 0.0;
        return true;
    case MDL_JSON_OBJECT:
        if (e->len != 0)
            return false;
        *ret = NAN;
        return true;
    case MDL_JSON_ARRAY:
        if (e->len != 1 || e[1].type != MDL_JSON_NUMBER || fabs(e[1].u.num) != 1.0)
            return false;
        *ret = e[1].u.num > 0 ? INFINITY : -INFINITY;
        return true;
    }
    return false;
}

/* Decodes the whole numeric array arr (length already checked to be n) into out, walking
 * it once. */
static int decode(xload_t *x, xv_t arr, const char *path, size_t n, double *out)
{
    char p[256];
    size_t i = 0;

    if (arr.ubj && U(arr)->elem) {
        size_t sz = (size_t)ubj_elem_size(U(arr)->elem);
        for (i = 0; i < n; i++)
            out[i] = ubj_decode(U(arr)->elem, U(arr)->u.raw + i * sz);
        return 0;
    }
    if (!arr.ubj) {
        MDL_JSON_FOREACH(e, J(arr)) {
            if (i >= n)
                break;
            if (!json_elem_num(e, &out[i])) {
                mdl_json_path_index(p, sizeof p, path, i);
                return mdl_err_set(x->err, -EBADMSG, "%s: expected a number, got %s (byte %u)",
                                   p, mdl_json_type_name((mdl_json_type_t)e->type), e->offset);
            }
            i++;
        }
        return 0;
    }
    for (const unode_t *e = U(arr) + 1; i < n; e += e->span, i++) {
        if (e->type == XT_NUM) {
            out[i] = e->u.num;
        } else if (e->type == XT_BOOL) {
            out[i] = e->u.b ? 1.0 : 0.0;
        } else {
            mdl_json_path_index(p, sizeof p, path, i);
            return mdl_err_set(x->err, -EBADMSG, "%s: expected a number, got %s (byte %zu)", p,
                               xtype_name((xtype_t)e->type), e->off);
        }
    }
    return 0;
}

/* Checks that d (element i of array arr at path) is an integer in [min, max]. */
static int check_int(xload_t *x, xv_t arr, const char *path, size_t i, double d, double min,
                     double max)
{
    char p[256];

    if (d == floor(d) && d >= min && d <= max)
        return 0;
    mdl_json_path_index(p, sizeof p, path, i);
    return fail(x, arr, p, "%g is not an integer in %.0f..%.0f", d, min, max);
}

/* Member `key` of obj: an array of n numbers (n = SIZE_MAX: any length, returned in
 * *ret_n), decoded into a new buffer owned by x->arrays (freed by free_arrays). Absent and
 * optional: *ret = NULL. */
static int get_numbers(xload_t *x, xv_t obj, const char *path, const char *key, size_t n,
                       bool required, double **ret, size_t *ret_n, xv_t *ret_v)
{
    char p[256];
    xv_t v;
    int r;

    *ret = NULL;
    if ((r = get_array(x, obj, path, key, n, required, &v)) < 0)
        return r;
    if (ret_v)
        *ret_v = v;
    if (!v.p) {
        if (ret_n)
            *ret_n = 0;
        return 0;
    }
    n = xv_len(v);
    if (ret_n)
        *ret_n = n;
    if (x->n_arrays == sizeof x->arrays / sizeof x->arrays[0])
        return mdl_err_set(x->err, -EINVAL, "internal: too many arrays");
    *ret = malloc((n ? n : 1) * sizeof **ret);
    if (!*ret)
        return mdl_err_set(x->err, -ENOMEM, "out of memory");
    x->arrays[x->n_arrays++] = *ret;
    mdl_json_path_key(p, sizeof p, path, key);
    return decode(x, v, p, n, *ret);
}

static void free_arrays(xload_t *x)
{
    while (x->n_arrays)
        free(x->arrays[--x->n_arrays]);
}

typedef struct objective {
    const char *name;
    mdl_task_t task;
    mdl_forest_transform_t transform;
    int base; /* 0: raw, 1: logit, 2: log */
    bool multi;
} objective_t;

static const objective_t objectives[] = {
    {"binary:logistic", MDL_TASK_BINARY, MDL_TRANSFORM_SIGMOID, 1, false},
    /* 1.7.4 keeps logitraw's base_score raw (its fixture: margin = 0.5 + leaves) */
    {"binary:logitraw", MDL_TASK_BINARY, MDL_TRANSFORM_IDENTITY, 0, false},
    {"reg:logistic", MDL_TASK_REGRESSION, MDL_TRANSFORM_SIGMOID, 1, false},
    {"reg:squarederror", MDL_TASK_REGRESSION, MDL_TRANSFORM_IDENTITY, 0, false},
    {"reg:linear", MDL_TASK_REGRESSION, MDL_TRANSFORM_IDENTITY, 0, false},
    {"reg:squaredlogerror", MDL_TASK_REGRESSION, MDL_TRANSFORM_IDENTITY, 0, false},
    {"reg:pseudohubererror", MDL_TASK_REGRESSION, MDL_TRANSFORM_IDENTITY, 0, false},
    {"reg:absoluteerror", MDL_TASK_REGRESSION, MDL_TRANSFORM_IDENTITY, 0, false},
    {"count:poisson", MDL_TASK_REGRESSION, MDL_TRANSFORM_EXP, 2, false},
    {"reg:gamma", MDL_TASK_REGRESSION, MDL_TRANSFORM_EXP, 2, false},
    {"reg:tweedie", MDL_TASK_REGRESSION, MDL_TRANSFORM_EXP, 2, false},
    {"multi:softmax", MDL_TASK_MULTICLASS, MDL_TRANSFORM_ARGMAX, 0, true},
    {"multi:softprob", MDL_TASK_MULTICLASS, MDL_TRANSFORM_SOFTMAX, 0, true},
    {"rank:pairwise", MDL_TASK_RANKING, MDL_TRANSFORM_IDENTITY, 0, false},
    {"rank:ndcg", MDL_TASK_RANKING, MDL_TRANSFORM_IDENTITY, 0, false},
    {"rank:map", MDL_TASK_RANKING, MDL_TRANSFORM_IDENTITY, 0, false},
};

static int grow_buf(void **p, size_t *cap, size_t need, size_t size)
{
    void *q;
    if (need <= *cap)
        return 0;
    q = realloc(*p, need * size);
    if (!q)
        return -ENOMEM;
    *p = q;
    *cap = need;
    return 0;
}

/* Reads tree `t` (JSON path `path`) and adds it to the builder. */
static int load_tree(xload_t *x, xv_t tree, const char *path, uint32_t group, double weight,
                     mdl_forest_builder_t *b)
{
    xv_t tp, cnv, csv, czv, cvv;
    double *lc, *rc, *si, *sc, *dl, *st, *cn, *cs, *cz, *cv;
    char p[256], q[256];
    size_t n, size_leaf, n_cat_nodes, n_cv, n_words = 0;
    mdl_forest_tree_in_t in;
    int r;

    if (xv_type(tree) != XT_OBJ)
        return fail(x, tree, path, "expected an object, got %s", xtype_name(xv_type(tree)));
    if ((r = get(x, tree, path, "tree_param", XT_OBJ, true, &tp)) < 0)
        return r;
    mdl_json_path_key(p, sizeof p, path, "tree_param");
    if ((r = get_count(x, tp, p, "num_nodes", true, 0, (double)MDL_FOREST_MAX_NODES, &n)) < 0 ||
        (r = get_count(x, tp, p, "size_leaf_vector", false, 0, 1e18, &size_leaf)) < 0)
        return r;
    if (n == 0)
        return fail(x, tp, p, "num_nodes is 0");
    if (size_leaf > 1)
        return fail(x, tp, p, "size_leaf_vector %zu: multi-target trees are not supported",
                    size_leaf);
    if ((r = get_numbers(x, tree, path, "left_children", n, true, &lc, NULL, NULL)) < 0 ||
        (r = get_numbers(x, tree, path, "right_children", n, true, &rc, NULL, NULL)) < 0 ||
        (r = get_numbers(x, tree, path, "split_indices", n, true, &si, NULL, NULL)) < 0 ||
        (r = get_numbers(x, tree, path, "split_conditions", n, true, &sc, NULL, NULL)) < 0 ||
        (r = get_numbers(x, tree, path, "default_left", n, true, &dl, NULL, NULL)) < 0 ||
        (r = get_numbers(x, tree, path, "split_type", n, false, &st, NULL, NULL)) < 0 ||
        (r = get_numbers(x, tree, path, "categories_nodes", SIZE_MAX, false, &cn, &n_cat_nodes,
                         &cnv)) < 0)
        return r;
    if ((r = get_numbers(x, tree, path, "categories_segments", n_cat_nodes, n_cat_nodes > 0, &cs,
                         NULL, &csv)) < 0 ||
        (r = get_numbers(x, tree, path, "categories_sizes", n_cat_nodes, n_cat_nodes > 0, &cz,
                         NULL, &czv)) < 0 ||
        (r = get_numbers(x, tree, path, "categories", SIZE_MAX, n_cat_nodes > 0, &cv, &n_cv,
                         &cvv)) < 0)
        return r;
    if (grow_buf((void **)&x->nodes, &x->cap_nodes, n, sizeof *x->nodes) < 0)
        return mdl_err_set(x->err, -ENOMEM, "out of memory");
    memset(x->nodes, 0, n * sizeof *x->nodes);

    for (size_t i = 0; i < n; i++) {
        mdl_forest_node_in_t *nd = &x->nodes[i];
        xv_t none = {NULL, tree.ubj};
        nd->id = (int32_t)i;
        mdl_json_path_key(q, sizeof q, path, "left_children");
        if ((r = check_int(x, none, q, i, lc[i], -1, INT32_MAX)) < 0)
            return r;
        if (lc[i] == -1) {
            nd->type = MDL_NODE_LEAF;
            nd->value = sc[i]; /* the forest requires it finite (if reachable) */
            continue;
        }
        mdl_json_path_key(q, sizeof q, path, "right_children");
        if ((r = check_int(x, none, q, i, rc[i], -1, INT32_MAX)) < 0)
            return r;
        mdl_json_path_key(q, sizeof q, path, "split_indices");
        if ((r = check_int(x, none, q, i, si[i], 0, UINT32_MAX)) < 0)
            return r;
        mdl_json_path_key(q, sizeof q, path, "default_left");
        if ((r = check_int(x, none, q, i, dl[i], 0, 1)) < 0)
            return r;
        mdl_json_path_key(q, sizeof q, path, "split_type");
        if (st && (r = check_int(x, none, q, i, st[i], 0, 1)) < 0)
            return r;
        nd->left = (int32_t)lc[i];
        nd->right = (int32_t)rc[i];
        nd->feature = (uint32_t)si[i];
        nd->missing = MDL_MISSING_NAN;
        nd->default_left = dl[i] != 0;
        if (st && st[i] == 1) {
            /* XGBoost sends set members right; the forest sends them left */
            nd->type = MDL_NODE_CATEGORICAL;
            nd->left = (int32_t)rc[i];
            nd->right = (int32_t)lc[i];
            nd->default_left = !nd->default_left;
        } else {
            nd->type = MDL_NODE_NUMERIC;
            nd->threshold = sc[i];
        }
    }

    /* Categorical splits: one bitset per listed node, packed one after another. */
    for (size_t j = 0; j < n_cat_nodes; j++) {
        double maxc = -1;
        size_t words, node, seg, size;
        mdl_json_path_key(q, sizeof q, path, "categories_nodes");
        if ((r = check_int(x, cnv, q, j, cn[j], 0, (double)n - 1)) < 0)
            return r;
        node = (size_t)cn[j];
        if (x->nodes[node].type != MDL_NODE_CATEGORICAL) {
            mdl_json_path_index(p, sizeof p, q, j);
            return fail(x, cnv, p, "node %zu is not a categorical split", node);
        }
        if (x->nodes[node].cat_words) {
            mdl_json_path_index(p, sizeof p, q, j);
            return fail(x, cnv, p, "node %zu is listed twice", node);
        }
        mdl_json_path_key(q, sizeof q, path, "categories_segments");
        if ((r = check_int(x, csv, q, j, cs[j], 0, (double)n_cv)) < 0)
            return r;
        seg = (size_t)cs[j];
        mdl_json_path_key(q, sizeof q, path, "categories_sizes");
        if ((r = check_int(x, czv, q, j, cz[j], 0, (double)(n_cv - seg))) < 0)
            return r;
        size = (size_t)cz[j];
        mdl_json_path_key(q, sizeof q, path, "categories");
        for (size_t k = seg; k < seg + size; k++) {
            if ((r = check_int(x, cvv, q, k, cv[k], 0, XGB_MAX_CATEGORY - 1)) < 0)
                return r;
            if (cv[k] > maxc)
                maxc = cv[k];
        }
        words = maxc < 0 ? 0 : (size_t)maxc / 32 + 1;
        if (n_words + words > MDL_FOREST_MAX_CAT_WORDS)
            return mdl_err_set(x->err, -E2BIG, "%s: category bitsets exceed %zu words", path,
                               MDL_FOREST_MAX_CAT_WORDS);
        if (grow_buf((void **)&x->cats, &x->cap_cats, n_words + words, sizeof *x->cats) < 0)
            return mdl_err_set(x->err, -ENOMEM, "out of memory");
        if (words > 0) /* an empty category list allocates nothing: x->cats may be NULL */
            memset(x->cats + n_words, 0, words * sizeof *x->cats);
        for (size_t k = seg; k < seg + size; k++) {
            uint32_t cat = (uint32_t)cv[k];
            x->cats[n_words + cat / 32] |= 1u << (cat % 32);
        }
        x->nodes[node].cat_offset = (uint32_t)n_words;
        x->nodes[node].cat_words = (uint32_t)words;
        n_words += words;
    }

    memset(&in, 0, sizeof in);
    in.n_nodes = n;
    in.nodes = x->nodes;
    in.n_cat_words = n_words;
    in.cat_bits = x->cats;
    in.group = group;
    in.weight = weight;
    if ((r = mdl_forest_builder_add_tree(b, &in, x->err)) < 0) {
        mdl_err_prefix(x->err, "%s: ", path);
        return r;
    }
    free_arrays(x);
    return 0;
}

/* Margin-space base score from base_score as stored (string "5E-1", or "[5E-1]"). */
static int base_margin(xload_t *x, xv_t lmp, const char *path, const objective_t *obj,
                       double *ret)
{
    char buf[64], p[256], *s, *end;
    xv_t v = xv_find(lmp, "base_score");
    double d;
    float bs;
    int r;

    mdl_json_path_key(p, sizeof p, path, "base_score");
    if (v.p && xv_type(v) == XT_NUM) {
        d = v.ubj ? U(v)->u.num : J(v)->u.num;
    } else {
        if ((r = get_str(x, lmp, path, "base_score", buf, sizeof buf, false)) < 0)
            return r;
        if (!v.p) {
            d = 0.5;
        } else {
            s = buf;
            if (*s == '[')
                s++;
            d = strtod(s, &end);
            if (end == s || (*end && !(buf[0] == '[' && end[0] == ']' && !end[1])) ||
                !isfinite(d))
                return fail(x, v, p, "expected a number, got \"%s\"", buf);
        }
    }
    bs = (float)d;
    switch (obj->base) {
    case 1:
        if (!(bs > 0.0f && bs < 1.0f))
            return fail(x, v, p, "%g must be in (0, 1) for %s", d, obj->name);
        *ret = (double)(-logf(1.0f / bs - 1.0f));
        break;
    case 2:
        if (!(bs > 0.0f))
            return fail(x, v, p, "%g must be positive for %s", d, obj->name);
        *ret = (double)logf(bs);
        break;
    default:
        if (!isfinite(bs))
            return fail(x, v, p, "%g overflows a float", d);
        *ret = (double)bs;
    }
    return 0;
}

static int load_doc(xload_t *x, xv_t root, mdl_forest_t **ret)
{
    xv_t learner, lmp, objv, gb, model, mp, trees, info, wd = {NULL, root.ubj}, names, tree;
    char objname[64], gbname[32], mpath[128];
    const objective_t *obj = NULL;
    size_t n_features, num_class, num_target, n_trees, n_parallel, n_out;
    double base = 0;
    double *bases = NULL;
    char **fnames = NULL;
    mdl_forest_builder_t *b = NULL;
    mdl_forest_params_t params;
    size_t *order = NULL;  /* position in "trees" of the tree with id k */
    xv_t *by_id = NULL;    /* the tree with id k */
    double *tinfo = NULL, *wdrop = NULL;
    int r;

    if (xv_type(root) != XT_OBJ)
        return fail(x, root, "(root)", "expected an object, got %s", xtype_name(xv_type(root)));
    if ((r = get(x, root, "", "learner", XT_OBJ, true, &learner)) < 0 ||
        (r = get(x, learner, "learner", "learner_model_param", XT_OBJ, true, &lmp)) < 0 ||
        (r = get(x, learner, "learner", "objective", XT_OBJ, true, &objv)) < 0 ||
        (r = get_str(x, objv, "learner.objective", "name", objname, sizeof objname, true)) < 0 ||
        (r = get(x, learner, "learner", "gradient_booster", XT_OBJ, true, &gb)) < 0 ||
        (r = get_str(x, gb, "learner.gradient_booster", "name", gbname, sizeof gbname, true)) < 0)
        return r;
    for (size_t i = 0; i < sizeof objectives / sizeof objectives[0]; i++)
        if (strcmp(objectives[i].name, objname) == 0)
            obj = &objectives[i];
    if (!obj)
        return fail(x, xv_find(objv, "name"), "learner.objective.name",
                    "unknown or unsupported objective \"%s\"", objname);
    if ((r = get_count(x, lmp, "learner.learner_model_param", "num_feature", true, 0,
                       (double)MDL_FOREST_MAX_FEATURES, &n_features)) < 0 ||
        (r = get_count(x, lmp, "learner.learner_model_param", "num_class", false, 0,
                       (double)MDL_FOREST_MAX_OUTPUTS, &num_class)) < 0 ||
        (r = get_count(x, lmp, "learner.learner_model_param", "num_target", false, 1, 1e9,
                       &num_target)) < 0)
        return r;
    if (n_features == 0)
        return fail(x, lmp, "learner.learner_model_param.num_feature", "is 0");
    if (num_target > 1)
        return fail(x, lmp, "learner.learner_model_param.num_target",
                    "%zu targets: multi-target models are not supported", num_target);
    if (obj->multi && num_class < 2)
        return fail(x, lmp, "learner.learner_model_param.num_class",
                    "%s needs num_class >= 2, got %zu", objname, num_class);
    if (!obj->multi && num_class > 1)
        return fail(x, lmp, "learner.learner_model_param.num_class",
                    "num_class %zu with objective %s", num_class, objname);
    n_out = obj->multi ? num_class : 1;
    if ((r = base_margin(x, lmp, "learner.learner_model_param", obj, &base)) < 0)
        return r;

    if (strcmp(gbname, "gbtree") == 0) {
        if ((r = get(x, gb, "learner.gradient_booster", "model", XT_OBJ, true, &model)) < 0)
            return r;
        snprintf(mpath, sizeof mpath, "learner.gradient_booster.model");
    } else if (strcmp(gbname, "dart") == 0) {
        xv_t inner;
        if ((r = get(x, gb, "learner.gradient_booster", "gbtree", XT_OBJ, true, &inner)) < 0 ||
            (r = get(x, inner, "learner.gradient_booster.gbtree", "model", XT_OBJ, true, &model)) < 0)
            return r;
        snprintf(mpath, sizeof mpath, "learner.gradient_booster.gbtree.model");
    } else {
        return fail(x, xv_find(gb, "name"), "learner.gradient_booster.name",
                    "unsupported booster \"%s\" (gbtree and dart are tree models)", gbname);
    }
    {
        char p[192];
        mdl_json_path_key(p, sizeof p, mpath, "gbtree_model_param");
        if ((r = get(x, model, mpath, "gbtree_model_param", XT_OBJ, true, &mp)) < 0 ||
            (r = get_count(x, mp, p, "num_trees", true, 0, (double)MDL_FOREST_MAX_TREES, &n_trees)) < 0 ||
            /* checked only: parallel trees are summed like any others (tree_info) */
            (r = get_count(x, mp, p, "num_parallel_tree", false, 1, 1e9, &n_parallel)) < 0)
            return r;
    }
    if ((r = get_array(x, model, mpath, "trees", n_trees, true, &trees)) < 0 ||
        (r = get_array(x, model, mpath, "tree_info", n_trees, true, &info)) < 0)
        return r;
    if (strcmp(gbname, "dart") == 0 &&
        (r = get_array(x, gb, "learner.gradient_booster", "weight_drop", n_trees, true, &wd)) < 0)
        return r;
    if (n_trees == 0)
        return fail(x, mp, "learner.gradient_booster.model.gbtree_model_param.num_trees",
                    "the model has no trees");

    /* feature names: optional; when given, one per feature */
    if ((r = get_array(x, learner, "learner", "feature_names", SIZE_MAX, false, &names)) < 0)
        return r;
    if (names.p && xv_len(names) > 0) {
        xv_t e;
        size_t i = 0;
        if (xv_len(names) != n_features)
            return fail(x, names, "learner.feature_names", "has %zu names for %zu features",
                        xv_len(names), n_features);
        fnames = calloc(n_features, sizeof *fnames);
        if (!fnames)
            return mdl_err_set(x->err, -ENOMEM, "out of memory");
        for (e = xv_first(names); i < n_features; e = xv_next(e), i++) {
            const char *s;
            size_t len;
            char p[64];
            if (!e.p || xv_type(e) != XT_STR || (xv_str(e, &s, &len), memchr(s, 0, len))) {
                snprintf(p, sizeof p, "learner.feature_names[%zu]", i);
                r = fail(x, e.p ? e : names, p, "expected a string without NUL bytes");
                goto out;
            }
            fnames[i] = malloc(len + 1);
            if (!fnames[i]) {
                r = mdl_err_set(x->err, -ENOMEM, "out of memory");
                goto out;
            }
            memcpy(fnames[i], s, len);
            fnames[i][len] = 0;
        }
    }

    bases = malloc(n_out * sizeof *bases);
    order = malloc(n_trees * sizeof *order);
    by_id = malloc(n_trees * sizeof *by_id);
    tinfo = malloc(n_trees * sizeof *tinfo);
    wdrop = malloc(n_trees * sizeof *wdrop);
    if (!bases || !order || !by_id || !tinfo || !wdrop) {
        r = mdl_err_set(x->err, -ENOMEM, "out of memory");
        goto out;
    }
    for (size_t g = 0; g < n_out; g++)
        bases[g] = base;
    memset(&params, 0, sizeof params);
    params.flavor = MDL_FOREST_XGBOOST;
    params.task = obj->task;
    params.n_features = n_features;
    params.feature_names = (const char *const *)fnames;
    params.n_outputs = n_out;
    params.n_classes = obj->multi ? num_class : obj->task == MDL_TASK_BINARY ? 2 : 0;
    params.base_score = bases;
    params.transform = obj->transform;
    params.objective = objname;
    if ((r = mdl_forest_builder_new(&params, &b, x->err)) < 0)
        goto out;

    /* XGBoost places each tree by its "id"; they must be a permutation of 0..n-1. */
    for (size_t i = 0; i < n_trees; i++)
        order[i] = SIZE_MAX;
    tree = xv_first(trees);
    for (size_t i = 0; i < n_trees; i++, tree = xv_next(tree)) {
        char p[160];
        double id;
        xv_t idv;
        snprintf(p, sizeof p, "%s.trees[%zu]", mpath, i);
        if (!tree.p || xv_type(tree) != XT_OBJ) {
            r = fail(x, tree.p ? tree : trees, p, "expected an object");
            goto out;
        }
        idv = xv_find(tree, "id");
        if (!idv.p || xv_type(idv) != XT_NUM) {
            r = fail(x, tree, p, "missing numeric \"id\"");
            goto out;
        }
        id = idv.ubj ? U(idv)->u.num : J(idv)->u.num;
        if (id != floor(id) || id < 0 || id >= (double)n_trees || order[(size_t)id] != SIZE_MAX) {
            r = fail(x, idv, p, "id %g is out of range or repeated", id);
            goto out;
        }
        order[(size_t)id] = i;
        by_id[(size_t)id] = tree;
    }
    {
        char p[160];
        snprintf(p, sizeof p, "%s.tree_info", mpath);
        if ((r = decode(x, info, p, n_trees, tinfo)) < 0)
            goto out;
        for (size_t k = 0; k < n_trees; k++)
            if ((r = check_int(x, info, p, k, tinfo[k], 0, (double)n_out - 1)) < 0)
                goto out;
        for (size_t k = 0; k < n_trees; k++)
            wdrop[k] = 1.0;
        if (wd.p && (r = decode(x, wd, "learner.gradient_booster.weight_drop", n_trees, wdrop)) < 0)
            goto out;
    }
    for (size_t k = 0; k < n_trees; k++) {
        char p[160];
        snprintf(p, sizeof p, "%s.trees[%zu]", mpath, order[k]);
        if ((r = load_tree(x, by_id[k], p, (uint32_t)tinfo[k], wdrop[k], b)) < 0)
            goto out;
    }
    r = mdl_forest_builder_finish(b, ret, x->err);
    b = NULL;
out:
    mdl_forest_builder_free(b);
    if (fnames)
        for (size_t i = 0; i < n_features; i++)
            free(fnames[i]);
    free(fnames);
    free(bases);
    free(order);
    free(by_id);
    free(tinfo);
    free(wdrop);
    free_arrays(x);
    return r;
}

int mdl_gbdt_load_xgboost_json(const char *data, size_t len, mdl_forest_t **ret,
                               mdl_err_t *reterr)
{
    mdl_json_doc_t *doc = NULL;
    xload_t x = {.err = reterr};
    xv_t root;
    int r;

    bool nomem;
    char *masked = mask_nonfinite(data, len, &nomem);

    if (nomem)
        return mdl_err_set(reterr, -ENOMEM, "out of memory");
    r = mdl_json_parse(masked ? masked : data, len, XGB_MAX_DEPTH, &doc, reterr);
    free(masked);
    if (r < 0)
        return r;
    root.p = mdl_json_doc_root(doc);
    root.ubj = false;
    r = load_doc(&x, root, ret);
    free(x.nodes);
    free(x.cats);
    mdl_json_doc_free(doc);
    return r;
}

int mdl_gbdt_load_xgboost_ubj(const char *data, size_t len, mdl_forest_t **ret,
                              mdl_err_t *reterr)
{
    ubj_t u = {.data = (const unsigned char *)data, .len = len, .err = reterr};
    xload_t x = {.err = reterr};
    xv_t root;
    int r;

    if ((r = ubj_parse(&u)) < 0)
        goto out;
    root.p = u.nodes;
    root.ubj = true;
    r = load_doc(&x, root, ret);
out:
    free(x.nodes);
    free(x.cats);
    free(u.nodes);
    return r;
}
