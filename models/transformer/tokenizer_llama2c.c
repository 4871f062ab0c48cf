/* llama2.c's tokenizer.bin (written by its tokenizer.py from a SentencePiece model):
 *
 *   int32   max_token_length   longest token in bytes
 *   then, for each id from 0 until the end of the file:
 *   float32 score              SentencePiece's piece score (higher merges first)
 *   int32   len                bytes that follow
 *   len     bytes              the piece, "\u2581" already written as " "; bos and eos as
 *                              "\n<s>\n" and "\n</s>\n"; byte pieces as "<0xNN>"
 *   all little-endian.
 *
 * Encoding follows run.c's encode(): a " " prefix, one symbol per character (unknown
 * characters as their <0xNN> tokens), then repeatedly the adjacent pair whose joined text
 * is a token with the best score. The file has no merge list, so the loader derives one:
 * every way of splitting a token's text into two tokens is a merge ranked by the token's
 * score. Byte pieces and bos/eos never take part (SentencePiece never builds them; run.c
 * could only through a vocabulary that spells them out of other pieces). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/transformer/tokenizer_internal.h"

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static float le_float(const uint8_t *p)
{
    uint32_t u = le32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

typedef struct pending {
    float score;
    int32_t left, right, merged;
} pending_t;

static int by_score(const void *a, const void *b)
{
    const pending_t *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->merged != y->merged ? (x->merged < y->merged ? -1 : 1) : 0;
}

static int derive_merges(mdl_tokenizer_t *tok, const float *scores)
{
    pending_t *list = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;

    for (size_t id = 0; id < tok->n_vocab; id++) {
        const char *k = tok->text + tok->key_off[id];
        size_t len = tok->key_len[id];
        if ((tok->flags[id] & TOKF_NOMERGE) || len < 2 ||
            mdl__tok_lookup(tok, k, len) != (int32_t)id)
            continue; /* a later duplicate: the text means its first id */
        for (size_t cut = 1; cut < len; cut++) {
            int32_t l = mdl__tok_lookup(tok, k, cut), r = mdl__tok_lookup(tok, k + cut, len - cut);
            if (l < 0 || r < 0 || (tok->flags[l] & TOKF_NOMERGE) || (tok->flags[r] & TOKF_NOMERGE))
                continue;
            if (n == cap) {
                size_t ncap = cap ? 2 * cap : 1024;
                pending_t *p = realloc(list, ncap * sizeof *p);
                if (!p) {
                    rc = -ENOMEM;
                    goto out;
                }
                list = p;
                cap = ncap;
            }
            list[n++] = (pending_t){scores[id], l, r, (int32_t)id};
        }
    }
    if (n)
        qsort(list, n, sizeof *list, by_score);
    if ((rc = mdl__tok_merges_init(&tok->merges, n)) < 0)
        goto out;
    /* equal scores share a rank, so the leftmost of them wins, as in run.c */
    uint32_t rank = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && list[i].score != list[i - 1].score)
            rank++;
        if ((rc = mdl__tok_merges_add(&tok->merges, list[i].left, list[i].right, rank,
                                      list[i].merged)) < 0)
            goto out;
    }
out:
    free(list);
    return rc;
}

static bool key_is(const mdl_tokenizer_t *tok, int32_t id, const char *s)
{
    return (size_t)id < tok->n_vocab && tok->key_len[id] == strlen(s) &&
           memcmp(tok->text + tok->key_off[id], s, tok->key_len[id]) == 0;
}

int mdl_tokenizer_load_llama2c(const void *data, size_t len, const char *config_json,
                               size_t config_len, mdl_tokenizer_t **ret, mdl_err_t *reterr)
{
    const uint8_t *d = data;
    float *scores = NULL;
    size_t n = 0;
    int rc;

    if (len > MDL_TOK_MAX_FILE_BYTES)
        return mdl_err_set(reterr, -E2BIG, "tokenizer.bin: %zu bytes is over the limit of %zu",
                           len, MDL_TOK_MAX_FILE_BYTES);
    if (len < 4)
        return mdl_err_set(reterr, -EBADMSG, "tokenizer.bin: %zu bytes: too short for the "
                                             "max_token_length header", len);
    int32_t max_len = (int32_t)le32(d);
    if (max_len < 1 || max_len > MDL_TOK_MAX_TOKEN_BYTES)
        return mdl_err_set(reterr, -EBADMSG, "tokenizer.bin: max_token_length %ld is not in "
                                             "1..%d", (long)max_len, MDL_TOK_MAX_TOKEN_BYTES);
    /* first pass: check every entry and count them */
    for (size_t off = 4; off < len; n++) {
        if (n >= MDL_TOK_MAX_VOCAB)
            return mdl_err_set(reterr, -EBADMSG, "tokenizer.bin: more than %zu tokens",
                               MDL_TOK_MAX_VOCAB);
        if (len - off < 8)
            return mdl_err_set(reterr, -EBADMSG, "tokenizer.bin: token %zu at byte %zu: "
                                                 "truncated (%zu bytes left, 8 needed for "
                                                 "score and length)", n, off, len - off);
        float score = le_float(d + off);
        int32_t tlen = (int32_t)le32(d + off + 4);
        if (!isfinite(score))
            return mdl_err_set(reterr, -EBADMSG, "tokenizer.bin: token %zu at byte %zu: score "
                                                 "is not a finite number", n, off);
        if (tlen < 0 || tlen > max_len)
            return mdl_err_set(reterr, -EBADMSG, "tokenizer.bin: token %zu at byte %zu: length "
                                                 "%ld is not in 0..max_token_length (%ld)",
                               n, off, (long)tlen, (long)max_len);
        if ((size_t)tlen > len - off - 8)
            return mdl_err_set(reterr, -EBADMSG, "tokenizer.bin: token %zu at byte %zu: length "
                                                 "%ld runs past the end of the file (%zu bytes)",
                               n, off, (long)tlen, len);
        off += 8 + (size_t)tlen;
    }
    if (n == 0)
        return mdl_err_set(reterr, -EBADMSG, "tokenizer.bin: no tokens after the header");

    mdl_tokenizer_t *tok = calloc(1, sizeof *tok);
    if (!tok || (rc = mdl__tok_alloc(tok, n)) < 0 || !(scores = malloc(n * sizeof *scores))) {
        rc = -ENOMEM;
        goto fail;
    }
    tok->kind = MDL_TOK_LLAMA2C;
    tok->space_sym[0] = ' ';
    tok->space_sym_len = 1;
    tok->prepend = 1;
    tok->strip_leading = true;
    tok->byte_fallback = true;
    for (size_t id = 0, off = 4; id < n; id++) {
        size_t tlen = le32(d + off + 4);
        scores[id] = le_float(d + off);
        if ((rc = mdl__tok_text_add(tok, d + off + 8, tlen, &tok->key_off[id])) < 0)
            goto fail;
        tok->key_len[id] = (uint32_t)tlen;
        tok->flags[id] = TOKF_PRESENT;
        off += 8 + tlen;
    }
    /* llama2.c's fixed ids: 0 unk, 1 bos, 2 eos (run.c hard-codes 1 and 2) */
    tok->unk_id = n > 0 ? 0 : -1;
    tok->bos_id = n > 1 ? 1 : -1;
    tok->n_eos = 0;
    if (n > 2)
        mdl__tok_add_eos(tok, 2);
    tok->add_bos = true;
    /* The control pieces become special added tokens spelled as SentencePiece spells them
     * ("<s>", not tokenizer.py's "\n<s>\n"), so a chat template's "<s>" finds id 1 with
     * MDL_TOK_ALLOW_SPECIAL and decoding without MDL_TOK_SKIP_SPECIAL prints "<s>". */
    static const char *const controls[3][2] = {
        {"<unk>", "<unk>"}, {"\n<s>\n", "<s>"}, {"\n</s>\n", "</s>"}};
    for (int32_t id = 0; id < 3 && (size_t)id < n; id++) {
        if (!key_is(tok, id, controls[id][0]) && !key_is(tok, id, controls[id][1]))
            continue;
        const char *name = controls[id][1];
        if ((rc = mdl__tok_text_add(tok, name, strlen(name), &tok->key_off[id])) < 0)
            goto fail;
        tok->key_len[id] = (uint32_t)strlen(name);
        tok->flags[id] |= TOKF_NOMERGE;
        if ((rc = mdl__tok_add_special(tok, id)) < 0)
            goto fail;
    }
    if ((rc = mdl__tok_make_pieces(tok)) < 0 || (rc = mdl__tok_build_vocab(tok)) < 0)
        goto fail;
    for (int b = 0; b < 256; b++) {
        static const char hex[] = "0123456789ABCDEF";
        char bt[6] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'};
        tok->byte_id[b] = mdl__tok_lookup(tok, bt, 6);
    }
    tok->space_id = mdl__tok_lookup(tok, " ", 1);
    if ((rc = derive_merges(tok, scores)) < 0)
        goto fail;
    mdl__tok_auto_split(tok);
    if (config_json && (rc = mdl__tok_apply_config(tok, config_json, config_len, reterr)) < 0)
        goto fail;
    if ((rc = mdl__tok_index_added(tok)) < 0)
        goto fail;
    free(scores);
    *ret = tok;
    return 0;
fail:
    free(scores);
    mdl_tokenizer_free(tok);
    if (rc == -ENOMEM || rc == -E2BIG)
        return mdl_err_set(reterr, rc, "tokenizer.bin: %s", rc == -ENOMEM ? "out of memory"
                                                                          : "too large");
    return rc;
}
