/* gw_answer — the serialized HTTP bodies the gateway sends. */
#include "gw_answer.h"

#include <string.h>

#include "tk_text.h"

char *gw_answer_dump(const json_t *body, size_t *len) {
    char *text = json_dumps(body, JSON_COMPACT);
    *len = text != NULL ? strlen(text) : 0;
    return text;
}

char *gw_answer_error(const char *message, size_t *len) {
    /* A message cut short by snprintf can end inside a character, and jansson
     * refuses what is not UTF-8: drop that tail rather than the whole answer. */
    size_t message_len = strlen(message);
    json_t *body = json_pack("{s:b, s:s%}", "success", 0, "message", message,
                             tk_utf8_prefix_len(message, message_len, message_len));
    if (body == NULL) return NULL;
    char *text = gw_answer_dump(body, len);
    json_decref(body);
    return text;
}
