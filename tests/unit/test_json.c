/* models/json: grammar, numbers, strings, errors with positions, DOM access, getters. */
#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "models/json.h"
#include "tests/unit/check.h"

/* Parses s (without its NUL: the parser must not rely on one) at depth 64. */
static int parse(const char *s, mdl_json_doc_t **doc, mdl_err_t *err)
{
    size_t n = strlen(s);
    char *copy = malloc(n ? n : 1); /* exact size, so ASAN catches any over-read */
    int r;

    memcpy(copy, s, n);
    r = mdl_json_parse(copy, n, 64, doc, err);
    free(copy);
    return r;
}

static void test_scalars(void)
{
    static const struct {
        const char *text;
        mdl_json_type_t type;
    } cases[] = {
        {"null", MDL_JSON_NULL}, {"true", MDL_JSON_BOOL}, {"false", MDL_JSON_BOOL},
        {" \t\r\n7 \n", MDL_JSON_NUMBER}, {"\"x\"", MDL_JSON_STRING}, {"[]", MDL_JSON_ARRAY},
        {"{}", MDL_JSON_OBJECT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        mdl_json_doc_t *doc = NULL;
        mdl_err_t err = {0};
        CHECK_EQ_INT(parse(cases[i].text, &doc, &err), 0);
        if (!doc)
            continue;
        CHECK_EQ_INT(mdl_json_doc_root(doc)->type, cases[i].type);
        CHECK_EQ_INT(mdl_json_doc_nodes(doc), 1);
        doc = mdl_json_doc_free(doc);
        CHECK(doc == NULL);
    }
    mdl_json_doc_t *doc = NULL;
    CHECK_EQ_INT(parse("true", &doc, NULL), 0);
    CHECK(mdl_json_doc_root(doc)->u.boolean == true);
    mdl_json_doc_free(doc);
    CHECK(mdl_json_doc_free(NULL) == NULL);
}

/* Each literal must read back as exactly the double written with hex-float notation (the
 * values Python's float() gives for the same text). */
static void test_numbers_round_trip(void)
{
    static const struct {
        const char *text;
        double want;
    } cases[] = {
        {"0", 0.0},
        {"-0", -0.0},
        {"0.1", 0x1.999999999999ap-4},
        {"-2.5e-3", -0x1.47ae147ae147bp-9},
        {"1E2", 100.0},
        {"1e+2", 100.0},
        {"5e-324", 0x0.0000000000001p-1022},
        {"2.2250738585072014e-308", DBL_MIN},
        {"1.7976931348623157e308", DBL_MAX},
        {"0.30000000000000004", 0x1.3333333333334p-2},
        {"123456789012345678901234567890", 0x1.8ee90ff6c373ep+96},
        {"1e-400", 0.0}, /* underflow is not an error: the nearest double is 0 */
        /* longer than the parser's stack buffer */
        {"0.1000000000000000000000000000000000000000000000000000000000000000000000000000001",
         0x1.999999999999ap-4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        mdl_json_doc_t *doc = NULL;
        mdl_err_t err = {0};
        int r = parse(cases[i].text, &doc, &err);
        CHECK_EQ_INT(r, 0);
        if (r < 0) {
            fprintf(stderr, "  %s: %s\n", cases[i].text, err.msg);
            continue;
        }
        const mdl_json_t *v = mdl_json_doc_root(doc);
        CHECK_EQ_INT(v->type, MDL_JSON_NUMBER);
        CHECK(memcmp(&v->u.num, &cases[i].want, sizeof(double)) == 0);
        if (memcmp(&v->u.num, &cases[i].want, sizeof(double)) != 0)
            fprintf(stderr, "  %s -> %a, want %a\n", cases[i].text, v->u.num, cases[i].want);
        mdl_json_doc_free(doc);
    }
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* The parser has an exact fast path for short mantissas and small exponents; every number
 * must read back as the same double libc's strtod gives, in both paths. */
static void test_numbers_match_strtod(void)
{
    char text[128];
    int mismatches = 0;

    for (int i = 0; i < 200000; i++) {
        uint64_t bits = rng_next();
        double d;
        switch (i % 5) {
        case 0: /* any finite double, shortest-ish and full precision */
            memcpy(&d, &bits, sizeof d);
            if (!isfinite(d))
                continue;
            snprintf(text, sizeof text, "%.*g", 1 + (int)(rng_next() % 17), d);
            break;
        case 1: /* integers of every size */
            snprintf(text, sizeof text, "%s%llu", bits & 1 ? "-" : "",
                     (unsigned long long)(rng_next() >> (rng_next() % 64)));
            break;
        case 2: /* decimals around the 2^53 mantissa edge with small exponents */
            snprintf(text, sizeof text, "%llu.%llue%d", (unsigned long long)(bits % 100000000u),
                     (unsigned long long)(rng_next() % 100000000000u), (int)(rng_next() % 61) - 30);
            break;
        case 3: /* values in [0, 1) as Python's repr writes them */
            d = (double)(bits >> 11) / 9007199254740992.0;
            snprintf(text, sizeof text, "%.17g", d);
            break;
        default: /* short mantissas, exponents near the exact-power limit */
            snprintf(text, sizeof text, "%llue%d", (unsigned long long)(bits % 10000000000000000u),
                     (int)(rng_next() % 51) - 25);
            break;
        }
        double want = strtod(text, NULL);
        if (!isfinite(want))
            continue;
        mdl_json_doc_t *doc = NULL;
        if (mdl_json_parse(text, strlen(text), 4, &doc, NULL) < 0) {
            if (mismatches++ < 5)
                CHECK_FAIL_("%s: refused", text);
            continue;
        }
        double got = mdl_json_doc_root(doc)->u.num;
        if (memcmp(&got, &want, sizeof got) != 0 && mismatches++ < 5)
            CHECK_FAIL_("%s: %a, strtod %a", text, got, want);
        mdl_json_doc_free(doc);
    }
    CHECK_EQ_INT(mismatches, 0);
}

static void test_strings(void)
{
    static const struct {
        const char *text;
        const char *want;
        size_t len;
    } cases[] = {
        {"\"\"", "", 0},
        {"\"plain\"", "plain", 5},
        {"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t", 8},
        {"\"\\u0041\\u00e9\\u20AC\"", "A\xc3\xa9\xe2\x82\xac", 6},
        {"\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80", 4},           /* surrogate pair */
        {"\"\\uDBFF\\uDFFF\"", "\xf4\x8f\xbf\xbf", 4},           /* U+10FFFF */
        {"\"a\\u0000b\"", "a\0b", 3},                            /* embedded NUL */
        {"\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        mdl_json_doc_t *doc = NULL;
        mdl_err_t err = {0};
        int r = parse(cases[i].text, &doc, &err);
        CHECK_EQ_INT(r, 0);
        if (r < 0) {
            fprintf(stderr, "  case %zu: %s\n", i, err.msg);
            continue;
        }
        const mdl_json_t *v = mdl_json_doc_root(doc);
        CHECK_EQ_INT(v->type, MDL_JSON_STRING);
        CHECK_EQ_INT(v->len, cases[i].len);
        CHECK(memcmp(v->u.str, cases[i].want, cases[i].len) == 0);
        CHECK(v->u.str[v->len] == '\0');
        mdl_json_doc_free(doc);
    }
}

/* Bad documents: the code, the byte offset and what the message says was expected. */
static void test_errors(void)
{
    static const struct {
        const char *text;
        const char *where; /* must appear in the message */
        const char *what;  /* must appear in the message */
    } cases[] = {
        {"", "byte 0 (line 1, col 1)", "expected a JSON value, got end of input"},
        {"   ", "byte 3", "expected a JSON value"},
        {"[1,]", "byte 3", "trailing comma before ']'"},
        {"{\"a\":1,}", "byte 7", "trailing comma before '}'"},
        {"{\"a\" 1}", "byte 5", "expected ':' after an object key, got '1'"},
        {"[1 2]", "byte 3", "expected ',' or ']' after an array element, got '2'"},
        {"{\"a\":1 \"b\":2}", "byte 7", "expected ',' or '}' after an object member"},
        {"{1:2}", "byte 1", "expected a string key or '}', got '1'"},
        {"[1,2", "byte 4", "got end of input"},
        {"01", "byte 0", "leading zeros"},
        {"-01", "byte 1", "leading zeros"},
        {"1.", "byte 2", "a digit after the decimal point"},
        {"1.e5", "byte 2", "a digit after the decimal point"},
        {"1e", "byte 2", "a digit in the exponent"},
        {"1e+", "byte 3", "a digit in the exponent"},
        {"-", "byte 1", "expected a digit, got end of input"},
        {"+1", "byte 0", "expected a JSON value"},
        {".5", "byte 0", "expected a JSON value"},
        {"NaN", "byte 0", "expected a JSON value"},
        {"Infinity", "byte 0", "expected a JSON value"},
        {"nul", "byte 0", "expected 'null'"},
        {"tru", "byte 0", "expected 'true'"},
        {"1e400", "byte 0", "out of range for a double"},
        {"-1e400", "byte 0", "out of range for a double"},
        {"[1] x", "byte 4", "expected end of input after the top-level value, got 'x'"},
        {"\xef\xbb\xbf{}", "byte 0", "expected a JSON value"}, /* a BOM is not JSON */
        {"\"abc", "byte 4", "unterminated string (opened at byte 0)"},
        {"\"a\x01\"", "byte 2", "control character 0x01"},
        {"\"a\nb\"", "byte 2", "control character 0x0a"},
        {"\"\\x\"", "byte 1", "invalid escape"},
        {"\"\\", "byte 2", "unterminated escape"},
        {"\"\\u12\"", "byte 1", "4 hex digits"},
        {"\"\\u12g4\"", "byte 1", "4 hex digits"},
        {"\"\\ud800\"", "byte 1", "unpaired high surrogate \\ud800"},
        {"\"\\ud800\\u0041\"", "byte 1", "unpaired high surrogate"},
        {"\"\\udc00\"", "byte 1", "unpaired low surrogate \\udc00"},
        {"\"\xc0\x80\"", "byte 1", "invalid UTF-8 byte 0xc0"},         /* overlong NUL */
        {"\"\xe0\x80\xaf\"", "byte 1", "invalid UTF-8"},               /* overlong '/' */
        {"\"\xed\xa0\x80\"", "byte 1", "invalid UTF-8"},               /* encoded surrogate */
        {"\"\xf4\x90\x80\x80\"", "byte 1", "invalid UTF-8"},           /* above U+10FFFF */
        {"\"\xf5\x80\x80\x80\"", "byte 1", "invalid UTF-8"},
        {"\"\xe2\x82\"", "byte 1", "invalid UTF-8"},                   /* truncated */
        {"\"\x80\"", "byte 1", "invalid UTF-8 byte 0x80"},             /* lone continuation */
        {"{\n  \"a\": [1,\n    2 x]}", "byte 19 (line 3, col 7)", "got 'x'"},
        {"{\"coef\": [[1, 2], [3, 1e999]]}", "in coef[1][1]", "out of range"},
        {"{\"a\": {\"b\": [true, {\"c\": nope}]}}", "in a.b[1].c", "expected 'null'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        mdl_json_doc_t *doc = NULL;
        mdl_err_t err = {0};
        int r = parse(cases[i].text, &doc, &err);
        CHECK_EQ_INT(r, -EBADMSG);
        CHECK_EQ_INT(err.code, -EBADMSG);
        CHECK(doc == NULL);
        if (!strstr(err.msg, cases[i].where) || !strstr(err.msg, cases[i].what)) {
            CHECK_FAIL_("case %zu: message \"%s\" lacks \"%s\" / \"%s\"", i, err.msg, cases[i].where,
                        cases[i].what);
        }
    }
}

/* The input is a (ptr, len) span: a NUL inside or bytes after len are not the document. */
static void test_span(void)
{
    mdl_json_doc_t *doc = NULL;
    mdl_err_t err = {0};

    CHECK_EQ_INT(mdl_json_parse("[1]\0[2]", 7, 8, &doc, &err), -EBADMSG);
    CHECK(strstr(err.msg, "byte 3") && strstr(err.msg, "byte 0x00"));
    CHECK_EQ_INT(mdl_json_parse("12345", 2, 8, &doc, &err), 0);
    CHECK_EQ_INT(mdl_json_doc_root(doc)->u.num, 12);
    mdl_json_doc_free(doc);
}

static void test_depth(void)
{
    mdl_json_doc_t *doc = NULL;
    mdl_err_t err = {0};

    CHECK_EQ_INT(mdl_json_parse("[[[1]]]", 7, 3, &doc, &err), 0);
    mdl_json_doc_free(doc);
    CHECK_EQ_INT(mdl_json_parse("[[[1]]]", 7, 2, &doc, &err), -EBADMSG);
    CHECK(strstr(err.msg, "nesting deeper than 2 levels") != NULL);
    CHECK(strstr(err.msg, "byte 2") != NULL);
    CHECK_EQ_INT(mdl_json_parse("{\"a\":{}}", 8, 1, &doc, &err), -EBADMSG);
    CHECK_EQ_INT(mdl_json_parse("7", 1, 0, &doc, &err), 0); /* scalars need no depth */
    mdl_json_doc_free(doc);

    /* A hostile depth is refused at the hard cap, whatever the caller allows. */
    size_t n = 5000;
    char *deep = malloc(2 * n);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    CHECK_EQ_INT(mdl_json_parse(deep, 2 * n, 100000, &doc, &err), -EBADMSG);
    CHECK(strstr(err.msg, "nesting deeper than 1000 levels") != NULL);
    free(deep);
}

static const char *const DOC =
    "{\"name\": \"m\", \"n\": 3, \"x\": 2.5, \"flag\": true, \"nul\": \"a\\u0000b\",\n"
    " \"w\": [1, 2, 3], \"mixed\": [[1], {\"k\": [2, 3]}, 4, \"s\"], \"empty\": {},\n"
    " \"obj\": {\"a\": 1, \"b\": [10, 20]}}";

static void test_access(void)
{
    mdl_json_doc_t *doc = NULL;
    mdl_err_t err = {0};
    const mdl_json_t *root, *v;
    size_t count;

    CHECK_EQ_INT(parse(DOC, &doc, &err), 0);
    if (!doc)
        return;
    root = mdl_json_doc_root(doc);
    CHECK_EQ_INT(root->type, MDL_JSON_OBJECT);
    CHECK_EQ_INT(root->len, 9);
    CHECK_EQ_INT(root->span, mdl_json_doc_nodes(doc));

    v = mdl_json_find(root, "name");
    CHECK(v && v->type == MDL_JSON_STRING && strcmp(v->u.str, "m") == 0);
    CHECK(mdl_json_find(root, "nam") == NULL);
    CHECK(mdl_json_find(root, "names") == NULL);
    CHECK(mdl_json_find(mdl_json_find(root, "w"), "x") == NULL); /* not an object */

    /* all-scalar array: direct indexing */
    v = mdl_json_find(root, "w");
    CHECK_EQ_INT(v->len, 3);
    CHECK_EQ_INT(mdl_json_at(v, 2)->u.num, 3);
    CHECK(mdl_json_at(v, 3) == NULL);
    count = 0;
    MDL_JSON_FOREACH(it, v) {
        CHECK_EQ_INT(it->u.num, (double)(count + 1));
        count++;
    }
    CHECK_EQ_INT(count, 3);

    /* nested array: walking by span */
    v = mdl_json_find(root, "mixed");
    CHECK_EQ_INT(v->len, 4);
    CHECK_EQ_INT(mdl_json_at(v, 0)->type, MDL_JSON_ARRAY);
    CHECK_EQ_INT(mdl_json_at(mdl_json_at(v, 0), 0)->u.num, 1);
    CHECK_EQ_INT(mdl_json_at(mdl_json_find(mdl_json_at(v, 1), "k"), 1)->u.num, 3);
    CHECK_EQ_INT(mdl_json_at(v, 2)->u.num, 4);
    CHECK_EQ_STR(mdl_json_at(v, 3)->u.str, "s");
    count = 0;
    MDL_JSON_FOREACH(it, v)
        count++;
    CHECK_EQ_INT(count, 4);

    /* members in order; the value follows its key */
    static const char *const keys[] = {"name", "n", "x", "flag", "nul", "w", "mixed", "empty", "obj"};
    count = 0;
    MDL_JSON_FOREACH_MEMBER(k, root) {
        CHECK_EQ_STR(k->u.str, keys[count]);
        CHECK(mdl_json_find(root, k->u.str) == k + 1);
        count++;
    }
    CHECK_EQ_INT(count, 9);
    count = 0;
    MDL_JSON_FOREACH_MEMBER(k, mdl_json_find(root, "empty"))
        count++;
    CHECK_EQ_INT(count, 0);
    /* the value after "obj" is the last node: its subtree ends the document */
    v = mdl_json_find(root, "obj");
    CHECK(v + v->span == root + root->span);
    CHECK_EQ_INT(mdl_json_at(mdl_json_find(v, "b"), 1)->u.num, 20);
    CHECK_EQ_INT(v->offset, (uint32_t)(strstr(DOC, "{\"a\"") - DOC));
    mdl_json_doc_free(doc);
}

static void test_getters(void)
{
    mdl_json_doc_t *doc = NULL;
    mdl_err_t err = {0};
    const mdl_json_t *root, *v;
    double d, arr[3];
    long long i;
    bool b;
    const char *s;

    CHECK_EQ_INT(parse(DOC, &doc, &err), 0);
    if (!doc)
        return;
    root = mdl_json_doc_root(doc);

    CHECK_EQ_INT(mdl_json_get_number(root, "", "x", &d, &err), 0);
    CHECK_EQ_INT(d, 2.5);
    CHECK_EQ_INT(mdl_json_get_int(root, "", "n", 0, 10, &i, &err), 0);
    CHECK_EQ_INT(i, 3);
    CHECK_EQ_INT(mdl_json_get_bool(root, "", "flag", &b, &err), 0);
    CHECK(b);
    CHECK_EQ_INT(mdl_json_get_string(root, "", "name", &s, &err), 0);
    CHECK_EQ_STR(s, "m");
    CHECK_EQ_INT(mdl_json_get(root, "", "obj", MDL_JSON_OBJECT, &v, &err), 0);
    CHECK_EQ_INT(mdl_json_numbers(mdl_json_find(root, "w"), "w", arr, 3, &err), 0);
    CHECK_EQ_INT(arr[0] + arr[1] + arr[2], 6);

    /* errors name the field path and what was wrong; out-params stay untouched */
    d = -1;
    CHECK_EQ_INT(mdl_json_get_number(root, "", "intercept", &d, &err), -EBADMSG);
    CHECK(strstr(err.msg, "intercept: required field is missing") != NULL);
    CHECK_EQ_INT(d, -1);
    CHECK_EQ_INT(mdl_json_get_number(v, "obj", "b", &d, &err), -EBADMSG);
    CHECK(strstr(err.msg, "obj.b: expected a number, got an array") != NULL);
    CHECK_EQ_INT(mdl_json_get_int(root, "", "x", 0, 10, &i, &err), -EBADMSG);
    CHECK(strstr(err.msg, "x: expected an integer in [0, 10], got 2.5") != NULL);
    CHECK_EQ_INT(mdl_json_get_int(root, "", "n", 4, 10, &i, &err), -EBADMSG);
    CHECK_EQ_INT(mdl_json_get_string(root, "", "nul", &s, &err), -EBADMSG);
    CHECK(strstr(err.msg, "nul: must not contain \\u0000") != NULL);
    CHECK_EQ_INT(mdl_json_get_bool(root, "", "name", &b, &err), -EBADMSG);
    CHECK(strstr(err.msg, "name: expected a boolean, got a string") != NULL);
    CHECK_EQ_INT(mdl_json_get_number(mdl_json_find(root, "w"), "w", "a", &d, &err), -EBADMSG);
    CHECK(strstr(err.msg, "w: expected an object, got an array") != NULL);
    CHECK_EQ_INT(mdl_json_numbers(mdl_json_find(root, "w"), "w", arr, 2, &err), -EBADMSG);
    CHECK(strstr(err.msg, "w: expected 2 numbers, got 3") != NULL);
    CHECK_EQ_INT(mdl_json_numbers(mdl_json_find(root, "mixed"), "mixed", arr, 4, &err), -EBADMSG);
    CHECK(strstr(err.msg, "mixed[0]: expected a number, got an array") != NULL);
    CHECK_EQ_INT(mdl_json_expect(root, MDL_JSON_ARRAY, "", &err), -EBADMSG);
    CHECK(strstr(err.msg, "(document): expected an array, got an object (byte 0)") != NULL);

    static const char *const all[] = {"name", "n", "x", "flag", "nul", "w", "mixed", "empty",
                                      "obj", NULL};
    static const char *const some[] = {"name", "n", "x", "flag", "nul", "w", "mixed", "empty", NULL};
    CHECK_EQ_INT(mdl_json_check_members(root, "", all, &err), 0);
    CHECK_EQ_INT(mdl_json_check_members(root, "", some, &err), -EBADMSG);
    CHECK(strstr(err.msg, "obj: unknown field") != NULL);
    mdl_json_doc_free(doc);

    static const char *const ab[] = {"a", "b", NULL};
    CHECK_EQ_INT(parse("{\"x\": {\"a\": 1, \"b\": 2, \"a\": 3}}", &doc, &err), 0);
    CHECK_EQ_INT(mdl_json_check_members(mdl_json_find(mdl_json_doc_root(doc), "x"), "x", ab, &err),
                 -EBADMSG);
    CHECK(strstr(err.msg, "x.a: duplicate field (byte 23)") != NULL);
    mdl_json_doc_free(doc);

    char buf[32];
    CHECK_EQ_STR(mdl_json_path_key(buf, sizeof buf, "", "a"), "a");
    CHECK_EQ_STR(mdl_json_path_key(buf, sizeof buf, "p[1]", "a"), "p[1].a");
    CHECK_EQ_STR(mdl_json_path_index(buf, sizeof buf, "coef", 7), "coef[7]");
    CHECK_EQ_STR(mdl_json_path_index(buf, sizeof buf, NULL, 0), "[0]");
    CHECK_EQ_STR(mdl_json_path_index(buf, sizeof buf, "t", 18446744073709551615u), "t[18446744073709551615]");
    CHECK_EQ_STR(mdl_json_path_key(buf, sizeof buf, NULL, "k"), "k");
    /* Truncated like snprintf: at most size - 1 bytes and a NUL. */
    char small[8];
    CHECK_EQ_STR(mdl_json_path_key(small, sizeof small, "parent", "key"), "parent.");
    CHECK_EQ_STR(mdl_json_path_key(small, sizeof small, "abcdefghij", "key"), "abcdefg");
    CHECK_EQ_STR(mdl_json_path_index(small, sizeof small, "tree", 1234), "tree[12");
    CHECK_EQ_STR(mdl_json_path_index(small, 1, "tree", 1), "");
}

/* A large number-heavy document (the GBDT case) grows the node array several times. */
static void test_large(void)
{
    size_t n = 200000, cap = n * 24 + 64, used = 0;
    char *text = malloc(cap);
    mdl_json_doc_t *doc = NULL;
    mdl_err_t err = {0};
    const mdl_json_t *arr;
    size_t i = 0;
    int ok = 1;

    used += (size_t)snprintf(text + used, cap - used, "{\"split\": [");
    for (size_t k = 0; k < n; k++)
        used += (size_t)snprintf(text + used, cap - used, "%s%zu.25", k ? "," : "", k);
    used += (size_t)snprintf(text + used, cap - used, "], \"tail\": [[], {}]}");
    CHECK_EQ_INT(mdl_json_parse(text, used, 8, &doc, &err), 0);
    free(text);
    if (!doc)
        return;
    arr = mdl_json_find(mdl_json_doc_root(doc), "split");
    CHECK_EQ_INT(arr->len, n);
    CHECK_EQ_INT(mdl_json_at(arr, 123456)->u.num, 123456.25);
    MDL_JSON_FOREACH(it, arr)
        ok &= it->u.num == (double)i++ + 0.25;
    CHECK(ok);
    CHECK_EQ_INT(mdl_json_doc_nodes(doc), n + 7);
    CHECK_EQ_INT(mdl_json_find(mdl_json_doc_root(doc), "tail")->len, 2);
    mdl_json_doc_free(doc);
}

int main(void)
{
    RUN(test_scalars);
    RUN(test_numbers_round_trip);
    RUN(test_numbers_match_strtod);
    RUN(test_strings);
    RUN(test_errors);
    RUN(test_span);
    RUN(test_depth);
    RUN(test_access);
    RUN(test_getters);
    RUN(test_large);
    return check_summary();
}
