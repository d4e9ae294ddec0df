/* tk_fields — the field table and the two checks both edges run over it. */
#include "tk_fields.h"

#include <stdio.h>

#include "tk_text.h"

#define FIELDS_MAX 8
#define LABEL_MAX 64

static const tk_field TICKET_FIELDS[] = {
    {"category", TK_CATEGORY_MAX_CHARS, true, NULL, NULL, NULL, offsetof(tk_request, category)},
    {"subject", TK_SUBJECT_MAX_CHARS, true, NULL, NULL, NULL, offsetof(tk_request, subject)},
    {"description", TK_DESCRIPTION_MAX_CHARS, true, NULL, NULL, NULL, offsetof(tk_request, description)},
    {"priority", TK_DESCRIPTION_MAX_CHARS, false, "low", tk_priority_is_valid, TK_PRIORITIES_TEXT,
     offsetof(tk_request, priority)},
};

static const tk_field RESPONSE_FIELDS[] = {
    {"description", TK_DESCRIPTION_MAX_CHARS, true, NULL, NULL, NULL, offsetof(tk_request, description)},
};

/* What an admin update may change; none is required, absent means unchanged.
 * assigneeId may also be null (unassign): the envelope and gw_validate read
 * that before this table, which only sees text. */
static const tk_field CHANGE_FIELDS[] = {
    {"status", TK_DESCRIPTION_MAX_CHARS, false, NULL, tk_status_is_target, TK_STATUS_TARGETS_TEXT,
     offsetof(tk_request, status)},
    {"priority", TK_DESCRIPTION_MAX_CHARS, false, NULL, tk_priority_is_valid, TK_PRIORITIES_TEXT,
     offsetof(tk_request, priority)},
    {"category", TK_CATEGORY_MAX_CHARS, false, NULL, NULL, NULL, offsetof(tk_request, category)},
    {"assigneeId", TK_PRINCIPAL_MAX_CHARS, false, NULL, NULL, NULL, offsetof(tk_request, assignee_id)},
};

const tk_field_set TK_TICKET_FIELDS = {TICKET_FIELDS, sizeof TICKET_FIELDS / sizeof TICKET_FIELDS[0]};
const tk_field_set TK_RESPONSE_FIELDS = {RESPONSE_FIELDS, sizeof RESPONSE_FIELDS / sizeof RESPONSE_FIELDS[0]};
const tk_field_set TK_CHANGE_FIELDS = {CHANGE_FIELDS, sizeof CHANGE_FIELDS / sizeof CHANGE_FIELDS[0]};

int tk_fields_take_changes(const json_t *object, const char *prefix, tk_request *out, char *err, size_t err_len) {
    if (json_object_size(object) == 0) {
        snprintf(err, err_len, "Changes must name at least one of: status, priority, category, assigneeId");
        return -1;
    }
    json_t *assignee = json_object_get(object, "assigneeId");
    out->is_unassign = assignee != NULL && json_is_null(assignee);
    if (tk_fields_take(object, &TK_CHANGE_FIELDS, prefix, out, err, err_len) != 0) return -1;
    /* null is "unassign" only for assigneeId; elsewhere it is no value at all. */
    static const char *const texts[] = {"status", "priority", "category", NULL};
    for (size_t i = 0; texts[i] != NULL; i++) {
        if (json_is_null(json_object_get(object, texts[i]))) {
            snprintf(err, err_len, "Field '%s%s' must be a string", prefix, texts[i]);
            return -1;
        }
    }
    return 0;
}

int tk_fields_only_members(const json_t *object, const tk_field_set *set, const char *extra_member, const char *prefix,
                           char *err, size_t err_len) {
    const char *allowed[FIELDS_MAX + 2];
    size_t count = 0;
    if (extra_member != NULL) allowed[count++] = extra_member;
    for (size_t i = 0; i < set->count && count < FIELDS_MAX + 1; i++) allowed[count++] = set->fields[i].name;
    allowed[count] = NULL;
    return tk_only_members(object, allowed, prefix, err, err_len);
}

static int take_field(const json_t *object, const tk_field *field, const char *prefix, tk_request *out, char *err,
                      size_t err_len) {
    char label[LABEL_MAX];
    snprintf(label, sizeof label, "%s%s", prefix, field->name);
    const char **value = (const char **)(void *)((char *)out + field->offset);
    if (tk_text_member(object, field->name, label, field->max_chars, field->is_required, value, err, err_len) != 0)
        return -1;
    if (*value == NULL) {
        *value = field->default_value;
    } else if (field->is_allowed != NULL && !field->is_allowed(*value)) {
        snprintf(err, err_len, "Field '%s' must be one of: %s", label, field->allowed_text);
        return -1;
    }
    return 0;
}

int tk_fields_take(const json_t *object, const tk_field_set *set, const char *prefix, tk_request *out, char *err,
                   size_t err_len) {
    for (size_t i = 0; i < set->count; i++) {
        if (take_field(object, &set->fields[i], prefix, out, err, err_len) != 0) return -1;
    }
    return 0;
}
