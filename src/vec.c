/* vec.c - see vec.h: the growable vector and the lower bound. */
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "vec.h"

#define HUGE_MIN ((size_t)4 << 20)
#define HUGE_SMALL ((uintptr_t)4096)

void hs_hint_huge(void *p, size_t bytes)
{
#ifdef MADV_HUGEPAGE
	if (!p || bytes < HUGE_MIN)
		return;
	// Advise the block's whole mapping, never a part: a part splits the
	// mapping, and realloc can then no longer move it with mremap but
	// copies it (every page written anew).  A block this big is a mapping
	// of its own in glibc, its 16-byte header at the start of the first
	// page and its usable size reaching to the end of the last.
	uintptr_t a = (uintptr_t)p & ~(HUGE_SMALL - 1);
	uintptr_t e = (uintptr_t)p + malloc_usable_size(p);
	if (a + 16 == (uintptr_t)p && !(e & (HUGE_SMALL - 1)))
		(void)madvise((void *)a, e - a, MADV_HUGEPAGE);
#else
	(void)p;
	(void)bytes;
#endif
}

bool hs_populate(void *p, size_t bytes)
{
#ifdef MADV_POPULATE_WRITE
	uintptr_t a = ((uintptr_t)p + HUGE_SMALL - 1) & ~(HUGE_SMALL - 1);
	uintptr_t e = ((uintptr_t)p + bytes) & ~(HUGE_SMALL - 1);
	return e <= a || madvise((void *)a, e - a, MADV_POPULATE_WRITE) == 0;
#else
	(void)p;
	(void)bytes;
	return false;
#endif
}

#define MOVE_PAGE ((uintptr_t)2 << 20)
#define MOVE_MIN ((size_t)8 << 20)

void hs_array_move(void *dst, void *src, size_t n)
{
	uintptr_t d = (uintptr_t)dst, s = (uintptr_t)src;
	uintptr_t s0 = (s + MOVE_PAGE - 1) & ~(MOVE_PAGE - 1), s1 = (s + n) & ~(MOVE_PAGE - 1);
	// Apart by a page more than n: the pages' landing place (up to a page
	// above their final one) overlaps no byte still to be moved.
	bool apart = (d < s && s - d >= n + MOVE_PAGE) || (d > s && d - s >= n + MOVE_PAGE);
#if defined(MREMAP_FIXED) && defined(MREMAP_DONTUNMAP)
	if (apart && n >= MOVE_MIN && s1 > s0) {
		uintptr_t t = d + (s0 - s), ta = (t + MOVE_PAGE - 1) & ~(MOVE_PAGE - 1);
		size_t len = s1 - s0;
		// (DONTUNMAP: src's pages stay mapped, empty, so its block has no
		// hole that another mapping could take before it is freed.)
		if (mremap((void *)s0, len, len, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP,
			   (void *)ta) != MAP_FAILED) {
			memmove(dst, src, s0 - s);
			memmove((void *)t, (void *)ta, len);
			memmove((void *)(t + len), (void *)s1, s + n - s1);
			return;
		}
	}
#endif
	(void)apart;
	memmove(dst, src, n);
}

void *hs_array_new(size_t n, size_t elem)
{
	if (!n)
		n = 1;
	if (elem && n > SIZE_MAX / elem)
		return NULL;
	void *p = malloc(n * elem);
	hs_hint_huge(p, n * elem);
	return p;
}

void *hs_array_zeroed(size_t n, size_t elem)
{
	void *p = calloc(n ? n : 1, elem);
	hs_hint_huge(p, (n ? n : 1) * elem);
	return p;
}

struct hs_error *hs_vec_reserve(void *itemsp, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return NULL;
	size_t ncap = *cap ? *cap : 8;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			return &hs_error_nomem;
		ncap *= 2;
	}
	if (elem && ncap > SIZE_MAX / elem)
		return &hs_error_nomem;
	void *items;
	memcpy(&items, itemsp, sizeof(items));
	void *p = realloc(items, ncap * elem);
	if (!p)
		return &hs_error_nomem;
	hs_hint_huge(p, ncap * elem);
	memcpy(itemsp, &p, sizeof(p));
	*cap = ncap;
	return NULL;
}
