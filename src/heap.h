/* heap.h - the allocation index: every block an allocator walker found.
 *
 * One flat array of 16-byte blocks sorted by address, non-overlapping.  A block
 * is a user allocation (used), or a free block with the list it sits on.  Its
 * address is the user pointer and its size the usable size (what
 * malloc_usable_size() returns), for free blocks too.  Allocator metadata that
 * lives in chunks (tcache_perthread_struct, jemalloc base) is recorded with
 * where == HS_WHERE_META so that no byte is unexplained, and is neither used nor
 * free in the totals.
 *
 * address -> block is a binary search, interior addresses included.
 *
 *   63                               24 23      16 15             0
 *  +-----------------------------------+----------+----------------+
 *  |            size (40 bits)         | where(8) |   arena (16)   |   info
 *  +-----------------------------------+----------+----------------+
 */
#ifndef HS_HEAP_H
#define HS_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "error.h"

enum hs_where {
	/* used */
	HS_WHERE_USED = 0,        /* a live allocation in an arena heap / slab */
	HS_WHERE_MMAPPED,         /* a live allocation in its own mapping */
	HS_WHERE_LARGE,           /* jemalloc large extent */
	HS_WHERE_META,            /* allocator metadata in a chunk: not user memory */
	/* free */
	HS_WHERE_FIRST_FREE,
	HS_WHERE_TCACHE = HS_WHERE_FIRST_FREE,
	HS_WHERE_FASTBIN,
	HS_WHERE_UNSORTED,
	HS_WHERE_SMALLBIN,
	HS_WHERE_LARGEBIN,
	HS_WHERE_TOP,
	HS_WHERE_SLAB,            /* jemalloc free region in a slab */
	HS_WHERE_EXTENT,          /* jemalloc inactive pages (dirty/muzzy/retained) */
	HS_WHERE_POOL,            /* an application pool's free list */
	HS_WHERE_FREE_UNLISTED,   /* free by its header, on no list we found (corruption) */
	HS_WHERE_COUNT
};

const char *hs_where_name(enum hs_where w);      /* "used", "tcache", ... */
const char *hs_where_state(unsigned w);          /* "used", "free" or "meta" */
static inline bool hs_where_is_free(unsigned w) { return w >= HS_WHERE_FIRST_FREE; }
static inline bool hs_where_is_used(unsigned w) { return w < HS_WHERE_META; }

#define HS_BLOCK_SIZE_MAX ((UINT64_C(1) << 40) - 1)
#define HS_ARENA_NONE 0xffffu

struct hs_block {
	uint64_t address;
	uint64_t info;            /* size:40 | where:8 | arena:16, see the map above */
};

static inline uint64_t hs_block_size(const struct hs_block *b) { return b->info >> 24; }
static inline unsigned hs_block_where(const struct hs_block *b) { return (b->info >> 16) & 0xff; }
static inline unsigned hs_block_arena(const struct hs_block *b) { return b->info & 0xffff; }
static inline uint64_t hs_block_info(uint64_t size, unsigned where, unsigned arena)
{
	return (size << 24) | ((uint64_t)(where & 0xff) << 16) | (arena & 0xffff);
}

struct hs_heap {
	struct hs_block *blocks;
	size_t n, cap;
	bool sorted;
};

void hs_heap_init(struct hs_heap *h);
void hs_heap_deinit(struct hs_heap *h);
/* Walkers emit blocks in any order; sizes above HS_BLOCK_SIZE_MAX are clamped. */
struct hs_error *hs_heap_add(struct hs_heap *h, uint64_t address, uint64_t size,
			     enum hs_where where, unsigned arena);
/* Sort by address.  Where two blocks overlap (a walker bug or a corrupt heap),
 * keep the first and count the others in *dropped_ret. */
struct hs_error *hs_heap_finish(struct hs_heap *h, size_t *dropped_ret);
/* Index of the block containing addr (start or interior), or -1. */
ptrdiff_t hs_heap_find(const struct hs_heap *h, uint64_t addr);
/* Index of the first block whose address >= addr (may be n). */
size_t hs_heap_lower_bound(const struct hs_heap *h, uint64_t addr);

#endif
