/* test_jemalloc.c - the jemalloc walker on synthetic memory: the packed
 * words decoded one by one (rtree leaf elements, e_bits, slab bitmaps,
 * cache_bin_t), the size classes, and a whole small heap built in buffers the
 * way jemalloc leaves it (emap rtree, edata_t, slabs, large extents, a tcache
 * on its arena's ring, base blocks), walked and compared; then the same heap
 * with one thing broken at a time.
 *
 * The offsets used to build the heap are written out here from jemalloc 5.3.0's
 * structs (see shared/reference/jemalloc-5.3.md), not read from
 * jemalloc_layout.h, so that the table is tested rather than repeated.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "unit_util.h"
#include "alloc.h"
#include "jemalloc_layout.h"
#include "memory.h"
#include "session.h"
#include "target.h"

/* --- decoders ----------------------------------------------------------- */

static void test_leaf_element(void **state)
{
	(void)state;
	const struct hs_je_layout *L = &hs_je_layout_5_3_0;
	struct hs_je_leaf_elm e;
	// szind 5 | edata 0x7ffff7a01080 | state muzzy (2) | is_head | slab
	uint64_t bits = (UINT64_C(5) << 48) | UINT64_C(0x7ffff7a01080) | (2u << 2) | 2 | 1;
	hs_je_leaf_elm_decode(L, bits, &e);
	assert_int_equal(e.edata, UINT64_C(0x7ffff7a01080));
	assert_int_equal(e.szind, 5);
	assert_int_equal(e.state, 2);
	assert_true(e.is_head);
	assert_true(e.slab);
	// A cleared element: no edata, szind SC_NSIZES.
	hs_je_leaf_elm_decode(L, UINT64_C(0x00e8000000000000), &e);
	assert_int_equal(e.edata, 0);
	assert_int_equal(e.szind, 232);
	// Bit 47 sign-extends (the pointer field is 48 bits).
	hs_je_leaf_elm_decode(L, UINT64_C(0x0001800000000080), &e);
	assert_int_equal(e.edata, UINT64_C(0xffff800000000080));
	assert_int_equal(e.szind, 1);
	// Page keys: 1 GiB per root slot, 4 KiB per leaf element.
	assert_int_equal(hs_je_rtree_key(L, 0x1fffe, 3), UINT64_C(0x7fff80003000));
	assert_int_equal(hs_je_rtree_root_index(L, UINT64_C(0x7fff80003abc)), 0x1fffe);
	assert_int_equal(hs_je_rtree_leaf_index(L, UINT64_C(0x7fff80003abc)), 3);
}

/* Debian 13's 5.3.0 (LG_VADDR 57): 16-byte elements {edata_t *, u32
 * szind << 5 | state << 2 | is_head << 1 | slab} and 3 levels of 15 bits;
 * 5.2.1: compact, szind << 48 | extent_t * | slab, no state. */
static void test_leaf_element_other_builds(void **state)
{
	(void)state;
	const struct hs_je_layout *L = &hs_je_layout_5_3_0_va57;
	uint8_t leaf[3 * 16];
	memset(leaf, 0, sizeof(leaf));
	uint64_t ed = UINT64_C(0x7ffff7a01080);
	uint32_t meta = (7u << 5) | (1u << 2) | 2 | 1;
	memcpy(leaf + 16, &ed, 8);
	memcpy(leaf + 24, &meta, 4);
	struct hs_je_leaf_elm e;
	hs_je_leaf_elm_at(L, leaf, 1, &e);
	assert_int_equal(e.edata, ed);
	assert_int_equal(e.szind, 7);
	assert_int_equal(e.state, 1);
	assert_true(e.is_head);
	assert_true(e.slab);
	hs_je_leaf_elm_at(L, leaf, 0, &e);
	assert_int_equal(e.edata, 0);
	assert_true(hs_je_leaf_has_state(L));
	assert_int_equal(hs_je_leaf_bytes(L), 16 << 15);
	// 0x7fff_8000_3abc: root 0x7fff8000_3abc >> 42, node (>> 27) & 0x7fff, leaf (>> 12) & 0x7fff
	uint64_t k = UINT64_C(0x7fff80003abc);
	assert_int_equal(hs_je_rtree_root_index(L, k), k >> 42);
	assert_int_equal(hs_je_rtree_node_index(L, k), (k >> 27) & 0x7fff);
	assert_int_equal(hs_je_rtree_leaf_index(L, k), 3);

	L = &hs_je_layout_5_2_1;
	uint64_t bits = (UINT64_C(36) << 48) | UINT64_C(0x7ffff7a010c0) | 1;
	hs_je_leaf_elm_decode(L, bits, &e);
	assert_int_equal(e.edata, UINT64_C(0x7ffff7a010c0));
	assert_int_equal(e.szind, 36);
	assert_int_equal(e.state, 0);
	assert_true(e.slab);
	assert_false(hs_je_leaf_has_state(L));
	// extent_t.e_bits: arena 3, slab, state retained (16-17), szind 35 (18-25),
	// nfree 9 (26-35), shard 2 (36-41), is_head (42)
	uint64_t eb = 3 | (UINT64_C(1) << 12) | (UINT64_C(3) << 16) | (UINT64_C(35) << 18) | (UINT64_C(9) << 26) |
		      (UINT64_C(2) << 36) | (UINT64_C(1) << 42);
	struct hs_je_ebits d;
	hs_je_ebits_decode(L, eb, &d);
	assert_int_equal(d.arena, 3);
	assert_true(d.slab);
	assert_int_equal(d.state, 3);
	assert_int_equal(d.szind, 35);
	assert_int_equal(d.nfree, 9);
	assert_int_equal(d.shard, 2);
	assert_true(d.is_head);
}

static void test_ebits(void **state)
{
	(void)state;
	const struct hs_je_layout *L = &hs_je_layout_5_3_0;
	struct hs_je_ebits eb;
	// arena 7, slab, committed, state dirty, szind 35, nfree 513, shard 2, head
	uint64_t bits = 7 | (1u << 12) | (1u << 13) | (UINT64_C(1) << 17) | (UINT64_C(35) << 20) |
			(UINT64_C(513) << 28) | (UINT64_C(2) << 38) | (UINT64_C(1) << 44);
	hs_je_ebits_decode(L, bits, &eb);
	assert_int_equal(eb.arena, 7);
	assert_true(eb.slab);
	assert_int_equal(eb.state, 1);
	assert_int_equal(eb.szind, 35);
	assert_int_equal(eb.nfree, 513);
	assert_int_equal(eb.shard, 2);
	assert_true(eb.is_head);
}

static void test_bitmap(void **state)
{
	(void)state;
	uint64_t bm[8] = { 0 };
	bm[0] = UINT64_C(1) << 63 | 1;     // regions 0 and 63 free
	bm[1] = 0xff;                      // regions 64..71 free
	assert_true(hs_je_region_free(bm, 0));
	assert_false(hs_je_region_free(bm, 1));
	assert_true(hs_je_region_free(bm, 63));
	assert_true(hs_je_region_free(bm, 71));
	assert_false(hs_je_region_free(bm, 72));
	assert_int_equal(hs_je_bitmap_count_free(bm, 128), 10);
	// Bits past nregs (a partial last group) do not count.
	assert_int_equal(hs_je_bitmap_count_free(bm, 68), 6);
	assert_int_equal(hs_je_bitmap_count_free(bm, 64), 2);
}

static void test_cache_bin(void **state)
{
	(void)state;
	// The stack grows down from the "empty" position.
	assert_int_equal(hs_je_cache_bin_ncached(UINT64_C(0x7ffff0001000), 0x1000), 0);
	assert_int_equal(hs_je_cache_bin_ncached(UINT64_C(0x7ffff0000fe8), 0x1000), 3);
	// The low 16 bits wrap between the head and the empty position.
	assert_int_equal(hs_je_cache_bin_ncached(UINT64_C(0x7ffff000fff8), 0x0010), 3);
}

static void test_size_classes(void **state)
{
	(void)state;
	struct hs_je_sizes sz;
	assert_null(hs_je_sizes_compute(4, 12, &sz));
	assert_int_equal(sz.nsizes, 232);
	assert_int_equal(sz.nbins, 36);
	static const uint64_t first[] = { 8, 16, 32, 48, 64, 80, 96, 112, 128, 160 };
	for (size_t i = 0; i < sizeof(first) / sizeof(first[0]); i++)
		assert_int_equal(sz.index2size[i], first[i]);
	assert_int_equal(sz.index2size[35], 14336);
	assert_int_equal(sz.index2size[36], 16384);
	assert_int_equal(sz.index2size[39], 28672);
	assert_int_equal(sz.index2size[40], 32768);
	assert_int_equal(sz.index2size[41], 40960);
	assert_int_equal(sz.index2size[231], UINT64_C(0x7000000000000000));
	// reg_size / slab pages / nregs, as bin_infos says on Debian's build.
	static const struct { unsigned bin; uint64_t reg, pages; uint32_t nregs; } b[] = {
		{ 0, 8, 1, 512 }, { 3, 48, 3, 256 }, { 7, 112, 7, 256 }, { 8, 128, 1, 32 },
		{ 28, 4096, 1, 1 }, { 32, 8192, 2, 1 }, { 35, 14336, 7, 2 },
	};
	for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++) {
		assert_int_equal(sz.bins[b[i].bin].reg_size, b[i].reg);
		assert_int_equal(sz.bins[b[i].bin].slab_size, b[i].pages * 4096);
		assert_int_equal(sz.bins[b[i].bin].nregs, b[i].nregs);
	}
	// bin_info_t image: reg_size, slab_size, nregs | n_shards << 32, nbits, ngroups.
	uint8_t img[HS_JE_MAX_BINS * 40];
	assert_int_equal(hs_je_bin_infos_image(&sz, img), 36 * 40);
	uint64_t w[5];
	memcpy(w, img + 3 * 40, 40);
	assert_int_equal(w[0], 48);
	assert_int_equal(w[1], 12288);
	assert_int_equal(w[2], 256 | (UINT64_C(1) << 32));
	assert_int_equal(w[3], 256);
	assert_int_equal(w[4], 4);
	// Other builds, named when refused: LG_QUANTUM 3 (235 classes, 39 bins),
	// 64 KiB pages (52 bins).
	assert_null(hs_je_sizes_compute(3, 12, &sz));
	assert_int_equal(sz.nsizes, 235);
	assert_int_equal(sz.nbins, 39);
	assert_null(hs_je_sizes_compute(4, 16, &sz));
	assert_int_equal(sz.nbins, 52);
	struct hs_error *err = hs_je_sizes_compute(2, 12, &sz);
	assert_non_null(err);
	hs_error_destroy(err);
}

static void test_layout_table(void **state)
{
	(void)state;
	const struct hs_je_layout *L = &hs_je_layout_5_3_0;
	// The numbers that must hold together.
	assert_int_equal(L->emap_size, L->emap_root + (UINT64_C(8) << L->root_bits));
	assert_int_equal(L->root_bits + L->leaf_bits + L->lg_page, L->lg_vaddr);
	assert_int_equal(L->arena_size, L->arena_bins + L->nbins * L->bin_size);
	assert_int_equal(L->tsd_rtree_ctx, L->tsd_tcache_slow + 176);
	assert_int_equal(L->edata_bitmap + 8 * L->bitmap_words, L->edata_size);
	assert_int_equal(L->tcache_bins + L->tcache_nbins_max * L->cache_bin_size, 1760);
	// LG_VADDR 57: only the rtree differs.
	const struct hs_je_layout *V = &hs_je_layout_5_3_0_va57;
	assert_int_equal(V->emap_size, V->emap_root + (UINT64_C(8) << V->root_bits));
	assert_int_equal(V->root_bits + V->node_bits + V->leaf_bits + V->lg_page, V->lg_vaddr);
	assert_int_equal(V->tsd_size, L->tsd_size);
	assert_int_equal(V->arena_size, L->arena_size);
	// 5.2.1 (ptype /o): sizes that follow from the offsets.
	const struct hs_je_layout *O = &hs_je_layout_5_2_1;
	assert_int_equal(O->emap_size, O->emap_root + (UINT64_C(8) << O->root_bits));
	assert_int_equal(O->root_bits + O->leaf_bits + O->lg_page, O->lg_vaddr);
	assert_int_equal(O->arena_size, O->arena_bins + O->nbins * O->bin_size);
	assert_int_equal(O->arena_bin_shards + 8 * O->nbins, O->arena_base - 0);   // bins[36] then base
	assert_int_equal(O->tcache_bins + O->nbins * O->cache_bin_size, O->tcache_slow_link);  // then link
	assert_int_equal(O->tcache_bins_large + (O->tcache_nbins_max - O->nbins) * O->cache_bin_size, 5704);
	assert_int_equal(O->tsd_tcache + 5704 + 16, O->tsd_size);   // tcache, witness_tsd, end
	assert_int_equal(O->tsd_rtree_ctx + 16 * O->rtree_ctx_entries, 432);   // then iarena
	assert_int_equal(O->edata_bitmap + 8 * O->bitmap_words, O->edata_size);
}

/* --- a synthetic heap -------------------------------------------------------- */

#define EMAP      UINT64_C(0x555555600000)   /* je_arena_emap_global (module .bss) */
#define ARENAS    UINT64_C(0x555555802000)   /* je_arenas[] */
#define BASE      UINT64_C(0x7ffff7000000)   /* the base block (4 MiB) */
#define LEAF      (BASE + 0x1000)             /* one rtree leaf (2 MiB) */
#define EDATA     (BASE + 0x202000)           /* edata_t records */
#define ARENA     (BASE + 0x210000)           /* arena_t of arena 0 */
#define BASE_T    (BASE + 0x80)               /* base_t */
#define TSLOW     (BASE + 0x240000)           /* tcache_slow_t (explicit tcache) */
#define TCACHE    (BASE + 0x240100)           /* tcache_t */
#define HEAP      UINT64_C(0x7fff80000000)    /* 1 GiB aligned: root slot 0x1fffe */

/* Extents of the heap. */
#define SLAB32    (HEAP + 0x0000)      /* bin 2: 32-byte regions, 1 page, 128 regions */
#define SLAB48    (HEAP + 0x1000)      /* bin 3: 48-byte regions, 3 pages, 256 regions */
#define LARGE16K  (HEAP + 0x10000)     /* 16384 (szind 36) + pad: cached in the tcache */
#define LARGE40K  (HEAP + 0x20000)     /* 40960 (szind 41) + pad: live */
#define STACK     (HEAP + 0x30000)     /* 28672 (szind 39) + pad: the tcache's stack */
#define DIRTY     (HEAP + 0x40000)     /* 32 KiB dirty */
#define RETAINED  (HEAP + 0x80000)     /* 64 KiB retained */

struct seg { uint64_t start, size; uint8_t *buf; };

struct img {
	struct seg segs[4];
	size_t nsegs;
	unsigned nedata;
};

static struct seg *seg_of(struct img *m, uint64_t addr)
{
	for (size_t i = 0; i < m->nsegs; i++)
		if (addr >= m->segs[i].start && addr + 8 <= m->segs[i].start + m->segs[i].size)
			return &m->segs[i];
	fail_msg("0x%" PRIx64 " is outside the image", addr);
	return NULL;
}

static void w64(struct img *m, uint64_t addr, uint64_t v)
{
	struct seg *s = seg_of(m, addr);
	memcpy(s->buf + (addr - s->start), &v, 8);
}

static uint64_t r64(struct img *m, uint64_t addr)
{
	struct seg *s = seg_of(m, addr);
	uint64_t v;
	memcpy(&v, s->buf + (addr - s->start), 8);
	return v;
}

static void w32(struct img *m, uint64_t addr, uint32_t v)
{
	struct seg *s = seg_of(m, addr);
	memcpy(s->buf + (addr - s->start), &v, 4);
}

static void w16(struct img *m, uint64_t addr, uint16_t v)
{
	struct seg *s = seg_of(m, addr);
	memcpy(s->buf + (addr - s->start), &v, 2);
}

static void add_seg(struct img *m, uint64_t start, uint64_t size)
{
	m->segs[m->nsegs++] = (struct seg){ start, size, calloc(1, size) };
}

/* An edata_t for [base, base + size) and its rtree elements: every page of a
 * slab, the first and last page of anything else. */
static uint64_t extent(struct img *m, uint64_t addr, uint64_t size, unsigned state, bool slab,
		       unsigned szind, unsigned nfree)
{
	uint64_t ed = EDATA + 128 * (uint64_t)m->nedata++;
	uint64_t base = addr & ~UINT64_C(4095);
	uint64_t bits = 0 /* arena 0 */ | ((uint64_t)slab << 12) | (UINT64_C(1) << 13) |
			((uint64_t)state << 17) | ((uint64_t)szind << 20) | ((uint64_t)nfree << 28);
	w64(m, ed + 0, bits);
	w64(m, ed + 8, addr);
	w64(m, ed + 16, size);
	uint64_t elm_sz = state == 0 ? szind : 232;
	uint64_t elm = (elm_sz << 48) | ed | ((uint64_t)state << 2) | (uint64_t)slab;
	for (uint64_t p = base; p < base + size; p += 4096) {
		if (!slab && p != base && p != base + size - 4096)
			continue;
		w64(m, LEAF + 8 * ((p >> 12) & 0x3ffff), elm);
	}
	return ed;
}

struct heap_truth {
	uint64_t cached[4];            /* in the tcache: 3 x 32-byte regions, LARGE16K's object */
	uint64_t free32[2];            /* free in SLAB32's bitmap */
	uint64_t stack_head0, stack_head36;
};

/* The heap: two slabs (some regions free, some cached), a large allocation
 * cached in the tcache, a live one, the tcache's stack, a dirty and a
 * retained extent; arena 0 with the tcache on its ring; one base block. */
static void build(struct img *m, struct heap_truth *t)
{
	memset(m, 0, sizeof(*m));
	add_seg(m, EMAP, 0x203000 + 0x8000);
	add_seg(m, BASE, 0x400000);
	add_seg(m, HEAP, 0x100000);
	// emap: rtree->base, root slot of the heap's GiB
	w64(m, EMAP, BASE_T);
	w64(m, EMAP + 0x78 + 8 * (HEAP >> 30), LEAF);
	// base block and base_t
	w64(m, BASE + 0, 0x400000);
	w64(m, BASE + 8, 0);
	w64(m, BASE_T + 160, BASE);
	w64(m, BASE_T + 3896, 0x400000);
	// arena 0, in je_arenas[0]
	w64(m, ARENAS, ARENA);
	w32(m, ARENA + 0, 1);
	w64(m, ARENA + 69056, EMAP);
	w64(m, ARENA + 78912, EMAP);
	w32(m, ARENA + 78928, 0);
	w32(m, ARENA + 78888, 0);
	w64(m, ARENA + 78936, BASE_T);
	w64(m, ARENA + 10392, TSLOW);

	// SLAB32: 128 regions; 0..9 allocated, 10 and 11 free, the rest free.
	uint64_t bm32[2] = { ~UINT64_C(0x3ff), ~UINT64_C(0) };
	uint64_t ed = extent(m, SLAB32, 4096, 0, true, 2, 118);
	w64(m, ed + 64, bm32[0]);
	w64(m, ed + 72, bm32[1]);
	t->free32[0] = SLAB32 + 10 * 32;
	t->free32[1] = SLAB32 + 11 * 32;
	// SLAB48: 256 regions, all allocated (regions 0..255).
	ed = extent(m, SLAB48, 3 * 4096, 0, true, 3, 0);
	(void)ed;
	// Large: user pointers at a cache-line offset in the first page.
	extent(m, LARGE16K + 0x40, 16384 + 4096, 0, false, 36, 0);
	extent(m, LARGE40K + 0x100, 40960 + 4096, 0, false, 41, 0);
	extent(m, STACK, 28672 + 4096, 0, false, 39, 0);
	extent(m, DIRTY, 0x8000, 1, false, 0, 0);
	extent(m, RETAINED, 0x10000, 3, false, 0, 0);

	// The tcache: ring of one, bin 2 holds regions 7, 8, 9 of SLAB32; bin 36
	// holds the 16 KiB object.  Stacks live in STACK.
	w64(m, TSLOW + 0, TSLOW);
	w64(m, TSLOW + 8, TSLOW);
	w64(m, TSLOW + 168, TCACHE);
	w64(m, TCACHE + 0, TSLOW);
	uint64_t empty2 = STACK + 0x800, empty36 = STACK + 0x2000;
	t->stack_head0 = STACK + 0x100;  // bin 0: empty
	w64(m, TCACHE + 8 + 24 * 0, t->stack_head0);
	w16(m, TCACHE + 8 + 24 * 0 + 20, (uint16_t)t->stack_head0);
	uint64_t head2 = empty2 - 3 * 8;
	w64(m, TCACHE + 8 + 24 * 2, head2);
	w16(m, TCACHE + 8 + 24 * 2 + 20, (uint16_t)empty2);
	for (int i = 0; i < 3; i++) {
		t->cached[i] = SLAB32 + (uint64_t)(7 + i) * 32;
		w64(m, head2 + 8 * (uint64_t)i, t->cached[i]);
	}
	t->stack_head36 = empty36 - 8;
	w64(m, TCACHE + 8 + 24 * 36, t->stack_head36);
	w16(m, TCACHE + 8 + 24 * 36 + 20, (uint16_t)empty36);
	t->cached[3] = LARGE16K + 0x40;
	w64(m, t->stack_head36, t->cached[3]);
}

struct result {
	struct hs_session *s;
	struct hs_heap heap;
	struct hs_alloc_desc d;
	struct hs_error *detect_err, *walk_err;
};

static void walk(struct img *m, struct result *r, bool with_arenas)
{
	struct hs_segment segs[4];
	memset(segs, 0, sizeof(segs));
	for (size_t i = 0; i < m->nsegs; i++) {
		segs[i].start = m->segs[i].start;
		segs[i].end = m->segs[i].start + m->segs[i].size;
		segs[i].filesz = m->segs[i].size;
		segs[i].data = m->segs[i].buf;
		segs[i].flags = HS_SEG_R | HS_SEG_W;
	}
	struct hs_target *t = NULL;
	assert_null(hs_target_open_buffers(segs, m->nsegs, &t));
	r->s = calloc(1, sizeof(*r->s));
	r->s->target = t;
	hs_diags_init(&r->s->diags);
	hs_heap_init(&r->s->heap);
	snprintf(r->s->overrides[0].name, sizeof(r->s->overrides[0].name), "je_arena_emap_global");
	r->s->overrides[0].value = EMAP;
	r->s->noverrides = 1;
	if (with_arenas) {
		snprintf(r->s->overrides[1].name, sizeof(r->s->overrides[1].name), "je_arenas");
		r->s->overrides[1].value = ARENAS;
		r->s->noverrides = 2;
	}
	hs_heap_init(&r->heap);
	memset(&r->d, 0, sizeof(r->d));
	unit_walk(r->s, "jemalloc", &r->heap, &r->d, &r->detect_err, &r->walk_err);
	size_t dropped = 99;
	assert_null(hs_heap_finish(&r->heap, &dropped));
	assert_int_equal(dropped, 0);
}

static void result_free(struct result *r, struct img *m)
{
	hs_heap_deinit(&r->heap);
	hs_alloc_desc_deinit(&r->d);
	hs_error_destroy(r->detect_err);
	hs_error_destroy(r->walk_err);
	hs_session_destroy(r->s);
	for (size_t i = 0; i < m->nsegs; i++)
		free(m->segs[i].buf);
}

static const struct hs_block *block_at(const struct result *r, uint64_t addr)
{
	ptrdiff_t k = hs_heap_find(&r->heap, addr);
	assert_true(k >= 0);
	assert_int_equal(r->heap.blocks[k].address, addr);
	return &r->heap.blocks[k];
}

static void expect_block(const struct result *r, uint64_t addr, uint64_t size, enum hs_where where)
{
	const struct hs_block *b = block_at(r, addr);
	if (hs_block_size(b) != size || hs_block_where(b) != where)
		fail_msg("block 0x%" PRIx64 ": size %" PRIu64 " where %s, expected %" PRIu64 " %s", addr,
			 hs_block_size(b), hs_where_name(hs_block_where(b)), size, hs_where_name(where));
}



static void print_diags(const struct hs_session *s)
{
	for (size_t i = 0; i < s->diags.n; i++)
		fprintf(stderr, "  diag %d 0x%" PRIx64 ": %s\n", s->diags.items[i].level,
			s->diags.items[i].address, s->diags.items[i].message);
}

static void test_walk_synthetic_heap(void **state)
{
	(void)state;
	struct img m;
	struct heap_truth t;
	struct result r = { 0 };
	build(&m, &t);
	walk(&m, &r, true);
	if (r.detect_err || r.walk_err || unit_count_diags(r.s, HS_DIAG_ERROR, NULL))
		print_diags(r.s);
	assert_null(r.detect_err);
	assert_null(r.walk_err);
	assert_int_equal(unit_count_diags(r.s, HS_DIAG_ERROR, NULL), 0);

	// SLAB32: regions 0..6 used, 7..9 cached, 10..127 free in the slab.
	for (unsigned i = 0; i < 128; i++)
		expect_block(&r, SLAB32 + 32 * i, 32,
			     i < 7 ? HS_WHERE_USED : i < 10 ? WHERE("tcache") : WHERE("slab"));
	for (unsigned i = 0; i < 256; i++)
		expect_block(&r, SLAB48 + 48 * i, 48, HS_WHERE_USED);
	expect_block(&r, LARGE16K + 0x40, 16384, WHERE("tcache"));
	expect_block(&r, LARGE40K + 0x100, 40960, WHERE("large"));
	expect_block(&r, STACK, 28672, HS_WHERE_META);
	expect_block(&r, DIRTY, 0x8000, WHERE("extent"));
	expect_block(&r, RETAINED, 0x10000, WHERE("extent"));
	expect_block(&r, BASE, 0x400000, HS_WHERE_META);
	// An interior pointer of a large allocation finds it.
	assert_int_equal(r.heap.blocks[hs_heap_find(&r.heap, LARGE40K + 0x5000)].address, LARGE40K + 0x100);
	assert_int_equal(r.heap.n, 128 + 256 + 6);

	assert_int_equal(r.d.narenas, 1);
	assert_int_equal(r.d.arenas[0].address, ARENA);
	assert_string_equal(r.d.arenas[0].label, "je arena 0");
	assert_int_equal(r.d.arenas[0].nthreads, 1);
	assert_int_equal(unit_fact(&r.d, "tcaches"), 1);
	assert_int_equal(unit_fact(&r.d, "tcache_bytes"), 3 * 32 + 16384);
	assert_int_equal(unit_fact(&r.d, "internal_bytes"), 28672);
	assert_int_equal(unit_fact(&r.d, "allocated_bytes"), 10 * 32 + 256 * 48 + 16384 + 40960 + 28672);
	assert_int_equal(unit_fact(&r.d, "active_bytes"), 4096 + 3 * 4096 + 20480 + 45056 + 32768);
	assert_int_equal(unit_fact(&r.d, "dirty_bytes"), 0x8000);
	assert_int_equal(unit_fact(&r.d, "retained_bytes"), 0x10000);
	assert_int_equal(unit_fact(&r.d, "base_bytes"), 0x400000);

	// Free lists: the tcache's two bins (count = declared), SLAB32's free
	// regions, the inactive extents.
	bool saw_tc2 = false, saw_tc36 = false, saw_slab = false;
	for (size_t i = 0; i < r.d.nlists; i++) {
		const struct hs_freelist *l = &r.d.lists[i];
		if (l->where == WHERE("tcache") && l->index == 2) {
			saw_tc2 = l->count == 3 && l->declared == 3 && l->owner == TCACHE;
		} else if (l->where == WHERE("tcache") && l->index == 36) {
			saw_tc36 = l->count == 1 && l->bytes == 16384;
		} else if (l->where == WHERE("slab")) {
			saw_slab = l->index == 2 && l->count == 118 && l->owner == ARENA + 78952 + 2 * 224;
		}
	}
	assert_true(saw_tc2);
	assert_true(saw_tc36);
	assert_true(saw_slab);
	result_free(&r, &m);
}

/* Without je_arenas the arenas are found by scanning for arena_t... but with
 * no module there is nothing to scan: arenas come from the extents. */
static void test_arenas_from_extents(void **state)
{
	(void)state;
	struct img m;
	struct heap_truth t;
	struct result r = { 0 };
	build(&m, &t);
	walk(&m, &r, false);
	assert_null(r.detect_err);
	assert_null(r.walk_err);
	assert_int_equal(r.d.narenas, 1);
	assert_int_equal(r.d.arenas[0].address, 0);
	// No ring, no TLS: no tcache, and a warning says the cached ones count as used.
	assert_int_equal(unit_count_diags(r.s, HS_DIAG_WARNING, "no tcache was found"), 1);
	expect_block(&r, t.cached[0], 32, HS_WHERE_USED);
	expect_block(&r, LARGE16K + 0x40, 16384, WHERE("large"));
	result_free(&r, &m);
}

static void test_wrong_emap_refused(void **state)
{
	(void)state;
	struct img m;
	struct heap_truth t;
	struct result r = { 0 };
	build(&m, &t);
	// The root slot points at nothing like a leaf.
	w64(&m, EMAP + 0x78 + 8 * (HEAP >> 30), HEAP + 0x1234);
	walk(&m, &r, true);
	assert_non_null(r.detect_err);
	assert_int_equal(hs_error_code(r.detect_err), HS_ERR_HEAP);
	assert_non_null(strstr(hs_error_message(r.detect_err), "je_arena_emap_global"));
	result_free(&r, &m);
}

static void test_not_jemalloc(void **state)
{
	(void)state;
	struct img m;
	struct heap_truth t;
	struct result r = { 0 };
	build(&m, &t);
	walk(&m, &r, true);
	result_free(&r, &m);
	// The same memory without an override: nothing says jemalloc is there.
	build(&m, &t);
	struct hs_segment seg = { .start = HEAP, .end = HEAP + 0x1000, .filesz = 0x1000, .data = m.segs[2].buf,
				  .flags = HS_SEG_R | HS_SEG_W };
	struct hs_target *tg = NULL;
	assert_null(hs_target_open_buffers(&seg, 1, &tg));
	struct hs_session *s = calloc(1, sizeof(*s));
	s->target = tg;
	hs_diags_init(&s->diags);
	hs_heap_init(&s->heap);
	struct hs_heap heap;
	struct hs_alloc_desc d = { 0 };
	hs_heap_init(&heap);
	struct hs_error *err = NULL, *werr = NULL;
	unit_walk(s, "jemalloc", &heap, &d, &err, &werr);
	assert_non_null(err);
	assert_int_equal(hs_error_code(err), HS_ERR_NOT_FOUND);
	assert_null(werr);
	hs_error_destroy(err);
	hs_heap_deinit(&heap);
	hs_session_destroy(s);
	for (size_t i = 0; i < m.nsegs; i++)
		free(m.segs[i].buf);
}

/* Broken records: each is reported, skipped, and the rest still walked. */
static void test_corrupt_edata(void **state)
{
	(void)state;
	struct img m;
	struct heap_truth t;
	struct result r = { 0 };
	build(&m, &t);
	// LARGE40K's edata_t claims another address: its rtree pages disagree.
	uint64_t ed = EDATA + 128 * 3;
	assert_int_equal(r64(&m, ed + 8), LARGE40K + 0x100);
	w64(&m, ed + 8, HEAP + 0x90000);
	// SLAB48's nfree disagrees with its bitmap (all allocated).
	uint64_t ed48 = EDATA + 128 * 1;
	w64(&m, ed48, r64(&m, ed48) | (UINT64_C(5) << 28));
	walk(&m, &r, true);
	assert_null(r.detect_err);
	assert_null(r.walk_err);
	assert_int_equal(unit_count_diags(r.s, HS_DIAG_ERROR, "belongs to edata_t"), 1);  // one per extent
	assert_int_equal(unit_count_diags(r.s, HS_DIAG_WARNING, "its bitmap shows 0 free regions"), 1);
	assert_int_equal(hs_heap_find(&r.heap, LARGE40K + 0x100), -1);
	expect_block(&r, SLAB48, 48, HS_WHERE_USED);
	expect_block(&r, LARGE16K + 0x40, 16384, WHERE("tcache"));
	result_free(&r, &m);
}

static void test_corrupt_tcache(void **state)
{
	(void)state;
	struct img m;
	struct heap_truth t;
	struct result r = { 0 };
	build(&m, &t);
	// Bin 2 also "holds" a free region and a pointer into nowhere; bin 36's
	// count is garbage (a wild head: thousands of entries, unreadable).
	uint64_t head2 = r64(&m, TCACHE + 8 + 24 * 2);
	w64(&m, head2 - 8, t.free32[0]);
	w64(&m, head2 - 16, UINT64_C(0x1234567));
	w64(&m, TCACHE + 8 + 24 * 2, head2 - 16);
	w64(&m, TCACHE + 8 + 24 * 36, UINT64_C(0x7fff00000008));
	walk(&m, &r, true);
	assert_null(r.detect_err);
	assert_null(r.walk_err);
	assert_true(unit_count_diags(r.s, HS_DIAG_ERROR, "free in its slab") >= 1);
	assert_true(unit_count_diags(r.s, HS_DIAG_ERROR, "0x1234567") >= 1);
	assert_true(unit_count_diags(r.s, HS_DIAG_ERROR, "cannot be read") >= 1);
	// What the slab says wins; the cached ones stay cached.
	expect_block(&r, t.free32[0], 32, WHERE("slab"));
	expect_block(&r, t.cached[0], 32, WHERE("tcache"));
	expect_block(&r, LARGE16K + 0x40, 16384, WHERE("large"));
	for (size_t i = 0; i < r.d.nlists; i++)
		if (r.d.lists[i].where == WHERE("tcache") && r.d.lists[i].index == 2) {
			assert_int_equal(r.d.lists[i].declared, 5);
			assert_int_equal(r.d.lists[i].count, 3);
		}
	result_free(&r, &m);
}

static void test_broken_ring_and_root(void **state)
{
	(void)state;
	struct img m;
	struct heap_truth t;
	struct result r = { 0 };
	build(&m, &t);
	// The ring's next points at a node whose prev is not us; another root
	// slot holds garbage; a leaf element is cleared (0x00e8...).
	w64(&m, TSLOW + 0, TSLOW + 0x40);
	w64(&m, EMAP + 0x78 + 8 * 5, UINT64_C(0x1235));
	w64(&m, LEAF + 8 * ((DIRTY >> 12) & 0x3ffff), UINT64_C(0x00e8000000000000));
	walk(&m, &r, true);
	assert_null(r.detect_err);
	assert_null(r.walk_err);
	assert_true(unit_count_diags(r.s, HS_DIAG_WARNING, "tcache ring of arena 0 is broken") >= 1);
	assert_true(unit_count_diags(r.s, HS_DIAG_ERROR, "root slot 5") >= 1);
	// The ring's first node was read before the break: the tcache is found.
	expect_block(&r, t.cached[1], 32, WHERE("tcache"));
	// The dirty extent is still known from its last page.
	expect_block(&r, DIRTY, 0x8000, WHERE("extent"));
	result_free(&r, &m);
}

static void test_overlapping_extents(void **state)
{
	(void)state;
	struct img m;
	struct heap_truth t;
	struct result r = { 0 };
	build(&m, &t);
	// A second edata_t claims part of SLAB48 (registered on a page of it).
	uint64_t ed = extent(&m, SLAB48 + 0x1000, 4096, 0, false, 28, 0);
	(void)ed;
	walk(&m, &r, true);
	assert_null(r.detect_err);
	assert_null(r.walk_err);
	assert_true(unit_count_diags(r.s, HS_DIAG_ERROR, NULL) >= 1);
	result_free(&r, &m);
}

/* A freed slab leaves its old slab bit and class in its rtree elements and
 * its edata_t; a large extent made of a freed slab keeps them on its last
 * page: healthy states, read with no diagnostic at all. */
static void test_stale_elements_accepted(void **state)
{
	(void)state;
	struct img m;
	struct heap_truth t;
	struct result r = { 0 };
	build(&m, &t);
	uint64_t ed_dirty = r64(&m, LEAF + 8 * ((DIRTY >> 12) & 0x3ffff)) & UINT64_C(0x0000ffffffffff80);
	// DIRTY was a slab of bin 2: elements slab = 1, szind 2; e_bits slab = 1.
	uint64_t stale = (UINT64_C(2) << 48) | ed_dirty | (1u << 2) | 1;
	w64(&m, LEAF + 8 * ((DIRTY >> 12) & 0x3ffff), stale);
	w64(&m, LEAF + 8 * (((DIRTY + 0x7000) >> 12) & 0x3ffff), stale);
	w64(&m, ed_dirty, r64(&m, ed_dirty) | (UINT64_C(1) << 12));
	// LARGE40K's last page: a stale slab element of bin 5.
	uint64_t last = LEAF + 8 * (((LARGE40K + 45056 - 4096) >> 12) & 0x3ffff);
	w64(&m, last, (r64(&m, last) & UINT64_C(0x0000ffffffffff80)) | (UINT64_C(5) << 48) | 1);
	walk(&m, &r, true);
	if (unit_count_diags(r.s, HS_DIAG_INFO, NULL) > 1)
		print_diags(r.s);
	assert_null(r.detect_err);
	assert_null(r.walk_err);
	assert_int_equal(unit_count_diags(r.s, HS_DIAG_WARNING, NULL), 1);   // no file: layout not checked
	assert_int_equal(unit_count_diags(r.s, HS_DIAG_WARNING, "was not found"), 1);
	expect_block(&r, DIRTY, 0x8000, WHERE("extent"));
	expect_block(&r, LARGE40K + 0x100, 40960, WHERE("large"));
	assert_int_equal(unit_fact(&r.d, "dirty_bytes"), 0x8000);
	result_free(&r, &m);
}

/* What a healthy heap never shows is reported, with the page and the reason. */
static void test_real_rtree_corruption_reported(void **state)
{
	(void)state;
	struct img m;
	struct heap_truth t;
	struct result r = { 0 };
	build(&m, &t);
	// DIRTY's first element says active: the states differ.
	uint64_t first = LEAF + 8 * ((DIRTY >> 12) & 0x3ffff);
	w64(&m, first, r64(&m, first) & ~UINT64_C(0x1c));
	// SLAB48's middle page lost its slab bit.
	uint64_t mid = LEAF + 8 * (((SLAB48 + 4096) >> 12) & 0x3ffff);
	w64(&m, mid, r64(&m, mid) & ~UINT64_C(1));
	// LARGE40K's head element has the slab bit.
	uint64_t head = LEAF + 8 * ((LARGE40K >> 12) & 0x3ffff);
	w64(&m, head, r64(&m, head) | 1);
	walk(&m, &r, true);
	assert_null(r.detect_err);
	assert_null(r.walk_err);
	assert_int_equal(unit_count_diags(r.s, HS_DIAG_ERROR, "the states differ"), 1);
	assert_int_equal(unit_count_diags(r.s, HS_DIAG_ERROR, "a slab page without the slab's bit or class"), 1);
	assert_int_equal(unit_count_diags(r.s, HS_DIAG_ERROR, "the head of a large extent without its class"), 1);
	assert_int_equal(unit_count_diags(r.s, HS_DIAG_ERROR, NULL), 3);
	assert_int_equal(hs_heap_find(&r.heap, LARGE40K + 0x100), -1);
	expect_block(&r, LARGE16K + 0x40, 16384, WHERE("tcache"));
	result_free(&r, &m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_leaf_element),
		cmocka_unit_test(test_leaf_element_other_builds),
		cmocka_unit_test(test_ebits),
		cmocka_unit_test(test_bitmap),
		cmocka_unit_test(test_cache_bin),
		cmocka_unit_test(test_size_classes),
		cmocka_unit_test(test_layout_table),
		cmocka_unit_test(test_walk_synthetic_heap),
		cmocka_unit_test(test_arenas_from_extents),
		cmocka_unit_test(test_wrong_emap_refused),
		cmocka_unit_test(test_not_jemalloc),
		cmocka_unit_test(test_corrupt_edata),
		cmocka_unit_test(test_corrupt_tcache),
		cmocka_unit_test(test_broken_ring_and_root),
		cmocka_unit_test(test_overlapping_extents),
		cmocka_unit_test(test_stale_elements_accepted),
		cmocka_unit_test(test_real_rtree_corruption_reported),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
