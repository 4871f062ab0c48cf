/* Metrics: counters by code, cumulative histogram buckets, series only for what was seen. */
#include <stdlib.h>

#include "server/metrics.h"
#include "check.h"

static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);

    for (const char *p = text; (p = strstr(p, line)); p += n)
        if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
            return 1;
    return 0;
}

#define CHECK_LINE(text, line)                                                                     \
    do {                                                                                           \
        if (!has_line(text, line))                                                                 \
            CHECK_FAIL_("missing line: %s", line);                                                 \
    } while (0)

static void test_request_counters(void)
{
    mdl_metrics_t *m = mdl_metrics_new();
    mdl_buf_t out = {0};

    mdl_metrics_request(m, "predict", "iris", 200, 0.0002);
    mdl_metrics_request(m, "predict", "iris", 200, 0.003);
    mdl_metrics_request(m, "predict", "iris", 400, 0.00005);
    mdl_metrics_request(m, "healthz", "", 200, 0.00001);
    mdl_metrics_render(m, &out);
    CHECK_LINE(out.data, "modeld_requests_total{endpoint=\"predict\",model=\"iris\",code=\"200\"} 2");
    CHECK_LINE(out.data, "modeld_requests_total{endpoint=\"predict\",model=\"iris\",code=\"400\"} 1");
    CHECK_LINE(out.data, "modeld_requests_total{endpoint=\"healthz\",model=\"\",code=\"200\"} 1");
    /* Buckets are cumulative: 0.00005 <= 0.0001; 0.0002 <= 0.00025; 0.003 <= 0.005. */
    CHECK_LINE(out.data, "modeld_request_duration_seconds_bucket{endpoint=\"predict\",model=\"iris\",le=\"0.0001\"} 1");
    CHECK_LINE(out.data, "modeld_request_duration_seconds_bucket{endpoint=\"predict\",model=\"iris\",le=\"0.00025\"} 2");
    CHECK_LINE(out.data, "modeld_request_duration_seconds_bucket{endpoint=\"predict\",model=\"iris\",le=\"0.0025\"} 2");
    CHECK_LINE(out.data, "modeld_request_duration_seconds_bucket{endpoint=\"predict\",model=\"iris\",le=\"0.005\"} 3");
    CHECK_LINE(out.data, "modeld_request_duration_seconds_bucket{endpoint=\"predict\",model=\"iris\",le=\"+Inf\"} 3");
    CHECK_LINE(out.data, "modeld_request_duration_seconds_count{endpoint=\"predict\",model=\"iris\"} 3");
    CHECK(strstr(out.data, "code=\"500\"") == NULL);
    mdl_buf_done(&out);
    mdl_metrics_free(m);
}

static void test_inference_and_gauges(void)
{
    mdl_metrics_t *m = mdl_metrics_new();
    mdl_buf_t out = {0};

    mdl_metrics_inference(m, "iris", 0.001, 0.0, 3);
    mdl_metrics_inference(m, "iris", 0.001, 0.002, 300);
    mdl_metrics_inflight(m, 2);
    mdl_metrics_inflight(m, -1);
    mdl_metrics_render(m, &out);
    CHECK_LINE(out.data, "modeld_batch_size_bucket{model=\"iris\",le=\"2\"} 0");
    CHECK_LINE(out.data, "modeld_batch_size_bucket{model=\"iris\",le=\"4\"} 1");
    CHECK_LINE(out.data, "modeld_batch_size_bucket{model=\"iris\",le=\"512\"} 2");
    CHECK_LINE(out.data, "modeld_batch_size_sum{model=\"iris\"} 303");
    CHECK_LINE(out.data, "modeld_inference_duration_seconds_count{model=\"iris\"} 2");
    CHECK_LINE(out.data, "modeld_queue_duration_seconds_count{model=\"iris\"} 2");
    CHECK_LINE(out.data, "modeld_inflight_requests 1");
    CHECK(strstr(out.data, "\nprocess_resident_memory_bytes ") != NULL);
    CHECK(strstr(out.data, "\nprocess_open_fds ") != NULL);
    CHECK(strstr(out.data, "# TYPE process_cpu_seconds_total counter") != NULL);
    mdl_buf_done(&out);
    mdl_metrics_free(m);
}

static void test_label_escaping(void)
{
    mdl_metrics_t *m = mdl_metrics_new();
    mdl_buf_t out = {0};

    mdl_metrics_request(m, "predict", "a\"b\\c\nd", 200, 0.1);
    mdl_metrics_render(m, &out);
    CHECK(strstr(out.data, "model=\"a\\\"b\\\\c\\nd\"") != NULL);
    mdl_buf_done(&out);
    mdl_metrics_free(m);
}

static void test_infer_stats(void)
{
    mdl_metrics_t *m = mdl_metrics_new();
    mdl_infer_sample_t ok = {.ok = 1, .total_s = 0.004, .parse_s = 0.001, .queue_s = 0.0005,
                             .infer_s = 0.002, .rows = 10};
    mdl_infer_sample_t bad = {.ok = 0, .total_s = 0.0001};
    const mdl_infer_stats_t *st;

    CHECK(mdl_metrics_get_infer_stats(m, "a", 1) == NULL);
    mdl_metrics_infer_stats(m, "a", 1, &ok);
    mdl_metrics_infer_stats(m, "a", 1, &ok);
    mdl_metrics_infer_stats(m, "a", 1, &bad);
    mdl_metrics_infer_stats(m, "a", 2, &bad);
    st = mdl_metrics_get_infer_stats(m, "a", 1);
    CHECK(st != NULL);
    CHECK_EQ_INT(st->success_count, 2);
    CHECK_EQ_INT(st->success_ns, 8000000);
    CHECK_EQ_INT(st->fail_count, 1);
    CHECK_EQ_INT(st->fail_ns, 100000);
    CHECK_EQ_INT(st->batches, 2);
    CHECK_EQ_INT(st->rows, 20);
    CHECK_EQ_INT(st->queue_ns, 1000000);
    CHECK_EQ_INT(st->input_ns, 2000000);
    CHECK_EQ_INT(st->infer_ns, 4000000);
    CHECK_EQ_INT(st->output_ns, 1000000);
    CHECK(st->last_unix_s > 1e9);
    st = mdl_metrics_get_infer_stats(m, "a", 2);
    CHECK(st && st->fail_count == 1 && st->batches == 0);
    CHECK(mdl_metrics_get_infer_stats(m, "b", 1) == NULL);
    mdl_metrics_free(m);
}

int main(void)
{
    RUN(test_request_counters);
    RUN(test_inference_and_gauges);
    RUN(test_label_escaping);
    RUN(test_infer_stats);
    return check_summary();
}
