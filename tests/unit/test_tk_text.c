/* tk_text: UTF-8 rules and the field messages of docs/contract.md. */
#include "test_support.h"

#include <stdlib.h>
#include <string.h>

#include "tk_text.h"

#define ERR_LEN 256

static void test_utf8_length_counts_code_points(void **state) {
    (void)state;
    assert_int_equal(tk_utf8_length("", 0), 0);
    assert_int_equal(tk_utf8_length("abc", 3), 3);
    assert_int_equal(tk_utf8_length("\xc3\xa9", 2), 1);         /* é */
    assert_int_equal(tk_utf8_length("\xe2\x82\xac", 3), 1);     /* € */
    assert_int_equal(tk_utf8_length("\xf0\x9f\x98\x80", 4), 1); /* 😀 */
    assert_int_equal(tk_utf8_length("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z", 11), 5);
    /* e + combining acute accent: two code points, one glyph. */
    assert_int_equal(tk_utf8_length("e\xcc\x81", 3), 2);
    /* Only the first len bytes count. */
    assert_int_equal(tk_utf8_length("abcdef", 2), 2);
}

typedef struct {
    const char *name;
    const char *bytes;
    size_t len;
    bool is_valid;
} utf8_case;

#define CASE(name, literal, valid) \
    { name, literal, sizeof literal - 1, valid }

static const utf8_case UTF8_CASES[] = {
    CASE("empty", "", true),
    CASE("ascii", "Account Issue", true),
    CASE("2-byte U+00E9", "\xc3\xa9", true),
    CASE("smallest 2-byte U+0080", "\xc2\x80", true),
    CASE("largest 2-byte U+07FF", "\xdf\xbf", true),
    CASE("smallest 3-byte U+0800", "\xe0\xa0\x80", true),
    CASE("U+D7FF just before surrogates", "\xed\x9f\xbf", true),
    CASE("U+E000 just after surrogates", "\xee\x80\x80", true),
    CASE("U+FFFF", "\xef\xbf\xbf", true),
    CASE("U+FEFF byte order mark", "\xef\xbb\xbf", true),
    CASE("smallest 4-byte U+10000", "\xf0\x90\x80\x80", true),
    CASE("largest code point U+10FFFF", "\xf4\x8f\xbf\xbf", true),
    CASE("mixed text", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80!", true),
    /* Overlong forms. */
    CASE("overlong NUL C0 80", "\xc0\x80", false),
    CASE("overlong '/' C0 AF", "\xc0\xaf", false),
    CASE("overlong C1 BF", "\xc1\xbf", false),
    CASE("overlong 3-byte NUL", "\xe0\x80\x80", false),
    CASE("overlong 3-byte U+07FF", "\xe0\x9f\xbf", false),
    CASE("overlong 4-byte U+FFFF", "\xf0\x8f\xbf\xbf", false),
    CASE("overlong 4-byte NUL", "\xf0\x80\x80\x80", false),
    /* Surrogates (UTF-16 halves are not characters). */
    CASE("high surrogate U+D800", "\xed\xa0\x80", false),
    CASE("low surrogate U+DFFF", "\xed\xbf\xbf", false),
    CASE("CESU-8 surrogate pair", "\xed\xa0\xbd\xed\xb8\x80", false),
    /* Past U+10FFFF and bytes that never start a sequence. */
    CASE("U+110000", "\xf4\x90\x80\x80", false),
    CASE("F5 lead", "\xf5\x80\x80\x80", false),
    CASE("F7 BF BF BF", "\xf7\xbf\xbf\xbf", false),
    CASE("5-byte form", "\xf8\x88\x80\x80\x80", false),
    CASE("6-byte form", "\xfc\x84\x80\x80\x80\x80", false),
    CASE("FE", "\xfe", false),
    CASE("FF", "\xff", false),
    /* Continuation bytes out of place. */
    CASE("lone continuation 80", "\x80", false),
    CASE("lone continuation BF after ascii", "a\xbf", false),
    CASE("extra continuation", "\xc3\xa9\xa9", false),
    /* Truncated sequences, at the end and in the middle. */
    CASE("2-byte lead alone", "\xc3", false),
    CASE("3-byte missing 1", "\xe2\x82", false),
    CASE("4-byte missing 1", "\xf0\x9f\x98", false),
    CASE("4-byte missing 3", "\xf0", false),
    CASE("2-byte lead then ascii",
         "\xc3"
         "A",
         false),
    CASE("3-byte cut by ascii",
         "\xe2\x82"
         "A",
         false),
    CASE("latin-1 e-acute", "caf\xe9", false),
    /* NUL: valid UTF-8 but never allowed in our text. */
    CASE("NUL alone", "\0", false),
    CASE("NUL inside", "a\0b", false),
    CASE("NUL at the end", "ab\0", false),
};

static void test_utf8_is_valid(void **state) {
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof UTF8_CASES / sizeof UTF8_CASES[0]; i++) {
        const utf8_case *c = &UTF8_CASES[i];
        bool got = tk_utf8_is_valid(c->bytes, c->len);
        if (got != c->is_valid) {
            print_error("%s: expected %s, got %s\n", c->name, c->is_valid ? "valid" : "invalid",
                        got ? "valid" : "invalid");
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void test_utf8_is_valid_honours_len(void **state) {
    (void)state;
    /* A sequence cut by len is truncated even when the buffer goes on. */
    assert_false(tk_utf8_is_valid("\xc3\xa9", 1));
    assert_false(tk_utf8_is_valid("\xf0\x9f\x98\x80", 3));
    assert_true(tk_utf8_is_valid("ab\xff", 2));
    assert_true(tk_utf8_is_valid("\xc3\xa9\xff", 2));
}

/* ---- tk_text_member ---- */

static int member_check(json_t *object, const char *name, size_t max_chars, bool is_required, const char **out,
                        char *err) {
    return tk_text_member(object, name, name, max_chars, is_required, out, err, ERR_LEN);
}

static void assert_member_error(const char *json, const char *name, size_t max_chars, bool is_required,
                                const char *expected) {
    json_error_t error;
    json_t *object = json_loads(json, 0, &error);
    if (object == NULL) fail_msg("bad test JSON %s: %s", json, error.text);
    char err[ERR_LEN] = "";
    const char *out = (const char *)1;
    assert_int_equal(member_check(object, name, max_chars, is_required, &out, err), -1);
    assert_string_equal(err, expected);
    json_decref(object);
}

static void test_text_member_required_messages(void **state) {
    (void)state;
    assert_member_error("{}", "subject", 200, true, "Field 'subject' is required");
    assert_member_error("{\"subject\":null}", "subject", 200, true, "Field 'subject' is required");
    assert_member_error("{\"Subject\":\"x\"}", "subject", 200, true, "Field 'subject' is required");
    assert_member_error("{\"subject\":1}", "subject", 200, true, "Field 'subject' must be a string");
    assert_member_error("{\"subject\":1.5}", "subject", 200, true, "Field 'subject' must be a string");
    assert_member_error("{\"subject\":true}", "subject", 200, true, "Field 'subject' must be a string");
    assert_member_error("{\"subject\":false}", "subject", 200, true, "Field 'subject' must be a string");
    assert_member_error("{\"subject\":[\"x\"]}", "subject", 200, true, "Field 'subject' must be a string");
    assert_member_error("{\"subject\":{}}", "subject", 200, true, "Field 'subject' must be a string");
    assert_member_error("{\"subject\":\"\"}", "subject", 200, true, "Field 'subject' must not be empty");
    assert_member_error("{\"subject\":\" \"}", "subject", 200, true, "Field 'subject' must not be empty");
    assert_member_error("{\"subject\":\" \\t\\r\\n\\f\\u000b \"}", "subject", 200, true,
                        "Field 'subject' must not be empty");
    /* Unicode white space is blank too: no-break space, ideographic space. */
    assert_member_error("{\"subject\":\"\u00a0\u3000\u2003\"}", "subject", 200, true,
                        "Field 'subject' must not be empty");
    /* Type is checked even when the member is optional. */
    assert_member_error("{\"priority\":7}", "priority", 16, false, "Field 'priority' must be a string");
    assert_member_error("{\"priority\":\"\"}", "priority", 16, false, "Field 'priority' must not be empty");
}

static void test_text_member_uses_the_label(void **state) {
    (void)state;
    json_t *object = json_pack("{s:i}", "subject", 3);
    char err[ERR_LEN];
    const char *out;
    assert_int_equal(tk_text_member(object, "subject", "ticket.subject", 200, true, &out, err, sizeof err), -1);
    assert_string_equal(err, "Field 'ticket.subject' must be a string");
    assert_int_equal(tk_text_member(object, "category", "ticket.category", 100, true, &out, err, sizeof err), -1);
    assert_string_equal(err, "Field 'ticket.category' is required");
    json_decref(object);
}

static void test_text_member_optional_absent_or_null(void **state) {
    (void)state;
    char err[ERR_LEN] = "";
    const char *out = "sentinel";
    json_t *object = json_object();
    assert_int_equal(member_check(object, "priority", 16, false, &out, err), 0);
    assert_null(out);
    json_object_set_new(object, "priority", json_null());
    out = "sentinel";
    assert_int_equal(member_check(object, "priority", 16, false, &out, err), 0);
    assert_null(out);
    json_decref(object);
}

static void test_text_member_returns_text_as_sent(void **state) {
    (void)state;
    char err[ERR_LEN];
    const char *out = NULL;
    json_t *object = json_pack("{s:s}", "subject", "  Account Issue \n");
    assert_int_equal(member_check(object, "subject", 200, true, &out, err), 0);
    assert_string_equal(out, "  Account Issue \n"); /* no trimming */
    /* Borrowed from the object, not a copy. */
    assert_ptr_equal(out, json_string_value(json_object_get(object, "subject")));
    json_decref(object);
}

static void assert_limit(const char *unit, size_t count, size_t max_chars, bool is_ok) {
    char *text = tu_repeat(unit, count);
    json_t *object = json_pack("{s:s}", "subject", text);
    assert_non_null(object);
    char err[ERR_LEN] = "";
    const char *out = NULL;
    int rc = member_check(object, "subject", max_chars, true, &out, err);
    if (is_ok) {
        if (rc != 0) fail_msg("%zu x '%s' (max %zu) refused: %s", count, unit, max_chars, err);
        assert_string_equal(out, text);
    } else {
        char *expected = tu_format("Field 'subject' must be at most %zu characters", max_chars);
        assert_int_equal(rc, -1);
        assert_string_equal(err, expected);
        free(expected);
    }
    json_decref(object);
    free(text);
}

static void test_text_member_counts_code_points_not_bytes(void **state) {
    (void)state;
    assert_limit("a", 200, 200, true);
    assert_limit("a", 201, 200, false);
    assert_limit("\xc3\xa9", 200, 200, true); /* 400 bytes, 200 characters */
    assert_limit("\xc3\xa9", 201, 200, false);
    assert_limit("\xe2\x82\xac", 200, 200, true);     /* 600 bytes */
    assert_limit("\xf0\x9f\x98\x80", 200, 200, true); /* 800 bytes */
    assert_limit("\xf0\x9f\x98\x80", 201, 200, false);
    assert_limit("\xf0\x9f\x98\x80", 10000, 10000, true);
    assert_limit("d", 10001, 10000, false);
    assert_limit("x", 1, 1, true);
    assert_limit("x", 2, 1, false);
}

static void test_text_member_small_error_buffer(void **state) {
    (void)state;
    json_t *object = json_object();
    char err[8];
    memset(err, 'X', sizeof err);
    const char *out;
    assert_int_equal(tk_text_member(object, "subject", "subject", 200, true, &out, err, sizeof err), -1);
    assert_string_equal(err, "Field '"); /* cut, still terminated */
    json_decref(object);
}

/* ---- tk_only_members ---- */

static const char *const CREATE_MEMBERS[] = {"category", "subject", "description", "priority", NULL};

static void test_only_members(void **state) {
    (void)state;
    char err[ERR_LEN] = "";
    json_t *object = json_pack("{s:s, s:s}", "subject", "s", "category", "c");
    assert_int_equal(tk_only_members(object, CREATE_MEMBERS, "", err, sizeof err), 0);
    json_t *empty = json_object();
    assert_int_equal(tk_only_members(empty, CREATE_MEMBERS, "", err, sizeof err), 0);

    json_object_set_new(object, "foo", json_true());
    assert_int_equal(tk_only_members(object, CREATE_MEMBERS, "", err, sizeof err), -1);
    assert_string_equal(err, "Unknown field 'foo'");
    assert_int_equal(tk_only_members(object, CREATE_MEMBERS, "ticket.", err, sizeof err), -1);
    assert_string_equal(err, "Unknown field 'ticket.foo'");

    /* Names compare exactly: case and prefixes count. */
    json_t *cased = json_pack("{s:s}", "Subject", "s");
    assert_int_equal(tk_only_members(cased, CREATE_MEMBERS, "", err, sizeof err), -1);
    assert_string_equal(err, "Unknown field 'Subject'");
    json_t *prefix = json_pack("{s:s}", "sub", "s");
    assert_int_equal(tk_only_members(prefix, CREATE_MEMBERS, "", err, sizeof err), -1);
    assert_string_equal(err, "Unknown field 'sub'");

    /* Nothing allowed: any member is unknown. */
    const char *const none[] = {NULL};
    assert_int_equal(tk_only_members(empty, none, "", err, sizeof err), 0);
    assert_int_equal(tk_only_members(prefix, none, "reply.", err, sizeof err), -1);
    assert_string_equal(err, "Unknown field 'reply.sub'");

    json_decref(prefix);
    json_decref(cased);
    json_decref(empty);
    json_decref(object);
}

static void test_only_members_cuts_long_keys(void **state) {
    (void)state;
    char *key = tu_repeat("k", 1000);
    json_t *object = json_object();
    json_object_set_new(object, key, json_null());
    char err[ERR_LEN] = "";
    assert_int_equal(tk_only_members(object, CREATE_MEMBERS, "", err, sizeof err), -1);
    char *expected = tu_format("Unknown field '%.64s'", key);
    assert_string_equal(err, expected);
    free(expected);
    json_decref(object);
    free(key);
}

/* A 70-byte key of 3-byte characters: cut at 64 bytes it would end inside
 * the 22nd character, and the message would not be UTF-8. */
#define EURO "\xe2\x82\xac"
#define EURO_23 \
    EURO EURO EURO EURO EURO EURO EURO EURO EURO EURO EURO EURO EURO EURO EURO EURO EURO EURO EURO EURO EURO EURO EURO

static void test_only_members_cuts_between_characters(void **state) {
    (void)state;
    static const char key[] = EURO_23 "x";
    assert_int_equal(sizeof key - 1, 70);
    json_t *object = json_object();
    assert_int_equal(json_object_set_new(object, key, json_null()), 0);
    char err[ERR_LEN] = "";
    assert_int_equal(tk_only_members(object, CREATE_MEMBERS, "ticket.", err, sizeof err), -1);
    char *expected = tu_format("Unknown field 'ticket.%.63s'", key); /* 21 whole characters */
    assert_string_equal(err, expected);
    assert_true(tk_utf8_is_valid(err, strlen(err)));
    json_t *message = json_string(err); /* what failed before: jansson refuses broken UTF-8 */
    assert_non_null(message);
    json_decref(message);
    free(expected);
    json_decref(object);
}

static void test_utf8_prefix_len(void **state) {
    (void)state;
    static const char mixed[] = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z"; /* a é € 😀 z: 1+2+3+4+1 */
    static const size_t boundaries[] = {0, 1, 3, 6, 10, 11};
    for (size_t max = 0; max <= 12; max++) {
        size_t expected = 0;
        for (size_t i = 0; i < sizeof boundaries / sizeof boundaries[0]; i++)
            if (boundaries[i] <= max) expected = boundaries[i];
        size_t got = tk_utf8_prefix_len(mixed, 11, max);
        if (got != expected) fail_msg("max %zu: got %zu, expected %zu", max, got, expected);
        assert_true(tk_utf8_is_valid(mixed, got));
    }
    /* The 70-byte key: 64 bytes hold 21 whole characters (63 bytes). */
    assert_int_equal(tk_utf8_prefix_len(EURO_23 "x", 70, 64), 63);
    assert_int_equal(tk_utf8_prefix_len(EURO_23 "x", 70, 70), 70);
    assert_int_equal(tk_utf8_prefix_len(EURO_23 "x", 70, 1000), 70);
    /* A text already cut inside its last character loses that tail. */
    assert_int_equal(tk_utf8_prefix_len("ab\xe2\x82", 4, 4), 2);
    assert_int_equal(tk_utf8_prefix_len("ab\xf0\x9f\x98", 5, 100), 2);
    assert_int_equal(tk_utf8_prefix_len("ab\xc3", 3, 3), 2);
    assert_int_equal(tk_utf8_prefix_len("", 0, 10), 0);
    assert_int_equal(tk_utf8_prefix_len("abc", 3, 0), 0);
    /* Not UTF-8 (stray continuation bytes): cut at the limit, never past it. */
    assert_true(tk_utf8_prefix_len("\x80\x80\x80\x80\x80", 5, 4) <= 4);
    assert_true(tk_utf8_prefix_len("\xff\xfe", 2, 2) <= 2);
}

static void test_priority_is_valid(void **state) {
    (void)state;
    assert_true(tk_priority_is_valid("low"));
    assert_true(tk_priority_is_valid("medium"));
    assert_true(tk_priority_is_valid("high"));
    assert_false(tk_priority_is_valid(""));
    assert_false(tk_priority_is_valid("Low"));
    assert_false(tk_priority_is_valid("HIGH"));
    assert_false(tk_priority_is_valid("low "));
    assert_true(tk_priority_is_valid("urgent"));
    assert_false(tk_priority_is_valid("critical"));
    assert_false(tk_priority_is_valid("lo"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_length_counts_code_points),
        cmocka_unit_test(test_utf8_is_valid),
        cmocka_unit_test(test_utf8_is_valid_honours_len),
        cmocka_unit_test(test_text_member_required_messages),
        cmocka_unit_test(test_text_member_uses_the_label),
        cmocka_unit_test(test_text_member_optional_absent_or_null),
        cmocka_unit_test(test_text_member_returns_text_as_sent),
        cmocka_unit_test(test_text_member_counts_code_points_not_bytes),
        cmocka_unit_test(test_text_member_small_error_buffer),
        cmocka_unit_test(test_only_members),
        cmocka_unit_test(test_only_members_cuts_long_keys),
        cmocka_unit_test(test_only_members_cuts_between_characters),
        cmocka_unit_test(test_utf8_prefix_len),
        cmocka_unit_test(test_priority_is_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
