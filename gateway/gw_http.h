/* gw_http — the HTTP server: routes, auth, bodies, and the suspended
 * connections waiting for Kafka replies. */
#ifndef GW_HTTP_H
#define GW_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>

#include "gw_auth.h"
#include "gw_pending.h"
#include "gw_publish.h"
#include "gw_ratelimit.h"
#include "gw_replies.h"
#include "tk_config.h"

struct MHD_Daemon;

typedef struct {
    const tk_gateway_config *config; /* borrowed */
    gw_auth auth;
    gw_pending pending;
    gw_publish publish;
    gw_replies replies;
    gw_ratelimit ratelimit;
    struct MHD_Daemon *daemon;
    atomic_bool is_draining;
    atomic_long requests_in_flight;
} gw_http;

/**
 * @brief Creates the producer, the reply consumer and the HTTP daemon.
 * @returns 0, or -1 with err (everything created so far is destroyed).
 */
int gw_http_start(gw_http *http, const tk_gateway_config *config, char *err, size_t err_len);

/** @returns true once the reply partition is positioned, and while not draining and able to publish. */
bool gw_http_is_ready(gw_http *http);

/**
 * @returns true when the gateway can no longer work and must exit so that
 * its supervisor restarts it: its producer had a fatal error.
 */
bool gw_http_has_failed(gw_http *http);

/**
 * @brief Stops accepting connections, lets waiting requests finish for up to
 * drain_ms, answers the rest with 503, then destroys everything.
 */
void gw_http_stop(gw_http *http, int drain_ms);

#endif
