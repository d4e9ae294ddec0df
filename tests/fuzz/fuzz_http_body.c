/* Fuzz target: HTTP request bodies of the POST routes (gw_validate_body).
 * The first byte picks the route; the rest is the body. A body that passes
 * must yield fields that obey the rules and survive the trip into a command. */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "gw_router.h"
#include "gw_validate.h"
#include "tk_envelope.h"
#include "tk_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    const gw_route *route = NULL;
    const char *allow = NULL;
    const char *path = data[0] & 1 ? "/api/ticket/create-reply" : "/api/ticket/create-ticket";
    if (gw_router_find(path, "POST", &route, &allow) != GW_ROUTE_FOUND) return 0;

    tk_request request;
    memset(&request, 0, sizeof request);
    json_t *root = NULL;
    char err[TK_ERROR_TEXT_MAX];
    if (gw_validate_body(route, (const char *)data + 1, size - 1, &root, &request, err, sizeof err) != 0) {
        assert(root == NULL && err[0] != '\0');
        return 0;
    }
    assert(request.description != NULL);
    assert(tk_utf8_length(request.description, strlen(request.description)) <= TK_DESCRIPTION_MAX_CHARS);
    /* What passes HTTP validation must pass the worker's validation too. */
    request.type = route->request_type;
    request.actor.id = "fuzzer";
    request.actor.team = "team";
    request.ticket_id = "0123456789abcdef01234567";
    request.response_id = "0123456789abcdef01234568";
    json_t *command = tk_request_json_new(&request);
    assert(command != NULL);
    char *text = json_dumps(command, JSON_COMPACT);
    tk_request parsed;
    int rc = tk_request_parse(text, strlen(text), &parsed, err, sizeof err);
    assert(rc == 0);
    assert(strcmp(parsed.description, request.description) == 0);
    tk_request_close(&parsed);
    free(text);
    json_decref(command);
    json_decref(root);
    return 0;
}
