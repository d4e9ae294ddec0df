/* gw_auth — Bearer JWT verification with a pinned algorithm (libjwt 1.10
 * validates no claims, so every claim is checked here). */
#ifndef GW_AUTH_H
#define GW_AUTH_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "tk_text.h"

#define GW_TOKEN_MAX_BYTES 8192
#define GW_AUTH_CACHE_SECONDS 60

#define GW_AUTH_MAX_KEYS 2 /* the current key and, while rotating, the previous one */
#define GW_AUTH_CACHE_SHARDS 16

typedef struct gw_auth_cache_entry gw_auth_cache_entry;

typedef struct {
    int algorithm;                               /* jwt_alg_t, kept as int to keep libjwt out of this header */
    const unsigned char *keys[GW_AUTH_MAX_KEYS]; /* borrowed from the config */
    int key_lens[GW_AUTH_MAX_KEYS];
    int key_count;
    const char *issuer;     /* iss must equal it; NULL = not checked; borrowed */
    const char *audience;   /* aud (string or array) must contain it; NULL = not checked; borrowed */
    int64_t max_lifetime_s; /* exp - iat at most this; 0 = no limit */
    /* Tokens verified lately: a client sends the same token with every
     * request, and a signature check costs more than the rest of the route. */
    gw_auth_cache_entry *cache;
    size_t cache_mask;
    pthread_mutex_t cache_locks[GW_AUTH_CACHE_SHARDS];
} gw_auth;

/** The caller, as the token says. */
typedef struct {
    char id[TK_PRINCIPAL_BUF_SIZE];
    char team[TK_PRINCIPAL_BUF_SIZE]; /* "" when the token has none */
    bool is_admin;
} gw_identity;

/**
 * @brief Pins the algorithm ("HS256", "RS256", "ES256") and key (borrowed).
 * @returns 0, or -1 when the algorithm is unknown or the key empty.
 */
int gw_auth_init(gw_auth *auth, const char *algorithm, const char *key, size_t key_len);

/**
 * @brief Pins tokens to an issuer and an audience (each NULL = unchecked, both
 * borrowed) and bounds their lifetime (exp - iat; 0 = no bound, else iat is
 * required). iat in the future (beyond the clock skew) is refused always.
 */
void gw_auth_set_policy(gw_auth *auth, const char *issuer, const char *audience, int max_lifetime_s);

/** @brief Also accepts tokens signed with key (key rotation). @returns 0, or -1 when empty or full. */
int gw_auth_add_key(gw_auth *auth, const char *key, size_t key_len);

/**
 * @brief Remembers up to `entries` verified tokens (a power of two; 0: none) for
 * at most GW_AUTH_CACHE_SECONDS and never past their exp. @returns 0, or -1.
 */
int gw_auth_enable_cache(gw_auth *auth, size_t entries);

/** @brief Frees the cache. Accepts a zeroed struct. */
void gw_auth_close(gw_auth *auth);

/**
 * @brief Verifies the Authorization header value (may be NULL).
 * @returns 0 with *identity, or 401 with *message for the client
 * ("Authorization token is missing", "Invalid token", "Token has expired").
 */
int gw_auth_check(gw_auth *auth, const char *authorization, gw_identity *identity, const char **message);

#endif
