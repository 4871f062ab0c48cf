/* Logging: lifecycle events and one access-log line per request, as text or JSON, on
 * stderr. Access lines are buffered and flushed by size or a short timer (one write per
 * batch instead of per request); everything else is written at once.
 * Loop thread only once the loop runs (before that, any single thread). */
#ifndef MDL_LOG_H
#define MDL_LOG_H

#include <stddef.h>

typedef enum { MDL_LOG_DEBUG, MDL_LOG_INFO, MDL_LOG_WARN, MDL_LOG_ERROR } mdl_log_level_t;
typedef enum { MDL_LOG_TEXT, MDL_LOG_JSON } mdl_log_format_t;

/* Parse "debug|info|warn|error" / "text|json"; 0 or -EINVAL. */
int mdl_log_level_parse(const char *s, mdl_log_level_t *ret);
int mdl_log_format_parse(const char *s, mdl_log_format_t *ret);

void mdl_log_setup(mdl_log_level_t level, mdl_log_format_t format);

/* A lifecycle event: `event` is a short snake_case name; fields are "key", "value" string
 * pairs terminated by NULL. Values are quoted/escaped as the format requires. */
void mdl_log_event(mdl_log_level_t level, const char *event, ...) __attribute__((sentinel));


typedef struct mdl_access_entry {
    const char *request_id, *method, *path, *model; /* model: "" if none */
    long version;                                   /* -1 if none */
    int status;
    size_t bytes_in, bytes_out;
    double parse_ms, queue_ms, infer_ms, total_ms;
} mdl_access_entry_t;

/* Appends one access line to the buffer; returns 1 if the caller should arrange a flush
 * soon (the buffer went from empty to non-empty), 0 otherwise. Flushes itself when full. */
int mdl_log_access(const mdl_access_entry_t *e);
void mdl_log_flush(void);

#endif
