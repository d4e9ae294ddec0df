/* wk_output — everything the worker produces: replies (chunked when large),
 * events and dead letters. Each message is tracked until the broker has it. */
#ifndef WK_OUTPUT_H
#define WK_OUTPUT_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "wk_progress.h"

#define WK_CORRELATION_ID_MAX 128
#define WK_TOPIC_NAME_MAX 249

/** Where and how to answer a request; from its headers. */
typedef struct {
    bool wants_reply;
    char correlation_id[WK_CORRELATION_ID_MAX + 1];
    char topic[WK_TOPIC_NAME_MAX + 1];
    int32_t partition;    /* RD_KAFKA_PARTITION_UA when the requester did not say */
    char traceparent[64]; /* "" when absent */
} wk_address;

typedef struct {
    rd_kafka_t *producer;
    pthread_t poll_thread;
    bool is_poll_thread_started;
    atomic_bool is_stopping;      /* the delivery thread ends */
    atomic_bool is_waiting_ended; /* produce() no longer waits for room: shutdown has begun */
    atomic_bool has_fatal_error;
} wk_output;

/** @brief Reads the reply address and trace context of a consumed message. */
void wk_address_from_message(const rd_kafka_message_t *message, wk_address *address);

/**
 * @brief Creates the idempotent producer and the thread serving its delivery reports.
 * @returns 0, or -1 with err.
 */
int wk_output_init(wk_output *output, const char *brokers, const char *client_id, char *err, size_t err_len);

/**
 * @brief Sends a reply's text (len bytes, copied) to address, in chunks above
 * TK_REPLY_CHUNK_BYTES, tracked by record. Waits while the local queue is
 * full. @returns 0, or -1 when stopping.
 */
int wk_output_reply_text(wk_output *output, const wk_address *address, const char *text, size_t len,
                         wk_progress *progress, wk_progress_record *record);

/** @brief Publishes event on ticket.events with key. @returns 0, or -1 when stopping. */
int wk_output_event(wk_output *output, const char *key, const json_t *event, const wk_address *address,
                    wk_progress *progress, wk_progress_record *record);

/**
 * @brief Sends message to ticket.dlq with reason (same key, headers copied).
 * @returns 0, or -1 when stopping.
 */
int wk_output_dead_letter(wk_output *output, const rd_kafka_message_t *message, const char *reason,
                          wk_progress *progress, wk_progress_record *record);

/**
 * @brief From now on a produce() that finds the local queue full gives up at
 * once (its unit stays outstanding, the offset unstored) instead of waiting:
 * call before joining the lanes, so none stays blocked.
 */
void wk_output_stop_waiting(wk_output *output);

/** @returns true after a fatal producer error: the process must restart. */
bool wk_output_is_broken(wk_output *output);

/**
 * @brief Flushes up to timeout_ms, purges what is left (those units stay
 * outstanding: never stored, so redelivered), serves the last delivery
 * reports, stops the thread, destroys. After it returns no delivery report
 * touches a progress record any more. Accepts a zeroed struct.
 */
void wk_output_close(wk_output *output, int timeout_ms);

#endif
