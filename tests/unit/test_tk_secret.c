/* tk_secret: a secret from NAME or from the file NAME_FILE. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tk_secret.h"

static char path[64];

static int reset(void **state) {
    (void)state;
    unsetenv("TEST_SECRET");
    unsetenv("TEST_SECRET_FILE");
    snprintf(path, sizeof path, "/tmp/tk_secret_test_%d", (int)getpid());
    return 0;
}

static int remove_file(void **state) {
    (void)state;
    unlink(path);
    return 0;
}

static void write_file(const char *text, size_t len) {
    FILE *file = fopen(path, "wb");
    assert_non_null(file);
    assert_int_equal(fwrite(text, 1, len, file), len);
    fclose(file);
    setenv("TEST_SECRET_FILE", path, 1);
}

static void expect_refused(const char *expected_start) {
    char *secret = (char *)1;
    size_t len = 7;
    char err[256] = "";
    assert_int_equal(tk_secret_load("TEST_SECRET", &secret, &len, err, sizeof err), -1);
    assert_null(secret);
    if (strncmp(err, expected_start, strlen(expected_start)) != 0)
        fail_msg("expected \"%s...\", got \"%s\"", expected_start, err);
}

static void expect_secret(const char *expected) {
    char *secret = NULL;
    size_t len = 0;
    char err[256] = "";
    if (tk_secret_load("TEST_SECRET", &secret, &len, err, sizeof err) != 0) fail_msg("refused: %s", err);
    assert_non_null(secret);
    assert_string_equal(secret, expected);
    assert_int_equal(len, strlen(expected));
    free(secret);
}

static void test_unset_is_not_an_error(void **state) {
    (void)state;
    char *secret = (char *)1;
    size_t len = 7;
    char err[256] = "";
    assert_int_equal(tk_secret_load("TEST_SECRET", &secret, &len, err, sizeof err), 0);
    assert_null(secret);
    assert_int_equal(len, 0);
    setenv("TEST_SECRET_FILE", "", 1); /* empty counts as unset, as for every variable */
    assert_int_equal(tk_secret_load("TEST_SECRET", &secret, &len, err, sizeof err), 0);
    assert_null(secret);
}

static void test_from_the_environment(void **state) {
    (void)state;
    setenv("TEST_SECRET", "in the environment\n", 1);
    expect_secret("in the environment\n"); /* only files are trimmed */
}

static void test_from_a_file_with_trailing_newlines_trimmed(void **state) {
    (void)state;
    write_file("s3cret\n", 7);
    expect_secret("s3cret");
    write_file("s3cret\r\n\n", 9);
    expect_secret("s3cret");
    write_file("two\nlines", 9); /* inner newlines are the secret's */
    expect_secret("two\nlines");
    write_file("no newline", 10);
    expect_secret("no newline");
}

static void test_missing_file(void **state) {
    (void)state;
    setenv("TEST_SECRET_FILE", "/nonexistent/secret", 1);
    expect_refused("TEST_SECRET_FILE: cannot open '/nonexistent/secret': No such file or directory");
}

static void test_empty_file(void **state) {
    (void)state;
    write_file("", 0);
    expect_refused("TEST_SECRET_FILE: '/tmp/tk_secret_test_");
    char err[256] = "";
    char *secret = NULL;
    size_t len = 0;
    write_file("\n\n", 2); /* only newlines: empty too */
    assert_int_equal(tk_secret_load("TEST_SECRET", &secret, &len, err, sizeof err), -1);
    assert_non_null(strstr(err, "is empty"));
}

static void test_file_too_large(void **state) {
    (void)state;
    size_t len = TK_SECRET_FILE_MAX_BYTES + 1;
    char *big = malloc(len);
    assert_non_null(big);
    memset(big, 'x', len);
    write_file(big, len);
    free(big);
    expect_refused("TEST_SECRET_FILE: '");
}

static void test_both_set(void **state) {
    (void)state;
    setenv("TEST_SECRET", "a", 1);
    write_file("b", 1);
    expect_refused("set either TEST_SECRET or TEST_SECRET_FILE, not both");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_unset_is_not_an_error, reset),
        cmocka_unit_test_setup(test_from_the_environment, reset),
        cmocka_unit_test_setup_teardown(test_from_a_file_with_trailing_newlines_trimmed, reset, remove_file),
        cmocka_unit_test_setup(test_missing_file, reset),
        cmocka_unit_test_setup_teardown(test_empty_file, reset, remove_file),
        cmocka_unit_test_setup_teardown(test_file_too_large, reset, remove_file),
        cmocka_unit_test_setup_teardown(test_both_set, reset, remove_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
