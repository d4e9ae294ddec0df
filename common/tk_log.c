/* tk_log — one JSON object per line on stderr. */
#include "tk_log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "tk_clock.h"

static const char *component_name = "service";
static tk_log_level min_log_level = TK_LOG_INFO;
static const char *const LEVEL_NAMES[] = {"debug", "info", "warn", "error"};

void tk_log_init(const char *component, tk_log_level min_level) {
    component_name = component;
    min_log_level = min_level;
}

int tk_log_level_parse(const char *text, tk_log_level *out) {
    for (int i = TK_LOG_DEBUG; i <= TK_LOG_ERROR; i++) {
        if (strcasecmp(text, LEVEL_NAMES[i]) == 0) {
            *out = (tk_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(text, "warning") == 0) {
        *out = TK_LOG_WARN;
        return 0;
    }
    return -1;
}

int tk_log_enabled(tk_log_level level) { return level >= min_log_level; }

void tk_log_fields(tk_log_level level, const char *msg, json_t *fields) {
    if (!tk_log_enabled(level)) {
        json_decref(fields);
        return;
    }
    char now[TK_ISO_TIME_LEN + 1];
    tk_iso_time_format(tk_now_ms(), now);
    json_t *line = json_pack("{s:s, s:s, s:s, s:s}", "time", now, "level", LEVEL_NAMES[level], "component",
                             component_name, "msg", msg);
    if (line == NULL) {
        json_decref(fields);
        return;
    }
    if (fields != NULL) {
        json_object_update(line, fields);
        json_decref(fields);
    }
    char *text = json_dumps(line, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(line);
    if (text == NULL) return;
    /* One fputs per line under stdio's own lock keeps lines whole across threads. */
    flockfile(stderr);
    fputs(text, stderr);
    fputc('\n', stderr);
    funlockfile(stderr);
    free(text);
}
