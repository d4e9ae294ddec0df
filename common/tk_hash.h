/* tk_hash — FNV-1a, the hash of our hash tables (not for security). */
#ifndef TK_HASH_H
#define TK_HASH_H

#include <stddef.h>
#include <stdint.h>

/** @returns the 64-bit FNV-1a hash of data[0..len), for hash tables (not for security). */
uint64_t tk_hash(const void *data, size_t len);

#endif
