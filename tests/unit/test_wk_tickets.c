/* wk_tickets and wk_store without a database: a write for a partition the
 * lane no longer owns never starts, and the ambiguous server answers
 * (MaxTimeMSExpired, WriteConcernFailed) are retried (the retry reads first)
 * rather than answered 500 "not applied". */
#include "test_support.h"

#include <mongoc/mongoc.h>
#include <string.h>

#include "tk_clock.h"
#include "tk_kafka.h"
#include "wk_store.h"
#include "wk_tickets.h"

/* Nothing listens there; server selection would fail after 300 ms. */
#define NOWHERE_URI "mongodb://127.0.0.1:1/unit?serverSelectionTimeoutMS=300&connectTimeoutMS=300"

static void test_fenced_create_writes_nothing(void **state) {
    (void)state;
    char err[256];
    wk_store store;
    assert_int_equal(wk_store_init(&store, NOWHERE_URI, err, sizeof err), 0);
    mongoc_client_t *client = wk_store_pop(&store);
    mongoc_collection_t *tickets = wk_store_tickets(&store, client);

    wk_fence fence;
    assert_int_equal(wk_fence_init(&fence), 0);
    wk_lease lease = {&fence, TK_TOPIC_COMMANDS, 4, wk_fence_assign(&fence, TK_TOPIC_COMMANDS, 4)};
    wk_fence_revoke(&fence, TK_TOPIC_COMMANDS, 4); /* the partition moved on while the message waited */
    wk_write_guard guard = {&lease, true, NULL};

    tk_request request;
    memset(&request, 0, sizeof request);
    request.type = TK_REQUEST_TICKET_CREATE;
    request.actor.id = "671fa1c8f1c2b3a5e4d90001";
    request.actor.team = "team-a";
    request.ticket_id = "6720b1c8f1c2b3a5e4d90130";
    request.category = "Support";
    request.subject = "Account";
    request.description = "Locked out";
    request.priority = "low";
    wk_result result;
    int64_t started = tk_monotonic_ms();
    assert_int_equal(wk_tickets_execute(tickets, &request, &guard, &result), WK_FENCED);
    /* Refused before any round trip: no server selection wait. */
    assert_true(tk_monotonic_ms() - started < 250);
    assert_null(result.data);
    assert_null(result.event);

    wk_result_close(&result);
    wk_fence_close(&fence);
    mongoc_collection_destroy(tickets);
    wk_store_push(&store, client);
    wk_store_close(&store);
}

static void test_ambiguous_outcomes_are_retried(void **state) {
    (void)state;
    bson_error_t error;
    memset(&error, 0, sizeof error);
    error.domain = MONGOC_ERROR_SERVER;
    error.code = 50; /* MaxTimeMSExpired */
    assert_true(wk_store_is_transient(&error));
    error.domain = MONGOC_ERROR_WRITE_CONCERN;
    error.code = 64; /* WriteConcernFailed */
    assert_true(wk_store_is_transient(&error));
    error.domain = MONGOC_ERROR_SERVER;
    error.code = 1; /* InternalError: FerretDB's answer while its PostgreSQL stops */
    assert_true(wk_store_is_transient(&error));
    error.code = 2; /* BadValue: refused for good */
    assert_false(wk_store_is_transient(&error));
}

static void test_timeouts_default_unless_the_uri_sets_them(void **state) {
    (void)state;
    char err[256];
    wk_store store;
    assert_int_equal(wk_store_init(&store, "mongodb://127.0.0.1:1/unit", err, sizeof err), 0);
    assert_int_equal(mongoc_uri_get_option_as_int32(store.uri, MONGOC_URI_SOCKETTIMEOUTMS, 0),
                     WK_STORE_SOCKET_TIMEOUT_MS);
    assert_int_equal(mongoc_uri_get_option_as_int32(store.uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 0),
                     WK_STORE_SERVER_SELECTION_TIMEOUT_MS);
    wk_store_close(&store);
    assert_int_equal(wk_store_init(&store, "mongodb://127.0.0.1:1/unit?socketTimeoutMS=1234", err, sizeof err), 0);
    assert_int_equal(mongoc_uri_get_option_as_int32(store.uri, MONGOC_URI_SOCKETTIMEOUTMS, 0), 1234);
    wk_store_close(&store);
}

static int group_setup(void **state) {
    (void)state;
    mongoc_init();
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    mongoc_cleanup();
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fenced_create_writes_nothing),
        cmocka_unit_test(test_ambiguous_outcomes_are_retried),
        cmocka_unit_test(test_timeouts_default_unless_the_uri_sets_them),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
