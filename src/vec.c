/* vec.c - see vec.h: the growable vector and the lower bound. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "vec.h"

#define HUGE_MIN ((size_t)4 << 20)
#define HUGE_PAGE ((uintptr_t)2 << 20)

void hs_hint_huge(void *p, size_t bytes)
{
#ifdef MADV_HUGEPAGE
	if (!p || bytes < HUGE_MIN)
		return;
	uintptr_t a = ((uintptr_t)p + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
	uintptr_t e = ((uintptr_t)p + bytes) & ~(HUGE_PAGE - 1);
	if (e > a)
		(void)madvise((void *)a, e - a, MADV_HUGEPAGE);
#else
	(void)p;
	(void)bytes;
#endif
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
