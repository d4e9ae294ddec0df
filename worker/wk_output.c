/* wk_output — everything the worker produces: replies (chunked when large),
 * events and dead letters. Each message is tracked until the broker has it. */
#include "wk_output.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tk_envelope.h"
#include "tk_kafka.h"
#include "tk_log.h"
#include "tk_text.h"
#include "tk_trace.h"
#include "wk_metrics.h"

#define QUEUE_FULL_BACKOFF_US (10 * 1000)
#define EVENT_MAX_BYTES (900 * 1000)       /* events and dead letters: under the broker's 1 MB message limit */
#define DLQ_PAYLOAD_MAX_BYTES (256 * 1024) /* room for base64 and the envelope */
#define DLQ_RETRY_BACKOFF_US (100 * 1000)
#define PURGE_REPORTS_MS 2000
/* How long a message waits for its topic to appear before it fails: an
 * unknown reply topic is dead-lettered after this, instead of holding its
 * lane's offsets for librdkafka's default 30 s. */
#define TOPIC_PROPAGATION_MS "2000"

/* Where a dead letter's payload came from. */
typedef struct {
    const char *topic;
    int32_t partition;
    int64_t offset; /* -1 for a message of ours that was never stored */
    const void *payload;
    size_t len;
} letter_source;

static char *dead_letter_text(const letter_source *source, const char *reason, size_t payload_len);

/* The opaque of every produced message: whom to tell when it is stored. */
typedef struct {
    wk_progress *progress;
    wk_progress_record *record;
} delivery_ticket;

/* Kafka's legal topic characters: [a-zA-Z0-9._-]. */
static bool is_topic_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
}

static bool is_topic_name(const char *name, size_t len) {
    if (len == 0 || len > WK_TOPIC_NAME_MAX) return false;
    for (size_t i = 0; i < len; i++) {
        if (!is_topic_char(name[i])) return false;
    }
    return true;
}

void wk_address_from_message(const rd_kafka_message_t *message, wk_address *address) {
    char partition_text[12];
    memset(address, 0, sizeof *address);
    address->partition = RD_KAFKA_PARTITION_UA;
    /* Checked as the gateway checks HTTP: a malformed one is not passed on. */
    if (tk_kafka_header_copy(message, TK_HEADER_TRACEPARENT, address->traceparent, sizeof address->traceparent) != 0 ||
        !tk_trace_is_valid(address->traceparent))
        address->traceparent[0] = '\0';
    if (tk_kafka_header_copy(message, TK_HEADER_CORRELATION_ID, address->correlation_id,
                             sizeof address->correlation_id) != 0 ||
        tk_kafka_header_copy(message, TK_HEADER_REPLY_TOPIC, address->topic, sizeof address->topic) != 0 ||
        !is_topic_name(address->topic, strlen(address->topic)))
        return;
    if (tk_kafka_header_copy(message, TK_HEADER_REPLY_PARTITION, partition_text, sizeof partition_text) == 0) {
        char *end = NULL;
        long partition = strtol(partition_text, &end, 10);
        if (*end != '\0' || partition < 0 || partition > INT32_MAX) return;
        address->partition = (int32_t)partition;
    }
    address->wants_reply = true;
}

/* A reply or event the broker refused for good (topic or partition
 * unknown, too large): it goes to ticket.dlq with the reason, under the same
 * delivery ticket, so the offset is stored only once the DLQ has it. Nothing
 * is dropped: when even that cannot be queued the unit stays outstanding and
 * the message is handled again after a restart. @returns 0 when queued. */
static int produce_letter_of_refused(wk_output *output, const letter_source *refused, const void *key, size_t key_len,
                                     const char *error, delivery_ticket *ticket) {
    const char *topic = refused->topic;
    char reason[TK_ERROR_TEXT_MAX];
    snprintf(reason, sizeof reason, "undeliverable on %.64s: %.120s", topic, error);
    wk_metrics_undeliverable(topic);
    tk_log_fields(TK_LOG_ERROR, "message refused for good, dead-lettered",
                  json_pack("{s:s, s:s}", "topic", topic, "error", error));
    const char *payload = refused->payload != NULL ? refused->payload : "";
    char *text = dead_letter_text(refused, reason, tk_utf8_prefix_len(payload, refused->len, DLQ_PAYLOAD_MAX_BYTES));
    if (text == NULL) return -1;
    rd_kafka_resp_err_t rc = rd_kafka_producev(output->producer, RD_KAFKA_V_TOPIC(TK_TOPIC_DLQ),
                                               RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE(text, strlen(text)),
                                               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(ticket),
                                               RD_KAFKA_V_END);
    free(text);
    return rc == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

/* A dead letter the broker refused: send it again, after a pause so a
 * broken DLQ does not spin. The letter keeps its ticket. @returns 0 when queued. */
static int produce_letter_again(wk_output *output, const rd_kafka_message_t *letter, delivery_ticket *ticket) {
    wk_metrics_produce_retry(TK_TOPIC_DLQ);
    usleep(DLQ_RETRY_BACKOFF_US);
    rd_kafka_resp_err_t rc =
        rd_kafka_producev(output->producer, RD_KAFKA_V_TOPIC(TK_TOPIC_DLQ),
                          RD_KAFKA_V_KEY(letter->key, letter->key_len), RD_KAFKA_V_VALUE(letter->payload, letter->len),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(ticket), RD_KAFKA_V_END);
    return rc == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

static int refuse(wk_output *output, const rd_kafka_message_t *message, delivery_ticket *ticket) {
    letter_source source = {rd_kafka_topic_name(message->rkt), message->partition, -1, message->payload, message->len};
    return produce_letter_of_refused(output, &source, message->key, message->key_len, rd_kafka_err2str(message->err),
                                     ticket);
}

static bool is_purged(rd_kafka_resp_err_t err) {
    return err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *message, void *opaque) {
    wk_output *output = opaque;
    delivery_ticket *ticket = message->_private;
    char fatal[256];
    if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        wk_progress_done(ticket->progress, ticket->record);
        free(ticket);
        return;
    }
    if (is_purged(message->err)) {
        /* Shutdown gave up on it: the unit stays outstanding, the offset unstored. */
        free(ticket);
        return;
    }
    if (message->err == RD_KAFKA_RESP_ERR__FATAL || rd_kafka_fatal_error(rk, fatal, sizeof fatal) != 0) {
        /* The idempotent producer is broken: keep the offset unstored and
         * restart, the message comes back. */
        tk_log_fields(TK_LOG_ERROR, "delivery failed, producer unusable",
                      json_pack("{s:s, s:s}", "topic", rd_kafka_topic_name(message->rkt), "error",
                                rd_kafka_err2str(message->err)));
        atomic_store(&output->has_fatal_error, true);
        free(ticket);
        return;
    }
    /* Refused for good: a reply or event goes to the DLQ, a dead letter is
     * sent again (until shutdown). The unit moves with the ticket. */
    int rc = -1;
    if (strcmp(rd_kafka_topic_name(message->rkt), TK_TOPIC_DLQ) != 0) rc = refuse(output, message, ticket);
    else if (!atomic_load(&output->is_waiting_ended)) rc = produce_letter_again(output, message, ticket);
    if (rc != 0) {
        tk_log_fields(TK_LOG_ERROR, "undeliverable message not dead-lettered, left for redelivery",
                      json_pack("{s:s, s:s}", "topic", rd_kafka_topic_name(message->rkt), "error",
                                rd_kafka_err2str(message->err)));
        free(ticket);
    }
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    wk_output *output = opaque;
    char fatal[256];
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, fatal, sizeof fatal);
        tk_log_fields(TK_LOG_ERROR, "producer fatal error", json_pack("{s:s}", "error", fatal));
        atomic_store(&output->has_fatal_error, true);
        return;
    }
    tk_log_fields(TK_LOG_WARN, "producer error", json_pack("{s:s}", "error", reason));
}

static void *serve_delivery_reports(void *arg) {
    wk_output *output = arg;
    while (!atomic_load(&output->is_stopping)) rd_kafka_poll(output->producer, 100);
    return NULL;
}

int wk_output_init(wk_output *output, const char *brokers, const char *client_id, char *err, size_t err_len) {
    /* Never give up on a message (timeout 0): an event or reply that cannot
     * be sent holds back its offset instead of being dropped. No linger: a
     * reply is on a client's critical path. One produce request in flight:
     * what is produced meanwhile (a batch's replies and events) waits for
     * it and goes as one request, not one each (BENCHMARKS.md, issue 11). */
    const tk_kafka_setting settings[] = {
        {"enable.idempotence", "true"},
        {"linger.ms", "0"},
        {"socket.nagle.disable", "true"},
        {"max.in.flight.requests.per.connection", "1"},
        {"message.timeout.ms", "0"},
        {"message.max.bytes", "1000000"},
        {"topic.metadata.propagation.max.ms", TOPIC_PROPAGATION_MS},
        {NULL, NULL},
    };
    memset(output, 0, sizeof *output);
    rd_kafka_conf_t *conf = tk_kafka_conf_new(brokers, client_id, settings, err, err_len);
    if (conf == NULL) return -1;
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_opaque(conf, output);
    output->producer = tk_kafka_new(RD_KAFKA_PRODUCER, conf, err, err_len);
    if (output->producer == NULL) return -1;
    if (pthread_create(&output->poll_thread, NULL, serve_delivery_reports, output) != 0) {
        snprintf(err, err_len, "cannot start the delivery thread");
        rd_kafka_destroy(output->producer);
        output->producer = NULL;
        return -1;
    }
    output->is_poll_thread_started = true;
    return 0;
}

/* Produces one message, waiting while the local queue is full. Takes
 * ownership of headers. */
static int produce(wk_output *output, const char *topic, int32_t partition, const void *key, size_t key_len,
                   const void *value, size_t len, rd_kafka_headers_t *headers, wk_progress *progress,
                   wk_progress_record *record) {
    delivery_ticket *ticket = malloc(sizeof *ticket);
    if (ticket == NULL) {
        rd_kafka_headers_destroy(headers);
        return -1;
    }
    ticket->progress = progress;
    ticket->record = record;
    wk_progress_expect(progress, record);
    for (;;) {
        rd_kafka_resp_err_t rc =
            rd_kafka_producev(output->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                              RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE((void *)value, len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers),
                              RD_KAFKA_V_OPAQUE(ticket), RD_KAFKA_V_END);
        if (rc == RD_KAFKA_RESP_ERR_NO_ERROR) return 0;
        if (rc != RD_KAFKA_RESP_ERR__QUEUE_FULL && strcmp(topic, TK_TOPIC_DLQ) != 0) {
            /* Refused at once (unknown partition, too large): dead-letter it. */
            letter_source refused = {topic, partition, -1, value, len};
            int letter_rc = produce_letter_of_refused(output, &refused, key, key_len, rd_kafka_err2str(rc), ticket);
            rd_kafka_headers_destroy(headers);
            if (letter_rc == 0) return 0;
            free(ticket);
            return -1; /* the unit stays outstanding: redelivered after a restart */
        }
        if (rc != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_headers_destroy(headers);
            free(ticket);
            tk_log_fields(TK_LOG_ERROR, "dead letter refused, message left for redelivery",
                          json_pack("{s:s}", "error", rd_kafka_err2str(rc)));
            return -1;
        }
        if (atomic_load(&output->is_waiting_ended)) {
            rd_kafka_headers_destroy(headers);
            free(ticket);
            return -1; /* the unit stays outstanding: redelivered after the restart */
        }
        usleep(QUEUE_FULL_BACKOFF_US);
    }
}

static rd_kafka_headers_t *reply_headers(const wk_address *address, int chunk_index, int chunk_count) {
    rd_kafka_headers_t *headers = rd_kafka_headers_new(4);
    rd_kafka_header_add(headers, TK_HEADER_CORRELATION_ID, -1, address->correlation_id, -1);
    if (address->traceparent[0] != '\0')
        rd_kafka_header_add(headers, TK_HEADER_TRACEPARENT, -1, address->traceparent, -1);
    if (chunk_count > 1) {
        char text[12];
        snprintf(text, sizeof text, "%d", chunk_index);
        rd_kafka_header_add(headers, TK_HEADER_CHUNK_INDEX, -1, text, -1);
        snprintf(text, sizeof text, "%d", chunk_count);
        rd_kafka_header_add(headers, TK_HEADER_CHUNK_COUNT, -1, text, -1);
    }
    return headers;
}

int wk_output_reply_text(wk_output *output, const wk_address *address, const char *text, size_t len,
                         wk_progress *progress, wk_progress_record *record) {
    int chunk_count = (int)((len + TK_REPLY_CHUNK_BYTES - 1) / TK_REPLY_CHUNK_BYTES);
    if (chunk_count == 0) chunk_count = 1;
    int rc = 0;
    for (int i = 0; i < chunk_count && rc == 0; i++) {
        size_t start = (size_t)i * TK_REPLY_CHUNK_BYTES;
        size_t part = len - start < TK_REPLY_CHUNK_BYTES ? len - start : TK_REPLY_CHUNK_BYTES;
        rc = produce(output, address->topic, address->partition, address->correlation_id,
                     strlen(address->correlation_id), text + start, part, reply_headers(address, i, chunk_count),
                     progress, record);
    }
    return rc;
}

int wk_output_event(wk_output *output, const char *key, const json_t *event, const wk_address *address,
                    wk_progress *progress, wk_progress_record *record) {
    char *text = json_dumps(event, JSON_COMPACT);
    if (text == NULL) return -1;
    if (strlen(text) > EVENT_MAX_BYTES) {
        /* A ticket with very many replies: announce the change without the
         * whole ticket rather than never announce it. */
        json_t *slim = json_copy((json_t *)event);
        free(text);
        if (slim == NULL) return -1;
        json_object_del(slim, "ticket");
        json_object_set_new(slim, "ticketOmitted", json_true());
        text = json_dumps(slim, JSON_COMPACT);
        json_decref(slim);
        if (text == NULL) return -1;
    }
    rd_kafka_headers_t *headers = rd_kafka_headers_new(1);
    if (address->traceparent[0] != '\0')
        rd_kafka_header_add(headers, TK_HEADER_TRACEPARENT, -1, address->traceparent, -1);
    int rc = produce(output, TK_TOPIC_EVENTS, RD_KAFKA_PARTITION_UA, key, strlen(key), text, strlen(text), headers,
                     progress, record);
    free(text);
    return rc;
}

/* The dead letter's JSON with at most payload_len bytes of the original.
 * @returns a malloc'd string, or NULL when out of memory. */
static char *dead_letter_text(const letter_source *source, const char *reason, size_t payload_len) {
    static const char ALPHABET[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *payload = source->payload != NULL ? source->payload : "";
    json_t *letter = json_pack("{s:i, s:s%, s:{s:s, s:i, s:I}}", "version", TK_ENVELOPE_VERSION, "reason", reason,
                               tk_utf8_prefix_len(reason, strlen(reason), strlen(reason)), "source", "topic",
                               source->topic, "partition", (int)source->partition, "offset",
                               (json_int_t)source->offset);
    if (letter == NULL) return NULL;
    if (payload_len < source->len) json_object_set_new(letter, "payloadTruncated", json_true());
    if (tk_utf8_is_valid(payload, payload_len)) {
        json_object_set_new(letter, "payload", json_stringn(payload, payload_len));
    } else {
        /* jansson has no base64: 3 bytes to 4 characters by hand. */
        const unsigned char *in = (const unsigned char *)payload;
        char *encoded = malloc(4 * ((payload_len + 2) / 3) + 1);
        if (encoded == NULL) {
            json_decref(letter);
            return NULL;
        }
        size_t o = 0;
        for (size_t i = 0; i < payload_len; i += 3) {
            uint32_t chunk = (uint32_t)in[i] << 16;
            if (i + 1 < payload_len) chunk |= (uint32_t)in[i + 1] << 8;
            if (i + 2 < payload_len) chunk |= in[i + 2];
            encoded[o++] = ALPHABET[(chunk >> 18) & 63];
            encoded[o++] = ALPHABET[(chunk >> 12) & 63];
            encoded[o++] = i + 1 < payload_len ? ALPHABET[(chunk >> 6) & 63] : '=';
            encoded[o++] = i + 2 < payload_len ? ALPHABET[chunk & 63] : '=';
        }
        json_object_set_new(letter, "payloadBase64", json_stringn(encoded, o));
        free(encoded);
    }
    char *text = json_dumps(letter, JSON_COMPACT);
    json_decref(letter);
    return text;
}

int wk_output_dead_letter(wk_output *output, const rd_kafka_message_t *message, const char *reason,
                          wk_progress *progress, wk_progress_record *record) {
    /* Escaping can grow a payload six times (\u0001): shrink the copy until
     * the letter fits in one message. Cuts fall between characters, so a
     * text payload stays text rather than turn into base64. */
    letter_source source = {rd_kafka_topic_name(message->rkt), message->partition, message->offset, message->payload,
                            message->len};
    const char *payload = message->payload != NULL ? message->payload : "";
    size_t payload_len = tk_utf8_prefix_len(payload, message->len, DLQ_PAYLOAD_MAX_BYTES);
    char *text = dead_letter_text(&source, reason, payload_len);
    while (text != NULL && strlen(text) > EVENT_MAX_BYTES && payload_len > 0) {
        free(text);
        payload_len = tk_utf8_prefix_len(payload, payload_len, payload_len / 2);
        text = dead_letter_text(&source, reason, payload_len);
    }
    if (text == NULL) return -1;
    rd_kafka_headers_t *original = NULL;
    rd_kafka_headers_t *headers = rd_kafka_message_headers(message, &original) == RD_KAFKA_RESP_ERR_NO_ERROR
                                      ? rd_kafka_headers_copy(original)
                                      : rd_kafka_headers_new(1);
    int rc = produce(output, TK_TOPIC_DLQ, RD_KAFKA_PARTITION_UA, message->key, message->key_len, text, strlen(text),
                     headers, progress, record);
    free(text);
    return rc;
}

bool wk_output_is_broken(wk_output *output) { return atomic_load(&output->has_fatal_error); }

void wk_output_stop_waiting(wk_output *output) { atomic_store(&output->is_waiting_ended, true); }

void wk_output_close(wk_output *output, int timeout_ms) {
    if (output == NULL || output->producer == NULL) return;
    atomic_store(&output->is_waiting_ended, true);
    if (rd_kafka_flush(output->producer, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* Broker away: give up on the rest (their offsets stay unstored) and
         * serve the purge reports now, while the progress records exist. */
        tk_log_fields(TK_LOG_WARN, "flush timed out, unsent replies and events will be redone after restart",
                      json_pack("{s:i}", "unsent", rd_kafka_outq_len(output->producer)));
        rd_kafka_resp_err_t rc = rd_kafka_purge(output->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        if (rc == RD_KAFKA_RESP_ERR_NO_ERROR) rc = rd_kafka_flush(output->producer, PURGE_REPORTS_MS);
        if (rc != RD_KAFKA_RESP_ERR_NO_ERROR)
            tk_log_fields(TK_LOG_ERROR, "purge incomplete", json_pack("{s:s}", "error", rd_kafka_err2str(rc)));
    }
    atomic_store(&output->is_stopping, true);
    if (output->is_poll_thread_started) pthread_join(output->poll_thread, NULL);
    rd_kafka_destroy(output->producer);
    output->producer = NULL;
}
