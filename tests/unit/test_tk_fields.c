/* tk_fields: one table, two edges — labels carry the caller's prefix, the
 * default fills an absent priority, the extra member is allowed. */
#include "test_support.h"

#include <string.h>

#include "tk_fields.h"

static json_t *parse(const char *text) {
    json_t *root = json_loads(text, 0, NULL);
    assert_non_null(root);
    return root;
}

static void test_ticket_fields_with_default_priority(void **state) {
    (void)state;
    json_t *root = parse("{\"category\":\"c\",\"subject\":\"s\",\"description\":\"d\"}");
    tk_request request;
    memset(&request, 0, sizeof request);
    char err[TK_ERROR_TEXT_MAX] = "";
    assert_int_equal(tk_fields_only_members(root, &TK_TICKET_FIELDS, NULL, "", err, sizeof err), 0);
    assert_int_equal(tk_fields_take(root, &TK_TICKET_FIELDS, "", &request, err, sizeof err), 0);
    assert_string_equal(request.category, "c");
    assert_string_equal(request.subject, "s");
    assert_string_equal(request.description, "d");
    assert_string_equal(request.priority, "low");
    json_decref(root);
}

static void test_messages_name_the_prefixed_field(void **state) {
    (void)state;
    json_t *root = parse("{\"category\":\"c\",\"subject\":\"s\",\"description\":\"d\",\"priority\":\"critical\"}");
    tk_request request;
    memset(&request, 0, sizeof request);
    char err[TK_ERROR_TEXT_MAX] = "";
    assert_int_equal(tk_fields_take(root, &TK_TICKET_FIELDS, "ticket.", &request, err, sizeof err), -1);
    assert_string_equal(err, "Field 'ticket.priority' must be one of: low, medium, high, urgent");
    json_decref(root);
}

static void test_changes_need_one_member_and_read_null_as_unassign(void **state) {
    (void)state;
    tk_request request;
    char err[TK_ERROR_TEXT_MAX] = "";
    json_t *root = parse("{}");
    memset(&request, 0, sizeof request);
    assert_int_equal(tk_fields_take_changes(root, "", &request, err, sizeof err), -1);
    assert_string_equal(err, "Changes must name at least one of: status, priority, category, assigneeId");
    json_decref(root);
    root = parse("{\"status\":\"resolved\",\"assigneeId\":null}");
    memset(&request, 0, sizeof request);
    assert_int_equal(tk_fields_take_changes(root, "", &request, err, sizeof err), 0);
    assert_string_equal(request.status, "resolved");
    assert_null(request.priority); /* absent: unchanged, no default */
    assert_true(request.is_unassign);
    json_decref(root);
    root = parse("{\"status\":\"created\"}");
    assert_int_equal(tk_fields_take_changes(root, "", &request, err, sizeof err), -1);
    assert_string_equal(err, "Field 'status' must be one of: open, pending, resolved, closed");
    json_decref(root);
    root = parse("{\"category\":null}");
    assert_int_equal(tk_fields_take_changes(root, "", &request, err, sizeof err), -1);
    assert_string_equal(err, "Field 'category' must be a string");
    json_decref(root);
}

static void test_extra_member_is_allowed_and_others_are_not(void **state) {
    (void)state;
    json_t *root = parse("{\"_id\":\"x\",\"description\":\"d\"}");
    char err[TK_ERROR_TEXT_MAX] = "";
    assert_int_equal(tk_fields_only_members(root, &TK_RESPONSE_FIELDS, "_id", "reply.", err, sizeof err), 0);
    assert_int_equal(tk_fields_only_members(root, &TK_RESPONSE_FIELDS, NULL, "", err, sizeof err), -1);
    assert_string_equal(err, "Unknown field '_id'");
    json_decref(root);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ticket_fields_with_default_priority),
        cmocka_unit_test(test_messages_name_the_prefixed_field),
        cmocka_unit_test(test_changes_need_one_member_and_read_null_as_unassign),
        cmocka_unit_test(test_extra_member_is_allowed_and_others_are_not),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
