/* libFuzzer target: the sampling and stopping fields every generation API shares
 * (handlers/gen.c gen_options_parse, then mdl_sampling_validate), from arbitrary JSON.
 * A refusal must set a 400 answer; an acceptance must leave stop strings and stop ids
 * within their limits, and sampling values that validate or are refused with a message. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/gen.h"
#include "models/transformer/sampler.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const allowed[] = {"model", "prompt", "messages", "n", "echo", "user", NULL};
    cJSON *body = cJSON_ParseWithLength((const char *)data, size);
    mdl_request_t req;
    gen_options_t opt;
    mdl_err_t err = {0};

    if (!cJSON_IsObject(body)) {
        cJSON_Delete(body);
        return 0;
    }
    memset(&req, 0, sizeof req);
    req.path = "/v1/completions";
    memset(&opt, 0, sizeof opt);
    mdl_sampling_defaults(&opt.params.sampling);
    if (gen_options_parse(&req, body, allowed, &opt) < 0) {
        if (req.status != 400 || !req.resp)
            abort();
    } else {
        if (req.resp || opt.n_stops > MDL_STOP_MAX || opt.params.n_stop_ids > MDL_GEN_MAX_STOP_IDS)
            abort();
        for (size_t i = 0; i < opt.n_stops; i++) {
            size_t n = strlen(opt.stops[i]);
            if (n == 0 || n > MDL_STOP_MAX_BYTES)
                abort();
        }
        if (mdl_sampling_validate(&opt.params.sampling, &err) < 0 && !err.msg[0])
            abort();
    }
    free(req.resp);
    gen_options_done(&opt);
    cJSON_Delete(body);
    return 0;
}
