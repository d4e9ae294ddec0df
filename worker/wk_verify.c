/* wk_verify — a consumed message's signature, its key's role and its reply
 * address checked before anything is applied. */
#include "wk_verify.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "tk_clock.h"
#include "tk_ids.h"
#include "tk_kafka.h"
#include "tk_log.h"
#include "tk_sign.h"

#define METADATA_TIMEOUT_MS 5000
#define METADATA_REFRESH_MS 5000 /* at most this often per topic, however many bad partitions arrive */

/* Process-wide like the metric handles: set once before the lanes start,
 * read by every lane. Only the partition counts change later, under lock. */
static struct {
    tk_sign_keys keys;
    char topics[TK_REPLY_TOPICS_MAX][250];
    size_t topic_count;
    int32_t partition_counts[TK_REPLY_TOPICS_MAX]; /* 0 = not known yet */
    int64_t refreshed_ms[TK_REPLY_TOPICS_MAX];
    pthread_mutex_t lock;
    rd_kafka_t *producer;
} verifier = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int32_t fetch_partition_count(const char *name) {
    int32_t count = 0;
    const struct rd_kafka_metadata *metadata = NULL;
    rd_kafka_topic_t *topic = rd_kafka_topic_new(verifier.producer, name, NULL);
    if (topic != NULL &&
        rd_kafka_metadata(verifier.producer, 0, topic, &metadata, METADATA_TIMEOUT_MS) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        metadata->topic_cnt == 1 && metadata->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
        count = metadata->topics[0].partition_cnt;
    if (metadata != NULL) rd_kafka_metadata_destroy(metadata);
    if (topic != NULL) rd_kafka_topic_destroy(topic);
    return count;
}

int wk_verify_init(const tk_worker_config *config, rd_kafka_t *producer) {
    verifier.keys = config->command_keys;
    verifier.topic_count = config->reply_topic_count;
    memcpy(verifier.topics, config->reply_topics, sizeof verifier.topics);
    memset(verifier.partition_counts, 0, sizeof verifier.partition_counts);
    memset(verifier.refreshed_ms, 0, sizeof verifier.refreshed_ms);
    verifier.producer = producer;
    return 0;
}

void wk_verify_close(void) { memset(&verifier.keys, 0, sizeof verifier.keys); }

/* Partitions can be added to a topic: a partition past the count we know
 * asks the broker again (not more often than METADATA_REFRESH_MS). @returns
 * the count, or 0 when the broker could not say. */
static int32_t partition_count(size_t topic_index, int32_t partition) {
    pthread_mutex_lock(&verifier.lock);
    int32_t count = verifier.partition_counts[topic_index];
    int64_t now = tk_now_ms();
    if (partition >= count && now - verifier.refreshed_ms[topic_index] >= METADATA_REFRESH_MS) {
        int32_t fetched = fetch_partition_count(verifier.topics[topic_index]);
        verifier.refreshed_ms[topic_index] = now;
        if (fetched > 0) count = verifier.partition_counts[topic_index] = fetched;
    }
    pthread_mutex_unlock(&verifier.lock);
    return count;
}

static bool is_printable_id(const char *text, size_t len) {
    if (len == 0 || len > TK_SIGN_KEY_ID_MAX) return false;
    for (size_t i = 0; i < len; i++)
        if (text[i] < 0x21 || text[i] > 0x7e || text[i] == '"' || text[i] == '\\') return false;
    return true;
}

/* The reply address: only REPLY_TOPICS, only their partitions. */
static int check_address(const rd_kafka_message_t *message, wk_address *address, char *reason, size_t reason_len) {
    const char *topic;
    size_t len;
    if (tk_kafka_header(message, TK_HEADER_REPLY_TOPIC, &topic, &len) != 0) return 0;
    size_t t = 0;
    while (t < verifier.topic_count &&
           !(strlen(verifier.topics[t]) == len && memcmp(verifier.topics[t], topic, len) == 0))
        t++;
    if (t == verifier.topic_count) {
        address->wants_reply = false;
        snprintf(reason, reason_len, "reply-topic is not one of REPLY_TOPICS");
        return -1;
    }
    if (!address->wants_reply || address->partition == RD_KAFKA_PARTITION_UA) return 0;
    int32_t count = partition_count(t, address->partition);
    if (count == 0) {
        /* Unknown for now: the producer itself refuses a partition its
         * metadata does not have, and that is dead-lettered too. */
        tk_log_fields(TK_LOG_WARN, "reply topic partitions unknown", json_pack("{s:s}", "topic", address->topic));
        return 0;
    }
    if (address->partition >= count) {
        address->wants_reply = false;
        snprintf(reason, reason_len, "reply-partition %d is out of range (%s has %d)", (int)address->partition,
                 address->topic, (int)count);
        return -1;
    }
    return 0;
}

static tk_sign_view header_view(const rd_kafka_message_t *message, const char *name) {
    tk_sign_view view = {NULL, 0};
    if (tk_kafka_header(message, name, &view.ptr, &view.len) != 0) view.ptr = NULL;
    return view;
}

/* The actor's role as the request parser will read it; 0 when there is
 * none or it is not a role (the parser then refuses the message). */
static unsigned claimed_role(const rd_kafka_message_t *message) {
    json_t *root = json_loadb(message->payload, message->len, JSON_REJECT_DUPLICATES, NULL);
    const char *role = json_string_value(json_object_get(json_object_get(root, "actor"), "role"));
    unsigned bit = role != NULL ? tk_sign_role_bit(role, strlen(role)) : 0;
    json_decref(root);
    return bit;
}

static int check_signature(const rd_kafka_message_t *message, char *reason, size_t reason_len) {
    tk_sign_view signature = header_view(message, TK_HEADER_SIGNATURE);
    tk_sign_fields fields = {header_view(message, TK_HEADER_KEY_ID),
                             header_view(message, TK_HEADER_CORRELATION_ID),
                             header_view(message, TK_HEADER_REPLY_TOPIC),
                             header_view(message, TK_HEADER_REPLY_PARTITION),
                             header_view(message, TK_HEADER_DEADLINE),
                             {message->payload != NULL ? message->payload : "", message->len}};
    if (fields.key_id.ptr == NULL || signature.ptr == NULL) {
        snprintf(reason, reason_len, "message is not signed (headers key-id and signature are required)");
        return -1;
    }
    const tk_sign_key *key = tk_sign_keys_find(&verifier.keys, fields.key_id.ptr, fields.key_id.len);
    if (key == NULL) {
        bool is_shown = is_printable_id(fields.key_id.ptr, fields.key_id.len);
        snprintf(reason, reason_len, "unknown signing key '%.*s'", is_shown ? (int)fields.key_id.len : 1,
                 is_shown ? fields.key_id.ptr : "?");
        return -1;
    }
    if (!tk_sign_verify(key, &fields, signature.ptr, signature.len)) {
        snprintf(reason, reason_len, "bad signature (key '%s')", key->id);
        return -1;
    }
    unsigned role = claimed_role(message);
    if (role != 0 && (key->roles & role) == 0) {
        snprintf(reason, reason_len, "key '%s' may not act as %s", key->id,
                 role == TK_ROLE_ADMIN ? "admin" : "customer");
        return -1;
    }
    return 0;
}

int wk_verify_message(const rd_kafka_message_t *message, wk_address *address, char *reason, size_t reason_len) {
    if (check_address(message, address, reason, reason_len) != 0) return -1;
    return check_signature(message, reason, reason_len);
}
