/* SHA-256 (FIPS 180-4), used to fingerprint model artifacts in their metadata. */
#ifndef MDL_SHA256_H
#define MDL_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mdl_sha256 {
    uint32_t h[8];
    uint64_t n_bytes;
    uint8_t block[64];
    size_t n_block;
} mdl_sha256_t;

void mdl_sha256_init(mdl_sha256_t *s);
void mdl_sha256_update(mdl_sha256_t *s, const void *data, size_t len);
/* Writes 64 lowercase hex digits and a NUL into hex. */
void mdl_sha256_final_hex(mdl_sha256_t *s, char hex[65]);

/* The x86 SHA instructions are used where the CPU has them; false forces the portable
 * code (tests compare the two). Not thread-safe against running hashes: tests only. */
void mdl_sha256_set_hw(bool allowed);

#endif
