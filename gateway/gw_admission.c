/* gw_admission — the checks a request passes before its body is read, in the
 * order that decides which error a client sees first. */
#include "gw_admission.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gw_answer.h"
#include "tk_clock.h"
#include "tk_envelope.h"

/* One step: 0 to go on, else the HTTP status with message set. */
typedef int (*admission_step)(const gw_admission *admission, const gw_route *route, const gw_request_view *view,
                              gw_admitted *out, char *message, size_t message_len);

static int refuse(int status, const char *text, char *message, size_t message_len) {
    snprintf(message, message_len, "%s", text);
    return status;
}

/* RFC 9110 token characters, the only ones a header name may hold. */
static bool is_token_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Headers whose silent loss would change what a request means. */
static const char *const MEANINGFUL_HEADERS[] = {"Idempotency-Key", "Authorization", "Content-Type",
                                                 "traceparent",     "If-Match",      NULL};

static bool is_header_name_sane(void *arg, const char *key, size_t key_len, const char *value, size_t value_len) {
    (void)value;
    (void)value_len;
    bool *is_bad = arg;
    for (size_t i = 0; i < key_len; i++) {
        if (!is_token_char(key[i])) *is_bad = true;
    }
    for (size_t i = 0; MEANINGFUL_HEADERS[i] != NULL; i++) {
        size_t len = strlen(MEANINGFUL_HEADERS[i]);
        if (key_len > len && strncasecmp(key, MEANINGFUL_HEADERS[i], len) == 0) *is_bad = true;
    }
    return !*is_bad;
}

/* libmicrohttpd 0.9.75 glues an obsolete folded header line onto the
 * previous header's name ("Idempotency-KeyX-Injected: 1", "Idempotency-Keymore"),
 * which would make that header silently vanish: such requests are refused. */
static int check_header_names(const gw_admission *admission, const gw_route *route, const gw_request_view *view,
                              gw_admitted *out, char *message, size_t message_len) {
    (void)admission;
    (void)route;
    (void)out;
    bool is_bad = false;
    view->each(view->ctx, GW_VALUE_HEADER, is_header_name_sane, &is_bad);
    return is_bad ? refuse(400, "Request has a malformed header", message, message_len) : 0;
}

static int check_token(const gw_admission *admission, const gw_route *route, const gw_request_view *view,
                       gw_admitted *out, char *message, size_t message_len) {
    (void)route;
    bool is_malformed = false;
    const char *authorization = view->lookup(view->ctx, GW_VALUE_HEADER, "Authorization", &is_malformed);
    if (is_malformed) return refuse(401, "Invalid token", message, message_len);
    const char *reason = NULL;
    if (gw_auth_check(admission->auth, authorization, &out->identity, &reason) != 0)
        return refuse(401, reason, message, message_len);
    return 0;
}

static int check_role(const gw_admission *admission, const gw_route *route, const gw_request_view *view,
                      gw_admitted *out, char *message, size_t message_len) {
    (void)admission;
    (void)view;
    if (route->role == GW_ROLE_ADMIN && !out->identity.is_admin)
        return refuse(403, "Access denied: admins only", message, message_len);
    if (route->role == GW_ROLE_CUSTOMER && out->identity.is_admin)
        return refuse(403, "Access denied: customers only", message, message_len);
    return 0;
}

static int check_rate(const gw_admission *admission, const gw_route *route, const gw_request_view *view,
                      gw_admitted *out, char *message, size_t message_len) {
    (void)route;
    (void)view;
    if (gw_ratelimit_take(admission->ratelimit, out->identity.id, tk_monotonic_us(), &out->retry_after_seconds))
        return 0;
    tk_counter_add(admission->rate_limited, 1);
    return refuse(429, "Too many requests, retry later", message, message_len);
}

static int check_ticket_id(const gw_admission *admission, const gw_route *route, const gw_request_view *view,
                           gw_admitted *out, char *message, size_t message_len) {
    (void)admission;
    if (!route->needs_ticket_id) return 0;
    bool is_malformed = false;
    const char *id = view->lookup(view->ctx, GW_VALUE_ARGUMENT, "id", &is_malformed);
    if (is_malformed) return refuse(400, "Invalid ticket id", message, message_len);
    return gw_validate_ticket_id(id, out->ticket_id, message, message_len) != 0 ? 400 : 0;
}

typedef struct {
    gw_list_query *query;
    char *err;
    size_t err_len;
    int rc;
} list_param_walk;

static bool take_list_param(void *arg, const char *key, size_t key_len, const char *value, size_t value_len) {
    list_param_walk *walk = arg;
    walk->rc = gw_validate_list_param(walk->query, key, key_len, value, value_len, walk->err, walk->err_len);
    return walk->rc == 0;
}

/* The filters, page size and cursor of a list route, checked before the
 * query goes anywhere (a bad cursor is refused here, not by a worker). */
static int check_list_query(const gw_admission *admission, const gw_route *route, const gw_request_view *view,
                            gw_admitted *out, char *message, size_t message_len) {
    (void)admission;
    if (route->request_type != TK_REQUEST_TICKETS_LIST) return 0;
    if (gw_list_query_init(&out->list) != 0) return refuse(503, GW_MSG_UNAVAILABLE, message, message_len);
    list_param_walk walk = {&out->list, message, message_len, 0};
    view->each(view->ctx, GW_VALUE_ARGUMENT, take_list_param, &walk);
    if (walk.rc != 0) return 400;
    const gw_identity *identity = &out->identity;
    return gw_validate_list_finish(&out->list, identity->is_admin, identity->id, identity->team, message,
                                   message_len) != 0
               ? 400
               : 0;
}

static int check_body_headers(const gw_admission *admission, const gw_route *route, const gw_request_view *view,
                              gw_admitted *out, char *message, size_t message_len) {
    bool is_command = strcmp(route->method, "POST") == 0; /* with a body or not (resolve-ticket) */
    if (!is_command) return 0;
    bool is_malformed = false;
    out->idempotency_key = view->lookup(view->ctx, GW_VALUE_HEADER, "Idempotency-Key", &is_malformed);
    if (is_malformed || (out->idempotency_key != NULL && !tk_idempotency_key_is_valid(out->idempotency_key)))
        return refuse(400, "Header 'Idempotency-Key' must be 1 to 255 printable ASCII characters", message,
                      message_len);
    if (!route->has_body) return 0;
    /* A malformed Content-Type or Content-Length reads as absent. */
    const char *type = view->lookup(view->ctx, GW_VALUE_HEADER, "Content-Type", &is_malformed);
    const char *length = view->lookup(view->ctx, GW_VALUE_HEADER, "Content-Length", &is_malformed);
    if (!gw_validate_is_json_content_type(type))
        return refuse(415, "Content-Type must be application/json", message, message_len);
    if (length != NULL && strtoull(length, NULL, 10) > admission->max_body_bytes)
        return refuse(413, "Request body is too large", message, message_len);
    return 0;
}

/* "\"<digits>\"": 1 to 15 digits, no leading zero. */
static bool is_version_etag(const char *value) {
    size_t len = strlen(value);
    if (len < 3 || len > 17 || value[0] != '"' || value[len - 1] != '"') return false;
    return strspn(value + 1, "0123456789") == len - 2 && (len == 3 || value[1] != '0');
}

/* If-Match on the writes to one ticket: one strong ETag as get-ticket sends
 * it ("<__v>", up to 15 digits: exact in every JSON reader), or "*" (any
 * version: no condition). */
static int check_if_match(const gw_admission *admission, const gw_route *route, const gw_request_view *view,
                          gw_admitted *out, char *message, size_t message_len) {
    (void)admission;
    tk_request_type type = route->request_type;
    if (type != TK_REQUEST_TICKET_REPLY && type != TK_REQUEST_TICKET_UPDATE && type != TK_REQUEST_TICKET_RESOLVE)
        return 0;
    bool is_malformed = false;
    const char *value = view->lookup(view->ctx, GW_VALUE_HEADER, "If-Match", &is_malformed);
    if (value == NULL && !is_malformed) return 0;
    if (value != NULL && strcmp(value, "*") == 0) return 0;
    if (is_malformed || !is_version_etag(value))
        return refuse(400, "Header 'If-Match' must be the ticket's ETag, e.g. \"3\"", message, message_len);
    out->has_if_match = true;
    out->if_match = strtoll(value + 1, NULL, 10);
    return 0;
}

/* In order: the first failing step decides the answer. */
static const admission_step PROTECTED_STEPS[] = {check_token,      check_role,         check_rate,    check_ticket_id,
                                                 check_list_query, check_body_headers, check_if_match};

int gw_admission_check(const gw_admission *admission, const gw_route *route, const gw_request_view *view,
                       gw_admitted *out, char *message, size_t message_len) {
    int status = check_header_names(admission, route, view, out, message, message_len);
    if (status != 0 || route->role == GW_ROLE_NONE) return status;
    for (size_t i = 0; i < sizeof PROTECTED_STEPS / sizeof PROTECTED_STEPS[0]; i++) {
        status = PROTECTED_STEPS[i](admission, route, view, out, message, message_len);
        if (status != 0) return status;
    }
    return 0;
}
