/* wk_recent — the tickets this worker stored last: a cache of document
 * copies in buckets of WAYS entries (a ticket's id picks its bucket; the
 * least recently used entry of a full bucket makes room), behind one mutex:
 * a copy is a memcpy of a few KiB, next to a database round trip of a
 * millisecond. */
#include "wk_recent.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define WAYS 4

typedef struct {
    bson_oid_t id;
    uint8_t *data; /* owned; NULL: empty */
    uint32_t len;
    uint64_t used; /* the cache's clock at the last put or copy */
} slot;

struct wk_recent {
    pthread_mutex_t mutex;
    slot *slots;
    size_t buckets; /* of WAYS slots each */
    uint64_t clock;
};

wk_recent *wk_recent_new(size_t slots) {
    if (slots == 0) return NULL;
    wk_recent *recent = calloc(1, sizeof *recent);
    if (recent == NULL) return NULL;
    recent->buckets = (slots + WAYS - 1) / WAYS;
    recent->slots = calloc(recent->buckets * WAYS, sizeof *recent->slots);
    if (recent->slots == NULL || pthread_mutex_init(&recent->mutex, NULL) != 0) {
        free(recent->slots);
        free(recent);
        return NULL;
    }
    return recent;
}

void wk_recent_destroy(wk_recent *recent) {
    if (recent == NULL) return;
    for (size_t i = 0; i < recent->buckets * WAYS; i++) free(recent->slots[i].data);
    pthread_mutex_destroy(&recent->mutex);
    free(recent->slots);
    free(recent);
}

static slot *bucket_of(wk_recent *recent, const bson_oid_t *id) {
    return &recent->slots[(bson_oid_hash(id) % recent->buckets) * WAYS];
}

/* The entry holding id's copy, or NULL. */
static slot *find(wk_recent *recent, const bson_oid_t *id) {
    slot *bucket = bucket_of(recent, id);
    for (int way = 0; way < WAYS; way++)
        if (bucket[way].data != NULL && bson_oid_equal(&bucket[way].id, id)) return &bucket[way];
    return NULL;
}

/* Where a new copy goes: an empty entry of id's bucket, else its least recently used. */
static slot *room_for(wk_recent *recent, const bson_oid_t *id) {
    slot *bucket = bucket_of(recent, id), *oldest = &bucket[0];
    for (int way = 0; way < WAYS; way++) {
        if (bucket[way].data == NULL) return &bucket[way];
        if (bucket[way].used < oldest->used) oldest = &bucket[way];
    }
    return oldest;
}

static void empty(slot *entry) {
    free(entry->data);
    entry->data = NULL;
    entry->len = 0;
}

/* The __v of a document, -1 when it has none. */
static int64_t version_of(const bson_t *document) {
    bson_iter_t iter;
    return bson_iter_init_find(&iter, document, "__v") && BSON_ITER_HOLDS_NUMBER(&iter) ? bson_iter_as_int64(&iter)
                                                                                        : -1;
}

/* A read that raced a write may arrive with an older version than the
 * write's: it must not replace the newer copy. */
static bool is_newer(const slot *entry, int64_t version) {
    bson_t kept;
    return bson_init_static(&kept, entry->data, entry->len) && version_of(&kept) > version;
}

void wk_recent_put(wk_recent *recent, const bson_t *ticket) {
    bson_iter_t iter;
    if (recent == NULL || !bson_iter_init_find(&iter, ticket, "_id") || !BSON_ITER_HOLDS_OID(&iter)) return;
    const bson_oid_t *id = bson_iter_oid(&iter);
    uint8_t *data = ticket->len <= WK_RECENT_DOCUMENT_MAX ? malloc(ticket->len) : NULL;
    if (data != NULL) memcpy(data, bson_get_data(ticket), ticket->len);
    int64_t version = version_of(ticket);
    pthread_mutex_lock(&recent->mutex);
    slot *entry = find(recent, id);
    if (entry != NULL && is_newer(entry, version)) {
        free(data);
    } else if (data == NULL) { /* too large or no memory: still drop the older copy */
        if (entry != NULL) empty(entry);
    } else {
        if (entry == NULL) entry = room_for(recent, id);
        empty(entry);
        bson_oid_copy(id, &entry->id);
        entry->data = data;
        entry->len = ticket->len;
        entry->used = ++recent->clock;
    }
    pthread_mutex_unlock(&recent->mutex);
}

bool wk_recent_copy(wk_recent *recent, const bson_oid_t *id, bson_t *out) {
    bool is_known = false;
    if (recent == NULL) return false;
    pthread_mutex_lock(&recent->mutex);
    slot *entry = find(recent, id);
    if (entry != NULL) {
        bson_t copy;
        is_known = bson_init_static(&copy, entry->data, entry->len) && bson_concat(out, &copy);
        entry->used = ++recent->clock;
    }
    pthread_mutex_unlock(&recent->mutex);
    return is_known;
}

void wk_recent_forget(wk_recent *recent, const bson_oid_t *id) {
    if (recent == NULL) return;
    pthread_mutex_lock(&recent->mutex);
    slot *entry = find(recent, id);
    if (entry != NULL) empty(entry);
    pthread_mutex_unlock(&recent->mutex);
}
