/* tk_trace — W3C trace context validation, one rule for a traceparent that
 * arrives over HTTP (gateway) and over Kafka (worker). */
#include "tk_trace.h"

#include <stddef.h>
#include <string.h>

/* Lower-case only, as the W3C text requires. */
static bool is_hex(const char *text, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (!((text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f'))) return false;
    return true;
}

bool tk_trace_is_valid(const char *t) {
    return t != NULL && strlen(t) == TK_TRACEPARENT_LEN && t[2] == '-' && t[35] == '-' && t[52] == '-' &&
           is_hex(t, 2) && strncmp(t, "ff", 2) != 0 && is_hex(t + 3, 32) && is_hex(t + 36, 16) && is_hex(t + 53, 2) &&
           strspn(t + 3, "0") < 32 && strspn(t + 36, "0") < 16;
}
