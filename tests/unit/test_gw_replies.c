/* gw_replies without a broker: matching replies to waiting requests by
 * correlation id, putting chunked replies together (restart, pinned count,
 * missing or repeated chunks) and the statuses a reply may carry. */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_replies.h"
#include "tk_clock.h"
#include "tk_ids.h"
#include "tk_kafka.h"
#include "tk_log.h"
#include "tk_metrics.h"

#define INVALID_REPLY "{\"success\":false,\"message\":\"Invalid reply from worker\"}"
#define REPLY_200 \
    "{\"version\":1,\"status\":200,\"success\":true,\"message\":\"Ticket fetched successfullly!\",\"data\":[]}"
#define BODY_200 "{\"success\":true,\"message\":\"Ticket fetched successfullly!\",\"data\":[]}"

/* What the completion callback saw. */
typedef struct {
    int calls;
    int status;
    char *body;
} answers;

typedef struct {
    gw_pending pending;
    gw_replies replies;
    gw_pending_entry entry;
    answers answered;
} fixture;

static void on_complete(gw_pending_entry *entry, int status, char *body, size_t len, void *ctx) {
    (void)entry;
    answers *answered = ctx;
    answered->calls++;
    answered->status = status;
    free(answered->body);
    answered->body = NULL;
    if (body != NULL && (answered->body = malloc(len + 1)) != NULL) { /* bodies carry no NUL */
        memcpy(answered->body, body, len);
        answered->body[len] = '\0';
    }
    free(body); /* ownership came with the call */
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(gw_pending_init(&f->pending, 16), 0);
    f->replies.pending = &f->pending;
    f->replies.complete = on_complete;
    f->replies.ctx = &f->answered;
    f->replies.late_replies = tk_metrics_counter("unit_late_replies_total", "late", "");
    assert_int_equal(tk_correlation_id_new(f->entry.correlation_id), 0);
    f->entry.deadline_ms = tk_monotonic_ms() + 60000;
    gw_pending_lock(&f->pending);
    assert_int_equal(gw_pending_add_locked(&f->pending, &f->entry), 0);
    gw_pending_unlock(&f->pending);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    free(f->entry.chunks);
    free(f->answered.body);
    gw_pending_close(&f->pending);
    free(f);
    return 0;
}

/* Sends one message for the fixture's request; index/count < 0 leave the header out. */
static void send_to(fixture *f, const char *correlation_id, int index, int count, const char *payload) {
    char index_text[12], count_text[12];
    snprintf(index_text, sizeof index_text, "%d", index);
    snprintf(count_text, sizeof count_text, "%d", count);
    gw_reply_message message = {
        .correlation_id = correlation_id,
        .correlation_id_len = strlen(correlation_id),
        .chunk_index = index >= 0 ? index_text : NULL,
        .chunk_index_len = strlen(index_text),
        .chunk_count = count >= 0 ? count_text : NULL,
        .chunk_count_len = strlen(count_text),
        .payload = payload,
        .len = strlen(payload),
    };
    gw_replies_handle(&f->replies, &message);
}

static void send_chunk(fixture *f, int index, int count, const char *payload) {
    send_to(f, f->entry.correlation_id, index, count, payload);
}

static void assert_answered(const fixture *f, int status, const char *body) {
    assert_int_equal(f->answered.calls, 1);
    assert_int_equal(f->answered.status, status);
    assert_string_equal(f->answered.body, body);
    assert_int_equal(gw_pending_count((gw_pending *)&f->pending), 0);
}

static void assert_waiting(const fixture *f) {
    assert_int_equal(f->answered.calls, 0);
    assert_int_equal(gw_pending_count((gw_pending *)&f->pending), 1);
}

/* REPLY_200 cut in three pieces: no piece is JSON on its own. */
#define PIECE_MAX sizeof REPLY_200
static void pieces(char out[3][PIECE_MAX]) {
    static const char reply[] = REPLY_200;
    size_t third = (sizeof reply - 1) / 3;
    size_t starts[4] = {0, third, 2 * third, sizeof reply - 1};
    for (int i = 0; i < 3; i++) {
        memcpy(out[i], reply + starts[i], starts[i + 1] - starts[i]);
        out[i][starts[i + 1] - starts[i]] = '\0';
    }
}

/* ---- whole replies ---- */

static void test_whole_reply_is_answered_with_its_status(void **state) {
    fixture *f = *state;
    send_chunk(f, -1, -1, REPLY_200);
    assert_answered(f, 200, BODY_200);
}

static void test_reply_statuses_outside_http_are_502(void **state) {
    fixture *f = *state;
    /* The fast path used to accept any three digits: 600..999 went out as HTTP statuses. */
    send_chunk(f, -1, -1, "{\"version\":1,\"status\":700,\"success\":true,\"message\":\"x\"}");
    assert_answered(f, 502, INVALID_REPLY);
}

static void test_http_answer_statuses(void **state) {
    (void)state;
    static const struct {
        const char *reply;
        int status; /* 0: refused */
    } CASES[] = {
        {"{\"version\":1,\"status\":100,\"success\":false,\"message\":\"m\"}", 100},
        {"{\"version\":1,\"status\":599,\"success\":false,\"message\":\"m\"}", 599},
        {"{\"version\":1,\"status\":600,\"success\":false,\"message\":\"m\"}", 0},
        {"{\"version\":1,\"status\":999,\"success\":false,\"message\":\"m\"}", 0},
        {"{\"version\":1,\"status\":099,\"success\":false,\"message\":\"m\"}", 0},
        {"{\"version\":1,\"status\":99,\"success\":false,\"message\":\"m\"}", 0},
        {"{\"version\":1,\"status\":-200,\"success\":false,\"message\":\"m\"}", 0},
        {"{\"status\":404,\"version\":1,\"success\":false,\"message\":\"Ticket not found\"}", 404}, /* slow path */
        {"{\"version\":1,\"status\":1000,\"success\":false,\"message\":\"m\"}", 0},
        {"not json", 0},
        {"", 0},
    };
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        char err[256] = "";
        int status = 0;
        size_t len = 0;
        char *body = gw_replies_http_answer(CASES[i].reply, strlen(CASES[i].reply), NULL, &status, &len, err,
                                            sizeof err);
        if (CASES[i].status == 0) {
            if (body != NULL) fail_msg("accepted %s as %d", CASES[i].reply, status);
            assert_true(err[0] != '\0');
        } else {
            if (body == NULL) fail_msg("refused %s: %s", CASES[i].reply, err);
            assert_int_equal(status, CASES[i].status);
            assert_true(len >= 2 && body[0] == '{' && body[len - 1] == '}'); /* len counts, no NUL */
        }
        free(body);
    }
}

/* ---- correlation ids ---- */

static void test_only_the_exact_correlation_id_matches(void **state) {
    fixture *f = *state;
    tk_series *late = f->replies.late_replies;
    uint64_t late_before = tk_counter_value(late);
    char other[TK_CORRELATION_ID_LEN + 1];
    memcpy(other, f->entry.correlation_id, sizeof other);
    other[TK_CORRELATION_ID_LEN - 1] = other[TK_CORRELATION_ID_LEN - 1] == '0' ? '1' : '0'; /* one digit off */
    send_to(f, other, -1, -1, REPLY_200);
    char longer[TK_CORRELATION_ID_LEN + 2];
    snprintf(longer, sizeof longer, "%s0", f->entry.correlation_id); /* a prefix matches nothing */
    send_to(f, longer, -1, -1, REPLY_200);
    char shorter[TK_CORRELATION_ID_LEN];
    memcpy(shorter, f->entry.correlation_id, TK_CORRELATION_ID_LEN - 1);
    shorter[TK_CORRELATION_ID_LEN - 1] = '\0';
    send_to(f, shorter, -1, -1, REPLY_200);
    assert_waiting(f);
    assert_int_equal(tk_counter_value(late) - late_before, 3); /* counted as replies nobody waits for */
    send_chunk(f, -1, -1, REPLY_200);
    assert_answered(f, 200, BODY_200);
}

/* ---- chunks ---- */

static void test_chunks_in_order_make_the_reply(void **state) {
    fixture *f = *state;
    char part[3][PIECE_MAX];
    pieces(part);
    send_chunk(f, 0, 3, part[0]);
    send_chunk(f, 1, 3, part[1]);
    assert_waiting(f);
    send_chunk(f, 2, 3, part[2]);
    assert_answered(f, 200, BODY_200);
}

static void test_a_reply_sent_again_restarts_at_chunk_0(void **state) {
    fixture *f = *state;
    char part[3][PIECE_MAX];
    pieces(part);
    /* A worker sent chunks 0 and 1, then died; its successor sends 0..2. */
    send_chunk(f, 0, 3, part[0]);
    send_chunk(f, 1, 3, part[1]);
    send_chunk(f, 0, 3, part[0]);
    send_chunk(f, 1, 3, part[1]);
    assert_waiting(f);
    send_chunk(f, 2, 3, part[2]);
    assert_answered(f, 200, BODY_200);
}

static void test_a_restart_may_carry_another_count(void **state) {
    fixture *f = *state;
    char part[3][PIECE_MAX];
    pieces(part);
    /* The command answered again can give a longer reply (a list grew). */
    send_chunk(f, 0, 5, "garbage from the first attempt");
    send_chunk(f, 0, 3, part[0]);
    send_chunk(f, 1, 3, part[1]);
    send_chunk(f, 2, 3, part[2]);
    assert_answered(f, 200, BODY_200);
}

static void test_a_whole_reply_replaces_a_partial_one(void **state) {
    fixture *f = *state;
    send_chunk(f, 0, 3, "first attempt, ");
    send_chunk(f, -1, -1, REPLY_200);
    assert_answered(f, 200, BODY_200);
}

static void test_count_is_pinned_by_chunk_0(void **state) {
    fixture *f = *state;
    char part[3][PIECE_MAX];
    pieces(part);
    send_chunk(f, 0, 3, part[0]);
    send_chunk(f, 1, 2, part[1]); /* claims the reply ends here */
    assert_answered(f, 502, INVALID_REPLY);
    assert_null(f->entry.chunks); /* discarded */
}

static void test_missing_chunk_is_502(void **state) {
    fixture *f = *state;
    char part[3][PIECE_MAX];
    pieces(part);
    send_chunk(f, 0, 3, part[0]);
    send_chunk(f, 2, 3, part[2]);
    assert_answered(f, 502, INVALID_REPLY);
}

static void test_repeated_chunk_is_502(void **state) {
    fixture *f = *state;
    char part[3][PIECE_MAX];
    pieces(part);
    send_chunk(f, 0, 3, part[0]);
    send_chunk(f, 1, 3, part[1]);
    send_chunk(f, 1, 3, part[1]);
    assert_answered(f, 502, INVALID_REPLY);
}

static void test_missing_last_chunk_keeps_waiting(void **state) {
    fixture *f = *state;
    char part[3][PIECE_MAX];
    pieces(part);
    send_chunk(f, 0, 3, part[0]);
    send_chunk(f, 1, 3, part[1]);
    assert_waiting(f); /* the deadline answers it (504) */
    /* ...and the chunks after a 502 or a 504 are late, counted once. */
}

static void test_chunk_that_does_not_start_at_0_is_502(void **state) {
    fixture *f = *state;
    send_chunk(f, 1, 3, "x");
    assert_answered(f, 502, INVALID_REPLY);
}

static void test_inconsistent_chunk_headers_are_502(void **state) {
    static const char *const BAD[][2] = {
        {"0", NULL},  /* index without count */
        {NULL, "2"},  /* count without index */
        {"3", "3"},   /* index past the end */
        {"0", "0"},   /* no chunks */
        {"0", "129"}, /* more than 64 MiB */
        {"-1", "2"},  {"+0", "2"}, {" 0", "2"}, {"0x0", "2"}, {"", "2"}, {"0", "2 "},
    };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        fixture *f = *state;
        gw_reply_message message = {
            .correlation_id = f->entry.correlation_id,
            .correlation_id_len = TK_CORRELATION_ID_LEN,
            .chunk_index = BAD[i][0],
            .chunk_index_len = BAD[i][0] != NULL ? strlen(BAD[i][0]) : 0,
            .chunk_count = BAD[i][1],
            .chunk_count_len = BAD[i][1] != NULL ? strlen(BAD[i][1]) : 0,
            .payload = REPLY_200,
            .len = strlen(REPLY_200),
        };
        gw_replies_handle(&f->replies, &message);
        if (f->answered.calls != 1 || f->answered.status != 502)
            fail_msg("chunk-index %s, chunk-count %s: answered %d time(s), status %d", BAD[i][0], BAD[i][1],
                     f->answered.calls, f->answered.status);
        teardown(state);
        setup(state);
    }
}

static void test_chunk_larger_than_the_chunk_size_is_502(void **state) {
    fixture *f = *state;
    char *big = malloc(TK_REPLY_CHUNK_BYTES + 2);
    assert_non_null(big);
    memset(big, 'x', TK_REPLY_CHUNK_BYTES + 1);
    big[TK_REPLY_CHUNK_BYTES + 1] = '\0';
    send_chunk(f, 0, 2, big);
    free(big);
    assert_answered(f, 502, INVALID_REPLY);
}

static void test_chunks_that_are_not_a_reply_are_502(void **state) {
    fixture *f = *state;
    send_chunk(f, 0, 2, "{\"version\":1,");
    send_chunk(f, 1, 2, "\"status\":");
    assert_answered(f, 502, INVALID_REPLY);
}

static void test_add_chunk_directly(void **state) {
    (void)state;
    gw_pending_entry entry;
    memset(&entry, 0, sizeof entry);
    assert_int_equal(gw_replies_add_chunk(&entry, 0, 2, "ab", 2), GW_CHUNK_MORE);
    assert_int_equal(gw_replies_add_chunk(&entry, 1, 2, "", 0), GW_CHUNK_WHOLE); /* an empty chunk is fine */
    assert_int_equal(entry.chunks_len, 2);
    assert_memory_equal(entry.chunks, "ab", 2);
    assert_int_equal(gw_replies_add_chunk(&entry, 0, 1, "xyz", 3), GW_CHUNK_WHOLE); /* restart */
    assert_int_equal(entry.chunks_len, 3);
    assert_memory_equal(entry.chunks, "xyz", 3);
    assert_int_equal(gw_replies_add_chunk(&entry, 1, 1, "q", 1), GW_CHUNK_BROKEN);
    assert_null(entry.chunks);
    assert_int_equal(entry.chunks_len, 0);
    free(entry.chunks);
}

static void test_late_chunks_are_counted_once(void **state) {
    fixture *f = *state;
    tk_series *late = f->replies.late_replies;
    uint64_t before = tk_counter_value(late);
    char unknown[TK_CORRELATION_ID_LEN + 1];
    assert_int_equal(tk_correlation_id_new(unknown), 0);
    send_to(f, unknown, 0, 3, "a");
    send_to(f, unknown, 1, 3, "b");
    send_to(f, unknown, 2, 3, "c");
    assert_int_equal(tk_counter_value(late) - before, 1);
    assert_waiting(f);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void) {
    tk_log_init("unit", TK_LOG_ERROR); /* the 502s below log errors: expected */
    const struct CMUnitTest tests[] = {
        T(test_whole_reply_is_answered_with_its_status),
        T(test_reply_statuses_outside_http_are_502),
        cmocka_unit_test(test_http_answer_statuses),
        T(test_only_the_exact_correlation_id_matches),
        T(test_chunks_in_order_make_the_reply),
        T(test_a_reply_sent_again_restarts_at_chunk_0),
        T(test_a_restart_may_carry_another_count),
        T(test_a_whole_reply_replaces_a_partial_one),
        T(test_count_is_pinned_by_chunk_0),
        T(test_missing_chunk_is_502),
        T(test_repeated_chunk_is_502),
        T(test_missing_last_chunk_keeps_waiting),
        T(test_chunk_that_does_not_start_at_0_is_502),
        T(test_inconsistent_chunk_headers_are_502),
        T(test_chunk_larger_than_the_chunk_size_is_502),
        T(test_chunks_that_are_not_a_reply_are_502),
        cmocka_unit_test(test_add_chunk_directly),
        T(test_late_chunks_are_counted_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
