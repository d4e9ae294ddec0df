/* gw_replies — the thread that reads this gateway's partition of
 * ticket.replies, reassembles chunks, matches replies to waiting requests and
 * expires deadlines. */
#ifndef GW_REPLIES_H
#define GW_REPLIES_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "gw_pending.h"
#include "gw_publish.h"

/** Answers a request taken from the table. Takes ownership of body (JSON text). */
typedef void (*gw_replies_complete_fn)(gw_pending_entry *entry, int status, char *body, size_t len, void *ctx);

typedef struct {
    rd_kafka_t *consumer;
    int partition;
    gw_pending *pending;
    gw_publish *publish; /* its delivery reports are served from this thread */
    gw_replies_complete_fn complete;
    void *ctx;
    pthread_t thread;
    bool is_thread_started;
    atomic_bool is_ready;
    atomic_bool is_stopping;
    struct tk_series *late_replies; /* metrics */
    struct tk_series *timeouts;
} gw_replies;

/** One message of ticket.replies: views into it, NULL when a header is absent. */
typedef struct {
    const char *correlation_id;
    size_t correlation_id_len;
    const char *chunk_index;
    size_t chunk_index_len;
    const char *chunk_count;
    size_t chunk_count_len;
    const char *payload;
    size_t len;
} gw_reply_message;

/** What one chunk does to the reply being put together. */
typedef enum {
    GW_CHUNK_MORE,   /* kept; chunks are still missing */
    GW_CHUNK_WHOLE,  /* the last one: entry->chunks holds the reply */
    GW_CHUNK_BROKEN, /* out of order, another count, too big, or no memory: answer 502 */
} gw_chunk_result;

/**
 * @brief Adds chunk `index` of `count` to entry. Chunk 0 starts the reply
 * over (a worker that crashed mid-reply sends it again from the start) and
 * pins the count; every later chunk must come next in order with that count.
 * @returns GW_CHUNK_MORE, GW_CHUNK_WHOLE, or GW_CHUNK_BROKEN, after which the
 * chunks received are discarded.
 */
gw_chunk_result gw_replies_add_chunk(gw_pending_entry *entry, int index, int count, const void *data, size_t len);

/**
 * @brief Turns a whole reply ({"version":1,"status":...}) into the HTTP answer.
 * When entry is not NULL, what the reply says beside its body (a list's next
 * cursor, a ticket's ETag) is stored in it (tk_reply_take_meta). Replies the
 * workers write are passed through (gw_passthru), others parsed.
 * @returns the body (malloc'd JSON of *body_len bytes, not NUL-terminated;
 * caller frees) with *status in 100..599,
 * or NULL with err when the reply is malformed (the caller answers 502).
 */
char *gw_replies_http_answer(const char *data, size_t len, gw_pending_entry *entry, int *status, size_t *body_len,
                             char *err, size_t err_len);

/**
 * @brief gw_replies_http_answer by parsing and dumping the reply, whatever
 * its shape: the path gw_passthru must agree with (public for that test).
 */
char *gw_replies_parsed_answer(const char *data, size_t len, gw_pending_entry *entry, int *status, size_t *body_len,
                               char *err, size_t err_len);

/**
 * @brief Matches one message to its waiting request and answers it once the
 * reply is whole (502 when inconsistent); counts replies nobody waits for.
 * Called by the reply thread; public so tests need no broker.
 */
void gw_replies_handle(gw_replies *replies, const gw_reply_message *message);

/**
 * @brief Creates the consumer and starts the thread, which becomes ready once
 * its partition is assigned at a known offset.
 * @returns 0, or -1 with err.
 */
int gw_replies_start(gw_replies *replies, const char *brokers, int partition, gw_pending *pending, gw_publish *publish,
                     gw_replies_complete_fn complete, void *ctx, char *err, size_t err_len);

/** @returns true once replies sent from now on will be seen. */
bool gw_replies_is_ready(gw_replies *replies);

/** @brief Stops the thread and destroys the consumer. Accepts a zeroed struct. */
void gw_replies_stop(gw_replies *replies);

#endif
