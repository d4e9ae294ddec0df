/* wk_metrics — the worker's metric series, registered once at start into a
 * table of handles: names and help texts live here only, and no message
 * takes the registry lock (a lookup happens only for a label value outside
 * the tables, such as an unexpected status). */
#ifndef WK_METRICS_H
#define WK_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "tk_envelope.h"

/** @brief Registers every series (idempotent; call once before the lanes start). */
void wk_metrics_register(void);

/** @brief One handled message: its topic, type, answer status and time. */
void wk_metrics_message(const char *topic, tk_request_type type, int status, double seconds);

/** @brief One query skipped because its requester's deadline had passed. */
void wk_metrics_query_expired(void);

/** @brief One query answered from an identical query's read (wk_share.h). */
void wk_metrics_query_shared(void);

/** @brief count replies stored by one update command of a batch (wk_replies_bulk.h). */
void wk_metrics_replies_bulk(size_t count);

/** @brief One change (a reply, an update, a resolve) decided on the worker's copy of its ticket, without a read (wk_recent.h). */
void wk_metrics_write_unread(void);

/** @brief One change whose copy of its ticket was no longer what is stored: read and decided again. */
void wk_metrics_recent_stale(void);

/** @brief One message sent to ticket.dlq. */
void wk_metrics_dead_letter(void);

/** @brief One failed database operation ("insert", "find", "findAndModify"). */
void wk_metrics_db_error(const char *operation, bool is_transient);

/** @brief Time spent in the database for one request of type. */
void wk_metrics_db_duration(tk_request_type type, double seconds);

/** @brief A reply, event or dead letter the broker refused for good (dead-lettered instead). */
void wk_metrics_undeliverable(const char *topic);

/** @brief A produced message that failed and is being retried. */
void wk_metrics_produce_retry(const char *topic);

#endif
