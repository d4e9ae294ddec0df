/* wk_metrics — the worker's metric series, registered once at start into a
 * table of handles: names and help texts live here only, and no message
 * takes the registry lock (a lookup happens only for a label value outside
 * the tables, such as an unexpected status). */
#include "wk_metrics.h"

#include <stdio.h>
#include <string.h>

#include "tk_kafka.h"
#include "tk_metrics.h"

#define MESSAGES_NAME "ticket_worker_messages_total"
#define MESSAGES_HELP "Messages handled, by topic, type and answer status"
#define DURATION_NAME "ticket_worker_message_duration_seconds"
#define DURATION_HELP "Time to apply and answer one message, by type"
#define DLQ_NAME "ticket_worker_dlq_total"
#define DLQ_HELP "Messages sent to ticket.dlq"
#define EXPIRED_NAME "ticket_worker_queries_expired_total"
#define EXPIRED_HELP "Queries skipped because their deadline had passed"
#define SHARED_NAME "ticket_worker_queries_shared_total"
#define SHARED_HELP "Queries answered from the read of an identical query of the same batch"
#define BULK_REPLIES_NAME "ticket_worker_replies_bulk_total"
#define BULK_REPLIES_HELP "Replies stored by one update command together with other replies of the same batch"
#define UNREAD_NAME "ticket_worker_unread_writes_total"
#define UNREAD_HELP "Replies, updates and resolves decided on the worker's copy of the ticket, without a read"
#define STALE_NAME "ticket_worker_recent_stale_total"
#define STALE_HELP "Changes whose copy of the ticket was no longer what is stored (read and decided again)"
#define DB_ERRORS_NAME "ticket_worker_db_errors_total"
#define DB_ERRORS_HELP "Database operations that failed"
#define DB_DURATION_NAME "ticket_worker_db_operation_duration_seconds"
#define DB_DURATION_HELP "Time spent in the database per request, by operation"
#define UNDELIVERABLE_NAME "ticket_worker_undeliverable_total"
#define UNDELIVERABLE_HELP "Replies, events or dead letters the broker refused for good"
#define PRODUCE_RETRIES_NAME "ticket_worker_produce_retries_total"
#define PRODUCE_RETRIES_HELP "Produced messages that failed and were sent again"

static const char *const TOPICS[] = {TK_TOPIC_COMMANDS, TK_TOPIC_QUERIES};
static const int STATUSES[] = {200, 201, 400, 404, 409, 412, 422, 500};
static const char *const DB_OPERATIONS[] = {"insert", "find", "findAndModify"};
static const char *const OUTPUT_TOPICS[] = {TK_TOPIC_REPLIES, TK_TOPIC_EVENTS, TK_TOPIC_DLQ};

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

static struct {
    tk_series *messages[COUNT_OF(TOPICS)][TK_REQUEST_TYPE_COUNT][COUNT_OF(STATUSES)];
    tk_series *duration[TK_REQUEST_TYPE_COUNT];
    tk_series *db_duration[TK_REQUEST_TYPE_COUNT];
    tk_series *db_errors[COUNT_OF(DB_OPERATIONS)][2];
    tk_series *undeliverable[COUNT_OF(OUTPUT_TOPICS)];
    tk_series *produce_retries[COUNT_OF(OUTPUT_TOPICS)];
    tk_series *dlq;
    tk_series *queries_expired;
    tk_series *queries_shared;
    tk_series *replies_bulk;
    tk_series *unread_writes;
    tk_series *recent_stale;
} handles;

static size_t index_of(const char *const *names, size_t count, const char *name) {
    for (size_t i = 0; i < count; i++)
        if (strcmp(names[i], name) == 0) return i;
    return count;
}

static size_t status_index(int status) {
    for (size_t i = 0; i < COUNT_OF(STATUSES); i++)
        if (STATUSES[i] == status) return i;
    return COUNT_OF(STATUSES);
}

static tk_series *message_counter(const char *topic, tk_request_type type, int status) {
    char labels[160];
    snprintf(labels, sizeof labels, "topic=\"%s\",type=\"%s\",status=\"%d\"", topic, tk_request_type_name(type),
             status);
    return tk_metrics_counter(MESSAGES_NAME, MESSAGES_HELP, labels);
}

static tk_series *topic_counter(const char *name, const char *help, const char *topic) {
    char labels[300];
    snprintf(labels, sizeof labels, "topic=\"%s\"", topic);
    return tk_metrics_counter(name, help, labels);
}

void wk_metrics_register(void) {
    char labels[128];
    if (handles.dlq != NULL) return;
    for (size_t t = 0; t < COUNT_OF(TOPICS); t++)
        for (int type = 0; type < TK_REQUEST_TYPE_COUNT; type++)
            for (size_t s = 0; s < COUNT_OF(STATUSES); s++)
                handles.messages[t][type][s] = message_counter(TOPICS[t], (tk_request_type)type, STATUSES[s]);
    for (int type = 0; type < TK_REQUEST_TYPE_COUNT; type++) {
        snprintf(labels, sizeof labels, "type=\"%s\"", tk_request_type_name((tk_request_type)type));
        handles.duration[type] = tk_metrics_histogram(DURATION_NAME, DURATION_HELP, labels);
        snprintf(labels, sizeof labels, "operation=\"%s\"", tk_request_type_name((tk_request_type)type));
        handles.db_duration[type] = tk_metrics_histogram(DB_DURATION_NAME, DB_DURATION_HELP, labels);
    }
    for (size_t o = 0; o < COUNT_OF(DB_OPERATIONS); o++)
        for (int transient = 0; transient < 2; transient++) {
            snprintf(labels, sizeof labels, "operation=\"%s\",transient=\"%s\"", DB_OPERATIONS[o],
                     transient ? "true" : "false");
            handles.db_errors[o][transient] = tk_metrics_counter(DB_ERRORS_NAME, DB_ERRORS_HELP, labels);
        }
    for (size_t t = 0; t < COUNT_OF(OUTPUT_TOPICS); t++) {
        handles.undeliverable[t] = topic_counter(UNDELIVERABLE_NAME, UNDELIVERABLE_HELP, OUTPUT_TOPICS[t]);
        handles.produce_retries[t] = topic_counter(PRODUCE_RETRIES_NAME, PRODUCE_RETRIES_HELP, OUTPUT_TOPICS[t]);
    }
    handles.dlq = tk_metrics_counter(DLQ_NAME, DLQ_HELP, "");
    handles.queries_expired = tk_metrics_counter(EXPIRED_NAME, EXPIRED_HELP, "");
    handles.queries_shared = tk_metrics_counter(SHARED_NAME, SHARED_HELP, "");
    handles.replies_bulk = tk_metrics_counter(BULK_REPLIES_NAME, BULK_REPLIES_HELP, "");
    handles.unread_writes = tk_metrics_counter(UNREAD_NAME, UNREAD_HELP, "");
    handles.recent_stale = tk_metrics_counter(STALE_NAME, STALE_HELP, "");
}

void wk_metrics_message(const char *topic, tk_request_type type, int status, double seconds) {
    size_t t = index_of(TOPICS, COUNT_OF(TOPICS), topic), s = status_index(status);
    if ((unsigned)type >= TK_REQUEST_TYPE_COUNT) return;
    tk_series *counter = t < COUNT_OF(TOPICS) && s < COUNT_OF(STATUSES) ? handles.messages[t][type][s] : NULL;
    tk_counter_add(counter != NULL ? counter : message_counter(topic, type, status), 1);
    tk_histogram_observe(handles.duration[type], seconds);
}

void wk_metrics_dead_letter(void) { tk_counter_add(handles.dlq, 1); }

void wk_metrics_query_expired(void) { tk_counter_add(handles.queries_expired, 1); }

void wk_metrics_query_shared(void) { tk_counter_add(handles.queries_shared, 1); }

void wk_metrics_replies_bulk(size_t count) { tk_counter_add(handles.replies_bulk, (uint64_t)count); }

void wk_metrics_write_unread(void) { tk_counter_add(handles.unread_writes, 1); }

void wk_metrics_recent_stale(void) { tk_counter_add(handles.recent_stale, 1); }

void wk_metrics_db_error(const char *operation, bool is_transient) {
    size_t o = index_of(DB_OPERATIONS, COUNT_OF(DB_OPERATIONS), operation);
    if (o < COUNT_OF(DB_OPERATIONS)) tk_counter_add(handles.db_errors[o][is_transient ? 1 : 0], 1);
}

void wk_metrics_db_duration(tk_request_type type, double seconds) {
    if ((unsigned)type < TK_REQUEST_TYPE_COUNT) tk_histogram_observe(handles.db_duration[type], seconds);
}

void wk_metrics_undeliverable(const char *topic) {
    size_t t = index_of(OUTPUT_TOPICS, COUNT_OF(OUTPUT_TOPICS), topic);
    tk_counter_add(t < COUNT_OF(OUTPUT_TOPICS) ? handles.undeliverable[t]
                                               : topic_counter(UNDELIVERABLE_NAME, UNDELIVERABLE_HELP, topic),
                   1);
}

void wk_metrics_produce_retry(const char *topic) {
    size_t t = index_of(OUTPUT_TOPICS, COUNT_OF(OUTPUT_TOPICS), topic);
    tk_counter_add(t < COUNT_OF(OUTPUT_TOPICS) ? handles.produce_retries[t]
                                               : topic_counter(PRODUCE_RETRIES_NAME, PRODUCE_RETRIES_HELP, topic),
                   1);
}
