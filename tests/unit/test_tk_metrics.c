/* tk_metrics: Prometheus text rendering of counters, gauges, histograms. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* A collector that asks a broker (the worker's lag) takes its time. */
static char *slow_family(void *ctx) {
    (void)ctx;
    struct timespec nap = {0, 600 * 1000000L};
    nanosleep(&nap, NULL);
    return strdup("# TYPE slow_lag gauge\nslow_lag 1\n");
}

static void *render_in_background(void *arg) {
    (void)arg;
    size_t len;
    return tk_metrics_render(&len);
}

static double seconds_since(const struct timespec *start) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* A scrape never holds the registry lock while a collector runs: a message
 * that registers or looks up a series goes on meanwhile. */
static void test_a_slow_collector_does_not_block_the_registry(void **state) {
    (void)state;
    assert_int_equal(tk_metrics_add_collector(slow_family, NULL), 0);
    pthread_t scrape;
    assert_int_equal(pthread_create(&scrape, NULL, render_in_background, NULL), 0);
    struct timespec nap = {0, 100 * 1000000L}, start;
    nanosleep(&nap, NULL); /* the scrape is inside the slow collector now */
    clock_gettime(CLOCK_MONOTONIC, &start);
    tk_counter_add(tk_metrics_counter("t_during_scrape_total", "Counted while a scrape runs", ""), 1);
    assert_true(seconds_since(&start) < 0.3);
    char *text = NULL;
    pthread_join(scrape, (void **)&text);
    assert_non_null(text);
    assert_contains(text, "slow_lag 1\n");
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters_by_labels),
        cmocka_unit_test(test_histogram_buckets_are_cumulative),
        cmocka_unit_test(test_gauges_and_collectors),
        cmocka_unit_test(test_a_slow_collector_does_not_block_the_registry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
