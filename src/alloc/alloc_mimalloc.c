/* alloc_mimalloc.c - the mimalloc walker (mimalloc 2.0.9, x86-64).
 *
 * detect  the module: libmimalloc (Debian's libmimalloc.so.2, stripped) or
 *         any module with a mi_version symbol (mimalloc linked in); its
 *         version from mi_version()'s code in the file ("mov $209, %eax;
 *         ret": 2.0.9), anything but a row of mimalloc_layout.h refused by
 *         name.  Then the segments: mimalloc's data symbols are hidden, so
 *         they are found by shape, at every 32 MiB boundary of the core's
 *         writable memory: a header whose kind, slice counts and owning
 *         thread (a thread's thread pointer, or 0 when abandoned) hold, whose
 *         slice table tiles the segment, and whose cookie (its address XOR
 *         the process's heap cookie) agrees with the other segments'.
 * walk    every segment's spans: its header (meta), free spans, and pages;
 *         in each page every block made so far (capacity), free when it is
 *         on the page's free, local_free or thread_free list or on its heap's
 *         thread_delayed_free list, used otherwise; the part of the page not
 *         yet made into blocks is one free "uncarved" block.  Lists are
 *         walked with cycle detection and must stay on their page's blocks.
 * Arenas are the owning threads (a segment belongs to one), plus
 * "abandoned" for segments whose thread exited.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "mimalloc_layout.h"
#include "walker.h"

#define USER_MAX (UINT64_C(1) << 47)
#define MAX_SEGMENTS 65536
#define MAX_DIAGS_PER_KIND 20
#define MAX_THREADS_ARENAS 1024

enum mi_state_id { MI_FREE, MI_LOCAL_FREE, MI_THREAD_FREE, MI_DELAYED_FREE, MI_SPAN_FREE, MI_UNCARVED, MI_SEGMENT,
		   MI_NSTATES };
static const struct hs_state_def mi_states[MI_NSTATES] = {
	[MI_FREE] = { "free-list", HS_STATE_FREE, "on a mimalloc page's free list (the next to be allocated)" },
	[MI_LOCAL_FREE] = { "local-free", HS_STATE_FREE, "on a mimalloc page's local_free list (freed by its thread)" },
	[MI_THREAD_FREE] = { "thread-free", HS_STATE_FREE,
			     "on a mimalloc page's thread_free list (freed by another thread)" },
	[MI_DELAYED_FREE] = { "delayed-free", HS_STATE_FREE,
			      "on a mimalloc heap's thread_delayed_free list (freed by another thread)" },
	[MI_SPAN_FREE] = { "span-free", HS_STATE_FREE, "free slices of a mimalloc segment (no page)" },
	[MI_UNCARVED] = { "uncarved", HS_STATE_FREE, "the part of a mimalloc page not yet made into blocks" },
	[MI_SEGMENT] = { "segment", HS_STATE_META, "a mimalloc segment's header (mi_segment_t and its slices)" },
};

enum { D_SEGMENT, D_PAGE, D_LIST, D_OTHER };
static const char *const mi_diag_what[] = {
	"about segments", "about pages", "about free lists", "about other findings",
};

/* Marks of a block. */
enum { K_USED = 0, K_FREE, K_LOCAL, K_THREAD, K_DELAYED };
static const unsigned mark_state[] = { 0, MI_FREE, MI_LOCAL_FREE, MI_THREAD_FREE, MI_DELAYED_FREE };

struct mi_seg {
	uint64_t addr;
	uint64_t segment_slices, info_slices, slice_entries, thread;
	unsigned kind, arena;
};

struct mi_st {
	struct hs_walk_ctx *ctx;
	const struct hs_mi_layout *L;
	struct hs_module *mod;
	char module_name[64];
	uint64_t key;                /* the heap cookie: segment cookie ^ segment address */
	unsigned key_votes;
	struct mi_seg *segs;
	size_t nsegs, capsegs;
	uint64_t threads[MAX_THREADS_ARENAS];   /* arena i's owning thread pointer (0: abandoned) */
	unsigned nthreads;
	unsigned rejected;           /* 32 MiB boundaries that looked like a segment but failed */
};

static bool rd64(struct mi_st *m, uint64_t a, uint64_t *v) { return hs_walk_read_u64(m->ctx, a, v); }

static uint16_t ld16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t ld32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t ld64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* --- detect --------------------------------------------------------------- */

static struct hs_module *find_module(struct mi_st *m)
{
	struct hs_walk_ctx *ctx = m->ctx;
	if (!ctx->symbols)
		return NULL;
	struct hs_module *mod = hs_walk_module_named(ctx, "libmimalloc");
	if (mod)
		return mod;
	struct hs_symbol sym;
	struct hs_error *err = hs_walk_symbol(ctx, NULL, "mi_version", &sym);
	if (!err)
		return hs_walk_module_at(ctx, sym.address);
	hs_error_destroy(err);
	return NULL;
}

// mi_version() returns MI_MALLOC_VERSION: "mov $imm32, %eax; ret".
static struct hs_error *check_version(struct mi_st *m)
{
	struct hs_elf_file *f = hs_elf_open(m->mod->path, m->mod->bias);
	GElf_Sym sym;
	const uint8_t *code = NULL;
	if (f && hs_elf_symbol(f, "mi_version", &sym))
		code = hs_elf_at(f, sym.st_value, 6);
	unsigned version = 0;
	bool ok = code && code[0] == 0xb8 && code[5] == 0xc3;
	if (ok)
		version = ld32(code + 1);
	hs_elf_close(f);
	if (!ok)
		return hs_error_create(HS_ERR_HEAP,
				       "mimalloc is in %s but its mi_version() could not be read%s: its version cannot be checked",
				       m->module_name, f ? "" : " (the file is missing)");
	for (size_t i = 0; i < HS_MI_NLAYOUTS; i++)
		if (hs_mi_layouts[i]->version == version) {
			m->L = hs_mi_layouts[i];
			return NULL;
		}
	return hs_error_create(HS_ERR_HEAP, "%s is mimalloc %u.%u.%u: not supported (heapscope reads mimalloc %s)",
			       m->module_name, version / 100, version / 10 % 10, version % 10, hs_mi_layouts[0]->name);
}

static bool is_thread_pointer(const struct mi_st *m, uint64_t t)
{
	for (size_t i = 0; i < m->ctx->nthreads; i++)
		if (m->ctx->threads[i].regs[HS_REG_FS_BASE] == t)
			return true;
	return false;
}

/* Does the slice table of a segment tile it: spans from slice 0 (the header)
 * to slice_entries, each starting with a slice whose offset is 0? */
static bool slices_tile(struct mi_st *m, const struct mi_seg *s, const uint8_t *slices)
{
	const struct hs_mi_layout *L = m->L;
	uint64_t i = 0, end = s->kind == 1 ? s->segment_slices : s->slice_entries;
	while (i < s->slice_entries) {
		const uint8_t *sl = slices + (size_t)i * L->pg_sizeof;
		uint32_t count = ld32(sl + L->pg_slice_count);
		if (count == 0 || ld32(sl + L->pg_slice_offset) != 0 || count > end - i)
			return false;
		if (i == 0 && count != s->info_slices)
			return false;
		i += count;
	}
	return true;
}

// One 32 MiB boundary: a segment header?  Fills s; false if not one.
static bool read_segment(struct mi_st *m, uint64_t a, struct mi_seg *s, uint64_t *key_ret)
{
	const struct hs_mi_layout *L = m->L;
	uint8_t h[512];
	if (L->seg_slices > sizeof(h) || !hs_walk_read(m->ctx, a, h, L->seg_slices))
		return false;
	*s = (struct mi_seg){ .addr = a };
	s->segment_slices = ld64(h + L->seg_segment_slices);
	s->info_slices = ld64(h + L->seg_info_slices);
	s->kind = ld32(h + L->seg_kind);
	s->slice_entries = ld64(h + L->seg_slice_entries);
	s->thread = ld64(h + L->seg_thread_id);
	*key_ret = ld64(h + L->seg_cookie) ^ a;
	if (s->kind > 1 || s->info_slices == 0 || s->info_slices > 8 || s->slice_entries < s->info_slices ||
	    s->slice_entries > L->slices_per_segment || (s->thread && !is_thread_pointer(m, s->thread)))
		return false;
	if (s->kind == 0 ? s->segment_slices != L->slices_per_segment
			 : s->segment_slices <= s->info_slices || s->segment_slices > (USER_MAX >> L->slice_shift))
		return false;
	size_t len = (size_t)s->slice_entries * L->pg_sizeof;
	uint8_t *slices = malloc(len ? len : 1);
	bool ok = slices && hs_walk_read(m->ctx, a + L->seg_slices, slices, len) && slices_tile(m, s, slices);
	free(slices);
	return ok;
}

static unsigned arena_of(struct mi_st *m, uint64_t thread)
{
	for (unsigned i = 0; i < m->nthreads; i++)
		if (m->threads[i] == thread)
			return i;
	if (m->nthreads == MAX_THREADS_ARENAS)
		return MAX_THREADS_ARENAS - 1;
	m->threads[m->nthreads] = thread;
	return m->nthreads++;
}

// Arenas in the order of the core's threads, the abandoned segments last:
// the order segments were met in (their addresses) changes from run to run.
static void number_arenas(struct mi_st *m)
{
	unsigned rank[MAX_THREADS_ARENAS], to[MAX_THREADS_ARENAS], order[MAX_THREADS_ARENAS];
	for (unsigned i = 0; i < m->nthreads; i++) {
		rank[i] = UINT_MAX;
		for (size_t k = 0; m->threads[i] && k < m->ctx->nthreads; k++)
			if (m->ctx->threads[k].regs[HS_REG_FS_BASE] == m->threads[i]) {
				rank[i] = (unsigned)k;
				break;
			}
		order[i] = i;
	}
	for (unsigned i = 1; i < m->nthreads; i++)   // a stable insertion sort of a few arenas
		for (unsigned j = i; j > 0 && rank[order[j - 1]] > rank[order[j]]; j--) {
			unsigned t = order[j];
			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	uint64_t threads[MAX_THREADS_ARENAS];
	for (unsigned i = 0; i < m->nthreads; i++) {
		to[order[i]] = i;
		threads[i] = m->threads[order[i]];
	}
	memcpy(m->threads, threads, m->nthreads * sizeof(*threads));
	for (size_t k = 0; k < m->nsegs; k++)
		m->segs[k].arena = to[m->segs[k].arena];
}

static int seg_cmp(const void *x, const void *y)
{
	const struct mi_seg *a = x, *b = y;
	return (a->addr > b->addr) - (a->addr < b->addr);
}

static struct hs_error *find_segments(struct mi_st *m)
{
	const struct hs_mi_layout *L = m->L;
	const uint64_t align = UINT64_C(1) << L->segment_shift;
	struct vote { uint64_t key; unsigned votes; } keys[8];
	size_t nkeys = 0;
	struct mi_seg *cand = NULL;
	uint64_t *cand_key = NULL;
	size_t ncand = 0, capcand = 0;
	struct hs_memory *mem = m->ctx->mem;
	for (size_t i = 0; i < mem->nsegs; i++) {
		const struct hs_segment *seg = &mem->segs[i];
		if (!(seg->flags & HS_SEG_W) || !seg->filesz)
			continue;
		for (uint64_t a = (seg->start + align - 1) & ~(align - 1); a < seg->start + seg->filesz; a += align) {
			if (hs_walk_interrupted(m->ctx)) {
				free(cand);
				free(cand_key);
				return hs_error_create(HS_ERR_INTERRUPTED, "interrupted");
			}
			struct mi_seg s;
			uint64_t key;
			if (!read_segment(m, a, &s, &key))
				continue;
			if (ncand == capcand) {
				size_t cap = capcand ? 2 * capcand : 64;
				struct mi_seg *g = realloc(cand, cap * sizeof(*g));
				uint64_t *gk = g ? realloc(cand_key, cap * sizeof(*gk)) : NULL;
				if (g)
					cand = g;
				if (!gk) {
					free(cand);
					free(cand_key);
					return &hs_error_nomem;
				}
				cand_key = gk;
				capcand = cap;
			}
			if (ncand == MAX_SEGMENTS)
				break;
			cand[ncand] = s;
			cand_key[ncand++] = key;
			size_t k = 0;
			while (k < nkeys && keys[k].key != key)
				k++;
			if (k == nkeys && nkeys < 8)
				keys[nkeys++] = (struct vote){ key, 0 };
			if (k < nkeys)
				keys[k].votes++;
		}
	}
	// Every segment carries the process's one heap cookie: the most common
	// one is it; a header with another is not a segment of this heap.
	for (size_t k = 0; k < nkeys; k++)
		if (keys[k].votes > m->key_votes) {
			m->key = keys[k].key;
			m->key_votes = keys[k].votes;
		}
	for (size_t c = 0; c < ncand; c++) {
		if (cand_key[c] != m->key) {
			m->rejected++;
			hs_walk_diagk(m->ctx, D_SEGMENT, HS_DIAG_WARNING, cand[c].addr,
				      "0x%" PRIx64 " looks like a mimalloc segment but its cookie is not the heap's: skipped",
				      cand[c].addr);
			continue;
		}
		if (m->nsegs == m->capsegs) {
			size_t cap = m->capsegs ? 2 * m->capsegs : 64;
			struct mi_seg *g = realloc(m->segs, cap * sizeof(*g));
			if (!g) {
				free(cand);
				free(cand_key);
				return &hs_error_nomem;
			}
			m->segs = g;
			m->capsegs = cap;
		}
		cand[c].arena = arena_of(m, cand[c].thread);
		m->segs[m->nsegs++] = cand[c];
	}
	free(cand);
	free(cand_key);
	number_arenas(m);
	if (m->nsegs)
		qsort(m->segs, m->nsegs, sizeof(*m->segs), seg_cmp);
	if (!m->nsegs)
		return hs_error_create(HS_ERR_HEAP,
				       "mimalloc %s is in %s but no segment of its heap is in the core (no 32 MiB aligned "
				       "segment header with this process's threads)", m->L->name, m->module_name);
	return NULL;
}

static void state_destroy(void *state)
{
	struct mi_st *m = state;
	if (m)
		free(m->segs);
	free(m);
}

static struct hs_error *mi_detect(struct hs_walk_ctx *ctx, void **state_ret)
{
	*state_ret = NULL;
	struct mi_st *m = calloc(1, sizeof(*m));
	if (!m)
		return &hs_error_nomem;
	m->ctx = ctx;
	hs_walk_diag_kinds(ctx, mi_diag_what, sizeof(mi_diag_what) / sizeof(mi_diag_what[0]), MAX_DIAGS_PER_KIND);
	m->mod = find_module(m);
	if (!m->mod) {
		free(m);
		return hs_error_create(HS_ERR_NOT_FOUND, "mimalloc is not in this process: no libmimalloc module and no mi_version symbol");
	}
	snprintf(m->module_name, sizeof(m->module_name), "%s", hs_base_name(m->mod->path ? m->mod->path : m->mod->name));
	struct hs_error *err = check_version(m);
	if (!err)
		err = find_segments(m);
	if (err) {
		state_destroy(m);
		return err;
	}
	*state_ret = m;
	return NULL;
}

/* --- walk ----------------------------------------------------------------- */

struct mi_page {
	uint64_t slice;            /* its mi_page_t */
	uint64_t start, end;       /* blocks from start; the span ends at end */
	uint64_t bsize;
	uint32_t capacity, reserved, used;
	uint64_t free, local_free, thread_free, heap;
	unsigned arena;
};

struct walk {
	struct mi_st *m;
	struct hs_heap *heap;
	struct hs_alloc_desc *desc;
	struct mi_page *pages;
	size_t npages, cappages;
	uint64_t *heaps;           /* distinct xheap values, sorted */
	size_t nheaps;
	uint64_t *delayed;         /* blocks on the heaps' delayed lists, sorted */
	size_t ndelayed, capdelayed;
	uint8_t *marks;            /* one page's blocks */
	size_t capmarks;
	uint64_t cnt[MI_NSTATES], bytes[MI_NSTATES];
	uint64_t used_n, used_b;
	uint64_t arena_used_n[MAX_THREADS_ARENAS], arena_used_b[MAX_THREADS_ARENAS];
	uint64_t arena_free_n[MAX_THREADS_ARENAS], arena_free_b[MAX_THREADS_ARENAS];
	unsigned bad_pages, bad_lists;
};

static int u64_cmp(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return (a > b) - (a < b);
}

static struct hs_error *add_block(struct walk *w, uint64_t addr, uint64_t size, unsigned st, unsigned arena)
{
	struct hs_walk_ctx *ctx = w->m->ctx;
	unsigned where = st == MI_NSTATES ? HS_WHERE_USED : ctx->state[st];
	HS_CHECK(hs_heap_add(w->heap, addr, size, where, ctx->arena_base + arena));
	if (st == MI_NSTATES) {
		w->used_n++;
		w->used_b += size;
		w->arena_used_n[arena]++;
		w->arena_used_b[arena] += size;
	} else {
		w->cnt[st]++;
		w->bytes[st] += size;
		if (mi_states[st].kind == HS_STATE_FREE) {
			w->arena_free_n[arena]++;
			w->arena_free_b[arena] += size;
		}
	}
	return NULL;
}

/* Every span of every segment: headers and free spans go to the heap at
 * once, pages to w->pages. */
static struct hs_error *collect(struct walk *w)
{
	struct mi_st *m = w->m;
	const struct hs_mi_layout *L = m->L;
	uint8_t *slices = malloc((size_t)(L->slices_per_segment + 1) * L->pg_sizeof);
	if (!slices)
		return &hs_error_nomem;
	struct hs_error *err = NULL;
	for (size_t k = 0; k < m->nsegs && !err; k++) {
		const struct mi_seg *s = &m->segs[k];
		if (hs_walk_interrupted(m->ctx)) {
			err = hs_error_create(HS_ERR_INTERRUPTED, "interrupted");
			break;
		}
		uint64_t seg_end = s->addr + (s->segment_slices << L->slice_shift);
		struct hs_region reg = { s->addr, seg_end, HS_REGION_HEAP, s->arena };
		if ((err = hs_alloc_desc_add_region(w->desc, &reg)))
			break;
		size_t len = (size_t)s->slice_entries * L->pg_sizeof;
		if (!hs_walk_read(m->ctx, s->addr + L->seg_slices, slices, len)) {
			hs_walk_diagk(m->ctx, D_SEGMENT, HS_DIAG_ERROR, s->addr,
				      "segment 0x%" PRIx64 ": its slice table can no longer be read", s->addr);
			continue;
		}
		uint64_t i = 0;
		while (i < s->slice_entries && !err) {
			const uint8_t *sl = slices + (size_t)i * L->pg_sizeof;
			uint64_t count = ld32(sl + L->pg_slice_count);
			uint64_t span = s->addr + (i << L->slice_shift), span_end = span + (count << L->slice_shift);
			if (span_end > seg_end)
				span_end = seg_end;
			uint32_t xbs = ld32(sl + L->pg_xblock_size);
			if (i == 0) {
				err = add_block(w, span, span_end - span, MI_SEGMENT, s->arena);
			} else if (xbs == 0) {
				err = add_block(w, span, span_end - span, MI_SPAN_FREE, s->arena);
			} else {
				if (w->npages == w->cappages) {
					size_t cap = w->cappages ? 2 * w->cappages : 256;
					struct mi_page *g = realloc(w->pages, cap * sizeof(*g));
					if (!g) {
						err = &hs_error_nomem;
						break;
					}
					w->pages = g;
					w->cappages = cap;
				}
				struct mi_page *p = &w->pages[w->npages++];
				uint64_t off = xbs >= L->small_start_min && xbs <= L->small_start_max ? L->small_start : 0;
				*p = (struct mi_page){
					.slice = s->addr + L->seg_slices + i * L->pg_sizeof,
					.start = span + off, .end = span_end,
					.bsize = xbs >= L->huge_block_size ? span_end - span - off : xbs,
					.capacity = ld16(sl + L->pg_capacity), .reserved = ld16(sl + L->pg_reserved),
					.used = ld32(sl + L->pg_used),
					.free = ld64(sl + L->pg_free), .local_free = ld64(sl + L->pg_local_free),
					.thread_free = ld64(sl + L->pg_xthread_free) & ~UINT64_C(3),
					.heap = ld64(sl + L->pg_xheap), .arena = s->arena,
				};
			}
			i += count;
		}
	}
	free(slices);
	return err;
}

/* The blocks other threads freed into each heap's thread_delayed_free list. */
static struct hs_error *delayed_lists(struct walk *w)
{
	struct mi_st *m = w->m;
	const struct hs_mi_layout *L = m->L;
	w->heaps = malloc((w->npages ? w->npages : 1) * sizeof(uint64_t));
	if (!w->heaps)
		return &hs_error_nomem;
	for (size_t i = 0; i < w->npages; i++)
		if (w->pages[i].heap)
			w->heaps[w->nheaps++] = w->pages[i].heap;
	qsort(w->heaps, w->nheaps, sizeof(uint64_t), u64_cmp);
	size_t n = 0;
	for (size_t i = 0; i < w->nheaps; i++)
		if (!n || w->heaps[n - 1] != w->heaps[i])
			w->heaps[n++] = w->heaps[i];
	w->nheaps = n;
	for (size_t h = 0; h < w->nheaps; h++) {
		uint64_t head;
		if (!rd64(m, w->heaps[h] + L->hp_thread_delayed_free, &head)) {
			hs_walk_diagk(m->ctx, D_LIST, HS_DIAG_WARNING, w->heaps[h],
				      "heap 0x%" PRIx64 ": its thread_delayed_free list cannot be read", w->heaps[h]);
			continue;
		}
		struct hs_chain ch;
		hs_chain_init(&ch, UINT64_C(1) << 26);
		for (uint64_t b = head & ~UINT64_C(3); b;) {
			enum hs_chain_step st = hs_chain_next(&ch, b);
			if (st != HS_CHAIN_OK) {
				w->bad_lists++;
				hs_walk_diagk(m->ctx, D_LIST, HS_DIAG_ERROR, w->heaps[h],
					      "heap 0x%" PRIx64 ": its thread_delayed_free list %s", w->heaps[h],
					      st == HS_CHAIN_CYCLE ? "loops" : "is too long");
				break;
			}
			if (w->ndelayed == w->capdelayed) {
				size_t cap = w->capdelayed ? 2 * w->capdelayed : 256;
				uint64_t *g = realloc(w->delayed, cap * sizeof(*g));
				if (!g)
					return &hs_error_nomem;
				w->delayed = g;
				w->capdelayed = cap;
			}
			w->delayed[w->ndelayed++] = b;
			if (!rd64(m, b, &b)) {
				w->bad_lists++;
				hs_walk_diagk(m->ctx, D_LIST, HS_DIAG_ERROR, w->heaps[h],
					      "heap 0x%" PRIx64 ": its thread_delayed_free list leaves the core", w->heaps[h]);
				break;
			}
		}
	}
	if (w->ndelayed)
		qsort(w->delayed, w->ndelayed, sizeof(uint64_t), u64_cmp);
	return NULL;
}

static const char *const list_names[] = { "", "free", "local_free", "thread_free", "delayed" };

// Mark the blocks on one of a page's lists; false (and a diagnostic) when
// the list leaves the page's blocks, loops or meets a block twice.
static bool mark_list(struct walk *w, const struct mi_page *p, uint64_t head, unsigned mark)
{
	struct mi_st *m = w->m;
	struct hs_chain ch;
	hs_chain_init(&ch, (uint64_t)p->capacity + 1);
	for (uint64_t b = head; b;) {
		const char *why = NULL;
		if (hs_chain_next(&ch, b) != HS_CHAIN_OK)
			why = "loops";
		else if (b < p->start || (b - p->start) % p->bsize || (b - p->start) / p->bsize >= p->capacity)
			why = "leaves the page's blocks";
		else if (w->marks[(b - p->start) / p->bsize])
			why = "meets a block that is on another list";
		if (why) {
			w->bad_lists++;
			hs_walk_diagk(m->ctx, D_LIST, HS_DIAG_ERROR, b,
				      "page 0x%" PRIx64 " (blocks of %" PRIu64 " bytes): its %s list %s at 0x%" PRIx64
				      "; the rest of that list is not known", p->slice, p->bsize, list_names[mark], why, b);
			return false;
		}
		w->marks[(b - p->start) / p->bsize] = (uint8_t)mark;
		if (!rd64(m, b, &b)) {
			w->bad_lists++;
			hs_walk_diagk(m->ctx, D_LIST, HS_DIAG_ERROR, p->slice,
				      "page 0x%" PRIx64 ": its %s list leaves the core", p->slice, list_names[mark]);
			return false;
		}
	}
	return true;
}

static struct hs_error *emit_page(struct walk *w, const struct mi_page *p)
{
	struct mi_st *m = w->m;
	uint64_t made = (uint64_t)p->capacity * p->bsize;
	if (!p->bsize || p->capacity > p->reserved || made > p->end - p->start) {
		w->bad_pages++;
		hs_walk_diagk(m->ctx, D_PAGE, HS_DIAG_ERROR, p->slice,
			      "page 0x%" PRIx64 ": %u blocks of %" PRIu64 " bytes do not fit its %" PRIu64
			      " bytes; its memory is reported as one used block", p->slice, p->capacity, p->bsize,
			      p->end - p->start);
		return add_block(w, p->start, p->end - p->start, MI_NSTATES, p->arena);
	}
	if (p->capacity > w->capmarks) {
		uint8_t *g = realloc(w->marks, p->capacity);
		if (!g)
			return &hs_error_nomem;
		w->marks = g;
		w->capmarks = p->capacity;
	}
	memset(w->marks, 0, p->capacity);
	mark_list(w, p, p->free, K_FREE);
	mark_list(w, p, p->local_free, K_LOCAL);
	mark_list(w, p, p->thread_free, K_THREAD);
	// The delayed blocks of this page: from the first at or after its start.
	size_t di = 0;
	{
		size_t lo = 0, hi = w->ndelayed;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (w->delayed[mid] < p->start)
				lo = mid + 1;
			else
				hi = mid;
		}
		di = lo;
	}
	uint64_t nfree = 0;
	for (; di < w->ndelayed && w->delayed[di] < p->start + made; di++) {
		uint64_t b = w->delayed[di];
		if ((b - p->start) % p->bsize || w->marks[(b - p->start) / p->bsize]) {
			w->bad_lists++;
			hs_walk_diagk(m->ctx, D_LIST, HS_DIAG_ERROR, b,
				      "page 0x%" PRIx64 ": delayed-free block 0x%" PRIx64 " is not a free block start of it",
				      p->slice, b);
			continue;
		}
		w->marks[(b - p->start) / p->bsize] = K_DELAYED;
	}
	for (uint32_t k = 0; k < p->capacity; k++) {
		unsigned mk = w->marks[k];
		nfree += mk == K_FREE || mk == K_LOCAL;
		HS_CHECK(add_block(w, p->start + k * p->bsize, p->bsize, mk ? mark_state[mk] : MI_NSTATES, p->arena));
	}
	// used counts every block handed out, those freed by other threads too.
	if (p->used != p->capacity - nfree) {
		w->bad_pages++;
		hs_walk_diagk(m->ctx, D_PAGE, HS_DIAG_WARNING, p->slice,
			      "page 0x%" PRIx64 ": it says %u blocks are used, its free lists leave %" PRIu64,
			      p->slice, p->used, p->capacity - nfree);
	}
	if (p->start + made < p->end)
		HS_CHECK(add_block(w, p->start + made, p->end - (p->start + made), MI_UNCARVED, p->arena));
	return NULL;
}

static int thread_tid(const struct mi_st *m, uint64_t thread)
{
	for (size_t i = 0; i < m->ctx->nthreads; i++)
		if (m->ctx->threads[i].regs[HS_REG_FS_BASE] == thread)
			return m->ctx->threads[i].tid;
	return 0;
}

static struct hs_error *describe(struct walk *w)
{
	struct mi_st *m = w->m;
	struct hs_alloc_desc *d = w->desc;
	for (unsigned i = 0; i < m->nthreads; i++) {
		struct hs_arena a = { .address = m->threads[i], .nthreads = m->threads[i] ? 1 : 0 };
		if (m->threads[i])
			snprintf(a.label, sizeof(a.label), "mimalloc thread %d", thread_tid(m, m->threads[i]));
		else
			snprintf(a.label, sizeof(a.label), "mimalloc abandoned");
		uint64_t segs = 0, bytes = 0;
		for (size_t k = 0; k < m->nsegs; k++)
			if (m->segs[k].arena == i) {
				segs++;
				bytes += m->segs[k].segment_slices << m->L->slice_shift;
			}
		a.system_mem = bytes;
		a.used_count = w->arena_used_n[i];
		a.used_bytes = w->arena_used_b[i];
		a.free_count = w->arena_free_n[i];
		a.free_bytes = w->arena_free_b[i];
		hs_arena_fact_set(&a, "segments", segs);
		HS_CHECK(hs_alloc_desc_add_arena(d, &a));
	}
	snprintf(d->version, sizeof(d->version), "%s", m->L->name);
	snprintf(d->layout_source, sizeof(d->layout_source),
		 "built-in mimalloc %s (mi_version() in %s); segments by shape", m->L->name, m->module_name);
	hs_alloc_desc_fact(d, "mi_version", m->L->version);
	hs_alloc_desc_fact(d, "heap cookie", m->key);
	hs_alloc_desc_fact(d, "segments", m->nsegs);
	hs_alloc_desc_fact(d, "segment size", UINT64_C(1) << m->L->segment_shift);
	hs_alloc_desc_fact(d, "slice size", UINT64_C(1) << m->L->slice_shift);
	hs_alloc_desc_fact(d, "sizeof(mi_segment_t)", m->L->seg_sizeof);
	hs_alloc_desc_fact(d, "sizeof(mi_page_t)", m->L->pg_sizeof);
	hs_alloc_desc_fact(d, "pages", w->npages);
	hs_alloc_desc_fact(d, "heaps", w->nheaps);
	hs_alloc_desc_fact(d, "delayed_free blocks", w->ndelayed);
	if (m->rejected)
		hs_alloc_desc_fact(d, "segment lookalikes skipped", m->rejected);
	if (w->bad_pages)
		hs_alloc_desc_fact(d, "bad pages", w->bad_pages);
	if (w->bad_lists)
		hs_alloc_desc_fact(d, "bad lists", w->bad_lists);
	return NULL;
}

static struct hs_error *mi_walk(struct hs_walk_ctx *ctx, void *state, struct hs_heap *heap,
				struct hs_alloc_desc *desc)
{
	struct mi_st *m = state;
	m->ctx = ctx;
	struct walk *w = calloc(1, sizeof(*w));
	if (!w)
		return &hs_error_nomem;
	w->m = m;
	w->heap = heap;
	w->desc = desc;
	struct hs_error *err = collect(w);
	if (!err)
		err = delayed_lists(w);
	for (size_t i = 0; !err && i < w->npages; i++) {
		if ((i & 255) == 0 && hs_walk_interrupted(ctx))
			err = hs_error_create(HS_ERR_INTERRUPTED, "interrupted");
		else
			err = emit_page(w, &w->pages[i]);
	}
	if (!err)
		err = describe(w);
	hs_walk_diag_flush(ctx);
	free(w->pages);
	free(w->heaps);
	free(w->delayed);
	free(w->marks);
	free(w);
	return err;
}

const struct hs_walker hs_mimalloc_walker = {
	.name = "mimalloc",
	.title = "mimalloc",
	.states = mi_states,
	.nstates = MI_NSTATES,
	.detect = mi_detect,
	.walk = mi_walk,
	.destroy = state_destroy,
};
