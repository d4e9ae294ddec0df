/* gw_trace: W3C traceparent kept when valid, generated otherwise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gw_trace.h"

static const char VALID[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

static void test_valid_traceparent_is_kept(void **state) {
    (void)state;
    char out[GW_TRACEPARENT_LEN + 1];
    gw_trace_take(VALID, out);
    assert_string_equal(out, VALID);
}

static void test_invalid_ones_are_replaced(void **state) {
    (void)state;
    static const char *const bad[] = {
        NULL,
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",    /* short */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   /* upper case */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   /* zero trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   /* zero parent id */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   /* forbidden version */
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   /* separator */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r", /* trailing byte */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char out[GW_TRACEPARENT_LEN + 1];
        gw_trace_take(bad[i], out);
        assert_true(tk_trace_is_valid(out));
        assert_string_not_equal(out, VALID);
    }
}

static void test_generated_ones_differ(void **state) {
    (void)state;
    char a[GW_TRACEPARENT_LEN + 1], b[GW_TRACEPARENT_LEN + 1];
    gw_trace_take(NULL, a);
    gw_trace_take(NULL, b);
    assert_true(tk_trace_is_valid(a));
    assert_memory_not_equal(a + 3, b + 3, 32);
    assert_string_equal(a + 52, "-01");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_traceparent_is_kept),
        cmocka_unit_test(test_invalid_ones_are_replaced),
        cmocka_unit_test(test_generated_ones_differ),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
