/* test_glibc.c - the glibc ptmalloc walker on synthetic heaps: every layout
 * generation the walker supports, every free list, thread arenas with more
 * than one heap, mmapped chunks, and corrupt heaps. */
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
#include "glibc_layouts.h"
#include "memory.h"
#include "session.h"
#include "synth_glibc.h"

#define LIBC      UINT64_C(0x7ffff7fa0000)
#define MAIN_HEAP UINT64_C(0x555555559000)
#define ARENA1_H1 UINT64_C(0x7ffff0000000)
#define ARENA1_H2 UINT64_C(0x7fffec000000)
#define MMAPPED   UINT64_C(0x7ffff7000000)
#define FS_MAIN   UINT64_C(0x7ffff7d80000)
#define FS_THR    UINT64_C(0x7ffff7580000)

/* What a standard heap holds, for tests that poke at it. */
struct std_heap {
	struct synth_glibc g;
	uint64_t tc0, tc1;                   /* tcaches: main thread, thread 101 */
	uint64_t used[16];                   /* used chunks in the main heap */
	uint64_t tc_chunks[5];               /* main tcache: 3 x 0x30 (bin 1), 2 x 0x90 (bin 7) */
	uint64_t fast[3];                    /* main arena fastbin 1 (0x30) */
	uint64_t unsorted, small[2], large;  /* main arena bins */
	uint64_t t_tc, t_fast, t_unsorted;   /* thread arena */
};

/* main heap: tcache, used chunks between free ones (so nothing coalesces),
 * every list kind; a thread arena with two heaps; one mmapped chunk; two
 * threads whose TLS points at their tcaches. */
static void build_std(struct std_heap *h, unsigned version, bool threads)
{
	struct synth_glibc *g = &h->g;
	struct synth_glibc_heap m, t1, t2;
	size_t nu = 0;
	synth_glibc_init(g, version);
	synth_glibc_libc(g, LIBC);

	synth_glibc_main_heap(g, MAIN_HEAP, 0x21000, &m);
	h->tc0 = synth_glibc_tcache(g, &m);
	h->used[nu++] = synth_glibc_chunk(g, &m, 0x20);
	for (int i = 0; i < 3; i++)
		h->tc_chunks[i] = synth_glibc_chunk(g, &m, 0x30);
	for (int i = 0; i < 3; i++)
		h->fast[i] = synth_glibc_chunk(g, &m, 0x30);
	for (int i = 3; i < 5; i++)
		h->tc_chunks[i] = synth_glibc_chunk(g, &m, 0x90);
	h->used[nu++] = synth_glibc_chunk(g, &m, 0x40);
	h->unsorted = synth_glibc_chunk(g, &m, 0x200);
	h->used[nu++] = synth_glibc_chunk(g, &m, 0x50);
	h->small[0] = synth_glibc_chunk(g, &m, 0x100);
	h->used[nu++] = synth_glibc_chunk(g, &m, 0x410);
	h->small[1] = synth_glibc_chunk(g, &m, 0x100);
	h->used[nu++] = synth_glibc_chunk(g, &m, 0x1010);
	h->large = synth_glibc_chunk(g, &m, 0x600);
	h->used[nu++] = synth_glibc_chunk(g, &m, 0x30);
	h->used[nu++] = synth_glibc_chunk(g, &m, 0x2000);
	synth_glibc_finish_heap(g, &m);

	synth_glibc_thread_arena(g, ARENA1_H1, 0x10000, &t1);
	h->tc1 = synth_glibc_tcache(g, &t1);
	synth_glibc_chunk(g, &t1, 0x40);
	h->t_tc = synth_glibc_chunk(g, &t1, 0x40);
	synth_glibc_chunk(g, &t1, 0x800);
	h->t_fast = synth_glibc_chunk(g, &t1, 0x70);
	synth_glibc_chunk(g, &t1, 0x30);
	synth_glibc_next_heap(g, &t1, ARENA1_H2, 0x8000, &t2);
	synth_glibc_chunk(g, &t2, 0x100);
	h->t_unsorted = synth_glibc_chunk(g, &t2, 0x900);
	synth_glibc_chunk(g, &t2, 0x20);
	synth_glibc_finish_heap(g, &t2);

	synth_glibc_mmapped(g, MMAPPED, 0x22000);

	for (int i = 0; i < 3; i++)
		synth_glibc_tcache_put(g, h->tc0, h->tc_chunks[i]);
	for (int i = 3; i < 5; i++)
		synth_glibc_tcache_put(g, h->tc0, h->tc_chunks[i]);
	for (int i = 0; i < 3; i++)
		synth_glibc_fastbin_put(g, 0, h->fast[i]);
	synth_glibc_bin_put(g, 0, h->unsorted, true);
	synth_glibc_bin_put(g, 0, h->small[0], false);
	synth_glibc_bin_put(g, 0, h->small[1], false);
	synth_glibc_bin_put(g, 0, h->large, false);
	synth_glibc_tcache_put(g, h->tc1, h->t_tc);
	synth_glibc_fastbin_put(g, 1, h->t_fast);
	synth_glibc_bin_put(g, 1, h->t_unsorted, true);

	if (threads) {
		synth_glibc_thread(g, 100, FS_MAIN, h->tc0);
		synth_glibc_thread(g, 101, FS_THR, h->tc1);
	}
}

struct result {
	struct hs_session *s;
	struct hs_heap heap;
	struct hs_alloc_desc d;
	struct hs_error *detect_err, *walk_err;
};

static void walk(struct result *r)
{
	hs_heap_init(&r->heap);
	memset(&r->d, 0, sizeof(r->d));
	unit_walk(r->s, "glibc", &r->heap, &r->d, &r->detect_err, &r->walk_err);
	size_t dropped = 99;
	assert_null(hs_heap_finish(&r->heap, &dropped));
	assert_int_equal(dropped, 0);
}

static void result_free(struct result *r)
{
	hs_heap_deinit(&r->heap);
	hs_alloc_desc_deinit(&r->d);
	hs_error_destroy(r->detect_err);
	hs_error_destroy(r->walk_err);
	hs_session_destroy(r->s);
}



static void print_diags(const struct hs_session *s)
{
	for (size_t i = 0; i < s->diags.n; i++)
		fprintf(stderr, "  diag %d 0x%" PRIx64 ": %s\n", s->diags.items[i].level,
			s->diags.items[i].address, s->diags.items[i].message);
}

static const struct hs_freelist *find_list(const struct hs_alloc_desc *d, enum hs_where where,
					   unsigned arena, int index, int tid)
{
	for (size_t i = 0; i < d->nlists; i++) {
		const struct hs_freelist *l = &d->lists[i];
		if (l->where == where && l->index == index &&
		    (where == WHERE("tcache") ? l->tid == tid : l->arena == arena))
			return l;
	}
	return NULL;
}

/* Walk the standard heap of one version and check everything it knows. */
static void check_std(unsigned version, bool threads, bool override_version)
{
	struct std_heap *h = calloc(1, sizeof(*h));
	build_std(h, version, threads);
	struct result r = { .s = synth_glibc_session(&h->g) };
	if (override_version)
		synth_glibc_override(r.s, "glibc_version", version);
	walk(&r);
	if (r.detect_err || r.walk_err || unit_count_diags(r.s, HS_DIAG_WARNING, NULL))
		print_diags(r.s);
	assert_null(r.detect_err);
	assert_null(r.walk_err);
	assert_int_equal(synth_glibc_compare(&h->g, &r.heap, NULL, 0), 0);
	assert_int_equal(unit_count_diags(r.s, HS_DIAG_WARNING, NULL), 0);

	/* the layout the walker settled on */
	assert_int_equal(unit_fact(&r.d, "main_arena"), h->g.main_arena);
	assert_int_equal(unit_fact(&r.d, "mp_"), h->g.mp);
	assert_int_equal(unit_fact(&r.d, "sizeof(heap_info)"), version >= 235 ? 48 : 32);
	assert_int_equal(unit_fact(&r.d, "tcache_chunk_size"), version >= 230 ? 0x290 : 0x250);
	assert_int_equal(unit_fact(&r.d, "safe_linking"), version >= 232);
	assert_int_equal(unit_fact(&r.d, "mmapped_chunks"), 1);
	assert_int_equal(unit_fact(&r.d, "mp_.n_mmaps"), 1);
	if (override_version) {
		char want[16];
		snprintf(want, sizeof(want), "%u.%u", version / 100, version % 100);
		assert_string_equal(r.d.version, want);
		assert_non_null(strstr(r.d.layout_source, "built-in table"));
	}

	/* arenas, with the thread arena's two heaps */
	assert_int_equal(r.d.narenas, 2);
	assert_string_equal(r.d.arenas[0].label, "main_arena");
	assert_int_equal(r.d.arenas[0].address, h->g.main_arena);
	assert_int_equal(r.d.arenas[1].address, ARENA1_H1 + (version >= 235 ? 48 : 32));
	size_t heaps = 0, mm = 0;
	for (size_t i = 0; i < r.d.nregions; i++) {
		heaps += r.d.regions[i].kind == HS_REGION_HEAP;
		mm += r.d.regions[i].kind == HS_REGION_MMAPPED_CHUNK;
	}
	assert_int_equal(heaps, 3);
	assert_int_equal(mm, 1);

	/* every list kind, with counts */
	int tid0 = threads ? 100 : 0;
	const struct hs_freelist *l = find_list(&r.d, WHERE("tcache"), 0, 1, tid0);
	assert_non_null(l);
	assert_int_equal(l->count, 3);
	assert_int_equal(l->declared, 3);
	assert_int_equal(l->owner, h->tc0);
	l = find_list(&r.d, WHERE("tcache"), 0, 7, tid0);
	assert_non_null(l);
	assert_int_equal(l->count, 2);
	l = find_list(&r.d, WHERE("tcache"), 0, 2, threads ? 101 : 0);
	assert_non_null(l);
	assert_int_equal(l->count, 1);
	l = find_list(&r.d, WHERE("fastbin"), 0, 1, 0);
	assert_non_null(l);
	assert_int_equal(l->count, 3);
	assert_int_equal(find_list(&r.d, WHERE("fastbin"), 1, 5, 0)->count, 1);
	assert_int_equal(find_list(&r.d, WHERE("unsorted"), 0, 1, 0)->count, 1);
	assert_int_equal(find_list(&r.d, WHERE("unsorted"), 1, 1, 0)->count, 2);   /* + old top */
	assert_int_equal(find_list(&r.d, WHERE("smallbin"), 0, 16, 0)->count, 2);
	assert_int_equal(find_list(&r.d, WHERE("largebin"), 0, hs_glibc_bin_index(0x600), 0)->count, 1);
	for (size_t i = 0; i < r.d.nlists; i++)
		assert_false(r.d.lists[i].broken);

	/* totals per arena add up with the index */
	uint64_t used = 0, freeb = 0;
	for (size_t i = 0; i < r.heap.n; i++) {
		const struct hs_block *b = &r.heap.blocks[i];
		if (hs_block_arena(b) != 0)
			continue;
		if (hs_where_is_free(hs_block_where(b)))
			freeb += hs_block_size(b);
		else if (hs_where_is_used(hs_block_where(b)))
			used += hs_block_size(b);
	}
	assert_int_equal(r.d.arenas[0].used_bytes, used);
	assert_int_equal(r.d.arenas[0].free_bytes, freeb);
	result_free(&r);
	synth_glibc_deinit(&h->g);
	free(h);
}

static void test_layout_226(void **state) { (void)state; check_std(226, true, false); }
static void test_layout_227(void **state) { (void)state; check_std(227, true, false); }
static void test_layout_231(void **state) { (void)state; check_std(231, true, false); }
static void test_layout_235(void **state) { (void)state; check_std(235, true, false); }
static void test_layout_239(void **state) { (void)state; check_std(239, true, false); }
static void test_layout_227_by_version(void **state) { (void)state; check_std(227, true, true); }
static void test_layout_231_by_version(void **state) { (void)state; check_std(231, true, true); }
static void test_layout_235_by_version(void **state) { (void)state; check_std(235, true, true); }
static void test_layout_239_by_version(void **state) { (void)state; check_std(239, true, true); }
static void test_no_threads_first_chunks(void **state)
{
	(void)state;
	check_std(231, false, false);
	check_std(239, false, false);
}

/* The version says one thing, the core another: the evidence wins, with a
 * finding per feature, and the walk is still exact. */
static void test_wrong_version_adjusted(void **state)
{
	(void)state;
	struct std_heap *h = calloc(1, sizeof(*h));
	build_std(h, 236, true);
	struct result r = { .s = synth_glibc_session(&h->g) };
	synth_glibc_override(r.s, "glibc_version", 231);
	walk(&r);
	assert_null(r.detect_err);
	assert_null(r.walk_err);
	assert_int_equal(synth_glibc_compare(&h->g, &r.heap, NULL, 0), 0);
	assert_true(unit_count_diags(r.s, HS_DIAG_WARNING, "heap_info is 48") == 1);
	assert_true(unit_count_diags(r.s, HS_DIAG_WARNING, "safe-linked") == 1);
	assert_non_null(strstr(r.d.layout_source, "adjusted"));
	result_free(&r);
	synth_glibc_deinit(&h->g);
	free(h);
}

/* Overrides pin what they name, even against the evidence. */
static void test_overrides(void **state)
{
	(void)state;
	struct std_heap *h = calloc(1, sizeof(*h));
	build_std(h, 235, true);
	struct result r = { .s = synth_glibc_session(&h->g) };
	synth_glibc_override(r.s, "main_arena", h->g.main_arena);
	synth_glibc_override(r.s, "mp_", h->g.mp);
	synth_glibc_override(r.s, "heap_info_size", 48);
	synth_glibc_override(r.s, "tcache_counts_u16", 1);
	synth_glibc_override(r.s, "safe_linking", 1);
	walk(&r);
	assert_null(r.detect_err);
	assert_int_equal(synth_glibc_compare(&h->g, &r.heap, NULL, 0), 0);
	result_free(&r);

	/* a wrong safe_linking override: lists break, with findings, no crash */
	r = (struct result){ .s = synth_glibc_session(&h->g) };
	synth_glibc_override(r.s, "safe_linking", 0);
	walk(&r);
	assert_null(r.walk_err);
	assert_true(unit_count_diags(r.s, HS_DIAG_WARNING, NULL) > 0);
	result_free(&r);
	synth_glibc_deinit(&h->g);
	free(h);
}

/* No glibc at all: quietly not found. */
static void test_not_glibc(void **state)
{
	(void)state;
	struct synth_glibc g;
	synth_glibc_init(&g, 236);
	uint8_t *b = synth_glibc_segment(&g, 0x10000, 0x10000, HS_SEG_R | HS_SEG_W);
	memset(b, 0x5a, 0x10000);
	struct result r = { .s = synth_glibc_session(&g) };
	walk(&r);
	assert_non_null(r.detect_err);
	assert_int_equal(r.detect_err->code, HS_ERR_NOT_FOUND);
	result_free(&r);
	synth_glibc_deinit(&g);
}

/* ------------------------------------------------------------------------ */
/* corrupt heaps: a finding, a finished walk, the rest right */

static struct result walk_corrupt(struct std_heap *h)
{
	struct result r = { .s = synth_glibc_session(&h->g) };
	walk(&r);
	if (getenv("TEST_VERBOSE"))
		print_diags(r.s);
	assert_null(r.detect_err);
	assert_null(r.walk_err);
	return r;
}

static void test_smashed_size(void **state)
{
	(void)state;
	static const uint64_t sizes[] = { UINT64_C(0x4141414141414141), 0x13, 0x7ff0, 0 };
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		struct std_heap *h = calloc(1, sizeof(*h));
		build_std(h, 235, true);
		uint64_t victim = h->used[2];   /* a used 0x50 chunk mid-heap */
		synth_glibc_w64(&h->g, victim + 8, sizes[k]);
		struct result r = walk_corrupt(h);
		assert_int_equal(unit_count_diags(r.s, HS_DIAG_ERROR, "size field"), 1);
		bool at_victim = false;
		for (size_t i = 0; i < r.s->diags.n; i++)
			at_victim |= r.s->diags.items[i].address == victim;
		assert_true(at_victim);
		uint64_t skip[] = { victim };
		assert_int_equal(synth_glibc_compare(&h->g, &r.heap, skip, 1), 0);
		assert_int_equal(hs_heap_find(&r.heap, victim + 16), -1);
		result_free(&r);
		synth_glibc_deinit(&h->g);
		free(h);
	}
}

/* The last chunk before top smashed: nothing valid follows but top. */
static void test_smashed_before_top(void **state)
{
	(void)state;
	struct std_heap *h = calloc(1, sizeof(*h));
	build_std(h, 239, true);
	uint64_t victim = h->used[6];
	synth_glibc_w64(&h->g, victim + 8, 0x99999990);
	struct result r = walk_corrupt(h);
	assert_int_equal(unit_count_diags(r.s, HS_DIAG_ERROR, "size field"), 1);
	uint64_t skip[] = { victim };
	assert_int_equal(synth_glibc_compare(&h->g, &r.heap, skip, 1), 0);
	result_free(&r);
	synth_glibc_deinit(&h->g);
	free(h);
}

static void test_fastbin_cycle(void **state)
{
	(void)state;
	unsigned versions[] = { 231, 236 };
	for (size_t k = 0; k < 2; k++) {
		struct std_heap *h = calloc(1, sizeof(*h));
		build_std(h, versions[k], true);
		/* fast[2] -> fast[1] -> fast[0] -> NULL; make fast[0] point back to fast[2] */
		uint64_t p = h->fast[0], target = h->fast[2];
		synth_glibc_w64(&h->g, p + 16, h->g.safe_linking ? ((p + 16) >> 12) ^ target : target);
		struct result r = walk_corrupt(h);
		assert_int_equal(unit_count_diags(r.s, HS_DIAG_ERROR, "loops"), 1);
		assert_int_equal(synth_glibc_compare(&h->g, &r.heap, NULL, 0), 0);
		const struct hs_freelist *l = find_list(&r.d, WHERE("fastbin"), 0, 1, 0);
		assert_true(l->broken);
		assert_int_equal(l->count, 3);
		result_free(&r);
		synth_glibc_deinit(&h->g);
		free(h);
	}
}

static void test_tcache_count_lies(void **state)
{
	(void)state;
	unsigned versions[] = { 227, 235 };
	for (size_t k = 0; k < 2; k++) {
		struct std_heap *h = calloc(1, sizeof(*h));
		build_std(h, versions[k], true);
		uint64_t c = synth_glibc_tcache_count_addr(&h->g, h->tc0, 1);
		uint64_t w = synth_glibc_r64(&h->g, c);
		w = h->g.tc_width == 1 ? (w & ~UINT64_C(0xff)) | 6 : (w & ~UINT64_C(0xffff)) | 6;
		synth_glibc_w64(&h->g, c, w);
		struct result r = walk_corrupt(h);
		assert_int_equal(unit_count_diags(r.s, HS_DIAG_WARNING, "count says 6"), 1);
		assert_int_equal(synth_glibc_compare(&h->g, &r.heap, NULL, 0), 0);
		const struct hs_freelist *l = find_list(&r.d, WHERE("tcache"), 0, 1, 100);
		assert_int_equal(l->count, 3);
		assert_int_equal(l->declared, 6);
		result_free(&r);
		synth_glibc_deinit(&h->g);
		free(h);
	}
}

static void test_tcache_cycle(void **state)
{
	(void)state;
	struct std_heap *h = calloc(1, sizeof(*h));
	build_std(h, 236, true);
	/* bin 1: tc[2] -> tc[1] -> tc[0] -> NULL; tc[0] -> tc[2] */
	uint64_t e = h->tc_chunks[0] + 16, target = h->tc_chunks[2] + 16;
	synth_glibc_w64(&h->g, e, (e >> 12) ^ target);
	struct result r = walk_corrupt(h);
	assert_int_equal(unit_count_diags(r.s, HS_DIAG_ERROR, "loops"), 1);
	assert_int_equal(synth_glibc_compare(&h->g, &r.heap, NULL, 0), 0);
	result_free(&r);
	synth_glibc_deinit(&h->g);
	free(h);
}

/* A smallbin entry whose fd is garbage: the bin is cut, the heap walk still
 * finds the chunk behind it free (unlisted), everything else is right. */
static void test_bin_garbage_pointer(void **state)
{
	(void)state;
	struct std_heap *h = calloc(1, sizeof(*h));
	build_std(h, 236, true);
	/* the bin holds small[1] -> small[0]: break small[1]'s fd */
	synth_glibc_w64(&h->g, h->small[1] + 16, UINT64_C(0x4141414141414141));
	struct result r = walk_corrupt(h);
	assert_true(unit_count_diags(r.s, HS_DIAG_ERROR, "not walked") >= 1);
	assert_int_equal(unit_count_diags(r.s, HS_DIAG_WARNING, "on no free list"), 1);
	synth_glibc_truth_of(&h->g, h->small[0])->where = HS_WHERE_FREE_UNLISTED;
	assert_int_equal(synth_glibc_compare(&h->g, &r.heap, NULL, 0), 0);
	result_free(&r);
	synth_glibc_deinit(&h->g);
	free(h);
}

/* A chunk free by its header but on no list. */
static void test_unlisted_free(void **state)
{
	(void)state;
	struct std_heap *h = calloc(1, sizeof(*h));
	build_std(h, 236, true);
	uint64_t victim = h->used[1], cs = 0x40;
	synth_glibc_w64(&h->g, victim + cs + 8, synth_glibc_r64(&h->g, victim + cs + 8) & ~UINT64_C(1));
	struct result r = walk_corrupt(h);
	assert_int_equal(unit_count_diags(r.s, HS_DIAG_WARNING, "on no free list"), 1);
	synth_glibc_truth_of(&h->g, victim)->where = HS_WHERE_FREE_UNLISTED;
	assert_int_equal(synth_glibc_compare(&h->g, &r.heap, NULL, 0), 0);
	result_free(&r);
	synth_glibc_deinit(&h->g);
	free(h);
}

/* The thread arena's older heap is missing from the core: a finding, and the
 * main heap and the newer heap are still right. */
static void test_heap_not_in_core(void **state)
{
	(void)state;
	struct std_heap *h = calloc(1, sizeof(*h));
	build_std(h, 236, true);
	struct synth_glibc *g = &h->g;
	/* drop the first heap's segment (arena 1's malloc_state lives there, so
	 * give main_arena.next a ring without it: main -> main) */
	for (size_t i = 0; i < g->nsegs; i++)
		if (g->segs[i].start == ARENA1_H1) {
			free(g->segs[i].buf);
			g->segs[i] = g->segs[--g->nsegs];
			break;
		}
	struct result r = walk_corrupt(h);
	assert_true(unit_count_diags(r.s, HS_DIAG_ERROR, "cannot be read") >= 1);
	/* everything in the main heap and mmapped chunk is still exact */
	size_t bad = 0;
	for (size_t i = 0; i < g->ntruth; i++) {
		uint64_t u = g->truth[i].user;
		if (u >= ARENA1_H2 && u < ARENA1_H1 + (UINT64_C(64) << 20))
			continue;
		ptrdiff_t b = hs_heap_find(&r.heap, u);
		bad += b < 0 || hs_block_where(&r.heap.blocks[b]) != g->truth[i].where;
	}
	assert_int_equal(bad, 0);
	result_free(&r);
	synth_glibc_deinit(g);
	free(h);
}

/* main_arena.next cut: the thread arena is found by its heap_info on a
 * 64 MiB boundary, and everything is still right. */
static void test_ring_cut(void **state)
{
	(void)state;
	static const uint64_t nexts[] = { 0, UINT64_C(0x4141414141414140) };
	for (size_t k = 0; k < 2; k++) {
		struct std_heap *h = calloc(1, sizeof(*h));
		build_std(h, 236, true);
		synth_glibc_w64(&h->g, h->g.main_arena + h->g.ms_next, nexts[k]);
		struct result r = walk_corrupt(h);
		assert_int_equal(unit_count_diags(r.s, HS_DIAG_ERROR, "not in main_arena's next ring"), 1);
		assert_int_equal(r.d.narenas, 2);
		assert_int_equal(synth_glibc_compare(&h->g, &r.heap, NULL, 0), 0);
		result_free(&r);
		synth_glibc_deinit(&h->g);
		free(h);
	}
}

/* main_arena.top smashed: with mp_ known, the main heap is walked from
 * sbrk_base to the end of its mapping, and the chunk there taken for top. */
static void test_bad_top(void **state)
{
	(void)state;
	struct std_heap *h = calloc(1, sizeof(*h));
	build_std(h, 236, true);
	synth_glibc_w64(&h->g, h->g.main_arena + h->g.ms_top, UINT64_C(0x4141414141414140));
	struct result r = { .s = synth_glibc_session(&h->g) };
	synth_glibc_override(r.s, "main_arena", h->g.main_arena);
	synth_glibc_override(r.s, "mp_", h->g.mp);
	walk(&r);
	assert_null(r.detect_err);
	assert_null(r.walk_err);
	assert_int_equal(unit_count_diags(r.s, HS_DIAG_ERROR, "is not a readable chunk"), 1);
	assert_int_equal(synth_glibc_compare(&h->g, &r.heap, NULL, 0), 0);
	result_free(&r);
	synth_glibc_deinit(&h->g);
	free(h);
}

/* mp_.n_mmaps disagrees with what was found. */
/* Thread heaps walked on a second thread (--jobs 2) give what one thread
 * gives: the same blocks in the same order, the same findings in the same
 * order (rate-limited kinds included: more bad headers than are listed), the
 * same arena totals and regions.  Three thread arenas of three heaps each,
 * headers smashed and chunks left free on no list in all of them. */
#define FAR_ARENAS 3
#define FAR_HEAPS 3

static struct result walk_jobs(struct synth_glibc *g, int jobs)
{
	struct result r = { .s = synth_glibc_session(g) };
	r.s->jobs = jobs;
	walk(&r);
	assert_null(r.detect_err);
	assert_null(r.walk_err);
	return r;
}

static void test_far_heaps_same_as_one_thread(void **state)
{
	(void)state;
	struct synth_glibc *g = calloc(1, sizeof(*g));
	assert_non_null(g);
	synth_glibc_init(g, 236);
	synth_glibc_libc(g, LIBC);
	struct synth_glibc_heap m;
	synth_glibc_main_heap(g, MAIN_HEAP, 0x21000, &m);
	for (int i = 0; i < 40; i++)
		synth_glibc_chunk(g, &m, 0x30 + 0x10 * (i % 8));
	synth_glibc_finish_heap(g, &m);
	uint64_t victims[64], unlisted[64];
	size_t nv = 0, nu = 0;
	for (unsigned a = 0; a < FAR_ARENAS; a++) {
		struct synth_glibc_heap h, next;
		uint64_t base = ARENA1_H1 - (uint64_t)a * FAR_HEAPS * (UINT64_C(64) << 20);
		synth_glibc_thread_arena(g, base, 0x8000, &h);
		for (unsigned k = 0; k < FAR_HEAPS; k++) {
			// Bad headers 70 chunks apart: the walk resynchronises
			// (64 good links) before the next one.
			for (int i = 0; i < 210; i++) {
				uint64_t c = synth_glibc_chunk(g, &h, 0x20 + 0x10 * ((i + k + a) % 6));
				if (i % 70 == 35 && nv < 64)
					victims[nv++] = c;
				else if (i % 70 == 10 && nu < 64)
					unlisted[nu++] = c;
			}
			if (k + 1 < FAR_HEAPS) {
				synth_glibc_next_heap(g, &h, base - (uint64_t)(k + 1) * (UINT64_C(64) << 20), 0x8000, &next);
				h = next;
			}
		}
		synth_glibc_finish_heap(g, &h);
	}
	// Free on no list: the next chunk's PREV_INUSE cleared (and its prev_size).
	for (size_t i = 0; i < nu; i++) {
		uint64_t sf = synth_glibc_r64(g, unlisted[i] + 8), next = unlisted[i] + (sf & ~UINT64_C(7));
		synth_glibc_w64(g, next, sf & ~UINT64_C(7));
		synth_glibc_w64(g, next + 8, synth_glibc_r64(g, next + 8) & ~UINT64_C(1));
	}
	for (size_t i = 0; i < nv; i++)
		synth_glibc_w64(g, victims[i] + 8, UINT64_C(0x4141414141414141) + i);
	assert_true(nv > 25);   // more bad headers than one kind lists

	struct result one = walk_jobs(g, 1), two = walk_jobs(g, 2);
	assert_true(one.heap.n > 1000);
	assert_int_equal(one.heap.n, two.heap.n);
	assert_memory_equal(one.heap.blocks, two.heap.blocks, one.heap.n * sizeof(*one.heap.blocks));
	assert_true(unit_count_diags(one.s, HS_DIAG_ERROR, "size field") >= 10);
	assert_true(unit_count_diags(one.s, HS_DIAG_WARNING, "on no free list") > 0);
	assert_true(unit_count_diags(one.s, HS_DIAG_WARNING, "were not listed") > 0);
	assert_int_equal(one.s->diags.n, two.s->diags.n);
	for (size_t i = 0; i < one.s->diags.n; i++) {
		const struct hs_diag *x = &one.s->diags.items[i], *y = &two.s->diags.items[i];
		assert_int_equal(x->level, y->level);
		assert_int_equal(x->address, y->address);
		assert_string_equal(x->message, y->message);
	}
	assert_int_equal(one.d.narenas, FAR_ARENAS + 1);
	assert_int_equal(one.d.narenas, two.d.narenas);
	for (size_t a = 0; a < one.d.narenas; a++) {
		assert_int_equal(one.d.arenas[a].used_count, two.d.arenas[a].used_count);
		assert_int_equal(one.d.arenas[a].used_bytes, two.d.arenas[a].used_bytes);
		assert_int_equal(one.d.arenas[a].free_count, two.d.arenas[a].free_count);
		assert_int_equal(one.d.arenas[a].free_bytes, two.d.arenas[a].free_bytes);
	}
	assert_int_equal(one.d.nregions, two.d.nregions);
	for (size_t i = 0; i < one.d.nregions; i++) {
		assert_int_equal(one.d.regions[i].start, two.d.regions[i].start);
		assert_int_equal(one.d.regions[i].end, two.d.regions[i].end);
		assert_int_equal(one.d.regions[i].kind, two.d.regions[i].kind);
		assert_int_equal(one.d.regions[i].arena, two.d.regions[i].arena);
	}
	result_free(&one);
	result_free(&two);
	synth_glibc_deinit(g);
	free(g);
}

static void test_n_mmaps_mismatch(void **state)
{
	(void)state;
	struct std_heap *h = calloc(1, sizeof(*h));
	build_std(h, 236, true);
	/* n_mmaps 3, n_mmaps_max 65536, max_n_mmaps 3 */
	uint64_t a = h->g.mp + h->g.mp_n_mmaps;
	synth_glibc_w64(&h->g, a, 3 | (UINT64_C(65536) << 32));
	uint64_t w = synth_glibc_r64(&h->g, a + 8);
	synth_glibc_w64(&h->g, a + 8, (w & ~UINT64_C(0xffffffff)) | 3);
	struct result r = walk_corrupt(h);
	assert_int_equal(unit_count_diags(r.s, HS_DIAG_WARNING, "n_mmaps says 3"), 1);
	assert_int_equal(synth_glibc_compare(&h->g, &r.heap, NULL, 0), 0);
	result_free(&r);
	synth_glibc_deinit(&h->g);
	free(h);
}

/* The layout table: rows cover 2.26-2.41 without gaps, and the size classes. */
static void test_layout_table(void **state)
{
	(void)state;
	unsigned expect = 226;
	for (size_t i = 0; i < hs_glibc_nlayouts; i++) {
		assert_int_equal(hs_glibc_layouts[i].first, expect);
		assert_non_null(hs_glibc_layouts[i].source);
		expect = hs_glibc_layouts[i].last + 1;
	}
	assert_int_equal(expect, 242);
	assert_null(hs_glibc_layout_for_version(225));
	assert_null(hs_glibc_layout_for_version(242));
	assert_int_equal(hs_glibc_layout_for_version(236)->ms_top, 96);
	assert_int_equal(hs_glibc_layout_for_version(236)->ms_next, 2160);
	assert_int_equal(hs_glibc_layout_for_version(236)->ms_system_mem, 2184);
	assert_int_equal(hs_glibc_layout_for_version(236)->ms_sizeof, 2200);
	assert_int_equal(hs_glibc_tcache_chunk_size(hs_glibc_layout_for_version(229)), 0x250);
	assert_int_equal(hs_glibc_tcache_chunk_size(hs_glibc_layout_for_version(230)), 0x290);
	assert_int_equal(hs_glibc_bin_index(0x400), 64);
	assert_int_equal(hs_glibc_bin_index(0x3f0), 63);
	assert_int_equal(hs_glibc_bin_min_chunk_size(64), 0x400);
	assert_int_equal(hs_glibc_bin_min_chunk_size(97), 3136);
	for (unsigned i = 64; i < 127; i++) {
		uint64_t m = hs_glibc_bin_min_chunk_size(i);
		assert_int_equal(hs_glibc_bin_index(m), i);
		assert_int_equal(hs_glibc_bin_index(m - 16), i - 1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_table),
		cmocka_unit_test(test_layout_226),
		cmocka_unit_test(test_layout_227),
		cmocka_unit_test(test_layout_231),
		cmocka_unit_test(test_layout_235),
		cmocka_unit_test(test_layout_239),
		cmocka_unit_test(test_layout_227_by_version),
		cmocka_unit_test(test_layout_231_by_version),
		cmocka_unit_test(test_layout_235_by_version),
		cmocka_unit_test(test_layout_239_by_version),
		cmocka_unit_test(test_no_threads_first_chunks),
		cmocka_unit_test(test_wrong_version_adjusted),
		cmocka_unit_test(test_overrides),
		cmocka_unit_test(test_not_glibc),
		cmocka_unit_test(test_smashed_size),
		cmocka_unit_test(test_smashed_before_top),
		cmocka_unit_test(test_fastbin_cycle),
		cmocka_unit_test(test_tcache_count_lies),
		cmocka_unit_test(test_tcache_cycle),
		cmocka_unit_test(test_bin_garbage_pointer),
		cmocka_unit_test(test_unlisted_free),
		cmocka_unit_test(test_heap_not_in_core),
		cmocka_unit_test(test_ring_cut),
		cmocka_unit_test(test_bad_top),
		cmocka_unit_test(test_n_mmaps_mismatch),
		cmocka_unit_test(test_far_heaps_same_as_one_thread),
	};
	return cmocka_run_group_tests_name("glibc", tests, NULL, NULL);
}
