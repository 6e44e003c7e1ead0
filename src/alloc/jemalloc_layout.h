/* jemalloc_layout.h - the jemalloc 5.3.0 layout the walker reads: one table of
 * offsets with where each was checked, and the pure decoders of jemalloc's
 * packed words (rtree leaf elements, edata_t.e_bits, slab bitmaps, cache_bin_t).
 *
 * The decoders take numbers and bytes, never the target: they are what the
 * unit tests exercise on synthetic buffers.
 *
 * Supported builds (x86-64, LG_PAGE 12, LG_QUANTUM 4, non-debug, one bin shard,
 * default non-tree bitmaps), one table each:
 *   hs_je_layout_5_3_0       jemalloc 5.3.0, LG_VADDR 48: a 2-level rtree of
 *                            compact (8-byte) leaf elements.  Debian 12's
 *                            libjemalloc2/libjemalloc-dev 5.3.0-1, and jemalloc's
 *                            own configure on a machine without 5-level paging.
 *   hs_je_layout_5_3_0_va57  jemalloc 5.3.0, LG_VADDR 57 (configure ran on a CPU
 *                            with LA57): a 3-level rtree (15+15+15 bits) of
 *                            16-byte leaf elements {edata_t *, u32 metadata}.
 *                            Debian 13's 5.3.0-3.  Nothing else differs (LG_VADDR
 *                            is used by rtree.h only: [S] git grep LG_VADDR).
 *   hs_je_layout_5_2_1       jemalloc 5.2.1, LG_VADDR 48: extent_t, the global
 *                            rtree je_extents_rtree (no base_t member), leaf
 *                            elements without state bits, bins as shard pointers,
 *                            tcache_t with bins_small[]/bins_large[] of
 *                            cache_bin_t {low_water, ncached, tstats, avail}.
 *                            Debian 11's libjemalloc2/libjemalloc-dev 5.2.1-3.
 * Other versions and configurations are recognised and refused by name
 * (alloc_jemalloc.c).
 *
 * Sources, as tagged on each entry:
 *   [P] pahole on jemalloc 5.3.0 (tag 5.3.0, 54eaed1d) rebuilt with -g and
 *       Debian's configure options; data symbol sizes equal Debian's libjemalloc.a
 *   [D] the disassembly of Debian's stripped libjemalloc.so.2
 *       (build-id 1d5163c246dc9cd2b4d339f2ac42efd95c6e0ae1)
 *   [E] read back on the fixture cores (cores/jemalloc_heap.c) and agreeing with
 *       the program's own truth and malloc_stats_print
 *   [S] the 5.3.0 source (struct order and sizes added up by hand), then [E]
 *   [P21] gdb "ptype /o" on jemalloc 5.2.1 (tag 5.2.1, ea6b3e97) built with -g and
 *       --enable-prof; its data symbol sizes equal Debian 11's libjemalloc.a
 *       (nm -S diff: only glibc's __malloc_hook & co., which Debian's adds)
 *   [D13] the disassembly of Debian 13's stripped libjemalloc.so.2 5.3.0-3
 *       (build-id 16d086887ed57ed2350b288be499d57e5e595e73): malloc_usable_size
 *       masks keys with 0xfffffffff8000000 (a 2^27-byte leaf), indexes 16-byte
 *       elements with shr $8; and $0x7fff0, reads szind as le_metadata >> 5
 *   [P13] gdb "ptype /o" on jemalloc 5.3.0 built with -g, --enable-prof and
 *       --with-lg-vaddr=57: sizeof(emap_t) 0x40078 (root[32768] @0x78),
 *       sizeof(rtree_leaf_elm_t) 16 {le_edata @0, le_metadata @8}, and every
 *       other offset of the LG_VADDR 48 table unchanged (tsd_t 2632, rtree_ctx
 *       @432, tcache @856, arena_t 78952 with tcache_ql @10392, bin_t 224,
 *       tcache_t 1760, edata_t 128); all 314 data symbol sizes of that
 *       libjemalloc.a equal Debian 13's (nm -S diff empty)
 *   [E21], [E13] read back on the matrix cores (cores/make-matrix-cores.sh)
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
#include <string.h>
#include "bits.h"
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

enum hs_je_cache_bin_kind {
	HS_JE_CB_STACK,   /* 5.3: stack_head grows down to low_bits_empty */
	HS_JE_CB_AVAIL,   /* 5.2: the objects are avail[-ncached .. -1] */
};

struct hs_je_layout {
	const char *version;             /* the version string's prefix: "5.3.0-" */
	const char *name;                /* "5.3.0 (LG_VADDR 48)" */
	unsigned lg_page, lg_quantum, lg_vaddr;
	unsigned nbins, nsizes;          /* SC_NBINS, SC_NSIZES */
	uint64_t large_pad;              /* sz_large_pad: one page when cache_oblivious */
	uint64_t tcache_maxclass;        /* opt.tcache_max default: largest cached class */

	/* emap_t je_arena_emap_global = rtree_t { base_t *base; mutex; root[] }
	 * (5.2: rtree_t je_extents_rtree = { mutex; root[] }) */
	const char *emap_symbol;         /* without the je_ prefix */
	uint64_t emap_size, emap_root;
	bool emap_has_base;              /* its first word is a base_t * */
	unsigned height;                 /* rtree levels: 2 or 3 */
	unsigned root_bits, node_bits, leaf_bits;   /* subkey widths (node_bits 0: 2 levels) */
	unsigned leaf_elm_size;          /* 8: compact le_bits; 16: {le_edata, le_metadata} */
	struct hs_je_bits leaf_szind, leaf_state, leaf_is_head, leaf_slab;  /* compact; width 0: none */
	unsigned leaf_edata_lg_align;    /* low bits masked off the pointer */
	unsigned leaf_edata_bits;        /* bits below this hold the pointer (sign-extended) */
	struct hs_je_bits meta_szind, meta_state, meta_is_head, meta_slab;  /* le_metadata (16-byte) */

	/* edata_t */
	uint64_t edata_size;
	uint64_t edata_bits, edata_addr, edata_size_esn, edata_bitmap;
	unsigned bitmap_words;           /* bitmap_t bitmap[BITMAP_GROUPS_MAX] */
	struct hs_je_bits eb_arena, eb_slab, eb_state, eb_szind, eb_nfree, eb_shard, eb_is_head;

	/* arena_t.  5.3 holds two copies of the emap's address (pac, shard) and
	 * its index; 5.2 neither: its bin_t shards follow the arena_t (bins[0]
	 * points at arena + arena_bins) and its index is its base_t's. */
	uint64_t arena_nthreads, arena_tcache_ql, arena_pac_emap, arena_shard_ind,
		 arena_shard_emap, arena_ind, arena_base, arena_bins, arena_size;
	uint64_t arena_bin_shards;       /* 5.2: bins_t bins[] (bin_t *), 0 when bins are inline */
	uint64_t bin_size, bin_slabcur;
	unsigned arenas_max;             /* je_arenas[]: MALLOCX_ARENA_LIMIT - 1 */

	/* base_t and base_block_t */
	uint64_t base_ind, base_blocks, base_mapped, block_size, block_next;

	/* tsd_t (je_tsd_tls), tcache_t, tcache_slow_t, cache_bin_t */
	uint64_t tsd_size, tsd_arena, tsd_tcache_slow, tsd_rtree_ctx, tsd_state, tsd_tcache;
	unsigned rtree_ctx_entries;      /* RTREE_CTX_NCACHE + RTREE_CTX_NCACHE_L2 {leafkey, leaf} */
	unsigned rtree_ctx_elm_size;     /* sizeof(rtree_ctx_cache_elm_t): leafkey, leaf */
	unsigned rtree_ctx_elm_leaf;     /* offsetof(rtree_ctx_cache_elm_t, leaf) */
	/* The arena's tcache ring links tcache_slow_t (5.3) or tcache_t itself
	 * (5.2, ring_is_tcache) at tcache_slow_link (next) / _prev. */
	bool ring_is_tcache;
	uint64_t tcache_slow_link, tcache_slow_prev, tcache_slow_arena, tcache_slow_tcache;
	/* cache_bin_array_descriptor_t in tcache_slow_t (5.3) or tcache_t (5.2):
	 * its bins pointer(s) point back into the tcache_t. */
	uint64_t desc_bins;              /* offset of the descriptor's bins pointer */
	bool desc_in_tcache;             /* the descriptor is in tcache_t (5.2) */
	uint64_t cacheline;              /* base_alloc alignment of leaves and arena_t */
	uint64_t tcache_bins;            /* bins (5.3), bins_small (5.2) */
	uint64_t tcache_bins_large;      /* 5.2: bins_large (szind nbins..), 0: one array */
	unsigned tcache_nbins_max;       /* cache_bin_t bins[TCACHE_NBINS_MAX] (5.2: small + large) */
	enum hs_je_cache_bin_kind cache_bin_kind;
	uint64_t cache_bin_size, cache_bin_stack_head, cache_bin_low_bits_empty;
	uint64_t cache_bin_ncached, cache_bin_avail;   /* HS_JE_CB_AVAIL */
};

/* jemalloc 5.3.0, x86-64, LG_PAGE 12, LG_QUANTUM 4, non-debug: all but the rtree. */
#define HS_JE_5_3_0_COMMON                                                                  \
	.version = "5.3.0-",                                                                \
	.lg_page = 12, .lg_quantum = 4,                       /* [P][D] */                  \
	.nbins = 36, .nsizes = 232,                           /* [P][E] */                  \
	.large_pad = 4096,                                    /* [E] e_size = usize + 4096 */ \
	.tcache_maxclass = 32768,                             /* [E] nhbins 41 */           \
	.emap_symbol = "arena_emap_global", .emap_root = 0x78, .emap_has_base = true, /* [P] */ \
	.edata_size = 128,                                    /* [P] */                     \
	.edata_bits = 0, .edata_addr = 8, .edata_size_esn = 16, .edata_bitmap = 64, /* [P][E] */ \
	.bitmap_words = 8,                                    /* [P] 512 regions max */     \
	.eb_arena = { 0, 12 }, .eb_slab = { 12, 1 }, .eb_state = { 17, 3 },   /* [P][E] */   \
	.eb_szind = { 20, 8 }, .eb_nfree = { 28, 10 }, .eb_shard = { 38, 6 },               \
	.eb_is_head = { 44, 1 },                                                            \
	.arena_nthreads = 0, .arena_tcache_ql = 10392,        /* [P][E] */                  \
	.arena_pac_emap = 69056, .arena_shard_ind = 78888,    /* [P][E] */                  \
	.arena_shard_emap = 78912, .arena_ind = 78928,        /* [P][E] */                  \
	.arena_base = 78936, .arena_bins = 78952,             /* [P][E] */                  \
	.arena_size = 78952 + 36 * 224,                       /* [P] bins[] of one shard each */ \
	.bin_size = 224, .bin_slabcur = 192,                  /* [P][E] */                  \
	.arenas_max = 4095,                                   /* [P] sizeof(je_arenas) 0x7ff8 */ \
	.base_ind = 0, .base_blocks = 160, .base_mapped = 3896, /* [S][E] sum of blocks == mapped */ \
	.block_size = 0, .block_next = 8,                     /* [S][E] */                  \
	.tsd_size = 0xa48, .tsd_arena = 144, .tsd_tcache_slow = 256,   /* [P][D][E] */      \
	.tsd_rtree_ctx = 432, .tsd_state = 816, .tsd_tcache = 856,     /* [P][D] %fs:0x330 */ \
	.rtree_ctx_entries = 16 + 8,                          /* [P] */                     \
	.rtree_ctx_elm_size = 16, .rtree_ctx_elm_leaf = 8,   /* [S] rtree_ctx_cache_elm_t */ \
	.tcache_slow_link = 0, .tcache_slow_prev = 8,         /* [P][E] qr ring: next, prev */ \
	.tcache_slow_arena = 40, .tcache_slow_tcache = 168,   /* [P][E] */                  \
	.desc_bins = 16 + 16,                                 /* [S] tcache_slow_t.cache_bin_array_descriptor.bins */ \
	.cacheline = 64,                                      /* [P][E] CACHELINE */        \
	.tcache_bins = 8, .tcache_nbins_max = 73,             /* [P][E] */                  \
	.cache_bin_kind = HS_JE_CB_STACK,                                                   \
	.cache_bin_size = 24, .cache_bin_stack_head = 0, .cache_bin_low_bits_empty = 20 /* [P][E] */

/* LG_VADDR 48: a 2-level rtree (18 + 18 bits) of compact leaf elements. */
static const struct hs_je_layout hs_je_layout_5_3_0 = {
	HS_JE_5_3_0_COMMON,
	.name = "5.3.0 (LG_VADDR 48)",
	.lg_vaddr = 48,                                        /* [P][D] */
	.emap_size = 0x200078,                                 /* [P] sizeof */
	.height = 2, .root_bits = 18, .node_bits = 0, .leaf_bits = 18, /* [P][D] shr 9; and 0x1ffff8 */
	.leaf_elm_size = 8,
	.leaf_szind = { 48, 16 }, .leaf_state = { 2, 3 },      /* [P][D] shr $0x30 */
	.leaf_is_head = { 1, 1 }, .leaf_slab = { 0, 1 },       /* [P][E] */
	.leaf_edata_lg_align = 7, .leaf_edata_bits = 48,       /* [P][E] mask ~0x7f */
};

/* LG_VADDR 57: RTREE_NSB 45 > 36, so 3 levels of 15 bits; RTREE_NHIB 7 <
 * LG_CEIL(SC_NSIZES) 8, so no compact leaf: {edata_t *le_edata; unsigned
 * le_metadata = szind << 5 | state << 2 | is_head << 1 | slab} (rtree.h,
 * rtree_contents_encode) [S][D13][E13]. */
static const struct hs_je_layout hs_je_layout_5_3_0_va57 = {
	HS_JE_5_3_0_COMMON,
	.name = "5.3.0 (LG_VADDR 57)",
	.lg_vaddr = 57,                                        /* [D13] */
	.emap_size = 0x78 + 8 * (1 << 15),                     /* [S][P13] root[1 << RTREE_NSB/3] */
	.height = 3, .root_bits = 15, .node_bits = 15, .leaf_bits = 15, /* [S][D13] and $0x7fff0 */
	.leaf_elm_size = 16,                                   /* [P13] */
	.leaf_edata_lg_align = 7, .leaf_edata_bits = 57,       /* [S] le_edata: a plain pointer */
	.meta_szind = { 5, 8 }, .meta_state = { 2, 3 },        /* [S][D13] shr $0x5 */
	.meta_is_head = { 1, 1 }, .meta_slab = { 0, 1 },       /* [S] */
};

/* jemalloc 5.2.1, x86-64, LG_PAGE 12, LG_QUANTUM 4, LG_VADDR 48, non-debug.
 * Every offset [P21], then [E21] on Debian 11's build. */
static const struct hs_je_layout hs_je_layout_5_2_1 = {
	.version = "5.2.1-",
	.name = "5.2.1 (LG_VADDR 48)",
	.lg_page = 12, .lg_quantum = 4, .lg_vaddr = 48,
	.nbins = 36, .nsizes = 232,                            /* sizeof(je_bin_infos) 0x5a0 */
	.large_pad = 4096, .tcache_maxclass = 32768,           /* opt_lg_tcache_max 15, nhbins 41 */
	/* rtree_t je_extents_rtree { malloc_mutex_t init_lock (112); root[2^18] } */
	.emap_symbol = "extents_rtree", .emap_size = 0x200070, .emap_root = 0x70, .emap_has_base = false,
	.height = 2, .root_bits = 18, .node_bits = 0, .leaf_bits = 18,
	.leaf_elm_size = 8,
	/* le_bits = szind << 48 | extent_t * | slab: no state, no is_head (rtree.h) */
	.leaf_szind = { 48, 16 }, .leaf_state = { 0, 0 }, .leaf_is_head = { 0, 0 }, .leaf_slab = { 0, 1 },
	.leaf_edata_lg_align = 1, .leaf_edata_bits = 48,       /* mask ~1 */
	/* extent_t: 128 bytes, e_bits, e_addr @8, e_size_esn @16, e_slab_data @64 */
	.edata_size = 128, .edata_bits = 0, .edata_addr = 8, .edata_size_esn = 16, .edata_bitmap = 64,
	.bitmap_words = 8,
	/* arena 0-11, slab 12, committed 13, dumpable 14, zeroed 15, state 16-17,
	 * szind 18-25, nfree 26-35, bin_shard 36-41, is_head 42 (extent_structs.h) */
	.eb_arena = { 0, 12 }, .eb_slab = { 12, 1 }, .eb_state = { 16, 2 },
	.eb_szind = { 18, 8 }, .eb_nfree = { 26, 10 }, .eb_shard = { 36, 6 },
	.eb_is_head = { 42, 1 },
	/* arena_t (29496 bytes): nthreads @0, tcache_ql @10184, bins_t bins[36]
	 * @29192, base @29480; its bin_t shards (280 bytes) follow it */
	.arena_nthreads = 0, .arena_tcache_ql = 10184,
	.arena_pac_emap = 0, .arena_shard_ind = 0, .arena_shard_emap = 0, .arena_ind = 0,
	.arena_base = 29480, .arena_bins = 29496, .arena_size = 29496 + 36 * 280,
	.arena_bin_shards = 29192,
	.bin_size = 280, .bin_slabcur = 112,
	.arenas_max = 4095,                                    /* sizeof(je_arenas) 0x7ff8 */
	/* base_t: ind @0, blocks @144, mapped @2024; base_block_t: size @0, next @8 */
	.base_ind = 0, .base_blocks = 144, .base_mapped = 2024, .block_size = 0, .block_next = 8,
	/* tsd_t (6216 bytes): state @0, rtree_ctx @48 (16 + 8 entries), arena @440,
	 * tcache_t tcache @496 */
	.tsd_size = 0x1848, .tsd_arena = 440, .tsd_tcache_slow = 496, .tsd_rtree_ctx = 48,
	.tsd_state = 0, .tsd_tcache = 496,
	.rtree_ctx_entries = 16 + 8,
	.rtree_ctx_elm_size = 16, .rtree_ctx_elm_leaf = 8,
	/* tcache_t (5704 bytes): bins_small[36] @16, link {next, prev} @880,
	 * cache_bin_array_descriptor @920 {link; bins_small @+16; bins_large @+24},
	 * arena @952, bins_large[196] @1000 */
	.ring_is_tcache = true,
	.tcache_slow_link = 880, .tcache_slow_prev = 888, .tcache_slow_arena = 952, .tcache_slow_tcache = 0,
	.desc_bins = 920 + 16, .desc_in_tcache = true,
	.cacheline = 64,
	.tcache_bins = 16, .tcache_bins_large = 1000, .tcache_nbins_max = 36 + 196,
	/* cache_bin_t (24 bytes): i32 low_water @0, i32 ncached @4, tstats @8, void **avail @16 */
	.cache_bin_kind = HS_JE_CB_AVAIL,
	.cache_bin_size = 24, .cache_bin_ncached = 4, .cache_bin_avail = 16,
};

/* Every layout, in the order they are tried. */
static const struct hs_je_layout *const hs_je_layouts[] = {
	&hs_je_layout_5_3_0, &hs_je_layout_5_3_0_va57, &hs_je_layout_5_2_1,
};
#define HS_JE_NLAYOUTS (sizeof(hs_je_layouts) / sizeof(hs_je_layouts[0]))

/* --- decoders ---------------------------------------------------------- */

struct hs_je_leaf_elm {
	uint64_t edata;            /* 0: a cleared element (it reads 0x00e8000000000000) */
	unsigned szind, state;
	bool is_head, slab;
};

/* A compact (8-byte) leaf element. */
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

/* Leaf element i of a leaf's bytes, compact or not. */
static inline void hs_je_leaf_elm_at(const struct hs_je_layout *L, const uint8_t *leaf, size_t i,
				     struct hs_je_leaf_elm *ret)
{
	uint64_t w0;
	memcpy(&w0, leaf + i * L->leaf_elm_size, 8);
	if (L->leaf_elm_size == 8) {
		hs_je_leaf_elm_decode(L, w0, ret);
		return;
	}
	uint32_t meta;
	memcpy(&meta, leaf + i * L->leaf_elm_size + 8, 4);
	ret->edata = w0 & ~((UINT64_C(1) << L->leaf_edata_lg_align) - 1);
	ret->szind = (unsigned)hs_je_field(meta, L->meta_szind);
	ret->state = (unsigned)hs_je_field(meta, L->meta_state);
	ret->is_head = hs_je_field(meta, L->meta_is_head) != 0;
	ret->slab = hs_je_field(meta, L->meta_slab) != 0;
}

/* Does the layout's leaf element carry the extent state? */
static inline bool hs_je_leaf_has_state(const struct hs_je_layout *L)
{
	return L->leaf_elm_size == 16 ? L->meta_state.width != 0 : L->leaf_state.width != 0;
}

/* The bytes of one leaf (2^leaf_bits elements). */
static inline uint64_t hs_je_leaf_bytes(const struct hs_je_layout *L)
{
	return ((uint64_t)L->leaf_elm_size) << L->leaf_bits;
}

/* The address span of one leaf: 1 GiB (48-bit, 2 levels), 128 MiB (57-bit). */
static inline unsigned hs_je_leaf_span_bits(const struct hs_je_layout *L)
{
	return L->leaf_bits + L->lg_page;
}

/* The page address of leaf element i1 under root slot i0 (2 levels), or of
 * a leaf whose key prefix (root and node slots) is i0 << node_bits | node slot. */
static inline uint64_t hs_je_rtree_key(const struct hs_je_layout *L, uint64_t i0, uint64_t i1)
{
	return (i0 << (L->leaf_bits + L->lg_page)) | (i1 << L->lg_page);
}

/* Root slot, node slot (3 levels) and leaf element of a page address. */
static inline uint64_t hs_je_rtree_root_index(const struct hs_je_layout *L, uint64_t key)
{
	return (key >> (L->node_bits + L->leaf_bits + L->lg_page)) & ((UINT64_C(1) << L->root_bits) - 1);
}
static inline uint64_t hs_je_rtree_node_index(const struct hs_je_layout *L, uint64_t key)
{
	return (key >> (L->leaf_bits + L->lg_page)) & ((UINT64_C(1) << L->node_bits) - 1);
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
		n += hs_popcount64(w);
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
