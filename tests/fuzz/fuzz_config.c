/* libFuzzer target: the config file (server/config.c) from arbitrary bytes. Whatever is
 * accepted must leave every setting within its documented bounds and every string
 * NUL-terminated inside its buffer; a refusal must name the file. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mdl_config_t c;
    mdl_err_t err = {0};
    int rc;

    mdl_config_defaults(&c);
    rc = mdl_config_load_text(&c, "fuzz.json", (const char *)data, size, &err);
    if (rc < 0) {
        if (err.code != rc || strncmp(err.msg, "fuzz.json: ", 11) != 0)
            abort();
        return 0;
    }
    if (!memchr(c.listen_host, 0, sizeof c.listen_host) || !memchr(c.model_repository, 0, sizeof c.model_repository) ||
        !memchr(c.admin_token_file, 0, sizeof c.admin_token_file) || c.listen_port > 65535 ||
        c.workers < 1 || c.workers > 256 || c.max_json_depth < 2 || c.max_header_bytes < 4096 ||
        c.max_connections < 1 || c.connection_timeout_s < 1)
        abort();
    return 0;
}
