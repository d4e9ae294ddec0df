#include "wk_process.h"

#include <string.h>
#include <unistd.h>

#include "tk_envelope.h"
#include "tk_kafka.h"
#include "tk_log.h"
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

static void dead_letter(const wk_process_context *context, const rd_kafka_message_t *message,
                        const wk_address *address, const char *reason, wk_progress *progress,
                        wk_progress_record *record) {
    tk_log_fields(TK_LOG_WARN, "message rejected to the dead-letter topic",
                  json_pack("{s:s, s:i, s:I, s:s}", "topic", rd_kafka_topic_name(message->rkt), "partition",
                            (int)message->partition, "offset", (json_int_t)message->offset, "reason", reason));
    wk_output_dead_letter(context->output, message, reason, progress, record);
    if (address->wants_reply) answer(context, address, 400, reason, NULL, progress, record);
}

/* Applies with backoff while the database is away. @returns 0 with *result,
 * or -1 when the worker is stopping first. */
static int execute_with_retry(const wk_process_context *context, mongoc_collection_t *tickets,
                              const tk_request *request, wk_result *result) {
    int backoff_ms = RETRY_FIRST_MS;
    while (wk_tickets_execute(tickets, request, result) == WK_RETRY) {
        if (atomic_load(context->is_stopping)) return -1;
        usleep((useconds_t)backoff_ms * 1000);
        backoff_ms = backoff_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : backoff_ms * 2;
    }
    return 0;
}

void wk_process_message(const wk_process_context *context, mongoc_collection_t *tickets, wk_progress *progress,
                        const rd_kafka_message_t *message) {
    char reason[TK_ERROR_TEXT_MAX];
    wk_address address;
    tk_request request;
    wk_result result;
    int64_t started_ms = tk_monotonic_ms();

    wk_progress_record *record =
        wk_progress_begin(progress, static_topic_name(message), message->partition, message->offset);
    if (record == NULL) {
        tk_log_fields(TK_LOG_ERROR, "out of memory, message left for redelivery", NULL);
        return;
    }
    wk_address_from_message(message, &address);
    if (tk_request_parse(message->payload, message->len, &request, reason, sizeof reason) != 0) {
        dead_letter(context, message, &address, reason, progress, record);
        wk_progress_done(progress, record);
        return;
    }
    if (execute_with_retry(context, tickets, &request, &result) != 0) {
        tk_request_close(&request);
        return; /* stopping: the record stays open, the offset unstored */
    }
    if (address.wants_reply)
        answer(context, &address, result.status, result.message, json_incref(result.data), progress, record);
    if (result.event != NULL) wk_output_event(context->output, result.event_key, result.event, &address, progress, record);
    tk_log_fields(TK_LOG_DEBUG, request.type == TK_REQUEST_TICKETS_LIST ? "query answered" : "command applied",
                  json_pack("{s:s, s:i, s:s*, s:s, s:I, s:I}", "type", tk_request_type_name(request.type), "status",
                            result.status, "ticketId", request.ticket_id, "correlationId", address.correlation_id,
                            "offset", (json_int_t)message->offset, "elapsedMs",
                            (json_int_t)(tk_monotonic_ms() - started_ms)));
    wk_result_close(&result);
    tk_request_close(&request);
    wk_progress_done(progress, record);
}
