/* tk_kafka — topic names, client configuration and header helpers. */
#ifndef TK_KAFKA_H
#define TK_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "tk_kafka_security.h"

#define TK_TOPIC_COMMANDS "ticket.commands"
#define TK_TOPIC_QUERIES "ticket.queries"
#define TK_TOPIC_REPLIES "ticket.replies"
#define TK_TOPIC_EVENTS "ticket.events"
#define TK_TOPIC_DLQ "ticket.dlq"

#define TK_HEADER_CORRELATION_ID "correlation-id"
#define TK_HEADER_REPLY_TOPIC "reply-topic"
#define TK_HEADER_REPLY_PARTITION "reply-partition"
#define TK_HEADER_TRACEPARENT "traceparent"
#define TK_HEADER_CHUNK_INDEX "chunk-index"
#define TK_HEADER_CHUNK_COUNT "chunk-count"
#define TK_HEADER_DEADLINE "deadline" /* queries: epoch ms after which nobody waits for the answer */

/* Replies above this size travel in chunks (the broker's default message
 * limit is 1 MiB; leave room for headers and batch overhead). */
#define TK_REPLY_CHUNK_BYTES (512 * 1024)

/** A key/value pair for tk_kafka_conf_new. */
typedef struct {
    const char *name;
    const char *value;
} tk_kafka_setting;

/**
 * @brief Installs the security settings every later tk_kafka_conf_new applies
 * (borrowed: keep them alive while clients are made), logs them without
 * secrets and, when they use TLS or SASL, connects once to brokers to check
 * them, so a wrong password or CA stops the process at start.
 * @returns 0 (also when the broker is just not reachable yet), or -1 with err
 * naming the authentication or TLS failure.
 */
int tk_kafka_init(const tk_kafka_security *security, const char *brokers, char *err, size_t err_len);

/**
 * @brief New configuration with bootstrap.servers, client.id, our logger, the
 * security settings of tk_kafka_init, then the settings (ended by a NULL
 * name) applied in order (so a client's own settings win over
 * KAFKA_PROPERTY_*).
 * @returns the conf (caller owns until passed to rd_kafka_new), or NULL with err.
 */
rd_kafka_conf_t *tk_kafka_conf_new(const char *brokers, const char *client_id, const tk_kafka_setting *settings,
                                   char *err, size_t err_len);

/**
 * @brief rd_kafka_new that takes ownership of conf in every case: on failure
 * conf is destroyed here.
 * @returns the client, or NULL with err.
 */
rd_kafka_t *tk_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *err, size_t err_len);

/**
 * @brief Finds the last header `name` as a string view.
 * @returns 0 with *value and *len (borrowed from the message), or -1 when absent.
 */
int tk_kafka_header(const rd_kafka_message_t *message, const char *name, const char **value, size_t *len);

/**
 * @brief Copies header `name` into out as a NUL-terminated string.
 * @returns 0, or -1 when absent, empty or longer than out_len - 1.
 */
int tk_kafka_header_copy(const rd_kafka_message_t *message, const char *name, char *out, size_t out_len);

#endif
