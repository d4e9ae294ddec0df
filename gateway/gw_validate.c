#include "gw_validate.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

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
    /* Duplicate keys are ambiguous: which one would we store? Refuse them. */
    json_t *parsed = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
    if (parsed == NULL) {
        snprintf(err, err_len, "Request body is not valid JSON");
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
    static const char *const members[] = {"category", "subject", "description", "priority", NULL};
    if (tk_only_members(root, members, "", err, err_len) != 0 ||
        tk_text_member(root, "category", "category", TK_CATEGORY_MAX_CHARS, true, &request->category, err,
                       err_len) != 0 ||
        tk_text_member(root, "subject", "subject", TK_SUBJECT_MAX_CHARS, true, &request->subject, err, err_len) !=
            0 ||
        tk_text_member(root, "description", "description", TK_DESCRIPTION_MAX_CHARS, true, &request->description,
                       err, err_len) != 0 ||
        tk_text_member(root, "priority", "priority", TK_DESCRIPTION_MAX_CHARS, false, &request->priority, err, err_len) != 0)
        return -1;
    if (request->priority == NULL) {
        request->priority = "low";
    } else if (!tk_priority_is_valid(request->priority)) {
        snprintf(err, err_len, "Field 'priority' must be one of: low, medium, high");
        return -1;
    }
    return 0;
}

static int check_reply(const json_t *root, tk_request *request, char *err, size_t err_len) {
    static const char *const members[] = {"description", NULL};
    if (tk_only_members(root, members, "", err, err_len) != 0) return -1;
    return tk_text_member(root, "description", "description", TK_DESCRIPTION_MAX_CHARS, true, &request->description,
                          err, err_len);
}

int gw_validate_body(const gw_route *route, const char *body, size_t len, json_t **root, tk_request *request,
                     char *err, size_t err_len) {
    if (parse_object(body, len, root, err, err_len) != 0) return -1;
    int rc = route->request_type == TK_REQUEST_TICKET_CREATE ? check_create(*root, request, err, err_len)
                                                             : check_reply(*root, request, err, err_len);
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
