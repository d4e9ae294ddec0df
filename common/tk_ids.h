/* tk_ids — ObjectIds and correlation ids. */
#ifndef TK_IDS_H
#define TK_IDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TK_OBJECT_ID_LEN 24      /* hex characters, without NUL */
#define TK_CORRELATION_ID_LEN 32 /* hex characters, without NUL */

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

#endif
