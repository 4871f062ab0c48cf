/* libFuzzer target: the :predict body decoder (handlers/tabular.c) on arbitrary bytes,
 * whole bodies and single rows (the :rank / NDJSON path), against a model with numeric
 * and categorical features. The first byte picks the mode and the row limit. A decoded
 * body is scored and encoded back; a failure must be a documented code with a message. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/tabular.h"
#include "tests/fuzz/fuzz_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int codes[] = {-EBADMSG, -EPROTO, -ENOMEM};

static void whole_body(const mdl_model_t *m, const char *body, size_t len, size_t max_rows)
{
    mdl_tabular_body_t b;
    mdl_err_t err = {0};
    int rc = mdl_tabular_body_parse(m, body, len, max_rows, &b, &err);

    if (rc < 0) {
        fuzz_check_err(rc, &err, codes, 3);
        return;
    }
    if (b.n_rows > max_rows)
        abort();
    size_t width = mdl_model_output_width(m, b.output);
    double *out = calloc(b.n_rows * width + 1, sizeof(double));
    if (out && mdl_model_score(m, b.rows, b.n_rows, b.output, out, &err) == 0) {
        mdl_buf_t enc = {0};
        for (size_t i = 0; i < b.n_rows * width; i++)
            mdl_json_put_double(&enc, out[i]);
        mdl_buf_done(&enc);
    }
    free(out);
    mdl_tabular_body_done(&b);
}

static void one_row(const mdl_model_t *m, const char *text, size_t len, bool with_id)
{
    size_t nf = m->n_features, used = 0, id_len = 0;
    double row[64], defaults[64];
    const char *id = NULL;
    mdl_err_t err = {0};
    mdl_row_opts_t o = {.key = "candidates", .index = 3, .base = 10};
    int rc;

    if (nf > 64)
        abort();
    for (size_t i = 0; i < nf; i++)
        defaults[i] = (double)i;
    if (with_id) {
        o.defaults = defaults;
        o.id_key = "id";
        o.ret_id = &id;
        o.ret_id_len = &id_len;
        o.ret_used = &used;
    }
    rc = mdl_tabular_parse_row(m, text, len, &o, row, &err);
    if (rc < 0) {
        fuzz_check_err(rc, &err, codes, 3);
        return;
    }
    if (with_id && (used > len || (id && (id < text || id + id_len > text + len))))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const mdl_model_t *m = fuzz_model();
    char *text;

    if (size < 1)
        return 0;
    /* an exact NUL-terminated copy, as the HTTP layer hands bodies over */
    text = malloc(size);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    switch (data[0] & 3) {
    case 0:
    case 1:
        whole_body(m, text, size - 1, 1 + (data[0] >> 2));
        break;
    case 2:
        one_row(m, text, size - 1, false);
        break;
    default:
        one_row(m, text, size - 1, true);
        /* the scanner that finds where a row ends, on the same bytes */
        if (mdl_json_scan_value(text, text + size - 1) > (long)(size - 1))
            abort();
        break;
    }
    free(text);
    return 0;
}
