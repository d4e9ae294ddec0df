/* wk_recent — the tickets this worker stored last, each as stored. A copy
 * is good for exactly the __v it holds: every change to a ticket bumps __v
 * (wk_lifecycle.c), so a write whose filter pins that __v applies to this
 * very document or matches nothing. A reply, an update or a resolve of a
 * ticket known here is decided on the copy and needs no read (wk_reply,
 * wk_replies_bulk, wk_lifecycle): one database round trip instead of two. Commands are keyed by ticket, so the replies to a
 * ticket reach the worker that created it and wrote it last.
 *
 * Bounded: a fixed number of slots in small buckets picked by a ticket id's
 * hash (the least recently used copy of a full bucket makes room), and a
 * document over WK_RECENT_DOCUMENT_MAX is not kept. Thread-safe. Every
 * function accepts NULL (the cache turned off). */
#ifndef WK_RECENT_H
#define WK_RECENT_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>

#define WK_RECENT_DOCUMENT_MAX (16 * 1024)

typedef struct wk_recent wk_recent;

/** @returns a cache of slots tickets, or NULL when slots is 0 or memory is short (off). */
wk_recent *wk_recent_new(size_t slots);

/** @brief Frees the cache and its copies. Accepts NULL. */
void wk_recent_destroy(wk_recent *recent);

/** @brief Keeps a copy of ticket, as stored, under its _id (replacing that slot's ticket). */
void wk_recent_put(wk_recent *recent, const bson_t *ticket);

/**
 * @brief Copies the kept ticket id into out (an initialized, empty bson_t).
 * @returns true when known, false otherwise (out untouched).
 */
bool wk_recent_copy(wk_recent *recent, const bson_oid_t *id, bson_t *out);

/** @brief Drops ticket id's copy: it is not what is stored any more. */
void wk_recent_forget(wk_recent *recent, const bson_oid_t *id);

#endif
