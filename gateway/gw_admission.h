/* gw_admission — decides from the request line and headers, before any body
 * arrives, whether a request may go on: header sanity, auth, role, rate
 * limit, ticket id, list query, Idempotency-Key, content type and length. */
#ifndef GW_ADMISSION_H
#define GW_ADMISSION_H

#include <stdbool.h>
#include <stddef.h>

#include "gw_auth.h"
#include "gw_ratelimit.h"
#include "gw_router.h"
#include "gw_validate.h"
#include "tk_ids.h"
#include "tk_metrics.h"

/** Where a value comes from: a header or a query-string argument. */
typedef enum { GW_VALUE_HEADER, GW_VALUE_ARGUMENT } gw_value_kind;

/** Called for each value of a kind; false stops the walk. */
typedef bool (*gw_value_visit)(void *arg, const char *key, size_t key_len, const char *value, size_t value_len);

/** The request as admission reads it (libmicrohttpd in gw_http, arrays in tests). */
typedef struct {
    void *ctx;
    /**
     * @returns the value named name (case-insensitive for headers), NULL when
     * absent; a value with a NUL inside sets *is_malformed and is not returned.
     */
    const char *(*lookup)(void *ctx, gw_value_kind kind, const char *name, bool *is_malformed);
    /** @brief Calls visit for every value of kind, in order, until it returns false. */
    void (*each)(void *ctx, gw_value_kind kind, gw_value_visit visit, void *arg);
} gw_request_view;

/** What admission needs; everything borrowed, shared by all HTTP threads. */
typedef struct {
    gw_auth *auth;
    gw_ratelimit *ratelimit;
    size_t max_body_bytes;
    tk_series *rate_limited; /* counter of 429s */
} gw_admission;

/** What admission learned about an admitted request (caller-owned). */
typedef struct {
    gw_identity identity;
    char ticket_id[TK_OBJECT_ID_LEN + 1];
    gw_list_query list;          /* list routes: filter, limit, cursor; closed by the caller */
    const char *idempotency_key; /* borrowed from the view, valid for the request */
    bool has_if_match;           /* writes to one ticket: If-Match: "<__v>" was given */
    long long if_match;          /* ...and its __v */
    int retry_after_seconds;     /* with 429 */
} gw_admitted;

/**
 * @brief Checks route's request (route already found) through view. A
 * public route (GW_ROLE_NONE) is admitted after the header check alone.
 * @returns 0 when admitted, else the HTTP status with message (a person's
 * sentence) in message. out must be zeroed; close out->list in every case.
 */
int gw_admission_check(const gw_admission *admission, const gw_route *route, const gw_request_view *view,
                       gw_admitted *out, char *message, size_t message_len);

#endif
