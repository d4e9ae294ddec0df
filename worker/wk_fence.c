/* wk_fence — which (topic, partition) pairs this worker owns right now, and
 * since when. A lane takes a lease (the partition's epoch) with each message
 * and checks it right before every database write: once the partition is
 * revoked, or revoked and assigned again, the lease no longer holds and the
 * write does not start. The next owner applies the command instead. */
#include "wk_fence.h"

#include <stdlib.h>
#include <string.h>

/* A worker owns a few dozen partitions at most: a linear scan under a mutex
 * costs less than the database call it guards. */
static wk_fence_entry *find_locked(const wk_fence *fence, const char *topic, int32_t partition) {
    for (size_t i = 0; i < fence->count; i++) {
        wk_fence_entry *entry = &fence->entries[i];
        if (entry->partition == partition && strcmp(entry->topic, topic) == 0) return entry;
    }
    return NULL;
}

int wk_fence_init(wk_fence *fence) {
    memset(fence, 0, sizeof *fence);
    fence->next_epoch = 1;
    return pthread_mutex_init(&fence->lock, NULL) == 0 ? 0 : -1;
}

void wk_fence_close(wk_fence *fence) {
    if (fence == NULL || fence->next_epoch == 0) return;
    for (size_t i = 0; i < fence->count; i++) free(fence->entries[i].topic);
    free(fence->entries);
    pthread_mutex_destroy(&fence->lock);
    memset(fence, 0, sizeof *fence);
}

uint64_t wk_fence_assign(wk_fence *fence, const char *topic, int32_t partition) {
    uint64_t epoch = 0;
    pthread_mutex_lock(&fence->lock);
    wk_fence_entry *entry = find_locked(fence, topic, partition);
    if (entry == NULL && fence->count == fence->capacity) {
        size_t capacity = fence->capacity ? fence->capacity * 2 : 32;
        wk_fence_entry *grown = realloc(fence->entries, capacity * sizeof *grown);
        if (grown == NULL) goto done;
        fence->entries = grown;
        fence->capacity = capacity;
    }
    if (entry == NULL) {
        char *copy = strdup(topic);
        if (copy == NULL) goto done;
        entry = &fence->entries[fence->count++];
        entry->topic = copy;
        entry->partition = partition;
    }
    epoch = entry->epoch = fence->next_epoch++;
done:
    pthread_mutex_unlock(&fence->lock);
    return epoch;
}

void wk_fence_revoke(wk_fence *fence, const char *topic, int32_t partition) {
    pthread_mutex_lock(&fence->lock);
    wk_fence_entry *entry = find_locked(fence, topic, partition);
    if (entry != NULL) entry->epoch = 0;
    pthread_mutex_unlock(&fence->lock);
}

void wk_fence_revoke_all(wk_fence *fence) {
    pthread_mutex_lock(&fence->lock);
    for (size_t i = 0; i < fence->count; i++) fence->entries[i].epoch = 0;
    pthread_mutex_unlock(&fence->lock);
}

uint64_t wk_fence_epoch(wk_fence *fence, const char *topic, int32_t partition) {
    pthread_mutex_lock(&fence->lock);
    const wk_fence_entry *entry = find_locked(fence, topic, partition);
    uint64_t epoch = entry != NULL ? entry->epoch : 0;
    pthread_mutex_unlock(&fence->lock);
    return epoch;
}

bool wk_lease_holds(const wk_lease *lease) {
    if (lease == NULL || lease->fence == NULL) return true;
    uint64_t epoch = wk_fence_epoch(lease->fence, lease->topic, lease->partition);
    return epoch != 0 && epoch == lease->epoch;
}
