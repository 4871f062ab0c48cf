/* Config: defaults, file keys, bounds, unknown keys named, flag-style overrides. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "server/config.h"
#include "check.h"

static const char *write_tmp(const char *text)
{
    static char path[64];
    FILE *f;

    snprintf(path, sizeof path, "/tmp/modeld-test-config-%ld.json", (long)getpid());
    f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_defaults(void)
{
    mdl_config_t c;

    mdl_config_defaults(&c);
    CHECK_EQ_STR(c.listen_host, "127.0.0.1");
    CHECK_EQ_INT(c.listen_port, 8080);
    CHECK(c.workers >= 1);
    CHECK(c.max_body_bytes > 0);
    /* the hostile-client limits are on by default (docs/api.md, "Limits") */
    CHECK_EQ_INT(c.max_connections_per_ip, 1024);
    CHECK_EQ_INT(c.header_timeout_s, 10);
    CHECK_EQ_INT(c.body_timeout_s, 30);
    CHECK_EQ_INT(c.body_min_rate, 16384);
    CHECK_EQ_INT(c.request_timeout_ms, 30000);
    CHECK(!c.allow_symlinks_outside);
}

/* The in-memory form the fuzz target uses: the name stands for the file in messages, the
 * text need not be NUL-terminated, and limits keep their bounds. */
static void test_text(void)
{
    const char text[] = "{\"header_timeout_s\": 2, \"allow_symlinks_outside\": true, "
                        "\"max_connections_per_ip\": 0}GARBAGE";
    mdl_config_t c;
    mdl_err_t err = {0};

    mdl_config_defaults(&c);
    CHECK_EQ_INT(mdl_config_load_text(&c, "inline", text, strlen(text) - 7, &err), 0);
    CHECK_EQ_INT(c.header_timeout_s, 2);
    CHECK(c.allow_symlinks_outside);
    CHECK_EQ_INT(c.max_connections_per_ip, 0);
    CHECK_EQ_INT(mdl_config_load_text(&c, "inline", "{\"header_timeout_s\": 0}", 23, &err), -EINVAL);
    CHECK(strstr(err.msg, "inline: header_timeout_s: must be an integer in [1, 3600]") != NULL);
    CHECK_EQ_INT(mdl_config_load_text(&c, "inline", text, strlen(text), &err), -EINVAL);
    CHECK(strstr(err.msg, "inline: invalid JSON") != NULL);
}

static void test_file_values(void)
{
    mdl_config_t c;
    mdl_err_t err = {0};

    mdl_config_defaults(&c);
    CHECK_EQ_INT(mdl_config_load_file(&c, write_tmp("{\"listen\": \"[::1]:9000\", \"workers\": 3, "
                                                    "\"log_format\": \"json\", \"max_body_bytes\": 4096}"),
                                      &err),
                 0);
    CHECK_EQ_STR(c.listen_host, "::1");
    CHECK_EQ_INT(c.listen_port, 9000);
    CHECK_EQ_INT(c.workers, 3);
    CHECK_EQ_INT(c.log_format, MDL_LOG_JSON);
    CHECK_EQ_INT(c.max_body_bytes, 4096);
}

static void test_file_errors(void)
{
    static const struct {
        const char *text, *needle;
    } cases[] = {
        {"{\"wrokers\": 2}", "unknown key 'wrokers'"},
        {"{\"workers\": 0}", "workers: must be an integer"},
        {"{\"workers\": 2.5}", "workers: must be an integer"},
        {"{\"workers\": \"2\"}", "workers: expected a number"},
        {"{\"listen\": \"nohost\"}", "listen: expected HOST:PORT"},
        {"{\"listen\": \"1.2.3.4:99999\"}", "listen: bad port"},
        {"{\"log_level\": \"loud\"}", "log_level"},
        {"[1, 2]", "expected a JSON object"},
        {"{\"workers\": ", "invalid JSON"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mdl_config_t c;
        mdl_err_t err = {0};
        mdl_config_defaults(&c);
        CHECK_EQ_INT(mdl_config_load_file(&c, write_tmp(cases[i].text), &err), -EINVAL);
        if (!strstr(err.msg, cases[i].needle))
            CHECK_EQ_STR(err.msg, cases[i].needle);
    }
    unlink(write_tmp(""));
}

static void test_overrides(void)
{
    mdl_config_t c;
    mdl_err_t err = {0};

    mdl_config_defaults(&c);
    CHECK_EQ_INT(mdl_config_set(&c, "listen", "127.0.0.1:0", &err), 0);
    CHECK_EQ_INT(c.listen_port, 0);
    CHECK_EQ_INT(mdl_config_set(&c, "workers", "8", &err), 0);
    CHECK_EQ_INT(c.workers, 8);
    CHECK_EQ_INT(mdl_config_set(&c, "workers", "eight", &err), -EINVAL);
    CHECK(strstr(err.msg, "workers") != NULL);
    CHECK_EQ_INT(mdl_config_set(&c, "colour", "blue", &err), -EINVAL);
    CHECK(strstr(err.msg, "colour") != NULL);
}

int main(void)
{
    RUN(test_defaults);
    RUN(test_text);
    RUN(test_file_values);
    RUN(test_file_errors);
    RUN(test_overrides);
    return check_summary();
}
