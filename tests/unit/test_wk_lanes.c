/* wk_lanes against librdkafka's in-process mock cluster: a revoke purges the
 * queued messages of the revoked partitions only, and shutdown releases a
 * lane blocked on a full producer queue, then frees nothing a delivery
 * report still points to (run under ASan by the sanitized pass). */
#include "test_support.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tk_clock.h"
#include "tk_kafka.h"
#include "tk_log.h"
#include "wk_lanes.h"
#include "wk_output.h"

#define LANES 2 /* command partition p goes to lane p % 2: partitions 0 and 2 share lane 0 */
#define PER_PARTITION 5
#define WAIT_MS 10000

typedef struct {
    int32_t partition;
    int64_t offset;
    bool did_lease_hold;
} handled;

static struct {
    rd_kafka_t *owner; /* holds the mock cluster */
    rd_kafka_mock_cluster_t *cluster;
    rd_kafka_t *reader; /* consumes what owner produced: real messages for the lanes */
    pthread_mutex_t lock;
    pthread_cond_t changed;
    bool is_gate_open;
    bool is_first_taken;
    handled seen[64];
    size_t seen_count;
} F;

static void nap_ms(long ms) {
    struct timespec nap = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&nap, NULL);
}

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
    assert_int_equal(rd_kafka_mock_topic_create(F.cluster, TK_TOPIC_EVENTS, 4, 1), 0);
    for (int32_t p = 0; p < 3; p++) {
        for (int i = 0; i < PER_PARTITION; i++) {
            char value[32];
            snprintf(value, sizeof value, "p%d-%d", (int)p, i);
            assert_int_equal(rd_kafka_producev(F.owner, RD_KAFKA_V_TOPIC(TK_TOPIC_COMMANDS), RD_KAFKA_V_PARTITION(p),
                                               RD_KAFKA_V_VALUE(value, strlen(value)),
                                               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                             RD_KAFKA_RESP_ERR_NO_ERROR);
        }
    }
    assert_int_equal(rd_kafka_flush(F.owner, WAIT_MS), RD_KAFKA_RESP_ERR_NO_ERROR);

    conf = rd_kafka_conf_new();
    set(conf, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(F.cluster));
    set(conf, "group.id", "unit-wk-lanes");
    set(conf, "enable.auto.commit", "false");
    set(conf, "enable.auto.offset.store", "false");
    set(conf, "log_level", "0");
    F.reader = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (F.reader == NULL) fail_msg("reader: %s", err);
    rd_kafka_poll_set_consumer(F.reader);
    pthread_mutex_init(&F.lock, NULL);
    pthread_cond_init(&F.changed, NULL);
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    rd_kafka_consumer_close(F.reader);
    rd_kafka_destroy(F.reader);
    rd_kafka_destroy(F.owner);
    pthread_cond_destroy(&F.changed);
    pthread_mutex_destroy(&F.lock);
    return 0;
}

/* Reads count messages of the given partitions, in partition order. */
static size_t read_messages(const int32_t *partitions, size_t partition_count, rd_kafka_message_t **out, size_t count) {
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)partition_count);
    for (size_t i = 0; i < partition_count; i++)
        rd_kafka_topic_partition_list_add(list, TK_TOPIC_COMMANDS, partitions[i])->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(F.reader, list), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(list);
    size_t got = 0;
    int64_t deadline = tk_monotonic_ms() + WAIT_MS;
    while (got < count && tk_monotonic_ms() < deadline) {
        rd_kafka_message_t *message = rd_kafka_consumer_poll(F.reader, 100);
        if (message == NULL) continue;
        if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_message_destroy(message);
            continue;
        }
        out[got++] = message;
    }
    assert_int_equal(got, count);
    return got;
}

/* Records each message; the first of partition 0 waits at the gate, so
 * lane 0 stays busy (on partition 0) while the test revokes. */
static void gated_handler(wk_lanes *lanes, const wk_collections *db, wk_progress *progress,
                          const rd_kafka_message_t *message, const wk_lease *lease) {
    (void)lanes;
    (void)db;
    (void)progress;
    pthread_mutex_lock(&F.lock);
    if (!F.is_first_taken && message->partition == 0) {
        F.is_first_taken = true;
        pthread_cond_broadcast(&F.changed);
        while (!F.is_gate_open) pthread_cond_wait(&F.changed, &F.lock);
    }
    if (F.seen_count < sizeof F.seen / sizeof F.seen[0])
        F.seen[F.seen_count++] = (handled){message->partition, message->offset, wk_lease_holds(lease)};
    pthread_mutex_unlock(&F.lock);
}

static void test_revoke_purges_only_revoked_partitions(void **state) {
    (void)state;
    char err[256];
    wk_lanes lanes;
    rd_kafka_message_t *messages[3 * PER_PARTITION];
    const int32_t partitions[] = {0, 1, 2};
    read_messages(partitions, 3, messages, 3 * PER_PARTITION);
    assert_int_equal(wk_lanes_start_with(&lanes, LANES, 16, gated_handler, NULL, F.reader, err, sizeof err), 0);
    rd_kafka_topic_partition_list_t *assigned = rd_kafka_topic_partition_list_new(3);
    for (int32_t p = 0; p < 3; p++) rd_kafka_topic_partition_list_add(assigned, TK_TOPIC_COMMANDS, p);
    wk_lanes_assign(&lanes, assigned);

    /* Partition 0 first, so lane 0 holds a message of partition 0 at the gate
     * while partition 2's messages wait behind it in the same lane. */
    rd_kafka_message_t *ordered[3 * PER_PARTITION];
    size_t ordered_count = 0;
    for (int32_t p = 0; p < 3; p++)
        for (size_t i = 0; i < 3 * PER_PARTITION; i++)
            if (messages[i]->partition == p) ordered[ordered_count++] = messages[i];
    /* Once offered a message belongs to the lane (and may be gone). */
    for (size_t i = 0; i < ordered_count; i++) assert_int_equal(wk_lanes_offer(&lanes, ordered[i]), 0);
    pthread_mutex_lock(&F.lock);
    while (!F.is_first_taken) pthread_cond_wait(&F.changed, &F.lock);
    pthread_mutex_unlock(&F.lock);

    rd_kafka_topic_partition_list_t *revoked = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(revoked, TK_TOPIC_COMMANDS, 2);
    assert_true(wk_lanes_revoke(&lanes, revoked, 0, 100)); /* lane 0 is busy, but on partition 0 */

    pthread_mutex_lock(&F.lock);
    F.is_gate_open = true;
    pthread_cond_broadcast(&F.changed);
    pthread_mutex_unlock(&F.lock);
    assert_true(wk_lanes_wait_idle(&lanes, WAIT_MS));

    int per_partition[3] = {0, 0, 0};
    for (size_t i = 0; i < F.seen_count; i++) {
        per_partition[F.seen[i].partition]++;
        assert_true(F.seen[i].did_lease_hold);
    }
    assert_int_equal(per_partition[0], PER_PARTITION);
    assert_int_equal(per_partition[1], PER_PARTITION); /* another lane, never held back */
    assert_int_equal(per_partition[2], 0);             /* purged: the next owner handles them */

    /* A message of the revoked partition offered late is not taken in. */
    const int32_t again[] = {2};
    rd_kafka_message_t *late[PER_PARTITION];
    read_messages(again, 1, late, PER_PARTITION);
    for (size_t i = 0; i < PER_PARTITION; i++) assert_int_equal(wk_lanes_offer(&lanes, late[i]), 0);
    assert_true(wk_lanes_wait_idle(&lanes, WAIT_MS));
    assert_int_equal(F.seen_count, 2 * PER_PARTITION);

    wk_lanes_stop(&lanes);
    wk_lanes_free(&lanes);
    rd_kafka_topic_partition_list_destroy(revoked);
    rd_kafka_topic_partition_list_destroy(assigned);
}

/* Produces events until the producer's queue is full, then waits there:
 * what a lane does while the broker is away. */
static void flooding_handler(wk_lanes *lanes, const wk_collections *db, wk_progress *progress,
                             const rd_kafka_message_t *message, const wk_lease *lease) {
    (void)db;
    (void)lease;
    wk_output *output = lanes->handler_ctx;
    wk_address address;
    memset(&address, 0, sizeof address);
    wk_progress_record *record = wk_progress_begin(progress, TK_TOPIC_COMMANDS, message->partition, message->offset);
    assert_non_null(record);
    json_t *event = json_pack("{s:s}", "type", "ticket.created");
    while (wk_output_event(output, "6720b1c8f1c2b3a5e4d90130", event, &address, progress, record) == 0) {
    }
    json_decref(event);
    /* Stopped: the record stays open, so the offset is never stored. */
}

static void test_shutdown_releases_a_lane_blocked_on_a_full_queue(void **state) {
    (void)state;
    char err[256];
    wk_output output;
    wk_lanes lanes;
    assert_int_equal(wk_output_init(&output, rd_kafka_mock_cluster_bootstraps(F.cluster), "unit-wk-lanes", err,
                                    sizeof err),
                     0);
    rd_kafka_message_t *message[1];
    const int32_t partitions[] = {1};
    read_messages(partitions, 1, message, 1);
    assert_int_equal(rd_kafka_mock_broker_set_down(F.cluster, 1), RD_KAFKA_RESP_ERR_NO_ERROR);

    assert_int_equal(wk_lanes_start_with(&lanes, LANES, 16, flooding_handler, &output, F.reader, err, sizeof err), 0);
    lanes.context.output = &output; /* what wk_lanes_start sets: stop releases its waiters */
    rd_kafka_topic_partition_list_t *assigned = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(assigned, TK_TOPIC_COMMANDS, 1);
    wk_lanes_assign(&lanes, assigned);
    assert_int_equal(wk_lanes_offer(&lanes, message[0]), 0);

    /* librdkafka's default local queue holds 100000 messages. */
    int64_t deadline = tk_monotonic_ms() + 4 * WAIT_MS;
    while (rd_kafka_outq_len(output.producer) < 100000 && tk_monotonic_ms() < deadline) nap_ms(20);
    assert_true(rd_kafka_outq_len(output.producer) >= 100000);
    nap_ms(50); /* the lane is now in its wait for room */

    /* The worker's order: join the lanes, flush and stop the output, free. */
    int64_t started = tk_monotonic_ms();
    wk_lanes_stop(&lanes);
    assert_true(tk_monotonic_ms() - started < 2000);
    wk_output_close(&output, 200);
    wk_lane *lane = &lanes.lanes[wk_lanes_lane_of(&lanes, TK_TOPIC_COMMANDS, 1)];
    assert_int_equal(lane->progress.count, 1); /* nothing was delivered: the offset stays unstored */
    wk_lanes_free(&lanes);

    assert_int_equal(rd_kafka_mock_broker_set_up(F.cluster, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(assigned);
}

/* Every lane applies commands (with the database far away each lane is
 * throughput), and a command partition never shares a lane with the query
 * partition of the same number. */
static void test_commands_use_every_lane(void **state) {
    (void)state;
    for (int count = 1; count <= 9; count++) {
        wk_lanes lanes = {.count = count};
        bool has_commands[9] = {false};
        for (int32_t p = 0; p < 8; p++) {
            int command = wk_lanes_lane_of(&lanes, TK_TOPIC_COMMANDS, p);
            int query = wk_lanes_lane_of(&lanes, TK_TOPIC_QUERIES, p);
            assert_in_range(command, 0, count - 1);
            assert_in_range(query, 0, count - 1);
            if (count > 1) assert_int_not_equal(command, query);
            has_commands[command] = true;
        }
        for (int lane = 0; lane < count && lane < 8; lane++) assert_true(has_commands[lane]);
    }
}

/* With write lanes set, commands stay on them and queries on the others:
 * every lane has work of one kind only, and each is used. */
static void test_write_lanes_split_commands_from_queries(void **state) {
    (void)state;
    for (int count = 2; count <= 8; count++) {
        for (int writers = 1; writers < count; writers++) {
            wk_lanes lanes = {.count = count, .write_count = writers};
            bool has_commands[8] = {false}, has_queries[8] = {false};
            for (int32_t p = 0; p < 8; p++) {
                int command = wk_lanes_lane_of(&lanes, TK_TOPIC_COMMANDS, p);
                int query = wk_lanes_lane_of(&lanes, TK_TOPIC_QUERIES, p);
                assert_in_range(command, 0, writers - 1);
                assert_in_range(query, writers, count - 1);
                has_commands[command] = has_queries[query] = true;
            }
            for (int lane = 0; lane < count; lane++)
                assert_true(lane < writers ? has_commands[lane] : has_queries[lane]);
        }
    }
}

int main(void) {
    tk_log_init("unit", TK_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands_use_every_lane),
        cmocka_unit_test(test_write_lanes_split_commands_from_queries),
        cmocka_unit_test(test_revoke_purges_only_revoked_partitions),
        cmocka_unit_test(test_shutdown_releases_a_lane_blocked_on_a_full_queue),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
