/* UTF-8 for the tokenizers: strict validation with the offset of the first bad byte,
 * one-code-point decoding of validated text, and a byte-at-a-time repairer that turns
 * any byte stream into valid UTF-8 (for decoding tokens, whose bytes may not be).
 *
 * "Valid" is RFC 3629: no overlong forms, no surrogates (U+D800..U+DFFF), nothing above
 * U+10FFFF, no truncated sequences. Pure functions over caller memory; any thread. */
#ifndef MDL_UTF8_H
#define MDL_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of the well-formed sequence at s[0..len), or 0 if none starts there (bad lead
 * byte, bad continuation, overlong, surrogate, > U+10FFFF, or cut short by len). On
 * success *ret_cp is the code point. */
size_t mdl_utf8_decode(const uint8_t *s, size_t len, uint32_t *ret_cp);

/* Checks s[0..len). Returns true if valid; otherwise false, *ret_offset = offset of the
 * first byte of the bad sequence and *ret_why = a static phrase ("truncated sequence",
 * "overlong encoding", "surrogate code point", "code point above U+10FFFF", "unexpected
 * continuation byte", "invalid byte 0xFF"...). */
bool mdl_utf8_validate(const uint8_t *s, size_t len, size_t *ret_offset, const char **ret_why);

/* Writes cp (<= U+10FFFF, not a surrogate) as UTF-8 into out[0..4); returns 1..4, or 0 if
 * cp cannot be encoded. */
size_t mdl_utf8_encode(uint32_t cp, uint8_t out[4]);

/* The repairer: feed bytes, get valid UTF-8 out. A sequence still incomplete is held back
 * (at most 3 bytes) until the byte that completes or breaks it arrives. Bytes that cannot
 * be part of a well-formed sequence become U+FFFD, either one per byte (SentencePiece's
 * rule: what Llama-style tokenizers print) or one per maximal ill-formed subpart (the
 * Unicode recommendation: Python's errors="replace", Rust's from_utf8_lossy; what
 * byte-level BPE decoders print). Feeding the same bytes in any split gives the same
 * output. The struct is plain data: zero it (or call _init) to start. */
typedef struct mdl_utf8_fix {
    uint8_t held[4];
    uint8_t n_held;
    bool per_byte; /* one U+FFFD per bad byte instead of per maximal subpart */
} mdl_utf8_fix_t;

void mdl_utf8_fix_init(mdl_utf8_fix_t *f, bool per_byte);

/* Feeds in[0..n) and appends the completed output to out; returns the number of bytes
 * written. out must have room for 3 * (n + 3) bytes (every byte could become U+FFFD). */
size_t mdl_utf8_fix_feed(mdl_utf8_fix_t *f, const uint8_t *in, size_t n, uint8_t *out);

/* Ends the stream: whatever is held is ill-formed; appends its U+FFFD(s) (at most 9 bytes)
 * and returns the number of bytes written. */
size_t mdl_utf8_fix_finish(mdl_utf8_fix_t *f, uint8_t *out);

/* Number of bytes held back. */
static inline size_t mdl_utf8_fix_pending(const mdl_utf8_fix_t *f)
{
    return f->n_held;
}

#endif
