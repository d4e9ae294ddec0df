/* wk_progress — which consumed messages are fully handled (written, answered,
 * announced) so their offsets may be stored. One FIFO per lane: a lane
 * handles its partitions in order, and an offset is stored only once every
 * message before it in the lane is done. */
#ifndef WK_PROGRESS_H
#define WK_PROGRESS_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct wk_progress_record {
    const char *topic; /* one of the static topic names */
    int32_t partition;
    int64_t offset;
    int outstanding;   /* the handling itself + each produced message not yet acknowledged */
    bool is_abandoned; /* fenced: finished without being applied, its offset is never stored */
    struct wk_progress_record *next;
} wk_progress_record;

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t drained;
    rd_kafka_t *consumer; /* borrowed: offsets are stored on it */
    wk_progress_record *head, *tail;
    size_t count;
} wk_progress;

/** @brief Empty tracker storing offsets on consumer. @returns 0, or -1. */
int wk_progress_init(wk_progress *progress, rd_kafka_t *consumer);

/** @brief Frees remaining records (their offsets are not stored). */
void wk_progress_close(wk_progress *progress);

/** @brief Starts tracking a message; it holds one outstanding unit until wk_progress_done.
 * @returns NULL when out of memory. */
wk_progress_record *wk_progress_begin(wk_progress *progress, const char *topic, int32_t partition, int64_t offset);

/** @brief One more produced message to wait for. */
void wk_progress_expect(wk_progress *progress, wk_progress_record *record);

/** @brief One unit finished; stores the offsets of every finished message at the head. */
void wk_progress_done(wk_progress *progress, wk_progress_record *record);

/**
 * @brief Ends the handling unit of a message that was not applied (its
 * partition moved away): it stops holding back the lane, and neither its
 * offset nor any before it of the same partition is stored on its account.
 */
void wk_progress_abandon(wk_progress *progress, wk_progress_record *record);

/** @brief Waits up to timeout_ms until nothing is in flight. @returns true when drained. */
bool wk_progress_wait_drained(wk_progress *progress, int timeout_ms);

#endif
