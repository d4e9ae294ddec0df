/* tk_random — random bytes from the kernel. */
#ifndef TK_RANDOM_H
#define TK_RANDOM_H

#include <stddef.h>
#include <stdint.h>

/** @brief Fills buf with len random bytes. @returns 0, or -1 when the kernel refuses. */
int tk_random_bytes(void *buf, size_t len);

#endif
