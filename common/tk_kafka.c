/* tk_kafka — topic names, client configuration and header helpers. */
#include "tk_kafka.h"

#include <string.h>

#include "tk_log.h"

/* librdkafka logs through here so every line is JSON like ours. */
static void log_from_kafka(const rd_kafka_t *rk, int level, const char *facility, const char *text) {
    tk_log_level our_level = level <= 3 ? TK_LOG_ERROR : level <= 4 ? TK_LOG_WARN : level <= 6 ? TK_LOG_INFO
                                                                                                 : TK_LOG_DEBUG;
    tk_log_fields(our_level, text, json_pack("{s:s, s:s}", "kafka", rd_kafka_name(rk), "facility", facility));
}

rd_kafka_conf_t *tk_kafka_conf_new(const char *brokers, const char *client_id, const tk_kafka_setting *settings,
                                   char *err, size_t err_len) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, err_len) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "client.id", client_id, err, err_len) != RD_KAFKA_CONF_OK)
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
