/* wk_fence: a lease holds only while its partition stays owned under the
 * same epoch; a revoke (or a revoke and a new assignment) ends it. */
#include "test_support.h"

#include "tk_kafka.h"
#include "wk_fence.h"

static void test_lease_holds_until_revoked(void **state) {
    (void)state;
    wk_fence fence;
    assert_int_equal(wk_fence_init(&fence), 0);
    uint64_t epoch = wk_fence_assign(&fence, TK_TOPIC_COMMANDS, 3);
    assert_true(epoch > 0);
    wk_lease lease = {&fence, TK_TOPIC_COMMANDS, 3, epoch};
    assert_true(wk_lease_holds(&lease));
    wk_fence_revoke(&fence, TK_TOPIC_COMMANDS, 3);
    assert_false(wk_lease_holds(&lease));
    assert_int_equal(wk_fence_epoch(&fence, TK_TOPIC_COMMANDS, 3), 0);
    wk_fence_close(&fence);
}

static void test_reassignment_does_not_revive_an_old_lease(void **state) {
    (void)state;
    wk_fence fence;
    assert_int_equal(wk_fence_init(&fence), 0);
    wk_lease old = {&fence, TK_TOPIC_COMMANDS, 1, wk_fence_assign(&fence, TK_TOPIC_COMMANDS, 1)};
    wk_fence_revoke(&fence, TK_TOPIC_COMMANDS, 1);
    uint64_t again = wk_fence_assign(&fence, TK_TOPIC_COMMANDS, 1);
    assert_true(again > old.epoch);
    assert_false(wk_lease_holds(&old));
    wk_lease fresh = {&fence, TK_TOPIC_COMMANDS, 1, again};
    assert_true(wk_lease_holds(&fresh));
    wk_fence_close(&fence);
}

static void test_other_partitions_and_topics_are_untouched(void **state) {
    (void)state;
    wk_fence fence;
    assert_int_equal(wk_fence_init(&fence), 0);
    wk_lease commands = {&fence, TK_TOPIC_COMMANDS, 2, wk_fence_assign(&fence, TK_TOPIC_COMMANDS, 2)};
    wk_lease queries = {&fence, TK_TOPIC_QUERIES, 2, wk_fence_assign(&fence, TK_TOPIC_QUERIES, 2)};
    wk_lease other = {&fence, TK_TOPIC_COMMANDS, 5, wk_fence_assign(&fence, TK_TOPIC_COMMANDS, 5)};
    wk_fence_revoke(&fence, TK_TOPIC_COMMANDS, 2);
    assert_false(wk_lease_holds(&commands));
    assert_true(wk_lease_holds(&queries));
    assert_true(wk_lease_holds(&other));
    wk_fence_revoke_all(&fence);
    assert_false(wk_lease_holds(&queries));
    assert_false(wk_lease_holds(&other));
    wk_lease unknown = {&fence, "no.such.topic", 0, 1};
    assert_false(wk_lease_holds(&unknown));
    wk_lease unfenced = {NULL, TK_TOPIC_COMMANDS, 0, 0};
    assert_true(wk_lease_holds(&unfenced));
    wk_fence_close(&fence);
    wk_fence_close(&fence); /* a closed fence is a zeroed one */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lease_holds_until_revoked),
        cmocka_unit_test(test_reassignment_does_not_revive_an_old_lease),
        cmocka_unit_test(test_other_partitions_and_topics_are_untouched),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
