/* gw_validate — what a client sends over HTTP: JSON bodies (by the field
 * table of tk_fields), ticket ids and list query strings. */
#include "gw_validate.h"

#include <ctype.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "tk_fields.h"
#include "tk_text.h"

bool gw_validate_is_json_content_type(const char *content_type) {
    static const char JSON_TYPE[] = "application/json";
    if (content_type == NULL) return false;
    while (*content_type == ' ') content_type++;
    if (strncasecmp(content_type, JSON_TYPE, sizeof JSON_TYPE - 1) != 0) return false;
    char next = content_type[sizeof JSON_TYPE - 1];
    return next == '\0' || next == ';' || next == ' ';
}

static int parse_object(const char *body, size_t len, json_t **root, char *err, size_t err_len) {
    *root = NULL;
    /* Duplicate keys are ambiguous: which one would we store? Refuse them.
     * A \u0000 escape is valid JSON: let it through to the field rules, which
     * refuse it by name (tk_text_member); jansson cannot hold one in a key. */
    json_error_t error;
    json_t *parsed = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &error);
    if (parsed == NULL) {
        snprintf(err, err_len, "%s",
                 json_error_code(&error) == json_error_null_byte_in_key ? "Field names must not contain NUL characters"
                                                                        : "Request body is not valid JSON");
        return -1;
    }
    if (!json_is_object(parsed)) {
        json_decref(parsed);
        snprintf(err, err_len, "Request body must be a JSON object");
        return -1;
    }
    *root = parsed;
    return 0;
}

static int check_create(const json_t *root, tk_request *request, char *err, size_t err_len) {
    if (tk_fields_only_members(root, &TK_TICKET_FIELDS, NULL, "", err, err_len) != 0) return -1;
    return tk_fields_take(root, &TK_TICKET_FIELDS, "", request, err, err_len);
}

/* A reply: description, and on the admin route "internal" (true: an internal
 * note). Unknown fields are refused, so a customer's "internal" is too, with
 * a message that says why rather than "Unknown field". */
static int check_reply(const json_t *root, bool is_admin, tk_request *request, char *err, size_t err_len) {
    json_t *internal = json_object_get(root, "internal");
    if (internal != NULL && !is_admin) {
        snprintf(err, err_len, "Only admins write internal notes");
        return -1;
    }
    if (tk_fields_only_members(root, &TK_RESPONSE_FIELDS, is_admin ? "internal" : NULL, "", err, err_len) != 0 ||
        tk_fields_take(root, &TK_RESPONSE_FIELDS, "", request, err, err_len) != 0)
        return -1;
    if (internal != NULL && !json_is_boolean(internal)) {
        snprintf(err, err_len, "Field 'internal' must be true or false");
        return -1;
    }
    request->internal = json_is_true(internal);
    return 0;
}

/* Any of status, priority, category, assigneeId (null: unassign); at least one. */
static int check_update(const json_t *root, tk_request *request, char *err, size_t err_len) {
    if (tk_fields_only_members(root, &TK_CHANGE_FIELDS, NULL, "", err, err_len) != 0) return -1;
    return tk_fields_take_changes(root, "", request, err, err_len);
}

int gw_validate_body(const gw_route *route, const char *body, size_t len, json_t **root, tk_request *request, char *err,
                     size_t err_len) {
    if (parse_object(body, len, root, err, err_len) != 0) return -1;
    int rc = route->request_type == TK_REQUEST_TICKET_CREATE ? check_create(*root, request, err, err_len)
             : route->request_type == TK_REQUEST_TICKET_UPDATE
                 ? check_update(*root, request, err, err_len)
                 : check_reply(*root, route->role == GW_ROLE_ADMIN, request, err, err_len);
    if (rc != 0) {
        json_decref(*root);
        *root = NULL;
    }
    return rc;
}

int gw_validate_ticket_id(const char *param, char out[TK_OBJECT_ID_LEN + 1], char *err, size_t err_len) {
    if (param == NULL || param[0] == '\0') {
        snprintf(err, err_len, "Query parameter 'id' is required");
        return -1;
    }
    size_t len = strlen(param);
    if (len != TK_OBJECT_ID_LEN) goto invalid;
    for (size_t i = 0; i < len; i++) out[i] = (char)tolower((unsigned char)param[i]);
    out[len] = '\0';
    if (tk_object_id_is_valid(out, len)) return 0;
invalid:
    snprintf(err, err_len, "Invalid ticket id");
    return -1;
}

int gw_list_query_init(gw_list_query *query) {
    memset(query, 0, sizeof *query);
    query->limit = TK_LIST_LIMIT_DEFAULT;
    query->filter = json_object();
    return query->filter != NULL ? 0 : -1;
}

void gw_list_query_close(gw_list_query *query) {
    if (query == NULL) return;
    json_decref(query->filter);
    query->filter = NULL;
}

static int take_limit(gw_list_query *query, const char *value, char *err, size_t err_len) {
    long limit = 0;
    size_t len = value != NULL ? strlen(value) : 0;
    /* Digits only: no sign, no spaces, no "1e2"; at most 3 of them. */
    for (size_t i = 0; i < len && len <= 3; i++)
        limit = limit * 10 + (isdigit((unsigned char)value[i]) ? value[i] - '0' : -10000);
    if (len == 0 || len > 3 || limit < 1 || limit > TK_LIST_LIMIT_MAX) {
        snprintf(err, err_len, "Query parameter 'limit' must be an integer from 1 to %d", TK_LIST_LIMIT_MAX);
        return -1;
    }
    query->limit = (int)limit;
    query->has_limit = true;
    return 0;
}

/* A filter member: a comma list becomes an array, the rest a string; the
 * rules are checked once all are in (gw_validate_list_finish). */
static int take_filter(gw_list_query *query, const char *name, const char *value, char *err, size_t err_len) {
    json_t *member = NULL;
    if (value == NULL) value = "";
    if (!tk_list_field_is_multi(name)) {
        member = json_string(value);
    } else {
        member = json_array();
        for (const char *start = value; member != NULL;) {
            const char *comma = strchr(start, ',');
            size_t len = comma != NULL ? (size_t)(comma - start) : strlen(start);
            json_t *item = json_stringn(start, len);
            if (item == NULL || json_array_append_new(member, item) != 0) {
                json_decref(member);
                member = NULL;
            }
            if (comma == NULL) break;
            start = comma + 1;
        }
    }
    if (member == NULL) { /* jansson refuses text that is not UTF-8 */
        snprintf(err, err_len, "Query parameter '%.64s' must be valid UTF-8", name);
        return -1;
    }
    if (json_object_set_new(query->filter, name, member) != 0) {
        snprintf(err, err_len, "Query parameter '%.64s' must be valid UTF-8", name);
        return -1;
    }
    return 0;
}

static int take_cursor(gw_list_query *query, const char *value, size_t value_len, char *err, size_t err_len) {
    query->has_cursor = true;
    if (value == NULL || value_len != TK_CURSOR_LEN) {
        snprintf(err, err_len, "Invalid cursor");
        return -1;
    }
    memcpy(query->cursor, value, TK_CURSOR_LEN + 1);
    return 0;
}

/* A repeated unknown name is not "given twice": the check at the end names it unknown. */
static bool is_repeated(const gw_list_query *query, const char *name) {
    return (strcmp(name, "limit") == 0 && query->has_limit) || (strcmp(name, "cursor") == 0 && query->has_cursor) ||
           (json_object_get(query->filter, name) != NULL && tk_list_field_is_known(name));
}

int gw_validate_list_param(gw_list_query *query, const char *name, size_t name_len, const char *value, size_t value_len,
                           char *err, size_t err_len) {
    if (strlen(name) != name_len || !tk_utf8_is_valid(name, name_len)) {
        snprintf(err, err_len, "Unknown query parameter");
        return -1;
    }
    if (is_repeated(query, name)) {
        snprintf(err, err_len, "Query parameter '%.64s' must be given once", name);
        return -1;
    }
    if (value != NULL && strlen(value) != value_len) {
        snprintf(err, err_len, "Query parameter '%.64s' must not contain NUL", name);
        return -1;
    }
    if (strcmp(name, "limit") == 0) return take_limit(query, value, err, err_len);
    if (strcmp(name, "cursor") == 0) return take_cursor(query, value, value_len, err, err_len);
    /* Unknown names are reported by the role-aware check at the end. */
    return take_filter(query, name, value, err, err_len);
}

int gw_validate_list_finish(gw_list_query *query, bool is_admin, const char *caller_id, const char *team, char *err,
                            size_t err_len) {
    if (tk_list_filter_check(query->filter, is_admin, TK_LIST_FROM_HTTP, err, err_len) != 0) return -1;
    const char *assignee = json_string_value(json_object_get(query->filter, "assigneeId"));
    if (assignee != NULL && strcmp(assignee, "me") == 0)
        json_object_set_new(query->filter, "assigneeId", json_string(caller_id));
    if (!query->has_cursor) return 0;
    uint64_t binding = tk_list_binding(is_admin, is_admin ? NULL : team, query->filter);
    if (tk_cursor_decode(query->cursor, strlen(query->cursor), binding, &query->after) != 0) {
        snprintf(err, err_len, "Invalid cursor");
        return -1;
    }
    return 0;
}

/* Appends text percent-encoded (RFC 3986 unreserved characters stay). */
static void append_encoded(char **out, const char *text) {
    static const char HEX[] = "0123456789ABCDEF";
    for (const unsigned char *c = (const unsigned char *)text; *c != '\0'; c++) {
        if (isalnum(*c) || strchr("-._~", *c) != NULL) {
            *(*out)++ = (char)*c;
        } else {
            *(*out)++ = '%';
            *(*out)++ = HEX[*c >> 4];
            *(*out)++ = HEX[*c & 15];
        }
    }
}

char *gw_validate_next_link_new(const char *path, const gw_list_query *query, const char *next_cursor) {
    const char *name;
    json_t *value;
    size_t size = strlen(path) + strlen(next_cursor) + 64;
    json_object_foreach(query->filter, name, value) {
        size += strlen(name) + 2;
        if (json_is_string(value)) size += 3 * json_string_length(value);
        for (size_t i = 0; i < json_array_size(value); i++)
            size += 3 * json_string_length(json_array_get(value, i)) + 1;
    }
    char *link = malloc(size);
    if (link == NULL) return NULL;
    char *out = link + sprintf(link, "<%s?limit=%d&cursor=%s", path, query->limit, next_cursor);
    json_object_foreach(query->filter, name, value) {
        out += sprintf(out, "&%s=", name);
        if (json_is_string(value)) append_encoded(&out, json_string_value(value));
        for (size_t i = 0; i < json_array_size(value); i++) {
            if (i > 0) *out++ = ',';
            append_encoded(&out, json_string_value(json_array_get(value, i)));
        }
    }
    strcpy(out, ">; rel=\"next\"");
    return link;
}
