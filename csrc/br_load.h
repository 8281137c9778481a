/* Unaligned loads of 8 and 4 bytes in the host's byte order, for word-at-a-time tests and
 * compares (memcpy: no alignment or aliasing assumptions; compilers emit one load). */
#ifndef BR_LOAD_H
#define BR_LOAD_H

#include <stdint.h>
#include <string.h>

static inline uint64_t br_load64(const void *p)
{
	uint64_t w;
	memcpy(&w, p, 8);
	return w;
}

static inline uint32_t br_load32(const void *p)
{
	uint32_t w;
	memcpy(&w, p, 4);
	return w;
}

#endif
