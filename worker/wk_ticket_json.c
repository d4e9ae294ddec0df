/* wk_ticket_json — a stored ticket (BSON) as the API shows it (JSON), with the
 * seed's field order whatever order the database keeps; and the customers' view of
 * it, without internal notes. */
#include "wk_ticket_json.h"

#include <string.h>

#include "tk_clock.h"
#include "tk_ids.h"

typedef enum { FIELD_ID, FIELD_TEXT, FIELD_TIME, FIELD_INT, FIELD_REPLIES, FIELD_TRUE } field_kind;

typedef struct {
    const char *name;
    field_kind kind;
    bool is_optional; /* shown only when stored (FIELD_TRUE: only when true) */
} field;

/* The seed's fields, then the lifecycle's, each only when set: a ticket that
 * never used them is byte-identical to the seed's. */
static const field TICKET_FIELDS[] = {
    {"_id", FIELD_ID, false},         {"creatorId", FIELD_TEXT, false},      {"creatorType", FIELD_TEXT, false},
    {"category", FIELD_TEXT, false},  {"subject", FIELD_TEXT, false},        {"description", FIELD_TEXT, false},
    {"priority", FIELD_TEXT, false},  {"status", FIELD_TEXT, false},         {"response", FIELD_REPLIES, false},
    {"createdAt", FIELD_TIME, false}, {"updatedAt", FIELD_TIME, false},      {"__v", FIELD_INT, false},
    {"assigneeId", FIELD_TEXT, true}, {"statusChangedAt", FIELD_TIME, true}, {"resolvedAt", FIELD_TIME, true},
};

static const field RESPONSE_FIELDS[] = {
    {"_id", FIELD_ID, false},           {"creatorId", FIELD_TEXT, false}, {"creatorType", FIELD_TEXT, false},
    {"description", FIELD_TEXT, false}, {"createdAt", FIELD_TIME, false}, {"updatedAt", FIELD_TIME, false},
    {"internal", FIELD_TRUE, true},
};

static json_t *responses_json_new(bson_iter_t *iter) {
    bson_iter_t child;
    json_t *list = json_array();
    if (list == NULL || !BSON_ITER_HOLDS_ARRAY(iter) || !bson_iter_recurse(iter, &child)) goto fail;
    while (bson_iter_next(&child)) {
        const uint8_t *data;
        uint32_t len;
        bson_t response;
        if (!BSON_ITER_HOLDS_DOCUMENT(&child)) goto fail;
        bson_iter_document(&child, &len, &data);
        if (!bson_init_static(&response, data, len)) goto fail;
        if (json_array_append_new(list, wk_response_json_new(&response)) != 0) goto fail;
    }
    return list;
fail:
    json_decref(list);
    return NULL;
}

static json_t *field_json_new(bson_iter_t *iter, field_kind kind) {
    switch (kind) {
    case FIELD_ID: {
        char hex[25];
        if (!BSON_ITER_HOLDS_OID(iter)) return NULL;
        bson_oid_to_string(bson_iter_oid(iter), hex);
        return json_stringn(hex, TK_OBJECT_ID_LEN);
    }
    case FIELD_TEXT: {
        uint32_t len;
        if (!BSON_ITER_HOLDS_UTF8(iter)) return NULL;
        const char *text = bson_iter_utf8(iter, &len);
        return json_stringn(text, len);
    }
    case FIELD_TIME: {
        char text[TK_ISO_TIME_LEN + 1];
        if (!BSON_ITER_HOLDS_DATE_TIME(iter)) return NULL;
        tk_iso_time_format(bson_iter_date_time(iter), text);
        return json_stringn(text, TK_ISO_TIME_LEN);
    }
    case FIELD_INT:
        if (!BSON_ITER_HOLDS_NUMBER(iter)) return NULL;
        return json_integer(bson_iter_as_int64(iter));
    case FIELD_REPLIES:
        return responses_json_new(iter);
    case FIELD_TRUE:
        return BSON_ITER_HOLDS_BOOL(iter) ? json_true() : NULL;
    }
    return NULL;
}

static json_t *document_json_new(const bson_t *document, const field *fields, size_t count) {
    json_t *object = json_object();
    if (object == NULL) return NULL;
    for (size_t i = 0; i < count; i++) {
        bson_iter_t iter;
        bool is_found = bson_iter_init_find(&iter, document, fields[i].name);
        if (fields[i].is_optional &&
            (!is_found || BSON_ITER_HOLDS_NULL(&iter) || (fields[i].kind == FIELD_TRUE && !bson_iter_as_bool(&iter))))
            continue;
        if (!is_found) goto fail;
        if (json_object_set_new(object, fields[i].name, field_json_new(&iter, fields[i].kind)) != 0) goto fail;
    }
    return object;
fail:
    json_decref(object);
    return NULL;
}

json_t *wk_ticket_json_new(const bson_t *ticket) {
    return document_json_new(ticket, TICKET_FIELDS, sizeof TICKET_FIELDS / sizeof TICKET_FIELDS[0]);
}

json_t *wk_response_json_new(const bson_t *response) {
    return document_json_new(response, RESPONSE_FIELDS, sizeof RESPONSE_FIELDS / sizeof RESPONSE_FIELDS[0]);
}

static bool is_internal(const json_t *entry) { return json_is_true(json_object_get(entry, "internal")); }

static bool has_internal(const json_t *ticket) {
    size_t index;
    json_t *entry;
    json_array_foreach(json_object_get(ticket, "response"), index, entry) {
        if (is_internal(entry)) return true;
    }
    return false;
}

/* A copy of ticket whose response list lacks the internal entries; the field
 * order stays (json_copy keeps it, and a replaced member keeps its place). */
static json_t *ticket_without_internal(json_t *ticket) {
    json_t *copy = json_copy(ticket);
    json_t *kept = json_array();
    size_t index;
    json_t *entry;
    if (copy == NULL || kept == NULL) goto fail;
    json_array_foreach(json_object_get(ticket, "response"), index, entry) {
        if (!is_internal(entry) && json_array_append(kept, entry) != 0) goto fail;
    }
    if (json_object_set_new(copy, "response", kept) != 0) {
        kept = NULL; /* taken even on failure */
        goto fail;
    }
    return copy;
fail:
    json_decref(kept);
    json_decref(copy);
    return NULL;
}

static json_t *list_without_internal(json_t *list) {
    json_t *shown = json_array();
    size_t index;
    json_t *ticket;
    json_array_foreach(list, index, ticket) {
        json_t *kept = has_internal(ticket) ? ticket_without_internal(ticket) : json_incref(ticket);
        if (shown == NULL || json_array_append_new(shown, kept) != 0) {
            json_decref(shown);
            return NULL;
        }
    }
    return shown;
}

json_t *wk_ticket_json_hide_internal(json_t *data) {
    size_t index;
    json_t *ticket;
    bool is_hiding = json_is_object(data) && has_internal(data);
    json_array_foreach(data, index, ticket) is_hiding = is_hiding || has_internal(ticket);
    if (!is_hiding) return data;
    json_t *shown = json_is_object(data) ? ticket_without_internal(data) : list_without_internal(data);
    json_decref(data);
    return shown;
}
