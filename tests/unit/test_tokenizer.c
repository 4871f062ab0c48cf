/* models/transformer/tokenizer, utf8 and unicode: UTF-8 validation and repair, character
 * classes, small tokenizers built in memory (byte-level tokenizer.json, llama2.c
 * tokenizer.bin) with ids worked out by hand, streaming, round trips on random text,
 * and corrupt files (every truncation, bad merges, huge lengths, NaN scores). The
 * fidelity tests against sentencepiece and a GPT-2 reference are in tests/tokenizer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "models/transformer/tokenizer.h"
#include "models/transformer/unicode.h"
#include "models/transformer/utf8.h"

/* ---- helpers ------------------------------------------------------------------------ */

typedef struct sbuf {
    char *p;
    size_t n, cap;
} sbuf_t;

static void sb_add(sbuf_t *b, const void *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_str(sbuf_t *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* A JSON string literal of s[0..n). */
static void sb_json(sbuf_t *b, const char *s, size_t n)
{
    sb_str(b, "\"");
    for (size_t i = 0; i < n; i++) {
        char e[8];
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            e[0] = '\\';
            e[1] = (char)c;
            sb_add(b, e, 2);
        } else if (c < 0x20) {
            snprintf(e, sizeof e, "\\u%04x", c);
            sb_str(b, e);
        } else {
            sb_add(b, s + i, 1);
        }
    }
    sb_str(b, "\"");
}

/* GPT-2's bytes_to_unicode, written again here from its definition. */
static unsigned byte_cp(unsigned b)
{
    unsigned n = 0;
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174)
        return b;
    for (unsigned x = 0; x < b; x++)
        n += !((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || x >= 174);
    return 256 + n;
}

static size_t put_cp(unsigned cp, char *out)
{
    return mdl_utf8_encode(cp, (uint8_t *)out);
}

/* ---- utf8 / unicode ----------------------------------------------------------------- */

static void test_utf8_validate(void)
{
    static const struct {
        const char *s;
        size_t len;
        int ok;
        size_t off;
        const char *why;
    } cases[] = {
        {"", 0, 1, 0, NULL},
        {"plain ascii text, longer than eight bytes", 41, 1, 0, NULL},
        {"\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", 18, 1, 0, NULL},
        {"\xed\x9f\xbf\xee\x80\x80", 6, 1, 0, NULL}, /* U+D7FF, U+E000 around the surrogates */
        {"abc\xc0\xaf", 5, 0, 3, "overlong"},
        {"\xc1\xbf", 2, 0, 0, "overlong"},
        {"ab\xe0\x9f\xbf", 5, 0, 2, "overlong"},
        {"\xf0\x8f\xbf\xbf", 4, 0, 0, "overlong"},
        {"x\xed\xa0\x80", 4, 0, 1, "surrogate"},
        {"\xed\xbf\xbf", 3, 0, 0, "surrogate"},
        {"\xf4\x90\x80\x80", 4, 0, 0, "U+10FFFF"},
        {"\xf5\x80\x80\x80", 4, 0, 0, "U+10FFFF"},
        {"12345678\xff", 9, 0, 8, "invalid byte"},
        {"\x80", 1, 0, 0, "continuation"},
        {"hello \xe4\xb8", 8, 0, 6, "truncated sequence at end"},
        {"\xe4\xb8x", 3, 0, 0, "truncated"},
        {"\xf0\x9f\x98", 3, 0, 0, "truncated"},
        {"a\0b", 3, 1, 0, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t off = 999;
        const char *why = NULL;
        bool ok = mdl_utf8_validate((const uint8_t *)cases[i].s, cases[i].len, &off, &why);
        CHECK_EQ_INT(ok, cases[i].ok);
        if (!cases[i].ok) {
            CHECK_EQ_INT(off, cases[i].off);
            CHECK(why && strstr(why, cases[i].why));
        }
    }
    /* every code point encodes and decodes back; surrogates and > U+10FFFF refuse */
    for (uint32_t cp = 0; cp <= 0x110000; cp += (cp < 0x20000 ? 1 : 97)) {
        uint8_t b[4];
        uint32_t back = 0;
        size_t n = mdl_utf8_encode(cp, b);
        if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
            CHECK_EQ_INT(n, 0);
            continue;
        }
        CHECK_EQ_INT(mdl_utf8_decode(b, n, &back), n);
        CHECK_EQ_INT(back, cp);
        CHECK_EQ_INT(mdl_utf8_decode(b, n - 1, &back), 0); /* cut short */
    }
}

/* The repairer's output for in, fed whole and fed one byte at a time. */
static void check_fix(const char *in, size_t n, bool per_byte, const char *want)
{
    uint8_t out[256];
    mdl_utf8_fix_t f;
    size_t w;

    mdl_utf8_fix_init(&f, per_byte);
    w = mdl_utf8_fix_feed(&f, (const uint8_t *)in, n, out);
    w += mdl_utf8_fix_finish(&f, out + w);
    out[w] = 0;
    CHECK_EQ_STR((char *)out, want);
    mdl_utf8_fix_init(&f, per_byte);
    w = 0;
    for (size_t i = 0; i < n; i++)
        w += mdl_utf8_fix_feed(&f, (const uint8_t *)in + i, 1, out + w);
    w += mdl_utf8_fix_finish(&f, out + w);
    out[w] = 0;
    CHECK_EQ_STR((char *)out, want);
}

#define R "\xef\xbf\xbd"

static void test_utf8_fix(void)
{
    check_fix("ok \xe4\xb8\xad!", 7, false, "ok \xe4\xb8\xad!");
    check_fix("\xe4\xb8" "A", 3, false, R "A");    /* one maximal subpart */
    check_fix("\xe4\xb8" "A", 3, true, R R "A");   /* SentencePiece: per byte */
    check_fix("\xc0\x80", 2, false, R R);          /* C0 starts nothing */
    check_fix("\xed\xa0\x80", 3, false, R R R);    /* ED A0: A0 is not allowed after ED */
    check_fix("\xf0\x9f\x98", 3, false, R);        /* cut at the end */
    check_fix("\xf0\x9f\x98", 3, true, R R R);
    check_fix("\xf0\x9f\x98\x80\x80", 5, false, "\xf0\x9f\x98\x80" R);
    check_fix("\xff\xfe", 2, false, R R);
}

static void test_unicode_classes(void)
{
    CHECK_EQ_INT(mdl_unicode_class('a'), MDL_UCLASS_LETTER);
    CHECK_EQ_INT(mdl_unicode_class(0xE9), MDL_UCLASS_LETTER);   /* é */
    CHECK_EQ_INT(mdl_unicode_class(0x4E2D), MDL_UCLASS_LETTER); /* 中 */
    CHECK_EQ_INT(mdl_unicode_class(0x3042), MDL_UCLASS_LETTER); /* あ */
    CHECK_EQ_INT(mdl_unicode_class('7'), MDL_UCLASS_NUMBER);
    CHECK_EQ_INT(mdl_unicode_class(0x663), MDL_UCLASS_NUMBER);  /* Arabic-Indic 3 */
    CHECK_EQ_INT(mdl_unicode_class(0xBD), MDL_UCLASS_NUMBER);   /* ½ */
    CHECK_EQ_INT(mdl_unicode_class(0x216B), MDL_UCLASS_NUMBER); /* Ⅻ (Nl) */
    CHECK_EQ_INT(mdl_unicode_class(' '), MDL_UCLASS_SPACE);
    CHECK_EQ_INT(mdl_unicode_class(0x85), MDL_UCLASS_SPACE);
    CHECK_EQ_INT(mdl_unicode_class(0xA0), MDL_UCLASS_SPACE);
    CHECK_EQ_INT(mdl_unicode_class(0x3000), MDL_UCLASS_SPACE);
    CHECK_EQ_INT(mdl_unicode_class(0x1C), MDL_UCLASS_OTHER);    /* not White_Space */
    CHECK_EQ_INT(mdl_unicode_class(0x200B), MDL_UCLASS_OTHER);  /* zero width space */
    CHECK_EQ_INT(mdl_unicode_class(0x301), MDL_UCLASS_OTHER);   /* combining acute (Mn) */
    CHECK_EQ_INT(mdl_unicode_class(0x1F600), MDL_UCLASS_OTHER);
    CHECK_EQ_INT(mdl_unicode_class('_'), MDL_UCLASS_OTHER);
    CHECK_EQ_INT(mdl_unicode_class(0x10FFFF), MDL_UCLASS_OTHER);
}

/* ---- a byte-level tokenizer.json built here ------------------------------------------ */

/* The vocabulary: 256 byte tokens (id = byte's rank in bytes_to_unicode order is not
 * needed: id = byte value), then the merged tokens below, then <|endoftext|>. */
static const char *const merged[][2] = {
    {"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {"\xc4\xa0", "w"}, {"\xc4\xa0w", "o"},
    {"\xc4\xa0", "\xc4\xa0"}, {"'", "s"},
};
#define N_MERGED (sizeof merged / sizeof *merged)
#define EOT_ID (256 + (int)N_MERGED)

static char *gpt2_json(const char *merges_override, bool bad_vocab)
{
    sbuf_t b = {0};
    char k[16];

    sb_str(&b, "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":");
    snprintf(k, sizeof k, "%d", EOT_ID);
    sb_str(&b, k);
    sb_str(&b, ",\"content\":\"<|endoftext|>\",\"special\":true}],\"normalizer\":null,"
               "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false},"
               "\"decoder\":{\"type\":\"ByteLevel\"},\"model\":{\"type\":\"BPE\",\"vocab\":{");
    for (unsigned c = 0; c < 256; c++) {
        size_t n = put_cp(byte_cp(c), k);
        sb_json(&b, k, n);
        snprintf(k, sizeof k, ":%u,", c);
        sb_str(&b, k);
    }
    for (size_t i = 0; i < N_MERGED; i++) {
        char m[32];
        snprintf(m, sizeof m, "%s%s", merged[i][0], merged[i][1]);
        sb_json(&b, m, strlen(m));
        snprintf(k, sizeof k, ":%zu,", bad_vocab && i == 3 ? (size_t)5 : 256 + i);
        sb_str(&b, k);
    }
    sb_str(&b, "\"<|endoftext|>\":");
    snprintf(k, sizeof k, "%d", EOT_ID);
    sb_str(&b, k);
    sb_str(&b, "},\"merges\":");
    if (merges_override) {
        sb_str(&b, merges_override);
    } else {
        sb_str(&b, "[");
        for (size_t i = 0; i < N_MERGED; i++) {
            char m[32];
            snprintf(m, sizeof m, "%s %s", merged[i][0], merged[i][1]);
            sb_json(&b, m, strlen(m));
            sb_str(&b, i + 1 < N_MERGED ? "," : "]");
        }
    }
    sb_str(&b, "}}");
    return b.p;
}

static mdl_tokenizer_t *load_gpt2(void)
{
    char *json = gpt2_json(NULL, false);
    mdl_tokenizer_t *tok = NULL;
    mdl_err_t err = {0};
    int rc = mdl_tokenizer_load_hf(json, strlen(json), NULL, 0, &tok, &err);
    if (rc != 0)
        fprintf(stderr, "  load: %s\n", err.msg);
    free(json);
    return tok;
}

static void check_ids(const mdl_tokenizer_t *tok, const char *text, unsigned flags,
                      const int32_t *want, size_t n_want)
{
    int32_t *ids = NULL;
    size_t n = 0;
    mdl_err_t err = {0};

    CHECK_EQ_INT(mdl_tokenizer_encode(tok, text, strlen(text), flags, &ids, &n, &err), 0);
    CHECK_EQ_INT(n, n_want);
    for (size_t i = 0; i < n && i < n_want; i++)
        if (ids[i] != want[i]) {
            CHECK_FAIL_("\"%s\": id %zu is %d, want %d", text, i, ids[i], want[i]);
            break;
        }
    free(ids);
}

static void test_gpt2_encode(void)
{
    mdl_tokenizer_t *tok = load_gpt2();
    CHECK(tok != NULL);
    if (!tok)
        return;
    CHECK_EQ_INT(mdl_tokenizer_kind(tok), MDL_TOK_BYTE_BPE);
    CHECK_EQ_INT(mdl_tokenizer_vocab_size(tok), EOT_ID + 1);
    CHECK_EQ_INT(mdl_tokenizer_bos(tok), EOT_ID);
    CHECK(mdl_tokenizer_is_eos(tok, EOT_ID));
    CHECK(!mdl_tokenizer_add_bos_default(tok));

    /* "hello world": words "hello", " world"; he+ll -> hell, hell+o -> hello;
     * Ġ+w -> Ġw, Ġw+o -> Ġwo, then r l d */
    const int32_t w1[] = {256 + 3, 256 + 5, 'r', 'l', 'd'};
    check_ids(tok, "hello world", 0, w1, 5);
    /* "  world": \s+(?!\S) keeps the first space alone (ĠĠ would merge, but the run is
     * two words); the second leads " world" */
    int32_t sp = ' ';
    const int32_t w3[] = {sp, 256 + 5, 'r', 'l', 'd'};
    check_ids(tok, "  world", 0, w3, 5);
    /* three spaces at the end: one word, ĠĠ merges then a lone Ġ */
    const int32_t w4[] = {'a', 256 + 6, sp};
    check_ids(tok, "a   ", 0, w4, 3);
    /* contractions are words of their own */
    const int32_t w5[] = {'i', 't', 256 + 7};
    check_ids(tok, "it's", 0, w5, 3);
    /* the special token: text unless allowed; bos on request */
    const int32_t w6[] = {EOT_ID, 256 + 3, EOT_ID};
    check_ids(tok, "hello<|endoftext|>", MDL_TOK_ALLOW_SPECIAL | MDL_TOK_ADD_BOS, w6, 3);
    const int32_t w7[] = {'<', '|', 'e'};
    check_ids(tok, "<|e", MDL_TOK_ALLOW_SPECIAL, w7, 3);
    check_ids(tok, "", 0, NULL, 0);
    mdl_tokenizer_free(tok);
}

/* Random valid UTF-8: ASCII, spaces and runs, 2-, 3- and 4-byte characters. */
static size_t random_text(unsigned *seed, char *out, size_t max)
{
    size_t n = 0, want = (size_t)(rand_r(seed) % (int)max);
    while (n + 4 < want) {
        int k = rand_r(seed) % 10;
        unsigned cp;
        if (k < 4)
            cp = 0x20 + (unsigned)rand_r(seed) % 0x5F;
        else if (k < 6)
            cp = " \t\n'"[rand_r(seed) % 4];
        else if (k < 7)
            cp = 0x80 + (unsigned)rand_r(seed) % 0x780;
        else if (k < 9)
            cp = 0x800 + (unsigned)rand_r(seed) % 0xF800;
        else
            cp = 0x10000 + (unsigned)rand_r(seed) % 0x100000;
        n += put_cp(cp, out + n); /* surrogates encode to nothing */
    }
    return n;
}

static void round_trips(const mdl_tokenizer_t *tok, unsigned seed, int rounds)
{
    char text[400];
    for (int r = 0; r < rounds; r++) {
        size_t len = random_text(&seed, text, sizeof text), n, out_len;
        int32_t *ids = NULL;
        char *back = NULL;
        mdl_err_t err = {0};
        if (mdl_tokenizer_encode(tok, text, len, 0, &ids, &n, &err) != 0 ||
            mdl_tokenizer_decode(tok, ids, n, 0, &back, &out_len, &err) != 0) {
            CHECK_FAIL_("round %d: %s", r, err.msg);
            free(ids);
            return;
        }
        if (out_len != len || memcmp(back, text, len) != 0) {
            CHECK_FAIL_("round %d: decode(encode(text)) differs (%zu vs %zu bytes)", r, out_len,
                        len);
            free(ids);
            free(back);
            return;
        }
        /* streaming gives the same bytes, each chunk valid UTF-8 */
        mdl_tok_stream_t st;
        CHECK_EQ_INT(mdl_tok_stream_init(&st, tok, -1, 0), 0);
        size_t at = 0;
        for (size_t i = 0; i <= n; i++) {
            const char *chunk;
            size_t cl, bad;
            const char *why;
            if (i < n)
                CHECK_EQ_INT(mdl_tok_stream_push(&st, ids[i], &chunk, &cl, &err), 0);
            else
                mdl_tok_stream_finish(&st, &chunk, &cl);
            CHECK(mdl_utf8_validate((const uint8_t *)chunk, cl, &bad, &why));
            CHECK(at + cl <= len && memcmp(chunk, text + at, cl) == 0);
            at += cl;
        }
        CHECK_EQ_INT(at, len);
        mdl_tok_stream_done(&st);
        free(ids);
        free(back);
    }
}

static void test_gpt2_round_trip(void)
{
    mdl_tokenizer_t *tok = load_gpt2();
    if (!tok)
        return;
    round_trips(tok, 1, 300);
    mdl_tokenizer_free(tok);
}

static void test_stream_partial_characters(void)
{
    mdl_tokenizer_t *tok = load_gpt2();
    mdl_tok_stream_t st;
    const char *c;
    size_t n;
    mdl_err_t err = {0};

    if (!tok)
        return;
    /* 😀 = F0 9F 98 80, one byte token each: nothing until the last */
    CHECK_EQ_INT(mdl_tok_stream_init(&st, tok, -1, 0), 0);
    mdl_tok_stream_push(&st, 0xF0, &c, &n, &err);
    CHECK_EQ_INT(n, 0);
    mdl_tok_stream_push(&st, 0x9F, &c, &n, &err);
    mdl_tok_stream_push(&st, 0x98, &c, &n, &err);
    CHECK_EQ_INT(n, 0);
    mdl_tok_stream_push(&st, 0x80, &c, &n, &err);
    CHECK_EQ_STR(c, "\xf0\x9f\x98\x80");
    /* a broken sequence comes out as U+FFFD once it is known to be broken */
    mdl_tok_stream_push(&st, 0xE4, &c, &n, &err);
    CHECK_EQ_INT(n, 0);
    mdl_tok_stream_push(&st, 'x', &c, &n, &err);
    CHECK_EQ_STR(c, R "x");
    mdl_tok_stream_push(&st, 0xE4, &c, &n, &err);
    mdl_tok_stream_finish(&st, &c, &n);
    CHECK_EQ_STR(c, R);
    CHECK_EQ_INT(mdl_tok_stream_push(&st, EOT_ID + 1, &c, &n, &err), -ERANGE);
    CHECK(strstr(err.msg, "outside the vocabulary"));
    mdl_tok_stream_done(&st);
    /* skip special */
    CHECK_EQ_INT(mdl_tok_stream_init(&st, tok, -1, MDL_TOK_SKIP_SPECIAL), 0);
    mdl_tok_stream_push(&st, EOT_ID, &c, &n, &err);
    CHECK_EQ_INT(n, 0);
    mdl_tok_stream_done(&st);
    mdl_tokenizer_free(tok);
}

static void test_invalid_utf8_prompt(void)
{
    mdl_tokenizer_t *tok = load_gpt2();
    int32_t *ids;
    size_t n;
    mdl_err_t err = {0};

    if (!tok)
        return;
    CHECK_EQ_INT(mdl_tokenizer_encode(tok, "ok \xed\xa0\x80", 6, 0, &ids, &n, &err), -EPROTO);
    CHECK_EQ_STR(err.msg, "invalid UTF-8 at byte 3: surrogate code point");
    CHECK_EQ_INT(mdl_tokenizer_encode(tok, "\xc0\x80", 2, 0, &ids, &n, &err), -EPROTO);
    CHECK_EQ_STR(err.msg, "invalid UTF-8 at byte 0: overlong encoding");
    mdl_tokenizer_free(tok);
}

/* Loading must fail with -EBADMSG and a message containing want. */
static void check_hf_refused(const char *json, const char *config, const char *want)
{
    mdl_tokenizer_t *tok = NULL;
    mdl_err_t err = {0};
    int rc = mdl_tokenizer_load_hf(json, strlen(json), config, config ? strlen(config) : 0, &tok,
                                   &err);
    CHECK_EQ_INT(rc, -EBADMSG);
    CHECK(tok == NULL);
    if (!strstr(err.msg, want))
        CHECK_FAIL_("message \"%s\" lacks \"%s\"", err.msg, want);
    mdl_tokenizer_free(tok);
}

static void test_hf_corrupt(void)
{
    char *j;

    j = gpt2_json("[\"h zz\"]", false);
    check_hf_refused(j, NULL, "model.merges[0]: 'zz' is not in the vocabulary");
    free(j);
    j = gpt2_json("[\"h e\", \"e h\"]", false);
    check_hf_refused(j, NULL, "model.merges[1]: the merge result 'eh' is not in the vocabulary");
    free(j);
    j = gpt2_json("[\"he\"]", false);
    check_hf_refused(j, NULL, "model.merges[0]: 'he' is not two tokens");
    free(j);
    j = gpt2_json("[7]", false);
    check_hf_refused(j, NULL, "model.merges[0]: expected");
    free(j);
    j = gpt2_json(NULL, true);
    check_hf_refused(j, NULL, "id 5 is given to both");
    free(j);
    check_hf_refused("[]", NULL, "expected an object");
    check_hf_refused("{\"model\":{\"type\":\"Unigram\",\"vocab\":[]}}", NULL,
                     "model.type 'Unigram' is not supported");
    check_hf_refused("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-1}}}", NULL,
                     "model.vocab['a']: token id -1 is not an integer");
    check_hf_refused("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":1e9}}}", NULL,
                     "is not an integer in 0..");
    check_hf_refused("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0.5}}}", NULL, "0.5");
    check_hf_refused("{\"model\":{\"type\":\"BPE\",\"vocab\":{}}}", NULL, "empty");
    check_hf_refused("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}}}", NULL,
                     "neither byte_fallback nor an unk_token");
    check_hf_refused("{\"normalizer\":{\"type\":\"NFKC\"},\"model\":{\"type\":\"BPE\",\"vocab\":"
                     "{\"a\":0},\"unk_token\":\"a\"}}", NULL, "normalizer 'NFKC' is not supported");
    check_hf_refused("{\"pre_tokenizer\":{\"type\":\"Whitespace\"},\"model\":{\"type\":\"BPE\","
                     "\"vocab\":{\"a\":0},\"unk_token\":\"a\"}}", NULL,
                     "pre_tokenizer 'Whitespace' is not supported");
    check_hf_refused("{\"pre_tokenizer\":{\"type\":\"ByteLevel\"},\"model\":{\"type\":\"BPE\","
                     "\"vocab\":{\"a\":0}}}", NULL, "no token for byte 0x00");
    check_hf_refused("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"unk_token\":\"b\"}}", NULL,
                     "unk_token 'b' is not in the vocabulary");
    check_hf_refused("{\"added_tokens\":[{\"id\":0,\"content\":\"b\"}],\"model\":{\"type\":\"BPE\","
                     "\"vocab\":{\"a\":0},\"unk_token\":\"a\"}}", NULL, "id 0 is given to both");
    /* a token longer than MDL_TOK_MAX_TOKEN_BYTES */
    sbuf_t big = {0};
    sb_str(&big, "{\"model\":{\"type\":\"BPE\",\"unk_token\":\"a\",\"vocab\":{\"a\":0,\"");
    for (int i = 0; i < 5000; i++)
        sb_str(&big, "x");
    sb_str(&big, "\":1}}}");
    check_hf_refused(big.p, NULL, "token 1 is 5000 bytes long (limit 4096)");
    free(big.p);
    /* tokenizer_config.json */
    j = gpt2_json(NULL, false);
    check_hf_refused(j, "{\"eos_token\":\"</s>\"}", "tokenizer_config.json: eos_token: '</s>' is "
                                                   "not a token");
    check_hf_refused(j, "{\"add_bos_token\":\"yes\"}", "add_bos_token: expected a boolean");
    check_hf_refused(j, "{\"added_tokens_decoder\":{\"x\":{}}}", "tokenizer_config.json: added_tokens_decoder: key 'x' is not a token id");
    check_hf_refused(j, "[1]", "tokenizer_config.json: expected an object");
    check_hf_refused(j, "{\"chat_template\":5}", "chat_template: expected a string");
    free(j);
}

/* Every prefix of a valid file is refused cleanly (or, for a few lucky cuts, loads). */
static void test_hf_truncated(void)
{
    char *j = gpt2_json(NULL, false);
    size_t len = strlen(j);
    for (size_t cut = 0; cut < len; cut += (cut < 200 || len - cut < 200) ? 1 : 13) {
        mdl_tokenizer_t *tok = NULL;
        mdl_err_t err = {0};
        int rc = mdl_tokenizer_load_hf(j, cut, NULL, 0, &tok, &err);
        CHECK(rc == -EBADMSG);
        CHECK(err.msg[0] != '\0');
        mdl_tokenizer_free(tok);
    }
    free(j);
}

static void test_hf_config(void)
{
    char *j = gpt2_json(NULL, false);
    const char *cfg = "{\"add_bos_token\": true, \"bos_token\": {\"content\": \"<|endoftext|>\"},"
                      "\"eos_token\": \"<|endoftext|>\", \"added_tokens_decoder\": {\"265\": "
                      "{\"content\": \"<|im_end|>\", \"special\": true}},"
                      "\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"x\"},"
                      "{\"name\": \"default\", \"template\": \"{{ '<|im_start|>' }}\"}]}";
    mdl_tokenizer_t *tok = NULL;
    mdl_err_t err = {0};

    CHECK_EQ_INT(mdl_tokenizer_load_hf(j, strlen(j), cfg, strlen(cfg), &tok, &err), 0);
    free(j);
    if (!tok) {
        fprintf(stderr, "  %s\n", err.msg);
        return;
    }
    CHECK(mdl_tokenizer_add_bos_default(tok));
    CHECK_EQ_INT(mdl_tokenizer_vocab_size(tok), 266);
    CHECK_EQ_INT(mdl_tokenizer_find(tok, "<|im_end|>", 10), 265);
    CHECK(mdl_tokenizer_is_special(tok, 265));
    CHECK_EQ_INT(mdl_tokenizer_chat_format(tok), MDL_CHAT_CHATML);
    CHECK_EQ_STR(mdl_tokenizer_chat_template(tok), "{{ '<|im_start|>' }}");
    const int32_t want[] = {'h', 265, 'x'};
    check_ids(tok, "h<|im_end|>x", MDL_TOK_ALLOW_SPECIAL, want, 3);
    char *text;
    size_t n;
    const int32_t ids[] = {EOT_ID, 'h', 265, EOT_ID};
    CHECK_EQ_INT(mdl_tokenizer_decode(tok, ids, 4, MDL_TOK_SKIP_SPECIAL, &text, &n, &err), 0);
    CHECK_EQ_STR(text, "h");
    free(text);
    CHECK_EQ_INT(mdl_tokenizer_decode(tok, ids, 4, 0, &text, &n, &err), 0);
    CHECK_EQ_STR(text, "<|endoftext|>h<|im_end|><|endoftext|>");
    free(text);
    const int32_t bad[] = {1, 266};
    CHECK_EQ_INT(mdl_tokenizer_decode(tok, bad, 2, 0, &text, &n, &err), -ERANGE);
    CHECK_EQ_STR(err.msg, "token id 266 at position 1 is outside the vocabulary (0..265)");
    mdl_tokenizer_free(tok);
}

/* ---- llama2.c tokenizer.bin built here ---------------------------------------------- */

typedef struct entry {
    float score;
    const char *text;
} entry_t;

static void put_le32(sbuf_t *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    sb_add(b, x, 4);
}

/* unk, bos, eos, 256 byte pieces, then these (id 259 on). */
static const entry_t pieces[] = {
    {-1, " "}, {-2, "a"}, {-3, "b"}, {-4, "c"}, {0, " a"}, {-1, "ab"}, {-0.5f, " ab"},
    {-10, "bc"}, {-10, "ca"}, {-6, "\xe4\xb8\xad"},
};
#define ID(i) (259 + (i))

static sbuf_t llama2c_bin(int32_t max_len)
{
    sbuf_t b = {0};
    char bt[8];
    put_le32(&b, (uint32_t)max_len);
    for (int i = 0; i < 259 + (int)(sizeof pieces / sizeof *pieces); i++) {
        const char *t;
        float score = 0;
        if (i == 0)
            t = "<unk>";
        else if (i == 1)
            t = "\n<s>\n";
        else if (i == 2)
            t = "\n</s>\n";
        else if (i < 259) {
            snprintf(bt, sizeof bt, "<0x%02X>", i - 3);
            t = bt;
        } else {
            t = pieces[i - 259].text;
            score = pieces[i - 259].score;
        }
        uint32_t u;
        memcpy(&u, &score, 4);
        put_le32(&b, u);
        put_le32(&b, (uint32_t)strlen(t));
        sb_add(&b, t, strlen(t));
    }
    return b;
}

static mdl_tokenizer_t *load_llama2c(void)
{
    sbuf_t b = llama2c_bin(8);
    mdl_tokenizer_t *tok = NULL;
    mdl_err_t err = {0};
    if (mdl_tokenizer_load_llama2c(b.p, b.n, NULL, 0, &tok, &err) != 0)
        fprintf(stderr, "  load: %s\n", err.msg);
    free(b.p);
    return tok;
}

static void test_llama2c_encode(void)
{
    mdl_tokenizer_t *tok = load_llama2c();
    CHECK(tok != NULL);
    if (!tok)
        return;
    CHECK_EQ_INT(mdl_tokenizer_kind(tok), MDL_TOK_LLAMA2C);
    CHECK_EQ_INT(mdl_tokenizer_bos(tok), 1);
    CHECK(mdl_tokenizer_is_eos(tok, 2));
    /* " ab": " "+"a" (score 0) first, then " a"+"b" (-0.5); "ab" (-1) never gets a turn */
    const int32_t w1[] = {ID(6)};
    check_ids(tok, "ab", 0, w1, 1);
    /* "abc ab": " a"+"b" -> " ab", then c; " "+"a" -> " a", " a"+"b" -> " ab" */
    const int32_t w2[] = {1, ID(6), ID(3), ID(6)};
    check_ids(tok, "abc ab", MDL_TOK_ADD_BOS, w2, 4);
    /* "bca": bc and ca tie at -10: the leftmost wins (" "+"b" is not a token) */
    const int32_t w3[] = {ID(0), ID(7), ID(1)};
    check_ids(tok, "bca", 0, w3, 3);
    /* byte fallback for characters not in the vocabulary; 中 is one */
    const int32_t w4[] = {ID(0), ID(9), 3 + 0xC3, 3 + 0xA9};
    check_ids(tok, "中é", 0, w4, 4);
    /* decoding drops the leading space after bos / at the start, keeps it mid-text */
    char *text;
    size_t n;
    mdl_err_t err = {0};
    const int32_t ids[] = {1, ID(6), ID(6), 2};
    CHECK_EQ_INT(mdl_tokenizer_decode(tok, ids, 4, MDL_TOK_SKIP_SPECIAL, &text, &n, &err), 0);
    CHECK_EQ_STR(text, "ab ab");
    free(text);
    mdl_tok_stream_t st;
    const char *c;
    CHECK_EQ_INT(mdl_tok_stream_init(&st, tok, ID(3), 0), 0);
    mdl_tok_stream_push(&st, ID(6), &c, &n, &err);
    CHECK_EQ_STR(c, " ab");
    mdl_tok_stream_done(&st);
    CHECK_EQ_INT(mdl_tok_stream_init(&st, tok, 1, 0), 0);
    mdl_tok_stream_push(&st, ID(6), &c, &n, &err);
    CHECK_EQ_STR(c, "ab");
    mdl_tok_stream_done(&st);
    /* the control pieces are special added tokens spelled "<s>" and "</s>" */
    CHECK_EQ_INT(mdl_tokenizer_find(tok, "<s>", 3), 1);
    CHECK_EQ_INT(mdl_tokenizer_find(tok, "</s>", 4), 2);
    CHECK(mdl_tokenizer_is_special(tok, 1) && mdl_tokenizer_is_special(tok, 2));
    const int32_t w5[] = {1, ID(6), 2};
    check_ids(tok, "<s>ab</s>", MDL_TOK_ALLOW_SPECIAL, w5, 3);
    const int32_t ctl[] = {1, 2};
    CHECK_EQ_INT(mdl_tokenizer_decode(tok, ctl, 2, 0, &text, &n, &err), 0);
    CHECK_EQ_STR(text, "<s></s>");
    free(text);
    round_trips(tok, 9, 200);
    mdl_tokenizer_free(tok);

    /* with a tokenizer_config.json naming the same tokens */
    sbuf_t b = llama2c_bin(8);
    const char *cfg = "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"added_tokens_decoder\": "
                      "{\"1\": {\"content\": \"<s>\", \"special\": true}}, \"chat_template\": "
                      "\"{{ bos_token + '[INST] ' }}\"}";
    CHECK_EQ_INT(mdl_tokenizer_load_llama2c(b.p, b.n, cfg, strlen(cfg), &tok, &err), 0);
    if (tok) {
        CHECK_EQ_INT(mdl_tokenizer_bos(tok), 1);
        CHECK_EQ_INT(mdl_tokenizer_chat_format(tok), MDL_CHAT_LLAMA2);
        tok = mdl_tokenizer_free(tok);
    } else {
        fprintf(stderr, "  %s\n", err.msg);
    }
    free(b.p);
}

static void check_bin_refused(const void *data, size_t len, const char *want)
{
    mdl_tokenizer_t *tok = NULL;
    mdl_err_t err = {0};
    int rc = mdl_tokenizer_load_llama2c(data, len, NULL, 0, &tok, &err);
    CHECK_EQ_INT(rc, -EBADMSG);
    if (!strstr(err.msg, want))
        CHECK_FAIL_("message \"%s\" lacks \"%s\"", err.msg, want);
    mdl_tokenizer_free(tok);
}

static void test_llama2c_corrupt(void)
{
    sbuf_t b = llama2c_bin(8);

    /* every cut inside an entry is refused, naming the token and the byte */
    size_t ok_cuts = 0;
    for (size_t cut = 0; cut < b.n; cut++) {
        mdl_tokenizer_t *tok = NULL;
        mdl_err_t err = {0};
        int rc = mdl_tokenizer_load_llama2c(b.p, cut, NULL, 0, &tok, &err);
        if (rc == 0)
            ok_cuts++; /* a cut between two entries is a shorter, valid file */
        else
            CHECK(rc == -EBADMSG && err.msg[0]);
        mdl_tokenizer_free(tok);
    }
    CHECK_EQ_INT(ok_cuts, 259 + sizeof pieces / sizeof *pieces - 1);
    check_bin_refused(b.p, 3, "too short for the max_token_length header");
    check_bin_refused(b.p, 4, "no tokens");
    check_bin_refused(b.p, 10, "token 0 at byte 4: truncated");
    check_bin_refused(b.p, 14, "token 0 at byte 4: length 5 runs past the end");
    /* a huge length */
    sbuf_t h = llama2c_bin(8);
    memcpy(h.p + 8, "\xff\xff\xff\x7f", 4);
    check_bin_refused(h.p, h.n, "token 0 at byte 4: length 2147483647 is not in 0..max_token_length (8)");
    memcpy(h.p + 8, "\xff\xff\xff\xff", 4);
    check_bin_refused(h.p, h.n, "length -1");
    /* NaN score */
    memcpy(h.p + 8, "\x05\0\0\0", 4);
    memcpy(h.p + 4, "\0\0\xc0\x7f", 4);
    check_bin_refused(h.p, h.n, "token 0 at byte 4: score is not a finite number");
    free(h.p);
    sbuf_t m = llama2c_bin(0);
    check_bin_refused(m.p, m.n, "max_token_length 0 is not in 1..4096");
    free(m.p);
    sbuf_t s = llama2c_bin(4); /* "<0x00>" is 6 bytes */
    check_bin_refused(s.p, s.n, "token 0 at byte 4: length 5 is not in 0..max_token_length (4)");
    free(s.p);
    free(b.p);
}

/* ---- the model folder ------------------------------------------------------------- */

static void write_file(const char *dir, const char *name, const void *data, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

static void test_load_dir(void)
{
    char dir[] = "/tmp/mdl_tok_XXXXXX";
    mdl_tokenizer_t *tok = NULL;
    mdl_err_t err = {0};

    CHECK(mkdtemp(dir) != NULL);
    /* nothing: "no tokenizer" */
    CHECK_EQ_INT(mdl_tokenizer_load_dir(dir, &tok, &err), -ENOENT);
    CHECK(strstr(err.msg, "no tokenizer.json or tokenizer.bin"));
    write_file(dir, "tokenizer.model", "x", 1);
    CHECK_EQ_INT(mdl_tokenizer_load_dir(dir, &tok, &err), -ENOENT);
    CHECK(strstr(err.msg, "tokenizer.model, SentencePiece's own format, is not read"));
    /* tokenizer.bin with generation_config.json's eos list */
    sbuf_t b = llama2c_bin(8);
    write_file(dir, "tokenizer.bin", b.p, b.n);
    free(b.p);
    const char *gen = "{\"bos_token_id\": 1, \"eos_token_id\": [2, 7]}";
    write_file(dir, "generation_config.json", gen, strlen(gen));
    CHECK_EQ_INT(mdl_tokenizer_load_dir(dir, &tok, &err), 0);
    if (tok) {
        size_t n;
        const int32_t *eos = mdl_tokenizer_eos(tok, &n);
        CHECK_EQ_INT(n, 2);
        CHECK_EQ_INT(eos[0], 2);
        CHECK_EQ_INT(eos[1], 7);
        CHECK_EQ_INT(mdl_tokenizer_kind(tok), MDL_TOK_LLAMA2C);
        tok = mdl_tokenizer_free(tok);
    }
    /* tokenizer.json wins over tokenizer.bin; a broken one is an error naming it */
    write_file(dir, "tokenizer.json", "{\"model\": 3}", 12);
    CHECK_EQ_INT(mdl_tokenizer_load_dir(dir, &tok, &err), -EBADMSG);
    CHECK(strstr(err.msg, dir) && strstr(err.msg, "tokenizer.json: model: missing or not an object"));
    char *j = gpt2_json(NULL, false);
    write_file(dir, "tokenizer.json", j, strlen(j));
    free(j);
    write_file(dir, "config.json", "{\"eos_token_id\": \"x\"}", 21);
    CHECK_EQ_INT(mdl_tokenizer_load_dir(dir, &tok, &err), -EBADMSG);
    CHECK(strstr(err.msg, "config.json: eos_token_id"));
    write_file(dir, "config.json", "{\"eos_token_id\": 50}", 20);
    CHECK_EQ_INT(mdl_tokenizer_load_dir(dir, &tok, &err), 0);
    if (tok) {
        CHECK_EQ_INT(mdl_tokenizer_kind(tok), MDL_TOK_BYTE_BPE);
        CHECK(mdl_tokenizer_is_eos(tok, EOT_ID) && mdl_tokenizer_is_eos(tok, 2) &&
              mdl_tokenizer_is_eos(tok, 50));
        tok = mdl_tokenizer_free(tok);
    }
    const char *names[] = {"tokenizer.json", "tokenizer.bin", "generation_config.json",
                           "config.json", "tokenizer.model"};
    for (size_t i = 0; i < 5; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

static void test_chat_format(void)
{
    CHECK_EQ_INT(mdl_chat_format_detect(NULL), MDL_CHAT_NONE);
    CHECK_EQ_INT(mdl_chat_format_detect("{{ '<|im_start|>' + m }}"), MDL_CHAT_CHATML);
    CHECK_EQ_INT(mdl_chat_format_detect("{{ bos_token + '[INST] ' }}"), MDL_CHAT_LLAMA2);
    CHECK_EQ_INT(mdl_chat_format_detect("{{ '<start_of_turn>' }}"), MDL_CHAT_UNKNOWN);
}

int main(void)
{
    RUN(test_utf8_validate);
    RUN(test_utf8_fix);
    RUN(test_unicode_classes);
    RUN(test_gpt2_encode);
    RUN(test_gpt2_round_trip);
    RUN(test_stream_partial_characters);
    RUN(test_invalid_utf8_prompt);
    RUN(test_hf_corrupt);
    RUN(test_hf_truncated);
    RUN(test_hf_config);
    RUN(test_llama2c_encode);
    RUN(test_llama2c_corrupt);
    RUN(test_load_dir);
    RUN(test_chat_format);
    return check_summary();
}
