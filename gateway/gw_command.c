/* gw_command — an admitted HTTP request as the Kafka command or query it
 * becomes: the validated body, the ids its issuer chooses, the message key
 * and the JSON payload. */
#include "gw_command.h"

#include <stdio.h>
#include <string.h>

#include "gw_validate.h"

/* The Kafka key and ids of a command or query: commands by ticket, queries of
 * one team on one partition (admins share one key). */
static int address_request(gw_command *command, const gw_admitted *admitted) {
    tk_request *out = &command->request;
    const char *query_key = out->actor.is_admin ? "admin" : out->actor.team;
    switch (out->type) {
    case TK_REQUEST_TICKET_CREATE:
        tk_object_id_new(command->key);
        out->ticket_id = command->key;
        return 0;
    case TK_REQUEST_TICKET_REPLY:
        strcpy(command->key, admitted->ticket_id);
        out->ticket_id = admitted->ticket_id;
        tk_object_id_new(command->response_id);
        out->response_id = command->response_id;
        return 0;
    case TK_REQUEST_TICKETS_LIST:
        out->filter = admitted->list.filter;
        out->limit = admitted->list.limit;
        out->after = admitted->list.has_cursor ? admitted->list.cursor : NULL;
        snprintf(command->key, sizeof command->key, "%s", query_key);
        return 0;
    case TK_REQUEST_TICKET_GET:
        out->ticket_id = admitted->ticket_id;
        snprintf(command->key, sizeof command->key, "%s", query_key);
        return 0;
    case TK_REQUEST_TICKET_UPDATE:
    case TK_REQUEST_TICKET_RESOLVE:
        strcpy(command->key, admitted->ticket_id);
        out->ticket_id = admitted->ticket_id;
        tk_object_id_new(command->command_id);
        out->command_id = command->command_id;
        return 0;
    case TK_REQUEST_TYPE_COUNT:
        break;
    }
    return -1;
}

int gw_command_init(gw_command *command, const gw_route *route, const gw_admitted *admitted, const char *body,
                    size_t body_len, char *err, size_t err_len) {
    const gw_identity *identity = &admitted->identity;
    tk_request *out = &command->request;
    memset(command, 0, sizeof *command);
    out->type = route->request_type;
    out->actor.id = identity->id;
    out->actor.is_admin = identity->is_admin;
    out->actor.team = identity->team[0] != '\0' ? identity->team : NULL;
    out->idempotency_key = admitted->idempotency_key;
    out->has_if_match = admitted->has_if_match;
    out->if_match = admitted->if_match;
    if (route->has_body && gw_validate_body(route, body, body_len, &command->body_root, out, err, err_len) != 0)
        return -1;
    return address_request(command, admitted);
}

char *gw_command_payload_new(const gw_command *command) {
    json_t *message = tk_request_json_new(&command->request);
    char *payload = message != NULL ? json_dumps(message, JSON_COMPACT) : NULL;
    json_decref(message);
    return payload;
}

void gw_command_close(gw_command *command) {
    json_decref(command->body_root);
    command->body_root = NULL;
}
