/* wk_batch — group commit, the parts that need no database: taking a batch
 * off a lane's queue, cutting it into groups that keep the partition's order
 * (a run of plain creates goes to the database as one unordered insertMany;
 * everything else is handled alone, as before), and reading insertMany's
 * answer into one fate per create. */
#ifndef WK_BATCH_H
#define WK_BATCH_H

#include <librdkafka/rdkafka.h>
#include <mongoc/mongoc.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tk_envelope.h"

#define WK_BATCH_MAX_DEFAULT 256

/** A queued message and the epoch of its partition when it was queued. */
typedef struct {
    rd_kafka_message_t *message;
    uint64_t epoch;
} wk_lane_slot;

/** How one message of a batch is handled. */
typedef enum {
    WK_BATCH_ALONE = 0, /* the one-message path: queries, replies, keyed creates, poison (dead-lettered there) */
    WK_BATCH_CREATE,    /* a valid create without Idempotency-Key: joins its run's insertMany */
} wk_batch_kind;

/** What insertMany did with one create. */
typedef enum {
    WK_FATE_APPLIED = 0,     /* inserted: answer 201 and announce */
    WK_FATE_ALREADY_APPLIED, /* duplicate key: seen before, answer as the first time (or 409) */
    WK_FATE_ALONE,           /* anything else: the one-message path decides (retry, 500, fence) */
} wk_batch_fate;

/**
 * @brief Moves up to max slots from the head of a ring (capacity slots,
 * *head and *count updated) into out, in queue order. Never waits.
 * @returns how many were taken (0 when the ring is empty or max is 0).
 */
size_t wk_batch_take(wk_lane_slot *ring, size_t capacity, size_t *head, size_t *count, wk_lane_slot *out, size_t max);

/** @returns WK_BATCH_CREATE for a parsed (parse_rc 0) create without an idempotency key, else WK_BATCH_ALONE. */
wk_batch_kind wk_batch_kind_of(int parse_rc, const tk_request *request);

/**
 * @brief The group that starts at start: a run of consecutive creates, or one
 * message handled alone. Groups in order keep the partition's order.
 * @returns the index after the group's last member (start < end <= count).
 */
size_t wk_batch_group_end(const wk_batch_kind *kinds, size_t count, size_t start);

/**
 * @brief Reads an unordered insertMany of count documents (is_ok, its reply
 * and error) into fates[0..count). A duplicate key (11000) is ALREADY_APPLIED,
 * any other write error ALONE; a failure with no per-document errors (network,
 * timeout: the outcome is unknown) makes every member ALONE.
 */
void wk_batch_classify(bool is_ok, const bson_t *reply, size_t count, wk_batch_fate *fates);

#endif
