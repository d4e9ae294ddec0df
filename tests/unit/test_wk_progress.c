/* wk_progress: offsets are stored only for the finished prefix of a lane.
 * The consumer comes from librdkafka's in-process mock cluster. */
#include "test_support.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tk_kafka.h"
#include "tk_log.h"
#include "wk_progress.h"

#define TOPIC TK_TOPIC_COMMANDS

typedef struct {
    rd_kafka_t *consumer;
    wk_progress progress;
} fixture;

static rd_kafka_t *mock_consumer_new(void) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    static const char *const settings[][2] = {
        {"test.mock.num.brokers", "1"},  {"group.id", "unit-wk-progress"},  {"enable.auto.offset.store", "false"},
        {"enable.auto.commit", "false"}, {"auto.offset.reset", "earliest"}, {"log_level", "3"},
    };
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
        if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1], err, sizeof err) != RD_KAFKA_CONF_OK)
            fail_msg("%s: %s", settings[i][0], err);
    }
    rd_kafka_t *consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (consumer == NULL) fail_msg("rd_kafka_new: %s", err);
    rd_kafka_mock_cluster_t *cluster = rd_kafka_handle_mock_cluster(consumer);
    assert_non_null(cluster);
    assert_int_equal(rd_kafka_mock_topic_create(cluster, TOPIC, 2, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    return consumer;
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    f->consumer = mock_consumer_new();
    assert_int_equal(wk_progress_init(&f->progress, f->consumer), 0);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    wk_progress_close(&f->progress);
    rd_kafka_consumer_close(f->consumer);
    rd_kafka_destroy(f->consumer);
    free(f);
    return 0;
}

static size_t count(wk_progress *progress) {
    pthread_mutex_lock(&progress->lock);
    size_t n = progress->count;
    pthread_mutex_unlock(&progress->lock);
    return n;
}

/* ---- bookkeeping (partitions not assigned: storing fails, which is tolerated) ---- */

static void test_in_order(void **state) {
    fixture *f = *state;
    assert_true(wk_progress_wait_drained(&f->progress, 0)); /* nothing in flight */
    wk_progress_record *a = wk_progress_begin(&f->progress, TOPIC, 0, 10);
    wk_progress_record *b = wk_progress_begin(&f->progress, TOPIC, 0, 11);
    wk_progress_record *c = wk_progress_begin(&f->progress, TOPIC, 0, 12);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_int_equal(a->outstanding, 1);
    assert_int_equal(count(&f->progress), 3);
    assert_false(wk_progress_wait_drained(&f->progress, 0));

    wk_progress_done(&f->progress, a);
    assert_int_equal(count(&f->progress), 2);
    assert_ptr_equal(f->progress.head, b);
    wk_progress_done(&f->progress, b);
    assert_int_equal(count(&f->progress), 1);
    assert_false(wk_progress_wait_drained(&f->progress, 0));
    wk_progress_done(&f->progress, c);
    assert_int_equal(count(&f->progress), 0);
    assert_null(f->progress.head);
    assert_null(f->progress.tail);
    assert_true(wk_progress_wait_drained(&f->progress, 0));
}

static void test_out_of_order_waits_for_the_first(void **state) {
    fixture *f = *state;
    wk_progress_record *first = wk_progress_begin(&f->progress, TOPIC, 0, 20);
    wk_progress_record *second = wk_progress_begin(&f->progress, TOPIC, 0, 21);
    wk_progress_record *third = wk_progress_begin(&f->progress, TOPIC, 1, 5);
    wk_progress_done(&f->progress, second);
    wk_progress_done(&f->progress, third);
    /* The later ones are done but must wait: storing 22 would skip 20. */
    assert_int_equal(count(&f->progress), 3);
    assert_ptr_equal(f->progress.head, first);
    assert_false(wk_progress_wait_drained(&f->progress, 0));
    wk_progress_done(&f->progress, first);
    assert_int_equal(count(&f->progress), 0);
    assert_true(wk_progress_wait_drained(&f->progress, 0));
}

static void test_expected_messages_hold_the_record(void **state) {
    fixture *f = *state;
    /* Handling done, but a reply and an event are still on their way. */
    wk_progress_record *record = wk_progress_begin(&f->progress, TOPIC, 0, 30);
    wk_progress_record *next = wk_progress_begin(&f->progress, TOPIC, 0, 31);
    wk_progress_expect(&f->progress, record);
    wk_progress_expect(&f->progress, record);
    assert_int_equal(record->outstanding, 3);
    wk_progress_done(&f->progress, next);
    wk_progress_done(&f->progress, record); /* the handling */
    assert_int_equal(count(&f->progress), 2);
    wk_progress_done(&f->progress, record); /* the reply's delivery report */
    assert_int_equal(count(&f->progress), 2);
    wk_progress_done(&f->progress, record); /* the event's */
    assert_int_equal(count(&f->progress), 0);
    assert_true(wk_progress_wait_drained(&f->progress, 0));
}

static int64_t elapsed_ms(const struct timespec *start) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

static void test_wait_drained_times_out(void **state) {
    fixture *f = *state;
    wk_progress_record *record = wk_progress_begin(&f->progress, TOPIC, 0, 40);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    assert_false(wk_progress_wait_drained(&f->progress, 150));
    assert_in_range(elapsed_ms(&start), 140, 2000);
    /* A timeout over one second (the nanosecond carry). */
    clock_gettime(CLOCK_MONOTONIC, &start);
    assert_false(wk_progress_wait_drained(&f->progress, 1020));
    assert_in_range(elapsed_ms(&start), 1000, 3000);
    wk_progress_done(&f->progress, record);
}

typedef struct {
    wk_progress *progress;
    wk_progress_record *records[3];
} finisher;

/* Finishes the records from another thread, the way delivery reports do. */
static void *finish_later(void *arg) {
    finisher *work = arg;
    struct timespec nap = {0, 50 * 1000000L};
    for (int i = 2; i >= 0; i--) {
        nanosleep(&nap, NULL);
        wk_progress_done(work->progress, work->records[i]);
    }
    return NULL;
}

static void test_wait_drained_wakes_when_done(void **state) {
    fixture *f = *state;
    finisher work = {&f->progress, {NULL, NULL, NULL}};
    for (int i = 0; i < 3; i++) work.records[i] = wk_progress_begin(&f->progress, TOPIC, 1, 50 + i);
    pthread_t thread;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    assert_int_equal(pthread_create(&thread, NULL, finish_later, &work), 0);
    assert_true(wk_progress_wait_drained(&f->progress, 4000));
    int64_t waited = elapsed_ms(&start);
    pthread_join(thread, NULL);
    assert_in_range(waited, 140, 3000); /* woke at the last done, not at the timeout */
    assert_int_equal(count(&f->progress), 0);
}

static void test_close_frees_unfinished_records(void **state) {
    (void)state;
    /* Left for teardown's close; run under ASan this proves they are freed. */
    fixture *f = *state;
    wk_progress_begin(&f->progress, TOPIC, 0, 60);
    wk_progress_begin(&f->progress, TOPIC, 1, 61);
    assert_int_equal(count(&f->progress), 2);
}

/* ---- what gets stored, read back through a commit ---- */

static void assign_both_partitions(rd_kafka_t *consumer) {
    rd_kafka_topic_partition_list_t *partitions = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(partitions, TOPIC, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_topic_partition_list_add(partitions, TOPIC, 1)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(consumer, partitions), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(partitions);
}

/* Commits what is stored, then reads the committed offsets of both partitions. */
static void committed(rd_kafka_t *consumer, int64_t *p0, int64_t *p1) {
    rd_kafka_resp_err_t rc = rd_kafka_commit(consumer, NULL, 0);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR && rc != RD_KAFKA_RESP_ERR__NO_OFFSET)
        fail_msg("commit: %s", rd_kafka_err2str(rc));
    rd_kafka_topic_partition_list_t *partitions = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(partitions, TOPIC, 0);
    rd_kafka_topic_partition_list_add(partitions, TOPIC, 1);
    rc = rd_kafka_committed(consumer, partitions, 4000);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) fail_msg("committed: %s", rd_kafka_err2str(rc));
    *p0 = rd_kafka_topic_partition_list_find(partitions, TOPIC, 0)->offset;
    *p1 = rd_kafka_topic_partition_list_find(partitions, TOPIC, 1)->offset;
    rd_kafka_topic_partition_list_destroy(partitions);
}

static void test_stores_next_offset_of_finished_prefix(void **state) {
    fixture *f = *state;
    assign_both_partitions(f->consumer);
    int64_t p0, p1;
    wk_progress_record *a = wk_progress_begin(&f->progress, TOPIC, 0, 5);
    wk_progress_record *b = wk_progress_begin(&f->progress, TOPIC, 1, 7);
    wk_progress_record *c = wk_progress_begin(&f->progress, TOPIC, 0, 6);

    wk_progress_done(&f->progress, c); /* finished, but behind a and b */
    committed(f->consumer, &p0, &p1);
    assert_int_equal(p0, RD_KAFKA_OFFSET_INVALID);
    assert_int_equal(p1, RD_KAFKA_OFFSET_INVALID);

    wk_progress_done(&f->progress, a); /* a is stored (next to read: 6); b still holds c */
    committed(f->consumer, &p0, &p1);
    assert_int_equal(p0, 6);
    assert_int_equal(p1, RD_KAFKA_OFFSET_INVALID);

    wk_progress_done(&f->progress, b); /* b and c together */
    committed(f->consumer, &p0, &p1);
    assert_int_equal(p0, 7);
    assert_int_equal(p1, 8);
    assert_int_equal(count(&f->progress), 0);
}

int main(void) {
    tk_log_init("unit", TK_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_order_waits_for_the_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expected_messages_hold_the_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_drained_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_drained_wakes_when_done, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_frees_unfinished_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stores_next_offset_of_finished_prefix, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
