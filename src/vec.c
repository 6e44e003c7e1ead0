/* vec.c - see vec.h: the growable vector and the lower bound. */
#include <stdlib.h>
#include <string.h>
#include "vec.h"

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
	memcpy(itemsp, &p, sizeof(p));
	*cap = ncap;
	return NULL;
}
