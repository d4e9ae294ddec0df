/* wk_verify — the worker's first look at a consumed command or query: is it
 * signed by a key we know, may that key act in the role it claims, and is its
 * reply address one we answer on? Nothing unverified is applied. */
#ifndef WK_VERIFY_H
#define WK_VERIFY_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "tk_config.h"
#include "wk_output.h"

/**
 * @brief Sets the keys and the allowed reply topics (copied from config) for
 * the whole process; producer (borrowed, outlives every check) learns the
 * reply topics' partition counts. Call once before the lanes start.
 * @returns 0, or -1 when out of memory.
 */
int wk_verify_init(const tk_worker_config *config, rd_kafka_t *producer);

/**
 * @brief Checks message. A reply address outside REPLY_TOPICS or its
 * partitions clears address->wants_reply (never produced to).
 * @returns 0 when the message may be applied; -1 with the reason (for the
 * dead letter, and for a 401 reply when address->wants_reply is still set).
 */
int wk_verify_message(const rd_kafka_message_t *message, wk_address *address, char *reason, size_t reason_len);

/** @brief Forgets the keys. */
void wk_verify_close(void);

#endif
