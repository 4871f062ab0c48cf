/* The streamed :score-auc decoder: the same rows as JSON, NDJSON and CSV, fed whole or cut
 * at random places (as the socket cuts them), give bit-identical columns; errors name the
 * line or byte; limits hold. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "handlers/evalstream.h"
#include "server/buf.h"
#include "check.h"
#include "lr_model.h"

static mdl_model_t *model;

/* Binary LR on features "a", "b": p = sigmoid(a - 2b). */
static void load_model(void)
{
    model = test_lr_model("{\"format\":\"modeld-lr\",\"format_version\":1,\"estimator\":\"LogisticRegression\","
          "\"task\":\"binary\",\"classes\":[\"no\",\"yes\"],\"features\":[{\"name\":\"a\"},{\"name\":\"b\"}],"
          "\"coef\":[[1,-2]],\"intercept\":[0]}");
}

/* Feeds body in pieces of 1..max_piece bytes (0: whole), keeping the unconsumed tail as
 * the handler does. Returns 0 and fills cols (stream kept in *ret_s), or the error. */
static int run(mdl_eval_format_t fmt, const mdl_model_t *m, const char *body, size_t max_piece, size_t max_rows,
               mdl_evalstream_t **ret_s, mdl_eval_columns_t *cols, mdl_err_t *err)
{
    mdl_evalstream_t *s = mdl_evalstream_new(fmt, m, max_rows);
    mdl_buf_t work = {0};
    size_t len = strlen(body), at = 0;
    unsigned seed = 12345;
    long used;
    int r = 0;

    *ret_s = s;
    while (at < len) {
        size_t n = max_piece ? 1 + (seed = seed * 1103515245 + 12345) % max_piece : len;
        if (n > len - at)
            n = len - at;
        mdl_buf_append(&work, body + at, n);
        at += n;
        used = mdl_evalstream_feed(s, work.data, work.len, false, err);
        if (used < 0) {
            mdl_buf_done(&work);
            return (int)used;
        }
        memmove(work.data, work.data + used, work.len - (size_t)used);
        work.len -= (size_t)used;
    }
    used = mdl_evalstream_feed(s, work.data ? work.data : "", work.len, true, err);
    if (used < 0)
        r = (int)used;
    else
        r = mdl_evalstream_finish(s, cols, err);
    mdl_buf_done(&work);
    return r;
}

static int same_columns(const mdl_eval_columns_t *a, const mdl_eval_columns_t *b)
{
    if (a->n_rows != b->n_rows || a->width != b->width || !a->weights != !b->weights || !a->groups != !b->groups ||
        a->n_groups != b->n_groups)
        return 0;
    if (memcmp(a->scores, b->scores, a->n_rows * a->width * sizeof(double)) ||
        memcmp(a->labels, b->labels, a->n_rows * sizeof(double)))
        return 0;
    if (a->weights && memcmp(a->weights, b->weights, a->n_rows * sizeof(double)))
        return 0;
    /* Group indices are interned in order of first appearance: equal partitions. */
    return !a->groups || memcmp(a->groups, b->groups, a->n_rows * sizeof(uint32_t)) == 0;
}

static void make_bodies(size_t n, mdl_buf_t *json, mdl_buf_t *nd, mdl_buf_t *csv)
{
    mdl_buf_t inst = {0}, lab = {0}, w = {0}, g = {0};
    unsigned seed = 7;

    mdl_buf_puts(csv, "b,label,weight,group,a\r\n");
    for (size_t i = 0; i < n; i++) {
        double a = (int)((seed = seed * 1103515245 + 12345) % 2000) / 100.0 - 10;
        double b = (int)((seed = seed * 1103515245 + 12345) % 2000) / 100.0 - 10;
        int y = (seed >> 7) & 1;
        double wt = ((seed >> 9) % 30) / 10.0;
        unsigned grp = (seed >> 13) % 17;
        const char *sep = i ? "," : "";
        mdl_buf_printf(&inst, "%s[%.2f, %.2f]", sep, a, b);
        mdl_buf_printf(&lab, "%s%s", sep, y ? "\"yes\"" : "0");
        mdl_buf_printf(&w, "%s%.1f", sep, wt);
        mdl_buf_printf(&g, "%s\"g%u\"", sep, grp);
        mdl_buf_printf(nd, "{\"features\": {\"b\": %.2f, \"a\": %.2f}, \"label\": %s, \"weight\": %.1f, \"group\": \"g%u\"}\n",
                       b, a, y ? "true" : "false", wt, grp);
        if (i % 50 == 7)
            mdl_buf_puts(nd, "\n"); /* blank lines are skipped */
        mdl_buf_printf(csv, "%.2f,%s,%.1f,\"g%u\",%.2f\r\n", b, y ? "yes" : "0", wt, grp, a);
    }
    mdl_buf_printf(json, "{\"weights\": [%s], \"instances\": [%s],\n \"labels\": [%s], \"groups\": [%s], \"k\": 3}",
                   w.data, inst.data, lab.data, g.data);
    mdl_buf_done(&inst);
    mdl_buf_done(&lab);
    mdl_buf_done(&w);
    mdl_buf_done(&g);
}

static void test_formats_and_cuts_agree(void)
{
    mdl_buf_t bodies[3] = {{0}, {0}, {0}};
    const mdl_eval_format_t fmts[3] = {MDL_EVAL_JSON, MDL_EVAL_NDJSON, MDL_EVAL_CSV};
    mdl_evalstream_t *ref_s, *s;
    mdl_eval_columns_t ref, c;
    mdl_err_t err = {0};

    make_bodies(10000, &bodies[0], &bodies[1], &bodies[2]); /* more than one scoring batch */
    CHECK_EQ_INT(run(MDL_EVAL_JSON, model, bodies[0].data, 0, 1000000, &ref_s, &ref, &err), 0);
    CHECK_EQ_INT(ref.n_rows, 10000);
    CHECK(ref.weights && ref.groups && ref.n_groups == 17 && ref.width == 1);
    CHECK_NEAR(ref.k, 3, 0);
    /* p = sigmoid(a - 2b), from the first row of the body */
    for (int f = 0; f < 3; f++)
        for (size_t piece = 0; piece <= 4096; piece = piece ? piece * 8 : 1) {
            int r = run(fmts[f], model, bodies[f].data, piece, 1000000, &s, &c, &err);
            CHECK_EQ_INT(r, 0);
            if (r == 0 && !same_columns(&ref, &c))
                CHECK_FAIL_("format %d cut in pieces of up to %zu bytes: columns differ", f, piece);
            mdl_evalstream_free(s);
        }
    mdl_evalstream_free(ref_s);
    for (int f = 0; f < 3; f++)
        mdl_buf_done(&bodies[f]);
}

static void test_precomputed_multiclass(void)
{
    mdl_evalstream_t *s;
    mdl_eval_columns_t c;
    mdl_err_t err = {0};

    CHECK_EQ_INT(run(MDL_EVAL_JSON, NULL, "{\"scores\": [[0.2, 0.8, 0], [0.5,0.25,0.25]], \"labels\": [1, 0]}", 3, 10,
                     &s, &c, &err), 0);
    CHECK_EQ_INT(c.width, 3);
    CHECK_NEAR(c.scores[4], 0.25, 0);
    mdl_evalstream_free(s);
    CHECK_EQ_INT(run(MDL_EVAL_CSV, NULL, "label,score_1,score_0\n1,0.75,0.25\n", 2, 10, &s, &c, &err), 0);
    CHECK_EQ_INT(c.width, 2);
    CHECK_NEAR(c.scores[0], 0.25, 0);
    CHECK_NEAR(c.scores[1], 0.75, 0);
    mdl_evalstream_free(s);
}

/* Expects an error whose message contains want, fed in small pieces. */
static void expect_error(mdl_eval_format_t fmt, const mdl_model_t *m, const char *body, int code, const char *want)
{
    mdl_evalstream_t *s;
    mdl_eval_columns_t c;
    mdl_err_t err = {0};
    int r = run(fmt, m, body, 5, 3, &s, &c, &err);

    if (r != code || !strstr(err.msg, want))
        CHECK_FAIL_("body %.40s: got %d '%s', want %d '%s'", body, r, err.msg, code, want);
    mdl_evalstream_free(s);
}

static void test_errors(void)
{
    expect_error(MDL_EVAL_CSV, NULL, "score,label\n0.1,0\n0.2\n", -EPROTO, "line 3: expected 2 fields");
    expect_error(MDL_EVAL_CSV, NULL, "score,label,x\n", -EPROTO, "column 'x'");
    expect_error(MDL_EVAL_CSV, NULL, "", -EPROTO, "empty input");
    expect_error(MDL_EVAL_CSV, NULL, "score,label\n\"0.1,0\n", -EBADMSG, "line 2: unbalanced quote");
    expect_error(MDL_EVAL_NDJSON, NULL, "{\"score\": 1, \"label\": 0}\n{\"score\": 1 \"label\": 0}\n", -EBADMSG,
                 "line 2");
    expect_error(MDL_EVAL_NDJSON, NULL, "{\"score\": 1, \"label\": 0, \"weight\": 1}\n{\"score\": 1, \"label\": 0}\n",
                 -EPROTO, "line 2: \"weight\" missing");
    expect_error(MDL_EVAL_NDJSON, model, "{\"features\": [1, 2, 3], \"label\": 0}\n", -EPROTO, "line 1: features");
    expect_error(MDL_EVAL_JSON, NULL, "{\"scores\": [0.1, 0.2], \"labels\": [1]}", -EPROTO, "1 labels for 2 scores");
    expect_error(MDL_EVAL_JSON, NULL, "{\"scores\": [0.1, 0.2], \"labels\": [1, 0], \"groups\": [1]}", -EPROTO,
                 "1 groups for 2 rows");
    expect_error(MDL_EVAL_JSON, NULL, "{\"scores\": [0.1, 0.2, 0.3, 0.4], \"labels\": [1]}", -E2BIG, "more than 3");
    expect_error(MDL_EVAL_JSON, NULL, "{\"scores\": [0.1, [0.2, 0.8]], \"labels\": [1, 0]}", -EPROTO, "earlier rows");
    expect_error(MDL_EVAL_JSON, NULL, "{\"scores\": [0.1], \"labels\": [\"yes\"]}", -EPROTO, "not a class label");
    expect_error(MDL_EVAL_JSON, NULL, "{\"scores\": [0.1], \"labels\": [1]} x", -EBADMSG, "after the JSON value");
    expect_error(MDL_EVAL_JSON, NULL, "{\"scores\": [0.1], \"labels\": [1]", -EBADMSG, "end of body");
    expect_error(MDL_EVAL_JSON, NULL, "{\"labels\": [1]}", -EPROTO, "\"instances\" or \"scores\" is required");
    expect_error(MDL_EVAL_JSON, model, "{\"instances\": [[1, 2]], \"scores\": [1], \"labels\": [1]}", -EPROTO,
                 "exactly one");
}

/* A syntax error quotes the bytes near it, and only bytes of the input: a streamed line
 * is a slice of a buffer with other data after it (fuzz_evalstream found the message read
 * past the slice, up to a NUL). */
static void test_error_quotes_only_input(void)
{
    const char text[] = "{\"features\": {\"a\" 1}}SECRET-AFTER-THE-SLICE";
    size_t len = strlen("{\"features\": {\"a\" 1}}");
    mdl_evalstream_t *s = mdl_evalstream_new(MDL_EVAL_NDJSON, model, 10);
    mdl_err_t err = {0};
    long r = mdl_evalstream_feed(s, text, len, true, &err);

    CHECK_EQ_INT(r, -EBADMSG);
    CHECK(strstr(err.msg, "line 1") != NULL);
    if (strstr(err.msg, "SECRET"))
        CHECK_FAIL_("message quotes bytes past the input: %s", err.msg);
    mdl_evalstream_free(s);
}

/* Mutated bodies cut at random places: every outcome is success or one of the documented
 * codes with a message, never a crash (run under ASan by make asan). */
static void test_random_mutations(void)
{
    static const char *const seeds[] = {
        "{\"instances\": [[1, 2], {\"a\": 3}], \"labels\": [1, \"no\"], \"weights\": [1, 2], \"groups\": [\"x\", 7], \"k\": 2}",
        "{\"scores\": [[0.2, 0.8], [0.5, 0.5]], \"labels\": [1, 0], \"task\": \"multiclass\", \"threshold\": 0.3}",
        "{\"features\": [1, 2], \"label\": 1, \"group\": 3}\n{\"score\": 0.5, \"label\": true}\n\n",
        "a,label,weight,group\n1,1,2,\"q\"\"1\"\n,0,1,q2\r\n3,yes,0.5,q3\n",
        "score_0,score_1,label\n0.1,0.9,1\n0.6,0.4,0\n"};
    const mdl_eval_format_t fmts[] = {MDL_EVAL_JSON, MDL_EVAL_JSON, MDL_EVAL_NDJSON, MDL_EVAL_CSV, MDL_EVAL_CSV};
    const char alphabet[] = "{}[]\",:\n\r 0123456789.-eE+truefalsnl\\u";
    unsigned seed = 99;
    int bad = 0;

    for (int iter = 0; iter < 6000; iter++) {
        size_t which = (size_t)iter % 5, len = strlen(seeds[which]);
        char body[512];
        mdl_evalstream_t *s;
        mdl_eval_columns_t c;
        mdl_err_t err = {0};
        int r, edits = 1 + (int)((seed = seed * 1103515245 + 12345) >> 16) % 4;
        memcpy(body, seeds[which], len + 1);
        for (int e = 0; e < edits; e++) {
            size_t at = ((seed = seed * 1103515245 + 12345) >> 16) % len;
            unsigned op = (seed >> 8) % 3;
            if (op == 0) /* replace */
                body[at] = alphabet[(seed >> 3) % (sizeof alphabet - 1)];
            else if (op == 1 && len > 1) /* delete */
                memmove(body + at, body + at + 1, len-- - at);
            else if (len < sizeof body - 2) { /* insert */
                memmove(body + at + 1, body + at, len++ - at + 1);
                body[at] = alphabet[(seed >> 5) % (sizeof alphabet - 1)];
            }
        }
        r = run(fmts[which], iter % 2 ? model : NULL, body, 1 + iter % 9, 100, &s, &c, &err);
        if (r != 0 && r != -EPROTO && r != -EBADMSG && r != -ERANGE)
            bad++;
        if (r != 0 && !err.msg[0])
            bad++;
        if (r == 0 && (c.n_rows == 0 || !c.scores || !c.labels))
            bad++;
        mdl_evalstream_free(s);
    }
    CHECK_EQ_INT(bad, 0);
}

int main(void)
{
    load_model();
    if (!model) {
        printf("test_evalstream.c: 0 passed, 1 failed\n");
        return 1;
    }
    RUN(test_formats_and_cuts_agree);
    RUN(test_precomputed_multiclass);
    RUN(test_errors);
    RUN(test_error_quotes_only_input);
    RUN(test_random_mutations);
    mdl_model_unref(model);
    return check_summary();
}
