/* gw_publish — the producer of commands and queries. */
#include "gw_publish.h"

#include <stdio.h>
#include <string.h>

#include "tk_clock.h"
#include "tk_kafka.h"
#include "tk_log.h"
#include "tk_metrics.h"

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *message, void *opaque) {
    (void)rk;
    gw_publish *publish = opaque;
    if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
    tk_counter_add(tk_metrics_counter("ticket_gateway_produce_errors_total",
                                      "Commands and queries the broker did not take", "stage=\"delivery\""),
                   1);
    const char *correlation_id;
    size_t len;
    if (tk_kafka_header(message, TK_HEADER_CORRELATION_ID, &correlation_id, &len) != 0) return;
    publish->on_failed(correlation_id, len, rd_kafka_err2str(message->err), publish->ctx);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    gw_publish *publish = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char fatal[512];
        rd_kafka_resp_err_t cause = rd_kafka_fatal_error(rk, fatal, sizeof fatal);
        if (!atomic_exchange(&publish->has_fatal_error, true))
            tk_log_fields(TK_LOG_ERROR, "producer fatal error, answering 503 until the gateway restarts",
                          json_pack("{s:s, s:s}", "error", cause != RD_KAFKA_RESP_ERR_NO_ERROR ? fatal : reason, "code",
                                    rd_kafka_err2name(cause)));
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN && !atomic_exchange(&publish->is_broker_down, true))
        tk_log_fields(TK_LOG_ERROR, "all brokers down, answering 503 until one is back",
                      json_pack("{s:s}", "error", reason));
    else if (err != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        tk_log_fields(TK_LOG_WARN, "producer error", json_pack("{s:s}", "error", reason));
}

bool gw_publish_is_broker_down(gw_publish *publish) { return atomic_load(&publish->is_broker_down); }

bool gw_publish_has_fatal_error(gw_publish *publish) { return atomic_load(&publish->has_fatal_error); }

void gw_publish_probe(gw_publish *publish) {
    if (!atomic_load(&publish->is_broker_down)) return;
    const struct rd_kafka_metadata *metadata = NULL;
    if (rd_kafka_metadata(publish->producer, 0, NULL, &metadata, 300) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_metadata_destroy(metadata);
        atomic_store(&publish->is_broker_down, false);
        tk_log_fields(TK_LOG_INFO, "broker reachable again", NULL);
    }
}

int gw_publish_warm_up(gw_publish *publish) {
    const char *topics[] = {TK_TOPIC_COMMANDS, TK_TOPIC_QUERIES};
    for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++) {
        rd_kafka_topic_t *topic = rd_kafka_topic_new(publish->producer, topics[i], NULL);
        const struct rd_kafka_metadata *metadata = NULL;
        rd_kafka_resp_err_t rc = topic != NULL ? rd_kafka_metadata(publish->producer, 0, topic, &metadata, 2000)
                                               : RD_KAFKA_RESP_ERR__FAIL;
        bool is_known = rc == RD_KAFKA_RESP_ERR_NO_ERROR && metadata->topic_cnt == 1 &&
                        metadata->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR && metadata->topics[0].partition_cnt > 0;
        if (metadata != NULL) rd_kafka_metadata_destroy(metadata);
        if (topic != NULL) rd_kafka_topic_destroy(topic);
        if (!is_known) {
            tk_log_fields(TK_LOG_WARN, "topic not available yet", json_pack("{s:s}", "topic", topics[i]));
            return -1;
        }
    }
    return 0;
}

int gw_publish_init(gw_publish *publish, const char *brokers, int reply_partition, int delivery_timeout_ms,
                    gw_publish_failed_fn on_failed, void *ctx, char *err, size_t err_len) {
    char timeout_text[16];
    snprintf(timeout_text, sizeof timeout_text, "%d", delivery_timeout_ms);
    /* Request/reply wants latency: send at once, no Nagle; idempotence keeps
     * retried commands from being written twice. No compression: commands are
     * small, and compressing costs us and the broker more than it saves. One
     * request in flight: under load the commands produced meanwhile share
     * the next produce request instead of one request each. */
    const tk_kafka_setting settings[] = {
        {"enable.idempotence", "true"},
        {"linger.ms", "0"},
        {"socket.nagle.disable", "true"},
        {"message.timeout.ms", timeout_text},
        {"max.in.flight.requests.per.connection", "1"},
        {NULL, NULL},
    };
    memset(publish, 0, sizeof *publish);
    snprintf(publish->reply_partition, sizeof publish->reply_partition, "%d", reply_partition);
    publish->request_timeout_ms = delivery_timeout_ms;
    publish->on_failed = on_failed;
    publish->ctx = ctx;
    rd_kafka_conf_t *conf = tk_kafka_conf_new(brokers, "ticket-gateway", settings, err, err_len);
    if (conf == NULL) return -1;
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_opaque(conf, publish);
    publish->producer = tk_kafka_new(RD_KAFKA_PRODUCER, conf, err, err_len);
    if (publish->producer == NULL) return -1;
    return 0;
}

void gw_publish_set_signing_key(gw_publish *publish, const tk_sign_key *key) { publish->signing_key = key; }

static tk_sign_view view_of(const char *text) { return (tk_sign_view){text, text != NULL ? strlen(text) : 0}; }

/* The reply address, the deadline (queries) and the signature over them
 * and the value (docs/contract.md, "Signing"). @returns the headers, or NULL. */
static rd_kafka_headers_t *signed_headers(const gw_publish *publish, const char *deadline, const char *correlation_id,
                                          const char *payload, size_t len) {
    char signature[TK_SIGN_HEX_LEN + 1];
    if (publish->signing_key == NULL) return NULL;
    tk_sign_fields fields = {view_of(publish->signing_key->id), view_of(correlation_id), view_of(TK_TOPIC_REPLIES),
                             view_of(publish->reply_partition), view_of(deadline),       {payload, len}};
    if (tk_sign_compute(publish->signing_key, &fields, signature) != 0) return NULL;
    rd_kafka_headers_t *headers = rd_kafka_headers_new(8);
    if (deadline != NULL) rd_kafka_header_add(headers, TK_HEADER_DEADLINE, -1, deadline, -1);
    rd_kafka_header_add(headers, TK_HEADER_CORRELATION_ID, -1, correlation_id, -1);
    rd_kafka_header_add(headers, TK_HEADER_REPLY_TOPIC, -1, TK_TOPIC_REPLIES, -1);
    rd_kafka_header_add(headers, TK_HEADER_REPLY_PARTITION, -1, publish->reply_partition, -1);
    rd_kafka_header_add(headers, TK_HEADER_KEY_ID, -1, publish->signing_key->id, -1);
    rd_kafka_header_add(headers, TK_HEADER_SIGNATURE, -1, signature, TK_SIGN_HEX_LEN);
    return headers;
}

int gw_publish_send(gw_publish *publish, tk_request_type type, const char *key, const char *payload, size_t len,
                    const char *correlation_id, const char *traceparent) {
    bool is_query = tk_request_type_is_query(type);
    const char *topic = is_query ? TK_TOPIC_QUERIES : TK_TOPIC_COMMANDS;
    /* Nobody waits for a query's answer after its deadline: the worker skips it then. */
    char deadline[24];
    snprintf(deadline, sizeof deadline, "%lld", (long long)(tk_now_ms() + publish->request_timeout_ms));
    rd_kafka_headers_t *headers = signed_headers(publish, is_query ? deadline : NULL, correlation_id, payload, len);
    if (headers == NULL) {
        tk_log_fields(TK_LOG_ERROR, "cannot sign the message", json_pack("{s:s}", "correlationId", correlation_id));
        return -1;
    }
    if (traceparent != NULL) rd_kafka_header_add(headers, TK_HEADER_TRACEPARENT, -1, traceparent, -1);
    rd_kafka_resp_err_t rc = rd_kafka_producev(publish->producer, RD_KAFKA_V_TOPIC(topic),
                                               RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE((void *)payload, len),
                                               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers),
                                               RD_KAFKA_V_END);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_headers_destroy(headers); /* not taken on failure */
        tk_counter_add(tk_metrics_counter("ticket_gateway_produce_errors_total",
                                          "Commands and queries the broker did not take", "stage=\"enqueue\""),
                       1);
        tk_log_fields(TK_LOG_WARN, "produce failed",
                      json_pack("{s:s, s:s, s:s}", "topic", topic, "error", rd_kafka_err2str(rc), "correlationId",
                                correlation_id));
        return -1;
    }
    return 0;
}

void gw_publish_poll(gw_publish *publish) { rd_kafka_poll(publish->producer, 0); }

void gw_publish_close(gw_publish *publish, int timeout_ms) {
    if (publish == NULL || publish->producer == NULL) return;
    rd_kafka_flush(publish->producer, timeout_ms);
    rd_kafka_destroy(publish->producer);
    publish->producer = NULL;
}
