#include "wk_tickets.h"

#include <stdio.h>
#include <string.h>

#include "tk_ids.h"
#include "tk_log.h"
#include "tk_metrics.h"
#include "wk_store.h"
#include "wk_ticket_json.h"

#define DUPLICATE_KEY 11000

static const char MSG_CREATED[] = "Ticket created successfullly!";
static const char MSG_FETCHED[] = "Ticket fetched successfullly!";
static const char MSG_REPLIED[] = "Response added successfully!";
static const char MSG_NOT_FOUND[] = "Ticket not found";
static const char MSG_ID_TAKEN[] = "Ticket id already in use";
static const char MSG_INTERNAL[] = "Internal error, the request was not applied";

typedef int (*operation_fn)(mongoc_collection_t *tickets, const tk_request *request, wk_result *result);

static int create_ticket(mongoc_collection_t *tickets, const tk_request *request, wk_result *result);
static int add_reply(mongoc_collection_t *tickets, const tk_request *request, wk_result *result);
static int list_tickets(mongoc_collection_t *tickets, const tk_request *request, wk_result *result);
static int get_ticket(mongoc_collection_t *tickets, const tk_request *request, wk_result *result);

static const operation_fn OPERATIONS[TK_REQUEST_TYPE_COUNT] = {
    [TK_REQUEST_TICKET_CREATE] = create_ticket,
    [TK_REQUEST_TICKET_REPLY] = add_reply,
    [TK_REQUEST_TICKETS_LIST] = list_tickets,
    [TK_REQUEST_TICKET_GET] = get_ticket,
};

static void set_answer(wk_result *result, int status, const char *message, json_t *data) {
    result->status = status;
    result->message = message;
    result->data = data;
}

/* A database error: retry when it may pass, otherwise answer 500 (logged,
 * never a stack trace to the client). */
static int database_failure(const char *operation, const bson_error_t *error, wk_result *result) {
    bool is_transient = wk_store_is_transient(error);
    char labels[96];
    snprintf(labels, sizeof labels, "operation=\"%s\",transient=\"%s\"", operation, is_transient ? "true" : "false");
    tk_counter_add(tk_metrics_counter("ticket_worker_db_errors_total", "Database operations that failed", labels), 1);
    tk_log_fields(is_transient ? TK_LOG_WARN : TK_LOG_ERROR, "database error",
                  json_pack("{s:s, s:i, s:i, s:s, s:b}", "operation", operation, "domain", (int)error->domain, "code",
                            (int)error->code, "error", error->message, "willRetry", is_transient));
    if (is_transient) return WK_RETRY;
    set_answer(result, 500, MSG_INTERNAL, NULL);
    return 0;
}

/* The members every event starts with; the caller adds its own, then the
 * ticket last (the contract's order). @returns NULL when out of memory. */
static json_t *event_new(const char *type, const char *event_id_prefix, const char *event_id, const char *team) {
    char now[TK_ISO_TIME_LEN + 1];
    char id[64];
    tk_iso_time_format(tk_now_ms(), now);
    snprintf(id, sizeof id, "%s:%s", event_id_prefix, event_id);
    return json_pack("{s:i, s:s, s:s, s:s, s:s*}", "version", TK_ENVELOPE_VERSION, "type", type, "eventId", id,
                     "occurredAt", now, "teamId", team);
}

/* The stored team of a ticket, NULL when it has none (created by an admin
 * through Kafka). */
static const char *stored_team(const bson_t *ticket) {
    bson_iter_t iter;
    if (!bson_iter_init_find(&iter, ticket, "teamId") || !BSON_ITER_HOLDS_UTF8(&iter)) return NULL;
    return bson_iter_utf8(&iter, NULL);
}

static bool is_visible_to(const bson_t *ticket, const tk_actor *actor) {
    if (actor->is_admin) return true;
    const char *team = stored_team(ticket);
    return team != NULL && strcmp(team, actor->team) == 0;
}

/* Loads one ticket by id. @returns 1 found, 0 absent, -1 error (in *error). */
static int find_ticket(mongoc_collection_t *tickets, const bson_oid_t *id, bson_t *out, bson_error_t *error) {
    bson_t *filter = BCON_NEW("_id", BCON_OID(id));
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(tickets, filter, NULL, NULL);
    const bson_t *found = NULL;
    int rc = 0;
    if (mongoc_cursor_next(cursor, &found)) {
        bson_copy_to(found, out);
        rc = 1;
    } else if (mongoc_cursor_error(cursor, error)) {
        rc = -1;
    }
    mongoc_cursor_destroy(cursor);
    bson_destroy(filter);
    return rc;
}

static int answer_created(const bson_t *ticket, const char *ticket_id, wk_result *result) {
    json_t *data = wk_ticket_json_new(ticket);
    if (data == NULL) {
        set_answer(result, 500, MSG_INTERNAL, NULL);
        return 0;
    }
    result->event = event_new("ticket.created", "created", ticket_id, stored_team(ticket));
    if (result->event != NULL) json_object_set(result->event, "ticket", data);
    memcpy(result->event_key, ticket_id, TK_OBJECT_ID_LEN + 1);
    set_answer(result, 201, MSG_CREATED, data);
    return 0;
}

static int create_ticket(mongoc_collection_t *tickets, const tk_request *request, wk_result *result) {
    bson_oid_t id;
    bson_error_t error;
    bson_t existing = BSON_INITIALIZER;
    int64_t now = tk_now_ms();
    int rc = 0;
    bson_oid_init_from_string(&id, request->ticket_id);
    bson_t *ticket = BCON_NEW("_id", BCON_OID(&id), "creatorId", BCON_UTF8(request->actor.id), "creatorType",
                              BCON_UTF8("customer"), "category", BCON_UTF8(request->category), "subject",
                              BCON_UTF8(request->subject), "description", BCON_UTF8(request->description), "priority",
                              BCON_UTF8(request->priority), "status", BCON_UTF8("created"), "response", "[", "]",
                              "createdAt", BCON_DATE_TIME(now), "updatedAt", BCON_DATE_TIME(now), "__v",
                              BCON_INT32(0), "teamId", BCON_UTF8(request->actor.team));

    if (mongoc_collection_insert_one(tickets, ticket, NULL, NULL, &error)) {
        rc = answer_created(ticket, request->ticket_id, result);
        goto cleanup;
    }
    if (error.code != DUPLICATE_KEY) {
        rc = database_failure("insert", &error, result);
        goto cleanup;
    }
    /* Seen before: answer as the first time, if it is the same creator's. */
    int found = find_ticket(tickets, &id, &existing, &error);
    if (found < 0) {
        rc = database_failure("find", &error, result);
    } else if (found == 0 || !is_visible_to(&existing, &request->actor)) {
        set_answer(result, 409, MSG_ID_TAKEN, NULL);
    } else {
        rc = answer_created(&existing, request->ticket_id, result);
    }
cleanup:
    bson_destroy(&existing);
    bson_destroy(ticket);
    return rc;
}

static bool has_reply(const bson_t *ticket, const bson_oid_t *reply_id) {
    bson_iter_t iter, entries, field;
    if (!bson_iter_init_find(&iter, ticket, "response") || !BSON_ITER_HOLDS_ARRAY(&iter) ||
        !bson_iter_recurse(&iter, &entries))
        return false;
    while (bson_iter_next(&entries)) {
        if (bson_iter_recurse(&entries, &field) && bson_iter_find(&field, "_id") && BSON_ITER_HOLDS_OID(&field) &&
            bson_oid_equal(bson_iter_oid(&field), reply_id))
            return true;
    }
    return false;
}

static int answer_replied(const bson_t *ticket, const tk_request *request, wk_result *result) {
    json_t *data = wk_ticket_json_new(ticket);
    json_t *entries = json_object_get(data, "response");
    json_t *reply = NULL;
    size_t index;
    json_t *entry;
    json_array_foreach(entries, index, entry) {
        if (strcmp(json_string_value(json_object_get(entry, "_id")), request->reply_id) == 0) reply = entry;
    }
    if (data == NULL || reply == NULL) {
        json_decref(data);
        set_answer(result, 500, MSG_INTERNAL, NULL);
        return 0;
    }
    result->event = event_new("ticket.replied", "replied", request->reply_id, stored_team(ticket));
    if (result->event != NULL) {
        json_object_set_new(result->event, "ticketId", json_string(request->ticket_id));
        json_object_set(result->event, "reply", reply);
        json_object_set(result->event, "ticket", data);
    }
    memcpy(result->event_key, request->ticket_id, TK_OBJECT_ID_LEN + 1);
    set_answer(result, 200, MSG_REPLIED, data);
    return 0;
}

/* Read, check, then push. The commands of one ticket share a partition and
 * a partition has one consumer at a time (revocation waits for in-flight
 * work), so nothing writes this ticket between the read and the push.
 * The push filters on _id alone: FerretDB's SQLite backend uses its primary
 * key only for a lone {_id} filter and scans the collection for any other. */
static int add_reply(mongoc_collection_t *tickets, const tk_request *request, wk_result *result) {
    bson_oid_t ticket_id, reply_id;
    bson_error_t error;
    bson_t current = BSON_INITIALIZER;
    int rc = 0;
    bson_oid_init_from_string(&ticket_id, request->ticket_id);
    bson_oid_init_from_string(&reply_id, request->reply_id);

    int found = find_ticket(tickets, &ticket_id, &current, &error);
    if (found < 0) {
        rc = database_failure("find", &error, result);
        goto cleanup;
    }
    if (found == 0 || !is_visible_to(&current, &request->actor)) {
        set_answer(result, 404, MSG_NOT_FOUND, NULL);
        goto cleanup;
    }
    if (has_reply(&current, &reply_id)) { /* seen before: answer as the first time */
        rc = answer_replied(&current, request, result);
        goto cleanup;
    }

    int64_t now = tk_now_ms();
    bson_t *query = BCON_NEW("_id", BCON_OID(&ticket_id));
    bson_t *update = BCON_NEW("$push", "{", "response", "{", "_id", BCON_OID(&reply_id), "creatorId",
                              BCON_UTF8(request->actor.id), "creatorType",
                              BCON_UTF8(request->actor.is_admin ? "admin" : "customer"), "description",
                              BCON_UTF8(request->description), "createdAt", BCON_DATE_TIME(now), "updatedAt",
                              BCON_DATE_TIME(now), "}", "}", "$set", "{", "updatedAt", BCON_DATE_TIME(now), "}", "$inc",
                              "{", "__v", BCON_INT32(1), "}");
    mongoc_find_and_modify_opts_t *opts = mongoc_find_and_modify_opts_new();
    mongoc_find_and_modify_opts_set_update(opts, update);
    mongoc_find_and_modify_opts_set_flags(opts, MONGOC_FIND_AND_MODIFY_RETURN_NEW);
    bson_t reply;
    bson_iter_t value;
    if (!mongoc_collection_find_and_modify_with_opts(tickets, query, opts, &reply, &error)) {
        rc = database_failure("findAndModify", &error, result);
    } else if (bson_iter_init_find(&value, &reply, "value") && BSON_ITER_HOLDS_DOCUMENT(&value)) {
        const uint8_t *data;
        uint32_t len;
        bson_t updated;
        bson_iter_document(&value, &len, &data);
        if (bson_init_static(&updated, data, len)) rc = answer_replied(&updated, request, result);
        else set_answer(result, 500, MSG_INTERNAL, NULL);
    } else {
        set_answer(result, 404, MSG_NOT_FOUND, NULL); /* deleted since the read */
    }
    bson_destroy(&reply);
    mongoc_find_and_modify_opts_destroy(opts);
    bson_destroy(update);
    bson_destroy(query);
cleanup:
    bson_destroy(&current);
    return rc;
}

/* The filter every page of a list shares: scope, then the filter members
 * as plain equality (one value) or $in (several), AND-ed. Only shapes that
 * an index of wk_store serves, and that FerretDB pushes down. */
static bson_t *list_filter_new(const tk_request *request) {
    static const struct {
        const char *member;
        const char *stored; /* the field in the document */
    } FILTERS[] = {{"status", "status"}, {"priority", "priority"}, {"category", "category"},
                   {"creatorId", "creatorId"}, {"assigneeId", "assigneeId"}};
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
    json_t *list;                  /* the tickets shown */
    int64_t read;                  /* documents read */
    tk_cursor_position tail[2];    /* positions of the last two documents read */
    bool is_last_shown;            /* the last document read is the list's last entry */
} page_reader;

/* Reads up to `wanted` documents matching filter, newest first, into page.
 * @returns 0, or -1 with error. */
static int read_page(mongoc_collection_t *tickets, const bson_t *filter, int64_t wanted, page_reader *page,
                     bson_error_t *error) {
    const bson_t *document;
    bson_t *opts = BCON_NEW("sort", "{", "createdAt", BCON_INT32(-1), "_id", BCON_INT32(-1), "}", "limit",
                            BCON_INT64(wanted));
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
static int list_tickets(mongoc_collection_t *tickets, const tk_request *request, wk_result *result) {
    bson_error_t error;
    int64_t wanted = (int64_t)(request->limit > 0 ? request->limit : TK_LIST_LIMIT_DEFAULT) + 1;
    page_reader page = {json_array(), 0, {{0, ""}, {0, ""}}, false};
    json_t *list = page.list;
    bson_t *filter = list_filter_new(request);
    int rc = 0;
    if (list == NULL) {
        set_answer(result, 500, MSG_INTERNAL, NULL);
        goto cleanup;
    }
    if (request->after == NULL) {
        rc = read_page(tickets, filter, wanted, &page, &error);
    } else {
        bson_oid_t after_id;
        bson_oid_init_from_string(&after_id, request->after_position.id);
        bson_t *ties = bson_copy(filter);
        BCON_APPEND(ties, "createdAt", BCON_DATE_TIME(request->after_position.created_ms), "_id", "{", "$lt",
                    BCON_OID(&after_id), "}");
        rc = read_page(tickets, ties, wanted, &page, &error);
        bson_destroy(ties);
        if (rc == 0 && page.read < wanted) {
            bson_t *older = bson_copy(filter);
            BCON_APPEND(older, "createdAt", "{", "$lt", BCON_DATE_TIME(request->after_position.created_ms), "}");
            rc = read_page(tickets, older, wanted - page.read, &page, &error);
            bson_destroy(older);
        }
    }
    if (rc != 0) {
        rc = database_failure("find", &error, result);
        goto cleanup;
    }
    if (page.read == wanted) {
        /* The extra one only says that more follow: the page ends before it. */
        if (page.is_last_shown) json_array_remove(list, json_array_size(list) - 1);
        tk_cursor_encode(&page.tail[0],
                         tk_list_binding(request->actor.is_admin, request->actor.team, request->filter),
                         result->next_cursor);
    }
    set_answer(result, 200, MSG_FETCHED, list);
    list = NULL;
cleanup:
    json_decref(list);
    bson_destroy(filter);
    return rc;
}

/* One ticket by id; another team's is answered exactly as an unknown one. */
static int get_ticket(mongoc_collection_t *tickets, const tk_request *request, wk_result *result) {
    bson_oid_t id;
    bson_error_t error;
    bson_t ticket = BSON_INITIALIZER;
    bson_iter_t version;
    int rc = 0;
    bson_oid_init_from_string(&id, request->ticket_id);
    int found = find_ticket(tickets, &id, &ticket, &error);
    if (found < 0) {
        rc = database_failure("find", &error, result);
    } else if (found == 0 || !is_visible_to(&ticket, &request->actor)) {
        set_answer(result, 404, MSG_NOT_FOUND, NULL);
    } else {
        json_t *data = wk_ticket_json_new(&ticket);
        if (data != NULL && bson_iter_init_find(&version, &ticket, "__v") && BSON_ITER_HOLDS_NUMBER(&version))
            snprintf(result->etag, sizeof result->etag, "\"%lld\"", (long long)bson_iter_as_int64(&version));
        set_answer(result, data != NULL ? 200 : 500, data != NULL ? MSG_FETCHED : MSG_INTERNAL, data);
    }
    bson_destroy(&ticket);
    return rc;
}

int wk_tickets_execute(mongoc_collection_t *tickets, const tk_request *request, wk_result *result) {
    memset(result, 0, sizeof *result);
    int64_t started_us = tk_monotonic_us();
    int rc = OPERATIONS[request->type](tickets, request, result);
    char labels[64];
    snprintf(labels, sizeof labels, "operation=\"%s\"", tk_request_type_name(request->type));
    tk_histogram_observe(tk_metrics_histogram("ticket_worker_db_operation_duration_seconds",
                                              "Time spent in the database per request, by operation", labels),
                         (double)(tk_monotonic_us() - started_us) / 1e6);
    if (rc != 0) wk_result_close(result);
    return rc;
}

void wk_result_close(wk_result *result) {
    if (result == NULL) return;
    json_decref(result->data);
    json_decref(result->event);
    result->data = NULL;
    result->event = NULL;
}
