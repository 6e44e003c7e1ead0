/* alloc_tcmalloc.c - the gperftools tcmalloc walker (gperftools 2.10, x86-64).
 *
 * tcmalloc's one complete index is the page heap's page map (a two-level radix
 * tree from page number to Span), so the walk is:
 *   detect  the module (libtcmalloc*.so, or the executable holding tcmalloc's
 *           symbols or strings), its "gperftools X.Y" version (anything but a
 *           version of tcmalloc_layout.h is refused by name), then the roots:
 *           Static::sizemap_, Static::pageheap_, Static::central_cache_ and
 *           ThreadCache::thread_heaps_, by --override, by symbol, or (stripped)
 *           by a scan of the module's writable memory for the shape each one
 *           must have (sizemap: increasing class sizes; pageheap: the empty
 *           free_[0] span lists point at themselves; central cache: entries
 *           numbered by class; thread heaps: a cache whose free lists carry
 *           the class sizes);
 *   spans   every span the page map indexes, in page order, each checked
 *           (its first page must map to it);
 *   lists   every free object: a span's own free list ("central"), the
 *           transfer cache slots of each class ("transfer-cache"), each
 *           thread's cache ("thread-cache"); each object must lie on an
 *           object boundary of a span of its class;
 *   emit    small objects of in-use spans (used unless on a list), large
 *           spans ("large"), free spans ("page-free", "page-returned").
 * Layout facts come from tcmalloc_layout.h only.  Every loop is bounded and
 * every read checked; what does not decode is reported and skipped.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "tcmalloc_layout.h"
#include "walker.h"

#define USER_MAX (UINT64_C(1) << 47)
#define MAX_THREAD_CACHES 65536
#define MAX_DIAGS_PER_KIND 20

enum tc_state_id { TC_LARGE, TC_THREAD, TC_TRANSFER, TC_CENTRAL, TC_PAGE_FREE, TC_PAGE_RETURNED, TC_NSTATES };
static const struct hs_state_def tc_states[TC_NSTATES] = {
	[TC_LARGE] = { "large", HS_STATE_USED, "a live large allocation (its own extent)" },
	[TC_THREAD] = { "thread-cache", HS_STATE_FREE, "in a thread's tcmalloc cache (ThreadCache free list)" },
	[TC_TRANSFER] = { "transfer-cache", HS_STATE_FREE, "in a tcmalloc transfer cache slot (central cache batch)" },
	[TC_CENTRAL] = { "central", HS_STATE_FREE, "on a tcmalloc span's own free list (central free list)" },
	[TC_PAGE_FREE] = { "page-free", HS_STATE_FREE, "a free tcmalloc span (page heap normal free list)" },
	[TC_PAGE_RETURNED] = { "page-returned", HS_STATE_FREE, "a free tcmalloc span returned to the system" },
};

enum { D_SPAN, D_OBJECT, D_LIST, D_OTHER };
static const char *const tc_diag_what[] = {
	"about spans", "about free objects", "about free lists", "about other findings",
};

/* Marks of a small object (per-object byte). */
enum { M_USED = 0, M_THREAD, M_TRANSFER, M_CENTRAL };

struct tc_span {
	uint64_t addr;         /* the Span record */
	uint64_t start, length;  /* pages */
	uint64_t objects;      /* Span::objects */
	unsigned cl, location, refcount;
	bool sample;
	uint64_t first_obj;    /* index of its first object in marks[] */
	uint64_t nobj;         /* objects (small spans), 0 otherwise */
};

struct tc_cache {
	uint64_t addr;
	uint64_t tid_ptr;      /* pthread_t */
	int tid;
};

struct tc_state {
	struct hs_walk_ctx *ctx;
	struct hs_memory *mem;
	const struct hs_tc_layout *L;
	struct hs_module *mod;
	struct hs_module nt_module;   /* mod when only the file mappings name it */
	bool mod_from_files;
	char module_name[64];
	char version[32];
	uint64_t sizemap, pageheap, central, thread_heaps;   /* root addresses */
	char how[96];
	/* the size map */
	unsigned nclasses;
	uint32_t class_size[256];
	uint64_t class_pages[256];
	int32_t to_move[256];
	uint8_t class_array[4096];   /* SizeMap::class_array_: size index -> class */
};

/* --- small helpers ------------------------------------------------------- */

static bool rd64(struct tc_state *t, uint64_t a, uint64_t *v) { return hs_walk_read_u64(t->ctx, a, v); }
static bool rd32(struct tc_state *t, uint64_t a, uint32_t *v) { return hs_walk_read_u32(t->ctx, a, v); }

static bool plausible_ptr(uint64_t p)
{
	return p >= 4096 && p < USER_MAX && (p & 7) == 0;
}

/* "gperftools X.Y" (TC_VERSION_STRING), NUL on both sides, in the file. */
static bool find_version(const uint8_t *p, uint64_t len, char *buf, size_t cap)
{
	static const char pre[] = "gperftools ";
	const size_t n = sizeof(pre) - 1;
	const uint8_t *q = p, *end = p + len;
	while ((q = memmem(q, (size_t)(end - q), pre, n)) != NULL) {
		if (q > p && q[-1] == 0) {
			const uint8_t *v = q + n, *e = v;
			while (e < end && e - v < 16 && ((*e >= '0' && *e <= '9') || *e == '.'))
				e++;
			if (e < end && *e == 0 && e > v && v[0] >= '0' && v[0] <= '9') {
				snprintf(buf, cap, "%.*s", (int)(e - v), (const char *)v);
				return true;
			}
		}
		q += n;
	}
	return false;
}

/* Whether the file's .rodata (or the whole file when it has no section
 * headers) holds gperftools' version string and one of its own messages.
 * The words alone are not enough: a tool that knows tcmalloc names it in
 * its messages (heapscope's own core). */
static bool file_has_tcmalloc(struct hs_elf_file *f)
{
	static const char msg[] = "Bytes in thread cache freelists";
	uint64_t len;
	const uint8_t *p = hs_elf_section(f, ".rodata", &len);
	if (!p)
		p = hs_elf_image(f, &len);
	char v[16];
	return p && find_version(p, len, v, sizeof(v)) && memmem(p, len, msg, sizeof(msg) - 1) != NULL;
}

/* --- detect: the module and its version ---------------------------------- */

static const char SYM_SIZEMAP[] = "_ZN8tcmalloc6Static8sizemap_E";
static const char SYM_PAGEHEAP[] = "_ZN8tcmalloc6Static9pageheap_E";
static const char SYM_CENTRAL[] = "_ZN8tcmalloc6Static14central_cache_E";
static const char SYM_HEAPS[] = "_ZN8tcmalloc11ThreadCache13thread_heaps_E";

/* libtcmalloc as the core's NT_FILE note (or /proc/PID/maps) maps it, when
 * no module list names it (a truncated core loses the dynamic linker's list):
 * its file, checked against the ELF header in memory, and its load bias. */
static struct hs_module *module_from_files(struct tc_state *t)
{
	struct hs_module *m = &t->nt_module;
	if (!hs_walk_module_from_files(t->ctx, "libtcmalloc", m))
		return NULL;
	t->mod_from_files = true;
	hs_walk_diag(t->ctx, HS_DIAG_INFO, m->start,
		     "%s is not among the modules the target lists; using it as the file mappings show it",
		     m->path);
	return m;
}

static struct hs_module *find_module(struct tc_state *t)
{
	struct hs_walk_ctx *ctx = t->ctx;
	if (!ctx->symbols)
		return module_from_files(t);
	struct hs_module *m = hs_walk_module_named(ctx, "libtcmalloc");
	if (m)
		return m;
	struct hs_symbol sym;
	struct hs_error *err = hs_walk_symbol(ctx, NULL, SYM_PAGEHEAP, &sym);
	if (!err)
		return hs_walk_module_at(ctx, sym.address);
	hs_error_destroy(err);
	// A stripped executable (or library) with tcmalloc linked in: its
	// version string and its own messages give it away.  The executable first.
	struct hs_symbols *sy = ctx->symbols;
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < sy->nmodules; i++) {
			struct hs_module *c = &sy->modules[i];
			if (c->is_main != (pass == 0) || !c->path)
				continue;
			struct hs_elf_file *f = hs_elf_open(c->path, c->bias);
			if (!f)
				continue;
			bool found = file_has_tcmalloc(f);
			hs_elf_close(f);
			if (found)
				return c;
		}
	return module_from_files(t);
}

static struct hs_error *check_version(struct tc_state *t, struct hs_elf_file *f)
{
	uint64_t len;
	const uint8_t *img = f ? hs_elf_image(f, &len) : NULL;
	if (!img)
		return hs_error_create(HS_ERR_HEAP,
				       "tcmalloc is in %s but its file could not be read: its version cannot be checked",
				       t->module_name);
	if (!find_version(img, len, t->version, sizeof(t->version)))
		return hs_error_create(HS_ERR_HEAP,
				       "tcmalloc is in %s but it has no \"gperftools X.Y\" version string: not a gperftools build heapscope knows",
				       t->module_name);
	if (strstr(t->module_name, "_debug"))
		return hs_error_create(HS_ERR_HEAP,
				       "%s is gperftools' debugallocation build (guard words around every block): not supported, only tcmalloc and tcmalloc_minimal",
				       t->module_name);
	for (size_t i = 0; i < HS_TC_NLAYOUTS; i++)
		if (!strcmp(hs_tc_layouts[i]->version, t->version)) {
			t->L = hs_tc_layouts[i];
			return NULL;
		}
	char known[64] = "";
	size_t n = 0;
	for (size_t i = 0; i < HS_TC_NLAYOUTS && n < sizeof(known); i++)
		n += (size_t)snprintf(known + n, sizeof(known) - n, "%s%s", i ? ", " : "", hs_tc_layouts[i]->version);
	return hs_error_create(HS_ERR_HEAP,
			       "%s is gperftools tcmalloc %s: not supported (heapscope reads gperftools %s)",
			       t->module_name, t->version, known);
}

/* --- detect: the roots ---------------------------------------------------- */

static bool read_sizemap(struct tc_state *t, uint64_t a)
{
	const struct hs_tc_layout *L = t->L;
	uint8_t buf[8192];
	if (L->sizemap_size > sizeof(buf) || !hs_walk_read(t->ctx, a, buf, L->sizemap_size))
		return false;
	uint64_t n;
	memcpy(&n, buf + L->sm_num_size_classes, 8);
	if (n < 2 || n > L->class_sizes_max || n > 256)
		return false;
	uint32_t prev = 0;
	for (unsigned cl = 0; cl < n; cl++) {
		int32_t sz, mv;
		uint64_t pg;
		memcpy(&sz, buf + L->sm_class_to_size + 4 * cl, 4);
		memcpy(&mv, buf + L->sm_num_objects_to_move + 4 * cl, 4);
		memcpy(&pg, buf + L->sm_class_to_pages + 8 * cl, 8);
		if (cl == 0 ? sz != 0 : (sz <= (int32_t)prev || sz > (256 << 10) || (sz & 7) || pg < 1 ||
					  pg > L->ph_max_pages || mv < 1 || mv > 8192))
			return false;
		t->class_size[cl] = (uint32_t)sz;
		t->class_pages[cl] = pg;
		t->to_move[cl] = mv;
		prev = (uint32_t)sz;
	}
	// The smallest request maps to class 1 (8 bytes).
	if (buf[L->sm_class_array + 1] != 1 || t->class_size[1] != 8 ||
	    L->sm_class_array_len > sizeof(t->class_array))
		return false;
	memcpy(t->class_array, buf + L->sm_class_array, L->sm_class_array_len);
	t->nclasses = (unsigned)n;
	return true;
}

static bool check_pageheap(struct tc_state *t, uint64_t p)
{
	const struct hs_tc_layout *L = t->L;
	// free_[k] = {normal, returned}: 2 * kMaxPages sentinel spans (start and
	// length 0), each an empty list (pointing at itself) or a list of spans;
	// at least one is empty.
	uint64_t n = 2 * L->ph_max_pages, bytes = n * L->span_size;
	uint8_t buf[2 * 128 * 64];
	// Cheap refusals first: the scan tries many candidates.
	uint64_t w0[2], alloc;
	if (!hs_walk_read(t->ctx, p + L->ph_free, w0, sizeof(w0)) || w0[0] || w0[1] ||
	    !rd64(t, p + L->ph_pagemap_allocator, &alloc) || !alloc || alloc >= USER_MAX)
		return false;
	if (bytes > sizeof(buf) || !hs_walk_read(t->ctx, p + L->ph_free, buf, bytes))
		return false;
	bool some_empty = false;
	for (uint64_t k = 0; k < n; k++) {
		const uint8_t *s = buf + k * L->span_size;
		uint64_t self = p + L->ph_free + k * L->span_size, start, length, next, prev;
		memcpy(&start, s + L->span_start, 8);
		memcpy(&length, s + L->span_length, 8);
		memcpy(&next, s + L->span_next, 8);
		memcpy(&prev, s + L->span_prev, 8);
		if (start || length || !plausible_ptr(next) || !plausible_ptr(prev) || ((next == self) != (prev == self)))
			return false;
		some_empty |= next == self;
	}
	if (!some_empty)
		return false;
	uint64_t sys, fr;
	if (!rd64(t, p + L->ph_stats + L->st_system_bytes, &sys) ||
	    !rd64(t, p + L->ph_stats + L->st_free_bytes, &fr) || fr > sys ||
	    (sys & ((UINT64_C(1) << L->page_shift) - 1)))
		return false;
	return true;
}

static bool check_central(struct tc_state *t, uint64_t c)
{
	const struct hs_tc_layout *L = t->L;
	for (unsigned cl = 0; cl < t->nclasses && cl < 4; cl++) {
		uint64_t v, s = c + cl * L->cfl_stride;
		if (!rd64(t, s + L->cfl_size_class, &v) || v != cl)
			return false;
		if (!rd64(t, s + L->cfl_empty + L->span_next, &v) || !plausible_ptr(v))
			return false;
	}
	return true;
}

static bool check_thread_cache(struct tc_state *t, uint64_t tc, bool head)
{
	const struct hs_tc_layout *L = t->L;
	if (!plausible_ptr(tc))
		return false;
	uint64_t prev;
	if (head && (!rd64(t, tc + L->tc_prev, &prev) || prev != 0))
		return false;
	for (unsigned cl = 1; cl < t->nclasses && cl < 4; cl++) {
		uint32_t sz;
		if (!rd32(t, tc + L->tc_list + cl * L->tc_fl_size + L->tc_fl_object_size, &sz) ||
		    sz != t->class_size[cl])
			return false;
	}
	return true;
}

struct range { uint64_t lo, hi; };

static size_t module_rw(struct hs_elf_file *f, struct range *out, size_t cap)
{
	size_t n = 0;
	if (f) {
		GElf_Phdr ph;
		uint64_t bias = hs_elf_bias(f);
		for (size_t i = 0; i < hs_elf_nphdrs(f) && n < cap; i++)
			if (hs_elf_phdr(f, i, &ph) && ph.p_type == PT_LOAD && (ph.p_flags & PF_W))
				out[n++] = (struct range){ ph.p_vaddr + bias, ph.p_vaddr + ph.p_memsz + bias };
	}
	return n;
}

enum scan_what { SCAN_PAGEHEAP, SCAN_CENTRAL, SCAN_HEAPS };

/* The first address in the module's writable memory where `what` is. */
static uint64_t scan_for(struct tc_state *t, const struct range *rs, size_t nr, enum scan_what what)
{
	const struct hs_tc_layout *L = t->L;
	for (size_t r = 0; r < nr; r++) {
		uint64_t a = (rs[r].lo + 7) & ~UINT64_C(7);
		while (a + 8 <= rs[r].hi) {
			if (hs_walk_interrupted(t->ctx))
				return 0;
			uint64_t len;
			uint64_t run = hs_memory_next_scan_run(t->mem, a, rs[r].hi, &len);
			if (run == UINT64_MAX)
				break;
			const uint8_t *p = hs_memory_span(t->mem, run, (size_t)len);
			if (!p)
				break;
			for (uint64_t off = (8 - (run & 7)) & 7; off + 8 <= len; off += 8) {
				uint64_t v, x = run + off;
				memcpy(&v, p + off, 8);
				switch (what) {
				case SCAN_PAGEHEAP:
					// An empty free_[k] list: which k is not known.
					if (v == x - L->span_next)
						for (uint64_t k = 0; k < 2 * L->ph_max_pages; k++) {
							uint64_t ph = x - L->span_next - L->ph_free - k * L->span_size;
							if (x - L->span_next >= L->ph_free + k * L->span_size &&
							    check_pageheap(t, ph))
								return ph;
						}
					break;
				case SCAN_CENTRAL:
					if (v == 1 && x >= L->cfl_stride + L->cfl_size_class &&
					    check_central(t, x - L->cfl_size_class - L->cfl_stride))
						return x - L->cfl_size_class - L->cfl_stride;
					break;
				case SCAN_HEAPS:
					if (plausible_ptr(v) && check_thread_cache(t, v, true))
						return x;
					break;
				}
			}
			a = run + len;
		}
	}
	return 0;
}

/* class_to_size_ is 4-aligned inside an 8-aligned SizeMap (offset 2684): the
 * pair 8, 16 starts at a word boundary + 4.  Look for the pair straddling. */
static uint64_t scan_sizemap(struct tc_state *t, const struct range *rs, size_t nr)
{
	const struct hs_tc_layout *L = t->L;
	static const uint8_t pat[12] = { 0, 0, 0, 0, 8, 0, 0, 0, 16, 0, 0, 0 };
	for (size_t r = 0; r < nr; r++) {
		uint64_t a = rs[r].lo;
		while (a < rs[r].hi) {
			uint64_t len;
			uint64_t run = hs_memory_next_scan_run(t->mem, a, rs[r].hi, &len);
			if (run == UINT64_MAX)
				break;
			const uint8_t *p = hs_memory_span(t->mem, run, (size_t)len);
			if (!p)
				break;
			const uint8_t *q = p, *end = p + len;
			while ((q = memmem(q, (size_t)(end - q), pat, sizeof(pat))) != NULL) {
				uint64_t x = run + (uint64_t)(q - p);
				if (x >= L->sm_class_to_size && ((x - L->sm_class_to_size) & 7) == 0 &&
				    read_sizemap(t, x - L->sm_class_to_size))
					return x - L->sm_class_to_size;
				q += 4;
			}
			a = run + len;
		}
	}
	return 0;
}

static bool root_symbol(struct tc_state *t, const char *name, uint64_t *ret)
{
	struct hs_symbol sym;
	if (t->mod_from_files)
		return false;
	struct hs_error *err = hs_walk_symbol(t->ctx, t->mod, name, &sym);
	if (err) {
		hs_error_destroy(err);
		return false;
	}
	*ret = sym.address;
	return true;
}

static struct hs_error *find_roots(struct tc_state *t, struct hs_elf_file *f)
{
	struct range rs[8];
	size_t nr = module_rw(f, rs, 8);
	const char *how_sm = "symbol", *how_ph = "symbol", *how_cc = "symbol", *how_th = "symbol";
	uint64_t v;

	if (hs_walk_override(t->ctx, "sizemap", &v))
		t->sizemap = v, how_sm = "override";
	else if (root_symbol(t, SYM_SIZEMAP, &v))
		t->sizemap = v;
	else
		t->sizemap = scan_sizemap(t, rs, nr), how_sm = "memory scan";
	if (!t->sizemap || !read_sizemap(t, t->sizemap))
		return hs_error_create(HS_ERR_HEAP,
				       "tcmalloc (%s): its size map (Static::sizemap_) %s (give it with --override sizemap=ADDR)",
				       t->module_name, t->sizemap ? "does not decode" : "was not found");

	if (hs_walk_override(t->ctx, "pageheap", &v))
		t->pageheap = v, how_ph = "override";
	else if (root_symbol(t, SYM_PAGEHEAP, &v))
		t->pageheap = v;
	else
		t->pageheap = scan_for(t, rs, nr, SCAN_PAGEHEAP), how_ph = "memory scan";
	if (!t->pageheap || !check_pageheap(t, t->pageheap))
		return hs_error_create(HS_ERR_HEAP,
				       "tcmalloc (%s): its page heap (Static::pageheap_) %s (give it with --override pageheap=ADDR)",
				       t->module_name, t->pageheap ? "does not decode" : "was not found");

	if (hs_walk_override(t->ctx, "central_cache", &v))
		t->central = v, how_cc = "override";
	else if (root_symbol(t, SYM_CENTRAL, &v))
		t->central = v;
	else
		t->central = scan_for(t, rs, nr, SCAN_CENTRAL), how_cc = "memory scan";
	if (t->central && !check_central(t, t->central)) {
		hs_walk_diag(t->ctx, HS_DIAG_WARNING, t->central,
			     "tcmalloc's central cache does not decode: transfer caches are not read");
		t->central = 0;
	}

	if (hs_walk_override(t->ctx, "thread_heaps", &v))
		t->thread_heaps = v, how_th = "override";
	else if (root_symbol(t, SYM_HEAPS, &v))
		t->thread_heaps = v;
	else
		t->thread_heaps = scan_for(t, rs, nr, SCAN_HEAPS), how_th = "memory scan";

	if (!strcmp(how_sm, how_ph) && !strcmp(how_sm, how_cc) && !strcmp(how_sm, how_th))
		snprintf(t->how, sizeof(t->how), "%s", how_sm);
	else
		snprintf(t->how, sizeof(t->how), "sizemap %s, pageheap %s, central %s, heaps %s", how_sm, how_ph,
			 how_cc, how_th);
	return NULL;
}

static void state_destroy(void *state)
{
	free(state);
}

static struct hs_error *tc_detect(struct hs_walk_ctx *ctx, void **state_ret)
{
	*state_ret = NULL;
	struct tc_state *t = calloc(1, sizeof(*t));
	if (!t)
		return &hs_error_nomem;
	t->ctx = ctx;
	t->mem = ctx->mem;
	t->L = hs_tc_layouts[0];
	hs_walk_diag_kinds(ctx, tc_diag_what, sizeof(tc_diag_what) / sizeof(tc_diag_what[0]), MAX_DIAGS_PER_KIND);
	t->mod = find_module(t);
	uint64_t ov;
	if (!t->mod && hs_walk_override(ctx, "pageheap", &ov))
		t->mod = hs_walk_module_at(ctx, ov);
	if (!t->mod) {
		free(t);
		return hs_error_create(HS_ERR_NOT_FOUND,
				       "tcmalloc is not in this process: no libtcmalloc module, no tcmalloc symbols and no gperftools version string in the executable");
	}
	snprintf(t->module_name, sizeof(t->module_name), "%s",
		 hs_base_name(t->mod->path ? t->mod->path : t->mod->name));
	struct hs_elf_file *f = hs_elf_open(t->mod->path, t->mod->bias);
	struct hs_error *err = check_version(t, f);
	if (!err)
		err = find_roots(t, f);
	hs_elf_close(f);
	if (err) {
		free(t);
		return err;
	}
	*state_ret = t;
	return NULL;
}

/* --- walk ----------------------------------------------------------------- */

/* tc_nallocx(size, 0): what malloc_usable_size() says of a sampled object of
 * that requested size (SizeMap::GetSizeClass, else whole pages). */
static uint64_t usable_size(struct tc_state *t, uint64_t size)
{
	const struct hs_tc_layout *L = t->L;
	uint64_t idx = UINT64_MAX;
	if (size <= 1024)
		idx = (size + 7) >> 3;
	else if (size <= (256 << 10))
		idx = (size + 127 + (120 << 7)) >> 7;
	if (idx < L->sm_class_array_len && t->class_array[idx] && t->class_array[idx] < t->nclasses)
		return t->class_size[t->class_array[idx]];
	uint64_t page = UINT64_C(1) << L->page_shift;
	return (size + page - 1) & ~(page - 1);
}

struct walk {
	struct tc_state *t;
	struct hs_heap *heap;
	struct hs_alloc_desc *desc;
	struct tc_span *spans;
	size_t nspans, capspans;
	uint8_t *marks;            /* per small object: M_* */
	uint64_t nmarks;
	struct tc_cache *caches;
	size_t ncaches, capcaches;
	/* totals */
	uint64_t used_n, used_b, large_n, large_b, tail_b;
	uint64_t sampled_n, sampled_slack;
	uint64_t cnt[TC_NSTATES], bytes[TC_NSTATES];
	uint64_t central_declared[256];
	unsigned bad_spans;
};

/* Every span of the page map, in page order. */
static struct hs_error *collect_spans(struct walk *w)
{
	struct tc_state *t = w->t;
	const struct hs_tc_layout *L = t->L;
	const uint64_t nroot = UINT64_C(1) << L->root_bits, nleaf = UINT64_C(1) << L->leaf_bits;
	uint64_t root_addr = t->pageheap + L->ph_pagemap_root;
	uint64_t *root = malloc(nroot * 8), *leaf = malloc(nleaf * 8);
	struct hs_error *err = NULL;
	if (!root || !leaf) {
		err = &hs_error_nomem;
		goto out;
	}
	if (!hs_walk_read(t->ctx, root_addr, root, nroot * 8)) {
		err = hs_error_create(HS_ERR_HEAP, "tcmalloc's page map root at 0x%" PRIx64 " could not be read",
				      root_addr);
		goto out;
	}
	uint64_t next_page = 0;   // the first page not covered by a span already taken
	// No span is longer than all the memory the page heap got from the system.
	uint64_t sys = 0, max_pages = UINT64_C(1) << 35;
	if (rd64(t, t->pageheap + L->ph_stats + L->st_system_bytes, &sys) && sys)
		max_pages = sys >> L->page_shift;
	for (uint64_t i = 0; i < nroot; i++) {
		if (!root[i])
			continue;
		if (hs_walk_interrupted(t->ctx)) {
			err = hs_error_create(HS_ERR_INTERRUPTED, "interrupted");
			goto out;
		}
		const uint64_t *lv = NULL;
		if (plausible_ptr(root[i]))
			lv = (const uint64_t *)(const void *)hs_memory_span(t->mem, root[i], nleaf * 8);
		if (!lv && plausible_ptr(root[i]) && hs_walk_read(t->ctx, root[i], leaf, nleaf * 8))
			lv = leaf;
		if (!lv) {
			hs_walk_diagk(t->ctx, D_SPAN, HS_DIAG_WARNING, root[i],
				      "page map leaf %" PRIu64 " (pages 0x%" PRIx64 "...) at 0x%" PRIx64
				      " could not be read: its spans are missing",
				      i, i << L->leaf_bits, root[i]);
			continue;
		}
		uint64_t base = i << L->leaf_bits;
		uint64_t k = next_page > base ? next_page - base : 0;
		for (; k < nleaf; k++) {
			uint64_t s = lv[k];
			if (!s)
				continue;
			uint64_t page = base + k;
			uint8_t raw[64];
			if (!plausible_ptr(s) || !hs_walk_read(t->ctx, s, raw, L->span_size)) {
				hs_walk_diagk(t->ctx, D_SPAN, HS_DIAG_WARNING, page << L->page_shift,
					      "page 0x%" PRIx64 " maps to an unreadable span 0x%" PRIx64, page, s);
				w->bad_spans++;
				continue;
			}
			struct tc_span sp = { .addr = s };
			uint32_t bits;
			memcpy(&sp.start, raw + L->span_start, 8);
			memcpy(&sp.length, raw + L->span_length, 8);
			memcpy(&sp.objects, raw + L->span_objects, 8);
			memcpy(&bits, raw + L->span_bits, 4);
			if (sp.start != page)
				continue;   // a stale entry (a span since merged or reused)
			sp.refcount = (bits >> L->refcount_shift) & ((1u << L->refcount_width) - 1);
			sp.cl = (bits >> L->sizeclass_shift) & ((1u << L->sizeclass_width) - 1);
			sp.location = (bits >> L->location_shift) & ((1u << L->location_width) - 1);
			sp.sample = (bits >> L->sample_shift) & 1;
			bool ok = sp.length >= 1 && sp.length <= max_pages && sp.location <= 2 &&
				  (sp.cl == 0 || (sp.cl < t->nclasses && sp.location == HS_TC_IN_USE &&
						  sp.length == t->class_pages[sp.cl]));
			if (!ok) {
				hs_walk_diagk(t->ctx, D_SPAN, HS_DIAG_ERROR, page << L->page_shift,
					      "span 0x%" PRIx64 " for page 0x%" PRIx64 " does not decode (length %" PRIu64
					      ", size class %u, location %u): its pages are skipped",
					      s, page, sp.length, sp.cl, sp.location);
				w->bad_spans++;
				continue;
			}
			if (sp.cl) {
				sp.nobj = (sp.length << L->page_shift) / t->class_size[sp.cl];
				sp.first_obj = w->nmarks;
				w->nmarks += sp.nobj;
			}
			if (w->nspans == w->capspans) {
				size_t cap = w->capspans ? 2 * w->capspans : 1024;
				struct tc_span *v = realloc(w->spans, cap * sizeof(*v));
				if (!v) {
					err = &hs_error_nomem;
					goto out;
				}
				w->spans = v;
				w->capspans = cap;
			}
			w->spans[w->nspans++] = sp;
			next_page = page + sp.length;
			if (next_page - base > nleaf)
				break;
			k = next_page - base - 1;
		}
	}
	w->marks = calloc(w->nmarks ? w->nmarks : 1, 1);
	if (!w->marks)
		err = &hs_error_nomem;
out:
	free(root);
	free(leaf);
	return err;
}

/* The span holding addr, or NULL. */
static struct tc_span *span_of(struct walk *w, uint64_t addr)
{
	uint64_t page = addr >> w->t->L->page_shift;
	size_t lo = 0, hi = w->nspans;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (w->spans[mid].start + w->spans[mid].length <= page)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < w->nspans && w->spans[lo].start <= page)
		return &w->spans[lo];
	return NULL;
}

static const char *mark_name(unsigned m)
{
	static const char *const names[] = { "used", "a thread cache", "a transfer cache", "a span's free list" };
	return m < 4 ? names[m] : "?";
}

/* Mark one free object found on a list of class cl: false when it is not an
 * object of such a span (the list is then not followed further). */
static bool mark(struct walk *w, uint64_t obj, unsigned cl, unsigned m, const char *list)
{
	struct tc_span *sp = span_of(w, obj);
	uint64_t base = sp ? sp->start << w->t->L->page_shift : 0;
	if (!sp || !sp->cl || (cl && sp->cl != cl) || (obj - base) % w->t->class_size[sp->cl] ||
	    (obj - base) / w->t->class_size[sp->cl] >= sp->nobj) {
		hs_walk_diagk(w->t->ctx, D_OBJECT, HS_DIAG_ERROR, obj,
			      "%s holds 0x%" PRIx64 ", not an object of a class-%u span: the rest of the list is not read",
			      list, obj, cl);
		return false;
	}
	uint8_t *mk = &w->marks[sp->first_obj + (obj - base) / w->t->class_size[sp->cl]];
	if (*mk != M_USED) {
		hs_walk_diagk(w->t->ctx, D_OBJECT, HS_DIAG_ERROR, obj,
			      "0x%" PRIx64 " is on %s and on %s (a double free or a corrupt list): the rest of the list is not read",
			      obj, mark_name(*mk), list);
		return false;
	}
	*mk = (uint8_t)m;
	return true;
}

/* Follow a singly linked free list of at most limit objects. */
static uint64_t follow(struct walk *w, uint64_t head, unsigned cl, unsigned m, uint64_t limit, const char *list,
		       bool *broken)
{
	struct hs_chain ch;
	hs_chain_init(&ch, limit);
	uint64_t n = 0;
	for (uint64_t p = head; p; n++) {
		enum hs_chain_step st = hs_chain_next(&ch, p);
		if (st != HS_CHAIN_OK) {
			hs_walk_diagk(w->t->ctx, D_LIST, HS_DIAG_ERROR, head,
				      "%s %s after %" PRIu64 " objects: the rest is not read", list,
				      st == HS_CHAIN_CYCLE ? "loops" : "is longer than it can be", n);
			*broken = true;
			break;
		}
		if (!mark(w, p, cl, m, list)) {
			*broken = true;
			break;
		}
		if (!rd64(w->t, p, &p)) {
			hs_walk_diagk(w->t->ctx, D_LIST, HS_DIAG_ERROR, head,
				      "%s: the link of 0x%" PRIx64 " could not be read", list, p);
			*broken = true;
			n++;
			break;
		}
	}
	return n;
}

static struct hs_error *add_list(struct walk *w, unsigned st, int tid, uint64_t owner, unsigned cl, uint64_t n,
				 int64_t declared, bool broken)
{
	if (!n && declared <= 0 && !broken)
		return NULL;
	struct hs_freelist l = {
		.where = w->t->ctx->state[st], .arena = HS_ARENA_NONE, .tid = tid, .owner = owner, .index = (int)cl,
		.chunk_size = w->t->class_size[cl], .count = n, .bytes = n * w->t->class_size[cl],
		.declared = declared, .broken = broken,
	};
	if (st == TC_CENTRAL || st == TC_TRANSFER)
		l.arena = 0;
	return hs_alloc_desc_add_list(w->desc, &l);
}

/* Span free lists (central), transfer cache slots. */
static struct hs_error *central_lists(struct walk *w)
{
	struct tc_state *t = w->t;
	const struct hs_tc_layout *L = t->L;
	uint64_t per_class[256] = { 0 };
	bool broken_cl[256] = { 0 };
	char what[96];
	for (size_t i = 0; i < w->nspans; i++) {
		struct tc_span *sp = &w->spans[i];
		if (!sp->cl || !sp->objects)
			continue;
		if ((i & 1023) == 0 && hs_walk_interrupted(t->ctx))
			return hs_error_create(HS_ERR_INTERRUPTED, "interrupted");
		snprintf(what, sizeof(what), "the free list of span 0x%" PRIx64, sp->addr);
		bool broken = false;
		uint64_t n = follow(w, sp->objects, sp->cl, M_CENTRAL, sp->nobj, what, &broken);
		per_class[sp->cl] += n;
		broken_cl[sp->cl] |= broken;
		// Span::refcount counts the objects handed out of the span.
		if (!broken && n + sp->refcount != sp->nobj)
			hs_walk_diagk(t->ctx, D_SPAN, HS_DIAG_WARNING, sp->start << L->page_shift,
				      "span 0x%" PRIx64 " (class %u) has %" PRIu64 " of its %" PRIu64
				      " objects on its free list, but a refcount of %u",
				      sp->addr, sp->cl, n, sp->nobj, sp->refcount);
	}
	for (unsigned cl = 1; cl < t->nclasses; cl++) {
		int64_t declared = -1;
		uint64_t c = t->central + cl * L->cfl_stride, v;
		if (t->central && rd64(t, c + L->cfl_counter, &v))
			declared = (int64_t)v;
		w->central_declared[cl] = declared < 0 ? 0 : (uint64_t)declared;
		if (declared >= 0 && (uint64_t)declared != per_class[cl] && !broken_cl[cl])
			hs_walk_diagk(t->ctx, D_LIST, HS_DIAG_WARNING, c,
				      "class %u: the spans' free lists hold %" PRIu64 " objects, the central list says %" PRId64,
				      cl, per_class[cl], declared);
		HS_CHECK(add_list(w, TC_CENTRAL, 0, c, cl, per_class[cl], declared, broken_cl[cl]));
	}
	if (!t->central)
		return NULL;
	for (unsigned cl = 1; cl < t->nclasses; cl++) {
		uint64_t c = t->central + cl * L->cfl_stride;
		uint32_t used;
		if (!rd32(t, c + L->cfl_used_slots, &used) || used > L->cfl_max_slots) {
			hs_walk_diagk(t->ctx, D_LIST, HS_DIAG_ERROR, c,
				      "class %u: the transfer cache's slot count does not decode: its objects count as used",
				      cl);
			continue;
		}
		uint64_t n = 0;
		bool broken = false;
		for (uint32_t s = 0; s < used; s++) {
			uint64_t head, tail;
			uint64_t slot = c + L->cfl_tc_slots + s * L->cfl_tc_slot_size;
			if (!rd64(t, slot, &head) || !rd64(t, slot + 8, &tail)) {
				broken = true;
				continue;
			}
			snprintf(what, sizeof(what), "transfer cache slot %u of class %u", s, cl);
			// A slot is a batch of num_objects_to_move objects, head to tail;
			// the tail's link is not cleared, so count, not NULL, ends it.
			struct hs_chain ch;
			hs_chain_init(&ch, (uint64_t)t->to_move[cl]);
			uint64_t p = head, k = 0;
			for (; p && k < (uint64_t)t->to_move[cl]; k++) {
				if (hs_chain_next(&ch, p) != HS_CHAIN_OK || !mark(w, p, cl, M_TRANSFER, what)) {
					broken = true;
					break;
				}
				if (p == tail) {
					k++;
					break;
				}
				if (!rd64(t, p, &p)) {
					broken = true;
					k++;
					break;
				}
			}
			n += k;
		}
		HS_CHECK(add_list(w, TC_TRANSFER, 0, c, cl, n, (int64_t)used * t->to_move[cl], broken));
	}
	return NULL;
}

static int tid_of(struct tc_state *t, uint64_t pthread_self)
{
	for (size_t i = 0; i < t->ctx->nthreads; i++)
		if (t->ctx->threads[i].regs[HS_REG_FS_BASE] == pthread_self)
			return t->ctx->threads[i].tid;
	return 0;
}

static struct hs_error *thread_caches(struct walk *w)
{
	struct tc_state *t = w->t;
	const struct hs_tc_layout *L = t->L;
	uint64_t head = 0;
	if (!t->thread_heaps || !rd64(t, t->thread_heaps, &head)) {
		hs_walk_diag(t->ctx, HS_DIAG_WARNING, t->thread_heaps,
			     "tcmalloc's thread cache list (ThreadCache::thread_heaps_) was not found: objects in thread caches count as used");
		return NULL;
	}
	struct hs_chain ch;
	hs_chain_init(&ch, MAX_THREAD_CACHES);
	char what[96];
	for (uint64_t tc = head; tc;) {
		if (hs_chain_next(&ch, tc) != HS_CHAIN_OK || !check_thread_cache(t, tc, false)) {
			hs_walk_diagk(t->ctx, D_LIST, HS_DIAG_ERROR, tc,
				      "the thread cache list reaches 0x%" PRIx64 ", not a thread cache: the rest is not read", tc);
			break;
		}
		uint64_t tidp = 0;
		rd64(t, tc + L->tc_tid, &tidp);
		int tid = tid_of(t, tidp);
		struct tc_cache cache = { tc, tidp, tid };
		if (w->ncaches == w->capcaches) {
			size_t cap = w->capcaches ? 2 * w->capcaches : 16;
			struct tc_cache *v = realloc(w->caches, cap * sizeof(*v));
			if (!v)
				return &hs_error_nomem;
			w->caches = v;
			w->capcaches = cap;
		}
		w->caches[w->ncaches++] = cache;
		uint8_t fl[256 * 32];
		if (!hs_walk_read(t->ctx, tc + L->tc_list, fl, (size_t)t->nclasses * L->tc_fl_size)) {
			hs_walk_diagk(t->ctx, D_LIST, HS_DIAG_ERROR, tc, "thread cache 0x%" PRIx64 " could not be read", tc);
			break;
		}
		for (unsigned cl = 1; cl < t->nclasses; cl++) {
			uint64_t lh;
			uint32_t len;
			memcpy(&lh, fl + cl * L->tc_fl_size + L->tc_fl_list, 8);
			memcpy(&len, fl + cl * L->tc_fl_size + L->tc_fl_length, 4);
			snprintf(what, sizeof(what), "class %u of the thread cache 0x%" PRIx64, cl, tc);
			bool broken = false;
			uint64_t n = follow(w, lh, cl, M_THREAD, (uint64_t)len + 1, what, &broken);
			if (n != len && !broken)
				hs_walk_diagk(t->ctx, D_LIST, HS_DIAG_WARNING, tc,
					      "%s holds %" PRIu64 " objects, its length says %u", what, n, len);
			HS_CHECK(add_list(w, TC_THREAD, tid, tc, cl, n, len, broken));
		}
		if (!rd64(t, tc + L->tc_next, &tc))
			break;
	}
	return NULL;
}

/* A sampled allocation (its own span, whatever its size) is as large as
 * malloc_usable_size() says of the size its StackTrace records. */
static uint64_t sampled_size(struct walk *w, const struct tc_span *sp)
{
	struct tc_state *t = w->t;
	uint64_t bytes = sp->length << t->L->page_shift, req, page = UINT64_C(1) << t->L->page_shift;
	if (!plausible_ptr(sp->objects) || !rd64(t, sp->objects, &req) || req > bytes ||
	    ((req ? req : 1) + page - 1) / page != sp->length) {
		hs_walk_diagk(t->ctx, D_SPAN, HS_DIAG_WARNING, sp->start << t->L->page_shift,
			      "sampled span 0x%" PRIx64 ": its stack trace 0x%" PRIx64
			      " does not give its size: the whole span is taken as the allocation",
			      sp->addr, sp->objects);
		return bytes;
	}
	uint64_t size = usable_size(t, req);
	w->sampled_n++;
	w->sampled_slack += bytes - size;
	return size;
}

static struct hs_error *emit(struct walk *w)
{
	struct tc_state *t = w->t;
	const struct hs_tc_layout *L = t->L;
	const unsigned arena = t->ctx->arena_base;
	static const unsigned mark_state[4] = { 0, TC_THREAD, TC_TRANSFER, TC_CENTRAL };
	struct hs_region reg = { 0 };
	for (size_t i = 0; i < w->nspans; i++) {
		struct tc_span *sp = &w->spans[i];
		uint64_t base = sp->start << L->page_shift, bytes = sp->length << L->page_shift;
		if ((i & 1023) == 0 && hs_walk_interrupted(t->ctx))
			return hs_error_create(HS_ERR_INTERRUPTED, "interrupted");
		if (reg.end != base) {
			if (reg.end)
				HS_CHECK(hs_alloc_desc_add_region(w->desc, &reg));
			reg = (struct hs_region){ base, base, HS_REGION_HEAP, 0 };
		}
		reg.end = base + bytes;
		if (sp->location != HS_TC_IN_USE) {
			unsigned st = sp->location == HS_TC_ON_NORMAL_FREELIST ? TC_PAGE_FREE : TC_PAGE_RETURNED;
			HS_CHECK(hs_heap_add(w->heap, base, bytes, t->ctx->state[st], arena));
			w->cnt[st]++;
			w->bytes[st] += bytes;
			continue;
		}
		if (!sp->cl) {
			uint64_t size = bytes;
			if (sp->sample)
				size = sampled_size(w, sp);
			HS_CHECK(hs_heap_add(w->heap, base, size, t->ctx->state[TC_LARGE], arena));
			w->large_n++;
			w->large_b += size;
			continue;
		}
		uint32_t size = t->class_size[sp->cl];
		const uint8_t *mk = w->marks + sp->first_obj;
		for (uint64_t k = 0; k < sp->nobj; k++) {
			unsigned m = mk[k];
			unsigned where = m ? t->ctx->state[mark_state[m]] : HS_WHERE_USED;
			HS_CHECK(hs_heap_add(w->heap, base + k * size, size, where, arena));
			if (m) {
				w->cnt[mark_state[m]]++;
				w->bytes[mark_state[m]] += size;
			} else {
				w->used_n++;
				w->used_b += size;
			}
		}
		w->tail_b += bytes - sp->nobj * size;
	}
	if (reg.end)
		HS_CHECK(hs_alloc_desc_add_region(w->desc, &reg));
	return NULL;
}

static struct hs_error *describe(struct walk *w)
{
	struct tc_state *t = w->t;
	const struct hs_tc_layout *L = t->L;
	struct hs_alloc_desc *d = w->desc;
	struct hs_arena a = { .address = t->pageheap, .nthreads = (int)w->ncaches };
	snprintf(a.label, sizeof(a.label), "tcmalloc pageheap");
	uint64_t sys = 0, fr = 0, unm = 0;
	rd64(t, t->pageheap + L->ph_stats + L->st_system_bytes, &sys);
	rd64(t, t->pageheap + L->ph_stats + L->st_free_bytes, &fr);
	rd64(t, t->pageheap + L->ph_stats + L->st_unmapped_bytes, &unm);
	a.system_mem = sys;
	a.used_count = w->used_n + w->large_n;
	a.used_bytes = w->used_b + w->large_b;
	for (unsigned k = 0; k < TC_NSTATES; k++) {
		a.free_count += w->cnt[k];
		a.free_bytes += w->bytes[k];
	}
	hs_arena_fact_set(&a, "free_bytes", fr);
	hs_arena_fact_set(&a, "unmapped_bytes", unm);
	hs_arena_fact_set(&a, "span_tail_bytes", w->tail_b);
	HS_CHECK(hs_alloc_desc_add_arena(d, &a));
	snprintf(d->version, sizeof(d->version), "%s", t->version);
	snprintf(d->layout_source, sizeof(d->layout_source), "built-in gperftools %s; roots by %s", L->version,
		 t->how);
	hs_alloc_desc_fact(d, "Static::pageheap_", t->pageheap);
	hs_alloc_desc_fact(d, "Static::sizemap_", t->sizemap);
	if (t->central)
		hs_alloc_desc_fact(d, "Static::central_cache_", t->central);
	if (t->thread_heaps)
		hs_alloc_desc_fact(d, "ThreadCache::thread_heaps_", t->thread_heaps);
	hs_alloc_desc_fact(d, "kPageShift", L->page_shift);
	hs_alloc_desc_fact(d, "size classes", t->nclasses);
	hs_alloc_desc_fact(d, "spans", w->nspans);
	hs_alloc_desc_fact(d, "thread caches", w->ncaches);
	hs_alloc_desc_fact(d, "system_bytes", sys);
	hs_alloc_desc_fact(d, "pageheap_free_bytes", fr);
	hs_alloc_desc_fact(d, "pageheap_unmapped_bytes", unm);
	hs_alloc_desc_fact(d, "allocated_bytes", w->used_b + w->large_b + w->sampled_slack);
	hs_alloc_desc_fact(d, "thread_cache_bytes", w->bytes[TC_THREAD]);
	hs_alloc_desc_fact(d, "transfer_cache_bytes", w->bytes[TC_TRANSFER]);
	// tcmalloc's own central_cache_free_bytes counts the unusable tail of
	// every small span with the central lists' objects.
	hs_alloc_desc_fact(d, "central_cache_bytes", w->bytes[TC_CENTRAL] + w->tail_b);
	hs_alloc_desc_fact(d, "span_tail_bytes", w->tail_b);
	// tcmalloc's allocated bytes count a sampled allocation's whole span.
	hs_alloc_desc_fact(d, "sampled allocations", w->sampled_n);
	hs_alloc_desc_fact(d, "sampled_slack_bytes", w->sampled_slack);
	if (w->bad_spans)
		hs_alloc_desc_fact(d, "bad spans", w->bad_spans);
	return NULL;
}

static struct hs_error *tc_walk(struct hs_walk_ctx *ctx, void *state, struct hs_heap *heap,
				struct hs_alloc_desc *desc)
{
	struct tc_state *t = state;
	t->ctx = ctx;
	t->mem = ctx->mem;
	struct walk *w = calloc(1, sizeof(*w));
	if (!w)
		return &hs_error_nomem;
	*w = (struct walk){ .t = t, .heap = heap, .desc = desc };
	struct hs_error *err = collect_spans(w);
	if (!err)
		err = central_lists(w);
	if (!err)
		err = thread_caches(w);
	if (!err)
		err = emit(w);
	if (!err)
		err = describe(w);
	hs_walk_diag_flush(ctx);
	free(w->spans);
	free(w->marks);
	free(w->caches);
	free(w);
	return err;
}

static const char *const tcmalloc_overrides[] = { "sizemap", "pageheap", "central_cache", "thread_heaps", NULL };

const struct hs_walker hs_tcmalloc_walker = {
	.name = "tcmalloc",
	.title = "gperftools tcmalloc",
	.states = tc_states,
	.nstates = TC_NSTATES,
	.detect = tc_detect,
	.walk = tc_walk,
	.destroy = state_destroy,
	.overrides = tcmalloc_overrides,
};
