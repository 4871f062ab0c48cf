/* UTF-8 decoding, validation and repair. The well-formed byte sequences are those of
 * Table 3-7 in the Unicode standard; everything here is built on one function that says
 * whether a prefix can still grow into one of them. */
#include "utf8.h"

#include <string.h>

/* Bounds of the second byte for each lead byte (Table 3-7); later bytes are 80..BF. */
static bool second_range(uint8_t lead, uint8_t *lo, uint8_t *hi)
{
    *lo = 0x80;
    *hi = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF)
        return true;
    if (lead == 0xE0)
        *lo = 0xA0;
    else if (lead == 0xED)
        *hi = 0x9F;
    else if (lead == 0xF0)
        *lo = 0x90;
    else if (lead == 0xF4)
        *hi = 0x8F;
    else if (!((lead >= 0xE1 && lead <= 0xEF) || (lead >= 0xF1 && lead <= 0xF3)))
        return false;
    return true;
}

static size_t seq_len(uint8_t lead)
{
    return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

/* True if s[0..n) (n >= 1) is a prefix of some well-formed sequence (possibly whole). */
static bool valid_prefix(const uint8_t *s, size_t n)
{
    uint8_t lo, hi;

    if (s[0] < 0x80)
        return n == 1;
    if (!second_range(s[0], &lo, &hi) || n > seq_len(s[0]))
        return false;
    if (n >= 2 && (s[1] < lo || s[1] > hi))
        return false;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return false;
    return true;
}

size_t mdl_utf8_decode(const uint8_t *s, size_t len, uint32_t *ret_cp)
{
    if (len == 0)
        return 0;
    if (s[0] < 0x80) {
        *ret_cp = s[0];
        return 1;
    }
    size_t n = seq_len(s[0]);
    if (n > len || !valid_prefix(s, n))
        return 0;
    uint32_t cp = s[0] & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
    for (size_t i = 1; i < n; i++)
        cp = cp << 6 | (s[i] & 0x3F);
    *ret_cp = cp;
    return n;
}

bool mdl_utf8_validate(const uint8_t *s, size_t len, size_t *ret_offset, const char **ret_why)
{
    size_t i = 0;

    while (i < len) {
        /* ASCII runs, eight bytes at a time */
        while (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull)
                break;
            i += 8;
        }
        if (i >= len)
            break;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        size_t n = mdl_utf8_decode(s + i, len - i, &cp);
        if (n) {
            i += n;
            continue;
        }
        uint8_t b = s[i];
        const char *why;
        if (b >= 0x80 && b <= 0xBF)
            why = "unexpected continuation byte";
        else if (b == 0xC0 || b == 0xC1)
            why = "overlong encoding";
        else if (b >= 0xF5)
            why = b <= 0xF7 ? "code point above U+10FFFF" : "invalid byte (0xF8..0xFF)";
        else {
            /* a legal lead byte: find which later byte broke it */
            size_t want = seq_len(b), k = 1;
            while (k < want && i + k < len && valid_prefix(s + i, k + 1))
                k++;
            if (k == want)
                why = "invalid sequence"; /* not reached: decode would have succeeded */
            else if (i + k >= len)
                why = "truncated sequence at end of text";
            else if (k == 1 && s[i + 1] >= 0x80 && s[i + 1] <= 0xBF)
                why = b == 0xED ? "surrogate code point"
                      : b == 0xF4 ? "code point above U+10FFFF"
                                  : "overlong encoding";
            else
                why = "truncated sequence";
        }
        *ret_offset = i;
        *ret_why = why;
        return false;
    }
    return true;
}

size_t mdl_utf8_encode(uint32_t cp, uint8_t out[4])
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | cp >> 6);
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF)
        return 0;
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | cp >> 12);
        out[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp > 0x10FFFF)
        return 0;
    out[0] = (uint8_t)(0xF0 | cp >> 18);
    out[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

void mdl_utf8_fix_init(mdl_utf8_fix_t *f, bool per_byte)
{
    memset(f, 0, sizeof *f);
    f->per_byte = per_byte;
}

static size_t put_fffd(uint8_t *out, size_t count)
{
    for (size_t i = 0; i < count; i++)
        memcpy(out + 3 * i, "\xEF\xBF\xBD", 3);
    return 3 * count;
}

size_t mdl_utf8_fix_feed(mdl_utf8_fix_t *f, const uint8_t *in, size_t n, uint8_t *out)
{
    size_t w = 0;

    for (size_t i = 0; i < n; i++) {
        uint8_t b = in[i];
        if (f->n_held == 0 && b < 0x80) {
            out[w++] = b;
            continue;
        }
        f->held[f->n_held++] = b;
        if (valid_prefix(f->held, f->n_held)) {
            if (f->n_held == seq_len(f->held[0])) {
                memcpy(out + w, f->held, f->n_held);
                w += f->n_held;
                f->n_held = 0;
            }
            continue;
        }
        /* b broke the held prefix (or is a bad byte on its own). The prefix before b is
         * ill-formed: one U+FFFD for it, or one per byte; then b starts afresh. */
        size_t before = f->n_held - 1u;
        f->n_held = 0;
        if (before > 0) {
            w += put_fffd(out + w, f->per_byte ? before : 1);
            i--; /* reprocess b */
        } else {
            w += put_fffd(out + w, 1);
        }
    }
    return w;
}

size_t mdl_utf8_fix_finish(mdl_utf8_fix_t *f, uint8_t *out)
{
    size_t n = f->n_held;

    f->n_held = 0;
    if (n == 0)
        return 0;
    return put_fffd(out, f->per_byte ? n : 1);
}
