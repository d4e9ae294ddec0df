#include "wk_lanes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tk_ids.h"
#include "tk_kafka.h"
#include "tk_log.h"

#define QUEUE_CAPACITY 256

static wk_lane *lane_for(wk_lanes *lanes, const rd_kafka_message_t *message) {
    int is_query = strcmp(rd_kafka_topic_name(message->rkt), TK_TOPIC_QUERIES) == 0;
    /* Commands and queries of the same partition number go to different
     * lanes, so a slow list does not delay writes. */
    return &lanes->lanes[(message->partition * 2 + is_query) % lanes->count];
}

static rd_kafka_message_t *take_next(wk_lane *lane) {
    pthread_mutex_lock(&lane->lock);
    lane->is_busy = false;
    pthread_cond_broadcast(&lane->changed);
    while (lane->count == 0 && !atomic_load(&lane->owner->is_stopping)) pthread_cond_wait(&lane->changed, &lane->lock);
    rd_kafka_message_t *message = NULL;
    if (lane->count > 0 && !atomic_load(&lane->owner->is_stopping)) {
        message = lane->ring[lane->head];
        lane->head = (lane->head + 1) % lane->owner->queue_capacity;
        lane->count--;
        lane->is_busy = true;
        pthread_cond_broadcast(&lane->changed);
    }
    pthread_mutex_unlock(&lane->lock);
    return message;
}

static void *run_lane(void *arg) {
    wk_lane *lane = arg;
    wk_lanes *lanes = lane->owner;
    mongoc_client_t *client = wk_store_pop(lanes->store);
    wk_collections db = {wk_store_tickets(lanes->store, client), wk_store_idempotency_keys(lanes->store, client)};
    rd_kafka_message_t *message;
    while ((message = take_next(lane)) != NULL) {
        wk_process_message(&lanes->context, &db, &lane->progress, message);
        rd_kafka_message_destroy(message);
    }
    mongoc_collection_destroy(db.idempotency_keys);
    mongoc_collection_destroy(db.tickets);
    wk_store_push(lanes->store, client);
    return NULL;
}

static int lane_init(wk_lane *lane, wk_lanes *owner, rd_kafka_t *consumer) {
    memset(lane, 0, sizeof *lane);
    lane->owner = owner;
    lane->ring = calloc(owner->queue_capacity, sizeof *lane->ring);
    if (lane->ring == NULL) return -1;
    if (pthread_mutex_init(&lane->lock, NULL) != 0) goto fail_ring;
    if (pthread_cond_init(&lane->changed, NULL) != 0) goto fail_lock;
    if (wk_progress_init(&lane->progress, consumer) != 0) goto fail_cond;
    return 0;
fail_cond:
    pthread_cond_destroy(&lane->changed);
fail_lock:
    pthread_mutex_destroy(&lane->lock);
fail_ring:
    free(lane->ring);
    lane->ring = NULL;
    return -1;
}

static void lane_close(wk_lane *lane) {
    if (lane->ring == NULL) return;
    for (size_t i = 0; i < lane->count; i++)
        rd_kafka_message_destroy(lane->ring[(lane->head + i) % lane->owner->queue_capacity]);
    wk_progress_close(&lane->progress);
    pthread_cond_destroy(&lane->changed);
    pthread_mutex_destroy(&lane->lock);
    free(lane->ring);
    lane->ring = NULL;
}

int wk_lanes_start(wk_lanes *lanes, int count, wk_store *store, wk_output *output, rd_kafka_t *consumer, char *err,
                   size_t err_len) {
    memset(lanes, 0, sizeof *lanes);
    lanes->count = count;
    lanes->queue_capacity = QUEUE_CAPACITY;
    lanes->store = store;
    lanes->context.output = output;
    lanes->context.store = store;
    lanes->context.is_stopping = &lanes->is_stopping;
    lanes->lanes = calloc((size_t)count, sizeof *lanes->lanes);
    if (lanes->lanes == NULL) goto fail;
    for (int i = 0; i < count; i++) {
        if (lane_init(&lanes->lanes[i], lanes, consumer) != 0) goto fail;
        if (pthread_create(&lanes->lanes[i].thread, NULL, run_lane, &lanes->lanes[i]) != 0) goto fail;
        lanes->lanes[i].is_started = true;
    }
    return 0;
fail:
    snprintf(err, err_len, "cannot start %d worker lanes", count);
    wk_lanes_stop(lanes);
    return -1;
}

int wk_lanes_offer(wk_lanes *lanes, rd_kafka_message_t *message) {
    wk_lane *lane = lane_for(lanes, message);
    pthread_mutex_lock(&lane->lock);
    int rc = -1;
    if (lane->count < lanes->queue_capacity) {
        lane->ring[(lane->head + lane->count) % lanes->queue_capacity] = message;
        lane->count++;
        pthread_cond_broadcast(&lane->changed);
        rc = 0;
    }
    pthread_mutex_unlock(&lane->lock);
    return rc;
}

bool wk_lanes_wait_idle(wk_lanes *lanes, int timeout_ms) {
    int64_t deadline = tk_monotonic_ms() + timeout_ms;
    for (int i = 0; i < lanes->count; i++) {
        wk_lane *lane = &lanes->lanes[i];
        pthread_mutex_lock(&lane->lock);
        while ((lane->count > 0 || lane->is_busy) && tk_monotonic_ms() < deadline) {
            pthread_mutex_unlock(&lane->lock);
            usleep(10 * 1000);
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
    atomic_store(&lanes->is_stopping, true);
    for (int i = 0; i < lanes->count; i++) {
        wk_lane *lane = &lanes->lanes[i];
        if (lane->ring == NULL) continue;
        pthread_mutex_lock(&lane->lock);
        pthread_cond_broadcast(&lane->changed);
        pthread_mutex_unlock(&lane->lock);
        if (lane->is_started) pthread_join(lane->thread, NULL);
        lane_close(lane);
    }
    free(lanes->lanes);
    lanes->lanes = NULL;
    lanes->count = 0;
}
