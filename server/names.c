#include "names.h"

#include <stdlib.h>
#include <string.h>

/* A loop, not strspn: glibc builds strspn's 256-byte table on every call, and every
 * request's model name comes through here. */
static bool name_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '-';
}

bool mdl_name_valid(const char *s)
{
    size_t n = 0;

    if (s[0] == '.')
        return false;
    while (s[n] && n <= MDL_NAME_MAX)
        if (!name_char((unsigned char)s[n++]))
            return false;
    return n > 0 && n <= MDL_NAME_MAX;
}

long mdl_version_parse(const char *s)
{
    size_t n = strnlen(s, 19);

    if (n == 0 || n > 18 || strspn(s, "0123456789") != n)
        return -1;
    return strtol(s, NULL, 10);
}
