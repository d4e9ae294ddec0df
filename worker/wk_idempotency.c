/* wk_idempotency — client retries with an Idempotency-Key: the first request
 * under a key (per user, kept 24 h) fixes the ids; a repeat with the same
 * content is rewritten to those ids, so applying it changes nothing and
 * answers as the first time; a repeat with other content is refused. */
#include "wk_idempotency.h"

#include <stdio.h>
#include <string.h>

#include "tk_clock.h"
#include "tk_log.h"
#include "tk_text.h"
#include "wk_store.h"

#define FINGERPRINT_HEX 32

static const char MSG_KEY_REUSED[] = "Idempotency-Key was already used with a different request body";

/* 128 bits of FNV-1a over what makes two requests "the same": the type, the
 * target ticket of a write to one, and the content. Fields are NUL-separated;
 * the lifecycle's (status, assignee, internal, If-Match) follow only when a
 * request has them, so that records stored before they existed still match. */
static const char *or_empty(const char *text) { return text != NULL ? text : ""; }

static bool has_lifecycle_parts(const tk_request *request) {
    return request->status != NULL || request->assignee_id != NULL || request->is_unassign || request->internal ||
           request->has_if_match || request->type == TK_REQUEST_TICKET_RESOLVE;
}

static void fingerprint(const tk_request *request, char out[FINGERPRINT_HEX + 1]) {
    char if_match[24] = "";
    if (request->has_if_match) snprintf(if_match, sizeof if_match, "%lld", request->if_match);
    bool has_lifecycle = has_lifecycle_parts(request);
    const char *parts[] = {
        tk_request_type_name(request->type), request->type != TK_REQUEST_TICKET_CREATE ? request->ticket_id : "",
        or_empty(request->category),         or_empty(request->subject),
        or_empty(request->description),      or_empty(request->priority),
        or_empty(request->status),           request->is_unassign ? "\x01" : or_empty(request->assignee_id),
        request->internal ? "internal" : "", if_match};
    size_t part_count = has_lifecycle ? sizeof parts / sizeof parts[0] : 6;
    uint64_t low = 1469598103934665603ULL, high = 0x6c62272e07bb0142ULL;
    for (size_t p = 0; p < part_count; p++) {
        for (const char *c = parts[p];; c++) {
            low = (low ^ (unsigned char)*c) * 1099511628211ULL;
            high = (high ^ (unsigned char)*c) * 0x100000001b3ULL + (low >> 29);
            if (*c == '\0') break;
        }
    }
    snprintf(out, FINGERPRINT_HEX + 1, "%016llx%016llx", (unsigned long long)high, (unsigned long long)low);
}

static bson_t *record_new(const char *record_id, const char *print, const tk_request *request, int64_t now_ms) {
    bson_t *record = BCON_NEW("_id", BCON_UTF8(record_id), "fingerprint", BCON_UTF8(print), "ticketId",
                              BCON_UTF8(request->ticket_id), "createdAt", BCON_DATE_TIME(now_ms));
    if (request->response_id != NULL) BSON_APPEND_UTF8(record, "replyId", request->response_id);
    if (request->command_id != NULL) BSON_APPEND_UTF8(record, "commandId", request->command_id);
    return record;
}

static const char *record_text(const bson_t *record, const char *name) {
    bson_iter_t iter;
    return bson_iter_init_find(&iter, record, name) && BSON_ITER_HOLDS_UTF8(&iter) ? bson_iter_utf8(&iter, NULL) : "";
}

/* Points *id (when the request has one) at the record's stored id, copied to buffer. */
static void adopt_id(const bson_t *record, const char *name, const char **id, char buffer[TK_OBJECT_ID_LEN + 1]) {
    const char *stored = record_text(record, name);
    if (*id == NULL || !tk_object_id_is_valid(stored, strlen(stored))) return;
    memcpy(buffer, stored, TK_OBJECT_ID_LEN + 1);
    *id = buffer;
}

/* Loads the record and applies it. @returns as wk_idempotency_resolve. */
static wk_outcome follow_record(mongoc_collection_t *keys, const bson_t *filter, tk_request *request, const char *print,
                                int64_t now_ms, wk_original_ids *original, wk_result *result) {
    bson_error_t error;
    const bson_t *record;
    wk_outcome rc = WK_DONE;
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(keys, filter, NULL, NULL);
    if (!mongoc_cursor_next(cursor, &record)) {
        /* Vanished between insert and find (expired): apply as new. */
        rc = mongoc_cursor_error(cursor, &error) ? WK_RETRY : WK_DONE;
        goto cleanup;
    }
    bson_iter_t created;
    bool is_expired = bson_iter_init_find(&created, record, "createdAt") && BSON_ITER_HOLDS_DATE_TIME(&created) &&
                      bson_iter_date_time(&created) < now_ms - (int64_t)WK_IDEMPOTENCY_TTL_SECONDS * 1000;
    if (is_expired) {
        /* Older than the promise: this request starts a new life for the key. */
        bson_t *replacement = record_new(record_text(record, "_id"), print, request, now_ms);
        bool is_ok = mongoc_collection_replace_one(keys, filter, replacement, NULL, NULL, &error);
        bson_destroy(replacement);
        rc = is_ok ? WK_DONE : WK_RETRY;
        goto cleanup;
    }
    if (strcmp(record_text(record, "fingerprint"), print) != 0) {
        result->status = 422;
        result->message = MSG_KEY_REUSED;
        rc = WK_ANSWERED;
        goto cleanup;
    }
    const char *ticket_id = record_text(record, "ticketId");
    if (!tk_object_id_is_valid(ticket_id, strlen(ticket_id))) goto cleanup;
    adopt_id(record, "ticketId", &request->ticket_id, original->ticket_id);
    adopt_id(record, "replyId", &request->response_id, original->response_id);
    adopt_id(record, "commandId", &request->command_id, original->command_id);
cleanup:
    mongoc_cursor_destroy(cursor);
    return rc;
}

wk_outcome wk_idempotency_resolve(mongoc_collection_t *keys, tk_request *request, wk_original_ids *original,
                                  wk_result *result) {
    if (request->idempotency_key == NULL) return WK_DONE;
    char print[FINGERPRINT_HEX + 1];
    char record_id[TK_PRINCIPAL_BUF_SIZE + TK_IDEMPOTENCY_KEY_MAX + 1];
    bson_error_t error;
    int64_t now_ms = tk_now_ms();
    fingerprint(request, print);
    /* Keys belong to a user: two users may pick the same key. */
    snprintf(record_id, sizeof record_id, "%s\x1f%s", request->actor.id, request->idempotency_key);

    bson_t *record = record_new(record_id, print, request, now_ms);
    bool is_inserted = mongoc_collection_insert_one(keys, record, NULL, NULL, &error);
    bson_destroy(record);
    if (is_inserted) return WK_DONE;
    if (error.code != WK_DUPLICATE_KEY) {
        tk_log_fields(TK_LOG_WARN, "idempotency record not stored", json_pack("{s:s}", "error", error.message));
        return wk_store_is_transient(&error) ? WK_RETRY : WK_DONE;
    }
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(record_id));
    wk_outcome rc = follow_record(keys, filter, request, print, now_ms, original, result);
    bson_destroy(filter);
    return rc;
}
