/* Route matching: captures, 404 vs 405, bounds on names and versions. */
#include "server/names.h"
#include "server/router.h"
#include "check.h"

static void test_exact_routes(void)
{
    mdl_route_match_t m;

    CHECK_EQ_INT(mdl_router_match("GET", "/healthz", &m), 0);
    CHECK_EQ_STR(m.route->name, "healthz");
    CHECK_EQ_INT(mdl_router_match("GET", "/metrics", &m), 0);
    CHECK_EQ_STR(m.route->name, "metrics");
    CHECK_EQ_INT(mdl_router_match("GET", "/v1/models", &m), 0);
    CHECK_EQ_STR(m.route->name, "models");
    CHECK_EQ_INT(mdl_router_match("GET", "/healthz/", &m), -ENOENT);
    CHECK_EQ_INT(mdl_router_match("GET", "/", &m), -ENOENT);
}

static void test_model_captures(void)
{
    mdl_route_match_t m;

    CHECK_EQ_INT(mdl_router_match("POST", "/v1/models/iris-2.v1_x:predict", &m), 0);
    CHECK_EQ_STR(m.route->name, "predict");
    CHECK_EQ_STR(m.model, "iris-2.v1_x");
    CHECK_EQ_INT(m.version, -1);
    CHECK_EQ_INT(mdl_router_match("POST", "/v1/models/iris/versions/42:predict", &m), 0);
    CHECK_EQ_STR(m.model, "iris");
    CHECK_EQ_INT(m.version, 42);
    CHECK_EQ_INT(mdl_router_match("GET", "/v1/models/iris/versions/7", &m), 0);
    CHECK_EQ_STR(m.route->name, "model");
    CHECK_EQ_INT(m.version, 7);
}

static void test_bad_captures(void)
{
    mdl_route_match_t m;
    char long_name[200];

    CHECK_EQ_INT(mdl_router_match("POST", "/v1/models/:predict", &m), -ENOENT);
    CHECK_EQ_INT(mdl_router_match("POST", "/v1/models/a b:predict", &m), -ENOENT);
    CHECK_EQ_INT(mdl_router_match("POST", "/v1/models/iris/versions/x:predict", &m), -ENOENT);
    CHECK_EQ_INT(mdl_router_match("POST", "/v1/models/iris/versions/1234567890123456789:predict", &m),
                 -ENOENT);
    CHECK_EQ_INT(mdl_router_match("POST", "/v1/models/iris:explode", &m), -ENOENT);
    memset(long_name, 'a', sizeof long_name);
    memcpy(long_name, "/v1/models/", 11);
    strcpy(long_name + 80, ":predict");
    CHECK_EQ_INT(mdl_router_match("POST", long_name, &m), -ENOENT);
}

static void test_name_rule(void)
{
    char name[MDL_NAME_MAX + 2];

    CHECK(mdl_name_valid("iris"));
    CHECK(mdl_name_valid("Breast_cancer-2.v1"));
    CHECK(mdl_name_valid("a.."));
    CHECK(!mdl_name_valid(""));
    CHECK(!mdl_name_valid("."));
    CHECK(!mdl_name_valid(".hidden"));
    CHECK(!mdl_name_valid("a b"));
    CHECK(!mdl_name_valid("a/b"));
    CHECK(!mdl_name_valid("caf\xc3\xa9"));
    memset(name, 'x', MDL_NAME_MAX);
    name[MDL_NAME_MAX] = '\0';
    CHECK(mdl_name_valid(name));
    name[MDL_NAME_MAX] = 'x';
    name[MDL_NAME_MAX + 1] = '\0';
    CHECK(!mdl_name_valid(name));
    CHECK_EQ_INT(mdl_version_parse("17"), 17);
    CHECK_EQ_INT(mdl_version_parse("x1"), -1);
}

static void test_wrong_method(void)
{
    mdl_route_match_t m;

    CHECK_EQ_INT(mdl_router_match("GET", "/v1/models/iris:predict", &m), -EPERM);
    CHECK_EQ_STR(m.allow, "POST");
    CHECK_EQ_INT(mdl_router_match("DELETE", "/healthz", &m), -EPERM);
    CHECK_EQ_STR(m.allow, "GET");
}

static void test_v2_routes(void)
{
    mdl_route_match_t m;

    CHECK_EQ_INT(mdl_router_match("GET", "/v2", &m), 0);
    CHECK_EQ_STR(m.route->name, "v2_server");
    CHECK_EQ_INT(mdl_router_match("POST", "/v2/models/gb/versions/3/infer", &m), 0);
    CHECK_EQ_STR(m.route->name, "infer");
    CHECK_EQ_STR(m.model, "gb");
    CHECK_EQ_INT(m.version, 3);
    CHECK(!(m.route->flags & MDL_ROUTE_JSON)); /* binary tensor data is not JSON */
    CHECK_EQ_INT(mdl_router_match("GET", "/v2/models/stats/stats", &m), 0);
    CHECK_EQ_STR(m.route->name, "v2_stats");
    CHECK_EQ_STR(m.model, "stats");
    CHECK_EQ_INT(mdl_router_match("GET", "/v2/models/gb/ready", &m), 0);
    CHECK_EQ_STR(m.route->name, "v2_model");
    CHECK_EQ_INT(mdl_router_match("GET", "/v2/models/gb/infer", &m), -EPERM);
    CHECK_EQ_STR(m.allow, "POST");
    CHECK_EQ_INT(mdl_router_match("GET", "/v2/models", &m), -ENOENT);
}

static void test_table_is_sane(void)
{
    /* Every route names a handler and an endpoint; body limits only on POST routes. */
    for (size_t i = 0; i < mdl_router_count(); i++) {
        const mdl_route_t *r = mdl_router_at(i);
        CHECK(r->handler != NULL);
        CHECK(r->name && r->name[0]);
        CHECK(strcmp(r->method, "POST") == 0 || r->max_body == 0);
    }
    CHECK(mdl_router_at(mdl_router_count()) == NULL);
}

int main(void)
{
    RUN(test_exact_routes);
    RUN(test_model_captures);
    RUN(test_bad_captures);
    RUN(test_name_rule);
    RUN(test_wrong_method);
    RUN(test_v2_routes);
    RUN(test_table_is_sane);
    return check_summary();
}
