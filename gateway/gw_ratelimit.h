/* gw_ratelimit — a token bucket per user, in this gateway's memory. */
#ifndef GW_RATELIMIT_H
#define GW_RATELIMIT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define GW_RATELIMIT_SHARDS 16

typedef struct gw_bucket gw_bucket;

typedef struct {
    double tokens_per_second; /* 0: no limit */
    double burst;
    gw_bucket *slots;
    uint32_t slot_mask;
    pthread_mutex_t locks[GW_RATELIMIT_SHARDS];
} gw_ratelimit;

/**
 * @brief A limiter of tokens_per_second with bursts up to burst, remembering
 * about max_users recent users (the least recently seen make room).
 * @returns 0, or -1 when out of memory.
 */
int gw_ratelimit_init(gw_ratelimit *limiter, double tokens_per_second, double burst, uint32_t max_users);

/** @brief Frees the table. Accepts a zeroed struct. */
void gw_ratelimit_close(gw_ratelimit *limiter);

/**
 * @brief Takes one token for user at now_us.
 * @returns true when allowed; false with *retry_after_seconds (>= 1) when not.
 */
bool gw_ratelimit_take(gw_ratelimit *limiter, const char *user, int64_t now_us, int *retry_after_seconds);

#endif
