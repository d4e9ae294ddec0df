/* tk_clock — the wall clock, the monotonic clocks and ISO-8601 times. */
#include "tk_clock.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t tk_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t tk_monotonic_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t tk_monotonic_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void tk_iso_time_format(int64_t epoch_ms, char out[TK_ISO_TIME_LEN + 1]) {
    time_t seconds = (time_t)(epoch_ms / 1000);
    int millis = (int)(epoch_ms % 1000);
    if (millis < 0) {
        millis += 1000;
        seconds -= 1;
    }
    struct tm utc;
    gmtime_r(&seconds, &utc);
    /* A roomy buffer keeps the compiler's worst case (huge years) happy. */
    char text[64];
    snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday,
             utc.tm_hour, utc.tm_min, utc.tm_sec, millis);
    memcpy(out, text, TK_ISO_TIME_LEN);
    out[TK_ISO_TIME_LEN] = '\0';
}
