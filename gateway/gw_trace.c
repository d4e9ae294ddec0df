#include "gw_trace.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tk_ids.h"

static bool is_hex(const char *text, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (!((text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f'))) return false;
    return true;
}

bool gw_trace_is_valid(const char *t) {
    return t != NULL && strlen(t) == GW_TRACEPARENT_LEN && t[2] == '-' && t[35] == '-' && t[52] == '-' &&
           is_hex(t, 2) && strncmp(t, "ff", 2) != 0 && is_hex(t + 3, 32) && is_hex(t + 36, 16) &&
           is_hex(t + 53, 2) && strspn(t + 3, "0") < 32 && strspn(t + 36, "0") < 16;
}

void gw_trace_take(const char *incoming, char out[GW_TRACEPARENT_LEN + 1]) {
    if (gw_trace_is_valid(incoming)) {
        memcpy(out, incoming, GW_TRACEPARENT_LEN + 1);
        return;
    }
    uint8_t random[24];
    if (tk_random_bytes(random, sizeof random) != 0) memset(random, 0x5a, sizeof random);
    random[0] |= 1;  /* never an all-zero trace id */
    random[16] |= 1; /* nor parent id */
    memcpy(out, "00-", 3);
    tk_hex_encode(random, 16, out + 3);
    out[35] = '-';
    tk_hex_encode(random + 16, 8, out + 36);
    memcpy(out + 52, "-01", 4);
}
