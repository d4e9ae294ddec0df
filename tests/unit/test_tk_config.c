/* tk_config: settings from the environment, refused with clear messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tk_config.h"

static const char SECRET[] = "0123456789abcdef0123456789abcdef";
#define KEY_0B "CwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCws="
static const char KEYS[] = "gateway:" KEY_0B ":admin+customer,billing:" KEY_0B ":customer";

static int reset(void **state) {
    (void)state;
    const char *names[] = {"JWT_SECRET",
                           "JWT_PUBLIC_KEY_FILE",
                           "JWT_ALG",
                           "JWT_PREVIOUS_SECRET",
                           "JWT_PREVIOUS_PUBLIC_KEY_FILE",
                           "PORT",
                           "REQUEST_TIMEOUT_MS",
                           "GATEWAY_ID",
                           "LOG_LEVEL",
                           "RATE_LIMIT_PER_SECOND",
                           "WORKER_THREADS",
                           "WORKER_BATCH_MAX",
                           "WORKER_WRITE_LANES",
                           "WORKER_BULK_REPLIES",
                           "WORKER_HTTP_PORT",
                           "MONGODB_URI",
                           "ACCESS_LOG",
                           "MAX_CONNECTIONS_PER_IP",
                           "COMMAND_KEYS",
                           "COMMAND_KEYS_FILE",
                           "COMMAND_SIGNING_KEY_ID",
                           "REPLY_TOPICS",
                           "JWT_ISSUER",
                           "JWT_AUDIENCE",
                           "JWT_MAX_LIFETIME_S",
                           "JWT_SECRET_FILE",
                           "JWT_PREVIOUS_SECRET_FILE",
                           "KAFKA_SECURITY_PROTOCOL"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) unsetenv(names[i]);
    setenv("COMMAND_KEYS", KEYS, 1);
    return 0;
}

static void assert_gateway_refused(const char *expected_start) {
    tk_gateway_config config;
    char err[TK_CONFIG_ERROR_MAX] = "";
    assert_int_equal(tk_gateway_config_load(&config, err, sizeof err), -1);
    if (strncmp(err, expected_start, strlen(expected_start)) != 0)
        fail_msg("expected \"%s...\", got \"%s\"", expected_start, err);
}

static void test_gateway_needs_a_key(void **state) {
    (void)state;
    assert_gateway_refused("no JWT key: set JWT_SECRET");
    setenv("JWT_SECRET", "short", 1);
    assert_gateway_refused("JWT_SECRET is too short");
    setenv("JWT_SECRET", SECRET, 1);
    setenv("JWT_PUBLIC_KEY_FILE", "/nonexistent.pem", 1);
    assert_gateway_refused("set either JWT_SECRET or JWT_PUBLIC_KEY_FILE, not both");
    unsetenv("JWT_SECRET");
    assert_gateway_refused("JWT_PUBLIC_KEY_FILE: cannot open '/nonexistent.pem'");
}

static void test_gateway_defaults(void **state) {
    (void)state;
    setenv("JWT_SECRET", SECRET, 1);
    tk_gateway_config config;
    char err[TK_CONFIG_ERROR_MAX] = "";
    assert_int_equal(tk_gateway_config_load(&config, err, sizeof err), 0);
    assert_int_equal(config.port, 8000);
    assert_int_equal(config.request_timeout_ms, 5000);
    assert_int_equal(config.gateway_id, 0);
    assert_string_equal(config.jwt_algorithm, "HS256");
    assert_int_equal(config.max_body_bytes, 128 * 1024);
    assert_int_equal(config.max_connections_per_ip, 1000);
    assert_true(config.is_access_log);
    assert_null(config.jwt_previous_key);
    tk_gateway_config_close(&config);
}

static void test_numbers_are_checked(void **state) {
    (void)state;
    setenv("JWT_SECRET", SECRET, 1);
    setenv("PORT", "80x", 1);
    assert_gateway_refused("PORT must be an integer from 1 to 65535 (got '80x')");
    setenv("PORT", "8001", 1);
    setenv("REQUEST_TIMEOUT_MS", "0", 1);
    assert_gateway_refused("REQUEST_TIMEOUT_MS must be an integer from 10 to 600000");
    unsetenv("REQUEST_TIMEOUT_MS");
    setenv("MAX_CONNECTIONS_PER_IP", "-1", 1);
    assert_gateway_refused("MAX_CONNECTIONS_PER_IP must be an integer from 0 to 1000000 (got '-1')");
    setenv("MAX_CONNECTIONS_PER_IP", "0", 1); /* off */
    tk_gateway_config config;
    char err[TK_CONFIG_ERROR_MAX] = "";
    assert_int_equal(tk_gateway_config_load(&config, err, sizeof err), 0);
    assert_int_equal(config.max_connections_per_ip, 0);
    tk_gateway_config_close(&config);
    unsetenv("MAX_CONNECTIONS_PER_IP");
    setenv("LOG_LEVEL", "loud", 1);
    assert_gateway_refused("LOG_LEVEL must be debug, info, warn or error");
}

static void test_previous_secret_must_match_the_key_type(void **state) {
    (void)state;
    setenv("JWT_SECRET", SECRET, 1);
    setenv("JWT_PREVIOUS_PUBLIC_KEY_FILE", "/x.pem", 1);
    assert_gateway_refused("JWT_PREVIOUS_PUBLIC_KEY_FILE does not match the current key type");
    unsetenv("JWT_PREVIOUS_PUBLIC_KEY_FILE");
    setenv("JWT_PREVIOUS_SECRET", "fedcba9876543210fedcba9876543210", 1);
    tk_gateway_config config;
    char err[TK_CONFIG_ERROR_MAX] = "";
    assert_int_equal(tk_gateway_config_load(&config, err, sizeof err), 0);
    assert_string_equal(config.jwt_previous_key, "fedcba9876543210fedcba9876543210");
    tk_gateway_config_close(&config);
}

static void test_worker_settings(void **state) {
    (void)state;
    tk_worker_config config;
    char err[TK_CONFIG_ERROR_MAX] = "";
    assert_int_equal(tk_worker_config_load(&config, err, sizeof err), 0);
    assert_string_equal(config.mongodb_uri, "mongodb://127.0.0.1:27017/ticketing");
    assert_int_equal(config.worker_threads, 4);
    assert_int_equal(config.http_port, 0);
    assert_null(config.worker_id);
    assert_string_equal(config.kafka_security.protocol, "plaintext");
    tk_worker_config_close(&config);
    setenv("WORKER_THREADS", "65", 1);
    assert_int_equal(tk_worker_config_load(&config, err, sizeof err), -1);
    assert_string_equal(err, "WORKER_THREADS must be an integer from 1 to 64 (got '65')");
}

static void test_command_keys(void **state) {
    (void)state;
    tk_gateway_config gateway;
    tk_worker_config worker;
    char err[TK_CONFIG_ERROR_MAX] = "";
    setenv("JWT_SECRET", SECRET, 1);
    assert_int_equal(tk_gateway_config_load(&gateway, err, sizeof err), 0);
    assert_int_equal(gateway.command_keys.count, 2);
    assert_string_equal(gateway.command_signing_key->id, "gateway"); /* the first by default */
    assert_null(gateway.jwt_issuer);
    assert_int_equal(gateway.jwt_max_lifetime_s, 0);
    tk_gateway_config_close(&gateway);
    setenv("COMMAND_SIGNING_KEY_ID", "billing", 1); /* customer only: the gateway also speaks for admins */
    assert_gateway_refused("COMMAND_KEYS: the gateway's signing key 'billing' must allow admin+customer");
    setenv("COMMAND_SIGNING_KEY_ID", "nobody", 1);
    assert_gateway_refused("COMMAND_SIGNING_KEY_ID 'nobody' is not a key of COMMAND_KEYS");
    unsetenv("COMMAND_SIGNING_KEY_ID");
    setenv("COMMAND_KEYS_FILE", "/nonexistent", 1);
    assert_gateway_refused("set either COMMAND_KEYS or COMMAND_KEYS_FILE");
    unsetenv("COMMAND_KEYS");
    assert_gateway_refused("COMMAND_KEYS_FILE: cannot open '/nonexistent'");
    unsetenv("COMMAND_KEYS_FILE");
    assert_gateway_refused("set either COMMAND_KEYS or COMMAND_KEYS_FILE");
    assert_int_equal(tk_worker_config_load(&worker, err, sizeof err), -1);
    setenv("COMMAND_KEYS", "gateway:c2hvcnQ=:admin", 1);
    assert_int_equal(tk_worker_config_load(&worker, err, sizeof err), -1);
    assert_null(strstr(err, "c2hvcnQ")); /* never the secret */
}

static void test_trust_settings(void **state) {
    (void)state;
    tk_gateway_config gateway;
    tk_worker_config worker;
    char err[TK_CONFIG_ERROR_MAX] = "";
    setenv("JWT_SECRET", SECRET, 1);
    setenv("JWT_ISSUER", "https://id.example/", 1);
    setenv("JWT_AUDIENCE", "ticket-api", 1);
    setenv("JWT_MAX_LIFETIME_S", "3600", 1);
    assert_int_equal(tk_gateway_config_load(&gateway, err, sizeof err), 0);
    assert_string_equal(gateway.jwt_issuer, "https://id.example/");
    assert_string_equal(gateway.jwt_audience, "ticket-api");
    assert_int_equal(gateway.jwt_max_lifetime_s, 3600);
    tk_gateway_config_close(&gateway);
    setenv("JWT_MAX_LIFETIME_S", "-1", 1);
    assert_gateway_refused("JWT_MAX_LIFETIME_S must be an integer");
    assert_int_equal(tk_worker_config_load(&worker, err, sizeof err), 0);
    assert_int_equal(worker.reply_topic_count, 1);
    assert_string_equal(worker.reply_topics[0], "ticket.replies");
    tk_worker_config_close(&worker);
    setenv("REPLY_TOPICS", "ticket.replies,billing.replies", 1);
    assert_int_equal(tk_worker_config_load(&worker, err, sizeof err), 0);
    assert_int_equal(worker.reply_topic_count, 2);
    assert_string_equal(worker.reply_topics[1], "billing.replies");
    tk_worker_config_close(&worker);
    setenv("REPLY_TOPICS", "ticket.replies,,x", 1);
    assert_int_equal(tk_worker_config_load(&worker, err, sizeof err), -1);
    assert_non_null(strstr(err, "REPLY_TOPICS"));
}

/* One lane applies commands unless WORKER_WRITE_LANES says otherwise. */
static void test_worker_write_lanes(void **state) {
    (void)state;
    tk_worker_config config;
    char err[TK_CONFIG_ERROR_MAX] = "";
    assert_int_equal(tk_worker_config_load(&config, err, sizeof err), 0);
    assert_int_equal(config.write_lanes, 1);
    tk_worker_config_close(&config);
    setenv("WORKER_THREADS", "8", 1);
    setenv("WORKER_WRITE_LANES", "8", 1); /* every lane applies commands */
    assert_int_equal(tk_worker_config_load(&config, err, sizeof err), 0);
    assert_int_equal(config.write_lanes, 8);
    tk_worker_config_close(&config);
    setenv("WORKER_WRITE_LANES", "0", 1);
    assert_int_equal(tk_worker_config_load(&config, err, sizeof err), -1);
    assert_string_equal(err, "WORKER_WRITE_LANES must be an integer from 1 to 64 (got '0')");
}

static void test_worker_batch_bound(void **state) {
    (void)state;
    tk_worker_config config;
    char err[TK_CONFIG_ERROR_MAX] = "";
    assert_int_equal(tk_worker_config_load(&config, err, sizeof err), 0);
    assert_int_equal(config.batch_max, 256);
    tk_worker_config_close(&config);
    setenv("WORKER_BATCH_MAX", "1", 1); /* batching off */
    assert_int_equal(tk_worker_config_load(&config, err, sizeof err), 0);
    assert_int_equal(config.batch_max, 1);
    tk_worker_config_close(&config);
    setenv("WORKER_BATCH_MAX", "257", 1); /* more than a lane's queue holds */
    assert_int_equal(tk_worker_config_load(&config, err, sizeof err), -1);
    assert_string_equal(err, "WORKER_BATCH_MAX must be an integer from 1 to 256 (got '257')");
    unsetenv("WORKER_BATCH_MAX");
    assert_int_equal(tk_worker_config_load(&config, err, sizeof err), 0);
    assert_int_equal(config.bulk_replies, 1);
    tk_worker_config_close(&config);
    setenv("WORKER_BULK_REPLIES", "0", 1); /* replies one by one, creates still batched */
    assert_int_equal(tk_worker_config_load(&config, err, sizeof err), 0);
    assert_int_equal(config.bulk_replies, 0);
    tk_worker_config_close(&config);
    setenv("WORKER_BULK_REPLIES", "2", 1);
    assert_int_equal(tk_worker_config_load(&config, err, sizeof err), -1);
    assert_string_equal(err, "WORKER_BULK_REPLIES must be an integer from 0 to 1 (got '2')");
}

/* JWT_SECRET_FILE (a Docker secret): read and trimmed by tk_secret. */
static void test_jwt_secret_from_a_file(void **state) {
    (void)state;
    char path[64];
    snprintf(path, sizeof path, "/tmp/tk_config_jwt_%d", (int)getpid());
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fprintf(file, "%s\n", SECRET);
    fclose(file);
    setenv("JWT_SECRET_FILE", path, 1);
    tk_gateway_config config;
    char err[TK_CONFIG_ERROR_MAX] = "";
    assert_int_equal(tk_gateway_config_load(&config, err, sizeof err), 0);
    assert_string_equal(config.jwt_key, SECRET);
    assert_int_equal(config.jwt_key_len, strlen(SECRET));
    assert_string_equal(config.jwt_algorithm, "HS256");
    tk_gateway_config_close(&config);
    setenv("JWT_SECRET", SECRET, 1);
    assert_gateway_refused("set either JWT_SECRET or JWT_SECRET_FILE, not both");
    unsetenv("JWT_SECRET");
    file = fopen(path, "w");
    assert_non_null(file);
    fputs("short\n", file);
    fclose(file);
    assert_gateway_refused("JWT_SECRET is too short: 5 bytes");
    unlink(path);
    assert_gateway_refused("JWT_SECRET_FILE: cannot open");
    setenv("KAFKA_SECURITY_PROTOCOL", "sasl_ssl", 1);
    setenv("JWT_SECRET", SECRET, 1);
    unsetenv("JWT_SECRET_FILE");
    assert_gateway_refused("KAFKA_SASL_MECHANISM is required with KAFKA_SECURITY_PROTOCOL=sasl_ssl");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_gateway_needs_a_key, reset),
        cmocka_unit_test_setup(test_gateway_defaults, reset),
        cmocka_unit_test_setup(test_numbers_are_checked, reset),
        cmocka_unit_test_setup(test_previous_secret_must_match_the_key_type, reset),
        cmocka_unit_test_setup(test_worker_settings, reset),
        cmocka_unit_test_setup(test_command_keys, reset),
        cmocka_unit_test_setup(test_trust_settings, reset),
        cmocka_unit_test_setup(test_worker_batch_bound, reset),
        cmocka_unit_test_setup(test_worker_write_lanes, reset),
        cmocka_unit_test_setup(test_jwt_secret_from_a_file, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
