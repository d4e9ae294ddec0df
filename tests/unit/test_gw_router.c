/* gw_router: path and method to route, 404 and 405 with Allow. */
#include "test_support.h"

#include <stdlib.h>
#include <string.h>

#include "gw_router.h"

typedef struct {
    const char *name;
    const char *method;
    const char *path;
    gw_route_id id;
    gw_role role;
    tk_request_type request_type;
    bool has_body;
    bool needs_ticket_id;
} expected_route;

static const expected_route ROUTES[] = {
    {"create-ticket", "POST", "/api/ticket/create-ticket", GW_ROUTE_CREATE_TICKET, GW_ROLE_CUSTOMER,
     TK_REQUEST_TICKET_CREATE, true, false},
    {"get-tickets", "GET", "/api/ticket/get-tickets", GW_ROUTE_GET_TICKETS, GW_ROLE_CUSTOMER, TK_REQUEST_TICKETS_LIST,
     false, false},
    {"create-reply", "POST", "/api/ticket/create-reply", GW_ROUTE_CREATE_REPLY, GW_ROLE_CUSTOMER,
     TK_REQUEST_TICKET_REPLY, true, true},
    {"admin-get-tickets", "GET", "/api/ticket/admin-get-tickets", GW_ROUTE_ADMIN_GET_TICKETS, GW_ROLE_ADMIN,
     TK_REQUEST_TICKETS_LIST, false, false},
    {"admin-create-reply", "POST", "/api/ticket/admin-create-reply", GW_ROUTE_ADMIN_CREATE_REPLY, GW_ROLE_ADMIN,
     TK_REQUEST_TICKET_REPLY, true, true},
    {"healthz", "GET", "/healthz", GW_ROUTE_HEALTHZ, GW_ROLE_NONE, TK_REQUEST_TYPE_COUNT, false, false},
    {"readyz", "GET", "/readyz", GW_ROUTE_READYZ, GW_ROLE_NONE, TK_REQUEST_TYPE_COUNT, false, false},
    {"metrics", "GET", "/metrics", GW_ROUTE_METRICS, GW_ROLE_NONE, TK_REQUEST_TYPE_COUNT, false, false},
    {"openapi", "GET", "/api/ticket/openapi.json", GW_ROUTE_OPENAPI, GW_ROLE_NONE, TK_REQUEST_TYPE_COUNT, false, false},
    {"get-ticket", "GET", "/api/ticket/get-ticket", GW_ROUTE_GET_TICKET, GW_ROLE_CUSTOMER, TK_REQUEST_TICKET_GET, false,
     true},
    {"admin-get-ticket", "GET", "/api/ticket/admin-get-ticket", GW_ROUTE_ADMIN_GET_TICKET, GW_ROLE_ADMIN,
     TK_REQUEST_TICKET_GET, false, true},
};
#define ROUTE_COUNT (sizeof ROUTES / sizeof ROUTES[0])

static void assert_found(const char *url, const char *method, const expected_route *expected) {
    const gw_route *route = NULL;
    const char *allow = NULL;
    gw_route_match match = gw_router_find(url, method, &route, &allow);
    if (match != GW_ROUTE_FOUND) fail_msg("%s %s: not found (%d)", method, url, (int)match);
    assert_non_null(route);
    assert_int_equal(route->id, expected->id);
    assert_string_equal(route->name, expected->name);
    assert_string_equal(route->method, expected->method);
    assert_string_equal(route->path, expected->path);
    assert_int_equal(route->role, expected->role);
    assert_int_equal(route->has_body, expected->has_body);
    assert_int_equal(route->needs_ticket_id, expected->needs_ticket_id);
    if (expected->role != GW_ROLE_NONE) assert_int_equal(route->request_type, expected->request_type);
}

static void assert_not_found(const char *url, const char *method) {
    const gw_route *route = NULL;
    const char *allow = NULL;
    gw_route_match match = gw_router_find(url, method, &route, &allow);
    if (match != GW_ROUTE_NOT_FOUND) fail_msg("%s '%s': expected 404, got %d", method, url, (int)match);
}

static void assert_bad_method(const char *url, const char *method, const char *expected_allow) {
    const gw_route *route = NULL;
    const char *allow = NULL;
    gw_route_match match = gw_router_find(url, method, &route, &allow);
    if (match != GW_ROUTE_BAD_METHOD) fail_msg("%s %s: expected 405, got %d", method, url, (int)match);
    assert_non_null(allow);
    assert_string_equal(allow, expected_allow);
}

static void test_every_route(void **state) {
    (void)state;
    for (size_t i = 0; i < ROUTE_COUNT; i++) assert_found(ROUTES[i].path, ROUTES[i].method, &ROUTES[i]);
}

static void test_trailing_slash_is_ignored(void **state) {
    (void)state;
    for (size_t i = 0; i < ROUTE_COUNT; i++) {
        char *url = tu_format("%s/", ROUTES[i].path);
        assert_found(url, ROUTES[i].method, &ROUTES[i]);
        free(url);
    }
    /* Only one. */
    assert_not_found("/api/ticket/get-tickets//", "GET");
    assert_not_found("/healthz//", "GET");
}

static void test_paths_ignore_case_like_express(void **state) {
    (void)state;
    assert_found("/API/Ticket/Create-Ticket", "POST", &ROUTES[0]);
    assert_found("/Healthz", "GET", &ROUTES[5]);
}

static void test_unknown_paths_are_404(void **state) {
    (void)state;
    static const char *const urls[] = {
        "",
        "/",
        "/api",
        "/api/ticket",
        "/api/ticket/",
        "/api/ticket/create",
        "/api/ticket/create-tickets",
        "/api/ticket/create-ticketx",
        "/api/ticket/get-tickets/123",
        "/api/ticket/get-tickets/x/",
        "/api/tickets/get-tickets",
        "/api/ticket//get-tickets",
        "//api/ticket/get-tickets",
        "api/ticket/get-tickets",
        "/api/ticket/get-tickets?id=1", /* the caller strips the query string */
        "/api/ticket/get-tickets#top",
        "/api/ticket/get-tickets%2F",
        "/api/ticket/../ticket/get-tickets",
        "/healthz/ready",
        "/health",
        "/ready",
        "/readyzz",
        "/metricsz",
        "/api/ticket/metrics",
        "/openapi.json",
        "/api/ticket/openapi",
        "/api/ticket/openapi.yaml",
    };
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        assert_not_found(urls[i], "GET");
        assert_not_found(urls[i], "POST");
    }
}

static void test_wrong_method_is_405_with_allow(void **state) {
    (void)state;
    static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"};
    for (size_t i = 0; i < ROUTE_COUNT; i++) {
        for (size_t m = 0; m < sizeof methods / sizeof methods[0]; m++) {
            if (strcmp(methods[m], ROUTES[i].method) == 0) continue;
            assert_bad_method(ROUTES[i].path, methods[m], ROUTES[i].method);
        }
    }
    /* With the trailing slash too. */
    assert_bad_method("/api/ticket/create-ticket/", "GET", "POST");
    assert_bad_method("/api/ticket/admin-get-tickets/", "POST", "GET");
    /* Methods are case-sensitive (RFC 9110). */
    assert_bad_method("/api/ticket/get-tickets", "get", "GET");
    assert_bad_method("/api/ticket/create-ticket", "post", "POST");
    assert_bad_method("/api/ticket/create-ticket", "", "POST");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_route),
        cmocka_unit_test(test_trailing_slash_is_ignored),
        cmocka_unit_test(test_paths_ignore_case_like_express),
        cmocka_unit_test(test_unknown_paths_are_404),
        cmocka_unit_test(test_wrong_method_is_405_with_allow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
