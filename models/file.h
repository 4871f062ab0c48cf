/* Reading artifacts whole into memory, bounded, with the SHA-256 computed on the way; or
 * mapping them read-only (weights used in place). */
#ifndef MDL_FILE_H
#define MDL_FILE_H

#include <stddef.h>

#include "err.h"

/* Reads `path` into a malloc'd, NUL-terminated buffer the caller frees. Refuses files over
 * max_bytes (-E2BIG). sha256_hex may be NULL. Returns 0 or a negative code with reterr. */
int mdl_file_read(const char *path, size_t max_bytes, char **ret_data, size_t *ret_len,
                  char sha256_hex[65], mdl_err_t *reterr);

/* Maps the regular file `path` read-only (pages populated now, so first use does not fault
 * page by page). Refuses files over max_bytes (-E2BIG; 0 = no limit) and under min_bytes
 * (-EBADMSG, "too short for <min_what>"). The caller munmaps *ret_base, *ret_len bytes. */
int mdl_file_map(const char *path, size_t min_bytes, const char *min_what, size_t max_bytes,
                 void **ret_base, size_t *ret_len, mdl_err_t *reterr);

#endif
