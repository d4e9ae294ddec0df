/* gw_trace — W3C trace context: keep a client's traceparent, or start a trace. */
#ifndef GW_TRACE_H
#define GW_TRACE_H

#include "tk_trace.h" /* tk_trace_is_valid: the same rule the worker applies to Kafka headers */

#define GW_TRACEPARENT_LEN TK_TRACEPARENT_LEN

/**
 * @brief Writes incoming to out when it is valid, else a new traceparent with
 * random ids (sampled). incoming may be NULL.
 */
void gw_trace_take(const char *incoming, char out[GW_TRACEPARENT_LEN + 1]);

#endif
