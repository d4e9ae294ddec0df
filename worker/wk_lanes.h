/* wk_lanes — the worker's threads. Each lane owns a set of partitions (by
 * number), handles their messages in order with its own database client,
 * and tracks their offsets. Different partitions proceed in parallel. */
#ifndef WK_LANES_H
#define WK_LANES_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "wk_process.h"
#include "wk_progress.h"
#include "wk_store.h"

typedef struct wk_lanes wk_lanes;

typedef struct {
    wk_lanes *owner;
    pthread_t thread;
    bool is_started;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    rd_kafka_message_t **ring;
    size_t head, count;
    bool is_busy;
    wk_progress progress;
} wk_lane;

struct wk_lanes {
    wk_lane *lanes;
    int count;
    size_t queue_capacity;
    wk_store *store;
    wk_process_context context;
    atomic_bool is_stopping;
};

/**
 * @brief Starts count lanes; offsets are stored on consumer.
 * @returns 0, or -1 with err (nothing left running).
 */
int wk_lanes_start(wk_lanes *lanes, int count, wk_store *store, wk_output *output, rd_kafka_t *consumer, char *err,
                   size_t err_len);

/**
 * @brief Hands message to the lane of its partition. Takes ownership on success.
 * @returns 0, or -1 when that lane's queue is full (ownership stays).
 */
int wk_lanes_offer(wk_lanes *lanes, rd_kafka_message_t *message);

/** @brief Waits up to timeout_ms for empty queues and no message in flight. @returns true when idle. */
bool wk_lanes_wait_idle(wk_lanes *lanes, int timeout_ms);

/** @brief Stops the threads after their current message; queued messages are dropped unstored. */
void wk_lanes_stop(wk_lanes *lanes);

#endif
