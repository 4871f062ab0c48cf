/* The request-body decoder: rows, objects, columns, categories, numbers, and errors that
 * name the field or the byte. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "handlers/tabular.h"
#include "check.h"
#include "lr_model.h"

static mdl_model_t *model;

/* Three features: two numeric and a categorical "city" with two categories. */
static void load_model(void)
{
    model = test_lr_model("{\"format\":\"modeld-lr\",\"format_version\":1,\"estimator\":\"LogisticRegression\","
          "\"task\":\"binary\",\"classes\":[\"no\",\"yes\"],"
          "\"features\":[{\"name\":\"age\"},{\"name\":\"héight\"},"
          "{\"name\":\"city\",\"categories\":[\"paris\",\"rome\",\"7\"]}],"
          "\"preprocess\":{\"type\":\"column_transformer\",\"remainder\":\"passthrough\","
          "\"transformers\":[{\"columns\":[2],\"step\":{\"type\":\"one_hot_encoder\",\"handle_unknown\":\"ignore\"}}]},"
          "\"coef\":[[1,2,3,4,5]],\"intercept\":[0]}");
}

static int parse(const char *body, mdl_tabular_body_t *b, mdl_err_t *err)
{
    memset(err, 0, sizeof *err);
    return mdl_tabular_body_parse(model, body, strlen(body), 100, b, err);
}

static void test_positional_and_named_agree(void)
{
    mdl_tabular_body_t a, b;
    mdl_err_t err;

    CHECK_EQ_INT(parse("{\"instances\": [[1.5, -2e3, \"rome\"], [0, null, \"nowhere\"]]}", &a, &err), 0);
    CHECK_EQ_INT(parse(" {\"instances\":[{\"city\":\"rome\",\"age\":1.5,\"h\\u00e9ight\":-2000},"
                       "{\"age\":0}]} \n", &b, &err), 0);
    CHECK_EQ_INT(a.n_rows, 2);
    CHECK_EQ_INT(b.n_rows, 2);
    CHECK(!a.columnar);
    CHECK_EQ_INT(a.output, MDL_OUTPUT_VALUE);
    CHECK_NEAR(a.rows[0], 1.5, 0);
    CHECK_NEAR(a.rows[1], -2000, 0);
    CHECK_NEAR(a.rows[2], 1, 0);    /* "rome" is category 1 */
    CHECK(isnan(a.rows[4]));        /* null */
    CHECK_NEAR(a.rows[5], -1, 0);   /* unknown category */
    for (int i = 0; i < 3; i++)
        CHECK_NEAR(a.rows[i], b.rows[i], 0);
    CHECK(isnan(b.rows[4]) && isnan(b.rows[5])); /* absent keys are missing */
    mdl_tabular_body_done(&a);
    mdl_tabular_body_done(&b);
}

static void test_columnar_and_output(void)
{
    mdl_tabular_body_t b;
    mdl_err_t err;

    CHECK_EQ_INT(parse("{\"output\":\"margin\",\"inputs\":{\"age\":[1,2,3],\"city\":[\"paris\",7,null]}}", &b, &err), 0);
    CHECK(b.columnar);
    CHECK_EQ_INT(b.output, MDL_OUTPUT_MARGIN);
    CHECK_EQ_INT(b.n_rows, 3);
    CHECK_NEAR(b.rows[3], 2, 0);
    CHECK(isnan(b.rows[4]));        /* column not given */
    CHECK_NEAR(b.rows[2], 0, 0);    /* paris */
    CHECK_NEAR(b.rows[5], 2, 0);    /* the number 7 matches category "7" */
    CHECK(isnan(b.rows[8]));
    mdl_tabular_body_done(&b);
    CHECK_EQ_INT(parse("{\"inputs\": [[1, 2, \"paris\"]]}", &b, &err), 0);
    CHECK(b.columnar);
    mdl_tabular_body_done(&b);
}

static void test_numbers_exact(void)
{
    static const char *texts[] = {"0", "-0", "1", "0.1", "123456.789e-3", "1e22", "1e23", "9007199254740993",
                                  "2.2250738585072014e-308", "4.9e-324", "1.7976931348623157e308",
                                  "0.30000000000000004", "-12.5E+2", "3.14159265358979323846264338327950288"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        double v = -1;
        size_t n = mdl_json_parse_number(texts[i], texts[i] + strlen(texts[i]), &v);
        CHECK_EQ_INT(n, strlen(texts[i]));
        if (v != strtod(texts[i], NULL) || signbit(v) != signbit(strtod(texts[i], NULL)))
            CHECK_FAIL_("%s parsed as %.17g", texts[i], v);
    }
    static const char *bad[] = {"+1", ".5", "-", "1.", "1e", "1e+", "-.5", "x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        double v;
        size_t n = mdl_json_parse_number(bad[i], bad[i] + strlen(bad[i]), &v);
        if (n == strlen(bad[i]))
            CHECK_FAIL_("'%s' accepted as a number", bad[i]);
    }
}

/* Random decimal texts (1-25 digits, a point anywhere, exponents up to +-40) read exactly
 * as strtod reads them. */
static void test_numbers_random(void)
{
    uint64_t state = 42;
    int bad = 0;

    for (int i = 0; i < 200000 && bad < 5; i++) {
        char text[64];
        size_t n = 0, n_digits;
        double got, want;
        state ^= state << 13, state ^= state >> 7, state ^= state << 17;
        n_digits = 1 + state % 25;
        if (state & 1 << 30)
            text[n++] = '-';
        for (size_t d = 0; d < n_digits; d++) {
            unsigned digit = (unsigned)((state >> (d * 2 % 60)) % 10);
            if (d == 1 && (state >> 20) % 3 == 0)
                text[n++] = '.'; /* "d.ddd": leading zeros only before a point */
            else if (d == 0 && n_digits > 1 && digit == 0 && (state >> 20) % 3 != 0)
                digit = 1;       /* JSON has no leading zeros */
            text[n++] = (char)('0' + digit);
        }
        if ((state >> 40) % 2)
            n += (size_t)snprintf(text + n, sizeof text - n, "e%d", (int)((state >> 44) % 81) - 40);
        text[n] = '\0';
        want = strtod(text, NULL);
        if (mdl_json_parse_number(text, text + n, &got) != n ||
            memcmp(&got, &want, sizeof got) != 0) {
            CHECK_FAIL_("'%s': got %.17g, strtod %.17g", text, got, want);
            bad++;
        }
    }
}

static void test_errors(void)
{
    static const struct {
        const char *body;
        int code;
        const char *needle;
    } cases[] = {
        {"", -EBADMSG, "empty body"},
        {"{\"instances\": [[1, 2, \"x\"]", -EBADMSG, "byte 26 (end of body)"},
        {"{\"instances\": [[1, 2, \"x\"]]} trailing", -EBADMSG, "after the JSON value"},
        {"{\"instances\": [[NaN, 2, \"x\"]]}", -EBADMSG, "byte 16"},
        {"{\"instances\": [[Infinity, 2, \"x\"]]}", -EBADMSG, "malformed"},
        {"{\"instances\": [[01, 2, \"x\"]]}", -EBADMSG, "malformed"},
        {"{\"instances\": [[1, 2]]}", -EPROTO, "instances[0]: expected 3 feature values, got 2"},
        {"{\"instances\": [[1, 2, 3, 4]]}", -EPROTO, "instances[0]: expected 3 feature values, got more"},
        {"{\"instances\": [[1, 2, \"x\"], {\"weight\": 1}]}", -EPROTO, "instances[1]: unknown feature 'weight'"},
        {"{\"instances\": [[1, \"tall\", \"x\"]]}", -EPROTO, "instances[0].h\xc3\xa9ight: expected a number or null, got a string"},
        {"{\"instances\": [[true, 2, \"x\"]]}", -EPROTO, "instances[0].age: expected a number or null, got a boolean"},
        {"{\"instances\": [[[1], 2, \"x\"]]}", -EPROTO, "got an array"},
        {"{\"instances\": [[1e999, 2, \"x\"]]}", -EPROTO, "instances[0].age: number out of range"},
        {"{\"instances\": []}", -EPROTO, "at least one instance"},
        {"{\"instances\": {}}", -EPROTO, "expected an array of instances"},
        {"{\"instances\": [5]}", -EPROTO, "instances[0]: expected an array of feature values or an object"},
        {"{}", -EPROTO, "exactly one of"},
        {"{\"instances\": [[1,2,\"x\"]], \"inputs\": [[1,2,\"x\"]]}", -EPROTO, "exactly one of"},
        {"{\"instance\": [[1,2,\"x\"]]}", -EPROTO, "unknown field 'instance'"},
        {"{\"instances\": [[1,2,\"x\"]], \"output\": \"logit\"}", -EPROTO, "output: expected"},
        {"{\"inputs\": {\"age\": [1, 2], \"city\": [\"x\"]}}", -EPROTO, "inputs.city: 1 values"},
        {"[1, 2]", -EPROTO, "must be a JSON object"},
        {"{\"instances\": [[1, 2, \"\\ud800\"]]}", -EBADMSG, "surrogate"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mdl_tabular_body_t b;
        mdl_err_t err;
        int r = parse(cases[i].body, &b, &err);
        if (r != cases[i].code || !strstr(err.msg, cases[i].needle))
            CHECK_FAIL_("body %s: got %d '%s', want %d containing '%s'", cases[i].body, r, err.msg,
                        cases[i].code, cases[i].needle);
        if (r == 0)
            mdl_tabular_body_done(&b);
    }
}

/* A column the pipeline drops is "ignored": any scalar is accepted there. */
static void test_ignored_column(void)
{
    char dir[64], path[128];
    FILE *f;
    mdl_err_t err = {0};
    mdl_model_t *dropped = NULL;
    mdl_tabular_body_t b;
    const char *body = "{\"instances\": [[1.5, \"free text\"], [2, true], {\"age\": 3, \"note\": null}]}";

    snprintf(dir, sizeof dir, "/tmp/modeld-test-tabular-drop-%ld", (long)getpid());
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/lr.json", dir);
    f = fopen(path, "w");
    fputs("{\"format\":\"modeld-lr\",\"format_version\":1,\"estimator\":\"LogisticRegression\","
          "\"task\":\"binary\",\"classes\":[0,1],\"features\":[{\"name\":\"age\"},{\"name\":\"note\"}],"
          "\"preprocess\":{\"type\":\"column_transformer\",\"remainder\":\"drop\","
          "\"transformers\":[{\"columns\":[0],\"step\":{\"type\":\"passthrough\"}}]},"
          "\"coef\":[[2]],\"intercept\":[0]}", f);
    fclose(f);
    CHECK_EQ_INT(mdl_model_load_dir(dir, NULL, &dropped, &err), 0);
    unlink(path);
    rmdir(dir);
    if (!dropped)
        return;
    CHECK(!dropped->features[0].ignored);
    CHECK(dropped->features[1].ignored);
    CHECK_EQ_INT(mdl_tabular_body_parse(dropped, body, strlen(body), 10, &b, &err), 0);
    CHECK_EQ_INT(b.n_rows, 3);
    CHECK_NEAR(b.rows[4], 3, 0);
    mdl_tabular_body_done(&b);
    /* Still JSON: a broken string is an error, and so is a non-scalar. */
    body = "{\"instances\": [[1.5, [1]]]}";
    CHECK_EQ_INT(mdl_tabular_body_parse(dropped, body, strlen(body), 10, &b, &err), -EPROTO);
    mdl_model_unref(dropped);
}

static void test_row_limit(void)
{
    mdl_tabular_body_t b;
    mdl_err_t err = {0};
    const char *body = "{\"instances\": [[1,2,null],[1,2,null],[1,2,null]]}";

    CHECK_EQ_INT(mdl_tabular_body_parse(model, body, strlen(body), 2, &b, &err), -EPROTO);
    CHECK(strstr(err.msg, "more than 2 instances") != NULL);
}

/* Numbers inside rows (the decoder's own fast path for plain decimals) read exactly as
 * strtod reads them, and malformed ones are refused there as they are alone. */
static void test_row_numbers(void)
{
    static const char *bad[] = {"01", "-01", "1.", "-", "1.2.3", "1e", ".5", "+1", "00.5", "1.e5", "--1"};
    uint64_t state = 7;
    int failed = 0;

    for (int i = 0; i < 100000 && failed < 5; i++) {
        char text[64], body[160];
        size_t n = 0, n_digits;
        mdl_tabular_body_t b;
        mdl_err_t err;
        double want;
        state ^= state << 13, state ^= state >> 7, state ^= state << 17;
        n_digits = 1 + state % 22;
        if (state & 1 << 30)
            text[n++] = '-';
        for (size_t d = 0; d < n_digits; d++) {
            unsigned digit = (unsigned)((state >> (d * 2 % 60)) % 10);
            if (d == 1 + (state >> 50) % 6 && d < n_digits - 1 && (state >> 20) % 3 == 0)
                text[n++] = '.';
            else if (d == 0 && digit == 0 && n_digits > 1)
                digit = 1 + (unsigned)(state >> 56) % 9;
            text[n++] = (char)('0' + digit);
        }
        if ((state >> 40) % 4 == 0)
            n += (size_t)snprintf(text + n, sizeof text - n, "e%d", (int)((state >> 44) % 41) - 20);
        text[n] = '\0';
        want = strtod(text, NULL);
        snprintf(body, sizeof body, "{\"instances\":[[%s,%s, \"rome\"]]}", text, text);
        if (parse(body, &b, &err) != 0) {
            CHECK_FAIL_("'%s': %s", text, err.msg);
            failed++;
            continue;
        }
        if (memcmp(&b.rows[0], &want, sizeof want) != 0 || memcmp(&b.rows[1], &want, sizeof want) != 0) {
            CHECK_FAIL_("'%s': got %.17g, strtod %.17g", text, b.rows[0], want);
            failed++;
        }
        mdl_tabular_body_done(&b);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char body[80];
        mdl_tabular_body_t b;
        mdl_err_t err;
        snprintf(body, sizeof body, "{\"instances\":[[%s, 1, \"rome\"]]}", bad[i]);
        CHECK_EQ_INT(parse(body, &b, &err), -EBADMSG);
    }
}

static void test_shortest_doubles(void)
{
    static const double values[] = {0.1, 1.0 / 3, 1e-300, 123456789.0, 0.9999999999999999, -2.5};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        mdl_buf_t out = {0};
        mdl_json_put_double(&out, values[i]);
        CHECK(strtod(out.data, NULL) == values[i]);
        mdl_buf_done(&out);
    }
    mdl_buf_t out = {0};
    mdl_json_put_double(&out, 0.1);
    CHECK_EQ_STR(out.data, "0.1");
    mdl_buf_done(&out);
}

/* Exact digits (as Python's repr picks them: the shortest, then the nearest, ties to even),
 * around the edges of the 128-bit integer path (1e-5 .. 2^53) and on both sides of it. */
static void test_doubles_exact(void)
{
    static const struct { double v; const char *text; } cases[] = {
        {0.9999999987918338, "0.9999999987918338"},  /* the bench's prediction */
        {683613893139024.75, "683613893139024.8"},   /* a tie at 16 digits: to even */
        {0.99826758548329975, "0.9982675854832997"}, /* looks like a tie at 17 digits; is not */
        {0.1 + 0.2, "0.30000000000000004"},
        {1.0 / 3, "0.3333333333333333"},
        {17.99, "17.99"},
        {1e-5, "1e-5"},
        {9007199254740991.0, "9007199254740991"},    /* 2^53 - 1: the last integer on the path */
        {9007199254740992.0, "9007199254740992"},    /* 2^53: printf's path */
        {7.62939453125e-06, "7.62939453125e-6"},     /* 2^-17: printf's path */
        {-0.5, "-0.5"},
        {123456.0, "123456"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mdl_buf_t out = {0};
        mdl_json_put_double(&out, cases[i].v);
        CHECK_EQ_STR(out.data, cases[i].text);
        mdl_buf_done(&out);
    }
}

/* Against printf's shortest of %.15g/%.16g/%.17g: same value, never longer, valid JSON. */
static void test_doubles_random(void)
{
    uint64_t state = 0x9E3779B97F4A7C15ULL;
    int bad = 0;

    for (int i = 0; i < 300000 && bad < 5; i++) {
        double v;
        char ref[40];
        mdl_buf_t out = {0};
        double back;
        state ^= state << 13, state ^= state >> 7, state ^= state << 17;
        switch (i % 4) {
        case 0: memcpy(&v, &state, sizeof v); break;                 /* any bit pattern */
        case 1: v = (double)(state >> 11) / 9007199254740992.0; break; /* a probability */
        case 2: v = (double)(int64_t)(state >> 20) - 2e12; break;     /* an integer */
        default: v = ldexp((double)(state >> 11), (int)(state % 200) - 150); break;
        }
        if (!isfinite(v))
            continue;
        for (int digits = 15; digits <= 17; digits++) {
            snprintf(ref, sizeof ref, "%.*g", digits, v);
            if (strtod(ref, NULL) == v)
                break;
        }
        mdl_json_put_double(&out, v);
        if (mdl_json_parse_number(out.data, out.data + out.len, &back) != out.len || back != v ||
            out.len > strlen(ref)) {
            CHECK_FAIL_("%.17g printed as '%s' (printf: '%s')", v, out.data, ref);
            bad++;
        }
        mdl_buf_done(&out);
    }
}

int main(void)
{
    load_model();
    if (!model) {
        printf("test_tabular.c: 0 passed, 1 failed\n");
        return 1;
    }
    RUN(test_positional_and_named_agree);
    RUN(test_columnar_and_output);
    RUN(test_numbers_exact);
    RUN(test_numbers_random);
    RUN(test_row_numbers);
    RUN(test_errors);
    RUN(test_ignored_column);
    RUN(test_row_limit);
    RUN(test_shortest_doubles);
    RUN(test_doubles_exact);
    RUN(test_doubles_random);
    mdl_model_unref(model);
    return check_summary();
}
