/* gw_gateway — the composition root of the gateway: the order in which the
 * parts start and stop, and the readiness they add up to. */
#include "gw_gateway.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gw_answer.h"
#include "tk_clock.h"
#include "tk_log.h"
#include "tk_metrics.h"

#define TOKEN_CACHE_ENTRIES 4096
#define RATE_LIMIT_USERS 65536
#define PRODUCER_FLUSH_MS 2000

static void answer_unavailable(gw_pending_entry *entry, gw_gateway *gateway) {
    size_t len = 0;
    char *body = gw_answer_error(GW_MSG_UNAVAILABLE, &len);
    gw_http_complete(entry, 503, body, len, &gateway->http);
}

/* A command the broker did not take: its request, if still waiting, gets 503. */
static void on_publish_failed(const char *correlation_id, size_t len, const char *reason, void *ctx) {
    gw_gateway *gateway = ctx;
    gw_pending_lock(&gateway->pending);
    gw_pending_entry *entry = gw_pending_take_locked(&gateway->pending, correlation_id, len);
    gw_pending_unlock(&gateway->pending);
    tk_log_fields(TK_LOG_WARN, "command not delivered",
                  json_pack("{s:s%, s:s}", "correlationId", correlation_id, len, "error", reason));
    if (entry != NULL) answer_unavailable(entry, gateway);
}

static double waiting_requests(void *ctx) { return (double)gw_pending_count(&((gw_gateway *)ctx)->pending); }

static double in_flight_requests(void *ctx) { return (double)gw_http_requests_in_flight(&((gw_gateway *)ctx)->http); }

static int start_admission(gw_gateway *gateway, const tk_gateway_config *config, char *err, size_t err_len) {
    if (gw_auth_init(&gateway->auth, config->jwt_algorithm, config->jwt_key, config->jwt_key_len) != 0 ||
        (config->jwt_previous_key != NULL &&
         gw_auth_add_key(&gateway->auth, config->jwt_previous_key, config->jwt_previous_key_len) != 0)) {
        snprintf(err, err_len, "unsupported JWT algorithm or empty key");
        return -1;
    }
    gw_auth_set_policy(&gateway->auth, config->jwt_issuer, config->jwt_audience, config->jwt_max_lifetime_s);
    if (gw_auth_enable_cache(&gateway->auth, TOKEN_CACHE_ENTRIES) != 0) {
        snprintf(err, err_len, "out of memory for the token cache");
        return -1;
    }
    if (gw_ratelimit_init(&gateway->ratelimit, config->rate_limit_per_second, config->rate_limit_burst,
                          RATE_LIMIT_USERS) != 0) {
        snprintf(err, err_len, "out of memory for the rate limiter");
        return -1;
    }
    gateway->admission = (gw_admission){
        .auth = &gateway->auth,
        .ratelimit = &gateway->ratelimit,
        .max_body_bytes = config->max_body_bytes,
        /* Counters exist from the start, so rates and alerts have a zero to begin with. */
        .rate_limited = tk_metrics_counter("ticket_gateway_rate_limited_total", "Requests refused with 429", ""),
    };
    return 0;
}

static void register_metrics(gw_gateway *gateway) {
    tk_metrics_counter("ticket_gateway_produce_errors_total", "Commands and queries the broker did not take",
                       "stage=\"enqueue\"");
    tk_metrics_counter("ticket_gateway_produce_errors_total", "Commands and queries the broker did not take",
                       "stage=\"delivery\"");
    tk_metrics_gauge_fn("ticket_gateway_requests_waiting", "Requests waiting for a worker's reply", "",
                        waiting_requests, gateway);
    tk_metrics_gauge_fn("ticket_gateway_requests_in_flight", "HTTP requests received and not yet finished", "",
                        in_flight_requests, gateway);
}

static void close_parts(gw_gateway *gateway, int flush_ms) {
    gw_replies_stop(&gateway->replies);
    gw_publish_close(&gateway->publish, flush_ms);
    gw_pending_close(&gateway->pending);
    gw_ratelimit_close(&gateway->ratelimit);
    gw_auth_close(&gateway->auth);
}

int gw_gateway_start(gw_gateway *gateway, const tk_gateway_config *config, char *err, size_t err_len) {
    memset(gateway, 0, sizeof *gateway);
    gateway->config = config;
    if (start_admission(gateway, config, err, err_len) != 0) goto fail;
    if (gw_pending_init(&gateway->pending, (size_t)config->max_pending_requests) != 0) {
        snprintf(err, err_len, "out of memory for the pending table");
        goto fail;
    }
    register_metrics(gateway);
    if (gw_publish_init(&gateway->publish, config->kafka_brokers, config->gateway_id, config->request_timeout_ms,
                        on_publish_failed, gateway, err, err_len) != 0)
        goto fail;
    gw_publish_set_signing_key(&gateway->publish, config->command_signing_key);
    if (gw_replies_start(&gateway->replies, config->kafka_brokers, config->gateway_id, &gateway->pending,
                         &gateway->publish, gw_http_complete, &gateway->http, err, err_len) != 0)
        goto fail;
    if (gw_http_start(&gateway->http, gateway, err, err_len) != 0) goto fail;
    return 0;
fail:
    close_parts(gateway, 0);
    return -1;
}

bool gw_gateway_is_ready(gw_gateway *gateway) {
    return gw_replies_is_ready(&gateway->replies) && !atomic_load(&gateway->is_draining) &&
           !gw_publish_is_broker_down(&gateway->publish) && !gw_gateway_has_failed(gateway);
}

bool gw_gateway_is_draining(gw_gateway *gateway) { return atomic_load(&gateway->is_draining); }

bool gw_gateway_has_failed(gw_gateway *gateway) { return gw_publish_has_fatal_error(&gateway->publish); }

void gw_gateway_stop(gw_gateway *gateway, int drain_ms) {
    /* Draining: dispatch answers new requests 503 with Connection: close, and
     * /readyz fails. No MHD_quiesce_daemon: on an epoll daemon with worker
     * threads it races the threads' own removal of the listen socket from
     * epoll, and libmicrohttpd aborts ("Failed to remove listen FD from
     * epoll set", seen in CI on 2026-12-03; an open libmicrohttpd defect).
     * The listen socket closes with MHD_stop_daemon. */
    atomic_store(&gateway->is_draining, true);
    int64_t drain_deadline = tk_monotonic_ms() + drain_ms;
    while (gw_pending_count(&gateway->pending) > 0 && tk_monotonic_ms() < drain_deadline) usleep(20 * 1000);
    gw_replies_stop(&gateway->replies);
    /* MHD must not stop with suspended connections: answer what is left. */
    gw_pending_entry *entry;
    while ((entry = gw_pending_take_oldest(&gateway->pending)) != NULL) answer_unavailable(entry, gateway);
    gw_http_stop(&gateway->http);
    close_parts(gateway, PRODUCER_FLUSH_MS);
}
