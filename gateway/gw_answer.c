#include "gw_answer.h"

#include <string.h>

char *gw_answer_dump(const json_t *body, size_t *len) {
    char *text = json_dumps(body, JSON_COMPACT);
    *len = text != NULL ? strlen(text) : 0;
    return text;
}

char *gw_answer_error(const char *message, size_t *len) {
    json_t *body = json_pack("{s:b, s:s}", "success", 0, "message", message);
    if (body == NULL) return NULL;
    char *text = gw_answer_dump(body, len);
    json_decref(body);
    return text;
}
