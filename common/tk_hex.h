/* tk_hex — bytes as lowercase hex text. */
#ifndef TK_HEX_H
#define TK_HEX_H

#include <stddef.h>
#include <stdint.h>

/** @brief Writes len bytes as 2*len lowercase hex characters (no NUL added). */
void tk_hex_encode(const uint8_t *bytes, size_t len, char *out);

#endif
