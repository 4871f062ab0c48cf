/* The V2 infer decoder and encoder: matrix and per-feature inputs, datatypes, categories,
 * binary tensor data, the errors that name the input, and the response framing. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "handlers/v2_infer.h"
#include "check.h"
#include "lr_model.h"

static mdl_model_t *model;

/* Three features: "age", "height" and a categorical "city" (paris, rome, 7). */
static void load_model(void)
{
    model = test_lr_model("{\"format\":\"modeld-lr\",\"format_version\":1,\"estimator\":\"LogisticRegression\","
          "\"task\":\"binary\",\"classes\":[\"no\",\"yes\"],"
          "\"features\":[{\"name\":\"age\"},{\"name\":\"height\"},"
          "{\"name\":\"city\",\"categories\":[\"paris\",\"rome\",\"7\"]}],"
          "\"preprocess\":{\"type\":\"column_transformer\",\"remainder\":\"passthrough\","
          "\"transformers\":[{\"columns\":[2],\"step\":{\"type\":\"one_hot_encoder\",\"handle_unknown\":\"ignore\"}}]},"
          "\"coef\":[[1,2,3,4,5]],\"intercept\":[0]}");
}

static int parse_bin(const char *json, const void *bin, size_t bin_len, mdl_v2_infer_t *r, mdl_err_t *err)
{
    size_t n = strlen(json);
    char *body = malloc(n + bin_len + 1);
    int rc;

    memcpy(body, json, n);
    if (bin_len)
        memcpy(body + n, bin, bin_len);
    body[n + bin_len] = '\0';
    memset(err, 0, sizeof *err);
    rc = mdl_v2_infer_parse(model, body, n + bin_len, n, 100, r, err);
    free(body);
    return rc;
}

static int parse(const char *json, mdl_v2_infer_t *r, mdl_err_t *err)
{
    return parse_bin(json, NULL, 0, r, err);
}

static void test_matrix_flat_and_nested(void)
{
    mdl_v2_infer_t a, b;
    mdl_err_t err;

    CHECK_EQ_INT(parse("{\"id\":\"x\\\"1\",\"inputs\":[{\"name\":\"input\",\"shape\":[2,3],\"datatype\":\"FP64\","
                       "\"data\":[1.5,-2,7,0,null,2.5]}]}", &a, &err), 0);
    CHECK_EQ_INT(parse("{\"inputs\":[{\"name\":\"input\",\"shape\":[2,3],\"datatype\":\"FP64\","
                       "\"data\":[[1.5,-2,7],[0,null,2.5]]}]}", &b, &err), 0);
    CHECK_EQ_STR(a.id, "x\"1");
    CHECK(b.id == NULL);
    CHECK_EQ_INT(a.n_rows, 2);
    CHECK_NEAR(a.rows[0], 1.5, 0);
    CHECK_NEAR(a.rows[1], -2, 0);
    CHECK_NEAR(a.rows[2], 2, 0);     /* 7 is the category "7", index 2 */
    CHECK(isnan(a.rows[4]));         /* null = missing */
    CHECK_NEAR(a.rows[5], -1, 0);    /* 2.5 is no category */
    for (int i = 0; i < 6; i++)
        CHECK(a.rows[i] == b.rows[i] || (isnan(a.rows[i]) && isnan(b.rows[i])));
    /* no "outputs": every output the model has, JSON */
    CHECK_EQ_INT(a.n_outputs, 2);
    CHECK_EQ_STR(a.outputs[0].name, "value");
    CHECK_EQ_STR(a.outputs[1].name, "margin");
    CHECK(!a.outputs[0].binary);
    mdl_v2_infer_done(&a);
    mdl_v2_infer_done(&b);
}

static void test_per_feature_inputs(void)
{
    mdl_v2_infer_t r;
    mdl_err_t err;

    CHECK_EQ_INT(parse("{\"inputs\":[{\"name\":\"city\",\"shape\":[2],\"datatype\":\"BYTES\",\"data\":[\"rome\",\"oslo\"]},"
                       "{\"name\":\"age\",\"shape\":[2,1],\"datatype\":\"INT32\",\"data\":[[3],[-4]]}]}", &r, &err), 0);
    CHECK_EQ_INT(r.n_rows, 2);
    CHECK_NEAR(r.rows[0], 3, 0);
    CHECK(isnan(r.rows[1]));         /* height: no input, missing */
    CHECK_NEAR(r.rows[2], 1, 0);     /* rome */
    CHECK_NEAR(r.rows[3], -4, 0);
    CHECK_NEAR(r.rows[5], -1, 0);    /* oslo: unknown category */
    mdl_v2_infer_done(&r);
}

static void test_datatypes(void)
{
    mdl_v2_infer_t r;
    mdl_err_t err;

    CHECK_EQ_INT(parse("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,3],\"datatype\":\"FP32\",\"data\":[0.1,1e300,3]}]}",
                       &r, &err), 0);
    CHECK(r.rows[0] == (double)0.1f);
    CHECK(isinf(r.rows[1]));         /* FP32 reads 1e300 as float does */
    mdl_v2_infer_done(&r);
    CHECK_EQ_INT(parse("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,3],\"datatype\":\"BOOL\",\"data\":[true,false,true]}]}",
                       &r, &err), 0);
    CHECK_NEAR(r.rows[0], 1, 0);
    CHECK_NEAR(r.rows[1], 0, 0);
    mdl_v2_infer_done(&r);
    CHECK_EQ_INT(parse("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,3],\"datatype\":\"UINT8\",\"data\":[1,2,256]}]}",
                       &r, &err), -EPROTO);
    CHECK(strstr(err.msg, "element 2") && strstr(err.msg, "UINT8"));
    CHECK_EQ_INT(parse("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,3],\"datatype\":\"BOOL\",\"data\":[1,0,1]}]}",
                       &r, &err), -EPROTO);
    CHECK(strstr(err.msg, "a number, not a BOOL"));
}

static void test_binary_inputs(void)
{
    mdl_v2_infer_t r;
    mdl_err_t err;
    int32_t i32[3] = {5, -6, 7};
    int64_t i64[2] = {-9, 1LL << 40};
    float f32[3] = {0.25f, NAN, 1.5f};
    char json[512];

    snprintf(json, sizeof json, "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,3],\"datatype\":\"INT32\","
             "\"parameters\":{\"binary_data_size\":12}}]}");
    CHECK_EQ_INT(parse_bin(json, i32, sizeof i32, &r, &err), 0);
    CHECK_NEAR(r.rows[0], 5, 0);
    CHECK_NEAR(r.rows[1], -6, 0);
    CHECK_NEAR(r.rows[2], 2, 0);     /* 7 -> category "7" */
    mdl_v2_infer_done(&r);
    /* Two binary inputs, taken in order; one JSON input between them. */
    snprintf(json, sizeof json, "{\"inputs\":[{\"name\":\"height\",\"shape\":[2],\"datatype\":\"INT64\","
             "\"parameters\":{\"binary_data_size\":16}},{\"name\":\"city\",\"shape\":[2],\"datatype\":\"BYTES\","
             "\"data\":[\"paris\",\"7\"]},{\"name\":\"age\",\"shape\":[2],\"datatype\":\"FP32\","
             "\"parameters\":{\"binary_data_size\":8}}],\"parameters\":{\"binary_data_output\":true},"
             "\"outputs\":[{\"name\":\"margin\"},{\"name\":\"value\",\"parameters\":{\"binary_data\":false}}]}");
    {
        char bin[24];
        memcpy(bin, i64, 16);
        memcpy(bin + 16, f32, 8);
        CHECK_EQ_INT(parse_bin(json, bin, sizeof bin, &r, &err), 0);
    }
    CHECK_NEAR(r.rows[0], 0.25, 0);
    CHECK_NEAR(r.rows[1], -9, 0);
    CHECK_NEAR(r.rows[2], 0, 0);
    CHECK(isnan(r.rows[3]));
    CHECK_NEAR(r.rows[4], (double)(1LL << 40), 0);
    CHECK_NEAR(r.rows[5], 2, 0);
    CHECK_EQ_INT(r.n_outputs, 2);
    CHECK_EQ_STR(r.outputs[0].name, "margin");
    CHECK(r.outputs[0].binary);
    CHECK(!r.outputs[1].binary);
    mdl_v2_infer_done(&r);
    /* Sizes that do not add up. */
    snprintf(json, sizeof json, "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,3],\"datatype\":\"FP64\","
             "\"parameters\":{\"binary_data_size\":12}}]}");
    CHECK_EQ_INT(parse_bin(json, i32, sizeof i32, &r, &err), -EPROTO);
    CHECK(strstr(err.msg, "needs 24"));
    snprintf(json, sizeof json, "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,3],\"datatype\":\"INT32\","
             "\"parameters\":{\"binary_data_size\":12}}]}");
    CHECK_EQ_INT(parse_bin(json, i32, 8, &r, &err), -EPROTO);
    CHECK(strstr(err.msg, "exceeds the 8 bytes"));
    CHECK_EQ_INT(parse_bin(json, i64, 16, &r, &err), -EPROTO);
    CHECK(strstr(err.msg, "4 bytes of binary data follow"));
}

static void test_errors_name_the_problem(void)
{
    static const struct {
        const char *json, *mention;
        int code;
    } cases[] = {
        {"{\"inputs\":[", "malformed JSON", -EBADMSG},
        {"[]", "JSON object", -EPROTO},
        {"{\"inputs\":[{\"name\":\"input\",\"shape\":[1,3],\"datatype\":\"FP16\",\"data\":[1,2,3]}]}", "FP16", -EPROTO},
        {"{\"inputs\":[{\"name\":\"input\",\"shape\":[1,3],\"data\":[1,2,3]}]}", "datatype", -EPROTO},
        {"{\"inputs\":[{\"name\":\"input\",\"shape\":[1,-3],\"datatype\":\"FP64\",\"data\":[1,2,3]}]}", "non-negative", -EPROTO},
        {"{\"inputs\":[{\"name\":\"input\",\"shape\":[1,4],\"datatype\":\"FP64\",\"data\":[1,2,3,4]}]}", "[rows, 3]", -EPROTO},
        {"{\"inputs\":[{\"name\":\"input\",\"shape\":[2,3],\"datatype\":\"FP64\",\"data\":[1,2,3,4,5]}]}", "data has 5", -EPROTO},
        {"{\"inputs\":[{\"name\":\"input\",\"shape\":[2,3],\"datatype\":\"FP64\",\"data\":[[1,2,3],[4,5,[6]]]}]}", "an array", -EPROTO},
        {"{\"inputs\":[{\"name\":\"input\",\"shape\":[0,3],\"datatype\":\"FP64\",\"data\":[]}]}", "0 rows", -EPROTO},
        {"{\"inputs\":[{\"name\":\"age\",\"shape\":[2],\"datatype\":\"FP64\",\"data\":[1,2]},"
         "{\"name\":\"age\",\"shape\":[2],\"datatype\":\"FP64\",\"data\":[1,2]}]}", "twice", -EPROTO},
        {"{\"inputs\":[{\"name\":\"age\",\"shape\":[2,2],\"datatype\":\"FP64\",\"data\":[1,2,3,4]}]}", "[rows, 1]", -EPROTO},
        {"{\"inputs\":[{\"name\":\"age\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":[\"x\"]}]}", "'age' is numeric", -EPROTO},
        {"{\"inputs\":[{\"name\":\"input\",\"shape\":[1,3],\"datatype\":\"FP64\",\"data\":[1,2,3]}],"
         "\"outputs\":[{\"name\":\"leaf\"}]}", "unknown output 'leaf'", -EPROTO},
        {"{\"inputs\":[{\"name\":\"input\",\"shape\":[1,3],\"datatype\":\"FP64\",\"data\":[1,2,3]}],"
         "\"parameters\":{\"binary_data_output\":1}}", "binary_data_output", -EPROTO},
        {"{\"inputs\":[{\"name\":\"input\",\"shape\":[101,3],\"datatype\":\"FP64\",\"data\":[]}]}", "101 rows", -EPROTO},
        {"{\"inputs\":[{\"name\":\"input\",\"shape\":[1000000,1000000,1000000,1000000],\"datatype\":\"FP64\","
         "\"parameters\":{\"binary_data_size\":0}}]}", "binary_data_size", -EPROTO},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mdl_v2_infer_t r;
        mdl_err_t err;
        int rc = parse(cases[i].json, &r, &err);
        CHECK_EQ_INT(rc, cases[i].code);
        if (!strstr(err.msg, cases[i].mention))
            CHECK_FAIL_("case %zu: '%s' does not mention '%s'", i, err.msg, cases[i].mention);
    }
}

/* The data arrays are scanned without a tree unless the text is unusual; an escaped key
 * ("d\u0061ta") keeps the request on the tree path, which must read the same values. */
static void test_scanned_and_tree_paths_agree(void)
{
    static const char *const bodies[][2] = {
        {"{\"inputs\":[{\"name\":\"input\",\"shape\":[2,3],\"datatype\":\"FP32\",\"data\":[[0.1,-2e-3,7],[1e39,null,3]]}]}",
         "{\"inputs\":[{\"name\":\"input\",\"shape\":[2,3],\"datatype\":\"FP32\",\"d\\u0061ta\":[[0.1,-2e-3,7],[1e39,null,3]]}]}"},
        {"{\"id\":\"q\",\"inputs\":[{\"data\":[ 5 , -6 ,\n2 ],\"name\":\"input\",\"shape\":[1,3],\"datatype\":\"INT64\"}],\"x\":{\"data\":[1]}}",
         "{\"id\":\"q\",\"inputs\":[{\"d\\u0061ta\":[5,-6,2],\"name\":\"input\",\"shape\":[1,3],\"datatype\":\"INT64\"}],\"x\":{\"data\":[1]}}"},
    };

    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        mdl_v2_infer_t a, b;
        mdl_err_t err;
        CHECK_EQ_INT(parse(bodies[i][0], &a, &err), 0);
        CHECK_EQ_INT(parse(bodies[i][1], &b, &err), 0);
        CHECK_EQ_INT(a.n_rows, b.n_rows);
        for (size_t j = 0; j < a.n_rows * 3; j++)
            CHECK(a.rows[j] == b.rows[j] || (isnan(a.rows[j]) && isnan(b.rows[j])));
        mdl_v2_infer_done(&a);
        mdl_v2_infer_done(&b);
    }
    /* What the scanner does not take is worded by the tree path, with the same offsets. */
    {
        mdl_v2_infer_t r;
        mdl_err_t err;
        CHECK_EQ_INT(parse("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,3],\"datatype\":\"FP64\",\"data\":[1,\"x\",3]}]}",
                           &r, &err), -EPROTO);
        CHECK(strstr(err.msg, "element 1 is a string, not a FP64 value"));
        CHECK_EQ_INT(parse("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,3],\"datatype\":\"FP64\",\"data\":[1,2,3]}],\"x\":tru}",
                           &r, &err), -EBADMSG);
        CHECK(strstr(err.msg, "byte 80")); /* the 't' of tru, found in the lifted copy */
        CHECK_EQ_INT(parse("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,3],\"datatype\":\"FP64\",\"data\":[1,2,3,4]}]}",
                           &r, &err), -EPROTO);
        CHECK(strstr(err.msg, "shape holds 3 elements, data has 4"));
    }
}

static void test_encode(void)
{
    mdl_v2_infer_t r = {.id = "a\"b", .n_rows = 2, .n_outputs = 2,
                        .outputs = {{MDL_OUTPUT_VALUE, "value", false}, {MDL_OUTPUT_MARGIN, "margin", true}}};
    double value[2] = {0.25, 1.0 / 3}, marg[2] = {-1.5, 2};
    const double *values[2] = {value, marg};
    size_t widths[2] = {1, 1}, len, json_len;
    mdl_err_t err = {0};
    char *body;
    static const char want[] = "{\"model_name\":\"m\",\"model_version\":\"3\",\"id\":\"a\\\"b\",\"outputs\":["
                               "{\"name\":\"value\",\"datatype\":\"FP64\",\"shape\":[2],\"data\":[0.25,0.3333333333333333]},"
                               "{\"name\":\"margin\",\"datatype\":\"FP64\",\"shape\":[2],\"parameters\":{\"binary_data_size\":16}}]}";

    CHECK_EQ_INT(mdl_v2_infer_encode(&r, "m", 3, values, widths, &body, &len, &json_len, &err), 0);
    CHECK_EQ_INT(json_len, strlen(want));
    CHECK_EQ_INT(len, json_len + 16);
    CHECK(strncmp(body, want, json_len) == 0);
    CHECK_EQ_INT(memcmp(body + json_len, marg, 16), 0);
    free(body);
    marg[1] = NAN;
    CHECK_EQ_INT(mdl_v2_infer_encode(&r, "m", 3, values, widths, &body, &len, &json_len, &err), -ERANGE);
    CHECK(strstr(err.msg, "'margin' for row 1"));
}

int main(void)
{
    load_model();
    if (!model)
        return 1;
    RUN(test_matrix_flat_and_nested);
    RUN(test_per_feature_inputs);
    RUN(test_datatypes);
    RUN(test_binary_inputs);
    RUN(test_errors_name_the_problem);
    RUN(test_scanned_and_tree_paths_agree);
    RUN(test_encode);
    mdl_model_unref(model);
    return check_summary();
}
