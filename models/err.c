#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int mdl_err_set(mdl_err_t *reterr, int code, const char *fmt, ...)
{
    if (reterr) {
        va_list ap;
        va_start(ap, fmt);
        reterr->code = code;
        vsnprintf(reterr->msg, sizeof reterr->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void mdl_err_prefix(mdl_err_t *err, const char *fmt, ...)
{
    char prefix[128], old[sizeof err->msg];
    va_list ap;

    if (!err)
        return;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    /* Truncation is acceptable: the message is for people. */
    if (snprintf(err->msg, sizeof err->msg, "%s%s", prefix, old) < 0)
        err->msg[0] = '\0';
}
