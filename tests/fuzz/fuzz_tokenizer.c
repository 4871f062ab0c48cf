/* libFuzzer target: the tokenizer loaders on arbitrary bytes, then encode / decode /
 * stream with whatever loads.
 *
 * Input: byte 0 picks the loader (even: tokenizer.json, odd: llama2.c tokenizer.bin).
 * tokenizer.json inputs may carry a tokenizer_config.json after a "\0\0" separator. The
 * text to encode is the fixed probes below plus the input's last 64 bytes (often invalid
 * UTF-8, which must be refused with -EPROTO).
 *
 * Checked, aborting on breach: a failed load carries a message and one of the loaders'
 * codes; encode fails only with -EPROTO (invalid UTF-8) or -ENOMEM; every id it returns
 * is inside the vocabulary; decode and the stream return valid UTF-8 and agree. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "models/transformer/tokenizer.h"
#include "models/transformer/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_utf8(const char *s, size_t n)
{
    size_t off;
    const char *why;
    if (!mdl_utf8_validate((const uint8_t *)s, n, &off, &why))
        abort();
}

static void decode_both(const mdl_tokenizer_t *tok, const int32_t *ids, size_t n, unsigned flags)
{
    char *text;
    size_t len, at = 0;
    mdl_err_t err;
    mdl_tok_stream_t st;

    if (mdl_tokenizer_decode(tok, ids, n, flags, &text, &len, &err) < 0)
        abort(); /* callers pass ids inside the vocabulary */
    check_utf8(text, len);
    if (mdl_tok_stream_init(&st, tok, -1, flags) == 0) {
        for (size_t i = 0; i <= n; i++) {
            const char *chunk;
            size_t cl;
            if (i < n) {
                if (mdl_tok_stream_push(&st, ids[i], &chunk, &cl, &err) < 0)
                    abort();
            } else {
                mdl_tok_stream_finish(&st, &chunk, &cl);
            }
            check_utf8(chunk, cl);
            if (at + cl > len || memcmp(text + at, chunk, cl) != 0)
                abort();
            at += cl;
        }
        if (at != len)
            abort();
        mdl_tok_stream_done(&st);
    }
    free(text);
}

static void exercise(const mdl_tokenizer_t *tok, const char *text, size_t len)
{
    static const unsigned flag_sets[] = {0, MDL_TOK_ADD_BOS | MDL_TOK_ALLOW_SPECIAL};
    size_t nv = mdl_tokenizer_vocab_size(tok);

    for (size_t f = 0; f < 2; f++) {
        int32_t *ids;
        size_t n;
        mdl_err_t err;
        int rc = mdl_tokenizer_encode(tok, text, len, flag_sets[f], &ids, &n, &err);
        if (rc < 0) {
            if (rc != -EPROTO && rc != -ENOMEM)
                abort();
            continue;
        }
        for (size_t i = 0; i < n; i++)
            if (ids[i] < 0 || (size_t)ids[i] >= nv)
                abort();
        decode_both(tok, ids, n, 0);
        decode_both(tok, ids, n, MDL_TOK_SKIP_SPECIAL);
        free(ids);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const probes[] = {
        "", " ", "Hello world, it's  a test\n\n", "  leading and trailing  ",
        "\xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80 e\xcc\x81", "<s>a</s><|endoftext|><unk>",
        "\xe2\x96\x81 <0x41> 123 4567",
    };
    mdl_tokenizer_t *tok = NULL;
    mdl_err_t err;
    int rc;

    if (size < 1)
        return 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    memset(&err, 0, sizeof err);
    if (data[0] & 1) {
        rc = mdl_tokenizer_load_llama2c(body, len, NULL, 0, &tok, &err);
    } else {
        const char *cfg = NULL;
        size_t cfg_len = 0, json_len = len;
        for (size_t i = 0; i + 1 < len; i++)
            if (body[i] == '\0' && body[i + 1] == '\0') {
                json_len = i;
                cfg = body + i + 2;
                cfg_len = len - i - 2;
                break;
            }
        rc = mdl_tokenizer_load_hf(body, json_len, cfg, cfg_len, &tok, &err);
    }
    if (rc < 0) {
        if ((rc != -EBADMSG && rc != -E2BIG && rc != -ENOMEM) || err.code != rc || !err.msg[0])
            abort();
        return 0;
    }
    for (size_t i = 0; i < sizeof probes / sizeof *probes; i++)
        exercise(tok, probes[i], strlen(probes[i]));
    size_t tail = len < 64 ? len : 64;
    exercise(tok, body + len - tail, tail);

    /* ids spread over the vocabulary, from the input's bytes */
    size_t nv = mdl_tokenizer_vocab_size(tok);
    int32_t ids[32];
    size_t n = 0;
    for (size_t i = 0; i + 1 < len && n < 32; i += 97)
        ids[n++] = (int32_t)((((size_t)(uint8_t)body[i] << 8) | (uint8_t)body[i + 1]) % nv);
    decode_both(tok, ids, n, 0);
    mdl_tokenizer_free(tok);
    return 0;
}
