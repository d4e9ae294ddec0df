/* gw_passthru against the parsing path (gw_replies_parsed_answer): whenever
 * the pass-through answers a reply, the status, the body bytes, the next
 * cursor and the ETag are the ones parsing and dumping it gives. Replies as
 * workers write them (seed-shaped lists, with and without page and etag,
 * escapes, every kind of character) must take the pass-through; odd but
 * valid JSON that workers never write must be left to the parsing path. */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_passthru.h"
#include "gw_replies.h"
#include "tk_envelope.h"

/* One path's answer. */
typedef struct {
    char *body;
    size_t len;
    int status;
    gw_pending_entry entry;
} answer;

static void answer_close(answer *a) {
    free(a->body);
    free(a->entry.next_cursor);
}

/* Both paths over reply; entry NULL when !with_entry. @returns true when the
 * pass-through answered, after checking it agrees with the parsing path. */
static bool compare(const char *reply, size_t len, bool with_entry) {
    answer fast = {0}, slow = {0};
    char err[256] = "";
    fast.body = gw_passthru_answer(reply, len, with_entry ? &fast.entry : NULL, &fast.status, &fast.len);
    slow.body = gw_replies_parsed_answer(reply, len, with_entry ? &slow.entry : NULL, &slow.status, &slow.len, err,
                                         sizeof err);
    bool is_fast = fast.body != NULL;
    if (is_fast) {
        if (slow.body == NULL) fail_msg("passed through what parsing refuses (%s): %.*s", err, (int)len, reply);
        assert_int_equal(fast.status, slow.status);
        if (fast.len != slow.len || memcmp(fast.body, slow.body, fast.len) != 0)
            fail_msg("bodies differ for %.*s:\n%.*s\n%.*s", (int)len, reply, (int)fast.len, fast.body, (int)slow.len,
                     slow.body);
        assert_true((fast.entry.next_cursor == NULL) == (slow.entry.next_cursor == NULL));
        if (fast.entry.next_cursor != NULL) assert_string_equal(fast.entry.next_cursor, slow.entry.next_cursor);
        assert_string_equal(fast.entry.etag, slow.entry.etag);
    } else {
        /* Declined: the entry is left as it was. */
        assert_null(fast.entry.next_cursor);
        assert_string_equal(fast.entry.etag, "");
    }
    answer_close(&fast);
    answer_close(&slow);
    return is_fast;
}

static bool compare_text(const char *reply) { return compare(reply, strlen(reply), true); }

/* A reply as a worker writes it (tk_reply_json_new_meta + json_dumps). */
static char *worker_reply(int status, const char *next, const char *etag, json_t *data) {
    json_t *reply = tk_reply_json_new_meta(status, status < 300 ? "Tickets fetched successfully!" : "Ticket not found",
                                           next, etag, data);
    assert_non_null(reply);
    char *text = json_dumps(reply, JSON_COMPACT);
    json_decref(reply);
    assert_non_null(text);
    return text;
}

static json_t *seed_ticket(const char *id, const char *subject) {
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:[{s:s, s:s, s:s, s:b}], s:i, s:s, s:s}", "_id", id,
                     "userId", "user-1", "teamId", "team-a", "category", "billing", "subject", subject, "description",
                     "Line one\nline \"two\"\t\\ caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 </script>",
                     "priority", "high", "status", "open", "responses", "_id", "65f0a1b2c3d4e5f601234568",
                     "description", "Thanks\x01\x1f", "userId", "admin-1", "internal", 0, "__v", 3, "createdAt",
                     "2024-03-12T10:00:00.000Z", "updatedAt", "2024-03-12T10:05:00.000Z");
}

static json_t *seed_data(int kind) {
    switch (kind) {
    case 0:
        return NULL;
    case 1:
        return json_array();
    case 2:
        return json_pack("[o, o]", seed_ticket("65f0a1b2c3d4e5f601234567", "Refund"),
                         seed_ticket("65f0a1b2c3d4e5f601234569", "Emoji \xf0\x9f\x8e\x89 and \\u0041"));
    default:
        return seed_ticket("65f0a1b2c3d4e5f601234567", "One");
    }
}

static void test_worker_replies_pass_through(void **state) {
    (void)state;
    static const char *const CURSORS[] = {NULL,
                                          "",
                                          "eyJ0IjoiMjAyNCJ9_-",
                                          "a\"b\\c/d",
                                          "tab\tnl\n\x01",
                                          "caf\xc3\xa9",
                                          "\xe2\x80\xa8",
                                          "\xf0\x9f\x98\x80",
                                          "\x7f"};
    static const char *const ETAGS[] = {NULL,
                                        "",
                                        "\"3\"",
                                        "W/\"12\"",
                                        "\"\xc3\xa9\"",
                                        "\"123456789012345678\"",
                                        "\"12345678901234567890a\"",
                                        "\"12345678901234567890ab\"",
                                        "\"1234567890123456789012345\""};
    static const int STATUSES[] = {200, 201, 404, 500};
    int passed = 0, total = 0;
    for (size_t c = 0; c < sizeof CURSORS / sizeof *CURSORS; c++)
        for (size_t e = 0; e < sizeof ETAGS / sizeof *ETAGS; e++)
            for (int d = 0; d < 4; d++)
                for (size_t s = 0; s < sizeof STATUSES / sizeof *STATUSES; s++) {
                    char *reply = worker_reply(STATUSES[s], CURSORS[c], ETAGS[e], seed_data(d));
                    bool is_fast = compare_text(reply);
                    bool is_meta = CURSORS[c] != NULL || ETAGS[e] != NULL;
                    /* Only an ETag longer than the entry keeps (the parsing path cuts it) is declined. */
                    bool fits = ETAGS[e] == NULL || strlen(ETAGS[e]) < sizeof((gw_pending_entry *)0)->etag;
                    if (is_fast != fits) fail_msg("%s: %s", is_fast ? "passed" : "declined", reply);
                    if (!is_meta) assert_true(compare(reply, strlen(reply), false));
                    passed += is_fast;
                    total++;
                    free(reply);
                }
    assert_true(passed > total / 2);
}

static void test_odd_replies_agree_or_are_declined(void **state) {
    (void)state;
    static const struct {
        const char *reply;
        bool is_fast;
    } CASES[] = {
        /* Valid escapes workers do not write: decoded as jansson does. */
        {"{\"version\":1,\"status\":200,\"page\":{\"next\":\"\\u0041\\/b\"},\"success\":true,\"message\":\"m\"}", 1},
        {"{\"version\":1,\"status\":200,\"page\":{\"next\":\"\\uD83D\\ude00\"},\"success\":true,\"message\":\"m\"}", 1},
        {"{\"version\":1,\"status\":200,\"etag\":\"\\\"\\u00e9\\\"\",\"success\":true,\"message\":\"m\"}", 1},
        {"{\"version\":1,\"status\":200,\"page\":{\"next\":\"\"},\"etag\":\"\",\"success\":false,\"message\":\"m\"}",
         1},
        {"{\"version\":1,\"status\":200,\"success\":true,\"message\":\"m \\\"etag\\\": \\\"page\\\":\"}", 1},
        /* Shapes the scanner leaves to the parser. */
        {"{\"version\":1,\"status\":200,\"success\":true,\"message\":\"m\",\"page\":{\"next\":\"x\"}}", 0},
        {"{\"version\":1,\"status\":200,\"success\":true,\"message\":\"m\",\"etag\":\"x\"}", 0},
        {"{\"version\":1,\"status\":200,\"success\":true,\"message\":\"m\",\"data\":{\"etag\":\"x\"}}", 0},
        {"{\"version\":1,\"status\":200,\"page\":{\"next\":\"a\",\"x\":1},\"success\":true,\"message\":\"m\"}", 0},
        {"{\"version\":1,\"status\":200,\"page\":{\"next\":null},\"success\":true,\"message\":\"m\"}", 0},
        {"{\"version\":1,\"status\":200,\"page\":{},\"success\":true,\"message\":\"m\"}", 0},
        {"{\"version\":1,\"status\":200,\"page\":null,\"success\":true,\"message\":\"m\"}", 0},
        {"{\"version\":1,\"status\":200,\"etag\":null,\"success\":true,\"message\":\"m\"}", 0},
        {"{\"version\":1,\"status\":200,\"etag\":7,\"success\":true,\"message\":\"m\"}", 0},
        {"{\"version\":1,\"status\":200,\"etag\":\"a\",\"page\":{\"next\":\"b\"},\"success\":true,\"message\":\"m\"}",
         0},
        {"{\"version\":1,\"status\":200,\"page\":{\"next\":\"a\"},\"page\":{\"next\":\"b\"},\"success\":true,"
         "\"message\":\"m\"}",
         0},
        {"{\"version\":1, \"status\":200,\"success\":true,\"message\":\"m\"}", 0},
        {"{\"version\":1,\"status\":200,\"page\": {\"next\":\"a\"},\"success\":true,\"message\":\"m\"}", 0},
        {"{\"version\":1,\"status\":200,\"page\":{\"next\":\"a\"} ,\"success\":true,\"message\":\"m\"}", 0},
        {"{\"status\":200,\"version\":1,\"success\":true,\"message\":\"m\"}", 0},
        /* What jansson refuses: declined here, 502 there. */
        {"{\"version\":1,\"status\":200,\"page\":{\"next\":\"\\uD83D\"},\"success\":true,\"message\":\"m\"}", 0},
        {"{\"version\":1,\"status\":200,\"page\":{\"next\":\"\\uDE00x\"},\"success\":true,\"message\":\"m\"}", 0},
        {"{\"version\":1,\"status\":200,\"page\":{\"next\":\"\\u0000\"},\"success\":true,\"message\":\"m\"}", 0},
        {"{\"version\":1,\"status\":200,\"page\":{\"next\":\"\\u12\"},\"success\":true,\"message\":\"m\"}", 0},
        {"{\"version\":1,\"status\":200,\"page\":{\"next\":\"\\u12G4\"},\"success\":true,\"message\":\"m\"}", 0},
        {"{\"version\":1,\"status\":200,\"page\":{\"next\":\"\\x\"},\"success\":true,\"message\":\"m\"}", 0},
        {"{\"version\":1,\"status\":200,\"page\":{\"next\":\"\\u\x10\x11\x12\x13\"},\"success\":true,\"message\":"
         "\"m\"}",
         0},
        {"{\"version\":1,\"status\":200,\"page\":{\"next\":\"\xff\"},\"success\":true,\"message\":\"m\"}", 0},
        {"{\"version\":1,\"status\":200,\"page\":{\"next\":\"\xc0\xaf\"},\"success\":true,\"message\":\"m\"}", 0},
        {"{\"version\":1,\"status\":200,\"page\":{\"next\":\"\xed\xa0\x80\"},\"success\":true,\"message\":\"m\"}", 0},
        {"{\"version\":1,\"status\":200,\"page\":{\"next\":\"\xc3\"},\"success\":true,\"message\":\"m\"}", 0},
        {"{\"version\":1,\"status\":200,\"etag\":\"a\tb\",\"success\":true,\"message\":\"m\"}", 0},
        {"{\"version\":1,\"status\":200,\"page\":{\"next\":\"abc}", 0},
        {"{\"version\":1,\"status\":200,\"page\":{\"next\":\"abc\\", 0},
        {"{\"version\":1,\"status\":200,\"etag\":\"abc\\\"}", 0},
        {"{\"version\":1,\"status\":200,\"success\"}", 0},
        {"{\"version\":1,\"status\":200,}", 0},
    };
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++)
        if (compare_text(CASES[i].reply) != CASES[i].is_fast)
            fail_msg("case %zu: expected %s: %s", i, CASES[i].is_fast ? "pass-through" : "parsing", CASES[i].reply);
    /* Without an entry to take them, page and etag stay in the parsed body. */
    assert_false(compare("{\"version\":1,\"status\":200,\"page\":{\"next\":\"a\"},\"success\":true,\"message\":\"m\"}",
                         76, false));
    assert_false(compare("{\"version\":1,\"status\":200,\"etag\":\"\",\"success\":true,\"message\":\"m\"}", 63, false));
}

/* ---- random strings, written by jansson and escaped by hand ---- */

static unsigned long random_code_point(unsigned int *seed) {
    static const unsigned long SPECIAL[] = {'"', '\\', '/', 0x7f, 0x2028, 0xfeff, 0xfffd};
    switch (rand_r(seed) % 6) {
    case 0:
        return 0x20 + (unsigned long)(rand_r(seed) % 0x5f);
    case 1:
        return 1 + (unsigned long)(rand_r(seed) % 0x1f);
    case 2:
        return SPECIAL[rand_r(seed) % (int)(sizeof SPECIAL / sizeof *SPECIAL)];
    case 3:
        return 0x80 + (unsigned long)(rand_r(seed) % 0x780);
    case 4: {
        unsigned long code = 0x800 + (unsigned long)(rand_r(seed) % 0xf800);
        return code >= 0xd800 && code <= 0xdfff ? 0x4e2d : code;
    }
    default:
        return 0x10000 + (unsigned long)(rand_r(seed) % 0x100000);
    }
}

static size_t utf8(unsigned long code, char *out) {
    if (code < 0x80) return (size_t)(out[0] = (char)code, 1);
    if (code < 0x800) return (size_t)(out[0] = (char)(0xc0 | code >> 6), out[1] = (char)(0x80 | (code & 0x3f)), 2);
    if (code < 0x10000)
        return (size_t)(out[0] = (char)(0xe0 | code >> 12), out[1] = (char)(0x80 | ((code >> 6) & 0x3f)),
                        out[2] = (char)(0x80 | (code & 0x3f)), 3);
    return (size_t)(out[0] = (char)(0xf0 | code >> 18), out[1] = (char)(0x80 | ((code >> 12) & 0x3f)),
                    out[2] = (char)(0x80 | ((code >> 6) & 0x3f)), out[3] = (char)(0x80 | (code & 0x3f)), 4);
}

/* code as JSON, at random raw or as \u escapes (upper or lower case hex). */
static size_t escaped(unsigned long code, unsigned int *seed, char *out) {
    bool is_raw = code >= 0x20 && code != '"' && code != '\\' && rand_r(seed) % 2 == 0;
    if (is_raw) return utf8(code, out);
    const char *format = rand_r(seed) % 2 ? "\\u%04lX" : "\\u%04lx";
    if (code < 0x10000) return (size_t)sprintf(out, format, code);
    unsigned long v = code - 0x10000;
    size_t n = (size_t)sprintf(out, format, 0xd800 + (v >> 10));
    return n + (size_t)sprintf(out + n, format, 0xdc00 + (v & 0x3ff));
}

static void test_random_strings_agree(void **state) {
    (void)state;
    unsigned int seed = 11;
    for (int round = 0; round < 3000; round++) {
        char next[64 * 4 + 1], tag[4 * 4 + 1], next_json[64 * 12 + 1], tag_json[4 * 12 + 1];
        size_t n = 0, t = 0, nj = 0, tj = 0;
        int next_chars = rand_r(&seed) % 64, tag_chars = rand_r(&seed) % 5;
        for (int i = 0; i < next_chars; i++) {
            unsigned long code = random_code_point(&seed);
            n += utf8(code, next + n);
            nj += escaped(code, &seed, next_json + nj);
        }
        for (int i = 0; i < tag_chars; i++) {
            unsigned long code = random_code_point(&seed);
            t += utf8(code, tag + t);
            tj += escaped(code, &seed, tag_json + tj);
        }
        next[n] = tag[t] = next_json[nj] = tag_json[tj] = '\0';
        char *reply = worker_reply(200, next, tag, json_array());
        if (!compare_text(reply)) fail_msg("declined %s", reply);
        free(reply);
        char hand[2048];
        snprintf(hand, sizeof hand,
                 "{\"version\":1,\"status\":200,\"page\":{\"next\":\"%s\"},\"etag\":\"%s\",\"success\":true,"
                 "\"message\":\"m\",\"data\":[]}",
                 next_json, tag_json);
        if (!compare_text(hand)) fail_msg("declined %s", hand);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_replies_pass_through),
        cmocka_unit_test(test_odd_replies_agree_or_are_declined),
        cmocka_unit_test(test_random_strings_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
