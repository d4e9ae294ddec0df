/* wk_progress — which consumed messages are fully handled (written, answered,
 * announced) so their offsets may be stored. One FIFO per lane: a lane
 * handles its partitions in order, and an offset is stored only once every
 * message before it in the lane is done. */
#include "wk_progress.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "tk_log.h"

int wk_progress_init(wk_progress *progress, rd_kafka_t *consumer) {
    progress->consumer = consumer;
    progress->head = progress->tail = NULL;
    progress->count = 0;
    if (pthread_mutex_init(&progress->lock, NULL) != 0) return -1;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&progress->drained, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0) {
        pthread_mutex_destroy(&progress->lock);
        return -1;
    }
    return 0;
}

void wk_progress_close(wk_progress *progress) {
    wk_progress_record *record = progress->head;
    while (record != NULL) {
        wk_progress_record *next = record->next;
        free(record);
        record = next;
    }
    progress->head = progress->tail = NULL;
    pthread_cond_destroy(&progress->drained);
    pthread_mutex_destroy(&progress->lock);
}

wk_progress_record *wk_progress_begin(wk_progress *progress, const char *topic, int32_t partition, int64_t offset) {
    wk_progress_record *record = calloc(1, sizeof *record);
    if (record == NULL) return NULL;
    record->topic = topic;
    record->partition = partition;
    record->offset = offset;
    record->outstanding = 1;
    pthread_mutex_lock(&progress->lock);
    if (progress->tail != NULL) progress->tail->next = record;
    else progress->head = record;
    progress->tail = record;
    progress->count++;
    pthread_mutex_unlock(&progress->lock);
    return record;
}

void wk_progress_expect(wk_progress *progress, wk_progress_record *record) {
    pthread_mutex_lock(&progress->lock);
    record->outstanding++;
    pthread_mutex_unlock(&progress->lock);
}

/* Pops the finished prefix into a list to store. Lock held. */
static rd_kafka_topic_partition_list_t *pop_finished_locked(wk_progress *progress) {
    rd_kafka_topic_partition_list_t *offsets = NULL;
    while (progress->head != NULL && progress->head->outstanding == 0) {
        wk_progress_record *record = progress->head;
        if (record->is_abandoned) {
            progress->head = record->next;
            if (progress->head == NULL) progress->tail = NULL;
            progress->count--;
            free(record);
            continue;
        }
        if (offsets == NULL) offsets = rd_kafka_topic_partition_list_new(4);
        /* Kafka stores the next offset to read. Later records of the same
         * partition overwrite the entry. */
        rd_kafka_topic_partition_t *entry = rd_kafka_topic_partition_list_find(offsets, record->topic,
                                                                               record->partition);
        if (entry == NULL) entry = rd_kafka_topic_partition_list_add(offsets, record->topic, record->partition);
        entry->offset = record->offset + 1;
        progress->head = record->next;
        if (progress->head == NULL) progress->tail = NULL;
        progress->count--;
        free(record);
    }
    if (progress->count == 0) pthread_cond_broadcast(&progress->drained);
    return offsets;
}

static void finish(wk_progress *progress, wk_progress_record *record, bool is_abandoned) {
    pthread_mutex_lock(&progress->lock);
    if (is_abandoned) record->is_abandoned = true;
    record->outstanding--;
    rd_kafka_topic_partition_list_t *offsets = pop_finished_locked(progress);
    pthread_mutex_unlock(&progress->lock);
    if (offsets == NULL) return;
    rd_kafka_resp_err_t rc = rd_kafka_offsets_store(progress->consumer, offsets);
    /* _STATE: the partition moved to another worker meanwhile; it will
     * redeliver, and the commands are safe to repeat. */
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR && rc != RD_KAFKA_RESP_ERR__STATE)
        tk_log_fields(TK_LOG_WARN, "offset store failed", json_pack("{s:s}", "error", rd_kafka_err2str(rc)));
    rd_kafka_topic_partition_list_destroy(offsets);
}

void wk_progress_done(wk_progress *progress, wk_progress_record *record) { finish(progress, record, false); }

void wk_progress_abandon(wk_progress *progress, wk_progress_record *record) { finish(progress, record, true); }

bool wk_progress_wait_drained(wk_progress *progress, int timeout_ms) {
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&progress->lock);
    int rc = 0;
    while (progress->count > 0 && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&progress->drained, &progress->lock, &deadline);
    bool is_drained = progress->count == 0;
    pthread_mutex_unlock(&progress->lock);
    return is_drained;
}
