/* gw_replies — the thread that reads this gateway's partition of
 * ticket.replies, reassembles chunks, matches replies to waiting requests and
 * expires deadlines. */
#include "gw_replies.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gw_answer.h"
#include "gw_passthru.h"
#include "tk_clock.h"
#include "tk_envelope.h"
#include "tk_kafka.h"
#include "tk_log.h"
#include "tk_metrics.h"
#include "tk_text.h"

#define POLL_MAX_MS 100
#define BROKER_PROBE_MS 500 /* how often an unreachable broker is asked again */
#define MAX_CHUNKS 128      /* 64 MiB of reply at most */

static void complete_with_error(gw_replies *replies, gw_pending_entry *entry, int status, const char *message) {
    size_t len = 0;
    char *body = gw_answer_error(message, &len);
    replies->complete(entry, status, body, len, replies->ctx);
}

char *gw_replies_parsed_answer(const char *data, size_t len, gw_pending_entry *entry, int *status, size_t *body_len,
                               char *err, size_t err_len) {
    json_t *parsed = NULL;
    if (tk_reply_parse(data, len, status, &parsed, err, err_len) != 0) return NULL;
    if (entry != NULL) tk_reply_take_meta(parsed, &entry->next_cursor, entry->etag, sizeof entry->etag);
    char *body = gw_answer_dump(parsed, body_len);
    json_decref(parsed);
    if (body == NULL) snprintf(err, err_len, "out of memory");
    return body;
}

char *gw_replies_http_answer(const char *data, size_t len, gw_pending_entry *entry, int *status, size_t *body_len,
                             char *err, size_t err_len) {
    char *body = gw_passthru_answer(data, len, entry, status, body_len);
    return body != NULL ? body : gw_replies_parsed_answer(data, len, entry, status, body_len, err, err_len);
}

static void complete_with_reply(gw_replies *replies, gw_pending_entry *entry, const char *data, size_t len) {
    char err[TK_ERROR_TEXT_MAX];
    int status = 0;
    size_t body_len = 0;
    char *body = gw_replies_http_answer(data, len, entry, &status, &body_len, err, sizeof err);
    if (body == NULL) {
        size_t err_len = strlen(err);
        tk_log_fields(TK_LOG_ERROR, "invalid reply",
                      json_pack("{s:s, s:s%}", "correlationId", entry->correlation_id, "error", err,
                                tk_utf8_prefix_len(err, err_len, err_len)));
        complete_with_error(replies, entry, 502, "Invalid reply from worker");
        return;
    }
    replies->complete(entry, status, body, body_len, replies->ctx);
}

/* A chunk header: a decimal number, digits only, at most MAX_CHUNKS. */
static int parse_chunk_number(const char *text, size_t len, int *out) {
    if (text == NULL || len == 0 || len > 3) return -1;
    int value = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9') return -1;
        value = value * 10 + (text[i] - '0');
    }
    if (value > MAX_CHUNKS) return -1;
    *out = value;
    return 0;
}

static gw_chunk_result discard_chunks(gw_pending_entry *entry) {
    free(entry->chunks);
    entry->chunks = NULL;
    entry->chunks_len = 0;
    entry->chunks_received = 0;
    entry->chunk_count = 0;
    return GW_CHUNK_BROKEN;
}

gw_chunk_result gw_replies_add_chunk(gw_pending_entry *entry, int index, int count, const void *data, size_t len) {
    if (index == 0) {
        /* Chunks 0..k then 0..N again: the worker died mid-reply and its
         * successor answers the whole command again. Keep only the new one. */
        entry->chunks_len = 0;
        entry->chunks_received = 0;
        entry->chunk_count = count;
    }
    if (count < 1 || count > MAX_CHUNKS || count != entry->chunk_count || index >= count ||
        index != entry->chunks_received || len > TK_REPLY_CHUNK_BYTES)
        return discard_chunks(entry);
    if (len > 0) {
        char *grown = realloc(entry->chunks, entry->chunks_len + len);
        if (grown == NULL) return discard_chunks(entry);
        memcpy(grown + entry->chunks_len, data, len);
        entry->chunks = grown;
        entry->chunks_len += len;
    }
    entry->chunks_received++;
    return entry->chunks_received < count ? GW_CHUNK_MORE : GW_CHUNK_WHOLE;
}

static void count_late(gw_replies *replies, const char *correlation_id, size_t len) {
    tk_counter_add(replies->late_replies, 1);
    tk_log_fields(TK_LOG_INFO, "late reply", json_pack("{s:s%}", "correlationId", correlation_id, len));
}

/* Answers entry, taken out of the table, with what result says. */
static void finish_entry(gw_replies *replies, gw_pending_entry *entry, gw_chunk_result result,
                         const gw_reply_message *message, bool is_chunked, int index, int count) {
    switch (result) {
    case GW_CHUNK_MORE:
        return;
    case GW_CHUNK_BROKEN:
        tk_log_fields(TK_LOG_ERROR, "invalid reply",
                      json_pack("{s:s, s:s, s:i, s:i}", "correlationId", entry->correlation_id, "error",
                                "chunk headers missing, out of order or inconsistent", "chunkIndex", index,
                                "chunkCount", count));
        complete_with_error(replies, entry, 502, "Invalid reply from worker");
        return;
    case GW_CHUNK_WHOLE:
        /* A reply in one message also replaces chunks of an earlier attempt. */
        if (is_chunked)
            complete_with_reply(replies, entry, entry->chunks != NULL ? entry->chunks : "", entry->chunks_len);
        else complete_with_reply(replies, entry, message->payload != NULL ? message->payload : "", message->len);
        return;
    }
}

/* Both chunk headers or neither; when present, both numbers. */
static bool are_chunk_headers_consistent(const gw_reply_message *message, int *index, int *count) {
    if (message->chunk_index == NULL && message->chunk_count == NULL) return true;
    return parse_chunk_number(message->chunk_index, message->chunk_index_len, index) == 0 &&
           parse_chunk_number(message->chunk_count, message->chunk_count_len, count) == 0;
}

void gw_replies_handle(gw_replies *replies, const gw_reply_message *message) {
    if (message->correlation_id == NULL) {
        tk_log_fields(TK_LOG_WARN, "reply without correlation-id", NULL);
        return;
    }
    int index = 0, count = 0;
    bool is_chunked = message->chunk_index != NULL || message->chunk_count != NULL;
    bool is_consistent = are_chunk_headers_consistent(message, &index, &count);
    gw_chunk_result result = GW_CHUNK_WHOLE;

    gw_pending_lock(replies->pending);
    gw_pending_entry *entry = gw_pending_find_locked(replies->pending, message->correlation_id,
                                                     message->correlation_id_len);
    if (entry != NULL) {
        if (!is_consistent) result = discard_chunks(entry);
        else if (is_chunked) result = gw_replies_add_chunk(entry, index, count, message->payload, message->len);
        /* Whoever takes the entry out of the table answers it. */
        if (result != GW_CHUNK_MORE) gw_pending_remove_locked(replies->pending, entry);
    }
    gw_pending_unlock(replies->pending);

    if (entry != NULL) {
        finish_entry(replies, entry, result, message, is_chunked, index, count);
        return;
    }
    /* Chunks after the first of a late reply are not counted again. */
    if (!is_chunked || (is_consistent && index == 0))
        count_late(replies, message->correlation_id, message->correlation_id_len);
}

static void handle_reply(gw_replies *replies, const rd_kafka_message_t *message) {
    gw_reply_message reply = {.payload = message->payload, .len = message->len};
    if (tk_kafka_header(message, TK_HEADER_CORRELATION_ID, &reply.correlation_id, &reply.correlation_id_len) != 0) {
        tk_log_fields(TK_LOG_WARN, "reply without correlation-id",
                      json_pack("{s:I}", "offset", (json_int_t)message->offset));
        return;
    }
    if (tk_kafka_header(message, TK_HEADER_CHUNK_INDEX, &reply.chunk_index, &reply.chunk_index_len) != 0)
        reply.chunk_index = NULL;
    if (tk_kafka_header(message, TK_HEADER_CHUNK_COUNT, &reply.chunk_count, &reply.chunk_count_len) != 0)
        reply.chunk_count = NULL;
    gw_replies_handle(replies, &reply);
}

static void expire_deadlines(gw_replies *replies) {
    int64_t now = tk_monotonic_ms();
    gw_pending_entry *entry;
    while ((entry = gw_pending_take_expired(replies->pending, now)) != NULL) {
        tk_counter_add(replies->timeouts, 1);
        tk_log_fields(TK_LOG_WARN, "request timed out", json_pack("{s:s}", "correlationId", entry->correlation_id));
        complete_with_error(replies, entry, 504, "No worker answered in time");
    }
}

/* Assign at the current end, read explicitly: replies produced after this
 * point are guaranteed to be seen, so readiness means something. */
static int position_at_end(gw_replies *replies) {
    int64_t low = 0, high = 0;
    if (gw_publish_warm_up(replies->publish) != 0) return -1;
    rd_kafka_resp_err_t rc = rd_kafka_query_watermark_offsets(replies->consumer, TK_TOPIC_REPLIES, replies->partition,
                                                              &low, &high, 2000);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        tk_log_fields(TK_LOG_WARN, "reply partition not reachable yet",
                      json_pack("{s:s, s:i, s:s}", "topic", TK_TOPIC_REPLIES, "partition", replies->partition, "error",
                                rd_kafka_err2str(rc)));
        return -1;
    }
    rd_kafka_topic_partition_list_t *assignment = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(assignment, TK_TOPIC_REPLIES, replies->partition)->offset = high;
    rc = rd_kafka_assign(replies->consumer, assignment);
    rd_kafka_topic_partition_list_destroy(assignment);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) return -1;
    atomic_store(&replies->is_ready, true);
    tk_log_fields(TK_LOG_INFO, "reply partition assigned",
                  json_pack("{s:s, s:i, s:I}", "topic", TK_TOPIC_REPLIES, "partition", replies->partition, "offset",
                            (json_int_t)high));
    return 0;
}

static int poll_timeout_ms(gw_replies *replies) {
    int64_t deadline = gw_pending_next_deadline(replies->pending);
    if (deadline < 0) return POLL_MAX_MS;
    int64_t wait = deadline - tk_monotonic_ms();
    return wait <= 0 ? 0 : wait > POLL_MAX_MS ? POLL_MAX_MS : (int)wait;
}

static void *run(void *arg) {
    gw_replies *replies = arg;
    int64_t next_probe_ms = 0;
    while (!atomic_load(&replies->is_stopping)) {
        if (!atomic_load(&replies->is_ready) && position_at_end(replies) != 0) {
            gw_publish_poll(replies->publish);
            expire_deadlines(replies);
            usleep(200 * 1000);
            continue;
        }
        rd_kafka_message_t *message = rd_kafka_consumer_poll(replies->consumer, poll_timeout_ms(replies));
        if (message != NULL) {
            if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                handle_reply(replies, message);
            } else if (message->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                tk_log_fields(TK_LOG_WARN, "reply consumer error",
                              json_pack("{s:s}", "error", rd_kafka_message_errstr(message)));
            }
            rd_kafka_message_destroy(message);
        }
        gw_publish_poll(replies->publish);
        expire_deadlines(replies);
        if (tk_monotonic_ms() >= next_probe_ms) {
            gw_publish_probe(replies->publish);
            next_probe_ms = tk_monotonic_ms() + BROKER_PROBE_MS;
        }
    }
    return NULL;
}

int gw_replies_start(gw_replies *replies, const char *brokers, int partition, gw_pending *pending, gw_publish *publish,
                     gw_replies_complete_fn complete, void *ctx, char *err, size_t err_len) {
    /* No group: this gateway alone reads its partition. The broker answers a
     * fetch as soon as a reply arrives, so the wait only bounds idle polling
     * (10 ms cost the idle broker 80 ms of CPU a second; 500: 2 fetches a second). */
    const tk_kafka_setting settings[] = {
        {"enable.auto.commit", "false"},
        {"enable.partition.eof", "false"},
        {"fetch.wait.max.ms", "500"},
        {"fetch.error.backoff.ms", "10"},
        {"socket.nagle.disable", "true"},
        {"fetch.message.max.bytes", "2097152"},
        {"group.id", "ticket-gateway-replies-unused"},
        {NULL, NULL},
    };
    memset(replies, 0, sizeof *replies);
    replies->partition = partition;
    replies->pending = pending;
    replies->publish = publish;
    replies->complete = complete;
    replies->ctx = ctx;
    replies->late_replies = tk_metrics_counter("ticket_gateway_late_replies_total",
                                               "Replies that arrived after their request was answered", "");
    replies->timeouts = tk_metrics_counter("ticket_gateway_request_timeouts_total",
                                           "Requests answered 504 because no reply came in time", "");
    rd_kafka_conf_t *conf = tk_kafka_conf_new(brokers, "ticket-gateway-replies", settings, err, err_len);
    if (conf == NULL) return -1;
    replies->consumer = tk_kafka_new(RD_KAFKA_CONSUMER, conf, err, err_len);
    if (replies->consumer == NULL) return -1;
    rd_kafka_poll_set_consumer(replies->consumer);
    if (pthread_create(&replies->thread, NULL, run, replies) != 0) {
        snprintf(err, err_len, "cannot start the reply thread");
        rd_kafka_destroy(replies->consumer);
        replies->consumer = NULL;
        return -1;
    }
    replies->is_thread_started = true;
    return 0;
}

bool gw_replies_is_ready(gw_replies *replies) { return atomic_load(&replies->is_ready); }

void gw_replies_stop(gw_replies *replies) {
    if (replies == NULL || replies->consumer == NULL) return;
    atomic_store(&replies->is_stopping, true);
    if (replies->is_thread_started) pthread_join(replies->thread, NULL);
    rd_kafka_consumer_close(replies->consumer);
    rd_kafka_destroy(replies->consumer);
    replies->consumer = NULL;
}
