/* Loading tokenizers: Hugging Face tokenizer.json (+ tokenizer_config.json), the model
 * folder (which file, plus the bos/eos ids of generation_config.json and config.json).
 * llama2.c's tokenizer.bin is read by tokenizer_llama2c.c.
 *
 * tokenizer.json describes a pipeline (normalizer, pre-tokenizer, model, decoder) that
 * can be assembled in many ways; this code recognises the two that real Llama- and
 * GPT-2-style checkpoints use and refuses anything else by name rather than encoding
 * differently from the library that trained the model:
 *   byte-level BPE: no normalizer; pre_tokenizer ByteLevel (or GPT-2's Split pattern
 *                   followed by ByteLevel without regex); model BPE.
 *   SentencePiece:  normalizer Prepend("\u2581") + Replace(" ", "\u2581") (what HF saves
 *                   for Llama), or pre_tokenizer Metaspace; model BPE, usually with
 *                   byte_fallback; no normalizer or pre-tokenizer at all is a plain BPE
 *                   over characters and is accepted too. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "models/file.h"
#include "models/json.h"
#include "models/transformer/tokenizer_internal.h"

#define SPM_SPACE "\xE2\x96\x81" /* U+2581, SentencePiece's space marker */
#define GPT2_PATTERN                                                                               \
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
#define JSON_DEPTH 64

static int bad(mdl_err_t *reterr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(mdl_err_t *reterr, const char *fmt, ...)
{
    if (reterr) {
        va_list ap;
        va_start(ap, fmt);
        reterr->code = -EBADMSG;
        vsnprintf(reterr->msg, sizeof reterr->msg, fmt, ap);
        va_end(ap);
    }
    return -EBADMSG;
}

/* A string member, or NULL if absent or null; -EBADMSG (via *rc) if another type. */
static const mdl_json_t *opt_string(const mdl_json_t *obj, const char *path, const char *key,
                                    int *rc, mdl_err_t *reterr)
{
    const mdl_json_t *v = obj ? mdl_json_find(obj, key) : NULL;

    if (!v || v->type == MDL_JSON_NULL)
        return NULL;
    if (v->type != MDL_JSON_STRING) {
        *rc = bad(reterr, "%s%s%s: expected a string, got %s", path, *path ? "." : "", key,
                  mdl_json_type_name((mdl_json_type_t)v->type));
        return NULL;
    }
    return v;
}

/* A boolean member, default def when absent or null. */
static int opt_bool(const mdl_json_t *obj, const char *path, const char *key, bool def,
                    bool *ret, mdl_err_t *reterr)
{
    const mdl_json_t *v = obj ? mdl_json_find(obj, key) : NULL;

    if (!v || v->type == MDL_JSON_NULL) {
        *ret = def;
        return 0;
    }
    if (v->type != MDL_JSON_BOOL)
        return bad(reterr, "%s%s%s: expected a boolean, got %s", path, *path ? "." : "", key,
                   mdl_json_type_name((mdl_json_type_t)v->type));
    *ret = v->u.boolean;
    return 0;
}

static bool str_is(const mdl_json_t *v, const char *s)
{
    return v && v->type == MDL_JSON_STRING && v->len == strlen(s) && memcmp(v->u.str, s, v->len) == 0;
}

/* An id: an integral number in [0, MDL_TOK_MAX_VOCAB). */
static int get_id(const mdl_json_t *v, const char *what, int32_t *ret, mdl_err_t *reterr)
{
    if (!v || v->type != MDL_JSON_NUMBER)
        return bad(reterr, "%s: expected a token id, got %s", what,
                   v ? mdl_json_type_name((mdl_json_type_t)v->type) : "nothing");
    double d = v->u.num;
    if (d != floor(d) || d < 0 || d >= (double)MDL_TOK_MAX_VOCAB)
        return bad(reterr, "%s: token id %.17g is not an integer in 0..%zu", what, d,
                   MDL_TOK_MAX_VOCAB - 1);
    *ret = (int32_t)d;
    return 0;
}

/* ---- added tokens ------------------------------------------------------------------- */

static int key_set(mdl_tokenizer_t *tok, int32_t id, const char *s, size_t len,
                   const char *what, mdl_err_t *reterr)
{
    if (len > MDL_TOK_MAX_TOKEN_BYTES)
        return bad(reterr, "%s: token %ld is %zu bytes long (limit %d)", what, (long)id, len,
                   MDL_TOK_MAX_TOKEN_BYTES);
    if (tok->flags[id] & TOKF_PRESENT) {
        if (tok->key_len[id] == len && memcmp(tok->text + tok->key_off[id], s, len) == 0)
            return 0;
        return bad(reterr, "%s: id %ld is given to both '%.40s' and '%.*s'", what, (long)id,
                   tok->text + tok->key_off[id], (int)(len < 40 ? len : 40), s);
    }
    uint32_t off;
    int rc = mdl__tok_text_add(tok, s, len, &off);
    if (rc < 0)
        return rc;
    tok->flags[id] |= TOKF_PRESENT;
    tok->key_off[id] = off;
    tok->key_len[id] = (uint32_t)len;
    return 0;
}

/* Registers an added token (the same id twice keeps the first definition). */
static int add_added(mdl_tokenizer_t *tok, int32_t id, const char *s, size_t len, bool special,
                     bool lstrip, bool rstrip, bool single_word, bool normalized,
                     const char *what, mdl_err_t *reterr)
{
    int rc;

    if (len == 0)
        return bad(reterr, "%s: added token %ld has empty content", what, (long)id);
    if ((size_t)id >= tok->n_vocab)
        return bad(reterr, "%s: added token id %ld is outside the vocabulary (0..%zu)", what,
                   (long)id, tok->n_vocab - 1);
    if ((rc = key_set(tok, id, s, len, what, reterr)) < 0)
        return rc;
    for (size_t i = 0; i < tok->n_added; i++)
        if (tok->added[i].id == id)
            return 0;
    if (tok->n_added == tok->cap_added) {
        size_t cap = tok->cap_added ? 2 * tok->cap_added : 16;
        tok_added_t *a = realloc(tok->added, cap * sizeof *a);
        if (!a)
            return -ENOMEM;
        tok->added = a;
        tok->cap_added = cap;
    }
    tok->added[tok->n_added++] = (tok_added_t){
        .id = id, .off = tok->key_off[id], .len = (uint32_t)len, .special = special,
        .lstrip = lstrip, .rstrip = rstrip, .single_word = single_word,
        .normalized = normalized && tok->kind != MDL_TOK_BYTE_BPE};
    tok->any_normalized |= tok->added[tok->n_added - 1].normalized;
    tok->flags[id] |= TOKF_ADDED | (special ? TOKF_SPECIAL : 0);
    return 0;
}

int mdl__tok_add_special(mdl_tokenizer_t *tok, int32_t id)
{
    return add_added(tok, id, tok->text + tok->key_off[id], tok->key_len[id], true, false, false,
                     false, false, "tokenizer", NULL);
}

/* One added-token object ({content, special, lstrip, rstrip, single_word, ...}). */
static int parse_added(mdl_tokenizer_t *tok, const mdl_json_t *o, int32_t id, const char *path,
                       mdl_err_t *reterr)
{
    int rc = 0;
    bool special, lstrip, rstrip, single_word, normalized;

    if (o->type != MDL_JSON_OBJECT)
        return bad(reterr, "%s: expected an object, got %s", path,
                   mdl_json_type_name((mdl_json_type_t)o->type));
    const mdl_json_t *c = opt_string(o, path, "content", &rc, reterr);
    if (rc < 0)
        return rc;
    if (!c)
        return bad(reterr, "%s.content: missing", path);
    if ((rc = opt_bool(o, path, "special", false, &special, reterr)) < 0 ||
        (rc = opt_bool(o, path, "lstrip", false, &lstrip, reterr)) < 0 ||
        (rc = opt_bool(o, path, "rstrip", false, &rstrip, reterr)) < 0 ||
        (rc = opt_bool(o, path, "single_word", false, &single_word, reterr)) < 0 ||
        (rc = opt_bool(o, path, "normalized", !special, &normalized, reterr)) < 0)
        return rc;
    return add_added(tok, id, c->u.str, c->len, special, lstrip, rstrip, single_word,
                     normalized, path, reterr);
}

void mdl__tok_auto_split(mdl_tokenizer_t *tok)
{
    size_t m = tok->space_sym_len;

    if (tok->kind == MDL_TOK_BYTE_BPE || tok->split_words || m == 0)
        return;
    for (size_t id = 0; id < tok->n_vocab; id++) {
        const char *k = tok->text + tok->key_off[id];
        size_t len = tok->key_len[id];
        if (!(tok->flags[id] & TOKF_PRESENT) || (tok->flags[id] & TOKF_ADDED))
            continue;
        /* a marker at i > 0 must follow another marker */
        for (size_t i = 1; i + m <= len; i++)
            if (memcmp(k + i, tok->space_sym, m) == 0 &&
                (i < m || memcmp(k + i - m, tok->space_sym, m) != 0))
                return;
    }
    tok->split_words = 2;
}

int mdl__tok_index_added(mdl_tokenizer_t *tok)
{
    /* counting sort by first byte, longest first within a byte (insertion sort: the
     * lists are short) */
    tok_added_t *sorted;
    uint32_t count[257] = {0};

    if (tok->n_added == 0) {
        memset(tok->added_first, 0, sizeof tok->added_first);
        return 0;
    }
    sorted = malloc(tok->n_added * sizeof *sorted);
    if (!sorted)
        return -ENOMEM;
    for (size_t i = 0; i < tok->n_added; i++)
        count[(uint8_t)tok->text[tok->added[i].off] + 1]++;
    for (int b = 0; b < 256; b++)
        count[b + 1] += count[b];
    memcpy(tok->added_first, count, sizeof count);
    for (size_t i = 0; i < tok->n_added; i++) {
        uint8_t b = (uint8_t)tok->text[tok->added[i].off];
        size_t at = count[b]++;
        /* keep longest first among the same first byte */
        while (at > tok->added_first[b] && sorted[at - 1].len < tok->added[i].len) {
            sorted[at] = sorted[at - 1];
            at--;
        }
        sorted[at] = tok->added[i];
    }
    free(tok->added);
    tok->added = sorted;
    tok->cap_added = tok->n_added;
    return 0;
}

void mdl__tok_add_eos(mdl_tokenizer_t *tok, int32_t id)
{
    if (id < 0 || mdl_tokenizer_is_eos(tok, id))
        return;
    if (tok->n_eos < sizeof tok->eos / sizeof *tok->eos)
        tok->eos[tok->n_eos++] = id;
}

/* ---- tokenizer_config.json ---------------------------------------------------------- */

/* Highest id in added_tokens_decoder, or -1. */
static int config_max_id(const mdl_json_t *root, int32_t *ret, mdl_err_t *reterr)
{
    const mdl_json_t *atd = mdl_json_find(root, "added_tokens_decoder");

    *ret = -1;
    if (!atd || atd->type == MDL_JSON_NULL)
        return 0;
    if (atd->type != MDL_JSON_OBJECT)
        return bad(reterr, "added_tokens_decoder: expected an object");
    MDL_JSON_FOREACH_MEMBER(k, atd) {
        char *end;
        long id = strtol(k->u.str, &end, 10);
        if (k->len == 0 || *end || id < 0 || (size_t)id >= MDL_TOK_MAX_VOCAB)
            return bad(reterr, "added_tokens_decoder: key '%.40s' is not a token id 0..%zu",
                       k->u.str, MDL_TOK_MAX_VOCAB - 1);
        if (id > *ret)
            *ret = (int32_t)id;
    }
    return 0;
}

/* bos_token / eos_token: a string, an {"content": ...} object or null. -1 if absent. */
static int config_token(const mdl_tokenizer_t *tok, const mdl_json_t *root, const char *key,
                        int32_t *ret, mdl_err_t *reterr)
{
    const mdl_json_t *v = mdl_json_find(root, key);
    int rc = 0;

    *ret = -1;
    if (!v || v->type == MDL_JSON_NULL)
        return 0;
    if (v->type == MDL_JSON_OBJECT) {
        v = opt_string(v, key, "content", &rc, reterr);
        if (rc < 0)
            return rc;
        if (!v)
            return bad(reterr, "%s.content: missing", key);
    } else if (v->type != MDL_JSON_STRING) {
        return bad(reterr, "%s: expected a string or an object, got %s", key,
                   mdl_json_type_name((mdl_json_type_t)v->type));
    }
    int32_t id = mdl_tokenizer_find(tok, v->u.str, v->len);
    if (id < 0)
        return bad(reterr, "%s: '%.60s' is not a token of this tokenizer", key, v->u.str);
    *ret = id;
    return 0;
}

/* Added tokens of tokenizer_config.json (before the vocabulary map is built). */
static int config_added(mdl_tokenizer_t *tok, const mdl_json_t *root, mdl_err_t *reterr)
{
    const mdl_json_t *atd = mdl_json_find(root, "added_tokens_decoder");
    char path[160];
    int rc;

    if (!atd || atd->type != MDL_JSON_OBJECT)
        return 0;
    MDL_JSON_FOREACH_MEMBER(k, atd) {
        snprintf(path, sizeof path, "added_tokens_decoder.%.40s", k->u.str);
        if ((rc = parse_added(tok, k + 1, (int32_t)strtol(k->u.str, NULL, 10), path, reterr)) < 0)
            return rc;
    }
    return 0;
}

/* Scalars of tokenizer_config.json (after the vocabulary map is built). */
static int config_settings(mdl_tokenizer_t *tok, const mdl_json_t *root, mdl_err_t *reterr)
{
    int32_t id;
    int rc = 0;
    const mdl_json_t *v;

    if ((v = mdl_json_find(root, "add_bos_token")) && v->type != MDL_JSON_NULL) {
        if (v->type != MDL_JSON_BOOL)
            return bad(reterr, "add_bos_token: expected a boolean");
        tok->add_bos = v->u.boolean;
    }
    if ((rc = config_token(tok, root, "bos_token", &id, reterr)) < 0)
        return rc;
    if (id >= 0)
        tok->bos_id = id;
    if ((rc = config_token(tok, root, "eos_token", &id, reterr)) < 0)
        return rc;
    if (id >= 0) {
        /* tokenizer_config's eos is the one that counts; put it first */
        tok->n_eos = 0;
        mdl__tok_add_eos(tok, id);
    }
    if ((rc = config_token(tok, root, "unk_token", &id, reterr)) < 0)
        return rc;
    if (id >= 0 && tok->unk_id < 0)
        tok->unk_id = id;

    v = mdl_json_find(root, "chat_template");
    if (v && v->type == MDL_JSON_ARRAY) {
        /* [{"name": "default", "template": "..."}, {"name": "tool_use", ...}] */
        const mdl_json_t *pick = NULL;
        MDL_JSON_FOREACH(t, v) {
            if (t->type != MDL_JSON_OBJECT)
                return bad(reterr, "chat_template: expected objects with name and template");
            const mdl_json_t *tpl = opt_string(t, "chat_template[]", "template", &rc, reterr);
            if (rc < 0)
                return rc;
            if (tpl && (!pick || str_is(mdl_json_find(t, "name"), "default")))
                pick = tpl;
        }
        v = pick;
    }
    if (v && v->type != MDL_JSON_NULL) {
        if (v->type != MDL_JSON_STRING)
            return bad(reterr, "chat_template: expected a string, got %s",
                       mdl_json_type_name((mdl_json_type_t)v->type));
        if (!(tok->chat_template = strndup(v->u.str, v->len)))
            return -ENOMEM;
    }
    tok->chat_format = mdl_chat_format_detect(tok->chat_template);
    return 0;
}

static int parse_config(const char *json, size_t len, mdl_json_doc_t **ret, mdl_err_t *reterr)
{
    int rc;

    if (!json)
        return 0;
    if (len > MDL_TOK_MAX_FILE_BYTES)
        return mdl_err_set(reterr, -E2BIG, "tokenizer_config.json: %zu bytes is over the limit",
                           len);
    if ((rc = mdl_json_parse(json, len, JSON_DEPTH, ret, reterr)) < 0)
        return rc;
    if (mdl_json_doc_root(*ret)->type != MDL_JSON_OBJECT) {
        *ret = mdl_json_doc_free(*ret);
        return bad(reterr, "expected an object");
    }
    return 0;
}

/* ---- tokenizer.json --------------------------------------------------------------- */

typedef struct pipeline {
    mdl_tok_kind_t kind;
    uint8_t prepend;       /* 0 never, 1 always, 2 first */
    uint8_t split_words;
    bool byte_regex, add_prefix_space, strip_leading, strip_known;
    char space_sym[4];
    uint8_t space_sym_len;
} pipeline_t;

/* Calls fn on o, or on each member of o.<list> if o is a Sequence. */
typedef int (*step_fn)(pipeline_t *p, const mdl_json_t *o, const char *path, mdl_err_t *reterr);

static int each_step(pipeline_t *p, const mdl_json_t *o, const char *path, const char *list,
                     step_fn fn, mdl_err_t *reterr)
{
    char sub[96];
    int rc;

    if (!o || o->type == MDL_JSON_NULL)
        return 0;
    if (o->type != MDL_JSON_OBJECT)
        return bad(reterr, "%s: expected an object or null", path);
    if (str_is(mdl_json_find(o, "type"), "Sequence")) {
        const mdl_json_t *steps = mdl_json_find(o, list);
        if (!steps || steps->type != MDL_JSON_ARRAY)
            return bad(reterr, "%s.%s: expected an array", path, list);
        size_t i = 0;
        MDL_JSON_FOREACH(s, steps) {
            snprintf(sub, sizeof sub, "%s.%s[%zu]", path, list, i++);
            if ((rc = each_step(p, s, sub, list, fn, reterr)) < 0)
                return rc;
        }
        return 0;
    }
    return fn(p, o, path, reterr);
}

static int set_space_sym(pipeline_t *p, const mdl_json_t *v, const char *path, mdl_err_t *reterr)
{
    uint32_t cp;
    if (!v || v->type != MDL_JSON_STRING || v->len == 0 || v->len > 4 ||
        mdl_utf8_decode((const uint8_t *)v->u.str, v->len, &cp) != v->len)
        return bad(reterr, "%s: expected one character", path);
    if (p->space_sym_len && (p->space_sym_len != v->len || memcmp(p->space_sym, v->u.str, v->len)))
        return bad(reterr, "%s: a second, different space marker", path);
    memcpy(p->space_sym, v->u.str, v->len);
    p->space_sym_len = (uint8_t)v->len;
    return 0;
}

static int normalizer_step(pipeline_t *p, const mdl_json_t *o, const char *path,
                           mdl_err_t *reterr)
{
    const mdl_json_t *type = mdl_json_find(o, "type");
    char sub[128];

    if (str_is(type, "Prepend")) {
        snprintf(sub, sizeof sub, "%s.prepend", path);
        p->prepend = 1;
        return set_space_sym(p, mdl_json_find(o, "prepend"), sub, reterr);
    }
    if (str_is(type, "Replace")) {
        const mdl_json_t *pat = mdl_json_find(o, "pattern");
        const mdl_json_t *str = pat && pat->type == MDL_JSON_OBJECT ? mdl_json_find(pat, "String")
                                                                    : NULL;
        if (!str_is(str, " "))
            return bad(reterr, "%s: only Replace of the string \" \" is supported", path);
        snprintf(sub, sizeof sub, "%s.content", path);
        return set_space_sym(p, mdl_json_find(o, "content"), sub, reterr);
    }
    return bad(reterr, "%s: normalizer '%.40s' is not supported (only Prepend and Replace of "
                       "spaces, as saved for Llama)",
               path, type && type->type == MDL_JSON_STRING ? type->u.str : "?");
}

static int pretok_step(pipeline_t *p, const mdl_json_t *o, const char *path, mdl_err_t *reterr)
{
    const mdl_json_t *type = mdl_json_find(o, "type");
    char sub[128];
    int rc;

    if (str_is(type, "ByteLevel")) {
        bool use_regex, aps;
        if ((rc = opt_bool(o, path, "add_prefix_space", false, &aps, reterr)) < 0 ||
            (rc = opt_bool(o, path, "use_regex", true, &use_regex, reterr)) < 0)
            return rc;
        p->kind = MDL_TOK_BYTE_BPE;
        p->add_prefix_space = aps;
        p->byte_regex = p->byte_regex || use_regex;
        return 0;
    }
    if (str_is(type, "Split")) {
        const mdl_json_t *pat = mdl_json_find(o, "pattern");
        const mdl_json_t *re = pat && pat->type == MDL_JSON_OBJECT ? mdl_json_find(pat, "Regex")
                                                                   : NULL;
        if (!str_is(re, GPT2_PATTERN) || !str_is(mdl_json_find(o, "behavior"), "Isolated"))
            return bad(reterr, "%s: pre_tokenizer Split is supported only with GPT-2's "
                               "pattern (Isolated); this one differs",
                       path);
        p->byte_regex = true;
        return 0;
    }
    if (str_is(type, "Metaspace")) {
        bool split, aps;
        const mdl_json_t *scheme = mdl_json_find(o, "prepend_scheme");
        snprintf(sub, sizeof sub, "%s.replacement", path);
        if ((rc = set_space_sym(p, mdl_json_find(o, "replacement"), sub, reterr)) < 0 ||
            (rc = opt_bool(o, path, "split", true, &split, reterr)) < 0 ||
            (rc = opt_bool(o, path, "add_prefix_space", true, &aps, reterr)) < 0)
            return rc;
        p->split_words = split ? 1 : 0;
        if (str_is(scheme, "always"))
            p->prepend = 1;
        else if (str_is(scheme, "first"))
            p->prepend = 2;
        else if (str_is(scheme, "never"))
            p->prepend = 0;
        else if (scheme && scheme->type != MDL_JSON_NULL)
            return bad(reterr, "%s.prepend_scheme: expected always, first or never", path);
        else
            p->prepend = aps ? 1 : 0;
        return 0;
    }
    return bad(reterr, "%s: pre_tokenizer '%.40s' is not supported (ByteLevel or Metaspace)", path,
               type && type->type == MDL_JSON_STRING ? type->u.str : "?");
}

/* Decoders are only read for one fact: whether a leading space is stripped. */
static int decoder_step(pipeline_t *p, const mdl_json_t *o, const char *path, mdl_err_t *reterr)
{
    const mdl_json_t *type = mdl_json_find(o, "type");

    (void)path;
    (void)reterr;
    if (str_is(type, "Strip")) {
        const mdl_json_t *start = mdl_json_find(o, "start");
        p->strip_leading = start && start->type == MDL_JSON_NUMBER && start->u.num >= 1 &&
                           str_is(mdl_json_find(o, "content"), " ");
        p->strip_known = true;
    } else if (str_is(type, "Metaspace")) {
        const mdl_json_t *scheme = mdl_json_find(o, "prepend_scheme");
        const mdl_json_t *aps = mdl_json_find(o, "add_prefix_space");
        p->strip_leading = scheme ? !str_is(scheme, "never")
                                  : !(aps && aps->type == MDL_JSON_BOOL && !aps->u.boolean);
        p->strip_known = true;
    }
    return 0;
}

/* <0xNN> with upper-case hex: the byte, else -1. */
static int byte_token(const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *hi, *lo;

    if (len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>' || !(hi = strchr(hex, s[3])) ||
        !(lo = strchr(hex, s[4])) || !s[3] || !s[4])
        return -1;
    return (int)((hi - hex) * 16 + (lo - hex));
}

int mdl__tok_make_pieces(mdl_tokenizer_t *tok)
{
    int rc;

    for (size_t id = 0; id < tok->n_vocab; id++) {
        if (!(tok->flags[id] & TOKF_PRESENT))
            continue;
        const char *k = tok->text + tok->key_off[id];
        size_t klen = tok->key_len[id];
        uint8_t buf[MDL_TOK_MAX_TOKEN_BYTES];
        size_t n = 0;
        bool is_added = tok->flags[id] & TOKF_ADDED;
        int b = tok->kind != MDL_TOK_BYTE_BPE && !is_added ? byte_token(k, klen) : -1;
        if (is_added) {
            memcpy(buf, k, klen);
            n = klen;
        } else if (b >= 0) {
            buf[n++] = (uint8_t)b;
            tok->flags[id] |= TOKF_BYTE | TOKF_NOMERGE;
        } else if (tok->kind == MDL_TOK_BYTE_BPE) {
            /* each character stands for one byte; a token with other characters is
             * printed as written */
            bool all = true;
            for (size_t i = 0; i < klen && all;) {
                uint32_t cp;
                size_t m = mdl_utf8_decode((const uint8_t *)k + i, klen - i, &cp);
                int byte = m ? mdl__tok_cp_to_byte(cp) : -1;
                if (byte < 0)
                    all = false;
                else
                    buf[n++] = (uint8_t)byte;
                i += m ? m : 1;
            }
            if (!all) {
                memcpy(buf, k, klen);
                n = klen;
            }
        } else {
            for (size_t i = 0; i < klen;) {
                if (tok->space_sym_len && i + tok->space_sym_len <= klen &&
                    memcmp(k + i, tok->space_sym, tok->space_sym_len) == 0) {
                    buf[n++] = ' ';
                    i += tok->space_sym_len;
                } else {
                    buf[n++] = (uint8_t)k[i++];
                }
            }
        }
        if (n == klen && memcmp(buf, k, n) == 0) {
            tok->piece_off[id] = tok->key_off[id];
        } else if ((rc = mdl__tok_text_add(tok, buf, n, &tok->piece_off[id])) < 0) {
            return rc;
        }
        tok->piece_len[id] = (uint32_t)n;
        if (n > tok->max_piece_len)
            tok->max_piece_len = n;
    }
    return 0;
}

static int read_merges(mdl_tokenizer_t *tok, const mdl_json_t *merges, mdl_err_t *reterr)
{
    int rc;
    size_t rank = 0;
    char *cat = malloc(2 * MDL_TOK_MAX_TOKEN_BYTES + 1);

    if (!cat)
        return -ENOMEM;
    if ((rc = mdl__tok_merges_init(&tok->merges, merges->len)) < 0)
        goto out;
    MDL_JSON_FOREACH(m, merges) {
        const char *a, *b;
        size_t alen, blen;
        if (m->type == MDL_JSON_STRING) {
            const char *sp = memchr(m->u.str, ' ', m->len);
            if (!sp || memchr(sp + 1, ' ', m->len - (size_t)(sp + 1 - m->u.str))) {
                rc = bad(reterr, "model.merges[%zu]: '%.60s' is not two tokens separated by "
                                 "one space", rank, m->u.str);
                goto out;
            }
            a = m->u.str;
            alen = (size_t)(sp - a);
            b = sp + 1;
            blen = m->len - alen - 1;
        } else if (m->type == MDL_JSON_ARRAY && m->len == 2 && m[1].type == MDL_JSON_STRING &&
                   m[2].type == MDL_JSON_STRING) {
            a = m[1].u.str;
            alen = m[1].len;
            b = m[2].u.str;
            blen = m[2].len;
        } else {
            rc = bad(reterr, "model.merges[%zu]: expected \"a b\" or [\"a\", \"b\"]", rank);
            goto out;
        }
        int32_t l = mdl__tok_lookup(tok, a, alen), r = mdl__tok_lookup(tok, b, blen);
        if (l < 0 || r < 0) {
            rc = bad(reterr, "model.merges[%zu]: '%.*s' is not in the vocabulary", rank,
                     (int)(l < 0 ? (alen < 60 ? alen : 60) : (blen < 60 ? blen : 60)),
                     l < 0 ? a : b);
            goto out;
        }
        if (alen + blen > 2 * MDL_TOK_MAX_TOKEN_BYTES) {
            rc = bad(reterr, "model.merges[%zu]: too long", rank);
            goto out;
        }
        memcpy(cat, a, alen);
        memcpy(cat + alen, b, blen);
        int32_t merged = mdl__tok_lookup(tok, cat, alen + blen);
        if (merged < 0) {
            rc = bad(reterr, "model.merges[%zu]: the merge result '%.*s' is not in the "
                             "vocabulary", rank, (int)(alen + blen < 60 ? alen + blen : 60), cat);
            goto out;
        }
        if ((rc = mdl__tok_merges_add(&tok->merges, l, r, (uint32_t)rank, merged)) < 0)
            goto out;
        rank++;
    }
out:
    free(cat);
    return rc;
}

/* bos (and whether to add it) from a TemplateProcessing post-processor. */
static void post_processor_bos(mdl_tokenizer_t *tok, const mdl_json_t *pp)
{
    if (!pp || pp->type != MDL_JSON_OBJECT)
        return;
    if (str_is(mdl_json_find(pp, "type"), "Sequence")) {
        const mdl_json_t *list = mdl_json_find(pp, "processors");
        if (list && list->type == MDL_JSON_ARRAY)
            MDL_JSON_FOREACH(p, list)
                post_processor_bos(tok, p);
        return;
    }
    if (!str_is(mdl_json_find(pp, "type"), "TemplateProcessing"))
        return;
    const mdl_json_t *single = mdl_json_find(pp, "single");
    const mdl_json_t *first = single && single->type == MDL_JSON_ARRAY ? mdl_json_at(single, 0)
                                                                        : NULL;
    const mdl_json_t *st = first && first->type == MDL_JSON_OBJECT
                               ? mdl_json_find(first, "SpecialToken") : NULL;
    tok->add_bos = false;
    if (!st || st->type != MDL_JSON_OBJECT)
        return;
    const mdl_json_t *name = mdl_json_find(st, "id");
    if (name && name->type == MDL_JSON_STRING) {
        int32_t id = mdl_tokenizer_find(tok, name->u.str, name->len);
        if (id >= 0) {
            tok->bos_id = id;
            tok->add_bos = true;
        }
    }
}

static mdl_tokenizer_t *tok_new(void)
{
    mdl_tokenizer_t *tok = calloc(1, sizeof *tok);
    if (!tok)
        return NULL;
    tok->unk_id = -1;
    tok->space_id = -1;
    tok->bos_id = -1;
    for (int b = 0; b < 256; b++)
        tok->byte_id[b] = -1;
    return tok;
}

static int load_hf(mdl_tokenizer_t *tok, const mdl_json_t *root, const mdl_json_t *config,
                   mdl_err_t *reterr)
{
    int rc = 0;
    pipeline_t p = {.kind = MDL_TOK_SP_BPE};

    if (root->type != MDL_JSON_OBJECT)
        return bad(reterr, "expected an object");
    const mdl_json_t *model = mdl_json_find(root, "model");
    if (!model || model->type != MDL_JSON_OBJECT)
        return bad(reterr, "model: missing or not an object");
    const mdl_json_t *type = mdl_json_find(model, "type");
    if (type && !str_is(type, "BPE"))
        return bad(reterr, "model.type '%.40s' is not supported (only BPE)",
                   type->type == MDL_JSON_STRING ? type->u.str : "?");
    const mdl_json_t *vocab = mdl_json_find(model, "vocab");
    if (!vocab || vocab->type != MDL_JSON_OBJECT)
        return bad(reterr, "model.vocab: missing or not an object");
    const mdl_json_t *merges = mdl_json_find(model, "merges");
    if (merges && merges->type != MDL_JSON_ARRAY && merges->type != MDL_JSON_NULL)
        return bad(reterr, "model.merges: expected an array");
    const mdl_json_t *added = mdl_json_find(root, "added_tokens");
    if (added && added->type != MDL_JSON_ARRAY && added->type != MDL_JSON_NULL)
        return bad(reterr, "added_tokens: expected an array");
    const mdl_json_t *prefix = mdl_json_find(model, "continuing_subword_prefix");
    const mdl_json_t *suffix = mdl_json_find(model, "end_of_word_suffix");
    if ((prefix && prefix->type == MDL_JSON_STRING && prefix->len) ||
        (suffix && suffix->type == MDL_JSON_STRING && suffix->len))
        return bad(reterr, "model: continuing_subword_prefix / end_of_word_suffix are not "
                           "supported");

    /* the pipeline */
    if ((rc = each_step(&p, mdl_json_find(root, "normalizer"), "normalizer", "normalizers",
                        normalizer_step, reterr)) < 0 ||
        (rc = each_step(&p, mdl_json_find(root, "pre_tokenizer"), "pre_tokenizer",
                        "pretokenizers", pretok_step, reterr)) < 0 ||
        (rc = each_step(&p, mdl_json_find(root, "decoder"), "decoder", "decoders",
                        decoder_step, reterr)) < 0)
        return rc;
    if (p.kind == MDL_TOK_BYTE_BPE && (p.space_sym_len || p.prepend))
        return bad(reterr, "normalizer: a byte-level tokenizer with a space-marker normalizer "
                           "is not supported");
    if (p.kind == MDL_TOK_SP_BPE && p.byte_regex)
        return bad(reterr, "pre_tokenizer: Split without ByteLevel is not supported");

    /* how many ids */
    int32_t max_id = -1, id;
    char path[96];
    MDL_JSON_FOREACH_MEMBER(k, vocab) {
        if (get_id(k + 1, "", &id, NULL) < 0) {
            snprintf(path, sizeof path, "model.vocab['%.40s']", k->u.str);
            return get_id(k + 1, path, &id, reterr);
        }
        if (id > max_id)
            max_id = id;
    }
    size_t i = 0;
    if (added && added->type == MDL_JSON_ARRAY) {
        MDL_JSON_FOREACH(a, added) {
            snprintf(path, sizeof path, "added_tokens[%zu].id", i++);
            if (a->type != MDL_JSON_OBJECT)
                return bad(reterr, "added_tokens[%zu]: expected an object", i - 1);
            if ((rc = get_id(mdl_json_find(a, "id"), path, &id, reterr)) < 0)
                return rc;
            if (id > max_id)
                max_id = id;
        }
    }
    if (config) {
        if ((rc = config_max_id(config, &id, reterr)) < 0) {
            mdl_err_prefix(reterr, "tokenizer_config.json: ");
            return rc;
        }
        if (id > max_id)
            max_id = id;
    }
    if (max_id < 0)
        return bad(reterr, "model.vocab: empty");
    if ((rc = mdl__tok_alloc(tok, (size_t)max_id + 1)) < 0)
        return rc;

    tok->kind = p.kind;
    MDL_JSON_FOREACH_MEMBER(k, vocab) {
        get_id(k + 1, "", &id, NULL);
        if ((rc = key_set(tok, id, k->u.str, k->len, "model.vocab", reterr)) < 0)
            return rc;
    }
    i = 0;
    if (added && added->type == MDL_JSON_ARRAY) {
        MDL_JSON_FOREACH(a, added) {
            snprintf(path, sizeof path, "added_tokens[%zu]", i++);
            get_id(mdl_json_find(a, "id"), "", &id, NULL);
            if ((rc = parse_added(tok, a, id, path, reterr)) < 0)
                return rc;
        }
    }
    if (config && (rc = config_added(tok, config, reterr)) < 0) {
        mdl_err_prefix(reterr, "tokenizer_config.json: ");
        return rc;
    }

    /* model options */
    bool byte_fallback, fuse_unk, ignore_merges;
    if ((rc = opt_bool(model, "model", "byte_fallback", false, &byte_fallback, reterr)) < 0 ||
        (rc = opt_bool(model, "model", "fuse_unk", false, &fuse_unk, reterr)) < 0 ||
        (rc = opt_bool(model, "model", "ignore_merges", false, &ignore_merges, reterr)) < 0)
        return rc;
    tok->byte_fallback = byte_fallback && p.kind == MDL_TOK_SP_BPE;
    tok->fuse_unk = fuse_unk;
    tok->ignore_merges = ignore_merges && p.kind == MDL_TOK_BYTE_BPE;
    tok->prepend = p.prepend;
    tok->split_words = p.split_words;
    tok->byte_regex = p.byte_regex;
    tok->add_prefix_space = p.add_prefix_space;
    if (p.kind == MDL_TOK_SP_BPE) {
        if (!p.space_sym_len) {
            p.space_sym[0] = ' ';
            p.space_sym_len = 1;
        }
        memcpy(tok->space_sym, p.space_sym, p.space_sym_len);
        tok->space_sym_len = p.space_sym_len;
        tok->strip_leading = p.strip_known ? p.strip_leading : p.prepend != 0;
    }

    if ((rc = mdl__tok_make_pieces(tok)) < 0 || (rc = mdl__tok_build_vocab(tok)) < 0)
        return rc;
    const mdl_json_t *unk = opt_string(model, "model", "unk_token", &rc, reterr);
    if (rc < 0)
        return rc;
    if (unk && (tok->unk_id = mdl__tok_lookup(tok, unk->u.str, unk->len)) < 0)
        return bad(reterr, "model.unk_token '%.40s' is not in the vocabulary", unk->u.str);

    if (p.kind == MDL_TOK_BYTE_BPE) {
        for (int b = 0; b < 256; b++) {
            uint8_t u[4];
            size_t n = mdl_utf8_encode(mdl__tok_byte_to_cp((uint8_t)b), u);
            tok->byte_id[b] = mdl__tok_lookup(tok, u, n);
            if (tok->byte_id[b] < 0 && tok->unk_id < 0)
                return bad(reterr, "model.vocab: no token for byte 0x%02X (byte-level BPE "
                                   "needs all 256, or an unk_token)", b);
        }
    } else {
        char bt[8];
        for (int b = 0; b < 256; b++) {
            snprintf(bt, sizeof bt, "<0x%02X>", b);
            tok->byte_id[b] = mdl__tok_lookup(tok, bt, 6);
        }
        tok->space_id = mdl__tok_lookup(tok, tok->space_sym, tok->space_sym_len);
        if (!tok->byte_fallback && tok->unk_id < 0)
            return bad(reterr, "model: neither byte_fallback nor an unk_token, so unknown "
                               "characters could not be encoded");
    }

    if (merges && merges->type == MDL_JSON_ARRAY && (rc = read_merges(tok, merges, reterr)) < 0)
        return rc;
    mdl__tok_auto_split(tok);

    /* bos / eos: the post-processor, then tokenizer_config.json, then the kind's habit */
    tok->add_bos = p.kind == MDL_TOK_SP_BPE;
    post_processor_bos(tok, mdl_json_find(root, "post_processor"));
    if (config && (rc = config_settings(tok, config, reterr)) < 0) {
        mdl_err_prefix(reterr, "tokenizer_config.json: ");
        return rc;
    }
    const char *bos_name = p.kind == MDL_TOK_BYTE_BPE ? "<|endoftext|>" : "<s>";
    const char *eos_name = p.kind == MDL_TOK_BYTE_BPE ? "<|endoftext|>" : "</s>";
    if (tok->bos_id < 0)
        tok->bos_id = mdl_tokenizer_find(tok, bos_name, strlen(bos_name));
    if (tok->n_eos == 0)
        mdl__tok_add_eos(tok, mdl_tokenizer_find(tok, eos_name, strlen(eos_name)));
    return mdl__tok_index_added(tok);
}

int mdl_tokenizer_load_hf(const char *json, size_t len, const char *config_json,
                          size_t config_len, mdl_tokenizer_t **ret, mdl_err_t *reterr)
{
    mdl_json_doc_t *doc = NULL, *cdoc = NULL;
    mdl_tokenizer_t *tok = NULL;
    int rc;

    if (len > MDL_TOK_MAX_FILE_BYTES)
        return mdl_err_set(reterr, -E2BIG, "tokenizer.json: %zu bytes is over the limit of %zu",
                           len, MDL_TOK_MAX_FILE_BYTES);
    if ((rc = parse_config(config_json, config_len, &cdoc, reterr)) < 0) {
        mdl_err_prefix(reterr, "tokenizer_config.json: ");
        return rc;
    }
    if ((rc = mdl_json_parse(json, len, JSON_DEPTH, &doc, reterr)) < 0) {
        mdl_err_prefix(reterr, "tokenizer.json: ");
        goto out;
    }
    if (!(tok = tok_new())) {
        rc = mdl_err_set(reterr, -ENOMEM, "tokenizer.json: out of memory");
        goto out;
    }
    rc = load_hf(tok, mdl_json_doc_root(doc), cdoc ? mdl_json_doc_root(cdoc) : NULL, reterr);
    if (rc == -ENOMEM || rc == -E2BIG)
        mdl_err_set(reterr, rc, "tokenizer.json: %s", rc == -ENOMEM ? "out of memory"
                                                                    : "too large");
    else if (rc < 0 && !strstr(reterr ? reterr->msg : "", "tokenizer_config.json"))
        mdl_err_prefix(reterr, "tokenizer.json: ");
out:
    mdl_json_doc_free(doc);
    mdl_json_doc_free(cdoc);
    if (rc < 0) {
        mdl_tokenizer_free(tok);
        return rc;
    }
    *ret = tok;
    return 0;
}

/* ---- llama2.c: shared with tokenizer_llama2c.c ------------------------------------ */

int mdl__tok_apply_config(mdl_tokenizer_t *tok, const char *json, size_t len,
                          mdl_err_t *reterr)
{
    mdl_json_doc_t *cdoc = NULL;
    int32_t max_id;
    int rc;

    if ((rc = parse_config(json, len, &cdoc, reterr)) < 0 || !cdoc)
        goto out;
    const mdl_json_t *root = mdl_json_doc_root(cdoc);
    if ((rc = config_max_id(root, &max_id, reterr)) < 0)
        goto out;
    if (max_id >= 0 && (size_t)max_id >= tok->n_vocab) {
        rc = bad(reterr, "added_tokens_decoder: id %ld is outside the vocabulary (0..%zu)",
                 (long)max_id, tok->n_vocab - 1);
        goto out;
    }
    if ((rc = config_added(tok, root, reterr)) < 0 || (rc = mdl__tok_make_pieces(tok)) < 0 ||
        (rc = mdl__tok_build_vocab(tok)) < 0 || (rc = config_settings(tok, root, reterr)) < 0)
        goto out;
out:
    if (rc < 0 && rc != -ENOMEM)
        mdl_err_prefix(reterr, "tokenizer_config.json: ");
    mdl_json_doc_free(cdoc);
    return rc;
}

/* ---- the model folder --------------------------------------------------------------- */

/* bos_token_id / eos_token_id (a number or a list) of config.json or
 * generation_config.json. Absent file: nothing. */
static int model_ids_json(mdl_tokenizer_t *tok, const mdl_json_t *root, mdl_err_t *reterr)
{
    const mdl_json_t *bos = mdl_json_find(root, "bos_token_id");
    const mdl_json_t *eos = mdl_json_find(root, "eos_token_id");
    int32_t id;
    int rc;

    if (bos && bos->type != MDL_JSON_NULL) {
        if ((rc = get_id(bos, "bos_token_id", &id, reterr)) < 0)
            return rc;
        if (tok->bos_id < 0 && (size_t)id < tok->n_vocab)
            tok->bos_id = id;
    }
    if (eos && eos->type == MDL_JSON_ARRAY) {
        MDL_JSON_FOREACH(e, eos) {
            if ((rc = get_id(e, "eos_token_id[]", &id, reterr)) < 0)
                return rc;
            mdl__tok_add_eos(tok, id);
        }
    } else if (eos && eos->type != MDL_JSON_NULL) {
        if ((rc = get_id(eos, "eos_token_id", &id, reterr)) < 0)
            return rc;
        mdl__tok_add_eos(tok, id);
    }
    return 0;
}

static int model_ids(mdl_tokenizer_t *tok, const char *dir, const char *name, mdl_err_t *reterr)
{
    char path[4096];
    char *data = NULL;
    size_t len;
    mdl_json_doc_t *doc = NULL;
    int rc;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    rc = mdl_file_read(path, 16u << 20, &data, &len, NULL, reterr);
    if (rc == -ENOENT)
        return 0;
    if (rc < 0)
        return rc;
    rc = mdl_json_parse(data, len, JSON_DEPTH, &doc, reterr);
    if (rc == 0)
        rc = model_ids_json(tok, mdl_json_doc_root(doc), reterr);
    if (rc < 0)
        mdl_err_prefix(reterr, "%s: ", name);
    mdl_json_doc_free(doc);
    free(data);
    return rc;
}

int mdl_tokenizer_load_dir(const char *dir, mdl_tokenizer_t **ret, mdl_err_t *reterr)
{
    char path[4096];
    char *data = NULL, *config = NULL;
    size_t len = 0, config_len = 0;
    mdl_tokenizer_t *tok = NULL;
    bool bin = false;
    int rc;

    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    rc = mdl_file_read(path, MDL_TOK_MAX_FILE_BYTES, &data, &len, NULL, reterr);
    if (rc == -ENOENT) {
        bin = true;
        snprintf(path, sizeof path, "%s/tokenizer.bin", dir);
        rc = mdl_file_read(path, MDL_TOK_MAX_FILE_BYTES, &data, &len, NULL, reterr);
        if (rc == -ENOENT) {
            snprintf(path, sizeof path, "%s/tokenizer.model", dir);
            return mdl_err_set(reterr, -ENOENT, "%s: no tokenizer.json or tokenizer.bin%s", dir,
                               access(path, F_OK) == 0
                                   ? " (tokenizer.model, SentencePiece's own format, is not "
                                     "read: export tokenizer.json with "
                                     "tools/sp_to_hf_tokenizer.py)"
                                   : "");
        }
    }
    if (rc < 0)
        return rc;
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    rc = mdl_file_read(path, MDL_TOK_MAX_FILE_BYTES, &config, &config_len, NULL, reterr);
    if (rc < 0 && rc != -ENOENT)
        goto out;
    rc = bin ? mdl_tokenizer_load_llama2c(data, len, config, config_len, &tok, reterr)
             : mdl_tokenizer_load_hf(data, len, config, config_len, &tok, reterr);
    if (rc < 0)
        goto out;
    /* generation_config.json's eos list is what generation stops on; config.json's ids
     * add to it */
    if ((rc = model_ids(tok, dir, "generation_config.json", reterr)) < 0 ||
        (rc = model_ids(tok, dir, "config.json", reterr)) < 0)
        goto out;
out:
    free(data);
    free(config);
    if (rc < 0) {
        mdl_err_prefix(reterr, "%s: ", dir);
        mdl_tokenizer_free(tok);
        return rc == -ENOENT ? -EBADMSG : rc; /* -ENOENT means "no tokenizer" only */
    }
    *ret = tok;
    return 0;
}
