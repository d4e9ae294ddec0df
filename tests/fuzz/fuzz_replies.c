/* Fuzz target: messages on the gateway's reply partition (gw_replies_handle)
 * for one waiting request. Input: records separated by '\n', each
 * "<chunk-index>|<chunk-count>|<payload>", where "-" leaves a header out and
 * a record starting with '!' carries another correlation id. Oracles: the
 * request is answered at most once, with a status of 100..599, and the body
 * is a JSON object (or the pass-through shape, see on_complete); and the
 * pass-through (gw_passthru) agrees with the parsing path on every payload
 * (check_passthru). */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gw_passthru.h"
#include "gw_replies.h"
#include "tk_ids.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    int calls;
} answers;

static void on_complete(gw_pending_entry *entry, int status, char *body, size_t len, void *ctx) {
    (void)entry;
    answers *answered = ctx;
    answered->calls++;
    assert(status >= 100 && status <= 599);
    json_error_t error;
    json_t *parsed = json_loadb(body, len, 0, &error);
    if (parsed == NULL) {
        /* Only the pass-through path (a reply starting with
         * {"version":1,"status":NNN,"success":) forwards bytes unparsed: it
         * trusts the worker's JSON after that prefix, to spare parsing lists
         * of megabytes. Anything else must be JSON. */
        static const char SHAPE[] = "{\"success\":";
        assert(len > sizeof SHAPE - 1 && memcmp(body, SHAPE, sizeof SHAPE - 1) == 0 && body[len - 1] == '}');
    } else {
        assert(json_is_object(parsed));
        json_decref(parsed);
    }
    free(body);
}

static void assert_same_meta(const gw_pending_entry *fast, const gw_pending_entry *slow) {
    assert((fast->next_cursor == NULL) == (slow->next_cursor == NULL));
    assert(fast->next_cursor == NULL || strcmp(fast->next_cursor, slow->next_cursor) == 0);
    assert(strcmp(fast->etag, slow->etag) == 0);
}

/* The parsing path over the members gw_passthru read, followed by a minimal
 * body: it must accept them and read the same status, cursor and ETag. */
static void check_prefix(const char *data, size_t prefix_len, int status, const gw_pending_entry *fast) {
    static const char MINIMAL[] = "\"success\":true,\"message\":\"\"}";
    char *reply = malloc(prefix_len + sizeof MINIMAL);
    assert(reply != NULL);
    memcpy(reply, data, prefix_len);
    memcpy(reply + prefix_len, MINIMAL, sizeof MINIMAL);
    gw_pending_entry slow = {0};
    int slow_status = 0;
    size_t len = 0;
    char err[256];
    char *body = gw_replies_parsed_answer(reply, prefix_len + sizeof MINIMAL - 1, &slow, &slow_status, &len, err,
                                          sizeof err);
    assert(body != NULL && slow_status == status);
    assert_same_meta(fast, &slow);
    free(body);
    free(slow.next_cursor);
    free(reply);
}

/* When parsing accepts the whole reply too, it answers the same meta and the
 * same body once the pass-through's is put in jansson's form (the bytes after
 * "success" are the worker's and passed as they are). */
static void check_whole(const char *data, size_t len, int status, const gw_pending_entry *fast, const char *fast_body,
                        size_t fast_len) {
    gw_pending_entry slow = {0};
    int slow_status = 0;
    size_t slow_len = 0;
    char err[256];
    char *body = gw_replies_parsed_answer(data, len, &slow, &slow_status, &slow_len, err, sizeof err);
    if (body == NULL) return;
    assert(slow_status == status);
    assert_same_meta(fast, &slow);
    json_error_t error;
    json_t *parsed = json_loadb(fast_body, fast_len, JSON_REJECT_DUPLICATES, &error);
    assert(parsed != NULL);
    char *normal = json_dumps(parsed, JSON_COMPACT);
    assert(normal != NULL && strlen(normal) == slow_len && memcmp(normal, body, slow_len) == 0);
    free(normal);
    json_decref(parsed);
    free(body);
    free(slow.next_cursor);
}

static void check_passthru(const char *data, size_t len) {
    gw_pending_entry fast = {0};
    int status = 0;
    size_t body_len = 0;
    char *body = gw_passthru_answer(data, len, &fast, &status, &body_len);
    if (body == NULL) {
        assert(fast.next_cursor == NULL && fast.etag[0] == '\0');
        return;
    }
    assert(status >= 100 && status <= 599 && body_len >= 2 && body_len - 1 <= len);
    check_prefix(data, len - (body_len - 1), status, &fast);
    check_whole(data, len, status, &fast, body, body_len);
    free(body);
    free(fast.next_cursor);
}

/* The next '|'-separated field of [*at, end), as a view; NULL for "-". */
static const char *next_field(const char **at, const char *end, size_t *len) {
    const char *start = *at;
    const char *bar = memchr(start, '|', (size_t)(end - start));
    const char *stop = bar != NULL ? bar : end;
    *len = (size_t)(stop - start);
    *at = bar != NULL ? bar + 1 : end;
    return *len == 1 && start[0] == '-' ? NULL : start;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gw_pending pending;
    if (gw_pending_init(&pending, 4) != 0) return 0;
    gw_pending_entry entry;
    memset(&entry, 0, sizeof entry);
    memcpy(entry.correlation_id, "0123456789abcdef0123456789abcdef", TK_CORRELATION_ID_LEN + 1);
    gw_pending_lock(&pending);
    gw_pending_add_locked(&pending, &entry);
    gw_pending_unlock(&pending);
    answers answered = {0};
    gw_replies replies;
    memset(&replies, 0, sizeof replies);
    replies.pending = &pending;
    replies.complete = on_complete;
    replies.ctx = &answered;

    const char *at = (const char *)data;
    const char *end = at + size;
    while (at < end) {
        const char *newline = memchr(at, '\n', (size_t)(end - at));
        const char *record_end = newline != NULL ? newline : end;
        bool is_other = at < record_end && *at == '!';
        const char *cursor = is_other ? at + 1 : at;
        gw_reply_message message = {
            .correlation_id = is_other ? "0123456789abcdef0123456789abcdee" : entry.correlation_id,
            .correlation_id_len = TK_CORRELATION_ID_LEN,
        };
        message.chunk_index = next_field(&cursor, record_end, &message.chunk_index_len);
        message.chunk_count = next_field(&cursor, record_end, &message.chunk_count_len);
        message.payload = cursor;
        message.len = (size_t)(record_end - cursor);
        check_passthru(message.payload, message.len);
        int before = answered.calls;
        gw_replies_handle(&replies, &message);
        assert(answered.calls <= 1);
        if (answered.calls == before && answered.calls == 0) assert(gw_pending_count(&pending) == 1);
        at = newline != NULL ? newline + 1 : end;
    }
    free(entry.chunks);
    free(entry.next_cursor); /* a list page's cursor, freed with the request in gw_http */
    gw_pending_close(&pending);
    return 0;
}
