/* wk_process — one consumed message from start to finish: validate (or
 * dead-letter), apply with retries, answer, announce, and mark it done. */
#ifndef WK_PROCESS_H
#define WK_PROCESS_H

#include <librdkafka/rdkafka.h>
#include <mongoc/mongoc.h>
#include <stdatomic.h>

#include "wk_fence.h"
#include "wk_output.h"
#include "wk_progress.h"
#include "wk_share.h"
#include "wk_store.h"
#include "wk_tickets.h"

/** A lane's handles on the collections (its own client's). */
typedef struct {
    mongoc_collection_t *tickets;
    mongoc_collection_t *idempotency_keys;
} wk_collections;

/** What every lane shares. */
typedef struct {
    wk_output *output;
    wk_store *store;
    const atomic_bool *is_stopping;
} wk_process_context;

/**
 * @brief Handles message completely. Database outages are retried with
 * backoff until they pass, the worker stops or lease stops holding; a message
 * abandoned that way keeps its offset unstored so it is delivered again (to
 * the partition's next owner). No write starts once lease no longer holds.
 */
void wk_process_message(const wk_process_context *context, const wk_collections *db, wk_progress *progress,
                        const rd_kafka_message_t *message, const wk_lease *lease);

/**
 * @brief wk_process_message for a member of a batch: a query byte for byte
 * the same as the one share kept is answered from that read (wk_share.h),
 * after its own verification and expiry check; share may be NULL.
 */
void wk_process_message_shared(const wk_process_context *context, const wk_collections *db, wk_progress *progress,
                               const rd_kafka_message_t *message, const wk_lease *lease, wk_share *share);

/**
 * @brief The last step of a message a batch applied together with others
 * (wk_group): answers with result, publishes its events, counts it as
 * handled since started_us and stores the offset once all are acknowledged.
 * Borrows request and result.
 */
void wk_process_finish(const wk_process_context *context, wk_progress *progress, const rd_kafka_message_t *message,
                       const tk_request *request, const wk_result *result, int64_t started_us);

#endif
