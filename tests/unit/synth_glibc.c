/* synth_glibc.c - synthetic glibc ptmalloc heaps for unit tests (see the header).
 *
 * Offsets below follow the struct definitions of malloc/malloc.c and
 * malloc/arena.c with x86-64 sizes, computed field by field.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "unit_util.h"
#include "memory.h"
#include "session.h"
#include "synth_glibc.h"
#include "target.h"

#define P_INUSE 1u
#define MMAPPED 2u
#define NON_MAIN 4u
#define TLS_SLOT 0x758u          /* where `tcache` sits below fs_base in every thread */

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);
	if (!p)
		abort();
	return p;
}

void synth_glibc_init(struct synth_glibc *g, unsigned version)
{
	memset(g, 0, sizeof(*g));
	g->version = version;
	g->have_fastchunks = version >= 227;
	g->key_is_pointer = version >= 229 && version < 234;
	g->tc_width = version >= 230 ? 2 : 1;
	g->safe_linking = version >= 232;
	g->hi_size = version >= 235 ? 48 : 32;
	g->mp_new = version >= 235;

	/* struct malloc_state: int mutex; int flags; [int have_fastchunks;]
	 * mfastbinptr fastbinsY[10]; top; last_remainder; bins[254];
	 * unsigned binmap[4]; next; next_free; attached_threads; system_mem;
	 * max_system_mem. */
	g->ms_fastbins = g->have_fastchunks ? 16 : 8;   /* 3 ints round up to 16 */
	g->ms_top = g->ms_fastbins + 10 * 8;
	g->ms_bins = g->ms_top + 2 * 8;
	g->ms_next = g->ms_bins + 254 * 8 + 4 * 4;
	g->ms_attached = g->ms_next + 2 * 8;
	g->ms_system_mem = g->ms_attached + 8;
	g->ms_size = g->ms_system_mem + 2 * 8;

	/* struct malloc_par: 5 size_t; [2 size_t + int hp_flags]; 4 ints;
	 * mmapped_mem, max_mmapped_mem, sbrk_base, tcache_bins,
	 * tcache_max_bytes, tcache_count, tcache_unsorted_limit. */
	unsigned ints = g->mp_new ? 5 * 8 + 2 * 8 + 4 : 5 * 8;
	g->mp_n_mmaps = ints;
	unsigned after_ints = (ints + 4 * 4 + 7) & ~7u;
	g->mp_sbrk_base = after_ints + 2 * 8;
	g->mp_tcache_bins = g->mp_sbrk_base + 8;
	g->mp_tcache_max = g->mp_sbrk_base + 16;
	g->mp_tcache_count = g->mp_sbrk_base + 24;
	g->mp_size = g->mp_sbrk_base + 40;
}

void synth_glibc_deinit(struct synth_glibc *g)
{
	for (size_t i = 0; i < g->nsegs; i++)
		free(g->segs[i].buf);
	g->nsegs = 0;
}

uint8_t *synth_glibc_segment(struct synth_glibc *g, uint64_t start, uint64_t size, uint32_t flags)
{
	if (g->nsegs == SYNTH_GLIBC_MAX_SEGS)
		abort();
	uint8_t *buf = xcalloc(1, size);
	g->segs[g->nsegs].start = start;
	g->segs[g->nsegs].size = size;
	g->segs[g->nsegs].buf = buf;
	g->segs[g->nsegs].flags = flags;
	g->nsegs++;
	return buf;
}

static uint8_t *at(const struct synth_glibc *g, uint64_t addr, size_t len)
{
	for (size_t i = 0; i < g->nsegs; i++)
		if (addr >= g->segs[i].start && addr - g->segs[i].start + len <= g->segs[i].size)
			return g->segs[i].buf + (addr - g->segs[i].start);
	fprintf(stderr, "synth_glibc: 0x%" PRIx64 " is in no segment\n", addr);
	abort();
}

void synth_glibc_w64(struct synth_glibc *g, uint64_t addr, uint64_t v)
{
	memcpy(at(g, addr, 8), &v, 8);
}

uint64_t synth_glibc_r64(struct synth_glibc *g, uint64_t addr)
{
	uint64_t v;
	memcpy(&v, at(g, addr, 8), 8);
	return v;
}

static void w32(struct synth_glibc *g, uint64_t addr, uint32_t v)
{
	memcpy(at(g, addr, 4), &v, 4);
}

static uint32_t r32(struct synth_glibc *g, uint64_t addr)
{
	uint32_t v;
	memcpy(&v, at(g, addr, 4), 4);
	return v;
}

/* The truth's arena index is worked out by compare(), from the heap. */
static void add_truth(struct synth_glibc *g, uint64_t chunk, uint64_t usable, enum hs_where where)
{
	if (g->ntruth == SYNTH_GLIBC_MAX_TRUTH)
		abort();
	g->truth[g->ntruth++] = (struct synth_glibc_truth){ chunk + 16, usable, where, 0 };
}

struct synth_glibc_truth *synth_glibc_truth_of(struct synth_glibc *g, uint64_t chunk)
{
	for (size_t i = 0; i < g->ntruth; i++)
		if (g->truth[i].user == chunk + 16)
			return &g->truth[i];
	fprintf(stderr, "synth_glibc: no chunk 0x%" PRIx64 "\n", chunk);
	abort();
}

static void init_arena(struct synth_glibc *g, uint64_t a)
{
	for (unsigned i = 1; i < 128; i++) {
		uint64_t self = a + g->ms_bins + (uint64_t)(i - 1) * 16 - 16;
		synth_glibc_w64(g, self + 16, self);
		synth_glibc_w64(g, self + 24, self);
	}
	synth_glibc_w64(g, a + g->ms_attached, 1);
	g->arenas[g->narenas++] = a;
}

void synth_glibc_libc(struct synth_glibc *g, uint64_t base)
{
	g->libc_base = base;
	synth_glibc_segment(g, base, 0x4000, HS_SEG_R | HS_SEG_W);
	/* as on 2.36: mp_ first, main_arena 0x920 after it */
	g->mp = base + 0x340;
	g->main_arena = base + 0xc60;
	uint64_t m = g->mp;
	synth_glibc_w64(g, m + 0, 128 * 1024);        /* trim_threshold */
	synth_glibc_w64(g, m + 8, 128 * 1024);        /* top_pad */
	synth_glibc_w64(g, m + 16, 128 * 1024);       /* mmap_threshold */
	synth_glibc_w64(g, m + 24, 8);                /* arena_test */
	w32(g, m + g->mp_n_mmaps + 4, 65536);         /* n_mmaps_max */
	synth_glibc_w64(g, m + g->mp_tcache_bins, 64);
	synth_glibc_w64(g, m + g->mp_tcache_max, 1032);
	synth_glibc_w64(g, m + g->mp_tcache_count, 7);
	init_arena(g, g->main_arena);
	synth_glibc_w64(g, g->main_arena + g->ms_next, g->main_arena);
}

void synth_glibc_main_heap(struct synth_glibc *g, uint64_t start, uint64_t size,
			   struct synth_glibc_heap *h)
{
	synth_glibc_segment(g, start, size, HS_SEG_R | HS_SEG_W);
	synth_glibc_w64(g, g->mp + g->mp_sbrk_base, start);
	*h = (struct synth_glibc_heap){ .start = start, .end = start + size, .cur = start,
					.arena = g->main_arena, .arena_index = 0, .main = true };
	uint64_t sm = synth_glibc_r64(g, g->main_arena + g->ms_system_mem);
	synth_glibc_w64(g, g->main_arena + g->ms_system_mem, sm + size);
}

static void write_heap_info(struct synth_glibc *g, uint64_t base, uint64_t arena, uint64_t prev,
			    uint64_t size)
{
	synth_glibc_w64(g, base + 0, arena);
	synth_glibc_w64(g, base + 8, prev);
	synth_glibc_w64(g, base + 16, size);
	synth_glibc_w64(g, base + 24, size);          /* mprotect_size */
	if (g->hi_size == 48)
		synth_glibc_w64(g, base + 32, 4096);  /* pagesize */
}

/* The first chunk after ptr such that chunk + 16 is 16-aligned. */
static uint64_t align_chunk(uint64_t ptr)
{
	return ((ptr + 16 + 15) & ~UINT64_C(15)) - 16;
}

void synth_glibc_thread_arena(struct synth_glibc *g, uint64_t base, uint64_t size,
			      struct synth_glibc_heap *h)
{
	synth_glibc_segment(g, base, size, HS_SEG_R | HS_SEG_W);
	uint64_t a = base + g->hi_size;
	write_heap_info(g, base, a, 0, size);
	unsigned index = g->narenas;
	init_arena(g, a);
	/* _int_new_arena: a->next = main_arena.next; main_arena.next = a */
	synth_glibc_w64(g, a + g->ms_next, synth_glibc_r64(g, g->main_arena + g->ms_next));
	synth_glibc_w64(g, g->main_arena + g->ms_next, a);
	synth_glibc_w64(g, a + g->ms_system_mem, size);
	*h = (struct synth_glibc_heap){ .start = base, .end = base + size,
					.cur = align_chunk(a + g->ms_size), .arena = a,
					.arena_index = index, .main = false };
}

uint64_t synth_glibc_chunk(struct synth_glibc *g, struct synth_glibc_heap *h, uint64_t csize)
{
	uint64_t p = h->cur;
	if (p + csize + 32 > h->end)
		abort();
	memset(at(g, p + 16, csize - 16), 0x41, csize - 16);
	synth_glibc_w64(g, p + 8, csize | P_INUSE | (h->main ? 0 : NON_MAIN));
	add_truth(g, p, csize - 8, HS_WHERE_USED);
	h->cur += csize;
	return p;
}

void synth_glibc_finish_heap(struct synth_glibc *g, struct synth_glibc_heap *h)
{
	uint64_t top = h->cur, size = h->end - h->cur;
	synth_glibc_w64(g, top + 8, size | P_INUSE);
	synth_glibc_w64(g, h->arena + g->ms_top, top);
	add_truth(g, top, size - 8, WHERE("top"));
}

static uint64_t csize_of(struct synth_glibc *g, uint64_t chunk)
{
	return synth_glibc_r64(g, chunk + 8) & ~UINT64_C(7);
}

void synth_glibc_next_heap(struct synth_glibc *g, struct synth_glibc_heap *h, uint64_t base,
			   uint64_t size, struct synth_glibc_heap *next)
{
	/* sysmalloc: fenceposts at the end of the old heap, old top freed */
	uint64_t old_top = h->cur;
	uint64_t old_size = ((h->end - h->cur) - 32) & ~UINT64_C(15);
	synth_glibc_w64(g, old_top + old_size + 16 + 8, 0 | P_INUSE);
	synth_glibc_w64(g, old_top + old_size + 8, 16 | P_INUSE);
	synth_glibc_w64(g, old_top + old_size + 16, 16);
	synth_glibc_w64(g, old_top + 8, old_size | P_INUSE | NON_MAIN);
	add_truth(g, old_top, old_size - 8, HS_WHERE_USED);
	unsigned ai = h->arena_index;
	synth_glibc_bin_put(g, ai, old_top, true);

	synth_glibc_segment(g, base, size, HS_SEG_R | HS_SEG_W);
	write_heap_info(g, base, h->arena, h->start, size);
	uint64_t sm = synth_glibc_r64(g, h->arena + g->ms_system_mem);
	synth_glibc_w64(g, h->arena + g->ms_system_mem, sm + size);
	*next = (struct synth_glibc_heap){ .start = base, .end = base + size, .cur = base + g->hi_size,
					   .arena = h->arena, .arena_index = ai, .main = false };
}

uint64_t synth_glibc_tcache(struct synth_glibc *g, struct synth_glibc_heap *h)
{
	uint64_t size = 64 * g->tc_width + 64 * 8;            /* counts[64], entries[64] */
	uint64_t csize = (size + 8 + 15) & ~UINT64_C(15);      /* request2size */
	uint64_t p = synth_glibc_chunk(g, h, csize);
	memset(at(g, p + 16, size), 0, size);
	synth_glibc_truth_of(g, p)->where = HS_WHERE_META;
	return p + 16;
}

uint64_t synth_glibc_tcache_count_addr(struct synth_glibc *g, uint64_t tcache, unsigned bin)
{
	return tcache + (uint64_t)bin * g->tc_width;
}

void synth_glibc_tcache_put(struct synth_glibc *g, uint64_t tcache, uint64_t chunk)
{
	unsigned idx = (unsigned)((csize_of(g, chunk) - 32 + 15) / 16);
	uint64_t e = chunk + 16;
	uint64_t slot = tcache + 64 * g->tc_width + 8 * idx;
	uint64_t head = synth_glibc_r64(g, slot);
	synth_glibc_w64(g, e, g->safe_linking ? (e >> 12) ^ head : head);
	if (g->version >= 229)
		synth_glibc_w64(g, e + 8, g->key_is_pointer ? tcache : UINT64_C(0x5a17c0ffee15f00d));
	synth_glibc_w64(g, slot, e);
	uint64_t caddr = synth_glibc_tcache_count_addr(g, tcache, idx);
	if (g->tc_width == 1)
		*at(g, caddr, 1) += 1;
	else {
		uint16_t c;
		memcpy(&c, at(g, caddr, 2), 2);
		c++;
		memcpy(at(g, caddr, 2), &c, 2);
	}
	synth_glibc_truth_of(g, chunk)->where = WHERE("tcache");
}

uint64_t synth_glibc_fastbin_addr(struct synth_glibc *g, unsigned ai, unsigned bin)
{
	return g->arenas[ai] + g->ms_fastbins + 8 * bin;
}

void synth_glibc_fastbin_put(struct synth_glibc *g, unsigned ai, uint64_t chunk)
{
	unsigned idx = (unsigned)(csize_of(g, chunk) >> 4) - 2;
	uint64_t slot = synth_glibc_fastbin_addr(g, ai, idx);
	uint64_t head = synth_glibc_r64(g, slot);
	synth_glibc_w64(g, chunk + 16, g->safe_linking ? ((chunk + 16) >> 12) ^ head : head);
	synth_glibc_w64(g, slot, chunk);
	if (g->have_fastchunks)
		w32(g, g->arenas[ai] + 8, 1);
	synth_glibc_truth_of(g, chunk)->where = WHERE("fastbin");
}

/* smallbin_index / largebin_index_64, written out again for the oracle. */
static unsigned bin_index(uint64_t sz)
{
	if (sz < 1024)
		return (unsigned)(sz >> 4);
	if ((sz >> 6) <= 48) return 48 + (unsigned)(sz >> 6);
	if ((sz >> 9) <= 20) return 91 + (unsigned)(sz >> 9);
	if ((sz >> 12) <= 10) return 110 + (unsigned)(sz >> 12);
	if ((sz >> 15) <= 4) return 119 + (unsigned)(sz >> 15);
	if ((sz >> 18) <= 2) return 124 + (unsigned)(sz >> 18);
	return 126;
}

void synth_glibc_bin_put(struct synth_glibc *g, unsigned ai, uint64_t chunk, bool unsorted)
{
	uint64_t a = g->arenas[ai], cs = csize_of(g, chunk);
	unsigned idx = unsorted ? 1 : bin_index(cs);
	uint64_t bin = a + g->ms_bins + (uint64_t)(idx - 1) * 16 - 16;
	uint64_t fwd = synth_glibc_r64(g, bin + 16);
	synth_glibc_w64(g, chunk + 16, fwd);
	synth_glibc_w64(g, chunk + 24, bin);
	synth_glibc_w64(g, fwd + 24, chunk);
	synth_glibc_w64(g, bin + 16, chunk);
	if (idx >= 64) {   /* fd_nextsize / bk_nextsize of a lone size */
		synth_glibc_w64(g, chunk + 32, chunk);
		synth_glibc_w64(g, chunk + 40, chunk);
	}
	/* free by header: set_head (p, size | PREV_INUSE), the next chunk's
	 * PREV_INUSE cleared and its prev_size set */
	uint64_t head = synth_glibc_r64(g, chunk + 8);
	synth_glibc_w64(g, chunk + 8, cs | (head & P_INUSE));
	uint64_t nsf = synth_glibc_r64(g, chunk + cs + 8);
	synth_glibc_w64(g, chunk + cs + 8, nsf & ~(uint64_t)P_INUSE);
	synth_glibc_w64(g, chunk + cs, cs);
	synth_glibc_truth_of(g, chunk)->where = idx == 1 ? WHERE("unsorted")
					      : idx < 64 ? WHERE("smallbin") : WHERE("largebin");
}

void synth_glibc_mmapped(struct synth_glibc *g, uint64_t addr, uint64_t size)
{
	synth_glibc_segment(g, addr, size, HS_SEG_R | HS_SEG_W);
	synth_glibc_w64(g, addr + 8, size | MMAPPED);
	memset(at(g, addr + 16, 64), 0x42, 64);
	add_truth(g, addr, size - 16, HS_WHERE_MMAPPED);
	/* n_mmaps, and max_n_mmaps after it (n_mmaps_max sits between) */
	uint64_t m = g->mp + g->mp_n_mmaps;
	w32(g, m, r32(g, m) + 1);
	if (r32(g, m + 8) < r32(g, m))
		w32(g, m + 8, r32(g, m));
}

void synth_glibc_thread(struct synth_glibc *g, int32_t tid, uint64_t fs_base, uint64_t tcache)
{
	if (g->nthreads == SYNTH_GLIBC_MAX_THREADS)
		abort();
	/* the stack and static TLS below fs_base, the TCB above */
	synth_glibc_segment(g, fs_base - 0x4000, 0x5000, HS_SEG_R | HS_SEG_W);
	synth_glibc_w64(g, fs_base, fs_base);          /* tcb->tcb */
	synth_glibc_w64(g, fs_base - TLS_SLOT, tcache);
	struct hs_thread *t = &g->threads[g->nthreads++];
	memset(t, 0, sizeof(*t));
	t->tid = tid;
	t->regs[HS_REG_FS_BASE] = fs_base;
	t->regs[HS_REG_RSP] = fs_base - 0x3000;
}

struct hs_session *synth_glibc_session(struct synth_glibc *g)
{
	struct hs_segment segs[SYNTH_GLIBC_MAX_SEGS];
	memset(segs, 0, sizeof(segs));
	for (size_t i = 0; i < g->nsegs; i++) {
		segs[i].start = g->segs[i].start;
		segs[i].end = g->segs[i].start + g->segs[i].size;
		segs[i].filesz = g->segs[i].size;
		segs[i].data = g->segs[i].buf;
		segs[i].flags = g->segs[i].flags;
	}
	struct hs_target *t = NULL;
	if (hs_target_open_buffers(segs, g->nsegs, &t))
		abort();
	if (g->nthreads) {
		t->notes.threads = xcalloc(g->nthreads, sizeof(*t->notes.threads));
		memcpy(t->notes.threads, g->threads, g->nthreads * sizeof(*g->threads));
		t->notes.nthreads = g->nthreads;
		t->notes.pid = g->threads[0].tid;
	}
	struct hs_session *s = xcalloc(1, sizeof(*s));
	s->target = t;
	hs_diags_init(&s->diags);
	hs_heap_init(&s->heap);
	return s;
}

void synth_glibc_override(struct hs_session *s, const char *name, uint64_t value)
{
	if (s->noverrides == HS_MAX_OVERRIDES)
		abort();
	snprintf(s->overrides[s->noverrides].name, sizeof(s->overrides[0].name), "%s", name);
	s->overrides[s->noverrides].value = value;
	s->noverrides++;
}

static bool mapped(const struct synth_glibc *g, uint64_t addr)
{
	for (size_t i = 0; i < g->nsegs; i++)
		if (addr >= g->segs[i].start && addr - g->segs[i].start + 8 <= g->segs[i].size)
			return true;
	return false;
}

/* The walker's number for the arena that owns the heap holding user: ring
 * order from main_arena; arenas the ring does not reach (a test cut it)
 * follow in the order they were made. */
static unsigned arena_index_of(const struct synth_glibc *g, uint64_t user)
{
	struct synth_glibc *mg = (struct synth_glibc *)g;
	uint64_t ring[16];
	unsigned n = 0;
	uint64_t a = g->main_arena;
	do {
		ring[n++] = a;
		uint64_t next = a + g->ms_next;
		a = mapped(g, next) ? synth_glibc_r64(mg, next) : 0;
	} while (a && a != g->main_arena && mapped(g, a) && n < 16);
	for (unsigned i = 0; i < g->narenas && n < 16; i++) {
		bool in = false;
		for (unsigned k = 0; k < n; k++)
			in |= ring[k] == g->arenas[i];
		if (!in)
			ring[n++] = g->arenas[i];
	}
	uint64_t heap = user & ~((UINT64_C(64) << 20) - 1);
	for (size_t s = 0; s < g->nsegs; s++) {
		if (g->segs[s].start != heap)
			continue;
		uint64_t owner = synth_glibc_r64(mg, heap);
		for (unsigned i = 1; i < n; i++)
			if (ring[i] == owner)
				return i;
	}
	return 0;
}

size_t synth_glibc_compare(const struct synth_glibc *g, const struct hs_heap *heap,
			   const uint64_t *skip, size_t nskip)
{
	size_t bad = 0, matched = 0;
	for (size_t i = 0; i < g->ntruth; i++) {
		const struct synth_glibc_truth *t = &g->truth[i];
		bool skipped = false;
		for (size_t k = 0; k < nskip; k++)
			skipped |= skip[k] == t->user - 16;
		if (skipped)
			continue;
		unsigned arena = t->where == HS_WHERE_MMAPPED ? HS_ARENA_NONE : arena_index_of(g, t->user);
		ptrdiff_t b = hs_heap_find(heap, t->user);
		if (b < 0 || heap->blocks[b].address != t->user) {
			fprintf(stderr, "missing: 0x%" PRIx64 " %s %" PRIu64 "\n", t->user,
				hs_where_name(t->where), t->usable);
			bad++;
			continue;
		}
		matched++;
		const struct hs_block *bl = &heap->blocks[b];
		if (hs_block_size(bl) != t->usable || hs_block_where(bl) != t->where ||
		    hs_block_arena(bl) != arena) {
			fprintf(stderr, "wrong: 0x%" PRIx64 " is %s %" PRIu64 " arena %u, want %s %" PRIu64
				" arena %u\n", t->user, hs_where_name(hs_block_where(bl)), hs_block_size(bl),
				hs_block_arena(bl), hs_where_name(t->where), t->usable, arena);
			bad++;
		}
	}
	if (heap->n > matched) {
		for (size_t i = 0; i < heap->n; i++) {
			bool known = false;
			for (size_t k = 0; k < g->ntruth && !known; k++)
				known = g->truth[k].user == heap->blocks[i].address;
			if (!known) {
				fprintf(stderr, "extra: 0x%" PRIx64 " %s %" PRIu64 "\n", heap->blocks[i].address,
					hs_where_name(hs_block_where(&heap->blocks[i])),
					hs_block_size(&heap->blocks[i]));
				bad++;
			}
		}
	}
	return bad;
}
