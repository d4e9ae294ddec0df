/* tk_config — every setting of both binaries, read from the environment once
 * at start and validated with messages that name the variable. */
#ifndef TK_CONFIG_H
#define TK_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "tk_kafka_security.h"
#include "tk_log.h"
#include "tk_sign.h"

#define TK_CONFIG_ERROR_MAX 512

typedef struct {
    int port;
    const char *bind_address;
    const char *kafka_brokers;
    tk_kafka_security kafka_security; /* KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_*, KAFKA_PROPERTY_* */
    const char *jwt_algorithm;        /* "HS256", "RS256" or "ES256" */
    char *jwt_key;                    /* secret or PEM public key; owned */
    size_t jwt_key_len;
    char *jwt_previous_key; /* accepted too while keys rotate; owned, NULL when unset */
    size_t jwt_previous_key_len;
    double rate_limit_per_second; /* per user; 0 = off */
    double rate_limit_burst;
    int request_timeout_ms;
    int gateway_id; /* also the partition of ticket.replies it reads */
    int http_threads;
    size_t max_body_bytes;
    int max_pending_requests;
    int max_connections_per_ip; /* 0 = no limit */
    bool is_access_log;
    tk_log_level log_level;
    /* Trust (docs/operations.md, "Trust model"). */
    tk_sign_keys command_keys;              /* COMMAND_KEYS or COMMAND_KEYS_FILE */
    const tk_sign_key *command_signing_key; /* COMMAND_SIGNING_KEY_ID, or the first key; in command_keys */
    const char *jwt_issuer;                 /* JWT_ISSUER: iss must equal it; NULL = not checked */
    const char *jwt_audience;               /* JWT_AUDIENCE: aud must contain it; NULL = not checked */
    int jwt_max_lifetime_s;                 /* JWT_MAX_LIFETIME_S: exp - iat at most this; 0 = no limit */
} tk_gateway_config;

#define TK_REPLY_TOPICS_MAX 8

typedef struct {
    const char *kafka_brokers;
    tk_kafka_security kafka_security; /* KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_*, KAFKA_PROPERTY_* */
    const char *mongodb_uri;
    char *mongodb_uri_secret; /* MONGODB_URI_FILE's text (mongodb_uri points here); owned, NULL when unset */
    const char *group_id;
    const char *worker_id;         /* WORKER_ID: names this worker in logs and client ids; NULL = none */
    const char *group_instance_id; /* KAFKA_GROUP_INSTANCE_ID: static membership; NULL = dynamic */
    int worker_threads;
    int write_lanes; /* WORKER_WRITE_LANES: lanes (of worker_threads) that apply commands; default 1 */
    int batch_max;   /* WORKER_BATCH_MAX: messages a lane applies at once (group commit); 1 = one by one */
    int bulk_replies; /* WORKER_BULK_REPLIES: 1 = a batch's run of replies is one update (wk_replies_bulk); 0 = one by one */
    int recent_tickets; /* WORKER_RECENT_TICKETS: copies of tickets as last stored (wk_recent); 0 = none */
    int http_port;      /* WORKER_HTTP_PORT: health and metrics; 0 = off */
    const char *bind_address;
    tk_log_level log_level;
    tk_sign_keys command_keys;                   /* COMMAND_KEYS or COMMAND_KEYS_FILE: whose commands are applied */
    char reply_topics[TK_REPLY_TOPICS_MAX][250]; /* REPLY_TOPICS: the only topics answered on */
    size_t reply_topic_count;
} tk_worker_config;

/**
 * @brief Loads the gateway settings. Refuses to start without a JWT key.
 * @returns 0, or -1 with a message naming the variable in err.
 */
int tk_gateway_config_load(tk_gateway_config *config, char *err, size_t err_len);

/** @brief Frees what tk_gateway_config_load allocated. Accepts a zeroed struct. */
void tk_gateway_config_close(tk_gateway_config *config);

/** @brief Loads the worker settings. @returns 0, or -1 with err. */
int tk_worker_config_load(tk_worker_config *config, char *err, size_t err_len);

/** @brief Frees what tk_worker_config_load allocated. Accepts a zeroed struct. */
void tk_worker_config_close(tk_worker_config *config);

#endif
