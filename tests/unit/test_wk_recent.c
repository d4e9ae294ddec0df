/* wk_recent: a kept ticket comes back byte for byte under its id only; a
 * forget drops it, and a full cache its least recently used copy; a read
 * that raced a write cannot put back an older version; a document over the
 * size limit is not kept and drops the older copy; NULL (the cache off)
 * knows nothing. */
#include "test_support.h"

#include <string.h>

#include "wk_recent.h"

static bson_t *ticket_new(const bson_oid_t *id, int32_t version, size_t description_len) {
    char *description = bson_malloc0(description_len + 1);
    memset(description, 'd', description_len);
    bson_t *ticket = BCON_NEW("_id", BCON_OID(id), "description", BCON_UTF8(description), "__v", BCON_INT32(version));
    bson_free(description);
    return ticket;
}

static bool is_kept(wk_recent *recent, const bson_oid_t *id, const bson_t *expected) {
    bson_t copy = BSON_INITIALIZER;
    bool is_known = wk_recent_copy(recent, id, &copy);
    bool is_same = is_known && copy.len == expected->len &&
                   memcmp(bson_get_data(&copy), bson_get_data(expected), copy.len) == 0;
    bson_destroy(&copy);
    return is_same;
}

static void test_a_kept_ticket_comes_back_under_its_id_only(void **state) {
    (void)state;
    wk_recent *recent = wk_recent_new(64);
    bson_oid_t id, other;
    bson_oid_init(&id, NULL);
    bson_oid_init(&other, NULL);
    bson_t *ticket = ticket_new(&id, 3, 100);
    bson_t copy = BSON_INITIALIZER;
    assert_false(wk_recent_copy(recent, &id, &copy));
    wk_recent_put(recent, ticket);
    assert_true(is_kept(recent, &id, ticket));
    assert_false(wk_recent_copy(recent, &other, &copy));
    assert_int_equal(copy.len, 5); /* untouched */
    wk_recent_forget(recent, &id);
    assert_false(wk_recent_copy(recent, &id, &copy));
    bson_destroy(ticket);
    wk_recent_destroy(recent);
}

static void test_a_newer_write_replaces_and_an_older_read_does_not(void **state) {
    (void)state;
    wk_recent *recent = wk_recent_new(8);
    bson_oid_t id;
    bson_oid_init(&id, NULL);
    bson_t *first = ticket_new(&id, 1, 10), *second = ticket_new(&id, 2, 20);
    wk_recent_put(recent, first);
    wk_recent_put(recent, second);
    assert_true(is_kept(recent, &id, second));
    wk_recent_put(recent, first); /* a read of version 1 that finished late */
    assert_true(is_kept(recent, &id, second));
    bson_destroy(first);
    bson_destroy(second);
    wk_recent_destroy(recent);
}

static void test_a_full_cache_makes_room_by_its_least_recently_used_copy(void **state) {
    (void)state;
    wk_recent *recent = wk_recent_new(4); /* one bucket: every ticket shares it */
    bson_oid_t ids[5];
    bson_t *tickets[5];
    for (int i = 0; i < 5; i++) {
        bson_oid_init(&ids[i], NULL);
        tickets[i] = ticket_new(&ids[i], 0, 10);
    }
    for (int i = 0; i < 4; i++) wk_recent_put(recent, tickets[i]);
    assert_true(is_kept(recent, &ids[0], tickets[0])); /* used again: now the newest */
    wk_recent_put(recent, tickets[4]);                 /* takes the place of 1, the least recently used */
    assert_false(is_kept(recent, &ids[1], tickets[1]));
    for (int i = 0; i < 5; i++)
        if (i != 1) assert_true(is_kept(recent, &ids[i], tickets[i]));
    wk_recent_forget(recent, &ids[1]); /* not there: leaves the others alone */
    assert_true(is_kept(recent, &ids[4], tickets[4]));
    for (int i = 0; i < 5; i++) bson_destroy(tickets[i]);
    wk_recent_destroy(recent);
}

static void test_a_ticket_over_the_limit_is_not_kept_and_drops_its_older_copy(void **state) {
    (void)state;
    wk_recent *recent = wk_recent_new(8);
    bson_oid_t id;
    bson_oid_init(&id, NULL);
    bson_t *small = ticket_new(&id, 1, 10), *large = ticket_new(&id, 2, WK_RECENT_DOCUMENT_MAX);
    wk_recent_put(recent, small);
    wk_recent_put(recent, large);
    bson_t copy = BSON_INITIALIZER;
    assert_false(wk_recent_copy(recent, &id, &copy));
    bson_destroy(small);
    bson_destroy(large);
    wk_recent_destroy(recent);
}

static void test_no_cache_knows_nothing(void **state) {
    (void)state;
    assert_null(wk_recent_new(0));
    bson_oid_t id;
    bson_oid_init(&id, NULL);
    bson_t *ticket = ticket_new(&id, 0, 10);
    bson_t copy = BSON_INITIALIZER;
    wk_recent_put(NULL, ticket);
    assert_false(wk_recent_copy(NULL, &id, &copy));
    wk_recent_forget(NULL, &id);
    wk_recent_destroy(NULL);
    bson_destroy(ticket);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_kept_ticket_comes_back_under_its_id_only),
        cmocka_unit_test(test_a_newer_write_replaces_and_an_older_read_does_not),
        cmocka_unit_test(test_a_full_cache_makes_room_by_its_least_recently_used_copy),
        cmocka_unit_test(test_a_ticket_over_the_limit_is_not_kept_and_drops_its_older_copy),
        cmocka_unit_test(test_no_cache_knows_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
