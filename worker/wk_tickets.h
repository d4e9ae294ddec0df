/* wk_tickets — the ticket operations against MongoDB, each safe to repeat:
 * the ids come with the command, so a redelivered command changes nothing
 * and answers the same. */
#ifndef WK_TICKETS_H
#define WK_TICKETS_H

#include <jansson.h>
#include <mongoc/mongoc.h>

#include "tk_envelope.h"
#include "tk_ids.h"
#include "tk_list.h"

/** What an operation produced: the answer and the event to publish. */
typedef struct {
    int status;
    const char *message; /* static text */
    json_t *data;        /* owned; NULL on errors */
    json_t *event;       /* owned; NULL when nothing changed that others must hear of */
    char event_key[TK_OBJECT_ID_LEN + 1];
    char next_cursor[TK_CURSOR_LEN + 1]; /* lists: "" on the last page */
    char etag[24];                       /* one ticket: "\"<__v>\"", else "" */
} wk_result;

/** Returned by operations when the database is unreachable: retry later. */
#define WK_RETRY (-2)

/**
 * @brief Runs request against the tickets collection, answers in *result.
 * @returns 0 with *result filled (caller calls wk_result_close), or WK_RETRY
 * with *result empty when the database could not be reached.
 */
int wk_tickets_execute(mongoc_collection_t *tickets, const tk_request *request, wk_result *result);

/** @brief Frees data and event. Accepts a zeroed struct. */
void wk_result_close(wk_result *result);

#endif
