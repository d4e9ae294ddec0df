/* wk_lanes — the worker's threads. Each lane owns a set of partitions (by
 * number), handles their messages in order with its own database client,
 * and tracks their offsets. Different partitions proceed in parallel. Which
 * partitions the worker owns right now is the fence: a revoke purges the
 * partitions' queued messages and ends their retries (wk_fence.h). */
#include "wk_lanes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tk_clock.h"
#include "tk_kafka.h"
#include "tk_log.h"
#include "wk_group.h"

#define QUEUE_CAPACITY 256
#define POLL_IDLE_US (10 * 1000)

int wk_lanes_lane_of(const wk_lanes *lanes, const char *topic, int32_t partition) {
    /* Commands go to the first write_count lanes, queries to the others.
     * Fewer write lanes make fuller batches: with the database near, one
     * insertMany and one produce request serve more creates, so less CPU
     * per create; with it far, more write lanes hide round trips. And a slow
     * list never delays a write. With every lane a write lane, queries are
     * shifted by half the lanes: command and query partitions of the same
     * number never share a lane. */
    bool is_query = strcmp(topic, TK_TOPIC_QUERIES) == 0;
    int writers = lanes->write_count > 0 && lanes->write_count < lanes->count ? lanes->write_count : lanes->count;
    if (is_query && writers < lanes->count) return writers + (int)(partition % (lanes->count - writers));
    int shift = is_query ? lanes->count / 2 : 0;
    return (int)((partition + shift) % writers);
}

static wk_lane *lane_for(wk_lanes *lanes, const rd_kafka_message_t *message) {
    return &lanes->lanes[wk_lanes_lane_of(lanes, rd_kafka_topic_name(message->rkt), message->partition)];
}

/* Notes the partitions of the batch in hand (revoke waits for them). Lock held. */
static void note_busy_locked(wk_lane *lane, size_t taken) {
    lane->busy_count = 0;
    for (size_t i = 0; i < taken; i++) {
        const char *topic = rd_kafka_topic_name(lane->batch[i].message->rkt);
        int32_t partition = lane->batch[i].message->partition;
        size_t seen = 0;
        while (seen < lane->busy_count &&
               (lane->busy[seen].partition != partition || strcmp(lane->busy[seen].topic, topic) != 0))
            seen++;
        if (seen < lane->busy_count) continue;
        snprintf(lane->busy[seen].topic, sizeof lane->busy[seen].topic, "%s", topic);
        lane->busy[seen].partition = partition;
        lane->busy_count++;
    }
}

/* Waits for work, then takes what the queue holds right now, up to
 * batch_max: a batch never waits for a message that is not there yet, so
 * one request alone costs what it did. @returns how many (0: stopping). */
static size_t take_batch(wk_lane *lane) {
    wk_lanes *lanes = lane->owner;
    pthread_mutex_lock(&lane->lock);
    lane->is_busy = false;
    lane->busy_count = 0;
    pthread_cond_broadcast(&lane->changed);
    while (lane->count == 0 && !atomic_load(&lanes->is_stopping)) pthread_cond_wait(&lane->changed, &lane->lock);
    size_t taken = 0;
    if (!atomic_load(&lanes->is_stopping)) {
        taken = wk_batch_take(lane->ring, lanes->queue_capacity, &lane->head, &lane->count, lane->batch,
                              lanes->batch_max);
        lane->is_busy = taken > 0;
        note_busy_locked(lane, taken);
        pthread_cond_broadcast(&lane->changed);
    }
    pthread_mutex_unlock(&lane->lock);
    return taken;
}

static void process_with_db(wk_lanes *lanes, const wk_collections *db, wk_progress *progress,
                            const rd_kafka_message_t *message, const wk_lease *lease) {
    wk_process_message(&lanes->context, db, progress, message, lease);
}

static void *run_lane(void *arg) {
    wk_lane *lane = arg;
    wk_lanes *lanes = lane->owner;
    mongoc_client_t *client = lanes->store != NULL ? wk_store_pop(lanes->store) : NULL;
    wk_collections db = {NULL, NULL};
    if (client != NULL) {
        db.tickets = wk_store_tickets(lanes->store, client);
        db.idempotency_keys = wk_store_idempotency_keys(lanes->store, client);
    }
    size_t taken;
    while ((taken = take_batch(lane)) > 0) {
        if (client != NULL) {
            wk_group_handle(&lanes->context, &db, &lane->progress, &lanes->fence, lane->batch, taken);
        } else {
            for (size_t i = 0; i < taken; i++) {
                wk_lane_slot *slot = &lane->batch[i];
                wk_lease lease = wk_batch_lease_of(&lanes->fence, slot);
                lanes->handle(lanes, &db, &lane->progress, slot->message, &lease);
            }
        }
        for (size_t i = 0; i < taken; i++) rd_kafka_message_destroy(lane->batch[i].message);
    }
    if (client != NULL) {
        mongoc_collection_destroy(db.idempotency_keys);
        mongoc_collection_destroy(db.tickets);
        wk_store_push(lanes->store, client);
    }
    return NULL;
}

/* The queue ring, the batch and the busy flags; NULL again (closing twice is harmless). */
static void lane_free_buffers(wk_lane *lane) {
    free(lane->busy);
    free(lane->batch);
    free(lane->ring);
    lane->ring = NULL;
    lane->batch = NULL;
    lane->busy = NULL;
}

static int lane_init(wk_lane *lane, wk_lanes *owner, rd_kafka_t *consumer) {
    memset(lane, 0, sizeof *lane);
    lane->owner = owner;
    lane->ring = calloc(owner->queue_capacity, sizeof *lane->ring);
    lane->batch = calloc(owner->batch_max, sizeof *lane->batch);
    lane->busy = calloc(owner->batch_max, sizeof *lane->busy);
    if (lane->ring == NULL || lane->batch == NULL || lane->busy == NULL) goto fail_ring;
    if (pthread_mutex_init(&lane->lock, NULL) != 0) goto fail_ring;
    if (pthread_cond_init(&lane->changed, NULL) != 0) goto fail_lock;
    if (wk_progress_init(&lane->progress, consumer) != 0) goto fail_cond;
    return 0;
fail_cond:
    pthread_cond_destroy(&lane->changed);
fail_lock:
    pthread_mutex_destroy(&lane->lock);
fail_ring:
    lane_free_buffers(lane);
    return -1;
}

/* Drops the queued messages (unstored). The thread has ended. */
static void lane_drop_queue(wk_lane *lane) {
    for (size_t i = 0; i < lane->count; i++)
        rd_kafka_message_destroy(lane->ring[(lane->head + i) % lane->owner->queue_capacity].message);
    lane->count = 0;
}

static void lane_close(wk_lane *lane) {
    if (lane->ring == NULL) return;
    lane_drop_queue(lane);
    wk_progress_close(&lane->progress);
    pthread_cond_destroy(&lane->changed);
    pthread_mutex_destroy(&lane->lock);
    lane_free_buffers(lane);
}

/* Starts count threads; lanes' other fields are set already. */
static int start_threads(wk_lanes *lanes, int count, rd_kafka_t *consumer, char *err, size_t err_len) {
    if (wk_fence_init(&lanes->fence) != 0) goto fail;
    lanes->lanes = calloc((size_t)count, sizeof *lanes->lanes);
    if (lanes->lanes == NULL) goto fail;
    lanes->count = count;
    for (int i = 0; i < count; i++) {
        if (lane_init(&lanes->lanes[i], lanes, consumer) != 0) goto fail;
        if (pthread_create(&lanes->lanes[i].thread, NULL, run_lane, &lanes->lanes[i]) != 0) goto fail;
        lanes->lanes[i].is_started = true;
    }
    return 0;
fail:
    snprintf(err, err_len, "cannot start %d worker lanes", count);
    wk_lanes_stop(lanes);
    wk_lanes_free(lanes);
    return -1;
}

int wk_lanes_start_with(wk_lanes *lanes, int count, size_t queue_capacity, wk_lane_handler handle, void *handler_ctx,
                        rd_kafka_t *consumer, char *err, size_t err_len) {
    memset(lanes, 0, sizeof *lanes);
    lanes->queue_capacity = queue_capacity;
    lanes->batch_max = 1;
    lanes->handle = handle;
    lanes->handler_ctx = handler_ctx;
    return start_threads(lanes, count, consumer, err, err_len);
}

int wk_lanes_start(wk_lanes *lanes, const wk_lanes_shape *shape, wk_store *store, wk_output *output,
                   rd_kafka_t *consumer, char *err, size_t err_len) {
    memset(lanes, 0, sizeof *lanes);
    lanes->queue_capacity = QUEUE_CAPACITY;
    size_t batch_max = shape->batch_max;
    lanes->batch_max = batch_max < 1 ? 1 : batch_max > QUEUE_CAPACITY ? QUEUE_CAPACITY : batch_max;
    lanes->write_count = shape->write_count;
    lanes->handle = process_with_db;
    lanes->store = store;
    lanes->context.output = output;
    lanes->context.store = store;
    lanes->context.is_stopping = &lanes->is_stopping;
    return start_threads(lanes, shape->count, consumer, err, err_len);
}

int wk_lanes_offer(wk_lanes *lanes, rd_kafka_message_t *message) {
    uint64_t epoch = wk_fence_epoch(&lanes->fence, rd_kafka_topic_name(message->rkt), message->partition);
    if (epoch == 0) { /* revoked since it was fetched: the next owner reads it again */
        rd_kafka_message_destroy(message);
        return 0;
    }
    wk_lane *lane = lane_for(lanes, message);
    pthread_mutex_lock(&lane->lock);
    int rc = -1;
    if (lane->count < lanes->queue_capacity) {
        lane->ring[(lane->head + lane->count) % lanes->queue_capacity] = (wk_lane_slot){message, epoch};
        lane->count++;
        pthread_cond_broadcast(&lane->changed);
        rc = 0;
    }
    pthread_mutex_unlock(&lane->lock);
    return rc;
}

void wk_lanes_assign(wk_lanes *lanes, const rd_kafka_topic_partition_list_t *partitions) {
    for (int i = 0; i < partitions->cnt; i++) {
        if (wk_fence_assign(&lanes->fence, partitions->elems[i].topic, partitions->elems[i].partition) == 0)
            tk_log_fields(TK_LOG_ERROR, "out of memory recording a partition, its messages are skipped",
                          json_pack("{s:s, s:i}", "topic", partitions->elems[i].topic, "partition",
                                    (int)partitions->elems[i].partition));
    }
}

static bool is_listed(const rd_kafka_topic_partition_list_t *partitions, const char *topic, int32_t partition) {
    return rd_kafka_topic_partition_list_find(partitions, topic, partition) != NULL;
}

/* Removes the queued messages of partitions, keeping the others in order. Lock held. */
static size_t purge_locked(wk_lane *lane, const rd_kafka_topic_partition_list_t *partitions) {
    size_t capacity = lane->owner->queue_capacity, kept = 0, purged = 0;
    for (size_t i = 0; i < lane->count; i++) {
        wk_lane_slot slot = lane->ring[(lane->head + i) % capacity];
        if (is_listed(partitions, rd_kafka_topic_name(slot.message->rkt), slot.message->partition)) {
            rd_kafka_message_destroy(slot.message);
            purged++;
        } else {
            lane->ring[(lane->head + kept++) % capacity] = slot;
        }
    }
    lane->count = kept;
    return purged;
}

static bool is_busy_on(wk_lane *lane, const rd_kafka_topic_partition_list_t *partitions) {
    if (!lane->is_busy) return false;
    for (size_t i = 0; i < lane->busy_count; i++)
        if (is_listed(partitions, lane->busy[i].topic, lane->busy[i].partition)) return true;
    return false;
}

bool wk_lanes_revoke(wk_lanes *lanes, const rd_kafka_topic_partition_list_t *partitions, int drain_ms, int fence_ms) {
    if (lanes->lanes == NULL) return true;
    /* Finish what is in flight so its offsets are committed before the
     * partitions move: the next owner then repeats as little as possible. */
    if (!atomic_load(&lanes->is_stopping) && !wk_lanes_wait_idle(lanes, drain_ms))
        tk_log_fields(TK_LOG_WARN, "revoke drain timed out, fencing the partitions", NULL);
    for (int i = 0; i < partitions->cnt; i++)
        wk_fence_revoke(&lanes->fence, partitions->elems[i].topic, partitions->elems[i].partition);
    size_t purged = 0;
    for (int i = 0; i < lanes->count; i++) {
        pthread_mutex_lock(&lanes->lanes[i].lock);
        purged += purge_locked(&lanes->lanes[i], partitions);
        pthread_cond_broadcast(&lanes->lanes[i].changed);
        pthread_mutex_unlock(&lanes->lanes[i].lock);
    }
    if (purged > 0)
        tk_log_fields(TK_LOG_INFO, "queued messages of revoked partitions dropped",
                      json_pack("{s:I}", "count", (json_int_t)purged));
    /* A write that started before the fence is on the wire: let it return
     * (maxTimeMS and the socket timeout bound it) before the next owner
     * may start, so two writers never overlap on FerretDB. */
    int64_t deadline = tk_monotonic_ms() + fence_ms;
    bool is_clear = true;
    for (int i = 0; i < lanes->count; i++) {
        wk_lane *lane = &lanes->lanes[i];
        pthread_mutex_lock(&lane->lock);
        while (is_busy_on(lane, partitions) && tk_monotonic_ms() < deadline) {
            pthread_mutex_unlock(&lane->lock);
            usleep(POLL_IDLE_US);
            pthread_mutex_lock(&lane->lock);
        }
        if (is_busy_on(lane, partitions)) is_clear = false;
        pthread_mutex_unlock(&lane->lock);
    }
    if (!is_clear) tk_log_fields(TK_LOG_WARN, "a write of a revoked partition is still under way", NULL);
    return is_clear;
}

bool wk_lanes_wait_idle(wk_lanes *lanes, int timeout_ms) {
    int64_t deadline = tk_monotonic_ms() + timeout_ms;
    for (int i = 0; i < lanes->count; i++) {
        wk_lane *lane = &lanes->lanes[i];
        pthread_mutex_lock(&lane->lock);
        while ((lane->count > 0 || lane->is_busy) && tk_monotonic_ms() < deadline) {
            pthread_mutex_unlock(&lane->lock);
            usleep(POLL_IDLE_US);
            pthread_mutex_lock(&lane->lock);
        }
        pthread_mutex_unlock(&lane->lock);
        int64_t left = deadline - tk_monotonic_ms();
        if (!wk_progress_wait_drained(&lane->progress, left > 0 ? (int)left : 0)) return false;
    }
    return tk_monotonic_ms() <= deadline;
}

void wk_lanes_stop(wk_lanes *lanes) {
    if (lanes->lanes == NULL) return;
    /* Both flags before any join: a lane in a retry loop or blocked on a
     * full producer queue sees them and returns. */
    atomic_store(&lanes->is_stopping, true);
    if (lanes->context.output != NULL) wk_output_stop_waiting(lanes->context.output);
    for (int i = 0; i < lanes->count; i++) {
        wk_lane *lane = &lanes->lanes[i];
        if (lane->ring == NULL) continue;
        pthread_mutex_lock(&lane->lock);
        pthread_cond_broadcast(&lane->changed);
        pthread_mutex_unlock(&lane->lock);
        if (lane->is_started) pthread_join(lane->thread, NULL);
        lane->is_started = false;
        lane_drop_queue(lane);
    }
}

void wk_lanes_free(wk_lanes *lanes) {
    if (lanes->lanes != NULL) {
        for (int i = 0; i < lanes->count; i++) lane_close(&lanes->lanes[i]);
        free(lanes->lanes);
    }
    lanes->lanes = NULL;
    lanes->count = 0;
    wk_fence_close(&lanes->fence);
}
