/* libFuzzer target: br_crc32 (PCLMUL when the CPU has it) and br_crc32_portable must
 * both equal zlib's crc32 on any bytes, any alignment, any chaining split. zlib is linked
 * into this test binary only, never into the module. Built by .ci/run-fuzz. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "br_eventstream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t seed, z, a, b, c;
	size_t off, cut;
	uint8_t *copy;

	if (size < 4)
		return 0;
	memcpy(&seed, data, 4);
	data += 4;
	size -= 4;
	off = seed & 15;               /* misalign the copy */
	copy = malloc(size + off + 1);
	if (!copy)
		return 0;
	memcpy(copy + off, data, size);
	z = (uint32_t)crc32(seed, copy + off, (uInt)size);
	a = br_crc32(seed, copy + off, size);
	b = br_crc32_portable(seed, copy + off, size);
	CHECK(z == a && z == b);
	cut = size ? (seed >> 4) % (size + 1) : 0;
	c = br_crc32(br_crc32(seed, copy + off, cut), copy + off + cut, size - cut);
	CHECK(c == z);
	free(copy);
	return 0;
}
