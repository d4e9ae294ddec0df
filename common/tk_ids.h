/* tk_ids — ObjectIds, correlation ids and ISO-8601 times. */
#ifndef TK_IDS_H
#define TK_IDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TK_OBJECT_ID_LEN 24      /* hex characters, without NUL */
#define TK_ISO_TIME_LEN 24       /* "2024-10-28T11:00:00.000Z" */
#define TK_CORRELATION_ID_LEN 32 /* hex characters, without NUL */

/** @returns milliseconds since the Unix epoch (wall clock). */
int64_t tk_now_ms(void);

/** @returns a monotonic clock in milliseconds, for deadlines. */
int64_t tk_monotonic_ms(void);

/** @returns a monotonic clock in microseconds, for latencies. */
int64_t tk_monotonic_us(void);

/**
 * @brief Writes a new MongoDB ObjectId as 24 lowercase hex characters + NUL.
 * Thread-safe: timestamp, a per-process random value and an atomic counter.
 */
void tk_object_id_new(char out[TK_OBJECT_ID_LEN + 1]);

/** @returns true when text[0..len) is exactly 24 lowercase hex digits (the canonical form). */
bool tk_object_id_is_valid(const char *text, size_t len);

/**
 * @brief Writes a new correlation id: 128 random bits from the kernel as 32
 * hex characters + NUL. Unguessable, so a forged reply cannot aim at a
 * waiting request. Thread-safe.
 * @returns 0, or -1 (out untouched) when the kernel gives no random bytes.
 */
int tk_correlation_id_new(char out[TK_CORRELATION_ID_LEN + 1]);

/** @brief Formats epoch milliseconds as "YYYY-MM-DDTHH:MM:SS.mmmZ" + NUL. */
void tk_iso_time_format(int64_t epoch_ms, char out[TK_ISO_TIME_LEN + 1]);

/** @brief Writes len bytes as 2*len lowercase hex characters (no NUL added). */
void tk_hex_encode(const uint8_t *bytes, size_t len, char *out);

/** @returns the 64-bit FNV-1a hash of data[0..len), for hash tables (not for security). */
uint64_t tk_hash(const void *data, size_t len);

/** @brief Fills buf with len random bytes. @returns 0, or -1 when the kernel refuses. */
int tk_random_bytes(void *buf, size_t len);

#endif
