/* wk_share — identical reads of one batch answered from one database read.
 * Every query of a batch was already waiting when the batch was taken, so a
 * read made after that sees every write acknowledged before any of them was
 * sent: one read serves them all, and each is still verified, checked for
 * expiry and answered on its own. */
#ifndef WK_SHARE_H
#define WK_SHARE_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>

#include "wk_tickets.h"

/** The last read of a batch: the query's exact bytes and its answer. */
typedef struct {
    const void *payload; /* borrowed from the batch's message, which outlives the share */
    size_t len;
    wk_result result; /* owned; never an event (reads change nothing) */
    bool is_set;
    char *reply; /* owned: the answer as reply text once dumped, NULL before */
    size_t reply_len;
} wk_share;

/** @brief An empty share. */
void wk_share_init(wk_share *share);

/**
 * @brief When message is the same query (byte for byte: type, actor, filter,
 * cursor, page size) as the kept one, fills *result with its answer (the data
 * shared by reference; caller calls wk_result_close). @returns true then.
 */
bool wk_share_lookup(const wk_share *share, const rd_kafka_message_t *message, wk_result *result);

/**
 * @brief Keeps result (copied, data by reference) as the answer to message's
 * query. @returns false when it cannot be shared (it has an event).
 */
bool wk_share_keep(wk_share *share, const rd_kafka_message_t *message, const wk_result *result);

/**
 * @returns the kept answer's reply text (*len bytes, borrowed until the next
 * keep or clear), or NULL when none was kept yet: every query answered from
 * one read gets the same reply bytes, dumped once.
 */
const char *wk_share_reply(const wk_share *share, size_t *len);

/** @brief Keeps text (takes ownership; freed at once when nothing is shared) as the kept answer's reply. */
void wk_share_keep_reply(wk_share *share, char *text, size_t len);

/** @brief Forgets the kept answer (a write came between: later reads read again). */
void wk_share_clear(wk_share *share);

#endif
