/* tk_hash — FNV-1a, the hash of our hash tables (not for security). */
#include "tk_hash.h"

uint64_t tk_hash(const void *data, size_t len) {
    const unsigned char *bytes = data;
    uint64_t hash = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) hash = (hash ^ bytes[i]) * 1099511628211ULL;
    return hash;
}
