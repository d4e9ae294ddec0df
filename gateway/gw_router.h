/* gw_router — the route table: path and method to what the gateway does. */
#ifndef GW_ROUTER_H
#define GW_ROUTER_H

#include <stdbool.h>

#include "tk_envelope.h"

typedef enum {
    GW_ROLE_NONE = 0, /* public: health checks */
    GW_ROLE_CUSTOMER,
    GW_ROLE_ADMIN,
} gw_role;

typedef enum {
    GW_ROUTE_CREATE_TICKET = 0,
    GW_ROUTE_GET_TICKETS,
    GW_ROUTE_CREATE_REPLY,
    GW_ROUTE_ADMIN_GET_TICKETS,
    GW_ROUTE_ADMIN_CREATE_REPLY,
    GW_ROUTE_GET_TICKET,
    GW_ROUTE_ADMIN_GET_TICKET,
    GW_ROUTE_ADMIN_UPDATE_TICKET,
    GW_ROUTE_RESOLVE_TICKET,
    GW_ROUTE_HEALTHZ,
    GW_ROUTE_READYZ,
    GW_ROUTE_METRICS,
    GW_ROUTE_OPENAPI,
    GW_ROUTE_COUNT /* not a route: how many there are */
} gw_route_id;

typedef struct {
    gw_route_id id;
    const char *name; /* for logs and metric labels */
    const char *method;
    const char *path;
    gw_role role;
    tk_request_type request_type; /* what goes to Kafka (API routes only) */
    bool has_body;                /* POST with a JSON body */
    bool needs_ticket_id;         /* ?id=<ticketId> */
} gw_route;

typedef enum { GW_ROUTE_FOUND = 0, GW_ROUTE_NOT_FOUND, GW_ROUTE_BAD_METHOD } gw_route_match;

/**
 * @brief Finds the route for url (no query string) and method. A trailing
 * slash is ignored, as Express does.
 * @returns GW_ROUTE_FOUND with *route; GW_ROUTE_BAD_METHOD with *allow set to
 * the method the path takes; GW_ROUTE_NOT_FOUND otherwise.
 */
gw_route_match gw_router_find(const char *url, const char *method, const gw_route **route, const char **allow);

#endif
