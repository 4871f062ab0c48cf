#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool reserve(mdl_buf_t *b, size_t extra)
{
    size_t need, ncap;
    char *nd;

    if (b->failed)
        return false;
    need = b->len + extra + 1;
    if (need <= b->cap)
        return true;
    ncap = b->cap ? b->cap : 256;
    while (ncap < need)
        ncap *= 2;
    nd = realloc(b->data, ncap);
    if (!nd) {
        b->failed = true;
        return false;
    }
    b->data = nd, b->cap = ncap;
    return true;
}

void mdl_buf_append(mdl_buf_t *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void mdl_buf_puts(mdl_buf_t *b, const char *s)
{
    mdl_buf_append(b, s, strlen(s));
}

void mdl_buf_printf(mdl_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (!reserve(b, 128))
        return;
    va_start(ap, fmt);
    n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= b->cap - b->len) {
        if (!reserve(b, (size_t)n))
            return;
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

char *mdl_buf_steal(mdl_buf_t *b, size_t *ret_len)
{
    char *d = b->data;

    if (ret_len)
        *ret_len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}

void mdl_buf_done(mdl_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = false;
}

size_t mdl_fmt_uint(char *out, unsigned long long v)
{
    char digits[24];
    size_t n = 0, len = 0;

    do
        digits[n++] = (char)('0' + v % 10), v /= 10;
    while (v);
    while (n)
        out[len++] = digits[--n];
    out[len] = '\0';
    return len;
}

size_t mdl_fmt_ms(char *out, double seconds)
{
    unsigned long long us = seconds > 0 ? (unsigned long long)(seconds * 1e6 + 0.5) : 0;
    size_t len = mdl_fmt_uint(out, us / 1000);

    out[len++] = '.';
    out[len++] = (char)('0' + us / 100 % 10);
    out[len++] = (char)('0' + us / 10 % 10);
    out[len++] = (char)('0' + us % 10);
    out[len] = '\0';
    return len;
}

void *mdl_zalloc(size_t n)
{
    void *p = malloc(n);

    /* explicit_bzero, as GCC would fuse malloc + memset back into calloc */
    if (p)
        explicit_bzero(p, n);
    return p;
}
