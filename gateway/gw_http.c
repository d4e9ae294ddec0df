#include "gw_http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "gw_answer.h"
#include "gw_router.h"
#include "gw_trace.h"
#include "gw_validate.h"
#include "tk_envelope.h"
#include "tk_ids.h"
#include "tk_kafka.h"
#include "tk_log.h"
#include "tk_metrics.h"


/* One HTTP request from first call to completion. The pending entry comes
 * first so the reply thread's entry pointer is the request itself. */
typedef struct {
    gw_pending_entry pending;
    gw_http *http;
    struct MHD_Connection *connection;
    const gw_route *route;
    gw_identity identity;
    char ticket_id[TK_OBJECT_ID_LEN + 1];
    gw_list_query list; /* list routes: filter, limit, cursor */
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
    const char *idempotency_key; /* borrowed from MHD's headers, valid for the request */
    int retry_after_seconds;  /* for 429 */
    const char *content_type; /* of the answer; JSON unless set */
    bool is_answer_static;    /* answer points at data that outlives us */
    int64_t started_us;
} gw_request;

static const char MSG_UNAVAILABLE[] = "Service unavailable, try again later";

extern const char gw_openapi_json[];
extern const size_t gw_openapi_json_len;

static void request_destroy(gw_request *request) {
    if (request == NULL) return;
    free(request->pending.chunks);
    free(request->pending.next_cursor);
    gw_list_query_close(&request->list);
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
    if (request->pending.etag[0] != '\0') MHD_add_response_header(response, MHD_HTTP_HEADER_ETAG, request->pending.etag);
    if (request->pending.next_cursor == NULL || request->route == NULL ||
        request->route->request_type != TK_REQUEST_TICKETS_LIST)
        return;
    char *link = gw_validate_next_link_new(request->route->path, &request->list, request->pending.next_cursor);
    if (link != NULL) MHD_add_response_header(response, "Link", link);
    free(link);
}

static enum MHD_Result queue_answer(gw_request *request) {
    struct MHD_Response *response;
    if (request->answer != NULL && request->is_answer_static) {
        response = MHD_create_response_from_buffer(request->answer_len, request->answer, MHD_RESPMEM_PERSISTENT);
    } else if (request->answer != NULL) {
        response = MHD_create_response_from_buffer(request->answer_len, request->answer, MHD_RESPMEM_MUST_FREE);
        if (response != NULL) request->answer = NULL; /* MHD frees it now */
    } else {
        /* Out of memory while building the body: still a JSON error. */
        static char fallback[] = "{\"success\":false,\"message\":\"Service unavailable, try again later\"}";
        response = MHD_create_response_from_buffer(sizeof fallback - 1, fallback, MHD_RESPMEM_PERSISTENT);
        request->status = 503;
    }
    if (response == NULL) return MHD_NO;
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
                            request->content_type != NULL ? request->content_type : "application/json");
    if (request->pending.correlation_id[0] != '\0')
        MHD_add_response_header(response, "X-Correlation-Id", request->pending.correlation_id);
    if (request->traceparent[0] != '\0') MHD_add_response_header(response, "traceparent", request->traceparent);
    /* Stopping: tell keep-alive clients not to send another request here. */
    if (atomic_load(&request->http->is_draining))
        MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close");
    if (request->allow != NULL) MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, request->allow);
    add_page_headers(request, response);
    if (request->retry_after_seconds > 0) {
        char seconds[16];
        snprintf(seconds, sizeof seconds, "%d", request->retry_after_seconds);
        MHD_add_response_header(response, MHD_HTTP_HEADER_RETRY_AFTER, seconds);
    }
    /* Counted before the answer leaves: a client that scrapes /metrics after
     * its answer finds it counted. */
    count_request(request, request->status);
    enum MHD_Result rc = MHD_queue_response(request->connection, (unsigned int)request->status, response);
    MHD_destroy_response(response);
    return rc;
}

/* Called by the reply thread, or by us on a produce failure, for a request
 * just taken out of the pending table: we alone answer it now. */
static void complete_waiting(gw_pending_entry *entry, int status, char *body, size_t len, void *ctx) {
    (void)ctx;
    gw_request *request = (gw_request *)entry;
    set_answer(request, status, body, len);
    MHD_resume_connection(request->connection);
}

static void on_publish_failed(const char *correlation_id, size_t len, const char *reason, void *ctx) {
    gw_http *http = ctx;
    gw_pending_lock(&http->pending);
    gw_pending_entry *entry = gw_pending_take_locked(&http->pending, correlation_id, len);
    gw_pending_unlock(&http->pending);
    tk_log_fields(TK_LOG_WARN, "command not delivered", json_pack("{s:s%, s:s}", "correlationId", correlation_id, len,
                                                                  "error", reason));
    if (entry == NULL) return;
    size_t body_len = 0;
    char *body = gw_answer_error(MSG_UNAVAILABLE, &body_len);
    complete_waiting(entry, 503, body, body_len, http);
}

/* Routes without auth: health, readiness, metrics and the API description. */
static void answer_public(gw_http *http, gw_request *request) {
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
        bool is_ready = request->route->id == GW_ROUTE_HEALTHZ || gw_http_is_ready(http);
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
static const char *lookup_value(struct MHD_Connection *connection, enum MHD_ValueKind kind, const char *name,
                                bool *is_malformed) {
    const char *value = NULL;
    size_t len = 0;
    if (MHD_lookup_connection_value_n(connection, kind, name, strlen(name), &value, &len) != MHD_YES || value == NULL)
        return NULL;
    if (strlen(value) != len) {
        *is_malformed = true;
        return NULL;
    }
    return value;
}

/* RFC 9110 token characters, the only ones a header name may hold. */
static bool is_token_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Headers whose silent loss would change what a request means. */
static const char *const MEANINGFUL_HEADERS[] = {"Idempotency-Key", "Authorization", "Content-Type", "traceparent",
                                                 NULL};

static enum MHD_Result check_header_name(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    (void)value;
    bool *is_bad = cls;
    for (const char *c = key; *c != '\0'; c++) {
        if (!is_token_char(*c)) *is_bad = true;
    }
    size_t key_len = strlen(key);
    for (size_t i = 0; MEANINGFUL_HEADERS[i] != NULL; i++) {
        size_t len = strlen(MEANINGFUL_HEADERS[i]);
        if (key_len > len && strncasecmp(key, MEANINGFUL_HEADERS[i], len) == 0) *is_bad = true;
    }
    return *is_bad ? MHD_NO : MHD_YES;
}

/* libmicrohttpd 0.9.75 glues an obsolete folded header line onto the
 * previous header's name ("Idempotency-KeyX-Injected: 1", "Idempotency-Keymore"),
 * which would make that header silently vanish: such requests are refused. */
static bool has_malformed_header(struct MHD_Connection *connection) {
    bool is_bad = false;
    MHD_get_connection_values(connection, MHD_HEADER_KIND, check_header_name, &is_bad);
    return is_bad;
}

typedef struct {
    gw_list_query *query;
    char *err;
    size_t err_len;
    int rc;
} list_param_walk;

static enum MHD_Result take_list_param(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                       const char *value, size_t value_size) {
    (void)kind;
    list_param_walk *walk = cls;
    walk->rc = gw_validate_list_param(walk->query, key, key_size, value, value_size, walk->err, walk->err_len);
    return walk->rc == 0 ? MHD_YES : MHD_NO;
}

/* The filters, page size and cursor of a list route, checked before the
 * query goes anywhere (a bad cursor is refused here, not by a worker). */
static int take_list_query(gw_request *request, char *err, size_t err_len) {
    if (gw_list_query_init(&request->list) != 0) {
        set_error(request, 503, MSG_UNAVAILABLE);
        return -1;
    }
    list_param_walk walk = {&request->list, err, err_len, 0};
    MHD_get_connection_values_n(request->connection, MHD_GET_ARGUMENT_KIND, take_list_param, &walk);
    if (walk.rc != 0) return -1;
    const gw_identity *identity = &request->identity;
    return gw_validate_list_finish(&request->list, identity->is_admin, identity->id, identity->team, err, err_len);
}

/* Everything that can be decided from the request line and headers, before
 * any body arrives: route, auth, role, id, content type and length. */
static void check_headers(gw_http *http, gw_request *request, const char *url, const char *method) {
    struct MHD_Connection *connection = request->connection;
    const char *message = NULL;
    char err[TK_ERROR_TEXT_MAX];
    bool is_malformed = false; /* reset before each lookup that cares */

    gw_trace_take(lookup_value(connection, MHD_HEADER_KIND, "traceparent", &is_malformed), request->traceparent);
    is_malformed = false;
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
    if (has_malformed_header(connection)) {
        set_error(request, 400, "Request has a malformed header");
        return;
    }
    const gw_route *route = request->route;
    if (route->role == GW_ROLE_NONE) {
        answer_public(http, request);
        return;
    }
    const char *authorization = lookup_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION, &is_malformed);
    if (is_malformed) {
        set_error(request, 401, "Invalid token");
        return;
    }
    if (gw_auth_check(&http->auth, authorization, &request->identity, &message) != 0) {
        set_error(request, 401, message);
        return;
    }
    if (route->role == GW_ROLE_ADMIN && !request->identity.is_admin) {
        set_error(request, 403, "Access denied: admins only");
        return;
    }
    if (route->role == GW_ROLE_CUSTOMER && request->identity.is_admin) {
        set_error(request, 403, "Access denied: customers only");
        return;
    }
    if (!gw_ratelimit_take(&http->ratelimit, request->identity.id, tk_monotonic_us(), &request->retry_after_seconds)) {
        tk_counter_add(tk_metrics_counter("ticket_gateway_rate_limited_total", "Requests refused with 429", ""), 1);
        set_error(request, 429, "Too many requests, retry later");
        return;
    }
    if (route->needs_ticket_id) {
        const char *id = lookup_value(connection, MHD_GET_ARGUMENT_KIND, "id", &is_malformed);
        if (is_malformed) {
            set_error(request, 400, "Invalid ticket id");
            return;
        }
        if (gw_validate_ticket_id(id, request->ticket_id, err, sizeof err) != 0) {
            set_error(request, 400, err);
            return;
        }
    }
    if (route->request_type == TK_REQUEST_TICKETS_LIST && take_list_query(request, err, sizeof err) != 0) {
        if (!request->has_answer) set_error(request, 400, err);
        return;
    }
    if (route->has_body) {
        is_malformed = false;
        request->idempotency_key = lookup_value(connection, MHD_HEADER_KIND, "Idempotency-Key", &is_malformed);
        if (is_malformed ||
            (request->idempotency_key != NULL && !tk_idempotency_key_is_valid(request->idempotency_key))) {
            set_error(request, 400, "Header 'Idempotency-Key' must be 1 to 255 printable ASCII characters");
            return;
        }
        is_malformed = false;
        const char *type = lookup_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE, &is_malformed);
        const char *length = lookup_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH, &is_malformed);
        if (!gw_validate_is_json_content_type(type)) {
            set_error(request, 415, "Content-Type must be application/json");
            return;
        }
        if (length != NULL && strtoull(length, NULL, 10) > http->config->max_body_bytes) {
            set_error(request, 413, "Request body is too large");
            return;
        }
    }
}

/* Buffers the body up to the limit; past it, the rest is dropped unread. */
static void take_upload(gw_http *http, gw_request *request, const char *data, size_t size) {
    if (request->is_body_too_large) return;
    if (request->body_len + size > http->config->max_body_bytes) {
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

static int build_request(gw_request *request, tk_request *out, json_t **body_root, char *key, char *err,
                         size_t err_len) {
    const gw_route *route = request->route;
    memset(out, 0, sizeof *out);
    *body_root = NULL;
    out->type = route->request_type;
    out->actor.id = request->identity.id;
    out->actor.is_admin = request->identity.is_admin;
    out->actor.team = request->identity.team[0] != '\0' ? request->identity.team : NULL;
    out->idempotency_key = request->idempotency_key;
    if (route->has_body &&
        gw_validate_body(route, request->body != NULL ? request->body : "", request->body_len, body_root, out, err,
                         err_len) != 0)
        return -1;
    switch (out->type) {
    case TK_REQUEST_TICKET_CREATE:
        tk_object_id_new(key);
        out->ticket_id = key;
        break;
    case TK_REQUEST_TICKET_REPLY:
        strcpy(key, request->ticket_id);
        out->ticket_id = request->ticket_id;
        break;
    case TK_REQUEST_TICKETS_LIST:
        out->filter = request->list.filter;
        out->limit = request->list.limit;
        out->after = request->list.has_cursor ? request->list.cursor : NULL;
        /* Queries of one team stay on one partition; admins share one key. */
        snprintf(key, TK_PRINCIPAL_MAX_CHARS * 4 + 1, "%s", out->actor.is_admin ? "admin" : out->actor.team);
        break;
    case TK_REQUEST_TICKET_GET:
        out->ticket_id = request->ticket_id;
        snprintf(key, TK_PRINCIPAL_MAX_CHARS * 4 + 1, "%s", out->actor.is_admin ? "admin" : out->actor.team);
        break;
    case TK_REQUEST_TYPE_COUNT:
        return -1;
    }
    return 0;
}

/* Validates the body, then waits: registers the correlation id, suspends the
 * connection, and publishes. The reply thread resumes it. */
static void dispatch(gw_http *http, gw_request *request) {
    char err[TK_ERROR_TEXT_MAX];
    char key[TK_PRINCIPAL_MAX_CHARS * 4 + 1];
    char reply_id[TK_OBJECT_ID_LEN + 1];
    tk_request command;
    json_t *body_root = NULL;
    char *payload = NULL;

    if (request->is_body_too_large) {
        set_error(request, 413, "Request body is too large");
        return;
    }
    if (build_request(request, &command, &body_root, key, err, sizeof err) != 0) {
        set_error(request, 400, err);
        goto cleanup;
    }
    if (command.type == TK_REQUEST_TICKET_REPLY) {
        tk_object_id_new(reply_id);
        command.reply_id = reply_id;
    }
    json_t *message = tk_request_json_new(&command);
    payload = message != NULL ? json_dumps(message, JSON_COMPACT) : NULL;
    json_decref(message);
    /* The payload holds all we need: a waiting request keeps no body (20000
     * waiting requests of 64 KiB would hold 1.3 GB). */
    free(request->body);
    request->body = NULL;
    request->body_len = 0;
    if (payload == NULL || !gw_http_is_ready(http) || gw_publish_is_broker_down(&http->publish)) {
        set_error(request, 503, MSG_UNAVAILABLE);
        goto cleanup;
    }

    if (tk_correlation_id_new(request->pending.correlation_id) != 0) {
        tk_log_fields(TK_LOG_ERROR, "no random bytes for a correlation id", NULL);
        set_error(request, 503, MSG_UNAVAILABLE);
        goto cleanup;
    }
    request->pending.deadline_ms = tk_monotonic_ms() + http->config->request_timeout_ms;
    gw_pending_lock(&http->pending);
    if (gw_pending_add_locked(&http->pending, &request->pending) != 0) {
        gw_pending_unlock(&http->pending);
        request->pending.correlation_id[0] = '\0';
        set_error(request, 503, MSG_UNAVAILABLE);
        goto cleanup;
    }
    /* Suspend before anyone can find the entry: a reply cannot resume a
     * connection that is not suspended yet. */
    request->is_waiting = true;
    MHD_suspend_connection(request->connection);
    gw_pending_unlock(&http->pending);

    if (gw_publish_send(&http->publish, command.type, key, payload, strlen(payload), request->pending.correlation_id,
                        request->traceparent[0] != '\0' ? request->traceparent : NULL) != 0 &&
        gw_pending_remove(&http->pending, &request->pending) == 0) {
        size_t len = 0;
        char *body = gw_answer_error(MSG_UNAVAILABLE, &len);
        complete_waiting(&request->pending, 503, body, len, http);
    }
cleanup:
    free(payload);
    json_decref(body_root);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **request_state) {
    (void)version;
    gw_http *http = cls;
    gw_request *request = *request_state;
    if (request == NULL) {
        request = calloc(1, sizeof *request);
        if (request == NULL) return MHD_NO;
        request->http = http;
        request->connection = connection;
        request->started_us = tk_monotonic_us();
        atomic_fetch_add(&http->requests_in_flight, 1);
        *request_state = request;
        check_headers(http, request, url, method);
        /* An early answer to a request that may carry a body (401, 413, 415
         * ...) goes out before the body is read; libmicrohttpd then closes
         * the connection. Bodiless requests (GET /healthz, 404s) are answered
         * on the next call, which keeps the connection alive. */
        bool may_have_body = strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
        return request->has_answer && may_have_body ? queue_answer(request) : MHD_YES;
    }
    if (request->has_answer && *upload_data_size != 0) {
        *upload_data_size = 0; /* a GET with a body: drop it, answer once it is read */
        return MHD_YES;
    }
    if (request->has_answer) return queue_answer(request);
    if (*upload_data_size != 0) {
        take_upload(http, request, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (request->is_waiting) return MHD_YES; /* resumed without an answer cannot happen; wait */
    dispatch(http, request);
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
    tk_series *series =
        has_slot ? atomic_load_explicit(&request_counters[route_slot][status], memory_order_acquire) : NULL;
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
static void record_request(gw_http *http, gw_request *request, enum MHD_RequestTerminationCode code) {
    const char *route = request->route != NULL ? request->route->name : "unmatched";
    int status = request->has_answer ? request->status : 0;
    double seconds = (double)(tk_monotonic_us() - request->started_us) / 1e6;
    count_request(request, status);
    if (!http->config->is_access_log || !tk_log_enabled(TK_LOG_INFO)) return;
    json_t *fields = json_pack("{s:s, s:i, s:f, s:b}", "route", route, "status", status, "latencyMs", seconds * 1000.0,
                               "completed", code == MHD_REQUEST_TERMINATED_COMPLETED_OK);
    if (fields == NULL) return;
    if (request->pending.correlation_id[0] != '\0')
        json_object_set_new(fields, "correlationId", json_string(request->pending.correlation_id));
    if (request->identity.id[0] != '\0') json_object_set_new(fields, "userId", json_string(request->identity.id));
    if (request->traceparent[0] != '\0')
        json_object_set_new(fields, "traceId", json_stringn(request->traceparent + 3, 32));
    tk_log_fields(TK_LOG_INFO, "request", fields);
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **request_state,
                         enum MHD_RequestTerminationCode code) {
    (void)connection;
    gw_http *http = cls;
    gw_request *request = *request_state;
    if (request == NULL) return;
    record_request(http, request, code);
    atomic_fetch_sub(&http->requests_in_flight, 1);
    /* Never leave a dangling entry for the reply thread to find. */
    if (request->is_waiting) gw_pending_remove(&http->pending, &request->pending);
    request_destroy(request);
    *request_state = NULL;
}

static double waiting_requests(void *ctx) { return (double)gw_pending_count(&((gw_http *)ctx)->pending); }

static double in_flight_requests(void *ctx) { return (double)atomic_load(&((gw_http *)ctx)->requests_in_flight); }

bool gw_http_is_ready(gw_http *http) {
    return gw_replies_is_ready(&http->replies) && !atomic_load(&http->is_draining) &&
           !gw_publish_is_broker_down(&http->publish) && !gw_http_has_failed(http);
}

bool gw_http_has_failed(gw_http *http) { return gw_publish_has_fatal_error(&http->publish); }

int gw_http_start(gw_http *http, const tk_gateway_config *config, char *err, size_t err_len) {
    memset(http, 0, sizeof *http);
    http->config = config;
    if (gw_auth_init(&http->auth, config->jwt_algorithm, config->jwt_key, config->jwt_key_len) != 0 ||
        (config->jwt_previous_key != NULL &&
         gw_auth_add_key(&http->auth, config->jwt_previous_key, config->jwt_previous_key_len) != 0)) {
        snprintf(err, err_len, "unsupported JWT algorithm or empty key");
        goto fail;
    }
    gw_auth_set_policy(&http->auth, config->jwt_issuer, config->jwt_audience, config->jwt_max_lifetime_s);
    if (gw_auth_enable_cache(&http->auth, 4096) != 0) {
        snprintf(err, err_len, "out of memory for the token cache");
        goto fail;
    }
    if (gw_ratelimit_init(&http->ratelimit, config->rate_limit_per_second, config->rate_limit_burst, 65536) != 0) {
        snprintf(err, err_len, "out of memory for the rate limiter");
        goto fail;
    }
    if (gw_pending_init(&http->pending, (size_t)config->max_pending_requests) != 0) {
        snprintf(err, err_len, "out of memory for the pending table");
        goto fail;
    }
    /* Counters exist from the start, so rates and alerts have a zero to begin with. */
    tk_metrics_counter("ticket_gateway_rate_limited_total", "Requests refused with 429", "");
    tk_metrics_counter("ticket_gateway_produce_errors_total", "Commands and queries the broker did not take",
                       "stage=\"enqueue\"");
    tk_metrics_counter("ticket_gateway_produce_errors_total", "Commands and queries the broker did not take",
                       "stage=\"delivery\"");
    tk_metrics_gauge_fn("ticket_gateway_requests_waiting", "Requests waiting for a worker's reply", "",
                        waiting_requests, http);
    tk_metrics_gauge_fn("ticket_gateway_requests_in_flight", "HTTP requests received and not yet finished", "",
                        in_flight_requests, http);
    if (gw_publish_init(&http->publish, config->kafka_brokers, config->gateway_id, config->request_timeout_ms,
                        on_publish_failed, http, err, err_len) != 0)
        goto fail;
    gw_publish_set_signing_key(&http->publish, config->command_signing_key);
    if (gw_replies_start(&http->replies, config->kafka_brokers, config->gateway_id, &http->pending, &http->publish,
                         complete_waiting, http, err, err_len) != 0)
        goto fail;

    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)config->port)};
    if (inet_pton(AF_INET, config->bind_address, &address.sin_addr) != 1) {
        snprintf(err, err_len, "BIND_ADDRESS '%s' is not an IPv4 address", config->bind_address);
        goto fail;
    }
    http->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO, 0, NULL, NULL,
        on_request, http, MHD_OPTION_SOCK_ADDR, &address, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned int)config->http_threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed, http,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)60, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)20000,
        /* Slow clients from one address (slow loris) cannot take every slot. */
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)config->max_connections_per_ip,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)1024, MHD_OPTION_END);
    if (http->daemon == NULL) {
        snprintf(err, err_len, "cannot listen on %s:%d (port in use?)", config->bind_address, config->port);
        goto fail;
    }
    return 0;
fail:
    gw_replies_stop(&http->replies);
    gw_publish_close(&http->publish, 0);
    gw_pending_close(&http->pending);
    gw_ratelimit_close(&http->ratelimit);
    gw_auth_close(&http->auth);
    return -1;
}

void gw_http_stop(gw_http *http, int drain_ms) {
    atomic_store(&http->is_draining, true);
    if (http->daemon != NULL) MHD_quiesce_daemon(http->daemon);
    int64_t drain_deadline = tk_monotonic_ms() + drain_ms;
    while (gw_pending_count(&http->pending) > 0 && tk_monotonic_ms() < drain_deadline) usleep(20 * 1000);
    gw_replies_stop(&http->replies);
    /* MHD must not stop with suspended connections: answer what is left. */
    gw_pending_entry *entry;
    while ((entry = gw_pending_take_oldest(&http->pending)) != NULL) {
        size_t len = 0;
        char *body = gw_answer_error(MSG_UNAVAILABLE, &len);
        complete_waiting(entry, 503, body, len, http);
    }
    if (http->daemon != NULL) {
        usleep(50 * 1000); /* let resumed connections send their answers */
        MHD_stop_daemon(http->daemon);
        http->daemon = NULL;
    }
    gw_publish_close(&http->publish, 2000);
    gw_pending_close(&http->pending);
    gw_ratelimit_close(&http->ratelimit);
    gw_auth_close(&http->auth);
}
