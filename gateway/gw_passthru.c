/* gw_passthru — the HTTP answer cut out of a worker's reply without parsing
 * it: {"version":1,"status":NNN[,"page":{"next":"<s>"}][,"etag":"<s>"],
 * "success":...} answers {"success":...} with the bytes as they came.
 *
 * Workers write replies with json_dumps (tk_reply_json_new_meta), and a page
 * of a list is tens of kilobytes: parsing and dumping it again cost the
 * gateway more CPU than anything else it does per list. The members before
 * "success" are read here exactly as jansson would read them; every string
 * or shape this scanner does not fully understand sends the reply to the
 * parsing path, which then decides (the answers are the same, see the unit
 * test and fuzz_replies). */
#define _GNU_SOURCE /* memmem */
#include "gw_passthru.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tk_text.h"

/* A view of the reply not read yet. */
typedef struct {
    const char *at;
    const char *end;
} scan;

/* Consumes literal when the text goes on with it. */
static bool take(scan *s, const char *literal) {
    size_t len = strlen(literal);
    if ((size_t)(s->end - s->at) < len || memcmp(s->at, literal, len) != 0) return false;
    s->at += len;
    return true;
}

/* Three digits, 100..599 (HTTP has no other status; the parsing path refuses
 * the rest, and leading zeros are not JSON). */
static bool take_status(scan *s, int *status) {
    if (s->end - s->at < 3) return false;
    int value = 0;
    for (int i = 0; i < 3; i++) {
        if (s->at[i] < '0' || s->at[i] > '9') return false;
        value = value * 10 + (s->at[i] - '0');
    }
    if (value < 100 || value > 599) return false;
    s->at += 3;
    *status = value;
    return true;
}

/* The value of a hex digit, or -1. */
static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The value of 4 hex digits at text, or -1. */
static long hex4(const char *text) {
    long value = 0;
    for (int i = 0; i < 4; i++) {
        int digit = hex_digit(text[i]);
        if (digit < 0) return -1;
        value = value * 16 + digit;
    }
    return value;
}

/* A \u escape at s->at (after "\u"), surrogate pairs joined, as a code point:
 * -1 for what jansson refuses (\u0000, lone surrogates) or a short text. */
static long take_code_point(scan *s) {
    if (s->end - s->at < 4) return -1;
    long code = hex4(s->at);
    s->at += 4;
    if (code <= 0 || (code >= 0xDC00 && code <= 0xDFFF)) return -1;
    if (code < 0xD800 || code > 0xDBFF) return code;
    if (s->end - s->at < 6 || s->at[0] != '\\' || s->at[1] != 'u') return -1;
    long low = hex4(s->at + 2);
    if (low < 0xDC00 || low > 0xDFFF) return -1;
    s->at += 6;
    return 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
}

static size_t put_utf8(long code, char *out) {
    if (code < 0x80) {
        out[0] = (char)code;
        return 1;
    }
    if (code < 0x800) {
        out[0] = (char)(0xC0 | (code >> 6));
        out[1] = (char)(0x80 | (code & 0x3F));
        return 2;
    }
    if (code < 0x10000) {
        out[0] = (char)(0xE0 | (code >> 12));
        out[1] = (char)(0x80 | ((code >> 6) & 0x3F));
        out[2] = (char)(0x80 | (code & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (code >> 18));
    out[1] = (char)(0x80 | ((code >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((code >> 6) & 0x3F));
    out[3] = (char)(0x80 | (code & 0x3F));
    return 4;
}

/* One escape after its backslash into out (room for 4 bytes). @returns the
 * bytes written, 0 for an escape JSON or jansson refuses. */
static size_t take_escape(scan *s, char *out) {
    static const char FROM[] = "\"\\/bfnrt";
    static const char TO[] = "\"\\/\b\f\n\r\t";
    if (s->at == s->end) return 0;
    char c = *s->at++;
    if (c == 'u') {
        long code = take_code_point(s);
        return code < 0 ? 0 : put_utf8(code, out);
    }
    const char *known = c != '\0' ? strchr(FROM, c) : NULL;
    if (known == NULL) return 0;
    out[0] = TO[known - FROM];
    return 1;
}

/* A JSON string after its opening quote, decoded into out (out_size bytes,
 * NUL-terminated) and consumed with its closing quote. @returns false for
 * what jansson refuses (a control character, a bad escape, text that is not
 * UTF-8) or text that does not fit. */
static bool take_string(scan *s, char *out, size_t out_size) {
    size_t len = 0;
    while (s->at < s->end && *s->at != '"') {
        char decoded[4];
        size_t decoded_len = 1;
        unsigned char c = (unsigned char)*s->at++;
        if (c < 0x20) return false;
        if (c != '\\') decoded[0] = (char)c;
        else if ((decoded_len = take_escape(s, decoded)) == 0) return false;
        if (out_size - len <= decoded_len) return false; /* and the NUL */
        memcpy(out + len, decoded, decoded_len);
        len += decoded_len;
    }
    if (s->at == s->end) return false;
    s->at++;
    out[len] = '\0';
    return tk_utf8_is_valid(out, len);
}

/* The bytes of the JSON string at s->at up to its closing quote (or the end). */
static size_t string_extent(const scan *s) {
    const char *at = s->at;
    while (at < s->end && *at != '"') at += *at == '\\' && s->end - at > 1 ? 2 : 1;
    return (size_t)(at - s->at);
}

/* "page":{"next":"<s>"}, into a malloc'd *next. */
static bool take_page(scan *s, char **next) {
    if (!take(s, "\"page\":{\"next\":\"")) return false;
    size_t room = string_extent(s) + 1; /* decoded text is never longer than its JSON */
    *next = malloc(room);
    if (*next == NULL) return false;
    if (take_string(s, *next, room) && take(s, "},")) return true;
    free(*next);
    *next = NULL;
    return false;
}

/* The members before "success", in the order tk_reply_json_new_meta writes
 * them (page and etag only when can_take_meta: an entry will keep them).
 * @returns false, *next NULL, for anything else. */
static bool take_meta(scan *s, bool can_take_meta, int *status, char **next, char *etag, size_t etag_size) {
    *next = NULL;
    etag[0] = '\0';
    if (!take(s, "{\"version\":1,\"status\":") || !take_status(s, status) || !take(s, ",")) return false;
    if (!can_take_meta) return true;
    scan page = *s;
    if (take(&page, "\"page\":") && !take_page(s, next)) return false;
    scan tag = *s;
    if (take(&tag, "\"etag\":") && !(take(s, "\"etag\":\"") && take_string(s, etag, etag_size) && take(s, ","))) {
        free(*next);
        *next = NULL;
        return false;
    }
    return true;
}

/* A "page" or "etag" member after "success" would be taken out of the body
 * by the parsing path: leave such a reply to it. Inside a string value these
 * bytes cannot occur (its quotes are escaped); a nested member of that name
 * or a name ending in \"page only costs a reply the parsing path. */
static bool has_meta_member(const scan *s) {
    size_t len = (size_t)(s->end - s->at);
    return memmem(s->at, len, "\"page\":", 7) != NULL || memmem(s->at, len, "\"etag\":", 7) != NULL;
}

char *gw_passthru_answer(const char *data, size_t len, gw_pending_entry *entry, int *status, size_t *body_len) {
    static const char SUCCESS[] = "\"success\":";
    scan s = {data, data + len};
    char *next = NULL;
    char etag[sizeof entry->etag];
    if (len == 0 || data[len - 1] != '}' || !take_meta(&s, entry != NULL, status, &next, etag, sizeof etag))
        return NULL;
    /* At least "success": and one byte of its value before the final '}'. */
    char *body = NULL;
    if ((size_t)(s.end - s.at) > sizeof SUCCESS && memcmp(s.at, SUCCESS, sizeof SUCCESS - 1) == 0 &&
        !has_meta_member(&s)) {
        *body_len = 1 + (size_t)(s.end - s.at);
        body = malloc(*body_len);
    }
    if (body == NULL) {
        free(next);
        return NULL;
    }
    body[0] = '{';
    memcpy(body + 1, s.at, *body_len - 1);
    if (entry != NULL) {
        entry->next_cursor = next;
        memcpy(entry->etag, etag, sizeof etag);
    }
    return body;
}
