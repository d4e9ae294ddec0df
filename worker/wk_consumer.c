/* wk_consumer — membership of the worker group on ticket.commands and
 * ticket.queries: rebalances, and feeding the lanes without losing order
 * when they are full (the partitions pause instead). */
#include "wk_consumer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tk_kafka.h"
#include "tk_log.h"
#include "tk_metrics.h"

#define POLL_MS 100
#define REVOKE_DRAIN_MS 10000
/* A write under way when its partition is fenced returns within the
 * database timeouts; wait that long before the partition moves on. */
#define REVOKE_FENCE_MS (WK_STORE_SOCKET_TIMEOUT_MS + 1000)

static json_t *partitions_json(const rd_kafka_topic_partition_list_t *partitions) {
    json_t *list = json_array();
    for (int i = 0; list != NULL && i < partitions->cnt; i++) {
        char name[300];
        snprintf(name, sizeof name, "%s/%d", partitions->elems[i].topic, (int)partitions->elems[i].partition);
        json_array_append_new(list, json_string(name));
    }
    return list;
}

/* Messages polled for partitions now leaving us: drop them, the next owner
 * reads them again from the committed offset. */
static void drop_overflow_of(wk_consumer *consumer, const rd_kafka_topic_partition_list_t *revoked) {
    size_t kept = 0;
    for (size_t i = 0; i < consumer->overflow_count; i++) {
        rd_kafka_message_t *message = consumer->overflow[i];
        if (rd_kafka_topic_partition_list_find(revoked, rd_kafka_topic_name(message->rkt), message->partition) != NULL)
            rd_kafka_message_destroy(message);
        else consumer->overflow[kept++] = message;
    }
    consumer->overflow_count = kept;
}

static char *render_lag(void *ctx);

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *partitions,
                         void *opaque) {
    wk_consumer *consumer = opaque;
    bool is_cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t assign_err = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        /* Owned before the first message of theirs can arrive. */
        if (consumer->lanes != NULL) wk_lanes_assign(consumer->lanes, partitions);
        consumer->must_repause = true; /* new partitions start unpaused */
        if (is_cooperative) error = rd_kafka_incremental_assign(rk, partitions);
        else assign_err = rd_kafka_assign(rk, partitions);
        if (is_cooperative) atomic_fetch_add(&consumer->assigned_count, partitions->cnt);
        else atomic_store(&consumer->assigned_count, partitions->cnt);
        tk_log_fields(TK_LOG_INFO, "partitions assigned",
                      json_pack("{s:o}", "partitions", partitions_json(partitions)));
    } else {
        /* In-flight work is finished (bounded), then the partitions are
         * fenced: queued messages purged, retries ended, no write started
         * after this; then what was stored is committed. */
        drop_overflow_of(consumer, partitions);
        if (consumer->lanes != NULL) wk_lanes_revoke(consumer->lanes, partitions, REVOKE_DRAIN_MS, REVOKE_FENCE_MS);
        consumer->must_repause = true;
        rd_kafka_resp_err_t commit_err = rd_kafka_commit(rk, NULL, 0);
        if (commit_err != RD_KAFKA_RESP_ERR_NO_ERROR && commit_err != RD_KAFKA_RESP_ERR__NO_OFFSET)
            tk_log_fields(TK_LOG_WARN, "commit on revoke failed",
                          json_pack("{s:s}", "error", rd_kafka_err2str(commit_err)));
        if (is_cooperative) error = rd_kafka_incremental_unassign(rk, partitions);
        else assign_err = rd_kafka_assign(rk, NULL);
        if (is_cooperative) atomic_fetch_sub(&consumer->assigned_count, partitions->cnt);
        else atomic_store(&consumer->assigned_count, 0);
        tk_log_fields(TK_LOG_INFO, "partitions revoked", json_pack("{s:o}", "partitions", partitions_json(partitions)));
    }
    if (error != NULL) {
        tk_log_fields(TK_LOG_ERROR, "rebalance failed", json_pack("{s:s}", "error", rd_kafka_error_string(error)));
        rd_kafka_error_destroy(error);
    } else if (assign_err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        tk_log_fields(TK_LOG_ERROR, "rebalance failed", json_pack("{s:s}", "error", rd_kafka_err2str(assign_err)));
    }
}

int wk_consumer_init(wk_consumer *consumer, const tk_worker_config *config, char *err, size_t err_len) {
    /* Offsets are stored by hand once a message is written, answered and
     * announced; the periodic commit only sends what was stored. */
    const tk_kafka_setting settings[] = {
        {"group.id", config->group_id},
        {"enable.auto.offset.store", "false"},
        {"enable.auto.commit", "true"},
        {"auto.commit.interval.ms", "1000"},
        {"auto.offset.reset", "earliest"},
        /* range balances each topic on its own. librdkafka 2.0's
         * cooperative-sticky balances the total count, and with two workers
         * gave one all 8 command partitions and the other all 8 query
         * partitions: every write on one worker. The price of range is an
         * eager rebalance: a short pause while in-flight work drains. */
        {"partition.assignment.strategy", "range"},
        {"session.timeout.ms", "6000"},
        {"heartbeat.interval.ms", "1000"},
        /* The broker answers a fetch as soon as one byte is there: the wait
         * only bounds the polling of an idle worker (each poll costs the broker). */
        {"fetch.wait.max.ms", "500"},
        {"fetch.error.backoff.ms", "100"},
        {"socket.nagle.disable", "true"},
        {"queued.max.messages.kbytes", "16384"},
        {NULL, NULL},
    };
    memset(consumer, 0, sizeof *consumer);
    char client_id[160];
    snprintf(client_id, sizeof client_id, "ticket-worker%s%.128s", config->worker_id != NULL ? "-" : "",
             config->worker_id != NULL ? config->worker_id : "");
    rd_kafka_conf_t *conf = tk_kafka_conf_new(config->kafka_brokers, client_id, settings, err, err_len);
    if (conf == NULL) return -1;
    /* Static membership is opt-in: with librdkafka 2.0 a static member does
     * not leave the group when it stops, so a graceful stop would leave its
     * partitions idle for a whole session timeout, and a member restarted
     * after a broker outage can be fenced by its own earlier session. */
    if (config->group_instance_id != NULL &&
        rd_kafka_conf_set(conf, "group.instance.id", config->group_instance_id, err, err_len) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_opaque(conf, consumer);
    consumer->consumer = tk_kafka_new(RD_KAFKA_CONSUMER, conf, err, err_len);
    if (consumer->consumer == NULL) return -1;
    rd_kafka_poll_set_consumer(consumer->consumer);
    tk_metrics_add_collector(render_lag, consumer);
    return 0;
}

bool wk_consumer_has_assignment(wk_consumer *consumer) { return atomic_load(&consumer->assigned_count) > 0; }

/* Nothing consumed yet on a partition: its committed offset is where we stand. */
static void fill_unknown_positions(wk_consumer *consumer, rd_kafka_topic_partition_list_t *assigned) {
    rd_kafka_topic_partition_list_t *unknown = rd_kafka_topic_partition_list_new(assigned->cnt);
    for (int i = 0; i < assigned->cnt; i++)
        if (assigned->elems[i].offset < 0)
            rd_kafka_topic_partition_list_add(unknown, assigned->elems[i].topic, assigned->elems[i].partition);
    if (unknown->cnt > 0 && rd_kafka_committed(consumer->consumer, unknown, 1000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int i = 0; i < unknown->cnt; i++) {
            rd_kafka_topic_partition_t *known = rd_kafka_topic_partition_list_find(assigned, unknown->elems[i].topic,
                                                                                   unknown->elems[i].partition);
            if (known != NULL) known->offset = unknown->elems[i].offset;
        }
    }
    rd_kafka_topic_partition_list_destroy(unknown);
}

/* One line per partition whose lag is known. @returns the text, malloc'd, or NULL. */
static char *lag_text_new(wk_consumer *consumer, const rd_kafka_topic_partition_list_t *assigned) {
    size_t cap = 256 + (size_t)assigned->cnt * 128;
    char *text = malloc(cap);
    if (text == NULL) return NULL;
    size_t len = (size_t)snprintf(text, cap,
                                  "# HELP ticket_worker_consumer_lag Messages not yet consumed, by partition\n"
                                  "# TYPE ticket_worker_consumer_lag gauge\n");
    for (int i = 0; i < assigned->cnt && len < cap; i++) {
        int64_t low = 0, high = 0;
        const rd_kafka_topic_partition_t *p = &assigned->elems[i];
        if (rd_kafka_get_watermark_offsets(consumer->consumer, p->topic, p->partition, &low, &high) !=
                RD_KAFKA_RESP_ERR_NO_ERROR ||
            high < 0)
            continue;
        if (p->offset < 0) continue; /* never committed: lag unknown until the first message */
        int64_t position = p->offset;
        len += (size_t)snprintf(text + len, cap - len,
                                "ticket_worker_consumer_lag{topic=\"%s\",partition=\"%d\"} %lld\n", p->topic,
                                (int)p->partition, (long long)(high > position ? high - position : 0));
    }
    return text;
}

/* Consumer lag per assigned partition, from the watermarks the fetcher
 * already knows (no broker round trip at scrape time). */
static char *render_lag(void *ctx) {
    wk_consumer *consumer = ctx;
    rd_kafka_topic_partition_list_t *assigned = NULL;
    if (consumer->consumer == NULL || rd_kafka_assignment(consumer->consumer, &assigned) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    rd_kafka_position(consumer->consumer, assigned);
    fill_unknown_positions(consumer, assigned);
    char *text = lag_text_new(consumer, assigned);
    rd_kafka_topic_partition_list_destroy(assigned);
    return text;
}

/* Which assigned partitions must be paused and which resumed for lane_mask. */
static void sort_partitions(const wk_consumer *consumer, uint64_t lane_mask,
                            const rd_kafka_topic_partition_list_t *assigned, rd_kafka_topic_partition_list_t *to_pause,
                            rd_kafka_topic_partition_list_t *to_resume) {
    for (int i = 0; i < assigned->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &assigned->elems[i];
        uint64_t bit = UINT64_C(1) << wk_lanes_lane_of(consumer->lanes, p->topic, p->partition);
        bool is_wanted = (lane_mask & bit) != 0, was_paused = (consumer->paused_lanes & bit) != 0;
        if (is_wanted && (!was_paused || consumer->must_repause))
            rd_kafka_topic_partition_list_add(to_pause, p->topic, p->partition);
        else if (!is_wanted && (was_paused || consumer->must_repause))
            rd_kafka_topic_partition_list_add(to_resume, p->topic, p->partition);
    }
}

/* Pauses the partitions of the lanes in lane_mask and resumes the others,
 * so one full lane holds back only its own partitions. Partitions whose
 * state already matches are left alone, unless the assignment changed. */
static void pause_lanes(wk_consumer *consumer, uint64_t lane_mask) {
    if (lane_mask == consumer->paused_lanes && !consumer->must_repause) return;
    rd_kafka_topic_partition_list_t *assigned = NULL;
    if (rd_kafka_assignment(consumer->consumer, &assigned) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
    rd_kafka_topic_partition_list_t *to_pause = rd_kafka_topic_partition_list_new(assigned->cnt);
    rd_kafka_topic_partition_list_t *to_resume = rd_kafka_topic_partition_list_new(assigned->cnt);
    sort_partitions(consumer, lane_mask, assigned, to_pause, to_resume);
    rd_kafka_resp_err_t rc = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (to_pause->cnt > 0) rc = rd_kafka_pause_partitions(consumer->consumer, to_pause);
    if (rc == RD_KAFKA_RESP_ERR_NO_ERROR && to_resume->cnt > 0)
        rc = rd_kafka_resume_partitions(consumer->consumer, to_resume);
    if (rc == RD_KAFKA_RESP_ERR_NO_ERROR) {
        consumer->paused_lanes = lane_mask;
        consumer->must_repause = false;
    } else {
        tk_log_fields(TK_LOG_WARN, "pause or resume failed", json_pack("{s:s}", "error", rd_kafka_err2str(rc)));
    }
    rd_kafka_topic_partition_list_destroy(to_resume);
    rd_kafka_topic_partition_list_destroy(to_pause);
    rd_kafka_topic_partition_list_destroy(assigned);
}

static uint64_t lane_bit(wk_consumer *consumer, const rd_kafka_message_t *message) {
    return UINT64_C(1) << wk_lanes_lane_of(consumer->lanes, rd_kafka_topic_name(message->rkt), message->partition);
}

static int keep_in_overflow(wk_consumer *consumer, rd_kafka_message_t *message) {
    if (consumer->overflow_count == consumer->overflow_capacity) {
        size_t capacity = consumer->overflow_capacity ? consumer->overflow_capacity * 2 : 256;
        rd_kafka_message_t **grown = realloc(consumer->overflow, capacity * sizeof *grown);
        if (grown == NULL) return -1;
        consumer->overflow = grown;
        consumer->overflow_capacity = capacity;
    }
    consumer->overflow[consumer->overflow_count++] = message;
    return 0;
}

/* Hands over the overflow in order. A lane found full keeps the rest of its
 * messages (their order within a partition holds); other lanes go on.
 * @returns the lanes that still have messages waiting. */
static uint64_t drain_overflow(wk_consumer *consumer) {
    uint64_t waiting = 0;
    size_t kept = 0;
    for (size_t i = 0; i < consumer->overflow_count; i++) {
        rd_kafka_message_t *message = consumer->overflow[i];
        uint64_t bit = lane_bit(consumer, message);
        if ((waiting & bit) == 0 && wk_lanes_offer(consumer->lanes, message) == 0) continue;
        waiting |= bit;
        consumer->overflow[kept++] = message;
    }
    consumer->overflow_count = kept;
    return waiting;
}

static int subscribe(wk_consumer *consumer) {
    const char *topics[] = {TK_TOPIC_COMMANDS, TK_TOPIC_QUERIES};
    rd_kafka_topic_partition_list_t *subscription = rd_kafka_topic_partition_list_new(2);
    for (size_t i = 0; i < 2; i++) rd_kafka_topic_partition_list_add(subscription, topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t rc = rd_kafka_subscribe(consumer->consumer, subscription);
    rd_kafka_topic_partition_list_destroy(subscription);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        tk_log_fields(TK_LOG_ERROR, "subscribe failed", json_pack("{s:s}", "error", rd_kafka_err2str(rc)));
        return -1;
    }
    return 0;
}

/* Hands a polled message (ours now) to its lane, or keeps it while the lane
 * is full. @returns 0, or -1 when the consumer cannot go on. */
static int take_message(wk_consumer *consumer, rd_kafka_message_t *message, uint64_t *waiting_lanes) {
    if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (message->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            tk_log_fields(TK_LOG_WARN, "consumer error", json_pack("{s:s}", "error", rd_kafka_message_errstr(message)));
        bool is_fatal = message->err == RD_KAFKA_RESP_ERR__FATAL;
        rd_kafka_message_destroy(message);
        return is_fatal ? -1 : 0;
    }
    uint64_t bit = lane_bit(consumer, message);
    bool must_wait = (*waiting_lanes & bit) != 0 || wk_lanes_offer(consumer->lanes, message) != 0;
    if (must_wait) *waiting_lanes |= bit;
    if (must_wait && keep_in_overflow(consumer, message) != 0) {
        /* Cannot hold it: leave it unstored, it comes back after a restart. */
        tk_log_fields(TK_LOG_ERROR, "out of memory holding a message", NULL);
        rd_kafka_message_destroy(message);
        return -1;
    }
    return 0;
}

int wk_consumer_run(wk_consumer *consumer, wk_lanes *lanes, volatile int *stop_requested, bool (*is_broken)(void *),
                    void *broken_ctx) {
    consumer->lanes = lanes;
    if (subscribe(consumer) != 0) return -1;
    uint64_t waiting_lanes = 0;
    while (!*stop_requested) {
        if (is_broken(broken_ctx)) return -1;
        waiting_lanes = drain_overflow(consumer);
        pause_lanes(consumer, waiting_lanes);
        rd_kafka_message_t *message = rd_kafka_consumer_poll(consumer->consumer, POLL_MS);
        if (message != NULL && take_message(consumer, message, &waiting_lanes) != 0) return -1;
    }
    return 0;
}

void wk_consumer_close(wk_consumer *consumer) {
    if (consumer == NULL || consumer->consumer == NULL) return;
    for (size_t i = 0; i < consumer->overflow_count; i++) rd_kafka_message_destroy(consumer->overflow[i]);
    consumer->overflow_count = 0;
    rd_kafka_consumer_close(consumer->consumer); /* commits what was stored, leaves the group */
    rd_kafka_destroy(consumer->consumer);
    free(consumer->overflow);
    memset(consumer, 0, sizeof *consumer);
}
