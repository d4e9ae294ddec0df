/* tk_envelope — the Kafka message format: parsing and building commands and
 * queries (fields by tk_fields), replies and their headers. */
#include "tk_envelope.h"

#include <stdio.h>
#include <string.h>

#include "tk_fields.h"
#include "tk_ids.h"
#include "tk_text.h"

typedef int (*request_body_parser)(const json_t *root, tk_request *out, char *err, size_t err_len);

static int parse_create(const json_t *root, tk_request *out, char *err, size_t err_len);
static int parse_reply(const json_t *root, tk_request *out, char *err, size_t err_len);
static int parse_list(const json_t *root, tk_request *out, char *err, size_t err_len);
static int parse_get(const json_t *root, tk_request *out, char *err, size_t err_len);
static int parse_update(const json_t *root, tk_request *out, char *err, size_t err_len);
static int parse_resolve(const json_t *root, tk_request *out, char *err, size_t err_len);

/* One row per message type: its wire name, the top-level members it may
 * carry, and the parser for its own members. */
static const struct {
    const char *name;
    const char *const *members;
    request_body_parser parse;
} REQUEST_TYPES[TK_REQUEST_TYPE_COUNT] = {
    [TK_REQUEST_TICKET_CREATE] = {"ticket.create",
                                  (const char *const[]){"version", "type", "actor", "ticket", "idempotencyKey", NULL},
                                  parse_create},
    [TK_REQUEST_TICKET_REPLY] = {"ticket.reply",
                                 (const char *const[]){"version", "type", "actor", "ticketId", "reply", "internal",
                                                       "ifMatch", "idempotencyKey", NULL},
                                 parse_reply},
    [TK_REQUEST_TICKETS_LIST] = {"tickets.list",
                                 (const char *const[]){"version", "type", "actor", "filter", "page", NULL}, parse_list},
    [TK_REQUEST_TICKET_GET] = {"ticket.get", (const char *const[]){"version", "type", "actor", "ticketId", NULL},
                               parse_get},
    [TK_REQUEST_TICKET_UPDATE] = {"ticket.update",
                                  (const char *const[]){"version", "type", "actor", "ticketId", "commandId", "changes",
                                                        "ifMatch", "idempotencyKey", NULL},
                                  parse_update},
    [TK_REQUEST_TICKET_RESOLVE] = {"ticket.resolve",
                                   (const char *const[]){"version", "type", "actor", "ticketId", "commandId", "ifMatch",
                                                         "idempotencyKey", NULL},
                                   parse_resolve},
};

bool tk_idempotency_key_is_valid(const char *key) {
    size_t len = key != NULL ? strlen(key) : 0;
    if (len == 0 || len > TK_IDEMPOTENCY_KEY_MAX) return false;
    for (size_t i = 0; i < len; i++)
        if (key[i] < 0x21 || key[i] > 0x7e) return false;
    return true;
}

/* The optional Idempotency-Key a command carries from its HTTP request. */
static int parse_idempotency_key(const json_t *root, tk_request *out, char *err, size_t err_len) {
    json_t *key = json_object_get(root, "idempotencyKey");
    if (key == NULL) return 0;
    if (!json_is_string(key) || !tk_idempotency_key_is_valid(json_string_value(key))) {
        snprintf(err, err_len, "Field 'idempotencyKey' must be 1 to 255 printable ASCII characters");
        return -1;
    }
    out->idempotency_key = json_string_value(key);
    return 0;
}

/* The optional ifMatch: the __v the issuer read, 0..2^53-1. */
static int parse_if_match(const json_t *root, tk_request *out, char *err, size_t err_len) {
    json_t *value = json_object_get(root, "ifMatch");
    if (value == NULL) return 0;
    if (!json_is_integer(value) || json_integer_value(value) < 0 || json_integer_value(value) > TK_IF_MATCH_MAX) {
        snprintf(err, err_len, "Field 'ifMatch' must be an integer from 0 to %lld", TK_IF_MATCH_MAX);
        return -1;
    }
    out->has_if_match = true;
    out->if_match = (long long)json_integer_value(value);
    return 0;
}

/* What every write but create carries besides its own members. */
static int parse_write_options(const json_t *root, tk_request *out, char *err, size_t err_len) {
    if (parse_if_match(root, out, err, err_len) != 0) return -1;
    return parse_idempotency_key(root, out, err, err_len);
}

bool tk_request_type_is_query(tk_request_type type) {
    return type == TK_REQUEST_TICKETS_LIST || type == TK_REQUEST_TICKET_GET;
}

const char *tk_request_type_name(tk_request_type type) {
    return type < TK_REQUEST_TYPE_COUNT ? REQUEST_TYPES[type].name : "unknown";
}

static int object_member(const json_t *parent, const char *name, const char *label, json_t **out, char *err,
                         size_t err_len) {
    json_t *value = json_object_get(parent, name);
    if (value == NULL || json_is_null(value)) {
        snprintf(err, err_len, "Field '%s' is required", label);
        return -1;
    }
    if (!json_is_object(value)) {
        snprintf(err, err_len, "Field '%s' must be an object", label);
        return -1;
    }
    *out = value;
    return 0;
}

static int id_member(const json_t *parent, const char *name, const char *label, const char **out, char *err,
                     size_t err_len) {
    if (tk_text_member(parent, name, label, TK_OBJECT_ID_LEN, true, out, err, err_len) != 0) return -1;
    if (!tk_object_id_is_valid(*out, strlen(*out))) {
        snprintf(err, err_len, "Field '%s' must be a 24-character lowercase hex id", label);
        return -1;
    }
    return 0;
}

static int parse_actor(const json_t *root, tk_actor *actor, char *err, size_t err_len) {
    static const char *const members[] = {"id", "role", "team", NULL};
    json_t *object;
    const char *role;
    if (object_member(root, "actor", "actor", &object, err, err_len) != 0) return -1;
    if (tk_only_members(object, members, "actor.", err, err_len) != 0) return -1;
    if (tk_text_member(object, "id", "actor.id", TK_PRINCIPAL_MAX_CHARS, true, &actor->id, err, err_len) != 0 ||
        tk_text_member(object, "role", "actor.role", TK_DESCRIPTION_MAX_CHARS, true, &role, err, err_len) != 0)
        return -1;
    if (strcmp(role, "admin") == 0) {
        actor->is_admin = true;
    } else if (strcmp(role, "customer") == 0) {
        actor->is_admin = false;
    } else {
        snprintf(err, err_len, "Field 'actor.role' must be one of: customer, admin");
        return -1;
    }
    bool is_team_required = !actor->is_admin;
    return tk_text_member(object, "team", "actor.team", TK_PRINCIPAL_MAX_CHARS, is_team_required, &actor->team, err,
                          err_len);
}

static int parse_create(const json_t *root, tk_request *out, char *err, size_t err_len) {
    json_t *ticket;
    if (object_member(root, "ticket", "ticket", &ticket, err, err_len) != 0 ||
        tk_fields_only_members(ticket, &TK_TICKET_FIELDS, "_id", "ticket.", err, err_len) != 0 ||
        id_member(ticket, "_id", "ticket._id", &out->ticket_id, err, err_len) != 0 ||
        tk_fields_take(ticket, &TK_TICKET_FIELDS, "ticket.", out, err, err_len) != 0)
        return -1;
    if (out->actor.is_admin) {
        snprintf(err, err_len, "Only customers create tickets");
        return -1;
    }
    return parse_idempotency_key(root, out, err, err_len);
}

static int parse_reply(const json_t *root, tk_request *out, char *err, size_t err_len) {
    json_t *reply;
    if (id_member(root, "ticketId", "ticketId", &out->ticket_id, err, err_len) != 0 ||
        object_member(root, "reply", "reply", &reply, err, err_len) != 0 ||
        tk_fields_only_members(reply, &TK_RESPONSE_FIELDS, "_id", "reply.", err, err_len) != 0 ||
        id_member(reply, "_id", "reply._id", &out->response_id, err, err_len) != 0 ||
        tk_fields_take(reply, &TK_RESPONSE_FIELDS, "reply.", out, err, err_len) != 0)
        return -1;
    json_t *internal = json_object_get(root, "internal");
    if (internal != NULL && !json_is_boolean(internal)) {
        snprintf(err, err_len, "Field 'internal' must be true or false");
        return -1;
    }
    out->internal = json_is_true(internal);
    if (out->internal && !out->actor.is_admin) {
        snprintf(err, err_len, "Only admins write internal notes");
        return -1;
    }
    return parse_write_options(root, out, err, err_len);
}

static int parse_update(const json_t *root, tk_request *out, char *err, size_t err_len) {
    json_t *changes;
    if (id_member(root, "ticketId", "ticketId", &out->ticket_id, err, err_len) != 0 ||
        id_member(root, "commandId", "commandId", &out->command_id, err, err_len) != 0 ||
        object_member(root, "changes", "changes", &changes, err, err_len) != 0 ||
        tk_fields_only_members(changes, &TK_CHANGE_FIELDS, NULL, "changes.", err, err_len) != 0 ||
        tk_fields_take_changes(changes, "changes.", out, err, err_len) != 0)
        return -1;
    if (!out->actor.is_admin) {
        snprintf(err, err_len, "Only admins update tickets");
        return -1;
    }
    return parse_write_options(root, out, err, err_len);
}

/* Customers resolve their own team's tickets; an admin may too. */
static int parse_resolve(const json_t *root, tk_request *out, char *err, size_t err_len) {
    if (id_member(root, "ticketId", "ticketId", &out->ticket_id, err, err_len) != 0 ||
        id_member(root, "commandId", "commandId", &out->command_id, err, err_len) != 0)
        return -1;
    return parse_write_options(root, out, err, err_len);
}

static int parse_page(const json_t *root, tk_request *out, char *err, size_t err_len) {
    static const char *const members[] = {"limit", "after", NULL};
    json_t *page = json_object_get(root, "page");
    if (page == NULL) return 0; /* limit 0: the default */
    if (!json_is_object(page)) {
        snprintf(err, err_len, "Field 'page' must be an object");
        return -1;
    }
    if (tk_only_members(page, members, "page.", err, err_len) != 0) return -1;
    json_t *limit = json_object_get(page, "limit");
    out->limit = TK_LIST_LIMIT_DEFAULT;
    if (limit != NULL) {
        if (!json_is_integer(limit) || json_integer_value(limit) < 1 || json_integer_value(limit) > TK_LIST_LIMIT_MAX) {
            snprintf(err, err_len, "Field 'page.limit' must be an integer from 1 to %d", TK_LIST_LIMIT_MAX);
            return -1;
        }
        out->limit = (int)json_integer_value(limit);
    }
    json_t *after = json_object_get(page, "after");
    if (after == NULL) return 0;
    /* The cursor must belong to this very query: same scope, same filter. */
    uint64_t binding = tk_list_binding(out->actor.is_admin, out->actor.team, out->filter);
    if (!json_is_string(after) ||
        tk_cursor_decode(json_string_value(after), json_string_length(after), binding, &out->after_position) != 0) {
        snprintf(err, err_len, "Invalid cursor");
        return -1;
    }
    out->after = json_string_value(after);
    return 0;
}

static int parse_list(const json_t *root, tk_request *out, char *err, size_t err_len) {
    json_t *filter = json_object_get(root, "filter");
    if (filter != NULL && tk_list_filter_check(filter, out->actor.is_admin, TK_LIST_FROM_KAFKA, err, err_len) != 0)
        return -1;
    out->filter = filter;
    return parse_page(root, out, err, err_len);
}

static int parse_get(const json_t *root, tk_request *out, char *err, size_t err_len) {
    return id_member(root, "ticketId", "ticketId", &out->ticket_id, err, err_len);
}

static int find_type(const json_t *root, tk_request_type *type, char *err, size_t err_len) {
    json_t *version = json_object_get(root, "version");
    if (version == NULL) {
        snprintf(err, err_len, "Field 'version' is required");
        return -1;
    }
    if (!json_is_integer(version) || json_integer_value(version) != TK_ENVELOPE_VERSION) {
        snprintf(err, err_len, "Unsupported version: expected %d", TK_ENVELOPE_VERSION);
        return -1;
    }
    json_t *name = json_object_get(root, "type");
    if (!json_is_string(name)) {
        snprintf(err, err_len, "Field 'type' is required and must be a string");
        return -1;
    }
    for (int i = 0; i < TK_REQUEST_TYPE_COUNT; i++) {
        if (strcmp(json_string_value(name), REQUEST_TYPES[i].name) == 0) {
            *type = (tk_request_type)i;
            return 0;
        }
    }
    const char *text = json_string_value(name);
    snprintf(err, err_len, "Unknown message type '%.*s'", (int)tk_utf8_prefix_len(text, strlen(text), 64), text);
    return -1;
}

int tk_request_parse(const char *data, size_t len, tk_request *out, char *err, size_t err_len) {
    json_error_t json_error;
    memset(out, 0, sizeof *out);
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &json_error);
    if (root == NULL) {
        snprintf(err, err_len, "Message is not valid JSON: %s", json_error.text);
        return -1;
    }
    if (!json_is_object(root)) {
        snprintf(err, err_len, "Message must be a JSON object");
        goto fail;
    }
    if (find_type(root, &out->type, err, err_len) != 0 ||
        tk_only_members(root, REQUEST_TYPES[out->type].members, "", err, err_len) != 0 ||
        parse_actor(root, &out->actor, err, err_len) != 0 ||
        REQUEST_TYPES[out->type].parse(root, out, err, err_len) != 0)
        goto fail;
    out->root = root;
    return 0;
fail:
    json_decref(root);
    memset(out, 0, sizeof *out);
    return -1;
}

void tk_request_close(tk_request *request) {
    if (request == NULL) return;
    json_decref(request->root);
    memset(request, 0, sizeof *request);
}

json_t *tk_actor_json_new(const tk_actor *actor) {
    json_t *object = json_pack("{s:s, s:s}", "id", actor->id, "role", actor->is_admin ? "admin" : "customer");
    if (object != NULL && actor->team != NULL && json_object_set_new(object, "team", json_string(actor->team)) != 0) {
        json_decref(object);
        return NULL;
    }
    return object;
}

static json_t *with_idempotency_key(json_t *message, const tk_request *request) {
    if (message != NULL && request->idempotency_key != NULL &&
        json_object_set_new(message, "idempotencyKey", json_string(request->idempotency_key)) != 0) {
        json_decref(message);
        return NULL;
    }
    return message;
}

/* A write's optional members, only when set: a request that uses none of
 * them is the message it was before they existed. Takes message. */
static json_t *with_write_options(json_t *message, const tk_request *request) {
    if (message != NULL &&
        ((request->internal && json_object_set_new(message, "internal", json_true()) != 0) ||
         (request->has_if_match && json_object_set_new(message, "ifMatch", json_integer(request->if_match)) != 0))) {
        json_decref(message);
        return NULL;
    }
    return with_idempotency_key(message, request);
}

/* The changes object of an update: only what changes, assigneeId null to unassign. */
static json_t *changes_json_new(const tk_request *request) {
    json_t *changes = json_object();
    if (changes == NULL) return NULL;
    json_t *assignee = request->is_unassign           ? json_null()
                       : request->assignee_id != NULL ? json_string(request->assignee_id)
                                                      : NULL;
    if ((request->status != NULL && json_object_set_new(changes, "status", json_string(request->status)) != 0) ||
        (request->priority != NULL && json_object_set_new(changes, "priority", json_string(request->priority)) != 0) ||
        (request->category != NULL && json_object_set_new(changes, "category", json_string(request->category)) != 0) ||
        (assignee != NULL && json_object_set_new(changes, "assigneeId", assignee) != 0)) {
        json_decref(changes);
        return NULL;
    }
    return changes;
}

static json_t *write_json_new(const tk_request *request, json_t *actor) {
    const char *type = tk_request_type_name(request->type);
    json_t *message = json_pack("{s:i, s:s, s:o, s:s, s:s}", "version", TK_ENVELOPE_VERSION, "type", type, "actor",
                                actor, "ticketId", request->ticket_id, "commandId", request->command_id);
    if (message != NULL && request->type == TK_REQUEST_TICKET_UPDATE &&
        json_object_set_new(message, "changes", changes_json_new(request)) != 0) {
        json_decref(message);
        return NULL;
    }
    return with_write_options(message, request);
}

/* Adds the filter (when not empty) and the page to message. @returns 0 or -1. */
static int add_page(json_t *message, const tk_request *request) {
    json_t *page = json_pack("{s:i}", "limit", request->limit > 0 ? request->limit : TK_LIST_LIMIT_DEFAULT);
    if (page == NULL) return -1;
    bool has_filter = request->filter != NULL && json_object_size(request->filter) > 0;
    if ((request->after != NULL && json_object_set_new(page, "after", json_string(request->after)) != 0) ||
        (has_filter && json_object_set(message, "filter", (json_t *)request->filter) != 0)) {
        json_decref(page);
        return -1;
    }
    return json_object_set_new(message, "page", page); /* takes page, even on failure */
}

/* A list query with its filter and page. Takes message; NULL on failure. */
static json_t *list_json_new(json_t *message, const tk_request *request) {
    if (message == NULL) return NULL;
    if (request->limit == 0 && request->after == NULL && request->filter == NULL) return message; /* as before pages */
    if (add_page(message, request) != 0) {
        json_decref(message);
        return NULL;
    }
    return message;
}

json_t *tk_request_json_new(const tk_request *request) {
    json_t *actor = tk_actor_json_new(&request->actor);
    if (actor == NULL) return NULL;
    const char *type = tk_request_type_name(request->type);
    switch (request->type) {
    case TK_REQUEST_TICKET_CREATE:
        return with_idempotency_key(json_pack("{s:i, s:s, s:o, s:{s:s, s:s, s:s, s:s, s:s}}", "version",
                                              TK_ENVELOPE_VERSION, "type", type, "actor", actor, "ticket", "_id",
                                              request->ticket_id, "category", request->category, "subject",
                                              request->subject, "description", request->description, "priority",
                                              request->priority ? request->priority : "low"),
                                    request);
    case TK_REQUEST_TICKET_REPLY:
        return with_write_options(json_pack("{s:i, s:s, s:o, s:s, s:{s:s, s:s}}", "version", TK_ENVELOPE_VERSION,
                                            "type", type, "actor", actor, "ticketId", request->ticket_id, "reply",
                                            "_id", request->response_id, "description", request->description),
                                  request);
    case TK_REQUEST_TICKETS_LIST:
        return list_json_new(json_pack("{s:i, s:s, s:o}", "version", TK_ENVELOPE_VERSION, "type", type, "actor", actor),
                             request);
    case TK_REQUEST_TICKET_GET:
        return json_pack("{s:i, s:s, s:o, s:s}", "version", TK_ENVELOPE_VERSION, "type", type, "actor", actor,
                         "ticketId", request->ticket_id);
    case TK_REQUEST_TICKET_UPDATE:
    case TK_REQUEST_TICKET_RESOLVE:
        return write_json_new(request, actor);
    case TK_REQUEST_TYPE_COUNT:
        break;
    }
    json_decref(actor);
    return NULL;
}

json_t *tk_reply_json_new(int status, const char *message, json_t *data) {
    return tk_reply_json_new_meta(status, message, NULL, NULL, data);
}

json_t *tk_reply_json_new_meta(int status, const char *message, const char *next_cursor, const char *etag,
                               json_t *data) {
    /* Meta before "success": the gateway's fast path passes a reply that
     * goes on with "success" as the body, so meta must never reach it. */
    json_t *reply = json_pack("{s:i, s:i}", "version", TK_ENVELOPE_VERSION, "status", status);
    if (reply != NULL &&
        ((next_cursor != NULL && json_object_set_new(reply, "page", json_pack("{s:s}", "next", next_cursor)) != 0) ||
         (etag != NULL && json_object_set_new(reply, "etag", json_string(etag)) != 0) ||
         json_object_set_new(reply, "success", json_boolean(status >= 200 && status < 300)) != 0 ||
         json_object_set_new(reply, "message", json_string(message)) != 0)) {
        json_decref(reply);
        reply = NULL;
    }
    if (reply == NULL) {
        json_decref(data);
        return NULL;
    }
    if (data != NULL && json_object_set_new(reply, "data", data) != 0) {
        json_decref(reply);
        return NULL;
    }
    return reply;
}

int tk_reply_parse(const char *data, size_t len, int *status, json_t **body, char *err, size_t err_len) {
    json_error_t json_error;
    *body = NULL;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &json_error);
    if (root == NULL) {
        snprintf(err, err_len, "reply is not valid JSON: %s", json_error.text);
        return -1;
    }
    json_t *version = json_object_get(root, "version");
    json_t *status_value = json_object_get(root, "status");
    json_t *success = json_object_get(root, "success");
    json_t *message = json_object_get(root, "message");
    if (!json_is_integer(version) || json_integer_value(version) != TK_ENVELOPE_VERSION ||
        !json_is_integer(status_value) || json_integer_value(status_value) < 100 ||
        json_integer_value(status_value) > 599 || !json_is_boolean(success) || !json_is_string(message)) {
        snprintf(err, err_len, "reply lacks version 1, status, success or message");
        json_decref(root);
        return -1;
    }
    *status = (int)json_integer_value(status_value);
    /* The reply is the HTTP body plus routing members: drop those in place. */
    json_object_del(root, "version");
    json_object_del(root, "status");
    *body = root;
    return 0;
}

void tk_reply_take_meta(json_t *body, char **next_cursor, char *etag, size_t etag_len) {
    const char *next = json_string_value(json_object_get(json_object_get(body, "page"), "next"));
    const char *tag = json_string_value(json_object_get(body, "etag"));
    *next_cursor = next != NULL ? strdup(next) : NULL;
    snprintf(etag, etag_len, "%s", tag != NULL ? tag : "");
    json_object_del(body, "page");
    json_object_del(body, "etag");
}
