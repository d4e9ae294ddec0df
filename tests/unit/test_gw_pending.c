/* gw_pending: the correlation table of requests waiting for a reply. */
#include "test_support.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "gw_pending.h"

#define MANY 10000

static void entry_init(gw_pending_entry *entry, int64_t deadline_ms) {
    memset(entry, 0, sizeof *entry);
    tk_correlation_id_new(entry->correlation_id);
    entry->deadline_ms = deadline_ms;
}

static int add(gw_pending *table, gw_pending_entry *entry) {
    gw_pending_lock(table);
    int rc = gw_pending_add_locked(table, entry);
    gw_pending_unlock(table);
    return rc;
}

static gw_pending_entry *find(gw_pending *table, const char *id) {
    gw_pending_lock(table);
    gw_pending_entry *entry = gw_pending_find_locked(table, id, strlen(id));
    gw_pending_unlock(table);
    return entry;
}

static gw_pending_entry *take(gw_pending *table, const char *id) {
    gw_pending_lock(table);
    gw_pending_entry *entry = gw_pending_take_locked(table, id, strlen(id));
    gw_pending_unlock(table);
    return entry;
}

static void test_add_find_take(void **state) {
    (void)state;
    gw_pending table;
    assert_int_equal(gw_pending_init(&table, 16), 0);
    assert_int_equal(gw_pending_count(&table), 0);
    assert_int_equal(gw_pending_next_deadline(&table), -1);

    gw_pending_entry a, b, c;
    entry_init(&a, 100);
    entry_init(&b, 200);
    entry_init(&c, 300);
    assert_int_equal(add(&table, &a), 0);
    assert_int_equal(add(&table, &b), 0);
    assert_int_equal(add(&table, &c), 0);
    assert_int_equal(gw_pending_count(&table), 3);

    assert_ptr_equal(find(&table, a.correlation_id), &a);
    assert_ptr_equal(find(&table, b.correlation_id), &b);
    assert_ptr_equal(find(&table, c.correlation_id), &c);
    assert_int_equal(gw_pending_count(&table), 3); /* find does not remove */

    /* Unknown ids, and ids of the wrong length (a reply header is outside input). */
    char unknown[TK_CORRELATION_ID_LEN + 1];
    tk_correlation_id_new(unknown);
    assert_null(find(&table, unknown));
    gw_pending_lock(&table);
    assert_null(gw_pending_find_locked(&table, a.correlation_id, TK_CORRELATION_ID_LEN - 1));
    assert_null(gw_pending_find_locked(&table, a.correlation_id, 0));
    assert_null(gw_pending_take_locked(&table, a.correlation_id, TK_CORRELATION_ID_LEN - 1));
    gw_pending_unlock(&table);
    /* Upper case is another id. */
    char upper[TK_CORRELATION_ID_LEN + 1];
    for (size_t i = 0; i <= TK_CORRELATION_ID_LEN; i++)
        upper[i] = (char)(a.correlation_id[i] >= 'a' && a.correlation_id[i] <= 'f' ? a.correlation_id[i] - 32
                                                                                   : a.correlation_id[i]);
    if (strcmp(upper, a.correlation_id) != 0) assert_null(find(&table, upper));

    assert_ptr_equal(take(&table, b.correlation_id), &b);
    assert_int_equal(gw_pending_count(&table), 2);
    assert_null(find(&table, b.correlation_id));
    assert_null(take(&table, b.correlation_id)); /* a second reply finds nothing */
    assert_ptr_equal(find(&table, a.correlation_id), &a);
    assert_ptr_equal(find(&table, c.correlation_id), &c);

    assert_ptr_equal(take(&table, a.correlation_id), &a);
    assert_ptr_equal(take(&table, c.correlation_id), &c);
    assert_int_equal(gw_pending_count(&table), 0);
    assert_int_equal(gw_pending_next_deadline(&table), -1);
    assert_null(gw_pending_take_oldest(&table));
    gw_pending_close(&table);
}

static void test_capacity(void **state) {
    (void)state;
    gw_pending table;
    assert_int_equal(gw_pending_init(&table, 3), 0);
    gw_pending_entry entries[5];
    for (int i = 0; i < 5; i++) entry_init(&entries[i], i);
    for (int i = 0; i < 3; i++) assert_int_equal(add(&table, &entries[i]), 0);
    assert_int_equal(add(&table, &entries[3]), -1); /* full: the caller answers 503 */
    assert_int_equal(gw_pending_count(&table), 3);
    assert_null(find(&table, entries[3].correlation_id));
    /* Room again after one leaves. */
    assert_int_equal(gw_pending_remove(&table, &entries[1]), 0);
    assert_int_equal(add(&table, &entries[3]), 0);
    assert_int_equal(add(&table, &entries[4]), -1);
    assert_int_equal(gw_pending_count(&table), 3);
    gw_pending_close(&table);

    /* A table of zero takes nothing. */
    assert_int_equal(gw_pending_init(&table, 0), 0);
    assert_int_equal(add(&table, &entries[0]), -1);
    gw_pending_close(&table);
}

static void test_deadline_order_and_expiry(void **state) {
    (void)state;
    gw_pending table;
    assert_int_equal(gw_pending_init(&table, 16), 0);
    gw_pending_entry e[4];
    entry_init(&e[0], 1000);
    entry_init(&e[1], 1000); /* same deadline: kept in arrival order */
    entry_init(&e[2], 1500);
    entry_init(&e[3], 2000);
    for (int i = 0; i < 4; i++) assert_int_equal(add(&table, &e[i]), 0);
    assert_int_equal(gw_pending_next_deadline(&table), 1000);

    /* Nothing is due before its deadline. */
    assert_null(gw_pending_take_expired(&table, 0));
    assert_null(gw_pending_take_expired(&table, 999));
    assert_int_equal(gw_pending_count(&table), 4);
    /* Due at the deadline exactly, oldest first, one per call. */
    assert_ptr_equal(gw_pending_take_expired(&table, 1000), &e[0]);
    assert_ptr_equal(gw_pending_take_expired(&table, 1000), &e[1]);
    assert_null(gw_pending_take_expired(&table, 1000));
    assert_int_equal(gw_pending_next_deadline(&table), 1500);
    assert_ptr_equal(gw_pending_take_expired(&table, 5000), &e[2]);
    assert_int_equal(gw_pending_next_deadline(&table), 2000);
    assert_ptr_equal(gw_pending_take_expired(&table, 5000), &e[3]);
    assert_null(gw_pending_take_expired(&table, INT64_MAX));
    assert_int_equal(gw_pending_count(&table), 0);
    assert_int_equal(gw_pending_next_deadline(&table), -1);
    gw_pending_close(&table);
}

static void test_removal_keeps_order(void **state) {
    (void)state;
    gw_pending table;
    assert_int_equal(gw_pending_init(&table, 16), 0);
    gw_pending_entry e[5];
    for (int i = 0; i < 5; i++) {
        entry_init(&e[i], 100 * (i + 1));
        assert_int_equal(add(&table, &e[i]), 0);
    }
    /* Remove the oldest, one in the middle and the newest. */
    assert_int_equal(gw_pending_remove(&table, &e[0]), 0);
    assert_int_equal(gw_pending_remove(&table, &e[2]), 0);
    assert_int_equal(gw_pending_remove(&table, &e[4]), 0);
    assert_int_equal(gw_pending_count(&table), 2);
    assert_int_equal(gw_pending_next_deadline(&table), 200);
    /* The newest is gone: a new entry links behind e[3]. */
    gw_pending_entry late;
    entry_init(&late, 600);
    assert_int_equal(add(&table, &late), 0);
    assert_ptr_equal(gw_pending_take_oldest(&table), &e[1]);
    assert_ptr_equal(gw_pending_take_oldest(&table), &e[3]);
    assert_ptr_equal(gw_pending_take_oldest(&table), &late);
    assert_null(gw_pending_take_oldest(&table));
    gw_pending_close(&table);
}

static void test_take_oldest_ignores_deadlines(void **state) {
    (void)state;
    gw_pending table;
    assert_int_equal(gw_pending_init(&table, 4), 0);
    gw_pending_entry a, b;
    entry_init(&a, INT64_MAX - 1);
    entry_init(&b, INT64_MAX);
    add(&table, &a);
    add(&table, &b);
    assert_null(gw_pending_take_expired(&table, 0));
    assert_ptr_equal(gw_pending_take_oldest(&table), &a); /* shutdown: answer everyone */
    assert_ptr_equal(gw_pending_take_oldest(&table), &b);
    assert_null(gw_pending_take_oldest(&table));
    gw_pending_close(&table);
}

/* Whoever removes an entry completes it: every other path must then fail. */
static void test_exactly_once_completion(void **state) {
    (void)state;
    gw_pending table;
    assert_int_equal(gw_pending_init(&table, 8), 0);
    gw_pending_entry e;

    /* Reply first, then the timeout and the client hang-up find nothing. */
    entry_init(&e, 10);
    add(&table, &e);
    assert_ptr_equal(take(&table, e.correlation_id), &e);
    assert_null(gw_pending_take_expired(&table, 100));
    assert_int_equal(gw_pending_remove(&table, &e), -1);

    /* Timeout first, then the late reply finds nothing. */
    entry_init(&e, 10);
    add(&table, &e);
    assert_ptr_equal(gw_pending_take_expired(&table, 100), &e);
    assert_null(take(&table, e.correlation_id));
    assert_int_equal(gw_pending_remove(&table, &e), -1);

    /* Removed (publish failed), removed again. */
    entry_init(&e, 10);
    add(&table, &e);
    assert_int_equal(gw_pending_remove(&table, &e), 0);
    assert_int_equal(gw_pending_remove(&table, &e), -1);
    assert_null(gw_pending_take_oldest(&table));
    assert_int_equal(gw_pending_count(&table), 0);

    /* Never added at all. */
    gw_pending_entry stranger;
    entry_init(&stranger, 10);
    assert_int_equal(gw_pending_remove(&table, &stranger), -1);
    gw_pending_close(&table);
}

/* The same FNV-1a as the table, to make sure the big test really shares buckets. */
static size_t bucket_of(const char *id, size_t buckets) {
    uint64_t hash = 1469598103934665603ULL;
    for (size_t i = 0; i < TK_CORRELATION_ID_LEN; i++) {
        hash ^= (unsigned char)id[i];
        hash *= 1099511628211ULL;
    }
    return (size_t)hash & (buckets - 1);
}

static void test_many_entries(void **state) {
    (void)state;
    gw_pending table;
    assert_int_equal(gw_pending_init(&table, MANY), 0);
    gw_pending_entry *entries = calloc(MANY, sizeof *entries);
    unsigned char *seen = calloc(table.bucket_mask + 1, 1);
    assert_non_null(entries);
    assert_non_null(seen);
    size_t collisions = 0;
    for (int i = 0; i < MANY; i++) {
        entry_init(&entries[i], i);
        assert_int_equal(add(&table, &entries[i]), 0);
        size_t bucket = bucket_of(entries[i].correlation_id, table.bucket_mask + 1);
        collisions += seen[bucket];
        seen[bucket] = 1;
    }
    assert_true(collisions > 100);
    assert_int_equal(gw_pending_count(&table), MANY);
    for (int i = 0; i < MANY; i++) assert_ptr_equal(find(&table, entries[i].correlation_id), &entries[i]);

    /* Remove every third entry (heads, middles and tails of chains). */
    for (int i = 0; i < MANY; i += 3) assert_ptr_equal(take(&table, entries[i].correlation_id), &entries[i]);
    int left = MANY - (MANY + 2) / 3;
    assert_int_equal(gw_pending_count(&table), left);
    for (int i = 0; i < MANY; i++) {
        gw_pending_entry *found = find(&table, entries[i].correlation_id);
        if (i % 3 == 0) assert_null(found);
        else assert_ptr_equal(found, &entries[i]);
    }
    /* The rest leave by deadline, in order. */
    int64_t previous = -1;
    int taken = 0;
    gw_pending_entry *entry;
    while ((entry = gw_pending_take_expired(&table, MANY)) != NULL) {
        assert_true(entry->deadline_ms > previous);
        assert_true(entry->deadline_ms % 3 != 0);
        previous = entry->deadline_ms;
        taken++;
    }
    assert_int_equal(taken, left);
    assert_int_equal(gw_pending_count(&table), 0);
    free(seen);
    free(entries);
    gw_pending_close(&table);
}

/* Two threads race for the same entries, as the reply thread and the
 * timeout/hang-up paths do: each entry must be completed exactly once. */
typedef struct {
    gw_pending *table;
    gw_pending_entry *entries;
    atomic_int *completions;
    int count;
} race;

static void *reply_side(void *arg) {
    race *r = arg;
    for (int i = 0; i < r->count; i++) {
        gw_pending_entry *entry = take(r->table, r->entries[i].correlation_id);
        if (entry != NULL) atomic_fetch_add(&r->completions[entry - r->entries], 1);
    }
    return NULL;
}

static void *timeout_side(void *arg) {
    race *r = arg;
    for (int i = r->count - 1; i >= 0; i--) {
        if (i % 2 == 0) {
            if (gw_pending_remove(r->table, &r->entries[i]) == 0) atomic_fetch_add(&r->completions[i], 1);
        } else {
            gw_pending_entry *entry = gw_pending_take_expired(r->table, INT64_MAX);
            if (entry != NULL) atomic_fetch_add(&r->completions[entry - r->entries], 1);
        }
    }
    return NULL;
}

static void test_concurrent_completion_is_exactly_once(void **state) {
    (void)state;
    gw_pending table;
    assert_int_equal(gw_pending_init(&table, MANY), 0);
    gw_pending_entry *entries = calloc(MANY, sizeof *entries);
    atomic_int *completions = calloc(MANY, sizeof *completions);
    assert_non_null(entries);
    assert_non_null(completions);
    for (int i = 0; i < MANY; i++) {
        entry_init(&entries[i], i);
        assert_int_equal(add(&table, &entries[i]), 0);
    }
    race r = {&table, entries, completions, MANY};
    pthread_t replies, timeouts;
    assert_int_equal(pthread_create(&replies, NULL, reply_side, &r), 0);
    assert_int_equal(pthread_create(&timeouts, NULL, timeout_side, &r), 0);
    pthread_join(replies, NULL);
    pthread_join(timeouts, NULL);
    /* Whatever neither side got is still there: shutdown takes it. */
    gw_pending_entry *entry;
    while ((entry = gw_pending_take_oldest(&table)) != NULL) atomic_fetch_add(&completions[entry - entries], 1);
    for (int i = 0; i < MANY; i++) {
        if (atomic_load(&completions[i]) != 1) fail_msg("entry %d completed %d times", i, atomic_load(&completions[i]));
    }
    assert_int_equal(gw_pending_count(&table), 0);
    free(completions);
    free(entries);
    gw_pending_close(&table);
}

static void test_close_accepts_an_empty_struct(void **state) {
    (void)state;
    gw_pending table;
    memset(&table, 0, sizeof table);
    gw_pending_close(&table);
    gw_pending_close(NULL);
    assert_int_equal(gw_pending_init(&table, 1), 0);
    gw_pending_close(&table);
    gw_pending_close(&table); /* twice */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_find_take),
        cmocka_unit_test(test_capacity),
        cmocka_unit_test(test_deadline_order_and_expiry),
        cmocka_unit_test(test_removal_keeps_order),
        cmocka_unit_test(test_take_oldest_ignores_deadlines),
        cmocka_unit_test(test_exactly_once_completion),
        cmocka_unit_test(test_many_entries),
        cmocka_unit_test(test_concurrent_completion_is_exactly_once),
        cmocka_unit_test(test_close_accepts_an_empty_struct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
