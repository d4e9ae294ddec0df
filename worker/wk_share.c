/* wk_share — identical reads of one batch answered from one database read. */
#include "wk_share.h"

#include <stdlib.h>
#include <string.h>

void wk_share_init(wk_share *share) { memset(share, 0, sizeof *share); }

/* A copy whose data is shared by reference; a read has no event. */
static void result_copy(wk_result *to, const wk_result *from) {
    *to = *from;
    to->event = NULL;
    to->data = json_incref(from->data);
}

bool wk_share_lookup(const wk_share *share, const rd_kafka_message_t *message, wk_result *result) {
    if (!share->is_set || message->len != share->len || message->payload == NULL ||
        memcmp(message->payload, share->payload, share->len) != 0)
        return false;
    result_copy(result, &share->result);
    return true;
}

bool wk_share_keep(wk_share *share, const rd_kafka_message_t *message, const wk_result *result) {
    wk_share_clear(share);
    if (message->payload == NULL || result->event != NULL) return false;
    share->payload = message->payload;
    share->len = message->len;
    result_copy(&share->result, result);
    share->is_set = true;
    return true;
}

const char *wk_share_reply(const wk_share *share, size_t *len) {
    *len = share->reply_len;
    return share->reply;
}

void wk_share_keep_reply(wk_share *share, char *text, size_t len) {
    if (!share->is_set || share->reply != NULL) {
        free(text);
        return;
    }
    share->reply = text;
    share->reply_len = len;
}

void wk_share_clear(wk_share *share) {
    if (share->is_set) wk_result_close(&share->result);
    free(share->reply);
    wk_share_init(share);
}
