/* The sampling and stopping fields the generation APIs share (handlers/gen.c): limits hold
 * across duplicate keys, refusals are 400 answers naming the field. */
#include <cjson/cJSON.h>
#include <stdlib.h>

#include "handlers/gen.h"
#include "check.h"

/* Parses text as a body; returns gen_options_parse's result, with the answer's status. */
static int parse(const char *text, gen_options_t *opt, int *ret_status, char **ret_resp)
{
    cJSON *body = cJSON_Parse(text);
    static const char *const allowed[] = {"prompt", NULL};
    mdl_request_t req;
    int r;

    memset(&req, 0, sizeof req);
    req.path = "/v1/completions";
    memset(opt, 0, sizeof *opt);
    r = gen_options_parse(&req, body, allowed, opt);
    *ret_status = req.status;
    *ret_resp = req.resp;
    cJSON_Delete(body);
    return r;
}

/* fuzz_gen_options found two "stop_token_ids" keys writing past the 16 slots. */
static void test_stop_ids_across_duplicate_keys(void)
{
    gen_options_t opt;
    int status;
    char *resp;

    CHECK_EQ_INT(parse("{\"stop_token_ids\": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16], "
                       "\"stop_token_ids\": [17]}", &opt, &status, &resp), -1);
    CHECK_EQ_INT(status, 400);
    CHECK(resp && strstr(resp, "stop_token_ids") && strstr(resp, "at most 16"));
    CHECK_EQ_INT(opt.params.n_stop_ids, 16);
    free(resp);
    gen_options_done(&opt);

    CHECK_EQ_INT(parse("{\"stop_token_ids\": [1,2,3,4,5,6,7,8], \"stop_token_ids\": [9,10,11,12,13,14,15,16]}",
                       &opt, &status, &resp), 0);
    CHECK_EQ_INT(opt.params.n_stop_ids, 16);
    CHECK_EQ_INT(opt.params.stop_ids[15], 16);
    CHECK(resp == NULL);
    gen_options_done(&opt);
}

static void test_stop_strings_across_duplicate_keys(void)
{
    gen_options_t opt;
    int status;
    char *resp;

    CHECK_EQ_INT(parse("{\"stop\": [\"a\",\"b\",\"c\",\"d\",\"e\"], \"stop\": [\"f\",\"g\",\"h\",\"i\"]}", &opt,
                       &status, &resp), -1);
    CHECK_EQ_INT(status, 400);
    CHECK(resp && strstr(resp, "at most 8 stop strings"));
    CHECK_EQ_INT(opt.n_stops, 8);
    free(resp);
    gen_options_done(&opt);
}

int main(void)
{
    RUN(test_stop_ids_across_duplicate_keys);
    RUN(test_stop_strings_across_duplicate_keys);
    return check_summary();
}
