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
#define HUGE_PAGE ((uintptr_t)2 << 20)
#define HUGE_SLACK ((uintptr_t)512 << 10)
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25        /* Linux 6.1; glibc 2.36's headers lack it */
#endif

/* What to ask malloc for, for an array of `bytes`: from HUGE_MIN, enough
 * that glibc's mapping of its own (the request and a 16-byte header,
 * rounded up to pages: malloc.c sysmalloc_mmap) is a whole number of huge
 * pages, which Linux (6.7 on) places on a huge page boundary.  Each huge
 * page of the array is then one fault, where an unaligned mapping's first
 * and last partial huge pages fault 4 KiB at a time (11 us each on a
 * virtual machine seen here: a millisecond a megabyte). */
static size_t huge_request(size_t bytes)
{
	if (bytes < HUGE_MIN || bytes > SIZE_MAX / 2)
		return bytes;
	return ((bytes + 24 + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1)) - 24;
}

/* fixed: an array that never grows (hs_array_new, hs_array_zeroed), whose
 * last huge page, when half a megabyte or more lies past the array, is left
 * to small pages: the array pays at most that in memory for its huge pages,
 * and its mapping is cut in two, which would make realloc copy it. */
static void hint_huge(void *p, size_t bytes, bool fixed)
{
#ifdef MADV_HUGEPAGE
	if (!p || bytes < HUGE_MIN)
		return;
	// Advise the block's whole mapping, never a part (but a fixed array's
	// tail): a part splits the mapping, and realloc can then no longer move
	// it with mremap but copies it (every page written anew).  A block this
	// big is a mapping of its own in glibc, its 16-byte header at the start
	// of the first page and its usable size reaching to the end of the last.
	uintptr_t a = (uintptr_t)p & ~(HUGE_SMALL - 1);
	uintptr_t e = (uintptr_t)p + malloc_usable_size(p);
	if (a + 16 != (uintptr_t)p || (e & (HUGE_SMALL - 1)))
		return;
	uintptr_t h = e;
	if (fixed && !(e & (HUGE_PAGE - 1)) && e - a > HUGE_PAGE && e - ((uintptr_t)p + bytes) >= HUGE_SLACK)
		h = e - HUGE_PAGE;
	if (madvise((void *)a, h - a, MADV_HUGEPAGE) != 0)
		return;
	// malloc wrote the header before the advice: the first huge page is
	// small pages already, unless collapsed into one now.
	if (!(a & (HUGE_PAGE - 1)) && h - a >= HUGE_PAGE)
		(void)madvise((void *)a, HUGE_PAGE, MADV_COLLAPSE);
#else
	(void)p;
	(void)bytes;
	(void)fixed;
#endif
}

void hs_hint_huge(void *p, size_t bytes)
{
	hint_huge(p, bytes, false);
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

// An array's bytes (room for one element when n is 0); false on overflow.
static bool array_bytes(size_t n, size_t elem, size_t *bytes)
{
	if (!n)
		n = 1;
	if (elem && n > SIZE_MAX / elem)
		return false;
	*bytes = n * elem;
	return true;
}

void *hs_array_new(size_t n, size_t elem)
{
	size_t bytes;
	if (!array_bytes(n, elem, &bytes))
		return NULL;
	void *p = malloc(huge_request(bytes));
	hint_huge(p, bytes, true);
	return p;
}

void *hs_array_zeroed(size_t n, size_t elem)
{
	size_t bytes;
	if (!array_bytes(n, elem, &bytes))
		return NULL;
	void *p = calloc(huge_request(bytes), 1);
	hint_huge(p, bytes, true);
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
	void *p = realloc(items, huge_request(ncap * elem));
	if (!p)
		return &hs_error_nomem;
	hint_huge(p, ncap * elem, false);
	memcpy(itemsp, &p, sizeof(p));
	*cap = ncap;
	return NULL;
}
