/* Fuzz target: commands and queries as a worker reads them from Kafka
 * (tk_request_parse). Whatever parses must rebuild into a message that parses
 * to the same fields. */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "tk_envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void assert_same(const char *a, const char *b) {
    assert((a == NULL) == (b == NULL));
    if (a != NULL) assert(strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tk_request request;
    char err[TK_ERROR_TEXT_MAX];
    if (tk_request_parse((const char *)data, size, &request, err, sizeof err) != 0) {
        assert(request.root == NULL && err[0] != '\0');
        return 0;
    }
    json_t *rebuilt = tk_request_json_new(&request);
    assert(rebuilt != NULL);
    char *text = json_dumps(rebuilt, JSON_COMPACT);
    tk_request again;
    assert(tk_request_parse(text, strlen(text), &again, err, sizeof err) == 0);
    assert(again.type == request.type && again.actor.is_admin == request.actor.is_admin);
    assert_same(again.actor.id, request.actor.id);
    assert_same(again.actor.team, request.actor.team);
    assert_same(again.ticket_id, request.ticket_id);
    assert_same(again.response_id, request.response_id);
    assert_same(again.description, request.description);
    assert_same(again.idempotency_key, request.idempotency_key);
    tk_request_close(&again);
    free(text);
    json_decref(rebuilt);
    tk_request_close(&request);
    return 0;
}
