/* wk_output against librdkafka's in-process mock cluster: a traceparent from
 * Kafka is checked by the gateway's rule (tk_trace) before it is passed on,
 * and a reply the broker refuses for good is dead-lettered, its offset
 * released only once the dead letter is stored (never dropped). */
#include "test_support.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tk_clock.h"
#include "tk_kafka.h"
#include "tk_log.h"
#include "wk_output.h"
#include "wk_progress.h"

#define WAIT_MS 10000
#define VALID_TRACEPARENT "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

static struct {
    rd_kafka_t *owner; /* holds the mock cluster, produces the test's input */
    rd_kafka_mock_cluster_t *cluster;
    rd_kafka_t *reader;
} F;

static void set(rd_kafka_conf_t *conf, const char *name, const char *value) {
    char err[256];
    if (rd_kafka_conf_set(conf, name, value, err, sizeof err) != RD_KAFKA_CONF_OK) fail_msg("%s: %s", name, err);
}

static int group_setup(void **state) {
    (void)state;
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set(conf, "test.mock.num.brokers", "1");
    set(conf, "log_level", "0");
    set(conf, "linger.ms", "0");
    F.owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (F.owner == NULL) fail_msg("rd_kafka_new: %s", err);
    F.cluster = rd_kafka_handle_mock_cluster(F.owner);
    assert_int_equal(rd_kafka_mock_topic_create(F.cluster, TK_TOPIC_COMMANDS, 8, 1), 0);
    assert_int_equal(rd_kafka_mock_topic_create(F.cluster, TK_TOPIC_REPLIES, 4, 1), 0);
    assert_int_equal(rd_kafka_mock_topic_create(F.cluster, TK_TOPIC_DLQ, 1, 1), 0);
    conf = rd_kafka_conf_new();
    set(conf, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(F.cluster));
    set(conf, "group.id", "unit-wk-output");
    set(conf, "enable.auto.commit", "false");
    set(conf, "enable.auto.offset.store", "false");
    set(conf, "log_level", "0");
    F.reader = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (F.reader == NULL) fail_msg("reader: %s", err);
    rd_kafka_poll_set_consumer(F.reader);
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    rd_kafka_consumer_close(F.reader);
    rd_kafka_destroy(F.reader);
    rd_kafka_destroy(F.owner);
    return 0;
}

/* The first message of topic/partition, read from the beginning. */
static rd_kafka_message_t *read_first(const char *topic, int32_t partition) {
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic, partition)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(F.reader, list), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(list);
    int64_t deadline = tk_monotonic_ms() + WAIT_MS;
    while (tk_monotonic_ms() < deadline) {
        rd_kafka_message_t *message = rd_kafka_consumer_poll(F.reader, 100);
        if (message == NULL) continue;
        if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) return message;
        rd_kafka_message_destroy(message);
    }
    fail_msg("nothing on %s/%d", topic, (int)partition);
    return NULL;
}

static void produce_request(int32_t partition, const char *traceparent) {
    rd_kafka_headers_t *headers = rd_kafka_headers_new(4);
    rd_kafka_header_add(headers, TK_HEADER_CORRELATION_ID, -1, "unit-correlation", -1);
    rd_kafka_header_add(headers, TK_HEADER_REPLY_TOPIC, -1, TK_TOPIC_REPLIES, -1);
    rd_kafka_header_add(headers, TK_HEADER_TRACEPARENT, -1, traceparent, -1);
    assert_int_equal(rd_kafka_producev(F.owner, RD_KAFKA_V_TOPIC(TK_TOPIC_COMMANDS), RD_KAFKA_V_PARTITION(partition),
                                       RD_KAFKA_V_VALUE("{}", 2), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                       RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_flush(F.owner, WAIT_MS), RD_KAFKA_RESP_ERR_NO_ERROR);
}

static void test_traceparent_from_kafka_is_checked(void **state) {
    (void)state;
    static const char *const INVALID[] = {
        "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01", /* upper case */
        "00-00000000000000000000000000000000-b7ad6b7169203331-01", /* zero trace id */
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", /* version ff */
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\nx: y", "garbage",
    };
    wk_address address;
    produce_request(0, VALID_TRACEPARENT);
    rd_kafka_message_t *message = read_first(TK_TOPIC_COMMANDS, 0);
    wk_address_from_message(message, &address);
    assert_string_equal(address.traceparent, VALID_TRACEPARENT);
    assert_true(address.wants_reply);
    rd_kafka_message_destroy(message);
    for (size_t i = 0; i < sizeof INVALID / sizeof INVALID[0]; i++) {
        int32_t partition = (int32_t)(1 + i);
        produce_request(partition, INVALID[i]);
        message = read_first(TK_TOPIC_COMMANDS, partition);
        wk_address_from_message(message, &address);
        assert_string_equal(address.traceparent, ""); /* ignored, never forwarded */
        assert_true(address.wants_reply);             /* the rest of the address still counts */
        rd_kafka_message_destroy(message);
    }
}

static void test_an_undeliverable_reply_is_dead_lettered(void **state) {
    (void)state;
    char err[256];
    wk_output output;
    wk_progress progress;
    assert_int_equal(wk_output_init(&output, rd_kafka_mock_cluster_bootstraps(F.cluster), "unit-wk-output", err,
                                    sizeof err),
                     0);
    assert_int_equal(wk_progress_init(&progress, F.reader), 0);
    wk_address address;
    memset(&address, 0, sizeof address);
    address.wants_reply = true;
    strcpy(address.correlation_id, "unit-undeliverable");
    strcpy(address.topic, TK_TOPIC_REPLIES);
    address.partition = 99; /* the topic has 4: the broker never takes it */
    wk_progress_record *record = wk_progress_begin(&progress, TK_TOPIC_COMMANDS, 7, 41);
    static const char REPLY[] = "{\"version\":1,\"status\":201,\"success\":true,\"message\":\"ok\"}";
    assert_int_equal(wk_output_reply_text(&output, &address, REPLY, strlen(REPLY), &progress, record), 0);
    wk_progress_done(&progress, record); /* the handling itself is over; the reply is not */

    /* Released only when ticket.dlq has the letter. */
    assert_true(wk_progress_wait_drained(&progress, WAIT_MS));
    rd_kafka_message_t *letter = read_first(TK_TOPIC_DLQ, 0);
    json_t *body = json_loadb(letter->payload, letter->len, 0, NULL);
    assert_non_null(body);
    assert_non_null(strstr(json_string_value(json_object_get(body, "reason")), "undeliverable on ticket.replies"));
    assert_non_null(strstr(json_string_value(json_object_get(body, "payload")), "\"status\":201"));
    assert_int_equal(letter->key_len, strlen("unit-undeliverable"));
    json_decref(body);
    rd_kafka_message_destroy(letter);

    wk_output_close(&output, WAIT_MS);
    wk_progress_close(&progress);
}

int main(void) {
    tk_log_init("unit", TK_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_traceparent_from_kafka_is_checked),
        cmocka_unit_test(test_an_undeliverable_reply_is_dead_lettered),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
