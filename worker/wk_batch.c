/* wk_batch — group commit without the database: taking a batch off a lane,
 * cutting it into order-keeping groups, reading insertMany's answer. */
#include "wk_batch.h"

#include <string.h>

#define DUPLICATE_KEY 11000

size_t wk_batch_take(wk_lane_slot *ring, size_t capacity, size_t *head, size_t *count, wk_lane_slot *out, size_t max) {
    size_t taken = 0;
    while (taken<max && * count> 0) {
        out[taken++] = ring[*head];
        *head = (*head + 1) % capacity;
        (*count)--;
    }
    return taken;
}

wk_batch_kind wk_batch_kind_of(int parse_rc, const tk_request *request) {
    /* A keyed command may be rewritten to the first request's ids: its key
     * record is a write of its own, kept on the one-message path. */
    if (parse_rc != 0 || request->idempotency_key != NULL) return WK_BATCH_ALONE;
    if (request->type == TK_REQUEST_TICKET_CREATE) return WK_BATCH_CREATE;
    return request->type == TK_REQUEST_TICKET_REPLY ? WK_BATCH_REPLY : WK_BATCH_ALONE;
}

/* true when a reply of requests[start..end) goes to ticket_id already. */
static bool has_ticket(const tk_request *requests, size_t start, size_t end, const char *ticket_id) {
    for (size_t i = start; i < end; i++)
        if (strcmp(requests[i].ticket_id, ticket_id) == 0) return true;
    return false;
}

size_t wk_batch_group_end(const wk_batch_kind *kinds, const tk_request *requests, size_t count, size_t start) {
    size_t end = start + 1;
    if (kinds[start] == WK_BATCH_ALONE) return end;
    /* One reply per ticket: the second is decided on the first's result. */
    while (end < count && kinds[end] == kinds[start] &&
           (kinds[start] != WK_BATCH_REPLY || !has_ticket(requests, start, end, requests[end].ticket_id)))
        end++;
    return end;
}

wk_lease wk_batch_lease_of(wk_fence *fence, const wk_lane_slot *slot) {
    return (wk_lease){fence, rd_kafka_topic_name(slot->message->rkt), slot->message->partition, slot->epoch};
}

/* Reads one writeErrors entry's index and code. */
static void read_write_error(bson_iter_t *entry, int64_t *index, int64_t *code) {
    bson_iter_t field;
    *index = -1;
    *code = 0;
    if (!BSON_ITER_HOLDS_DOCUMENT(entry) || !bson_iter_recurse(entry, &field)) return;
    while (bson_iter_next(&field)) {
        if (!BSON_ITER_HOLDS_NUMBER(&field)) continue;
        if (strcmp(bson_iter_key(&field), "index") == 0) *index = bson_iter_as_int64(&field);
        if (strcmp(bson_iter_key(&field), "code") == 0) *code = bson_iter_as_int64(&field);
    }
}

/* Sets the fate of each member named in writeErrors (a duplicate key is
 * duplicate's). @returns how many were named. */
static size_t classify_write_errors(const bson_t *reply, size_t count, wk_batch_fate duplicate, wk_batch_fate *fates) {
    bson_iter_t iter, errors;
    size_t named = 0;
    if (reply == NULL || !bson_iter_init_find(&iter, reply, "writeErrors") || !BSON_ITER_HOLDS_ARRAY(&iter) ||
        !bson_iter_recurse(&iter, &errors))
        return 0;
    while (bson_iter_next(&errors)) {
        int64_t index, code;
        read_write_error(&errors, &index, &code);
        if (index < 0 || (uint64_t)index >= count) continue;
        fates[index] = code == DUPLICATE_KEY ? duplicate : WK_FATE_ALONE;
        named++;
    }
    return named;
}

/* A write concern error leaves every write's durability unknown. */
static bool has_concern_error(const bson_t *reply) {
    bson_iter_t iter;
    return reply != NULL && bson_iter_init_find(&iter, reply, "writeConcernErrors") && BSON_ITER_HOLDS_ARRAY(&iter) &&
           bson_iter_recurse(&iter, &iter) && bson_iter_next(&iter);
}

void wk_batch_classify(bool is_ok, const bson_t *reply, size_t count, wk_batch_fate *fates) {
    for (size_t i = 0; i < count; i++) fates[i] = WK_FATE_APPLIED;
    if (is_ok) return;
    size_t named = classify_write_errors(reply, count, WK_FATE_ALREADY_APPLIED, fates);
    if (named == 0 || has_concern_error(reply))
        for (size_t i = 0; i < count; i++) fates[i] = WK_FATE_ALONE;
}

void wk_batch_classify_updates(bool is_ok, const bson_t *reply, size_t count, wk_batch_fate *fates) {
    bson_iter_t iter;
    for (size_t i = 0; i < count; i++) fates[i] = WK_FATE_APPLIED;
    size_t named = classify_write_errors(reply, count, WK_FATE_ALONE, fates);
    bool has_matched = reply != NULL && bson_iter_init_find(&iter, reply, "n") && BSON_ITER_HOLDS_NUMBER(&iter);
    bool is_certain = (is_ok || named > 0) && has_matched && !has_concern_error(reply) &&
                      bson_iter_as_int64(&iter) == (int64_t)(count - named);
    if (!is_certain)
        for (size_t i = 0; i < count; i++) fates[i] = WK_FATE_ALONE;
}
