/* wk_process — one consumed message from start to finish: validate (or
 * dead-letter), apply with retries, answer, announce, and mark it done. */
#include "wk_process.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tk_clock.h"
#include "tk_envelope.h"
#include "tk_kafka.h"
#include "tk_log.h"
#include "tk_text.h"
#include "tk_trace.h"
#include "wk_idempotency.h"
#include "wk_metrics.h"
#include "wk_tickets.h"
#include "wk_verify.h"

#define RETRY_FIRST_MS 100
#define RETRY_MAX_MS 5000
#define RETRY_SLICE_MS 50 /* how soon a backoff notices a stop or a revoke */

static const char *static_topic_name(const rd_kafka_message_t *message) {
    const char *name = rd_kafka_topic_name(message->rkt);
    return strcmp(name, TK_TOPIC_QUERIES) == 0 ? TK_TOPIC_QUERIES : TK_TOPIC_COMMANDS;
}

/* reply (taken) as its text, NULL when it or the text could not be built. */
static char *reply_text_new(json_t *reply) {
    char *text = reply != NULL ? json_dumps(reply, JSON_COMPACT) : NULL;
    json_decref(reply);
    return text;
}

/* Sends a reply's text (NULL: it could not be built, which is logged). A
 * failed send leaves its unit outstanding, so the offset stays unstored and
 * the message comes again. */
static void send_reply_text(const wk_process_context *context, const wk_address *address, const char *text, size_t len,
                            wk_progress *progress, wk_progress_record *record) {
    if (text == NULL) {
        tk_log_fields(TK_LOG_ERROR, "cannot build reply", json_pack("{s:s}", "correlationId", address->correlation_id));
        return;
    }
    if (wk_output_reply_text(context->output, address, text, len, progress, record) != 0)
        tk_log_fields(TK_LOG_WARN, "reply not sent, message left for redelivery",
                      json_pack("{s:s}", "correlationId", address->correlation_id));
}

/* Sends reply (takes ownership). */
static void send_reply(const wk_process_context *context, const wk_address *address, json_t *reply,
                       wk_progress *progress, wk_progress_record *record) {
    char *text = reply_text_new(reply);
    send_reply_text(context, address, text, text != NULL ? strlen(text) : 0, progress, record);
    free(text);
}

static void answer(const wk_process_context *context, const wk_address *address, int status, const char *message,
                   json_t *data, wk_progress *progress, wk_progress_record *record) {
    send_reply(context, address, tk_reply_json_new(status, message, data), progress, record);
}

/* The trace id of a W3C traceparent ("00-<trace id>-<span>-<flags>"), or NULL. */
static json_t *trace_id_json(const wk_address *address) {
    return strlen(address->traceparent) == TK_TRACEPARENT_LEN
               ? json_stringn(address->traceparent + TK_TRACE_ID_OFFSET, TK_TRACE_ID_LEN)
               : NULL;
}

/* Dead-letters message and, when it carried a reply address, answers status. */
static void dead_letter_with(const wk_process_context *context, const rd_kafka_message_t *message,
                             const wk_address *address, int status, const char *reason, wk_progress *progress,
                             wk_progress_record *record) {
    json_t *fields = json_pack("{s:s, s:i, s:I, s:s}", "topic", rd_kafka_topic_name(message->rkt), "partition",
                               (int)message->partition, "offset", (json_int_t)message->offset, "reason", reason);
    if (fields != NULL && address->traceparent[0] != '\0')
        json_object_set_new(fields, "traceId", trace_id_json(address));
    tk_log_fields(TK_LOG_WARN, "message rejected to the dead-letter topic", fields);
    wk_metrics_dead_letter();
    if (wk_output_dead_letter(context->output, message, reason, progress, record) != 0)
        tk_log_fields(TK_LOG_WARN, "dead letter not sent, message left for redelivery", NULL);
    if (address->wants_reply) answer(context, address, status, reason, NULL, progress, record);
}

static void dead_letter(const wk_process_context *context, const rd_kafka_message_t *message, const wk_address *address,
                        const char *reason, wk_progress *progress, wk_progress_record *record) {
    dead_letter_with(context, message, address, 400, reason, progress, record);
}

/* One attempt. @returns WK_DONE with *result, WK_RETRY, or WK_FENCED. */
static wk_outcome execute(const wk_collections *db, const wk_write_guard *guard, tk_request *request,
                          wk_original_ids *original, wk_result *result) {
    memset(result, 0, sizeof *result);
    if (!wk_lease_holds(guard->lease)) return WK_FENCED; /* the key record is a write too */
    wk_outcome rc = wk_idempotency_resolve(db->idempotency_keys, request, original, result);
    if (rc == WK_ANSWERED) return WK_DONE; /* the key was used for something else: *result says so */
    if (rc != WK_DONE) return rc;
    return wk_tickets_execute(db->tickets, request, guard, result);
}

/* Sleeps ms in slices. @returns false as soon as the worker stops or the lease ends. */
static bool backoff(const wk_process_context *context, const wk_lease *lease, int ms) {
    for (int slept = 0; slept < ms; slept += RETRY_SLICE_MS) {
        if (atomic_load(context->is_stopping) || !wk_lease_holds(lease)) return false;
        usleep(RETRY_SLICE_MS * 1000);
    }
    return !atomic_load(context->is_stopping) && wk_lease_holds(lease);
}

/* Applies with backoff while the database is away. @returns WK_DONE with
 * *result, WK_RETRY when the worker is stopping first, or WK_FENCED when the
 * partition was revoked (the next owner applies the message). */
static wk_outcome execute_with_retry(const wk_process_context *context, const wk_collections *db, const wk_lease *lease,
                                     tk_request *request, wk_result *result) {
    int backoff_ms = RETRY_FIRST_MS;
    wk_original_ids original;
    wk_write_guard guard = {lease, atomic_load(&context->store->has_conditional_push), context->store->recent};
    wk_outcome rc;
    while ((rc = execute(db, &guard, request, &original, result)) == WK_RETRY) {
        atomic_store(&context->store->is_reachable, false);
        if (!backoff(context, lease, backoff_ms)) return wk_lease_holds(lease) ? WK_RETRY : WK_FENCED;
        backoff_ms = backoff_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : backoff_ms * 2;
    }
    if (rc == WK_DONE) atomic_store(&context->store->is_reachable, true);
    return rc;
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
    wk_metrics_query_expired();
    return true;
}

/* The answer with what a list page or one ticket adds: next cursor, ETag. */
static json_t *result_reply(const wk_result *result) {
    return tk_reply_json_new_meta(result->status, result->message,
                                  result->next_cursor[0] != '\0' ? result->next_cursor : NULL,
                                  result->etag[0] != '\0' ? result->etag : NULL, json_incref(result->data));
}

/* An answer that identical queries of the batch share (wk_share): dumped for
 * the first of them, the same bytes for the others, each under its own
 * headers. A page of a list is tens of kilobytes of JSON to write. */
static void answer_shared(const wk_process_context *context, const wk_address *address, const wk_result *result,
                          wk_share *share, wk_progress *progress, wk_progress_record *record) {
    size_t len = 0;
    if (wk_share_reply(share, &len) == NULL) {
        char *text = reply_text_new(result_reply(result));
        if (text != NULL) wk_share_keep_reply(share, text, strlen(text));
    }
    const char *text = wk_share_reply(share, &len); /* sets len: not in the same call's arguments */
    send_reply_text(context, address, text, len, progress, record);
}

static void answer_result(const wk_process_context *context, const wk_address *address, const wk_result *result,
                          wk_share *share, wk_progress *progress, wk_progress_record *record) {
    if (share != NULL) answer_shared(context, address, result, share, progress, record);
    else send_reply(context, address, result_reply(result), progress, record);
}

/* Verification, expiry and parsing: what happens before any database work.
 * @returns true with *request parsed; false when the message is finished
 * (dead-lettered or skipped, its record done). */
static bool admit(const wk_process_context *context, const rd_kafka_message_t *message, wk_address *address,
                  tk_request *request, wk_progress *progress, wk_progress_record *record) {
    char reason[TK_ERROR_TEXT_MAX];
    wk_address_from_message(message, address);
    /* Nothing unsigned, forged or aimed at a foreign reply address is acted on. */
    if (wk_verify_message(message, address, reason, sizeof reason) != 0) {
        dead_letter_with(context, message, address, 401, reason, progress, record);
        wk_progress_done(progress, record);
        return false;
    }
    if (is_expired_query(message)) {
        wk_progress_done(progress, record);
        return false;
    }
    if (tk_request_parse(message->payload, message->len, request, reason, sizeof reason) != 0) {
        /* A reason cut inside a character is not UTF-8: the dead letter and
         * the reply would fail to build and the message vanish. */
        reason[tk_utf8_prefix_len(reason, strlen(reason), sizeof reason)] = '\0';
        dead_letter(context, message, address, reason, progress, record);
        wk_progress_done(progress, record);
        return false;
    }
    return true;
}

static void log_handled(const rd_kafka_message_t *message, const wk_address *address, const tk_request *request,
                        const wk_result *result, int64_t elapsed_us, bool is_batched) {
    if (!tk_log_enabled(TK_LOG_DEBUG)) return;
    json_t *fields = json_pack("{s:s, s:i, s:s*, s:s, s:i, s:I, s:f, s:o*}", "type",
                               tk_request_type_name(request->type), "status", result->status, "ticketId",
                               request->ticket_id, "correlationId", address->correlation_id, "partition",
                               (int)message->partition, "offset", (json_int_t)message->offset, "elapsedMs",
                               (double)elapsed_us / 1000.0, "traceId", trace_id_json(address));
    if (fields != NULL && is_batched) json_object_set_new(fields, "batched", json_true());
    tk_log_fields(TK_LOG_DEBUG, request->type == TK_REQUEST_TICKETS_LIST ? "query answered" : "command applied",
                  fields);
}

/* Answers, announces and marks the record done: a message's last step. */
static void finish(const wk_process_context *context, wk_progress *progress, wk_progress_record *record,
                   const rd_kafka_message_t *message, const wk_address *address, const tk_request *request,
                   const wk_result *result, wk_share *shared, int64_t started_us, bool is_batched) {
    if (address->wants_reply) answer_result(context, address, result, shared, progress, record);
    const json_t *events[] = {result->event, result->status_event};
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
        if (events[i] != NULL &&
            wk_output_event(context->output, result->event_key, events[i], address, progress, record) != 0)
            tk_log_fields(TK_LOG_WARN, "event not sent, message left for redelivery", NULL);
    }
    int64_t elapsed_us = tk_monotonic_us() - started_us;
    wk_metrics_message(static_topic_name(message), request->type, result->status, (double)elapsed_us / 1e6);
    log_handled(message, address, request, result, elapsed_us, is_batched);
    wk_progress_done(progress, record);
}

/* A query answered before in this batch is answered again from that read;
 * anything else is executed (and a query's answer kept for the next one).
 * *shared: share when the answer is the kept one, else NULL. */
static wk_outcome apply(const wk_process_context *context, const wk_collections *db, const wk_lease *lease,
                        const rd_kafka_message_t *message, tk_request *request, wk_result *result, wk_share *share,
                        wk_share **shared) {
    bool is_query = share != NULL && tk_request_type_is_query(request->type);
    *shared = NULL;
    if (is_query && wk_share_lookup(share, message, result)) {
        wk_metrics_query_shared();
        *shared = share;
        return WK_DONE;
    }
    wk_outcome outcome = execute_with_retry(context, db, lease, request, result);
    if (is_query && outcome == WK_DONE && wk_share_keep(share, message, result)) *shared = share;
    return outcome;
}

void wk_process_message(const wk_process_context *context, const wk_collections *db, wk_progress *progress,
                        const rd_kafka_message_t *message, const wk_lease *lease) {
    wk_process_message_shared(context, db, progress, message, lease, NULL);
}

void wk_process_message_shared(const wk_process_context *context, const wk_collections *db, wk_progress *progress,
                               const rd_kafka_message_t *message, const wk_lease *lease, wk_share *share) {
    wk_address address;
    tk_request request;
    wk_result result;
    int64_t started_us = tk_monotonic_us();

    wk_progress_record *record = wk_progress_begin(progress, static_topic_name(message), message->partition,
                                                   message->offset);
    if (record == NULL) {
        tk_log_fields(TK_LOG_ERROR, "out of memory, message left for redelivery", NULL);
        return;
    }
    if (!admit(context, message, &address, &request, progress, record)) return;
    wk_share *shared = NULL;
    wk_outcome outcome = apply(context, db, lease, message, &request, &result, share, &shared);
    if (outcome != WK_DONE) {
        tk_request_close(&request);
        /* Fenced: nothing written, the partition's next owner applies it;
         * the record must not hold back the lane's other partitions.
         * Stopping: the record stays open, the offset unstored. */
        if (outcome == WK_FENCED) {
            tk_log_fields(TK_LOG_INFO, "partition revoked, message left to its next owner",
                          json_pack("{s:s, s:i, s:I}", "topic", rd_kafka_topic_name(message->rkt), "partition",
                                    (int)message->partition, "offset", (json_int_t)message->offset));
            wk_progress_abandon(progress, record);
        }
        return;
    }
    finish(context, progress, record, message, &address, &request, &result, shared, started_us, false);
    wk_result_close(&result);
    tk_request_close(&request);
}

void wk_process_finish(const wk_process_context *context, wk_progress *progress, const rd_kafka_message_t *message,
                       const tk_request *request, const wk_result *result, int64_t started_us) {
    wk_address address;
    wk_progress_record *record = wk_progress_begin(progress, static_topic_name(message), message->partition,
                                                   message->offset);
    if (record == NULL) { /* stored already: the redelivery answers it as a repeat */
        tk_log_fields(TK_LOG_ERROR, "out of memory, message left for redelivery", NULL);
        return;
    }
    wk_address_from_message(message, &address);
    finish(context, progress, record, message, &address, request, result, NULL, started_us, true);
}
