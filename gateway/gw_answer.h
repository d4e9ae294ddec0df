/* gw_answer — the serialized HTTP bodies the gateway sends. */
#ifndef GW_ANSWER_H
#define GW_ANSWER_H

#include <jansson.h>
#include <stddef.h>

/* The 503 message: overloaded, broker away, stopping. */
#define GW_MSG_UNAVAILABLE "Service unavailable, try again later"

/** @brief {"success":false,"message":message} as a malloc'd string. @returns NULL when out of memory. */
char *gw_answer_error(const char *message, size_t *len);

/** @brief Compact JSON of body (borrowed) as a malloc'd string. @returns NULL when out of memory. */
char *gw_answer_dump(const json_t *body, size_t *len);

#endif
