/* gw_router — the route table: path and method to what the gateway does. */
#include "gw_router.h"

#include <string.h>
#include <strings.h>

#define API_BASE "/api/ticket"

static const gw_route ROUTES[] = {
    {GW_ROUTE_CREATE_TICKET, "create-ticket", "POST", API_BASE "/create-ticket", GW_ROLE_CUSTOMER,
     TK_REQUEST_TICKET_CREATE, true, false},
    {GW_ROUTE_GET_TICKETS, "get-tickets", "GET", API_BASE "/get-tickets", GW_ROLE_CUSTOMER, TK_REQUEST_TICKETS_LIST,
     false, false},
    {GW_ROUTE_CREATE_REPLY, "create-reply", "POST", API_BASE "/create-reply", GW_ROLE_CUSTOMER, TK_REQUEST_TICKET_REPLY,
     true, true},
    {GW_ROUTE_ADMIN_GET_TICKETS, "admin-get-tickets", "GET", API_BASE "/admin-get-tickets", GW_ROLE_ADMIN,
     TK_REQUEST_TICKETS_LIST, false, false},
    {GW_ROUTE_ADMIN_CREATE_REPLY, "admin-create-reply", "POST", API_BASE "/admin-create-reply", GW_ROLE_ADMIN,
     TK_REQUEST_TICKET_REPLY, true, true},
    {GW_ROUTE_GET_TICKET, "get-ticket", "GET", API_BASE "/get-ticket", GW_ROLE_CUSTOMER, TK_REQUEST_TICKET_GET, false,
     true},
    {GW_ROUTE_ADMIN_GET_TICKET, "admin-get-ticket", "GET", API_BASE "/admin-get-ticket", GW_ROLE_ADMIN,
     TK_REQUEST_TICKET_GET, false, true},
    {GW_ROUTE_ADMIN_UPDATE_TICKET, "admin-update-ticket", "POST", API_BASE "/admin-update-ticket", GW_ROLE_ADMIN,
     TK_REQUEST_TICKET_UPDATE, true, true},
    /* No body: what it does is all in the route. */
    {GW_ROUTE_RESOLVE_TICKET, "resolve-ticket", "POST", API_BASE "/resolve-ticket", GW_ROLE_CUSTOMER,
     TK_REQUEST_TICKET_RESOLVE, false, true},
    {GW_ROUTE_HEALTHZ, "healthz", "GET", "/healthz", GW_ROLE_NONE, TK_REQUEST_TYPE_COUNT, false, false},
    {GW_ROUTE_READYZ, "readyz", "GET", "/readyz", GW_ROLE_NONE, TK_REQUEST_TYPE_COUNT, false, false},
    {GW_ROUTE_METRICS, "metrics", "GET", "/metrics", GW_ROLE_NONE, TK_REQUEST_TYPE_COUNT, false, false},
    {GW_ROUTE_OPENAPI, "openapi", "GET", API_BASE "/openapi.json", GW_ROLE_NONE, TK_REQUEST_TYPE_COUNT, false, false},
};

static bool path_matches(const char *url, size_t url_len, const char *path) {
    size_t path_len = strlen(path);
    if (url_len == path_len + 1 && url[path_len] == '/') url_len = path_len;
    /* Express matches paths without regard to case; so do we. */
    return url_len == path_len && strncasecmp(url, path, path_len) == 0;
}

gw_route_match gw_router_find(const char *url, const char *method, const gw_route **route, const char **allow) {
    size_t url_len = strlen(url);
    const gw_route *path_match = NULL;
    for (size_t i = 0; i < sizeof ROUTES / sizeof ROUTES[0]; i++) {
        if (!path_matches(url, url_len, ROUTES[i].path)) continue;
        if (strcmp(method, ROUTES[i].method) == 0) {
            *route = &ROUTES[i];
            return GW_ROUTE_FOUND;
        }
        path_match = &ROUTES[i];
    }
    if (path_match == NULL) return GW_ROUTE_NOT_FOUND;
    *allow = path_match->method;
    return GW_ROUTE_BAD_METHOD;
}
