/* wk_lifecycle — updates and resolves: read, decide, one conditional write.
 *
 * Atomicity: the write's filter is {_id, __v: <the __v read>}. Every change
 * bumps __v, so the write applies only to the very version every decision
 * was made on (closed or not, If-Match, which fields differ, their old
 * values for the event); when it matches nothing, someone wrote in between
 * and the next attempt reads again. The first attempt may plan on the
 * worker's copy of the ticket instead of a read (wk_recent): the same
 * condition makes that safe. With ifMatch the read version must be
 * ifMatch, so "check and write" is one step on MongoDB. FerretDB 1.24 applies
 * an update by read-modify-write in Go (see wk_tickets' add_response): there
 * the partition fence serialises the writers of a ticket and the __v
 * condition still stops a write the driver gave up on and the server runs
 * late.
 *
 * Effect-once: the change is recorded in the ticket's hidden `changeLog`
 * ({_id: commandId, actorId, at, fields: {name: {old, new}}}), written in the
 * same update. A redelivered command finds its entry, changes nothing and
 * answers and announces as the first time, with the same eventIds and the
 * same old/new values. Kept on the ticket rather than in the idempotency
 * store because the check must be in the same document write to be atomic,
 * and the log doubles as the ticket's change history. It grows by one entry
 * per applied change (as `response` does per reply); FerretDB 1.24 has no
 * $push $slice to cap it. */
#include "wk_lifecycle.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tk_clock.h"
#include "tk_ids.h"
#include "wk_metrics.h"
#include "wk_ticket_json.h"

#define WRITE_ATTEMPTS 3 /* reads and conditional writes before waiting (WK_RETRY) */
#define CHANGEABLE_COUNT 4

static const char MSG_UPDATED[] = "Ticket updated successfully!";
static const char MSG_RESOLVED[] = "Ticket resolved successfully!";

/* The fields a change may touch, in the contract's order, and where the
 * request holds each one's new value. */
static const struct {
    const char *name;
    size_t offset;
} CHANGEABLE[CHANGEABLE_COUNT] = {
    {"status", offsetof(tk_request, status)},
    {"priority", offsetof(tk_request, priority)},
    {"category", offsetof(tk_request, category)},
    {"assigneeId", offsetof(tk_request, assignee_id)},
};

/* Leaving closed is refused, and the answer says to which status. */
static const struct {
    const char *to;
    const char *message;
} OUT_OF_CLOSED[] = {
    {"open", "Ticket is closed: it cannot move to open"},
    {"pending", "Ticket is closed: it cannot move to pending"},
    {"resolved", "Ticket is closed: it cannot move to resolved"},
};

/* A decided change: the ticket as read and what differs from it. */
typedef struct {
    bson_t current;
    int64_t version;
    json_t *fields; /* {name: {old, new}}: only what differs */
} change_plan;

static int64_t version_of(const bson_t *ticket) {
    bson_iter_t iter;
    return bson_iter_init_find(&iter, ticket, "__v") && BSON_ITER_HOLDS_NUMBER(&iter) ? bson_iter_as_int64(&iter) : -1;
}

/* What the request asks field i to become: *is_set false when it leaves it. */
static const char *wanted_value(const tk_request *request, size_t i, bool *is_set) {
    if (request->type == TK_REQUEST_TICKET_RESOLVE) {
        *is_set = i == 0;
        return *is_set ? "resolved" : NULL;
    }
    const char *value = *(const char *const *)(const void *)((const char *)request + CHANGEABLE[i].offset);
    *is_set = value != NULL || (strcmp(CHANGEABLE[i].name, "assigneeId") == 0 && request->is_unassign);
    return value;
}

static json_t *text_or_null(const char *text) { return text != NULL ? json_string(text) : json_null(); }

/* {name: {old, new}} for every field the request sets to something new. */
static json_t *differences_new(const bson_t *current, const tk_request *request) {
    json_t *fields = json_object();
    for (size_t i = 0; fields != NULL && i < CHANGEABLE_COUNT; i++) {
        bool is_set;
        const char *wanted = wanted_value(request, i, &is_set);
        const char *old = wk_tickets_stored_text(current, CHANGEABLE[i].name);
        bool is_same = wanted == NULL ? old == NULL : old != NULL && strcmp(old, wanted) == 0;
        if (!is_set || is_same) continue;
        if (json_object_set_new(fields, CHANGEABLE[i].name,
                                json_pack("{s:o, s:o}", "old", text_or_null(old), "new", text_or_null(wanted))) != 0) {
            json_decref(fields);
            return NULL;
        }
    }
    return fields;
}

static const char *new_status(const json_t *fields) {
    return json_string_value(json_object_get(json_object_get(fields, "status"), "new"));
}

static const char *closed_message(const json_t *fields) {
    const char *to = new_status(fields);
    for (size_t i = 0; to != NULL && i < sizeof OUT_OF_CLOSED / sizeof OUT_OF_CLOSED[0]; i++)
        if (strcmp(to, OUT_OF_CLOSED[i].to) == 0) return OUT_OF_CLOSED[i].message;
    return WK_MSG_CLOSED;
}

json_t *wk_lifecycle_status_event_new(const char *event_id, const char *ticket_id, const char *team,
                                      const tk_actor *actor, const char *from, const char *to) {
    json_t *event = wk_tickets_event_new("ticket.status_changed", "status_changed", event_id, team);
    if (event != NULL &&
        json_object_update_new(event, json_pack("{s:s, s:o, s:s, s:s}", "ticketId", ticket_id, "actor",
                                                tk_actor_json_new(actor), "from", from, "to", to)) != 0) {
        json_decref(event);
        return NULL;
    }
    return event;
}

const char *wk_lifecycle_status_after_reply(const char *status, const tk_request *reply) {
    if (status == NULL || reply->internal) return NULL;
    if (reply->actor.is_admin) return strcmp(status, "open") == 0 ? "pending" : NULL;
    return strcmp(status, "pending") == 0 || strcmp(status, "resolved") == 0 ? "open" : NULL;
}

/* 200 with the ticket and, when fields changed something, its events. */
static void answer_changed(const bson_t *ticket, const tk_request *request, const json_t *fields, wk_result *result) {
    json_t *data = wk_ticket_json_new(ticket);
    if (data == NULL) {
        wk_tickets_set_answer(result, 500, WK_MSG_INTERNAL, NULL);
        return;
    }
    const char *team = wk_tickets_stored_team(ticket);
    json_t *status = json_object_get(fields, "status");
    if (request->type == TK_REQUEST_TICKET_UPDATE && json_object_size(fields) > 0) {
        result->event = wk_tickets_event_new("ticket.updated", "updated", request->command_id, team);
        if (result->event != NULL)
            json_object_update_new(result->event,
                                   json_pack("{s:s, s:o, s:O, s:O}", "ticketId", request->ticket_id, "actor",
                                             tk_actor_json_new(&request->actor), "changes", fields, "ticket", data));
    }
    if (status != NULL)
        result->status_event = wk_lifecycle_status_event_new(request->command_id, request->ticket_id, team,
                                                             &request->actor,
                                                             json_string_value(json_object_get(status, "old")),
                                                             json_string_value(json_object_get(status, "new")));
    memcpy(result->event_key, request->ticket_id, TK_OBJECT_ID_LEN + 1);
    snprintf(result->etag, sizeof result->etag, "\"%lld\"", (long long)version_of(ticket));
    wk_tickets_set_answer(result, 200, request->type == TK_REQUEST_TICKET_RESOLVE ? MSG_RESOLVED : MSG_UPDATED, data);
}

/* Finds this command's changeLog entry; *entry then iterates its members. */
static bool find_logged(const bson_t *ticket, const char *command_id, bson_iter_t *entry) {
    bson_iter_t iter, entries, id_field;
    bson_oid_t id;
    bson_oid_init_from_string(&id, command_id);
    if (!bson_iter_init_find(&iter, ticket, "changeLog") || !BSON_ITER_HOLDS_ARRAY(&iter) ||
        !bson_iter_recurse(&iter, &entries))
        return false;
    while (bson_iter_next(&entries)) {
        if (bson_iter_recurse(&entries, &id_field) && bson_iter_find(&id_field, "_id") &&
            BSON_ITER_HOLDS_OID(&id_field) && bson_oid_equal(bson_iter_oid(&id_field), &id))
            return bson_iter_recurse(&entries, entry);
    }
    return false;
}

/* The fields of this command's changeLog entry ({} when unreadable), or
 * NULL when it has none: not applied yet. @returns a new reference. */
static json_t *logged_fields_new(const bson_t *ticket, const char *command_id) {
    bson_iter_t entry;
    const uint8_t *data;
    uint32_t len;
    bson_t document;
    if (!find_logged(ticket, command_id, &entry)) return NULL;
    if (!bson_iter_find(&entry, "fields") || !BSON_ITER_HOLDS_DOCUMENT(&entry)) return json_object();
    bson_iter_document(&entry, &len, &data);
    if (!bson_init_static(&document, data, len)) return json_object();
    /* Strings and nulls only: relaxed extended JSON is plain JSON here. */
    char *text = bson_as_relaxed_extended_json(&document, NULL);
    json_t *parsed = text != NULL ? json_loads(text, 0, NULL) : NULL;
    bson_free(text);
    return parsed != NULL ? parsed : json_object();
}

static wk_outcome refuse_or_plan(const tk_request *request, change_plan *plan, wk_result *result);

/* Reads the ticket and decides. @returns WK_DONE with plan->fields to
 * write, WK_ANSWERED with *result, or WK_RETRY. */
static wk_outcome decide(mongoc_collection_t *tickets, const tk_request *request, change_plan *plan,
                         wk_result *result) {
    bson_oid_t id;
    bson_error_t error;
    bson_oid_init_from_string(&id, request->ticket_id);
    bson_reinit(&plan->current);
    int found = wk_tickets_find(tickets, &id, &plan->current, &error);
    if (found < 0) return wk_tickets_database_failure("find", &error, result) == WK_RETRY ? WK_RETRY : WK_ANSWERED;
    if (found == 0 || !wk_tickets_is_visible_to(&plan->current, &request->actor)) {
        wk_tickets_set_answer(result, 404, WK_MSG_NOT_FOUND, NULL);
        return WK_ANSWERED;
    }
    json_t *logged = logged_fields_new(&plan->current, request->command_id);
    if (logged != NULL) { /* applied before: answer and announce as the first time */
        answer_changed(&plan->current, request, logged, result);
        json_decref(logged);
        return WK_ANSWERED;
    }
    return refuse_or_plan(request, plan, result);
}

/* The checks on the ticket as read: 412, the plan, 409, or nothing to do.
 * @returns as decide. */
static wk_outcome refuse_or_plan(const tk_request *request, change_plan *plan, wk_result *result) {
    plan->version = version_of(&plan->current);
    if (request->has_if_match && plan->version != request->if_match) {
        wk_tickets_set_answer(result, 412, WK_MSG_MODIFIED, NULL);
        return WK_ANSWERED;
    }
    json_decref(plan->fields);
    plan->fields = differences_new(&plan->current, request);
    if (plan->fields == NULL) {
        wk_tickets_set_answer(result, 500, WK_MSG_INTERNAL, NULL);
        return WK_ANSWERED;
    }
    const char *status = wk_tickets_stored_text(&plan->current, "status");
    if (status != NULL && strcmp(status, "closed") == 0 && json_object_size(plan->fields) > 0) {
        wk_tickets_set_answer(result, 409, closed_message(plan->fields), NULL);
        return WK_ANSWERED;
    }
    if (json_object_size(plan->fields) == 0) { /* nothing new: no write, no event, no new __v */
        answer_changed(&plan->current, request, plan->fields, result);
        return WK_ANSWERED;
    }
    return WK_DONE;
}

/* $set, $unset, $inc and $push of the plan. */
static bson_t *update_new(const tk_request *request, const change_plan *plan, int64_t now) {
    bson_t *update = bson_new();
    bson_t set, unset, push, entry, logged, field;
    bson_oid_t command_id;
    const char *name;
    json_t *change;
    bson_oid_init_from_string(&command_id, request->command_id);
    BSON_APPEND_DOCUMENT_BEGIN(update, "$set", &set);
    json_object_foreach(plan->fields, name, change) {
        const char *value = json_string_value(json_object_get(change, "new"));
        if (value != NULL) BSON_APPEND_UTF8(&set, name, value);
    }
    BSON_APPEND_DATE_TIME(&set, "updatedAt", now);
    const char *status = new_status(plan->fields);
    if (status != NULL) BSON_APPEND_DATE_TIME(&set, "statusChangedAt", now);
    if (status != NULL && strcmp(status, "resolved") == 0) BSON_APPEND_DATE_TIME(&set, "resolvedAt", now);
    bson_append_document_end(update, &set);
    if (json_is_null(json_object_get(json_object_get(plan->fields, "assigneeId"), "new"))) {
        BSON_APPEND_DOCUMENT_BEGIN(update, "$unset", &unset);
        BSON_APPEND_UTF8(&unset, "assigneeId", "");
        bson_append_document_end(update, &unset);
    }
    BCON_APPEND(update, "$inc", "{", "__v", BCON_INT32(1), "}");
    BSON_APPEND_DOCUMENT_BEGIN(update, "$push", &push);
    BSON_APPEND_DOCUMENT_BEGIN(&push, "changeLog", &entry);
    BSON_APPEND_OID(&entry, "_id", &command_id);
    BSON_APPEND_UTF8(&entry, "actorId", request->actor.id);
    BSON_APPEND_DATE_TIME(&entry, "at", now);
    BSON_APPEND_DOCUMENT_BEGIN(&entry, "fields", &logged);
    json_object_foreach(plan->fields, name, change) {
        BSON_APPEND_DOCUMENT_BEGIN(&logged, name, &field);
        const char *old = json_string_value(json_object_get(change, "old"));
        const char *wanted = json_string_value(json_object_get(change, "new"));
        if (old != NULL) BSON_APPEND_UTF8(&field, "old", old);
        else BSON_APPEND_NULL(&field, "old");
        if (wanted != NULL) BSON_APPEND_UTF8(&field, "new", wanted);
        else BSON_APPEND_NULL(&field, "new");
        bson_append_document_end(&logged, &field);
    }
    bson_append_document_end(&entry, &logged);
    bson_append_document_end(&push, &entry);
    bson_append_document_end(update, &push);
    return update;
}

/* The conditional write; the ticket it leaves is kept in recent. @returns
 * WK_ANSWERED when applied (answer in *result), WK_DONE when it matched
 * nothing (read again), or as a failure. */
static wk_outcome write_plan(mongoc_collection_t *tickets, const tk_request *request, const change_plan *plan,
                             wk_recent *recent, wk_result *result) {
    bson_oid_t id;
    bson_error_t error;
    bson_t reply;
    bson_iter_t value;
    wk_outcome rc = WK_DONE;
    bson_oid_init_from_string(&id, request->ticket_id);
    /* The type __v is stored as ($inc keeps int32): FerretDB pushes equality
     * down as JSON containment, which is exact about it. */
    bson_t *query = plan->version <= INT32_MAX
                        ? BCON_NEW("_id", BCON_OID(&id), "__v", BCON_INT32((int32_t)plan->version))
                        : BCON_NEW("_id", BCON_OID(&id), "__v", BCON_INT64(plan->version));
    bson_t *update = update_new(request, plan, tk_now_ms());
    bson_t *extra = wk_tickets_max_time_opts_new();
    mongoc_find_and_modify_opts_t *opts = mongoc_find_and_modify_opts_new();
    mongoc_find_and_modify_opts_set_update(opts, update);
    mongoc_find_and_modify_opts_set_flags(opts, MONGOC_FIND_AND_MODIFY_RETURN_NEW);
    mongoc_find_and_modify_opts_append(opts, extra);
    if (!mongoc_collection_find_and_modify_with_opts(tickets, query, opts, &reply, &error)) {
        rc = wk_tickets_database_failure("findAndModify", &error, result);
        if (rc == WK_DONE) rc = WK_ANSWERED; /* a 500 is an answer */
    } else if (bson_iter_init_find(&value, &reply, "value") && BSON_ITER_HOLDS_DOCUMENT(&value)) {
        const uint8_t *data;
        uint32_t len;
        bson_t updated;
        bson_iter_document(&value, &len, &data);
        if (bson_init_static(&updated, data, len)) {
            answer_changed(&updated, request, plan->fields, result);
            wk_recent_put(recent, &updated);
        } else {
            wk_tickets_set_answer(result, 500, WK_MSG_INTERNAL, NULL);
        }
        rc = WK_ANSWERED;
    }
    bson_destroy(&reply);
    mongoc_find_and_modify_opts_destroy(opts);
    bson_destroy(extra);
    bson_destroy(update);
    bson_destroy(query);
    return rc;
}

/* Plans the change on the worker's copy of the ticket (wk_recent) instead of
 * a read; write_plan pins it to the copy's __v. Only "write this" is trusted
 * from a copy: a repeat, a refusal or nothing to do is read to be sure.
 * @returns true with a plan to write. */
static bool plan_on_copy(wk_recent *recent, const tk_request *request, change_plan *plan, wk_result *result) {
    bson_oid_t id;
    bson_oid_init_from_string(&id, request->ticket_id);
    if (!wk_recent_copy(recent, &id, &plan->current)) return false;
    if (wk_tickets_is_visible_to(&plan->current, &request->actor)) {
        json_t *logged = logged_fields_new(&plan->current, request->command_id);
        bool is_repeat = logged != NULL;
        json_decref(logged);
        if (!is_repeat && refuse_or_plan(request, plan, result) == WK_DONE) return true;
    }
    wk_result_close(result);
    memset(result, 0, sizeof *result);
    return false;
}

/* The write of a plan made on the copy. @returns WK_DONE when it could not
 * be used (no copy, not "write this", matched nothing: read and decide),
 * else how it ended. */
static wk_outcome change_on_copy(mongoc_collection_t *tickets, const tk_request *request, const wk_write_guard *guard,
                                 change_plan *plan, wk_result *result) {
    wk_recent *recent = guard != NULL ? guard->recent : NULL;
    if (!plan_on_copy(recent, request, plan, result)) return WK_DONE;
    if (!wk_tickets_may_write(guard)) return WK_FENCED;
    wk_outcome step = write_plan(tickets, request, plan, recent, result);
    if (step == WK_ANSWERED && result->status < 500) wk_metrics_write_unread();
    if (step == WK_DONE) { /* changed since: forget the copy and read */
        bson_oid_t id;
        bson_oid_init_from_string(&id, request->ticket_id);
        wk_recent_forget(recent, &id);
        wk_metrics_recent_stale();
    }
    return step;
}

wk_outcome wk_lifecycle_change(mongoc_collection_t *tickets, const tk_request *request, const wk_write_guard *guard,
                               wk_result *result) {
    change_plan plan = {BSON_INITIALIZER, -1, NULL};
    wk_outcome rc = WK_RETRY; /* every attempt lost to another writer: wait, then read again */
    wk_outcome step = change_on_copy(tickets, request, guard, &plan, result);
    if (step != WK_DONE) {
        rc = step == WK_ANSWERED ? WK_DONE : step;
        goto cleanup;
    }
    for (int attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
        step = decide(tickets, request, &plan, result);
        if (step == WK_DONE && !wk_tickets_may_write(guard)) step = WK_FENCED;
        if (step == WK_DONE) step = write_plan(tickets, request, &plan, guard != NULL ? guard->recent : NULL, result);
        if (step == WK_DONE) continue; /* matched nothing: someone wrote in between */
        rc = step == WK_ANSWERED ? WK_DONE : step;
        break;
    }
cleanup:
    json_decref(plan.fields);
    bson_destroy(&plan.current);
    return rc;
}
