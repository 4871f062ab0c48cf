/* Encoding, decoding and streaming over a loaded tokenizer (the loaders are in
 * tokenizer_load.c and tokenizer_llama2c.c, the merge loop in tokenizer_bpe.c).
 *
 * Encode: check UTF-8; cut the text at added tokens (leftmost, longest first); each piece
 * of plain text between them goes through the kind's front end (SentencePiece: "\u2581"
 * prefix and spaces as "\u2581", one symbol per character; byte-level: GPT-2 words, one
 * symbol per byte) and the BPE merges. Decode: each token's bytes, through the UTF-8
 * repairer, which also makes streaming chunks whole characters. */
#include <stdlib.h>
#include <string.h>

#include "models/transformer/tokenizer_internal.h"

/* ---- encoding ----------------------------------------------------------------------- */

typedef struct enc {
    const mdl_tokenizer_t *tok;
    const uint8_t *text; /* the whole input (for "at the start of the text") */
    tok_scratch_t sc;
    tok_ids_t out;
    uint8_t *tmp;        /* byte-level: a copy with a space in front, a mapped word */
    size_t tmp_cap;
} enc_t;

static int tmp_reserve(enc_t *e, size_t n)
{
    if (n <= e->tmp_cap)
        return 0;
    uint8_t *p = realloc(e->tmp, n);
    if (!p)
        return -ENOMEM;
    e->tmp = p;
    e->tmp_cap = n;
    return 0;
}

static bool is_ws(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static bool is_word_byte(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           c == '_' || c >= 0x80;
}

static inline bool has_added(const mdl_tokenizer_t *tok, uint8_t b)
{
    return tok->added_first[b] != tok->added_first[b + 1];
}

/* The added token matching at s[i] (longest first) among the normalized ones or the
 * others, or NULL. */
static const tok_added_t *added_at(const mdl_tokenizer_t *tok, const uint8_t *s, size_t len,
                                   size_t i, bool allow_special, bool normalized)
{
    uint8_t b = s[i];

    for (uint32_t k = tok->added_first[b]; k < tok->added_first[b + 1]; k++) {
        const tok_added_t *a = &tok->added[k];
        if ((a->special && !allow_special) || a->normalized != normalized)
            continue;
        if (a->len > len - i || memcmp(s + i, tok->text + a->off, a->len) != 0)
            continue;
        if (a->single_word && ((i > 0 && is_word_byte(s[i - 1])) ||
                               (i + a->len < len && is_word_byte(s[i + a->len]))))
            continue;
        return a;
    }
    return NULL;
}

/* SentencePiece kinds: symbols for s[0..len), merged word by word; normalized added
 * tokens cut the word where they match. */
static int encode_sp(enc_t *e, const uint8_t *s, size_t len, bool text_start,
                     bool allow_special)
{
    const mdl_tokenizer_t *tok = e->tok;
    size_t n = 0;
    int rc;

    if (len == 0)
        return 0;
    bool prefix = tok->prepend == 1 || (tok->prepend == 2 && text_start), prev_space = false;
    for (size_t i = prefix ? (size_t)-1 : 0; i != len;) {
        const uint8_t *ch;
        const tok_added_t *hit;
        size_t clen;
        bool space;
        if (i == (size_t)-1 || s[i] == ' ') {
            ch = (const uint8_t *)tok->space_sym;
            clen = tok->space_sym_len;
            space = true;
            i = i == (size_t)-1 ? 0 : i + 1;
        } else if (tok->any_normalized && has_added(tok, s[i]) &&
                   (hit = added_at(tok, s, len, i, allow_special, true))) {
            if ((rc = mdl__tok_bpe(tok, &e->sc, n, &e->out)) < 0 ||
                (rc = mdl__tok_ids_push(&e->out, hit->id)) < 0)
                return rc;
            n = 0;
            i += hit->len;
            prev_space = false;
            continue;
        } else {
            uint32_t cp;
            ch = s + i;
            clen = mdl_utf8_decode(s + i, len - i, &cp);
            if (clen == 0)
                clen = 1; /* not reached: the text was validated */
            /* the marker itself written in the text is a space to the merges too */
            space = clen == tok->space_sym_len && memcmp(ch, tok->space_sym, clen) == 0;
            i += clen;
        }
        if (space && n > 0 &&
            (tok->split_words == 1 || (tok->split_words == 2 && !prev_space))) {
            if ((rc = mdl__tok_bpe(tok, &e->sc, n, &e->out)) < 0)
                return rc;
            n = 0;
        }
        prev_space = space;
        if ((rc = mdl__tok_scratch_reserve(&e->sc, n + 1)) < 0)
            return rc;
        tok_sym_t *y = &e->sc.syms[n++];
        y->id = space && tok->space_id >= 0 ? tok->space_id : mdl__tok_lookup(tok, ch, clen);
        y->n_bytes = 0;
        if (y->id < 0) {
            y->n_bytes = (uint8_t)(clen <= 4 ? clen : 4);
            memcpy(y->bytes, ch, y->n_bytes);
        }
    }
    return mdl__tok_bpe(tok, &e->sc, n, &e->out);
}

/* Byte-level BPE: GPT-2 words, one symbol per byte. */
static int encode_word_bytes(enc_t *e, const uint8_t *w, size_t len)
{
    const mdl_tokenizer_t *tok = e->tok;
    int rc;

    if (tok->ignore_merges) {
        /* the word as the vocabulary spells it: each byte as its stand-in character */
        if ((rc = tmp_reserve(e, 2 * len)) < 0)
            return rc;
        size_t m = 0;
        for (size_t i = 0; i < len; i++) {
            uint8_t u[4];
            size_t k = mdl_utf8_encode(mdl__tok_byte_to_cp(w[i]), u);
            memcpy(e->tmp + m, u, k);
            m += k;
        }
        int32_t id = mdl__tok_lookup(tok, e->tmp, m);
        if (id >= 0)
            return mdl__tok_ids_push(&e->out, id);
    }
    if ((rc = mdl__tok_scratch_reserve(&e->sc, len)) < 0)
        return rc;
    for (size_t i = 0; i < len; i++) {
        tok_sym_t *y = &e->sc.syms[i];
        y->id = tok->byte_id[w[i]];
        y->n_bytes = 1;
        y->bytes[0] = w[i];
    }
    return mdl__tok_bpe(tok, &e->sc, len, &e->out);
}

static int encode_byte_level(enc_t *e, const uint8_t *s, size_t len, bool use_regex)
{
    int rc;

    if (len == 0)
        return 0;
    if (e->tok->add_prefix_space && s[0] != ' ') {
        uint8_t *copy = malloc(len + 1);
        if (!copy)
            return -ENOMEM;
        copy[0] = ' ';
        memcpy(copy + 1, s, len);
        rc = encode_byte_level(e, copy, len + 1, use_regex);
        free(copy);
        return rc;
    }
    if (!use_regex)
        return encode_word_bytes(e, s, len);
    for (size_t pos = 0; pos < len;) {
        size_t end = mdl__tok_gpt2_next(s, len, pos);
        if ((rc = encode_word_bytes(e, s + pos, end - pos)) < 0)
            return rc;
        pos = end;
    }
    return 0;
}

static int encode_plain(enc_t *e, const uint8_t *s, size_t len, bool allow_special)
{
    bool text_start = s == e->text;

    if (e->tok->kind == MDL_TOK_BYTE_BPE)
        return encode_byte_level(e, s, len, e->tok->byte_regex);
    return encode_sp(e, s, len, text_start, allow_special);
}

int mdl_tokenizer_encode(const mdl_tokenizer_t *tok, const char *text, size_t len,
                         unsigned flags, int32_t **ret_ids, size_t *ret_n, mdl_err_t *reterr)
{
    const uint8_t *s = (const uint8_t *)text;
    size_t bad;
    const char *why;
    int rc = 0;

    if (len > (size_t)INT32_MAX - 8)
        return mdl_err_set(reterr, -E2BIG, "text of %zu bytes is too long to tokenize", len);
    if (!mdl_utf8_validate(s, len, &bad, &why))
        return mdl_err_set(reterr, -EPROTO, "invalid UTF-8 at byte %zu: %s", bad, why);

    enc_t e = {.tok = tok, .text = s};
    if ((flags & MDL_TOK_ADD_BOS) && tok->bos_id >= 0)
        rc = mdl__tok_ids_push(&e.out, tok->bos_id);

    size_t seg = 0;
    for (size_t i = 0; rc == 0 && i < len && tok->n_added;) {
        const tok_added_t *a = has_added(tok, s[i]) ? added_at(tok, s, len, i,
                                                               flags & MDL_TOK_ALLOW_SPECIAL,
                                                               false)
                                                    : NULL;
        if (!a) {
            i++;
            continue;
        }
        size_t seg_end = i;
        if (a->lstrip)
            while (seg_end > seg && is_ws(s[seg_end - 1]))
                seg_end--;
        if ((rc = encode_plain(&e, s + seg, seg_end - seg, flags & MDL_TOK_ALLOW_SPECIAL)) < 0)
            break;
        if ((rc = mdl__tok_ids_push(&e.out, a->id)) < 0)
            break;
        i += a->len;
        if (a->rstrip)
            while (i < len && is_ws(s[i]))
                i++;
        seg = i;
    }
    if (rc == 0)
        rc = encode_plain(&e, s + seg, len - seg, flags & MDL_TOK_ALLOW_SPECIAL);
    mdl__tok_scratch_free(&e.sc);
    free(e.tmp);
    if (rc < 0) {
        free(e.out.v);
        return mdl_err_set(reterr, rc, "tokenizing: %s", rc == -ENOMEM ? "out of memory"
                                                                    : "internal limit");
    }
    *ret_ids = e.out.v;
    *ret_n = e.out.n;
    return 0;
}

/* ---- decoding ----------------------------------------------------------------------- */

static int range_error(const mdl_tokenizer_t *tok, int32_t id, size_t pos, mdl_err_t *reterr)
{
    return mdl_err_set(reterr, -ERANGE,
                       "token id %ld at position %zu is outside the vocabulary (0..%zu)",
                       (long)id, pos, tok->n_vocab ? tok->n_vocab - 1 : 0);
}

/* Appends id's text to out (room for 3 * (piece_len + 6) bytes) through the repairer;
 * returns the bytes written. */
static size_t emit(const mdl_tokenizer_t *tok, int32_t id, unsigned flags, bool *at_start,
                   mdl_utf8_fix_t *fix, uint8_t *out)
{
    uint8_t fl = tok->flags[id];
    const uint8_t *p = (const uint8_t *)tok->text + tok->piece_off[id];
    size_t n = tok->piece_len[id], w = 0;

    /* SentencePiece decodes each run of byte pieces on its own: any other token, even
     * one that prints nothing, ends the run (and an unfinished character in it) */
    if (tok->kind != MDL_TOK_BYTE_BPE && !(fl & TOKF_BYTE))
        w = mdl_utf8_fix_finish(fix, out);
    if (!(fl & TOKF_PRESENT) || ((flags & MDL_TOK_SKIP_SPECIAL) && (fl & TOKF_SPECIAL)))
        return w;
    if (n == 0)
        return w;
    /* the space a normalizer put in front of the text; a byte piece is the text's own */
    if (*at_start && tok->strip_leading && p[0] == ' ' && !(fl & TOKF_BYTE)) {
        p++;
        n--;
    }
    *at_start = false;
    return w + mdl_utf8_fix_feed(fix, p, n, out + w);
}

int mdl_tokenizer_decode(const mdl_tokenizer_t *tok, const int32_t *ids, size_t n,
                         unsigned flags, char **ret_text, size_t *ret_len, mdl_err_t *reterr)
{
    size_t need = 16;

    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= tok->n_vocab)
            return range_error(tok, ids[i], i, reterr);
        need += 3 * ((size_t)tok->piece_len[ids[i]] + 6);
    }
    uint8_t *out = malloc(need);
    if (!out)
        return mdl_err_set(reterr, -ENOMEM, "decoding %zu tokens: out of memory", n);
    mdl_utf8_fix_t fix;
    mdl_utf8_fix_init(&fix, tok->kind != MDL_TOK_BYTE_BPE);
    bool at_start = true;
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        w += emit(tok, ids[i], flags, &at_start, &fix, out + w);
    w += mdl_utf8_fix_finish(&fix, out + w);
    out[w] = '\0';
    *ret_text = (char *)out;
    *ret_len = w;
    return 0;
}

int mdl_tok_stream_init(mdl_tok_stream_t *s, const mdl_tokenizer_t *tok, int32_t prev_id,
                        unsigned flags)
{
    memset(s, 0, sizeof *s);
    s->tok = tok;
    s->flags = flags;
    s->at_start = prev_id < 0 || (tok->bos_id >= 0 && prev_id == tok->bos_id);
    mdl_utf8_fix_init(&s->fix, tok->kind != MDL_TOK_BYTE_BPE);
    s->cap = 3 * (tok->max_piece_len + 6) + 16;
    s->buf = malloc(s->cap);
    return s->buf ? 0 : -ENOMEM;
}

int mdl_tok_stream_push(mdl_tok_stream_t *s, int32_t id, const char **ret_text,
                        size_t *ret_len, mdl_err_t *reterr)
{
    if (id < 0 || (size_t)id >= s->tok->n_vocab)
        return mdl_err_set(reterr, -ERANGE, "token id %ld is outside the vocabulary (0..%zu)",
                           (long)id, s->tok->n_vocab ? s->tok->n_vocab - 1 : 0);
    size_t w = emit(s->tok, id, s->flags, &s->at_start, &s->fix, (uint8_t *)s->buf);
    s->buf[w] = '\0';
    *ret_text = s->buf;
    *ret_len = w;
    return 0;
}

void mdl_tok_stream_finish(mdl_tok_stream_t *s, const char **ret_text, size_t *ret_len)
{
    size_t w = mdl_utf8_fix_finish(&s->fix, (uint8_t *)s->buf);
    s->buf[w] = '\0';
    *ret_text = s->buf;
    *ret_len = w;
}

void mdl_tok_stream_done(mdl_tok_stream_t *s)
{
    free(s->buf);
    s->buf = NULL;
    s->cap = 0;
}

/* ---- what the tokenizer knows ------------------------------------------------------- */

mdl_tokenizer_t *mdl_tokenizer_free(mdl_tokenizer_t *tok)
{
    if (!tok)
        return NULL;
    mdl__tok_maps_free(tok);
    free(tok->flags);
    free(tok->key_off);
    free(tok->key_len);
    free(tok->piece_off);
    free(tok->piece_len);
    free(tok->text);
    free(tok->added);
    free(tok->chat_template);
    free(tok);
    return NULL;
}

mdl_tok_kind_t mdl_tokenizer_kind(const mdl_tokenizer_t *tok)
{
    return tok->kind;
}

const char *mdl_tok_kind_name(mdl_tok_kind_t kind)
{
    switch (kind) {
    case MDL_TOK_BYTE_BPE:
        return "byte_bpe";
    case MDL_TOK_SP_BPE:
        return "sp_bpe";
    case MDL_TOK_LLAMA2C:
        return "llama2c";
    }
    return "?";
}

size_t mdl_tokenizer_vocab_size(const mdl_tokenizer_t *tok)
{
    return tok->n_vocab;
}

int32_t mdl_tokenizer_bos(const mdl_tokenizer_t *tok)
{
    return tok->bos_id;
}

const int32_t *mdl_tokenizer_eos(const mdl_tokenizer_t *tok, size_t *ret_n)
{
    *ret_n = tok->n_eos;
    return tok->eos;
}

bool mdl_tokenizer_is_eos(const mdl_tokenizer_t *tok, int32_t id)
{
    for (size_t i = 0; i < tok->n_eos; i++)
        if (tok->eos[i] == id)
            return true;
    return false;
}

bool mdl_tokenizer_add_bos_default(const mdl_tokenizer_t *tok)
{
    return tok->add_bos && tok->bos_id >= 0;
}

bool mdl_tokenizer_is_special(const mdl_tokenizer_t *tok, int32_t id)
{
    return id >= 0 && (size_t)id < tok->n_vocab && (tok->flags[id] & TOKF_SPECIAL);
}

const char *mdl_tokenizer_piece(const mdl_tokenizer_t *tok, int32_t id, size_t *ret_len)
{
    if (id < 0 || (size_t)id >= tok->n_vocab)
        return NULL;
    *ret_len = tok->piece_len[id];
    return tok->text + tok->piece_off[id];
}

int32_t mdl_tokenizer_find(const mdl_tokenizer_t *tok, const char *s, size_t len)
{
    for (size_t i = 0; i < tok->n_added; i++)
        if (tok->added[i].len == len && memcmp(tok->text + tok->added[i].off, s, len) == 0)
            return tok->added[i].id;
    return mdl__tok_lookup(tok, s, len);
}

const char *mdl_tokenizer_chat_template(const mdl_tokenizer_t *tok)
{
    return tok->chat_template;
}

mdl_chat_format_t mdl_tokenizer_chat_format(const mdl_tokenizer_t *tok)
{
    return tok->chat_format;
}

mdl_chat_format_t mdl_chat_format_detect(const char *t)
{
    if (!t)
        return MDL_CHAT_NONE;
    if (strstr(t, "<|im_start|>"))
        return MDL_CHAT_CHATML;
    if (strstr(t, "[INST]"))
        return MDL_CHAT_LLAMA2;
    return MDL_CHAT_UNKNOWN;
}
