/* tk_metrics: Prometheus text rendering of counters, gauges, histograms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tk_metrics.h"

static void assert_contains(const char *text, const char *needle) {
    if (strstr(text, needle) == NULL) fail_msg("missing \"%s\" in:\n%s", needle, text);
}

static double forty_two(void *ctx) {
    (void)ctx;
    return 42;
}

static char *custom_family(void *ctx) {
    (void)ctx;
    return strdup("# HELP custom_lag Lag\n# TYPE custom_lag gauge\ncustom_lag{partition=\"0\"} 7\n");
}

static void test_counters_by_labels(void **state) {
    (void)state;
    tk_series *ok = tk_metrics_counter("t_requests_total", "Requests", "status=\"200\"");
    tk_series *bad = tk_metrics_counter("t_requests_total", "Requests", "status=\"400\"");
    assert_ptr_equal(ok, tk_metrics_counter("t_requests_total", "Requests", "status=\"200\""));
    tk_counter_add(ok, 3);
    tk_counter_add(bad, 1);
    tk_counter_add(NULL, 1); /* ignored */
    assert_int_equal(tk_counter_value(ok), 3);
    size_t len = 0;
    char *text = tk_metrics_render(&len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    assert_contains(text, "# HELP t_requests_total Requests\n# TYPE t_requests_total counter\n");
    assert_contains(text, "t_requests_total{status=\"200\"} 3\n");
    assert_contains(text, "t_requests_total{status=\"400\"} 1\n");
    /* One HELP/TYPE per family. */
    assert_null(strstr(strstr(text, "# TYPE t_requests_total") + 1, "# TYPE t_requests_total"));
    free(text);
}

static void test_histogram_buckets_are_cumulative(void **state) {
    (void)state;
    tk_series *latency = tk_metrics_histogram("t_latency_seconds", "Latency", "");
    tk_histogram_observe(latency, 0.0004);
    tk_histogram_observe(latency, 0.003);
    tk_histogram_observe(latency, 20.0);
    char *text = tk_metrics_render(&(size_t){0});
    assert_contains(text, "# TYPE t_latency_seconds histogram\n");
    assert_contains(text, "t_latency_seconds_bucket{le=\"0.0005\"} 1\n");
    assert_contains(text, "t_latency_seconds_bucket{le=\"0.005\"} 2\n");
    assert_contains(text, "t_latency_seconds_bucket{le=\"10\"} 2\n");
    assert_contains(text, "t_latency_seconds_bucket{le=\"+Inf\"} 3\n");
    assert_contains(text, "t_latency_seconds_count 3\n");
    assert_contains(text, "t_latency_seconds_sum 20.003");
    free(text);
}

static void test_gauges_and_collectors(void **state) {
    (void)state;
    tk_metrics_gauge_fn("t_waiting", "Waiting", "", forty_two, NULL);
    assert_int_equal(tk_metrics_add_collector(custom_family, NULL), 0);
    char *text = tk_metrics_render(&(size_t){0});
    assert_contains(text, "# TYPE t_waiting gauge\nt_waiting 42\n");
    assert_contains(text, "custom_lag{partition=\"0\"} 7\n");
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters_by_labels),
        cmocka_unit_test(test_histogram_buckets_are_cumulative),
        cmocka_unit_test(test_gauges_and_collectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
