/* tk_list — list queries shared by the gateway and the worker: the filter
 * rules, the page size, and cursors bound to the query they came from. */
#ifndef TK_LIST_H
#define TK_LIST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tk_ids.h"

#define TK_LIST_LIMIT_DEFAULT 50
#define TK_LIST_LIMIT_MAX 200
#define TK_LIST_VALUES_MAX 20 /* values in one comma list */
#define TK_CURSOR_LEN 39      /* base64url of 29 bytes, no padding */

/** Where a filter came from: it decides how messages name a member. */
typedef enum { TK_LIST_FROM_HTTP = 0, TK_LIST_FROM_KAFKA } tk_list_source;

/** The position a page ends at: the last ticket returned. */
typedef struct {
    int64_t created_ms;
    char id[TK_OBJECT_ID_LEN + 1];
} tk_cursor_position;

/** @returns true for a filter member of either role (status ... assigneeId). */
bool tk_list_field_is_known(const char *name);

/** @returns true for a filter member that takes a list of values (status, priority, category). */
bool tk_list_field_is_multi(const char *name);

/**
 * @brief Checks a filter object ({"status":["open"],"creatorId":"..."}, lists
 * as arrays of strings, the rest as strings) against the rules; `team` and
 * `assigneeId` only when is_admin. NULL is an empty filter.
 * @returns 0, or -1 with a message naming the member ("Query parameter
 * 'status' must be one of: ..." from HTTP, "Field 'filter.status' ..." from Kafka).
 */
int tk_list_filter_check(const json_t *filter, bool is_admin, tk_list_source source, char *err, size_t err_len);

/**
 * @brief The check value a cursor carries: a hash of the scope (team, or
 * admin) and a canonical form of filter (members in a fixed order, list
 * values sorted, duplicates dropped). Not a secret: it catches cursors that
 * were edited or moved to another query; the scope itself always comes from
 * the caller's identity.
 */
uint64_t tk_list_binding(bool is_admin, const char *team, const json_t *filter);

/** @brief Writes the opaque, URL-safe cursor for position under binding (TK_CURSOR_LEN chars + NUL). */
void tk_cursor_encode(const tk_cursor_position *position, uint64_t binding, char out[TK_CURSOR_LEN + 1]);

/**
 * @brief Reads a cursor made by tk_cursor_encode for the same binding.
 * @returns 0 with *position, or -1 when it is malformed, edited, or bound to another query.
 */
int tk_cursor_decode(const char *text, size_t len, uint64_t binding, tk_cursor_position *position);

#endif
