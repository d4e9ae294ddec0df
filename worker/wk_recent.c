/* wk_recent — the tickets this worker stored last: a direct-mapped cache
 * of document copies behind one mutex (a copy is a memcpy of a few KiB,
 * next to a database round trip of a millisecond). */
#include "wk_recent.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    bson_oid_t id;
    uint8_t *data; /* owned; NULL: empty */
    uint32_t len;
} slot;

struct wk_recent {
    pthread_mutex_t mutex;
    slot *slots;
    size_t count;
};

wk_recent *wk_recent_new(size_t slots) {
    if (slots == 0) return NULL;
    wk_recent *recent = calloc(1, sizeof *recent);
    if (recent == NULL) return NULL;
    recent->slots = calloc(slots, sizeof *recent->slots);
    if (recent->slots == NULL || pthread_mutex_init(&recent->mutex, NULL) != 0) {
        free(recent->slots);
        free(recent);
        return NULL;
    }
    recent->count = slots;
    return recent;
}

void wk_recent_destroy(wk_recent *recent) {
    if (recent == NULL) return;
    for (size_t i = 0; i < recent->count; i++) free(recent->slots[i].data);
    pthread_mutex_destroy(&recent->mutex);
    free(recent->slots);
    free(recent);
}

static slot *slot_of(wk_recent *recent, const bson_oid_t *id) {
    return &recent->slots[bson_oid_hash(id) % recent->count];
}

/* The __v of a document, -1 when it has none. */
static int64_t version_of(const bson_t *document) {
    bson_iter_t iter;
    return bson_iter_init_find(&iter, document, "__v") && BSON_ITER_HOLDS_NUMBER(&iter) ? bson_iter_as_int64(&iter)
                                                                                        : -1;
}

/* A read that raced a write may arrive with an older version than the
 * write's: it must not replace the newer copy. */
static bool is_newer_kept(const slot *entry, const bson_oid_t *id, int64_t version) {
    bson_t kept;
    return entry->data != NULL && bson_oid_equal(&entry->id, id) && bson_init_static(&kept, entry->data, entry->len) &&
           version_of(&kept) > version;
}

void wk_recent_put(wk_recent *recent, const bson_t *ticket) {
    bson_iter_t iter;
    if (recent == NULL || !bson_iter_init_find(&iter, ticket, "_id") || !BSON_ITER_HOLDS_OID(&iter)) return;
    const bson_oid_t *id = bson_iter_oid(&iter);
    uint8_t *data = ticket->len <= WK_RECENT_DOCUMENT_MAX ? malloc(ticket->len) : NULL;
    if (data != NULL) memcpy(data, bson_get_data(ticket), ticket->len);
    int64_t version = version_of(ticket);
    pthread_mutex_lock(&recent->mutex);
    slot *entry = slot_of(recent, id);
    if (is_newer_kept(entry, id, version)) {
        free(data);
        data = NULL;
    } else if (data != NULL || bson_oid_equal(&entry->id, id)) { /* too large or no memory: drop the older copy */
        free(entry->data);
        bson_oid_copy(id, &entry->id);
        entry->data = data;
        entry->len = data != NULL ? ticket->len : 0;
    }
    pthread_mutex_unlock(&recent->mutex);
}

bool wk_recent_copy(wk_recent *recent, const bson_oid_t *id, bson_t *out) {
    bool is_known = false;
    if (recent == NULL) return false;
    pthread_mutex_lock(&recent->mutex);
    slot *entry = slot_of(recent, id);
    if (entry->data != NULL && bson_oid_equal(&entry->id, id)) {
        bson_t copy;
        is_known = bson_init_static(&copy, entry->data, entry->len) && bson_concat(out, &copy);
    }
    pthread_mutex_unlock(&recent->mutex);
    return is_known;
}

void wk_recent_forget(wk_recent *recent, const bson_oid_t *id) {
    if (recent == NULL) return;
    pthread_mutex_lock(&recent->mutex);
    slot *entry = slot_of(recent, id);
    if (bson_oid_equal(&entry->id, id)) {
        free(entry->data);
        entry->data = NULL;
        entry->len = 0;
    }
    pthread_mutex_unlock(&recent->mutex);
}
