/* tk_hex — bytes as lowercase hex text. */
#include "tk_hex.h"

static const char HEX_DIGITS[] = "0123456789abcdef";

void tk_hex_encode(const uint8_t *bytes, size_t len, char *out) {
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = HEX_DIGITS[bytes[i] >> 4];
        out[2 * i + 1] = HEX_DIGITS[bytes[i] & 0x0f];
    }
}
