/* wk_replies_bulk — a run of replies to distinct tickets in one unordered
 * update command; what is not certain goes one by one. */
#include "wk_replies_bulk.h"

#include <stdlib.h>
#include <string.h>

#include "tk_clock.h"
#include "tk_log.h"
#include "wk_metrics.h"
#include "wk_reply.h"
#include "wk_store.h"
#include "wk_tickets.h"

typedef enum {
    MEMBER_ALONE = 0, /* the one-message path decides */
    MEMBER_ANSWERED,  /* decided from the read: result holds the answer */
    MEMBER_SENT,      /* its statement went into the update: fates says what came of it */
} member_state;

typedef struct {
    member_state state;
    bson_oid_t id;        /* its ticket's */
    bson_t *ticket;       /* as read, or the worker's copy (wk_recent); NULL when absent */
    bool is_copy;         /* ticket is the copy: decided on it, written pinned to its __v */
    wk_result result;     /* MEMBER_ANSWERED */
    wk_reply_write write; /* MEMBER_SENT: the statement and the ticket it leaves */
    size_t statement;     /* MEMBER_SENT: its index in the update */
} member;

typedef struct {
    member *members;
    wk_batch_fate *fates; /* per statement */
    size_t sent;
    int64_t started_us; /* when the run was taken up: each member's handling time starts there */
} reply_run;

static int run_init(reply_run *run, size_t count) {
    memset(run, 0, sizeof *run);
    run->started_us = tk_monotonic_us();
    run->members = calloc(count, sizeof *run->members);
    run->fates = calloc(count, sizeof *run->fates);
    return run->members != NULL && run->fates != NULL ? 0 : -1;
}

static void run_close(reply_run *run, size_t count) {
    for (size_t i = 0; run->members != NULL && i < count; i++) {
        bson_destroy(run->members[i].ticket);
        wk_result_close(&run->members[i].result);
        wk_reply_write_close(&run->members[i].write);
    }
    free(run->fates);
    free(run->members);
}

/* The member whose ticket is document (ids compared as ObjectIds, not as text). */
static member *member_of(const bson_t *document, size_t count, reply_run *run) {
    bson_iter_t iter;
    if (!bson_iter_init_find(&iter, document, "_id") || !BSON_ITER_HOLDS_OID(&iter)) return NULL;
    for (size_t i = 0; i < count; i++)
        if (bson_oid_equal(&run->members[i].id, bson_iter_oid(&iter))) return &run->members[i];
    return NULL;
}

/* Takes the worker's copy of each member's ticket it has (wk_recent).
 * @returns how many members still need a read. */
static size_t take_copies(wk_recent *recent, const tk_request *requests, size_t count, reply_run *run) {
    size_t unknown = 0;
    for (size_t i = 0; i < count; i++) {
        member *m = &run->members[i];
        bson_oid_init_from_string(&m->id, requests[i].ticket_id);
        if (recent == NULL) { /* the copies are off (the default): no allocation per member */
            unknown++;
            continue;
        }
        bson_t *copy = bson_new();
        m->is_copy = wk_recent_copy(recent, &m->id, copy);
        if (m->is_copy) m->ticket = copy;
        else bson_destroy(copy);
        unknown += !m->is_copy;
    }
    return unknown;
}

/* Reads the ticket of every member without a copy in one round trip:
 * {_id: {$in: [...]}} (the ids are distinct), which the project's FerretDB
 * pushes down as an OR of `_id = x` (a BitmapOr of its _id index, no scan)
 * and MongoDB serves from _id's index.
 * @returns false when the read failed: every member goes one by one. */
static bool read_tickets(const wk_process_context *context, const wk_collections *db, const tk_request *requests,
                         size_t count, reply_run *run) {
    if (take_copies(context->store->recent, requests, count, run) == 0) return true;
    bson_t *filter = bson_new(), in, ids;
    char key[16];
    const char *key_text;
    bson_error_t error;
    const bson_t *document;
    uint32_t listed = 0;
    BSON_APPEND_DOCUMENT_BEGIN(filter, "_id", &in);
    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &ids);
    for (size_t i = 0; i < count; i++) {
        if (run->members[i].is_copy) continue;
        bson_uint32_to_string(listed++, &key_text, key, sizeof key);
        bson_append_oid(&ids, key_text, -1, &run->members[i].id);
    }
    bson_append_array_end(&in, &ids);
    bson_append_document_end(filter, &in);
    /* All in the first batch: no getMore, no cursor left open. */
    bson_t *opts = BCON_NEW("batchSize", BCON_INT64((int64_t)count + 1), "singleBatch", BCON_BOOL(true), "maxTimeMS",
                            BCON_INT64(WK_STORE_MAX_TIME_MS));
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(db->tickets, filter, opts, NULL);
    while (mongoc_cursor_next(cursor, &document)) {
        member *m = member_of(document, count, run);
        if (m != NULL && m->ticket == NULL) m->ticket = bson_copy(document); /* the cursor owns document */
    }
    bool is_ok = !mongoc_cursor_error(cursor, &error);
    if (!is_ok)
        tk_log_fields(TK_LOG_WARN, "batched reply read failed, the replies go one by one",
                      json_pack("{s:i, s:s}", "code", (int)error.code, "error", error.message));
    mongoc_cursor_destroy(cursor);
    bson_destroy(opts);
    bson_destroy(filter);
    return is_ok;
}

/* Decides a member on its ticket as read, as wk_reply_add would; on a copy,
 * only "store it" is trusted (anything else is read again, one by one), and
 * the write is pinned to the copy's __v. */
static void decide(const tk_request *request, bool is_conditional, int64_t now, member *m) {
    if (wk_reply_decide(m->ticket, m->ticket != NULL, request, &m->result) == WK_ANSWERED) {
        m->state = m->is_copy ? MEMBER_ALONE : MEMBER_ANSWERED;
        if (m->is_copy) wk_result_close(&m->result);
        else wk_tickets_hide_internal(request, &m->result);
        return;
    }
    wk_reply_write_init(&m->write, m->ticket, request, is_conditional, true, now);
    bool is_pinned = !m->is_copy || wk_reply_write_pin(&m->write, m->ticket, request);
    m->state = m->write.applied != NULL && is_pinned ? MEMBER_SENT : MEMBER_ALONE; /* a shape left to the server */
}

/* The update command of every decided member whose lease holds right now;
 * sets each one's statement index (run->sent in all). */
static bson_t *command_new(const wk_collections *db, wk_fence *fence, const wk_lane_slot *slots, size_t count,
                           reply_run *run) {
    bson_t *command = BCON_NEW("update", BCON_UTF8(mongoc_collection_get_name(db->tickets)));
    bson_t updates, statement;
    char key[16];
    const char *key_text;
    BSON_APPEND_ARRAY_BEGIN(command, "updates", &updates);
    for (size_t i = 0; i < count; i++) {
        member *m = &run->members[i];
        wk_lease lease = wk_batch_lease_of(fence, &slots[i]);
        if (m->state != MEMBER_SENT) continue;
        if (!wk_lease_holds(&lease)) { /* revoked: its own path abandons it, nothing written */
            m->state = MEMBER_ALONE;
            continue;
        }
        m->statement = run->sent++;
        bson_uint32_to_string((uint32_t)m->statement, &key_text, key, sizeof key);
        BSON_APPEND_DOCUMENT_BEGIN(&updates, key_text, &statement);
        BSON_APPEND_DOCUMENT(&statement, "q", m->write.query);
        BSON_APPEND_DOCUMENT(&statement, "u", m->write.update);
        bson_append_document_end(&updates, &statement);
    }
    bson_append_array_end(command, &updates);
    BCON_APPEND(command, "ordered", BCON_BOOL(false), "maxTimeMS", BCON_INT64(WK_STORE_MAX_TIME_MS));
    return command;
}

/* Sends the statements as one update and reads which surely matched. */
static void send_updates(const wk_process_context *context, const wk_collections *db, wk_fence *fence,
                         const wk_lane_slot *slots, size_t count, reply_run *run) {
    bson_t *command = command_new(db, fence, slots, count, run);
    bson_t reply;
    bson_error_t error = {0};
    if (run->sent == 0) {
        bson_destroy(command);
        return;
    }
    bool is_ok = mongoc_collection_write_command_with_opts(db->tickets, command, NULL, &reply, &error);
    wk_batch_classify_updates(is_ok, &reply, run->sent, run->fates);
    size_t alone = 0;
    for (size_t s = 0; s < run->sent; s++) alone += run->fates[s] == WK_FATE_ALONE;
    wk_metrics_replies_bulk(run->sent - alone);
    if (alone == 0) atomic_store(&context->store->is_reachable, true);
    if (alone == 0 && tk_log_enabled(TK_LOG_DEBUG))
        tk_log_fields(TK_LOG_DEBUG, "batched reply update", json_pack("{s:I}", "statements", (json_int_t)run->sent));
    if (alone > 0) /* one by one now: each reads again, a reply stored already is answered as a repeat */
        tk_log_fields(TK_LOG_WARN, "batched reply update not certain, the rest go one by one",
                      json_pack("{s:I, s:I, s:i, s:s}", "statements", (json_int_t)run->sent, "alone", (json_int_t)alone,
                                "code", (int)error.code, "error", is_ok ? "" : error.message));
    bson_destroy(&reply);
    bson_destroy(command);
}

/* Reads and decides every member (after a failed read all stay ALONE),
 * then writes the decided ones at once: two round trips for the run. */
static void apply_run(const wk_process_context *context, const wk_collections *db, wk_fence *fence,
                      const wk_lane_slot *slots, const tk_request *requests, size_t count, reply_run *run) {
    bool is_conditional = atomic_load(&context->store->has_conditional_push);
    int64_t now = tk_now_ms();
    if (!read_tickets(context, db, requests, count, run)) return;
    for (size_t i = 0; i < count; i++) decide(&requests[i], is_conditional, now, &run->members[i]);
    send_updates(context, db, fence, slots, count, run);
    /* Each reply waited for the whole run: one observation each. */
    double seconds = (double)(tk_monotonic_us() - run->started_us) / 1e6;
    for (size_t i = 0; i < count; i++) wk_metrics_db_duration(TK_REQUEST_TICKET_REPLY, seconds);
}

/* Answers a member the run settled. @returns false when it goes one by one. */
static bool finish_member(const wk_process_context *context, wk_progress *progress, wk_fence *fence,
                          const wk_lane_slot *slot, const tk_request *request, reply_run *run, member *m) {
    wk_lease lease = wk_batch_lease_of(fence, slot);
    if (m->state == MEMBER_ANSWERED && wk_lease_holds(&lease)) { /* else its own path abandons it */
        wk_process_finish(context, progress, slot->message, request, &m->result, run->started_us);
        return true;
    }
    if (m->state != MEMBER_SENT || run->fates[m->statement] != WK_FATE_APPLIED) return false;
    wk_result result;
    memset(&result, 0, sizeof result);
    wk_reply_answer(m->write.applied, request, &result);
    wk_recent_put(context->store->recent, m->write.applied);
    if (m->is_copy) wk_metrics_write_unread();
    wk_tickets_hide_internal(request, &result);
    wk_process_finish(context, progress, slot->message, request, &result, run->started_us);
    wk_result_close(&result);
    return true;
}

void wk_replies_bulk_commit(const wk_process_context *context, const wk_collections *db, wk_progress *progress,
                            wk_fence *fence, const wk_lane_slot *slots, const tk_request *requests, size_t count) {
    reply_run run;
    bool is_ready = run_init(&run, count) == 0;
    if (is_ready) apply_run(context, db, fence, slots, requests, count, &run);
    for (size_t i = 0; i < count; i++) {
        if (is_ready && finish_member(context, progress, fence, &slots[i], &requests[i], &run, &run.members[i]))
            continue;
        wk_lease lease = wk_batch_lease_of(fence, &slots[i]);
        /* Its statement may have applied, or its copy gone stale: the one-message path reads. */
        if (is_ready) wk_recent_forget(context->store->recent, &run.members[i].id);
        wk_process_message(context, db, progress, slots[i].message, &lease);
    }
    run_close(&run, count);
}
