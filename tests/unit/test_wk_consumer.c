/* wk_consumer against librdkafka's in-process mock cluster: one full lane
 * pauses only its own partitions; the other lanes keep receiving. */
#include "test_support.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tk_clock.h"
#include "tk_kafka.h"
#include "tk_log.h"
#include "wk_consumer.h"
#include "wk_lanes.h"

#define LANES 4    /* command partition p -> lane p % 4: partition 0 -> lane 0, partition 1 -> lane 1 */
#define CAPACITY 4 /* lane queue */
#define SLOW_COUNT 20
#define FAST_COUNT 10
#define WAIT_MS 20000

static struct {
    rd_kafka_t *owner;
    rd_kafka_mock_cluster_t *cluster;
    wk_consumer consumer;
    wk_lanes lanes;
    volatile int stop_requested;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    bool is_gate_open;
    int slow_handled, fast_handled;
} F;

static void nap_ms(long ms) {
    struct timespec nap = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&nap, NULL);
}

static bool never_broken(void *ctx) {
    (void)ctx;
    return false;
}

static void *run_consumer(void *arg) {
    (void)arg;
    wk_consumer_run(&F.consumer, &F.lanes, &F.stop_requested, never_broken, NULL);
    return NULL;
}

/* Lane 0 waits at the gate: a lane whose database is slow. */
static void handler(wk_lanes *lanes, const wk_collections *db, wk_progress *progress, const rd_kafka_message_t *message,
                    const wk_lease *lease) {
    (void)db;
    (void)progress;
    (void)lease;
    int lane = wk_lanes_lane_of(lanes, rd_kafka_topic_name(message->rkt), message->partition);
    pthread_mutex_lock(&F.lock);
    while (lane == 0 && !F.is_gate_open) pthread_cond_wait(&F.changed, &F.lock);
    if (lane == 0) F.slow_handled++;
    else F.fast_handled++;
    pthread_mutex_unlock(&F.lock);
}

static void produce(int32_t partition, int count) {
    for (int i = 0; i < count; i++) {
        char value[32];
        snprintf(value, sizeof value, "p%d-%d", (int)partition, i);
        assert_int_equal(rd_kafka_producev(F.owner, RD_KAFKA_V_TOPIC(TK_TOPIC_COMMANDS),
                                           RD_KAFKA_V_PARTITION(partition), RD_KAFKA_V_VALUE(value, strlen(value)),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    assert_int_equal(rd_kafka_flush(F.owner, WAIT_MS), RD_KAFKA_RESP_ERR_NO_ERROR);
}

static int counter(int *value) {
    pthread_mutex_lock(&F.lock);
    int now = *value;
    pthread_mutex_unlock(&F.lock);
    return now;
}

static void test_a_full_lane_pauses_only_its_partitions(void **state) {
    (void)state;
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "test.mock.num.brokers", "1", err, sizeof err), RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "log_level", "0", err, sizeof err), RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "linger.ms", "0", err, sizeof err), RD_KAFKA_CONF_OK);
    F.owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (F.owner == NULL) fail_msg("rd_kafka_new: %s", err);
    F.cluster = rd_kafka_handle_mock_cluster(F.owner);
    assert_int_equal(rd_kafka_mock_topic_create(F.cluster, TK_TOPIC_COMMANDS, 8, 1), 0);
    assert_int_equal(rd_kafka_mock_topic_create(F.cluster, TK_TOPIC_QUERIES, 8, 1), 0);
    pthread_mutex_init(&F.lock, NULL);
    pthread_cond_init(&F.changed, NULL);

    tk_worker_config config;
    memset(&config, 0, sizeof config);
    config.kafka_brokers = rd_kafka_mock_cluster_bootstraps(F.cluster);
    config.group_id = "unit-wk-consumer";
    config.worker_threads = LANES;
    assert_int_equal(wk_consumer_init(&F.consumer, &config, err, sizeof err), 0);
    assert_int_equal(wk_lanes_start_with(&F.lanes, LANES, CAPACITY, handler, NULL, F.consumer.consumer, err,
                                         sizeof err),
                     0);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, run_consumer, NULL), 0);

    /* Lane 0 fills up and its messages wait in the consumer's overflow ... */
    produce(0, SLOW_COUNT);
    int64_t deadline = tk_monotonic_ms() + WAIT_MS;
    while (F.consumer.paused_lanes == 0 && tk_monotonic_ms() < deadline) nap_ms(20);
    assert_int_equal(F.consumer.paused_lanes, UINT64_C(1) << 0);

    /* ... while partition 1 (lane 1) goes on being read and handled. */
    produce(1, FAST_COUNT);
    deadline = tk_monotonic_ms() + WAIT_MS;
    while (counter(&F.fast_handled) < FAST_COUNT && tk_monotonic_ms() < deadline) nap_ms(20);
    assert_int_equal(counter(&F.fast_handled), FAST_COUNT);
    assert_int_equal(counter(&F.slow_handled), 0);

    /* Room again: lane 0's partitions resume and nothing was lost. */
    pthread_mutex_lock(&F.lock);
    F.is_gate_open = true;
    pthread_cond_broadcast(&F.changed);
    pthread_mutex_unlock(&F.lock);
    deadline = tk_monotonic_ms() + WAIT_MS;
    while (counter(&F.slow_handled) < SLOW_COUNT && tk_monotonic_ms() < deadline) nap_ms(20);
    assert_int_equal(counter(&F.slow_handled), SLOW_COUNT);

    F.stop_requested = 1;
    pthread_join(thread, NULL);
    wk_lanes_stop(&F.lanes);
    wk_consumer_close(&F.consumer);
    wk_lanes_free(&F.lanes);
    rd_kafka_destroy(F.owner);
    pthread_cond_destroy(&F.changed);
    pthread_mutex_destroy(&F.lock);
}

int main(void) {
    tk_log_init("unit", TK_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_full_lane_pauses_only_its_partitions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
