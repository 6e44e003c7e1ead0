/* roots.c - see roots.h. */
#include <elfutils/libdwfl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include "alloc.h"
#include "glibc_layouts.h"
#include "roots.h"
#include "symbols.h"
#include "target.h"
#include "vec.h"

/* How far below fs_base a thread's static TLS blocks may start, at most. */
#define TLS_MAX_STATIC (1u << 20)
/* Bytes above fs_base that belong to the TCB (struct pthread) at most. */
#define TCB_MAX 0x1000

const char *hs_root_kind_name(enum hs_root_kind k)
{
	static const char *const names[] = { "global", "stack", "register", "tls", "memory" };
	return k <= HS_ROOT_MEMORY ? names[k] : "?";
}

void hs_roots_deinit(struct hs_roots *r)
{
	free(r->ranges);
	r->ranges = NULL;
	r->n = 0;
}

struct builder {
	struct hs_roots *r;
	size_t cap;
	struct hs_error *err;
};

static void add(struct builder *b, uint64_t start, uint64_t end, enum hs_root_kind kind, int tid,
		const struct hs_module *mod)
{
	if (b->err || start >= end)
		return;
	// One mapping split in several segments (madvise, mprotect) is one
	// range: a variable across the cut lies in one root range.
	struct hs_root_range *last = b->r->n ? &b->r->ranges[b->r->n - 1] : NULL;
	if (last && last->end == start && last->kind == kind && last->tid == tid && last->module == mod) {
		last->end = end;
		return;
	}
	if (b->r->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		struct hs_root_range *g = realloc(b->r->ranges, cap * sizeof(*g));
		if (!g) {
			b->err = &hs_error_nomem;
			return;
		}
		b->r->ranges = g;
		b->cap = cap;
	}
	b->r->ranges[b->r->n++] = (struct hs_root_range){ start, end, kind, tid, mod };
}

// The lowest static TLS block of a thread, from its dtv (glibc_layouts.h):
// entries 1.. point at module blocks.  Returns fs_base when nothing is found.
static uint64_t static_tls_start(struct hs_memory *mem, uint64_t fs_base)
{
	uint64_t dtv, len, lowest = fs_base;
	struct hs_error *err = hs_memory_read_u64(mem, fs_base + HS_GLIBC_TCB_DTV, &dtv);
	if (!err)
		err = hs_memory_read_u64(mem, dtv - HS_GLIBC_DTV_ENTRY, &len);
	if (err) {
		hs_error_destroy(err);
		return fs_base;
	}
	if (len > 4096)
		len = 4096;
	for (uint64_t i = 1; i <= len; i++) {
		uint64_t p;
		err = hs_memory_read_u64(mem, dtv + HS_GLIBC_DTV_ENTRY * i, &p);
		if (err) {
			hs_error_destroy(err);
			break;
		}
		if (p < fs_base && p >= fs_base - TLS_MAX_STATIC && p < lowest)
			lowest = p;
	}
	return lowest & ~UINT64_C(15);
}

static int region_cmp(const void *a, const void *b)
{
	const struct hs_region *x = a, *y = b;
	return (x->start > y->start) - (x->start < y->start);
}

// Add [start, end) less every allocator region (those are scanned as
// allocations, block by block, never as roots).
static void add_outside_regions(struct builder *b, const struct hs_region *regs, size_t nregs,
				uint64_t start, uint64_t end, enum hs_root_kind kind, int tid,
				const struct hs_module *mod)
{
	uint64_t p = start;
	for (size_t i = 0; i < nregs && p < end; i++) {
		if (regs[i].end <= p || regs[i].start >= end)
			continue;
		if (regs[i].start > p)
			add(b, p, regs[i].start, kind, tid, mod);
		p = regs[i].end;
	}
	if (p < end)
		add(b, p, end, kind, tid, mod);
}

static struct hs_error *collect_regions(const struct hs_roots_input *in, struct hs_region **ret, size_t *n_ret)
{
	size_t n = 0;
	for (size_t d = 0; d < in->ndesc; d++)
		n += in->desc[d].nregions;
	struct hs_region *regs = malloc((n ? n : 1) * sizeof(*regs));
	if (!regs)
		return &hs_error_nomem;
	n = 0;
	for (size_t d = 0; d < in->ndesc; d++)
		for (size_t i = 0; i < in->desc[d].nregions; i++)
			regs[n++] = in->desc[d].regions[i];
	qsort(regs, n, sizeof(*regs), region_cmp);
	*ret = regs;
	*n_ret = n;
	return NULL;
}

/* A thread's part of memory, decided once for the whole mapping (a mapping may
 * be split in several segments: the answer must not depend on where). */
struct thread_span {
	uint64_t start, end;
	int kind;                 /* HS_ROOT_STACK, HS_ROOT_TLS, or DEAD */
	int tid;
};
#define DEAD (-1)             /* a stack's part below sp: not a root */

static int span_cmp(const void *a, const void *b)
{
	const struct thread_span *x = a, *y = b;
	// A total order (two threads' sp in one segment share a dead span's start).
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return (x->tid > y->tid) - (x->tid < y->tid);
}

// The start of the run of segments without a gap, of addr's protections,
// that holds addr (one mapping split in several).
static uint64_t run_start(const struct hs_memory *mem, uint64_t addr)
{
	const struct hs_segment *seg = hs_memory_segment(mem, addr);
	if (!seg)
		return addr;
	while (seg > mem->segs && seg[-1].end == seg->start && seg[-1].flags == seg->flags)
		seg--;
	return seg->start;
}

static uint64_t run_end(const struct hs_memory *mem, uint64_t addr)
{
	const struct hs_segment *seg = hs_memory_segment(mem, addr), *last = mem->segs + mem->nsegs - 1;
	if (!seg)
		return addr;
	while (seg < last && seg[1].start == seg->end && seg[1].flags == seg->flags)
		seg++;
	return seg->end;
}

/* Each thread's dead stack [start of its segment, sp), live stack [sp, TLS)
 * and TLS: a pthread's static TLS and TCB sit at the top of its stack mapping
 * ([lowest static TLS block, stack_hi)); the main thread's in a mapping of
 * their own ([lowest block, fs_base + TCB_MAX)).  Sorted, disjoint (a
 * hostile core's overlaps are cut off). */
static struct hs_error *thread_spans(const struct hs_roots_input *in, struct thread_span **ret, size_t *n_ret)
{
	const struct hs_notes *notes = in->notes;
	struct hs_memory *mem = in->mem;
	struct thread_span *v = malloc((3 * notes->nthreads + 1) * sizeof(*v));
	if (!v)
		return &hs_error_nomem;
	size_t n = 0;
	for (size_t i = 0; i < notes->nthreads; i++) {
		const struct hs_thread *th = &notes->threads[i];
		uint64_t sp = th->regs[HS_REG_RSP], fs = th->regs[HS_REG_FS_BASE];
		const struct hs_segment *fseg = fs ? hs_memory_segment(mem, fs) : NULL;
		bool tls_dumped = fseg && (fseg->flags & HS_SEG_W) && fs - fseg->start < fseg->filesz;
		uint64_t tls_lo = tls_dumped ? static_tls_start(mem, fs) : 0;
		// A pthread's TLS and TCB: at the top of its own stack mapping.
		bool tls_on_stack = tls_dumped && th->stack_hi && sp <= fs && fs < th->stack_hi;
		if (th->stack_hi) {
			const struct hs_segment *seg = hs_memory_segment(mem, sp);
			if (seg && seg->start < sp)
				v[n++] = (struct thread_span){ seg->start, sp, DEAD, th->tid };
			if (tls_on_stack && tls_lo > sp) {
				v[n++] = (struct thread_span){ sp, tls_lo, HS_ROOT_STACK, th->tid };
				v[n++] = (struct thread_span){ tls_lo, th->stack_hi, HS_ROOT_TLS, th->tid };
				continue;
			}
			v[n++] = (struct thread_span){ sp, th->stack_hi, HS_ROOT_STACK, th->tid };
		}
		if (tls_dumped && !tls_on_stack) {
			uint64_t lo = run_start(mem, fs), hi = run_end(mem, fs);
			uint64_t end = fs + TCB_MAX < hi ? fs + TCB_MAX : hi;
			v[n++] = (struct thread_span){ tls_lo > lo ? tls_lo : lo, end, HS_ROOT_TLS, th->tid };
		}
	}
	qsort(v, n, sizeof(*v), span_cmp);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (k && v[i].start < v[k - 1].end)
			v[i].start = v[k - 1].end;
		if (v[i].start < v[i].end)
			v[k++] = v[i];
	}
	*ret = v;
	*n_ret = k;
	return NULL;
}

// [start, end) of no thread's: a module's data (to the module's end, page
// rounded: its bss runs to there), else other memory (to the next module).
static void add_base(struct builder *b, const struct hs_roots_input *in, const struct hs_region *regs, size_t nregs,
		     uint64_t start, uint64_t end)
{
	while (start < end && !b->err) {
		struct hs_module *mod = in->symbols ? hs_symbols_module_at(in->symbols, start) : NULL;
		uint64_t stop = end;
		if (mod) {
			uint64_t mend = mod->end + 0xfff < mod->end ? UINT64_MAX : (mod->end + 0xfff) & ~UINT64_C(0xfff);
			if (mend < stop)
				stop = mend;
		} else if (in->symbols) {
			struct hs_module *next = hs_symbols_module_after(in->symbols, start);
			if (next && next->start < stop)
				stop = next->start;
		}
		add_outside_regions(b, regs, nregs, start, stop, mod ? HS_ROOT_GLOBAL : HS_ROOT_MEMORY, 0, mod);
		start = stop;
	}
}

// One dumped, writable segment: the threads' parts of it, and the rest.
static void add_segment(struct builder *b, const struct hs_roots_input *in, const struct hs_segment *seg,
			const struct hs_region *regs, size_t nregs, const struct thread_span *ts, size_t nts)
{
	uint64_t p = seg->start, s1 = seg->start + seg->filesz;
	// The first span ending after p (disjoint and sorted: their ends are sorted too).
	for (size_t i = HS_LOWER_BOUND(ts, nts, end, p + 1); i < nts && ts[i].start < s1 && p < s1; i++) {
		if (ts[i].start > p)
			add_base(b, in, regs, nregs, p, ts[i].start);
		uint64_t from = ts[i].start > p ? ts[i].start : p, to = ts[i].end < s1 ? ts[i].end : s1;
		if (ts[i].kind != DEAD)
			add_outside_regions(b, regs, nregs, from, to, ts[i].kind, ts[i].tid, NULL);
		p = to;
	}
	if (p < s1)
		add_base(b, in, regs, nregs, p, s1);
}

struct hs_error *hs_roots_build(const struct hs_roots_input *in, struct hs_roots *ret)
{
	struct hs_region *regs;
	size_t nregs;
	HS_CHECK(collect_regions(in, &regs, &nregs));
	struct thread_span *ts;
	size_t nts;
	struct hs_error *err = thread_spans(in, &ts, &nts);
	if (err) {
		free(regs);
		return err;
	}
	memset(ret, 0, sizeof(*ret));
	struct builder b = { .r = ret };
	const struct hs_memory *mem = in->mem;
	for (size_t i = 0; i < mem->nsegs && !b.err; i++) {
		const struct hs_segment *seg = &mem->segs[i];
		if ((seg->flags & HS_SEG_W) && seg->filesz)
			add_segment(&b, in, seg, regs, nregs, ts, nts);
	}
	free(regs);
	free(ts);
	if (b.err) {
		hs_roots_deinit(ret);
		return b.err;
	}
	return NULL;
}

const struct hs_root_range *hs_roots_find(const struct hs_roots *r, uint64_t addr)
{
	size_t lo = 0, hi = r->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r->ranges[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < r->n && r->ranges[lo].start <= addr ? &r->ranges[lo] : NULL;
}

/* Stack frames: each thread unwound once with libdwfl (cores only), its
 * frames kept; a stack address is in the frame whose [sp, caller's sp)
 * holds it, the outermost frame holding everything above its sp. */
#define MAX_FRAMES 257

struct thread_frames {
	int tid;
	size_t n;
	uint64_t pc[MAX_FRAMES], sp[MAX_FRAMES];
};

/* The threads unwound, by tid in an open-addressing index (slot: the
 * thread's place + 1, 0 empty; doubled at half full): a core may have
 * thousands of threads, each looked up once per stack root named. */
struct hs_frame_cache {
	struct thread_frames **threads;
	size_t n, cap;
	uint32_t *index;
	size_t icap;
};

void hs_frame_cache_destroy(struct hs_frame_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		free(c->threads[i]);
	free(c->threads);
	free(c->index);
	free(c);
}

static size_t tid_slot(const struct hs_frame_cache *c, int tid)
{
	size_t h = (size_t)(((uint64_t)(uint32_t)tid * UINT64_C(0x9e3779b97f4a7c15)) >> 32) & (c->icap - 1);
	while (c->index[h] && c->threads[c->index[h] - 1]->tid != tid)
		h = (h + 1) & (c->icap - 1);
	return h;
}

// Room in the index for one more thread; false on no memory.
static bool tid_index_grow(struct hs_frame_cache *c)
{
	if ((c->n + 1) * 2 <= c->icap)
		return true;
	size_t cap = c->icap ? 2 * c->icap : 64;
	uint32_t *index = calloc(cap, sizeof(*index));
	if (!index)
		return false;
	free(c->index);
	c->index = index;
	c->icap = cap;
	for (size_t i = 0; i < c->n; i++)
		c->index[tid_slot(c, c->threads[i]->tid)] = (uint32_t)i + 1;
	return true;
}

static int frame_cb(Dwfl_Frame *frame, void *arg)
{
	struct thread_frames *f = arg;
	Dwarf_Addr pc;
	bool activation;
	Dwarf_Word sp;
	if (!dwfl_frame_pc(frame, &pc, &activation) || dwfl_frame_reg(frame, 7, &sp) != 0)
		return DWARF_CB_ABORT;
	f->pc[f->n] = activation ? pc : pc - 1;
	f->sp[f->n] = sp;
	return ++f->n == MAX_FRAMES ? DWARF_CB_ABORT : DWARF_CB_OK;
}

// Thread tid's frames, unwound on first use; NULL when out of memory.
static const struct thread_frames *thread_frames(void *dwfl, struct hs_frame_cache **cachep, int tid)
{
	struct hs_frame_cache *c = *cachep;
	if (!c && !(c = *cachep = calloc(1, sizeof(*c))))
		return NULL;
	size_t h = c->icap ? tid_slot(c, tid) : 0;
	if (c->icap && c->index[h])
		return c->threads[c->index[h] - 1];
	if (!tid_index_grow(c))
		return NULL;
	struct thread_frames *f = calloc(1, sizeof(*f));
	struct hs_error *err = f ? HS_VEC_PUSH(c->threads, c->n, c->cap, f) : &hs_error_nomem;
	if (err) {
		hs_error_destroy(err);
		free(f);
		return NULL;
	}
	f->tid = tid;
	c->index[tid_slot(c, tid)] = (uint32_t)c->n;
	dwfl_getthread_frames(dwfl, tid, frame_cb, f);
	return f;
}

bool hs_stack_frame_unwind(void *dwfl, struct hs_symbols *symbols, struct hs_frame_cache **cache, int tid,
			   uint64_t addr, char *buf, size_t len)
{
	const struct thread_frames *f = thread_frames(dwfl, cache, tid);
	if (!f || !f->n)
		return false;
	// Inner frames first: the first that holds addr, else the outermost.
	size_t k = 0;
	while (k + 1 < f->n && !(f->sp[k] <= addr && addr < f->sp[k + 1]))
		k++;
	if (addr < f->sp[k])
		return false;
	struct hs_symbol sym;
	uint64_t off;
	if (!hs_symbols_addr_symbol(symbols, f->pc[k], &sym, &off))
		return false;
	snprintf(buf, len, "%s", sym.name);
	return true;
}
