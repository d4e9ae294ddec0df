/* test_support — files, folders and strings for the unit tests. Every
 * function aborts the test (cmocka fail_msg) instead of returning an error:
 * a missing data file is a broken test, not a case to handle. */
#ifndef TEST_SUPPORT_H
#define TEST_SUPPORT_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

/** A folder listing: names (not paths), sorted, owned by the struct. */
typedef struct {
    char **names;
    size_t count;
} tu_listing;

/** @returns TEST_DATA_DIR "/" relative as a malloc'd path. */
char *tu_data_path(const char *relative);

/**
 * @brief Reads a whole file. The text gets a NUL after its len bytes (not
 * counted), so it can also be used as a C string. @returns malloc'd bytes.
 */
char *tu_read_file(const char *path, size_t *len);

/** @brief Reads a .reason file: its text without the trailing newline. */
char *tu_read_reason(const char *path);

/** @brief Lists the files of folder whose name ends with suffix, sorted. Fails the test when there are none. */
void tu_list(const char *folder, const char *suffix, tu_listing *listing);

void tu_listing_close(tu_listing *listing);

/** @returns "<folder>/<name>" with <name>'s suffix replaced by new_suffix, malloc'd. */
char *tu_sibling(const char *folder, const char *name, const char *suffix, const char *new_suffix);

/** @returns unit repeated count times, malloc'd and NUL-terminated. */
char *tu_repeat(const char *unit, size_t count);

/** @returns a malloc'd printf-formatted string. */
char *tu_format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
