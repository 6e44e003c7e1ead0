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

/* A block's state ("where": the list or place it is in).  Five states are
 * shared by every allocator and have fixed ids; an allocator's own states
 * (glibc "tcache", jemalloc "slab", ...) are declared by its walker
 * (struct hs_state_def in src/alloc/alloc.h) and numbered from HS_WHERE_SHARED up by
 * the registry in src/alloc/alloc.c, which every report names them through.  Two
 * walkers declaring the same name share one state. */
enum hs_where {
	HS_WHERE_USED = 0,        /* a live allocation in an arena heap / slab */
	HS_WHERE_MMAPPED,         /* a live allocation in its own mapping */
	HS_WHERE_META,            /* allocator metadata in a chunk: not user memory */
	HS_WHERE_POOL,            /* an application pool's free list */
	HS_WHERE_FREE_UNLISTED,   /* free by its header, on no list we found (corruption) */
	HS_WHERE_SHARED           /* the first id the registry gives a walker's state */
};
#define HS_WHERE_MAX 256          /* ids fit the block's 8-bit where */

enum hs_state_kind { HS_STATE_NONE, HS_STATE_USED, HS_STATE_META, HS_STATE_FREE };

/* The registry: every state of every walker in src/alloc/walkers.c, built once. */
const char *hs_where_name(unsigned w);           /* "used", "tcache", ...; "unknown" */
const char *hs_where_state(unsigned w);          /* "used", "free" or "meta" */
const char *hs_where_description(unsigned w);
const uint8_t *hs_where_kinds_built(void);       /* (builds the registry once) */
extern const uint8_t *hs_where_kinds_table;       /* set once the registry is built */
/* id -> enum hs_state_kind; inline: reports and stages ask once a block. */
static inline const uint8_t *hs_where_kinds(void)
{
	const uint8_t *k = __atomic_load_n(&hs_where_kinds_table, __ATOMIC_ACQUIRE);
	return k ? k : hs_where_kinds_built();
}
size_t hs_where_count(void);                     /* states registered */
unsigned hs_where_at(size_t k);                  /* the k-th in display order (used, then meta, then free) */
int hs_where_by_name(const char *name);          /* id, or -1 */
static inline enum hs_state_kind hs_where_kind(unsigned w) { return (enum hs_state_kind)hs_where_kinds()[w & 0xff]; }
static inline bool hs_where_is_free(unsigned w) { return hs_where_kind(w) == HS_STATE_FREE; }
static inline bool hs_where_is_used(unsigned w) { return hs_where_kind(w) == HS_STATE_USED; }

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
/* Room for n blocks before any is added, from a count known ahead (an upper
 * bound: pages never written cost nothing).  Growing the array later moves
 * it (mremap), and the first read of moved pages is slow on some virtual
 * machines.  A hint: false (and nothing changed) when it cannot be had. */
bool hs_heap_reserve(struct hs_heap *h, size_t n);
/* Walkers emit blocks in any order; sizes above HS_BLOCK_SIZE_MAX are clamped. */
struct hs_error *hs_heap_add(struct hs_heap *h, uint64_t address, uint64_t size,
			     unsigned where, unsigned arena);
/* Add n blocks as hs_heap_add would, one by one (sizes already clamped),
 * moved from another array (hs_array_move): b's are unspecified after. */
struct hs_error *hs_heap_append(struct hs_heap *h, struct hs_block *b, size_t n);
/* Sort by address.  Where two blocks overlap (a walker bug or a corrupt heap),
 * keep the first and count the others in *dropped_ret. */
struct hs_error *hs_heap_finish(struct hs_heap *h, size_t *dropped_ret);
/* Index of the block containing addr (start or interior), or -1. */
ptrdiff_t hs_heap_find(const struct hs_heap *h, uint64_t addr);
/* Index of the first block whose address >= addr (may be n). */
size_t hs_heap_lower_bound(const struct hs_heap *h, uint64_t addr);

#endif
