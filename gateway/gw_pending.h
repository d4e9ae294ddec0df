/* gw_pending — the correlation table: requests waiting for a reply, by
 * correlation id, in deadline order. Thread-safe. */
#ifndef GW_PENDING_H
#define GW_PENDING_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "tk_ids.h"

/** Embedded in each waiting request; the table never allocates entries. */
typedef struct gw_pending_entry {
    char correlation_id[TK_CORRELATION_ID_LEN + 1];
    int64_t deadline_ms;                    /* tk_monotonic_ms() clock */
    struct gw_pending_entry *older, *newer; /* deadline order (all share one timeout) */
    struct gw_pending_entry *bucket_next;
    /* Reassembly of a chunked reply: touched by the reply thread only. */
    char *chunks;
    size_t chunks_len;
    int chunks_received;
    int chunk_count; /* pinned by chunk 0 */
    /* What a reply says beside its body: set by the reply thread before it
     * completes the entry; freed with the request. */
    char *next_cursor; /* lists: the next page's cursor, NULL on the last page */
    char etag[24];     /* one ticket: its ETag value, "" otherwise */
} gw_pending_entry;

typedef struct {
    pthread_mutex_t lock;
    gw_pending_entry **buckets;
    size_t bucket_mask;
    gw_pending_entry *oldest, *newest;
    size_t count;
    size_t max_count;
} gw_pending;

/** @brief Empty table holding at most max_count entries. @returns 0, or -1 when out of memory. */
int gw_pending_init(gw_pending *table, size_t max_count);

/** @brief Frees the table (not the entries, which belong to their requests). */
void gw_pending_close(gw_pending *table);

void gw_pending_lock(gw_pending *table);
void gw_pending_unlock(gw_pending *table);

/**
 * @brief Adds entry (whose correlation_id and deadline are set). Lock held.
 * Deadlines must not decrease between calls (asserted): one timeout for all
 * requests, the clock read while holding the lock.
 * @returns 0, or -1 when the table is full.
 */
int gw_pending_add_locked(gw_pending *table, gw_pending_entry *entry);

/** @brief Finds an entry without removing it. Lock held. @returns NULL when absent. */
gw_pending_entry *gw_pending_find_locked(gw_pending *table, const char *correlation_id, size_t len);

/** @brief Finds and removes in one step. Lock held. @returns the entry, or NULL when absent. */
gw_pending_entry *gw_pending_take_locked(gw_pending *table, const char *correlation_id, size_t len);

/** @brief gw_pending_remove with the lock already held. */
int gw_pending_remove_locked(gw_pending *table, gw_pending_entry *entry);

/**
 * @brief Removes entry if it is still in the table. Whoever removes an entry
 * owns its completion, so each request is answered exactly once.
 * @returns 0 when removed here, -1 when someone else already took it.
 */
int gw_pending_remove(gw_pending *table, gw_pending_entry *entry);

/** @brief Removes and returns the oldest entry if its deadline is <= now_ms, else NULL. */
gw_pending_entry *gw_pending_take_expired(gw_pending *table, int64_t now_ms);

/** @brief Removes and returns the oldest entry whatever its deadline (for shutdown), or NULL. */
gw_pending_entry *gw_pending_take_oldest(gw_pending *table);

/** @returns the earliest deadline, or -1 when empty. */
int64_t gw_pending_next_deadline(gw_pending *table);

/** @returns how many requests wait now. */
size_t gw_pending_count(gw_pending *table);

#endif
