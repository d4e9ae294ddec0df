/* gw_auth: Bearer JWT verification with a pinned algorithm. Tokens are made
 * here with libjwt (or by hand when libjwt would refuse to make them); the
 * RSA and EC keys are throw-away files in tests/data/keys/. */
#include "test_support.h"

#include <jwt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw_auth.h"

#define MSG_MISSING "Authorization token is missing"
#define MSG_INVALID "Invalid token"
#define MSG_EXPIRED "Token has expired"

/* 48 bytes, as a production secret would be (the gateway wants >= 32). */
static const char SECRET[] = "k3Vq9yZb2Lr7Tn4Xw8Hd1Jf6Gs0Pc5Ma-unit-test-0001";
static const char OTHER_SECRET[] = "k3Vq9yZb2Lr7Tn4Xw8Hd1Jf6Gs0Pc5Ma-unit-test-0002";

typedef struct {
    char *rs256_private, *rs256_public, *rs256_other_private, *es256_private, *es256_public;
    size_t rs256_private_len, rs256_public_len, rs256_other_private_len, es256_private_len, es256_public_len;
} keys;

static keys KEYS;

static char *read_key(const char *name, size_t *len) {
    char *relative = tu_format("keys/%s", name);
    char *path = tu_data_path(relative);
    char *text = tu_read_file(path, len);
    free(path);
    free(relative);
    return text;
}

static int load_keys(void **state) {
    (void)state;
    KEYS.rs256_private = read_key("rs256-private.pem", &KEYS.rs256_private_len);
    KEYS.rs256_public = read_key("rs256-public.pem", &KEYS.rs256_public_len);
    KEYS.rs256_other_private = read_key("rs256-other-private.pem", &KEYS.rs256_other_private_len);
    KEYS.es256_private = read_key("es256-private.pem", &KEYS.es256_private_len);
    KEYS.es256_public = read_key("es256-public.pem", &KEYS.es256_public_len);
    return 0;
}

static int free_keys(void **state) {
    (void)state;
    free(KEYS.rs256_private);
    free(KEYS.rs256_public);
    free(KEYS.rs256_other_private);
    free(KEYS.es256_private);
    free(KEYS.es256_public);
    return 0;
}

/* ---- making tokens ---- */

static long long now_seconds(void) { return (long long)time(NULL); }

/* Signs claims (a JSON object text) with libjwt. @returns the token, malloc'd. */
static char *sign(jwt_alg_t alg, const void *key, size_t key_len, const char *claims_json) {
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_new(&jwt), 0);
    if (jwt_add_grants_json(jwt, claims_json) != 0) fail_msg("libjwt refused claims %s", claims_json);
    assert_int_equal(jwt_set_alg(jwt, alg, key, (int)key_len), 0);
    char *token = jwt_encode_str(jwt);
    assert_non_null(token);
    jwt_free(jwt);
    return token;
}

static char *sign_hs256(const char *claims_json) { return sign(JWT_ALG_HS256, SECRET, strlen(SECRET), claims_json); }

/* Claims for a customer of team-a valid for an hour, with extra members appended. */
static char *customer_claims(const char *extra) {
    return tu_format(
        "{\"sub\":\"671fa1c8f1c2b3a5e4d90001\",\"role\":\"customer\",\"team\":\"team-a\",\"exp\":%lld%s%s}",
        now_seconds() + 3600, extra[0] ? "," : "", extra);
}

static const char BASE64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *base64url(const char *text) {
    size_t len = strlen(text);
    char *out = malloc(len * 4 / 3 + 4);
    assert_non_null(out);
    size_t o = 0;
    const unsigned char *in = (const unsigned char *)text;
    for (size_t i = 0; i < len; i += 3) {
        unsigned int chunk = (unsigned int)in[i] << 16;
        if (i + 1 < len) chunk |= (unsigned int)in[i + 1] << 8;
        if (i + 2 < len) chunk |= in[i + 2];
        out[o++] = BASE64URL[(chunk >> 18) & 63];
        out[o++] = BASE64URL[(chunk >> 12) & 63];
        if (i + 1 < len) out[o++] = BASE64URL[(chunk >> 6) & 63];
        if (i + 2 < len) out[o++] = BASE64URL[chunk & 63];
    }
    out[o] = '\0';
    return out;
}

/* header.payload.signature from JSON texts, signature as given. */
static char *raw_token(const char *header_json, const char *payload_json, const char *signature) {
    char *header = base64url(header_json);
    char *payload = base64url(payload_json);
    char *token = tu_format("%s.%s.%s", header, payload, signature);
    free(payload);
    free(header);
    return token;
}

/* ---- checking ---- */

static gw_auth hs256_auth(void) {
    gw_auth auth;
    assert_int_equal(gw_auth_init(&auth, "HS256", SECRET, strlen(SECRET)), 0);
    return auth;
}

static int check_header(gw_auth *auth, const char *header, gw_identity *identity, const char **message) {
    memset(identity, 0, sizeof *identity);
    *message = NULL;
    return gw_auth_check(auth, header, identity, message);
}

static int check_token(gw_auth *auth, const char *token, gw_identity *identity, const char **message) {
    char *header = tu_format("Bearer %s", token);
    int rc = check_header(auth, header, identity, message);
    free(header);
    return rc;
}

static void assert_accepted(gw_auth *auth, const char *token, gw_identity *identity) {
    const char *message = NULL;
    int rc = check_token(auth, token, identity, &message);
    if (rc != 0) fail_msg("token refused (%d, %s): %s", rc, message ? message : "-", token);
}

static void assert_refused(gw_auth *auth, const char *token, const char *expected_message) {
    gw_identity identity;
    const char *message = NULL;
    int rc = check_token(auth, token, &identity, &message);
    if (rc != 401) fail_msg("token accepted (%d), expected 401 %s: %s", rc, expected_message, token);
    assert_non_null(message);
    assert_string_equal(message, expected_message);
}

/* HS256-signs claims and expects the refusal message. */
static void assert_claims_refused(const char *claims_json, const char *expected_message) {
    gw_auth auth = hs256_auth();
    char *token = sign_hs256(claims_json);
    gw_identity identity;
    const char *message = NULL;
    int rc = check_token(&auth, token, &identity, &message);
    if (rc != 401) fail_msg("claims accepted, expected %s: %s", expected_message, claims_json);
    assert_string_equal(message, expected_message);
    free(token);
}

/* ---- init ---- */

static void test_init_pins_supported_algorithms(void **state) {
    (void)state;
    gw_auth auth;
    assert_int_equal(gw_auth_init(&auth, "HS256", SECRET, strlen(SECRET)), 0);
    assert_int_equal(auth.algorithm, JWT_ALG_HS256);
    assert_int_equal(gw_auth_init(&auth, "RS256", KEYS.rs256_public, KEYS.rs256_public_len), 0);
    assert_int_equal(auth.algorithm, JWT_ALG_RS256);
    assert_int_equal(gw_auth_init(&auth, "ES256", KEYS.es256_public, KEYS.es256_public_len), 0);
    assert_int_equal(auth.algorithm, JWT_ALG_ES256);

    static const char *const refused[] = {"none", "HS384", "HS512", "RS384", "RS512", "ES384", "PS256", "", "hs"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        if (gw_auth_init(&auth, refused[i], SECRET, strlen(SECRET)) == 0)
            fail_msg("algorithm '%s' accepted", refused[i]);
    }
    assert_int_equal(gw_auth_init(&auth, NULL, SECRET, strlen(SECRET)), -1);
    /* An empty key would make libjwt skip the signature check. */
    assert_int_equal(gw_auth_init(&auth, "HS256", SECRET, 0), -1);
    assert_int_equal(gw_auth_init(&auth, "HS256", NULL, 10), -1);
}

/* ---- good tokens ---- */

static void test_valid_customer(void **state) {
    (void)state;
    gw_auth auth = hs256_auth();
    char *claims = customer_claims("\"iat\":0");
    char *token = sign_hs256(claims);
    gw_identity identity;
    assert_accepted(&auth, token, &identity);
    assert_string_equal(identity.id, "671fa1c8f1c2b3a5e4d90001");
    assert_string_equal(identity.team, "team-a");
    assert_false(identity.is_admin);
    free(token);
    free(claims);
}

static void test_valid_admin(void **state) {
    (void)state;
    gw_auth auth = hs256_auth();
    char *claims = tu_format("{\"sub\":\"671fb1d8f1c2b3a5e4d90050\",\"role\":\"admin\",\"exp\":%lld}",
                             now_seconds() + 60);
    char *token = sign_hs256(claims);
    gw_identity identity;
    memset(identity.team, 'X', sizeof identity.team);
    assert_accepted(&auth, token, &identity);
    assert_string_equal(identity.id, "671fb1d8f1c2b3a5e4d90050");
    assert_string_equal(identity.team, "");
    assert_true(identity.is_admin);
    free(token);
    free(claims);

    /* An admin may carry a team. */
    claims = tu_format("{\"sub\":\"boss\",\"role\":\"admin\",\"team\":\"ops\",\"exp\":%lld}", now_seconds() + 60);
    token = sign_hs256(claims);
    assert_accepted(&auth, token, &identity);
    assert_string_equal(identity.team, "ops");
    assert_true(identity.is_admin);
    free(token);
    free(claims);
}

static void test_valid_token_variants(void **state) {
    (void)state;
    gw_auth auth = hs256_auth();
    gw_identity identity;
    const char *message;
    char *claims = customer_claims("");
    char *token = sign_hs256(claims);
    /* The scheme is case-insensitive (RFC 9110), extra spaces before the token are fine. */
    char *header = tu_format("bearer %s", token);
    assert_int_equal(check_header(&auth, header, &identity, &message), 0);
    free(header);
    header = tu_format("BEARER   %s", token);
    assert_int_equal(check_header(&auth, header, &identity, &message), 0);
    free(header);
    free(token);
    free(claims);

    /* NumericDate may have a fraction (RFC 7519). nbf in the past, or within the skew. */
    claims = tu_format("{\"sub\":\"u\",\"role\":\"customer\",\"team\":\"t\",\"exp\":%lld.5,\"nbf\":%lld}",
                       now_seconds() + 60, now_seconds() - 60);
    token = sign_hs256(claims);
    assert_accepted(&auth, token, &identity);
    free(token);
    free(claims);
    claims = customer_claims("\"nbf\":0");
    token = sign_hs256(claims);
    assert_accepted(&auth, token, &identity);
    free(token);
    free(claims);
    char *extra = tu_format("\"nbf\":%lld", now_seconds() + 5);
    claims = customer_claims(extra);
    token = sign_hs256(claims);
    assert_accepted(&auth, token, &identity);
    free(token);
    free(claims);
    free(extra);

    /* Unknown claims are ignored. */
    claims = customer_claims("\"iss\":\"someone\",\"scope\":[\"a\"],\"x\":{\"y\":null}");
    token = sign_hs256(claims);
    assert_accepted(&auth, token, &identity);
    free(token);
    free(claims);
}

static void test_principal_limits(void **state) {
    (void)state;
    gw_auth auth = hs256_auth();
    gw_identity identity;
    /* 128 characters of 4 bytes each: 512 bytes, the most an id can hold. */
    char *longest = tu_repeat("\xf0\x9f\x98\x80", 128);
    char *claims = tu_format("{\"sub\":\"%s\",\"role\":\"customer\",\"team\":\"%s\",\"exp\":%lld}", longest, longest,
                             now_seconds() + 60);
    char *token = sign_hs256(claims);
    assert_accepted(&auth, token, &identity);
    assert_string_equal(identity.id, longest);
    assert_string_equal(identity.team, longest);
    free(token);
    free(claims);
    free(longest);

    char *too_long = tu_repeat("u", 129);
    claims = tu_format("{\"sub\":\"%s\",\"role\":\"customer\",\"team\":\"t\",\"exp\":%lld}", too_long,
                       now_seconds() + 60);
    assert_claims_refused(claims, MSG_INVALID);
    free(claims);
    claims = tu_format("{\"sub\":\"u\",\"role\":\"customer\",\"team\":\"%s\",\"exp\":%lld}", too_long,
                       now_seconds() + 60);
    assert_claims_refused(claims, MSG_INVALID);
    free(claims);
    free(too_long);
}

/* ---- missing header ---- */

static void test_missing_authorization(void **state) {
    (void)state;
    gw_auth auth = hs256_auth();
    char *claims = customer_claims("");
    char *token = sign_hs256(claims);
    char *basic = tu_format("Basic %s", token);
    char *no_space = tu_format("Bearer%s", token);
    const char *headers[] = {NULL,       "",           "Bearer",
                             "Bearer ",  "Bearer    ", "Basic dXNlcjpwYXNz",
                             basic,      no_space,     token /* no scheme at all */,
                             "Token abc"};
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        gw_identity identity;
        const char *message = NULL;
        int rc = check_header(&auth, headers[i], &identity, &message);
        if (rc != 401 || message == NULL || strcmp(message, MSG_MISSING) != 0)
            fail_msg("header '%s': got %d %s", headers[i] ? headers[i] : "(null)", rc, message ? message : "-");
    }
    free(no_space);
    free(basic);
    free(token);
    free(claims);
}

/* ---- bad tokens ---- */

static void test_expired(void **state) {
    (void)state;
    char *claims = tu_format("{\"sub\":\"u\",\"role\":\"customer\",\"team\":\"t\",\"exp\":%lld}", now_seconds() - 10);
    assert_claims_refused(claims, MSG_EXPIRED);
    free(claims);
    claims = tu_format("{\"sub\":\"u\",\"role\":\"admin\",\"exp\":%lld}", now_seconds() - 86400 * 365);
    assert_claims_refused(claims, MSG_EXPIRED);
    free(claims);
    assert_claims_refused("{\"sub\":\"u\",\"role\":\"admin\",\"exp\":0}", MSG_EXPIRED);
    assert_claims_refused("{\"sub\":\"u\",\"role\":\"admin\",\"exp\":-1}", MSG_EXPIRED);
}

static void test_wrong_signature(void **state) {
    (void)state;
    gw_auth auth = hs256_auth();
    char *claims = customer_claims("");
    char *token = sign(JWT_ALG_HS256, OTHER_SECRET, strlen(OTHER_SECRET), claims);
    assert_refused(&auth, token, MSG_INVALID);
    free(token);

    /* A good token with one payload character changed. */
    token = sign_hs256(claims);
    char *dot = strchr(token, '.');
    dot[5] = dot[5] == 'A' ? 'B' : 'A';
    assert_refused(&auth, token, MSG_INVALID);
    free(token);

    /* Signature cut off, or emptied. */
    token = sign_hs256(claims);
    strrchr(token, '.')[1] = '\0';
    assert_refused(&auth, token, MSG_INVALID);
    *strrchr(token, '.') = '\0';
    assert_refused(&auth, token, MSG_INVALID);
    free(token);
    free(claims);
}

static void test_alg_none(void **state) {
    (void)state;
    gw_auth auth = hs256_auth();
    char *claims = customer_claims("");
    static const char *const headers[] = {"{\"alg\":\"none\"}", "{\"alg\":\"none\",\"typ\":\"JWT\"}",
                                          "{\"alg\":\"None\",\"typ\":\"JWT\"}", "{\"alg\":\"NONE\"}"};
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        char *token = raw_token(headers[i], claims, "");
        assert_refused(&auth, token, MSG_INVALID);
        free(token);
        /* With the HS256 signature of a real token pasted on. */
        char *real = sign_hs256(claims);
        char *forged = raw_token(headers[i], claims, strrchr(real, '.') + 1);
        assert_refused(&auth, forged, MSG_INVALID);
        free(forged);
        free(real);
    }
    free(claims);
}

static void test_other_hmac_algorithms(void **state) {
    (void)state;
    /* Same secret, but not the pinned algorithm. */
    gw_auth auth = hs256_auth();
    char *claims = customer_claims("");
    char *token = sign(JWT_ALG_HS384, SECRET, strlen(SECRET), claims);
    assert_refused(&auth, token, MSG_INVALID);
    free(token);
    token = sign(JWT_ALG_HS512, SECRET, strlen(SECRET), claims);
    assert_refused(&auth, token, MSG_INVALID);
    free(token);
    free(claims);
}

static void test_bad_claims(void **state) {
    (void)state;
    long long future = now_seconds() + 3600;
    static const struct {
        const char *name;
        const char *format; /* %lld: a valid exp */
    } cases[] = {
        {"missing exp", "{\"sub\":\"u\",\"role\":\"customer\",\"team\":\"t\"}"},
        {"exp null", "{\"sub\":\"u\",\"role\":\"customer\",\"team\":\"t\",\"exp\":null,\"x\":%lld}"},
        {"exp as string", "{\"sub\":\"u\",\"role\":\"customer\",\"team\":\"t\",\"exp\":\"%lld\"}"},
        {"exp as boolean", "{\"sub\":\"u\",\"role\":\"customer\",\"team\":\"t\",\"exp\":true,\"x\":%lld}"},
        {"nbf in the future", "{\"sub\":\"u\",\"role\":\"customer\",\"team\":\"t\",\"exp\":%lld,\"nbf\":9999999999}"},
        {"nbf as string", "{\"sub\":\"u\",\"role\":\"customer\",\"team\":\"t\",\"exp\":%lld,\"nbf\":\"0\"}"},
        {"missing sub", "{\"role\":\"customer\",\"team\":\"t\",\"exp\":%lld}"},
        {"sub as number", "{\"sub\":12345,\"role\":\"customer\",\"team\":\"t\",\"exp\":%lld}"},
        {"sub null", "{\"sub\":null,\"role\":\"customer\",\"team\":\"t\",\"exp\":%lld}"},
        {"sub empty", "{\"sub\":\"\",\"role\":\"customer\",\"team\":\"t\",\"exp\":%lld}"},
        {"sub blank", "{\"sub\":\"  \",\"role\":\"customer\",\"team\":\"t\",\"exp\":%lld}"},
        {"missing role", "{\"sub\":\"u\",\"team\":\"t\",\"exp\":%lld}"},
        {"role unknown", "{\"sub\":\"u\",\"role\":\"superuser\",\"team\":\"t\",\"exp\":%lld}"},
        {"role wrong case", "{\"sub\":\"u\",\"role\":\"Admin\",\"exp\":%lld}"},
        {"role as array", "{\"sub\":\"u\",\"role\":[\"admin\"],\"exp\":%lld}"},
        {"customer without team", "{\"sub\":\"u\",\"role\":\"customer\",\"exp\":%lld}"},
        {"customer team null", "{\"sub\":\"u\",\"role\":\"customer\",\"team\":null,\"exp\":%lld}"},
        {"customer team empty", "{\"sub\":\"u\",\"role\":\"customer\",\"team\":\"\",\"exp\":%lld}"},
        {"team as number", "{\"sub\":\"u\",\"role\":\"customer\",\"team\":7,\"exp\":%lld}"},
        {"admin team as number", "{\"sub\":\"u\",\"role\":\"admin\",\"team\":7,\"exp\":%lld}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *claims = strstr(cases[i].format, "%lld") ? tu_format(cases[i].format, future)
                                                       : tu_format("%s", cases[i].format);
        gw_auth auth = hs256_auth();
        char *token = sign_hs256(claims);
        gw_identity identity;
        const char *message = NULL;
        int rc = check_token(&auth, token, &identity, &message);
        if (rc != 401 || message == NULL || strcmp(message, MSG_INVALID) != 0)
            fail_msg("%s: got %d %s for %s", cases[i].name, rc, message ? message : "-", claims);
        free(token);
        free(claims);
    }
}

static void test_malformed_tokens(void **state) {
    (void)state;
    gw_auth auth = hs256_auth();
    static const char *const tokens[] = {
        "abc", "a.b", "a.b.c", "a.b.c.d", "...", "eyJhbGciOiJIUzI1NiJ9..", "eyJhbGciOiJIUzI1NiJ9.e30.", "!!!.???.***",
    };
    for (size_t i = 0; i < sizeof tokens / sizeof tokens[0]; i++) assert_refused(&auth, tokens[i], MSG_INVALID);

    /* Well-formed parts that are not what a JWT holds. */
    char *claims = customer_claims("");
    char *not_object = raw_token("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", "[1,2]", "c2ln");
    assert_refused(&auth, not_object, MSG_INVALID);
    char *bad_typ = raw_token("{\"alg\":\"HS256\",\"typ\":\"JWE\"}", claims, "c2ln");
    assert_refused(&auth, bad_typ, MSG_INVALID);
    char *not_json = raw_token("{\"alg\":\"HS256\"", claims, "c2ln");
    assert_refused(&auth, not_json, MSG_INVALID);
    free(not_json);
    free(bad_typ);
    free(not_object);
    free(claims);
}

/* Finds the padding that brings the token to exactly `target` bytes or just under. */
static char *token_near_size(size_t target, int above) {
    for (size_t pad = target * 3 / 4 - 200; pad < target; pad++) {
        char *filler = tu_repeat("p", pad);
        char *extra = tu_format("\"pad\":\"%s\"", filler);
        char *claims = customer_claims(extra);
        char *token = sign_hs256(claims);
        free(claims);
        free(extra);
        free(filler);
        size_t len = strlen(token);
        if ((!above && len <= target) || (above && len > target)) {
            if (above) return token;
            /* Keep growing while still within the target. */
            char *next_filler = tu_repeat("p", pad + 1);
            char *next_extra = tu_format("\"pad\":\"%s\"", next_filler);
            char *next_claims = customer_claims(next_extra);
            char *next = sign_hs256(next_claims);
            size_t next_len = strlen(next);
            free(next);
            free(next_claims);
            free(next_extra);
            free(next_filler);
            if (next_len > target) return token;
        }
        free(token);
    }
    fail_msg("could not build a token near %zu bytes", target);
    return NULL;
}

static void test_token_size_limit(void **state) {
    (void)state;
    gw_auth auth = hs256_auth();
    gw_identity identity;
    char *largest = token_near_size(GW_TOKEN_MAX_BYTES, 0);
    assert_true(strlen(largest) <= GW_TOKEN_MAX_BYTES);
    assert_true(strlen(largest) >= GW_TOKEN_MAX_BYTES - 2);
    assert_accepted(&auth, largest, &identity);
    char *too_large = token_near_size(GW_TOKEN_MAX_BYTES, 1);
    assert_true(strlen(too_large) > GW_TOKEN_MAX_BYTES);
    assert_refused(&auth, too_large, MSG_INVALID);
    free(too_large);
    free(largest);

    /* Far larger: refused before any decoding. */
    char *huge = tu_repeat("A", 1 << 20);
    assert_refused(&auth, huge, MSG_INVALID);
    free(huge);
}

/* ---- key rotation ---- */

static void test_previous_key_accepted_while_rotating(void **state) {
    (void)state;
    gw_auth auth = hs256_auth();
    char *claims = customer_claims("");
    char *old_token = sign(JWT_ALG_HS256, OTHER_SECRET, strlen(OTHER_SECRET), claims);
    char *new_token = sign_hs256(claims);
    assert_refused(&auth, old_token, MSG_INVALID);

    assert_int_equal(gw_auth_add_key(&auth, OTHER_SECRET, strlen(OTHER_SECRET)), 0);
    gw_identity identity;
    assert_accepted(&auth, old_token, &identity);
    assert_accepted(&auth, new_token, &identity);
    /* Two keys at most; empty keys never. */
    static const char third[] = "a-third-secret-that-is-long-enough-for-hs256!!";
    assert_int_equal(gw_auth_add_key(&auth, third, strlen(third)), -1);
    char *third_token = sign(JWT_ALG_HS256, third, strlen(third), claims);
    assert_refused(&auth, third_token, MSG_INVALID);
    gw_auth fresh = hs256_auth();
    assert_int_equal(gw_auth_add_key(&fresh, third, 0), -1);
    assert_int_equal(gw_auth_add_key(&fresh, NULL, 5), -1);

    /* Expiry and claims are still checked with the previous key. */
    char *expired = tu_format("{\"sub\":\"u\",\"role\":\"admin\",\"exp\":%lld}", now_seconds() - 5);
    char *old_expired = sign(JWT_ALG_HS256, OTHER_SECRET, strlen(OTHER_SECRET), expired);
    assert_refused(&auth, old_expired, MSG_EXPIRED);

    free(old_expired);
    free(expired);
    free(third_token);
    free(new_token);
    free(old_token);
    free(claims);
}

/* ---- the cache of verified tokens ---- */

/* A customer token (exp = now + 3600) with extra members from format and iat. */
static char *policy_token(const char *format, long long iat) {
    char *extra = tu_format(format, iat);
    char *claims = customer_claims(extra);
    char *token = sign_hs256(claims);
    free(claims);
    free(extra);
    return token;
}

/* Pinned issuer and audience, iat not ahead, lifetime bounded. */
static void test_policy(void **state) {
    (void)state;
    gw_auth auth = hs256_auth();
    gw_identity identity;
    gw_auth_set_policy(&auth, "https://id.example/", "ticket-api", 3600);
    long long now = now_seconds();
    const char *good_extras[] = {
        "\"iss\":\"https://id.example/\",\"aud\":\"ticket-api\",\"iat\":%lld",
        "\"iss\":\"https://id.example/\",\"aud\":[\"other\",\"ticket-api\"],\"iat\":%lld",
    };
    const char *bad_extras[] = {
        "\"iss\":\"https://id.other/\",\"aud\":\"ticket-api\",\"iat\":%lld",
        "\"aud\":\"ticket-api\",\"iat\":%lld",
        "\"iss\":\"https://id.example/\",\"aud\":\"ticket-apix\",\"iat\":%lld",
        "\"iss\":\"https://id.example/\",\"aud\":[\"other\"],\"iat\":%lld",
        "\"iss\":\"https://id.example/\",\"aud\":[1],\"iat\":%lld",
        "\"iss\":\"https://id.example/\",\"aud\":\"ticket-api\",\"iat\":\"%lld\"",
        "\"iss\":\"https://id.example/\",\"aud\":\"ticket-api\",\"x\":%lld", /* no iat, lifetime bounded */
    };
    for (size_t i = 0; i < sizeof good_extras / sizeof good_extras[0]; i++) {
        char *token = policy_token(good_extras[i], now); /* exp - iat = 3600: the bound exactly */
        assert_accepted(&auth, token, &identity);
        free(token);
    }
    for (size_t i = 0; i < sizeof bad_extras / sizeof bad_extras[0]; i++) {
        char *token = policy_token(bad_extras[i], now);
        assert_refused(&auth, token, "Invalid token");
        free(token);
    }
    /* iat an hour ahead; a lifetime one second too long */
    const char *pinned = "\"iss\":\"https://id.example/\",\"aud\":\"ticket-api\",\"iat\":%lld";
    long long iats[] = {now + 3600, now - 1};
    for (size_t i = 0; i < 2; i++) {
        char *token = policy_token(pinned, iats[i]);
        assert_refused(&auth, token, "Invalid token");
        free(token);
    }
    gw_auth_close(&auth);
}

static void test_cache_settings(void **state) {
    (void)state;
    gw_auth auth = hs256_auth();
    assert_int_equal(gw_auth_enable_cache(&auth, 0), 0); /* no cache */
    assert_null(auth.cache);
    assert_int_equal(gw_auth_enable_cache(&auth, 3), -1);                        /* not a power of two */
    assert_int_equal(gw_auth_enable_cache(&auth, GW_AUTH_CACHE_SHARDS / 2), -1); /* fewer than the shards */
    assert_int_equal(gw_auth_enable_cache(&auth, GW_AUTH_CACHE_SHARDS), 0);
    gw_auth_close(&auth);
    gw_auth_close(&auth); /* twice */
    gw_auth zeroed;
    memset(&zeroed, 0, sizeof zeroed);
    gw_auth_close(&zeroed);
    gw_auth_close(NULL);
}

static void test_cache_answers_like_the_check(void **state) {
    (void)state;
    gw_auth auth = hs256_auth();
    assert_int_equal(gw_auth_enable_cache(&auth, 64), 0);
    char *claims = customer_claims("");
    char *token = sign_hs256(claims);
    gw_identity first, second;
    assert_accepted(&auth, token, &first);
    assert_accepted(&auth, token, &second); /* from the cache */
    assert_memory_equal(&first, &second, sizeof first);
    assert_string_equal(second.team, "team-a");

    /* Only the exact token hits: a longer or altered one is verified, and refused. */
    char *longer = tu_format("%sx", token);
    assert_refused(&auth, longer, MSG_INVALID);
    char *altered = tu_format("%s", token);
    char *signature = strrchr(altered, '.') + 1;
    signature[0] = signature[0] == 'A' ? 'B' : 'A';
    assert_refused(&auth, altered, MSG_INVALID);
    assert_refused(&auth, altered, MSG_INVALID); /* a refusal is not remembered as a success */
    size_t len = strlen(token);
    token[len - 1] = '\0'; /* a prefix of a cached token */
    assert_refused(&auth, token, MSG_INVALID);

    /* Expired and invalid tokens are never cached. */
    char *old = tu_format("{\"sub\":\"u\",\"role\":\"admin\",\"exp\":%lld}", now_seconds() - 5);
    char *expired = sign_hs256(old);
    assert_refused(&auth, expired, MSG_EXPIRED);
    assert_refused(&auth, expired, MSG_EXPIRED);
    free(expired);
    free(old);
    free(altered);
    free(longer);
    free(token);
    free(claims);
    gw_auth_close(&auth);
}

/* A cached token is refused once its exp passes, not GW_AUTH_CACHE_SECONDS later. */
static void test_cache_never_outlives_exp(void **state) {
    (void)state;
    gw_auth auth = hs256_auth();
    assert_int_equal(gw_auth_enable_cache(&auth, 64), 0);
    long long exp = now_seconds() + 1;
    char *claims = tu_format("{\"sub\":\"u\",\"role\":\"customer\",\"team\":\"t\",\"exp\":%lld}", exp);
    char *token = sign_hs256(claims);
    gw_identity identity;
    assert_accepted(&auth, token, &identity);
    while (now_seconds() < exp) {
        struct timespec nap = {0, 50 * 1000000L};
        nanosleep(&nap, NULL);
    }
    assert_refused(&auth, token, MSG_EXPIRED);
    free(token);
    free(claims);
    gw_auth_close(&auth);
}

/* More tokens than slots: entries replace each other, and a hit always gives
 * the identity of the token presented. */
#define CACHE_TOKENS 64
#define CACHE_THREADS 4
#define CACHE_ROUNDS 1500

typedef struct {
    gw_auth *auth;
    char **tokens;
    int seed;
    int mismatches;
} cache_worker;

static void *check_tokens(void *arg) {
    cache_worker *worker = arg;
    unsigned int state = (unsigned int)worker->seed;
    for (int round = 0; round < CACHE_ROUNDS; round++) {
        state = state * 1103515245u + 12345u;
        int i = (int)((state >> 16) % CACHE_TOKENS);
        char *header = tu_format("Bearer %s", worker->tokens[i]);
        gw_identity identity;
        const char *message = NULL;
        char expected[16];
        snprintf(expected, sizeof expected, "user-%d", i);
        if (gw_auth_check(worker->auth, header, &identity, &message) != 0 || strcmp(identity.id, expected) != 0)
            worker->mismatches++;
        free(header);
    }
    return NULL;
}

static void test_cache_shared_by_threads(void **state) {
    (void)state;
    gw_auth auth = hs256_auth();
    assert_int_equal(gw_auth_enable_cache(&auth, GW_AUTH_CACHE_SHARDS), 0);
    char *tokens[CACHE_TOKENS];
    for (int i = 0; i < CACHE_TOKENS; i++) {
        char *claims = tu_format("{\"sub\":\"user-%d\",\"role\":\"customer\",\"team\":\"team-%d\",\"exp\":%lld}", i,
                                 i % 3, now_seconds() + 600);
        tokens[i] = sign_hs256(claims);
        free(claims);
    }
    pthread_t threads[CACHE_THREADS];
    cache_worker workers[CACHE_THREADS];
    for (int t = 0; t < CACHE_THREADS; t++) {
        workers[t] = (cache_worker){&auth, tokens, t + 1, 0};
        assert_int_equal(pthread_create(&threads[t], NULL, check_tokens, &workers[t]), 0);
    }
    int mismatches = 0;
    for (int t = 0; t < CACHE_THREADS; t++) {
        pthread_join(threads[t], NULL);
        mismatches += workers[t].mismatches;
    }
    assert_int_equal(mismatches, 0);
    for (int i = 0; i < CACHE_TOKENS; i++) free(tokens[i]);
    gw_auth_close(&auth);
}

/* ---- public keys ---- */

static void test_rs256(void **state) {
    (void)state;
    gw_auth auth;
    assert_int_equal(gw_auth_init(&auth, "RS256", KEYS.rs256_public, KEYS.rs256_public_len), 0);
    char *claims = customer_claims("");
    gw_identity identity;

    char *token = sign(JWT_ALG_RS256, KEYS.rs256_private, KEYS.rs256_private_len, claims);
    assert_accepted(&auth, token, &identity);
    assert_string_equal(identity.team, "team-a");
    free(token);

    /* Signed by another private key. */
    token = sign(JWT_ALG_RS256, KEYS.rs256_other_private, KEYS.rs256_other_private_len, claims);
    assert_refused(&auth, token, MSG_INVALID);
    free(token);

    /* Same key, other RSA algorithm. */
    token = sign(JWT_ALG_RS512, KEYS.rs256_private, KEYS.rs256_private_len, claims);
    assert_refused(&auth, token, MSG_INVALID);
    free(token);

    /* Expiry is still checked with public keys. */
    char *old = tu_format("{\"sub\":\"u\",\"role\":\"admin\",\"exp\":%lld}", now_seconds() - 5);
    token = sign(JWT_ALG_RS256, KEYS.rs256_private, KEYS.rs256_private_len, old);
    assert_refused(&auth, token, MSG_EXPIRED);
    free(token);
    free(old);

    /* The HS256 gateway does not take RS256 tokens. */
    gw_auth hs = hs256_auth();
    token = sign(JWT_ALG_RS256, KEYS.rs256_private, KEYS.rs256_private_len, claims);
    assert_refused(&hs, token, MSG_INVALID);
    free(token);
    free(claims);
}

/* The classic algorithm confusion: an attacker who knows the public key PEM
 * uses it as an HMAC secret. libjwt alone would verify such a token; the
 * pinned algorithm must refuse it. */
static void test_rs256_refuses_hs256_signed_with_the_public_key(void **state) {
    (void)state;
    char *claims = tu_format("{\"sub\":\"attacker\",\"role\":\"admin\",\"exp\":%lld}", now_seconds() + 3600);
    char *forged = sign(JWT_ALG_HS256, KEYS.rs256_public, KEYS.rs256_public_len, claims);

    /* Precondition: libjwt by itself accepts the forgery with the PEM as key. */
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_decode(&jwt, forged, (const unsigned char *)KEYS.rs256_public, (int)KEYS.rs256_public_len), 0);
    assert_int_equal(jwt_get_alg(jwt), JWT_ALG_HS256);
    jwt_free(jwt);

    gw_auth auth;
    assert_int_equal(gw_auth_init(&auth, "RS256", KEYS.rs256_public, KEYS.rs256_public_len), 0);
    assert_refused(&auth, forged, MSG_INVALID);
    free(forged);

    /* Also with the key only accepted as the previous one during a rotation. */
    gw_auth rotating;
    assert_int_equal(gw_auth_init(&rotating, "RS256", KEYS.es256_public, KEYS.es256_public_len), 0);
    assert_int_equal(gw_auth_add_key(&rotating, KEYS.rs256_public, KEYS.rs256_public_len), 0);
    forged = sign(JWT_ALG_HS256, KEYS.rs256_public, KEYS.rs256_public_len, claims);
    assert_refused(&rotating, forged, MSG_INVALID);
    free(forged);

    /* Same attack against an ES256 gateway. */
    forged = sign(JWT_ALG_HS256, KEYS.es256_public, KEYS.es256_public_len, claims);
    assert_int_equal(gw_auth_init(&auth, "ES256", KEYS.es256_public, KEYS.es256_public_len), 0);
    assert_refused(&auth, forged, MSG_INVALID);
    free(forged);
    free(claims);
}

static void test_es256(void **state) {
    (void)state;
    gw_auth auth;
    assert_int_equal(gw_auth_init(&auth, "ES256", KEYS.es256_public, KEYS.es256_public_len), 0);
    char *claims = customer_claims("");
    gw_identity identity;
    char *token = sign(JWT_ALG_ES256, KEYS.es256_private, KEYS.es256_private_len, claims);
    assert_accepted(&auth, token, &identity);
    free(token);
    /* An RS256 token against the EC key. */
    token = sign(JWT_ALG_RS256, KEYS.rs256_private, KEYS.rs256_private_len, claims);
    assert_refused(&auth, token, MSG_INVALID);
    free(token);
    free(claims);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_pins_supported_algorithms),
        cmocka_unit_test(test_valid_customer),
        cmocka_unit_test(test_valid_admin),
        cmocka_unit_test(test_valid_token_variants),
        cmocka_unit_test(test_principal_limits),
        cmocka_unit_test(test_missing_authorization),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_wrong_signature),
        cmocka_unit_test(test_alg_none),
        cmocka_unit_test(test_other_hmac_algorithms),
        cmocka_unit_test(test_bad_claims),
        cmocka_unit_test(test_malformed_tokens),
        cmocka_unit_test(test_token_size_limit),
        cmocka_unit_test(test_previous_key_accepted_while_rotating),
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_cache_settings),
        cmocka_unit_test(test_cache_answers_like_the_check),
        cmocka_unit_test(test_cache_never_outlives_exp),
        cmocka_unit_test(test_cache_shared_by_threads),
        cmocka_unit_test(test_rs256),
        cmocka_unit_test(test_rs256_refuses_hs256_signed_with_the_public_key),
        cmocka_unit_test(test_es256),
    };
    return cmocka_run_group_tests(tests, load_keys, free_keys);
}
