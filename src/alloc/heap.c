/* heap.c - the allocation index: a flat array of blocks sorted by address.
 *
 * Walkers emit blocks heap by heap, each heap in address order, so the array
 * is a handful of ascending runs: finish() merges the runs (natural merge
 * sort, stable, O(n log runs)) instead of sorting from scratch, then drops
 * blocks that overlap an earlier one.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "heap.h"
#include "vec.h"

void hs_heap_init(struct hs_heap *h)
{
	memset(h, 0, sizeof(*h));
	h->sorted = true;
}

void hs_heap_deinit(struct hs_heap *h)
{
	free(h->blocks);
	hs_heap_init(h);
}

bool hs_heap_reserve(struct hs_heap *h, size_t n)
{
	if (n <= h->cap || n > SIZE_MAX / sizeof(*h->blocks))
		return false;
	struct hs_block *b = hs_array_new(n, sizeof(*b));
	if (!b)
		return false;
	if (h->n)
		memcpy(b, h->blocks, h->n * sizeof(*b));
	free(h->blocks);
	h->blocks = b;
	h->cap = n;
	return true;
}

struct hs_error *hs_heap_add(struct hs_heap *h, uint64_t address, uint64_t size,
			     unsigned where, unsigned arena)
{
	HS_CHECK(HS_VEC_GROW(h->blocks, h->cap, h->n + 1));
	if (size > HS_BLOCK_SIZE_MAX)
		size = HS_BLOCK_SIZE_MAX;
	if (h->n && h->sorted && h->blocks[h->n - 1].address > address)
		h->sorted = false;
	h->blocks[h->n].address = address;
	h->blocks[h->n].info = hs_block_info(size, where, arena);
	h->n++;
	return NULL;
}

struct hs_error *hs_heap_append(struct hs_heap *h, struct hs_block *b, size_t n)
{
	if (!n)
		return NULL;
	HS_CHECK(HS_VEC_GROW(h->blocks, h->cap, h->n + n));
	for (size_t i = 0; i < n && h->sorted; i++)
		if ((i ? b[i - 1].address : h->n ? h->blocks[h->n - 1].address : 0) > b[i].address)
			h->sorted = false;
	hs_array_move(h->blocks + h->n, b, n * sizeof(*b));
	h->n += n;
	return NULL;
}

/* Merge the sorted runs [a, m) and [m, e) of src into dst (stable). */
static void merge_runs(const struct hs_block *src, struct hs_block *dst,
		       size_t a, size_t m, size_t e)
{
	size_t i = a, j = m, k = a;
	while (i < m && j < e)
		dst[k++] = src[j].address < src[i].address ? src[j++] : src[i++];
	while (i < m)
		dst[k++] = src[i++];
	while (j < e)
		dst[k++] = src[j++];
}

#define PIECE_GAP (UINT64_C(1) << 20)
#define MAX_PIECES 65536

struct piece { uint64_t first; size_t start, len; };

static int piece_cmp(const void *x, const void *y)
{
	const struct piece *a = x, *b = y;
	return a->first < b->first ? -1 : a->first > b->first;
}

/* Give the whole pages inside src[from, to) back to the kernel: src is
 * about to be freed, and dst's fresh pages can then be these (memory the
 * process had already touched: on a virtual machine a page never touched
 * costs far more than zeroing it).  The malloc header before src[0] is never
 * inside. */
static void release_range(struct hs_block *src, size_t from, size_t to)
{
#ifdef MADV_DONTNEED
	const uintptr_t page = 4096;
	uintptr_t a = ((uintptr_t)(src + from) + page - 1) & ~(page - 1);
	uintptr_t e = (uintptr_t)(src + to) & ~(page - 1);
	if (e > a)
		(void)madvise((void *)a, e - a, MADV_DONTNEED);
#else
	(void)src;
	(void)from;
	(void)to;
#endif
}

/* Walkers emit heap after heap, each in address order, and heaps do not
 * interleave: cut the blocks into pieces where the address goes down or
 * jumps by more than 1 MiB, and if the pieces ordered by first address do
 * not overlap, copy them into dst in that order: one pass, each piece's
 * pages given back once copied (src is freed after a true return).  False
 * (dst may be partly written, src is untouched) when they overlap or are
 * too many. */
static bool concat_pieces(struct hs_block *src, struct hs_block *dst, size_t n)
{
	size_t np = 0;
	for (size_t i = 0; i < n; i++)
		if (i == 0 || src[i].address < src[i - 1].address ||
		    src[i].address - src[i - 1].address > PIECE_GAP)
			np++;
	if (np > MAX_PIECES)
		return false;
	struct piece *pc = malloc(np * sizeof(*pc));
	if (!pc)
		return false;
	np = 0;
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || src[i].address < src[i - 1].address ||
		    src[i].address - src[i - 1].address > PIECE_GAP)
			pc[np++] = (struct piece){ src[i].address, i, 0 };
		pc[np - 1].len++;
	}
	qsort(pc, np, sizeof(*pc), piece_cmp);
	bool ok = true;
	for (size_t j = 1; ok && j < np; j++)
		ok = src[pc[j - 1].start + pc[j - 1].len - 1].address < pc[j].first;
	size_t at = 0;
	for (size_t j = 0; ok && j < np; j++) {
		memcpy(dst + at, src + pc[j].start, pc[j].len * sizeof(*dst));
		release_range(src, pc[j].start, pc[j].start + pc[j].len);
		at += pc[j].len;
	}
	free(pc);
	return ok;
}

/* Natural merge sort: find the ascending runs, merge neighbours pairwise until
 * one run is left. */
static struct hs_error *sort_blocks(struct hs_heap *h)
{
	size_t n = h->n, nruns = 0;
	size_t *runs = NULL;
	struct hs_block *tmp = NULL;

	/* run starts, plus n as a sentinel */
	for (size_t i = 0; i < n; i++)
		if (i == 0 || h->blocks[i].address < h->blocks[i - 1].address)
			nruns++;
	// Give back the growth slack first: the sort needs a second array.
	if (h->cap > n) {
		struct hs_block *g = realloc(h->blocks, n * sizeof(*g));
		if (g) {
			h->blocks = g;
			h->cap = n;
		}
	}
	runs = malloc((nruns + 1) * sizeof(*runs));
	tmp = hs_array_new(n, sizeof(*tmp));
	if (!runs || !tmp) {
		free(runs);
		free(tmp);
		return &hs_error_nomem;
	}
	nruns = 0;
	for (size_t i = 0; i < n; i++)
		if (i == 0 || h->blocks[i].address < h->blocks[i - 1].address)
			runs[nruns++] = i;
	runs[nruns] = n;

	if (concat_pieces(h->blocks, tmp, n)) {
		free(h->blocks);
		h->blocks = tmp;
		h->cap = n;
		free(runs);
		return NULL;
	}
	struct hs_block *src = h->blocks, *dst = tmp;
	while (nruns > 1) {
		size_t out = 0, r;
		for (r = 0; r + 1 < nruns; r += 2) {
			merge_runs(src, dst, runs[r], runs[r + 1], runs[r + 2]);
			runs[out++] = runs[r];
		}
		if (r < nruns) {   /* odd run out: copy it over */
			memcpy(dst + runs[r], src + runs[r], (runs[r + 1] - runs[r]) * sizeof(*dst));
			runs[out++] = runs[r];
		}
		runs[out] = n;
		nruns = out;
		struct hs_block *t = src; src = dst; dst = t;
	}
	if (src != h->blocks) {
		memcpy(h->blocks, src, n * sizeof(*src));
	}
	free(tmp);
	free(runs);
	return NULL;
}

struct hs_error *hs_heap_finish(struct hs_heap *h, size_t *dropped_ret)
{
	size_t dropped = 0;

	if (!h->sorted && h->n > 1)
		HS_CHECK(sort_blocks(h));
	h->sorted = true;

	/* Keep a block only if it starts at or after the end of the last kept one. */
	size_t out = 0;
	uint64_t end = 0;
	for (size_t i = 0; i < h->n; i++) {
		const struct hs_block *b = &h->blocks[i];
		if (out > 0 && b->address < end) {
			dropped++;
			continue;
		}
		uint64_t size = hs_block_size(b);
		end = b->address + (size ? size : 1);
		if (end < b->address)  /* wraps: nothing can follow */
			end = UINT64_MAX;
		if (out != i)   // (nothing dropped yet: the block is in place)
			h->blocks[out] = *b;
		out++;
	}
	h->n = out;
	if (dropped_ret)
		*dropped_ret = dropped;
	return NULL;
}

size_t hs_heap_lower_bound(const struct hs_heap *h, uint64_t addr)
{
	return HS_LOWER_BOUND(h->blocks, h->n, address, addr);
}

static bool block_contains(const struct hs_block *b, uint64_t addr)
{
	uint64_t size = hs_block_size(b);
	if (addr == b->address)
		return true;
	return addr > b->address && addr - b->address < size;
}

ptrdiff_t hs_heap_find(const struct hs_heap *h, uint64_t addr)
{
	if (!h->sorted) {
		/* Before finish(): correct but linear. */
		for (size_t i = 0; i < h->n; i++)
			if (block_contains(&h->blocks[i], addr))
				return (ptrdiff_t)i;
		return -1;
	}
	/* The last block whose address <= addr: one before the first one above. */
	size_t i = addr == UINT64_MAX ? h->n : hs_heap_lower_bound(h, addr + 1);
	if (i == 0)
		return -1;
	const struct hs_block *b = &h->blocks[i - 1];
	return block_contains(b, addr) ? (ptrdiff_t)(i - 1) : -1;
}
