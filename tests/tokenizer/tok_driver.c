/* Drives models/transformer/tokenizer for tests/tokenizer/test_*.py.
 *
 *   tok_driver DIR [--bin] < COMMANDS     load DIR's tokenizer (mdl_tokenizer_load_dir, or
 *                                          with --bin: DIR/tokenizer.bin alone) and run
 *                                          one command per line
 *   tok_driver DIR --bench FILE REPEAT    encode FILE's text REPEAT times; print
 *                                          "bytes tokens best_ms"
 *
 * Commands (text and bytes in hex, ids in decimal, FLAGS a number of MDL_TOK_* bits):
 *   e FLAGS HEX          encode   -> "ok ID ID ..." or "err CODE MESSAGE"
 *   d FLAGS ID ...       decode   -> "ok HEX" or "err CODE MESSAGE"
 *   s PREV FLAGS ID ...  stream   -> "ok HEX,HEX,...,HEX" (one chunk per id, then the
 *                                    finish chunk; an empty chunk is "-")
 *   i                    info     -> "ok KIND VOCAB BOS ADD_BOS CHAT_FORMAT EOS..."
 *   f HEX                find     -> "ok ID"
 * A load failure prints "loaderr CODE MESSAGE" and exits 1. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "models/file.h"
#include "models/transformer/tokenizer.h"

static void put_hex(const char *s, size_t n)
{
    if (n == 0) {
        putchar('-');
        return;
    }
    for (size_t i = 0; i < n; i++)
        printf("%02x", (unsigned char)s[i]);
}

static size_t unhex(const char *h, char *out)
{
    size_t n = 0;
    if (h[0] == '-')
        return 0;
    for (; h[0] && h[1] && h[0] != ' ' && h[0] != '\n'; h += 2) {
        unsigned v;
        sscanf(h, "%2x", &v);
        out[n++] = (char)v;
    }
    return n;
}

/* Parses decimal ids from s into ids (cap entries); returns the count. */
static size_t parse_ids(char *s, int32_t *ids, size_t cap)
{
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(s, " \n", &save); t && n < cap; t = strtok_r(NULL, " \n", &save))
        ids[n++] = (int32_t)strtol(t, NULL, 10);
    return n;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int bench(const mdl_tokenizer_t *tok, const char *path, int repeat)
{
    char *text;
    size_t len, n = 0;
    mdl_err_t err = {0};
    double best = 1e30;

    if (mdl_file_read(path, (size_t)1 << 30, &text, &len, NULL, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    for (int r = 0; r < repeat; r++) {
        int32_t *ids;
        double t0 = now_ms();
        if (mdl_tokenizer_encode(tok, text, len, 0, &ids, &n, &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            free(text);
            return 1;
        }
        double t = now_ms() - t0;
        if (t < best)
            best = t;
        free(ids);
    }
    printf("%zu %zu %.3f\n", len, n, best);
    free(text);
    return 0;
}

int main(int argc, char **argv)
{
    mdl_tokenizer_t *tok = NULL;
    mdl_err_t err = {0};
    int rc;

    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [--bin | --bench FILE REPEAT] < COMMANDS\n", argv[0]);
        return 2;
    }
    if (argc >= 3 && strcmp(argv[2], "--bin") == 0) {
        char path[4096], *data;
        size_t len;
        snprintf(path, sizeof path, "%s/tokenizer.bin", argv[1]);
        rc = mdl_file_read(path, MDL_TOK_MAX_FILE_BYTES, &data, &len, NULL, &err);
        if (rc == 0) {
            rc = mdl_tokenizer_load_llama2c(data, len, NULL, 0, &tok, &err);
            free(data);
        }
    } else {
        rc = mdl_tokenizer_load_dir(argv[1], &tok, &err);
    }
    if (rc < 0) {
        printf("loaderr %d %s\n", rc, err.msg);
        return 1;
    }
    if (argc == 5 && strcmp(argv[2], "--bench") == 0) {
        rc = bench(tok, argv[3], atoi(argv[4]));
        mdl_tokenizer_free(tok);
        return rc;
    }

    size_t cap = 1 << 16;
    char *line = NULL, *buf = malloc(cap);
    int32_t *ids = malloc(cap * sizeof *ids);
    size_t line_cap = 0;
    ssize_t got;
    while ((got = getline(&line, &line_cap, stdin)) > 0) {
        if ((size_t)got / 2 + 16 > cap) {
            cap = (size_t)got / 2 + 16;
            buf = realloc(buf, cap);
            ids = realloc(ids, cap * sizeof *ids);
        }
        char cmd = line[0];
        char *rest = line + (got > 1 ? 2 : 1);
        if (cmd == 'e') {
            unsigned flags = (unsigned)strtoul(rest, &rest, 10);
            size_t n = unhex(rest + 1, buf), n_ids;
            int32_t *out;
            if ((rc = mdl_tokenizer_encode(tok, buf, n, flags, &out, &n_ids, &err)) < 0) {
                printf("err %d %s\n", rc, err.msg);
            } else {
                printf("ok");
                for (size_t i = 0; i < n_ids; i++)
                    printf(" %d", out[i]);
                printf("\n");
                free(out);
            }
        } else if (cmd == 'd') {
            unsigned flags = (unsigned)strtoul(rest, &rest, 10);
            size_t n = parse_ids(rest, ids, cap), len;
            char *text;
            if ((rc = mdl_tokenizer_decode(tok, ids, n, flags, &text, &len, &err)) < 0) {
                printf("err %d %s\n", rc, err.msg);
            } else {
                printf("ok ");
                put_hex(text, len);
                printf("\n");
                free(text);
            }
        } else if (cmd == 's') {
            long prev = strtol(rest, &rest, 10);
            unsigned flags = (unsigned)strtoul(rest, &rest, 10);
            size_t n = parse_ids(rest, ids, cap), len;
            const char *chunk;
            mdl_tok_stream_t st;
            if (mdl_tok_stream_init(&st, tok, (int32_t)prev, flags) < 0) {
                printf("err %d out of memory\n", -ENOMEM);
                continue;
            }
            printf("ok ");
            for (size_t i = 0; i < n; i++) {
                if ((rc = mdl_tok_stream_push(&st, ids[i], &chunk, &len, &err)) < 0) {
                    printf("!err %d %s", rc, err.msg);
                    break;
                }
                put_hex(chunk, len);
                putchar(',');
            }
            mdl_tok_stream_finish(&st, &chunk, &len);
            put_hex(chunk, len);
            printf("\n");
            mdl_tok_stream_done(&st);
        } else if (cmd == 'i') {
            size_t n_eos;
            const int32_t *eos = mdl_tokenizer_eos(tok, &n_eos);
            printf("ok %s %zu %d %d %d", mdl_tok_kind_name(mdl_tokenizer_kind(tok)),
                   mdl_tokenizer_vocab_size(tok), mdl_tokenizer_bos(tok),
                   mdl_tokenizer_add_bos_default(tok), (int)mdl_tokenizer_chat_format(tok));
            for (size_t i = 0; i < n_eos; i++)
                printf(" %d", eos[i]);
            printf("\n");
        } else if (cmd == 'f') {
            size_t n = unhex(rest, buf);
            printf("ok %d\n", mdl_tokenizer_find(tok, buf, n));
        } else {
            printf("err 0 unknown command\n");
        }
        fflush(stdout);
    }
    free(line);
    free(buf);
    free(ids);
    mdl_tokenizer_free(tok);
    return 0;
}
