/* wk_replies_bulk — a run of replies to distinct tickets in one unordered
 * update command: each ticket read (or taken from the worker's copy,
 * wk_recent, with its statement pinned to the copy's __v), each reply
 * decided in memory exactly as wk_reply decides one (404, the first answer
 * again, 409, 412, the status move), one conditional statement per reply to
 * write, and every reply whose statement surely matched answered from the
 * ticket as the statement leaves it. Whatever is not certain (a read or the
 * write failed, fewer matched than sent, a partition revoked, a copy that
 * did not say "store it") goes through the one-message path with its copy
 * forgotten: it reads again and decides, and its conditions make a second
 * attempt store nothing twice. */
#ifndef WK_REPLIES_BULK_H
#define WK_REPLIES_BULK_H

#include <stddef.h>

#include "tk_envelope.h"
#include "wk_batch.h"
#include "wk_fence.h"
#include "wk_process.h"
#include "wk_progress.h"

/**
 * @brief Handles slots[0..count), parsed replies without Idempotency-Key in
 * requests[0..count), to distinct tickets (wk_batch_group_end), completely
 * and in order, as wk_process_message would one by one. A statement is sent
 * only while its message's lease on fence holds. Borrows everything.
 */
void wk_replies_bulk_commit(const wk_process_context *context, const wk_collections *db, wk_progress *progress,
                            wk_fence *fence, const wk_lane_slot *slots, const tk_request *requests, size_t count);

#endif
