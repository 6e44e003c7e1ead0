/* glibc_walker.h - what the pieces of the glibc ptmalloc walker share (private).
 *
 * The walker is one struct gl (the state detect() builds and walk() fills)
 * and one step per file, in the order walk() runs them:
 *
 *   alloc_glibc.c        the walker entry (detect, walk, destroy, the table
 *                        entry), the read cache, growable arrays, findings
 *                        and the description (info, facts)
 *   glibc_locate.c       detection: libc, its version, the layout (DWARF or
 *                        glibc_layouts.c), main_arena and mp_
 *   glibc_heaps.c        steps 1-2: the arena ring, the main heap and each
 *                        arena's heap_info chain
 *   glibc_freelists.c    steps 3-4: tcaches, safe-linking, every tcache bin,
 *                        fastbin and bin -> the sorted free entries
 *   glibc_chunks.c       steps 5-6: the chunk walk of every heap (free iff
 *                        listed or unlisted-free) and the mmapped chunks
 *
 * Only these files include this header; the rest of the tree sees the walker
 * through hs_glibc_walker (walkers.c).  Every layout offset comes from a
 * struct hs_glibc_layout (glibc_layouts.h), never from here.
 */
#ifndef HS_GLIBC_WALKER_H
#define HS_GLIBC_WALKER_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include "glibc_layouts.h"
#include "walker.h"

#define PAGE_SIZE_4K        UINT64_C(4096)
#define MAX_ARENAS          4096u          /* ring walk bound (HS_ARENA_NONE is 0xffff) */
#define MAX_HEAPS_PER_ARENA 65536u         /* heap_info chain bound */
#define TLS_SCAN_BYTES      (64u * 1024)   /* static TLS searched below fs_base */
#define RESYNC_WINDOW       (UINT64_C(4) << 20)
#define RESYNC_CHAIN        64u            /* valid headers in a row that we trust */
#define HEAP_START_PAGES    4096u          /* pages tried when sbrk_base is unknown */
#define DIAGS_PER_KIND      25u
#define ARENA_SCORE_ALONE   120            /* consistent bins (of 127) that need no ring */
#define ARENA_SCORE_RING    500            /* bonus: the next ring is cut by missing memory */
#define ARENA_SCORE_CLOSED  1000           /* bonus: the next ring closes */
#define BANNER              "release version "

struct gl_range { uint64_t start, end; };

struct gl_arena {
	uint64_t addr;
	uint64_t top;                     /* top chunk (not user address) */
	uint64_t next, flags, system_mem, attached;
	uint64_t fastbins[HS_GLIBC_NFASTBINS];
	uint64_t bins[2 * (HS_GLIBC_NBINS - 1)];
	struct hs_arena out;              /* label and totals for the description */
	uint64_t heap_bytes;              /* what its heaps span, when all were found (else 0) */
};

/* One run of chunks: the main heap (or a piece of it), or one heap_info heap. */
struct gl_heap {
	uint64_t start, end;              /* the region: [start, end) */
	uint64_t first;                   /* first chunk */
	uint64_t info;                    /* heap_info address, 0 for the main heap */
	unsigned arena;
	bool has_top;                     /* the arena's top chunk ends this heap */
	bool main;
	bool top_guess;                   /* main heap with a bad top: the chunk that
					     ends the mapping is taken for top */
};

struct gl_tcache { uint64_t addr; int32_t tid; unsigned arena; };

/* A chunk some list holds (or a tcache struct: HS_WHERE_META). */
struct gl_free { uint64_t chunk; uint8_t where; uint8_t matched; };

enum gl_diag_kind { DK_HEADER, DK_LIST, DK_UNLISTED, DK_READ, DK_DUP, DK_STRAY, DK_OTHER, DK_N };

/* The walker's own block states (ctx->state[] gives their ids). */
enum gl_state { GL_TCACHE, GL_FASTBIN, GL_UNSORTED, GL_SMALLBIN, GL_LARGEBIN, GL_TOP, GL_NSTATES };
#define GST(k) (g->ctx->state[k])

struct gl {
	struct hs_walk_ctx *ctx;
	struct hs_memory *mem;

	/* read cache: the dumped part of the last segment read */
	uint64_t c_lo, c_len;
	const uint8_t *c_data;
	enum hs_error_code last_read_error;

	/* detection */
	struct hs_module *libc;
	struct gl_range libc_ranges[32];
	size_t nlibc_ranges;
	struct hs_glibc_layout L;
	bool dwarf;                       /* L is from DWARF */
	const struct hs_glibc_layout *row;/* table row chosen (NULL: by features) */
	unsigned version;                 /* 236; 0 unknown */
	char version_from[48];
	bool over_hi, over_tc, over_safe; /* user overrides pin these features */
	char adjusted[64];                /* features that overrode the version's row */
	uint64_t main_arena, mp;
	const char *main_arena_how, *mp_how;
	bool mp_new_known;                /* mp_ variant decided by a match */
	bool feat_tc, feat_hi, feat_safe; /* decided by what the core shows */

	/* walk */
	struct gl_arena *arenas;
	size_t narenas, caparenas;
	struct gl_heap *heaps;
	size_t nheaps, capheaps;
	struct gl_tcache *tcaches;
	size_t ntcaches, captcaches;
	struct gl_free *free;
	size_t nfree, capfree;
	uint64_t sbrk_base;
	int64_t n_mmaps;                  /* mp_.n_mmaps, -1 unknown */
	uint64_t tcache_count_max;        /* mp_.tcache_count, 0 unknown */
	bool safe_linking;
	const char *safe_linking_how;
	size_t nmmapped;
	bool interrupted;
	unsigned dcount[DK_N];
};

/* versions that changed one aspect of the layout (glibc_row_of) */
#define V_HAVE_FASTCHUNKS 227u
#define V_TCACHE_U16      230u
#define V_SAFE_LINKING    232u
#define V_HEAP_INFO_48    235u

/* findings: rate-limited by kind (gl_diag_what in alloc_glibc.c) */
#define gdiag(g, kind, ...) hs_walk_diagk((g)->ctx, (kind), __VA_ARGS__)

/* --- small helpers every step uses (memory through the read cache) ------- */

bool glibc_rd_slow(struct gl *g, uint64_t addr, void *buf, size_t n);

static inline bool rd(struct gl *g, uint64_t addr, void *buf, size_t n)
{
	uint64_t off = addr - g->c_lo;
	if (off < g->c_len && g->c_len - off >= n) {
		memcpy(buf, g->c_data + off, n);
		return true;
	}
	return glibc_rd_slow(g, addr, buf, n);
}

static inline bool rd64(struct gl *g, uint64_t addr, uint64_t *v)
{
	return rd(g, addr, v, 8);
}

static inline const char *read_error_name(const struct gl *g)
{
	return g->last_read_error == HS_ERR_NOT_DUMPED ? "not dumped" : "not mapped";
}

static inline uint64_t ld64(const uint8_t *buf, unsigned off)
{
	uint64_t v;
	memcpy(&v, buf + off, 8);
	return v;
}

static inline uint64_t chunksize(uint64_t size_field)
{
	return size_field & ~HS_GLIBC_SIZE_BITS;
}

static inline bool is_chunk_ptr(uint64_t p)
{
	return p && (p & (HS_GLIBC_ALIGN - 1)) == 0;
}

/* Address of bin i's fake chunk (bin_at): its fd sits at bins[2(i-1)]. */
static inline uint64_t bin_at(const struct hs_glibc_layout *L, uint64_t arena, unsigned i)
{
	return arena + L->ms_bins + (uint64_t)(i - 1) * 2 * HS_GLIBC_SIZE_SZ - HS_GLIBC_CHUNK_FD;
}

static inline bool in_ranges(const struct gl_range *r, size_t n, uint64_t a)
{
	for (size_t i = 0; i < n; i++)
		if (a >= r[i].start && a < r[i].end)
			return true;
	return false;
}

static inline const struct gl_heap *heap_of(const struct gl *g, uint64_t addr)
{
	for (size_t i = 0; i < g->nheaps; i++)
		if (addr >= g->heaps[i].first && addr < g->heaps[i].end)
			return &g->heaps[i];
	return NULL;
}

/* --- the steps, by file ------------------------------------------------ */

/* alloc_glibc.c: growable arrays */
bool glibc_grow(void **items, size_t *cap, size_t n, size_t elem);
struct hs_error *glibc_add_free(struct gl *g, uint64_t chunk, unsigned where);
struct hs_error *glibc_add_heap(struct gl *g, const struct gl_heap *h);

/* glibc_locate.c: layouts, libc, version, main_arena, mp_ */
void glibc_copy_mp(struct hs_glibc_layout *d, const struct hs_glibc_layout *s);
void glibc_copy_hi(struct hs_glibc_layout *d, const struct hs_glibc_layout *s);
void glibc_copy_tc(struct hs_glibc_layout *d, const struct hs_glibc_layout *s);
const struct hs_glibc_layout *glibc_row_of(unsigned version);
void glibc_note_adjusted(struct gl *g, const char *what);
void glibc_find_libc(struct gl *g);
void glibc_detect_version(struct gl *g);
void glibc_choose_layout(struct gl *g);
bool glibc_read_arena(struct gl *g, const struct hs_glibc_layout *L, uint64_t addr,
		      struct gl_arena *a);
int glibc_arena_score(struct gl *g, const struct hs_glibc_layout *L, uint64_t addr);
void glibc_confirm_ms_variant(struct gl *g);
bool glibc_find_main_arena(struct gl *g);
void glibc_find_mp_by_symbol(struct gl *g);

/* glibc_heaps.c: steps 1-2 */
struct hs_error *glibc_read_arena_ring(struct gl *g);
struct hs_error *glibc_find_orphan_arenas(struct gl *g);
uint64_t glibc_main_heap_start_by_scan(struct gl *g, uint64_t top);
struct hs_error *glibc_find_heaps(struct gl *g);

/* glibc_freelists.c: steps 3-4 */
struct hs_error *glibc_find_tcaches(struct gl *g);
void glibc_decide_safe_linking(struct gl *g);
struct hs_error *glibc_walk_lists(struct gl *g, struct hs_alloc_desc *d);

/* glibc_chunks.c: steps 5-6 */
struct hs_error *glibc_walk_heaps(struct gl *g, struct hs_heap *out, struct hs_alloc_desc *d);
void glibc_report_stray_entries(struct gl *g);
struct hs_error *glibc_find_mmapped(struct gl *g, struct hs_heap *out, struct hs_alloc_desc *d);

#endif
