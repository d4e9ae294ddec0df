/* gw_http — the libmicrohttpd lifecycle of a request: first call (route,
 * admission), body upload, dispatch to Kafka while suspended, answer, and
 * the access log and metrics when it completes. */
#include "gw_http.h"

#include <arpa/inet.h>
#include <assert.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gw_admission.h"
#include "gw_answer.h"
#include "gw_command.h"
#include "gw_gateway.h"
#include "gw_router.h"
#include "gw_trace.h"
#include "gw_validate.h"
#include "tk_container.h"
#include "tk_envelope.h"
#include "tk_clock.h"
#include "tk_ids.h"
#include "tk_log.h"
#include "tk_metrics.h"

/* One HTTP request from first call to completion. The reply thread finds it
 * by its pending entry (tk_container_of). */
typedef struct {
    gw_pending_entry pending;
    gw_gateway *gateway;
    struct MHD_Connection *connection;
    const gw_route *route;
    gw_admitted admitted; /* identity, ticket id, list query, Idempotency-Key */
    char traceparent[GW_TRACEPARENT_LEN + 1];
    char *body;
    size_t body_len;
    bool is_body_too_large;
    bool is_waiting; /* suspended, its answer will come from another thread */
    bool is_counted; /* in the request metrics already */
    bool has_answer;
    int status;
    char *answer; /* JSON text */
    size_t answer_len;
    const char *allow;        /* for 405 */
    const char *content_type; /* of the answer; JSON unless set */
    bool is_answer_static;    /* answer points at data that outlives us */
    int64_t started_us;
} gw_request;

extern const char gw_openapi_json[];
extern const size_t gw_openapi_json_len;

static void request_destroy(gw_request *request) {
    if (request == NULL) return;
    free(request->pending.chunks);
    free(request->pending.next_cursor);
    gw_list_query_close(&request->admitted.list);
    free(request->body);
    if (!request->is_answer_static) free(request->answer);
    free(request);
}

static void set_answer(gw_request *request, int status, char *body, size_t len) {
    if (!request->is_answer_static) free(request->answer);
    request->is_answer_static = false;
    request->status = status;
    request->answer = body;
    request->answer_len = len;
    request->has_answer = true;
}

static void set_error(gw_request *request, int status, const char *message) {
    size_t len = 0;
    char *body = gw_answer_error(message, &len);
    set_answer(request, status, body, len);
}

static void count_request(gw_request *request, int status);

/* Link to the next page of a list, ETag of one ticket: from the reply. */
static void add_page_headers(gw_request *request, struct MHD_Response *response) {
    if (request->status != 200) return;
    if (request->pending.etag[0] != '\0')
        MHD_add_response_header(response, MHD_HTTP_HEADER_ETAG, request->pending.etag);
    if (request->pending.next_cursor == NULL || request->route == NULL ||
        request->route->request_type != TK_REQUEST_TICKETS_LIST)
        return;
    char *link = gw_validate_next_link_new(request->route->path, &request->admitted.list, request->pending.next_cursor);
    if (link != NULL) MHD_add_response_header(response, "Link", link);
    free(link);
}

static struct MHD_Response *response_new(gw_request *request) {
    struct MHD_Response *response;
    if (request->answer != NULL && request->is_answer_static)
        return MHD_create_response_from_buffer(request->answer_len, request->answer, MHD_RESPMEM_PERSISTENT);
    if (request->answer != NULL) {
        response = MHD_create_response_from_buffer(request->answer_len, request->answer, MHD_RESPMEM_MUST_FREE);
        if (response != NULL) request->answer = NULL; /* MHD frees it now */
        return response;
    }
    /* Out of memory while building the body: still a JSON error. */
    static char fallback[] = "{\"success\":false,\"message\":\"" GW_MSG_UNAVAILABLE "\"}";
    request->status = 503;
    return MHD_create_response_from_buffer(sizeof fallback - 1, fallback, MHD_RESPMEM_PERSISTENT);
}

static void add_headers(gw_request *request, struct MHD_Response *response) {
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
                            request->content_type != NULL ? request->content_type : "application/json");
    if (request->pending.correlation_id[0] != '\0')
        MHD_add_response_header(response, "X-Correlation-Id", request->pending.correlation_id);
    if (request->traceparent[0] != '\0') MHD_add_response_header(response, "traceparent", request->traceparent);
    /* Stopping: tell keep-alive clients not to send another request here. */
    if (gw_gateway_is_draining(request->gateway))
        MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close");
    if (request->allow != NULL) MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, request->allow);
    add_page_headers(request, response);
    if (request->admitted.retry_after_seconds > 0) {
        char seconds[16];
        snprintf(seconds, sizeof seconds, "%d", request->admitted.retry_after_seconds);
        MHD_add_response_header(response, MHD_HTTP_HEADER_RETRY_AFTER, seconds);
    }
}

static enum MHD_Result queue_answer(gw_request *request) {
    struct MHD_Response *response = response_new(request);
    if (response == NULL) return MHD_NO;
    add_headers(request, response);
    /* Counted before the answer leaves: a client that scrapes /metrics after
     * its answer finds it counted. */
    count_request(request, request->status);
    enum MHD_Result rc = MHD_queue_response(request->connection, (unsigned int)request->status, response);
    MHD_destroy_response(response);
    return rc;
}

void gw_http_complete(gw_pending_entry *entry, int status, char *body, size_t len, void *ctx) {
    (void)ctx;
    gw_request *request = tk_container_of(entry, gw_request, pending);
    assert(request->is_waiting); /* only a suspended request is in the table */
    set_answer(request, status, body, len);
    MHD_resume_connection(request->connection);
}

/* Routes without auth: health, readiness, metrics and the API description. */
static void answer_public(gw_request *request) {
    size_t len = 0;
    switch (request->route->id) {
    case GW_ROUTE_METRICS: {
        char *text = tk_metrics_render(&len);
        set_answer(request, text != NULL ? 200 : 503, text, len);
        request->content_type = "text/plain; version=0.0.4; charset=utf-8";
        return;
    }
    case GW_ROUTE_OPENAPI:
        set_answer(request, 200, (char *)gw_openapi_json, gw_openapi_json_len);
        request->is_answer_static = true;
        return;
    default: {
        static const char OK[] = "{\"status\":\"ok\"}";
        static const char UNAVAILABLE[] = "{\"status\":\"unavailable\"}";
        bool is_ready = request->route->id == GW_ROUTE_HEALTHZ || gw_gateway_is_ready(request->gateway);
        set_answer(request, is_ready ? 200 : 503, (char *)(is_ready ? OK : UNAVAILABLE),
                   is_ready ? sizeof OK - 1 : sizeof UNAVAILABLE - 1);
        request->is_answer_static = true;
        return;
    }
    }
}

/* A header or query value as a C string. A value with a NUL inside would be
 * cut short by C string functions and mean something else than was sent:
 * *is_malformed tells, and the value is not returned. */
static const char *lookup_value(void *ctx, gw_value_kind kind, const char *name, bool *is_malformed) {
    struct MHD_Connection *connection = ctx;
    enum MHD_ValueKind mhd_kind = kind == GW_VALUE_HEADER ? MHD_HEADER_KIND : MHD_GET_ARGUMENT_KIND;
    const char *value = NULL;
    size_t len = 0;
    if (MHD_lookup_connection_value_n(connection, mhd_kind, name, strlen(name), &value, &len) != MHD_YES ||
        value == NULL)
        return NULL;
    if (strlen(value) != len) {
        *is_malformed = true;
        return NULL;
    }
    return value;
}

typedef struct {
    gw_value_visit visit;
    void *arg;
} value_walk;

static enum MHD_Result visit_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    value_walk *walk = cls;
    return walk->visit(walk->arg, key, strlen(key), value, value != NULL ? strlen(value) : 0) ? MHD_YES : MHD_NO;
}

static enum MHD_Result visit_argument(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                      const char *value, size_t value_size) {
    (void)kind;
    value_walk *walk = cls;
    return walk->visit(walk->arg, key, key_size, value, value_size) ? MHD_YES : MHD_NO;
}

static void each_value(void *ctx, gw_value_kind kind, gw_value_visit visit, void *arg) {
    struct MHD_Connection *connection = ctx;
    value_walk walk = {visit, arg};
    if (kind == GW_VALUE_HEADER) MHD_get_connection_values(connection, MHD_HEADER_KIND, visit_header, &walk);
    else MHD_get_connection_values_n(connection, MHD_GET_ARGUMENT_KIND, visit_argument, &walk);
}

/* Everything that can be decided from the request line and headers, before
 * any body arrives: route, then admission (auth, role, id, content type and
 * length), or the answer of a public route. */
static void check_headers(gw_request *request, const char *url, const char *method) {
    gw_request_view view = {request->connection, lookup_value, each_value};
    bool is_malformed = false; /* a malformed traceparent reads as absent */
    gw_trace_take(lookup_value(request->connection, GW_VALUE_HEADER, "traceparent", &is_malformed),
                  request->traceparent);
    switch (gw_router_find(url, method, &request->route, &request->allow)) {
    case GW_ROUTE_NOT_FOUND:
        set_error(request, 404, "Route not found");
        return;
    case GW_ROUTE_BAD_METHOD:
        set_error(request, 405, "Method not allowed");
        return;
    case GW_ROUTE_FOUND:
        break;
    }
    char message[TK_ERROR_TEXT_MAX];
    int status = gw_admission_check(&request->gateway->admission, request->route, &view, &request->admitted, message,
                                    sizeof message);
    if (status != 0) set_error(request, status, message);
    else if (request->route->role == GW_ROLE_NONE) answer_public(request);
}

/* Buffers the body up to the limit; past it, the rest is dropped unread. */
static void take_upload(gw_request *request, const char *data, size_t size) {
    if (request->is_body_too_large) return;
    if (request->body_len + size > request->gateway->config->max_body_bytes) {
        request->is_body_too_large = true;
        free(request->body);
        request->body = NULL;
        return;
    }
    char *grown = realloc(request->body, request->body_len + size);
    if (grown == NULL) {
        request->is_body_too_large = true;
        return;
    }
    memcpy(grown + request->body_len, data, size);
    request->body = grown;
    request->body_len += size;
}

/* Registers the correlation id, suspends the connection, and publishes. The
 * reply thread resumes it; on failure before suspending, a 503 is set. */
static void wait_for_reply(gw_request *request, const tk_request *command, const char *key, const char *payload) {
    gw_gateway *gateway = request->gateway;
    if (tk_correlation_id_new(request->pending.correlation_id) != 0) {
        tk_log_fields(TK_LOG_ERROR, "no random bytes for a correlation id", NULL);
        set_error(request, 503, GW_MSG_UNAVAILABLE);
        return;
    }
    gw_pending_lock(&gateway->pending);
    /* Read under the lock, so deadlines enter the table in order. */
    request->pending.deadline_ms = tk_monotonic_ms() + gateway->config->request_timeout_ms;
    if (gw_pending_add_locked(&gateway->pending, &request->pending) != 0) {
        gw_pending_unlock(&gateway->pending);
        request->pending.correlation_id[0] = '\0';
        set_error(request, 503, GW_MSG_UNAVAILABLE);
        return;
    }
    /* Suspend before anyone can find the entry: a reply cannot resume a
     * connection that is not suspended yet. */
    request->is_waiting = true;
    MHD_suspend_connection(request->connection);
    gw_pending_unlock(&gateway->pending);

    if (gw_publish_send(&gateway->publish, command->type, key, payload, strlen(payload),
                        request->pending.correlation_id,
                        request->traceparent[0] != '\0' ? request->traceparent : NULL) != 0 &&
        gw_pending_remove(&gateway->pending, &request->pending) == 0) {
        size_t len = 0;
        char *body = gw_answer_error(GW_MSG_UNAVAILABLE, &len);
        gw_http_complete(&request->pending, 503, body, len, NULL);
    }
}

/* Validates the body, then waits for the reply to the published message. */
static void dispatch(gw_request *request) {
    char err[TK_ERROR_TEXT_MAX];
    gw_command command;
    char *payload = NULL;

    if (request->is_body_too_large) {
        set_error(request, 413, "Request body is too large");
        return;
    }
    if (gw_command_init(&command, request->route, &request->admitted, request->body != NULL ? request->body : "",
                        request->body_len, err, sizeof err) != 0) {
        set_error(request, 400, err);
        goto cleanup;
    }
    payload = gw_command_payload_new(&command);
    /* The payload holds all we need: a waiting request keeps no body (20000
     * waiting requests of 128 KiB would hold 2.6 GB). */
    free(request->body);
    request->body = NULL;
    request->body_len = 0;
    if (payload == NULL || !gw_gateway_is_ready(request->gateway) ||
        gw_publish_is_broker_down(&request->gateway->publish)) {
        set_error(request, 503, GW_MSG_UNAVAILABLE);
        goto cleanup;
    }
    wait_for_reply(request, &command.request, command.key, payload);
cleanup:
    free(payload);
    gw_command_close(&command);
}

static enum MHD_Result on_first_call(gw_http *http, struct MHD_Connection *connection, const char *url,
                                     const char *method, void **request_state) {
    gw_request *request = calloc(1, sizeof *request);
    if (request == NULL) return MHD_NO;
    request->gateway = http->gateway;
    request->connection = connection;
    request->started_us = tk_monotonic_us();
    atomic_fetch_add(&http->requests_in_flight, 1);
    *request_state = request;
    check_headers(request, url, method);
    /* An early answer to a request that may carry a body (401, 413, 415
     * ...) goes out before the body is read; libmicrohttpd then closes
     * the connection. Bodiless requests (GET /healthz, 404s) are answered
     * on the next call, which keeps the connection alive. */
    bool may_have_body = strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
    return request->has_answer && may_have_body ? queue_answer(request) : MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **request_state) {
    (void)version;
    gw_request *request = *request_state;
    if (request == NULL) return on_first_call(cls, connection, url, method, request_state);
    if (request->has_answer && *upload_data_size != 0) {
        *upload_data_size = 0; /* a GET with a body: drop it, answer once it is read */
        return MHD_YES;
    }
    if (request->has_answer) return queue_answer(request);
    if (*upload_data_size != 0) {
        take_upload(request, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (request->is_waiting) return MHD_YES; /* resumed without an answer cannot happen; wait */
    dispatch(request);
    /* Once waiting, the answer belongs to the thread that resumes us. */
    if (request->is_waiting) return MHD_YES;
    return queue_answer(request);
}

/* Series handles by route (plus one slot for unmatched requests) and status,
 * found once and then reused: the registry lookup takes a lock and compares
 * strings. Two threads may race to fill a slot; both get the same series. */
#define ROUTE_SLOTS (GW_ROUTE_COUNT + 1)
#define STATUS_SLOTS 600
static _Atomic(tk_series *) request_counters[ROUTE_SLOTS][STATUS_SLOTS];
static _Atomic(tk_series *) request_durations[ROUTE_SLOTS];

static tk_series *request_counter(int route_slot, const char *route, int status) {
    /* A status without a slot is never cached: sharing slot 0 would count it as "0". */
    bool has_slot = status >= 0 && status < STATUS_SLOTS;
    tk_series *series = has_slot ? atomic_load_explicit(&request_counters[route_slot][status], memory_order_acquire)
                                 : NULL;
    if (series != NULL) return series;
    char labels[96];
    snprintf(labels, sizeof labels, "route=\"%s\",status=\"%d\"", route, status);
    series = tk_metrics_counter("ticket_gateway_http_requests_total", "HTTP requests answered, by route and status",
                                labels);
    if (has_slot) atomic_store_explicit(&request_counters[route_slot][status], series, memory_order_release);
    return series;
}

static tk_series *request_duration(int route_slot, const char *route) {
    tk_series *series = atomic_load_explicit(&request_durations[route_slot], memory_order_acquire);
    if (series != NULL) return series;
    char labels[64];
    snprintf(labels, sizeof labels, "route=\"%s\"", route);
    series = tk_metrics_histogram("ticket_gateway_http_request_duration_seconds",
                                  "Time from request start to response, by route", labels);
    atomic_store_explicit(&request_durations[route_slot], series, memory_order_release);
    return series;
}

static void count_request(gw_request *request, int status) {
    if (request->is_counted) return;
    request->is_counted = true;
    const char *route = request->route != NULL ? request->route->name : "unmatched";
    int route_slot = request->route != NULL ? (int)request->route->id : GW_ROUTE_COUNT;
    tk_counter_add(request_counter(route_slot, route, status), 1);
    tk_histogram_observe(request_duration(route_slot, route), (double)(tk_monotonic_us() - request->started_us) / 1e6);
}

/* The access log line of a finished request (and its metrics, when the
 * client left before an answer: status 0). */
static void record_request(gw_request *request, enum MHD_RequestTerminationCode code) {
    const char *route = request->route != NULL ? request->route->name : "unmatched";
    int status = request->has_answer ? request->status : 0;
    double seconds = (double)(tk_monotonic_us() - request->started_us) / 1e6;
    count_request(request, status);
    if (!request->gateway->config->is_access_log || !tk_log_enabled(TK_LOG_INFO)) return;
    json_t *fields = json_pack("{s:s, s:i, s:f, s:b}", "route", route, "status", status, "latencyMs", seconds * 1000.0,
                               "completed", code == MHD_REQUEST_TERMINATED_COMPLETED_OK);
    if (fields == NULL) return;
    if (request->pending.correlation_id[0] != '\0')
        json_object_set_new(fields, "correlationId", json_string(request->pending.correlation_id));
    const char *user_id = request->admitted.identity.id;
    if (user_id[0] != '\0') json_object_set_new(fields, "userId", json_string(user_id));
    if (request->traceparent[0] != '\0')
        json_object_set_new(fields, "traceId",
                            json_stringn(request->traceparent + TK_TRACE_ID_OFFSET, TK_TRACE_ID_LEN));
    tk_log_fields(TK_LOG_INFO, "request", fields);
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **request_state,
                         enum MHD_RequestTerminationCode code) {
    (void)connection;
    gw_http *http = cls;
    gw_request *request = *request_state;
    if (request == NULL) return;
    record_request(request, code);
    atomic_fetch_sub(&http->requests_in_flight, 1);
    /* Never leave a dangling entry for the reply thread to find. */
    if (request->is_waiting) gw_pending_remove(&request->gateway->pending, &request->pending);
    request_destroy(request);
    *request_state = NULL;
}

int gw_http_start(gw_http *http, gw_gateway *gateway, char *err, size_t err_len) {
    const tk_gateway_config *config = gateway->config;
    http->gateway = gateway;
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)config->port)};
    if (inet_pton(AF_INET, config->bind_address, &address.sin_addr) != 1) {
        snprintf(err, err_len, "BIND_ADDRESS '%s' is not an IPv4 address", config->bind_address);
        return -1;
    }
    http->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                                        MHD_USE_TURBO,
                                    0, NULL, NULL, on_request, http, MHD_OPTION_SOCK_ADDR, &address,
                                    MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)config->http_threads,
                                    MHD_OPTION_NOTIFY_COMPLETED, on_completed, http, MHD_OPTION_CONNECTION_TIMEOUT,
                                    (unsigned int)60, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)20000,
                                    /* Slow clients from one address (slow loris) cannot take every slot. */
                                    MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)config->max_connections_per_ip,
                                    MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)1024, MHD_OPTION_END);
    if (http->daemon == NULL) {
        snprintf(err, err_len, "cannot listen on %s:%d (port in use?)", config->bind_address, config->port);
        return -1;
    }
    return 0;
}

void gw_http_stop(gw_http *http) {
    if (http->daemon == NULL) return;
    usleep(50 * 1000); /* let resumed connections send their answers */
    MHD_stop_daemon(http->daemon);
    http->daemon = NULL;
}

long gw_http_requests_in_flight(gw_http *http) { return atomic_load(&http->requests_in_flight); }
