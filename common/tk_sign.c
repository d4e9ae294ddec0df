/* tk_sign — command keys, the canonical bytes of a message, HMAC-SHA256 signing
 * and constant-time verification. */
#include "tk_sign.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAC_BYTES 32
#define ABSENT_LEN 0xFFFFFFFFu
#define ENTRY_SEPARATORS ",\n"

static const char *const ROLE_NAMES[] = {"customer", "admin"};
static const unsigned ROLE_BITS[] = {TK_ROLE_CUSTOMER, TK_ROLE_ADMIN};

unsigned tk_sign_role_bit(const char *role, size_t len) {
    for (size_t i = 0; i < sizeof ROLE_NAMES / sizeof ROLE_NAMES[0]; i++)
        if (strlen(ROLE_NAMES[i]) == len && memcmp(ROLE_NAMES[i], role, len) == 0) return ROLE_BITS[i];
    return 0;
}

static const char KEY_ID_CHARS[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";
static const char BASE64_CHARS[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static bool is_key_id(const char *id, size_t len) {
    if (len == 0 || len > TK_SIGN_KEY_ID_MAX) return false;
    for (size_t i = 0; i < len; i++)
        if (id[i] == '\0' || strchr(KEY_ID_CHARS, id[i]) == NULL) return false;
    return true;
}

/* Padded base64: alphabet characters, then at most two '=' at the very end. */
static bool is_padded_base64(const char *text, size_t len) {
    size_t data_len = len;
    while (data_len > 0 && len - data_len < 2 && text[data_len - 1] == '=') data_len--;
    for (size_t i = 0; i < data_len; i++)
        if (text[i] == '\0' || strchr(BASE64_CHARS, text[i]) == NULL) return false;
    return len % 4 == 0;
}

/* Standard padded base64 only: one spelling per secret. @returns the byte count, or -1. */
static int decode_secret(const char *text, size_t len, unsigned char *out) {
    unsigned char decoded[TK_SIGN_SECRET_MAX + 3];
    if (len == 0 || len / 4 * 3 > sizeof decoded || !is_padded_base64(text, len)) return -1;
    int n = EVP_DecodeBlock(decoded, (const unsigned char *)text, (int)len);
    if (n < 0) return -1;
    n -= (text[len - 1] == '=') + (text[len - 2] == '='); /* EVP_DecodeBlock counts padding as bytes */
    if (n >= TK_SIGN_SECRET_MIN && n <= TK_SIGN_SECRET_MAX) memcpy(out, decoded, (size_t)n);
    OPENSSL_cleanse(decoded, sizeof decoded);
    return n >= TK_SIGN_SECRET_MIN && n <= TK_SIGN_SECRET_MAX ? n : -1;
}

static int parse_roles(const char *text, size_t len, unsigned *roles) {
    *roles = 0;
    while (len > 0) {
        const char *plus = memchr(text, '+', len);
        size_t part = plus != NULL ? (size_t)(plus - text) : len;
        unsigned bit = tk_sign_role_bit(text, part);
        if (bit == 0) return -1;
        *roles |= bit;
        if (plus == NULL) break;
        text += part + 1;
        len -= part + 1;
        if (len == 0) return -1; /* a trailing '+' */
    }
    return *roles != 0 ? 0 : -1;
}

/* One "id:secret:roles" entry (trimmed). */
static int parse_entry(tk_sign_keys *keys, const char *entry, size_t len, char *err, size_t err_len) {
    const char *first = memchr(entry, ':', len);
    const char *second = first != NULL ? memchr(first + 1, ':', len - (size_t)(first - entry) - 1) : NULL;
    if (second == NULL) {
        snprintf(err, err_len, "COMMAND_KEYS: entry %zu is not id:base64-secret:roles", keys->count + 1);
        return -1;
    }
    size_t id_len = (size_t)(first - entry);
    if (!is_key_id(entry, id_len)) {
        snprintf(err, err_len, "COMMAND_KEYS: entry %zu: the key id must be 1 to 64 of A-Z a-z 0-9 . _ -",
                 keys->count + 1);
        return -1;
    }
    if (keys->count == TK_SIGN_MAX_KEYS || tk_sign_keys_find(keys, entry, id_len) != NULL) {
        snprintf(err, err_len, "COMMAND_KEYS: key '%.*s' is repeated or there are more than %d keys", (int)id_len,
                 entry, TK_SIGN_MAX_KEYS);
        return -1;
    }
    tk_sign_key *key = &keys->keys[keys->count];
    int secret_len = decode_secret(first + 1, (size_t)(second - first - 1), key->secret);
    if (secret_len < 0) {
        snprintf(err, err_len, "COMMAND_KEYS: key '%.*s': the secret must be padded base64 of %d to %d bytes",
                 (int)id_len, entry, TK_SIGN_SECRET_MIN, TK_SIGN_SECRET_MAX);
        return -1;
    }
    if (parse_roles(second + 1, len - (size_t)(second + 1 - entry), &key->roles) != 0) {
        snprintf(err, err_len, "COMMAND_KEYS: key '%.*s': roles must be admin, customer or admin+customer", (int)id_len,
                 entry);
        return -1;
    }
    memcpy(key->id, entry, id_len);
    key->id[id_len] = '\0';
    key->secret_len = (size_t)secret_len;
    keys->count++;
    return 0;
}

static bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

int tk_sign_keys_parse(tk_sign_keys *keys, const char *text, char *err, size_t err_len) {
    memset(keys, 0, sizeof *keys);
    while (*text != '\0') {
        size_t len = strcspn(text, ENTRY_SEPARATORS);
        const char *entry = text;
        size_t entry_len = len;
        while (entry_len > 0 && is_blank(entry[0])) entry++, entry_len--;
        while (entry_len > 0 && is_blank(entry[entry_len - 1])) entry_len--;
        if (entry_len > 0 && parse_entry(keys, entry, entry_len, err, err_len) != 0) {
            OPENSSL_cleanse(keys, sizeof *keys);
            return -1;
        }
        text += len + (text[len] != '\0');
    }
    if (keys->count == 0) {
        snprintf(err, err_len, "COMMAND_KEYS has no key");
        return -1;
    }
    return 0;
}

const tk_sign_key *tk_sign_keys_find(const tk_sign_keys *keys, const char *id, size_t id_len) {
    for (size_t i = 0; i < keys->count; i++)
        if (strlen(keys->keys[i].id) == id_len && memcmp(keys->keys[i].id, id, id_len) == 0) return &keys->keys[i];
    return NULL;
}

static unsigned char *put_item(unsigned char *out, const tk_sign_view *view) {
    uint32_t len = view->ptr != NULL ? (uint32_t)view->len : ABSENT_LEN;
    out[0] = (unsigned char)(len >> 24);
    out[1] = (unsigned char)(len >> 16);
    out[2] = (unsigned char)(len >> 8);
    out[3] = (unsigned char)len;
    out += 4;
    if (view->ptr != NULL && view->len > 0) memcpy(out, view->ptr, view->len);
    return out + (view->ptr != NULL ? view->len : 0);
}

unsigned char *tk_sign_canonical(const tk_sign_fields *fields, size_t *len) {
    const tk_sign_view version = {TK_SIGN_VERSION, strlen(TK_SIGN_VERSION)};
    const tk_sign_view *items[] = {
        &version,          &fields->key_id, &fields->correlation_id, &fields->reply_topic, &fields->reply_partition,
        &fields->deadline, &fields->value};
    size_t total = 0;
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
        if (items[i]->ptr != NULL && items[i]->len >= ABSENT_LEN) return NULL;
        total += 4 + (items[i]->ptr != NULL ? items[i]->len : 0);
    }
    unsigned char *buffer = malloc(total);
    if (buffer == NULL) return NULL;
    unsigned char *end = buffer;
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) end = put_item(end, items[i]);
    *len = total;
    return buffer;
}

static int mac(const tk_sign_key *key, const tk_sign_fields *fields, unsigned char out[MAC_BYTES]) {
    size_t len = 0;
    unsigned int mac_len = 0;
    unsigned char *canonical = tk_sign_canonical(fields, &len);
    if (canonical == NULL) return -1;
    unsigned char *rc = HMAC(EVP_sha256(), key->secret, (int)key->secret_len, canonical, len, out, &mac_len);
    free(canonical);
    return rc != NULL && mac_len == MAC_BYTES ? 0 : -1;
}

int tk_sign_compute(const tk_sign_key *key, const tk_sign_fields *fields, char hex[TK_SIGN_HEX_LEN + 1]) {
    static const char DIGITS[] = "0123456789abcdef";
    unsigned char out[MAC_BYTES];
    if (mac(key, fields, out) != 0) return -1;
    for (size_t i = 0; i < MAC_BYTES; i++) {
        hex[2 * i] = DIGITS[out[i] >> 4];
        hex[2 * i + 1] = DIGITS[out[i] & 15];
    }
    hex[TK_SIGN_HEX_LEN] = '\0';
    return 0;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool tk_sign_verify(const tk_sign_key *key, const tk_sign_fields *fields, const char *signature, size_t len) {
    unsigned char claimed[MAC_BYTES], expected[MAC_BYTES];
    if (signature == NULL || len != TK_SIGN_HEX_LEN) return false;
    for (size_t i = 0; i < MAC_BYTES; i++) {
        int high = hex_value(signature[2 * i]), low = hex_value(signature[2 * i + 1]);
        if (high < 0 || low < 0) return false;
        claimed[i] = (unsigned char)(high << 4 | low);
    }
    if (mac(key, fields, expected) != 0) return false;
    return CRYPTO_memcmp(claimed, expected, MAC_BYTES) == 0;
}
