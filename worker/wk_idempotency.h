/* wk_idempotency — client retries with an Idempotency-Key: the first request
 * under a key (per user, kept 24 h) fixes the ids; a repeat with the same
 * content is rewritten to those ids, so applying it changes nothing and
 * answers as the first time; a repeat with other content is refused. */
#ifndef WK_IDEMPOTENCY_H
#define WK_IDEMPOTENCY_H

#include <mongoc/mongoc.h>

#include "tk_envelope.h"
#include "tk_ids.h"
#include "wk_tickets.h"

/** Ids of the first request under a key; request points into these after a rewrite. */
typedef struct {
    char ticket_id[TK_OBJECT_ID_LEN + 1];
    char response_id[TK_OBJECT_ID_LEN + 1];
    char command_id[TK_OBJECT_ID_LEN + 1];
} wk_original_ids;

/**
 * @brief Claims request's key, or rewrites request's ids to the first request's.
 * Does nothing for requests without a key.
 * @returns WK_DONE to go on applying request; WK_ANSWERED with *result (422)
 * when the key was used for different content; WK_RETRY when the database is away.
 */
wk_outcome wk_idempotency_resolve(mongoc_collection_t *keys, tk_request *request, wk_original_ids *original,
                                  wk_result *result);

#endif
