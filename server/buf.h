/* A growable byte buffer for building response bodies and metrics text. Any thread; one
 * owner at a time. On allocation failure the buffer is marked failed and further appends
 * are ignored, so callers check `failed` once at the end. */
#ifndef MDL_BUF_H
#define MDL_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct mdl_buf {
    char *data; /* NUL-terminated when len > 0; owned */
    size_t len, cap;
    bool failed;
} mdl_buf_t;

void mdl_buf_append(mdl_buf_t *b, const char *s, size_t n);
void mdl_buf_puts(mdl_buf_t *b, const char *s);
void mdl_buf_printf(mdl_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Gives up ownership of the data (caller frees) and resets b. */
char *mdl_buf_steal(mdl_buf_t *b, size_t *ret_len);
void mdl_buf_done(mdl_buf_t *b);

/* n zeroed bytes for per-request structs; free() them. Unlike glibc 2.36's calloc it goes
 * through malloc's per-thread cache (calloc there costs ~1k instructions per allocation
 * and free pair). NULL on out of memory. */
void *mdl_zalloc(size_t n);

/* Hot-path number formatting without printf (its floating point showed in profiles).
 * Each writes into out (room for 24 bytes), NUL-terminates, returns the length. */
size_t mdl_fmt_uint(char *out, unsigned long long v);
/* A duration in milliseconds with three decimals ("12.345") from seconds; < 0 prints 0. */
size_t mdl_fmt_ms(char *out, double seconds);

#endif
