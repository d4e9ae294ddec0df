/* tk_secret — a secret setting read from NAME or from the file NAME_FILE names. */
#include "tk_secret.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *env_value(const char *name) {
    const char *value = getenv(name);
    return value != NULL && value[0] != '\0' ? value : NULL;
}

int tk_secret_read_file(const char *variable, const char *path, bool is_trimmed, char **out, size_t *out_len, char *err,
                        size_t err_len) {
    char *buffer = NULL;
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        snprintf(err, err_len, "%s: cannot open '%s': %s", variable, path, strerror(errno));
        return -1;
    }
    buffer = malloc(TK_SECRET_FILE_MAX_BYTES + 1);
    if (buffer == NULL) {
        snprintf(err, err_len, "%s: out of memory", variable);
        goto fail;
    }
    size_t len = fread(buffer, 1, TK_SECRET_FILE_MAX_BYTES + 1, file);
    if (ferror(file)) {
        snprintf(err, err_len, "%s: cannot read '%s'", variable, path);
        goto fail;
    }
    if (len > TK_SECRET_FILE_MAX_BYTES) {
        snprintf(err, err_len, "%s: '%s' is larger than 64 KiB", variable, path);
        goto fail;
    }
    while (is_trimmed && len > 0 && (buffer[len - 1] == '\n' || buffer[len - 1] == '\r')) len--;
    if (len == 0) {
        snprintf(err, err_len, "%s: '%s' is empty", variable, path);
        goto fail;
    }
    buffer[len] = '\0';
    fclose(file);
    *out = buffer;
    *out_len = len;
    return 0;
fail:
    free(buffer);
    fclose(file);
    return -1;
}

int tk_secret_load(const char *name, char **out, size_t *out_len, char *err, size_t err_len) {
    char file_variable[128];
    *out = NULL;
    *out_len = 0;
    snprintf(file_variable, sizeof file_variable, "%s_FILE", name);
    const char *value = env_value(name);
    const char *path = env_value(file_variable);
    if (value != NULL && path != NULL) {
        snprintf(err, err_len, "set either %s or %s, not both", name, file_variable);
        return -1;
    }
    if (path != NULL) return tk_secret_read_file(file_variable, path, true, out, out_len, err, err_len);
    if (value == NULL) return 0;
    *out = strdup(value);
    if (*out == NULL) {
        snprintf(err, err_len, "%s: out of memory", name);
        return -1;
    }
    *out_len = strlen(value);
    return 0;
}
