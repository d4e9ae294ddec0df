/* tk_list: filter rules, the binding of a cursor to its query, and cursors
 * that refuse any edit or any other query. */
#include "test_support.h"

#include <stdlib.h>
#include <string.h>

#include "tk_list.h"

static json_t *filter_of(const char *text) {
    json_t *filter = json_loads(text, 0, NULL);
    assert_non_null(filter);
    return filter;
}

static uint64_t binding_of(bool is_admin, const char *team, const char *filter_text) {
    json_t *filter = filter_text != NULL ? filter_of(filter_text) : NULL;
    uint64_t binding = tk_list_binding(is_admin, team, filter);
    json_decref(filter);
    return binding;
}

static void test_cursor_round_trip(void **state) {
    (void)state;
    tk_cursor_position position = {1730113200123, "6720b1c8f1c2b3a5e4d90130"}, read;
    char text[TK_CURSOR_LEN + 1];
    uint64_t binding = binding_of(false, "team-a", NULL);
    tk_cursor_encode(&position, binding, text);
    assert_int_equal(strlen(text), TK_CURSOR_LEN);
    for (size_t i = 0; i < TK_CURSOR_LEN; i++)
        assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", text[i]));
    assert_int_equal(tk_cursor_decode(text, strlen(text), binding, &read), 0);
    assert_true(read.created_ms == position.created_ms);
    assert_string_equal(read.id, position.id);

    tk_cursor_position zero = {0, "000000000000000000000000"};
    tk_cursor_encode(&zero, binding, text);
    assert_int_equal(tk_cursor_decode(text, strlen(text), binding, &read), 0);
    assert_true(read.created_ms == 0);
    assert_string_equal(read.id, zero.id);
}

static void test_cursor_refuses_any_edit(void **state) {
    (void)state;
    static const char ALPHABET[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    tk_cursor_position position = {1730113200123, "6720b1c8f1c2b3a5e4d90130"}, read;
    char text[TK_CURSOR_LEN + 1];
    uint64_t binding = binding_of(true, NULL, "{\"status\":[\"open\"]}");
    tk_cursor_encode(&position, binding, text);
    /* Every other character at every place: refused (the last character
     * also has padding bits that must stay zero). */
    int accepted = 0;
    for (size_t i = 0; i < TK_CURSOR_LEN; i++) {
        char original = text[i];
        for (size_t k = 0; ALPHABET[k] != '\0'; k++) {
            if (ALPHABET[k] == original) continue;
            text[i] = ALPHABET[k];
            if (tk_cursor_decode(text, TK_CURSOR_LEN, binding, &read) == 0) accepted++;
        }
        text[i] = original;
    }
    assert_int_equal(accepted, 0);
    assert_int_equal(tk_cursor_decode(text, TK_CURSOR_LEN - 1, binding, &read), -1);
    assert_int_equal(tk_cursor_decode("", 0, binding, &read), -1);
    assert_int_equal(tk_cursor_decode(NULL, 0, binding, &read), -1);
    char padded[TK_CURSOR_LEN + 2];
    snprintf(padded, sizeof padded, "%s=", text);
    assert_int_equal(tk_cursor_decode(padded, strlen(padded), binding, &read), -1);
    char standard[TK_CURSOR_LEN + 1];
    memcpy(standard, text, sizeof standard);
    for (char *c = standard; *c != '\0'; c++) *c = *c == '-' ? '+' : *c == '_' ? '/' : *c;
    if (strcmp(standard, text) != 0) assert_int_equal(tk_cursor_decode(standard, TK_CURSOR_LEN, binding, &read), -1);
}

static void test_cursor_is_bound_to_its_query(void **state) {
    (void)state;
    tk_cursor_position position = {1730113200123, "6720b1c8f1c2b3a5e4d90130"}, read;
    char text[TK_CURSOR_LEN + 1];
    tk_cursor_encode(&position, binding_of(false, "team-a", "{\"status\":[\"open\"]}"), text);
    assert_int_equal(tk_cursor_decode(text, TK_CURSOR_LEN, binding_of(false, "team-a", "{\"status\":[\"open\"]}"),
                                      &read),
                     0);
    assert_int_equal(tk_cursor_decode(text, TK_CURSOR_LEN, binding_of(false, "team-b", "{\"status\":[\"open\"]}"),
                                      &read),
                     -1);
    assert_int_equal(tk_cursor_decode(text, TK_CURSOR_LEN, binding_of(true, NULL, "{\"status\":[\"open\"]}"), &read),
                     -1);
    assert_int_equal(tk_cursor_decode(text, TK_CURSOR_LEN, binding_of(false, "team-a", NULL), &read), -1);
    assert_int_equal(tk_cursor_decode(text, TK_CURSOR_LEN, binding_of(false, "team-a", "{\"status\":[\"closed\"]}"),
                                      &read),
                     -1);
    assert_int_equal(tk_cursor_decode(text, TK_CURSOR_LEN,
                                      binding_of(false, "team-a", "{\"status\":[\"open\"],\"priority\":[\"low\"]}"),
                                      &read),
                     -1);
}

static void test_binding_is_canonical(void **state) {
    (void)state;
    /* Order and repeats of values, and order of members, do not matter. */
    assert_true(binding_of(true, NULL, "{\"status\":[\"open\",\"closed\"],\"creatorId\":\"u\"}") ==
                binding_of(true, NULL, "{\"creatorId\":\"u\",\"status\":[\"closed\",\"open\",\"open\"]}"));
    assert_true(binding_of(true, NULL, "{}") == binding_of(true, NULL, NULL));
    /* Everything else does. */
    assert_true(binding_of(true, NULL, NULL) != binding_of(false, "admin", NULL));
    assert_true(binding_of(false, "a", NULL) != binding_of(false, "b", NULL));
    assert_true(binding_of(true, NULL, "{\"category\":[\"a,b\"]}") !=
                binding_of(true, NULL, "{\"category\":[\"a\",\"b\"]}"));
    assert_true(binding_of(true, NULL, "{\"team\":\"x\"}") != binding_of(true, NULL, "{\"creatorId\":\"x\"}"));
}

static void assert_filter(bool is_admin, const char *filter_text, tk_list_source source, const char *expected) {
    char err[256] = "";
    json_t *filter = filter_of(filter_text);
    int rc = tk_list_filter_check(filter, is_admin, source, err, sizeof err);
    json_decref(filter);
    if (expected == NULL) {
        if (rc != 0) fail_msg("%s refused: %s", filter_text, err);
    } else {
        assert_int_equal(rc, -1);
        assert_string_equal(err, expected);
    }
}

static void test_filter_rules(void **state) {
    (void)state;
    const tk_list_source H = TK_LIST_FROM_HTTP, K = TK_LIST_FROM_KAFKA;
    assert_filter(false, "{}", H, NULL);
    assert_filter(false, "{\"status\":[\"created\",\"open\",\"pending\",\"resolved\",\"closed\"]}", H, NULL);
    assert_filter(false, "{\"priority\":[\"low\",\"medium\",\"high\"],\"category\":[\"Support\"],\"creatorId\":\"u1\"}",
                  H, NULL);
    assert_filter(true, "{\"team\":\"team-a\",\"assigneeId\":\"a1\"}", K, NULL);
    assert_filter(false, "{\"team\":\"team-a\"}", H, "Unknown query parameter 'team'");
    assert_filter(false, "{\"assigneeId\":\"a1\"}", K, "Unknown field 'filter.assigneeId'");
    assert_filter(true, "{\"colour\":[\"red\"]}", H, "Unknown query parameter 'colour'");
    assert_filter(false, "{\"status\":[\"Open\"]}", H,
                  "Query parameter 'status' must be one of: created, open, pending, resolved, closed");
    assert_filter(false, "{\"status\":[\"\"]}", K,
                  "Field 'filter.status' must be one of: created, open, pending, resolved, closed");
    assert_filter(false, "{\"priority\":[\"critical\"]}", H,
                  "Query parameter 'priority' must be one of: low, medium, high, urgent");
    assert_filter(false, "{\"category\":[\"\"]}", H, "Query parameter 'category' must not be empty");
    assert_filter(false, "{\"category\":[\"  \"]}", H, "Query parameter 'category' must not be empty");
    assert_filter(false, "{\"creatorId\":\"\"}", H, "Query parameter 'creatorId' must not be empty");
    char *long_category = tu_format("{\"category\":[\"%0101d\"]}", 0);
    assert_filter(false, long_category, H, "Query parameter 'category' must be at most 100 characters");
    free(long_category);
    assert_filter(false, "{\"status\":\"open\"}", K, "Field 'filter.status' must be a list of 1 to 20 values");
    assert_filter(false, "{\"status\":[1]}", K, "Field 'filter.status' must be a string");
    assert_filter(false, "{\"creatorId\":[\"u\"]}", K, "Field 'filter.creatorId' must be a string");
    assert_true(tk_list_field_is_multi("status") && tk_list_field_is_multi("category"));
    assert_false(tk_list_field_is_multi("creatorId") || tk_list_field_is_multi("limit"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cursor_round_trip),
        cmocka_unit_test(test_cursor_refuses_any_edit),
        cmocka_unit_test(test_cursor_is_bound_to_its_query),
        cmocka_unit_test(test_binding_is_canonical),
        cmocka_unit_test(test_filter_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
