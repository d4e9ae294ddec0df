/* test_support — files, folders and strings for the unit tests; failures abort the test. */
#include "test_support.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TEST_DATA_DIR
#error "TEST_DATA_DIR must name tests/data"
#endif

static void *checked_malloc(size_t size) {
    void *memory = malloc(size);
    if (memory == NULL) fail_msg("out of memory (%zu bytes)", size);
    return memory;
}

char *tu_format(const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    int needed = vsnprintf(NULL, 0, fmt, args);
    va_end(args);
    if (needed < 0) fail_msg("bad format '%s'", fmt);
    char *text = checked_malloc((size_t)needed + 1);
    va_start(args, fmt);
    vsnprintf(text, (size_t)needed + 1, fmt, args);
    va_end(args);
    return text;
}

char *tu_data_path(const char *relative) { return tu_format("%s/%s", TEST_DATA_DIR, relative); }

char *tu_read_file(const char *path, size_t *len) {
    FILE *file = fopen(path, "rb");
    if (file == NULL) fail_msg("cannot open %s", path);
    size_t capacity = 4096, used = 0;
    char *data = checked_malloc(capacity + 1);
    size_t got;
    while ((got = fread(data + used, 1, capacity - used, file)) > 0) {
        used += got;
        if (used == capacity) {
            capacity *= 2;
            data = realloc(data, capacity + 1);
            if (data == NULL) fail_msg("out of memory reading %s", path);
        }
    }
    int had_error = ferror(file);
    fclose(file);
    if (had_error) fail_msg("cannot read %s", path);
    data[used] = '\0';
    *len = used;
    return data;
}

char *tu_read_reason(const char *path) {
    size_t len;
    char *text = tu_read_file(path, &len);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r')) text[--len] = '\0';
    if (len == 0) fail_msg("%s is empty: it must hold the expected message", path);
    return text;
}

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int has_suffix(const char *name, const char *suffix) {
    size_t name_len = strlen(name), suffix_len = strlen(suffix);
    return name_len > suffix_len && strcmp(name + name_len - suffix_len, suffix) == 0;
}

void tu_list(const char *folder, const char *suffix, tu_listing *listing) {
    DIR *dir = opendir(folder);
    if (dir == NULL) fail_msg("cannot open folder %s", folder);
    size_t capacity = 64;
    listing->count = 0;
    listing->names = checked_malloc(capacity * sizeof *listing->names);
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.' || !has_suffix(entry->d_name, suffix)) continue;
        if (listing->count == capacity) {
            capacity *= 2;
            listing->names = realloc(listing->names, capacity * sizeof *listing->names);
            if (listing->names == NULL) fail_msg("out of memory listing %s", folder);
        }
        listing->names[listing->count++] = tu_format("%s", entry->d_name);
    }
    closedir(dir);
    if (listing->count == 0) fail_msg("no *%s file in %s", suffix, folder);
    qsort(listing->names, listing->count, sizeof *listing->names, compare_names);
}

void tu_listing_close(tu_listing *listing) {
    for (size_t i = 0; i < listing->count; i++) free(listing->names[i]);
    free(listing->names);
    listing->names = NULL;
    listing->count = 0;
}

char *tu_sibling(const char *folder, const char *name, const char *suffix, const char *new_suffix) {
    size_t stem_len = strlen(name) - strlen(suffix);
    return tu_format("%s/%.*s%s", folder, (int)stem_len, name, new_suffix);
}

char *tu_repeat(const char *unit, size_t count) {
    size_t unit_len = strlen(unit);
    char *text = checked_malloc(unit_len * count + 1);
    for (size_t i = 0; i < count; i++) memcpy(text + i * unit_len, unit, unit_len);
    text[unit_len * count] = '\0';
    return text;
}
