/* tk_metrics — a process-wide registry of Prometheus counters, gauges and
 * histograms, rendered in the text exposition format. Series are created on
 * first use (under a lock) and updated with atomics afterwards. */
#include "tk_metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM } series_kind;

static const double BUCKETS[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define BUCKET_COUNT (sizeof BUCKETS / sizeof BUCKETS[0])

struct tk_series {
    series_kind kind;
    char *name;
    char *help;
    char *labels;
    atomic_uint_fast64_t count;  /* counter value, or histogram observations */
    atomic_uint_fast64_t sum_ns; /* histogram sum, in nanoseconds */
    atomic_uint_fast64_t buckets[BUCKET_COUNT];
    tk_gauge_fn gauge;
    void *gauge_ctx;
    tk_series *next;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static tk_series *registry_head, *registry_tail;

#define MAX_COLLECTORS 8
static struct {
    tk_collector_fn fn;
    void *ctx;
} collectors[MAX_COLLECTORS];
static size_t collector_count;

int tk_metrics_add_collector(tk_collector_fn fn, void *ctx) {
    pthread_mutex_lock(&registry_lock);
    int rc = -1;
    if (collector_count < MAX_COLLECTORS) {
        collectors[collector_count].fn = fn;
        collectors[collector_count].ctx = ctx;
        collector_count++;
        rc = 0;
    }
    pthread_mutex_unlock(&registry_lock);
    return rc;
}

static tk_series *find_or_add(series_kind kind, const char *name, const char *help, const char *labels) {
    pthread_mutex_lock(&registry_lock);
    tk_series *series = registry_head;
    while (series != NULL && !(strcmp(series->name, name) == 0 && strcmp(series->labels, labels) == 0))
        series = series->next;
    if (series == NULL) {
        series = calloc(1, sizeof *series);
        if (series != NULL) {
            series->kind = kind;
            series->name = strdup(name);
            series->help = strdup(help);
            series->labels = strdup(labels);
            if (series->name == NULL || series->help == NULL || series->labels == NULL) {
                free(series->name);
                free(series->help);
                free(series->labels);
                free(series);
                series = NULL;
            } else {
                /* Appended in order, so one family's series stay together
                 * when created together; render groups by name anyway. */
                if (registry_tail != NULL) registry_tail->next = series;
                else registry_head = series;
                registry_tail = series;
            }
        }
    }
    pthread_mutex_unlock(&registry_lock);
    return series;
}

tk_series *tk_metrics_counter(const char *name, const char *help, const char *labels) {
    return find_or_add(KIND_COUNTER, name, help, labels);
}

tk_series *tk_metrics_histogram(const char *name, const char *help, const char *labels) {
    return find_or_add(KIND_HISTOGRAM, name, help, labels);
}

tk_series *tk_metrics_gauge_fn(const char *name, const char *help, const char *labels, tk_gauge_fn fn, void *ctx) {
    tk_series *series = find_or_add(KIND_GAUGE, name, help, labels);
    if (series != NULL) {
        pthread_mutex_lock(&registry_lock);
        series->gauge = fn;
        series->gauge_ctx = ctx;
        pthread_mutex_unlock(&registry_lock);
    }
    return series;
}

void tk_counter_add(tk_series *counter, uint64_t n) {
    if (counter != NULL) atomic_fetch_add_explicit(&counter->count, n, memory_order_relaxed);
}

uint64_t tk_counter_value(const tk_series *counter) {
    return counter != NULL ? atomic_load(&((tk_series *)counter)->count) : 0;
}

void tk_histogram_observe(tk_series *histogram, double seconds) {
    if (histogram == NULL) return;
    if (seconds < 0) seconds = 0;
    for (size_t i = 0; i < BUCKET_COUNT; i++) {
        if (seconds <= BUCKETS[i]) {
            atomic_fetch_add_explicit(&histogram->buckets[i], 1, memory_order_relaxed);
            break;
        }
    }
    atomic_fetch_add_explicit(&histogram->sum_ns, (uint_fast64_t)(seconds * 1e9), memory_order_relaxed);
    atomic_fetch_add_explicit(&histogram->count, 1, memory_order_relaxed);
}

/* A growing string for the exposition text. */
typedef struct {
    char *data;
    size_t len, cap;
    bool failed;
} text_buffer;

static void appendf(text_buffer *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void appendf(text_buffer *out, const char *fmt, ...) {
    if (out->failed) return;
    for (;;) {
        va_list args;
        va_start(args, fmt);
        int n = vsnprintf(out->data + out->len, out->cap - out->len, fmt, args);
        va_end(args);
        if (n < 0) {
            out->failed = true;
            return;
        }
        if ((size_t)n < out->cap - out->len) {
            out->len += (size_t)n;
            return;
        }
        size_t cap = out->cap * 2 + (size_t)n + 1;
        char *grown = realloc(out->data, cap);
        if (grown == NULL) {
            out->failed = true;
            return;
        }
        out->data = grown;
        out->cap = cap;
    }
}

static const char *type_name(series_kind kind) {
    return kind == KIND_COUNTER ? "counter" : kind == KIND_GAUGE ? "gauge" : "histogram";
}

/* `name{labels}`, or just `name` when there are none. */
static void append_name(text_buffer *out, const char *name, const char *suffix, const char *labels,
                        const char *extra_label) {
    bool has_labels = labels[0] != '\0';
    bool has_extra = extra_label != NULL;
    if (!has_labels && !has_extra) {
        appendf(out, "%s%s ", name, suffix);
        return;
    }
    appendf(out, "%s%s{%s%s%s} ", name, suffix, labels, has_labels && has_extra ? "," : "",
            has_extra ? extra_label : "");
}

static void render_series(text_buffer *out, const tk_series *s) {
    tk_series *m = (tk_series *)s; /* atomics are read through a non-const pointer */
    if (s->kind == KIND_COUNTER) {
        append_name(out, s->name, "", s->labels, NULL);
        appendf(out, "%llu\n", (unsigned long long)atomic_load(&m->count));
    } else if (s->kind == KIND_GAUGE) {
        append_name(out, s->name, "", s->labels, NULL);
        appendf(out, "%.17g\n", s->gauge != NULL ? s->gauge(s->gauge_ctx) : 0.0);
    } else {
        uint64_t cumulative = 0;
        char le[32];
        for (size_t i = 0; i < BUCKET_COUNT; i++) {
            cumulative += atomic_load(&m->buckets[i]);
            snprintf(le, sizeof le, "le=\"%g\"", BUCKETS[i]);
            append_name(out, s->name, "_bucket", s->labels, le);
            appendf(out, "%llu\n", (unsigned long long)cumulative);
        }
        uint64_t count = atomic_load(&m->count);
        append_name(out, s->name, "_bucket", s->labels, "le=\"+Inf\"");
        appendf(out, "%llu\n", (unsigned long long)count);
        append_name(out, s->name, "_sum", s->labels, NULL);
        appendf(out, "%.9f\n", (double)atomic_load(&m->sum_ns) / 1e9);
        append_name(out, s->name, "_count", s->labels, NULL);
        appendf(out, "%llu\n", (unsigned long long)count);
    }
}

char *tk_metrics_render(size_t *len) {
    text_buffer out = {.data = malloc(4096), .cap = 4096};
    if (out.data == NULL) return NULL;
    out.data[0] = '\0';
    pthread_mutex_lock(&registry_lock);
    /* Families in order of first appearance, each with all its series. */
    for (const tk_series *first = registry_head; first != NULL; first = first->next) {
        bool is_new_family = true;
        for (const tk_series *seen = registry_head; seen != first; seen = seen->next)
            if (strcmp(seen->name, first->name) == 0) is_new_family = false;
        if (!is_new_family) continue;
        appendf(&out, "# HELP %s %s\n# TYPE %s %s\n", first->name, first->help, first->name, type_name(first->kind));
        for (const tk_series *s = first; s != NULL; s = s->next)
            if (strcmp(s->name, first->name) == 0) render_series(&out, s);
    }
    size_t count = collector_count;
    pthread_mutex_unlock(&registry_lock);
    /* Collectors run outside the lock: one may ask a broker (lag), and every
     * series lookup would wait behind it. Registered ones are never removed. */
    for (size_t i = 0; i < count; i++) {
        char *text = collectors[i].fn(collectors[i].ctx);
        if (text != NULL) appendf(&out, "%s", text);
        free(text);
    }
    if (out.failed) {
        free(out.data);
        return NULL;
    }
    *len = out.len;
    return out.data;
}
