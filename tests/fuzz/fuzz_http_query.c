/* Fuzz target: the query string of the list routes (gw_validate_list_param,
 * gw_validate_list_finish, gw_validate_next_link_new). The first byte picks
 * the role (bit 0: admin); the rest is "name=value&..." as libmicrohttpd
 * hands it over, decoded (a NUL may sit inside a name or value). A query that
 * passes must make a tickets.list message the worker accepts, cursor and all. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gw_validate.h"
#include "tk_envelope.h"
#include "tk_list.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *copy(const uint8_t *data, size_t len) {
    char *text = malloc(len + 1);
    assert(text != NULL);
    memcpy(text, data, len);
    text[len] = '\0';
    return text;
}

static int take_pairs(gw_list_query *query, const uint8_t *data, size_t size, char *err, size_t err_len) {
    size_t start = 0;
    while (start < size) {
        const uint8_t *amp = memchr(data + start, '&', size - start);
        size_t end = amp != NULL ? (size_t)(amp - data) : size;
        const uint8_t *eq = memchr(data + start, '=', end - start);
        size_t name_end = eq != NULL ? (size_t)(eq - data) : end;
        char *name = copy(data + start, name_end - start);
        char *value = eq != NULL ? copy(eq + 1, end - name_end - 1) : NULL;
        int rc = gw_validate_list_param(query, name, name_end - start, value, value != NULL ? end - name_end - 1 : 0,
                                        err, err_len);
        free(name);
        free(value);
        if (rc != 0) return rc;
        start = end + 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    bool is_admin = data[0] & 1;
    const char *team = is_admin ? NULL : "team-a";
    gw_list_query query;
    char err[TK_ERROR_TEXT_MAX] = "";
    assert(gw_list_query_init(&query) == 0);
    if (take_pairs(&query, data + 1, size - 1, err, sizeof err) != 0 ||
        gw_validate_list_finish(&query, is_admin, "fuzzer", is_admin ? "" : team, err, sizeof err) != 0) {
        assert(err[0] != '\0');
        gw_list_query_close(&query);
        return 0;
    }
    assert(query.limit >= 1 && query.limit <= TK_LIST_LIMIT_MAX);
    /* What the gateway accepts, the worker accepts: same filter, same cursor. */
    tk_request request;
    memset(&request, 0, sizeof request);
    request.type = TK_REQUEST_TICKETS_LIST;
    request.actor.id = "fuzzer";
    request.actor.team = team;
    request.actor.is_admin = is_admin;
    request.filter = query.filter;
    request.limit = query.limit;
    request.after = query.has_cursor ? query.cursor : NULL;
    json_t *message = tk_request_json_new(&request);
    assert(message != NULL);
    char *text = json_dumps(message, JSON_COMPACT);
    assert(text != NULL);
    tk_request parsed;
    int rc = tk_request_parse(text, strlen(text), &parsed, err, sizeof err);
    assert(rc == 0);
    assert(parsed.limit == query.limit);
    tk_request_close(&parsed);
    char *link = gw_validate_next_link_new("/api/ticket/get-tickets", &query,
                                           "AQAAAZLSZ2hwZyCxyPHCs6Xk2QEwKP7kQCgsAJx");
    assert(link != NULL && strstr(link, ">; rel=\"next\"") != NULL);
    free(link);
    free(text);
    json_decref(message);
    gw_list_query_close(&query);
    return 0;
}
