/* tk_kafka_security — TLS, SASL and other librdkafka properties read from the
 * environment and applied to a client configuration (contract in the header). */
#include "tk_kafka_security.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "tk_secret.h"

extern char **environ;

#define MAX_PROPERTIES 64

static const char *const PROTOCOLS[] = {"plaintext", "ssl", "sasl_plaintext", "sasl_ssl"};
/* GSSAPI is left out: librdkafka 2.0 cannot join groups on Kafka 4 with it
 * (LIBRARIES.md). OAUTHBEARER needs settings of its own; not offered yet. */
static const char *const MECHANISMS[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"};

/* Properties with a variable of their own (or set by the code): the
 * pass-through may not set them a second way. */
static const struct {
    const char *name;
    const char *variable;
} DEDICATED[] = {
    {"bootstrap.servers", "KAFKA_BROKERS"},
    {"metadata.broker.list", "KAFKA_BROKERS"},
    {"client.id", "the service (it names each client)"},
    {"security.protocol", "KAFKA_SECURITY_PROTOCOL"},
    {"sasl.mechanism", "KAFKA_SASL_MECHANISM"},
    {"sasl.mechanisms", "KAFKA_SASL_MECHANISM"},
    {"sasl.username", "KAFKA_SASL_USERNAME"},
    {"sasl.password", "KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE"},
    {"ssl.ca.location", "KAFKA_SSL_CA_LOCATION"},
};

/* A value under one of these names may be a credential. */
static const char *const SECRET_NAME_PARTS[] = {"password", "secret", "key.pem", "oauthbearer.config"};

static bool is_secret_name(const char *name) {
    for (size_t i = 0; i < sizeof SECRET_NAME_PARTS / sizeof SECRET_NAME_PARTS[0]; i++)
        if (strstr(name, SECRET_NAME_PARTS[i]) != NULL) return true;
    return false;
}

static const char *env_value(const char *name) {
    const char *value = getenv(name);
    return value != NULL && value[0] != '\0' ? value : NULL;
}

/* Returns the canonical spelling from table, or NULL. */
static const char *find_word(const char *const *table, size_t count, const char *text) {
    for (size_t i = 0; i < count; i++)
        if (strcasecmp(table[i], text) == 0) return table[i];
    return NULL;
}

int tk_kafka_property_name(const char *suffix, char *out, size_t out_len) {
    size_t len = 0;
    if (suffix == NULL || suffix[0] == '\0') return -1;
    for (const char *c = suffix; *c != '\0';) {
        char mapped;
        if (*c == '_') {
            size_t run = strspn(c, "_");
            if (run > 3) return -1;
            mapped = run == 1 ? '.' : run == 2 ? '_' : '-';
            c += run;
        } else if (isupper((unsigned char)*c) || isdigit((unsigned char)*c)) {
            mapped = (char)tolower((unsigned char)*c);
            c++;
        } else {
            return -1;
        }
        if (len + 1 >= out_len) return -1;
        out[len++] = mapped;
    }
    out[len] = '\0';
    return 0;
}

/* Takes ownership of value (freed on failure too). */
static int add_property(tk_kafka_security *security, const char *variable, const char *name, char *value,
                        bool is_secret, char *err, size_t err_len) {
    tk_kafka_property *property = &security->properties[security->count];
    if (value == NULL || security->count == MAX_PROPERTIES) {
        snprintf(err, err_len, "%s: %s", variable, value == NULL ? "out of memory" : "too many Kafka properties");
        free(value);
        return -1;
    }
    property->variable = strdup(variable);
    property->name = strdup(name);
    property->value = value;
    property->is_secret = is_secret;
    security->count++;
    if (property->variable == NULL || property->name == NULL) {
        snprintf(err, err_len, "%s: out of memory", variable);
        return -1;
    }
    return 0;
}

static int add_env(tk_kafka_security *security, const char *variable, const char *name, char *err, size_t err_len) {
    const char *value = env_value(variable);
    if (value == NULL) return 0;
    return add_property(security, variable, name, strdup(value), false, err, err_len);
}

/* SASL settings without a SASL protocol are a mistake, not a no-op.
 * @returns 0 when none is set, or -1 with err naming the first. */
static int refuse_stray_sasl(const tk_kafka_security *security, const char *mechanism, const char *username,
                             bool has_password, char *err, size_t err_len) {
    const char *stray = mechanism != NULL  ? "KAFKA_SASL_MECHANISM"
                        : username != NULL ? "KAFKA_SASL_USERNAME"
                        : has_password     ? "KAFKA_SASL_PASSWORD"
                                           : NULL;
    if (stray == NULL) return 0;
    snprintf(err, err_len, "%s is set but KAFKA_SECURITY_PROTOCOL is %s (use sasl_plaintext or sasl_ssl)", stray,
             security->protocol);
    return -1;
}

static int load_sasl(tk_kafka_security *security, bool is_sasl, char *err, size_t err_len) {
    char *password = NULL;
    size_t password_len = 0;
    const char *mechanism_text = env_value("KAFKA_SASL_MECHANISM");
    const char *username = env_value("KAFKA_SASL_USERNAME");
    if (tk_secret_load("KAFKA_SASL_PASSWORD", &password, &password_len, err, err_len) != 0) return -1;
    if (!is_sasl) {
        bool has_password = password != NULL;
        free(password);
        return refuse_stray_sasl(security, mechanism_text, username, has_password, err, err_len);
    }
    const char *missing = mechanism_text == NULL ? "KAFKA_SASL_MECHANISM"
                          : username == NULL     ? "KAFKA_SASL_USERNAME"
                          : password == NULL     ? "KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE)"
                                                 : NULL;
    if (missing != NULL) {
        snprintf(err, err_len, "%s is required with KAFKA_SECURITY_PROTOCOL=%s", missing, security->protocol);
        free(password);
        return -1;
    }
    const char *mechanism = find_word(MECHANISMS, sizeof MECHANISMS / sizeof MECHANISMS[0], mechanism_text);
    if (mechanism == NULL) {
        snprintf(err, err_len, "KAFKA_SASL_MECHANISM must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (got '%.32s')",
                 mechanism_text);
        free(password);
        return -1;
    }
    if (add_property(security, "KAFKA_SASL_MECHANISM", "sasl.mechanism", strdup(mechanism), false, err, err_len) != 0 ||
        add_property(security, "KAFKA_SASL_USERNAME", "sasl.username", strdup(username), false, err, err_len) != 0) {
        free(password);
        return -1;
    }
    return add_property(security, "KAFKA_SASL_PASSWORD", "sasl.password", password, true, err, err_len);
}

static int load_tls(tk_kafka_security *security, bool is_tls, char *err, size_t err_len) {
    const char *ca_location = env_value("KAFKA_SSL_CA_LOCATION");
    if (ca_location == NULL) return 0;
    if (!is_tls) {
        snprintf(err, err_len, "KAFKA_SSL_CA_LOCATION is set but KAFKA_SECURITY_PROTOCOL is %s (use ssl or sasl_ssl)",
                 security->protocol);
        return -1;
    }
    if (access(ca_location, R_OK) != 0) {
        snprintf(err, err_len, "KAFKA_SSL_CA_LOCATION: cannot read '%s': %s", ca_location, strerror(errno));
        return -1;
    }
    return add_env(security, "KAFKA_SSL_CA_LOCATION", "ssl.ca.location", err, err_len);
}

static int load_pass_through(tk_kafka_security *security, char *err, size_t err_len) {
    const size_t prefix_len = strlen(TK_KAFKA_PROPERTY_PREFIX);
    for (char **entry = environ; entry != NULL && *entry != NULL; entry++) {
        char variable[TK_KAFKA_PROPERTY_NAME_MAX + 16], name[TK_KAFKA_PROPERTY_NAME_MAX];
        const char *equals = strchr(*entry, '=');
        if (equals == NULL || strncmp(*entry, TK_KAFKA_PROPERTY_PREFIX, prefix_len) != 0) continue;
        size_t variable_len = (size_t)(equals - *entry);
        if (variable_len >= sizeof variable) {
            snprintf(err, err_len, "%.64s...: variable name too long", *entry);
            return -1;
        }
        memcpy(variable, *entry, variable_len);
        variable[variable_len] = '\0';
        if (tk_kafka_property_name(variable + prefix_len, name, sizeof name) != 0) {
            snprintf(err, err_len,
                     "%s: not a property name (after KAFKA_PROPERTY_: A-Z, 0-9; _ for '.', __ for '_', ___ for '-')",
                     variable);
            return -1;
        }
        for (size_t i = 0; i < sizeof DEDICATED / sizeof DEDICATED[0]; i++) {
            if (strcmp(name, DEDICATED[i].name) == 0) {
                snprintf(err, err_len, "%s: %s is set with %s", variable, name, DEDICATED[i].variable);
                return -1;
            }
        }
        if (add_property(security, variable, name, strdup(equals + 1), is_secret_name(name), err, err_len) != 0)
            return -1;
    }
    return 0;
}

int tk_kafka_security_load(tk_kafka_security *security, char *err, size_t err_len) {
    rd_kafka_conf_t *scratch = NULL;
    memset(security, 0, sizeof *security);
    const char *protocol_text = env_value("KAFKA_SECURITY_PROTOCOL");
    security->protocol = protocol_text == NULL
                             ? "plaintext"
                             : find_word(PROTOCOLS, sizeof PROTOCOLS / sizeof PROTOCOLS[0], protocol_text);
    if (security->protocol == NULL) {
        snprintf(err, err_len,
                 "KAFKA_SECURITY_PROTOCOL must be plaintext, ssl, sasl_plaintext or sasl_ssl (got '%.32s')",
                 protocol_text);
        return -1;
    }
    bool is_sasl = strncmp(security->protocol, "sasl_", 5) == 0;
    bool is_tls = strstr(security->protocol, "ssl") != NULL;
    security->properties = calloc(MAX_PROPERTIES, sizeof *security->properties);
    if (security->properties == NULL) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    if (add_property(security, "KAFKA_SECURITY_PROTOCOL", "security.protocol", strdup(security->protocol), false, err,
                     err_len) != 0 ||
        load_sasl(security, is_sasl, err, err_len) != 0 || load_tls(security, is_tls, err, err_len) != 0 ||
        load_pass_through(security, err, err_len) != 0)
        goto fail;
    /* librdkafka checks names and values now, not at the first client. */
    scratch = rd_kafka_conf_new();
    if (tk_kafka_security_apply(security, scratch, err, err_len) != 0) goto fail;
    rd_kafka_conf_destroy(scratch);
    return 0;
fail:
    if (scratch != NULL) rd_kafka_conf_destroy(scratch);
    tk_kafka_security_close(security);
    return -1;
}

void tk_kafka_security_close(tk_kafka_security *security) {
    if (security == NULL) return;
    for (size_t i = 0; i < security->count; i++) {
        tk_kafka_property *property = &security->properties[i];
        if (property->value != NULL) memset(property->value, 0, strlen(property->value));
        free(property->variable);
        free(property->name);
        free(property->value);
    }
    free(security->properties);
    memset(security, 0, sizeof *security);
}

bool tk_kafka_security_is_secured(const tk_kafka_security *security) {
    return security != NULL && security->protocol != NULL && strcmp(security->protocol, "plaintext") != 0;
}

int tk_kafka_security_apply(const tk_kafka_security *security, rd_kafka_conf_t *conf, char *err, size_t err_len) {
    char detail[512];
    for (size_t i = 0; security != NULL && i < security->count; i++) {
        const tk_kafka_property *property = &security->properties[i];
        if (rd_kafka_conf_set(conf, property->name, property->value, detail, sizeof detail) == RD_KAFKA_CONF_OK)
            continue;
        if (property->is_secret)
            snprintf(err, err_len, "%s: librdkafka refused %s (value not shown)", property->variable, property->name);
        else snprintf(err, err_len, "%s: %s", property->variable, detail);
        return -1;
    }
    return 0;
}

json_t *tk_kafka_security_describe(const tk_kafka_security *security) {
    json_t *properties = json_object();
    for (size_t i = 0; security != NULL && i < security->count; i++) {
        const tk_kafka_property *property = &security->properties[i];
        json_object_set_new(properties, property->name, json_string(property->is_secret ? "***" : property->value));
    }
    return properties;
}
