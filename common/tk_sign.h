/* tk_sign — HMAC-SHA256 signatures on commands and queries: the keys (from
 * COMMAND_KEYS), the canonical bytes a signature covers, signing and
 * constant-time verification. */
#ifndef TK_SIGN_H
#define TK_SIGN_H

#include <stdbool.h>
#include <stddef.h>

#define TK_HEADER_KEY_ID "key-id"
#define TK_HEADER_SIGNATURE "signature"

#define TK_SIGN_MAX_KEYS 8
#define TK_SIGN_KEY_ID_MAX 64
#define TK_SIGN_SECRET_MIN 32
#define TK_SIGN_SECRET_MAX 128
#define TK_SIGN_HEX_LEN 64 /* lowercase hex of the 32-byte MAC */
#define TK_SIGN_VERSION "ticket-sig-v1"

/* Roles a key may act as (a bit set). */
#define TK_ROLE_CUSTOMER 1u
#define TK_ROLE_ADMIN 2u

typedef struct {
    char id[TK_SIGN_KEY_ID_MAX + 1];
    unsigned char secret[TK_SIGN_SECRET_MAX];
    size_t secret_len;
    unsigned roles; /* TK_ROLE_* bits */
} tk_sign_key;

typedef struct {
    tk_sign_key keys[TK_SIGN_MAX_KEYS];
    size_t count;
} tk_sign_keys;

/** A borrowed byte range; ptr NULL means absent (not the same as empty). */
typedef struct {
    const char *ptr;
    size_t len;
} tk_sign_view;

/** What a signature covers, in this order. */
typedef struct {
    tk_sign_view key_id;
    tk_sign_view correlation_id;
    tk_sign_view reply_topic;
    tk_sign_view reply_partition;
    tk_sign_view deadline;
    tk_sign_view value;
} tk_sign_fields;

/**
 * @brief Parses "id:base64secret:role+role,id:...": ids [A-Za-z0-9._-]{1,64},
 * secrets of 32..128 bytes (standard padded base64), roles admin|customer.
 * Newlines separate entries too; spaces around entries are ignored.
 * @returns 0, or -1 with a message in err (the secret never appears in it).
 */
int tk_sign_keys_parse(tk_sign_keys *keys, const char *text, char *err, size_t err_len);

/** @returns the key with this id, or NULL. */
const tk_sign_key *tk_sign_keys_find(const tk_sign_keys *keys, const char *id, size_t id_len);

/** @returns TK_ROLE_ADMIN or TK_ROLE_CUSTOMER for "admin"/"customer", 0 otherwise. */
unsigned tk_sign_role_bit(const char *role, size_t len);

/**
 * @brief The canonical bytes: for TK_SIGN_VERSION and then each field in
 * struct order, a 4-byte big-endian length and the bytes; an absent field is
 * the length 0xFFFFFFFF alone. @returns a malloc'd buffer (caller frees)
 * with *len, or NULL when out of memory or a field is 4 GiB or more.
 */
unsigned char *tk_sign_canonical(const tk_sign_fields *fields, size_t *len);

/**
 * @brief HMAC-SHA256 of the canonical bytes with key, as lowercase hex.
 * @returns 0 with hex (NUL-terminated), or -1 when out of memory.
 */
int tk_sign_compute(const tk_sign_key *key, const tk_sign_fields *fields, char hex[TK_SIGN_HEX_LEN + 1]);

/**
 * @brief Checks signature (hex, any case) against fields, comparing in
 * constant time. @returns true only when it matches.
 */
bool tk_sign_verify(const tk_sign_key *key, const tk_sign_fields *fields, const char *signature, size_t len);

#endif
