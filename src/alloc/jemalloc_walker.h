/* jemalloc_walker.h - what the pieces of the jemalloc walker share (private).
 *
 * The walker is one struct je_state (what detect() found) and, during
 * walk(), one struct walk (what the steps collect); one step per file:
 *
 *   alloc_jemalloc.c     the walker entry (detect, walk, destroy, the table
 *                        entry: the order of the steps), size classes
 *   jemalloc_detect.c    build: the module, its version and build (the
 *                        candidate layouts), size classes, the emap (running
 *                        the locators), the arenas
 *   jemalloc_locate.c    locate: the emap without its symbol (disassembly,
 *                        TLS, a scan of the module's writable memory)
 *   jemalloc_rtree.c     the rtree: leaves, element checks, and collect (every
 *                        extent the emap indexes, one edata_t each)
 *   jemalloc_tcache.c    tcaches: every thread cache and the objects it holds
 *   jemalloc_emit.c      emit: slab regions, large allocations, cached
 *                        objects, inactive extents, jemalloc's own memory;
 *                        then the description (arenas, regions, lists, facts)
 *
 * Only these files include this header; the rest of the tree sees the walker
 * through hs_jemalloc_walker (walkers.c).  Layout facts come from
 * jemalloc_layout.h only.
 */
#ifndef HS_JEMALLOC_WALKER_H
#define HS_JEMALLOC_WALKER_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include "alloc.h"
#include "jemalloc_layout.h"
#include "walker.h"

#define STAGE "jemalloc"
#define USER_MAX (UINT64_C(1) << 47)        /* x86-64 user space */
#define MAX_LEAVES 4096                     /* 4 TiB of address space */
#define MAX_RING 65536                      /* tcaches on one arena's ring */
#define MAX_BASE_BLOCKS 4096
#define MAX_DIAGS_PER_KIND 20

/* --- the walker's state ------------------------------------------------ */

struct je_arena {
	unsigned ind;
	uint64_t address;      /* arena_t, 0 when only known from extents */
	uint64_t base;         /* base_t */
	unsigned local;        /* index in desc->arenas */
	struct hs_arena out;
};

struct je_tcache {
	uint64_t address;      /* tcache_t */
	uint64_t slow;         /* tcache_slow_t */
	int tid;               /* owning thread when found through TLS, else 0 */
	bool in_ring, in_tls;
};

/* One rtree leaf element (decoded), kept when its edata differs from the
 * previous one. */
struct je_elm {
	uint64_t edata, key;
	uint16_t szind;
	uint8_t state;
	bool slab;
};

struct je_extent {
	uint64_t edata, base, size, addr;
	unsigned arena, state, szind, nfree;
	bool slab;
	uint64_t bitmap[8];
};

/* An object cached in a tcache. */
struct je_cached {
	uint64_t ptr;
	uint32_t tcache;       /* index in tcaches */
	uint16_t bin;
	bool matched;
};

struct je_state {
	struct hs_walk_ctx *ctx;
	struct hs_memory *mem;
	const struct hs_je_layout *L;
	struct hs_module *mod;
	struct hs_module nt_module;   /* mod when libdwfl did not report it (NT_FILE) */
	bool mod_from_notes;
	struct hs_elf_file *file;     /* the module's ELF file (NULL: not found) */
	char module_name[64];
	char version[64];
	const char *emap_sym_name;   /* the emap's symbol, when found by name */
	const struct hs_je_layout *cands[HS_JE_NLAYOUTS];   /* layouts the build may have */
	size_t ncands;
	uint64_t emap;
	char how[48];          /* how the emap was found */
	struct hs_je_sizes sizes;
	char sizes_how[48];
	bool have_tpoff;
	int64_t tpoff;         /* tsd = fs_base + tpoff */
	const struct hs_je_layout *tpoff_for;   /* the layout tpoff was looked for with */
	uint64_t arenas_array; /* &je_arenas, 0 unknown */
	struct je_arena *arenas;
	size_t narenas;
	uint16_t local_of[4096];  /* arena ind -> index in arenas[] + 1, 0 none */
	struct je_tcache *tcaches;
	size_t ntcaches;
};

enum { D_ELM, D_EDATA, D_SLAB, D_TCACHE, D_LARGE, D_OVERLAP, D_RING, D_OTHER };

/* findings: rate-limited by kind (je_diag_what in alloc_jemalloc.c) */
#define diag(j, kind, ...) hs_walk_diagk((j)->ctx, (kind), __VA_ARGS__)

/* The walker's own block states (ctx->state[] gives their ids). */
enum je_state_id { JE_LARGE, JE_TCACHE, JE_SLAB, JE_EXTENT, JE_NSTATES };
#define WST(k) (w->j->ctx->state[k])

/* the module's writable memory (jemalloc_locate.c) */
struct range { uint64_t lo, hi; };

/* how well an emap candidate decodes (jemalloc_rtree.c) */
struct emap_score { unsigned good, bad, leaves; };

/* every extent, sorted by base (jemalloc_rtree.c) */
struct extents {
	struct je_extent *v;
	size_t n, cap;
};

/* the objects tcaches hold (jemalloc_tcache.c) */
struct cached_set {
	struct je_cached *v;
	size_t n, cap;
	uint64_t *stacks;       /* an address inside each tcache's stack allocation */
	size_t nstacks;
};

/* what walk() collects and emits (jemalloc_emit.c) */
struct totals {
	uint64_t allocated, active, internal, tcache, dirty, muzzy, retained, base;
	uint64_t slabs, large, tcached;
};

struct walk {
	struct je_state *j;
	struct hs_heap *heap;
	struct hs_alloc_desc *desc;
	unsigned global_base;          /* first global arena index of this allocator */
	struct extents xs;
	struct cached_set cs;
	uint64_t *meta;                /* allocation starts that are jemalloc's own */
	size_t nmeta;
	uint64_t (*slab_free)[HS_JE_MAX_BINS][2];   /* per arena, per bin: count, bytes */
	uint64_t (*ext_free)[4][2];                 /* per arena, per state */
	struct totals tot;
};

/* --- checked reads ------------------------------------------------------ */

static inline bool rd64(struct je_state *j, uint64_t addr, uint64_t *v)
{
	struct hs_error *err = hs_memory_read_u64(j->mem, addr, v);
	if (err) {
		hs_error_destroy(err);
		return false;
	}
	return true;
}

static inline bool rd32(struct je_state *j, uint64_t addr, uint32_t *v)
{
	struct hs_error *err = hs_memory_read_u32(j->mem, addr, v);
	if (err) {
		hs_error_destroy(err);
		return false;
	}
	return true;
}

static inline uint64_t word_at(const uint8_t *p, size_t off)
{
	uint64_t v;
	memcpy(&v, p + off, 8);
	return v;
}

static inline bool plausible_ptr(uint64_t p, uint64_t align)
{
	return p >= 4096 && p < USER_MAX && (p & (align - 1)) == 0;
}

/* --- the steps, by file ------------------------------------------------ */

/* jemalloc_locate.c: the emap without its symbol */
size_t je_module_rw(struct je_state *j, struct range *out, size_t cap);
bool je_scan_words(struct je_state *j, uint64_t lo, uint64_t hi,
		   bool (*fn)(struct je_state *, uint64_t addr, uint64_t value, void *), void *arg);
bool je_root_is_empty(struct je_state *j, uint64_t emap, uint64_t *first_ret);
bool je_accept_given(struct je_state *j, uint64_t emap, const char *how);
bool je_locate_by_disassembly(struct je_state *j);
bool je_tsd_valid(struct je_state *j, uint64_t tsd);
void je_find_tpoff(struct je_state *j);
bool je_locate_by_tls(struct je_state *j);
bool je_locate_by_scan(struct je_state *j);

/* jemalloc_detect.c: module, build, size classes, the emap, arenas */
struct hs_module *je_find_module(struct je_state *j, struct hs_symbol *emap_sym, bool *have_sym);
struct hs_error *je_check_build(struct je_state *j);
struct hs_error *je_check_size_classes(struct je_state *j);
struct hs_error *je_locate_emap(struct je_state *j, const struct hs_symbol *sym, bool have_sym);
struct je_arena *je_arena_add(struct je_state *j, unsigned ind, uint64_t address);
struct hs_error *je_find_arenas(struct je_state *j);

/* jemalloc_rtree.c: the rtree and its extents */
bool je_emap_check(struct je_state *j, uint64_t emap, struct emap_score *sc);
int je_u64_cmp(const void *a, const void *b);
struct hs_error *je_collect_extents(struct je_state *j, struct extents *out);
const struct je_extent *je_extent_of(const struct extents *xs, uint64_t addr);

/* jemalloc_tcache.c: thread caches */
struct hs_error *je_find_tcaches(struct je_state *j);
struct hs_error *je_read_tcaches(struct je_state *j, struct cached_set *cs);
struct je_cached *je_cached_find(struct cached_set *cs, uint64_t ptr);

/* jemalloc_emit.c: blocks and the description */
struct hs_error *je_find_meta(struct walk *w);
unsigned je_local_arena(struct walk *w, unsigned ind);
struct hs_error *je_emit_extents(struct walk *w);
struct hs_error *je_emit_base(struct walk *w);
struct hs_error *je_describe_regions(struct walk *w);
struct hs_error *je_describe_lists(struct walk *w);
int je_arena_ind_cmp(const void *a, const void *b);
struct hs_error *je_describe_arenas(struct walk *w);
void je_describe_facts(struct walk *w);

#endif
