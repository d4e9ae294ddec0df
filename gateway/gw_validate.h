/* gw_validate — HTTP input rules: content type, JSON bodies, ticket ids. */
#ifndef GW_VALIDATE_H
#define GW_VALIDATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "gw_router.h"
#include "tk_envelope.h"
#include "tk_ids.h"

/** @returns true for "application/json" with optional parameters (charset=utf-8). */
bool gw_validate_is_json_content_type(const char *content_type);

/**
 * @brief Parses the body of a create-ticket or reply route and fills the
 * matching fields of request (category, subject, description, priority).
 * @returns 0 with *root owning the strings now borrowed by request (caller
 * decrefs), or -1 with a message for the client in err.
 */
int gw_validate_body(const gw_route *route, const char *body, size_t len, json_t **root, tk_request *request,
                     char *err, size_t err_len);

/**
 * @brief Checks the ?id= value and writes it in canonical lowercase form.
 * @returns 0, or -1 with "Query parameter 'id' is required" / "Invalid ticket id".
 */
int gw_validate_ticket_id(const char *param, char out[TK_OBJECT_ID_LEN + 1], char *err, size_t err_len);

#endif
