/* wk_reply — a reply added to a ticket, safe to repeat: the decision on the
 * ticket as read (404, the first answer again, 409 closed, 412 If-Match), the
 * one conditional write that stores it with its automatic status move, and
 * the answer and events. Used one by one (wk_reply_add) and by a batch's
 * bulk write (wk_replies_bulk), which must answer byte for byte the same. */
#ifndef WK_REPLY_H
#define WK_REPLY_H

#include <mongoc/mongoc.h>
#include <stdbool.h>
#include <stdint.h>

#include "tk_envelope.h"
#include "wk_tickets.h"

/** The conditional write of one decided reply. */
typedef struct {
    bson_t *query;   /* {_id}; when conditional also the reply's absence, the status read, If-Match's __v */
    bson_t *update;  /* $push the entry, $set updatedAt (status, statusChangedAt), $inc __v */
    bson_t *applied; /* the ticket as the update leaves it, or NULL (not asked for, or a shape it cannot build) */
} wk_reply_write;

/**
 * @brief Read, decide, write once (conditionally), answer: the ticket.reply
 * operation of wk_tickets_execute (same contract).
 */
wk_outcome wk_reply_add(mongoc_collection_t *tickets, const tk_request *request, const wk_write_guard *guard,
                        wk_result *result);

/**
 * @brief Decides request on ticket as read (is_found false: absent, ticket
 * may then be NULL).
 * @returns WK_ANSWERED with the final answer in *result (404; a reply stored
 * already answered as the first time; 409; 412), or WK_DONE: write it.
 * Internal notes are not hidden yet (wk_tickets_hide_internal).
 */
wk_outcome wk_reply_decide(const bson_t *ticket, bool is_found, const tk_request *request, wk_result *result);

/**
 * @brief Builds the write of request on current (a WK_DONE decision) at
 * now_ms; with wants_applied also the ticket it leaves. Close with
 * wk_reply_write_close.
 */
void wk_reply_write_init(wk_reply_write *write, const bson_t *current, const tk_request *request, bool is_conditional,
                         bool wants_applied, int64_t now_ms);

/**
 * @brief Pins write's filter to the __v of current, a copy of the ticket
 * (wk_recent) it was decided on: the write then applies to that very version
 * or matches nothing (every change bumps __v). @returns false when current has no __v.
 */
bool wk_reply_write_pin(wk_reply_write *write, const bson_t *current, const tk_request *request);

/** @brief Frees the write's documents. Accepts a zeroed struct. */
void wk_reply_write_close(wk_reply_write *write);

/**
 * @brief The answer (200) and events for ticket, which holds request's reply.
 * @returns WK_DONE (500 in *result when it cannot be built).
 */
wk_outcome wk_reply_answer(const bson_t *ticket, const tk_request *request, wk_result *result);

#endif
