/* tk_clock — the wall clock, the monotonic clocks and ISO-8601 times. */
#ifndef TK_CLOCK_H
#define TK_CLOCK_H

#include <stddef.h>
#include <stdint.h>

#define TK_ISO_TIME_LEN 24 /* "2024-10-28T11:00:00.000Z" */

/** @returns milliseconds since the Unix epoch (wall clock). */
int64_t tk_now_ms(void);

/** @returns a monotonic clock in milliseconds, for deadlines. */
int64_t tk_monotonic_ms(void);

/** @returns a monotonic clock in microseconds, for latencies. */
int64_t tk_monotonic_us(void);

/** @brief Formats epoch milliseconds as "YYYY-MM-DDTHH:MM:SS.mmmZ" + NUL. */
void tk_iso_time_format(int64_t epoch_ms, char out[TK_ISO_TIME_LEN + 1]);

#endif
