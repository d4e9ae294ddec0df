/* tk_ids: ObjectIds, correlation ids, ISO-8601 times. */
#include "test_support.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tk_clock.h"
#include "tk_ids.h"
#include "tk_random.h"

#define MANY_IDS 100000
#define THREADS 4

static int compare_strings(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int is_lower_hex(const char *text, size_t len) {
    for (size_t i = 0; i < len; i++) {
        if (strchr("0123456789abcdef", text[i]) == NULL || text[i] == '\0') return 0;
    }
    return 1;
}

/* Sorts ids (an array of fixed-width strings via pointers) and fails on any repeat. */
static void assert_all_distinct(char **ids, size_t count) {
    qsort(ids, count, sizeof *ids, compare_strings);
    for (size_t i = 1; i < count; i++) {
        if (strcmp(ids[i - 1], ids[i]) == 0) fail_msg("id %s was issued twice", ids[i]);
    }
}

static void test_object_id_is_24_lowercase_hex(void **state) {
    (void)state;
    char id[TK_OBJECT_ID_LEN + 1];
    memset(id, 'X', sizeof id);
    tk_object_id_new(id);
    assert_int_equal(strlen(id), 24);
    assert_true(is_lower_hex(id, 24));
    assert_true(tk_object_id_is_valid(id, strlen(id)));
}

static void test_object_id_starts_with_the_current_time(void **state) {
    (void)state;
    char id[TK_OBJECT_ID_LEN + 1];
    time_t before = time(NULL);
    tk_object_id_new(id);
    time_t after = time(NULL);
    char prefix[9];
    memcpy(prefix, id, 8);
    prefix[8] = '\0';
    long long seconds = strtoll(prefix, NULL, 16);
    assert_in_range(seconds, (long long)before - 1, (long long)after + 1);
}

static void test_object_ids_unique_over_100k(void **state) {
    (void)state;
    char *storage = malloc((size_t)MANY_IDS * (TK_OBJECT_ID_LEN + 1));
    char **ids = malloc(MANY_IDS * sizeof *ids);
    assert_non_null(storage);
    assert_non_null(ids);
    for (size_t i = 0; i < MANY_IDS; i++) {
        ids[i] = storage + i * (TK_OBJECT_ID_LEN + 1);
        tk_object_id_new(ids[i]);
        if (!tk_object_id_is_valid(ids[i], strlen(ids[i]))) fail_msg("malformed id %s", ids[i]);
    }
    /* Same process: the 5 "process" bytes are shared, only time and counter move. */
    for (size_t i = 1; i < MANY_IDS; i++) assert_memory_equal(ids[0] + 8, ids[i] + 8, 10);
    assert_all_distinct(ids, MANY_IDS);
    free(ids);
    free(storage);
}

typedef struct {
    char *storage;
    size_t count;
    int is_correlation;
} id_batch;

static void *make_ids(void *arg) {
    id_batch *batch = arg;
    size_t width = batch->is_correlation ? TK_CORRELATION_ID_LEN + 1 : TK_OBJECT_ID_LEN + 1;
    for (size_t i = 0; i < batch->count; i++) {
        if (batch->is_correlation) tk_correlation_id_new(batch->storage + i * width);
        else tk_object_id_new(batch->storage + i * width);
    }
    return NULL;
}

/* Threads share the counters: ids made at once on several threads must still differ. */
static void assert_unique_across_threads(int is_correlation) {
    size_t width = is_correlation ? TK_CORRELATION_ID_LEN + 1 : TK_OBJECT_ID_LEN + 1;
    size_t per_thread = MANY_IDS / THREADS;
    char *storage = malloc(MANY_IDS * width);
    char **ids = malloc(MANY_IDS * sizeof *ids);
    assert_non_null(storage);
    assert_non_null(ids);
    pthread_t threads[THREADS];
    id_batch batches[THREADS];
    for (int t = 0; t < THREADS; t++) {
        batches[t] = (id_batch){storage + (size_t)t * per_thread * width, per_thread, is_correlation};
        assert_int_equal(pthread_create(&threads[t], NULL, make_ids, &batches[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
    for (size_t i = 0; i < per_thread * THREADS; i++) ids[i] = storage + i * width;
    assert_all_distinct(ids, per_thread * THREADS);
    free(ids);
    free(storage);
}

static void test_object_ids_unique_across_threads(void **state) {
    (void)state;
    assert_unique_across_threads(0);
}

static void test_correlation_id_is_32_lowercase_hex(void **state) {
    (void)state;
    char id[TK_CORRELATION_ID_LEN + 1];
    memset(id, 'X', sizeof id);
    tk_correlation_id_new(id);
    assert_int_equal(strlen(id), 32);
    assert_true(is_lower_hex(id, 32));
}

static void test_correlation_ids_unique_over_100k(void **state) {
    (void)state;
    char *storage = malloc((size_t)MANY_IDS * (TK_CORRELATION_ID_LEN + 1));
    char **ids = malloc(MANY_IDS * sizeof *ids);
    assert_non_null(storage);
    assert_non_null(ids);
    for (size_t i = 0; i < MANY_IDS; i++) {
        ids[i] = storage + i * (TK_CORRELATION_ID_LEN + 1);
        tk_correlation_id_new(ids[i]);
        assert_int_equal(strlen(ids[i]), TK_CORRELATION_ID_LEN);
    }
    assert_all_distinct(ids, MANY_IDS);
    free(ids);
    free(storage);
}

/* 128 random bits, not a per-process prefix and a counter: seeing one id
 * (X-Correlation-Id) tells nothing about the next. */
static void test_correlation_ids_are_unpredictable(void **state) {
    (void)state;
    enum { COUNT = 1000, HALF = TK_CORRELATION_ID_LEN / 2 };
    static char ids[COUNT][TK_CORRELATION_ID_LEN + 1];
    char *first_halves[COUNT], *second_halves[COUNT];
    static char halves[2][COUNT][HALF + 1];
    for (int i = 0; i < COUNT; i++) {
        assert_int_equal(tk_correlation_id_new(ids[i]), 0);
        memcpy(halves[0][i], ids[i], HALF);
        memcpy(halves[1][i], ids[i] + HALF, HALF);
        halves[0][i][HALF] = halves[1][i][HALF] = '\0';
        first_halves[i] = halves[0][i];
        second_halves[i] = halves[1][i];
    }
    /* Neither half repeats: no shared prefix, no counter in a shared suffix. */
    assert_all_distinct(first_halves, COUNT);
    assert_all_distinct(second_halves, COUNT);
    /* Each hex digit position takes many values (a counter's high digits would not). */
    for (int position = 0; position < TK_CORRELATION_ID_LEN; position++) {
        int seen[16] = {0}, distinct = 0;
        for (int i = 0; i < COUNT; i++) {
            int digit = (int)(strchr("0123456789abcdef", ids[i][position]) - "0123456789abcdef");
            if (!seen[digit]++) distinct++;
        }
        if (distinct < 12) fail_msg("hex digit %d takes only %d values over %d ids", position, distinct, COUNT);
    }
}

static void test_correlation_ids_unique_across_threads(void **state) {
    (void)state;
    assert_unique_across_threads(1);
}

static void test_object_id_validity(void **state) {
    (void)state;
    assert_true(tk_object_id_is_valid("6720b1c8f1c2b3a5e4d90130", 24));
    assert_true(tk_object_id_is_valid("000000000000000000000000", 24));
    assert_true(tk_object_id_is_valid("ffffffffffffffffffffffff", 24));
    /* The length given counts, not the NUL: a longer buffer's prefix is fine. */
    assert_true(tk_object_id_is_valid("6720b1c8f1c2b3a5e4d90130ff", 24));

    assert_false(tk_object_id_is_valid("6720B1C8F1C2B3A5E4D90130", 24)); /* canonical form is lower case */
    assert_false(tk_object_id_is_valid("6720b1c8f1c2b3a5e4d9013A", 24));
    assert_false(tk_object_id_is_valid("6720b1c8f1c2b3a5e4d9013", 23));
    assert_false(tk_object_id_is_valid("6720b1c8f1c2b3a5e4d901300", 25));
    assert_false(tk_object_id_is_valid("6720b1c8f1c2b3a5e4d9013g", 24));
    assert_false(tk_object_id_is_valid("6720b1c8f1c2b3a5e4d9013 ", 24));
    assert_false(tk_object_id_is_valid("6720b1c8-1c2b3a5e4d90130", 24));
    assert_false(tk_object_id_is_valid("0x20b1c8f1c2b3a5e4d90130", 24));
    assert_false(tk_object_id_is_valid("6720b1c8f1c2\0b3a5e4d9013", 24)); /* NUL inside */
    assert_false(tk_object_id_is_valid("", 0));
    assert_false(tk_object_id_is_valid(NULL, 24));
}

static void assert_time(int64_t epoch_ms, const char *expected) {
    char text[TK_ISO_TIME_LEN + 1];
    memset(text, 'X', sizeof text);
    tk_iso_time_format(epoch_ms, text);
    assert_string_equal(text, expected);
    assert_int_equal(strlen(text), TK_ISO_TIME_LEN);
}

static void test_iso_time_format(void **state) {
    (void)state;
    assert_time(0, "1970-01-01T00:00:00.000Z");
    assert_time(1730113200000LL, "2024-10-28T11:00:00.000Z"); /* the seed's createdAt */
    assert_time(1730113800000LL, "2024-10-28T11:10:00.000Z");
    assert_time(1730113200001LL, "2024-10-28T11:00:00.001Z");
    assert_time(1730113200123LL, "2024-10-28T11:00:00.123Z");
    assert_time(1730113200999LL, "2024-10-28T11:00:00.999Z");
    assert_time(1709164800000LL, "2024-02-29T00:00:00.000Z"); /* leap day */
    assert_time(951782400000LL, "2000-02-29T00:00:00.000Z");
    assert_time(1735689599999LL, "2024-12-31T23:59:59.999Z");
    assert_time(4102444800000LL, "2100-01-01T00:00:00.000Z"); /* past 2038 */
    assert_time(253402300799999LL, "9999-12-31T23:59:59.999Z");
}

static void test_iso_time_format_before_1970(void **state) {
    (void)state;
    assert_time(-1, "1969-12-31T23:59:59.999Z");
    assert_time(-999, "1969-12-31T23:59:59.001Z");
    assert_time(-1000, "1969-12-31T23:59:59.000Z");
    assert_time(-1001, "1969-12-31T23:59:58.999Z");
    assert_time(-86400000LL, "1969-12-31T00:00:00.000Z");
    assert_time(-2208988800000LL, "1900-01-01T00:00:00.000Z");
}

static void test_clocks(void **state) {
    (void)state;
    int64_t wall = tk_now_ms();
    int64_t seconds = (int64_t)time(NULL);
    assert_in_range(wall / 1000, seconds - 1, seconds + 1);
    int64_t first = tk_monotonic_ms();
    struct timespec nap = {0, 20 * 1000000L};
    nanosleep(&nap, NULL);
    int64_t second = tk_monotonic_ms();
    assert_in_range(second - first, 19, 5000);
    int64_t first_us = tk_monotonic_us();
    nanosleep(&nap, NULL);
    int64_t second_us = tk_monotonic_us();
    assert_in_range(second_us - first_us, 19000, 5000000);
    /* Same clock as the milliseconds. */
    int64_t skew = tk_monotonic_us() / 1000 - tk_monotonic_ms();
    assert_true(skew >= -2 && skew <= 2);
}

static void test_random_bytes(void **state) {
    (void)state;
    uint8_t a[32] = {0}, b[32] = {0};
    assert_int_equal(tk_random_bytes(a, sizeof a), 0);
    assert_int_equal(tk_random_bytes(b, sizeof b), 0);
    assert_memory_not_equal(a, b, sizeof a);
    assert_int_equal(tk_random_bytes(a, 0), 0);
    /* Larger than one getrandom call may return. */
    size_t big_len = 1 << 20;
    uint8_t *big = calloc(1, big_len);
    assert_non_null(big);
    assert_int_equal(tk_random_bytes(big, big_len), 0);
    size_t zeros = 0;
    for (size_t i = 0; i < big_len; i++) zeros += big[i] == 0;
    assert_in_range(zeros, 1, big_len / 64); /* ~1/256 expected */
    free(big);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_object_id_is_24_lowercase_hex),
        cmocka_unit_test(test_object_id_starts_with_the_current_time),
        cmocka_unit_test(test_object_ids_unique_over_100k),
        cmocka_unit_test(test_object_ids_unique_across_threads),
        cmocka_unit_test(test_correlation_id_is_32_lowercase_hex),
        cmocka_unit_test(test_correlation_ids_unique_over_100k),
        cmocka_unit_test(test_correlation_ids_unique_across_threads),
        cmocka_unit_test(test_correlation_ids_are_unpredictable),
        cmocka_unit_test(test_object_id_validity),
        cmocka_unit_test(test_iso_time_format),
        cmocka_unit_test(test_iso_time_format_before_1970),
        cmocka_unit_test(test_clocks),
        cmocka_unit_test(test_random_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
