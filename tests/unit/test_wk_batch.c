/* wk_batch: a batch is what the queue holds, never more than the bound, in
 * order; it is cut into runs of plain creates, runs of plain replies to
 * distinct tickets, and messages handled alone (poison, queries, updates,
 * keyed commands); insertMany's answer splits a run into applied, already
 * applied and handled-alone members, the update's into applied and alone. */
#include "test_support.h"

#include <stdlib.h>
#include <string.h>

#include "wk_batch.h"

static rd_kafka_message_t MESSAGES[8];

/* A ring of capacity 4 whose head sits at 3, holding count messages 0.. */
static void fill_ring(wk_lane_slot ring[4], size_t *head, size_t *count, size_t how_many) {
    memset(ring, 0, 4 * sizeof *ring);
    *head = 3;
    *count = how_many;
    for (size_t i = 0; i < how_many; i++) ring[(3 + i) % 4] = (wk_lane_slot){&MESSAGES[i], 10 + i};
}

static void test_take_keeps_queue_order_across_the_wrap(void **state) {
    (void)state;
    wk_lane_slot ring[4], out[4];
    size_t head, count;
    fill_ring(ring, &head, &count, 3);
    assert_int_equal(wk_batch_take(ring, 4, &head, &count, out, 256), 3);
    for (size_t i = 0; i < 3; i++) {
        assert_ptr_equal(out[i].message, &MESSAGES[i]);
        assert_int_equal(out[i].epoch, 10 + i);
    }
    assert_int_equal(count, 0);
    assert_int_equal(head, 2);
}

static void test_take_stops_at_the_bound_and_leaves_the_rest(void **state) {
    (void)state;
    wk_lane_slot ring[4], out[4];
    size_t head, count;
    fill_ring(ring, &head, &count, 4);
    assert_int_equal(wk_batch_take(ring, 4, &head, &count, out, 2), 2);
    assert_int_equal(count, 2);
    assert_int_equal(wk_batch_take(ring, 4, &head, &count, out, 2), 2);
    assert_ptr_equal(out[0].message, &MESSAGES[2]);
    assert_ptr_equal(out[1].message, &MESSAGES[3]);
}

static void test_take_from_an_empty_queue_takes_nothing(void **state) {
    (void)state;
    wk_lane_slot ring[4], out[4];
    size_t head, count;
    fill_ring(ring, &head, &count, 0);
    assert_int_equal(wk_batch_take(ring, 4, &head, &count, out, 256), 0);
    fill_ring(ring, &head, &count, 1); /* one message alone is a batch of one: no wait for a second */
    assert_int_equal(wk_batch_take(ring, 4, &head, &count, out, 256), 1);
}

/* Parses a data file's envelope and says how the batch handles it. */
static wk_batch_kind kind_of_file(const char *relative) {
    char *path = tu_data_path(relative);
    size_t len;
    char *text = tu_read_file(path, &len);
    char reason[TK_ERROR_TEXT_MAX];
    tk_request request;
    int rc = tk_request_parse(text, len, &request, reason, sizeof reason);
    if (rc != 0) memset(&request, 0, sizeof request);
    wk_batch_kind kind = wk_batch_kind_of(rc, &request);
    if (rc == 0) tk_request_close(&request);
    free(text);
    free(path);
    return kind;
}

static void test_only_plain_valid_creates_and_replies_join_a_run(void **state) {
    (void)state;
    assert_int_equal(kind_of_file("envelope/valid/create-contract-example.json"), WK_BATCH_CREATE);
    /* poison: alone, so it goes to the dead-letter topic by itself */
    assert_int_equal(kind_of_file("envelope/invalid/actor-id-blank.json"), WK_BATCH_ALONE);
    /* a keyed create writes its key record first: alone */
    assert_int_equal(kind_of_file("envelope/valid/create-idempotency-key-255-chars.json"), WK_BATCH_ALONE);
    assert_int_equal(kind_of_file("envelope/valid/reply-customer.json"), WK_BATCH_REPLY);
    assert_int_equal(kind_of_file("envelope/valid/reply-admin-internal.json"), WK_BATCH_REPLY);
    assert_int_equal(kind_of_file("envelope/valid/reply-customer-internal-false-if-match.json"), WK_BATCH_REPLY);
    /* a keyed reply writes its key record first: alone */
    assert_int_equal(kind_of_file("envelope/valid/reply-with-idempotency-key.json"), WK_BATCH_ALONE);
    assert_int_equal(kind_of_file("envelope/valid/update-every-change.json"), WK_BATCH_ALONE);
    tk_request reply = {0};
    reply.type = TK_REQUEST_TICKET_REPLY;
    assert_int_equal(wk_batch_kind_of(-1, &reply), WK_BATCH_ALONE); /* poison whatever it claims */
}

static void test_groups_keep_the_order(void **state) {
    (void)state;
    const wk_batch_kind C = WK_BATCH_CREATE, A = WK_BATCH_ALONE;
    const wk_batch_kind kinds[] = {C, C, C, A, C, A, A, C, C};
    const size_t ends[] = {3, 4, 5, 6, 7, 9};
    size_t start = 0, group = 0;
    while (start < 9) {
        size_t end = wk_batch_group_end(kinds, NULL, 9, start);
        assert_int_equal(end, ends[group++]);
        start = end;
    }
    assert_int_equal(group, 6);
}

/* Cuts kinds (replies to tickets[i]) into groups; @returns how many, ends in ends. */
static size_t cut(const wk_batch_kind *kinds, const char *const *tickets, size_t count, size_t *ends) {
    tk_request requests[16];
    memset(requests, 0, sizeof requests);
    for (size_t i = 0; i < count; i++) requests[i].ticket_id = tickets[i];
    size_t groups = 0;
    for (size_t start = 0; start < count; start = ends[groups++])
        ends[groups] = wk_batch_group_end(kinds, requests, count, start);
    return groups;
}

static void test_reply_runs_hold_one_reply_per_ticket_in_order(void **state) {
    (void)state;
    const wk_batch_kind R = WK_BATCH_REPLY, C = WK_BATCH_CREATE, A = WK_BATCH_ALONE;
    /* a b c | a (second to a) b' ... : a repeat ticket starts the next group */
    const wk_batch_kind kinds[] = {R, R, R, R, R, C, C, R, A, R, R};
    const char *const tickets[] = {"a", "b", "c", "a", "d", "x", "y", "a", "q", "a", "a"};
    const size_t expected[] = {3, 5, 7, 8, 9, 10, 11};
    size_t ends[16];
    size_t groups = cut(kinds, tickets, 11, ends);
    assert_int_equal(groups, 7);
    for (size_t g = 0; g < groups; g++) assert_int_equal(ends[g], expected[g]);
}

static void test_a_run_of_replies_to_one_ticket_goes_one_at_a_time(void **state) {
    (void)state;
    const wk_batch_kind R = WK_BATCH_REPLY;
    const wk_batch_kind kinds[] = {R, R, R};
    const char *const tickets[] = {"t", "t", "t"};
    size_t ends[16];
    assert_int_equal(cut(kinds, tickets, 3, ends), 3);
    assert_int_equal(ends[0], 1);
    assert_int_equal(ends[2], 3);
}

static bson_t *write_errors_reply(const int *indexes, const int *codes, size_t count) {
    bson_t *reply = bson_new(), errors, entry;
    char key[16];
    const char *key_text;
    BSON_APPEND_INT32(reply, "nInserted", (int32_t)(5 - count));
    BSON_APPEND_ARRAY_BEGIN(reply, "writeErrors", &errors);
    for (size_t i = 0; i < count; i++) {
        bson_uint32_to_string((uint32_t)i, &key_text, key, sizeof key);
        BSON_APPEND_DOCUMENT_BEGIN(&errors, key_text, &entry);
        BSON_APPEND_INT32(&entry, "index", indexes[i]);
        BSON_APPEND_INT32(&entry, "code", codes[i]);
        BSON_APPEND_UTF8(&entry, "errmsg", "E");
        bson_append_document_end(&errors, &entry);
    }
    bson_append_array_end(reply, &errors);
    return reply;
}

static void test_an_accepted_insert_applies_every_member(void **state) {
    (void)state;
    wk_batch_fate fates[3] = {WK_FATE_ALONE, WK_FATE_ALONE, WK_FATE_ALONE};
    bson_t *reply = BCON_NEW("nInserted", BCON_INT32(3));
    wk_batch_classify(true, reply, 3, fates);
    for (size_t i = 0; i < 3; i++) assert_int_equal(fates[i], WK_FATE_APPLIED);
    bson_destroy(reply);
}

static void test_duplicates_are_already_applied_others_go_alone(void **state) {
    (void)state;
    const int indexes[] = {1, 4, 3, 9};
    const int codes[] = {11000, 11000, 2, 11000}; /* 9 is out of range: ignored */
    bson_t *reply = write_errors_reply(indexes, codes, 4);
    wk_batch_fate fates[5];
    wk_batch_classify(false, reply, 5, fates);
    assert_int_equal(fates[0], WK_FATE_APPLIED);
    assert_int_equal(fates[1], WK_FATE_ALREADY_APPLIED);
    assert_int_equal(fates[2], WK_FATE_APPLIED);
    assert_int_equal(fates[3], WK_FATE_ALONE);
    assert_int_equal(fates[4], WK_FATE_ALREADY_APPLIED);
    bson_destroy(reply);
}

static void test_an_unknown_outcome_sends_everyone_alone(void **state) {
    (void)state;
    wk_batch_fate fates[3];
    bson_t empty = BSON_INITIALIZER; /* a network error: no per-document answer */
    wk_batch_classify(false, &empty, 3, fates);
    for (size_t i = 0; i < 3; i++) assert_int_equal(fates[i], WK_FATE_ALONE);
    wk_batch_classify(false, NULL, 3, fates);
    for (size_t i = 0; i < 3; i++) assert_int_equal(fates[i], WK_FATE_ALONE);

    const int indexes[] = {0};
    const int codes[] = {11000};
    bson_t *reply = write_errors_reply(indexes, codes, 1), concern, entry;
    BSON_APPEND_ARRAY_BEGIN(reply, "writeConcernErrors", &concern);
    BSON_APPEND_DOCUMENT_BEGIN(&concern, "0", &entry);
    BSON_APPEND_INT32(&entry, "code", 64);
    bson_append_document_end(&concern, &entry);
    bson_append_array_end(reply, &concern);
    wk_batch_classify(false, reply, 3, fates);
    for (size_t i = 0; i < 3; i++) assert_int_equal(fates[i], WK_FATE_ALONE);
    bson_destroy(reply);
}

static void test_an_update_that_matched_every_statement_applies_all(void **state) {
    (void)state;
    wk_batch_fate fates[4];
    bson_t *reply = BCON_NEW("n", BCON_INT32(4), "nModified", BCON_INT32(4), "ok", BCON_DOUBLE(1));
    wk_batch_classify_updates(true, reply, 4, fates);
    for (size_t i = 0; i < 4; i++) assert_int_equal(fates[i], WK_FATE_APPLIED);
    bson_destroy(reply);
}

static void test_an_update_short_of_matches_sends_everyone_alone(void **state) {
    (void)state;
    wk_batch_fate fates[4];
    /* one condition failed (raced, stored already, ticket gone): which one is not said */
    bson_t *reply = BCON_NEW("n", BCON_INT32(3), "nModified", BCON_INT32(3), "ok", BCON_DOUBLE(1));
    wk_batch_classify_updates(true, reply, 4, fates);
    for (size_t i = 0; i < 4; i++) assert_int_equal(fates[i], WK_FATE_ALONE);
    bson_destroy(reply);
    bson_t empty = BSON_INITIALIZER; /* network error, no "n" */
    wk_batch_classify_updates(false, &empty, 4, fates);
    for (size_t i = 0; i < 4; i++) assert_int_equal(fates[i], WK_FATE_ALONE);
    wk_batch_classify_updates(false, NULL, 4, fates);
    for (size_t i = 0; i < 4; i++) assert_int_equal(fates[i], WK_FATE_ALONE);
}

static void test_an_update_write_error_sends_that_statement_alone(void **state) {
    (void)state;
    const int indexes[] = {2};
    const int codes[] = {11000}; /* even a duplicate key: an update's error is never "already applied" */
    bson_t *reply = write_errors_reply(indexes, codes, 1);
    BSON_APPEND_INT32(reply, "n", 3);
    wk_batch_fate fates[4];
    wk_batch_classify_updates(true, reply, 4, fates);
    assert_int_equal(fates[0], WK_FATE_APPLIED);
    assert_int_equal(fates[1], WK_FATE_APPLIED);
    assert_int_equal(fates[2], WK_FATE_ALONE);
    assert_int_equal(fates[3], WK_FATE_APPLIED);
    bson_destroy(reply);

    reply = write_errors_reply(indexes, codes, 1); /* and the others short: all alone */
    BSON_APPEND_INT32(reply, "n", 2);
    wk_batch_classify_updates(true, reply, 4, fates);
    for (size_t i = 0; i < 4; i++) assert_int_equal(fates[i], WK_FATE_ALONE);
    bson_destroy(reply);

    reply = BCON_NEW("n", BCON_INT32(4)); /* a write concern error: durability unknown */
    bson_t concern, entry;
    BSON_APPEND_ARRAY_BEGIN(reply, "writeConcernErrors", &concern);
    BSON_APPEND_DOCUMENT_BEGIN(&concern, "0", &entry);
    BSON_APPEND_INT32(&entry, "code", 64);
    bson_append_document_end(&concern, &entry);
    bson_append_array_end(reply, &concern);
    wk_batch_classify_updates(true, reply, 4, fates);
    for (size_t i = 0; i < 4; i++) assert_int_equal(fates[i], WK_FATE_ALONE);
    bson_destroy(reply);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_take_keeps_queue_order_across_the_wrap),
        cmocka_unit_test(test_take_stops_at_the_bound_and_leaves_the_rest),
        cmocka_unit_test(test_take_from_an_empty_queue_takes_nothing),
        cmocka_unit_test(test_only_plain_valid_creates_and_replies_join_a_run),
        cmocka_unit_test(test_groups_keep_the_order),
        cmocka_unit_test(test_reply_runs_hold_one_reply_per_ticket_in_order),
        cmocka_unit_test(test_a_run_of_replies_to_one_ticket_goes_one_at_a_time),
        cmocka_unit_test(test_an_accepted_insert_applies_every_member),
        cmocka_unit_test(test_duplicates_are_already_applied_others_go_alone),
        cmocka_unit_test(test_an_unknown_outcome_sends_everyone_alone),
        cmocka_unit_test(test_an_update_that_matched_every_statement_applies_all),
        cmocka_unit_test(test_an_update_short_of_matches_sends_everyone_alone),
        cmocka_unit_test(test_an_update_write_error_sends_that_statement_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
