/* SHA-256: FIPS 180-4 test vectors, and the SHA-instruction path against the portable one
 * at every length and split around the 64-byte block edges. */
#include <stdlib.h>
#include <string.h>

#include "models/sha256.h"
#include "check.h"

static void hash(const void *data, size_t len, size_t split, char hex[65])
{
    mdl_sha256_t s;

    mdl_sha256_init(&s);
    mdl_sha256_update(&s, data, split);
    mdl_sha256_update(&s, (const char *)data + split, len - split);
    mdl_sha256_final_hex(&s, hex);
}

static void test_vectors(void)
{
    static const char two_blocks[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    char hex[65], *million = malloc(1000000);
    mdl_sha256_t s;

    for (int hw = 1; hw >= 0; hw--) {
        mdl_sha256_set_hw(hw);
        hash("", 0, 0, hex);
        CHECK_EQ_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        hash("abc", 3, 1, hex);
        CHECK_EQ_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        hash(two_blocks, strlen(two_blocks), 0, hex);
        CHECK_EQ_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
        memset(million, 'a', 1000000);
        mdl_sha256_init(&s);
        for (size_t i = 0; i < 1000000; i += 999) /* odd pieces: buffered and direct blocks */
            mdl_sha256_update(&s, million + i, i + 999 <= 1000000 ? 999 : 1000000 - i);
        mdl_sha256_final_hex(&s, hex);
        CHECK_EQ_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    }
    mdl_sha256_set_hw(1);
    free(million);
}

static void test_hw_matches_portable(void)
{
    unsigned char data[300];
    char hw[65], portable[65];

    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 131 + 7);
    for (size_t len = 0; len <= sizeof data; len++) {
        size_t split = len % 67;
        mdl_sha256_set_hw(1);
        hash(data, len, split, hw);
        mdl_sha256_set_hw(0);
        hash(data, len, split, portable);
        CHECK_EQ_STR(hw, portable);
    }
    mdl_sha256_set_hw(1);
}

int main(void)
{
    RUN(test_vectors);
    RUN(test_hw_matches_portable);
    return check_summary();
}
