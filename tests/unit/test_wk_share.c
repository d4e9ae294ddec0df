/* wk_share: a query answered from the kept read only when it is the same
 * query byte for byte; the shared answer outlives the kept one; a clear (a
 * write in between) makes the next query read again; the reply text dumped
 * once lives and dies with the kept answer. */
#include "test_support.h"

#include <stdlib.h>
#include <string.h>

#include "wk_share.h"

#define QUERY "{\"version\":1,\"type\":\"tickets.list\",\"actor\":{\"id\":\"u1\",\"team\":\"t1\"}}"
#define OTHER "{\"version\":1,\"type\":\"tickets.list\",\"actor\":{\"id\":\"u1\",\"team\":\"t2\"}}"

static rd_kafka_message_t message_of(const char *text) {
    rd_kafka_message_t message;
    memset(&message, 0, sizeof message);
    message.payload = (void *)text;
    message.len = strlen(text);
    return message;
}

static wk_result page_result(void) {
    wk_result result;
    memset(&result, 0, sizeof result);
    result.status = 200;
    result.message = "fetched";
    result.data = json_pack("[{s:s}]", "_id", "a1");
    strcpy(result.next_cursor, "cursor-1");
    return result;
}

static void test_same_query_gets_the_kept_answer(void **state) {
    (void)state;
    wk_share share;
    wk_share_init(&share);
    rd_kafka_message_t first = message_of(QUERY);
    char copy[] = QUERY; /* another message, same bytes */
    rd_kafka_message_t second = message_of(copy);
    wk_result result = page_result();
    wk_share_keep(&share, &first, &result);
    wk_result shared;
    assert_true(wk_share_lookup(&share, &second, &shared));
    assert_int_equal(shared.status, 200);
    assert_string_equal(shared.next_cursor, "cursor-1");
    assert_ptr_equal(shared.data, result.data);
    assert_null(shared.event);
    wk_result_close(&result);
    wk_share_clear(&share); /* the answer handed out still holds its data */
    assert_string_equal(json_string_value(json_object_get(json_array_get(shared.data, 0), "_id")), "a1");
    wk_result_close(&shared);
}

static void test_another_query_reads_again(void **state) {
    (void)state;
    wk_share share;
    wk_share_init(&share);
    rd_kafka_message_t first = message_of(QUERY);
    rd_kafka_message_t other = message_of(OTHER);
    rd_kafka_message_t prefix = message_of(QUERY);
    prefix.len -= 1;
    wk_result result = page_result();
    wk_share_keep(&share, &first, &result);
    wk_result_close(&result);
    wk_result shared;
    assert_false(wk_share_lookup(&share, &other, &shared));
    assert_false(wk_share_lookup(&share, &prefix, &shared));
    wk_share_clear(&share);
}

static void test_nothing_shared_after_a_clear_or_before_a_keep(void **state) {
    (void)state;
    wk_share share;
    wk_share_init(&share);
    rd_kafka_message_t first = message_of(QUERY);
    wk_result shared;
    assert_false(wk_share_lookup(&share, &first, &shared));
    wk_result result = page_result();
    wk_share_keep(&share, &first, &result);
    wk_share_clear(&share);
    assert_false(wk_share_lookup(&share, &first, &shared));
    wk_result_close(&result);
}

static void test_an_answer_with_an_event_is_never_kept(void **state) {
    (void)state;
    wk_share share;
    wk_share_init(&share);
    rd_kafka_message_t first = message_of(QUERY);
    wk_result result = page_result();
    result.event = json_object();
    assert_false(wk_share_keep(&share, &first, &result));
    wk_result shared;
    assert_false(wk_share_lookup(&share, &first, &shared));
    wk_result_close(&result);
    wk_share_clear(&share);
}

static void test_the_reply_text_is_kept_with_its_answer(void **state) {
    (void)state;
    wk_share share;
    wk_share_init(&share);
    rd_kafka_message_t first = message_of(QUERY);
    size_t len = 1;
    wk_share_keep_reply(&share, strdup("{}"), 2); /* nothing kept: freed at once */
    assert_null(wk_share_reply(&share, &len));
    wk_result result = page_result();
    assert_true(wk_share_keep(&share, &first, &result));
    assert_null(wk_share_reply(&share, &len)); /* not dumped yet */
    wk_share_keep_reply(&share, strdup("{\"version\":1}"), 13);
    wk_share_keep_reply(&share, strdup("{\"other\":1}"), 11); /* the first one stays */
    const char *text = wk_share_reply(&share, &len);
    assert_int_equal(len, 13);
    assert_memory_equal(text, "{\"version\":1}", 13);
    /* Another query kept, or a write in between: its text goes with it. */
    assert_true(wk_share_keep(&share, &first, &result));
    assert_null(wk_share_reply(&share, &len));
    wk_share_keep_reply(&share, strdup("{}"), 2);
    wk_share_clear(&share);
    assert_null(wk_share_reply(&share, &len));
    assert_int_equal(len, 0);
    wk_result_close(&result);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_query_gets_the_kept_answer),
        cmocka_unit_test(test_another_query_reads_again),
        cmocka_unit_test(test_nothing_shared_after_a_clear_or_before_a_keep),
        cmocka_unit_test(test_an_answer_with_an_event_is_never_kept),
        cmocka_unit_test(test_the_reply_text_is_kept_with_its_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
