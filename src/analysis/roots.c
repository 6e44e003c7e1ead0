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

// One dumped, writable segment: a thread's stack (live part and TLS), the main
// thread's TLS mapping, a module's data, or other memory.
static void add_segment(struct builder *b, const struct hs_roots_input *in, const struct hs_segment *seg,
			const struct hs_region *regs, size_t nregs)
{
	uint64_t s0 = seg->start, s1 = seg->start + seg->filesz;
	const struct hs_notes *notes = in->notes;
	struct hs_module *mod = in->symbols ? hs_symbols_module_at(in->symbols, s0) : NULL;
	for (size_t i = 0; i < notes->nthreads; i++) {
		const struct hs_thread *th = &notes->threads[i];
		uint64_t sp = th->regs[HS_REG_RSP], fs = th->regs[HS_REG_FS_BASE];
		bool has_sp = s0 <= sp && sp < s1, has_fs = fs && s0 <= fs && fs < s1;
		// A later segment of a stack mapping split in several (stack_hi).
		bool above_sp = sp < s0 && s0 < th->stack_hi;
		if (!has_sp && !has_fs && !above_sp)
			continue;
		uint64_t tls_lo = has_fs ? static_tls_start(in->mem, fs) : s1;
		if (tls_lo < s0)
			tls_lo = s0;
		if (has_sp || above_sp) {
			// [sp, tls) is the live stack; below sp is dead.
			uint64_t lo = has_sp ? sp : s0;
			uint64_t stack_end = tls_lo > lo ? tls_lo : s1;
			add_outside_regions(b, regs, nregs, lo, stack_end, HS_ROOT_STACK, th->tid, NULL);
			if (stack_end < s1)
				add_outside_regions(b, regs, nregs, stack_end, s1, HS_ROOT_TLS, th->tid, NULL);
			return;
		}
		// The main thread's TLS and TCB sit in a mapping of their own.
		uint64_t tcb_end = fs + TCB_MAX < s1 ? fs + TCB_MAX : s1;
		enum hs_root_kind base = mod ? HS_ROOT_GLOBAL : HS_ROOT_MEMORY;
		add_outside_regions(b, regs, nregs, s0, tls_lo, base, 0, mod);
		add_outside_regions(b, regs, nregs, tls_lo, tcb_end, HS_ROOT_TLS, th->tid, NULL);
		add_outside_regions(b, regs, nregs, tcb_end, s1, base, 0, mod);
		return;
	}
	add_outside_regions(b, regs, nregs, s0, s1, mod ? HS_ROOT_GLOBAL : HS_ROOT_MEMORY, 0, mod);
}

struct hs_error *hs_roots_build(const struct hs_roots_input *in, struct hs_roots *ret)
{
	struct hs_region *regs;
	size_t nregs;
	HS_CHECK(collect_regions(in, &regs, &nregs));
	memset(ret, 0, sizeof(*ret));
	struct builder b = { .r = ret };
	const struct hs_memory *mem = in->mem;
	for (size_t i = 0; i < mem->nsegs && !b.err; i++) {
		const struct hs_segment *seg = &mem->segs[i];
		if ((seg->flags & HS_SEG_W) && seg->filesz)
			add_segment(&b, in, seg, regs, nregs);
	}
	free(regs);
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

/* Stack frames: unwind one thread with libdwfl (cores only) and find the frame
 * whose [sp, caller's sp) holds addr. */
struct frame_search {
	uint64_t addr;
	uint64_t prev_pc, prev_sp;
	bool have_prev, found;
	uint64_t pc;
	int depth;
};

static int frame_cb(Dwfl_Frame *frame, void *arg)
{
	struct frame_search *f = arg;
	Dwarf_Addr pc;
	bool activation;
	Dwarf_Word sp;
	if (!dwfl_frame_pc(frame, &pc, &activation) || dwfl_frame_reg(frame, 7, &sp) != 0)
		return DWARF_CB_ABORT;
	if (!activation)
		pc--;
	if (f->have_prev && f->prev_sp <= f->addr && f->addr < sp) {
		f->found = true;
		f->pc = f->prev_pc;
		return DWARF_CB_ABORT;
	}
	f->prev_pc = pc;
	f->prev_sp = sp;
	f->have_prev = true;
	return ++f->depth > 256 ? DWARF_CB_ABORT : DWARF_CB_OK;
}

bool hs_stack_frame_unwind(void *dwfl, struct hs_symbols *symbols, int tid, uint64_t addr, char *buf, size_t len)
{
	struct frame_search f = { .addr = addr };
	dwfl_getthread_frames(dwfl, tid, frame_cb, &f);
	// The outermost frame holds everything above its sp.
	if (!f.found && f.have_prev && f.prev_sp <= addr) {
		f.found = true;
		f.pc = f.prev_pc;
	}
	if (!f.found)
		return false;
	struct hs_symbol sym;
	uint64_t off;
	if (!hs_symbols_addr_symbol(symbols, f.pc, &sym, &off))
		return false;
	snprintf(buf, len, "%s", sym.name);
	return true;
}
