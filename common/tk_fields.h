/* tk_fields — the one table of the fields a client writes into a ticket and
 * into a ticket response: limits, defaults, allowed values and unknown-member
 * checks, applied alike to HTTP bodies (gw_validate) and Kafka messages
 * (tk_envelope), so that a contract change is one edit. */
#ifndef TK_FIELDS_H
#define TK_FIELDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "tk_envelope.h"

/** One text field and its rules. */
typedef struct {
    const char *name;
    size_t max_chars;
    bool is_required;
    const char *default_value;             /* when absent; NULL: none */
    bool (*is_allowed)(const char *value); /* NULL: any text within the limits */
    const char *allowed_text;              /* the allowed values, for the message */
    size_t offset;                         /* of its const char * in tk_request */
} tk_field;

typedef struct {
    const tk_field *fields;
    size_t count;
} tk_field_set;

extern const tk_field_set TK_TICKET_FIELDS;   /* a new ticket: category, subject, description, priority */
extern const tk_field_set TK_RESPONSE_FIELDS; /* a ticket response: description */
extern const tk_field_set TK_CHANGE_FIELDS;   /* an update: status, priority, category, assigneeId */

/**
 * @brief Refuses a member of object that is neither in set nor extra_member
 * (NULL: none), named prefix + name in the message.
 * @returns 0, or -1 with err.
 */
int tk_fields_only_members(const json_t *object, const tk_field_set *set, const char *extra_member, const char *prefix,
                           char *err, size_t err_len);

/**
 * @brief Checks each field of set in table order and stores it (borrowed
 * from object, or the default) into out; messages name prefix + name.
 * @returns 0, or -1 with err at the first field that breaks a rule.
 */
int tk_fields_take(const json_t *object, const tk_field_set *set, const char *prefix, tk_request *out, char *err,
                   size_t err_len);

/**
 * @brief Reads an update's changes (the HTTP body or the command's "changes"):
 * at least one member, each by TK_CHANGE_FIELDS, assigneeId null as
 * is_unassign. Unknown members are the caller's check.
 * @returns 0, or -1 with err.
 */
int tk_fields_take_changes(const json_t *object, const char *prefix, tk_request *out, char *err, size_t err_len);

#endif
