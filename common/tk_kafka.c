/* tk_kafka — topic names, client configuration and header helpers. */
#include "tk_kafka.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tk_log.h"

#define PREFLIGHT_TIMEOUT_MS 10000
#define PREFLIGHT_STEP_MS 200
#define PREFLIGHT_ALL_DOWN_GRACE_MS 1500

/* Set once by tk_kafka_init before any client exists; read-only after. */
static const tk_kafka_security *client_security = NULL;

/* librdkafka logs through here so every line is JSON like ours. */
static void log_from_kafka(const rd_kafka_t *rk, int level, const char *facility, const char *text) {
    tk_log_level our_level = level <= 3   ? TK_LOG_ERROR
                             : level <= 4 ? TK_LOG_WARN
                             : level <= 6 ? TK_LOG_INFO
                                          : TK_LOG_DEBUG;
    tk_log_fields(our_level, text, json_pack("{s:s, s:s}", "kafka", rd_kafka_name(rk), "facility", facility));
}

rd_kafka_conf_t *tk_kafka_conf_new(const char *brokers, const char *client_id, const tk_kafka_setting *settings,
                                   char *err, size_t err_len) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, err_len) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "client.id", client_id, err, err_len) != RD_KAFKA_CONF_OK ||
        tk_kafka_security_apply(client_security, conf, err, err_len) != 0)
        goto fail;
    for (const tk_kafka_setting *s = settings; s != NULL && s->name != NULL; s++) {
        if (rd_kafka_conf_set(conf, s->name, s->value, err, err_len) != RD_KAFKA_CONF_OK) goto fail;
    }
    rd_kafka_conf_set_log_cb(conf, log_from_kafka);
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

typedef struct {
    rd_kafka_resp_err_t code; /* first authentication or TLS failure, or 0 */
    bool is_all_down;         /* no broker reachable: stop waiting */
    char reason[256];
} preflight_state;

/* A refused certificate is sometimes reported first as a transport error
 * ("certificate verify failed ... in state SSL_HANDSHAKE") and only on the
 * next attempt as _SSL: the text tells. */
static bool is_tls_failure(int code, const char *reason) {
    return code == RD_KAFKA_RESP_ERR__SSL ||
           (code == RD_KAFKA_RESP_ERR__TRANSPORT && reason != NULL && strstr(reason, "SSL_HANDSHAKE") != NULL);
}

static void on_preflight_error(rd_kafka_t *rk, int code, const char *reason, void *opaque) {
    (void)rk;
    preflight_state *state = opaque;
    if (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) state->is_all_down = true;
    if ((code == RD_KAFKA_RESP_ERR__AUTHENTICATION || is_tls_failure(code, reason)) && state->code == 0) {
        if (code == RD_KAFKA_RESP_ERR__TRANSPORT) code = RD_KAFKA_RESP_ERR__SSL;
        state->code = code;
        snprintf(state->reason, sizeof state->reason, "%s", reason);
    }
}

/* librdkafka before 2.6.1 repeats the client nonce in SCRAM's final
 * message; Kafka 4.x checks it strictly (RFC 5802) and refuses every SCRAM
 * login, right password or not (confluentinc/librdkafka#4895). Debian
 * bookworm ships 2.0.2: seen here as "invalid credentials". */
#define SCRAM_FIXED_VERSION 0x020601ff
#define SCRAM_HINT                                                                                                 \
    " (note: this librdkafka is older than 2.6.1 and cannot log in with SCRAM to Kafka 4.x brokers even with the " \
    "right password; use KAFKA_SASL_MECHANISM=PLAIN over sasl_ssl, or a newer librdkafka)"

static bool is_scram_broken(void) {
    if (client_security == NULL || rd_kafka_version() >= SCRAM_FIXED_VERSION) return false;
    for (size_t i = 0; i < client_security->count; i++) {
        const tk_kafka_property *property = &client_security->properties[i];
        if (strcmp(property->name, "sasl.mechanism") == 0) return strncmp(property->value, "SCRAM", 5) == 0;
    }
    return false;
}

static long long now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static void describe_refusal(const preflight_state *state, char *err, size_t err_len) {
    bool is_login = state->code == RD_KAFKA_RESP_ERR__AUTHENTICATION;
    snprintf(err, err_len, "Kafka %s failed (%s): %s%s", is_login ? "authentication" : "TLS handshake",
             is_login ? "check KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
                      : "check KAFKA_SECURITY_PROTOCOL, KAFKA_SSL_CA_LOCATION and the broker address",
             state->reason, is_scram_broken() ? SCRAM_HINT : "");
}

/* librdkafka retries a refused login forever and only reports it through the
 * error callback, so a client made with a wrong password would wait quietly.
 * One metadata request with the same settings tells the two apart: answered
 * (credentials good), refused (stop), or no broker yet (carry on; the real
 * clients retry). */
static int preflight(const char *brokers, char *err, size_t err_len) {
    preflight_state state = {0};
    const struct rd_kafka_metadata *metadata = NULL;
    rd_kafka_conf_t *conf = tk_kafka_conf_new(brokers, "ticket-preflight", NULL, err, err_len);
    if (conf == NULL) return -1;
    rd_kafka_conf_set_error_cb(conf, on_preflight_error);
    rd_kafka_conf_set_opaque(conf, &state);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, err_len);
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    long long started = now_ms(), deadline = started + PREFLIGHT_TIMEOUT_MS;
    bool is_answered = false;
    while (state.code == 0 && now_ms() < deadline) {
        if (rd_kafka_metadata(rk, 0, NULL, &metadata, PREFLIGHT_STEP_MS) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_metadata_destroy(metadata);
            is_answered = true;
            break;
        }
        rd_kafka_poll(rk, 0);
        /* No broker at all: carry on, but only after a reconnect or two, so
         * a refusal reported late is still seen. */
        if (state.is_all_down && now_ms() >= started + PREFLIGHT_ALL_DOWN_GRACE_MS) break;
    }
    rd_kafka_destroy(rk);
    if (state.code != 0) {
        describe_refusal(&state, err, err_len);
        return -1;
    }
    if (!is_answered)
        tk_log_fields(TK_LOG_WARN, "Kafka not reachable yet, credentials not checked; clients will retry",
                      json_pack("{s:s}", "brokers", brokers));
    return 0;
}

int tk_kafka_init(const tk_kafka_security *security, const char *brokers, char *err, size_t err_len) {
    client_security = security;
    tk_log_fields(TK_LOG_INFO, "kafka client settings",
                  json_pack("{s:s, s:s, s:o}", "brokers", brokers, "librdkafka", rd_kafka_version_str(), "properties",
                            tk_kafka_security_describe(security)));
    if (!tk_kafka_security_is_secured(security)) return 0;
    return preflight(brokers, err, err_len);
}

int tk_kafka_header(const rd_kafka_message_t *message, const char *name, const char **value, size_t *len) {
    rd_kafka_headers_t *headers = NULL;
    const void *raw = NULL;
    if (rd_kafka_message_headers(message, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR) return -1;
    if (rd_kafka_header_get_last(headers, name, &raw, len) != RD_KAFKA_RESP_ERR_NO_ERROR || raw == NULL) return -1;
    *value = raw;
    return 0;
}

int tk_kafka_header_copy(const rd_kafka_message_t *message, const char *name, char *out, size_t out_len) {
    const char *value;
    size_t len;
    if (tk_kafka_header(message, name, &value, &len) != 0 || len == 0 || len >= out_len) return -1;
    memcpy(out, value, len);
    out[len] = '\0';
    return 0;
}

rd_kafka_t *tk_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *err, size_t err_len) {
    rd_kafka_t *client = rd_kafka_new(type, conf, err, err_len);
    if (client == NULL) rd_kafka_conf_destroy(conf); /* rd_kafka_new took it only on success */
    return client;
}
