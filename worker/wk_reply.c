/* wk_reply — a reply added to a ticket, safe to repeat: decide on the
 * ticket as read, one conditional write, the answer and its events. */
#include "wk_reply.h"

#include <string.h>

#include "tk_clock.h"
#include "tk_ids.h"
#include "tk_log.h"
#include "wk_batch.h"
#include "wk_lifecycle.h"
#include "wk_metrics.h"
#include "wk_store.h"
#include "wk_ticket_json.h"

static const char MSG_REPLIED[] = "Response added successfully!";

/* Finds the response entry with response_id; *entry (may be NULL) then
 * iterates its fields. */
static bool has_response(const bson_t *ticket, const bson_oid_t *response_id, bson_iter_t *entry) {
    bson_iter_t iter, entries, field;
    if (!bson_iter_init_find(&iter, ticket, "response") || !BSON_ITER_HOLDS_ARRAY(&iter) ||
        !bson_iter_recurse(&iter, &entries))
        return false;
    while (bson_iter_next(&entries)) {
        if (bson_iter_recurse(&entries, &field) && bson_iter_find(&field, "_id") && BSON_ITER_HOLDS_OID(&field) &&
            bson_oid_equal(bson_iter_oid(&field), response_id))
            return entry == NULL || bson_iter_recurse(&entries, entry);
    }
    return false;
}

/* The status change a reply made, kept (hidden) on its entry so that a
 * redelivery announces it again: ticket.status_changed, or NULL. */
static json_t *reply_status_event_new(const bson_t *ticket, const tk_request *request) {
    bson_oid_t response_id;
    bson_iter_t entry, from, to;
    bson_oid_init_from_string(&response_id, request->response_id);
    if (!has_response(ticket, &response_id, &entry)) return NULL;
    from = entry;
    to = entry;
    if (!bson_iter_find(&from, "statusFrom") || !BSON_ITER_HOLDS_UTF8(&from) || !bson_iter_find(&to, "statusTo") ||
        !BSON_ITER_HOLDS_UTF8(&to))
        return NULL;
    return wk_lifecycle_status_event_new(request->response_id, request->ticket_id, wk_tickets_stored_team(ticket),
                                         &request->actor, bson_iter_utf8(&from, NULL), bson_iter_utf8(&to, NULL));
}

wk_outcome wk_reply_answer(const bson_t *ticket, const tk_request *request, wk_result *result) {
    json_t *data = wk_ticket_json_new(ticket);
    json_t *entries = json_object_get(data, "response");
    json_t *response = NULL;
    size_t index;
    json_t *entry;
    json_array_foreach(entries, index, entry) {
        if (strcmp(json_string_value(json_object_get(entry, "_id")), request->response_id) == 0) response = entry;
    }
    if (data == NULL || response == NULL) {
        json_decref(data);
        wk_tickets_set_answer(result, 500, WK_MSG_INTERNAL, NULL);
        return WK_DONE;
    }
    result->event = wk_tickets_event_new("ticket.replied", "replied", request->response_id,
                                         wk_tickets_stored_team(ticket));
    if (result->event != NULL) {
        json_object_set_new(result->event, "ticketId", json_string(request->ticket_id));
        json_object_set(result->event, "reply", response);
        json_object_set(result->event, "ticket", data);
        /* Said at the top too: a consumer that must not pass notes on to customers checks one member. */
        if (json_is_true(json_object_get(response, "internal")))
            json_object_set_new(result->event, "internal", json_true());
    }
    result->status_event = reply_status_event_new(ticket, request);
    memcpy(result->event_key, request->ticket_id, TK_OBJECT_ID_LEN + 1);
    wk_tickets_set_answer(result, 200, MSG_REPLIED, data);
    return WK_DONE;
}

/* A new reply to a closed ticket is 409; one with a stale If-Match, 412.
 * @returns true with the refusal in *result. */
static bool refuse_reply(const bson_t *ticket, const tk_request *request, wk_result *result) {
    bson_iter_t iter;
    bool is_closed = bson_iter_init_find(&iter, ticket, "status") && BSON_ITER_HOLDS_UTF8(&iter) &&
                     strcmp(bson_iter_utf8(&iter, NULL), "closed") == 0;
    bool is_stale = request->has_if_match &&
                    !(bson_iter_init_find(&iter, ticket, "__v") && BSON_ITER_HOLDS_NUMBER(&iter) &&
                      bson_iter_as_int64(&iter) == request->if_match);
    if (is_stale || is_closed)
        wk_tickets_set_answer(result, is_stale ? 412 : 409, is_stale ? WK_MSG_MODIFIED : WK_MSG_CLOSED, NULL);
    return is_stale || is_closed;
}

wk_outcome wk_reply_decide(const bson_t *ticket, bool is_found, const tk_request *request, wk_result *result) {
    bson_oid_t response_id;
    if (!is_found || !wk_tickets_is_visible_to(ticket, &request->actor)) {
        wk_tickets_set_answer(result, 404, WK_MSG_NOT_FOUND, NULL);
        return WK_ANSWERED;
    }
    bson_oid_init_from_string(&response_id, request->response_id);
    if (has_response(ticket, &response_id, NULL)) { /* seen before: answer as the first time */
        wk_reply_answer(ticket, request, result);
        return WK_ANSWERED;
    }
    return refuse_reply(ticket, request, result) ? WK_ANSWERED : WK_DONE;
}

/* The answer for a ticket as it is now: 404 when gone or not the actor's,
 * the first answer when it has the reply. @returns WK_ANSWERED when decided. */
static wk_outcome answer_from_current(mongoc_collection_t *tickets, const tk_request *request,
                                      const bson_oid_t *ticket_id, bson_t *current, wk_result *result) {
    bson_error_t error;
    bson_reinit(current);
    int found = wk_tickets_find(tickets, ticket_id, current, &error);
    if (found < 0) return wk_tickets_database_failure("find", &error, result) == WK_RETRY ? WK_RETRY : WK_ANSWERED;
    return wk_reply_decide(current, found == 1, request, result);
}

/* The new entry (internal only when true; the status change it makes,
 * hidden, for a redelivery's event). */
static bson_t *entry_new(const tk_request *request, const char *from, const char *to, int64_t now) {
    bson_oid_t response_id;
    bson_oid_init_from_string(&response_id, request->response_id);
    bson_t *entry = BCON_NEW("_id", BCON_OID(&response_id), "creatorId", BCON_UTF8(request->actor.id), "creatorType",
                             BCON_UTF8(request->actor.is_admin ? "admin" : "customer"), "description",
                             BCON_UTF8(request->description), "createdAt", BCON_DATE_TIME(now), "updatedAt",
                             BCON_DATE_TIME(now));
    if (request->internal) BSON_APPEND_BOOL(entry, "internal", true);
    if (to != NULL) BCON_APPEND(entry, "statusFrom", BCON_UTF8(from), "statusTo", BCON_UTF8(to));
    return entry;
}

/* The push of entry, and the status it moves to. */
static bson_t *update_new(const bson_t *entry, const char *to, int64_t now) {
    bson_t *update = bson_new();
    bson_t push, set;
    BSON_APPEND_DOCUMENT_BEGIN(update, "$push", &push);
    BSON_APPEND_DOCUMENT(&push, "response", entry);
    bson_append_document_end(update, &push);
    BSON_APPEND_DOCUMENT_BEGIN(update, "$set", &set);
    BSON_APPEND_DATE_TIME(&set, "updatedAt", now);
    if (to != NULL) BCON_APPEND(&set, "status", BCON_UTF8(to), "statusChangedAt", BCON_DATE_TIME(now));
    bson_append_document_end(update, &set);
    BCON_APPEND(update, "$inc", "{", "__v", BCON_INT32(1), "}");
    return update;
}

/* {_id}, and when conditional: the reply not stored yet, the status it was
 * decided on (closed, the automatic move), the __v of If-Match. */
static bson_t *query_new(const tk_request *request, const char *status, bool is_conditional) {
    bson_oid_t ticket_id, response_id;
    bson_oid_init_from_string(&ticket_id, request->ticket_id);
    bson_oid_init_from_string(&response_id, request->response_id);
    bson_t *query = BCON_NEW("_id", BCON_OID(&ticket_id));
    if (!is_conditional) return query;
    BCON_APPEND(query, "response._id", "{", "$ne", BCON_OID(&response_id), "}");
    if (status != NULL) BSON_APPEND_UTF8(query, "status", status);
    /* As stored ($inc keeps int32): FerretDB compares pushed-down JSON exactly. */
    if (request->has_if_match && request->if_match <= INT32_MAX)
        BSON_APPEND_INT32(query, "__v", (int32_t)request->if_match);
    else if (request->has_if_match) BSON_APPEND_INT64(query, "__v", request->if_match);
    return query;
}

/* The response array of iter with entry at its end, as $push leaves it. */
static void append_pushed(bson_t *out, const bson_iter_t *iter, const bson_t *entry) {
    bson_t array;
    bson_iter_t items;
    uint32_t count = 0;
    char key[16];
    const char *key_text;
    bson_append_array_begin(out, bson_iter_key(iter), -1, &array);
    if (bson_iter_recurse(iter, &items))
        while (bson_iter_next(&items)) {
            bson_uint32_to_string(count++, &key_text, key, sizeof key);
            bson_append_iter(&array, key_text, -1, &items);
        }
    bson_uint32_to_string(count, &key_text, key, sizeof key);
    bson_append_document(&array, key_text, -1, entry);
    bson_append_array_end(out, &array);
}

/* __v + 1 in its stored type, as $inc leaves it. @returns false for a non-integer. */
static bool append_incremented(bson_t *out, const bson_iter_t *iter) {
    if (BSON_ITER_HOLDS_INT32(iter) && bson_iter_int32(iter) < INT32_MAX)
        return bson_append_int32(out, bson_iter_key(iter), -1, bson_iter_int32(iter) + 1);
    if (BSON_ITER_HOLDS_INT64(iter) && bson_iter_int64(iter) < INT64_MAX)
        return bson_append_int64(out, bson_iter_key(iter), -1, bson_iter_int64(iter) + 1);
    return false;
}

/* What a reply changes: response, __v and updatedAt, each there (a shape
 * the update would change otherwise goes one by one). */
static bool has_reply_shape(const bson_t *ticket) {
    bson_iter_t iter;
    return bson_iter_init_find(&iter, ticket, "response") && BSON_ITER_HOLDS_ARRAY(&iter) &&
           bson_iter_init_find(&iter, ticket, "__v") &&
           (BSON_ITER_HOLDS_INT32(&iter) || BSON_ITER_HOLDS_INT64(&iter)) && bson_has_field(ticket, "updatedAt");
}

/* One field of the applied ticket. @returns 1 changed, 0 not one the update changes, -1 failed. */
static int append_changed(bson_t *out, const bson_iter_t *iter, const bson_t *entry, const char *to, int64_t now) {
    const char *key = bson_iter_key(iter);
    if (strcmp(key, "response") == 0) {
        append_pushed(out, iter, entry);
        return 1;
    }
    if (strcmp(key, "__v") == 0) return append_incremented(out, iter) ? 1 : -1;
    bool is_now = strcmp(key, "updatedAt") == 0 || (to != NULL && strcmp(key, "statusChangedAt") == 0);
    if (is_now) return bson_append_date_time(out, key, -1, now) ? 1 : -1;
    if (to != NULL && strcmp(key, "status") == 0) return bson_append_utf8(out, key, -1, to, -1) ? 1 : -1;
    return 0;
}

/* current as the update leaves it: the answer of a bulk write, which
 * returns no documents. A field $set adds goes last, as on the server.
 * @returns NULL when it cannot be built: that reply goes one by one. */
static bson_t *applied_new(const bson_t *current, const bson_t *entry, const char *to, int64_t now) {
    bson_t *out = bson_new();
    bson_iter_t iter;
    if (!has_reply_shape(current) || !bson_iter_init(&iter, current)) goto fail;
    while (bson_iter_next(&iter)) {
        int rc = append_changed(out, &iter, entry, to, now);
        if (rc < 0 || (rc == 0 && !bson_append_iter(out, NULL, 0, &iter))) goto fail;
    }
    if (to != NULL && !bson_has_field(current, "statusChangedAt") &&
        !BSON_APPEND_DATE_TIME(out, "statusChangedAt", now))
        goto fail;
    return out;
fail:
    bson_destroy(out);
    return NULL;
}

void wk_reply_write_init(wk_reply_write *write, const bson_t *current, const tk_request *request, bool is_conditional,
                         bool wants_applied, int64_t now_ms) {
    const char *status = wk_tickets_stored_text(current, "status");
    const char *to = wk_lifecycle_status_after_reply(status, request);
    bson_t *entry = entry_new(request, status, to, now_ms);
    memset(write, 0, sizeof *write);
    write->query = query_new(request, status, is_conditional);
    write->update = update_new(entry, to, now_ms);
    if (wants_applied) write->applied = applied_new(current, entry, to, now_ms);
    bson_destroy(entry);
}

void wk_reply_write_close(wk_reply_write *write) {
    if (write == NULL) return;
    bson_destroy(write->query);
    bson_destroy(write->update);
    bson_destroy(write->applied);
    memset(write, 0, sizeof *write);
}

bool wk_reply_write_pin(wk_reply_write *write, const bson_t *current, const tk_request *request) {
    bson_iter_t version;
    if (request->has_if_match) return true; /* decided on current: If-Match pinned its __v already */
    return bson_iter_init_find(&version, current, "__v") && bson_append_iter(write->query, NULL, 0, &version);
}

/* Sends write as an update command of one statement. maxTimeMS goes at the
 * command's level: in update_one's options mongoc puts it in the statement,
 * which FerretDB refuses. @returns 1 when the statement surely matched, 0
 * when it ran and matched nothing, -1 when the command failed. */
static int update_matched(mongoc_collection_t *tickets, const wk_reply_write *write) {
    bson_t *command = BCON_NEW("update", BCON_UTF8(mongoc_collection_get_name(tickets)), "updates", "[", "{", "q",
                               BCON_DOCUMENT(write->query), "u", BCON_DOCUMENT(write->update), "}", "]", "maxTimeMS",
                               BCON_INT64(WK_STORE_MAX_TIME_MS));
    bson_t reply;
    bson_error_t error = {0};
    wk_batch_fate fate;
    bool is_ok = mongoc_collection_write_command_with_opts(tickets, command, NULL, &reply, &error);
    wk_batch_classify_updates(is_ok, &reply, 1, &fate);
    if (!is_ok)
        tk_log_fields(TK_LOG_WARN, "reply write on the worker's copy failed, the reply is read again",
                      json_pack("{s:i, s:s}", "code", (int)error.code, "error", error.message));
    bson_destroy(&reply);
    bson_destroy(command);
    return !is_ok ? -1 : fate == WK_FATE_APPLIED ? 1 : 0;
}

/* A reply to a ticket wk_recent knows: decided on that copy, written once
 * with the copy's __v in the filter, so the push applies only while the
 * ticket is exactly the copy, and answered from the ticket as the update
 * leaves it (as wk_replies_bulk answers). No read: one round trip.
 * @returns true with *rc when stored or fenced; false when not sure (no
 * copy, a decision other than "store it", no match, an error): the caller
 * reads and decides, and its write's conditions store nothing twice. */
static bool add_to_known(mongoc_collection_t *tickets, const tk_request *request, const wk_write_guard *guard,
                         const bson_oid_t *ticket_id, wk_result *result, wk_outcome *rc) {
    bson_t known = BSON_INITIALIZER;
    wk_reply_write write = {0};
    bool is_done = false;
    if (guard == NULL || !wk_recent_copy(guard->recent, ticket_id, &known)) goto cleanup;
    if (wk_reply_decide(&known, true, request, result) != WK_DONE) { /* 404, 409, 412, a repeat: read to be sure */
        wk_result_close(result);
        memset(result, 0, sizeof *result);
        goto cleanup;
    }
    if (!wk_tickets_may_write(guard)) {
        *rc = WK_FENCED;
        is_done = true;
        goto cleanup;
    }
    wk_reply_write_init(&write, &known, request, guard->has_conditional_push, true, tk_now_ms());
    if (write.applied == NULL || !wk_reply_write_pin(&write, &known, request)) goto cleanup;
    int matched = update_matched(tickets, &write);
    if (matched == 1) {
        *rc = wk_reply_answer(write.applied, request, result);
        wk_recent_put(guard->recent, write.applied);
        wk_metrics_write_unread();
        is_done = true;
    } else {
        wk_recent_forget(guard->recent, ticket_id);
        if (matched == 0) wk_metrics_recent_stale(); /* a failure is logged; the read will tell */
    }
cleanup:
    wk_reply_write_close(&write);
    bson_destroy(&known);
    return is_done;
}

/* Read, check, then push, and only if the partition is still ours. The
 * push is conditional on every server: {_id, "response._id": {$ne}} matches
 * nothing once the reply is stored; no match means re-read and answer as a
 * repeat (or 404 when the ticket went). On MongoDB that makes two writers
 * (a revoked owner whose write was already on the wire, and the new one)
 * store it once. FerretDB 1.24 applies an update by reading the document,
 * changing it in Go and writing it back by _id, so there the condition does
 * not make two truly concurrent writes atomic: the fence does (a write
 * starts only while the lane holds the partition, a revoke purges queued
 * messages, ends retry loops and waits for the in-flight write). What the
 * condition still covers on FerretDB is the write the driver gave up on
 * (socketTimeoutMS) while the server was frozen: FerretDB evaluates it when
 * it wakes, finds the reply stored by the new owner and changes nothing
 * (tests/faults/test_7_* freezes the server and reconciles; with a plain
 * {_id} filter it stored that reply twice). On the PostgreSQL backend only
 * {_id} is pushed down, so the condition costs one document's check. */
wk_outcome wk_reply_add(mongoc_collection_t *tickets, const tk_request *request, const wk_write_guard *guard,
                        wk_result *result) {
    bson_oid_t ticket_id;
    bson_error_t error;
    bson_t current = BSON_INITIALIZER;
    wk_reply_write write = {0};
    wk_outcome rc;
    bson_oid_init_from_string(&ticket_id, request->ticket_id);

    if (add_to_known(tickets, request, guard, &ticket_id, result, &rc)) goto cleanup;
    rc = answer_from_current(tickets, request, &ticket_id, &current, result);
    if (rc != WK_DONE) goto cleanup;
    if (!wk_tickets_may_write(guard)) {
        rc = WK_FENCED;
        goto cleanup;
    }
    wk_reply_write_init(&write, &current, request, guard != NULL && guard->has_conditional_push, false, tk_now_ms());
    bson_t *extra = wk_tickets_max_time_opts_new();
    mongoc_find_and_modify_opts_t *opts = mongoc_find_and_modify_opts_new();
    mongoc_find_and_modify_opts_set_update(opts, write.update);
    mongoc_find_and_modify_opts_set_flags(opts, MONGOC_FIND_AND_MODIFY_RETURN_NEW);
    mongoc_find_and_modify_opts_append(opts, extra);
    bson_t command_reply;
    bson_iter_t value;
    if (!mongoc_collection_find_and_modify_with_opts(tickets, write.query, opts, &command_reply, &error)) {
        rc = wk_tickets_database_failure("findAndModify", &error, result);
    } else if (bson_iter_init_find(&value, &command_reply, "value") && BSON_ITER_HOLDS_DOCUMENT(&value)) {
        const uint8_t *data;
        uint32_t len;
        bson_t updated;
        bson_iter_document(&value, &len, &data);
        if (bson_init_static(&updated, data, len)) {
            rc = wk_reply_answer(&updated, request, result);
            wk_recent_put(guard != NULL ? guard->recent : NULL, &updated);
        } else {
            wk_tickets_set_answer(result, 500, WK_MSG_INTERNAL, NULL);
        }
    } else {
        /* No match: another writer stored the reply first, or the ticket went. */
        rc = answer_from_current(tickets, request, &ticket_id, &current, result);
        if (rc == WK_DONE) rc = WK_RETRY; /* neither stored nor gone: the next attempt reads again */
    }
    bson_destroy(&command_reply);
    mongoc_find_and_modify_opts_destroy(opts);
    bson_destroy(extra);
cleanup:
    wk_reply_write_close(&write);
    bson_destroy(&current);
    return rc == WK_ANSWERED ? WK_DONE : rc;
}
