#include "v2_infer.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/buf.h"
#include "tabular.h"

#define MAX_DIMS 8

/* ---- datatypes ---- */

typedef enum { T_BOOL, T_INT, T_UINT, T_FLOAT, T_BYTES } type_class_t;

typedef struct datatype {
    const char *name;
    type_class_t cls;
    size_t size;       /* bytes per element in binary data; 0 = not accepted in binary */
    double lo, hi;     /* integer types: accepted JSON range */
} datatype_t;

static const datatype_t datatypes[] = {
    {"BOOL", T_BOOL, 1, 0, 1},
    {"INT8", T_INT, 1, -128, 127},
    {"INT16", T_INT, 2, -32768, 32767},
    {"INT32", T_INT, 4, -2147483648.0, 2147483647.0},
    {"INT64", T_INT, 8, -9223372036854775808.0, 9223372036854775807.0},
    {"UINT8", T_UINT, 1, 0, 255},
    {"UINT16", T_UINT, 2, 0, 65535},
    {"UINT32", T_UINT, 4, 0, 4294967295.0},
    {"UINT64", T_UINT, 8, 0, 18446744073709551615.0},
    {"FP32", T_FLOAT, 4, 0, 0},
    {"FP64", T_FLOAT, 8, 0, 0},
    {"BYTES", T_BYTES, 0, 0, 0},
};

static const datatype_t *find_datatype(const char *name)
{
    for (size_t i = 0; i < sizeof datatypes / sizeof datatypes[0]; i++)
        if (strcmp(datatypes[i].name, name) == 0)
            return &datatypes[i];
    return NULL;
}

/* ---- outputs ---- */

static const struct {
    mdl_output_t kind;
    const char *name, *datatype;
} output_kinds[] = {
    {MDL_OUTPUT_VALUE, "value", "FP64"},
    {MDL_OUTPUT_MARGIN, "margin", "FP64"},
    {MDL_OUTPUT_LEAF, "leaf", "INT64"},
};
#define N_OUTPUT_KINDS (sizeof output_kinds / sizeof output_kinds[0])

size_t mdl_v2_model_outputs(const mdl_model_t *m, mdl_output_t *kinds, const char **names,
                            const char **types)
{
    size_t n = 0;

    for (size_t i = 0; i < N_OUTPUT_KINDS; i++) {
        if (!mdl_model_output_width(m, output_kinds[i].kind))
            continue;
        if (kinds)
            kinds[n] = output_kinds[i].kind;
        if (names)
            names[n] = output_kinds[i].name;
        if (types)
            types[n] = output_kinds[i].datatype;
        n++;
    }
    return n;
}

static const char *output_datatype(mdl_output_t kind)
{
    for (size_t i = 0; i < N_OUTPUT_KINDS; i++)
        if (output_kinds[i].kind == kind)
            return output_kinds[i].datatype;
    return "FP64";
}

/* ---- decoding ---- */

/* One input, checked, with where its values come from. */
typedef struct input {
    const char *name;
    const datatype_t *type;
    size_t dims[MAX_DIMS], n_dims, count;
    const cJSON *data;         /* JSON data, or NULL for binary */
    const char *span, *span_end; /* the data's text when it was lifted out of the tree */
    const unsigned char *bin;  /* binary data (count * type->size bytes) */
    long col;                  /* feature column (per-feature form), -1 for the matrix */
} input_t;

/* Where decoded values go: element k lands in dst[k * stride], column col or k % n_cols. */
typedef struct sink {
    const mdl_model_t *m;
    const input_t *in;
    double *dst;
    size_t stride, k;
    mdl_err_t *err;
} sink_t;

static size_t column_of(const sink_t *s, size_t k)
{
    return s->in->col >= 0 ? (size_t)s->in->col : k % s->m->n_features;
}

/* A number sent for a categorical feature names the category by its text, as in :predict
 * (3 -> "3", 2.5 -> "2.5"); NaN stays missing. */
static double category_of_number(const mdl_model_t *m, size_t col, double v)
{
    char text[40];

    if (isnan(v))
        return v;
    if (v == floor(v) && fabs(v) < 1e15)
        snprintf(text, sizeof text, "%.0f", v);
    else
        snprintf(text, sizeof text, "%.17g", v);
    return (double)mdl_model_category_index(m, col, text);
}

static int put(sink_t *s, double v)
{
    size_t col = column_of(s, s->k);

    if (s->m->features[col].n_categories)
        v = category_of_number(s->m, col, v);
    s->dst[s->k++ * s->stride] = v;
    return 0;
}

static int json_scalar(sink_t *s, const cJSON *item)
{
    const input_t *in = s->in;
    const datatype_t *t = in->type;
    size_t k = s->k;

    switch (t->cls) {
    case T_BOOL:
        if (!cJSON_IsBool(item))
            break;
        return put(s, cJSON_IsTrue(item) ? 1.0 : 0.0);
    case T_INT:
    case T_UINT:
        if (!cJSON_IsNumber(item))
            break;
        if (item->valuedouble != floor(item->valuedouble) || item->valuedouble < t->lo ||
            item->valuedouble > t->hi)
            return mdl_err_set(s->err, -EPROTO, "input '%s': element %zu (%.17g) is not a valid %s value", in->name,
                               k, item->valuedouble, t->name);
        return put(s, item->valuedouble);
    case T_FLOAT:
        if (cJSON_IsNull(item))
            return put(s, NAN);
        if (!cJSON_IsNumber(item))
            break;
        return put(s, t->size == 4 ? (double)(float)item->valuedouble : item->valuedouble);
    case T_BYTES: {
        size_t col = column_of(s, k);
        if (!cJSON_IsString(item))
            break;
        if (!s->m->features[col].n_categories)
            return mdl_err_set(s->err, -EPROTO,
                               "input '%s': BYTES data is only accepted for categorical features; '%s' is numeric",
                               in->name, s->m->features[col].name);
        s->dst[s->k++ * s->stride] = (double)mdl_model_category_index(s->m, col, item->valuestring);
        return 0;
    }
    }
    return mdl_err_set(s->err, -EPROTO, "input '%s': element %zu is %s, not a %s value", in->name, k,
                       cJSON_IsArray(item)    ? "an array"
                       : cJSON_IsObject(item) ? "an object"
                       : cJSON_IsString(item) ? "a string"
                       : cJSON_IsBool(item)   ? "a boolean"
                       : cJSON_IsNull(item)   ? "null"
                                              : "a number",
                       t->name);
}

/* Nested data: each level is an array of exactly the dimension's size. */
static int json_nested(sink_t *s, const cJSON *arr, size_t level)
{
    const input_t *in = s->in;
    const cJSON *item;
    size_t n = 0;
    int r;

    if (!cJSON_IsArray(arr))
        return mdl_err_set(s->err, -EPROTO, "input '%s': data nested %zu deep is not an array (shape has %zu dimensions)",
                           in->name, level, in->n_dims);
    cJSON_ArrayForEach(item, arr) {
        if (++n > in->dims[level])
            break;
        if (level + 1 < in->n_dims)
            r = json_nested(s, item, level + 1);
        else
            r = json_scalar(s, item);
        if (r < 0)
            return r;
    }
    if (n != in->dims[level] || (size_t)cJSON_GetArraySize(arr) != in->dims[level])
        return mdl_err_set(s->err, -EPROTO, "input '%s': data does not match shape: dimension %zu is %zu, "
                           "an array there has %d elements", in->name, level, in->dims[level], cJSON_GetArraySize(arr));
    return 0;
}

static int decode_json(sink_t *s)
{
    const input_t *in = s->in;
    const cJSON *data = in->data, *item;
    int r;

    if (!cJSON_IsArray(data))
        return mdl_err_set(s->err, -EPROTO, "input '%s': \"data\" must be an array", in->name);
    /* Nested row-major when the first element is an array, else flat. */
    if (data->child && cJSON_IsArray(data->child) && in->n_dims > 1)
        return json_nested(s, data, 0);
    if ((size_t)cJSON_GetArraySize(data) != in->count)
        return mdl_err_set(s->err, -EPROTO, "input '%s': shape holds %zu elements, data has %d", in->name,
                           in->count, cJSON_GetArraySize(data));
    cJSON_ArrayForEach(item, data)
        if ((r = json_scalar(s, item)) < 0)
            return r;
    return 0;
}

/* ---- data arrays without a JSON tree ----
 * A tree node and a strtod per value made cJSON most of a large request's cost, so the
 * "data" arrays of the inputs are lifted out of the text before cJSON sees it (replaced by
 * a null of the same length, so byte offsets stay true) and numeric ones are scanned
 * straight into the rows. Anything the scanner does not take goes through cJSON after all,
 * which then also words the error. */

typedef struct scan {
    const char *p, *end;
} scan_t;

static void scan_ws(scan_t *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
        c->p++;
}

static int scan_eat(scan_t *c, char ch)
{
    scan_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* One numeric element; -1 when it is not one this input's type takes. */
static int fast_scalar(sink_t *s, scan_t *c)
{
    const datatype_t *t = s->in->type;
    double v;
    size_t n;

    scan_ws(c);
    if (s->k >= s->in->count)
        return -1;
    if (t->cls == T_FLOAT && c->end - c->p >= 4 && memcmp(c->p, "null", 4) == 0) {
        c->p += 4;
        return put(s, NAN);
    }
    if (!(n = mdl_json_parse_number(c->p, c->end, &v)))
        return -1;
    c->p += n;
    if (t->cls == T_FLOAT)
        return put(s, t->size == 4 ? (double)(float)v : v);
    if (v != floor(v) || v < t->lo || v > t->hi)
        return -1;
    return put(s, v);
}

static int fast_array(sink_t *s, scan_t *c, size_t level, bool nested)
{
    size_t n = 0;

    if (!scan_eat(c, '['))
        return -1;
    if (!scan_eat(c, ']')) {
        do {
            int r = nested && level + 1 < s->in->n_dims ? fast_array(s, c, level + 1, true) : fast_scalar(s, c);
            if (r < 0)
                return r;
            n++;
        } while (scan_eat(c, ','));
        if (!scan_eat(c, ']'))
            return -1;
    }
    return nested && n != s->in->dims[level] ? -1 : 0;
}

/* Data lifted out of the tree: scanned when numeric, else (and on any doubt) parsed. */
static int decode_span(sink_t *s)
{
    const input_t *in = s->in;
    input_t copy;
    cJSON *data;
    int r;

    if (in->type->cls != T_BOOL && in->type->cls != T_BYTES) {
        scan_t c = {in->span, in->span_end};
        bool nested;
        scan_ws(&c);
        nested = in->n_dims > 1 && c.end - c.p > 1 && (scan_eat(&c, '[') && (scan_ws(&c), c.p < c.end && *c.p == '['));
        c.p = in->span;
        if (fast_array(s, &c, 0, nested) == 0 && s->k == in->count && (scan_ws(&c), c.p == c.end))
            return 0;
        s->k = 0;
    }
    data = cJSON_ParseWithLength(in->span, (size_t)(in->span_end - in->span));
    if (!data)
        return mdl_err_set(s->err, -EBADMSG, "input '%s': malformed JSON in \"data\"", in->name);
    copy = *in;
    copy.data = data;
    s->in = &copy;
    r = decode_json(s);
    s->in = in;
    cJSON_Delete(data);
    return r;
}

/* Finds root.inputs[i].data in the text (first "inputs", first "data" of each input) and
 * returns a copy of the text with each blanked to a null of the same length, their spans
 * in spans[i] (NULL where an input has none). NULL when the text is not a shape this walk
 * understands (then cJSON parses the original and reports what is wrong). */
typedef struct span {
    const char *start, *end;
} span_t;

static int skip_value(scan_t *c, unsigned depth);

static int skip_string(scan_t *c, const char **ret_start, const char **ret_end)
{
    if (c->p >= c->end || *c->p != '"')
        return -1;
    c->p++;
    if (ret_start)
        *ret_start = c->p;
    while (c->p < c->end && *c->p != '"') {
        if (*c->p == '\\' && c->end - c->p > 1)
            c->p++;
        c->p++;
    }
    if (c->p >= c->end)
        return -1;
    if (ret_end)
        *ret_end = c->p;
    c->p++;
    return 0;
}

static int skip_value(scan_t *c, unsigned depth)
{
    scan_ws(c);
    if (c->p >= c->end || depth > 64)
        return -1;
    if (*c->p == '"')
        return skip_string(c, NULL, NULL);
    if (*c->p == '{' || *c->p == '[') {
        char close = *c->p == '{' ? '}' : ']';
        c->p++;
        if (scan_eat(c, close))
            return 0;
        do {
            if (close == '}') {
                scan_ws(c);
                if (skip_string(c, NULL, NULL) < 0 || !scan_eat(c, ':'))
                    return -1;
            }
            if (skip_value(c, depth + 1) < 0)
                return -1;
        } while (scan_eat(c, ','));
        return scan_eat(c, close) ? 0 : -1;
    }
    {
        /* Characters of numbers and of true, false, null. */
        static const unsigned char literal[256] = {
            ['+'] = 1, ['-'] = 1, ['.'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1,
            ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1, ['e'] = 1, ['E'] = 1, ['t'] = 1,
            ['r'] = 1, ['u'] = 1, ['f'] = 1, ['a'] = 1, ['l'] = 1, ['s'] = 1, ['n'] = 1,
        };
        const char *start = c->p;
        while (c->p < c->end && literal[(unsigned char)*c->p])
            c->p++;
        return c->p > start ? 0 : -1;
    }
}

static bool key_is(const char *start, const char *end, const char *want)
{
    return (size_t)(end - start) == strlen(want) && memcmp(start, want, (size_t)(end - start)) == 0;
}

static char *lift_data(const char *text, size_t len, span_t *spans, size_t max_spans)
{
    scan_t c = {text, text + len};
    char *copy = NULL;
    bool seen_inputs = false;

    if (!scan_eat(&c, '{') || scan_eat(&c, '}'))
        return NULL;
    do {
        const char *k0, *k1;
        scan_ws(&c);
        if (skip_string(&c, &k0, &k1) < 0 || !scan_eat(&c, ':'))
            goto fail;
        scan_ws(&c);
        if (seen_inputs || !key_is(k0, k1, "inputs") || c.p >= c.end || *c.p != '[') {
            if (skip_value(&c, 1) < 0)
                goto fail;
            continue;
        }
        seen_inputs = true;
        c.p++;
        if (scan_eat(&c, ']'))
            continue;
        for (size_t i = 0;; i++) {
            scan_ws(&c);
            if (i >= max_spans || c.p >= c.end || *c.p != '{') {
                if (skip_value(&c, 2) < 0)
                    goto fail;
            } else {
                c.p++;
                if (!scan_eat(&c, '}')) {
                    do {
                        const char *v0;
                        scan_ws(&c);
                        if (skip_string(&c, &k0, &k1) < 0 || !scan_eat(&c, ':'))
                            goto fail;
                        scan_ws(&c);
                        v0 = c.p;
                        if (skip_value(&c, 3) < 0)
                            goto fail;
                        if (key_is(k0, k1, "data") && !spans[i].start && c.p - v0 >= 4 && *v0 == '[') {
                            if (!copy && !(copy = malloc(len + 1)))
                                goto fail;
                            spans[i] = (span_t){v0, c.p};
                        }
                    } while (scan_eat(&c, ','));
                    if (!scan_eat(&c, '}'))
                        goto fail;
                }
            }
            if (!scan_eat(&c, ','))
                break;
        }
        if (!scan_eat(&c, ']'))
            goto fail;
    } while (scan_eat(&c, ','));
    if (!scan_eat(&c, '}') || !copy)
        goto fail;
    memcpy(copy, text, len);
    copy[len] = '\0';
    for (size_t i = 0; i < max_spans; i++)
        if (spans[i].start) {
            size_t off = (size_t)(spans[i].start - text), n = (size_t)(spans[i].end - spans[i].start);
            memcpy(copy + off, "null", 4);
            memset(copy + off + 4, ' ', n - 4);
        }
    return copy;
fail:
    free(copy);
    memset(spans, 0, max_spans * sizeof *spans);
    return NULL;
}

static int decode_binary(sink_t *s)
{
    const input_t *in = s->in;
    const unsigned char *p = in->bin;

    for (size_t i = 0; i < in->count; i++, p += in->type->size) {
        double v;
        switch (in->type->cls) {
        case T_BOOL:
            if (*p > 1)
                return mdl_err_set(s->err, -EPROTO, "input '%s': element %zu: BOOL byte %u is not 0 or 1",
                                   in->name, i, *p);
            v = *p;
            break;
        case T_INT:
            if (in->type->size == 1) {
                int8_t x; memcpy(&x, p, 1); v = x;
            } else if (in->type->size == 2) {
                int16_t x; memcpy(&x, p, 2); v = x;
            } else if (in->type->size == 4) {
                int32_t x; memcpy(&x, p, 4); v = x;
            } else {
                int64_t x; memcpy(&x, p, 8); v = (double)x;
            }
            break;
        case T_UINT:
            if (in->type->size == 1) {
                v = *p;
            } else if (in->type->size == 2) {
                uint16_t x; memcpy(&x, p, 2); v = x;
            } else if (in->type->size == 4) {
                uint32_t x; memcpy(&x, p, 4); v = x;
            } else {
                uint64_t x; memcpy(&x, p, 8); v = (double)x;
            }
            break;
        default: /* T_FLOAT; BYTES never reaches here */
            if (in->type->size == 4) {
                float x; memcpy(&x, p, 4); v = x;
            } else {
                memcpy(&v, p, 8);
            }
        }
        put(s, v);
    }
    return 0;
}

/* Reads an input object's name, datatype, shape, parameters and where its data is. */
static int check_input(const cJSON *o, size_t idx, const span_t *span, const unsigned char **bin,
                       size_t *bin_left, input_t *in, mdl_err_t *err)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(o, "datatype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(o, "shape");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(o, "parameters");
    const cJSON *bsize = NULL, *d;

    memset(in, 0, sizeof *in);
    in->col = -1;
    if (!cJSON_IsObject(o))
        return mdl_err_set(err, -EPROTO, "inputs[%zu]: must be an object", idx);
    if (!cJSON_IsString(name) || !name->valuestring[0])
        return mdl_err_set(err, -EPROTO, "inputs[%zu]: \"name\" must be a non-empty string", idx);
    in->name = name->valuestring;
    if (strlen(in->name) > 200)
        return mdl_err_set(err, -EPROTO, "inputs[%zu]: name longer than 200 bytes", idx);
    if (!cJSON_IsString(dt))
        return mdl_err_set(err, -EPROTO, "input '%s': \"datatype\" must be a string", in->name);
    if (!(in->type = find_datatype(dt->valuestring)))
        return mdl_err_set(err, -EPROTO,
                           "input '%s': unsupported datatype '%.32s' (BOOL, INT8..INT64, UINT8..UINT64, FP32, FP64, BYTES)",
                           in->name, dt->valuestring);
    if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) < 1 || cJSON_GetArraySize(shape) > MAX_DIMS)
        return mdl_err_set(err, -EPROTO, "input '%s': \"shape\" must be an array of 1 to %d dimensions", in->name,
                           MAX_DIMS);
    in->count = 1;
    cJSON_ArrayForEach(d, shape) {
        double v = cJSON_IsNumber(d) ? d->valuedouble : -1;
        if (v < 0 || v != floor(v) || v > 1e12)
            return mdl_err_set(err, -EPROTO, "input '%s': shape dimensions must be non-negative integers", in->name);
        in->dims[in->n_dims++] = (size_t)v;
        in->count = (size_t)v && in->count > SIZE_MAX / (size_t)v ? SIZE_MAX : in->count * (size_t)v;
    }
    if (params) {
        if (!cJSON_IsObject(params))
            return mdl_err_set(err, -EPROTO, "input '%s': \"parameters\" must be an object", in->name);
        bsize = cJSON_GetObjectItemCaseSensitive(params, "binary_data_size");
    }
    in->data = cJSON_GetObjectItemCaseSensitive(o, "data");
    if (span && span->start) { /* the tree holds a null in its place */
        in->span = span->start;
        in->span_end = span->end;
    }
    if (bsize) {
        double v = cJSON_IsNumber(bsize) ? bsize->valuedouble : -1;
        if (in->data)
            return mdl_err_set(err, -EPROTO, "input '%s': has both \"data\" and binary_data_size", in->name);
        if (v < 0 || v != floor(v))
            return mdl_err_set(err, -EPROTO, "input '%s': binary_data_size must be a non-negative integer", in->name);
        if (!in->type->size)
            return mdl_err_set(err, -EPROTO, "input '%s': binary data is not supported for %s", in->name,
                               in->type->name);
        if (in->count == SIZE_MAX || (double)in->count * (double)in->type->size != v)
            return mdl_err_set(err, -EPROTO, "input '%s': binary_data_size is %.0f bytes, but shape x %s needs %zu",
                               in->name, v, in->type->name, in->count * in->type->size);
        if (v > (double)*bin_left)
            return mdl_err_set(err, -EPROTO, "input '%s': binary_data_size %.0f exceeds the %zu bytes of binary data left",
                               in->name, v, *bin_left);
        in->bin = *bin;
        *bin += (size_t)v;
        *bin_left -= (size_t)v;
    } else if (!in->data) {
        return mdl_err_set(err, -EPROTO, "input '%s': has neither \"data\" nor a binary_data_size parameter", in->name);
    }
    return 0;
}

/* "outputs": [{"name": ..., "parameters": {"binary_data": bool}}]; absent or empty = all. */
static int parse_outputs(const mdl_model_t *m, const cJSON *outputs, bool binary_default, mdl_v2_infer_t *r,
                         mdl_err_t *err)
{
    mdl_output_t kinds[MDL_V2_MAX_OUTPUTS];
    const char *names[MDL_V2_MAX_OUTPUTS];
    size_t n = mdl_v2_model_outputs(m, kinds, names, NULL);
    const cJSON *o;
    size_t idx = 0;

    if (outputs && !cJSON_IsArray(outputs))
        return mdl_err_set(err, -EPROTO, "\"outputs\" must be an array");
    if (!outputs || cJSON_GetArraySize(outputs) == 0) {
        for (size_t i = 0; i < n; i++)
            r->outputs[r->n_outputs++] = (mdl_v2_output_t){kinds[i], names[i], binary_default};
        return 0;
    }
    cJSON_ArrayForEach(o, outputs) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(o, "parameters");
        const cJSON *bin = params ? cJSON_GetObjectItemCaseSensitive(params, "binary_data") : NULL;
        size_t i;
        if (!cJSON_IsObject(o) || !cJSON_IsString(name))
            return mdl_err_set(err, -EPROTO, "outputs[%zu]: must be an object with a string \"name\"", idx);
        for (i = 0; i < n && strcmp(names[i], name->valuestring) != 0; i++)
            ;
        if (i == n)
            return mdl_err_set(err, -EPROTO, "unknown output '%.64s': this model has %s%s%s%s%s", name->valuestring,
                               names[0], n > 1 ? ", " : "", n > 1 ? names[1] : "", n > 2 ? ", " : "",
                               n > 2 ? names[2] : "");
        for (size_t j = 0; j < r->n_outputs; j++)
            if (r->outputs[j].kind == kinds[i])
                return mdl_err_set(err, -EPROTO, "output '%s' is requested twice", names[i]);
        if (params && !cJSON_IsObject(params))
            return mdl_err_set(err, -EPROTO, "output '%s': \"parameters\" must be an object", names[i]);
        if (bin && !cJSON_IsBool(bin))
            return mdl_err_set(err, -EPROTO, "output '%s': binary_data must be true or false", names[i]);
        r->outputs[r->n_outputs++] = (mdl_v2_output_t){kinds[i], names[i], bin ? cJSON_IsTrue(bin) : binary_default};
        idx++;
    }
    return 0;
}

static int parse_root(const mdl_model_t *m, const cJSON *root, const span_t *spans, size_t n_spans,
                      const unsigned char *bin, size_t bin_len, size_t max_rows, mdl_v2_infer_t *r,
                      mdl_err_t *err)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(root, "parameters");
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(root, "inputs");
    const cJSON *bout = NULL, *o;
    size_t nf = m->n_features, n_inputs, idx = 0;
    input_t *ins = NULL;
    bool matrix;
    int rc;

    if (!cJSON_IsObject(root))
        return mdl_err_set(err, -EPROTO, "the inference request must be a JSON object");
    if (id && !cJSON_IsString(id))
        return mdl_err_set(err, -EPROTO, "\"id\" must be a string");
    if (id && !(r->id = strdup(id->valuestring)))
        return mdl_err_set(err, -ENOMEM, "out of memory");
    if (params) {
        if (!cJSON_IsObject(params))
            return mdl_err_set(err, -EPROTO, "\"parameters\" must be an object");
        bout = cJSON_GetObjectItemCaseSensitive(params, "binary_data_output");
        if (bout && !cJSON_IsBool(bout))
            return mdl_err_set(err, -EPROTO, "parameter binary_data_output must be true or false");
    }
    if (!cJSON_IsArray(inputs) || cJSON_GetArraySize(inputs) == 0)
        return mdl_err_set(err, -EPROTO, "\"inputs\" must be a non-empty array");
    n_inputs = (size_t)cJSON_GetArraySize(inputs);
    if (n_inputs > nf + 1)
        return mdl_err_set(err, -EPROTO, "%zu inputs, but this model has %zu features", n_inputs, nf);
    if ((rc = parse_outputs(m, cJSON_GetObjectItemCaseSensitive(root, "outputs"), bout && cJSON_IsTrue(bout), r, err)) < 0)
        return rc;
    if (!(ins = calloc(n_inputs, sizeof *ins)))
        return mdl_err_set(err, -ENOMEM, "out of memory");
    cJSON_ArrayForEach(o, inputs) {
        if ((rc = check_input(o, idx, idx < n_spans ? &spans[idx] : NULL, &bin, &bin_len, &ins[idx], err)) < 0)
            goto out;
        idx++;
    }
    if (bin_len) {
        rc = mdl_err_set(err, -EPROTO, "%zu bytes of binary data follow the last input's", bin_len);
        goto out;
    }
    /* The matrix form, or one input per feature. */
    matrix = n_inputs == 1 && strcmp(ins[0].name, "input") == 0 && mdl_model_feature_index(m, "input") < 0;
    if (matrix) {
        input_t *in = &ins[0];
        if (in->n_dims != 2 || in->dims[1] != nf) {
            rc = mdl_err_set(err, -EPROTO, "input 'input': shape must be [rows, %zu] (this model's features)", nf);
            goto out;
        }
        r->n_rows = in->dims[0];
    } else {
        for (size_t i = 0; i < n_inputs; i++) {
            input_t *in = &ins[i];
            if ((in->col = mdl_model_feature_index(m, in->name)) < 0) {
                rc = mdl_err_set(err, -EPROTO,
                                 "unknown input '%.64s': this model takes 'input' [rows, %zu] or one input per feature, by feature name",
                                 in->name, nf);
                goto out;
            }
            for (size_t j = 0; j < i; j++)
                if (ins[j].col == in->col) {
                    rc = mdl_err_set(err, -EPROTO, "input '%s' is given twice", in->name);
                    goto out;
                }
            if (in->n_dims > 2 || (in->n_dims == 2 && in->dims[1] != 1)) {
                rc = mdl_err_set(err, -EPROTO, "input '%s': a feature input has shape [rows] or [rows, 1]", in->name);
                goto out;
            }
            if (i > 0 && in->dims[0] != r->n_rows) {
                rc = mdl_err_set(err, -EPROTO, "input '%s': %zu rows, but input '%s' has %zu", in->name, in->dims[0],
                                 ins[0].name, r->n_rows);
                goto out;
            }
            r->n_rows = in->dims[0];
        }
    }
    if (r->n_rows == 0 || r->n_rows > max_rows) {
        rc = mdl_err_set(err, -EPROTO, "%zu rows: between 1 and %zu are accepted", r->n_rows, max_rows);
        goto out;
    }
    if (!(r->rows = malloc(r->n_rows * (nf ? nf : 1) * sizeof(double)))) {
        rc = mdl_err_set(err, -ENOMEM, "out of memory for %zu rows", r->n_rows);
        goto out;
    }
    if (!matrix)
        for (size_t i = 0; i < r->n_rows * nf; i++)
            r->rows[i] = NAN; /* features without an input are missing */
    for (size_t i = 0; i < n_inputs; i++) {
        input_t *in = &ins[i];
        sink_t s = {m, in, matrix ? r->rows : r->rows + in->col, matrix ? 1 : nf, 0, err};
        if ((rc = in->span ? decode_span(&s) : in->data ? decode_json(&s) : decode_binary(&s)) < 0)
            goto out;
    }
    rc = 0;
out:
    free(ins);
    return rc;
}

int mdl_v2_infer_parse(const mdl_model_t *m, const char *body, size_t len, size_t json_len,
                       size_t max_rows, mdl_v2_infer_t *ret, mdl_err_t *reterr)
{
    mdl_v2_infer_t r = {0};
    size_t n_spans = m->n_features + 1; /* more inputs than that are refused anyway */
    span_t *spans;
    char *lifted;
    const char *text;
    cJSON *root;
    int rc;

    if (json_len > len)
        return mdl_err_set(reterr, -EPROTO, "Inference-Header-Content-Length %zu exceeds the body's %zu bytes",
                           json_len, len);
    if (!(spans = calloc(n_spans, sizeof *spans)))
        return mdl_err_set(reterr, -ENOMEM, "out of memory");
    lifted = lift_data(body, json_len, spans, n_spans);
    text = lifted ? lifted : body;
    root = cJSON_ParseWithLength(text, json_len);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= text && at <= text + json_len ? (size_t)(at - text) : 0;
        free(lifted);
        free(spans);
        return mdl_err_set(reterr, -EBADMSG, "malformed JSON at byte %zu%s", off,
                           json_len ? "" : " (empty body)");
    }
    rc = parse_root(m, root, spans, lifted ? n_spans : 0, (const unsigned char *)body + json_len, len - json_len,
                    max_rows, &r, reterr);
    cJSON_Delete(root);
    free(lifted);
    free(spans);
    if (rc < 0) {
        mdl_v2_infer_done(&r);
        return rc;
    }
    *ret = r;
    return 0;
}

void mdl_v2_infer_done(mdl_v2_infer_t *r)
{
    free(r->id);
    free(r->rows);
    r->id = NULL;
    r->rows = NULL;
}

/* ---- encoding ---- */

static void put_json_string(mdl_buf_t *out, const char *s)
{
    cJSON *item = cJSON_CreateString(s);
    char *text = item ? cJSON_PrintUnformatted(item) : NULL;

    if (text)
        mdl_buf_puts(out, text);
    else
        out->failed = true;
    free(text);
    cJSON_Delete(item);
}

int mdl_v2_infer_encode(const mdl_v2_infer_t *r, const char *model_name, long version,
                        const double *const *values, const size_t *widths, char **ret_body,
                        size_t *ret_len, size_t *ret_json_len, mdl_err_t *reterr)
{
    mdl_buf_t out = {0};
    size_t json_len;
    char num[24];

    mdl_buf_puts(&out, "{\"model_name\":");
    put_json_string(&out, model_name);
    mdl_buf_printf(&out, ",\"model_version\":\"%ld\"", version);
    if (r->id) {
        mdl_buf_puts(&out, ",\"id\":");
        put_json_string(&out, r->id);
    }
    mdl_buf_puts(&out, ",\"outputs\":[");
    for (size_t o = 0; o < r->n_outputs; o++) {
        const mdl_v2_output_t *spec = &r->outputs[o];
        size_t n = r->n_rows * widths[o];
        const char *dt = output_datatype(spec->kind);
        for (size_t i = 0; i < n; i++)
            if (!isfinite(values[o][i])) {
                mdl_buf_done(&out);
                return mdl_err_set(reterr, -ERANGE, "output '%s' for row %zu is not finite (inputs out of range?)",
                                   spec->name, i / widths[o]);
            }
        mdl_buf_printf(&out, "%s{\"name\":\"%s\",\"datatype\":\"%s\",\"shape\":[", o ? "," : "", spec->name, dt);
        mdl_buf_append(&out, num, mdl_fmt_uint(num, r->n_rows));
        if (widths[o] > 1) {
            mdl_buf_puts(&out, ",");
            mdl_buf_append(&out, num, mdl_fmt_uint(num, widths[o]));
        }
        if (spec->binary) {
            mdl_buf_puts(&out, "],\"parameters\":{\"binary_data_size\":");
            mdl_buf_append(&out, num, mdl_fmt_uint(num, n * 8)); /* FP64 and INT64 */
            mdl_buf_puts(&out, "}}");
            continue;
        }
        mdl_buf_puts(&out, "],\"data\":[");
        for (size_t i = 0; i < n; i++) {
            if (i)
                mdl_buf_puts(&out, ",");
            if (spec->kind == MDL_OUTPUT_LEAF)
                mdl_buf_printf(&out, "%lld", (long long)values[o][i]);
            else
                mdl_json_put_double(&out, values[o][i]);
        }
        mdl_buf_puts(&out, "]}");
    }
    mdl_buf_puts(&out, "]}");
    json_len = out.len;
    /* Binary outputs follow the JSON in output order, little-endian as the host is
     * (the extension assumes it; modeld builds for little-endian targets). */
    for (size_t o = 0; o < r->n_outputs; o++) {
        size_t n = r->n_rows * widths[o];
        if (!r->outputs[o].binary)
            continue;
        if (r->outputs[o].kind == MDL_OUTPUT_LEAF) {
            for (size_t i = 0; i < n; i++) {
                int64_t x = (int64_t)values[o][i];
                mdl_buf_append(&out, (const char *)&x, sizeof x);
            }
        } else {
            mdl_buf_append(&out, (const char *)values[o], n * sizeof(double));
        }
    }
    if (out.failed) {
        mdl_buf_done(&out);
        return mdl_err_set(reterr, -ENOMEM, "out of memory");
    }
    *ret_body = mdl_buf_steal(&out, ret_len);
    *ret_json_len = json_len;
    return 0;
}
