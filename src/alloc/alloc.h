/* alloc.h - allocator walkers and what they describe.
 *
 * A walker is a table of functions (struct hs_walker) listed in the walker
 * table, src/alloc/walkers.c.  detect() says whether its allocator is in the target
 * and finds its roots (arenas, emap); walk() emits every block into the heap
 * index and fills the allocator-neutral description (arenas, free lists,
 * mapped regions, facts) used by the arenas/bins/info reports.  Both see the
 * target only through a struct hs_walk_ctx (src/alloc/walker.h, the one header a
 * walker includes).  Walkers never print: findings (corruption, unsupported
 * layout, not dumped memory) go to diagnostics, and the walk goes on from the
 * next trustworthy point.
 */
#ifndef HS_ALLOC_H
#define HS_ALLOC_H

#include <stdbool.h>
#include <stdint.h>
#include "error.h"
#include "heap.h"

struct hs_walk_ctx;

/* A named number: an allocator's or an arena's own fact ("top", "system_mem"). */
struct hs_fact { char name[40]; uint64_t value; };
#define HS_ARENA_FACTS 8

/* One arena (glibc malloc_state, jemalloc arena_t, a tcmalloc page heap...). */
struct hs_arena {
	uint64_t address;          /* of the arena struct */
	char label[32];            /* "main_arena", "arena 1", "je arena 0" */
	const char *allocator;     /* the walker's name: set by the session after the walk */
	uint64_t system_mem;       /* bytes obtained from the system (0 if unknown) */
	int nthreads;              /* threads attached (-1 unknown) */
	/* totals from the walk */
	uint64_t used_count, used_bytes, free_count, free_bytes;
	/* the allocator's own facts (glibc: "top", "top_size"): hs_arena_fact_set */
	struct hs_fact facts[HS_ARENA_FACTS];
	size_t nfacts;
};
void hs_arena_fact_set(struct hs_arena *a, const char *name, uint64_t value);
/* The fact's value, or 0 when the arena has none by that name. */
uint64_t hs_arena_fact(const struct hs_arena *a, const char *name);

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
	unsigned where;            /* the state of its blocks (a walker's registered state) */
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
	struct hs_arena *arenas; size_t narenas, caparenas;
	struct hs_region *regions; size_t nregions, capregions;
	struct hs_freelist *lists; size_t nlists, caplists;
	/* what the walk found, by state (the session counts it) */
	struct hs_alloc_totals { uint64_t count, bytes; } in_use, free, meta;
	/* key facts for `info --verbose`: "main_arena" -> address, "sizeof(heap_info)" -> 48 */
	struct hs_fact facts[32];
	size_t nfacts;
};

/* A state a walker's blocks or free lists can be in: named in text, JSON and
 * `chunks --where`.  kind says how totals count it (used, meta or free). */
struct hs_state_def {
	const char *name;          /* "tcache", "slab", "page-free" (lower case, '-') */
	enum hs_state_kind kind;   /* HS_STATE_USED, _META or _FREE */
	const char *description;   /* one line, for docs and `info --verbose` */
};

struct hs_walker {
	const char *name;          /* "glibc": the --allocator value, JSON "allocator" */
	const char *title;         /* "glibc ptmalloc": in "looked for: ..." */
	/* Its own states, indexed by the walker's enum; ctx->state[k] is the
	 * block `where` of states[k]. */
	const struct hs_state_def *states;
	size_t nstates;
	/* HS_ERR_NOT_FOUND: not this allocator (quietly); other errors: it is, but
	 * its roots cannot be found (said to the user). *state_ret is the walker's. */
	struct hs_error *(*detect)(struct hs_walk_ctx *ctx, void **state_ret);
	struct hs_error *(*walk)(struct hs_walk_ctx *ctx, void *state, struct hs_heap *heap,
				 struct hs_alloc_desc *desc);
	void (*destroy)(void *state);
	/* Every NAME it passes to hs_walk_override, NULL-terminated: an
	 * --override naming none of any walker's is an error, not ignored. */
	const char *const *overrides;
};

/* The walker table (src/alloc/walkers.c), in detection order. */
extern const struct hs_walker *const hs_walkers[];
extern const size_t hs_nwalkers;
const struct hs_walker *hs_walker_named(const char *name);   /* NULL: none */
/* name[0..len) is an override some walker reads; the names, "a, b, c" (static). */
bool hs_walk_override_known(const char *name, size_t len);
const char *hs_walk_override_names(void);
/* Walker i's states -> block where ids (the registry's numbering). */
const uint8_t *hs_walker_state_ids(size_t i);
/* "glibc ptmalloc, jemalloc": every walker's title, for messages. */
const char *hs_walker_titles(void);
/* "glibc, jemalloc": every walker's name, for messages. */
const char *hs_walker_names(void);

void hs_alloc_desc_deinit(struct hs_alloc_desc *d);
struct hs_error *hs_alloc_desc_add_arena(struct hs_alloc_desc *d, const struct hs_arena *a);
struct hs_error *hs_alloc_desc_add_region(struct hs_alloc_desc *d, const struct hs_region *r);
struct hs_error *hs_alloc_desc_add_list(struct hs_alloc_desc *d, const struct hs_freelist *l);
void hs_alloc_desc_fact(struct hs_alloc_desc *d, const char *name, uint64_t value);

#endif
