#include "stop.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void mdl_stop_init(mdl_stop_t *m, const char *const *stops, size_t n)
{
    memset(m, 0, sizeof *m);
    for (size_t i = 0; i < n && i < MDL_STOP_MAX; i++)
        m->stops[m->n_stops++] = stops[i];
}

void mdl_stop_done(mdl_stop_t *m)
{
    free(m->held);
    m->held = NULL;
    m->held_len = m->held_cap = 0;
}

/* Length of the longest suffix of s[0..n) that is a proper prefix of some stop string. */
static size_t partial_tail(const mdl_stop_t *m, const char *s, size_t n)
{
    size_t best = 0;
    for (size_t i = 0; i < m->n_stops; i++) {
        size_t sl = strlen(m->stops[i]);
        for (size_t k = sl - 1 < n ? sl - 1 : n; k > best; k--) {
            if (memcmp(s + n - k, m->stops[i], k) == 0) {
                best = k;
                break;
            }
        }
    }
    return best;
}

int mdl_stop_feed(mdl_stop_t *m, const char *text, size_t len, const char **ret_out, size_t *ret_len)
{
    *ret_out = "";
    *ret_len = 0;
    if (m->matched)
        return 1;
    if (m->n_stops == 0) {
        *ret_out = text;
        *ret_len = len;
        return 0;
    }
    /* What the last call released has been read by now: drop it. */
    if (m->held_off > 0) {
        memmove(m->held, m->held + m->held_off, m->held_len - m->held_off);
        m->held_len -= m->held_off;
        m->held_off = 0;
    }
    if (m->held_len + len > m->held_cap) {
        size_t cap = (m->held_len + len) * 2;
        char *p = realloc(m->held, cap);
        if (!p)
            return -ENOMEM;
        m->held = p;
        m->held_cap = cap;
    }
    if (len > 0)
        memcpy(m->held + m->held_len, text, len);
    m->held_len += len;

    /* The text is cut where the first stop string starts. */
    size_t cut = SIZE_MAX;
    for (size_t i = 0; i < m->n_stops; i++) {
        size_t sl = strlen(m->stops[i]);
        for (size_t at = 0; at + sl <= m->held_len && at < cut; at++) {
            if (memcmp(m->held + at, m->stops[i], sl) == 0) {
                cut = at;
                break;
            }
        }
    }
    *ret_out = m->held;
    if (cut != SIZE_MAX) {
        m->matched = true;
        *ret_len = cut;
        m->held_len = 0;
        return 1;
    }
    m->held_off = m->held_len - partial_tail(m, m->held, m->held_len);
    *ret_len = m->held_off;
    return 0;
}

void mdl_stop_flush(mdl_stop_t *m, const char **ret_out, size_t *ret_len)
{
    *ret_out = m->held ? m->held + m->held_off : "";
    *ret_len = m->matched ? 0 : m->held_len - m->held_off;
    m->held_off = m->held_len;
}
