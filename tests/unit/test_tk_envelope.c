/* tk_envelope: Kafka commands, queries and replies. The parser cases live in
 * tests/data/envelope/{valid,invalid}/<case>.json; each invalid case has a
 * sibling <case>.reason with the exact message. */
#include "test_support.h"

#include <stdlib.h>
#include <string.h>

#include "tk_envelope.h"

#define VALID_DIR "envelope/valid"
#define INVALID_DIR "envelope/invalid"

/* ---- helpers ---- */

static int parse_text(const char *text, tk_request *request, char *err) {
    return tk_request_parse(text, strlen(text), request, err, TK_ERROR_TEXT_MAX);
}

static int same_text(const char *a, const char *b) {
    if (a == NULL || b == NULL) return a == b;
    return strcmp(a, b) == 0;
}

/* Compares every field a parse fills; prints what differs. @returns 0 when equal. */
static int compare_requests(const char *name, const tk_request *a, const tk_request *b) {
    int differences = 0;
#define SAME_TEXT(field)                                                                            \
    if (!same_text(a->field, b->field)) {                                                           \
        print_error("%s: %s differs: '%s' vs '%s'\n", name, #field, a->field ? a->field : "(null)", \
                    b->field ? b->field : "(null)");                                                \
        differences++;                                                                              \
    }
    if (a->type != b->type || a->actor.is_admin != b->actor.is_admin) {
        print_error("%s: type or role differs\n", name);
        differences++;
    }
    SAME_TEXT(actor.id)
    SAME_TEXT(actor.team)
    SAME_TEXT(ticket_id)
    SAME_TEXT(response_id)
    SAME_TEXT(category)
    SAME_TEXT(subject)
    SAME_TEXT(description)
    SAME_TEXT(priority)
    SAME_TEXT(idempotency_key)
    SAME_TEXT(command_id)
    SAME_TEXT(status)
    SAME_TEXT(assignee_id)
#undef SAME_TEXT
    if (a->is_unassign != b->is_unassign || a->internal != b->internal || a->has_if_match != b->has_if_match ||
        a->if_match != b->if_match) {
        print_error("%s: unassign, internal or ifMatch differs\n", name);
        differences++;
    }
    return differences;
}

static tk_request_type type_from_case_name(const char *name) {
    if (strncmp(name, "create-", 7) == 0) return TK_REQUEST_TICKET_CREATE;
    if (strncmp(name, "reply-", 6) == 0) return TK_REQUEST_TICKET_REPLY;
    if (strncmp(name, "list-", 5) == 0) return TK_REQUEST_TICKETS_LIST;
    if (strncmp(name, "get-", 4) == 0) return TK_REQUEST_TICKET_GET;
    if (strncmp(name, "update-", 7) == 0) return TK_REQUEST_TICKET_UPDATE;
    if (strncmp(name, "resolve-", 8) == 0) return TK_REQUEST_TICKET_RESOLVE;
    fail_msg("valid case %s must start with create-, reply-, list-, get-, update- or resolve-", name);
    return TK_REQUEST_TYPE_COUNT;
}

/* ---- data-driven ---- */

static void test_valid_cases_parse(void **state) {
    (void)state;
    char *folder = tu_data_path(VALID_DIR);
    tu_listing cases;
    tu_list(folder, ".json", &cases);
    int failures = 0;
    for (size_t i = 0; i < cases.count; i++) {
        char *path = tu_format("%s/%s", folder, cases.names[i]);
        size_t len;
        char *data = tu_read_file(path, &len);
        tk_request request;
        char err[TK_ERROR_TEXT_MAX] = "";
        if (tk_request_parse(data, len, &request, err, sizeof err) != 0) {
            print_error("%s: refused: %s\n", cases.names[i], err);
            failures++;
        } else {
            if (request.type != type_from_case_name(cases.names[i])) {
                print_error("%s: parsed as %s\n", cases.names[i], tk_request_type_name(request.type));
                failures++;
            }
            if (request.root == NULL || request.actor.id == NULL) {
                print_error("%s: no root or actor id\n", cases.names[i]);
                failures++;
            }
            tk_request_close(&request);
        }
        free(data);
        free(path);
    }
    tu_listing_close(&cases);
    free(folder);
    assert_int_equal(failures, 0);
}

static void test_invalid_cases_fail_with_their_reason(void **state) {
    (void)state;
    char *folder = tu_data_path(INVALID_DIR);
    tu_listing cases;
    tu_list(folder, ".json", &cases);
    int failures = 0;
    for (size_t i = 0; i < cases.count; i++) {
        char *path = tu_format("%s/%s", folder, cases.names[i]);
        char *reason_path = tu_sibling(folder, cases.names[i], ".json", ".reason");
        char *expected = tu_read_reason(reason_path);
        size_t len;
        char *data = tu_read_file(path, &len);
        tk_request request;
        memset(&request, 0xA5, sizeof request);
        char err[TK_ERROR_TEXT_MAX] = "";
        if (tk_request_parse(data, len, &request, err, sizeof err) == 0) {
            print_error("%s: accepted, expected \"%s\"\n", cases.names[i], expected);
            failures++;
            tk_request_close(&request);
        } else {
            if (strcmp(err, expected) != 0) {
                print_error("%s: expected \"%s\"\n%*s  got \"%s\"\n", cases.names[i], expected,
                            (int)strlen(cases.names[i]), "", err);
                failures++;
            }
            /* A failed parse leaves nothing to release. */
            if (request.root != NULL || request.actor.id != NULL) {
                print_error("%s: failed parse left the request filled\n", cases.names[i]);
                failures++;
            }
        }
        free(data);
        free(expected);
        free(reason_path);
        free(path);
    }
    /* Every .reason belongs to a case. */
    tu_listing reasons;
    tu_list(folder, ".reason", &reasons);
    if (reasons.count != cases.count) {
        print_error("%zu .reason files for %zu cases\n", reasons.count, cases.count);
        failures++;
    }
    tu_listing_close(&reasons);
    tu_listing_close(&cases);
    free(folder);
    assert_int_equal(failures, 0);
}

/* Each valid case, rebuilt with tk_request_json_new and parsed again, gives
 * the same request. */
static void test_valid_cases_round_trip(void **state) {
    (void)state;
    char *folder = tu_data_path(VALID_DIR);
    tu_listing cases;
    tu_list(folder, ".json", &cases);
    int failures = 0;
    for (size_t i = 0; i < cases.count; i++) {
        char *path = tu_format("%s/%s", folder, cases.names[i]);
        size_t len;
        char *data = tu_read_file(path, &len);
        tk_request first, second;
        char err[TK_ERROR_TEXT_MAX] = "";
        assert_int_equal(tk_request_parse(data, len, &first, err, sizeof err), 0);
        json_t *rebuilt = tk_request_json_new(&first);
        assert_non_null(rebuilt);
        char *text = json_dumps(rebuilt, JSON_COMPACT);
        assert_non_null(text);
        if (parse_text(text, &second, err) != 0) {
            print_error("%s: rebuilt message refused: %s\n%s\n", cases.names[i], err, text);
            failures++;
        } else {
            failures += compare_requests(cases.names[i], &first, &second);
            tk_request_close(&second);
        }
        free(text);
        json_decref(rebuilt);
        tk_request_close(&first);
        free(data);
        free(path);
    }
    tu_listing_close(&cases);
    free(folder);
    assert_int_equal(failures, 0);
}

/* ---- what the parser fills ---- */

static const char CREATE_EXAMPLE[] =
    "{\"version\":1,\"type\":\"ticket.create\","
    "\"actor\":{\"id\":\"671fa1c8f1c2b3a5e4d90001\",\"role\":\"customer\",\"team\":\"team-a\"},"
    "\"ticket\":{\"_id\":\"6720b1c8f1c2b3a5e4d90130\",\"category\":\"Support\",\"subject\":\"Account Issue\","
    "\"description\":\"I am facing an issue with my account.\",\"priority\":\"low\"}}";

static const char REPLY_EXAMPLE[] =
    "{\"version\":1,\"type\":\"ticket.reply\",\"actor\":{\"id\":\"671fb1d8f1c2b3a5e4d90050\",\"role\":\"admin\"},"
    "\"ticketId\":\"6720b1c8f1c2b3a5e4d90130\","
    "\"reply\":{\"_id\":\"6720b473f1c2b3a5e4d90132\",\"description\":\"We are looking into it.\"}}";

static const char LIST_EXAMPLE[] =
    "{\"version\":1,\"type\":\"tickets.list\",\"actor\":{\"id\":\"671fa1c8f1c2b3a5e4d90001\",\"role\":\"customer\","
    "\"team\":\"team-a\"}}";

static void test_parse_create_fills_fields(void **state) {
    (void)state;
    tk_request request;
    char err[TK_ERROR_TEXT_MAX];
    assert_int_equal(parse_text(CREATE_EXAMPLE, &request, err), 0);
    assert_int_equal(request.type, TK_REQUEST_TICKET_CREATE);
    assert_string_equal(request.actor.id, "671fa1c8f1c2b3a5e4d90001");
    assert_string_equal(request.actor.team, "team-a");
    assert_false(request.actor.is_admin);
    assert_string_equal(request.ticket_id, "6720b1c8f1c2b3a5e4d90130");
    assert_null(request.response_id);
    assert_string_equal(request.category, "Support");
    assert_string_equal(request.subject, "Account Issue");
    assert_string_equal(request.description, "I am facing an issue with my account.");
    assert_string_equal(request.priority, "low");
    assert_null(request.idempotency_key);
    tk_request_close(&request);
    /* Closed twice, or zeroed: harmless. */
    tk_request_close(&request);
    tk_request_close(NULL);
}

static void test_parse_create_defaults_priority_to_low(void **state) {
    (void)state;
    static const char *const bodies[] = {
        "{\"version\":1,\"type\":\"ticket.create\",\"actor\":{\"id\":\"u\",\"role\":\"customer\",\"team\":\"t\"},"
        "\"ticket\":{\"_id\":\"6720b1c8f1c2b3a5e4d90130\",\"category\":\"c\",\"subject\":\"s\",\"description\":\"d\"}}",
        "{\"version\":1,\"type\":\"ticket.create\",\"actor\":{\"id\":\"u\",\"role\":\"customer\",\"team\":\"t\"},"
        "\"ticket\":{\"_id\":\"6720b1c8f1c2b3a5e4d90130\",\"category\":\"c\",\"subject\":\"s\",\"description\":\"d\","
        "\"priority\":null}}",
    };
    for (size_t i = 0; i < 2; i++) {
        tk_request request;
        char err[TK_ERROR_TEXT_MAX];
        assert_int_equal(parse_text(bodies[i], &request, err), 0);
        assert_string_equal(request.priority, "low");
        tk_request_close(&request);
    }
}

static void test_parse_reply_and_list(void **state) {
    (void)state;
    tk_request request;
    char err[TK_ERROR_TEXT_MAX];
    assert_int_equal(parse_text(REPLY_EXAMPLE, &request, err), 0);
    assert_int_equal(request.type, TK_REQUEST_TICKET_REPLY);
    assert_true(request.actor.is_admin);
    assert_null(request.actor.team);
    assert_string_equal(request.ticket_id, "6720b1c8f1c2b3a5e4d90130");
    assert_string_equal(request.response_id, "6720b473f1c2b3a5e4d90132");
    assert_string_equal(request.description, "We are looking into it.");
    assert_null(request.subject);
    assert_null(request.priority);
    tk_request_close(&request);

    assert_int_equal(parse_text(LIST_EXAMPLE, &request, err), 0);
    assert_int_equal(request.type, TK_REQUEST_TICKETS_LIST);
    assert_string_equal(request.actor.team, "team-a");
    assert_null(request.ticket_id);
    assert_null(request.description);
    tk_request_close(&request);
}

static void test_parse_uses_len_not_nul(void **state) {
    (void)state;
    /* The value of a Kafka message is not NUL-terminated: only len counts. */
    size_t len = strlen(LIST_EXAMPLE);
    char *data = malloc(len + 8);
    memcpy(data, LIST_EXAMPLE, len);
    memcpy(data + len, "garbage!", 8);
    tk_request request;
    char err[TK_ERROR_TEXT_MAX];
    assert_int_equal(tk_request_parse(data, len, &request, err, sizeof err), 0);
    tk_request_close(&request);
    /* ...and a message cut short is refused. */
    assert_int_equal(tk_request_parse(data, len - 1, &request, err, sizeof err), -1);
    free(data);
}

static void test_type_names(void **state) {
    (void)state;
    assert_string_equal(tk_request_type_name(TK_REQUEST_TICKET_CREATE), "ticket.create");
    assert_string_equal(tk_request_type_name(TK_REQUEST_TICKET_REPLY), "ticket.reply");
    assert_string_equal(tk_request_type_name(TK_REQUEST_TICKETS_LIST), "tickets.list");
    assert_string_equal(tk_request_type_name(TK_REQUEST_TICKET_GET), "ticket.get");
    assert_string_equal(tk_request_type_name(TK_REQUEST_TICKET_UPDATE), "ticket.update");
    assert_string_equal(tk_request_type_name(TK_REQUEST_TICKET_RESOLVE), "ticket.resolve");
    assert_string_equal(tk_request_type_name(TK_REQUEST_TYPE_COUNT), "unknown");
}

static void test_parse_update_fills_changes(void **state) {
    (void)state;
    static const char text[] = "{\"version\":1,\"type\":\"ticket.update\",\"actor\":{\"id\":\"a1\",\"role\":\"admin\"},"
                               "\"ticketId\":\"6720b1c8f1c2b3a5e4d90130\",\"commandId\":\"6720b473f1c2b3a5e4d90140\","
                               "\"changes\":{\"priority\":\"urgent\",\"assigneeId\":null},\"ifMatch\":0}";
    tk_request request;
    char err[TK_ERROR_TEXT_MAX] = "";
    assert_int_equal(parse_text(text, &request, err), 0);
    assert_int_equal(request.type, TK_REQUEST_TICKET_UPDATE);
    assert_string_equal(request.command_id, "6720b473f1c2b3a5e4d90140");
    assert_string_equal(request.priority, "urgent"); /* no default on an update: absent is unchanged */
    assert_null(request.status);
    assert_null(request.category);
    assert_null(request.assignee_id);
    assert_true(request.is_unassign);
    assert_true(request.has_if_match);
    assert_int_equal(request.if_match, 0);
    /* Built again: only what changes, the null kept, ifMatch 0 kept. */
    json_t *rebuilt = tk_request_json_new(&request);
    char *dump = json_dumps(rebuilt, JSON_COMPACT);
    assert_string_equal(dump, "{\"version\":1,\"type\":\"ticket.update\",\"actor\":{\"id\":\"a1\",\"role\":"
                              "\"admin\"},\"ticketId\":\"6720b1c8f1c2b3a5e4d90130\",\"commandId\":"
                              "\"6720b473f1c2b3a5e4d90140\",\"changes\":{\"priority\":\"urgent\",\"assigneeId\":null},"
                              "\"ifMatch\":0}");
    free(dump);
    json_decref(rebuilt);
    tk_request_close(&request);
}

/* A reply that uses no new option is built exactly as before they existed. */
static void test_reply_without_options_is_unchanged(void **state) {
    (void)state;
    tk_request request;
    char err[TK_ERROR_TEXT_MAX] = "";
    assert_int_equal(parse_text(REPLY_EXAMPLE, &request, err), 0);
    assert_false(request.internal);
    assert_false(request.has_if_match);
    json_t *rebuilt = tk_request_json_new(&request);
    char *dump = json_dumps(rebuilt, JSON_COMPACT);
    assert_string_equal(dump, REPLY_EXAMPLE);
    free(dump);
    json_decref(rebuilt);
    tk_request_close(&request);
}

/* ---- building ---- */

static void assert_dump(json_t *value, const char *expected) {
    assert_non_null(value);
    char *text = json_dumps(value, JSON_COMPACT);
    assert_non_null(text);
    assert_string_equal(text, expected);
    free(text);
}

static void test_request_json_matches_the_contract(void **state) {
    (void)state;
    tk_request request;
    char err[TK_ERROR_TEXT_MAX];
    assert_int_equal(parse_text(CREATE_EXAMPLE, &request, err), 0);
    json_t *built = tk_request_json_new(&request);
    assert_dump(built, CREATE_EXAMPLE);
    json_decref(built);
    tk_request_close(&request);

    assert_int_equal(parse_text(REPLY_EXAMPLE, &request, err), 0);
    built = tk_request_json_new(&request);
    assert_dump(built, REPLY_EXAMPLE);
    json_decref(built);
    tk_request_close(&request);

    assert_int_equal(parse_text(LIST_EXAMPLE, &request, err), 0);
    built = tk_request_json_new(&request);
    assert_dump(built, LIST_EXAMPLE);
    json_decref(built);
    tk_request_close(&request);
}

static void test_request_json_from_fields(void **state) {
    (void)state;
    /* How the gateway builds a request: fields set by hand, no root. */
    tk_request request = {0};
    request.type = TK_REQUEST_TICKET_CREATE;
    request.actor = (tk_actor){.id = "u1", .team = "team-a", .is_admin = false};
    request.ticket_id = "6720b1c8f1c2b3a5e4d90130";
    request.category = "c";
    request.subject = "s";
    request.description = "d";
    json_t *built = tk_request_json_new(&request); /* priority NULL: "low" */
    assert_dump(built, "{\"version\":1,\"type\":\"ticket.create\",\"actor\":{\"id\":\"u1\",\"role\":\"customer\","
                       "\"team\":\"team-a\"},\"ticket\":{\"_id\":\"6720b1c8f1c2b3a5e4d90130\",\"category\":\"c\","
                       "\"subject\":\"s\",\"description\":\"d\",\"priority\":\"low\"}}");
    json_decref(built);

    request = (tk_request){0};
    request.type = TK_REQUEST_TICKETS_LIST;
    request.actor = (tk_actor){.id = "boss", .team = NULL, .is_admin = true};
    built = tk_request_json_new(&request);
    assert_dump(built, "{\"version\":1,\"type\":\"tickets.list\",\"actor\":{\"id\":\"boss\",\"role\":\"admin\"}}");
    json_decref(built);

    request.type = TK_REQUEST_TYPE_COUNT;
    assert_null(tk_request_json_new(&request));

    tk_actor actor = {.id = "boss", .team = "ops", .is_admin = true};
    json_t *actor_json = tk_actor_json_new(&actor);
    assert_dump(actor_json, "{\"id\":\"boss\",\"role\":\"admin\",\"team\":\"ops\"}");
    json_decref(actor_json);
}

static void test_request_json_carries_the_idempotency_key(void **state) {
    (void)state;
    tk_request request = {0};
    request.type = TK_REQUEST_TICKET_REPLY;
    request.actor = (tk_actor){.id = "u1", .team = "team-a", .is_admin = false};
    request.ticket_id = "6720b1c8f1c2b3a5e4d90130";
    request.response_id = "6720b473f1c2b3a5e4d90132";
    request.description = "d";
    request.idempotency_key = "key-1";
    json_t *built = tk_request_json_new(&request);
    assert_dump(built, "{\"version\":1,\"type\":\"ticket.reply\",\"actor\":{\"id\":\"u1\",\"role\":\"customer\","
                       "\"team\":\"team-a\"},\"ticketId\":\"6720b1c8f1c2b3a5e4d90130\",\"reply\":{\"_id\":"
                       "\"6720b473f1c2b3a5e4d90132\",\"description\":\"d\"},\"idempotencyKey\":\"key-1\"}");
    json_decref(built);
    /* Queries carry none, even when set. */
    request.type = TK_REQUEST_TICKETS_LIST;
    built = tk_request_json_new(&request);
    assert_null(json_object_get(built, "idempotencyKey"));
    json_decref(built);
}

static void test_idempotency_key_is_valid(void **state) {
    (void)state;
    assert_true(tk_idempotency_key_is_valid("a"));
    assert_true(tk_idempotency_key_is_valid("4f9c2a7e-1b3d-4c5e-9f80-a1b2c3d4e5f6"));
    assert_true(tk_idempotency_key_is_valid("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"));
    char *longest = tu_repeat("k", TK_IDEMPOTENCY_KEY_MAX);
    assert_true(tk_idempotency_key_is_valid(longest));
    free(longest);
    char *too_long = tu_repeat("k", TK_IDEMPOTENCY_KEY_MAX + 1);
    assert_false(tk_idempotency_key_is_valid(too_long));
    free(too_long);
    assert_false(tk_idempotency_key_is_valid(NULL));
    assert_false(tk_idempotency_key_is_valid(""));
    assert_false(tk_idempotency_key_is_valid("a b"));
    assert_false(tk_idempotency_key_is_valid(" a"));
    assert_false(tk_idempotency_key_is_valid("a\t"));
    assert_false(tk_idempotency_key_is_valid("a\x7f"));
    assert_false(tk_idempotency_key_is_valid("caf\xc3\xa9"));
}

/* The page and version of an answer travel beside the body, before
 * "success" (so the gateway's pass-through never copies them into a body),
 * and come out of it again intact. */
static void test_reply_meta_round_trip(void **state) {
    (void)state;
    static const char CURSOR[] = "AQAAAZLSyF_7ZyCxyPHCs6Xk2QEwiMibTkz1E_k";
    json_t *reply = tk_reply_json_new_meta(200, "Ticket fetched successfullly!", CURSOR, NULL, json_array());
    assert_dump(reply, "{\"version\":1,\"status\":200,\"page\":{\"next\":\"AQAAAZLSyF_7ZyCxyPHCs6Xk2QEwiMibTkz1E_k\"},"
                       "\"success\":true,\"message\":\"Ticket fetched successfullly!\",\"data\":[]}");
    char *text = json_dumps(reply, JSON_COMPACT);
    json_decref(reply);
    int status = 0;
    json_t *body = NULL;
    char err[TK_ERROR_TEXT_MAX];
    assert_int_equal(tk_reply_parse(text, strlen(text), &status, &body, err, sizeof err), 0);
    free(text);
    char *next = NULL;
    char etag[24];
    tk_reply_take_meta(body, &next, etag, sizeof etag);
    assert_string_equal(next, CURSOR);
    assert_string_equal(etag, "");
    assert_dump(body, "{\"success\":true,\"message\":\"Ticket fetched successfullly!\",\"data\":[]}");
    free(next);
    json_decref(body);

    reply = tk_reply_json_new_meta(200, "Ticket fetched successfullly!", NULL, "\"3\"", json_object());
    assert_dump(reply, "{\"version\":1,\"status\":200,\"etag\":\"\\\"3\\\"\",\"success\":true,"
                       "\"message\":\"Ticket fetched successfullly!\",\"data\":{}}");
    text = json_dumps(reply, JSON_COMPACT);
    json_decref(reply);
    assert_int_equal(tk_reply_parse(text, strlen(text), &status, &body, err, sizeof err), 0);
    free(text);
    tk_reply_take_meta(body, &next, etag, sizeof etag);
    assert_null(next);
    assert_string_equal(etag, "\"3\"");
    assert_dump(body, "{\"success\":true,\"message\":\"Ticket fetched successfullly!\",\"data\":{}}");
    json_decref(body);
}

static void test_reply_json_new(void **state) {
    (void)state;
    json_t *data = json_pack("{s:s}", "_id", "6720b1c8f1c2b3a5e4d90130");
    json_t *reply = tk_reply_json_new(201, "Ticket created successfullly!", data); /* takes data */
    assert_dump(reply, "{\"version\":1,\"status\":201,\"success\":true,\"message\":\"Ticket created successfullly!\","
                       "\"data\":{\"_id\":\"6720b1c8f1c2b3a5e4d90130\"}}");
    json_decref(reply);

    reply = tk_reply_json_new(404, "Ticket not found", NULL);
    assert_dump(reply, "{\"version\":1,\"status\":404,\"success\":false,\"message\":\"Ticket not found\"}");
    json_decref(reply);

    /* success follows the status class. */
    static const struct {
        int status;
        bool is_success;
    } classes[] = {{200, true}, {299, true}, {199, false}, {300, false}, {400, false}, {503, false}};
    for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++) {
        reply = tk_reply_json_new(classes[i].status, "m", NULL);
        assert_non_null(reply);
        assert_int_equal(json_is_true(json_object_get(reply, "success")), classes[i].is_success);
        json_decref(reply);
    }

    /* An array is data too (the ticket list). */
    reply = tk_reply_json_new(200, "Ticket fetched successfullly!", json_array());
    assert_dump(reply, "{\"version\":1,\"status\":200,\"success\":true,\"message\":\"Ticket fetched successfullly!\","
                       "\"data\":[]}");
    json_decref(reply);
}

static void assert_reply_body(const char *reply_text, int expected_status, const char *expected_body) {
    int status = -1;
    json_t *body = NULL;
    char err[TK_ERROR_TEXT_MAX] = "";
    int rc = tk_reply_parse(reply_text, strlen(reply_text), &status, &body, err, sizeof err);
    if (rc != 0) fail_msg("reply refused: %s", err);
    assert_int_equal(status, expected_status);
    assert_dump(body, expected_body);
    json_decref(body);
}

static void test_reply_parse_gives_the_http_body(void **state) {
    (void)state;
    /* version and status leave; success, message, data stay in that order. */
    assert_reply_body("{\"version\":1,\"status\":201,\"success\":true,\"message\":\"Ticket created successfullly!\","
                      "\"data\":{\"_id\":\"6720b1c8f1c2b3a5e4d90130\",\"__v\":0}}",
                      201,
                      "{\"success\":true,\"message\":\"Ticket created successfullly!\","
                      "\"data\":{\"_id\":\"6720b1c8f1c2b3a5e4d90130\",\"__v\":0}}");
    assert_reply_body("{\"version\":1,\"status\":404,\"success\":false,\"message\":\"Ticket not found\"}", 404,
                      "{\"success\":false,\"message\":\"Ticket not found\"}");
    assert_reply_body("{\"version\":1,\"status\":400,\"success\":false,\"message\":\"Field 'ticket.subject' is "
                      "required\"}",
                      400, "{\"success\":false,\"message\":\"Field 'ticket.subject' is required\"}");
    /* Large numbers and unicode pass through untouched. */
    assert_reply_body("{\"version\":1,\"status\":200,\"success\":true,\"message\":\"ok\",\"data\":[\"\\u00e9\"]}", 200,
                      "{\"success\":true,\"message\":\"ok\",\"data\":[\"\xc3\xa9\"]}");
}

static void test_reply_round_trip(void **state) {
    (void)state;
    json_t *data = json_pack("[{s:s}, {s:s}]", "_id", "a", "_id", "b");
    json_t *reply = tk_reply_json_new(200, "Ticket fetched successfullly!", data);
    char *text = json_dumps(reply, JSON_COMPACT);
    assert_reply_body(text, 200,
                      "{\"success\":true,\"message\":\"Ticket fetched successfullly!\","
                      "\"data\":[{\"_id\":\"a\"},{\"_id\":\"b\"}]}");
    free(text);
    json_decref(reply);
}

static void assert_reply_refused(const char *reply_text, const char *expected_err_prefix) {
    int status = -1;
    json_t *body = (json_t *)1;
    char err[TK_ERROR_TEXT_MAX] = "";
    assert_int_equal(tk_reply_parse(reply_text, strlen(reply_text), &status, &body, err, sizeof err), -1);
    assert_null(body);
    if (strncmp(err, expected_err_prefix, strlen(expected_err_prefix)) != 0)
        fail_msg("for %s: expected \"%s...\", got \"%s\"", reply_text, expected_err_prefix, err);
}

static void test_reply_parse_refuses_malformed_replies(void **state) {
    (void)state;
    assert_reply_refused("", "reply is not valid JSON: ");
    assert_reply_refused("{\"version\":1,\"status\":200", "reply is not valid JSON: ");
    assert_reply_refused("{\"version\":1,\"status\":200,\"status\":500,\"success\":true,\"message\":\"m\"}",
                         "reply is not valid JSON: duplicate object key");
    assert_reply_refused("[1,2]", "reply lacks version 1, status, success or message");
    assert_reply_refused("{\"version\":2,\"status\":200,\"success\":true,\"message\":\"m\"}",
                         "reply lacks version 1, status, success or message");
    assert_reply_refused("{\"version\":1,\"success\":true,\"message\":\"m\"}",
                         "reply lacks version 1, status, success or message");
    assert_reply_refused("{\"version\":1,\"status\":\"200\",\"success\":true,\"message\":\"m\"}",
                         "reply lacks version 1, status, success or message");
    assert_reply_refused("{\"version\":1,\"status\":200.0,\"success\":true,\"message\":\"m\"}",
                         "reply lacks version 1, status, success or message");
    assert_reply_refused("{\"version\":1,\"status\":99,\"success\":true,\"message\":\"m\"}",
                         "reply lacks version 1, status, success or message");
    assert_reply_refused("{\"version\":1,\"status\":600,\"success\":false,\"message\":\"m\"}",
                         "reply lacks version 1, status, success or message");
    assert_reply_refused("{\"version\":1,\"status\":200,\"message\":\"m\"}",
                         "reply lacks version 1, status, success or message");
    assert_reply_refused("{\"version\":1,\"status\":200,\"success\":1,\"message\":\"m\"}",
                         "reply lacks version 1, status, success or message");
    assert_reply_refused("{\"version\":1,\"status\":200,\"success\":true}",
                         "reply lacks version 1, status, success or message");
    assert_reply_refused("{\"version\":1,\"status\":200,\"success\":true,\"message\":null}",
                         "reply lacks version 1, status, success or message");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_cases_parse),
        cmocka_unit_test(test_invalid_cases_fail_with_their_reason),
        cmocka_unit_test(test_valid_cases_round_trip),
        cmocka_unit_test(test_parse_create_fills_fields),
        cmocka_unit_test(test_parse_create_defaults_priority_to_low),
        cmocka_unit_test(test_parse_reply_and_list),
        cmocka_unit_test(test_parse_uses_len_not_nul),
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_request_json_matches_the_contract),
        cmocka_unit_test(test_request_json_from_fields),
        cmocka_unit_test(test_request_json_carries_the_idempotency_key),
        cmocka_unit_test(test_idempotency_key_is_valid),
        cmocka_unit_test(test_reply_json_new),
        cmocka_unit_test(test_reply_meta_round_trip),
        cmocka_unit_test(test_reply_parse_gives_the_http_body),
        cmocka_unit_test(test_reply_round_trip),
        cmocka_unit_test(test_parse_update_fills_changes),
        cmocka_unit_test(test_reply_without_options_is_unchanged),
        cmocka_unit_test(test_reply_parse_refuses_malformed_replies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
