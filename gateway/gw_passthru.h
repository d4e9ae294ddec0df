/* gw_passthru — the HTTP answer cut out of a worker's reply without parsing
 * it: {"version":1,"status":NNN[,"page":{"next":"<s>"}][,"etag":"<s>"],
 * "success":...} answers {"success":...} with the bytes as they came. */
#ifndef GW_PASSTHRU_H
#define GW_PASSTHRU_H

#include <stddef.h>

#include "gw_pending.h"

/**
 * @brief Answers a reply of the shape above by copying it from "success" on;
 * the cursor and the ETag are decoded by a strict scanner into entry (as
 * tk_reply_take_meta does: next_cursor malloc'd or NULL, etag "" when absent).
 * With entry NULL, a reply carrying page or etag is declined (the slow path
 * then leaves them in the body).
 * @returns the body (malloc'd, *body_len bytes, no NUL) with *status in
 * 100..599; or NULL, entry untouched, for any other shape, anything the
 * scanner does not fully understand, an ETag that does not fit entry->etag,
 * or no memory: the caller then takes the parsing path.
 * @remark What follows "success" is the worker's own JSON and is not checked.
 */
char *gw_passthru_answer(const char *data, size_t len, gw_pending_entry *entry, int *status, size_t *body_len);

#endif
