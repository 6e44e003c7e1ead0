/* vec.h - the two helpers every module shares for arrays: one growable
 * vector and one lower-bound (binary search) over a sorted array.
 *
 * A vector is three variables the owner keeps: T *items, size_t n, cap.
 * hs_vec_reserve() makes room for `need` elements (capacity doubles, from 8),
 * so appending is amortised O(1):
 *
 *	HS_CHECK(HS_VEC_GROW(v->items, v->cap, v->n + 1));
 *	v->items[v->n++] = item;
 *
 * or HS_VEC_PUSH(v->items, v->n, v->cap, item) for the same in one call.
 * On failure (&hs_error_nomem, or a size that would overflow) nothing changes.
 *
 * hs_lower_bound() searches elements sorted ascending by a uint64_t key at a
 * fixed offset (an address, a start): the first index whose key is >= key,
 * or n.  HS_LOWER_BOUND names the field:
 *
 *	size_t i = HS_LOWER_BOUND(segs, nsegs, start, addr);
 */
#ifndef HS_VEC_H
#define HS_VEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "error.h"

/* Ask the kernel to back a large array (one that malloc mapped on its own)
 * with transparent huge pages where the system allows it on request
 * (/sys/kernel/mm/transparent_hugepage/enabled = madvise, Debian's default):
 * the analysis touches hundreds of MiB of fresh arrays once each, and on a
 * virtual machine a 4 KiB page fault costs more than the work done in the
 * page.  Only a hint: arrays under 4 MiB, and any failure, are ignored.
 * hs_vec_reserve() calls it; so do the stages' other big arrays. */
void hs_hint_huge(void *p, size_t bytes);

/* Fault the whole pages of [p, p + bytes) in, writable, without writing
 * them (MADV_POPULATE_WRITE; faulting a page in never changes what another
 * thread wrote there): false where the kernel cannot, and nothing done. */
bool hs_populate(void *p, size_t bytes);

/* An array of n elements of elem bytes (room for one when n is 0), hinted
 * onto huge pages: what a stage keeps per block.  hs_array_zeroed's is all
 * zeros.  NULL when it cannot be had (n * elem overflowing included). */
void *hs_array_new(size_t n, size_t elem);
void *hs_array_zeroed(size_t n, size_t elem);

/* memmove(dst, src, n) where dst and src are apart (dst + n <= src, or src
 * + n <= dst), after which src's bytes are unspecified.  The whole huge
 * pages of a large move are moved by the page tables (mremap), not copied: a
 * copy writes destination pages for the first time, and on a virtual machine
 * that costs more than the copy (~2 ms a MiB).  The data is then shifted into
 * place by less than a huge page, within pages already there.  Each array
 * must be one malloc block (its mapping splits where pages arrive, so a
 * later realloc that grows it copies; a shrink stays in place). */
void hs_array_move(void *dst, void *src, size_t n);

/* *itemsp is a T * (passed as a pointer to it); elem is sizeof(T). */
struct hs_error *hs_vec_reserve(void *itemsp, size_t *cap, size_t need, size_t elem);

#define HS_VEC_GROW(items, cap, need) hs_vec_reserve(&(items), &(cap), (need), sizeof(*(items)))
/* Append value (an expression of the element type); an error leaves all as it was. */
#define HS_VEC_PUSH(items, n, cap, value) \
	__extension__({ \
		struct hs_error *hs_vec_err_ = HS_VEC_GROW(items, cap, (n) + 1); \
		if (!hs_vec_err_) \
			(items)[(n)++] = (value); \
		hs_vec_err_; \
	})

/* Inline: with constant elem and key_offset it compiles to the plain loop. */
static inline size_t hs_lower_bound(const void *base, size_t n, size_t elem, size_t key_offset,
				    uint64_t key)
{
	const char *b = (const char *)base;
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint64_t k;
		memcpy(&k, b + mid * elem + key_offset, sizeof(k));
		if (k < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

#define HS_LOWER_BOUND(items, n, field, key) \
	hs_lower_bound((items), (n), sizeof(*(items)), offsetof(__typeof__(*(items)), field), (key))
/* For a plain sorted uint64_t array. */
#define HS_LOWER_BOUND_U64(items, n, key) hs_lower_bound((items), (n), sizeof(uint64_t), 0, (key))

#endif
