/* utf8_check.h - an independent, strict UTF-8 check (decode, then range-check
 * the code point) for whole outputs: the unit tests and the fuzz harness hold
 * heapscope's JSON and text to it.  Header-only, so fuzz/ can use it too. */
#ifndef HS_UTF8_CHECK_H
#define HS_UTF8_CHECK_H

#include <stdbool.h>
#include <stddef.h>

static inline bool valid_utf8(const void *s, size_t n)
{
	const unsigned char *p = s;
	for (size_t i = 0; i < n;) {
		unsigned c = p[i], len, cp;
		if (c < 0x80) { i++; continue; }
		if ((c & 0xe0) == 0xc0) { len = 2; cp = c & 0x1f; }
		else if ((c & 0xf0) == 0xe0) { len = 3; cp = c & 0x0f; }
		else if ((c & 0xf8) == 0xf0) { len = 4; cp = c & 0x07; }
		else return false;
		if (i + len > n)
			return false;
		for (unsigned k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		static const unsigned min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
		if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

#endif
