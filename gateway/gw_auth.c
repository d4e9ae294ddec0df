/* gw_auth — Bearer JWT verification with a pinned algorithm (libjwt 1.10
 * validates no claims, so every claim is checked here). */
#include "gw_auth.h"

#include <jansson.h>
#include <jwt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tk_envelope.h"
#include "tk_clock.h"
#include "tk_hash.h"

#define BEARER_PREFIX "Bearer "
#define CLOCK_SKEW_SECONDS 30

struct gw_auth_cache_entry {
    char *token; /* owned copy; NULL when empty */
    size_t len;
    int64_t valid_until_s; /* min(exp, cached at + GW_AUTH_CACHE_SECONDS) */
    gw_identity identity;
};

static const char MSG_MISSING[] = "Authorization token is missing";
static const char MSG_INVALID[] = "Invalid token";
static const char MSG_EXPIRED[] = "Token has expired";

int gw_auth_init(gw_auth *auth, const char *algorithm, const char *key, size_t key_len) {
    memset(auth, 0, sizeof *auth);
    jwt_alg_t alg = jwt_str_alg(algorithm);
    bool is_supported = alg == JWT_ALG_HS256 || alg == JWT_ALG_RS256 || alg == JWT_ALG_ES256;
    /* An empty key would make libjwt accept unsigned tokens. */
    if (!is_supported || key == NULL || key_len == 0 || key_len > INT32_MAX) return -1;
    auth->algorithm = (int)alg;
    return gw_auth_add_key(auth, key, key_len);
}

void gw_auth_set_policy(gw_auth *auth, const char *issuer, const char *audience, int max_lifetime_s) {
    auth->issuer = issuer;
    auth->audience = audience;
    auth->max_lifetime_s = max_lifetime_s;
}

int gw_auth_enable_cache(gw_auth *auth, size_t entries) {
    if (entries == 0) return 0;
    if ((entries & (entries - 1)) != 0 || entries < GW_AUTH_CACHE_SHARDS) return -1;
    auth->cache = calloc(entries, sizeof *auth->cache);
    if (auth->cache == NULL) return -1;
    auth->cache_mask = entries - 1;
    for (int i = 0; i < GW_AUTH_CACHE_SHARDS; i++) pthread_mutex_init(&auth->cache_locks[i], NULL);
    return 0;
}

void gw_auth_close(gw_auth *auth) {
    if (auth == NULL || auth->cache == NULL) return;
    for (size_t i = 0; i <= auth->cache_mask; i++) free(auth->cache[i].token);
    for (int i = 0; i < GW_AUTH_CACHE_SHARDS; i++) pthread_mutex_destroy(&auth->cache_locks[i]);
    free(auth->cache);
    auth->cache = NULL;
}

static size_t token_slot(const gw_auth *auth, const char *token, size_t len) {
    return (size_t)tk_hash(token, len) & auth->cache_mask;
}

/* Compares every byte whatever the first difference, so timing tells
 * nothing about another user's cached token. */
static bool same_token(const char *a, size_t a_len, const char *b, size_t b_len) {
    if (a_len != b_len) return false;
    unsigned char diff = 0;
    for (size_t i = 0; i < a_len; i++) diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

static bool cache_lookup(gw_auth *auth, const char *token, size_t len, int64_t now_s, gw_identity *identity) {
    if (auth->cache == NULL) return false;
    size_t slot = token_slot(auth, token, len);
    pthread_mutex_t *lock = &auth->cache_locks[slot % GW_AUTH_CACHE_SHARDS];
    pthread_mutex_lock(lock);
    gw_auth_cache_entry *entry = &auth->cache[slot];
    bool is_hit = entry->token != NULL && now_s < entry->valid_until_s &&
                  same_token(entry->token, entry->len, token, len);
    if (is_hit) *identity = entry->identity;
    pthread_mutex_unlock(lock);
    return is_hit;
}

static void cache_store(gw_auth *auth, const char *token, size_t len, int64_t valid_until_s,
                        const gw_identity *identity) {
    if (auth->cache == NULL) return;
    char *copy = strndup(token, len);
    if (copy == NULL) return;
    size_t slot = token_slot(auth, token, len);
    pthread_mutex_t *lock = &auth->cache_locks[slot % GW_AUTH_CACHE_SHARDS];
    pthread_mutex_lock(lock);
    gw_auth_cache_entry *entry = &auth->cache[slot];
    free(entry->token);
    entry->token = copy;
    entry->len = len;
    entry->valid_until_s = valid_until_s;
    entry->identity = *identity;
    pthread_mutex_unlock(lock);
}

int gw_auth_add_key(gw_auth *auth, const char *key, size_t key_len) {
    if (key == NULL || key_len == 0 || key_len > INT32_MAX || auth->key_count >= GW_AUTH_MAX_KEYS) return -1;
    auth->keys[auth->key_count] = (const unsigned char *)key;
    auth->key_lens[auth->key_count] = (int)key_len;
    auth->key_count++;
    return 0;
}

/* Verifies with each accepted key in turn. @returns the decoded token, or NULL. */
static jwt_t *decode_with_any_key(const gw_auth *auth, const char *token) {
    for (int i = 0; i < auth->key_count; i++) {
        jwt_t *jwt = NULL;
        if (jwt_decode(&jwt, token, auth->keys[i], auth->key_lens[i]) == 0 && jwt != NULL) return jwt;
        jwt_free(jwt);
    }
    return NULL;
}

static int copy_principal(const json_t *claims, const char *name, bool is_required, char *out, size_t out_len) {
    const char *value = NULL;
    char ignored[TK_ERROR_TEXT_MAX];
    out[0] = '\0';
    if (tk_text_member(claims, name, name, TK_PRINCIPAL_MAX_CHARS, is_required, &value, ignored, sizeof ignored) != 0)
        return -1;
    if (value == NULL) return 0;
    size_t len = strlen(value);
    if (len >= out_len) return -1;
    memcpy(out, value, len + 1);
    return 0;
}

/* The claims after the signature is known good: exp required, nbf honoured,
 * sub/role/team typed and bounded. */
static int check_claims(const json_t *claims, gw_identity *identity, const char **message, int64_t now,
                        int64_t *expires_s) {
    json_t *exp = json_object_get(claims, "exp");
    json_t *nbf = json_object_get(claims, "nbf");
    json_t *role = json_object_get(claims, "role");
    *message = MSG_INVALID;
    if (!json_is_number(exp)) return 401;
    if (nbf != NULL && (!json_is_number(nbf) || json_number_value(nbf) > (double)(now + CLOCK_SKEW_SECONDS)))
        return 401;
    if (!json_is_string(role)) return 401;
    if (strcmp(json_string_value(role), "admin") == 0) {
        identity->is_admin = true;
    } else if (strcmp(json_string_value(role), "customer") == 0) {
        identity->is_admin = false;
    } else {
        return 401;
    }
    if (copy_principal(claims, "sub", true, identity->id, sizeof identity->id) != 0 ||
        copy_principal(claims, "team", !identity->is_admin, identity->team, sizeof identity->team) != 0)
        return 401;
    if (json_number_value(exp) <= (double)now) {
        *message = MSG_EXPIRED;
        return 401;
    }
    double exp_s = json_number_value(exp);
    *expires_s = exp_s > (double)INT64_MAX / 2 ? INT64_MAX / 2 : (int64_t)exp_s;
    return 0;
}

/* The token after "Bearer " (any case, any spaces). @returns NULL with
 * *message set when there is none or it is too long. */
static const char *bearer_token(const char *authorization, size_t *token_len, const char **message) {
    *message = MSG_MISSING;
    if (authorization == NULL || strncasecmp(authorization, BEARER_PREFIX, strlen(BEARER_PREFIX)) != 0) return NULL;
    const char *token_start = authorization + strlen(BEARER_PREFIX);
    while (*token_start == ' ') token_start++;
    *token_len = strlen(token_start);
    if (*token_len == 0) return NULL;
    *message = MSG_INVALID;
    return *token_len > GW_TOKEN_MAX_BYTES ? NULL : token_start;
}

static bool has_audience(const json_t *aud, const char *audience) {
    if (json_is_string(aud)) return strcmp(json_string_value(aud), audience) == 0;
    size_t i;
    json_t *item;
    json_array_foreach(aud, i, item) {
        if (json_is_string(item) && strcmp(json_string_value(item), audience) == 0) return true;
    }
    return false;
}

/* Minted ahead of time, or for longer than we allow. */
static bool is_badly_timed(const gw_auth *auth, const json_t *claims, int64_t now) {
    json_t *iat = json_object_get(claims, "iat");
    if (iat != NULL && (!json_is_number(iat) || json_number_value(iat) > (double)(now + CLOCK_SKEW_SECONDS)))
        return true;
    if (auth->max_lifetime_s == 0) return false;
    return iat == NULL ||
           json_number_value(json_object_get(claims, "exp")) - json_number_value(iat) > (double)auth->max_lifetime_s;
}

/* A token minted for another application of the same identity provider is
 * not ours. @returns 0 or 401. */
static int check_policy(const gw_auth *auth, const json_t *claims, int64_t now) {
    json_t *iss = json_object_get(claims, "iss");
    if (auth->issuer != NULL && (!json_is_string(iss) || strcmp(json_string_value(iss), auth->issuer) != 0)) return 401;
    if (auth->audience != NULL && !has_audience(json_object_get(claims, "aud"), auth->audience)) return 401;
    return is_badly_timed(auth, claims, now) ? 401 : 0;
}

int gw_auth_check(gw_auth *auth, const char *authorization, gw_identity *identity, const char **message) {
    jwt_t *jwt = NULL;
    char *claims_text = NULL;
    json_t *claims = NULL;
    char *token = NULL;
    int status = 401;

    size_t token_len = 0;
    const char *token_start = bearer_token(authorization, &token_len, message);
    if (token_start == NULL) return 401;
    int64_t now = tk_now_ms() / 1000;
    if (cache_lookup(auth, token_start, token_len, now, identity)) return 0;
    int64_t expires_s = 0;
    token = strndup(token_start, token_len); /* libjwt wants its own NUL-terminated copy */
    if (token == NULL) goto cleanup;
    jwt = decode_with_any_key(auth, token);
    if (jwt == NULL) goto cleanup;
    /* The token names its algorithm; only the configured one is trusted. */
    if ((int)jwt_get_alg(jwt) != auth->algorithm) goto cleanup;
    claims_text = jwt_get_grants_json(jwt, NULL);
    if (claims_text == NULL) goto cleanup;
    claims = json_loads(claims_text, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(claims)) goto cleanup;
    status = check_claims(claims, identity, message, now, &expires_s);
    if (status == 0 && check_policy(auth, claims, now) != 0) {
        *message = MSG_INVALID;
        status = 401;
    }
    if (status == 0) {
        int64_t until = now + GW_AUTH_CACHE_SECONDS;
        cache_store(auth, token_start, token_len, expires_s < until ? expires_s : until, identity);
    }
cleanup:
    json_decref(claims);
    free(claims_text);
    jwt_free(jwt);
    free(token);
    return status;
}
