/* gw_pending — the correlation table: requests waiting for a reply, by
 * correlation id, in deadline order. Thread-safe. */
#include "gw_pending.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "tk_hash.h"

static size_t hash_id(const char *id, size_t len) { return (size_t)tk_hash(id, len); }

int gw_pending_init(gw_pending *table, size_t max_count) {
    memset(table, 0, sizeof *table);
    size_t buckets = 1024;
    while (buckets < max_count && buckets < ((size_t)1 << 20)) buckets <<= 1;
    table->buckets = calloc(buckets, sizeof *table->buckets);
    if (table->buckets == NULL) return -1;
    if (pthread_mutex_init(&table->lock, NULL) != 0) {
        free(table->buckets);
        table->buckets = NULL;
        return -1;
    }
    table->bucket_mask = buckets - 1;
    table->max_count = max_count;
    return 0;
}

void gw_pending_close(gw_pending *table) {
    if (table == NULL || table->buckets == NULL) return;
    pthread_mutex_destroy(&table->lock);
    free(table->buckets);
    table->buckets = NULL;
}

void gw_pending_lock(gw_pending *table) { pthread_mutex_lock(&table->lock); }
void gw_pending_unlock(gw_pending *table) { pthread_mutex_unlock(&table->lock); }

int gw_pending_add_locked(gw_pending *table, gw_pending_entry *entry) {
    assert(strlen(entry->correlation_id) == TK_CORRELATION_ID_LEN);
    /* Deadline order is insertion order: one timeout for all, clock read under the lock. */
    assert(table->newest == NULL || entry->deadline_ms >= table->newest->deadline_ms);
    if (table->count >= table->max_count) return -1;
    size_t bucket = hash_id(entry->correlation_id, TK_CORRELATION_ID_LEN) & table->bucket_mask;
    entry->bucket_next = table->buckets[bucket];
    table->buckets[bucket] = entry;
    entry->newer = NULL;
    entry->older = table->newest;
    if (table->newest != NULL) table->newest->newer = entry;
    table->newest = entry;
    if (table->oldest == NULL) table->oldest = entry;
    table->count++;
    return 0;
}

gw_pending_entry *gw_pending_find_locked(gw_pending *table, const char *correlation_id, size_t len) {
    if (len != TK_CORRELATION_ID_LEN) return NULL;
    gw_pending_entry *entry = table->buckets[hash_id(correlation_id, len) & table->bucket_mask];
    while (entry != NULL && memcmp(entry->correlation_id, correlation_id, len) != 0) entry = entry->bucket_next;
    return entry;
}

int gw_pending_remove_locked(gw_pending *table, gw_pending_entry *entry) {
    gw_pending_entry **link =
        &table->buckets[hash_id(entry->correlation_id, TK_CORRELATION_ID_LEN) & table->bucket_mask];
    while (*link != NULL && *link != entry) link = &(*link)->bucket_next;
    if (*link == NULL) return -1;
    assert(table->count > 0);
    *link = entry->bucket_next;
    if (entry->older != NULL) entry->older->newer = entry->newer;
    else table->oldest = entry->newer;
    if (entry->newer != NULL) entry->newer->older = entry->older;
    else table->newest = entry->older;
    entry->older = entry->newer = entry->bucket_next = NULL;
    table->count--;
    return 0;
}

gw_pending_entry *gw_pending_take_locked(gw_pending *table, const char *correlation_id, size_t len) {
    gw_pending_entry *entry = gw_pending_find_locked(table, correlation_id, len);
    if (entry != NULL) gw_pending_remove_locked(table, entry);
    return entry;
}

int gw_pending_remove(gw_pending *table, gw_pending_entry *entry) {
    gw_pending_lock(table);
    int rc = gw_pending_remove_locked(table, entry);
    gw_pending_unlock(table);
    return rc;
}

gw_pending_entry *gw_pending_take_expired(gw_pending *table, int64_t now_ms) {
    gw_pending_lock(table);
    gw_pending_entry *entry = table->oldest;
    if (entry != NULL && entry->deadline_ms <= now_ms) gw_pending_remove_locked(table, entry);
    else entry = NULL;
    gw_pending_unlock(table);
    return entry;
}

gw_pending_entry *gw_pending_take_oldest(gw_pending *table) {
    gw_pending_lock(table);
    gw_pending_entry *entry = table->oldest;
    if (entry != NULL) gw_pending_remove_locked(table, entry);
    gw_pending_unlock(table);
    return entry;
}

int64_t gw_pending_next_deadline(gw_pending *table) {
    gw_pending_lock(table);
    int64_t deadline = table->oldest != NULL ? table->oldest->deadline_ms : -1;
    gw_pending_unlock(table);
    return deadline;
}

size_t gw_pending_count(gw_pending *table) {
    gw_pending_lock(table);
    size_t count = table->count;
    gw_pending_unlock(table);
    return count;
}
