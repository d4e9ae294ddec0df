/* wk_ticket_json — a stored ticket (BSON) as the API shows it (JSON), with the
 * seed's field order whatever order the database keeps; and the customers' view of
 * it, without internal notes. */
#ifndef WK_TICKET_JSON_H
#define WK_TICKET_JSON_H

#include <bson/bson.h>
#include <jansson.h>

/**
 * @brief Builds the public ticket: _id, creatorId, creatorType, category,
 * subject, description, priority, status, response[], createdAt, updatedAt, __v,
 * then assigneeId, statusChangedAt, resolvedAt only when set; a response
 * entry's "internal" only when true. The stored teamId and changeLog, and a
 * reply's statusFrom/statusTo, are left out. Every entry is shown: hiding
 * internal notes from customers is the caller's (the read paths') choice.
 * @returns a new reference, or NULL when a field is missing or mistyped.
 */
json_t *wk_ticket_json_new(const bson_t *ticket);

/**
 * @brief What a customer may see of data, one shown ticket or a list of them:
 * the same without internal entries. Takes data's reference. Data itself
 * comes back when it has none; otherwise a copy, since data may also be in
 * an event, which services get whole.
 * @returns a reference, or NULL when out of memory.
 */
json_t *wk_ticket_json_hide_internal(json_t *data);

/** @brief The public form of one response entry. @returns NULL on a malformed entry. */
json_t *wk_response_json_new(const bson_t *response);

#endif
