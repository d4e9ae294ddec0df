/* wk_consumer — membership of the worker group on ticket.commands and
 * ticket.queries: rebalances, and feeding the lanes without losing order
 * when they are full (the partitions pause instead). */
#ifndef WK_CONSUMER_H
#define WK_CONSUMER_H

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "tk_config.h"
#include "wk_lanes.h"

typedef struct {
    rd_kafka_t *consumer;
    wk_lanes *lanes;               /* set by wk_consumer_run */
    rd_kafka_message_t **overflow; /* polled but not yet taken by a lane, in order */
    size_t overflow_count, overflow_capacity;
    uint64_t paused_lanes;     /* bit i: the partitions of lane i are paused (WORKER_THREADS <= 64) */
    bool must_repause;         /* the assignment changed: apply every partition's pause state again */
    atomic_int assigned_count; /* partitions held now (readiness) */
} wk_consumer;

/** @returns true while the worker holds at least one partition. */
bool wk_consumer_has_assignment(wk_consumer *consumer);

/** @brief Creates the group consumer (not subscribed yet). @returns 0, or -1 with err. */
int wk_consumer_init(wk_consumer *consumer, const tk_worker_config *config, char *err, size_t err_len);

/**
 * @brief Subscribes and feeds lanes until *stop_requested or fatal is_broken().
 * @returns 0 on a requested stop, -1 on a fatal error.
 */
int wk_consumer_run(wk_consumer *consumer, wk_lanes *lanes, volatile int *stop_requested, bool (*is_broken)(void *),
                    void *broken_ctx);

/** @brief Commits stored offsets, leaves the group, destroys. Accepts a zeroed struct. */
void wk_consumer_close(wk_consumer *consumer);

#endif
