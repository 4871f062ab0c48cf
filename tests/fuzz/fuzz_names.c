/* libFuzzer target: what the outside world names models with. The router on an arbitrary
 * method and path (a model it captures must be a valid name, a version must be the digits
 * in the path), and the repository scanner's folder-name checks (server/names.c): a valid
 * name has only [A-Za-z0-9._-], never starts with '.', and is at most 64 bytes; a version
 * parses only from 1 to 18 digits and prints back to the same text. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/names.h"
#include "server/router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_name(const char *s)
{
    size_t n = strlen(s);

    if (mdl_name_valid(s)) {
        if (n == 0 || n > MDL_NAME_MAX || s[0] == '.' || strstr(s, "/") || strstr(s, "\\"))
            abort();
        for (size_t i = 0; i < n; i++)
            if (!(s[i] == '.' || s[i] == '_' || s[i] == '-' || (s[i] >= '0' && s[i] <= '9') ||
                  (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
                abort();
    }
    long v = mdl_version_parse(s);
    if (v >= 0) {
        char back[32];
        snprintf(back, sizeof back, "%ld", v);
        /* leading zeros are the one way the text may differ */
        const char *t = s;
        while (t[0] == '0' && t[1])
            t++;
        if (strcmp(back, t) != 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "POST", "PUT", "DELETE"};
    mdl_route_match_t m;
    char *path;
    int r;

    if (size < 1)
        return 0;
    path = malloc(size);
    if (!path)
        return 0;
    memcpy(path, data + 1, size - 1);
    path[size - 1] = '\0';
    check_name(path);
    r = mdl_router_match(methods[data[0] & 3], path, &m);
    if (r == 0) {
        if (!m.route || (m.model[0] && !mdl_name_valid(m.model)))
            abort();
        if (m.model[0] && !strstr(path, m.model))
            abort();
        if (m.version >= 0) {
            char v[32];
            snprintf(v, sizeof v, "%ld", m.version);
            if (!strstr(path, v))
                abort();
        }
    } else if (r != -ENOENT && r != -EPERM) {
        abort();
    }
    free(path);
    return 0;
}
