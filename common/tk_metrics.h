/* tk_metrics — a process-wide registry of Prometheus counters, gauges and
 * histograms, rendered in the text exposition format. Series are created on
 * first use (under a lock) and updated with atomics afterwards. */
#ifndef TK_METRICS_H
#define TK_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct tk_series tk_series;

/** Computes a gauge at scrape time. */
typedef double (*tk_gauge_fn)(void *ctx);

/**
 * @brief Finds or creates the counter `name{labels}` (labels: `a="x",b="y"`, or "").
 * @returns the series (lives until exit), or NULL when out of memory (updates
 * to NULL are ignored).
 */
tk_series *tk_metrics_counter(const char *name, const char *help, const char *labels);

/** @brief Finds or creates a histogram of seconds with fixed buckets (0.5 ms .. 10 s). */
tk_series *tk_metrics_histogram(const char *name, const char *help, const char *labels);

/** @brief Registers a gauge computed by fn(ctx) at each scrape. */
tk_series *tk_metrics_gauge_fn(const char *name, const char *help, const char *labels, tk_gauge_fn fn, void *ctx);

/** @brief Adds n to a counter. Accepts NULL. */
void tk_counter_add(tk_series *counter, uint64_t n);

/** @brief Records one observation in seconds. Accepts NULL. */
void tk_histogram_observe(tk_series *histogram, double seconds);

/** @returns the current value of a counter (tests and logs). */
uint64_t tk_counter_value(const tk_series *counter);

/** Writes whole families (HELP, TYPE, samples) whose series change at run
 * time, such as per-partition lag. @returns a malloc'd text, or NULL. */
typedef char *(*tk_collector_fn)(void *ctx);

/** @brief Adds a collector called at each render. @returns 0, or -1 when out of memory. */
int tk_metrics_add_collector(tk_collector_fn fn, void *ctx);

/**
 * @brief Renders every series in Prometheus text format 0.0.4.
 * @returns a malloc'd string with *len, or NULL when out of memory.
 */
char *tk_metrics_render(size_t *len);

#endif
