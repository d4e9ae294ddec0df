/* gw_command: the key, the new ids and the payload of each kind of request. */
#include "test_support.h"

#include <stdlib.h>
#include <string.h>

#include "gw_command.h"

static const char TICKET_ID[] = "671fa1c8f1c2b3a5e4d90abc";

static const gw_route *route_of(const char *path, const char *method) {
    const gw_route *route = NULL;
    const char *allow = NULL;
    assert_int_equal(gw_router_find(path, method, &route, &allow), GW_ROUTE_FOUND);
    return route;
}

static void customer(gw_admitted *admitted) {
    memset(admitted, 0, sizeof *admitted);
    strcpy(admitted->identity.id, "u1");
    strcpy(admitted->identity.team, "team-a");
}

static void test_create_chooses_the_ticket_id_as_key(void **state) {
    (void)state;
    gw_admitted admitted;
    customer(&admitted);
    gw_command command;
    char err[TK_ERROR_TEXT_MAX];
    const char body[] = "{\"category\":\"c\",\"subject\":\"s\",\"description\":\"d\"}";
    assert_int_equal(gw_command_init(&command, route_of("/api/ticket/create-ticket", "POST"), &admitted, body,
                                     strlen(body), err, sizeof err),
                     0);
    assert_true(tk_object_id_is_valid(command.key, strlen(command.key)));
    assert_string_equal(command.request.ticket_id, command.key);
    assert_string_equal(command.request.priority, "low");
    char *payload = gw_command_payload_new(&command);
    assert_non_null(strstr(payload, command.key));
    free(payload);
    gw_command_close(&command);
}

static void test_response_gets_a_new_id_and_the_ticket_key(void **state) {
    (void)state;
    gw_admitted admitted;
    customer(&admitted);
    strcpy(admitted.ticket_id, TICKET_ID);
    gw_command command;
    char err[TK_ERROR_TEXT_MAX];
    const char body[] = "{\"description\":\"more\"}";
    assert_int_equal(gw_command_init(&command, route_of("/api/ticket/create-reply", "POST"), &admitted, body,
                                     strlen(body), err, sizeof err),
                     0);
    assert_string_equal(command.key, TICKET_ID);
    assert_true(tk_object_id_is_valid(command.request.response_id, TK_OBJECT_ID_LEN));
    gw_command_close(&command);
}

static void test_queries_are_keyed_by_team_or_admin(void **state) {
    (void)state;
    gw_admitted admitted;
    customer(&admitted);
    strcpy(admitted.ticket_id, TICKET_ID);
    gw_command command;
    char err[TK_ERROR_TEXT_MAX];
    assert_int_equal(gw_command_init(&command, route_of("/api/ticket/get-ticket", "GET"), &admitted, "", 0, err,
                                     sizeof err),
                     0);
    assert_string_equal(command.key, "team-a");
    gw_command_close(&command);
    admitted.identity.is_admin = true;
    admitted.identity.team[0] = '\0';
    assert_int_equal(gw_command_init(&command, route_of("/api/ticket/admin-get-ticket", "GET"), &admitted, "", 0, err,
                                     sizeof err),
                     0);
    assert_string_equal(command.key, "admin");
    gw_command_close(&command);
}

static void test_invalid_body_is_refused_with_the_reason(void **state) {
    (void)state;
    gw_admitted admitted;
    customer(&admitted);
    gw_command command;
    char err[TK_ERROR_TEXT_MAX];
    const char body[] = "{\"category\":\"c\",\"subject\":\"s\"}";
    assert_int_equal(gw_command_init(&command, route_of("/api/ticket/create-ticket", "POST"), &admitted, body,
                                     strlen(body), err, sizeof err),
                     -1);
    assert_string_equal(err, "Field 'description' is required");
    gw_command_close(&command);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_chooses_the_ticket_id_as_key),
        cmocka_unit_test(test_response_gets_a_new_id_and_the_ticket_key),
        cmocka_unit_test(test_queries_are_keyed_by_team_or_admin),
        cmocka_unit_test(test_invalid_body_is_refused_with_the_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
