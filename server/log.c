#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"

static mdl_log_level_t min_level = MDL_LOG_INFO;
static mdl_log_format_t log_format = MDL_LOG_TEXT;

/* Access lines collect here; 64 KiB holds a few hundred lines. */
static char access_buf[65536];
static size_t access_len;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int mdl_log_level_parse(const char *s, mdl_log_level_t *ret)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0) {
            *ret = (mdl_log_level_t)i;
            return 0;
        }
    return -EINVAL;
}

int mdl_log_format_parse(const char *s, mdl_log_format_t *ret)
{
    if (strcmp(s, "text") == 0)
        *ret = MDL_LOG_TEXT;
    else if (strcmp(s, "json") == 0)
        *ret = MDL_LOG_JSON;
    else
        return -EINVAL;
    return 0;
}

void mdl_log_setup(mdl_log_level_t level, mdl_log_format_t format)
{
    min_level = level;
    log_format = format;
}

/* A line under construction; silently truncated if a value is absurdly long. */
typedef struct line {
    char buf[4096];
    size_t len;
} line_t;

static void put(line_t *l, const char *s, size_t n)
{
    if (n > sizeof l->buf - 2 - l->len)
        n = sizeof l->buf - 2 - l->len;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void puts_(line_t *l, const char *s) { put(l, s, strlen(s)); }

static void putf(line_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(line_t *l, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(l->buf + l->len, sizeof l->buf - 2 - l->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        l->len += (size_t)n < sizeof l->buf - 2 - l->len ? (size_t)n : sizeof l->buf - 3 - l->len;
}

/* Quoted and escaped so that request-controlled text can neither break a line nor forge
 * fields: JSON string rules serve both formats. */
static void put_quoted(line_t *l, const char *s)
{
    put(l, "\"", 1);
    while (*s) {
        size_t run = 0;
        unsigned char c;
        while ((c = (unsigned char)s[run]) && c >= 0x20 && c != 0x7f && c != '"' && c != '\\')
            run++;
        put(l, s, run);
        s += run;
        if (!*s)
            break;
        c = (unsigned char)*s++;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            put(l, esc, 2);
        } else {
            putf(l, "\\u%04x", c);
        }
    }
    put(l, "\"", 1);
}

/* Text values that are plain tokens stay unquoted, for readability: their length, or 0
 * for anything else. Per character without strchr: paths and ids go through here for
 * every access line. */
static size_t token_length(const char *s)
{
    const char *p = s;

    for (; *p; p++) {
        unsigned char c = (unsigned char)*p, lower = c | 0x20;
        if (!((lower >= 'a' && lower <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-' || c == '/' || c == ':' || c == '+'))
            return 0;
    }
    return (size_t)(p - s);
}

static void begin(line_t *l, mdl_log_level_t level, const char *event)
{
    /* Formatting the date is most of a line's cost; it changes once a second. */
    static _Thread_local time_t cached_sec = -1;
    static _Thread_local char when[40];
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != cached_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
        cached_sec = ts.tv_sec;
    }
    long ms = ts.tv_nsec / 1000000;
    char millis[5] = {'.', (char)('0' + ms / 100), (char)('0' + ms / 10 % 10), (char)('0' + ms % 10), 'Z'};

    l->len = 0;
    if (log_format == MDL_LOG_JSON)
        puts_(l, "{\"ts\":\"");
    puts_(l, when);
    put(l, millis, sizeof millis);
    puts_(l, log_format == MDL_LOG_JSON ? "\",\"level\":\"" : " ");
    puts_(l, level_names[level]);
    puts_(l, log_format == MDL_LOG_JSON ? "\",\"event\":\"" : " ");
    puts_(l, event);
    if (log_format == MDL_LOG_JSON)
        put(l, "\"", 1);
}

/* ,"key": or  key= (key is n bytes; the access line passes literals' lengths) */
static void put_key(line_t *l, const char *key, size_t n)
{
    int json = log_format == MDL_LOG_JSON;
    char *p = l->buf + l->len;

    if (n > 64 || l->len + n + 4 > sizeof l->buf - 2) { /* near the end: put() truncates */
        puts_(l, json ? ",\"" : " ");
        put(l, key, n);
        puts_(l, json ? "\":" : "=");
        return;
    }
    if (json)
        *p++ = ',';
    *p++ = json ? '"' : ' ';
    memcpy(p, key, n);
    p += n;
    if (json)
        *p++ = '"';
    *p++ = json ? ':' : '=';
    l->len = (size_t)(p - l->buf);
}

#define KEY(k) k, sizeof k - 1 /* a literal key and its length */

static void field_str(line_t *l, const char *key, size_t key_len, const char *value)
{
    size_t n;

    put_key(l, key, key_len);
    if (log_format == MDL_LOG_TEXT && (n = token_length(value)) > 0)
        put(l, value, n);
    else
        put_quoted(l, value);
}

static void field_uint(line_t *l, const char *key, size_t key_len, unsigned long long v)
{
    char text[24];

    put_key(l, key, key_len);
    put(l, text, mdl_fmt_uint(text, v));
}

static void field_ms(line_t *l, const char *key, size_t key_len, double ms)
{
    char text[32];

    put_key(l, key, key_len);
    put(l, text, mdl_fmt_ms(text, ms / 1e3));
}

static void end(line_t *l)
{
    if (log_format == MDL_LOG_JSON)
        put(l, "}", 1);
    l->buf[l->len++] = '\n';
}

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere left to report it */
        }
        p += w, n -= (size_t)w;
    }
}

void mdl_log_flush(void)
{
    write_all(access_buf, access_len);
    access_len = 0;
}

void mdl_log_event(mdl_log_level_t level, const char *event, ...)
{
    line_t l;
    va_list ap;
    const char *key;

    if (level < min_level)
        return;
    begin(&l, level, event);
    va_start(ap, event);
    while ((key = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);
        field_str(&l, key, strlen(key), value ? value : "");
    }
    va_end(ap);
    end(&l);
    mdl_log_flush(); /* keep lines in order */
    write_all(l.buf, l.len);
}

int mdl_log_access(const mdl_access_entry_t *e)
{
    line_t l;
    int was_empty = access_len == 0;

    if (MDL_LOG_INFO < min_level)
        return 0;
    begin(&l, MDL_LOG_INFO, "access");
    field_str(&l, KEY("request_id"), e->request_id);
    field_str(&l, KEY("method"), e->method);
    field_str(&l, KEY("path"), e->path);
    field_uint(&l, KEY("status"), (unsigned)e->status);
    if (e->model[0]) {
        field_str(&l, KEY("model"), e->model);
        if (e->version >= 0)
            field_uint(&l, KEY("version"), (unsigned long long)e->version);
    }
    field_uint(&l, KEY("bytes_in"), e->bytes_in);
    field_uint(&l, KEY("bytes_out"), e->bytes_out);
    field_ms(&l, KEY("parse_ms"), e->parse_ms);
    field_ms(&l, KEY("queue_ms"), e->queue_ms);
    field_ms(&l, KEY("infer_ms"), e->infer_ms);
    field_ms(&l, KEY("total_ms"), e->total_ms);
    end(&l);
    if (access_len + l.len > sizeof access_buf)
        mdl_log_flush();
    memcpy(access_buf + access_len, l.buf, l.len);
    access_len += l.len;
    return was_empty;
}
