/* gw_command — an admitted HTTP request as the Kafka command or query it
 * becomes: the validated body, the ids its issuer chooses, the message key
 * and the JSON payload. */
#ifndef GW_COMMAND_H
#define GW_COMMAND_H

#include <jansson.h>
#include <stddef.h>

#include "gw_admission.h"
#include "gw_router.h"
#include "tk_envelope.h"
#include "tk_ids.h"
#include "tk_text.h"

/** Caller-owned; its request points into itself, the body and the admitted request. */
typedef struct {
    tk_request request;
    json_t *body_root;                      /* owned: the body's strings live here */
    char key[TK_PRINCIPAL_BUF_SIZE];        /* Kafka key: ticket id, or team / "admin" */
    char response_id[TK_OBJECT_ID_LEN + 1]; /* a ticket response's new _id */
    char command_id[TK_OBJECT_ID_LEN + 1];  /* an update's or resolve's id: effect-once, eventIds */
} gw_command;

/**
 * @brief Validates body (for routes that have one) and builds the command of
 * route for admitted (borrowed, must outlive command). New ids are chosen
 * here: a ticket's _id, a ticket response's _id.
 * @returns 0, or -1 with err (a person's sentence, answered with 400).
 * Close command in every case.
 */
int gw_command_init(gw_command *command, const gw_route *route, const gw_admitted *admitted, const char *body,
                    size_t body_len, char *err, size_t err_len);

/** @returns the message as compact JSON, malloc'd, or NULL when out of memory. */
char *gw_command_payload_new(const gw_command *command);

/** @brief Frees what init took. Accepts a command whose init failed. */
void gw_command_close(gw_command *command);

#endif
