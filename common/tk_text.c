/* tk_text — the text checks both edges use: UTF-8, string members with limits, unknown members, priorities. */
#include "tk_text.h"

#include <stdio.h>
#include <string.h>

const char *const TK_PRIORITIES[] = {"low", "medium", "high", "urgent", NULL};
const char *const TK_STATUSES[] = {"created", "open", "pending", "resolved", "closed", NULL};

size_t tk_utf8_length(const char *text, size_t len) {
    size_t count = 0;
    for (size_t i = 0; i < len; i++) {
        /* Continuation bytes are 10xxxxxx: count everything else. */
        if (((unsigned char)text[i] & 0xC0) != 0x80) count++;
    }
    return count;
}

/* How many continuation bytes lead byte c announces (0: not a lead byte),
 * and the code point bits it carries. */
static size_t utf8_lead(unsigned char c, unsigned int *code) {
    if ((c & 0xE0) == 0xC0) {
        *code = c & 0x1F;
        return 1;
    }
    if ((c & 0xF0) == 0xE0) {
        *code = c & 0x0F;
        return 2;
    }
    if ((c & 0xF8) == 0xF0) {
        *code = c & 0x07;
        return 3;
    }
    return 0;
}

/* Rejects overlong forms, surrogates and values past U+10FFFF. */
static bool is_shortest_scalar(size_t extra, unsigned int code) {
    static const unsigned int SHORTEST[] = {0, 0x80, 0x800, 0x10000};
    return code >= SHORTEST[extra] && !(code >= 0xD800 && code <= 0xDFFF) && code <= 0x10FFFF;
}

/* @returns the length of the valid multi-byte sequence at s (len bytes
 * left), or 0 when it is not one. */
static size_t utf8_sequence_len(const unsigned char *s, size_t len) {
    unsigned int code = 0;
    size_t extra = utf8_lead(s[0], &code);
    if (extra == 0 || extra >= len) return 0;
    for (size_t k = 1; k <= extra; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        code = (code << 6) | (s[k] & 0x3F);
    }
    return is_shortest_scalar(extra, code) ? extra + 1 : 0;
}

bool tk_utf8_is_valid(const char *text, size_t len) {
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        if (s[i] == 0) return false;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t sequence_len = utf8_sequence_len(s + i, len - i);
        if (sequence_len == 0) return false;
        i += sequence_len;
    }
    return true;
}

size_t tk_utf8_prefix_len(const char *text, size_t len, size_t max_bytes) {
    const unsigned char *s = (const unsigned char *)text;
    size_t end = len < max_bytes ? len : max_bytes;
    /* Back up over at most three continuation bytes to the last lead byte,
     * then keep its character only if it ends by `end`. */
    size_t lead = end;
    while (lead > 0 && end - lead < 3 && (s[lead - 1] & 0xC0) == 0x80) lead--;
    if (lead == 0 || (s[lead - 1] & 0xC0) == 0x80) return end; /* no lead byte: not UTF-8 */
    unsigned char c = s[lead - 1];
    size_t width = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    return lead - 1 + width <= end ? end : lead - 1;
}

/* Unicode White_Space outside ASCII (NBSP, the ideographic space, ...). */
static bool is_unicode_space(unsigned int code) {
    return code == 0x85 || code == 0xA0 || code == 0x1680 || (code >= 0x2000 && code <= 0x200A) || code == 0x2028 ||
           code == 0x2029 || code == 0x202F || code == 0x205F || code == 0x3000;
}

/* True when text (valid UTF-8) holds only white space. */
static bool is_blank(const char *text, size_t len) {
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        if (s[i] < 0x80) {
            if (strchr(" \t\r\n\f\v", s[i]) == NULL) return false;
            i++;
            continue;
        }
        size_t extra = (s[i] & 0xE0) == 0xC0 ? 1 : (s[i] & 0xF0) == 0xE0 ? 2 : 3;
        unsigned int code = s[i] & (extra == 1 ? 0x1F : extra == 2 ? 0x0F : 0x07);
        for (size_t k = 1; k <= extra && i + k < len; k++) code = (code << 6) | (s[i + k] & 0x3F);
        if (!is_unicode_space(code)) return false;
        i += extra + 1;
    }
    return true;
}

int tk_text_member(const json_t *object, const char *name, const char *label, size_t max_chars, bool is_required,
                   const char **out, char *err, size_t err_len) {
    *out = NULL;
    json_t *value = json_object_get(object, name);
    if (value == NULL || json_is_null(value)) {
        if (!is_required) return 0;
        snprintf(err, err_len, "Field '%s' is required", label);
        return -1;
    }
    if (!json_is_string(value)) {
        snprintf(err, err_len, "Field '%s' must be a string", label);
        return -1;
    }
    const char *text = json_string_value(value);
    size_t len = json_string_length(value);
    if (len == 0 || is_blank(text, len)) {
        snprintf(err, err_len, "Field '%s' must not be empty", label);
        return -1;
    }
    /* Stored text is a C string: a \u0000 (parsed with JSON_ALLOW_NUL) would cut it. */
    if (strlen(text) != len) {
        snprintf(err, err_len, "Field '%s' must not contain NUL characters", label);
        return -1;
    }
    if (tk_utf8_length(text, len) > max_chars) {
        snprintf(err, err_len, "Field '%s' must be at most %zu characters", label, max_chars);
        return -1;
    }
    *out = text;
    return 0;
}

int tk_only_members(const json_t *object, const char *const allowed[], const char *prefix, char *err, size_t err_len) {
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)object, key, value) {
        bool is_known = false;
        for (size_t i = 0; allowed[i] != NULL && !is_known; i++) is_known = strcmp(key, allowed[i]) == 0;
        if (!is_known) {
            /* Keys are outside input: cut them so the message stays readable,
             * and between characters, or the message is no longer UTF-8. */
            snprintf(err, err_len, "Unknown field '%s%.*s'", prefix, (int)tk_utf8_prefix_len(key, strlen(key), 64),
                     key);
            return -1;
        }
    }
    return 0;
}

static bool is_one_of(const char *value, const char *const values[]) {
    for (size_t i = 0; values[i] != NULL; i++) {
        if (strcmp(value, values[i]) == 0) return true;
    }
    return false;
}

bool tk_priority_is_valid(const char *value) { return is_one_of(value, TK_PRIORITIES); }

bool tk_status_is_valid(const char *value) { return is_one_of(value, TK_STATUSES); }

bool tk_status_is_target(const char *value) { return strcmp(value, "created") != 0 && tk_status_is_valid(value); }
