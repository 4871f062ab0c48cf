/* Stop strings over a stream of generated text. Text arrives in pieces (one token's bytes
 * at a time); the matcher says how much of it is safe to show the client now, holding
 * back any tail that could still turn into a stop string, and reports the first stop
 * string found, cutting the text just before it (OpenAI's rule: the stop string itself is
 * not returned). One matcher per sequence; not shared between threads. */
#ifndef MDL_STOP_H
#define MDL_STOP_H

#include <stdbool.h>
#include <stddef.h>

#define MDL_STOP_MAX 8          /* stop strings per request */
#define MDL_STOP_MAX_BYTES 256  /* bytes per stop string */

typedef struct mdl_stop {
    const char *stops[MDL_STOP_MAX]; /* borrowed, non-empty, NUL-terminated */
    size_t n_stops;
    char *held;                      /* owned: [off, len) is text not released yet; [0, off)
                                        was released by the last call, still being read */
    size_t held_off, held_len, held_cap;
    bool matched;                    /* a stop string was found: nothing more is released */
} mdl_stop_t;

/* stops[0..n) must stay alive as long as the matcher (n <= MDL_STOP_MAX, each non-empty
 * and at most MDL_STOP_MAX_BYTES, checked by the caller). */
void mdl_stop_init(mdl_stop_t *m, const char *const *stops, size_t n);
void mdl_stop_done(mdl_stop_t *m);

/* Adds text; *ret_out / *ret_len receive what may be released now (a pointer into the
 * matcher, valid until the next call). Returns 1 if a stop string completed (the released
 * text ends just before it), 0 otherwise, -ENOMEM. */
int mdl_stop_feed(mdl_stop_t *m, const char *text, size_t len, const char **ret_out, size_t *ret_len);

/* The end of generation: releases what was held back (nothing after a match). */
void mdl_stop_flush(mdl_stop_t *m, const char **ret_out, size_t *ret_len);

#endif
