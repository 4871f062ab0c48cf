/* Error detail for every layer: a negative errno-style code plus a message naming
 * what failed and where. Filled only on failure (the "reterr" convention); callers own
 * the struct, usually on their stack. Codes with fixed meanings:
 *   -EBADMSG  malformed model file        -EPROTO  bad request body / value
 *   -ERANGE   value out of range          -ENOENT  unknown model / file
 *   -EBUSY    overloaded                  -ENOMEM  out of memory
 *   -E2BIG    over a configured limit     -EINVAL  bad argument / config value */
#ifndef MDL_ERR_H
#define MDL_ERR_H

#include <errno.h>

typedef struct mdl_err {
    int code;       /* negative errno, 0 when unset */
    char msg[256];  /* human message, NUL-terminated */
} mdl_err_t;

/* Sets code and a printf-style message; returns code so callers can
 * `return mdl_err_set(reterr, -EBADMSG, "...")`. reterr may be NULL. */
int mdl_err_set(mdl_err_t *reterr, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes an existing message with context ("model 'x': ..."); keeps the code. */
void mdl_err_prefix(mdl_err_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
