/* gw_trace — W3C trace context: keep a client's traceparent, or start a trace. */
#ifndef GW_TRACE_H
#define GW_TRACE_H

#include <stdbool.h>

#define GW_TRACEPARENT_LEN 55 /* "00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>" */

/** @returns true for a well-formed version-00 traceparent with non-zero ids. */
bool gw_trace_is_valid(const char *traceparent);

/**
 * @brief Writes incoming to out when it is valid, else a new traceparent with
 * random ids (sampled). incoming may be NULL.
 */
void gw_trace_take(const char *incoming, char out[GW_TRACEPARENT_LEN + 1]);

#endif
