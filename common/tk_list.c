/* tk_list — list queries shared by the gateway and the worker: the filter
 * rules, the page size, and cursors bound to the query they came from. */
#include "tk_list.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tk_hash.h"
#include "tk_hex.h"
#include "tk_text.h"

#define CURSOR_VERSION 1
#define CURSOR_BYTES 29 /* version, createdAt (8, big-endian), _id (12), check (8) */


/* One row per filter member, in the canonical order: its values (an enum,
 * or free text up to max_chars), whether it takes a list, and whether only
 * admins may use it. */
static const struct {
    const char *name;
    const char *const *allowed; /* NULL: free text */
    const char *allowed_text;
    size_t max_chars;
    bool is_multi;
    bool is_admin_only;
} FILTER_FIELDS[] = {
    {"status", TK_STATUSES, TK_STATUSES_TEXT, 0, true, false},
    {"priority", TK_PRIORITIES, TK_PRIORITIES_TEXT, 0, true, false},
    {"category", NULL, NULL, TK_CATEGORY_MAX_CHARS, true, false},
    {"creatorId", NULL, NULL, TK_PRINCIPAL_MAX_CHARS, false, false},
    {"team", NULL, NULL, TK_PRINCIPAL_MAX_CHARS, false, true},
    {"assigneeId", NULL, NULL, TK_PRINCIPAL_MAX_CHARS, false, true},
};
#define FILTER_FIELD_COUNT (sizeof FILTER_FIELDS / sizeof FILTER_FIELDS[0])

static int field_index(const char *name, bool is_admin) {
    for (size_t i = 0; i < FILTER_FIELD_COUNT; i++)
        if (strcmp(name, FILTER_FIELDS[i].name) == 0 && (is_admin || !FILTER_FIELDS[i].is_admin_only)) return (int)i;
    return -1;
}

bool tk_list_field_is_known(const char *name) { return field_index(name, true) >= 0; }

bool tk_list_field_is_multi(const char *name) {
    int index = field_index(name, true);
    return index >= 0 && FILTER_FIELDS[index].is_multi;
}

/* "Query parameter 'status'" or "Field 'filter.status'". */
static void label(char *out, size_t len, const char *name, tk_list_source source) {
    if (source == TK_LIST_FROM_HTTP) snprintf(out, len, "Query parameter '%.64s'", name);
    else snprintf(out, len, "Field 'filter.%.64s'", name);
}

static int check_value(size_t field, const json_t *value, const char *what, char *err, size_t err_len) {
    if (!json_is_string(value)) {
        snprintf(err, err_len, "%s must be a string", what);
        return -1;
    }
    const char *text = json_string_value(value);
    size_t len = json_string_length(value);
    if (FILTER_FIELDS[field].allowed != NULL) {
        for (size_t i = 0; FILTER_FIELDS[field].allowed[i] != NULL; i++)
            if (strcmp(text, FILTER_FIELDS[field].allowed[i]) == 0 && strlen(text) == len) return 0;
        snprintf(err, err_len, "%s must be one of: %s", what, FILTER_FIELDS[field].allowed_text);
        return -1;
    }
    /* Same text rules as the fields themselves: wrapped in an object so the
     * one implementation applies, then the message is ours. */
    json_t *holder = json_pack("{s:O}", "v", value);
    const char *ignored;
    char text_err[256];
    int rc = holder != NULL ? tk_text_member(holder, "v", "v", FILTER_FIELDS[field].max_chars, true, &ignored, text_err,
                                             sizeof text_err)
                            : -1;
    json_decref(holder);
    if (rc != 0) {
        if (len == 0 || strstr(text_err, "empty") != NULL) snprintf(err, err_len, "%s must not be empty", what);
        else snprintf(err, err_len, "%s must be at most %zu characters", what, FILTER_FIELDS[field].max_chars);
        return -1;
    }
    return 0;
}

int tk_list_filter_check(const json_t *filter, bool is_admin, tk_list_source source, char *err, size_t err_len) {
    const char *name;
    json_t *value;
    char what[96];
    if (filter == NULL) return 0;
    if (!json_is_object(filter)) {
        snprintf(err, err_len, "Field 'filter' must be an object");
        return -1;
    }
    json_object_foreach((json_t *)filter, name, value) {
        int field = field_index(name, is_admin);
        if (field < 0) {
            if (source == TK_LIST_FROM_HTTP) snprintf(err, err_len, "Unknown query parameter '%.64s'", name);
            else snprintf(err, err_len, "Unknown field 'filter.%.64s'", name);
            return -1;
        }
        label(what, sizeof what, name, source);
        if (!FILTER_FIELDS[field].is_multi) {
            if (check_value((size_t)field, value, what, err, err_len) != 0) return -1;
            continue;
        }
        if (!json_is_array(value) || json_array_size(value) == 0 || json_array_size(value) > TK_LIST_VALUES_MAX) {
            snprintf(err, err_len, "%s must be a list of 1 to %d values", what, TK_LIST_VALUES_MAX);
            return -1;
        }
        size_t index;
        json_t *item;
        json_array_foreach(value, index, item) {
            if (check_value((size_t)field, item, what, err, err_len) != 0) return -1;
        }
    }
    return 0;
}

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* [field, [sorted unique values]] for a present member; NULL when absent. */
static json_t *canonical_member(const json_t *value) {
    if (json_is_string(value)) return json_pack("[O]", value);
    size_t count = json_array_size(value);
    const char **values = calloc(count + 1, sizeof *values);
    json_t *out = json_array();
    if (values == NULL || out == NULL) goto fail;
    for (size_t i = 0; i < count; i++) values[i] = json_string_value(json_array_get(value, i));
    for (size_t i = 0; i < count; i++)
        if (values[i] == NULL) values[i] = "";
    qsort(values, count, sizeof *values, compare_strings);
    for (size_t i = 0; i < count; i++)
        if ((i == 0 || strcmp(values[i], values[i - 1]) != 0) &&
            json_array_append_new(out, json_string(values[i])) != 0)
            goto fail;
    free(values);
    return out;
fail:
    free(values);
    json_decref(out);
    return NULL;
}

uint64_t tk_list_binding(bool is_admin, const char *team, const json_t *filter) {
    /* JSON text is an unambiguous encoding of the scope and the filter. */
    json_t *canonical = json_pack("[s, s*]", is_admin ? "admin" : "team", is_admin ? NULL : team);
    for (size_t i = 0; canonical != NULL && i < FILTER_FIELD_COUNT; i++) {
        json_t *value = json_object_get(filter, FILTER_FIELDS[i].name);
        if (value == NULL) continue;
        json_array_append_new(canonical, json_pack("[s, o*]", FILTER_FIELDS[i].name, canonical_member(value)));
    }
    char *text = canonical != NULL ? json_dumps(canonical, JSON_COMPACT) : NULL;
    /* Out of memory: a binding no cursor matches, never one that matches all. */
    uint64_t binding = text != NULL ? tk_hash(text, strlen(text)) : 0;
    free(text);
    json_decref(canonical);
    return binding;
}

static const char BASE64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int base64url_value(char c) {
    const char *at = c != '\0' ? strchr(BASE64URL, c) : NULL;
    return at != NULL ? (int)(at - BASE64URL) : -1;
}

/* The check over the cursor's own bytes and the query it belongs to. */
static uint64_t cursor_check(const uint8_t *bytes, uint64_t binding) {
    uint8_t data[CURSOR_BYTES - 8 + 8];
    memcpy(data, bytes, CURSOR_BYTES - 8);
    for (int i = 0; i < 8; i++) data[CURSOR_BYTES - 8 + i] = (uint8_t)(binding >> (56 - 8 * i));
    return tk_hash(data, sizeof data);
}

void tk_cursor_encode(const tk_cursor_position *position, uint64_t binding, char out[TK_CURSOR_LEN + 1]) {
    uint8_t bytes[CURSOR_BYTES + 1] = {CURSOR_VERSION}; /* one spare zero byte for the last group */
    uint64_t created = (uint64_t)position->created_ms;
    for (int i = 0; i < 8; i++) bytes[1 + i] = (uint8_t)(created >> (56 - 8 * i));
    for (int i = 0; i < 12; i++) {
        unsigned int byte = 0;
        sscanf(position->id + 2 * i, "%2x", &byte);
        bytes[9 + i] = (uint8_t)byte;
    }
    uint64_t check = cursor_check(bytes, binding);
    for (int i = 0; i < 8; i++) bytes[21 + i] = (uint8_t)(check >> (56 - 8 * i));
    size_t o = 0;
    for (size_t i = 0; i < CURSOR_BYTES; i += 3) {
        uint32_t group = (uint32_t)bytes[i] << 16 | (uint32_t)bytes[i + 1] << 8 |
                         (i + 2 < CURSOR_BYTES ? bytes[i + 2] : 0);
        out[o++] = BASE64URL[(group >> 18) & 63];
        out[o++] = BASE64URL[(group >> 12) & 63];
        if (i + 1 < CURSOR_BYTES) out[o++] = BASE64URL[(group >> 6) & 63];
        if (i + 2 < CURSOR_BYTES) out[o++] = BASE64URL[group & 63];
    }
    out[o] = '\0';
}

int tk_cursor_decode(const char *text, size_t len, uint64_t binding, tk_cursor_position *position) {
    uint8_t bytes[CURSOR_BYTES + 2] = {0};
    if (text == NULL || len != TK_CURSOR_LEN) return -1;
    uint32_t bits = 0;
    int bit_count = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int value = base64url_value(text[i]);
        if (value < 0) return -1;
        bits = (bits << 6) | (uint32_t)value;
        bit_count += 6;
        if (bit_count >= 8) {
            bit_count -= 8;
            bytes[o++] = (uint8_t)(bits >> bit_count);
            bits &= (1u << bit_count) - 1;
        }
    }
    /* Leftover bits must be zero, or two texts would decode to one cursor. */
    if (o != CURSOR_BYTES || bits != 0 || bytes[0] != CURSOR_VERSION) return -1;
    uint64_t check = 0;
    for (int i = 0; i < 8; i++) check = check << 8 | bytes[21 + i];
    if (check != cursor_check(bytes, binding)) return -1;
    uint64_t created = 0;
    for (int i = 0; i < 8; i++) created = created << 8 | bytes[1 + i];
    position->created_ms = (int64_t)created;
    tk_hex_encode(bytes + 9, 12, position->id);
    position->id[TK_OBJECT_ID_LEN] = '\0';
    return 0;
}
