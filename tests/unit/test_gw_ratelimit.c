/* gw_ratelimit: a token bucket per user. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "gw_ratelimit.h"

#define SECOND_US 1000000

static void test_burst_then_refused_with_retry_after(void **state) {
    (void)state;
    gw_ratelimit limiter;
    int retry_after = 0;
    assert_int_equal(gw_ratelimit_init(&limiter, 2.0, 3.0, 1024), 0);
    for (int i = 0; i < 3; i++) assert_true(gw_ratelimit_take(&limiter, "alice", 0, &retry_after));
    assert_false(gw_ratelimit_take(&limiter, "alice", 0, &retry_after));
    assert_int_equal(retry_after, 1); /* half a second rounds up to one */
    gw_ratelimit_close(&limiter);
}

static void test_tokens_come_back_at_the_rate(void **state) {
    (void)state;
    gw_ratelimit limiter;
    int retry_after = 0;
    assert_int_equal(gw_ratelimit_init(&limiter, 2.0, 2.0, 1024), 0);
    assert_true(gw_ratelimit_take(&limiter, "bob", 0, &retry_after));
    assert_true(gw_ratelimit_take(&limiter, "bob", 0, &retry_after));
    assert_false(gw_ratelimit_take(&limiter, "bob", SECOND_US / 4, &retry_after));
    assert_true(gw_ratelimit_take(&limiter, "bob", SECOND_US / 2 + SECOND_US / 4, &retry_after));
    /* Never more than the burst, however long the pause. */
    int64_t later = 3600LL * SECOND_US;
    assert_true(gw_ratelimit_take(&limiter, "bob", later, &retry_after));
    assert_true(gw_ratelimit_take(&limiter, "bob", later, &retry_after));
    assert_false(gw_ratelimit_take(&limiter, "bob", later, &retry_after));
    gw_ratelimit_close(&limiter);
}

static void test_users_have_their_own_buckets(void **state) {
    (void)state;
    gw_ratelimit limiter;
    int retry_after = 0;
    assert_int_equal(gw_ratelimit_init(&limiter, 1.0, 1.0, 1024), 0);
    assert_true(gw_ratelimit_take(&limiter, "carol", 0, &retry_after));
    assert_false(gw_ratelimit_take(&limiter, "carol", 0, &retry_after));
    assert_true(gw_ratelimit_take(&limiter, "dave", 0, &retry_after));
    gw_ratelimit_close(&limiter);
}

static void test_zero_rate_means_no_limit(void **state) {
    (void)state;
    gw_ratelimit limiter;
    int retry_after = 0;
    assert_int_equal(gw_ratelimit_init(&limiter, 0.0, 1.0, 1024), 0);
    for (int i = 0; i < 10000; i++) assert_true(gw_ratelimit_take(&limiter, "eve", 0, &retry_after));
    gw_ratelimit_close(&limiter);
}

static void test_many_users_evict_the_stalest(void **state) {
    (void)state;
    gw_ratelimit limiter;
    int retry_after = 0;
    char user[32];
    assert_int_equal(gw_ratelimit_init(&limiter, 1.0, 1.0, 1024), 0);
    /* 100k users through a 1024-slot table: each new user starts full, and
       is limited like anyone (a limiter that always allows fails here). */
    for (int i = 0; i < 100000; i++) {
        snprintf(user, sizeof user, "user-%d", i);
        assert_true(gw_ratelimit_take(&limiter, user, i, &retry_after));
        assert_false(gw_ratelimit_take(&limiter, user, i, &retry_after));
        assert_int_equal(retry_after, 1);
    }
    /* The most recent user is still remembered (its bucket still empty a
       microsecond later); the stalest was evicted and starts full again. */
    assert_false(gw_ratelimit_take(&limiter, "user-99999", 100000, &retry_after));
    assert_true(gw_ratelimit_take(&limiter, "user-0", 100000, &retry_after));
    assert_false(gw_ratelimit_take(&limiter, "user-0", 100000, &retry_after));
    gw_ratelimit_close(&limiter);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_refused_with_retry_after), cmocka_unit_test(test_tokens_come_back_at_the_rate),
        cmocka_unit_test(test_users_have_their_own_buckets),        cmocka_unit_test(test_zero_rate_means_no_limit),
        cmocka_unit_test(test_many_users_evict_the_stalest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
