/* tk_ids — ObjectIds and correlation ids. */
#include "tk_ids.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tk_clock.h"
#include "tk_hex.h"
#include "tk_random.h"

/* Per-process random material, drawn once: the ObjectId "process unique" bytes. */
static uint8_t process_random[8];
static atomic_uint_fast64_t object_id_counter;
static pthread_once_t random_once = PTHREAD_ONCE_INIT;

static void init_process_random(void) {
    uint8_t seed[4];
    if (tk_random_bytes(process_random, sizeof process_random) != 0 || tk_random_bytes(seed, sizeof seed) != 0) {
        /* getrandom cannot fail on Linux >= 3.17 with a small buffer; fall
         * back to time and pid rather than abort. */
        uint64_t fallback = (uint64_t)tk_monotonic_ms() ^ ((uint64_t)getpid() << 32);
        memcpy(process_random, &fallback, sizeof process_random);
        memset(seed, 0, sizeof seed);
    }
    atomic_store(&object_id_counter, (uint_fast64_t)seed[0] << 16 | (uint_fast64_t)seed[1] << 8 | seed[2]);
}

void tk_object_id_new(char out[TK_OBJECT_ID_LEN + 1]) {
    pthread_once(&random_once, init_process_random);
    uint32_t seconds = (uint32_t)(tk_now_ms() / 1000);
    uint32_t counter = (uint32_t)atomic_fetch_add(&object_id_counter, 1) & 0xffffffu;
    uint8_t bytes[12] = {
        (uint8_t)(seconds >> 24), (uint8_t)(seconds >> 16), (uint8_t)(seconds >> 8), (uint8_t)seconds,
        process_random[0],        process_random[1],        process_random[2],       process_random[3],
        process_random[4],        (uint8_t)(counter >> 16), (uint8_t)(counter >> 8), (uint8_t)counter,
    };
    tk_hex_encode(bytes, sizeof bytes, out);
    out[TK_OBJECT_ID_LEN] = '\0';
}

bool tk_object_id_is_valid(const char *text, size_t len) {
    if (text == NULL || len != TK_OBJECT_ID_LEN) return false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        bool is_hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
        if (!is_hex) return false;
    }
    return true;
}

int tk_correlation_id_new(char out[TK_CORRELATION_ID_LEN + 1]) {
    /* A prefix and a counter, as before, let anyone who saw one id (it is
     * echoed in X-Correlation-Id) predict the next and answer it first. */
    uint8_t bytes[TK_CORRELATION_ID_LEN / 2];
    if (tk_random_bytes(bytes, sizeof bytes) != 0) return -1;
    tk_hex_encode(bytes, sizeof bytes, out);
    out[TK_CORRELATION_ID_LEN] = '\0';
    return 0;
}
