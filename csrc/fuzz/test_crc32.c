/* Deterministic check run by .ci/run-fuzz before fuzzing: br_crc32 (the path this CPU
 * takes) and br_crc32_portable equal zlib's crc32 for every length 0..1100 at 16
 * alignments, for chained calls split at every third of the length, and on 1 MB. zlib is
 * linked into this test only. Exits 1 on the first mismatch. */
#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>
#include "br_eventstream.h"

int main(void)
{
	enum { BIG = 1 << 20 };
	unsigned char *b = malloc(BIG + 64);
	size_t off, n;
	uint32_t x = 2463534242u;

	if (!b)
		return 2;
	for (n = 0; n < BIG + 64; n++) {   /* xorshift32 bytes */
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b[n] = (unsigned char)x;
	}
	if (br_crc32(0, "123456789", 9) != 0xCBF43926u ||
	    br_crc32_portable(0, "123456789", 9) != 0xCBF43926u) {
		fprintf(stderr, "test_crc32: check value wrong\n");
		return 1;
	}
	for (off = 0; off < 16; off++)
		for (n = 0; n <= 1100; n++) {
			const unsigned char *p = b + off;
			uint32_t z = (uint32_t)crc32(0, p, (uInt)n);
			uint32_t seeded = (uint32_t)crc32(0xdeadbeefu, p, (uInt)n);
			uint32_t ch = br_crc32(br_crc32(0, p, n / 3), p + n / 3, n - n / 3);
			if (br_crc32(0, p, n) != z || br_crc32_portable(0, p, n) != z || ch != z ||
			    br_crc32(0xdeadbeefu, p, n) != seeded ||
			    br_crc32_portable(0xdeadbeefu, p, n) != seeded) {
				fprintf(stderr, "test_crc32: mismatch at offset %zu length %zu\n", off, n);
				return 1;
			}
		}
	for (off = 0; off < 3; off++)
		if (br_crc32(0, b + off, BIG) != (uint32_t)crc32(0, b + off, BIG) ||
		    br_crc32_portable(0, b + off, BIG) != (uint32_t)crc32(0, b + off, BIG)) {
			fprintf(stderr, "test_crc32: 1 MB mismatch\n");
			return 1;
		}
	printf("test_crc32: ok (%s path and portable path agree with zlib)\n", br_crc32_impl());
	free(b);
	return 0;
}
