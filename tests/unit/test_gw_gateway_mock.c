/* The whole gateway (gw_gateway) in-process against librdkafka's mock cluster:
 * a fatal producer error turns /readyz 503 and marks the gateway as failed,
 * which makes main exit so that its supervisor restarts it. */
#include "test_support.h"

#include <arpa/inet.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gw_gateway.h"
#include "tk_clock.h"
#include "tk_kafka.h"
#include "tk_log.h"

#define WAIT_MS 15000

static void nap_ms(long ms) {
    struct timespec nap = {0, ms * 1000000L};
    nanosleep(&nap, NULL);
}

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&address, sizeof address), 0);
    socklen_t len = sizeof address;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&address, &len), 0);
    close(fd);
    return ntohs(address.sin_port);
}

/* @returns the HTTP status of GET path, or -1. */
static int http_get_status(int port, const char *path) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in address = {.sin_family = AF_INET,
                                  .sin_port = htons((uint16_t)port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int status = -1;
    char request[128], response[512] = "";
    snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) == 0 &&
        send(fd, request, strlen(request), 0) == (ssize_t)strlen(request) &&
        recv(fd, response, sizeof response - 1, 0) > 12)
        sscanf(response, "HTTP/1.1 %d", &status);
    close(fd);
    return status;
}

static void test_fatal_producer_error_turns_readyz_503(void **state) {
    (void)state;
    char err[512] = "";
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "test.mock.num.brokers", "1", err, sizeof err), RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "log_level", "0", err, sizeof err), RD_KAFKA_CONF_OK);
    rd_kafka_t *owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (owner == NULL) fail_msg("rd_kafka_new: %s", err);
    rd_kafka_mock_cluster_t *cluster = rd_kafka_handle_mock_cluster(owner);
    assert_int_equal(rd_kafka_mock_topic_create(cluster, TK_TOPIC_COMMANDS, 8, 1), 0);
    assert_int_equal(rd_kafka_mock_topic_create(cluster, TK_TOPIC_QUERIES, 8, 1), 0);
    assert_int_equal(rd_kafka_mock_topic_create(cluster, TK_TOPIC_REPLIES, 4, 1), 0);

    int port = free_port();
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%d", port);
    setenv("PORT", port_text, 1);
    setenv("BIND_ADDRESS", "127.0.0.1", 1);
    setenv("KAFKA_BROKERS", rd_kafka_mock_cluster_bootstraps(cluster), 1);
    setenv("JWT_SECRET", "0123456789abcdef0123456789abcdef", 1);
    setenv("COMMAND_KEYS", "gateway:CwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCws=:admin+customer", 1);
    setenv("ACCESS_LOG", "off", 1);
    tk_gateway_config config;
    assert_int_equal(tk_gateway_config_load(&config, err, sizeof err), 0);
    gw_gateway gateway;
    if (gw_gateway_start(&gateway, &config, err, sizeof err) != 0) fail_msg("gw_gateway_start: %s", err);

    int64_t deadline = tk_monotonic_ms() + WAIT_MS;
    while (!gw_gateway_is_ready(&gateway) && tk_monotonic_ms() < deadline) nap_ms(20);
    assert_true(gw_gateway_is_ready(&gateway));
    assert_int_equal(http_get_status(port, "/readyz"), 200);
    assert_false(gw_gateway_has_failed(&gateway));

    assert_int_equal(rd_kafka_test_fatal_error(gateway.publish.producer, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                                               "injected by test_gw_gateway_mock"),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    /* The reply thread serves the producer's callbacks: the flag follows soon. */
    deadline = tk_monotonic_ms() + WAIT_MS;
    while (!gw_gateway_has_failed(&gateway) && tk_monotonic_ms() < deadline) nap_ms(20);
    assert_true(gw_gateway_has_failed(&gateway));
    assert_false(gw_gateway_is_ready(&gateway));
    assert_int_equal(http_get_status(port, "/readyz"), 503);
    assert_int_equal(http_get_status(port, "/healthz"), 200); /* alive: the exit is main's */

    gw_gateway_stop(&gateway, 0);
    tk_gateway_config_close(&config);
    rd_kafka_destroy(owner);
}

int main(void) {
    tk_log_init("unit", TK_LOG_ERROR); /* the fatal error is logged: expected */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fatal_producer_error_turns_readyz_503),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
