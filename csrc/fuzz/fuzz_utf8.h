/* An independent strict UTF-8 check for the fuzz targets' oracles (deliberately not the
 * code under test): no overlongs, no surrogates, nothing above U+10FFFF. */
#ifndef FUZZ_UTF8_H
#define FUZZ_UTF8_H

#include <stddef.h>

static inline int fuzz_utf8_valid(const unsigned char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = p[i], cp, k;
		if (c < 0x80) { i++; continue; }
		if ((c & 0xe0) == 0xc0) { k = 2; cp = c & 0x1f; }
		else if ((c & 0xf0) == 0xe0) { k = 3; cp = c & 0x0f; }
		else if ((c & 0xf8) == 0xf0) { k = 4; cp = c & 0x07; }
		else return 0;
		if (n - i < k) return 0;
		for (unsigned j = 1; j < k; j++) {
			if ((p[i + j] & 0xc0) != 0x80) return 0;
			cp = cp << 6 | (p[i + j] & 0x3f);
		}
		if ((k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000)) return 0;
		if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
		i += k;
	}
	return 1;
}

#endif
