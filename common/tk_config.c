/* tk_config — every setting of both binaries, read from the environment once
 * at start and validated with messages that name the variable. */
#include "tk_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tk_secret.h"

#define JWT_SECRET_MIN_BYTES 32

/* Trust settings, defined at the end of this file. */
static int load_gateway_trust(tk_gateway_config *config, char *err, size_t err_len);
static int load_worker_trust(tk_worker_config *config, char *err, size_t err_len);

static const char *env_string(const char *name, const char *fallback) {
    const char *value = getenv(name);
    return value != NULL && value[0] != '\0' ? value : fallback;
}

static int env_int(const char *name, int fallback, int min, int max, int *out, char *err, size_t err_len) {
    const char *text = getenv(name);
    if (text == NULL || text[0] == '\0') {
        *out = fallback;
        return 0;
    }
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || value < min || value > max) {
        snprintf(err, err_len, "%s must be an integer from %d to %d (got '%.32s')", name, min, max, text);
        return -1;
    }
    *out = (int)value;
    return 0;
}

static int load_log_level(tk_log_level *out, char *err, size_t err_len) {
    const char *text = env_string("LOG_LEVEL", "info");
    if (tk_log_level_parse(text, out) != 0) {
        snprintf(err, err_len, "LOG_LEVEL must be debug, info, warn or error (got '%.32s')", text);
        return -1;
    }
    return 0;
}

/* A PEM public key file (JWT_PUBLIC_KEY_FILE, JWT_PREVIOUS_PUBLIC_KEY_FILE). */
static int read_key_file(const char *variable, const char *path, char **out, size_t *out_len, char *err,
                         size_t err_len) {
    if (tk_secret_read_file(variable, path, false, out, out_len, err, err_len) != 0) return -1;
    if (strstr(*out, "-----BEGIN") != NULL) return 0;
    snprintf(err, err_len, "%s: '%s' is not a PEM file", variable, path);
    free(*out);
    *out = NULL;
    *out_len = 0;
    return -1;
}

/* Exactly one key source, pinned algorithm: no key means no start, never a
 * built-in default. */
static int load_previous_key(tk_gateway_config *config, bool is_secret, char *err, size_t err_len) {
    const char *name = is_secret ? "JWT_PREVIOUS_SECRET" : "JWT_PREVIOUS_PUBLIC_KEY_FILE";
    const char *other = is_secret ? "JWT_PREVIOUS_PUBLIC_KEY_FILE" : "JWT_PREVIOUS_SECRET";
    const char *value = env_string(name, NULL);
    if (env_string(other, NULL) != NULL || (!is_secret && env_string("JWT_PREVIOUS_SECRET_FILE", NULL) != NULL)) {
        snprintf(err, err_len, "%s does not match the current key type (use %s)", other, name);
        return -1;
    }
    if (!is_secret) {
        if (value == NULL) return 0;
        return read_key_file(name, value, &config->jwt_previous_key, &config->jwt_previous_key_len, err, err_len);
    }
    if (tk_secret_load(name, &config->jwt_previous_key, &config->jwt_previous_key_len, err, err_len) != 0) return -1;
    if (config->jwt_previous_key != NULL && config->jwt_previous_key_len < JWT_SECRET_MIN_BYTES) {
        snprintf(err, err_len, "JWT_PREVIOUS_SECRET is too short: at least %d bytes required", JWT_SECRET_MIN_BYTES);
        return -1;
    }
    return 0;
}

static int load_jwt_key(tk_gateway_config *config, char *err, size_t err_len) {
    const char *key_file = env_string("JWT_PUBLIC_KEY_FILE", NULL);
    /* JWT_SECRET or JWT_SECRET_FILE (a Docker secret). */
    if (tk_secret_load("JWT_SECRET", &config->jwt_key, &config->jwt_key_len, err, err_len) != 0) return -1;
    if (config->jwt_key != NULL && key_file != NULL) {
        snprintf(err, err_len, "set either JWT_SECRET or JWT_PUBLIC_KEY_FILE, not both");
        return -1;
    }
    if (config->jwt_key == NULL && key_file == NULL) {
        snprintf(err, err_len,
                 "no JWT key: set JWT_SECRET (HS256, at least %d bytes), JWT_SECRET_FILE or JWT_PUBLIC_KEY_FILE "
                 "(RS256/ES256 PEM)",
                 JWT_SECRET_MIN_BYTES);
        return -1;
    }
    if (config->jwt_key != NULL) {
        if (config->jwt_key_len < JWT_SECRET_MIN_BYTES) {
            snprintf(err, err_len, "JWT_SECRET is too short: %zu bytes, at least %d required", config->jwt_key_len,
                     JWT_SECRET_MIN_BYTES);
            return -1;
        }
        config->jwt_algorithm = "HS256";
        return load_previous_key(config, true, err, err_len);
    }
    config->jwt_algorithm = env_string("JWT_ALG", "RS256");
    if (strcmp(config->jwt_algorithm, "RS256") != 0 && strcmp(config->jwt_algorithm, "ES256") != 0) {
        snprintf(err, err_len, "JWT_ALG must be RS256 or ES256 with JWT_PUBLIC_KEY_FILE (got '%.16s')",
                 config->jwt_algorithm);
        return -1;
    }
    if (read_key_file("JWT_PUBLIC_KEY_FILE", key_file, &config->jwt_key, &config->jwt_key_len, err, err_len) != 0)
        return -1;
    return load_previous_key(config, false, err, err_len);
}

/* Log level, the token keys, the command keys and the Kafka security. */
static int load_gateway_secrets(tk_gateway_config *config, char *err, size_t err_len) {
    if (load_log_level(&config->log_level, err, err_len) != 0 || load_jwt_key(config, err, err_len) != 0 ||
        load_gateway_trust(config, err, err_len) != 0)
        return -1;
    return tk_kafka_security_load(&config->kafka_security, err, err_len);
}

/* 128 KiB admits every body the contract allows: a create's 10,300 code points,
 * each sent as an escaped surrogate pair (12 bytes), make about 121 KiB. */
#define MAX_BODY_KIB_DEFAULT 128

int tk_gateway_config_load(tk_gateway_config *config, char *err, size_t err_len) {
    int max_body_kib = 0;
    int rate_per_second = 0, rate_burst = 0;
    memset(config, 0, sizeof *config);
    config->bind_address = env_string("BIND_ADDRESS", "0.0.0.0");
    config->kafka_brokers = env_string("KAFKA_BROKERS", "127.0.0.1:9092");
    if (env_int("PORT", 8000, 1, 65535, &config->port, err, err_len) != 0 ||
        env_int("REQUEST_TIMEOUT_MS", 5000, 10, 600000, &config->request_timeout_ms, err, err_len) != 0 ||
        env_int("GATEWAY_ID", 0, 0, 1023, &config->gateway_id, err, err_len) != 0 ||
        env_int("HTTP_THREADS", 2, 1, 64, &config->http_threads, err, err_len) != 0 ||
        env_int("MAX_BODY_KIB", MAX_BODY_KIB_DEFAULT, 1, 1024, &max_body_kib, err, err_len) != 0 ||
        env_int("MAX_PENDING_REQUESTS", 20000, 1, 1000000, &config->max_pending_requests, err, err_len) != 0 ||
        env_int("MAX_CONNECTIONS_PER_IP", 1000, 0, 1000000, &config->max_connections_per_ip, err, err_len) != 0 ||
        env_int("RATE_LIMIT_PER_SECOND", 50, 0, 1000000, &rate_per_second, err, err_len) != 0 ||
        env_int("RATE_LIMIT_BURST", 100, 1, 1000000, &rate_burst, err, err_len) != 0 ||
        load_gateway_secrets(config, err, err_len) != 0) {
        tk_gateway_config_close(config);
        return -1;
    }
    config->max_body_bytes = (size_t)max_body_kib * 1024;
    config->rate_limit_per_second = rate_per_second;
    config->rate_limit_burst = rate_burst;
    config->is_access_log = strcmp(env_string("ACCESS_LOG", "on"), "off") != 0;
    return 0;
}

void tk_gateway_config_close(tk_gateway_config *config) {
    if (config == NULL) return;
    free(config->jwt_key);
    free(config->jwt_previous_key);
    config->jwt_key = NULL;
    config->jwt_previous_key = NULL;
    memset(&config->command_keys, 0, sizeof config->command_keys);
    tk_kafka_security_close(&config->kafka_security);
}

int tk_worker_config_load(tk_worker_config *config, char *err, size_t err_len) {
    memset(config, 0, sizeof *config);
    config->kafka_brokers = env_string("KAFKA_BROKERS", "127.0.0.1:9092");
    size_t uri_len = 0;
    if (tk_secret_load("MONGODB_URI", &config->mongodb_uri_secret, &uri_len, err, err_len) != 0) return -1;
    config->mongodb_uri = config->mongodb_uri_secret != NULL ? config->mongodb_uri_secret
                                                             : "mongodb://127.0.0.1:27017/ticketing";
    config->group_id = env_string("KAFKA_GROUP_ID", "ticket-workers");
    config->worker_id = env_string("WORKER_ID", NULL);
    config->group_instance_id = env_string("KAFKA_GROUP_INSTANCE_ID", NULL);
    config->bind_address = env_string("BIND_ADDRESS", "0.0.0.0");
    if (env_int("WORKER_THREADS", 4, 1, 64, &config->worker_threads, err, err_len) != 0 ||
        env_int("WORKER_WRITE_LANES", 1, 1, 64, &config->write_lanes, err, err_len) != 0 ||
        env_int("WORKER_BATCH_MAX", 256, 1, 256, &config->batch_max, err, err_len) != 0 ||
        env_int("WORKER_BULK_REPLIES", 1, 0, 1, &config->bulk_replies, err, err_len) != 0 ||
        env_int("WORKER_RECENT_TICKETS", 0, 0, 65536, &config->recent_tickets, err, err_len) != 0 ||
        env_int("WORKER_HTTP_PORT", 0, 0, 65535, &config->http_port, err, err_len) != 0 ||
        load_log_level(&config->log_level, err, err_len) != 0 || load_worker_trust(config, err, err_len) != 0 ||
        tk_kafka_security_load(&config->kafka_security, err, err_len) != 0) {
        tk_worker_config_close(config);
        return -1;
    }
    return 0;
}

/* ---- Trust: command keys, reply topics, token issuer and audience ---- */

/* No key means no start: a worker without keys could verify nothing, a
 * gateway could sign nothing. The keys are secrets: COMMAND_KEYS or
 * COMMAND_KEYS_FILE, read by tk_secret. */
static int load_command_keys(tk_sign_keys *keys, char *err, size_t err_len) {
    char *text = NULL;
    size_t text_len = 0;
    if (tk_secret_load("COMMAND_KEYS", &text, &text_len, err, err_len) != 0) return -1;
    if (text == NULL) {
        snprintf(err, err_len, "set either COMMAND_KEYS or COMMAND_KEYS_FILE (id:base64-secret:roles,...)");
        return -1;
    }
    int rc = tk_sign_keys_parse(keys, text, err, err_len);
    memset(text, 0, text_len);
    free(text);
    return rc;
}

static int load_signing_key(tk_gateway_config *config, char *err, size_t err_len) {
    const char *id = env_string("COMMAND_SIGNING_KEY_ID", config->command_keys.keys[0].id);
    config->command_signing_key = tk_sign_keys_find(&config->command_keys, id, strlen(id));
    if (config->command_signing_key == NULL) {
        snprintf(err, err_len, "COMMAND_SIGNING_KEY_ID '%.64s' is not a key of COMMAND_KEYS", id);
        return -1;
    }
    /* The gateway speaks for admins and customers alike. */
    if (config->command_signing_key->roles != (TK_ROLE_ADMIN | TK_ROLE_CUSTOMER)) {
        snprintf(err, err_len, "COMMAND_KEYS: the gateway's signing key '%s' must allow admin+customer", id);
        return -1;
    }
    return 0;
}

static int load_gateway_trust(tk_gateway_config *config, char *err, size_t err_len) {
    config->jwt_issuer = env_string("JWT_ISSUER", NULL);
    config->jwt_audience = env_string("JWT_AUDIENCE", NULL);
    if (env_int("JWT_MAX_LIFETIME_S", 0, 0, 100000000, &config->jwt_max_lifetime_s, err, err_len) != 0 ||
        load_command_keys(&config->command_keys, err, err_len) != 0)
        return -1;
    return load_signing_key(config, err, err_len);
}

static bool is_topic_name(const char *name, size_t len) {
    static const char TOPIC_CHARS[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";
    if (len == 0 || len > 249) return false;
    for (size_t i = 0; i < len; i++)
        if (name[i] == '\0' || strchr(TOPIC_CHARS, name[i]) == NULL) return false;
    return true;
}

static int load_reply_topics(tk_worker_config *config, char *err, size_t err_len) {
    const char *text = env_string("REPLY_TOPICS", "ticket.replies");
    config->reply_topic_count = 0;
    while (true) {
        size_t len = strcspn(text, ",");
        if (!is_topic_name(text, len) || config->reply_topic_count == TK_REPLY_TOPICS_MAX) {
            snprintf(err, err_len, "REPLY_TOPICS must be 1 to %d comma-separated topic names (got '%.64s')",
                     TK_REPLY_TOPICS_MAX, env_string("REPLY_TOPICS", ""));
            return -1;
        }
        memcpy(config->reply_topics[config->reply_topic_count], text, len);
        config->reply_topics[config->reply_topic_count++][len] = '\0';
        if (text[len] == '\0') return 0;
        text += len + 1;
    }
}

static int load_worker_trust(tk_worker_config *config, char *err, size_t err_len) {
    if (load_reply_topics(config, err, err_len) != 0) return -1;
    return load_command_keys(&config->command_keys, err, err_len);
}

void tk_worker_config_close(tk_worker_config *config) {
    if (config == NULL) return;
    tk_kafka_security_close(&config->kafka_security);
    free(config->mongodb_uri_secret);
    config->mongodb_uri_secret = NULL;
}
