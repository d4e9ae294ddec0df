/* wk_batch — group commit, the parts that need no database: taking a batch
 * off a lane's queue, cutting it into groups that keep the partition's order
 * (a run of plain creates goes to the database as one unordered insertMany,
 * a run of plain replies to distinct tickets as one unordered update;
 * everything else is handled alone, as before), and reading each bulk
 * write's answer into one fate per member. */
#ifndef WK_BATCH_H
#define WK_BATCH_H

#include <librdkafka/rdkafka.h>
#include <mongoc/mongoc.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tk_envelope.h"
#include "wk_fence.h"

#define WK_BATCH_MAX_DEFAULT 256

/** A queued message and the epoch of its partition when it was queued. */
typedef struct {
    rd_kafka_message_t *message;
    uint64_t epoch;
} wk_lane_slot;

/** How one message of a batch is handled. */
typedef enum {
    WK_BATCH_ALONE = 0, /* the one-message path: queries, updates, keyed commands, poison (dead-lettered there) */
    WK_BATCH_CREATE,    /* a valid create without Idempotency-Key: joins its run's insertMany */
    WK_BATCH_REPLY,     /* a valid reply without Idempotency-Key: joins its run's update */
} wk_batch_kind;

/** What a bulk write did with one member. */
typedef enum {
    WK_FATE_APPLIED = 0,     /* written: answer and announce */
    WK_FATE_ALREADY_APPLIED, /* create's duplicate key: seen before, answer as the first time (or 409) */
    WK_FATE_ALONE,           /* anything else: the one-message path decides (retry, 500, fence, repeat) */
} wk_batch_fate;

/**
 * @brief Moves up to max slots from the head of a ring (capacity slots,
 * *head and *count updated) into out, in queue order. Never waits.
 * @returns how many were taken (0 when the ring is empty or max is 0).
 */
size_t wk_batch_take(wk_lane_slot *ring, size_t capacity, size_t *head, size_t *count, wk_lane_slot *out, size_t max);

/**
 * @returns WK_BATCH_CREATE (WK_BATCH_REPLY) for a parsed (parse_rc 0) create
 * (reply) without an idempotency key, else WK_BATCH_ALONE.
 */
wk_batch_kind wk_batch_kind_of(int parse_rc, const tk_request *request);

/**
 * @brief The group that starts at start: a run of consecutive creates, a run
 * of consecutive replies to distinct tickets (a second reply to a ticket
 * starts the next group), or one message handled alone. Groups in order keep
 * the partition's order, and each ticket's. requests[i].ticket_id is read for
 * replies only.
 * @returns the index after the group's last member (start < end <= count).
 */
size_t wk_batch_group_end(const wk_batch_kind *kinds, const tk_request *requests, size_t count, size_t start);

/** @returns the lease of slot's partition at the epoch it was queued with. */
wk_lease wk_batch_lease_of(wk_fence *fence, const wk_lane_slot *slot);

/**
 * @brief Reads an unordered insertMany of count documents (is_ok, its reply
 * and error) into fates[0..count). A duplicate key (11000) is ALREADY_APPLIED,
 * any other write error ALONE; a failure with no per-document errors (network,
 * timeout: the outcome is unknown) makes every member ALONE.
 */
void wk_batch_classify(bool is_ok, const bson_t *reply, size_t count, wk_batch_fate *fates);

/**
 * @brief Reads an unordered update command of count conditional statements
 * (is_ok, its reply) into fates[0..count): APPLIED only when certain, i.e.
 * no write error and the matched count "n" equals the statements without
 * one. Anything short (a condition failed somewhere, and the answer does not
 * say where), a write error, a write concern error or a failed command makes
 * those members ALONE: the one-message path reads again and decides.
 */
void wk_batch_classify_updates(bool is_ok, const bson_t *reply, size_t count, wk_batch_fate *fates);

#endif
