/* tk_kafka_security: KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_* and
 * the KAFKA_PROPERTY_<name> pass-through, checked at load. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tk_kafka.h"
#include "tk_kafka_security.h"

extern char **environ;

static char password_path[64];

/* Every KAFKA_* variable goes, so the tests see only what they set. */
static int reset(void **state) {
    (void)state;
    for (;;) {
        char name[256] = "";
        for (char **entry = environ; entry != NULL && *entry != NULL; entry++) {
            const char *equals = strchr(*entry, '=');
            if (strncmp(*entry, "KAFKA_", 6) == 0 && equals != NULL && (size_t)(equals - *entry) < sizeof name) {
                memcpy(name, *entry, (size_t)(equals - *entry));
                break;
            }
        }
        if (name[0] == '\0') break;
        unsetenv(name);
    }
    snprintf(password_path, sizeof password_path, "/tmp/tk_kafka_security_test_%d", (int)getpid());
    return 0;
}

static int remove_file(void **state) {
    (void)state;
    unlink(password_path);
    return 0;
}

static void expect_refused(const char *expected_start) {
    tk_kafka_security security;
    char err[512] = "";
    assert_int_equal(tk_kafka_security_load(&security, err, sizeof err), -1);
    assert_int_equal(security.count, 0);
    if (strncmp(err, expected_start, strlen(expected_start)) != 0)
        fail_msg("expected \"%s...\", got \"%s\"", expected_start, err);
}

static void load(tk_kafka_security *security) {
    char err[512] = "";
    if (tk_kafka_security_load(security, err, sizeof err) != 0) fail_msg("refused: %s", err);
}

static const char *value_of(const tk_kafka_security *security, const char *name) {
    for (size_t i = 0; i < security->count; i++)
        if (strcmp(security->properties[i].name, name) == 0) return security->properties[i].value;
    return NULL;
}

static void set_sasl_ssl(void) {
    setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL", 1);
    setenv("KAFKA_SASL_MECHANISM", "scram-sha-512", 1);
    setenv("KAFKA_SASL_USERNAME", "gateway", 1);
    setenv("KAFKA_SASL_PASSWORD", "pw-123", 1);
}

static void test_default_is_plaintext(void **state) {
    (void)state;
    tk_kafka_security security;
    load(&security);
    assert_string_equal(security.protocol, "plaintext");
    assert_false(tk_kafka_security_is_secured(&security));
    assert_int_equal(security.count, 1);
    assert_string_equal(value_of(&security, "security.protocol"), "plaintext");
    tk_kafka_security_close(&security);
    tk_kafka_security_close(NULL);
}

static void test_sasl_ssl_with_spelling_normalised(void **state) {
    (void)state;
    set_sasl_ssl();
    setenv("KAFKA_SSL_CA_LOCATION", "/etc/hostname", 1); /* any readable file */
    tk_kafka_security security;
    load(&security);
    assert_true(tk_kafka_security_is_secured(&security));
    assert_string_equal(value_of(&security, "security.protocol"), "sasl_ssl");
    assert_string_equal(value_of(&security, "sasl.mechanism"), "SCRAM-SHA-512");
    assert_string_equal(value_of(&security, "sasl.username"), "gateway");
    assert_string_equal(value_of(&security, "sasl.password"), "pw-123");
    assert_string_equal(value_of(&security, "ssl.ca.location"), "/etc/hostname");
    json_t *described = tk_kafka_security_describe(&security);
    assert_string_equal(json_string_value(json_object_get(described, "sasl.password")), "***");
    assert_string_equal(json_string_value(json_object_get(described, "sasl.username")), "gateway");
    char *text = json_dumps(described, 0);
    assert_null(strstr(text, "pw-123"));
    free(text);
    json_decref(described);
    tk_kafka_security_close(&security);
}

static void test_bad_protocol_and_mechanism(void **state) {
    (void)state;
    setenv("KAFKA_SECURITY_PROTOCOL", "tls", 1);
    expect_refused("KAFKA_SECURITY_PROTOCOL must be plaintext, ssl, sasl_plaintext or sasl_ssl (got 'tls')");
    set_sasl_ssl();
    setenv("KAFKA_SASL_MECHANISM", "GSSAPI", 1);
    expect_refused("KAFKA_SASL_MECHANISM must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (got 'GSSAPI')");
}

static void test_sasl_needs_all_three(void **state) {
    (void)state;
    set_sasl_ssl();
    unsetenv("KAFKA_SASL_MECHANISM");
    expect_refused("KAFKA_SASL_MECHANISM is required with KAFKA_SECURITY_PROTOCOL=sasl_ssl");
    setenv("KAFKA_SASL_MECHANISM", "PLAIN", 1);
    unsetenv("KAFKA_SASL_USERNAME");
    expect_refused("KAFKA_SASL_USERNAME is required with KAFKA_SECURITY_PROTOCOL=sasl_ssl");
    setenv("KAFKA_SASL_USERNAME", "u", 1);
    unsetenv("KAFKA_SASL_PASSWORD");
    expect_refused("KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE) is required");
}

static void test_sasl_settings_without_sasl_protocol(void **state) {
    (void)state;
    setenv("KAFKA_SASL_USERNAME", "u", 1);
    expect_refused("KAFKA_SASL_USERNAME is set but KAFKA_SECURITY_PROTOCOL is plaintext");
    unsetenv("KAFKA_SASL_USERNAME");
    setenv("KAFKA_SECURITY_PROTOCOL", "sasl_plaintext", 1);
    setenv("KAFKA_SSL_CA_LOCATION", "/etc/hostname", 1);
    setenv("KAFKA_SASL_MECHANISM", "PLAIN", 1);
    setenv("KAFKA_SASL_USERNAME", "u", 1);
    setenv("KAFKA_SASL_PASSWORD", "p", 1);
    expect_refused("KAFKA_SSL_CA_LOCATION is set but KAFKA_SECURITY_PROTOCOL is sasl_plaintext");
    setenv("KAFKA_SECURITY_PROTOCOL", "ssl", 1);
    setenv("KAFKA_SSL_CA_LOCATION", "/nonexistent/ca.pem", 1);
    unsetenv("KAFKA_SASL_MECHANISM");
    unsetenv("KAFKA_SASL_USERNAME");
    unsetenv("KAFKA_SASL_PASSWORD");
    expect_refused("KAFKA_SSL_CA_LOCATION: cannot read '/nonexistent/ca.pem'");
}

static void test_password_from_a_file(void **state) {
    (void)state;
    set_sasl_ssl();
    unsetenv("KAFKA_SASL_PASSWORD");
    FILE *file = fopen(password_path, "w");
    assert_non_null(file);
    fputs("from-file\n", file);
    fclose(file);
    setenv("KAFKA_SASL_PASSWORD_FILE", password_path, 1);
    tk_kafka_security security;
    load(&security);
    assert_string_equal(value_of(&security, "sasl.password"), "from-file");
    tk_kafka_security_close(&security);
    setenv("KAFKA_SASL_PASSWORD", "too", 1);
    expect_refused("set either KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE, not both");
    unsetenv("KAFKA_SASL_PASSWORD");
    setenv("KAFKA_SASL_PASSWORD_FILE", "/nonexistent/pw", 1);
    expect_refused("KAFKA_SASL_PASSWORD_FILE: cannot open '/nonexistent/pw'");
}

static void test_property_names(void **state) {
    (void)state;
    static const struct {
        const char *suffix;
        const char *name;
    } CASES[] = {
        {"SSL_ENDPOINT_IDENTIFICATION_ALGORITHM", "ssl.endpoint.identification.algorithm"},
        {"CLIENT_RACK", "client.rack"},
        {"LOG__LEVEL", "log_level"},
        {"A___B", "a-b"},
        {"SOCKET_KEEPALIVE_ENABLE", "socket.keepalive.enable"},
        {"API_VERSION_REQUEST_TIMEOUT_MS", "api.version.request.timeout.ms"},
    };
    char name[TK_KAFKA_PROPERTY_NAME_MAX];
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        assert_int_equal(tk_kafka_property_name(CASES[i].suffix, name, sizeof name), 0);
        assert_string_equal(name, CASES[i].name);
    }
    assert_int_equal(tk_kafka_property_name("", name, sizeof name), -1);
    assert_int_equal(tk_kafka_property_name("lower_case", name, sizeof name), -1);
    assert_int_equal(tk_kafka_property_name("A____B", name, sizeof name), -1);
    assert_int_equal(tk_kafka_property_name("A-B", name, sizeof name), -1);
    assert_int_equal(tk_kafka_property_name("ABCDEF", name, 4), -1);
}

static void test_pass_through(void **state) {
    (void)state;
    setenv("KAFKA_SECURITY_PROTOCOL", "ssl", 1);
    setenv("KAFKA_PROPERTY_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM", "none", 1);
    setenv("KAFKA_PROPERTY_SSL_KEY_PASSWORD", "key-secret", 1);
    setenv("KAFKA_PROPERTY_CLIENT_RACK", "use1-az1", 1);
    tk_kafka_security security;
    load(&security);
    assert_string_equal(value_of(&security, "ssl.endpoint.identification.algorithm"), "none");
    assert_string_equal(value_of(&security, "client.rack"), "use1-az1");
    json_t *described = tk_kafka_security_describe(&security);
    assert_string_equal(json_string_value(json_object_get(described, "ssl.key.password")), "***");
    json_decref(described);

    /* Every client gets them; the client's own settings come after. */
    char err[512] = "", value[64];
    size_t value_len = sizeof value;
    assert_int_equal(tk_kafka_init(&security, "127.0.0.1:1", err, sizeof err), 0);
    const tk_kafka_setting own[] = {{"client.rack", "own"}, {NULL, NULL}};
    rd_kafka_conf_t *conf = tk_kafka_conf_new("127.0.0.1:1", "test", own, err, sizeof err);
    assert_non_null(conf);
    assert_int_equal(rd_kafka_conf_get(conf, "ssl.endpoint.identification.algorithm", value, &value_len),
                     RD_KAFKA_CONF_OK);
    assert_string_equal(value, "none");
    value_len = sizeof value;
    assert_int_equal(rd_kafka_conf_get(conf, "client.rack", value, &value_len), RD_KAFKA_CONF_OK);
    assert_string_equal(value, "own");
    rd_kafka_conf_destroy(conf);
    assert_int_equal(tk_kafka_init(NULL, "127.0.0.1:1", err, sizeof err), 0);
    tk_kafka_security_close(&security);
}

static void test_pass_through_refusals(void **state) {
    (void)state;
    setenv("KAFKA_PROPERTY_NO_SUCH_THING", "1", 1);
    expect_refused("KAFKA_PROPERTY_NO_SUCH_THING: No such configuration property: \"no.such.thing\"");
    unsetenv("KAFKA_PROPERTY_NO_SUCH_THING");
    setenv("KAFKA_PROPERTY_SOCKET_KEEPALIVE_ENABLE", "maybe", 1);
    expect_refused("KAFKA_PROPERTY_SOCKET_KEEPALIVE_ENABLE: ");
    unsetenv("KAFKA_PROPERTY_SOCKET_KEEPALIVE_ENABLE");
    setenv("KAFKA_PROPERTY_SASL_PASSWORD", "x", 1);
    expect_refused("KAFKA_PROPERTY_SASL_PASSWORD: sasl.password is set with KAFKA_SASL_PASSWORD or "
                   "KAFKA_SASL_PASSWORD_FILE");
    unsetenv("KAFKA_PROPERTY_SASL_PASSWORD");
    setenv("KAFKA_PROPERTY_BOOTSTRAP_SERVERS", "x:1", 1);
    expect_refused("KAFKA_PROPERTY_BOOTSTRAP_SERVERS: bootstrap.servers is set with KAFKA_BROKERS");
    unsetenv("KAFKA_PROPERTY_BOOTSTRAP_SERVERS");
    setenv("KAFKA_PROPERTY_ssl_x", "1", 1);
    expect_refused("KAFKA_PROPERTY_ssl_x: not a property name");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_default_is_plaintext, reset),
        cmocka_unit_test_setup(test_sasl_ssl_with_spelling_normalised, reset),
        cmocka_unit_test_setup(test_bad_protocol_and_mechanism, reset),
        cmocka_unit_test_setup(test_sasl_needs_all_three, reset),
        cmocka_unit_test_setup(test_sasl_settings_without_sasl_protocol, reset),
        cmocka_unit_test_setup_teardown(test_password_from_a_file, reset, remove_file),
        cmocka_unit_test_setup(test_property_names, reset),
        cmocka_unit_test_setup(test_pass_through, reset),
        cmocka_unit_test_setup(test_pass_through_refusals, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
