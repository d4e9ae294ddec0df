/* gw_admission: the checks before the body, in their order, against a fake
 * request view (arrays of headers and query arguments) and real tokens. */
#include "test_support.h"

#include <jwt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gw_admission.h"

static const char SECRET[] = "k3Vq9yZb2Lr7Tn4Xw8Hd1Jf6Gs0Pc5Ma-unit-test-0001";
static const char TICKET_ID[] = "671fa1c8f1c2b3a5e4d90abc";

typedef struct {
    const char *key;
    const char *value;
    size_t value_len; /* 0: strlen(value) */
} fake_value;

typedef struct {
    fake_value headers[8];
    fake_value arguments[8];
} fake_request;

static size_t value_len(const fake_value *value) {
    return value->value_len != 0 ? value->value_len : strlen(value->value);
}

static const fake_value *values_of(fake_request *request, gw_value_kind kind) {
    return kind == GW_VALUE_HEADER ? request->headers : request->arguments;
}

static const char *fake_lookup(void *ctx, gw_value_kind kind, const char *name, bool *is_malformed) {
    for (const fake_value *value = values_of(ctx, kind); value->key != NULL; value++) {
        bool is_match = kind == GW_VALUE_HEADER ? strcasecmp(value->key, name) == 0 : strcmp(value->key, name) == 0;
        if (!is_match) continue;
        if (strlen(value->value) != value_len(value)) {
            *is_malformed = true;
            return NULL;
        }
        return value->value;
    }
    return NULL;
}

static void fake_each(void *ctx, gw_value_kind kind, gw_value_visit visit, void *arg) {
    for (const fake_value *value = values_of(ctx, kind); value->key != NULL; value++) {
        if (!visit(arg, value->key, strlen(value->key), value->value, value_len(value))) return;
    }
}

static char *bearer(const char *role, const char *team) {
    char *claims = tu_format("{\"sub\":\"671fa1c8f1c2b3a5e4d90001\",\"role\":\"%s\"%s%s%s,\"exp\":%lld}", role,
                             team != NULL ? ",\"team\":\"" : "", team != NULL ? team : "", team != NULL ? "\"" : "",
                             (long long)time(NULL) + 3600);
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_add_grants_json(jwt, claims), 0);
    assert_int_equal(jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)SECRET, (int)strlen(SECRET)), 0);
    char *token = jwt_encode_str(jwt);
    assert_non_null(token);
    char *header = tu_format("Bearer %s", token);
    free(token);
    jwt_free(jwt);
    free(claims);
    return header;
}

typedef struct {
    gw_auth auth;
    gw_ratelimit ratelimit;
    gw_admission admission;
    char *customer;
    char *admin;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(gw_auth_init(&f->auth, "HS256", SECRET, strlen(SECRET)), 0);
    assert_int_equal(gw_ratelimit_init(&f->ratelimit, 1, 5, 16), 0);
    f->admission = (gw_admission){&f->auth, &f->ratelimit, 100,
                                  tk_metrics_counter("test_rate_limited_total", "test", "")};
    f->customer = bearer("customer", "team-a");
    f->admin = bearer("admin", NULL);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    gw_ratelimit_close(&f->ratelimit);
    gw_auth_close(&f->auth);
    free(f->customer);
    free(f->admin);
    free(f);
    return 0;
}

static const gw_route *route_of(const char *path, const char *method) {
    const gw_route *route = NULL;
    const char *allow = NULL;
    assert_int_equal(gw_router_find(path, method, &route, &allow), GW_ROUTE_FOUND);
    return route;
}

/* Runs admission; returns the status and leaves the message in message. */
static int admit(fixture *f, const char *path, const char *method, fake_request *request, gw_admitted *out,
                 char message[TK_ERROR_TEXT_MAX]) {
    gw_request_view view = {request, fake_lookup, fake_each};
    memset(out, 0, sizeof *out);
    message[0] = '\0';
    return gw_admission_check(&f->admission, route_of(path, method), &view, out, message, TK_ERROR_TEXT_MAX);
}

static void expect(fixture *f, const char *path, const char *method, fake_request *request, int status,
                   const char *message) {
    gw_admitted out;
    char text[TK_ERROR_TEXT_MAX];
    assert_int_equal(admit(f, path, method, request, &out, text), status);
    if (message != NULL) assert_string_equal(text, message);
    gw_list_query_close(&out.list);
}

static void test_public_routes_need_no_token(void **state) {
    fake_request request = {0};
    expect(*state, "/healthz", "GET", &request, 0, NULL);
}

static void test_folded_header_name_is_refused_first(void **state) {
    fake_request request = {.headers = {{"Idempotency-KeyX-Injected", "1", 0}}};
    expect(*state, "/healthz", "GET", &request, 400, "Request has a malformed header");
    fake_request bad_char = {.headers = {{"Bad Name", "1", 0}}};
    expect(*state, "/api/ticket/get-tickets", "GET", &bad_char, 400, "Request has a malformed header");
}

static void test_token_and_role(void **state) {
    fixture *f = *state;
    fake_request none = {0};
    expect(f, "/api/ticket/get-tickets", "GET", &none, 401, NULL);
    fake_request nul = {.headers = {{"Authorization", "Bearer x\0y", 10}}};
    expect(f, "/api/ticket/get-tickets", "GET", &nul, 401, "Invalid token");
    fake_request customer = {.headers = {{"Authorization", f->customer, 0}}};
    expect(f, "/api/ticket/admin-get-tickets", "GET", &customer, 403, "Access denied: admins only");
    fake_request admin = {.headers = {{"Authorization", f->admin, 0}}};
    expect(f, "/api/ticket/get-tickets", "GET", &admin, 403, "Access denied: customers only");
}

static void test_admitted_list_carries_identity_and_query(void **state) {
    fixture *f = *state;
    fake_request request = {.headers = {{"Authorization", f->customer, 0}}, .arguments = {{"limit", "7", 0}}};
    gw_admitted out;
    char message[TK_ERROR_TEXT_MAX];
    assert_int_equal(admit(f, "/api/ticket/get-tickets", "GET", &request, &out, message), 0);
    assert_string_equal(out.identity.team, "team-a");
    assert_int_equal(out.list.limit, 7);
    gw_list_query_close(&out.list);
    fake_request bad = {.headers = {{"Authorization", f->customer, 0}}, .arguments = {{"limit", "0", 0}}};
    expect(f, "/api/ticket/get-tickets", "GET", &bad, 400, NULL);
}

static void test_ticket_id(void **state) {
    fixture *f = *state;
    fake_request missing = {.headers = {{"Authorization", f->customer, 0}}};
    expect(f, "/api/ticket/get-ticket", "GET", &missing, 400, "Query parameter 'id' is required");
    fake_request nul = {.headers = {{"Authorization", f->customer, 0}}, .arguments = {{"id", "a\0b", 3}}};
    expect(f, "/api/ticket/get-ticket", "GET", &nul, 400, "Invalid ticket id");
    fake_request good = {.headers = {{"Authorization", f->customer, 0}}, .arguments = {{"id", TICKET_ID, 0}}};
    gw_admitted out;
    char message[TK_ERROR_TEXT_MAX];
    assert_int_equal(admit(f, "/api/ticket/get-ticket", "GET", &good, &out, message), 0);
    assert_string_equal(out.ticket_id, TICKET_ID);
}

static void test_body_headers(void **state) {
    fixture *f = *state;
    const char *path = "/api/ticket/create-ticket";
    fake_request bad_key = {.headers = {{"Authorization", f->customer, 0}, {"Idempotency-Key", "has space", 0}}};
    expect(f, path, "POST", &bad_key, 400, "Header 'Idempotency-Key' must be 1 to 255 printable ASCII characters");
    fake_request no_type = {.headers = {{"Authorization", f->customer, 0}}};
    expect(f, path, "POST", &no_type, 415, "Content-Type must be application/json");
    fake_request too_long = {.headers = {{"Authorization", f->customer, 0},
                                         {"Content-Type", "application/json", 0},
                                         {"Content-Length", "101", 0}}};
    expect(f, path, "POST", &too_long, 413, "Request body is too large");
    fake_request good = {.headers = {{"Authorization", f->customer, 0},
                                     {"Content-Type", "application/json", 0},
                                     {"Idempotency-Key", "k-1", 0}}};
    gw_admitted out;
    char message[TK_ERROR_TEXT_MAX];
    assert_int_equal(admit(f, path, "POST", &good, &out, message), 0);
    assert_string_equal(out.idempotency_key, "k-1");
}

/* Each admission spends a token of the one user's bucket (burst 5): one
 * test for the refusals, one for what is taken. */
static void test_if_match_malformed(void **state) {
    fixture *f = *state;
    const char *message = "Header 'If-Match' must be the ticket's ETag, e.g. \"3\"";
    const char *bad[] = {"3", "W/\"3\"", "\"03\"", "\"1234567890123456\"", NULL};
    for (size_t i = 0; bad[i] != NULL; i++) {
        fake_request request = {.headers = {{"Authorization", f->admin, 0},
                                            {"Content-Type", "application/json", 0},
                                            {"If-Match", bad[i], 0}},
                                .arguments = {{"id", TICKET_ID, 0}}};
        expect(f, "/api/ticket/admin-update-ticket", "POST", &request, 400, message);
    }
}

static void test_if_match_taken(void **state) {
    fixture *f = *state;
    const char *path = "/api/ticket/admin-update-ticket";
    gw_admitted out;
    char text[TK_ERROR_TEXT_MAX];
    fake_request good = {.headers = {{"Authorization", f->admin, 0},
                                     {"Content-Type", "application/json", 0},
                                     {"If-Match", "\"123456789012345\"", 0}},
                         .arguments = {{"id", TICKET_ID, 0}}};
    assert_int_equal(admit(f, path, "POST", &good, &out, text), 0);
    assert_true(out.has_if_match);
    assert_true(out.if_match == 123456789012345LL);
    fake_request any = {.headers = {{"Authorization", f->admin, 0},
                                    {"Content-Type", "application/json", 0},
                                    {"If-Match", "*", 0}},
                        .arguments = {{"id", TICKET_ID, 0}}};
    assert_int_equal(admit(f, path, "POST", &any, &out, text), 0);
    assert_false(out.has_if_match);
    /* resolve-ticket has no body, and takes If-Match all the same */
    fake_request resolve = {.headers = {{"Authorization", f->customer, 0}, {"If-Match", "\"0\"", 0}},
                            .arguments = {{"id", TICKET_ID, 0}}};
    assert_int_equal(admit(f, "/api/ticket/resolve-ticket", "POST", &resolve, &out, text), 0);
    assert_true(out.has_if_match);
    assert_true(out.if_match == 0);
}

static void test_rate_limit_after_burst(void **state) {
    fixture *f = *state;
    fake_request request = {.headers = {{"Authorization", f->admin, 0}}};
    gw_admitted out;
    char message[TK_ERROR_TEXT_MAX];
    int status = 0;
    for (int i = 0; i < 10 && status == 0; i++) {
        status = admit(f, "/api/ticket/admin-get-tickets", "GET", &request, &out, message);
        gw_list_query_close(&out.list);
    }
    assert_int_equal(status, 429);
    assert_string_equal(message, "Too many requests, retry later");
    assert_true(out.retry_after_seconds >= 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_public_routes_need_no_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_folded_header_name_is_refused_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_and_role, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admitted_list_carries_identity_and_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ticket_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_if_match_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_if_match_taken, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit_after_burst, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
