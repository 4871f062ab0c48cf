/* Reading artifacts whole into memory, bounded, with the SHA-256 computed on the way. */
#ifndef MDL_FILE_H
#define MDL_FILE_H

#include <stddef.h>

#include "err.h"

/* Reads `path` into a malloc'd, NUL-terminated buffer the caller frees. Refuses files over
 * max_bytes (-E2BIG). sha256_hex may be NULL. Returns 0 or a negative code with reterr. */
int mdl_file_read(const char *path, size_t max_bytes, char **ret_data, size_t *ret_len,
                  char sha256_hex[65], mdl_err_t *reterr);

#endif
