/* gw_http — the libmicrohttpd server: each request from its first byte to
 * its answer, suspended while it waits for a Kafka reply. */
#ifndef GW_HTTP_H
#define GW_HTTP_H

#include <stdatomic.h>
#include <stddef.h>

#include "gw_pending.h"

struct MHD_Daemon;
typedef struct gw_gateway gw_gateway;

typedef struct {
    gw_gateway *gateway; /* borrowed: the parts a request uses */
    struct MHD_Daemon *daemon;
    atomic_long requests_in_flight;
} gw_http;

/**
 * @brief Listens on the configured address with the gateway's parts.
 * @returns 0, or -1 with err (nothing left running).
 */
int gw_http_start(gw_http *http, gw_gateway *gateway, char *err, size_t err_len);

/** @brief Lets resumed connections send their answers, then stops the daemon. Accepts a never-started http. */
void gw_http_stop(gw_http *http);

/**
 * @brief Answers entry's request (taken out of the pending table by the
 * caller, who alone may complete it) and resumes its connection. Takes
 * ownership of body (NULL: out of memory, a 503 goes out). Any thread.
 */
void gw_http_complete(gw_pending_entry *entry, int status, char *body, size_t len, void *ctx);

/** @returns how many HTTP requests were received and are not yet finished. */
long gw_http_requests_in_flight(gw_http *http);

#endif
