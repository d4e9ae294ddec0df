/* Fuzz target: the signature check a worker runs on every command and query
 * (tk_sign), and the COMMAND_KEYS parser. The input is split at 0x00 bytes
 * into: a key list, then the signed fields (key-id, correlation-id,
 * reply-topic, reply-partition, deadline, value; a missing one is absent)
 * and a claimed signature. Oracles: the claimed signature verifies exactly
 * when it spells the computed one; the computed one verifies; any change to
 * the value or a header breaks it. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tk_sign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PARTS 8

/* Cuts data at NUL bytes; parts that do not occur stay absent (ptr NULL). */
static size_t split(const char *data, size_t size, tk_sign_view parts[PARTS]) {
    size_t count = 0, start = 0;
    memset(parts, 0, sizeof(tk_sign_view) * PARTS);
    for (size_t i = 0; i <= size && count < PARTS; i++) {
        if (i == size || data[i] == '\0') {
            parts[count].ptr = data + start;
            parts[count].len = i - start;
            count++;
            start = i + 1;
        }
    }
    return count;
}

static void check_key_list(tk_sign_view text) {
    char *copy = strndup(text.ptr, text.len);
    tk_sign_keys keys;
    char err[256];
    assert(copy != NULL);
    if (tk_sign_keys_parse(&keys, copy, err, sizeof err) == 0) {
        assert(keys.count >= 1 && keys.count <= TK_SIGN_MAX_KEYS);
        for (size_t i = 0; i < keys.count; i++) {
            const tk_sign_key *key = &keys.keys[i];
            assert(key->secret_len >= TK_SIGN_SECRET_MIN && key->secret_len <= TK_SIGN_SECRET_MAX);
            assert(key->roles != 0 && (key->roles & ~(TK_ROLE_ADMIN | TK_ROLE_CUSTOMER)) == 0);
            assert(tk_sign_keys_find(&keys, key->id, strlen(key->id)) == key);
        }
    } else {
        assert(err[0] != '\0');
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const tk_sign_key KEY = {"fuzz",
                                    {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                     17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32},
                                    32,
                                    TK_ROLE_ADMIN};
    tk_sign_view parts[PARTS];
    char computed[TK_SIGN_HEX_LEN + 1];
    split((const char *)data, size, parts);
    check_key_list(parts[0]);
    tk_sign_fields fields = {parts[1], parts[2], parts[3], parts[4], parts[5], parts[6]};
    tk_sign_view claimed = parts[7];
    assert(tk_sign_compute(&KEY, &fields, computed) == 0);
    assert(strlen(computed) == TK_SIGN_HEX_LEN);
    assert(tk_sign_verify(&KEY, &fields, computed, TK_SIGN_HEX_LEN));
    bool is_same = claimed.ptr != NULL && claimed.len == TK_SIGN_HEX_LEN &&
                   strncasecmp(claimed.ptr, computed, TK_SIGN_HEX_LEN) == 0 &&
                   memchr(claimed.ptr, '\0', claimed.len) == NULL;
    assert(tk_sign_verify(&KEY, &fields, claimed.ptr, claimed.len) == is_same);
    /* A header moved from absent to empty, or a value one byte shorter, is another message. */
    tk_sign_fields changed = fields;
    if (changed.deadline.ptr == NULL) {
        changed.deadline = (tk_sign_view){"", 0};
    } else {
        changed.deadline.ptr = NULL;
    }
    assert(!tk_sign_verify(&KEY, &changed, computed, TK_SIGN_HEX_LEN));
    if (fields.value.ptr != NULL && fields.value.len > 0) {
        changed = fields;
        changed.value.len--;
        assert(!tk_sign_verify(&KEY, &changed, computed, TK_SIGN_HEX_LEN));
    }
    return 0;
}
