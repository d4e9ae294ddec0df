/* wk_group — a lane's batch applied in as few database round trips as the
 * partition order allows. */
#include "wk_group.h"

#include <stdlib.h>
#include <string.h>

#include "tk_clock.h"
#include "tk_ids.h"
#include "tk_kafka.h"
#include "tk_log.h"
#include "wk_metrics.h"
#include "wk_replies_bulk.h"
#include "wk_tickets.h"
#include "wk_verify.h"

/* A run's bookkeeping: the documents sent and which member each one is. */
typedef struct {
    bson_t **documents;
    size_t *member_of;           /* documents[d] belongs to member member_of[d] */
    wk_batch_fate *fates;        /* per document */
    wk_batch_fate *member_fates; /* per member; ALONE unless its document was settled */
    size_t sent;
    int64_t started_us; /* when the run was taken up: each member's handling time starts there */
} create_run;

static int run_init(create_run *run, size_t count) {
    memset(run, 0, sizeof *run);
    run->documents = calloc(count, sizeof *run->documents);
    run->member_of = calloc(count, sizeof *run->member_of);
    run->fates = calloc(count, sizeof *run->fates);
    run->member_fates = calloc(count, sizeof *run->member_fates);
    if (run->documents == NULL || run->member_of == NULL || run->fates == NULL || run->member_fates == NULL) return -1;
    for (size_t i = 0; i < count; i++) run->member_fates[i] = WK_FATE_ALONE;
    return 0;
}

static void run_close(create_run *run) {
    for (size_t d = 0; d < run->sent; d++) bson_destroy(run->documents[d]);
    free(run->member_fates);
    free(run->fates);
    free(run->member_of);
    free(run->documents);
}

/* Sends the documents of the members whose lease holds right now (a fenced
 * member goes alone and is abandoned there) as one unordered insertMany. */
static void insert_run(const wk_process_context *context, const wk_collections *db, wk_fence *fence,
                       const wk_lane_slot *slots, const tk_request *requests, size_t count, create_run *run) {
    int64_t now = tk_now_ms();
    run->started_us = tk_monotonic_us();
    for (size_t i = 0; i < count; i++) {
        wk_lease lease = wk_batch_lease_of(fence, &slots[i]);
        if (!wk_lease_holds(&lease)) continue;
        run->documents[run->sent] = wk_tickets_create_document_new(&requests[i], now);
        run->member_of[run->sent++] = i;
    }
    if (run->sent == 0) return;
    bson_error_t error;
    bson_t reply;
    bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false));
    int64_t started_us = tk_monotonic_us();
    bool is_ok = mongoc_collection_insert_many(db->tickets, (const bson_t **)run->documents, run->sent, opts, &reply,
                                               &error);
    /* Each create waited for the whole round trip: one observation each. */
    double seconds = (double)(tk_monotonic_us() - started_us) / 1e6;
    for (size_t d = 0; d < run->sent; d++) wk_metrics_db_duration(TK_REQUEST_TICKET_CREATE, seconds);
    wk_batch_classify(is_ok, &reply, run->sent, run->fates);
    size_t alone = 0;
    for (size_t d = 0; d < run->sent; d++) alone += run->fates[d] == WK_FATE_ALONE;
    if (alone == 0) atomic_store(&context->store->is_reachable, true);
    if (alone == 0 && tk_log_enabled(TK_LOG_DEBUG)) /* duplicates are repeats, not trouble */
        tk_log_fields(TK_LOG_DEBUG, "batched insert",
                      json_pack("{s:I, s:b}", "documents", (json_int_t)run->sent, "hasRepeats", !is_ok));
    if (alone > 0)
        tk_log_fields(TK_LOG_WARN, "batched insert incomplete, the rest go one by one",
                      json_pack("{s:I, s:I, s:i, s:s}", "documents", (json_int_t)run->sent, "alone", (json_int_t)alone,
                                "code", (int)error.code, "error", error.message));
    for (size_t d = 0; d < run->sent; d++) run->member_fates[run->member_of[d]] = run->fates[d];
    bson_destroy(&reply);
    bson_destroy(opts);
}

static const bson_t *document_of(const create_run *run, size_t member) {
    for (size_t d = 0; d < run->sent; d++)
        if (run->member_of[d] == member) return run->documents[d];
    return NULL;
}

/* Answers and announces a settled create. @returns false when the answer
 * needs a read that failed for now: the caller sends it the one-message way. */
static bool finish_create(const wk_process_context *context, const wk_collections *db, wk_progress *progress,
                          const rd_kafka_message_t *message, const tk_request *request, const bson_t *document,
                          wk_batch_fate fate, int64_t started_us) {
    wk_result result;
    wk_outcome rc = fate == WK_FATE_APPLIED ? wk_tickets_answer_created(document, request->ticket_id, &result)
                                            : wk_tickets_answer_repeated_create(db->tickets, request, &result);
    if (rc != WK_DONE) return false;
    if (fate == WK_FATE_APPLIED) wk_recent_put(context->store->recent, document);
    wk_process_finish(context, progress, message, request, &result, started_us);
    wk_result_close(&result);
    return true;
}

static void handle_alone(const wk_process_context *context, const wk_collections *db, wk_progress *progress,
                         wk_fence *fence, const wk_lane_slot *slot) {
    wk_lease lease = wk_batch_lease_of(fence, slot);
    wk_process_message(context, db, progress, slot->message, &lease);
}

/* A member handled alone; a query may be answered from an identical one's
 * read. A write in between ends the sharing: later reads read again. */
static void handle_member(const wk_process_context *context, const wk_collections *db, wk_progress *progress,
                          wk_fence *fence, const wk_lane_slot *slot, wk_share *share) {
    if (strcmp(rd_kafka_topic_name(slot->message->rkt), TK_TOPIC_QUERIES) != 0) {
        wk_share_clear(share);
        handle_alone(context, db, progress, fence, slot);
        return;
    }
    wk_lease lease = wk_batch_lease_of(fence, slot);
    wk_process_message_shared(context, db, progress, slot->message, &lease, share);
}

/* A run of count creates: one insertMany, then each member in order. */
static void commit_creates(const wk_process_context *context, const wk_collections *db, wk_progress *progress,
                           wk_fence *fence, const wk_lane_slot *slots, const tk_request *requests, size_t count) {
    create_run run;
    if (run_init(&run, count) == 0) insert_run(context, db, fence, slots, requests, count, &run);
    for (size_t i = 0; i < count; i++) {
        wk_batch_fate fate = run.member_fates != NULL ? run.member_fates[i] : WK_FATE_ALONE;
        bool is_done = fate != WK_FATE_ALONE && finish_create(context, db, progress, slots[i].message, &requests[i],
                                                              document_of(&run, i), fate, run.started_us);
        if (!is_done) handle_alone(context, db, progress, fence, &slots[i]);
    }
    run_close(&run);
}

/* Parses each message to learn its kind; creates and replies keep their request. */
static void classify_members(const wk_lane_slot *slots, size_t count, tk_request *requests, wk_batch_kind *kinds) {
    char reason[TK_ERROR_TEXT_MAX];
    for (size_t i = 0; i < count; i++) {
        const rd_kafka_message_t *message = slots[i].message;
        bool is_command = strcmp(rd_kafka_topic_name(message->rkt), TK_TOPIC_COMMANDS) == 0;
        wk_address address;
        wk_address_from_message(message, &address);
        /* Unsigned, forged or aimed at a foreign reply address: alone, so
         * the one-message path dead-letters it and nothing is applied. */
        if (is_command && wk_verify_message(message, &address, reason, sizeof reason) != 0) is_command = false;
        int parse_rc = is_command
                           ? tk_request_parse(message->payload, message->len, &requests[i], reason, sizeof reason)
                           : -1;
        if (parse_rc != 0) memset(&requests[i], 0, sizeof requests[i]);
        kinds[i] = wk_batch_kind_of(parse_rc, &requests[i]);
        if (parse_rc == 0 && kinds[i] == WK_BATCH_ALONE) tk_request_close(&requests[i]);
    }
}

void wk_group_handle(const wk_process_context *context, const wk_collections *db, wk_progress *progress,
                     wk_fence *fence, const wk_lane_slot *slots, size_t count) {
    tk_request *requests = count > 1 ? calloc(count, sizeof *requests) : NULL;
    wk_batch_kind *kinds = count > 1 ? calloc(count, sizeof *kinds) : NULL;
    if (requests == NULL || kinds == NULL) { /* one message, or no memory to group: one by one */
        for (size_t i = 0; i < count; i++) handle_alone(context, db, progress, fence, &slots[i]);
        goto cleanup;
    }
    classify_members(slots, count, requests, kinds);
    bool has_bulk_replies = atomic_load(&context->store->has_bulk_replies);
    wk_share share;
    wk_share_init(&share);
    for (size_t start = 0, end; start < count; start = end) {
        end = kinds[start] == WK_BATCH_REPLY && !has_bulk_replies ? start + 1
                                                                  : wk_batch_group_end(kinds, requests, count, start);
        if (end - start > 1) {
            wk_share_clear(&share);
            if (kinds[start] == WK_BATCH_CREATE)
                commit_creates(context, db, progress, fence, slots + start, requests + start, end - start);
            else wk_replies_bulk_commit(context, db, progress, fence, slots + start, requests + start, end - start);
        } else {
            handle_member(context, db, progress, fence, &slots[start], &share);
        }
    }
    wk_share_clear(&share);
    for (size_t i = 0; i < count; i++) tk_request_close(&requests[i]);
cleanup:
    free(kinds);
    free(requests);
}
