/* gw_trace — W3C trace context: keep a client's traceparent, or start a trace. */
#include "gw_trace.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tk_hex.h"
#include "tk_random.h"
#include "tk_trace.h"

void gw_trace_take(const char *incoming, char out[GW_TRACEPARENT_LEN + 1]) {
    if (tk_trace_is_valid(incoming)) {
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
