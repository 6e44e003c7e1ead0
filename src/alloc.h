/* alloc.h - allocator walkers and what they describe.
 *
 * A walker is a table of functions.  detect() says whether its allocator is in
 * the target and finds its roots (arenas, emap); walk() emits every block into
 * the heap index and fills the allocator-neutral description (arenas, free
 * lists, mapped regions) used by the arenas/bins/info reports.  Walkers never
 * print: findings (corruption, unsupported layout, not dumped memory) go to the
 * session's diagnostics, and the walk goes on from the next trustworthy point.
 */
#ifndef HS_ALLOC_H
#define HS_ALLOC_H

#include <stdbool.h>
#include <stdint.h>
#include "error.h"
#include "heap.h"

struct hs_session;

/* One arena (glibc malloc_state, jemalloc arena_t). */
struct hs_arena {
	uint64_t address;          /* of the arena struct */
	char label[32];            /* "main_arena", "arena 1", "je arena 0" */
	uint64_t system_mem;       /* bytes obtained from the system (0 if unknown) */
	uint64_t top, top_size;    /* glibc: top chunk (user address) and usable size */
	int nthreads;              /* threads attached (-1 unknown) */
	/* totals from the walk */
	uint64_t used_count, used_bytes, free_count, free_bytes;
};

/* A memory region the allocator owns (for info's memory map). */
enum hs_region_kind {
	HS_REGION_HEAP,            /* an arena's heap (main sbrk heap, heap_info heap, extent) */
	HS_REGION_MMAPPED_CHUNK,   /* one mmapped chunk */
	HS_REGION_META,            /* allocator metadata (jemalloc base) */
};
struct hs_region {
	uint64_t start, end;
	enum hs_region_kind kind;
	unsigned arena;            /* index into arenas, or HS_ARENA_NONE */
};

/* One free list: a tcache bin of one thread, a fastbin, a bin of an arena. */
struct hs_freelist {
	enum hs_where where;       /* HS_WHERE_TCACHE, _FASTBIN, _UNSORTED, _SMALLBIN, _LARGEBIN, _SLAB */
	unsigned arena;            /* arena index, or HS_ARENA_NONE (tcache) */
	int tid;                   /* owning thread for a tcache (0 unknown) */
	uint64_t owner;            /* tcache_perthread_struct / bin address */
	int index;                 /* bin index */
	uint64_t chunk_size;       /* chunk size of the class (or lower bound for large) */
	uint64_t count, bytes;     /* entries walked, usable bytes */
	int64_t declared;          /* count the allocator says (tcache counts[]), -1 none */
	bool broken;               /* the walk stopped early: see diagnostics */
};

struct hs_alloc_desc {
	const char *allocator;     /* "glibc", "jemalloc" */
	char version[32];          /* "2.36", "5.3.0-0-g..." or "" */
	char layout_source[192];   /* "DWARF from /usr/lib/debug/...", "built-in table 2.35-2.41, banner 2.36" */
	struct hs_arena *arenas; size_t narenas;
	struct hs_region *regions; size_t nregions;
	struct hs_freelist *lists; size_t nlists;
	/* key facts for `info --verbose`: "main_arena" -> address, "sizeof(heap_info)" -> 48 */
	struct { char name[40]; uint64_t value; } facts[32];
	size_t nfacts;
};

struct hs_walker {
	const char *name;
	/* HS_ERR_NOT_FOUND: not this allocator (quietly); other errors: it is, but
	 * its roots cannot be found (said to the user). *state_ret is the walker's. */
	struct hs_error *(*detect)(struct hs_session *s, void **state_ret);
	struct hs_error *(*walk)(struct hs_session *s, void *state, struct hs_heap *heap,
				 struct hs_alloc_desc *desc);
	void (*destroy)(void *state);
};

extern const struct hs_walker hs_glibc_walker;
extern const struct hs_walker hs_jemalloc_walker;

void hs_alloc_desc_deinit(struct hs_alloc_desc *d);
struct hs_error *hs_alloc_desc_add_arena(struct hs_alloc_desc *d, const struct hs_arena *a);
struct hs_error *hs_alloc_desc_add_region(struct hs_alloc_desc *d, const struct hs_region *r);
struct hs_error *hs_alloc_desc_add_list(struct hs_alloc_desc *d, const struct hs_freelist *l);
void hs_alloc_desc_fact(struct hs_alloc_desc *d, const char *name, uint64_t value);

#endif
