/* wk_http — the worker's small HTTP port: /healthz, /readyz, /metrics. */
#ifndef WK_HTTP_H
#define WK_HTTP_H

#include <stdbool.h>
#include <stddef.h>

struct MHD_Daemon;

/** Answers whether the worker can do its job now. */
typedef bool (*wk_ready_fn)(void *ctx);

typedef struct {
    struct MHD_Daemon *daemon;
    wk_ready_fn is_ready;
    void *ctx;
} wk_http;

/**
 * @brief Serves on bind_address:port (port 0: does nothing).
 * @returns 0, or -1 with err when the port cannot be bound.
 */
int wk_http_start(wk_http *http, const char *bind_address, int port, wk_ready_fn is_ready, void *ctx, char *err,
                  size_t err_len);

/** @brief Stops serving. Accepts a zeroed struct. */
void wk_http_stop(wk_http *http);

#endif
