/* gw_validate: content types, HTTP bodies (data-driven from
 * tests/data/http/<route>/{valid,invalid}/, with <case>.reason files) and the
 * ?id= ticket id. */
#include "test_support.h"

#include <stdlib.h>
#include <string.h>

#include "gw_validate.h"
#include "tk_text.h"

/* ---- content type ---- */

static void test_json_content_types(void **state) {
    (void)state;
    static const char *const accepted[] = {
        "application/json",
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        "application/json ; charset=utf-8",
        "Application/JSON",
        "APPLICATION/JSON; charset=utf-8",
        " application/json",
    };
    static const char *const refused[] = {
        "",
        "text/plain",
        "text/plain; charset=utf-8",
        "text/json",
        "application/jsonx",
        "application/json-patch+json",
        "application/json5",
        "application/ld+json",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/",
        "application/jso",
        "json",
        "application/xml",
        "xapplication/json",
    };
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        if (!gw_validate_is_json_content_type(accepted[i])) fail_msg("'%s' refused", accepted[i]);
    }
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        if (gw_validate_is_json_content_type(refused[i])) fail_msg("'%s' accepted", refused[i]);
    }
    assert_false(gw_validate_is_json_content_type(NULL));
}

/* ---- bodies, data-driven ---- */

static const gw_route *route_for(const char *url, const char *method) {
    const gw_route *route = NULL;
    const char *allow = NULL;
    if (gw_router_find(url, method, &route, &allow) != GW_ROUTE_FOUND) fail_msg("no route %s %s", method, url);
    return route;
}

/* Which routes each data folder is checked against. */
static const struct {
    const char *folder;
    const char *urls[3];
} BODY_FOLDERS[] = {
    {"http/create-ticket", {"/api/ticket/create-ticket", NULL}},
    {"http/create-reply", {"/api/ticket/create-reply", "/api/ticket/admin-create-reply", NULL}},
    {"http/admin-update-ticket", {"/api/ticket/admin-update-ticket", NULL}},
};
#define BODY_FOLDER_COUNT (sizeof BODY_FOLDERS / sizeof BODY_FOLDERS[0])

/* The fields a valid body must leave in request, borrowed from root. */
static int check_filled(const char *name, const gw_route *route, const json_t *root, const tk_request *request) {
    int failures = 0;
    if (route->request_type == TK_REQUEST_TICKET_UPDATE) {
        /* Only what the body names; null assigneeId is an unassign. */
        bool is_unassign = json_is_null(json_object_get(root, "assigneeId"));
        if (json_string_value(json_object_get(root, "status")) != request->status ||
            json_string_value(json_object_get(root, "priority")) != request->priority ||
            json_string_value(json_object_get(root, "assigneeId")) != request->assignee_id ||
            is_unassign != request->is_unassign || request->description != NULL) {
            print_error("%s: changes not taken as the body has them\n", name);
            failures++;
        }
        return failures;
    }
    if (json_string_value(json_object_get(root, "description")) != request->description) {
        print_error("%s: description not taken from the body\n", name);
        failures++;
    }
    if (route->request_type == TK_REQUEST_TICKET_CREATE) {
        if (request->category == NULL || request->subject == NULL || request->priority == NULL) {
            print_error("%s: category, subject or priority left NULL\n", name);
            return failures + 1;
        }
        if (!tk_priority_is_valid(request->priority)) {
            print_error("%s: priority '%s'\n", name, request->priority);
            failures++;
        }
        const json_t *priority = json_object_get(root, "priority");
        if (!json_is_string(priority) && strcmp(request->priority, "low") != 0) {
            print_error("%s: priority without a value must be low, got %s\n", name, request->priority);
            failures++;
        }
    } else if (request->category != NULL || request->subject != NULL) {
        print_error("%s: a reply body filled ticket fields\n", name);
        failures++;
    }
    return failures;
}

static void test_valid_bodies(void **state) {
    (void)state;
    int failures = 0, checked = 0;
    for (size_t f = 0; f < BODY_FOLDER_COUNT; f++) {
        char *relative = tu_format("%s/valid", BODY_FOLDERS[f].folder);
        char *folder = tu_data_path(relative);
        tu_listing cases;
        tu_list(folder, ".json", &cases);
        for (size_t u = 0; BODY_FOLDERS[f].urls[u] != NULL; u++) {
            const gw_route *route = route_for(BODY_FOLDERS[f].urls[u], "POST");
            for (size_t i = 0; i < cases.count; i++) {
                char *path = tu_format("%s/%s", folder, cases.names[i]);
                size_t len;
                char *body = tu_read_file(path, &len);
                json_t *root = NULL;
                tk_request request = {0};
                char err[TK_ERROR_TEXT_MAX] = "";
                if (gw_validate_body(route, body, len, &root, &request, err, sizeof err) != 0) {
                    print_error("%s %s: refused: %s\n", route->path, cases.names[i], err);
                    failures++;
                } else {
                    failures += check_filled(cases.names[i], route, root, &request);
                }
                json_decref(root);
                free(body);
                free(path);
                checked++;
            }
        }
        tu_listing_close(&cases);
        free(folder);
        free(relative);
    }
    assert_int_equal(failures, 0);
    assert_true(checked > 0);
}

static void test_invalid_bodies(void **state) {
    (void)state;
    int failures = 0;
    for (size_t f = 0; f < BODY_FOLDER_COUNT; f++) {
        char *relative = tu_format("%s/invalid", BODY_FOLDERS[f].folder);
        char *folder = tu_data_path(relative);
        tu_listing cases;
        tu_list(folder, ".json", &cases);
        for (size_t u = 0; BODY_FOLDERS[f].urls[u] != NULL; u++) {
            const gw_route *route = route_for(BODY_FOLDERS[f].urls[u], "POST");
            for (size_t i = 0; i < cases.count; i++) {
                char *path = tu_format("%s/%s", folder, cases.names[i]);
                char *reason_path = tu_sibling(folder, cases.names[i], ".json", ".reason");
                char *expected = tu_read_reason(reason_path);
                size_t len;
                char *body = tu_read_file(path, &len);
                json_t *root = (json_t *)1;
                tk_request request = {0};
                char err[TK_ERROR_TEXT_MAX] = "";
                if (gw_validate_body(route, body, len, &root, &request, err, sizeof err) == 0) {
                    print_error("%s %s: accepted, expected \"%s\"\n", route->path, cases.names[i], expected);
                    json_decref(root);
                    failures++;
                } else {
                    if (strcmp(err, expected) != 0) {
                        print_error("%s %s:\n  expected \"%s\"\n  got      \"%s\"\n", route->path, cases.names[i],
                                    expected, err);
                        failures++;
                    }
                    if (root != NULL) {
                        print_error("%s %s: root not NULL after a refusal\n", route->path, cases.names[i]);
                        failures++;
                    }
                }
                free(body);
                free(expected);
                free(reason_path);
                free(path);
            }
        }
        tu_listing reasons;
        tu_list(folder, ".reason", &reasons);
        if (reasons.count != cases.count) {
            print_error("%s: %zu .reason files for %zu cases\n", folder, reasons.count, cases.count);
            failures++;
        }
        tu_listing_close(&reasons);
        tu_listing_close(&cases);
        free(folder);
        free(relative);
    }
    assert_int_equal(failures, 0);
}

static void assert_body_error(const char *url, const char *body, size_t len, const char *expected) {
    const gw_route *route = route_for(url, "POST");
    json_t *root = NULL;
    tk_request request = {0};
    char err[TK_ERROR_TEXT_MAX] = "";
    assert_int_equal(gw_validate_body(route, body, len, &root, &request, err, sizeof err), -1);
    assert_null(root);
    assert_string_equal(err, expected);
}

static void test_body_length_is_what_counts(void **state) {
    (void)state;
    /* Bodies arrive as bytes with a length, not NUL-terminated strings. */
    static const char body[] = "{\"description\":\"ok\"}{\"more\":1}";
    const gw_route *route = route_for("/api/ticket/create-reply", "POST");
    json_t *root = NULL;
    tk_request request = {0};
    char err[TK_ERROR_TEXT_MAX];
    assert_int_equal(gw_validate_body(route, body, 20, &root, &request, err, sizeof err), 0);
    assert_string_equal(request.description, "ok");
    json_decref(root);
    assert_body_error("/api/ticket/create-reply", body, sizeof body - 1, "Request body is not valid JSON");
    assert_body_error("/api/ticket/create-reply", body, 19, "Request body is not valid JSON");
    assert_body_error("/api/ticket/create-reply", body, 0, "Request body is not valid JSON");
}

static bool reply_internal(const char *url, const char *body) {
    const gw_route *route = route_for(url, "POST");
    json_t *root = NULL;
    tk_request request = {0};
    char err[TK_ERROR_TEXT_MAX] = "";
    if (gw_validate_body(route, body, strlen(body), &root, &request, err, sizeof err) != 0) fail_msg("%s", err);
    assert_string_equal(request.description, "x");
    json_decref(root);
    return request.internal;
}

/* Admins may mark a reply internal (a boolean); customers may not send the field at all. */
static void test_reply_internal(void **state) {
    (void)state;
    static const char ADMIN[] = "/api/ticket/admin-create-reply", CUSTOMER[] = "/api/ticket/create-reply";
    assert_true(reply_internal(ADMIN, "{\"description\":\"x\",\"internal\":true}"));
    assert_false(reply_internal(ADMIN, "{\"description\":\"x\",\"internal\":false}"));
    assert_false(reply_internal(ADMIN, "{\"description\":\"x\"}"));
    assert_false(reply_internal(CUSTOMER, "{\"description\":\"x\"}"));
    static const char *const NOT_BOOLEAN[] = {"\"true\"", "1", "null", "[]"};
    for (size_t i = 0; i < sizeof NOT_BOOLEAN / sizeof NOT_BOOLEAN[0]; i++) {
        char body[64];
        snprintf(body, sizeof body, "{\"description\":\"x\",\"internal\":%s}", NOT_BOOLEAN[i]);
        assert_body_error(ADMIN, body, strlen(body), "Field 'internal' must be true or false");
    }
    static const char *const CUSTOMER_BODIES[] = {"{\"description\":\"x\",\"internal\":true}",
                                                  "{\"description\":\"x\",\"internal\":false}", "{\"internal\":true}"};
    for (size_t i = 0; i < sizeof CUSTOMER_BODIES / sizeof CUSTOMER_BODIES[0]; i++)
        assert_body_error(CUSTOMER, CUSTOMER_BODIES[i], strlen(CUSTOMER_BODIES[i]), "Only admins write internal notes");
    assert_body_error(ADMIN, "{\"internal\":true}", 17, "Field 'description' is required");
}

static void test_create_body_fields(void **state) {
    (void)state;
    static const char body[] =
        "{\"category\":\"Support\",\"subject\":\" Account Issue \",\"description\":\"I am facing an issue.\","
        "\"priority\":\"high\"}";
    const gw_route *route = route_for("/api/ticket/create-ticket", "POST");
    json_t *root = NULL;
    tk_request request = {0};
    char err[TK_ERROR_TEXT_MAX];
    assert_int_equal(gw_validate_body(route, body, sizeof body - 1, &root, &request, err, sizeof err), 0);
    assert_string_equal(request.category, "Support");
    assert_string_equal(request.subject, " Account Issue "); /* stored as sent */
    assert_string_equal(request.description, "I am facing an issue.");
    assert_string_equal(request.priority, "high");
    json_decref(root);
}

/* ---- ?id= ---- */

static void assert_ticket_id(const char *param, const char *expected) {
    char out[TK_OBJECT_ID_LEN + 1];
    char err[TK_ERROR_TEXT_MAX] = "";
    if (gw_validate_ticket_id(param, out, err, sizeof err) != 0) fail_msg("'%s' refused: %s", param, err);
    assert_string_equal(out, expected);
}

static void assert_ticket_id_error(const char *param, const char *expected) {
    char out[TK_OBJECT_ID_LEN + 1];
    char err[TK_ERROR_TEXT_MAX] = "";
    if (gw_validate_ticket_id(param, out, err, sizeof err) == 0) fail_msg("'%s' accepted", param ? param : "(null)");
    assert_string_equal(err, expected);
}

static void test_ticket_id(void **state) {
    (void)state;
    assert_ticket_id("6720b1c8f1c2b3a5e4d90130", "6720b1c8f1c2b3a5e4d90130");
    /* Upper case is the same ObjectId: accepted, written in canonical form. */
    assert_ticket_id("6720B1C8F1C2B3A5E4D90130", "6720b1c8f1c2b3a5e4d90130");
    assert_ticket_id("6720b1C8f1c2B3a5e4D90130", "6720b1c8f1c2b3a5e4d90130");
    assert_ticket_id("000000000000000000000000", "000000000000000000000000");
    assert_ticket_id("FFFFFFFFFFFFFFFFFFFFFFFF", "ffffffffffffffffffffffff");

    assert_ticket_id_error(NULL, "Query parameter 'id' is required");
    assert_ticket_id_error("", "Query parameter 'id' is required");
    assert_ticket_id_error("6720b1c8f1c2b3a5e4d9013", "Invalid ticket id");
    assert_ticket_id_error("6720b1c8f1c2b3a5e4d901300", "Invalid ticket id");
    assert_ticket_id_error("6720b1c8f1c2b3a5e4d9013g", "Invalid ticket id");
    assert_ticket_id_error("6720b1c8f1c2b3a5e4d9013G", "Invalid ticket id");
    assert_ticket_id_error(" 720b1c8f1c2b3a5e4d90130", "Invalid ticket id");
    assert_ticket_id_error("6720b1c8f1c2b3a5e4d9013 ", "Invalid ticket id");
    assert_ticket_id_error("{\"$ne\":null}", "Invalid ticket id");
    assert_ticket_id_error("abc", "Invalid ticket id");
    assert_ticket_id_error(" ", "Invalid ticket id");
    assert_ticket_id_error("6720b1c8-f1c2-b3a5-e4d9-0130", "Invalid ticket id");
    /* 24 bytes, but é is two of them. */
    assert_ticket_id_error("6720b1c8f1c2b3a5e4d901\xc3\xa9", "Invalid ticket id");
}

/* ---- list query parameters ---- */

/* Feeds "a=1&b" (already decoded, as libmicrohttpd hands them over) to the
 * parser, then finishes. @returns the parser's result with err. */
static int parse_list_query(const char *query_string, bool is_admin, const char *team, gw_list_query *query, char *err,
                            size_t err_len) {
    assert_int_equal(gw_list_query_init(query), 0);
    char *copy = strdup(query_string);
    int rc = 0;
    for (char *pair = copy, *next = NULL; rc == 0 && pair != NULL && *pair != '\0'; pair = next) {
        next = strchr(pair, '&');
        if (next != NULL) *next++ = '\0';
        char *value = strchr(pair, '=');
        if (value != NULL) *value++ = '\0';
        rc = gw_validate_list_param(query, pair, strlen(pair), value, value != NULL ? strlen(value) : 0, err, err_len);
    }
    free(copy);
    if (rc == 0) rc = gw_validate_list_finish(query, is_admin, "caller-1", team, err, err_len);
    return rc;
}

static void assert_list_error(const char *query_string, bool is_admin, const char *expected) {
    gw_list_query query;
    char err[TK_ERROR_TEXT_MAX] = "";
    int rc = parse_list_query(query_string, is_admin, is_admin ? "" : "team-a", &query, err, sizeof err);
    gw_list_query_close(&query);
    if (rc == 0) fail_msg("'%s' accepted, expected \"%s\"", query_string, expected);
    assert_string_equal(err, expected);
}

static void test_list_query_accepts(void **state) {
    (void)state;
    gw_list_query query;
    char err[TK_ERROR_TEXT_MAX] = "";
    assert_int_equal(parse_list_query("", false, "team-a", &query, err, sizeof err), 0);
    assert_int_equal(query.limit, TK_LIST_LIMIT_DEFAULT);
    assert_false(query.has_cursor);
    assert_int_equal(json_object_size(query.filter), 0);
    gw_list_query_close(&query);

    assert_int_equal(parse_list_query("limit=200&status=open,pending&category=Support&creatorId=u1&priority=high",
                                      false, "team-a", &query, err, sizeof err),
                     0);
    assert_int_equal(query.limit, 200);
    assert_int_equal(json_array_size(json_object_get(query.filter, "status")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(query.filter, "status"), 1)), "pending");
    assert_string_equal(json_string_value(json_object_get(query.filter, "creatorId")), "u1");
    gw_list_query_close(&query);

    /* Admins: team and assigneeId, with me = the caller. */
    assert_int_equal(parse_list_query("team=team-b&assigneeId=me&limit=1", true, "", &query, err, sizeof err), 0);
    assert_string_equal(json_string_value(json_object_get(query.filter, "assigneeId")), "caller-1");
    assert_string_equal(json_string_value(json_object_get(query.filter, "team")), "team-b");
    gw_list_query_close(&query);
}

static void test_list_query_refuses(void **state) {
    (void)state;
    assert_list_error("foo=1", false, "Unknown query parameter 'foo'");
    assert_list_error("id=6720b1c8f1c2b3a5e4d90130", false, "Unknown query parameter 'id'");
    assert_list_error("team=team-b", false, "Unknown query parameter 'team'");
    assert_list_error("assigneeId=me", false, "Unknown query parameter 'assigneeId'");
    assert_list_error("limit=0", false, "Query parameter 'limit' must be an integer from 1 to 200");
    assert_list_error("limit=201", true, "Query parameter 'limit' must be an integer from 1 to 200");
    assert_list_error("limit=", false, "Query parameter 'limit' must be an integer from 1 to 200");
    assert_list_error("limit", false, "Query parameter 'limit' must be an integer from 1 to 200");
    assert_list_error("limit=-1", false, "Query parameter 'limit' must be an integer from 1 to 200");
    assert_list_error("limit=1e2", false, "Query parameter 'limit' must be an integer from 1 to 200");
    assert_list_error("limit=0050", false, "Query parameter 'limit' must be an integer from 1 to 200");
    assert_list_error("limit= 5", false, "Query parameter 'limit' must be an integer from 1 to 200");
    assert_list_error("limit=5&limit=6", false, "Query parameter 'limit' must be given once");
    assert_list_error("status=open&status=closed", false, "Query parameter 'status' must be given once");
    /* A repeated unknown name is unknown, not "given twice" (found by the contract test). */
    assert_list_error("=&=s", false, "Unknown query parameter ''");
    assert_list_error("foo=1&foo=2", false, "Unknown query parameter 'foo'");
    assert_list_error("status=done", false,
                      "Query parameter 'status' must be one of: created, open, pending, resolved, closed");
    assert_list_error("status=open,", false,
                      "Query parameter 'status' must be one of: created, open, pending, resolved, closed");
    assert_list_error("status=", false,
                      "Query parameter 'status' must be one of: created, open, pending, resolved, closed");
    assert_list_error("priority=critical", true,
                      "Query parameter 'priority' must be one of: low, medium, high, urgent");
    assert_list_error("category=a,,b", false, "Query parameter 'category' must not be empty");
    assert_list_error("creatorId=", false, "Query parameter 'creatorId' must not be empty");
    assert_list_error("category=\xff", false, "Query parameter 'category' must be valid UTF-8");
    assert_list_error("cursor=abc", false, "Invalid cursor");
    assert_list_error("cursor", false, "Invalid cursor");
    assert_list_error("cursor=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", false, "Invalid cursor");
}

static void test_list_cursor_and_link(void **state) {
    (void)state;
    gw_list_query query;
    char err[TK_ERROR_TEXT_MAX] = "";
    json_t *filter = json_pack("{s:[s]}", "status", "open");
    tk_cursor_position position = {1730113200123, "6720b1c8f1c2b3a5e4d90130"};
    char cursor[TK_CURSOR_LEN + 1];
    tk_cursor_encode(&position, tk_list_binding(false, "team-a", filter), cursor);
    json_decref(filter);

    char *good = tu_format("status=open&cursor=%s&limit=10", cursor);
    assert_int_equal(parse_list_query(good, false, "team-a", &query, err, sizeof err), 0);
    assert_true(query.after.created_ms == position.created_ms);
    assert_string_equal(query.after.id, position.id);
    char *link = gw_validate_next_link_new("/api/ticket/get-tickets", &query, cursor);
    char *expected = tu_format("</api/ticket/get-tickets?limit=10&cursor=%s&status=open>; rel=\"next\"", cursor);
    assert_string_equal(link, expected);
    free(expected);
    free(link);
    gw_list_query_close(&query);
    /* Another team, other filters, no filters: the same cursor is refused. */
    assert_int_equal(parse_list_query(good, false, "team-b", &query, err, sizeof err), -1);
    assert_string_equal(err, "Invalid cursor");
    gw_list_query_close(&query);
    free(good);
    char *other = tu_format("status=closed&cursor=%s", cursor);
    assert_list_error(other, false, "Invalid cursor");
    free(other);
    char *bare = tu_format("cursor=%s", cursor);
    assert_list_error(bare, false, "Invalid cursor");
    free(bare);

    /* Values are percent-encoded in the link. */
    assert_int_equal(parse_list_query("category=Billing Co,Support&creatorId=a/b", false, "team-a", &query, err,
                                      sizeof err),
                     0);
    link = gw_validate_next_link_new("/api/ticket/get-tickets", &query, cursor);
    expected =
        tu_format("</api/ticket/get-tickets?limit=50&cursor=%s&category=Billing%%20Co,Support&creatorId=a%%2Fb>; "
                  "rel=\"next\"",
                  cursor);
    assert_string_equal(link, expected);
    gw_list_query_close(&query);
    free(expected);
    free(link);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_content_types), cmocka_unit_test(test_valid_bodies),
        cmocka_unit_test(test_invalid_bodies),     cmocka_unit_test(test_body_length_is_what_counts),
        cmocka_unit_test(test_create_body_fields), cmocka_unit_test(test_reply_internal),
        cmocka_unit_test(test_ticket_id),          cmocka_unit_test(test_list_query_accepts),
        cmocka_unit_test(test_list_query_refuses), cmocka_unit_test(test_list_cursor_and_link),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
