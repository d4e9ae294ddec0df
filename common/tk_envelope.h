/* tk_envelope — the JSON messages on ticket.commands, ticket.queries and
 * ticket.replies: parsing with full validation, and building. */
#ifndef TK_ENVELOPE_H
#define TK_ENVELOPE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "tk_list.h"

#define TK_ENVELOPE_VERSION 1
#define TK_ERROR_TEXT_MAX 256

typedef enum {
    TK_REQUEST_TICKET_CREATE = 0,
    TK_REQUEST_TICKET_REPLY,
    TK_REQUEST_TICKETS_LIST,
    TK_REQUEST_TICKET_GET,
    TK_REQUEST_TICKET_UPDATE,
    TK_REQUEST_TICKET_RESOLVE,
    TK_REQUEST_TYPE_COUNT
} tk_request_type;

/** Who asks. Strings are borrowed from the message they came from. */
typedef struct {
    const char *id;
    const char *team; /* NULL for admins without a team */
    bool is_admin;
} tk_actor;

/**
 * A command or query as received. Every string is borrowed from `root`, which
 * the struct owns; release with tk_request_close().
 */
typedef struct {
    json_t *root;
    tk_request_type type;
    tk_actor actor;
    const char *ticket_id;             /* create: ticket._id; reply, get, update, resolve: ticketId */
    const char *response_id;           /* ticket.reply only: the new ticket response's _id */
    const char *command_id;            /* update, resolve: the issuer's id for this change (effect-once, eventIds) */
    const char *category;              /* create; update: NULL when unchanged */
    const char *subject;               /* create only */
    const char *description;           /* create, reply */
    const char *priority;              /* create: "low" when absent; update: NULL when unchanged */
    const char *status;                /* update: the new status, or NULL when unchanged */
    const char *assignee_id;           /* update: the new assignee, or NULL (see is_unassign) */
    bool is_unassign;                  /* update: "assigneeId": null, the ticket loses its assignee */
    bool internal;                     /* reply: an admin's internal note, never shown to customers */
    bool has_if_match;                 /* reply, update, resolve: ifMatch was given */
    long long if_match;                /* the __v the issuer expects; a mismatch changes nothing (412) */
    const char *idempotency_key;       /* commands: the client's Idempotency-Key, or NULL */
    const json_t *filter;              /* list: the checked filter object, or NULL */
    int limit;                         /* list: page size, 1..TK_LIST_LIMIT_MAX; 0 without a page: the default */
    const char *after;                 /* list: the cursor text, or NULL for the first page */
    tk_cursor_position after_position; /* list: decoded from after */
} tk_request;

#define TK_IDEMPOTENCY_KEY_MAX 255
#define TK_IF_MATCH_MAX 9007199254740991LL /* 2^53 - 1: exact in every JSON reader */

/** @returns true for 1..255 printable ASCII characters without spaces (0x21..0x7E). */
bool tk_idempotency_key_is_valid(const char *key);

/** @returns true for the reads that go to ticket.queries (tickets.list, ticket.get). */
bool tk_request_type_is_query(tk_request_type type);

/** @returns the wire name of a request type ("ticket.create", ...). */
const char *tk_request_type_name(tk_request_type type);

/**
 * @brief Parses and validates a command or query from Kafka as strictly as the
 * gateway validates HTTP input.
 * @returns 0 with *out filled (caller must tk_request_close), or -1 with the
 * reason for a person in err; *out then owns nothing.
 */
int tk_request_parse(const char *data, size_t len, tk_request *out, char *err, size_t err_len);

/** @brief Releases what tk_request_parse took. Accepts a zeroed struct. */
void tk_request_close(tk_request *request);

/** @brief New {"id","role"[,"team"]} object. @returns NULL on allocation failure. */
json_t *tk_actor_json_new(const tk_actor *actor);

/**
 * @brief Builds the JSON for a request (the inverse of tk_request_parse).
 * @returns a new reference, or NULL on allocation failure.
 */
json_t *tk_request_json_new(const tk_request *request);

/**
 * @brief Builds a reply {"version","status","success","message"[,"data"]}.
 * Takes ownership of data (may be NULL). @returns NULL on allocation failure.
 */
json_t *tk_reply_json_new(int status, const char *message, json_t *data);

/**
 * @brief tk_reply_json_new with the page and version of what it answers:
 * "page":{"next":<cursor>} when more follow, "etag":<ETag value>; both
 * optional, placed before "success". Takes ownership of data.
 */
json_t *tk_reply_json_new_meta(int status, const char *message, const char *next_cursor, const char *etag,
                               json_t *data);

/**
 * @brief Removes "page" and "etag" from a parsed reply body (tk_reply_parse)
 * and copies them out: *next_cursor malloc'd or NULL, etag "" when absent.
 */
void tk_reply_take_meta(json_t *body, char **next_cursor, char *etag, size_t etag_len);

/**
 * @brief Parses a reply and turns it into the HTTP body the gateway sends:
 * {"success","message"[,"data"]}.
 * @returns 0 with *status and *body (new reference), or -1 with err.
 */
int tk_reply_parse(const char *data, size_t len, int *status, json_t **body, char *err, size_t err_len);

#endif
