/* Tokenizers for the transformer models: text <-> token ids, from the model's own files.
 *
 * Three kinds:
 *   MDL_TOK_BYTE_BPE  GPT-2 byte-level BPE (tokenizer.json with a ByteLevel pre-tokenizer):
 *                     GPT-2's pre-tokenizer regex, the byte<->unicode map, merges by rank.
 *   MDL_TOK_SP_BPE    Llama / SentencePiece BPE as Hugging Face saves it (tokenizer.json,
 *                     model.type BPE, "\u2581" for spaces, byte fallback <0xNN>, merges
 *                     by rank).
 *   MDL_TOK_LLAMA2C   llama2.c tokenizer.bin (vocabulary with float scores): a " " prefix,
 *                     merges by best score like SentencePiece, byte fallback <0xNN>.
 * Added tokens (tokenizer.json added_tokens, tokenizer_config.json
 * added_tokens_decoder) are matched whole in the text before BPE: non-special ones always,
 * special ones (<s>, <|endoftext|>, <|im_start|>...) only with MDL_TOK_ALLOW_SPECIAL.
 *
 * Text in is UTF-8 and is checked: invalid UTF-8 is refused (-EPROTO) with the byte
 * offset. Text out is always valid UTF-8: bytes of byte-fallback / byte-level tokens that
 * do not form whole characters become U+FFFD (one per byte for the SentencePiece kinds,
 * as SentencePiece prints them; one per maximal ill-formed subpart for byte-level BPE, as
 * Python and Hugging Face do). decode(encode(text)) == text for every valid UTF-8 text
 * (MDL_TOK_SP_BPE: when its normalizer only adds the "\u2581" prefix and maps spaces).
 *
 * A tokenizer is immutable once loaded: any number of threads may encode and decode with
 * it at once. Nothing here logs. Uses only libc (see models/model.h). */
#ifndef MDL_TOKENIZER_H
#define MDL_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "models/err.h"
#include "models/transformer/utf8.h"

typedef struct mdl_tokenizer mdl_tokenizer_t;

typedef enum mdl_tok_kind {
    MDL_TOK_BYTE_BPE = 1,
    MDL_TOK_SP_BPE,
    MDL_TOK_LLAMA2C,
} mdl_tok_kind_t;

/* The chat template family tokenizer_config.json's chat_template names. */
typedef enum mdl_chat_format {
    MDL_CHAT_NONE = 0, /* no chat_template */
    MDL_CHAT_CHATML,   /* mentions <|im_start|> */
    MDL_CHAT_LLAMA2,   /* mentions [INST] */
    MDL_CHAT_UNKNOWN,  /* some other template */
} mdl_chat_format_t;

/* Flags. Encode: */
#define MDL_TOK_ADD_BOS 0x1u       /* put the bos id first (if the tokenizer has one) */
#define MDL_TOK_ALLOW_SPECIAL 0x2u /* match special added tokens in the text; without it
                                      "<s>" in a prompt is plain text */
/* Decode: */
#define MDL_TOK_SKIP_SPECIAL 0x4u  /* special tokens (bos, eos, <|im_end|>...) print nothing */

/* Limits on what a file may declare (checked before anything is allocated from them). */
#define MDL_TOK_MAX_FILE_BYTES ((size_t)256 << 20) /* tokenizer.json / tokenizer.bin */
#define MDL_TOK_MAX_VOCAB ((size_t)1 << 21)        /* ids 0 .. 2^21-1 */
#define MDL_TOK_MAX_TOKEN_BYTES 4096               /* bytes in one token's text */

/* Loads the tokenizer of the model folder `dir`: tokenizer.json if present, else
 * tokenizer.bin (llama2.c). tokenizer_config.json supplies added tokens, bos/eos,
 * add_bos_token and chat_template; generation_config.json and config.json add their
 * bos_token_id / eos_token_id(s). Returns 0 with a new tokenizer in *ret; -ENOENT when
 * the folder has neither tokenizer file (the model then serves on token ids only);
 * -EBADMSG when a file is malformed or describes a tokenizer this code does not
 * implement, with reterr naming the file, the field and the problem; -E2BIG, -ENOMEM.
 * Any thread. */
int mdl_tokenizer_load_dir(const char *dir, mdl_tokenizer_t **ret, mdl_err_t *reterr);

/* The same from memory (what load_dir does after reading the files; the fuzz target's
 * entry). config_json (tokenizer_config.json) may be NULL. Copies what it keeps. */
int mdl_tokenizer_load_hf(const char *json, size_t len, const char *config_json,
                          size_t config_len, mdl_tokenizer_t **ret, mdl_err_t *reterr);
/* tokenizer.bin: int32 max_token_length, then per token float32 score, int32 length,
 * bytes; little-endian; tokens run to the end of the data. bos = 1, eos = 2 (llama2.c's
 * convention) unless config_json says otherwise. */
int mdl_tokenizer_load_llama2c(const void *data, size_t len, const char *config_json,
                               size_t config_len, mdl_tokenizer_t **ret, mdl_err_t *reterr);

/* Frees; NULL-safe; returns NULL. */
mdl_tokenizer_t *mdl_tokenizer_free(mdl_tokenizer_t *tok);

/* Encodes text[0..len) into a malloc'd array of ids (*ret_ids, the caller frees; NULL
 * when *ret_n is 0). Errors: -EPROTO invalid UTF-8 ("invalid UTF-8 at byte 12: truncated
 * sequence"), -ENOMEM, -E2BIG (more than 2^32 bytes). */
int mdl_tokenizer_encode(const mdl_tokenizer_t *tok, const char *text, size_t len,
                         unsigned flags, int32_t **ret_ids, size_t *ret_n, mdl_err_t *reterr);

/* Decodes ids[0..n) into malloc'd, NUL-terminated, valid UTF-8 (*ret_text, the caller
 * frees; *ret_len excludes the NUL). The Llama kinds drop the space their normalizer
 * put in front of the first piece, as their decoders do. Errors: -ERANGE for an id
 * outside the vocabulary (naming it and its position), -ENOMEM. */
int mdl_tokenizer_decode(const mdl_tokenizer_t *tok, const int32_t *ids, size_t n,
                         unsigned flags, char **ret_text, size_t *ret_len, mdl_err_t *reterr);

/* Incremental decoding for streaming: push one id at a time and get the text that is
 * complete so far. Bytes of a character split across tokens (byte fallback, byte-level
 * pieces) are held back until the character is whole, so every chunk is valid UTF-8 and
 * the chunks joined equal mdl_tokenizer_decode() of the same ids. prev_id is the token
 * before the first one pushed (the prompt's last), or -1 if none: the Llama kinds drop
 * the leading space of the first piece only when the stream starts the text (prev_id is
 * -1 or the bos id), as llama2.c and SentencePiece do. The stream belongs to one
 * sequence (one thread at a time); the tokenizer must outlive it. */
typedef struct mdl_tok_stream {
    const mdl_tokenizer_t *tok;
    unsigned flags;   /* MDL_TOK_SKIP_SPECIAL or 0 */
    bool at_start;    /* nothing printed yet and the text starts here */
    mdl_utf8_fix_t fix;
    char *buf;        /* output of the last push; owned */
    size_t cap;
} mdl_tok_stream_t;

/* 0 or -ENOMEM. */
int mdl_tok_stream_init(mdl_tok_stream_t *s, const mdl_tokenizer_t *tok, int32_t prev_id,
                        unsigned flags);
/* Feeds id; *ret_text / *ret_len (NUL-terminated, possibly empty) stay valid until the
 * next call on s. -ERANGE for an id outside the vocabulary (nothing consumed). */
int mdl_tok_stream_push(mdl_tok_stream_t *s, int32_t id, const char **ret_text,
                        size_t *ret_len, mdl_err_t *reterr);
/* At the end of the sequence: the held-back bytes, which can only be an incomplete
 * character now, as U+FFFD. */
void mdl_tok_stream_finish(mdl_tok_stream_t *s, const char **ret_text, size_t *ret_len);
/* Frees the buffer; the stream may be initialised again. */
void mdl_tok_stream_done(mdl_tok_stream_t *s);

/* ---- what the tokenizer knows ---------------------------------------------------- */

mdl_tok_kind_t mdl_tokenizer_kind(const mdl_tokenizer_t *tok);
const char *mdl_tok_kind_name(mdl_tok_kind_t kind); /* "byte_bpe", "sp_bpe", "llama2c" */

/* Ids run 0 .. vocab_size-1 (ids the files leave unassigned decode to nothing). */
size_t mdl_tokenizer_vocab_size(const mdl_tokenizer_t *tok);

/* bos id, or -1 if none. */
int32_t mdl_tokenizer_bos(const mdl_tokenizer_t *tok);
/* eos ids (every id that ends generation: tokenizer_config's eos_token and the ids of
 * generation_config.json / config.json); *ret_n may be 0. */
const int32_t *mdl_tokenizer_eos(const mdl_tokenizer_t *tok, size_t *ret_n);
bool mdl_tokenizer_is_eos(const mdl_tokenizer_t *tok, int32_t id);
/* Whether prompts get a bos by default (tokenizer_config.json add_bos_token, else the
 * post-processor template, else the kind's habit: Llama kinds yes, byte-level no). */
bool mdl_tokenizer_add_bos_default(const mdl_tokenizer_t *tok);
/* Special tokens: added tokens marked special, SentencePiece control pieces. */
bool mdl_tokenizer_is_special(const mdl_tokenizer_t *tok, int32_t id);

/* The bytes id decodes to on its own (byte tokens: that one byte; may be part of a
 * character), or NULL for an id outside the vocabulary. Valid while tok lives. */
const char *mdl_tokenizer_piece(const mdl_tokenizer_t *tok, int32_t id, size_t *ret_len);
/* The id of the token written as s[0..len) in the tokenizer's files (an added token's
 * content such as "<|im_end|>", or a vocabulary entry as the file spells it), or -1. */
int32_t mdl_tokenizer_find(const mdl_tokenizer_t *tok, const char *s, size_t len);

/* tokenizer_config.json's chat_template (NULL if none) and its family. */
const char *mdl_tokenizer_chat_template(const mdl_tokenizer_t *tok);
mdl_chat_format_t mdl_tokenizer_chat_format(const mdl_tokenizer_t *tok);
/* The family of a template string (NULL -> MDL_CHAT_NONE). */
mdl_chat_format_t mdl_chat_format_detect(const char *template_text);

#endif
