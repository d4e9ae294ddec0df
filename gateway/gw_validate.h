/* gw_validate — HTTP input rules: content type, JSON bodies, ticket ids. */
#ifndef GW_VALIDATE_H
#define GW_VALIDATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "gw_router.h"
#include "tk_envelope.h"
#include "tk_ids.h"
#include "tk_list.h"

/** @returns true for "application/json" with optional parameters (charset=utf-8). */
bool gw_validate_is_json_content_type(const char *content_type);

/**
 * @brief Parses the body of a create-ticket or reply route and fills the
 * matching fields of request (category, subject, description, priority).
 * @returns 0 with *root owning the strings now borrowed by request (caller
 * decrefs), or -1 with a message for the client in err.
 */
int gw_validate_body(const gw_route *route, const char *body, size_t len, json_t **root, tk_request *request, char *err,
                     size_t err_len);

/**
 * @brief Checks the ?id= value and writes it in canonical lowercase form.
 * @returns 0, or -1 with "Query parameter 'id' is required" / "Invalid ticket id".
 */
int gw_validate_ticket_id(const char *param, char out[TK_OBJECT_ID_LEN + 1], char *err, size_t err_len);

/** A list route's query string, checked: filter members, page size, cursor. */
typedef struct {
    json_t *filter; /* owned; members in tk_list's shape */
    int limit;
    bool has_limit;
    char cursor[TK_CURSOR_LEN + 1]; /* "" on the first page */
    bool has_cursor;
    tk_cursor_position after;
} gw_list_query;

/** @brief Empty query with the default limit. @returns 0, or -1 when out of memory. */
int gw_list_query_init(gw_list_query *query);

/** @brief Frees the filter. Accepts a zeroed struct. */
void gw_list_query_close(gw_list_query *query);

/**
 * @brief Takes one decoded query parameter (value NULL when it had no '=';
 * name_len and value_len tell a NUL inside apart from the end).
 * @returns 0, or -1 with a message naming the parameter: "Unknown query
 * parameter 'x'", "Query parameter 'limit' must be an integer from 1 to 200", ...
 */
int gw_validate_list_param(gw_list_query *query, const char *name, size_t name_len, const char *value, size_t value_len,
                           char *err, size_t err_len);

/**
 * @brief After every parameter: checks the filter against the caller's role,
 * turns assigneeId=me into caller_id, and checks that the cursor belongs to
 * this query (scope and filter). @returns 0, or -1 with err ("Invalid cursor").
 */
int gw_validate_list_finish(gw_list_query *query, bool is_admin, const char *caller_id, const char *team, char *err,
                            size_t err_len);

/**
 * @brief The Link header of the next page: "<path?limit=N&cursor=C&filters>; rel=\"next\"",
 * values percent-encoded. @returns a malloc'd string, or NULL when out of memory.
 */
char *gw_validate_next_link_new(const char *path, const gw_list_query *query, const char *next_cursor);

#endif
