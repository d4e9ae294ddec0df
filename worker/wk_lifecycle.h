/* wk_lifecycle — a ticket changed on purpose: an admin's update (status,
 * priority, category, assignee) and a resolve. Each is checked against the
 * ticket as read and written in one conditional step, applied once per
 * commandId, and announced as ticket.updated / ticket.status_changed. */
#ifndef WK_LIFECYCLE_H
#define WK_LIFECYCLE_H

#include <mongoc/mongoc.h>

#include "tk_envelope.h"
#include "wk_tickets.h"

/**
 * @brief Applies a ticket.update or ticket.resolve request: 200 with the
 * ticket, 404 (unknown or another team's), 409 (closed), 412 (ifMatch
 * differs from __v). A change to nothing new answers 200 and writes nothing.
 * @returns as wk_tickets_execute.
 */
wk_outcome wk_lifecycle_change(mongoc_collection_t *tickets, const tk_request *request, const wk_write_guard *guard,
                               wk_result *result);

/**
 * @brief The status a reply moves a ticket to, or NULL when it stays:
 * only once the ticket has left "created", an admin's public reply moves
 * open to pending and a customer's moves pending or resolved to open; an
 * internal note moves nothing.
 */
const char *wk_lifecycle_status_after_reply(const char *status, const tk_request *reply);

/**
 * @brief A ticket.status_changed event for ticket_id (eventId
 * "status_changed:<event_id>"). @returns NULL when out of memory.
 */
json_t *wk_lifecycle_status_event_new(const char *event_id, const char *ticket_id, const char *team,
                                      const tk_actor *actor, const char *from, const char *to);

#endif
