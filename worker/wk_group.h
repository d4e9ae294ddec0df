/* wk_group — group commit: a lane's batch applied in as few database round
 * trips as the partition order allows. Runs of plain creates go out as one
 * unordered insertMany; every other message (and every create insertMany did
 * not settle) takes the one-message path of wk_process, in queue order. */
#ifndef WK_GROUP_H
#define WK_GROUP_H

#include <stddef.h>

#include "wk_batch.h"
#include "wk_fence.h"
#include "wk_process.h"
#include "wk_progress.h"

/**
 * @brief Handles slots[0..count) completely and in order, as
 * wk_process_message would one by one: every reply and event is produced and
 * each offset stored only once its record is done. Identical queries with
 * no write between them share one read (wk_share.h). A create's insert starts
 * only while its lease on fence holds. Does not free the messages.
 */
void wk_group_handle(const wk_process_context *context, const wk_collections *db, wk_progress *progress,
                     wk_fence *fence, const wk_lane_slot *slots, size_t count);

#endif
