/* jemalloc_layout.h - the jemalloc 5.3.0 layout the walker reads: one table of
 * offsets with where each was checked, and the pure decoders of jemalloc's
 * packed words (rtree leaf elements, edata_t.e_bits, slab bitmaps, cache_bin_t).
 *
 * The decoders take numbers and bytes, never the target: they are what the
 * unit tests exercise on synthetic buffers.
 *
 * Supported build: jemalloc 5.3.0, x86-64, LG_PAGE 12, LG_QUANTUM 4, LG_VADDR 48
 * (a 2-level rtree), non-debug (config_debug false), one bin shard, default
 * (non-tree) bitmaps.  That is Debian 12's libjemalloc2/libjemalloc-dev 5.3.0-1
 * and jemalloc's own default configure on x86-64.  Other versions and
 * configurations are recognised and refused by name (alloc_jemalloc.c).
 *
 * Sources, as tagged on each entry:
 *   [P] pahole on jemalloc 5.3.0 (tag 5.3.0, 54eaed1d) rebuilt with -g and
 *       Debian's configure options; data symbol sizes equal Debian's libjemalloc.a
 *   [D] the disassembly of Debian's stripped libjemalloc.so.2
 *       (build-id 1d5163c246dc9cd2b4d339f2ac42efd95c6e0ae1)
 *   [E] read back on the fixture cores (cores/jemalloc_heap.c) and agreeing with
 *       the program's own truth and malloc_stats_print
 *   [S] the 5.3.0 source (struct order and sizes added up by hand), then [E]
 * See shared/reference/jemalloc-5.3.md for the study behind each.
 *
 * Leaf element of the rtree (RTREE_LEAF_COMPACT, one word) [P][D][E]:
 *
 *   63        48 47                              7 6 5 4   2  1   0
 *  +------------+---------------------------------+---+-----+----+----+
 *  |  szind     |  edata_t * (128-aligned)        | 0 |state|head|slab|
 *  +------------+---------------------------------+---+-----+----+----+
 *
 * edata_t.e_bits (LSB first) [P][E]:
 *
 *   0      11 12   13   14  15   16   17  19 20   27 28   37 38   43 44
 *  +---------+----+----+---+----+----+------+-------+-------+-------+----+
 *  |arena ind|slab|comm|pai|zero|grd |state | szind | nfree |shard  |head|
 *  +---------+----+----+---+----+----+------+-------+-------+-------+----+
 */
#ifndef HS_JEMALLOC_LAYOUT_H
#define HS_JEMALLOC_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "error.h"

/* A bit-field inside a word: (word >> shift) & ((1 << width) - 1). */
struct hs_je_bits {
	uint8_t shift, width;
};

static inline uint64_t hs_je_field(uint64_t word, struct hs_je_bits f)
{
	return (word >> f.shift) & ((UINT64_C(1) << f.width) - 1);
}

enum hs_je_extent_state {
	HS_JE_ACTIVE = 0, HS_JE_DIRTY = 1, HS_JE_MUZZY = 2, HS_JE_RETAINED = 3,
	HS_JE_TRANSITION = 4, HS_JE_MERGING = 5,
};

struct hs_je_layout {
	const char *version;             /* the version string's prefix: "5.3.0-" */
	unsigned lg_page, lg_quantum, lg_vaddr;
	unsigned nbins, nsizes;          /* SC_NBINS, SC_NSIZES */
	uint64_t large_pad;              /* sz_large_pad: one page when cache_oblivious */
	uint64_t tcache_maxclass;        /* opt.tcache_max default: largest cached class */

	/* emap_t je_arena_emap_global = rtree_t { base_t *base; mutex; root[] } */
	uint64_t emap_size, emap_root;
	unsigned root_bits, leaf_bits;   /* subkey widths: root slot, leaf element */
	struct hs_je_bits leaf_szind, leaf_state, leaf_is_head, leaf_slab;
	unsigned leaf_edata_lg_align;    /* EDATA_ALIGNMENT = 128 */
	unsigned leaf_edata_bits;        /* bits 47..0 hold the pointer (sign-extended) */

	/* edata_t */
	uint64_t edata_size;
	uint64_t edata_bits, edata_addr, edata_size_esn, edata_bitmap;
	unsigned bitmap_words;           /* bitmap_t bitmap[BITMAP_GROUPS_MAX] */
	struct hs_je_bits eb_arena, eb_slab, eb_state, eb_szind, eb_nfree, eb_shard, eb_is_head;

	/* arena_t */
	uint64_t arena_nthreads, arena_tcache_ql, arena_pac_emap, arena_shard_ind,
		 arena_shard_emap, arena_ind, arena_base, arena_bins, arena_size;
	uint64_t bin_size, bin_slabcur;
	unsigned arenas_max;             /* je_arenas[]: MALLOCX_ARENA_LIMIT - 1 */

	/* base_t and base_block_t */
	uint64_t base_blocks, base_mapped, block_size, block_next;

	/* tsd_t (je_tsd_tls), tcache_t, tcache_slow_t, cache_bin_t */
	uint64_t tsd_size, tsd_arena, tsd_tcache_slow, tsd_rtree_ctx, tsd_state, tsd_tcache;
	unsigned rtree_ctx_entries;      /* RTREE_CTX_NCACHE + RTREE_CTX_NCACHE_L2 {leafkey, leaf} */
	uint64_t tcache_slow_link, tcache_slow_prev, tcache_slow_arena, tcache_slow_tcache;
	uint64_t cacheline;              /* base_alloc alignment of leaves and arena_t */
	uint64_t tcache_bins;
	unsigned tcache_nbins_max;       /* cache_bin_t bins[TCACHE_NBINS_MAX] */
	uint64_t cache_bin_size, cache_bin_stack_head, cache_bin_low_bits_empty;
};

/* jemalloc 5.3.0, x86-64, LG_PAGE 12, LG_QUANTUM 4, LG_VADDR 48, non-debug. */
static const struct hs_je_layout hs_je_layout_5_3_0 = {
	.version = "5.3.0-",
	.lg_page = 12, .lg_quantum = 4, .lg_vaddr = 48,       /* [P][D] */
	.nbins = 36, .nsizes = 232,                            /* [P][E] */
	.large_pad = 4096,                                     /* [E] e_size = usize + 4096 */
	.tcache_maxclass = 32768,                              /* [E] nhbins 41 */

	.emap_size = 0x200078, .emap_root = 0x78,              /* [P] sizeof, root @0x78 */
	.root_bits = 18, .leaf_bits = 18,                      /* [P][D] shr 9; and 0x1ffff8 */
	.leaf_szind = { 48, 16 }, .leaf_state = { 2, 3 },      /* [P][D] shr $0x30 */
	.leaf_is_head = { 1, 1 }, .leaf_slab = { 0, 1 },       /* [P][E] */
	.leaf_edata_lg_align = 7, .leaf_edata_bits = 48,       /* [P][E] mask ~0x7f */

	.edata_size = 128,                                     /* [P] */
	.edata_bits = 0, .edata_addr = 8, .edata_size_esn = 16, .edata_bitmap = 64, /* [P][E] */
	.bitmap_words = 8,                                     /* [P] 512 regions max */
	.eb_arena = { 0, 12 }, .eb_slab = { 12, 1 }, .eb_state = { 17, 3 },   /* [P][E] */
	.eb_szind = { 20, 8 }, .eb_nfree = { 28, 10 }, .eb_shard = { 38, 6 },
	.eb_is_head = { 44, 1 },

	.arena_nthreads = 0, .arena_tcache_ql = 10392,        /* [P][E] */
	.arena_pac_emap = 69056, .arena_shard_ind = 78888,     /* [P][E] */
	.arena_shard_emap = 78912, .arena_ind = 78928,         /* [P][E] */
	.arena_base = 78936, .arena_bins = 78952,              /* [P][E] */
	.arena_size = 78952 + 36 * 224,                        /* [P] bins[] of one shard each */
	.bin_size = 224, .bin_slabcur = 192,                   /* [P][E] */
	.arenas_max = 4095,                                    /* [P] sizeof(je_arenas) 0x7ff8 */

	.base_blocks = 160, .base_mapped = 3896,               /* [S][E] sum of blocks == mapped */
	.block_size = 0, .block_next = 8,                      /* [S][E] */

	.tsd_size = 0xa48, .tsd_arena = 144, .tsd_tcache_slow = 256,   /* [P][D][E] */
	.tsd_rtree_ctx = 432, .tsd_state = 816, .tsd_tcache = 856,      /* [P][D] %fs:0x330 */
	.rtree_ctx_entries = 16 + 8,                           /* [P] */
	.tcache_slow_link = 0, .tcache_slow_prev = 8,          /* [P][E] qr ring: next, prev */
	.tcache_slow_arena = 40, .tcache_slow_tcache = 168,    /* [P][E] */
	.cacheline = 64,                                       /* [P][E] CACHELINE */
	.tcache_bins = 8, .tcache_nbins_max = 73,              /* [P][E] */
	.cache_bin_size = 24, .cache_bin_stack_head = 0, .cache_bin_low_bits_empty = 20, /* [P][E] */
};

/* --- decoders ---------------------------------------------------------- */

struct hs_je_leaf_elm {
	uint64_t edata;            /* 0: a cleared element (it reads 0x00e8000000000000) */
	unsigned szind, state;
	bool is_head, slab;
};

static inline void hs_je_leaf_elm_decode(const struct hs_je_layout *L, uint64_t bits,
					 struct hs_je_leaf_elm *ret)
{
	// Sign-extend the pointer from bit 47, then drop the low (flag) bits.
	unsigned up = 64 - L->leaf_edata_bits;
	int64_t p = (int64_t)(bits << up) >> up;
	ret->edata = (uint64_t)p & ~((UINT64_C(1) << L->leaf_edata_lg_align) - 1);
	ret->szind = (unsigned)hs_je_field(bits, L->leaf_szind);
	ret->state = (unsigned)hs_je_field(bits, L->leaf_state);
	ret->is_head = hs_je_field(bits, L->leaf_is_head) != 0;
	ret->slab = hs_je_field(bits, L->leaf_slab) != 0;
}

/* The page address of leaf element i1 of the leaf in root slot i0. */
static inline uint64_t hs_je_rtree_key(const struct hs_je_layout *L, uint64_t i0, uint64_t i1)
{
	return (i0 << (L->leaf_bits + L->lg_page)) | (i1 << L->lg_page);
}

/* Root slot and leaf element of a page address. */
static inline uint64_t hs_je_rtree_root_index(const struct hs_je_layout *L, uint64_t key)
{
	return (key >> (L->leaf_bits + L->lg_page)) & ((UINT64_C(1) << L->root_bits) - 1);
}
static inline uint64_t hs_je_rtree_leaf_index(const struct hs_je_layout *L, uint64_t key)
{
	return (key >> L->lg_page) & ((UINT64_C(1) << L->leaf_bits) - 1);
}

struct hs_je_ebits {
	unsigned arena, state, szind, nfree, shard;
	bool slab, is_head;
};

static inline void hs_je_ebits_decode(const struct hs_je_layout *L, uint64_t e_bits,
				      struct hs_je_ebits *ret)
{
	ret->arena = (unsigned)hs_je_field(e_bits, L->eb_arena);
	ret->slab = hs_je_field(e_bits, L->eb_slab) != 0;
	ret->state = (unsigned)hs_je_field(e_bits, L->eb_state);
	ret->szind = (unsigned)hs_je_field(e_bits, L->eb_szind);
	ret->nfree = (unsigned)hs_je_field(e_bits, L->eb_nfree);
	ret->shard = (unsigned)hs_je_field(e_bits, L->eb_shard);
	ret->is_head = hs_je_field(e_bits, L->eb_is_head) != 0;
}

/* Slab bitmap (non-tree): bit i set means region i is FREE (bitmap_init fills
 * with ones, allocation clears). */
static inline bool hs_je_region_free(const uint64_t *bitmap, unsigned i)
{
	return (bitmap[i / 64] >> (i % 64)) & 1;
}

/* Free regions among the first nregs (what e_bits.nfree should say). */
static inline unsigned hs_je_bitmap_count_free(const uint64_t *bitmap, unsigned nregs)
{
	unsigned n = 0;
	for (unsigned g = 0; g * 64 < nregs; g++) {
		uint64_t w = bitmap[g];
		if (nregs - g * 64 < 64)
			w &= (UINT64_C(1) << (nregs - g * 64)) - 1;
		n += (unsigned)__builtin_popcountll(w);
	}
	return n;
}

/* Objects cached in a cache_bin_t: its stack grows down from the "empty"
 * position, whose low 16 bits are low_bits_empty; the objects are
 * stack_head[0 .. ncached). */
static inline unsigned hs_je_cache_bin_ncached(uint64_t stack_head, uint16_t low_bits_empty)
{
	return (uint16_t)(low_bits_empty - (uint16_t)stack_head) / 8u;
}

/* --- size classes (computed, as jemalloc's sc.c does at boot) ---------- */

#define HS_JE_MAX_SIZES 240
#define HS_JE_MAX_BINS 64

struct hs_je_bin_info {
	uint64_t reg_size, slab_size;
	uint32_t nregs;
};

struct hs_je_sizes {
	unsigned lg_quantum, lg_page;
	unsigned nsizes, nbins;
	uint64_t index2size[HS_JE_MAX_SIZES];
	struct hs_je_bin_info bins[HS_JE_MAX_BINS];
};

/* The size classes of a build with this quantum and page size (64-bit
 * pointers, 4 classes per doubling): jemalloc's sz_index2size_tab and
 * bin_infos.  Fails (HS_ERR_OTHER) for parameters it cannot represent. */
struct hs_error *hs_je_sizes_compute(unsigned lg_quantum, unsigned lg_page,
				     struct hs_je_sizes *ret);

/* The bytes jemalloc's bin_infos[] (bin_info_t, 40 bytes each: reg_size,
 * slab_size, nregs, n_shards = 1, bitmap nbits, ngroups) hold for these
 * classes; buf has room for nbins * 40 bytes. */
size_t hs_je_bin_infos_image(const struct hs_je_sizes *sz, uint8_t *buf);

#endif
