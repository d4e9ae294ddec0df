/* Fuzz target: JWT checks (gw_auth_check). Even first byte: the input is the
 * raw token (signature checks, parsing). Odd first byte: the input is a claims
 * object, signed here with the right key, so the claim checks themselves are
 * exercised. Whatever is accepted must carry a valid identity. */
#include <assert.h>
#include <jwt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char SECRET[] = "fuzzing-secret-of-at-least-32-bytes-long";

static char *sign_claims(const uint8_t *data, size_t size) {
    char *claims = strndup((const char *)data, size);
    jwt_t *jwt = NULL;
    char *token = NULL;
    if (claims == NULL || jwt_new(&jwt) != 0) goto cleanup;
    if (jwt_add_grants_json(jwt, claims) != 0) goto cleanup;
    if (jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)SECRET, (int)strlen(SECRET)) != 0) goto cleanup;
    token = jwt_encode_str(jwt);
cleanup:
    jwt_free(jwt);
    free(claims);
    return token;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    gw_auth auth;
    assert(gw_auth_init(&auth, "HS256", SECRET, strlen(SECRET)) == 0);
    char *token = (data[0] & 1) ? sign_claims(data + 1, size - 1) : strndup((const char *)data + 1, size - 1);
    if (token == NULL) return 0;
    size_t header_len = strlen(token) + 8;
    char *header = malloc(header_len);
    snprintf(header, header_len, "Bearer %s", token);
    gw_identity identity;
    memset(&identity, 0, sizeof identity);
    const char *message = NULL;
    int status = gw_auth_check(&auth, header, &identity, &message);
    if (status == 0) {
        assert(identity.id[0] != '\0');
        assert(identity.is_admin || identity.team[0] != '\0');
    } else {
        assert(status == 401 && message != NULL);
    }
    free(header);
    free(token);
    return 0;
}
