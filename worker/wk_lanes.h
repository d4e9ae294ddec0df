/* wk_lanes — the worker's threads. Each lane owns a set of partitions (by
 * number), handles their messages in order with its own database client,
 * and tracks their offsets. Different partitions proceed in parallel. Which
 * partitions the worker owns right now is the fence: a revoke purges the
 * partitions' queued messages and ends their retries (wk_fence.h). */
#ifndef WK_LANES_H
#define WK_LANES_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "wk_batch.h"
#include "wk_fence.h"
#include "wk_process.h"
#include "wk_progress.h"
#include "wk_store.h"

typedef struct wk_lanes wk_lanes;

/** Handles one message on a lane's thread (wk_process_message, or a test's). */
typedef void (*wk_lane_handler)(wk_lanes *lanes, const wk_collections *db, wk_progress *progress,
                                const rd_kafka_message_t *message, const wk_lease *lease);

/** A partition a lane has messages of in hand. */
typedef struct {
    char topic[WK_TOPIC_NAME_MAX + 1];
    int32_t partition;
} wk_lane_partition;

typedef struct {
    wk_lanes *owner;
    pthread_t thread;
    bool is_started;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    wk_lane_slot *ring;
    size_t head, count;
    bool is_busy;
    wk_lane_slot *batch;     /* the messages in hand (batch_max) */
    wk_lane_partition *busy; /* their partitions, while is_busy (batch_max) */
    size_t busy_count;
    wk_progress progress;
} wk_lane;

struct wk_lanes {
    wk_lane *lanes;
    int count;
    int write_count; /* lanes that apply commands (the first ones); 0 or >= count: every lane */
    size_t queue_capacity;
    size_t batch_max; /* messages a lane takes at once (group commit); 1 = one by one */
    wk_store *store;  /* NULL: no database client per lane (tests) */
    wk_process_context context;
    wk_lane_handler handle;
    void *handler_ctx; /* for a test's handler */
    wk_fence fence;
    atomic_bool is_stopping;
};

/** How many lanes, and how they take work. */
typedef struct {
    int count;        /* WORKER_THREADS */
    int write_count;  /* WORKER_WRITE_LANES: lanes that apply commands; 0 or >= count: every lane */
    size_t batch_max; /* WORKER_BATCH_MAX */
} wk_lanes_shape;

/**
 * @brief Starts shape->count lanes; offsets are stored on consumer. Each lane
 * takes up to batch_max ready messages at once and applies them with group
 * commit (wk_group.h); 1 handles them one by one.
 * @returns 0, or -1 with err (nothing left running).
 */
int wk_lanes_start(wk_lanes *lanes, const wk_lanes_shape *shape, wk_store *store, wk_output *output,
                   rd_kafka_t *consumer, char *err, size_t err_len);

/**
 * @brief As wk_lanes_start, without a database: each message goes to handle
 * (handler_ctx is lanes->handler_ctx). For tests. @returns 0, or -1 with err.
 */
int wk_lanes_start_with(wk_lanes *lanes, int count, size_t queue_capacity, wk_lane_handler handle, void *handler_ctx,
                        rd_kafka_t *consumer, char *err, size_t err_len);

/** @returns the index of the lane that handles topic/partition. */
int wk_lanes_lane_of(const wk_lanes *lanes, const char *topic, int32_t partition);

/**
 * @brief Hands message to the lane of its partition. Takes ownership on
 * success; a message of a partition not owned (revoked meanwhile) is
 * destroyed and counts as taken (the owner reads it again).
 * @returns 0, or -1 when that lane's queue is full (ownership stays).
 */
int wk_lanes_offer(wk_lanes *lanes, rd_kafka_message_t *message);

/** @brief The partitions are ours from now on (a new epoch each). */
void wk_lanes_assign(wk_lanes *lanes, const rd_kafka_topic_partition_list_t *partitions);

/**
 * @brief The partitions are leaving: waits up to drain_ms for in-flight work
 * (so its offsets are stored), then fences them: their queued messages are
 * purged unstored, their retry loops end, no write starts for them, and it
 * waits up to fence_ms for a write already under way to return.
 * @returns true when nothing of theirs is in hand any more.
 */
bool wk_lanes_revoke(wk_lanes *lanes, const rd_kafka_topic_partition_list_t *partitions, int drain_ms, int fence_ms);

/** @brief Waits up to timeout_ms for empty queues and no message in flight. @returns true when idle. */
bool wk_lanes_wait_idle(wk_lanes *lanes, int timeout_ms);

/**
 * @brief Stops the threads after their current message (a lane blocked on a
 * full producer queue is released first) and drops the queued messages
 * unstored. The progress records stay until wk_lanes_free, for the delivery
 * reports still to come: close the output in between. Accepts a zeroed struct.
 */
void wk_lanes_stop(wk_lanes *lanes);

/** @brief Frees what wk_lanes_stop left (progress records, fence). Accepts a zeroed struct. */
void wk_lanes_free(wk_lanes *lanes);

#endif
