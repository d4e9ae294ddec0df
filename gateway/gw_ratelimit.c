/* gw_ratelimit — a token bucket per user, in this gateway's memory. */
#include "gw_ratelimit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tk_hash.h"

#define PROBE_LIMIT 8 /* slots looked at before the oldest is replaced */

struct gw_bucket {
    uint64_t user_hash; /* 0: empty */
    double tokens;
    int64_t updated_us;
};

static uint64_t hash_user(const char *user) {
    uint64_t hash = tk_hash(user, strlen(user));
    return hash == 0 ? 1 : hash; /* 0 marks an empty slot */
}

int gw_ratelimit_init(gw_ratelimit *limiter, double tokens_per_second, double burst, uint32_t max_users) {
    memset(limiter, 0, sizeof *limiter);
    limiter->tokens_per_second = tokens_per_second;
    limiter->burst = burst < 1 ? 1 : burst;
    if (tokens_per_second <= 0) return 0;
    uint32_t slots = 1024;
    while (slots < max_users && slots < (1u << 24)) slots <<= 1;
    limiter->slots = calloc(slots, sizeof *limiter->slots);
    if (limiter->slots == NULL) return -1;
    limiter->slot_mask = slots - 1;
    for (int i = 0; i < GW_RATELIMIT_SHARDS; i++) pthread_mutex_init(&limiter->locks[i], NULL);
    return 0;
}

void gw_ratelimit_close(gw_ratelimit *limiter) {
    if (limiter == NULL || limiter->slots == NULL) return;
    for (int i = 0; i < GW_RATELIMIT_SHARDS; i++) pthread_mutex_destroy(&limiter->locks[i]);
    free(limiter->slots);
    limiter->slots = NULL;
}

/* The user's slot, or the stalest one in its probe window for a newcomer.
 * A probe window never crosses a shard, so one lock covers it. */
static gw_bucket *find_slot(gw_ratelimit *limiter, uint64_t user_hash, bool *is_new) {
    uint32_t start = (uint32_t)user_hash & limiter->slot_mask & ~(uint32_t)(PROBE_LIMIT - 1);
    gw_bucket *stalest = &limiter->slots[start];
    for (uint32_t i = 0; i < PROBE_LIMIT; i++) {
        gw_bucket *slot = &limiter->slots[start + i];
        if (slot->user_hash == user_hash) {
            *is_new = false;
            return slot;
        }
        if (slot->user_hash == 0 || slot->updated_us < stalest->updated_us) stalest = slot;
    }
    *is_new = true;
    return stalest;
}

bool gw_ratelimit_take(gw_ratelimit *limiter, const char *user, int64_t now_us, int *retry_after_seconds) {
    if (limiter->slots == NULL) return true;
    uint64_t user_hash = hash_user(user);
    uint32_t start = (uint32_t)user_hash & limiter->slot_mask & ~(uint32_t)(PROBE_LIMIT - 1);
    pthread_mutex_t *lock = &limiter->locks[(start / PROBE_LIMIT) % GW_RATELIMIT_SHARDS];
    pthread_mutex_lock(lock);
    bool is_new;
    gw_bucket *slot = find_slot(limiter, user_hash, &is_new);
    if (is_new) {
        slot->user_hash = user_hash;
        slot->tokens = limiter->burst;
    } else {
        double refill = (double)(now_us - slot->updated_us) / 1e6 * limiter->tokens_per_second;
        slot->tokens = fmin(limiter->burst, slot->tokens + (refill > 0 ? refill : 0));
    }
    slot->updated_us = now_us;
    bool is_allowed = slot->tokens >= 1.0;
    if (is_allowed) {
        slot->tokens -= 1.0;
    } else {
        int wait = (int)ceil((1.0 - slot->tokens) / limiter->tokens_per_second);
        *retry_after_seconds = wait < 1 ? 1 : wait;
    }
    pthread_mutex_unlock(lock);
    return is_allowed;
}
