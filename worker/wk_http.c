/* wk_http — the worker's small HTTP port: /healthz, /readyz, /metrics. */
#include "wk_http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "tk_metrics.h"

static enum MHD_Result respond(struct MHD_Connection *connection, unsigned int status, char *body, size_t len,
                               enum MHD_ResponseMemoryMode mode, const char *content_type) {
    struct MHD_Response *response = MHD_create_response_from_buffer(len, body, mode);
    if (response == NULL) return MHD_NO;
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    enum MHD_Result rc = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **request_state) {
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)request_state;
    wk_http *http = cls;
    static char ok[] = "{\"status\":\"ok\"}";
    static char unavailable[] = "{\"status\":\"unavailable\"}";
    static char not_found[] = "{\"success\":false,\"message\":\"Route not found\"}";
    static char bad_method[] = "{\"success\":false,\"message\":\"Method not allowed\"}";
    const char *json = "application/json";
    if (strcmp(method, "GET") != 0)
        return respond(connection, 405, bad_method, sizeof bad_method - 1, MHD_RESPMEM_PERSISTENT, json);
    if (strcmp(url, "/healthz") == 0) return respond(connection, 200, ok, sizeof ok - 1, MHD_RESPMEM_PERSISTENT, json);
    if (strcmp(url, "/readyz") == 0) {
        bool is_ready = http->is_ready(http->ctx);
        return is_ready ? respond(connection, 200, ok, sizeof ok - 1, MHD_RESPMEM_PERSISTENT, json)
                        : respond(connection, 503, unavailable, sizeof unavailable - 1, MHD_RESPMEM_PERSISTENT, json);
    }
    if (strcmp(url, "/metrics") == 0) {
        size_t len = 0;
        char *text = tk_metrics_render(&len);
        if (text == NULL)
            return respond(connection, 503, unavailable, sizeof unavailable - 1, MHD_RESPMEM_PERSISTENT, json);
        return respond(connection, 200, text, len, MHD_RESPMEM_MUST_FREE, "text/plain; version=0.0.4; charset=utf-8");
    }
    return respond(connection, 404, not_found, sizeof not_found - 1, MHD_RESPMEM_PERSISTENT, json);
}

int wk_http_start(wk_http *http, const char *bind_address, int port, wk_ready_fn is_ready, void *ctx, char *err,
                  size_t err_len) {
    memset(http, 0, sizeof *http);
    http->is_ready = is_ready;
    http->ctx = ctx;
    if (port == 0) return 0;
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, bind_address, &address.sin_addr) != 1) {
        snprintf(err, err_len, "BIND_ADDRESS '%s' is not an IPv4 address", bind_address);
        return -1;
    }
    http->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, on_request, http,
                                    MHD_OPTION_SOCK_ADDR, &address, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64,
                                    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10, MHD_OPTION_END);
    if (http->daemon == NULL) {
        snprintf(err, err_len, "cannot listen on %s:%d (WORKER_HTTP_PORT in use?)", bind_address, port);
        return -1;
    }
    return 0;
}

void wk_http_stop(wk_http *http) {
    if (http == NULL || http->daemon == NULL) return;
    MHD_stop_daemon(http->daemon);
    http->daemon = NULL;
}
