/* wk_fence — which (topic, partition) pairs this worker owns right now, and
 * since when. A lane takes a lease (the partition's epoch) with each message
 * and checks it right before every database write: once the partition is
 * revoked, or revoked and assigned again, the lease no longer holds and the
 * write does not start. The next owner applies the command instead. */
#ifndef WK_FENCE_H
#define WK_FENCE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *topic; /* owned copy */
    int32_t partition;
    uint64_t epoch; /* 0: not owned */
} wk_fence_entry;

typedef struct {
    pthread_mutex_t lock; /* entries and next_epoch; held for a lookup only */
    wk_fence_entry *entries;
    size_t count, capacity;
    uint64_t next_epoch;
} wk_fence;

/** A message's claim on its partition: valid while the partition keeps this epoch. */
typedef struct {
    wk_fence *fence;   /* NULL: always holds (tests, tools) */
    const char *topic; /* borrowed */
    int32_t partition;
    uint64_t epoch;
} wk_lease;

/** @brief An empty set (nothing owned). @returns 0, or -1. */
int wk_fence_init(wk_fence *fence);

/** @brief Frees the set. Accepts a zeroed struct. */
void wk_fence_close(wk_fence *fence);

/** @brief Marks the partition owned under a new epoch. @returns the epoch (> 0), or 0 when out of memory. */
uint64_t wk_fence_assign(wk_fence *fence, const char *topic, int32_t partition);

/** @brief Marks the partition not owned: every lease on it stops holding. */
void wk_fence_revoke(wk_fence *fence, const char *topic, int32_t partition);

/** @brief Revokes everything (eager rebalance, shutdown). */
void wk_fence_revoke_all(wk_fence *fence);

/** @returns the partition's current epoch, or 0 when it is not owned. */
uint64_t wk_fence_epoch(wk_fence *fence, const char *topic, int32_t partition);

/** @returns true while lease's partition is still owned under lease's epoch. */
bool wk_lease_holds(const wk_lease *lease);

#endif
