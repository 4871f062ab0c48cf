#include "file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sha256.h"

int mdl_file_read(const char *path, size_t max_bytes, char **ret_data, size_t *ret_len,
                  char sha256_hex[65], mdl_err_t *reterr)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    size_t len = 0, cap = 0;
    int r;

    if (!f)
        return mdl_err_set(reterr, -errno, "%s: %s", path, strerror(errno));
    for (;;) {
        size_t got;
        if (cap - len < 65536) {
            size_t ncap = cap ? cap * 2 : 65536 + 1;
            char *nd = realloc(data, ncap);
            if (!nd) {
                r = mdl_err_set(reterr, -ENOMEM, "%s: out of memory", path);
                goto fail;
            }
            data = nd, cap = ncap;
        }
        got = fread(data + len, 1, cap - len - 1, f);
        len += got;
        if (len > max_bytes) {
            r = mdl_err_set(reterr, -E2BIG, "%s: larger than the %zu-byte limit", path, max_bytes);
            goto fail;
        }
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        r = mdl_err_set(reterr, -EIO, "%s: read error", path);
        goto fail;
    }
    fclose(f);
    data[len] = '\0';
    if (sha256_hex) {
        mdl_sha256_t s;
        mdl_sha256_init(&s);
        mdl_sha256_update(&s, data, len);
        mdl_sha256_final_hex(&s, sha256_hex);
    }
    *ret_data = data;
    *ret_len = len;
    return 0;
fail:
    free(data);
    fclose(f);
    return r;
}
