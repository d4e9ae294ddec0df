/* gw_publish — the producer of commands and queries. */
#ifndef GW_PUBLISH_H
#define GW_PUBLISH_H

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "tk_envelope.h"
#include "tk_sign.h"

/** Called (from gw_publish_poll's thread) when a message could not be delivered. */
typedef void (*gw_publish_failed_fn)(const char *correlation_id, size_t len, const char *reason, void *ctx);

typedef struct {
    rd_kafka_t *producer;
    atomic_bool is_broker_down;  /* every broker unreachable: answer 503 at once */
    atomic_bool has_fatal_error; /* the idempotent producer gave up for good */
    char reply_partition[12];
    int request_timeout_ms; /* a query's deadline header: now + this */
    gw_publish_failed_fn on_failed;
    void *ctx;
    const tk_sign_key *signing_key; /* signs every command and query; borrowed from the config */
} gw_publish;

/**
 * @brief Creates the idempotent producer; replies are asked on reply_partition.
 * @returns 0, or -1 with err.
 */
int gw_publish_init(gw_publish *publish, const char *brokers, int reply_partition, int delivery_timeout_ms,
                    gw_publish_failed_fn on_failed, void *ctx, char *err, size_t err_len);

/** @brief Signs every message from now on with key (borrowed; call right after init). */
void gw_publish_set_signing_key(gw_publish *publish, const tk_sign_key *key);

/**
 * @brief Queues a command or query with the reply headers; never blocks.
 * The headers the worker acts on and the value are signed (key-id,
 * signature; docs/contract.md). @returns 0, or -1 when the local queue is
 * full, the broker is unknown or there is no signing key (the caller answers 503).
 */
int gw_publish_send(gw_publish *publish, tk_request_type type, const char *key, const char *payload, size_t len,
                    const char *correlation_id, const char *traceparent);

/**
 * @returns true once the producer had a fatal error (RD_KAFKA_RESP_ERR__FATAL,
 * e.g. a broken idempotence sequence): it sends nothing more, ever, and the
 * process must be restarted (see gw_http_has_failed).
 */
bool gw_publish_has_fatal_error(gw_publish *publish);

/** @returns true while no broker is reachable (set by the client, cleared by gw_publish_probe). */
bool gw_publish_is_broker_down(gw_publish *publish);

/** @brief While the broker is down, asks it once (short timeout) and clears the flag when it answers. */
void gw_publish_probe(gw_publish *publish);

/**
 * @brief Learns the partitions of ticket.commands and ticket.queries now, so
 * the first request does not wait for the client's first metadata refresh.
 * @returns 0 when both topics are known, -1 otherwise (try again later).
 */
int gw_publish_warm_up(gw_publish *publish);

/** @brief Serves delivery reports. */
void gw_publish_poll(gw_publish *publish);

/** @brief Flushes for up to timeout_ms, then destroys. Accepts a zeroed struct. */
void gw_publish_close(gw_publish *publish, int timeout_ms);

#endif
