/* gw_replies — the thread that reads this gateway's partition of
 * ticket.replies, reassembles chunks, matches replies to waiting requests and
 * expires deadlines. */
#ifndef GW_REPLIES_H
#define GW_REPLIES_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "gw_pending.h"
#include "gw_publish.h"

/** Answers a request taken from the table. Takes ownership of body (JSON text). */
typedef void (*gw_replies_complete_fn)(gw_pending_entry *entry, int status, char *body, size_t len, void *ctx);

typedef struct {
    rd_kafka_t *consumer;
    int partition;
    gw_pending *pending;
    gw_publish *publish; /* its delivery reports are served from this thread */
    gw_replies_complete_fn complete;
    void *ctx;
    pthread_t thread;
    bool is_thread_started;
    atomic_bool is_ready;
    atomic_bool is_stopping;
    struct tk_series *late_replies; /* metrics */
    struct tk_series *timeouts;
} gw_replies;

/**
 * @brief Creates the consumer and starts the thread, which becomes ready once
 * its partition is assigned at a known offset.
 * @returns 0, or -1 with err.
 */
int gw_replies_start(gw_replies *replies, const char *brokers, int partition, gw_pending *pending,
                     gw_publish *publish, gw_replies_complete_fn complete, void *ctx, char *err, size_t err_len);

/** @returns true once replies sent from now on will be seen. */
bool gw_replies_is_ready(gw_replies *replies);

/** @brief Stops the thread and destroys the consumer. Accepts a zeroed struct. */
void gw_replies_stop(gw_replies *replies);

#endif
