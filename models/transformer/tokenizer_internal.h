/* Inside the tokenizer (tokenizer*.c only): the loaded tables, the hash maps, the BPE
 * merge engine and the GPT-2 pre-tokenizer. See tokenizer.h for the public side. */
#ifndef MDL_TOKENIZER_INTERNAL_H
#define MDL_TOKENIZER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "models/transformer/tokenizer.h"

/* Per-token flags. */
#define TOKF_PRESENT 0x1u  /* the id is assigned */
#define TOKF_SPECIAL 0x2u  /* skipped by MDL_TOK_SKIP_SPECIAL */
#define TOKF_BYTE 0x4u     /* byte-fallback token <0xNN>: decodes to one raw byte */
#define TOKF_NOMERGE 0x8u  /* never the input or result of a merge (bytes, controls) */
#define TOKF_ADDED 0x10u   /* an added token: decodes to its content as written */

/* String -> id, open addressing over ids whose key text lives in an arena. */
typedef struct tok_strmap {
    uint32_t *slots; /* id + 1; 0 = empty */
    size_t mask;     /* capacity - 1 (a power of two) */
} tok_strmap_t;

/* (left id, right id) -> (rank, merged id). */
typedef struct tok_merge {
    uint64_t key;    /* left << 32 | right; UINT64_MAX = empty */
    uint32_t rank;   /* lower merges first */
    int32_t merged;
} tok_merge_t;

typedef struct tok_pairmap {
    tok_merge_t *slots;
    size_t mask;
    size_t n;
} tok_pairmap_t;

/* One token matched whole in the text before BPE. */
typedef struct tok_added {
    int32_t id;
    uint32_t off, len; /* content in tok->text */
    bool special, lstrip, rstrip, single_word;
    bool normalized; /* SentencePiece kinds: matched inside the normalized text (after the
                        "\u2581" prefix, without starting a new prefix), as SentencePiece
                        matches its user-defined symbols; otherwise the text is cut at the
                        token first and each side normalized on its own */
} tok_added_t;

struct mdl_tokenizer {
    mdl_tok_kind_t kind;
    size_t n_vocab;

    /* per id */
    uint8_t *flags;       /* TOKF_* */
    uint32_t *key_off;    /* the token as the file spells it ("\u2581the", "\u0120the") */
    uint32_t *key_len;
    uint32_t *piece_off;  /* the bytes it decodes to (" the") */
    uint32_t *piece_len;
    char *text;           /* arena for keys, pieces and added-token contents */
    size_t text_len, text_cap;
    size_t max_piece_len;

    tok_strmap_t vocab;   /* key -> id (the first id, if a key repeats) */
    tok_pairmap_t merges;

    int32_t byte_id[256]; /* byte-level: id of the byte's mapped character; Llama kinds:
                             <0xNN>; -1 if none */
    int32_t unk_id;       /* -1 if none */
    bool byte_fallback;   /* unknown characters -> <0xNN> tokens */
    bool fuse_unk;        /* consecutive unknowns -> one unk */
    bool ignore_merges;   /* byte-level: a word that is a token is that token */

    /* Llama kinds: the space marker ("\u2581", or " " in tokenizer.bin) */
    int32_t space_id;     /* id of the marker on its own, -1 if not a token */
    char space_sym[4];
    uint8_t space_sym_len;
    uint8_t prepend;      /* 0 never, 1 every text segment, 2 only at the start of text */
    uint8_t split_words;  /* 1: every space marker starts a word (Metaspace split);
                             2: a marker after a non-marker does (no token has a marker
                             after another character, so no merge can cross there and
                             merging word by word gives the same ids, in less memory) */
    bool strip_leading;   /* the decoder drops one leading space */
    bool add_prefix_space; /* byte-level: a space in front of each segment */
    bool byte_regex;      /* byte-level: split into GPT-2 words first (use_regex) */

    tok_added_t *added;   /* sorted by first byte, then longest first */
    size_t n_added, cap_added;
    uint32_t added_first[257]; /* added[added_first[b] .. added_first[b + 1]) start with b */
    bool any_normalized;  /* some added token has .normalized (SentencePiece kinds) */

    int32_t bos_id;
    int32_t eos[8];
    size_t n_eos;
    bool add_bos;
    char *chat_template;
    mdl_chat_format_t chat_format;
};

/* ---- tokenizer_bpe.c ------------------------------------------------------------ */

/* Allocates the per-id arrays for n ids (flags zeroed: nothing present). */
int mdl__tok_alloc(mdl_tokenizer_t *tok, size_t n);
/* Appends bytes to the arena; returns their offset via *ret_off. */
int mdl__tok_text_add(mdl_tokenizer_t *tok, const void *s, size_t len, uint32_t *ret_off);
/* Builds tok->vocab from the keys of every present id. */
int mdl__tok_build_vocab(mdl_tokenizer_t *tok);
int32_t mdl__tok_lookup(const mdl_tokenizer_t *tok, const void *s, size_t len);
/* Merge table: sized for n entries, then add (an existing pair keeps its first rank). */
int mdl__tok_merges_init(tok_pairmap_t *m, size_t n);
int mdl__tok_merges_add(tok_pairmap_t *m, int32_t left, int32_t right, uint32_t rank,
                        int32_t merged);
const tok_merge_t *mdl__tok_merges_find(const tok_pairmap_t *m, int32_t left, int32_t right);
void mdl__tok_maps_free(mdl_tokenizer_t *tok);

/* A growable id array for encoding. */
typedef struct tok_ids {
    int32_t *v;
    size_t n, cap;
} tok_ids_t;
int mdl__tok_ids_push(tok_ids_t *ids, int32_t id);

/* One symbol of the word being merged: a token id, or (id < 0) an unknown character
 * kept as its bytes for byte fallback. */
typedef struct tok_sym {
    int32_t id;
    int32_t prev, next; /* neighbours, -1 at the ends */
    uint8_t n_bytes;    /* unknown characters: their UTF-8 */
    uint8_t bytes[4];
} tok_sym_t;

/* Reusable scratch for mdl__tok_bpe (one per encode call): the symbols the caller fills
 * (grown by mdl__tok_scratch_reserve) and the merge loop's heap (grown by the loop). */
typedef struct tok_scratch {
    tok_sym_t *syms;
    size_t cap_syms;
    void *heap;
    size_t cap_heap;
} tok_scratch_t;

/* Runs the merges over syms[0..n) (prev/next set by the callee) and appends the result
 * to out, unknown characters as byte-fallback ids or unk. 0 or -ENOMEM. */
int mdl__tok_bpe(const mdl_tokenizer_t *tok, tok_scratch_t *sc, size_t n, tok_ids_t *out);
/* Room for n symbols (grows geometrically); 0 or -ENOMEM. */
int mdl__tok_scratch_reserve(tok_scratch_t *sc, size_t n);
void mdl__tok_scratch_free(tok_scratch_t *sc);

/* ---- tokenizer_pretok.c --------------------------------------------------------- */

/* End of the GPT-2 pre-token starting at s[pos] (pos < len), for the pattern
 * 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * s must be valid UTF-8. */
size_t mdl__tok_gpt2_next(const uint8_t *s, size_t len, size_t pos);

/* GPT-2's bytes_to_unicode: the code point standing for byte b, and back (-1 if cp
 * stands for no byte). */
uint32_t mdl__tok_byte_to_cp(uint8_t b);
int mdl__tok_cp_to_byte(uint32_t cp);

/* ---- tokenizer_load.c ----------------------------------------------------------- */

/* Fills piece_off/piece_len/max_piece_len (and TOKF_BYTE) from the keys, for the kind. */
int mdl__tok_make_pieces(mdl_tokenizer_t *tok);
/* Sets split_words to 2 when no token has a space marker after another character. */
void mdl__tok_auto_split(mdl_tokenizer_t *tok);
/* Adds tokenizer_config.json's settings (added tokens, bos/eos, add_bos_token,
 * chat_template) to tok. */
int mdl__tok_apply_config(mdl_tokenizer_t *tok, const char *json, size_t len,
                          mdl_err_t *reterr);
/* Makes present id a special added token (matched whole before normalization) with
 * its key as content. 0 or -ENOMEM. */
int mdl__tok_add_special(mdl_tokenizer_t *tok, int32_t id);
/* Indexes tok->added for matching; called once all added tokens are known. */
int mdl__tok_index_added(mdl_tokenizer_t *tok);
/* Adds an eos id unless already listed (silently keeps at most 8). */
void mdl__tok_add_eos(mdl_tokenizer_t *tok, int32_t id);

#endif
