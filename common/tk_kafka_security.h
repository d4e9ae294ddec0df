/* tk_kafka_security — how both binaries reach a secured Kafka: TLS, SASL and
 * any other librdkafka property, read from the environment the way operators
 * configure librdkafka clients elsewhere. */
#ifndef TK_KAFKA_SECURITY_H
#define TK_KAFKA_SECURITY_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>

#define TK_KAFKA_PROPERTY_PREFIX "KAFKA_PROPERTY_"
#define TK_KAFKA_PROPERTY_NAME_MAX 128

/** One librdkafka property with the variable it came from. Strings owned. */
typedef struct {
    char *variable; /* e.g. "KAFKA_SASL_USERNAME" */
    char *name;     /* e.g. "sasl.username" */
    char *value;
    bool is_secret; /* never logged, never echoed in errors */
} tk_kafka_property;

typedef struct {
    const char *protocol; /* plaintext, ssl, sasl_plaintext, sasl_ssl (static) */
    tk_kafka_property *properties;
    size_t count;
} tk_kafka_security;

/**
 * @brief Reads KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_MECHANISM,
 * KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD(_FILE), KAFKA_SSL_CA_LOCATION and
 * every KAFKA_PROPERTY_<name>, and checks them against librdkafka.
 * @returns 0, or -1 with a message naming the variable in err (never a
 * secret); security is then empty and needs no close.
 */
int tk_kafka_security_load(tk_kafka_security *security, char *err, size_t err_len);

/** @brief Frees what load allocated. Accepts a zeroed struct. */
void tk_kafka_security_close(tk_kafka_security *security);

/** @brief True when the protocol uses TLS or SASL. */
bool tk_kafka_security_is_secured(const tk_kafka_security *security);

/**
 * @brief Maps the part after KAFKA_PROPERTY_ to a librdkafka name: lower
 * case, `_` -> `.`, `__` -> `_`, `___` -> `-` (the Confluent images' rule),
 * e.g. SSL_ENDPOINT_IDENTIFICATION_ALGORITHM -> ssl.endpoint.identification.algorithm.
 * @returns 0, or -1 when suffix is empty, has characters other than A-Z, 0-9
 * and `_`, or does not fit out_len.
 */
int tk_kafka_property_name(const char *suffix, char *out, size_t out_len);

/**
 * @brief Sets every property on conf. @returns 0, or -1 with err naming the
 * variable (librdkafka's text is left out for secret properties).
 */
int tk_kafka_security_apply(const tk_kafka_security *security, rd_kafka_conf_t *conf, char *err, size_t err_len);

/** @brief What is configured, secrets shown as "***", for the start-up log. @returns a new reference. */
json_t *tk_kafka_security_describe(const tk_kafka_security *security);

#endif
