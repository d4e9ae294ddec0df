/* gw_gateway — the composition root: creates, starts and stops every part
 * of the gateway (auth, rate limit, pending table, producer, reply consumer,
 * HTTP server) and answers whether it is ready. */
#ifndef GW_GATEWAY_H
#define GW_GATEWAY_H

#include <stdatomic.h>
#include <stdbool.h>

#include "gw_admission.h"
#include "gw_auth.h"
#include "gw_http.h"
#include "gw_pending.h"
#include "gw_publish.h"
#include "gw_ratelimit.h"
#include "gw_replies.h"
#include "tk_config.h"

struct gw_gateway {
    const tk_gateway_config *config; /* borrowed */
    gw_auth auth;
    gw_ratelimit ratelimit;
    gw_admission admission;
    gw_pending pending;
    gw_publish publish;
    gw_replies replies;
    gw_http http;
    atomic_bool is_draining;
};

/**
 * @brief Creates the producer, the reply consumer and the HTTP daemon.
 * @returns 0, or -1 with err (everything created so far is destroyed).
 */
int gw_gateway_start(gw_gateway *gateway, const tk_gateway_config *config, char *err, size_t err_len);

/** @returns true once the reply partition is positioned, and while not draining and able to publish. */
bool gw_gateway_is_ready(gw_gateway *gateway);

/** @returns true while stopping: answers then ask keep-alive clients to go. */
bool gw_gateway_is_draining(gw_gateway *gateway);

/**
 * @returns true when the gateway can no longer work and must exit so that
 * its supervisor restarts it: its producer had a fatal error.
 */
bool gw_gateway_has_failed(gw_gateway *gateway);

/**
 * @brief Stops accepting connections, lets waiting requests finish for up to
 * drain_ms, answers the rest with 503, then destroys everything.
 */
void gw_gateway_stop(gw_gateway *gateway, int drain_ms);

#endif
