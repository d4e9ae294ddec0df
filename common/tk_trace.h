/* tk_trace — W3C trace context validation, one rule for a traceparent that
 * arrives over HTTP (gateway) and over Kafka (worker). */
#ifndef TK_TRACE_H
#define TK_TRACE_H

#include <stdbool.h>

#define TK_TRACEPARENT_LEN 55 /* "00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>" */
#define TK_TRACE_ID_OFFSET 3  /* where the trace id starts in a traceparent */
#define TK_TRACE_ID_LEN 32

/** @returns true for a well-formed version-00 traceparent with non-zero ids (NULL is not). */
bool tk_trace_is_valid(const char *traceparent);

#endif
