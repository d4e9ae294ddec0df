/* wk_tickets — the ticket operations against MongoDB, each safe to repeat:
 * the ids come with the command, so a redelivered command changes nothing
 * and answers the same. */
#ifndef WK_TICKETS_H
#define WK_TICKETS_H

#include <jansson.h>
#include <mongoc/mongoc.h>

#include "tk_envelope.h"
#include "tk_ids.h"
#include "wk_fence.h"
#include "wk_recent.h"
#include "tk_list.h"

/** What an operation produced: the answer and the event to publish. */
typedef struct {
    int status;
    const char *message;  /* static text */
    json_t *data;         /* owned; NULL on errors */
    json_t *event;        /* owned; NULL when nothing changed that others must hear of */
    json_t *status_event; /* owned; ticket.status_changed when the status changed too, or NULL */
    char event_key[TK_OBJECT_ID_LEN + 1];
    char next_cursor[TK_CURSOR_LEN + 1]; /* lists: "" on the last page */
    char etag[24];                       /* one ticket: "\"<__v>\"", else "" */
} wk_result;

/** How a step of handling a message ended. */
typedef enum {
    WK_DONE = 0, /* go on: *result holds the answer (or, before the operation, nothing yet) */
    WK_ANSWERED, /* *result holds the final answer already; apply nothing more */
    WK_RETRY,    /* the database was away or the outcome is unknown: *result empty, try again */
    WK_FENCED,   /* the partition is no longer ours: nothing written, *result empty, drop the message */
} wk_outcome;

/** What every write checks right before it starts. */
typedef struct {
    const wk_lease *lease;     /* NULL: always owned */
    bool has_conditional_push; /* filter the reply push on the reply's absence (tests may turn it off) */
    wk_recent *recent;         /* the tickets this worker stored last (wk_recent), or NULL */
} wk_write_guard;

/**
 * @brief Runs request against the tickets collection, answers in *result.
 * @returns WK_DONE with *result filled (caller calls wk_result_close), WK_RETRY
 * with *result empty when the database could not be reached or a write's
 * outcome is unknown, WK_FENCED when guard's lease stopped holding before a write.
 */
wk_outcome wk_tickets_execute(mongoc_collection_t *tickets, const tk_request *request, const wk_write_guard *guard,
                              wk_result *result);

/**
 * @brief A new ticket document for a create request (the seed's fields and
 * order, teamId last), created and updated at now_ms. Caller owns it
 * (bson_destroy). Group commit inserts many of these at once.
 */
bson_t *wk_tickets_create_document_new(const tk_request *request, int64_t now_ms);

/**
 * @brief The answer (201) and ticket.created event for ticket, just stored.
 * @returns WK_DONE with *result filled (500 when it cannot be built).
 */
wk_outcome wk_tickets_answer_created(const bson_t *ticket, const char *ticket_id, wk_result *result);

/**
 * @brief The answer for a create whose id is already stored: as the first time
 * when the ticket is the creator's, else 409. Reads the ticket.
 * @returns WK_DONE with *result, or WK_RETRY (*result empty) when the read failed for now.
 */
wk_outcome wk_tickets_answer_repeated_create(mongoc_collection_t *tickets, const tk_request *request,
                                             wk_result *result);

/** @brief Frees data and events. Accepts a zeroed struct. */
void wk_result_close(wk_result *result);

/* ---- shared by the ticket operations (wk_tickets, wk_lifecycle) ---- */

/* Answers shared by every ticket operation (wk_tickets, wk_lifecycle): written once. */
extern const char WK_MSG_NOT_FOUND[];
extern const char WK_MSG_CLOSED[];
extern const char WK_MSG_MODIFIED[];
extern const char WK_MSG_INTERNAL[];

/** @brief Sets the answer; takes data. */
void wk_tickets_set_answer(wk_result *result, int status, const char *message, json_t *data);

/** @brief A customer's answer without internal notes (500 when that fails); admins see all. */
void wk_tickets_hide_internal(const tk_request *request, wk_result *result);

/**
 * @brief A database error: WK_RETRY (logged) when it may pass or a write's
 * outcome is unknown, else WK_DONE with 500 in *result.
 */
wk_outcome wk_tickets_database_failure(const char *operation, const bson_error_t *error, wk_result *result);

/** @returns true while guard's partition is still this worker's: check right before a write. */
bool wk_tickets_may_write(const wk_write_guard *guard);

/** @returns new {"maxTimeMS": ...} options (caller destroys). */
bson_t *wk_tickets_max_time_opts_new(void);

/** @returns a new event {version, type, eventId "<prefix>:<id>", occurredAt, teamId?}, or NULL when out of memory. */
json_t *wk_tickets_event_new(const char *type, const char *event_id_prefix, const char *event_id, const char *team);

/** @returns the text field name of a stored ticket (borrowed), NULL when absent or not text. */
const char *wk_tickets_stored_text(const bson_t *ticket, const char *name);

/** @returns the stored teamId of ticket (borrowed), or NULL when it has none. */
const char *wk_tickets_stored_team(const bson_t *ticket);

/** @returns true when actor may see ticket: admins all, customers their team's. */
bool wk_tickets_is_visible_to(const bson_t *ticket, const tk_actor *actor);

/**
 * @brief Loads one ticket by id into out (an initialized bson_t; what it held
 * is freed and replaced when found). @returns 1 found, 0 absent, -1 error (in *error).
 */
int wk_tickets_find(mongoc_collection_t *tickets, const bson_oid_t *id, bson_t *out, bson_error_t *error);

#endif
