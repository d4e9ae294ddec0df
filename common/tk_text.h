/* tk_text — the text checks both edges use: UTF-8, string members with limits, unknown members, priorities. */
#ifndef TK_TEXT_H
#define TK_TEXT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define TK_CATEGORY_MAX_CHARS 100
#define TK_SUBJECT_MAX_CHARS 200
#define TK_DESCRIPTION_MAX_CHARS 10000
#define TK_PRINCIPAL_MAX_CHARS 128 /* user ids and team ids */
/* A buffer for a principal in UTF-8 (up to 4 bytes a character) and its NUL. */
#define TK_PRINCIPAL_BUF_SIZE (TK_PRINCIPAL_MAX_CHARS * 4 + 1)

/** @returns the number of code points in valid UTF-8 text. */
size_t tk_utf8_length(const char *text, size_t len);

/** @returns true when text is valid UTF-8 with no NUL byte. */
bool tk_utf8_is_valid(const char *text, size_t len);

/**
 * @brief Where to cut text so that no character is split: the length of the
 * longest prefix of at most max_bytes that ends on a character boundary. A
 * sequence left incomplete at the end of text[0..len) is dropped too.
 * @returns a byte count <= min(len, max_bytes); for `%.*s`, cast to int.
 * @remark Text that is not UTF-8 is cut at max_bytes, or a little before it.
 */
size_t tk_utf8_prefix_len(const char *text, size_t len, size_t max_bytes);

/**
 * @brief Reads the string member `name` of object and checks it against the rules:
 * present and not null when required, a string, not empty or only whitespace,
 * at most max_chars code points. `label` names it in messages ("subject",
 * "ticket.subject").
 * @returns 0 with *out set (NULL when optional and absent), or -1 with a message
 * for a person in err ("Field 'subject' is required").
 */
int tk_text_member(const json_t *object, const char *name, const char *label, size_t max_chars, bool is_required,
                   const char **out, char *err, size_t err_len);

/**
 * @brief Checks that every key of object is in allowed (NULL-terminated).
 * @returns 0, or -1 with "Unknown field '<prefix><key>'" in err.
 */
int tk_only_members(const json_t *object, const char *const allowed[], const char *prefix, char *err, size_t err_len);

/* The ticket priorities and statuses, NULL-terminated, and as a message lists them. */
extern const char *const TK_PRIORITIES[];
extern const char *const TK_STATUSES[];
#define TK_PRIORITIES_TEXT "low, medium, high, urgent"
#define TK_STATUSES_TEXT "created, open, pending, resolved, closed"
#define TK_STATUS_TARGETS_TEXT "open, pending, resolved, closed"

/** @returns true when value is one of the ticket priorities (low, medium, high, urgent). */
bool tk_priority_is_valid(const char *value);

/** @returns true when value is one of the ticket statuses. */
bool tk_status_is_valid(const char *value);

/**
 * @returns true when a ticket may be set to value: any status but "created",
 * which only a new ticket has (leaving it is one way).
 */
bool tk_status_is_target(const char *value);

#endif
