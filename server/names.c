#include "names.h"

#include <stdlib.h>
#include <string.h>

#define NAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"

bool mdl_name_valid(const char *s)
{
    size_t n = strnlen(s, MDL_NAME_MAX + 1);

    if (n == 0 || n > MDL_NAME_MAX || s[0] == '.')
        return false;
    return strspn(s, NAME_CHARS) == n;
}

long mdl_version_parse(const char *s)
{
    size_t n = strnlen(s, 19);

    if (n == 0 || n > 18 || strspn(s, "0123456789") != n)
        return -1;
    return strtol(s, NULL, 10);
}
