/* ticket-gateway: HTTP in, Kafka out, replies back. Lifecycle only. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "gw_gateway.h"
#include "tk_config.h"
#include "tk_kafka.h"
#include "tk_log.h"

#define DRAIN_EXTRA_MS 1000

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int signal_number) {
    (void)signal_number;
    stop_requested = 1;
}

int main(void) {
    char err[TK_CONFIG_ERROR_MAX];
    tk_gateway_config config;
    gw_gateway gateway;

    if (tk_gateway_config_load(&config, err, sizeof err) != 0) {
        tk_log_init("gateway", TK_LOG_INFO);
        tk_log_fields(TK_LOG_ERROR, "configuration error, not starting", json_pack("{s:s}", "error", err));
        return 2;
    }
    tk_log_init("gateway", config.log_level);
    if (tk_kafka_init(&config.kafka_security, config.kafka_brokers, err, sizeof err) != 0) {
        tk_log_fields(TK_LOG_ERROR, "cannot connect to Kafka, not starting", json_pack("{s:s}", "error", err));
        tk_gateway_config_close(&config);
        return 2;
    }

    sigset_t signals;
    sigemptyset(&signals);
    struct sigaction action = {.sa_handler = on_signal, .sa_mask = signals};
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (gw_gateway_start(&gateway, &config, err, sizeof err) != 0) {
        tk_log_fields(TK_LOG_ERROR, "cannot start", json_pack("{s:s}", "error", err));
        tk_gateway_config_close(&config);
        return 1;
    }
    tk_log_fields(TK_LOG_INFO, "listening",
                  json_pack("{s:s, s:i, s:i, s:s}", "address", config.bind_address, "port", config.port, "gatewayId",
                            config.gateway_id, "jwtAlgorithm", config.jwt_algorithm));

    bool was_ready = false;
    while (!stop_requested && !gw_gateway_has_failed(&gateway)) {
        if (!was_ready && gw_gateway_is_ready(&gateway)) {
            was_ready = true;
            tk_log_fields(TK_LOG_INFO, "ready", json_pack("{s:i}", "port", config.port));
        }
        struct timespec pause = {.tv_sec = 0, .tv_nsec = 50 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }

    /* A fatal producer error is final for that producer. Rebuilding it here
     * would mean swapping a handle every HTTP thread uses; exiting lets the
     * supervisor start a clean process, as the worker does. Requests already
     * published still get their replies while we drain. */
    bool has_failed = gw_gateway_has_failed(&gateway);
    if (has_failed) tk_log_fields(TK_LOG_ERROR, "producer unusable, exiting to be restarted", NULL);
    tk_log_fields(TK_LOG_INFO, "draining", json_pack("{s:i}", "drainMs", config.request_timeout_ms + DRAIN_EXTRA_MS));
    gw_gateway_stop(&gateway, config.request_timeout_ms + DRAIN_EXTRA_MS);
    tk_gateway_config_close(&config);
    tk_log_fields(has_failed ? TK_LOG_ERROR : TK_LOG_INFO, "stopped", NULL);
    return has_failed ? 1 : 0;
}
