/* GPT-2's pre-tokenizer, written out by hand instead of run by a regex engine:
 *
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *
 * The alternatives are tried in order at each position, as a backtracking engine does.
 * The only backtracking case is \s+(?!\S): a run of k white-space characters followed by
 * a non-space gives back its last character (k - 1), so that character can lead the
 * next word (" world"); a single one falls through to \s+ and stands alone. And GPT-2's
 * byte <-> unicode map (bytes_to_unicode in its encoder.py). */
#include "models/transformer/tokenizer_internal.h"
#include "models/transformer/unicode.h"
#include "models/transformer/utf8.h"

/* Class and length of the (valid) character at s[i]. */
static mdl_uclass_t class_at(const uint8_t *s, size_t len, size_t i, size_t *ret_n)
{
    uint32_t cp;

    if (s[i] < 0x80) {
        *ret_n = 1;
        return (mdl_uclass_t)mdl_unicode_latin1[s[i]];
    }
    size_t n = mdl_utf8_decode(s + i, len - i, &cp);
    if (n == 0) { /* callers validate first; treat a stray byte as "other" */
        *ret_n = 1;
        return MDL_UCLASS_OTHER;
    }
    *ret_n = n;
    return mdl_unicode_class(cp);
}

/* End of the run of characters of class c (or, with `other`, of any class but letter,
 * number and space) starting at i. */
static size_t run_end(const uint8_t *s, size_t len, size_t i, mdl_uclass_t c)
{
    while (i < len) {
        size_t n;
        if (class_at(s, len, i, &n) != c)
            break;
        i += n;
    }
    return i;
}

static size_t contraction(const uint8_t *s, size_t len, size_t pos)
{
    size_t left = len - pos;

    if (left >= 2 && (s[pos + 1] == 's' || s[pos + 1] == 't' || s[pos + 1] == 'm' ||
                      s[pos + 1] == 'd'))
        return 2;
    if (left >= 3 && ((s[pos + 1] == 'r' && s[pos + 2] == 'e') ||
                      (s[pos + 1] == 'v' && s[pos + 2] == 'e') ||
                      (s[pos + 1] == 'l' && s[pos + 2] == 'l')))
        return 3;
    return 0;
}

size_t mdl__tok_gpt2_next(const uint8_t *s, size_t len, size_t pos)
{
    size_t n, n2;
    mdl_uclass_t c = class_at(s, len, pos, &n);

    if (s[pos] == '\'') {
        size_t k = contraction(s, len, pos);
        if (k)
            return pos + k;
    }
    /* " ?X+" where X is letter, number or other: an optional plain space first */
    size_t start = pos;
    if (s[pos] == ' ' && pos + 1 < len) {
        mdl_uclass_t next = class_at(s, len, pos + 1, &n2);
        if (next != MDL_UCLASS_SPACE) {
            start = pos + 1;
            c = next;
            n = n2;
        }
    }
    if (c != MDL_UCLASS_SPACE)
        return run_end(s, len, start + n, c);
    /* white space: \s+(?!\S) then \s+ */
    size_t end = pos, k = 0, last = pos;
    while (end < len) {
        size_t m;
        if (class_at(s, len, end, &m) != MDL_UCLASS_SPACE)
            break;
        last = end;
        end += m;
        k++;
    }
    if (end == len || k == 1)
        return end;
    return last; /* give back the last space character */
}

/* bytes_to_unicode: the printable bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF stand for
 * themselves; the other 68 take U+0100, U+0101, ... in byte order: 0x00..0x20 ->
 * U+0100..U+0120, 0x7F..0xA0 -> U+0121..U+0142, 0xAD -> U+0143. */
static bool printable(unsigned b)
{
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
}

uint32_t mdl__tok_byte_to_cp(uint8_t b)
{
    if (printable(b))
        return b;
    if (b <= 0x20)
        return 0x100 + b;
    if (b >= 0x7F && b <= 0xA0)
        return 0x121 + (b - 0x7Fu);
    return 0x143; /* 0xAD */
}

int mdl__tok_cp_to_byte(uint32_t cp)
{
    if (cp < 0x100)
        return printable(cp) ? (int)cp : -1;
    if (cp <= 0x120)
        return (int)(cp - 0x100);
    if (cp <= 0x142)
        return (int)(cp - 0x121 + 0x7F);
    return cp == 0x143 ? 0xAD : -1;
}
