/* wk_tickets — the ticket operations against MongoDB, each safe to repeat:
 * the ids come with the command, so a redelivered command changes nothing
 * and answers the same. */
#include "wk_tickets.h"

#include <stdio.h>
#include <string.h>

#include "tk_clock.h"
#include "tk_ids.h"
#include "tk_log.h"
#include "wk_lifecycle.h"
#include "wk_metrics.h"
#include "wk_reply.h"
#include "wk_store.h"
#include "wk_ticket_json.h"

static const char MSG_CREATED[] = "Ticket created successfullly!";
static const char MSG_FETCHED[] = "Ticket fetched successfullly!";
const char WK_MSG_NOT_FOUND[] = "Ticket not found";
const char WK_MSG_CLOSED[] = "Ticket is closed";
const char WK_MSG_MODIFIED[] = "Ticket was modified by someone else";
static const char MSG_ID_TAKEN[] = "Ticket id already in use";
const char WK_MSG_INTERNAL[] = "Internal error, the request was not applied";

typedef wk_outcome (*operation_fn)(mongoc_collection_t *tickets, const tk_request *request, const wk_write_guard *guard,
                                   wk_result *result);

static wk_outcome create_ticket(mongoc_collection_t *tickets, const tk_request *request, const wk_write_guard *guard,
                                wk_result *result);
static wk_outcome list_tickets(mongoc_collection_t *tickets, const tk_request *request, const wk_write_guard *guard,
                               wk_result *result);
static wk_outcome get_ticket(mongoc_collection_t *tickets, const tk_request *request, const wk_write_guard *guard,
                             wk_result *result);

static const operation_fn OPERATIONS[TK_REQUEST_TYPE_COUNT] = {
    [TK_REQUEST_TICKET_CREATE] = create_ticket,       [TK_REQUEST_TICKET_REPLY] = wk_reply_add,
    [TK_REQUEST_TICKETS_LIST] = list_tickets,         [TK_REQUEST_TICKET_GET] = get_ticket,
    [TK_REQUEST_TICKET_UPDATE] = wk_lifecycle_change, [TK_REQUEST_TICKET_RESOLVE] = wk_lifecycle_change,
};

void wk_tickets_set_answer(wk_result *result, int status, const char *message, json_t *data) {
    result->status = status;
    result->message = message;
    result->data = data;
}

/* Customers never see internal notes: not in a list, a ticket, or the answer
 * to their own reply or resolve. The event keeps them: services read events. */
void wk_tickets_hide_internal(const tk_request *request, wk_result *result) {
    if (request->actor.is_admin || result->data == NULL) return;
    result->data = wk_ticket_json_hide_internal(result->data);
    if (result->data == NULL) wk_tickets_set_answer(result, 500, WK_MSG_INTERNAL, NULL);
}

/* A database error: retry when it may pass or when a write's outcome is
 * unknown (the retry reads before it writes, see wk_store_is_transient),
 * otherwise answer 500 (logged, never a stack trace to the client). */
wk_outcome wk_tickets_database_failure(const char *operation, const bson_error_t *error, wk_result *result) {
    bool is_transient = wk_store_is_transient(error);
    wk_metrics_db_error(operation, is_transient);
    tk_log_fields(is_transient ? TK_LOG_WARN : TK_LOG_ERROR, "database error",
                  json_pack("{s:s, s:i, s:i, s:s, s:b}", "operation", operation, "domain", (int)error->domain, "code",
                            (int)error->code, "error", error->message, "willRetry", is_transient));
    if (is_transient) return WK_RETRY;
    wk_tickets_set_answer(result, 500, WK_MSG_INTERNAL, NULL);
    return WK_DONE;
}

/* Right before a write: a partition revoked since the message was taken
 * belongs to another worker now, which applies the command itself. */
bool wk_tickets_may_write(const wk_write_guard *guard) { return guard == NULL || wk_lease_holds(guard->lease); }

/* Every read and write carries maxTimeMS, so a stuck server gives up before
 * the driver's socket timeout and the lane learns of it. */
bson_t *wk_tickets_max_time_opts_new(void) { return BCON_NEW("maxTimeMS", BCON_INT64(WK_STORE_MAX_TIME_MS)); }

/* The members every event starts with; the caller adds its own, then the
 * ticket last (the contract's order). @returns NULL when out of memory. */
json_t *wk_tickets_event_new(const char *type, const char *event_id_prefix, const char *event_id, const char *team) {
    char now[TK_ISO_TIME_LEN + 1];
    char id[64];
    tk_iso_time_format(tk_now_ms(), now);
    snprintf(id, sizeof id, "%s:%s", event_id_prefix, event_id);
    return json_pack("{s:i, s:s, s:s, s:s, s:s*}", "version", TK_ENVELOPE_VERSION, "type", type, "eventId", id,
                     "occurredAt", now, "teamId", team);
}

const char *wk_tickets_stored_text(const bson_t *ticket, const char *name) {
    bson_iter_t iter;
    if (!bson_iter_init_find(&iter, ticket, name) || !BSON_ITER_HOLDS_UTF8(&iter)) return NULL;
    return bson_iter_utf8(&iter, NULL);
}

/* The stored team of a ticket, NULL when it has none (created by an admin
 * through Kafka). */
const char *wk_tickets_stored_team(const bson_t *ticket) { return wk_tickets_stored_text(ticket, "teamId"); }

bool wk_tickets_is_visible_to(const bson_t *ticket, const tk_actor *actor) {
    if (actor->is_admin) return true;
    const char *team = wk_tickets_stored_team(ticket);
    return team != NULL && strcmp(team, actor->team) == 0;
}

/* Loads one ticket by id into out, replacing what it held. @returns 1
 * found, 0 absent, -1 error (in *error). */
int wk_tickets_find(mongoc_collection_t *tickets, const bson_oid_t *id, bson_t *out, bson_error_t *error) {
    bson_t *filter = BCON_NEW("_id", BCON_OID(id));
    bson_t *opts = wk_tickets_max_time_opts_new();
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(tickets, filter, opts, NULL);
    const bson_t *found = NULL;
    int rc = 0;
    if (mongoc_cursor_next(cursor, &found)) {
        /* bson_copy_to writes over out: free what out holds first (a second
         * read into the same ticket, or one after the worker's copy, wk_recent). */
        bson_destroy(out);
        bson_copy_to(found, out);
        rc = 1;
    } else if (mongoc_cursor_error(cursor, error)) {
        rc = -1;
    }
    mongoc_cursor_destroy(cursor);
    bson_destroy(opts);
    bson_destroy(filter);
    return rc;
}

static wk_outcome answer_created(const bson_t *ticket, const char *ticket_id, wk_result *result) {
    json_t *data = wk_ticket_json_new(ticket);
    if (data == NULL) {
        wk_tickets_set_answer(result, 500, WK_MSG_INTERNAL, NULL);
        return WK_DONE;
    }
    result->event = wk_tickets_event_new("ticket.created", "created", ticket_id, wk_tickets_stored_team(ticket));
    if (result->event != NULL) json_object_set(result->event, "ticket", data);
    memcpy(result->event_key, ticket_id, TK_OBJECT_ID_LEN + 1);
    wk_tickets_set_answer(result, 201, MSG_CREATED, data);
    return WK_DONE;
}

bson_t *wk_tickets_create_document_new(const tk_request *request, int64_t now_ms) {
    bson_oid_t id;
    bson_oid_init_from_string(&id, request->ticket_id);
    return BCON_NEW("_id", BCON_OID(&id), "creatorId", BCON_UTF8(request->actor.id), "creatorType",
                    BCON_UTF8("customer"), "category", BCON_UTF8(request->category), "subject",
                    BCON_UTF8(request->subject), "description", BCON_UTF8(request->description), "priority",
                    BCON_UTF8(request->priority), "status", BCON_UTF8("created"), "response", "[", "]", "createdAt",
                    BCON_DATE_TIME(now_ms), "updatedAt", BCON_DATE_TIME(now_ms), "__v", BCON_INT32(0), "teamId",
                    BCON_UTF8(request->actor.team));
}

wk_outcome wk_tickets_answer_created(const bson_t *ticket, const char *ticket_id, wk_result *result) {
    memset(result, 0, sizeof *result);
    return answer_created(ticket, ticket_id, result);
}

wk_outcome wk_tickets_answer_repeated_create(mongoc_collection_t *tickets, const tk_request *request,
                                             wk_result *result) {
    bson_oid_t id;
    bson_error_t error;
    bson_t existing = BSON_INITIALIZER;
    wk_outcome rc = WK_DONE;
    memset(result, 0, sizeof *result);
    bson_oid_init_from_string(&id, request->ticket_id);
    /* Seen before: answer as the first time, if it is the same creator's. */
    int found = wk_tickets_find(tickets, &id, &existing, &error);
    if (found < 0) {
        rc = wk_tickets_database_failure("find", &error, result);
    } else if (found == 0 || !wk_tickets_is_visible_to(&existing, &request->actor)) {
        wk_tickets_set_answer(result, 409, MSG_ID_TAKEN, NULL);
    } else {
        rc = answer_created(&existing, request->ticket_id, result);
        wk_tickets_hide_internal(request, result); /* notes may have come since */
    }
    bson_destroy(&existing);
    return rc;
}

static wk_outcome create_ticket(mongoc_collection_t *tickets, const tk_request *request, const wk_write_guard *guard,
                                wk_result *result) {
    bson_error_t error;
    wk_outcome rc = WK_DONE;
    bson_t *ticket = wk_tickets_create_document_new(request, tk_now_ms());

    if (!wk_tickets_may_write(guard)) {
        rc = WK_FENCED;
        goto cleanup;
    }
    if (mongoc_collection_insert_one(tickets, ticket, NULL, NULL, &error)) {
        rc = answer_created(ticket, request->ticket_id, result);
        wk_recent_put(guard != NULL ? guard->recent : NULL, ticket);
        goto cleanup;
    }
    if (error.code != WK_DUPLICATE_KEY) {
        rc = wk_tickets_database_failure("insert", &error, result);
        goto cleanup;
    }
    rc = wk_tickets_answer_repeated_create(tickets, request, result);
cleanup:
    bson_destroy(ticket);
    return rc;
}

/* The filter every page of a list shares: scope, then the filter members
 * as plain equality (one value) or $in (several), AND-ed. Only shapes that
 * an index of wk_store serves, and that FerretDB pushes down. */
static bson_t *list_filter_new(const tk_request *request) {
    static const struct {
        const char *member;
        const char *stored; /* the field in the document */
    } FILTERS[] = {{"status", "status"},
                   {"priority", "priority"},
                   {"category", "category"},
                   {"creatorId", "creatorId"},
                   {"assigneeId", "assigneeId"}};
    bson_t *filter = bson_new();
    const char *team = request->actor.is_admin ? json_string_value(json_object_get(request->filter, "team"))
                                               : request->actor.team;
    if (team != NULL) BSON_APPEND_UTF8(filter, "teamId", team);
    for (size_t i = 0; i < sizeof FILTERS / sizeof FILTERS[0]; i++) {
        json_t *value = json_object_get(request->filter, FILTERS[i].member);
        if (json_is_string(value)) {
            BSON_APPEND_UTF8(filter, FILTERS[i].stored, json_string_value(value));
        } else if (json_array_size(value) == 1) {
            BSON_APPEND_UTF8(filter, FILTERS[i].stored, json_string_value(json_array_get(value, 0)));
        } else if (json_array_size(value) > 1) {
            bson_t in, values;
            size_t index;
            json_t *item;
            BSON_APPEND_DOCUMENT_BEGIN(filter, FILTERS[i].stored, &in);
            BSON_APPEND_ARRAY_BEGIN(&in, "$in", &values);
            json_array_foreach(value, index, item) {
                char key[16];
                const char *key_text;
                bson_uint32_to_string((uint32_t)index, &key_text, key, sizeof key);
                bson_append_utf8(&values, key_text, -1, json_string_value(item), -1);
            }
            bson_append_array_end(&in, &values);
            bson_append_document_end(filter, &in);
        }
    }
    return filter;
}

/* What a page has read so far. Positions count every document read, shown
 * or skipped as malformed, so one bad document can neither end a walk early
 * nor put the next cursor before a ticket already shown. */
typedef struct {
    json_t *list;               /* the tickets shown */
    int64_t read;               /* documents read */
    tk_cursor_position tail[2]; /* positions of the last two documents read */
    bool is_last_shown;         /* the last document read is the list's last entry */
} page_reader;

/* Reads up to `wanted` documents matching filter, newest first, into page.
 * @returns 0, or -1 with error. */
static int read_page(mongoc_collection_t *tickets, const bson_t *filter, int64_t wanted, page_reader *page,
                     bson_error_t *error) {
    const bson_t *document;
    bson_t *opts = BCON_NEW("sort", "{", "createdAt", BCON_INT32(-1), "_id", BCON_INT32(-1), "}", "limit",
                            BCON_INT64(wanted), "maxTimeMS", BCON_INT64(WK_STORE_MAX_TIME_MS));
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(tickets, filter, opts, NULL);
    while (mongoc_cursor_next(cursor, &document)) {
        bson_iter_t iter;
        json_t *ticket = wk_ticket_json_new(document);
        page->read++;
        page->tail[0] = page->tail[1];
        if (bson_iter_init_find(&iter, document, "createdAt") && BSON_ITER_HOLDS_DATE_TIME(&iter))
            page->tail[1].created_ms = bson_iter_date_time(&iter);
        if (bson_iter_init_find(&iter, document, "_id") && BSON_ITER_HOLDS_OID(&iter))
            bson_oid_to_string(bson_iter_oid(&iter), page->tail[1].id);
        page->is_last_shown = ticket != NULL && json_array_append_new(page->list, ticket) == 0;
        /* One malformed document must not hide the others. */
        if (ticket == NULL) tk_log_fields(TK_LOG_ERROR, "skipping malformed ticket document", NULL);
    }
    int rc = mongoc_cursor_error(cursor, error) ? -1 : 0;
    mongoc_cursor_destroy(cursor);
    bson_destroy(opts);
    return rc;
}

/* Keyset pages: after a cursor (C, ID), first the rest of C's millisecond
 * ({createdAt: C, _id: {$lt: ID}}), then everything older ({createdAt:
 * {$lt: C}}). Both are index ranges with equality in front, so a page costs
 * what it returns; tickets created during a walk sort before the cursor
 * and never shift what is still to come. One document more than the page
 * is read to learn whether another page follows. */
static wk_outcome list_tickets(mongoc_collection_t *tickets, const tk_request *request, const wk_write_guard *guard,
                               wk_result *result) {
    (void)guard; /* reads only */
    bson_error_t error;
    int64_t wanted = (int64_t)(request->limit > 0 ? request->limit : TK_LIST_LIMIT_DEFAULT) + 1;
    page_reader page = {json_array(), 0, {{0, ""}, {0, ""}}, false};
    json_t *list = page.list;
    bson_t *filter = list_filter_new(request);
    wk_outcome rc = WK_DONE;
    int read_rc = 0;
    if (list == NULL) {
        wk_tickets_set_answer(result, 500, WK_MSG_INTERNAL, NULL);
        goto cleanup;
    }
    if (request->after == NULL) {
        read_rc = read_page(tickets, filter, wanted, &page, &error);
    } else {
        bson_oid_t after_id;
        bson_oid_init_from_string(&after_id, request->after_position.id);
        bson_t *ties = bson_copy(filter);
        BCON_APPEND(ties, "createdAt", BCON_DATE_TIME(request->after_position.created_ms), "_id", "{", "$lt",
                    BCON_OID(&after_id), "}");
        read_rc = read_page(tickets, ties, wanted, &page, &error);
        bson_destroy(ties);
        if (read_rc == 0 && page.read < wanted) {
            bson_t *older = bson_copy(filter);
            BCON_APPEND(older, "createdAt", "{", "$lt", BCON_DATE_TIME(request->after_position.created_ms), "}");
            read_rc = read_page(tickets, older, wanted - page.read, &page, &error);
            bson_destroy(older);
        }
    }
    if (read_rc != 0) {
        rc = wk_tickets_database_failure("find", &error, result);
        goto cleanup;
    }
    if (page.read == wanted) {
        /* The extra one only says that more follow: the page ends before it. */
        if (page.is_last_shown) json_array_remove(list, json_array_size(list) - 1);
        tk_cursor_encode(&page.tail[0], tk_list_binding(request->actor.is_admin, request->actor.team, request->filter),
                         result->next_cursor);
    }
    wk_tickets_set_answer(result, 200, MSG_FETCHED, list);
    list = NULL;
cleanup:
    json_decref(list);
    bson_destroy(filter);
    return rc;
}

/* One ticket by id; another team's is answered exactly as an unknown one. */
static wk_outcome get_ticket(mongoc_collection_t *tickets, const tk_request *request, const wk_write_guard *guard,
                             wk_result *result) {
    bson_oid_t id;
    bson_error_t error;
    bson_t ticket = BSON_INITIALIZER;
    bson_iter_t version;
    wk_outcome rc = WK_DONE;
    bson_oid_init_from_string(&id, request->ticket_id);
    int found = wk_tickets_find(tickets, &id, &ticket, &error);
    if (found < 0) {
        rc = wk_tickets_database_failure("find", &error, result);
    } else if (found == 0 || !wk_tickets_is_visible_to(&ticket, &request->actor)) {
        wk_tickets_set_answer(result, 404, WK_MSG_NOT_FOUND, NULL);
    } else {
        json_t *data = wk_ticket_json_new(&ticket);
        wk_recent_put(guard != NULL ? guard->recent : NULL, &ticket); /* a reply often follows a read */
        if (data != NULL && bson_iter_init_find(&version, &ticket, "__v") && BSON_ITER_HOLDS_NUMBER(&version))
            snprintf(result->etag, sizeof result->etag, "\"%lld\"", (long long)bson_iter_as_int64(&version));
        wk_tickets_set_answer(result, data != NULL ? 200 : 500, data != NULL ? MSG_FETCHED : WK_MSG_INTERNAL, data);
    }
    bson_destroy(&ticket);
    return rc;
}

wk_outcome wk_tickets_execute(mongoc_collection_t *tickets, const tk_request *request, const wk_write_guard *guard,
                              wk_result *result) {
    memset(result, 0, sizeof *result);
    if (OPERATIONS[request->type] == NULL) { /* a type the parser knows and this table not yet */
        wk_tickets_set_answer(result, 500, WK_MSG_INTERNAL, NULL);
        return WK_DONE;
    }
    int64_t started_us = tk_monotonic_us();
    wk_outcome rc = OPERATIONS[request->type](tickets, request, guard, result);
    wk_metrics_db_duration(request->type, (double)(tk_monotonic_us() - started_us) / 1e6);
    if (rc == WK_DONE) wk_tickets_hide_internal(request, result);
    if (rc != WK_DONE) wk_result_close(result);
    return rc;
}

void wk_result_close(wk_result *result) {
    if (result == NULL) return;
    json_decref(result->data);
    json_decref(result->event);
    json_decref(result->status_event);
    result->data = NULL;
    result->event = NULL;
    result->status_event = NULL;
}
