/* tk_container — container_of: the struct that embeds a member, from a
 * pointer to that member. */
#ifndef TK_CONTAINER_H
#define TK_CONTAINER_H

#include <stddef.h>

/** @returns the type that holds ptr as its member (ptr must point into one). */
#define tk_container_of(ptr, type, member) ((type *)(void *)(((char *)(ptr)) - offsetof(type, member)))

#endif
