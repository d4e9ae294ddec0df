/* tk_log — one JSON object per line on stderr. */
#ifndef TK_LOG_H
#define TK_LOG_H

#include <jansson.h>

typedef enum { TK_LOG_DEBUG = 0, TK_LOG_INFO, TK_LOG_WARN, TK_LOG_ERROR } tk_log_level;

/** @brief Sets the component name and the minimum level. Call once at start. */
void tk_log_init(const char *component, tk_log_level min_level);

/** @brief Parses "debug|info|warn|error". @returns 0, or -1 when unknown. */
int tk_log_level_parse(const char *text, tk_log_level *out);

/** @returns non-zero when a line at this level would be written. */
int tk_log_enabled(tk_log_level level);

/**
 * @brief Writes {"time","level","component","msg",...fields}.
 * Takes ownership of fields (may be NULL). Never fails loudly: a line that
 * cannot be built is dropped.
 */
void tk_log_fields(tk_log_level level, const char *msg, json_t *fields);

#endif
