/* tk_sign: key syntax, canonical bytes, known answers, tampering, rotation. */
#include "test_support.h"

#include <stdlib.h>
#include <string.h>

#include "tk_sign.h"

/* 32 bytes of 0x0b. */
#define KEY_0B "CwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCws="
/* HMAC-SHA256 of the canonical bytes of known_fields() under 32 x 0x0b,
 * computed independently with Python's hmac (tests/e2e/helpers/signing.py). */
#define KNOWN_SIGNATURE "3e849599114038265ca568d82afd12d7b061f8eb7d81b589a2ea867198fd2674"

static tk_sign_view view(const char *text) { return (tk_sign_view){text, text != NULL ? strlen(text) : 0}; }

static tk_sign_fields known_fields(void) {
    return (tk_sign_fields){view("k1"), view("c"), view("ticket.replies"), view("3"), view(NULL), view("{}")};
}

static void parse_ok(tk_sign_keys *keys, const char *text) {
    char err[256] = "";
    if (tk_sign_keys_parse(keys, text, err, sizeof err) != 0) fail_msg("refused '%s': %s", text, err);
}

static void test_known_answer(void **state) {
    (void)state;
    tk_sign_keys keys;
    char hex[TK_SIGN_HEX_LEN + 1];
    parse_ok(&keys, "k1:" KEY_0B ":admin+customer");
    tk_sign_fields fields = known_fields();
    assert_int_equal(tk_sign_compute(&keys.keys[0], &fields, hex), 0);
    assert_string_equal(hex, KNOWN_SIGNATURE);
    assert_true(tk_sign_verify(&keys.keys[0], &fields, KNOWN_SIGNATURE, TK_SIGN_HEX_LEN));
}

/* Length-prefixed, absent distinct from empty: "ticket-sig-v1", "k1",
 * absent, "", absent, absent, "v". */
static void test_canonical_bytes(void **state) {
    (void)state;
    static const unsigned char expected[] = {0,    0,    0,    13,   't',  'i',  'c', 'k', 'e', 't',  '-',
                                             's',  'i',  'g',  '-',  'v',  '1',  0,   0,   0,   2,    'k',
                                             '1',  0xff, 0xff, 0xff, 0xff, 0,    0,   0,   0,   0xff, 0xff,
                                             0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0,   0,   0,   1,    'v'};
    tk_sign_fields fields = {view("k1"), view(NULL), view(""), view(NULL), view(NULL), view("v")};
    size_t len = 0;
    unsigned char *bytes = tk_sign_canonical(&fields, &len);
    assert_non_null(bytes);
    assert_int_equal(len, sizeof expected);
    assert_memory_equal(bytes, expected, len);
    free(bytes);
}

/* Moving bytes between fields changes the signature: no two field lists share an encoding. */
static void test_fields_do_not_run_together(void **state) {
    (void)state;
    tk_sign_keys keys;
    char a[TK_SIGN_HEX_LEN + 1], b[TK_SIGN_HEX_LEN + 1];
    parse_ok(&keys, "k1:" KEY_0B ":customer");
    tk_sign_fields one = {view("k1"), view("ab"), view("c"), view(NULL), view(NULL), view("{}")};
    tk_sign_fields two = {view("k1"), view("a"), view("bc"), view(NULL), view(NULL), view("{}")};
    tk_sign_fields empty = {view("k1"), view("ab"), view("c"), view(""), view(NULL), view("{}")};
    assert_int_equal(tk_sign_compute(&keys.keys[0], &one, a), 0);
    assert_int_equal(tk_sign_compute(&keys.keys[0], &two, b), 0);
    assert_string_not_equal(a, b);
    assert_int_equal(tk_sign_compute(&keys.keys[0], &empty, b), 0);
    assert_string_not_equal(a, b);
}

static void test_tampering_fails(void **state) {
    (void)state;
    tk_sign_keys keys;
    parse_ok(&keys, "k1:" KEY_0B ":admin");
    tk_sign_fields fields = known_fields();
    fields.value = view("{ }");
    assert_false(tk_sign_verify(&keys.keys[0], &fields, KNOWN_SIGNATURE, TK_SIGN_HEX_LEN));
    fields = known_fields();
    fields.reply_partition = view("2");
    assert_false(tk_sign_verify(&keys.keys[0], &fields, KNOWN_SIGNATURE, TK_SIGN_HEX_LEN));
    fields = known_fields();
    fields.deadline = view("99");
    assert_false(tk_sign_verify(&keys.keys[0], &fields, KNOWN_SIGNATURE, TK_SIGN_HEX_LEN));
    fields = known_fields();
    assert_false(tk_sign_verify(&keys.keys[0], &fields, KNOWN_SIGNATURE, TK_SIGN_HEX_LEN - 1));
    assert_false(tk_sign_verify(&keys.keys[0], &fields, NULL, 0));
    char upper[] = KNOWN_SIGNATURE;
    for (char *c = upper; *c != '\0'; c++)
        if (*c >= 'a' && *c <= 'f') *c = (char)(*c - 'a' + 'A');
    assert_true(tk_sign_verify(&keys.keys[0], &fields, upper, TK_SIGN_HEX_LEN));
    upper[0] = 'g';
    assert_false(tk_sign_verify(&keys.keys[0], &fields, upper, TK_SIGN_HEX_LEN));
}

/* Two keys live at once: a message signed with either verifies; dropping
 * the old key from the list makes its messages unknown. */
static void test_rotation(void **state) {
    (void)state;
    tk_sign_keys both, new_only;
    char old_hex[TK_SIGN_HEX_LEN + 1];
    parse_ok(&both, " new:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=:admin+customer ,\n"
                    "old:" KEY_0B ":customer+admin\n");
    parse_ok(&new_only, "new:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=:admin+customer");
    assert_int_equal(both.count, 2);
    const tk_sign_key *old = tk_sign_keys_find(&both, "old", 3);
    const tk_sign_key *new_key = tk_sign_keys_find(&both, "new", 3);
    assert_non_null(old);
    assert_non_null(new_key);
    assert_int_equal(old->roles, TK_ROLE_ADMIN | TK_ROLE_CUSTOMER);
    tk_sign_fields fields = known_fields();
    fields.key_id = view("old");
    assert_int_equal(tk_sign_compute(old, &fields, old_hex), 0);
    assert_true(tk_sign_verify(tk_sign_keys_find(&both, "old", 3), &fields, old_hex, TK_SIGN_HEX_LEN));
    assert_false(tk_sign_verify(new_key, &fields, old_hex, TK_SIGN_HEX_LEN));
    assert_null(tk_sign_keys_find(&new_only, "old", 3));
    assert_null(tk_sign_keys_find(&both, "ol", 2));
}

static void test_bad_key_lists_are_refused(void **state) {
    (void)state;
    const char *bad[] = {
        "",
        " , ",
        "k1",
        "k1:" KEY_0B,
        "k1:" KEY_0B ":",
        "k1:" KEY_0B ":root",
        "k1:" KEY_0B ":admin+",
        "k1:" KEY_0B ":admin++customer",
        "k 1:" KEY_0B ":admin",
        ":" KEY_0B ":admin",
        "k1:c2hvcnQ=:admin",                                      /* 5 bytes */
        "k1:CwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCws:admin",   /* unpadded */
        "k1:CwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCws*LCws=:admin", /* not base64 */
        "k1:" KEY_0B ":admin,k1:" KEY_0B ":customer",
        "k1:" KEY_0B ":admin:extra",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tk_sign_keys keys;
        char err[256] = "";
        if (tk_sign_keys_parse(&keys, bad[i], err, sizeof err) == 0) fail_msg("accepted '%s'", bad[i]);
        assert_non_null(strstr(err, "COMMAND_KEYS"));
        assert_null(strstr(err, "CwsLCwsL")); /* the secret never appears in a message */
    }
}

static void test_roles(void **state) {
    (void)state;
    tk_sign_keys keys;
    parse_ok(&keys, "billing:" KEY_0B ":customer,ops:" KEY_0B ":admin");
    assert_int_equal(keys.keys[0].roles, TK_ROLE_CUSTOMER);
    assert_int_equal(keys.keys[1].roles, TK_ROLE_ADMIN);
    assert_int_equal(tk_sign_role_bit("admin", 5), TK_ROLE_ADMIN);
    assert_int_equal(tk_sign_role_bit("customer", 8), TK_ROLE_CUSTOMER);
    assert_int_equal(tk_sign_role_bit("admins", 6), 0);
    assert_int_equal(tk_sign_role_bit("", 0), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answer),
        cmocka_unit_test(test_canonical_bytes),
        cmocka_unit_test(test_fields_do_not_run_together),
        cmocka_unit_test(test_tampering_fails),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_bad_key_lists_are_refused),
        cmocka_unit_test(test_roles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
