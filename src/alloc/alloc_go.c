/* alloc_go.c - the Go runtime heap walker (go1.19, go1.21-1.24; linux/amd64).
 *
 * detect  the executable's runtime.mheap_ (an ELF symbol: -ldflags=-w keeps
 *         it) and its Go version (.go.buildinfo, else runtime.buildVersion);
 *         versions other than those checked (HS_GO_VERSIONS) are refused by
 *         name.  Every field is
 *         looked up in the executable's DWARF by name (go_layout.h lists
 *         them); without DWARF the built-in go1.19 rows are used, and said.
 *         A Go executable without a symbol table (-ldflags=-s) is recognised
 *         by its .go.buildinfo and refused with what is missing.
 * walk    the heap arenas (mheap_.allArenas, each arena's heapArena from
 *         mheap_.arenas), then every span of mheap_.allspans that is in use
 *         or manual and that its arena's page map (heapArena.spans) names:
 *         - an in-use span holds nelems slots of elemsize bytes: slot i is
 *           allocated when i < freeindex or allocBits bit i is set (the
 *           runtime's own rule; allocCache is a derived copy), free
 *           otherwise; what is left after the last slot is the span's tail;
 *           size class 0 is one large object of npages pages;
 *         - a manual span (goroutine stacks, GC work buffers) is not heap
 *           objects: one stack-span block;
 *         - the grown part of each arena that no span covers is idle pages
 *           (the runtime's HeapIdle: free or released to the OS).
 *         The runtime's own metadata off the heap (heapArena structs, mspan
 *         structs, each P's mcache) is recorded as meta blocks.
 * Objects allocated but unreachable since the last GC are allocated here, as
 * the runtime counts them (MemStats.HeapObjects): Go has no leaks in the C
 * sense; reachability is another stage's question.
 * Arenas are the 64 MiB heap arenas.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "go_layout.h"
#include "walker.h"

#define MAX_SPANS (UINT64_C(1) << 24)
#define MAX_ARENAS 4096            /* 256 GiB of Go heap */
#define MAX_DIAGS_PER_KIND 20
#define SPANS_PER_READ 4096
#define RESERVE_MAX (UINT64_C(1) << 26)   /* blocks reserved up front at most (1 GiB) */

enum go_state_id { GO_FREE_SLOT, GO_IDLE_PAGES, GO_STACK_SPAN, GO_SPAN_TAIL, GO_ARENA_META, GO_SPAN_STRUCT,
		   GO_MCACHE, GO_NSTATES };
static const struct hs_state_def go_states[GO_NSTATES] = {
	[GO_FREE_SLOT] = { "free-slot", HS_STATE_FREE,
			   "a free slot of a Go span (its allocBits bit clear, at or after freeindex)" },
	[GO_IDLE_PAGES] = { "idle-pages", HS_STATE_FREE,
			    "Go heap pages in no span: free or released to the OS (the runtime's HeapIdle)" },
	[GO_STACK_SPAN] = { "stack-span", HS_STATE_META,
			    "a manually managed Go span: goroutine stacks and GC work buffers, not heap objects" },
	[GO_SPAN_TAIL] = { "span-tail", HS_STATE_META,
			   "the end of a Go span, too short for one more object of its size class" },
	[GO_ARENA_META] = { "arena-meta", HS_STATE_META,
			    "a Go heapArena struct, off the heap (the arena's page-to-span map and GC bitmap)" },
	[GO_SPAN_STRUCT] = { "span-struct", HS_STATE_META, "a Go mspan struct, off the heap (one span's metadata)" },
	[GO_MCACHE] = { "mcache", HS_STATE_META, "a Go P's mcache struct, off the heap (its cached spans per size class)" },
};

enum { D_ARENA, D_SPAN, D_OTHER };
static const char *const go_diag_what[] = { "about arenas", "about spans", "about other findings" };

enum { SPAN_DEAD = 0, SPAN_IN_USE = 1, SPAN_MANUAL = 2 };

struct go_arena {
	uint64_t base, grown_end;  /* [base, grown_end): pages given to the page allocator */
	uint64_t ha;               /* its heapArena struct */
	uint64_t used_n, used_b, free_n, free_b;
};

struct go_span {
	uint64_t mspan, start, npages, elemsize, nelems, freeindex, allocbits;
	unsigned allocated_declared, spanclass, state, arena;
	uint32_t sweepgen;
};

struct go_st {
	struct hs_walk_ctx *ctx;
	struct hs_module *mod;
	struct hs_elf_file *file;  /* the executable, for what a kernel core leaves out */
	char exe_name[64];
	char version[32];          /* "go1.19.8", "" unknown */
	bool builtin_layout;
	char layout_why[160];
	uint64_t f[HS_GO_NFIELDS][2];   /* offset, size */
	uint64_t mheap;
	uint64_t allspans, nallspans, allarenas, nallarenas, arenas_l2;
	uint64_t cur_base, cur_end, sweepgen, spanalloc_inuse, cachealloc_inuse;
	uint16_t class_size[HS_GO_NUM_SIZE_CLASSES];
	bool have_class_size;
};

#define OFF(g, id) ((g)->f[HS_GO_##id][0])
#define SIZE(g, id) ((g)->f[HS_GO_##id][1])

/* Bytes of the executable: from the core, else (a kernel core leaves the
 * read-only segments out) from the file. */
static bool read_exe(struct go_st *g, uint64_t addr, void *buf, size_t len)
{
	return hs_elf_read_image(g->ctx->mem, g->file, addr, buf, len);
}

/* --- detect --------------------------------------------------------------- */

// Is version ("go1.19.8", "go1.24rc1") a release of one listed in releases
// ("go1.19, go1.24")?
static bool release_in(const char *version, const char *releases)
{
	for (const char *r = releases; *r;) {
		size_t n = strcspn(r, ", ");
		if (n && !strncmp(version, r, n) && (version[n] == 0 || version[n] == '.' ||
						       !strncmp(version + n, "rc", 2)))
			return true;
		r += n;
		r += strspn(r, ", ");
	}
	return false;
}

// .go.buildinfo (Go 1.18+): "\xff Go buildinf:", pointer size, flags; with
// flags & 2 the version follows at 32 as a uvarint length and its bytes.
bool hs_go_buildinfo_version(struct hs_elf_file *f, char *buf, size_t len)
{
	uint64_t n = 0;
	const uint8_t *p = f ? hs_elf_section(f, ".go.buildinfo", &n) : NULL;
	buf[0] = 0;
	if (!p || n < 33 || memcmp(p, "\xff Go buildinf:", 14))
		return false;
	if (!(p[15] & 2))
		return true;
	size_t used;
	uint64_t vlen = hs_go_uvarint(p + 32, n - 32, &used);
	if (!used || vlen == 0 || vlen >= len || vlen > n - 32 - used)
		return true;
	for (size_t i = 0; i < vlen; i++)
		if (p[32 + used + i] < 0x21 || p[32 + used + i] > 0x7e)
			return true;
	memcpy(buf, p + 32 + used, vlen);
	buf[vlen] = 0;
	return true;
}

static void read_version(struct go_st *g)
{
	if (hs_go_buildinfo_version(g->file, g->version, sizeof(g->version)) && g->version[0])
		return;
	struct hs_symbol sym;
	struct hs_error *err = hs_walk_symbol(g->ctx, g->mod, "runtime.buildVersion", &sym);
	uint8_t hdr[16];
	if (!err && read_exe(g, sym.address, hdr, sizeof(hdr))) {
		uint64_t ptr = hs_go_ld(hdr, 8), n = hs_go_ld(hdr + 8, 8);
		if (n > 0 && n < sizeof(g->version) && read_exe(g, ptr, g->version, n)) {
			g->version[n] = 0;
			return;
		}
	}
	hs_error_destroy(err);
	g->version[0] = 0;
}

// Every row of go_layout.h from DWARF by name, or the built-in go1.19 rows
// when the executable has none (or --no-debuginfo).
static struct hs_error *resolve_layout(struct go_st *g)
{
	bool dwarf = g->mod->debug_found && !g->ctx->no_debuginfo;
	if (dwarf) {
		for (size_t i = 0; i < HS_GO_NFIELDS; i++) {
			const struct hs_go_field_def *d = &hs_go_fields[i];
			struct hs_error *err;
			uint32_t bit = 0;
			if (!d->member) {
				err = hs_dwarf_struct_size(g->mod, d->type, &g->f[i][0]);
				g->f[i][1] = g->f[i][0];
			} else {
				err = hs_dwarf_member_offset(g->mod, d->type, d->member, &g->f[i][0], &bit);
				if (!err)
					err = hs_dwarf_member_size(g->mod, d->type, d->member, &g->f[i][1]);
			}
			if (err) {
				struct hs_error *e = hs_error_create(HS_ERR_HEAP,
					"unsupported Go runtime layout in %s (%s): %s%s%s is not in its DWARF (%s)",
					g->exe_name, g->version[0] ? g->version : "version unknown", d->type,
					d->member ? "." : "", d->member ? d->member : "", hs_error_message(err));
				hs_error_destroy(err);
				return e;
			}
		}
		snprintf(g->layout_why, sizeof(g->layout_why), "DWARF of %s", g->exe_name);
	} else {
		if (!release_in(g->version, HS_GO_BUILTIN_VERSION))
			return hs_error_create(HS_ERR_HEAP,
					       "%s is a Go program (%s) without DWARF%s: heapscope's built-in Go layout is for "
					       "%s only; build it without -ldflags=-w to have its heap walked",
					       g->exe_name, g->version[0] ? g->version : "version unknown",
					       g->ctx->no_debuginfo ? " (--no-debuginfo)" : "", HS_GO_BUILTIN_VERSION);
		for (size_t i = 0; i < HS_GO_NFIELDS; i++) {
			g->f[i][0] = hs_go_fields[i].off119;
			g->f[i][1] = hs_go_fields[i].size119;
		}
		g->builtin_layout = true;
		if (g->ctx->no_debuginfo)
			snprintf(g->layout_why, sizeof(g->layout_why), "built-in %s (--no-debuginfo)", HS_GO_BUILTIN_VERSION);
		else
			snprintf(g->layout_why, sizeof(g->layout_why), "built-in %s (%s has no DWARF)", HS_GO_BUILTIN_VERSION,
				 g->exe_name);
	}
	// What the walk relies on: a page map of 8 KiB pages over 64 MiB, 8-byte
	// pointers, one L1 entry, fields of sizes it can read.
	if (SIZE(g, HA_SPANS) != HS_GO_ARENA_BYTES / HS_GO_PAGE_SIZE * 8 || SIZE(g, MH_ARENAS) != 8 ||
	    SIZE(g, MH_ALLSPANS) != 24 || SIZE(g, MH_ALLARENAS) != 24 || SIZE(g, SP_STATE) != 1 ||
	    SIZE(g, SP_SPANCLASS) != 1 || SIZE(g, SP_FREEINDEX) > 8 || SIZE(g, SP_NELEMS) > 8 ||
	    SIZE(g, SP_ALLOCCOUNT) > 8 || SIZE(g, SP_SIZEOF) > 4096)
		return hs_error_create(HS_ERR_HEAP,
				       "unsupported Go runtime layout in %s (%s): heapArena.spans is %" PRIu64
				       " bytes, mheap.arenas %" PRIu64 " (heapscope reads 64 MiB arenas of 8 KiB pages, "
				       "linux/amd64)", g->exe_name, g->version, SIZE(g, HA_SPANS), SIZE(g, MH_ARENAS));
	return NULL;
}

static struct hs_error *read_mheap(struct go_st *g)
{
	uint64_t size = SIZE(g, MH_SIZEOF);
	uint8_t *h = malloc(size);
	if (!h)
		return &hs_error_nomem;
	if (!hs_walk_read(g->ctx, g->mheap, h, size)) {
		free(h);
		return hs_error_create(HS_ERR_HEAP, "runtime.mheap_ (0x%" PRIx64 ", %" PRIu64 " bytes) is not in the core: "
				       "the Go heap cannot be found", g->mheap, size);
	}
	g->allspans = hs_go_ld(h + OFF(g, MH_ALLSPANS), 8);
	g->nallspans = hs_go_ld(h + OFF(g, MH_ALLSPANS) + 8, 8);
	g->allarenas = hs_go_ld(h + OFF(g, MH_ALLARENAS), 8);
	g->nallarenas = hs_go_ld(h + OFF(g, MH_ALLARENAS) + 8, 8);
	g->arenas_l2 = hs_go_ld(h + OFF(g, MH_ARENAS), 8);
	g->cur_base = hs_go_ld(h + OFF(g, MH_CURARENA_BASE), 8);
	g->cur_end = hs_go_ld(h + OFF(g, MH_CURARENA_END), 8);
	g->sweepgen = hs_go_ld(h + OFF(g, MH_SWEEPGEN), SIZE(g, MH_SWEEPGEN));
	g->spanalloc_inuse = hs_go_ld(h + OFF(g, MH_SPANALLOC_INUSE), 8);
	g->cachealloc_inuse = hs_go_ld(h + OFF(g, MH_CACHEALLOC_INUSE), 8);
	free(h);
	if (g->nallarenas == 0 || !g->arenas_l2)
		return hs_error_create(HS_ERR_HEAP, "runtime.mheap_ (0x%" PRIx64 ") has no heap arena: the Go heap was not "
				       "initialised when the core was written", g->mheap);
	if (g->nallarenas > MAX_ARENAS || g->nallspans > MAX_SPANS)
		return hs_error_create(HS_ERR_HEAP, "runtime.mheap_ (0x%" PRIx64 ") says %" PRIu64 " arenas and %" PRIu64
				       " spans: not a Go heap heapscope can believe (corrupt?)",
				       g->mheap, g->nallarenas, g->nallspans);
	// class_to_size (a var: in the core's data) checks each span's elemsize.
	struct hs_symbol sym;
	struct hs_error *err = hs_walk_symbol(g->ctx, g->mod, "runtime.class_to_size", &sym);
	if (!err && sym.size == sizeof(g->class_size) && read_exe(g, sym.address, g->class_size, sizeof(g->class_size)))
		g->have_class_size = true;
	hs_error_destroy(err);
	return NULL;
}

static void state_destroy(void *state)
{
	struct go_st *g = state;
	if (g)
		hs_elf_close(g->file);
	free(g);
}

// No runtime.mheap_: a Go executable without its symbol table still has its
// .go.buildinfo; say what is missing rather than "no allocator".
static struct hs_error *no_symbols(struct hs_walk_ctx *ctx)
{
	struct hs_module *mod = ctx->symbols ? hs_symbols_main_module(ctx->symbols) : NULL;
	struct hs_elf_file *f = mod ? hs_elf_open(mod->path, mod->bias) : NULL;
	char version[32];
	bool go = hs_go_buildinfo_version(f, version, sizeof(version));
	hs_elf_close(f);
	if (!go)
		return hs_error_create(HS_ERR_NOT_FOUND, "the Go runtime is not in this process: no runtime.mheap_ symbol");
	return hs_error_create(HS_ERR_HEAP,
			       "%s is a Go program (%s) without a symbol table (built with -ldflags=-s?): runtime.mheap_ "
			       "cannot be found, so its heap cannot be walked; process facts (info: threads, "
			       "mappings) still work; rebuild without -s (-w alone keeps the symbols)",
			       hs_base_name(mod->path ? mod->path : mod->name), version[0] ? version : "version unknown");
}

static struct hs_error *go_detect(struct hs_walk_ctx *ctx, void **state_ret)
{
	*state_ret = NULL;
	if (!ctx->symbols)
		return hs_error_create(HS_ERR_NOT_FOUND, "the Go runtime is not in this process: no symbols");
	hs_walk_diag_kinds(ctx, go_diag_what, sizeof(go_diag_what) / sizeof(go_diag_what[0]), MAX_DIAGS_PER_KIND);
	// The runtime is in the executable; the module is the one whose symbol
	// it is (a live process's module range may end before .noptrbss).
	struct hs_symbol sym;
	struct hs_module *mod = hs_symbols_main_module(ctx->symbols);
	struct hs_error *err = mod ? hs_walk_symbol(ctx, mod, "runtime.mheap_", &sym) : NULL;
	if (!mod || err) {
		hs_error_destroy(err);
		err = hs_walk_symbol(ctx, NULL, "runtime.mheap_", &sym);
		mod = err ? NULL : hs_walk_module_at(ctx, sym.address);
	}
	if (err) {
		hs_error_destroy(err);
		return no_symbols(ctx);
	}
	struct go_st *g = calloc(1, sizeof(*g));
	if (!g)
		return &hs_error_nomem;
	g->ctx = ctx;
	g->mheap = sym.address;
	g->mod = mod;
	if (!g->mod) {
		free(g);
		return hs_error_create(HS_ERR_HEAP, "runtime.mheap_ (0x%" PRIx64 ") is in no module", sym.address);
	}
	snprintf(g->exe_name, sizeof(g->exe_name), "%s", hs_base_name(g->mod->path ? g->mod->path : g->mod->name));
	g->file = hs_elf_open(g->mod->path, g->mod->bias);
	read_version(g);
	if (!release_in(g->version, HS_GO_VERSIONS))
		err = hs_error_create(HS_ERR_HEAP, "%s is %s%s: not supported yet (heapscope reads the heap of %s)",
				      g->exe_name, g->version[0] ? g->version : "a Go program of unknown version",
				      g->version[0] ? "" : " (no .go.buildinfo, no runtime.buildVersion)",
				      HS_GO_VERSIONS);
	if (!err)
		err = resolve_layout(g);
	if (!err)
		err = read_mheap(g);
	if (err) {
		state_destroy(g);
		return err;
	}
	*state_ret = g;
	return NULL;
}

/* --- walk ----------------------------------------------------------------- */

struct walk {
	struct go_st *g;
	struct hs_heap *heap;
	struct hs_alloc_desc *desc;
	struct go_arena *arenas;
	size_t narenas;
	struct go_span *spans;
	size_t nspans, capspans;
	uint8_t *bits;
	size_t capbits;
	uint64_t used_n, used_b;
	uint64_t cnt[GO_NSTATES], bytes[GO_NSTATES];
	uint64_t class_free_n[HS_GO_NUM_SIZE_CLASSES], class_free_b[HS_GO_NUM_SIZE_CLASSES];
	uint64_t class_used_n[HS_GO_NUM_SIZE_CLASSES];
	uint64_t dead, in_use, manual, unswept, bad_spans, large;
	uint64_t rejected;         /* spans left out: their pages are unknown */
	uint64_t mcaches;
};

static struct hs_error *add_block(struct walk *w, uint64_t addr, uint64_t size, unsigned st, unsigned arena)
{
	struct hs_walk_ctx *ctx = w->g->ctx;
	unsigned where = st == GO_NSTATES ? HS_WHERE_USED : ctx->state[st];
	unsigned a = arena < w->narenas ? ctx->arena_base + arena : HS_ARENA_NONE;
	HS_CHECK(hs_heap_add(w->heap, addr, size, where, a));
	struct go_arena *ar = arena < w->narenas ? &w->arenas[arena] : NULL;
	if (st == GO_NSTATES) {
		w->used_n++;
		w->used_b += size;
		if (ar)
			ar->used_n++, ar->used_b += size;
	} else {
		w->cnt[st]++;
		w->bytes[st] += size;
		if (ar && go_states[st].kind == HS_STATE_FREE)
			ar->free_n++, ar->free_b += size;
	}
	return NULL;
}

static int arena_cmp(const void *x, const void *y)
{
	const struct go_arena *a = x, *b = y;
	return (a->base > b->base) - (a->base < b->base);
}

static int span_cmp(const void *x, const void *y)
{
	const struct go_span *a = x, *b = y;
	return (a->start > b->start) - (a->start < b->start);
}

// The arena holding addr, or -1.
static ptrdiff_t arena_at(const struct walk *w, uint64_t addr)
{
	size_t lo = 0, hi = w->narenas;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (w->arenas[mid].base + HS_GO_ARENA_BYTES <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < w->narenas && w->arenas[lo].base <= addr ? (ptrdiff_t)lo : -1;
}

static struct hs_error *read_arenas(struct walk *w)
{
	struct go_st *g = w->g;
	uint64_t n = g->nallarenas;
	uint64_t *idx = malloc(n * sizeof(uint64_t));
	w->arenas = calloc(n, sizeof(*w->arenas));
	if (!idx || !w->arenas) {
		free(idx);
		return &hs_error_nomem;
	}
	if (!hs_walk_read(g->ctx, g->allarenas, idx, n * sizeof(uint64_t))) {
		free(idx);
		return hs_error_create(HS_ERR_HEAP, "mheap_.allArenas (0x%" PRIx64 ", %" PRIu64 " entries) is not in the "
				       "core: the Go heap's arenas are not known", g->allarenas, n);
	}
	for (uint64_t i = 0; i < n; i++) {
		uint64_t ri = idx[i], ha;
		if (ri >= HS_GO_ARENA_L2_ENTRIES) {
			hs_walk_diagk(g->ctx, D_ARENA, HS_DIAG_ERROR, g->allarenas + i * 8,
				      "mheap_.allArenas[%" PRIu64 "] = %" PRIu64 " is no arena index: skipped", i, ri);
			continue;
		}
		if (!hs_walk_read_u64(g->ctx, g->arenas_l2 + ri * 8, &ha) || !ha) {
			hs_walk_diagk(g->ctx, D_ARENA, HS_DIAG_ERROR, g->arenas_l2 + ri * 8,
				      "arena %" PRIu64 " has no heapArena in mheap_.arenas: its spans are left out", ri);
			continue;
		}
		struct go_arena *a = &w->arenas[w->narenas++];
		a->base = ri * HS_GO_ARENA_BYTES + HS_GO_ARENA_BASE_OFFSET;
		a->ha = ha;
		// The arena space from curArena.base on was reserved but not yet
		// grown into: no pages, no spans.
		bool current = a->base < g->cur_end && g->cur_base < a->base + HS_GO_ARENA_BYTES;
		a->grown_end = !current ? a->base + HS_GO_ARENA_BYTES : g->cur_base > a->base ? g->cur_base : a->base;
	}
	free(idx);
	qsort(w->arenas, w->narenas, sizeof(*w->arenas), arena_cmp);
	for (size_t i = 0; i + 1 < w->narenas; i++)
		if (w->arenas[i].base == w->arenas[i + 1].base) {
			hs_walk_diagk(g->ctx, D_ARENA, HS_DIAG_ERROR, w->arenas[i].base,
				      "arena 0x%" PRIx64 " is listed twice in mheap_.allArenas", w->arenas[i].base);
			memmove(&w->arenas[i + 1], &w->arenas[i + 2], (w->narenas - i - 2) * sizeof(*w->arenas));
			w->narenas--;
			i--;
		}
	if (!w->narenas)
		return hs_error_create(HS_ERR_HEAP, "none of the %" PRIu64 " Go heap arenas could be read", n);
	return NULL;
}

// Is [start, end) inside the grown part of arenas that follow each other?
static bool in_heap(const struct walk *w, uint64_t start, uint64_t end)
{
	ptrdiff_t a = arena_at(w, start);
	if (a < 0 || end <= start)
		return false;
	while (end > w->arenas[a].grown_end) {
		if (w->arenas[a].grown_end != w->arenas[a].base + HS_GO_ARENA_BYTES || (size_t)a + 1 == w->narenas ||
		    w->arenas[a + 1].base != w->arenas[a].base + HS_GO_ARENA_BYTES)
			return false;
		a++;
	}
	return true;
}

// A span left out: its pages are not known either.
static bool span_diag(struct walk *w, uint64_t mspan, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool span_diag(struct walk *w, uint64_t mspan, const char *fmt, ...)
{
	char why[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	w->bad_spans++;
	w->rejected++;
	hs_walk_diagk(w->g->ctx, D_SPAN, HS_DIAG_ERROR, mspan, "span 0x%" PRIx64 ": %s; left out", mspan, why);
	return false;
}

// A span whose pages are known but whose objects cannot be read.
static void objects_diag(struct walk *w, uint64_t mspan, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void objects_diag(struct walk *w, uint64_t mspan, const char *fmt, ...)
{
	char why[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	w->bad_spans++;
	hs_walk_diagk(w->g->ctx, D_SPAN, HS_DIAG_ERROR, mspan, "span 0x%" PRIx64 ": %s", mspan, why);
}

// One mspan struct: is it a live span heapscope can trust?  Fills s.
static bool read_span(struct walk *w, uint64_t p, const uint8_t *b, struct go_span *s)
{
	struct go_st *g = w->g;
	*s = (struct go_span){ .mspan = p };
	s->state = b[OFF(g, SP_STATE)];
	if (s->state == SPAN_DEAD) {
		w->dead++;
		return false;
	}
	if (s->state != SPAN_IN_USE && s->state != SPAN_MANUAL)
		return span_diag(w, p, "state %u is none of dead (0), in use (1), manual (2)", s->state);
	s->start = hs_go_ld(b + OFF(g, SP_STARTADDR), 8);
	s->npages = hs_go_ld(b + OFF(g, SP_NPAGES), 8);
	s->spanclass = b[OFF(g, SP_SPANCLASS)];
	s->elemsize = hs_go_ld(b + OFF(g, SP_ELEMSIZE), SIZE(g, SP_ELEMSIZE));
	s->nelems = hs_go_ld(b + OFF(g, SP_NELEMS), SIZE(g, SP_NELEMS));
	s->freeindex = hs_go_ld(b + OFF(g, SP_FREEINDEX), SIZE(g, SP_FREEINDEX));
	s->allocbits = hs_go_ld(b + OFF(g, SP_ALLOCBITS), 8);
	s->allocated_declared = (unsigned)hs_go_ld(b + OFF(g, SP_ALLOCCOUNT), SIZE(g, SP_ALLOCCOUNT));
	s->sweepgen = (uint32_t)hs_go_ld(b + OFF(g, SP_SWEEPGEN), SIZE(g, SP_SWEEPGEN));
	if (s->start % HS_GO_PAGE_SIZE || s->npages == 0 || s->npages > UINT64_MAX / HS_GO_PAGE_SIZE ||
	    !in_heap(w, s->start, s->start + s->npages * HS_GO_PAGE_SIZE))
		return span_diag(w, p, "pages 0x%" PRIx64 " + %" PRIu64 " are not in the Go heap's arenas", s->start,
				 s->npages);
	ptrdiff_t a = arena_at(w, s->start);
	s->arena = (unsigned)a;
	uint64_t mapped;
	uint64_t page = (s->start - w->arenas[a].base) / HS_GO_PAGE_SIZE;
	if (!hs_walk_read_u64(g->ctx, w->arenas[a].ha + OFF(g, HA_SPANS) + page * 8, &mapped))
		return span_diag(w, p, "its arena's page map (heapArena 0x%" PRIx64 ") is not in the core",
				 w->arenas[a].ha);
	if (mapped != p)
		return span_diag(w, p, "its arena's page map names span 0x%" PRIx64 " for page 0x%" PRIx64, mapped,
				 s->start);
	if (s->state == SPAN_MANUAL)
		return true;
	uint64_t bytes = s->npages * HS_GO_PAGE_SIZE;
	unsigned cls = s->spanclass >> 1;
	if (cls == 0) {
		// A large object: the whole span is its one slot.
		if (s->elemsize != bytes)
			return span_diag(w, p, "a large object's span of %" PRIu64 " bytes says elemsize %" PRIu64, bytes,
					 s->elemsize);
		if (s->nelems != 1)
			return span_diag(w, p, "a large object's span says nelems %" PRIu64, s->nelems);
		return true;
	}
	if (cls >= HS_GO_NUM_SIZE_CLASSES || s->elemsize == 0 || s->elemsize > HS_GO_MAX_SMALL_SIZE)
		return span_diag(w, p, "size class %u, elemsize %" PRIu64 ": not a small-object span", cls,
				 s->elemsize);
	if (g->have_class_size && g->class_size[cls] != s->elemsize)
		return span_diag(w, p, "elemsize %" PRIu64 " is not the size of its class (%u)", s->elemsize,
				 g->class_size[cls]);
	if (s->nelems == 0 || s->nelems > bytes / s->elemsize)
		return span_diag(w, p, "%" PRIu64 " slots of %" PRIu64 " bytes do not fit its pages", s->nelems,
				 s->elemsize);
	if (s->freeindex > s->nelems || s->allocated_declared > s->nelems)
		return span_diag(w, p, "freeindex %" PRIu64 " or allocCount %u is past its slots",
				 s->freeindex, s->allocated_declared);
	return true;
}

static struct hs_error *push_span(struct walk *w, const struct go_span *s)
{
	if (w->nspans == w->capspans) {
		size_t cap = w->capspans ? 2 * w->capspans : 256;
		struct go_span *n = realloc(w->spans, cap * sizeof(*n));
		if (!n)
			return &hs_error_nomem;
		w->spans = n;
		w->capspans = cap;
	}
	w->spans[w->nspans++] = *s;
	return NULL;
}

static struct hs_error *read_spans(struct walk *w)
{
	struct go_st *g = w->g;
	uint64_t sz = SIZE(g, SP_SIZEOF);
	uint64_t *ptrs = malloc(SPANS_PER_READ * sizeof(uint64_t));
	uint8_t *b = malloc(sz);
	struct hs_error *err = NULL;
	if (!ptrs || !b) {
		err = &hs_error_nomem;
		goto out;
	}
	for (uint64_t i = 0; i < g->nallspans && !err; i += SPANS_PER_READ) {
		if (hs_walk_interrupted(g->ctx)) {
			err = hs_error_create(HS_ERR_INTERRUPTED, "interrupted");
			break;
		}
		uint64_t n = g->nallspans - i < SPANS_PER_READ ? g->nallspans - i : SPANS_PER_READ;
		if (!hs_walk_read(g->ctx, g->allspans + i * 8, ptrs, n * 8)) {
			w->bad_spans++;
			w->rejected += n;
			hs_walk_diagk(g->ctx, D_SPAN, HS_DIAG_ERROR, g->allspans + i * 8,
				      "mheap_.allspans[%" PRIu64 "..%" PRIu64 "] is not in the core: those spans are left out",
				      i, i + n);
			continue;
		}
		for (uint64_t k = 0; k < n && !err; k++) {
			struct go_span s;
			if (!ptrs[k])
				continue;
			if (!hs_walk_read(g->ctx, ptrs[k], b, sz)) {
				span_diag(w, ptrs[k], "its mspan struct is not in the core");
				continue;
			}
			if (read_span(w, ptrs[k], b, &s))
				err = push_span(w, &s);
		}
	}
out:
	free(ptrs);
	free(b);
	if (!err && g->nallspans && w->rejected >= g->nallspans)
		err = hs_error_create(HS_ERR_HEAP, "mheap_.allspans (0x%" PRIx64 ", %" PRIu64 " spans) is not in the core: "
				      "no span of the Go heap is known", g->allspans, g->nallspans);
	if (!err && w->nspans)
		qsort(w->spans, w->nspans, sizeof(*w->spans), span_cmp);
	return err;
}

static struct hs_error *emit_small(struct walk *w, const struct go_span *s)
{
	struct go_st *g = w->g;
	uint64_t nbytes = (s->nelems + 7) / 8;
	if (nbytes > w->capbits) {
		uint8_t *n = realloc(w->bits, nbytes);
		if (!n)
			return &hs_error_nomem;
		w->bits = n;
		w->capbits = nbytes;
	}
	if (!hs_walk_read(g->ctx, s->allocbits, w->bits, nbytes)) {
		objects_diag(w, s->mspan, "its allocBits (0x%" PRIx64 ") are not in the core: its %" PRIu64
			  " objects are left out", s->allocbits, s->nelems);
		return NULL;
	}
	unsigned cls = s->spanclass >> 1;
	uint64_t allocated = 0;
	for (uint64_t i = 0; i < s->nelems; i++) {
		bool used = i < s->freeindex || (w->bits[i / 8] >> (i % 8) & 1);
		uint64_t addr = s->start + i * s->elemsize;
		allocated += used;
		HS_CHECK(add_block(w, addr, s->elemsize, used ? GO_NSTATES : GO_FREE_SLOT, s->arena));
		if (used) {
			w->class_used_n[cls]++;
		} else {
			w->class_free_n[cls]++;
			w->class_free_b[cls] += s->elemsize;
		}
	}
	uint64_t end = s->start + s->npages * HS_GO_PAGE_SIZE, objs_end = s->start + s->nelems * s->elemsize;
	if (objs_end < end)
		HS_CHECK(add_block(w, objs_end, end - objs_end, GO_SPAN_TAIL, s->arena));
	// allocCount is what the runtime counts; it agrees with the bits on a
	// consistent heap (an mcache's span too: freeindex covers its slots).
	if (allocated != s->allocated_declared) {
		w->bad_spans++;
		hs_walk_diagk(g->ctx, D_SPAN, HS_DIAG_WARNING, s->mspan,
			      "span 0x%" PRIx64 " (%" PRIu64 "-byte objects at 0x%" PRIx64 "): allocCount says %u "
			      "objects, its allocBits and freeindex %" PRIu64, s->mspan, s->elemsize, s->start,
			      s->allocated_declared, allocated);
	}
	return NULL;
}

static struct hs_error *emit_spans(struct walk *w)
{
	struct go_st *g = w->g;
	uint64_t prev_end = 0;
	// Room for every block at once: a million objects grown by doubling
	// cost more in copies and page faults than the walk itself.
	// Spans that overlap are left out below; past RESERVE_MAX (a hostile
	// core's claim) the index grows as blocks come.
	uint64_t blocks = 2 * w->narenas + 1, end = 0;
	for (size_t i = 0; i < w->nspans && blocks < RESERVE_MAX; i++) {
		const struct go_span *s = &w->spans[i];
		if (s->start < end)
			continue;
		blocks += (s->state == SPAN_IN_USE ? s->nelems : 0) + 3;
		end = s->start + s->npages * HS_GO_PAGE_SIZE;
	}
	HS_CHECK(HS_VEC_GROW(w->heap->blocks, w->heap->cap,
			     w->heap->n + (blocks < RESERVE_MAX ? blocks : RESERVE_MAX)));
	for (size_t i = 0; i < w->nspans; i++) {
		const struct go_span *s = &w->spans[i];
		if ((i & 255) == 0 && hs_walk_interrupted(g->ctx))
			return hs_error_create(HS_ERR_INTERRUPTED, "interrupted");
		uint64_t bytes = s->npages * HS_GO_PAGE_SIZE;
		if (s->start < prev_end) {
			span_diag(w, s->mspan, "its pages (from 0x%" PRIx64 ") overlap the span before (to 0x%" PRIx64 ")",
				  s->start, prev_end);
			w->spans[i].npages = 0;   // not a span for the idle-page pass either
			continue;
		}
		prev_end = s->start + bytes;
		HS_CHECK(add_block(w, s->mspan, SIZE(g, SP_SIZEOF), GO_SPAN_STRUCT, HS_ARENA_NONE));
		if (s->state == SPAN_MANUAL) {
			w->manual++;
			HS_CHECK(add_block(w, s->start, bytes, GO_STACK_SPAN, s->arena));
			continue;
		}
		w->in_use++;
		// h-2: not swept since the last GC (its allocBits still hold objects
		// that GC found dead); h-1: being swept.
		uint32_t h = (uint32_t)g->sweepgen;
		w->unswept += s->sweepgen == h - 2 || s->sweepgen == h - 1;
		if (s->spanclass >> 1 == 0) {
			uint8_t bit0 = 0;
			bool used = s->freeindex > 0;
			if (!used && !hs_walk_read(g->ctx, s->allocbits, &bit0, 1)) {
				objects_diag(w, s->mspan, "its allocBits (0x%" PRIx64 ") are not in the core: its large object "
					  "of %" PRIu64 " bytes is left out", s->allocbits, bytes);
				continue;
			}
			used = used || (bit0 & 1);
			w->large += used;
			HS_CHECK(add_block(w, s->start, bytes, used ? GO_NSTATES : GO_FREE_SLOT, s->arena));
			if (used)
				w->class_used_n[0]++;
			else
				w->class_free_n[0]++, w->class_free_b[0] += bytes;
			continue;
		}
		HS_CHECK(emit_small(w, s));
	}
	return NULL;
}

// The grown pages of each arena that no span holds: the runtime's HeapIdle.
// Not when a span was left out: its pages would be counted as idle.
static struct hs_error *emit_idle(struct walk *w)
{
	size_t k = 0;
	if (w->rejected) {
		hs_walk_diagk(w->g->ctx, D_ARENA, HS_DIAG_WARNING, 0,
			      "idle pages are not counted: %" PRIu64 " span%s left out, and their pages are not known",
			      w->rejected, w->rejected == 1 ? " was" : "s were");
		return NULL;
	}
	for (size_t a = 0; a < w->narenas; a++) {
		const struct go_arena *ar = &w->arenas[a];
		uint64_t cur = ar->base;
		while (k < w->nspans && w->spans[k].start + w->spans[k].npages * HS_GO_PAGE_SIZE <= ar->base)
			k++;
		for (size_t j = k; j < w->nspans && w->spans[j].start < ar->grown_end; j++) {
			const struct go_span *s = &w->spans[j];
			if (!s->npages)
				continue;
			if (s->start > cur)
				HS_CHECK(add_block(w, cur, s->start - cur, GO_IDLE_PAGES, (unsigned)a));
			uint64_t end = s->start + s->npages * HS_GO_PAGE_SIZE;
			if (end > cur)
				cur = end;
		}
		if (cur < ar->grown_end)
			HS_CHECK(add_block(w, cur, ar->grown_end - cur, GO_IDLE_PAGES, (unsigned)a));
	}
	return NULL;
}

// Each P's mcache (runtime.allp[i].mcache): the runtime's MCacheInuse.
static struct hs_error *emit_mcaches(struct walk *w)
{
	struct go_st *g = w->g;
	struct hs_symbol sym;
	uint64_t hdr[2];
	struct hs_error *err = hs_walk_symbol(g->ctx, g->mod, "runtime.allp", &sym);
	if (err || !hs_walk_read(g->ctx, sym.address, hdr, sizeof(hdr)) || hdr[1] > 1 << 16) {
		hs_walk_diagk(g->ctx, D_OTHER, HS_DIAG_WARNING, err ? 0 : sym.address,
			      "runtime.allp cannot be read: the Ps' mcache structs are not counted");
		hs_error_destroy(err);
		return NULL;
	}
	for (uint64_t i = 0; i < hdr[1]; i++) {
		uint64_t p, mc;
		if (!hs_walk_read_u64(g->ctx, hdr[0] + i * 8, &p) || !p)
			continue;
		if (!hs_walk_read_u64(g->ctx, p + OFF(g, P_MCACHE), &mc) || !mc) {
			hs_walk_diagk(g->ctx, D_OTHER, HS_DIAG_WARNING, p, "P 0x%" PRIx64 ": its mcache cannot be read", p);
			continue;
		}
		HS_CHECK(add_block(w, mc, SIZE(g, MC_SIZEOF), GO_MCACHE, HS_ARENA_NONE));
		w->mcaches++;
	}
	return NULL;
}

static struct hs_error *describe(struct walk *w)
{
	struct go_st *g = w->g;
	struct hs_alloc_desc *d = w->desc;
	for (size_t i = 0; i < w->narenas; i++) {
		const struct go_arena *ar = &w->arenas[i];
		struct hs_arena a = { .address = ar->base, .nthreads = -1 };
		snprintf(a.label, sizeof(a.label), "go arena 0x%" PRIx64, ar->base);
		a.system_mem = ar->grown_end - ar->base;
		a.used_count = ar->used_n;
		a.used_bytes = ar->used_b;
		a.free_count = ar->free_n;
		a.free_bytes = ar->free_b;
		hs_arena_fact_set(&a, "heapArena", ar->ha);
		HS_CHECK(hs_alloc_desc_add_arena(d, &a));
		if (ar->grown_end > ar->base) {
			struct hs_region r = { ar->base, ar->grown_end, HS_REGION_HEAP, (unsigned)i };
			HS_CHECK(hs_alloc_desc_add_region(d, &r));
		}
		struct hs_region m = { ar->ha, ar->ha + SIZE(g, HA_SIZEOF), HS_REGION_META, (unsigned)i };
		HS_CHECK(hs_alloc_desc_add_region(d, &m));
		HS_CHECK(add_block(w, ar->ha, SIZE(g, HA_SIZEOF), GO_ARENA_META, (unsigned)i));
	}
	for (unsigned c = 0; c < HS_GO_NUM_SIZE_CLASSES; c++) {
		if (!w->class_free_n[c])
			continue;
		struct hs_freelist l = {
			.where = g->ctx->state[GO_FREE_SLOT], .arena = HS_ARENA_NONE, .index = (int)c,
			.chunk_size = c && g->have_class_size ? g->class_size[c] : 0,
			.count = w->class_free_n[c], .bytes = w->class_free_b[c], .declared = -1,
		};
		HS_CHECK(hs_alloc_desc_add_list(d, &l));
	}
	snprintf(d->version, sizeof(d->version), "%s", g->version);
	snprintf(d->layout_source, sizeof(d->layout_source), "%s", g->layout_why);
	hs_alloc_desc_fact(d, "runtime.mheap_", g->mheap);
	hs_alloc_desc_fact(d, "mheap_.sweepgen", g->sweepgen);
	hs_alloc_desc_fact(d, "arenas", w->narenas);
	hs_alloc_desc_fact(d, "arena size", HS_GO_ARENA_BYTES);
	hs_alloc_desc_fact(d, "page size", HS_GO_PAGE_SIZE);
	hs_alloc_desc_fact(d, "spans (allspans)", g->nallspans);
	hs_alloc_desc_fact(d, "spans in use", w->in_use);
	hs_alloc_desc_fact(d, "manual spans (stacks)", w->manual);
	hs_alloc_desc_fact(d, "dead spans", w->dead);
	hs_alloc_desc_fact(d, "large objects", w->large);
	hs_alloc_desc_fact(d, "mspan structs bytes", g->spanalloc_inuse);
	hs_alloc_desc_fact(d, "mcache structs bytes", g->cachealloc_inuse);
	hs_alloc_desc_fact(d, "Ps' mcaches", w->mcaches);
	hs_alloc_desc_fact(d, "sizeof(runtime.mspan)", SIZE(g, SP_SIZEOF));
	hs_alloc_desc_fact(d, "sizeof(runtime.heapArena)", SIZE(g, HA_SIZEOF));
	hs_alloc_desc_fact(d, "mheap.allspans", OFF(g, MH_ALLSPANS));
	hs_alloc_desc_fact(d, "heapArena.spans", OFF(g, HA_SPANS));
	hs_alloc_desc_fact(d, "mspan.startAddr", OFF(g, SP_STARTADDR));
	hs_alloc_desc_fact(d, "mspan.npages", OFF(g, SP_NPAGES));
	hs_alloc_desc_fact(d, "mspan.freeindex", OFF(g, SP_FREEINDEX));
	hs_alloc_desc_fact(d, "mspan.allocBits", OFF(g, SP_ALLOCBITS));
	hs_alloc_desc_fact(d, "mspan.allocCount", OFF(g, SP_ALLOCCOUNT));
	hs_alloc_desc_fact(d, "mspan.state", OFF(g, SP_STATE));
	if (w->unswept)
		hs_alloc_desc_fact(d, "unswept spans", w->unswept);
	if (w->bad_spans)
		hs_alloc_desc_fact(d, "bad spans", w->bad_spans);
	return NULL;
}

static struct hs_error *go_walk(struct hs_walk_ctx *ctx, void *state, struct hs_heap *heap,
				struct hs_alloc_desc *desc)
{
	struct go_st *g = state;
	g->ctx = ctx;
	struct walk *w = calloc(1, sizeof(*w));
	if (!w)
		return &hs_error_nomem;
	w->g = g;
	w->heap = heap;
	w->desc = desc;
	struct hs_error *err = read_arenas(w);
	if (!err)
		err = read_spans(w);
	if (!err)
		err = emit_spans(w);
	if (!err)
		err = emit_idle(w);
	if (!err)
		err = emit_mcaches(w);
	if (!err)
		err = describe(w);
	hs_walk_diag_flush(ctx);
	free(w->arenas);
	free(w->spans);
	free(w->bits);
	free(w);
	return err;
}

const struct hs_walker hs_go_walker = {
	.name = "go",
	.title = "Go runtime",
	.states = go_states,
	.nstates = GO_NSTATES,
	.detect = go_detect,
	.walk = go_walk,
	.destroy = state_destroy,
};
