#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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

int mdl_file_map(const char *path, size_t min_bytes, const char *min_what, size_t max_bytes,
                 void **ret_base, size_t *ret_len, mdl_err_t *reterr)
{
    struct stat sb;
    void *base;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return mdl_err_set(reterr, errno == ENOENT ? -ENOENT : -errno, "%s: %s", path, strerror(errno));
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return mdl_err_set(reterr, -EBADMSG, "%s: not a regular file", path);
    }
    if (max_bytes && (uint64_t)sb.st_size > max_bytes) {
        close(fd);
        return mdl_err_set(reterr, -E2BIG, "%s: %lld bytes, over the %zu-byte limit", path,
                           (long long)sb.st_size, max_bytes);
    }
    if ((uint64_t)sb.st_size < min_bytes || sb.st_size == 0) {
        close(fd);
        return mdl_err_set(reterr, -EBADMSG, "%s: file is %lld bytes, too short for %s", path,
                           (long long)sb.st_size, min_what);
    }
    base = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    close(fd);
    if (base == MAP_FAILED)
        return mdl_err_set(reterr, -errno, "%s: mmap: %s", path, strerror(errno));
    *ret_base = base;
    *ret_len = (size_t)sb.st_size;
    return 0;
}
