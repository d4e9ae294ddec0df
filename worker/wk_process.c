#include "wk_process.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tk_envelope.h"
#include "tk_kafka.h"
#include "tk_log.h"
#include "tk_metrics.h"
#include "wk_idempotency.h"
#include "wk_tickets.h"

#define RETRY_FIRST_MS 100
#define RETRY_MAX_MS 5000

static const char *static_topic_name(const rd_kafka_message_t *message) {
    const char *name = rd_kafka_topic_name(message->rkt);
    return strcmp(name, TK_TOPIC_QUERIES) == 0 ? TK_TOPIC_QUERIES : TK_TOPIC_COMMANDS;
}

static void answer(const wk_process_context *context, const wk_address *address, int status, const char *message,
                   json_t *data, wk_progress *progress, wk_progress_record *record) {
    json_t *reply = tk_reply_json_new(status, message, data);
    if (reply == NULL) {
        tk_log_fields(TK_LOG_ERROR, "cannot build reply", json_pack("{s:s}", "correlationId", address->correlation_id));
        return;
    }
    wk_output_reply(context->output, address, reply, progress, record);
    json_decref(reply);
}

/* The trace id of a W3C traceparent ("00-<trace id>-<span>-<flags>"), or NULL. */
static json_t *trace_id_json(const wk_address *address) {
    return strlen(address->traceparent) == 55 ? json_stringn(address->traceparent + 3, 32) : NULL;
}

static void count_message(const char *topic, const char *type, int status, double seconds) {
    char labels[128];
    snprintf(labels, sizeof labels, "topic=\"%s\",type=\"%s\",status=\"%d\"", topic, type, status);
    tk_counter_add(tk_metrics_counter("ticket_worker_messages_total", "Messages handled, by topic, type and answer status",
                                      labels), 1);
    snprintf(labels, sizeof labels, "type=\"%s\"", type);
    tk_histogram_observe(tk_metrics_histogram("ticket_worker_message_duration_seconds",
                                              "Time to apply and answer one message, by type", labels),
                         seconds);
}

static void dead_letter(const wk_process_context *context, const rd_kafka_message_t *message,
                        const wk_address *address, const char *reason, wk_progress *progress,
                        wk_progress_record *record) {
    json_t *fields = json_pack("{s:s, s:i, s:I, s:s}", "topic", rd_kafka_topic_name(message->rkt), "partition",
                               (int)message->partition, "offset", (json_int_t)message->offset, "reason", reason);
    if (fields != NULL && address->traceparent[0] != '\0') json_object_set_new(fields, "traceId", trace_id_json(address));
    tk_log_fields(TK_LOG_WARN, "message rejected to the dead-letter topic", fields);
    tk_counter_add(tk_metrics_counter("ticket_worker_dlq_total", "Messages sent to ticket.dlq", ""), 1);
    wk_output_dead_letter(context->output, message, reason, progress, record);
    if (address->wants_reply) answer(context, address, 400, reason, NULL, progress, record);
}

/* Applies with backoff while the database is away. @returns 0 with *result,
 * or -1 when the worker is stopping first. */
static int execute(const wk_collections *db, tk_request *request, wk_original_ids *original, wk_result *result) {
    memset(result, 0, sizeof *result);
    int rc = wk_idempotency_resolve(db->idempotency_keys, request, original, result);
    if (rc == 1) return 0; /* answered: the key was used for something else */
    if (rc != 0) return rc;
    return wk_tickets_execute(db->tickets, request, result);
}

static int execute_with_retry(const wk_process_context *context, const wk_collections *db, tk_request *request,
                              wk_result *result) {
    int backoff_ms = RETRY_FIRST_MS;
    wk_original_ids original;
    while (execute(db, request, &original, result) == WK_RETRY) {
        atomic_store(&context->store->is_reachable, false);
        if (atomic_load(context->is_stopping)) return -1;
        usleep((useconds_t)backoff_ms * 1000);
        backoff_ms = backoff_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : backoff_ms * 2;
    }
    atomic_store(&context->store->is_reachable, true);
    return 0;
}

/* A query whose requester has stopped waiting (its "deadline" header, epoch
 * ms, has passed) is skipped: no database work for nobody, so a backlog of
 * reads drains at once instead of piling up behind itself. */
static bool is_expired_query(const rd_kafka_message_t *message) {
    char text[24];
    char *end = NULL;
    if (strcmp(rd_kafka_topic_name(message->rkt), TK_TOPIC_QUERIES) != 0 ||
        tk_kafka_header_copy(message, TK_HEADER_DEADLINE, text, sizeof text) != 0)
        return false;
    long long deadline_ms = strtoll(text, &end, 10);
    if (end == text || *end != '\0' || tk_now_ms() <= deadline_ms) return false;
    tk_counter_add(tk_metrics_counter("ticket_worker_queries_expired_total",
                                      "Queries skipped because their deadline had passed", ""), 1);
    return true;
}

/* The answer with what a list page or one ticket adds: next cursor, ETag. */
static void answer_result(const wk_process_context *context, const wk_address *address, const wk_result *result,
                          wk_progress *progress, wk_progress_record *record) {
    json_t *reply = tk_reply_json_new_meta(result->status, result->message,
                                           result->next_cursor[0] != '\0' ? result->next_cursor : NULL,
                                           result->etag[0] != '\0' ? result->etag : NULL, json_incref(result->data));
    if (reply == NULL) {
        tk_log_fields(TK_LOG_ERROR, "cannot build reply", json_pack("{s:s}", "correlationId", address->correlation_id));
        return;
    }
    wk_output_reply(context->output, address, reply, progress, record);
    json_decref(reply);
}

void wk_process_message(const wk_process_context *context, const wk_collections *db, wk_progress *progress,
                        const rd_kafka_message_t *message) {
    char reason[TK_ERROR_TEXT_MAX];
    wk_address address;
    tk_request request;
    wk_result result;
    int64_t started_us = tk_monotonic_us();

    wk_progress_record *record =
        wk_progress_begin(progress, static_topic_name(message), message->partition, message->offset);
    if (record == NULL) {
        tk_log_fields(TK_LOG_ERROR, "out of memory, message left for redelivery", NULL);
        return;
    }
    wk_address_from_message(message, &address);
    if (is_expired_query(message)) {
        wk_progress_done(progress, record);
        return;
    }
    if (tk_request_parse(message->payload, message->len, &request, reason, sizeof reason) != 0) {
        dead_letter(context, message, &address, reason, progress, record);
        wk_progress_done(progress, record);
        return;
    }
    if (execute_with_retry(context, db, &request, &result) != 0) {
        tk_request_close(&request);
        return; /* stopping: the record stays open, the offset unstored */
    }
    if (address.wants_reply) answer_result(context, &address, &result, progress, record);
    if (result.event != NULL) wk_output_event(context->output, result.event_key, result.event, &address, progress, record);
    int64_t elapsed_us = tk_monotonic_us() - started_us;
    count_message(static_topic_name(message), tk_request_type_name(request.type), result.status,
                  (double)elapsed_us / 1e6);
    if (tk_log_enabled(TK_LOG_DEBUG)) {
        json_t *fields = json_pack("{s:s, s:i, s:s*, s:s, s:i, s:I, s:f, s:o*}", "type",
                                   tk_request_type_name(request.type), "status", result.status, "ticketId",
                                   request.ticket_id, "correlationId", address.correlation_id, "partition",
                                   (int)message->partition, "offset", (json_int_t)message->offset, "elapsedMs",
                                   (double)elapsed_us / 1000.0, "traceId", trace_id_json(&address));
        tk_log_fields(TK_LOG_DEBUG, request.type == TK_REQUEST_TICKETS_LIST ? "query answered" : "command applied",
                      fields);
    }
    wk_result_close(&result);
    tk_request_close(&request);
    wk_progress_done(progress, record);
}
