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
    {"priority", TK_DESCRIPTION_MAX_CHARS, false, "low", tk_priority_is_valid, "low, medium, high",
     offsetof(tk_request, priority)},
};

static const tk_field RESPONSE_FIELDS[] = {
    {"description", TK_DESCRIPTION_MAX_CHARS, true, NULL, NULL, NULL, offsetof(tk_request, description)},
};

const tk_field_set TK_TICKET_FIELDS = {TICKET_FIELDS, sizeof TICKET_FIELDS / sizeof TICKET_FIELDS[0]};
const tk_field_set TK_RESPONSE_FIELDS = {RESPONSE_FIELDS, sizeof RESPONSE_FIELDS / sizeof RESPONSE_FIELDS[0]};

int tk_fields_only_members(const json_t *object, const tk_field_set *set, const char *extra_member,
                           const char *prefix, char *err, size_t err_len) {
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
