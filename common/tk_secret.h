/* tk_secret — a secret setting from the environment or from a file named by
 * <NAME>_FILE (Docker and Kubernetes secrets), so it need not sit in the
 * process environment where `docker inspect` shows it. */
#ifndef TK_SECRET_H
#define TK_SECRET_H

#include <stdbool.h>
#include <stddef.h>

#define TK_SECRET_FILE_MAX_BYTES (64 * 1024)

/**
 * @brief Reads the secret `name` from $name, or from the file $name_FILE
 * (trailing newlines trimmed: files written by `echo` or editors end in one).
 * @returns 0 with *out (NUL-terminated, caller frees) and *out_len, or 0 with
 * *out NULL when neither is set; -1 with a message naming the variable in err
 * when both are set or the file is missing, unreadable, empty or over 64 KiB.
 * @remark The message never contains the secret.
 */
int tk_secret_load(const char *name, char **out, size_t *out_len, char *err, size_t err_len);

/**
 * @brief Reads the file at path (the value of the setting `variable`) whole,
 * with trailing newlines trimmed when is_trimmed (a PEM file keeps its own).
 * @returns 0 with *out (NUL-terminated, caller frees) and *out_len; -1 with a
 * message naming variable and path in err when the file is missing,
 * unreadable, empty or over 64 KiB.
 */
int tk_secret_read_file(const char *variable, const char *path, bool is_trimmed, char **out, size_t *out_len, char *err,
                        size_t err_len);

#endif
