/* ticket-worker: consume commands and queries, apply them to MongoDB,
 * answer and announce. Lifecycle only. */
#include <mongoc/mongoc.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "tk_config.h"
#include "tk_kafka.h"
#include "tk_log.h"
#include "wk_consumer.h"
#include "wk_http.h"
#include "wk_lanes.h"
#include "wk_metrics.h"
#include "wk_output.h"
#include "wk_store.h"
#include "wk_verify.h"

#define DRAIN_MS 10000
#define FLUSH_MS 10000
#define INDEX_RETRY_SECONDS 1

static volatile int stop_requested = 0;

static void on_signal(int signal_number) {
    (void)signal_number;
    stop_requested = 1;
}

static bool is_output_broken(void *ctx) { return wk_output_is_broken(ctx); }

typedef struct {
    wk_consumer *consumer;
    wk_store *store;
} readiness;

/* Ready: holds partitions and the database answered last time it was asked. */
static bool is_ready(void *ctx) {
    readiness *parts = ctx;
    return wk_consumer_has_assignment(parts->consumer) && atomic_load(&parts->store->is_reachable);
}

/* The driver logs through ours, so every line on stderr is JSON. */
static void log_from_mongoc(mongoc_log_level_t level, const char *domain, const char *message, void *ctx) {
    (void)ctx;
    tk_log_level our_level = level <= MONGOC_LOG_LEVEL_ERROR     ? TK_LOG_ERROR
                             : level == MONGOC_LOG_LEVEL_WARNING ? TK_LOG_WARN
                             : level <= MONGOC_LOG_LEVEL_INFO    ? TK_LOG_INFO
                                                                 : TK_LOG_DEBUG;
    if (!tk_log_enabled(our_level)) return;
    tk_log_fields(our_level, message, json_pack("{s:s}", "mongoc", domain));
}

/* The database may come up after us: keep trying, but stay stoppable. */
static int ensure_indexes(wk_store *store) {
    char err[TK_CONFIG_ERROR_MAX];
    while (!stop_requested) {
        if (wk_store_ensure_indexes(store, err, sizeof err) == 0) return 0;
        tk_log_fields(TK_LOG_WARN, "database not ready, retrying", json_pack("{s:s}", "error", err));
        sleep(INDEX_RETRY_SECONDS);
    }
    return -1;
}

static void install_signal_handlers(void) {
    struct sigaction action = {.sa_handler = on_signal};
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void log_started(const tk_worker_config *config) {
    tk_log_fields(TK_LOG_INFO, "started",
                  json_pack("{s:i, s:i, s:i, s:s, s:s*, s:s*, s:i}", "threads", config->worker_threads, "writeLanes",
                            config->write_lanes < config->worker_threads ? config->write_lanes : config->worker_threads,
                            "batchMax", config->batch_max, "group", config->group_id, "workerId", config->worker_id,
                            "groupInstanceId", config->group_instance_id, "httpPort", config->http_port));
}

static void init_libraries(void) {
    mongoc_init();
    mongoc_log_set_handler(log_from_mongoc, NULL);
    /* Series exist from the start, so rates and alerts have a zero to begin
     * with, and no message looks one up. */
    wk_metrics_register();
}

/* The same order on every path (stop, fatal, fenced, drain timeout):
 * join the lanes (released from a full producer queue first), flush and
 * stop the output so no delivery report comes any more, leave the group
 * (its revoke finds the lanes stopped), and only then free the progress
 * records the reports pointed to. */
static void stop_parts(wk_http *http, wk_lanes *lanes, wk_output *output, wk_consumer *consumer, wk_store *store) {
    wk_http_stop(http);
    wk_lanes_stop(lanes);
    wk_output_close(output, FLUSH_MS);
    wk_consumer_close(consumer);
    wk_lanes_free(lanes);
    wk_store_close(store);
    mongoc_cleanup();
}

/* The database probe and the lanes. @returns 0, or -1 after logging why. */
static int start_processing(const tk_worker_config *config, wk_store *store, wk_output *output, wk_consumer *consumer,
                            wk_lanes *lanes) {
    char err[TK_CONFIG_ERROR_MAX];
    if (wk_store_start_probe(store) != 0) {
        tk_log_fields(TK_LOG_ERROR, "cannot start the database probe", NULL);
        return -1;
    }
    wk_lanes_shape shape = {config->worker_threads, config->write_lanes, (size_t)config->batch_max};
    if (wk_lanes_start(lanes, &shape, store, output, consumer->consumer, err, sizeof err) != 0) {
        tk_log_fields(TK_LOG_ERROR, "cannot start", json_pack("{s:s}", "error", err));
        return -1;
    }
    return 0;
}

/* Configuration, logging and the Kafka security check. @returns 0, or -1
 * after logging why (the process exits 2: nothing to retry). */
static int load_configuration(tk_worker_config *config) {
    char err[TK_CONFIG_ERROR_MAX];
    if (tk_worker_config_load(config, err, sizeof err) != 0) {
        tk_log_init("worker", TK_LOG_INFO);
        tk_log_fields(TK_LOG_ERROR, "configuration error, not starting", json_pack("{s:s}", "error", err));
        return -1;
    }
    tk_log_init("worker", config->log_level);
    if (tk_kafka_init(&config->kafka_security, config->kafka_brokers, err, sizeof err) != 0) {
        tk_log_fields(TK_LOG_ERROR, "cannot connect to Kafka, not starting", json_pack("{s:s}", "error", err));
        tk_worker_config_close(config);
        return -1;
    }
    return 0;
}

int main(void) {
    char err[TK_CONFIG_ERROR_MAX];
    tk_worker_config config;
    wk_store store = {0};
    wk_output output = {0};
    wk_consumer consumer = {0};
    wk_lanes lanes = {0};
    wk_http http = {0};
    readiness ready_parts = {&consumer, &store};
    int exit_code = 1;

    if (load_configuration(&config) != 0) return 2;
    install_signal_handlers();
    init_libraries();

    if (wk_store_init(&store, config.mongodb_uri, err, sizeof err) != 0 ||
        wk_output_init(&output, config.kafka_brokers, "ticket-worker", err, sizeof err) != 0 ||
        wk_verify_init(&config, output.producer) != 0 || wk_consumer_init(&consumer, &config, err, sizeof err) != 0 ||
        wk_http_start(&http, config.bind_address, config.http_port, is_ready, &ready_parts, err, sizeof err) != 0) {
        tk_log_fields(TK_LOG_ERROR, "cannot start", json_pack("{s:s}", "error", err));
        goto cleanup;
    }
    atomic_store(&store.has_bulk_replies, config.bulk_replies != 0);
    store.recent = wk_recent_new((size_t)config.recent_tickets); /* NULL when 0 or short of memory: reads instead */
    if (ensure_indexes(&store) != 0) {
        exit_code = 0; /* stopped while waiting for the database */
        goto cleanup;
    }
    if (start_processing(&config, &store, &output, &consumer, &lanes) != 0) goto cleanup;
    log_started(&config);

    exit_code = wk_consumer_run(&consumer, &lanes, &stop_requested, is_output_broken, &output) == 0 ? 0 : 1;

    tk_log_fields(TK_LOG_INFO, "draining", json_pack("{s:i}", "drainMs", DRAIN_MS));
    if (exit_code == 0 && !wk_lanes_wait_idle(&lanes, DRAIN_MS))
        tk_log_fields(TK_LOG_WARN, "drain timed out, unfinished messages will be redelivered", NULL);
cleanup:
    stop_parts(&http, &lanes, &output, &consumer, &store);
    wk_verify_close();
    tk_worker_config_close(&config);
    tk_log_fields(TK_LOG_INFO, "stopped", json_pack("{s:i}", "exitCode", exit_code));
    return exit_code;
}
