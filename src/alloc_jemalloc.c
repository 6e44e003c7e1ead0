/* alloc_jemalloc.c - the jemalloc 5.2.1 / 5.3.0 walker: find the extent map,
 * walk every extent it indexes, and say what each byte of the heap is.
 *
 * jemalloc's one complete index is the extent map (5.3: je_arena_emap_global,
 * 5.2: je_extents_rtree), an rtree from page to edata_t / extent_t (arena and
 * bin lists are incomplete for automatic arenas).  So the walk is:
 *   build    the candidate layouts (jemalloc_layout.h) from the version string
 *            and the TLS size: 5.3.0 has two rtree shapes (LG_VADDR 48 or 57,
 *            fixed by the build machine), told apart by which one decodes;
 *   locate   the emap: an override, the symbol, else three symbol-less ways
 *            (RIP-relative leas in exported functions, TLS -> rtree_ctx ->
 *            leaf -> (node ->) root, a scan of the module's writable memory),
 *            each accepted only when the rtree it implies decodes consistently
 *            (emap_check, elm_disagrees: stale elements of freed extents pass);
 *   collect  every extent from the rtree leaves (one edata_t read each);
 *   tcaches  every thread cache, from the arenas' tcache rings and from each
 *            thread's TLS (tsd_t): the objects they hold are free;
 *   emit     slab regions (the bitmap says free), large allocations at their
 *            user pointer, cached objects, inactive extents, and jemalloc's own
 *            memory (base blocks, tcache stacks) as metadata.
 * Layout facts come from jemalloc_layout.h only.  Every loop is bounded and
 * every read checked; what does not decode is reported and skipped.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "jemalloc_layout.h"
#include "walker.h"

#define STAGE "jemalloc"
#define USER_MAX (UINT64_C(1) << 47)        /* x86-64 user space */
#define MAX_LEAVES 4096                     /* 4 TiB of address space */
#define MAX_RING 65536                      /* tcaches on one arena's ring */
#define MAX_BASE_BLOCKS 4096
#define MAX_DIAGS_PER_KIND 20

/* --- size classes ---------------------------------------------------- */

struct hs_error *hs_je_sizes_compute(unsigned lg_quantum, unsigned lg_page, struct hs_je_sizes *ret)
{
	if (lg_quantum < 3 || lg_quantum > 8 || lg_page < 12 || lg_page > 16)
		return hs_error_create(HS_ERR_OTHER, "no size classes for LG_QUANTUM %u, LG_PAGE %u",
				       lg_quantum, lg_page);
	memset(ret, 0, sizeof(*ret));
	ret->lg_quantum = lg_quantum;
	ret->lg_page = lg_page;
	unsigned n = 0;
	// Tiny classes 8 .. quantum/2, then quantum multiples up to 4 quanta,
	// then four classes per doubling up to (but not including) 2^63.
	for (unsigned lg = 3; lg < lg_quantum; lg++)
		ret->index2size[n++] = UINT64_C(1) << lg;
	for (unsigned nd = 1; nd <= 4; nd++)
		ret->index2size[n++] = (uint64_t)nd << lg_quantum;
	for (unsigned lg_base = lg_quantum + 2; lg_base <= 62; lg_base++) {
		for (unsigned nd = 1; nd <= 4; nd++) {
			if (lg_base == 62 && nd == 4)
				break;
			if (n == HS_JE_MAX_SIZES)
				return hs_error_create(HS_ERR_OTHER, "too many size classes");
			ret->index2size[n++] = (UINT64_C(1) << lg_base) + ((uint64_t)nd << (lg_base - 2));
		}
	}
	ret->nsizes = n;
	// Small (slab) classes are those below 4 pages.  A slab is the smallest
	// whole number of pages that the region size divides.
	uint64_t page = UINT64_C(1) << lg_page;
	for (unsigned i = 0; i < n && ret->index2size[i] < (page << 2); i++) {
		if (i == HS_JE_MAX_BINS)
			return hs_error_create(HS_ERR_OTHER, "too many bins");
		uint64_t reg = ret->index2size[i], slab = page;
		while (slab % reg)
			slab += page;
		ret->bins[i] = (struct hs_je_bin_info){ reg, slab, (uint32_t)(slab / reg) };
		ret->nbins = i + 1;
	}
	return NULL;
}

size_t hs_je_bin_infos_image(const struct hs_je_sizes *sz, uint8_t *buf)
{
	for (unsigned i = 0; i < sz->nbins; i++) {
		const struct hs_je_bin_info *b = &sz->bins[i];
		uint64_t w[5] = { b->reg_size, b->slab_size, (uint64_t)b->nregs | (UINT64_C(1) << 32),
				  b->nregs, (b->nregs + 63) / 64 };
		memcpy(buf + 40 * i, w, 40);
	}
	return 40 * (size_t)sz->nbins;
}

/* --- the walker's state ------------------------------------------------ */

struct je_arena {
	unsigned ind;
	uint64_t address;      /* arena_t, 0 when only known from extents */
	uint64_t base;         /* base_t */
	unsigned local;        /* index in desc->arenas */
	struct hs_arena out;
};

struct je_tcache {
	uint64_t address;      /* tcache_t */
	uint64_t slow;         /* tcache_slow_t */
	int tid;               /* owning thread when found through TLS, else 0 */
	bool in_ring, in_tls;
};

/* One rtree leaf element (decoded), kept when its edata differs from the
 * previous one. */
struct je_elm {
	uint64_t edata, key;
	uint16_t szind;
	uint8_t state;
	bool slab;
};

struct je_extent {
	uint64_t edata, base, size, addr;
	unsigned arena, state, szind, nfree;
	bool slab;
	uint64_t bitmap[8];
};

/* An object cached in a tcache. */
struct je_cached {
	uint64_t ptr;
	uint32_t tcache;       /* index in tcaches */
	uint16_t bin;
	bool matched;
};

struct je_state {
	struct hs_walk_ctx *ctx;
	struct hs_memory *mem;
	const struct hs_je_layout *L;
	struct hs_module *mod;
	struct hs_module nt_module;   /* mod when libdwfl did not report it (NT_FILE) */
	bool mod_from_notes;
	struct hs_elf_file *file;     /* the module's ELF file (NULL: not found) */
	char module_name[64];
	char version[64];
	const char *emap_sym_name;   /* the emap's symbol, when found by name */
	const struct hs_je_layout *cands[HS_JE_NLAYOUTS];   /* layouts the build may have */
	size_t ncands;
	uint64_t emap;
	char how[48];          /* how the emap was found */
	struct hs_je_sizes sizes;
	char sizes_how[48];
	bool have_tpoff;
	int64_t tpoff;         /* tsd = fs_base + tpoff */
	const struct hs_je_layout *tpoff_for;   /* the layout tpoff was looked for with */
	uint64_t arenas_array; /* &je_arenas, 0 unknown */
	struct je_arena *arenas;
	size_t narenas;
	uint16_t local_of[4096];  /* arena ind -> index in arenas[] + 1, 0 none */
	struct je_tcache *tcaches;
	size_t ntcaches;
};

enum { D_ELM, D_EDATA, D_SLAB, D_TCACHE, D_LARGE, D_OVERLAP, D_RING, D_OTHER };

static const char *const je_diag_what[] = {
	"about rtree elements", "about edata_t records", "about slabs", "about tcache entries",
	"about large extents", "about overlapping extents", "about tcache rings", "about other findings",
};

#define diag(j, kind, ...) hs_walk_diagk((j)->ctx, (kind), __VA_ARGS__)

/* The walker's own block states (ctx->state[] gives their ids). */
enum je_state_id { JE_LARGE, JE_TCACHE, JE_SLAB, JE_EXTENT, JE_NSTATES };
static const struct hs_state_def je_states[JE_NSTATES] = {
	[JE_LARGE] = { "large", HS_STATE_USED, "a live large allocation (its own extent)" },
	[JE_TCACHE] = { "tcache", HS_STATE_FREE, "cached in a thread's tcache bin" },
	[JE_SLAB] = { "slab", HS_STATE_FREE, "a free region of a slab" },
	[JE_EXTENT] = { "extent", HS_STATE_FREE, "inactive pages (dirty, muzzy or retained extents)" },
};
#define WST(k) (w->j->ctx->state[k])

/* --- checked reads ------------------------------------------------------ */

static bool rd64(struct je_state *j, uint64_t addr, uint64_t *v)
{
	struct hs_error *err = hs_memory_read_u64(j->mem, addr, v);
	if (err) {
		hs_error_destroy(err);
		return false;
	}
	return true;
}

static bool rd32(struct je_state *j, uint64_t addr, uint32_t *v)
{
	struct hs_error *err = hs_memory_read_u32(j->mem, addr, v);
	if (err) {
		hs_error_destroy(err);
		return false;
	}
	return true;
}

/* len bytes at addr: zero-copy when they lie in one dumped segment, else a copy
 * in *owned (freed by the caller). */
static struct hs_error *bytes_at(struct je_state *j, uint64_t addr, size_t len, const uint8_t **ret,
				 uint8_t **owned)
{
	*owned = NULL;
	*ret = hs_memory_span(j->mem, addr, len);
	if (*ret)
		return NULL;
	uint8_t *buf = malloc(len);
	if (!buf)
		return &hs_error_nomem;
	struct hs_error *err = hs_memory_read(j->mem, addr, buf, len);
	if (err) {
		free(buf);
		return err;
	}
	*owned = buf;
	*ret = buf;
	return NULL;
}

static uint64_t word_at(const uint8_t *p, size_t off)
{
	uint64_t v;
	memcpy(&v, p + off, 8);
	return v;
}

static bool plausible_ptr(uint64_t p, uint64_t align)
{
	return p >= 4096 && p < USER_MAX && (p & (align - 1)) == 0;
}

/* The read-only data to search for strings: .rodata, or the whole file. */
static const uint8_t *file_rodata(const struct hs_elf_file *f, uint64_t *len)
{
	const uint8_t *p = hs_elf_section(f, ".rodata", len);
	return p ? p : hs_elf_image(f, len);
}

static bool is_hex(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* jemalloc's version string "X.Y.Z-N-g<40 hex>" (JEMALLOC_VERSION), NUL-ended. */
static bool find_version(const uint8_t *p, uint64_t len, char *buf, size_t cap)
{
	for (uint64_t i = 0; i + 43 <= len; i++) {
		if (p[i] != '-' || p[i + 1] != 'g')
			continue;
		uint64_t k = i + 2;
		while (k < len && k - (i + 2) < 40 && is_hex(p[k]))
			k++;
		if (k - (i + 2) != 40 || k >= len || p[k] != 0)
			continue;
		// Back up over "X.Y.Z-N": digits, dots and one dash.
		uint64_t b = i;
		int dots = 0, dashes = 0;
		while (b > 0 && ((p[b - 1] >= '0' && p[b - 1] <= '9') || p[b - 1] == '.' || p[b - 1] == '-') &&
		       i - b < 24) {
			dots += p[b - 1] == '.';
			dashes += p[b - 1] == '-';
			b--;
		}
		if (dots != 2 || dashes != 1 || (b > 0 && p[b - 1] != 0) || p[b] < '0' || p[b] > '9')
			continue;
		size_t n = (size_t)(k - b);
		if (n >= cap)
			n = cap - 1;
		memcpy(buf, p + b, n);
		buf[n] = 0;
		return true;
	}
	return false;
}

static bool contains(const uint8_t *p, uint64_t len, const char *needle)
{
	return memmem(p, len, needle, strlen(needle)) != NULL;
}

/* --- writable memory of the module ------------------------------------- */

struct range { uint64_t lo, hi; };

/* The module's writable segments, from its program headers (relocated), or
 * from the core's writable segments within the module's load range. */
static size_t module_rw(struct je_state *j, struct range *out, size_t cap)
{
	size_t n = 0;
	if (j->file) {
		GElf_Phdr ph;
		uint64_t bias = hs_elf_bias(j->file);
		for (size_t i = 0; i < hs_elf_nphdrs(j->file) && n < cap; i++)
			if (hs_elf_phdr(j->file, i, &ph) && ph.p_type == PT_LOAD && (ph.p_flags & PF_W))
				out[n++] = (struct range){ ph.p_vaddr + bias, ph.p_vaddr + ph.p_memsz + bias };
		if (n)
			return n;
	}
	if (!j->mod)
		return 0;
	for (size_t i = 0; i < j->mem->nsegs && n < cap; i++) {
		const struct hs_segment *sg = &j->mem->segs[i];
		if ((sg->flags & HS_SEG_W) && sg->start < j->mod->end && sg->end > j->mod->start)
			out[n++] = (struct range){ sg->start, sg->end };
	}
	return n;
}

/* Call fn on every dumped, 8-aligned word of [lo, hi); stop when it returns
 * true (and return true). */
static bool scan_words(struct je_state *j, uint64_t lo, uint64_t hi,
		       bool (*fn)(struct je_state *, uint64_t addr, uint64_t value, void *), void *arg)
{
	lo = (lo + 7) & ~UINT64_C(7);
	for (size_t i = 0; i < j->mem->nsegs; i++) {
		const struct hs_segment *sg = &j->mem->segs[i];
		uint64_t a = sg->start > lo ? sg->start : lo;
		uint64_t e = sg->start + sg->filesz < hi ? sg->start + sg->filesz : hi;
		a = (a + 7) & ~UINT64_C(7);
		if (a >= e)
			continue;
		const uint8_t *p = hs_memory_span(j->mem, a, (size_t)(e - a));
		if (!p)
			continue;
		for (uint64_t off = 0; off + 8 <= e - a; off += 8) {
			uint64_t v = word_at(p, off);
			if (v && fn(j, a + off, v, arg))
				return true;
		}
	}
	return false;
}

/* --- the rtree ------------------------------------------------------------ */

/* A leaf of the rtree and the key (page address) of its first element. */
struct leaf_ref { uint64_t leaf, prefix; };

/* The leaves of the rtree at emap (2 or 3 levels), at most max, in key order.
 * Root and node slots that hold no plausible pointer, and nodes that cannot be
 * read, are counted in *bad (and reported when report is set). */
static struct hs_error *rtree_leaves(struct je_state *j, uint64_t emap, struct leaf_ref *out, size_t max,
				     size_t *n_ret, unsigned *bad, bool report)
{
	const struct hs_je_layout *L = j->L;
	size_t nroot = (size_t)1 << L->root_bits, nnode = (size_t)1 << L->node_bits, n = 0;
	unsigned node_span = L->node_bits + L->leaf_bits + L->lg_page;
	const uint8_t *root;
	uint8_t *owned;
	*n_ret = 0;
	HS_CHECK(bytes_at(j, emap + L->emap_root, nroot * 8, &root, &owned));
	for (size_t i0 = 0; i0 < nroot && n < max; i0++) {
		uint64_t child = word_at(root, i0 * 8);
		if (!child)
			continue;
		if (!plausible_ptr(child, L->cacheline)) {
			(*bad)++;
			if (report)
				diag(j, D_ELM, HS_DIAG_ERROR, emap + L->emap_root + 8 * i0,
				     "rtree root slot %zu holds 0x%" PRIx64 ", not a %s; its %s of address space is skipped",
				     i0, child, L->height == 2 ? "leaf" : "node", L->height == 2 ? "1 GiB" : "4 TiB");
			continue;
		}
		if (L->height == 2) {
			out[n++] = (struct leaf_ref){ child, (uint64_t)i0 << node_span };
			continue;
		}
		const uint8_t *node;
		uint8_t *node_owned;
		struct hs_error *err = bytes_at(j, child, nnode * 8, &node, &node_owned);
		if (err) {
			(*bad)++;
			if (report)
				diag(j, D_ELM, HS_DIAG_ERROR, child,
				     "rtree node 0x%" PRIx64 " (root slot %zu) cannot be read (%s); its extents are missing",
				     child, i0, hs_error_message(err));
			hs_error_destroy(err);
			continue;
		}
		for (size_t i1 = 0; i1 < nnode && n < max; i1++) {
			uint64_t leaf = word_at(node, i1 * 8);
			if (!leaf)
				continue;
			if (!plausible_ptr(leaf, L->cacheline)) {
				(*bad)++;
				if (report)
					diag(j, D_ELM, HS_DIAG_ERROR, child + 8 * i1,
					     "rtree node slot %zu.%zu holds 0x%" PRIx64 ", not a leaf; skipped", i0, i1, leaf);
				continue;
			}
			out[n++] = (struct leaf_ref){ leaf, ((uint64_t)i0 << node_span) |
							    ((uint64_t)i1 << hs_je_leaf_span_bits(L)) };
		}
		free(node_owned);
	}
	if (n == max && report)
		diag(j, D_ELM, HS_DIAG_WARNING, emap,
		     "the rtree has more than %zu leaves; only the first %zu are walked", max, max);
	free(owned);
	*n_ret = n;
	return NULL;
}

/* Why leaf element e (for page key) disagrees with the edata_t it names, or
 * NULL.  Only what jemalloc keeps in step is compared, so that every state a
 * healthy heap can be in passes:
 *   - the page lies in the extent, and the states agree (5.3's leaves carry
 *     the state; every boundary element is updated with it);
 *   - an active slab: every element has the slab bit and the slab's class;
 *   - an active large extent: its head element (the page of e_addr) has the
 *     extent's class and no slab bit.  Its last page may keep a stale slab
 *     bit and class: emap_remap() writes only the head of a large extent;
 *   - an inactive extent: the slab bit and class of its elements are stale
 *     when it was a slab (freeing a slab rewrites only the state), and the
 *     edata_t's own slab bit too: neither is compared. */
static const char *elm_disagrees(const struct hs_je_layout *L, uint64_t key, const struct hs_je_leaf_elm *e,
				 uint64_t base, uint64_t size, const struct hs_je_ebits *eb)
{
	if (key < base || key - base >= size)
		return "the page is outside the extent";
	if (hs_je_leaf_has_state(L) && e->state != eb->state)
		return "the states differ";
	if (eb->state != HS_JE_ACTIVE)
		return NULL;
	if (eb->slab) {
		if (eb->szind >= L->nbins)
			return "a slab of no small size class";
		if (!e->slab || e->szind != eb->szind)
			return "a slab page without the slab's bit or class";
	} else if (key == base && (e->slab || e->szind != eb->szind)) {
		return "the head of a large extent without its class";
	}
	return NULL;
}

/* Does leaf element e (page key) decode to an edata_t that agrees with it? */
static bool elm_consistent(struct je_state *j, uint64_t key, const struct hs_je_leaf_elm *e)
{
	const struct hs_je_layout *L = j->L;
	if (!plausible_ptr(e->edata, 8))
		return false;
	uint8_t ed[32];
	struct hs_error *err = hs_memory_read(j->mem, e->edata, ed, L->edata_size_esn + 8);
	if (err) {
		hs_error_destroy(err);
		return false;
	}
	struct hs_je_ebits eb;
	hs_je_ebits_decode(L, word_at(ed, L->edata_bits), &eb);
	uint64_t page_mask = (UINT64_C(1) << L->lg_page) - 1;
	uint64_t base = word_at(ed, L->edata_addr) & ~page_mask;
	uint64_t size = word_at(ed, L->edata_size_esn) & ~page_mask;
	if (!size || size >= USER_MAX || base >= USER_MAX || eb.state > HS_JE_MERGING || eb.arena >= L->arenas_max)
		return false;
	return elm_disagrees(L, key, e, base, size, &eb) == NULL;
}

struct emap_score { unsigned good, bad, leaves; };

/* Check the rtree an emap candidate implies: its leaves must hold elements
 * that decode consistently.  Reads at most 4 leaves x 32 elements. */
static bool emap_check(struct je_state *j, uint64_t emap, struct emap_score *sc)
{
	const struct hs_je_layout *L = j->L;
	memset(sc, 0, sizeof(*sc));
	uint64_t b0;
	if (!plausible_ptr(emap, 8) || !rd64(j, emap, &b0) || (L->emap_has_base && !plausible_ptr(b0, 8)))
		return false;
	struct leaf_ref leaves[4];
	size_t nleaves;
	unsigned bad_slots = 0;
	struct hs_error *err = rtree_leaves(j, emap, leaves, 4, &nleaves, &bad_slots, false);
	if (err) {
		hs_error_destroy(err);
		return false;
	}
	sc->bad = bad_slots;
	size_t nleaf = (size_t)1 << L->leaf_bits;
	for (size_t k = 0; k < nleaves; k++) {
		sc->leaves++;
		const uint8_t *lp = hs_memory_span(j->mem, leaves[k].leaf, hs_je_leaf_bytes(L));
		if (!lp) {
			sc->bad++;
			continue;
		}
		unsigned tried = 0;
		for (size_t i1 = 0; i1 < nleaf && tried < 32; i1++) {
			struct hs_je_leaf_elm e;
			hs_je_leaf_elm_at(L, lp, i1, &e);
			if (!e.edata)
				continue;
			tried++;
			if (elm_consistent(j, leaves[k].prefix | ((uint64_t)i1 << L->lg_page), &e))
				sc->good++;
			else
				sc->bad++;
		}
	}
	return sc->good >= 2 && sc->bad * 8 <= sc->good;
}

/* --- locators ------------------------------------------------------------ */

static bool try_emap(struct je_state *j, uint64_t emap, const char *how)
{
	struct emap_score sc;
	if (!emap_check(j, emap, &sc))
		return false;
	j->emap = emap;
	snprintf(j->how, sizeof(j->how), "%s", how);
	return true;
}

/* Is the rtree root of emap all zero (jemalloc linked in, never used)? */
static bool root_is_empty(struct je_state *j, uint64_t emap, uint64_t *first_ret)
{
	const struct hs_je_layout *L = j->L;
	size_t nroot = (size_t)1 << L->root_bits;
	const uint8_t *root = hs_memory_span(j->mem, emap + L->emap_root, nroot * 8);
	*first_ret = 0;
	if (!root)
		return false;
	for (size_t i = 0; i < nroot; i++)
		if ((*first_ret = word_at(root, i * 8)))
			return false;
	return true;
}

/* An address the user or a symbol gives is taken when more of the rtree
 * decodes than not: a partly corrupt rtree still gives what decodes (each
 * extent is checked again on its own). */
static bool accept_given(struct je_state *j, uint64_t emap, const char *how)
{
	if (try_emap(j, emap, how))
		return true;
	struct emap_score sc;
	emap_check(j, emap, &sc);
	if (!sc.good || sc.good <= sc.bad)
		return false;
	hs_walk_diag(j->ctx, HS_DIAG_WARNING, emap,
		    "je_arena_emap_global: %u of %u rtree elements sampled do not decode; the heap may be corrupt",
		    sc.bad, sc.good + sc.bad);
	j->emap = emap;
	snprintf(j->how, sizeof(j->how), "%s", how);
	return true;
}

/* The module's writable memory is large enough to hold this layout's emap
 * (a 2-level rtree's root is 2 MiB of .bss; a 3-level one's 256 KiB). */
static bool rw_fits_emap(struct je_state *j, const struct range *rw, size_t nrw, uint64_t emap)
{
	for (size_t r = 0; r < nrw; r++)
		if (emap >= rw[r].lo && emap < rw[r].hi && rw[r].hi - emap >= j->L->emap_size)
			return true;
	return false;
}

/* A. The exported functions that look a pointer up (malloc_usable_size,
 * sallocx, free, ...) take the address of the extent map with a RIP-relative
 * lea into some register.  Every such lea (REX.W 8d /r, mod 00, r/m 101) whose
 * target lies in the module's writable memory is a candidate, the most
 * frequent first; each must lead to an rtree that decodes.  Nothing depends
 * on which register, which instruction order, or which call follows. */
static bool locate_by_disassembly(struct je_state *j)
{
	static const char *const funcs[] = {
		"malloc_usable_size", "sallocx", "xallocx", "sdallocx", "free", "realloc", "rallocx",
		"dallocx", "aligned_alloc", "valloc", "memalign", "posix_memalign",
		"je_malloc_usable_size", "je_sallocx", "je_free", "_rjem_malloc_usable_size", "_rjem_sallocx",
	};
	if (!j->file)
		return false;
	struct range rw[8];
	size_t nrw = module_rw(j, rw, 8);
	struct { uint64_t target; unsigned count; } cand[256];
	size_t ncand = 0;
	for (size_t f = 0; f < sizeof(funcs) / sizeof(funcs[0]); f++) {
		GElf_Sym sym;
		if (!hs_elf_symbol(j->file, funcs[f], &sym) || GELF_ST_TYPE(sym.st_info) != STT_FUNC ||
		    !sym.st_size || sym.st_size > (1u << 20))
			continue;
		const uint8_t *code = hs_elf_at(j->file, sym.st_value, sym.st_size);
		for (uint64_t i = 0; code && i + 7 <= sym.st_size; i++) {
			if ((code[i] != 0x48 && code[i] != 0x4c) || code[i + 1] != 0x8d || (code[i + 2] & 0xc7) != 0x05)
				continue;
			int32_t disp;
			memcpy(&disp, code + i + 3, 4);
			uint64_t target = sym.st_value + i + 7 + (int64_t)disp + hs_elf_bias(j->file);
			if (!rw_fits_emap(j, rw, nrw, target))
				continue;
			size_t c = 0;
			while (c < ncand && cand[c].target != target)
				c++;
			if (c == ncand && ncand < 256)
				cand[ncand++].target = target, cand[c].count = 0;
			if (c < ncand)
				cand[c].count++;
		}
	}
	// The most frequent target first.
	for (size_t round = 0; round < ncand; round++) {
		size_t best = 0;
		for (size_t c = 1; c < ncand; c++)
			if (cand[c].count > cand[best].count)
				best = c;
		if (!cand[best].count)
			break;
		if (try_emap(j, cand[best].target, "disassembly"))
			return true;
		cand[best].count = 0;
	}
	return false;
}

/* Is tsd a live tsd_t?  5.3: its embedded tcache and tcache_slow point at
 * each other.  5.2: its embedded tcache_t's cache_bin_array_descriptor points
 * at that tcache's bins_small and bins_large. */
static bool tsd_valid(struct je_state *j, uint64_t tsd)
{
	const struct hs_je_layout *L = j->L;
	uint64_t a, b;
	if (L->desc_in_tcache) {
		uint64_t tc = tsd + L->tsd_tcache;
		return rd64(j, tc + L->desc_bins, &a) && a == tc + L->tcache_bins &&
		       rd64(j, tc + L->desc_bins + 8, &b) && b == tc + L->tcache_bins_large;
	}
	return rd64(j, tsd + L->tsd_tcache, &a) && a == tsd + L->tsd_tcache_slow &&
	       rd64(j, tsd + L->tsd_tcache_slow + L->tcache_slow_tcache, &b) && b == tsd + L->tsd_tcache;
}

static unsigned tpoff_votes(struct je_state *j, int64_t tpoff)
{
	unsigned n = 0;
	const struct hs_notes *nt = j->ctx->notes;
	for (size_t t = 0; t < nt->nthreads; t++) {
		uint64_t fs = nt->threads[t].regs[HS_REG_FS_BASE];
		if (fs && tsd_valid(j, fs + (uint64_t)tpoff))
			n++;
	}
	return n;
}

/* The TP offset of je_tsd_tls (tsd = fs_base + tpoff).  A shared object with
 * initial-exec TLS: the value ld.so stored in its R_X86_64_TPOFF64 GOT slot.
 * An executable: its TLS block ends at the thread pointer, and tsd_t is at
 * je_tsd_tls's offset in it (or the block is tsd_t alone, or found by trying). */
/* A TPOFF64 GOT slot: the value ld.so stored, if threads agree on it. */
static bool tpoff_slot(void *arg, const GElf_Rela *r)
{
	struct je_state *j = arg;
	uint64_t v;
	if (!rd64(j, r->r_offset + hs_elf_bias(j->file), &v) || !tpoff_votes(j, (int64_t)v))
		return false;
	j->tpoff = (int64_t)v;
	j->have_tpoff = true;
	return true;
}

static void find_tpoff(struct je_state *j)
{
	if (!j->file)
		return;
	bool is_main = j->mod && j->mod->is_main;
	if (!is_main) {
		hs_elf_each_rela(j->file, R_X86_64_TPOFF64, tpoff_slot, j);
		return;
	}
	GElf_Phdr tls = { 0 };
	if (!hs_elf_phdr_of_type(j->file, PT_TLS, &tls) || !tls.p_memsz)
		return;
	uint64_t align = tls.p_align ? tls.p_align : 1;
	int64_t block = -(int64_t)((tls.p_memsz + align - 1) / align * align);
	GElf_Sym sym;
	if (hs_elf_symbol(j->file, "je_tsd_tls", &sym) && GELF_ST_TYPE(sym.st_info) == STT_TLS) {
		if (tpoff_votes(j, block + (int64_t)sym.st_value)) {
			j->tpoff = block + (int64_t)sym.st_value;
			j->have_tpoff = true;
		}
		return;
	}
	// No symbol: try every 8-aligned place for tsd_t in the block.
	for (uint64_t off = 0; off + j->L->tsd_size <= tls.p_memsz && off < (1u << 20); off += 8) {
		if (tpoff_votes(j, block + (int64_t)off)) {
			j->tpoff = block + (int64_t)off;
			j->have_tpoff = true;
			return;
		}
	}
}

struct find_value { uint64_t value, found_at; };

static bool word_equals(struct je_state *j, uint64_t addr, uint64_t v, void *arg)
{
	(void)j;
	struct find_value *f = arg;
	if (v != f->value)
		return false;
	f->found_at = addr;
	return true;
}

/* The word equal to value in the module's writable memory. */
static bool find_word(struct je_state *j, const struct range *rw, size_t nrw, uint64_t value, uint64_t *at)
{
	struct find_value f = { value, 0 };
	for (size_t r = 0; r < nrw; r++)
		if (scan_words(j, rw[r].lo, rw[r].hi, word_equals, &f)) {
			*at = f.found_at;
			return true;
		}
	return false;
}

struct node_slot {
	const struct range *rw;
	size_t nrw;
	uint64_t leafkey, leaf;
};

/* The word at addr holds the leaf: if it is the leaf's slot in a node, the
 * node's address is in the root, in the module's writable memory. */
static bool node_slot_try(struct je_state *j, uint64_t addr, uint64_t v, void *arg)
{
	struct node_slot *ns = arg;
	const struct hs_je_layout *L = j->L;
	if (v != ns->leaf)
		return false;
	uint64_t node = addr - 8 * hs_je_rtree_node_index(L, ns->leafkey), slot;
	if (!plausible_ptr(node, L->cacheline) || !find_word(j, ns->rw, ns->nrw, node, &slot))
		return false;
	return try_emap(j, slot - 8 * hs_je_rtree_root_index(L, ns->leafkey) - L->emap_root, "TLS rtree_ctx");
}

/* B. Each thread's rtree_ctx caches {leafkey, leaf}.  2 levels: the root slot
 * of leafkey, in the module's writable memory, holds that leaf.  3 levels: a
 * node slot (in jemalloc's base memory) holds the leaf, and the root slot
 * holds that node. */
static bool locate_by_tls(struct je_state *j)
{
	const struct hs_je_layout *L = j->L;
	if (!j->have_tpoff)
		return false;
	struct range rw[8];
	size_t nrw = module_rw(j, rw, 8);
	const struct hs_notes *nt = j->ctx->notes;
	unsigned span = hs_je_leaf_span_bits(L);
	uint64_t tried[16];
	size_t ntried = 0;
	for (size_t t = 0; t < nt->nthreads && ntried < 16; t++) {
		uint64_t tsd = nt->threads[t].regs[HS_REG_FS_BASE] + (uint64_t)j->tpoff;
		for (unsigned e = 0; e < L->rtree_ctx_entries; e++) {
			uint64_t leafkey, leaf;
			uint64_t elm = tsd + L->tsd_rtree_ctx + (uint64_t)L->rtree_ctx_elm_size * e;
			if (!rd64(j, elm, &leafkey) || !rd64(j, elm + L->rtree_ctx_elm_leaf, &leaf))
				break;
			if ((leafkey & ((UINT64_C(1) << span) - 1)) || leafkey >= USER_MAX ||
			    !plausible_ptr(leaf, L->cacheline))
				continue;
			// Threads share leaves: search each leaf once, and at most 16
			// (a 3-level rtree: 4, each a search of the whole core).
			bool seen = false;
			for (size_t k = 0; k < ntried; k++)
				seen |= tried[k] == leaf;
			if (seen || ntried == (L->height == 2 ? 16u : 4u))
				continue;
			tried[ntried++] = leaf;
			if (L->height == 3) {
				// Every word holding the leaf (the threads' rtree_ctx
				// caches hold it too) may be its node slot.
				struct node_slot ns = { rw, nrw, leafkey, leaf };
				if (scan_words(j, 0, UINT64_MAX, node_slot_try, &ns))
					return true;
				continue;
			}
			uint64_t slot;
			if (!find_word(j, rw, nrw, leaf, &slot))
				continue;
			uint64_t root = slot - 8 * hs_je_rtree_root_index(L, leafkey);
			if (try_emap(j, root - L->emap_root, "TLS rtree_ctx"))
				return true;
		}
	}
	return false;
}

/* C. A word of the module's writable memory that points at a leaf (3 levels:
 * at a node whose first child is a leaf) whose elements decode to edata_t
 * covering their own pages is a root slot. */
static bool leaf_candidate(struct je_state *j, uint64_t slot, uint64_t child, void *arg)
{
	const struct hs_je_layout *L = j->L;
	uint64_t *budget = arg;   // words of candidate nodes and leaves still to read
	size_t nleaf = (size_t)1 << L->leaf_bits;
	if (!plausible_ptr(child, L->cacheline) || !*budget)
		return false;
	uint64_t leaf = child, node_i = 0;
	if (L->height == 3) {
		size_t nnode = (size_t)1 << L->node_bits;
		const uint8_t *np = hs_memory_span(j->mem, child, nnode * 8);
		if (!np)
			return false;
		for (leaf = 0; node_i < nnode && *budget && !leaf; (*budget)--)
			if (!(leaf = word_at(np, node_i * 8)))
				node_i++;
		if (!plausible_ptr(leaf, L->cacheline))
			return false;
	}
	const uint8_t *lp = hs_memory_span(j->mem, leaf, hs_je_leaf_bytes(L));
	if (!lp)
		return false;
	uint64_t page_mask = (UINT64_C(1) << L->lg_page) - 1;
	unsigned root_shift = L->node_bits + L->leaf_bits + L->lg_page;
	for (size_t i1 = 0; i1 < nleaf && *budget; i1++, (*budget)--) {
		struct hs_je_leaf_elm e;
		hs_je_leaf_elm_at(L, lp, i1, &e);
		if (!e.edata)
			continue;
		// The first element decides which root slot this leaf must be in.
		uint64_t ea, es;
		if (!plausible_ptr(e.edata, 8) || !rd64(j, e.edata + L->edata_addr, &ea) ||
		    !rd64(j, e.edata + L->edata_size_esn, &es))
			return false;
		uint64_t base = ea & ~page_mask, size = es & ~page_mask;
		if (!size || base >= USER_MAX || size >= USER_MAX)
			return false;
		for (uint64_t i0 = hs_je_rtree_root_index(L, base);
		     i0 <= hs_je_rtree_root_index(L, base + size - 1) && i0 < ((uint64_t)1 << L->root_bits); i0++) {
			uint64_t key = (i0 << root_shift) | (node_i << hs_je_leaf_span_bits(L)) | ((uint64_t)i1 << L->lg_page);
			if (key < base || key - base >= size || slot < 8 * i0 + L->emap_root)
				continue;
			if (try_emap(j, slot - 8 * i0 - L->emap_root, "memory scan"))
				return true;
		}
		return false;
	}
	return false;
}

static bool locate_by_scan(struct je_state *j)
{
	struct range rw[8];
	size_t nrw = module_rw(j, rw, 8);
	uint64_t budget = UINT64_C(1) << 28;   // at most 2 GiB read, about half a second
	for (size_t r = 0; r < nrw; r++)
		if (scan_words(j, rw[r].lo, rw[r].hi, leaf_candidate, &budget))
			return true;
	return false;
}

/* --- detection ------------------------------------------------------------- */

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}


/* The extent map's names: 5.3's emap, 5.2's rtree, with the prefixes
 * jemalloc is built with (je_, tikv-jemallocator's _rjem_je_, none). */
static const char *const emap_names[] = { "je_arena_emap_global", "_rjem_je_arena_emap_global",
					  "arena_emap_global", "je_extents_rtree", "_rjem_je_extents_rtree",
					  "extents_rtree" };

static bool symbol_in(struct je_state *j, struct hs_module *mod, const char *name, struct hs_symbol *ret)
{
	if (!j->ctx->symbols || (mod && mod == &j->nt_module))
		return false;
	struct hs_error *err = hs_symbols_lookup(j->ctx->symbols, mod, name, ret);
	if (err) {
		hs_error_destroy(err);
		return false;
	}
	return ret->address != 0;
}

/* libjemalloc as the core's NT_FILE note maps it, when libdwfl did not report
 * it (a truncated core loses the dynamic linker's list): its file, checked
 * against the ELF header the core holds, and its load bias. */
static struct hs_module *module_from_notes(struct je_state *j)
{
	const struct hs_notes *nt = j->ctx->notes;
	const struct hs_mapped_file *first = NULL;
	uint64_t end = 0;
	for (size_t i = 0; i < nt->nfiles; i++) {
		const struct hs_mapped_file *f = &nt->files[i];
		if (!f->path || strncmp(base_name(f->path), "libjemalloc", 11))
			continue;
		if (!first && f->offset == 0)
			first = f;
		if (first && !strcmp(f->path, first->path) && f->end > end)
			end = f->end;
	}
	if (!first)
		return NULL;
	struct hs_module *m = &j->nt_module;
	memset(m, 0, sizeof(*m));
	m->name = first->path;
	m->path = first->path;
	m->start = first->start;
	m->end = end;
	struct hs_elf_file *f = hs_elf_open(m->path, 0);
	if (!f)
		return NULL;
	// The bias puts the first PT_LOAD (file offset 0) at the mapping's start.
	GElf_Phdr ph;
	bool ok = false;
	for (size_t i = 0; i < hs_elf_nphdrs(f) && !ok; i++)
		if (hs_elf_phdr(f, i, &ph) && ph.p_type == PT_LOAD) {
			m->bias = first->start - (ph.p_vaddr & ~UINT64_C(4095));
			ok = true;
		}
	uint8_t hdr[256];
	uint64_t fsize;
	const uint8_t *image = hs_elf_image(f, &fsize);
	struct hs_error *err = hs_memory_read(j->mem, first->start, hdr, sizeof(hdr));
	if (!err && fsize >= sizeof(hdr) && memcmp(hdr, image, sizeof(hdr)))
		ok = false;   // another file now at that path
	hs_error_destroy(err);
	hs_elf_close(f);
	if (!ok)
		return NULL;
	j->mod_from_notes = true;
	hs_walk_diag(j->ctx, HS_DIAG_INFO, m->start,
		    "%s is not among the modules the core lists (truncated?); using it as the core's file note maps it",
		    m->path);
	return m;
}

/* Which module holds jemalloc, if any. */
static struct hs_module *find_module(struct je_state *j, struct hs_symbol *emap_sym, bool *have_sym)
{
	struct hs_symbols *sy = j->ctx->symbols;
	*have_sym = false;
	if (!sy)
		return module_from_notes(j);
	// libjemalloc.so (its symbols only with debug info), else any module that
	// defines the emap (static linking keeps the je_ names).
	struct hs_module *m = hs_symbols_module_named(sy, "libjemalloc");
	for (size_t i = 0; i < sizeof(emap_names) / sizeof(emap_names[0]); i++) {
		if (symbol_in(j, m, emap_names[i], emap_sym)) {
			*have_sym = true;
			j->emap_sym_name = emap_names[i];
			return m ? m : hs_symbols_module_at(sy, emap_sym->address);
		}
	}
	if (m)
		return m;
	// A stripped executable or library with jemalloc linked in (libjemalloc.a
	// into an executable, libjemalloc_pic.a into a shared library): its
	// messages' "<jemalloc>" prefix and its version string give it away.
	// The executable first.
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < sy->nmodules; i++) {
			struct hs_module *c = &sy->modules[i];
			if (c->is_main != (pass == 0))
				continue;
			struct hs_elf_file *f = hs_elf_open(c->path, c->bias);
			if (!f)
				continue;
			uint64_t len;
			const uint8_t *ro = file_rodata(f, &len);
			char v[64];
			bool found = contains(ro, len, "<jemalloc>") && find_version(ro, len, v, sizeof(v));
			hs_elf_close(f);
			if (found)
				return c;
		}
	}
	return module_from_notes(j);
}

/* "5.2.1 and 5.3.0": the versions heapscope reads. */
static void supported_versions(char *buf, size_t cap)
{
	size_t n = 0;
	buf[0] = 0;
	for (size_t i = 0; i < HS_JE_NLAYOUTS; i++) {
		const char *v = hs_je_layouts[i]->version;
		bool dup = false;
		for (size_t k = 0; k < i; k++)
			dup |= !strcmp(hs_je_layouts[k]->version, v);
		if (dup || n >= cap)
			continue;
		n += (size_t)snprintf(buf + n, cap - n, "%s%.*s", n ? ", " : "", (int)strlen(v) - 1, v);
	}
}

/* The version string, debug build, TLS size: the layouts this build may have
 * (j->cands), or a refusal that names what was found. */
static struct hs_error *check_build(struct je_state *j)
{
	char known[64];
	supported_versions(known, sizeof(known));
	j->ncands = 0;
	if (!j->file) {
		hs_walk_diag(j->ctx, HS_DIAG_WARNING, 0,
			    "the file of %s was not found: jemalloc's version and build are not checked; trying every known layout (%s; x86-64, 4 KiB pages)",
			    j->module_name, known);
		for (size_t i = 0; i < HS_JE_NLAYOUTS; i++)
			j->cands[j->ncands++] = hs_je_layouts[i];
		return NULL;
	}
	uint64_t len;
	const uint8_t *ro = file_rodata(j->file, &len);
	if (!find_version(ro, len, j->version, sizeof(j->version))) {
		hs_walk_diag(j->ctx, HS_DIAG_WARNING, 0,
			    "no jemalloc version string in %s: trying every known layout (%s); each is checked against the heap itself",
			    j->module_name, known);
		for (size_t i = 0; i < HS_JE_NLAYOUTS; i++)
			j->cands[j->ncands++] = hs_je_layouts[i];
	} else {
		for (size_t i = 0; i < HS_JE_NLAYOUTS; i++)
			if (!strncmp(j->version, hs_je_layouts[i]->version, strlen(hs_je_layouts[i]->version)))
				j->cands[j->ncands++] = hs_je_layouts[i];
		if (!j->ncands)
			return hs_error_create(HS_ERR_HEAP,
					       "jemalloc %s (in %s) is not supported: heapscope reads jemalloc %s (x86-64, 4 KiB pages); its structures differ in other versions",
					       j->version, j->module_name, known);
	}
	if (contains(ro, len, ": Failed assertion: "))
		return hs_error_create(HS_ERR_HEAP,
				       "jemalloc %s in %s is a debug build (--enable-debug): its mutexes and arenas have another layout, which heapscope does not read",
				       j->version[0] ? j->version : "(unknown version)", j->module_name);
	if (!(j->mod && j->mod->is_main)) {
		GElf_Phdr ph;
		for (size_t i = 0; i < hs_elf_nphdrs(j->file); i++) {
			if (!hs_elf_phdr(j->file, i, &ph) || ph.p_type != PT_TLS)
				continue;
			size_t w = 0;
			for (size_t c = 0; c < j->ncands; c++)
				if (j->cands[c]->tsd_size == ph.p_memsz)
					j->cands[w++] = j->cands[c];
			if (!w)
				return hs_error_create(HS_ERR_HEAP,
						       "jemalloc %s in %s has a %" PRIu64 "-byte tsd_t (TLS), not the %" PRIu64 " bytes of jemalloc %s with 4 KiB pages: another version or configuration, not supported",
						       j->version[0] ? j->version : "(unknown version)", j->module_name,
						       (uint64_t)ph.p_memsz, j->cands[0]->tsd_size, j->cands[0]->name);
			j->ncands = w;
		}
	}
	return NULL;
}

/* Search [lo, hi) for the bytes of a table. */
static bool memory_has(struct je_state *j, const struct range *rw, size_t nrw, const uint8_t *pat, size_t n)
{
	for (size_t r = 0; r < nrw; r++) {
		for (size_t i = 0; i < j->mem->nsegs; i++) {
			const struct hs_segment *sg = &j->mem->segs[i];
			uint64_t a = sg->start > rw[r].lo ? sg->start : rw[r].lo;
			uint64_t e = sg->start + sg->filesz < rw[r].hi ? sg->start + sg->filesz : rw[r].hi;
			if (a >= e)
				continue;
			const uint8_t *p = hs_memory_span(j->mem, a, (size_t)(e - a));
			if (p && memmem(p, (size_t)(e - a), pat, n))
				return true;
		}
	}
	return false;
}

/* LG_QUANTUM and LG_PAGE from the run-time tables jemalloc fills at boot
 * (je_sz_index2size_tab, je_bin_infos): read through their symbols, or found
 * by their bytes in the module's writable memory. */
static struct hs_error *check_size_classes(struct je_state *j)
{
	const struct hs_je_layout *L = j->L;
	HS_CHECK(hs_je_sizes_compute(L->lg_quantum, L->lg_page, &j->sizes));
	if (j->sizes.nbins != L->nbins || j->sizes.nsizes != L->nsizes)
		return hs_error_create(HS_ERR_OTHER, "internal: size classes disagree with the layout table");
	struct range rw[8];
	size_t nrw = module_rw(j, rw, 8);
	if (!nrw) {
		snprintf(j->sizes_how, sizeof(j->sizes_how), "assumed");
		return NULL;
	}
	uint8_t img[HS_JE_MAX_BINS * 40];
	// Searching the whole index2size table is enough for the quantum; bin_infos
	// adds the page size.
	if (memory_has(j, rw, nrw, (const uint8_t *)j->sizes.index2size, 8 * (size_t)j->sizes.nsizes)) {
		size_t n = hs_je_bin_infos_image(&j->sizes, img);
		if (memory_has(j, rw, nrw, img, n)) {
			snprintf(j->sizes_how, sizeof(j->sizes_how), "sz_index2size_tab, bin_infos");
			return NULL;
		}
	}
	// Name what was found instead.
	static const unsigned others[][2] = { { 3, 12 }, { 4, 14 }, { 4, 16 }, { 3, 16 }, { 4, 13 } };
	for (size_t k = 0; k < sizeof(others) / sizeof(others[0]); k++) {
		struct hs_je_sizes o;
		if (hs_je_sizes_compute(others[k][0], others[k][1], &o))
			continue;
		size_t n = hs_je_bin_infos_image(&o, img);
		if (memory_has(j, rw, nrw, (const uint8_t *)o.index2size, 8 * (size_t)o.nsizes) &&
		    memory_has(j, rw, nrw, img, n))
			return hs_error_create(HS_ERR_HEAP,
					       "jemalloc in %s was built with LG_QUANTUM %u and LG_PAGE %u (%u size classes, %u bins): not supported (heapscope reads LG_QUANTUM 4, LG_PAGE 12)",
					       j->module_name, o.lg_quantum, o.lg_page, o.nsizes, o.nbins);
	}
	hs_walk_diag(j->ctx, HS_DIAG_WARNING, 0,
		    "jemalloc's size class tables were not found in %s's memory: assuming LG_QUANTUM %u, LG_PAGE %u; every slab is checked against them",
		    j->module_name, L->lg_quantum, L->lg_page);
	snprintf(j->sizes_how, sizeof(j->sizes_how), "assumed");
	return NULL;
}

/* Read the target as layout L from now on (its TLS offset depends on it). */
static void use_layout(struct je_state *j, const struct hs_je_layout *L)
{
	if (j->L == L && j->tpoff_for == L)
		return;
	j->L = L;
	j->have_tpoff = false;
	j->tpoff = 0;
	find_tpoff(j);
	j->tpoff_for = L;
}

static bool run_locator(struct je_state *j, unsigned which)
{
	return (which == 1 && locate_by_disassembly(j)) || (which == 2 && locate_by_tls(j)) ||
	       (which == 3 && locate_by_scan(j));
}

static const char *const locator_names[] = { "", "disassembly", "TLS rtree_ctx", "memory scan" };

/* The layouts tried, for messages: "5.3.0 (LG_VADDR 48), 5.3.0 (LG_VADDR 57)". */
static void cands_names(const struct je_state *j, char *buf, size_t cap)
{
	size_t n = 0;
	buf[0] = 0;
	for (size_t c = 0; c < j->ncands && n < cap; c++)
		n += (size_t)snprintf(buf + n, cap - n, "%s%s", c ? ", " : "", j->cands[c]->name);
}

static struct hs_error *locate_emap(struct je_state *j, const struct hs_symbol *sym, bool have_sym)
{
	char tried[160];
	cands_names(j, tried, sizeof(tried));
	uint64_t v;
	if (hs_walk_override(j->ctx, "je_arena_emap_global", &v)) {
		for (size_t c = 0; c < j->ncands; c++) {
			use_layout(j, j->cands[c]);
			if (accept_given(j, v, "override"))
				return NULL;
		}
		return hs_error_create(HS_ERR_HEAP,
				       "--override je_arena_emap_global=0x%" PRIx64 " is not jemalloc's extent map: its rtree does not decode as %s",
				       v, tried);
	}
	// --override je_locator=1|2|3 uses only that symbol-less way (tests, and
	// checking one way against another).
	uint64_t only = 0;
	if (hs_walk_override(j->ctx, "je_locator", &only)) {
		if (only < 1 || only > 3)
			return hs_error_create(HS_ERR_USAGE, "--override je_locator=%" PRIu64 ": use 1 (disassembly), 2 (TLS) or 3 (memory scan)", only);
		for (size_t c = 0; c < j->ncands; c++) {
			use_layout(j, j->cands[c]);
			if (run_locator(j, (unsigned)only))
				return NULL;
		}
		return hs_error_create(HS_ERR_HEAP, "jemalloc's extent map was not found by locator %" PRIu64 " (%s) in %s (layouts tried: %s)",
				       only, locator_names[only], j->module_name, tried);
	}
	if (have_sym) {
		const char *name = j->emap_sym_name ? j->emap_sym_name : "je_arena_emap_global";
		for (size_t c = 0; c < j->ncands; c++) {
			const struct hs_je_layout *L = j->cands[c];
			if (!strstr(name, L->emap_symbol) || (sym->size && sym->size != L->emap_size))
				continue;
			use_layout(j, L);
			uint64_t leaf0;
			if (root_is_empty(j, sym->address, &leaf0))
				return hs_error_create(HS_ERR_NOT_FOUND,
						       "jemalloc is linked into %s but holds no memory (its extent map is empty)",
						       j->module_name);
			if (accept_given(j, sym->address, "symbol"))
				return NULL;
			return hs_error_create(HS_ERR_HEAP,
					       "%s at 0x%" PRIx64 " in %s does not decode as the rtree of jemalloc %s: no rtree element sampled is consistent (memory not dumped, corrupt, or another layout)",
					       name, sym->address, j->module_name, L->name);
		}
		const struct hs_je_layout *L = j->cands[0];
		uint64_t slots = sym->size > L->emap_root ? (sym->size - L->emap_root) / 8 : 0;
		return hs_error_create(HS_ERR_HEAP,
				       "%s in %s is %" PRIu64 " bytes (an rtree root of %" PRIu64 " slots), not the size it has in %s with 4 KiB pages: another address width, page size or a debug build, not supported",
				       name, j->module_name, sym->size, slots, tried);
	}
	// Each way over every candidate layout before the next (costlier) way.
	for (unsigned way = 1; way <= 3; way++)
		for (size_t c = 0; c < j->ncands; c++) {
			use_layout(j, j->cands[c]);
			if (run_locator(j, way))
				return NULL;
		}
	return hs_error_create(HS_ERR_HEAP,
			       "jemalloc %s is in %s, but its extent map (je_arena_emap_global) was not found: no symbol, and neither the disassembly of its exported functions, nor the threads' TLS, nor a scan of its writable memory led to an rtree that decodes as %s; give it with --override je_arena_emap_global=ADDR",
			       j->version[0] ? j->version : "(unknown version)", j->module_name, tried);
}

/* --- arenas ---------------------------------------------------------------- */

/* Is a an arena_t of this heap?  5.3: it holds the emap's address twice and
 * its index twice.  5.2: its first bins_t points just past it (its bin_t
 * shards follow it) and its index is its base_t's. */
static bool arena_valid(struct je_state *j, uint64_t a, unsigned *ind_ret)
{
	const struct hs_je_layout *L = j->L;
	uint64_t e1, e2, base;
	uint32_t ind, ind2;
	if (!L->arena_pac_emap) {
		uint64_t shards;
		if (!plausible_ptr(a, L->cacheline) || !rd64(j, a + L->arena_bin_shards, &shards) ||
		    shards != a + L->arena_bins || !rd64(j, a + L->arena_base, &base) || !plausible_ptr(base, 8) ||
		    !rd32(j, base + L->base_ind, &ind) || ind >= L->arenas_max)
			return false;
		*ind_ret = ind;
		return true;
	}
	if (!plausible_ptr(a, L->cacheline) || !rd64(j, a + L->arena_pac_emap, &e1) || e1 != j->emap ||
	    !rd64(j, a + L->arena_shard_emap, &e2) || e2 != j->emap || !rd32(j, a + L->arena_ind, &ind) ||
	    !rd32(j, a + L->arena_shard_ind, &ind2) || ind != ind2 || ind >= L->arenas_max ||
	    !rd64(j, a + L->arena_base, &base) || !plausible_ptr(base, 8))
		return false;
	*ind_ret = ind;
	return true;
}

static struct je_arena *arena_add(struct je_state *j, unsigned ind, uint64_t address)
{
	if (ind >= 4096)
		return NULL;
	if (j->local_of[ind]) {
		struct je_arena *a = &j->arenas[j->local_of[ind] - 1];
		if (!a->address && address)
			a->address = address;
		return a;
	}
	if ((j->narenas & (j->narenas - 1)) == 0) {
		struct je_arena *p = realloc(j->arenas, (j->narenas ? j->narenas * 2 : 8) * sizeof(*p));
		if (!p)
			return NULL;
		j->arenas = p;
	}
	struct je_arena *a = &j->arenas[j->narenas++];
	memset(a, 0, sizeof(*a));
	a->ind = ind;
	a->address = address;
	j->local_of[ind] = (uint16_t)j->narenas;
	return a;
}

static bool arena_word(struct je_state *j, uint64_t addr, uint64_t v, void *arg)
{
	(void)addr;
	unsigned ind;
	bool *nomem = arg;
	if (arena_valid(j, v, &ind) && !arena_add(j, ind, v))
		*nomem = true;
	return false;
}

/* The arenas: je_arenas[] (symbol or override), else every pointer to an
 * arena_t in the module's writable memory and in the threads' tsd. */
static struct hs_error *find_arenas(struct je_state *j)
{
	const struct hs_je_layout *L = j->L;
	struct hs_symbol sym;
	uint64_t arr = 0;
	if (hs_walk_override(j->ctx, "je_arenas", &arr) || symbol_in(j, j->mod, "je_arenas", &sym) ||
	    symbol_in(j, j->mod, "_rjem_je_arenas", &sym)) {
		if (!arr)
			arr = sym.address;
		j->arenas_array = arr;
		for (unsigned i = 0; i < L->arenas_max; i++) {
			uint64_t a;
			unsigned ind;
			if (!rd64(j, arr + 8 * (uint64_t)i, &a))
				break;
			if (!a)
				continue;
			if (!arena_valid(j, a, &ind) || ind != i) {
				diag(j, D_OTHER, HS_DIAG_WARNING, arr + 8 * (uint64_t)i,
				     "je_arenas[%u] = 0x%" PRIx64 " is not an arena_t of this heap", i, a);
				continue;
			}
			if (!arena_add(j, ind, a))
				return &hs_error_nomem;
		}
	} else {
		struct range rw[8];
		size_t nrw = module_rw(j, rw, 8);
		bool nomem = false;
		for (size_t r = 0; r < nrw; r++)
			scan_words(j, rw[r].lo, rw[r].hi, arena_word, &nomem);
		if (nomem)
			return &hs_error_nomem;
	}
	const struct hs_notes *nt = j->ctx->notes;
	for (size_t t = 0; j->have_tpoff && t < nt->nthreads; t++) {
		uint64_t tsd = nt->threads[t].regs[HS_REG_FS_BASE] + (uint64_t)j->tpoff, a;
		unsigned ind;
		if (tsd_valid(j, tsd) && rd64(j, tsd + L->tsd_arena, &a) && a && arena_valid(j, a, &ind) &&
		    !arena_add(j, ind, a))
			return &hs_error_nomem;
	}
	for (size_t i = 0; i < j->narenas; i++)
		if (j->arenas[i].address)
			rd64(j, j->arenas[i].address + L->arena_base, &j->arenas[i].base);
	return NULL;
}

/* --- detect ---------------------------------------------------------------- */

static void state_destroy(void *p)
{
	struct je_state *j = p;
	if (!j)
		return;
	hs_elf_close(j->file);
	free(j->arenas);
	free(j->tcaches);
	free(j);
}

static struct hs_error *je_detect(struct hs_walk_ctx *ctx, void **state_ret)
{
	*state_ret = NULL;
	struct je_state *j = calloc(1, sizeof(*j));
	if (!j)
		return &hs_error_nomem;
	j->ctx = ctx;
	j->mem = ctx->mem;
	hs_walk_diag_kinds(ctx, je_diag_what, sizeof(je_diag_what) / sizeof(je_diag_what[0]), MAX_DIAGS_PER_KIND);
	j->L = &hs_je_layout_5_3_0;
	struct hs_symbol sym = { 0 };
	bool have_sym = false;
	uint64_t ov;
	bool override = hs_walk_override(ctx, "je_arena_emap_global", &ov);
	j->mod = find_module(j, &sym, &have_sym);
	if (!j->mod && override)
		j->mod = hs_walk_module_at(ctx, ov);
	if (!j->mod && !override) {
		state_destroy(j);
		return hs_error_create(HS_ERR_NOT_FOUND,
				       "jemalloc is not in this process: no libjemalloc module, no je_arena_emap_global symbol and no jemalloc version string in the executable (a stripped one can be given with --override je_arena_emap_global=ADDR)");
	}
	snprintf(j->module_name, sizeof(j->module_name), "%s",
		 j->mod ? base_name(j->mod->path ? j->mod->path : j->mod->name) : "the target");
	j->file = j->mod ? hs_elf_open(j->mod->path, j->mod->bias) : NULL;
	struct hs_error *err = check_build(j);
	if (!err) {
		j->L = j->cands[0];
		err = check_size_classes(j);
	}
	if (!err)
		err = locate_emap(j, &sym, have_sym);
	if (!err)
		err = find_arenas(j);
	if (err) {
		state_destroy(j);
		return err;
	}
	*state_ret = j;
	return NULL;
}

/* --- collect: the rtree's extents --------------------------------------- */

struct extents {
	struct je_extent *v;
	size_t n, cap;
};

static int elm_cmp(const void *a, const void *b)
{
	const struct je_elm *x = a, *y = b;
	if (x->edata != y->edata)
		return x->edata < y->edata ? -1 : 1;
	return (x->key > y->key) - (x->key < y->key);
}

static int extent_cmp(const void *a, const void *b)
{
	const struct je_extent *x = a, *y = b;
	return (x->base > y->base) - (x->base < y->base);
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Every element of every leaf, keeping only the first of a run with the same
 * edata (a slab registers all its pages) and the last (a slab's last page). */
static struct hs_error *collect_elements(struct je_state *j, struct je_elm **ret, size_t *n_ret)
{
	const struct hs_je_layout *L = j->L;
	size_t nleaf = (size_t)1 << L->leaf_bits;
	uint64_t leaf_bytes = hs_je_leaf_bytes(L);
	struct leaf_ref *leaves = malloc(MAX_LEAVES * sizeof(*leaves));
	size_t nleaves = 0;
	unsigned bad = 0;
	if (!leaves)
		return &hs_error_nomem;
	struct hs_error *err = rtree_leaves(j, j->emap, leaves, MAX_LEAVES, &nleaves, &bad, true);
	if (err) {
		free(leaves);
		return err;
	}
	qsort(leaves, nleaves, sizeof(leaves[0]), u64_cmp);   // by leaf address (first member)
	struct je_elm *v = NULL;
	size_t n = 0, cap = 0;
	uint64_t prev_end = 0;
	for (size_t k = 0; k < nleaves && !err; k++) {
		if (hs_walk_interrupted(j->ctx)) {
			err = hs_error_create(HS_ERR_INTERRUPTED, "interrupted");
			break;
		}
		// Leaves are arrays in base memory: two slots naming the same or
		// overlapping memory are corrupt (and would multiply the work).
		if (k && leaves[k].leaf < prev_end && leaves[k].leaf + leaf_bytes > leaves[k - 1].leaf) {
			diag(j, D_ELM, HS_DIAG_ERROR, leaves[k].leaf,
			     "rtree leaf 0x%" PRIx64 " (for 0x%" PRIx64 ") overlaps another leaf; skipped",
			     leaves[k].leaf, leaves[k].prefix);
			continue;
		}
		prev_end = leaves[k].leaf + leaf_bytes;
		const uint8_t *lp;
		uint8_t *owned;
		struct hs_error *rerr = bytes_at(j, leaves[k].leaf, leaf_bytes, &lp, &owned);
		if (rerr) {
			diag(j, D_ELM, HS_DIAG_ERROR, leaves[k].leaf,
			     "rtree leaf 0x%" PRIx64 " cannot be read (%s); the extents of its %" PRIu64 " MiB at 0x%" PRIx64 " are missing",
			     leaves[k].leaf, hs_error_message(rerr), (UINT64_C(1) << hs_je_leaf_span_bits(L)) >> 20,
			     leaves[k].prefix);
			hs_error_destroy(rerr);
			continue;
		}
		struct hs_je_leaf_elm prev = { 0 };
		for (size_t i1 = 0; i1 < nleaf; i1++) {
			struct hs_je_leaf_elm e;
			hs_je_leaf_elm_at(L, lp, i1, &e);
			if (!e.edata) {
				prev.edata = 0;
				continue;
			}
			// Keep the first and the last element of a run naming one
			// edata (a slab's pages), and any that differs from the one
			// before it (every element is checked, each run once).
			bool last = i1 + 1 == nleaf;
			if (!last) {
				struct hs_je_leaf_elm nx;
				hs_je_leaf_elm_at(L, lp, i1 + 1, &nx);
				last = nx.edata != e.edata;
			}
			if (e.edata == prev.edata && e.szind == prev.szind && e.state == prev.state &&
			    e.slab == prev.slab && !last)
				continue;
			prev = e;
			if (n == cap) {
				cap = cap ? cap * 2 : 4096;
				struct je_elm *nv = realloc(v, cap * sizeof(*v));
				if (!nv) {
					err = &hs_error_nomem;
					break;
				}
				v = nv;
			}
			v[n++] = (struct je_elm){ e.edata, leaves[k].prefix | ((uint64_t)i1 << L->lg_page),
						  (uint16_t)e.szind, (uint8_t)e.state, e.slab };
		}
		free(owned);
	}
	free(leaves);
	if (err) {
		free(v);
		return err;
	}
	*ret = v;
	*n_ret = n;
	return NULL;
}

/* One edata_t, read and checked against the elements that name it. */
static bool extent_read(struct je_state *j, const struct je_elm *el, size_t nel, struct je_extent *x)
{
	const struct hs_je_layout *L = j->L;
	uint64_t ed = el[0].edata;
	uint8_t buf[128];
	const uint8_t *p = hs_memory_span(j->mem, ed, L->edata_size);
	if (!p) {
		struct hs_error *err = hs_memory_read(j->mem, ed, buf, L->edata_bitmap + 8 * L->bitmap_words);
		if (err) {
			diag(j, D_EDATA, HS_DIAG_ERROR, ed, "edata_t 0x%" PRIx64 " (for page 0x%" PRIx64 ") cannot be read: %s",
			     ed, el[0].key, hs_error_message(err));
			hs_error_destroy(err);
			return false;
		}
		p = buf;
	}
	struct hs_je_ebits eb;
	hs_je_ebits_decode(L, word_at(p, L->edata_bits), &eb);
	uint64_t page_mask = (UINT64_C(1) << L->lg_page) - 1;
	memset(x, 0, sizeof(*x));
	x->edata = ed;
	x->addr = word_at(p, L->edata_addr);
	x->base = x->addr & ~page_mask;
	x->size = word_at(p, L->edata_size_esn) & ~page_mask;
	x->arena = eb.arena;
	x->state = eb.state;
	x->szind = eb.szind;
	x->nfree = eb.nfree;
	x->slab = eb.slab;
	memcpy(x->bitmap, p + L->edata_bitmap, 8 * L->bitmap_words);
	if (!x->size || x->size >= USER_MAX || !x->base || x->base >= USER_MAX - x->size ||
	    eb.state > HS_JE_MERGING || eb.arena >= L->arenas_max) {
		diag(j, D_EDATA, HS_DIAG_ERROR, ed,
		     "edata_t 0x%" PRIx64 " does not decode (address 0x%" PRIx64 ", size 0x%" PRIx64 ", state %u, arena %u); its extent is skipped",
		     ed, x->addr, x->size, eb.state, eb.arena);
		return false;
	}
	for (size_t i = 0; i < nel; i++) {
		struct hs_je_leaf_elm e = { el[i].edata, el[i].szind, el[i].state, false, el[i].slab };
		const char *why = elm_disagrees(L, el[i].key, &e, x->base, x->size, &eb);
		if (why) {
			diag(j, D_ELM, HS_DIAG_ERROR, el[i].key,
			     "the rtree says page 0x%" PRIx64 " belongs to edata_t 0x%" PRIx64 " (state %u, slab %d, class %u), which covers 0x%" PRIx64 "-0x%" PRIx64 " (state %u, slab %d, class %u): %s; extent skipped",
			     el[i].key, ed, e.state, e.slab, e.szind, x->base, x->base + x->size, x->state, x->slab, x->szind, why);
			return false;
		}
	}
	return true;
}

static struct hs_error *collect_extents(struct je_state *j, struct extents *out)
{
	struct je_elm *el;
	size_t nel;
	HS_CHECK(collect_elements(j, &el, &nel));
	if (nel)
		qsort(el, nel, sizeof(*el), elm_cmp);
	memset(out, 0, sizeof(*out));
	struct hs_error *err = NULL;
	for (size_t i = 0; i < nel && !err;) {
		size_t k = i + 1;
		while (k < nel && el[k].edata == el[i].edata)
			k++;
		if ((i & 0xfff) == 0 && hs_walk_interrupted(j->ctx)) {
			err = hs_error_create(HS_ERR_INTERRUPTED, "interrupted");
			break;
		}
		struct je_extent x;
		if (extent_read(j, el + i, k - i, &x)) {
			if (out->n == out->cap) {
				out->cap = out->cap ? out->cap * 2 : 1024;
				struct je_extent *nv = realloc(out->v, out->cap * sizeof(*nv));
				if (!nv) {
					err = &hs_error_nomem;
					break;
				}
				out->v = nv;
			}
			out->v[out->n++] = x;
		}
		i = k;
	}
	free(el);
	if (err) {
		free(out->v);
		out->v = NULL;
		return err;
	}
	if (out->n)
		qsort(out->v, out->n, sizeof(*out->v), extent_cmp);
	// Drop extents that overlap an earlier one.
	size_t w = 0;
	for (size_t i = 0; i < out->n; i++) {
		if (w && out->v[i].base < out->v[w - 1].base + out->v[w - 1].size) {
			diag(j, D_OVERLAP, HS_DIAG_ERROR, out->v[i].base,
			     "extent 0x%" PRIx64 "-0x%" PRIx64 " (edata_t 0x%" PRIx64 ") overlaps extent 0x%" PRIx64 "-0x%" PRIx64 "; skipped",
			     out->v[i].base, out->v[i].base + out->v[i].size, out->v[i].edata, out->v[w - 1].base,
			     out->v[w - 1].base + out->v[w - 1].size);
			continue;
		}
		out->v[w++] = out->v[i];
	}
	out->n = w;
	return NULL;
}

/* The extent holding addr, or NULL. */
static const struct je_extent *extent_of(const struct extents *xs, uint64_t addr)
{
	size_t lo = 0, hi = xs->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (xs->v[mid].base <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return NULL;
	const struct je_extent *x = &xs->v[lo - 1];
	return addr - x->base < x->size ? x : NULL;
}

/* --- tcaches ----------------------------------------------------------------- */

static struct je_tcache *tcache_add(struct je_state *j, uint64_t address, uint64_t slow)
{
	for (size_t i = 0; i < j->ntcaches; i++)
		if (j->tcaches[i].address == address)
			return &j->tcaches[i];
	if ((j->ntcaches & (j->ntcaches - 1)) == 0) {
		struct je_tcache *p = realloc(j->tcaches, (j->ntcaches ? j->ntcaches * 2 : 8) * sizeof(*p));
		if (!p)
			return NULL;
		j->tcaches = p;
	}
	struct je_tcache *t = &j->tcaches[j->ntcaches++];
	memset(t, 0, sizeof(*t));
	t->address = address;
	t->slow = slow;
	return t;
}

/* Every tcache: each arena's tcache_ql ring of tcache_slow_t (config_stats),
 * and each thread's own (tsd_t in TLS). */
static struct hs_error *find_tcaches(struct je_state *j)
{
	const struct hs_je_layout *L = j->L;
	for (size_t a = 0; a < j->narenas; a++) {
		uint64_t head, ts;
		if (!j->arenas[a].address || !rd64(j, j->arenas[a].address + L->arena_tcache_ql, &head) || !head)
			continue;
		ts = head;
		for (unsigned n = 0;; n++) {
			uint64_t tc = ts, next, back;
			if (n == MAX_RING || !plausible_ptr(ts, 8) ||
			    (!L->ring_is_tcache && !rd64(j, ts + L->tcache_slow_tcache, &tc)) || !plausible_ptr(tc, 8)) {
				diag(j, D_RING, HS_DIAG_WARNING, ts,
				     "the tcache ring of arena %u is broken at 0x%" PRIx64 " after %u entries; the rest is found through TLS only",
				     j->arenas[a].ind, ts, n);
				break;
			}
			struct je_tcache *t = tcache_add(j, tc, ts);
			if (!t)
				return &hs_error_nomem;
			t->in_ring = true;
			// The next node must link back to this one (a qr ring).
			if (!rd64(j, ts + L->tcache_slow_link, &next) || next == head)
				break;
			if (!rd64(j, next + L->tcache_slow_prev, &back) || back != ts) {
				diag(j, D_RING, HS_DIAG_WARNING, ts,
				     "the tcache ring of arena %u is broken after 0x%" PRIx64 " (%u entries): its next, 0x%" PRIx64 ", does not link back; the rest is found through TLS only",
				     j->arenas[a].ind, ts, n + 1, next);
				break;
			}
			ts = next;
		}
	}
	const struct hs_notes *nt = j->ctx->notes;
	for (size_t t = 0; j->have_tpoff && t < nt->nthreads; t++) {
		uint64_t fs = nt->threads[t].regs[HS_REG_FS_BASE];
		uint64_t tsd = fs + (uint64_t)j->tpoff;
		if (!fs || !tsd_valid(j, tsd))
			continue;
		struct je_tcache *tc = tcache_add(j, tsd + L->tsd_tcache,
						  L->ring_is_tcache ? tsd + L->tsd_tcache : tsd + L->tsd_tcache_slow);
		if (!tc)
			return &hs_error_nomem;
		tc->in_tls = true;
		tc->tid = nt->threads[t].tid;
	}
	return NULL;
}

struct cached_set {
	struct je_cached *v;
	size_t n, cap;
	uint64_t *stacks;       /* an address inside each tcache's stack allocation */
	size_t nstacks;
};

static int cached_cmp(const void *a, const void *b)
{
	const struct je_cached *x = a, *y = b;
	return (x->ptr > y->ptr) - (x->ptr < y->ptr);
}

/* The objects cached in one cache_bin_t (cb: its bytes): where they are and
 * how many, and an address inside the tcache's stack allocation.  5.3: the
 * stack grows down from low_bits_empty to stack_head.  5.2: the objects are
 * avail[-ncached .. -1].  False when the bin is unused. */
static bool cache_bin_objects(const struct hs_je_layout *L, const uint8_t *cb, uint64_t *at, unsigned *n,
			      uint64_t *inside)
{
	if (L->cache_bin_kind == HS_JE_CB_STACK) {
		uint64_t head = word_at(cb, L->cache_bin_stack_head);
		uint16_t empty;
		memcpy(&empty, cb + L->cache_bin_low_bits_empty, 2);
		if (!head)
			return false;
		*at = head;
		*inside = head;
		*n = hs_je_cache_bin_ncached(head, empty);
		return true;
	}
	uint64_t avail = word_at(cb, L->cache_bin_avail);
	int32_t ncached;
	memcpy(&ncached, cb + L->cache_bin_ncached, 4);
	if (!avail)
		return false;
	*n = ncached > 0 && (uint64_t)ncached * 8 < avail ? (unsigned)ncached : 0;
	*at = avail - 8 * (uint64_t)*n;
	*inside = avail - 8;
	return true;
}

/* Every object in every bin of every tcache (cache_bin_t stacks). */
static struct hs_error *read_tcaches(struct je_state *j, struct cached_set *cs)
{
	const struct hs_je_layout *L = j->L;
	memset(cs, 0, sizeof(*cs));
	cs->stacks = calloc(j->ntcaches ? j->ntcaches : 1, sizeof(uint64_t));
	if (!cs->stacks)
		return &hs_error_nomem;
	size_t nbins = L->tcache_nbins_max < j->sizes.nsizes ? L->tcache_nbins_max : j->sizes.nsizes;
	if (nbins > 256)
		nbins = 256;
	uint8_t *bins = malloc(nbins * L->cache_bin_size);
	if (!bins)
		return &hs_error_nomem;
	struct hs_error *ret = NULL;
	for (size_t t = 0; t < j->ntcaches && !ret; t++) {
		// One array (5.3), or bins_small then bins_large (5.2).
		uint64_t tc = j->tcaches[t].address;
		size_t nsmall = L->tcache_bins_large ? L->nbins : nbins;
		struct hs_error *err = hs_memory_read(j->mem, tc + L->tcache_bins, bins, nsmall * L->cache_bin_size);
		if (!err && L->tcache_bins_large)
			err = hs_memory_read(j->mem, tc + L->tcache_bins_large, bins + nsmall * L->cache_bin_size,
					     (nbins - nsmall) * L->cache_bin_size);
		if (err) {
			diag(j, D_TCACHE, HS_DIAG_ERROR, tc, "tcache 0x%" PRIx64 " cannot be read: %s", tc,
			     hs_error_message(err));
			hs_error_destroy(err);
			continue;
		}
		for (size_t b = 0; b < nbins; b++) {
			uint64_t at, inside;
			unsigned n;
			if (!cache_bin_objects(L, bins + b * L->cache_bin_size, &at, &n, &inside))
				continue;
			if (!cs->stacks[t])
				cs->stacks[t] = inside;
			if (!n)
				continue;
			uint64_t ptrs[8192];
			err = n <= 8192 ? hs_memory_read(j->mem, at, ptrs, 8 * (size_t)n)
					: hs_error_create(HS_ERR_OTHER, "%u objects is too many for one bin", n);
			if (err) {
				diag(j, D_TCACHE, HS_DIAG_ERROR, at,
				     "bin %zu of tcache 0x%" PRIx64 " (%u objects at 0x%" PRIx64 ") cannot be read: %s", b,
				     tc, n, at, hs_error_message(err));
				hs_error_destroy(err);
				continue;
			}
			if (cs->n + n > cs->cap) {
				size_t cap = cs->cap ? cs->cap * 2 : 4096;
				while (cap < cs->n + n)
					cap *= 2;
				struct je_cached *nv = realloc(cs->v, cap * sizeof(*nv));
				if (!nv) {
					ret = &hs_error_nomem;
					break;
				}
				cs->v = nv;
				cs->cap = cap;
			}
			for (unsigned i = 0; i < n; i++)
				cs->v[cs->n++] = (struct je_cached){ ptrs[i], (uint32_t)t, (uint16_t)b, false };
		}
		cs->nstacks = j->ntcaches;
	}
	free(bins);
	if (ret)
		return ret;
	if (cs->n)
		qsort(cs->v, cs->n, sizeof(*cs->v), cached_cmp);
	for (size_t i = 1; i < cs->n; i++)
		if (cs->v[i].ptr == cs->v[i - 1].ptr)
			diag(j, D_TCACHE, HS_DIAG_ERROR, cs->v[i].ptr,
			     "0x%" PRIx64 " is cached twice (tcaches 0x%" PRIx64 " and 0x%" PRIx64 "): a double free",
			     cs->v[i].ptr, j->tcaches[cs->v[i - 1].tcache].address, j->tcaches[cs->v[i].tcache].address);
	return NULL;
}

static struct je_cached *cached_find(struct cached_set *cs, uint64_t ptr)
{
	size_t lo = 0, hi = cs->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (cs->v[mid].ptr < ptr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < cs->n && cs->v[lo].ptr == ptr ? &cs->v[lo] : NULL;
}

/* --- emit ---------------------------------------------------------------------- */

struct totals {
	uint64_t allocated, active, internal, tcache, dirty, muzzy, retained, base;
	uint64_t slabs, large, tcached;
};

struct walk {
	struct je_state *j;
	struct hs_heap *heap;
	struct hs_alloc_desc *desc;
	unsigned global_base;          /* first global arena index of this allocator */
	struct extents xs;
	struct cached_set cs;
	uint64_t *meta;                /* allocation starts that are jemalloc's own */
	size_t nmeta;
	uint64_t (*slab_free)[HS_JE_MAX_BINS][2];   /* per arena, per bin: count, bytes */
	uint64_t (*ext_free)[4][2];                 /* per arena, per state */
	struct totals tot;
};

static bool is_meta(const struct walk *w, uint64_t addr)
{
	return bsearch(&addr, w->meta, w->nmeta, sizeof(uint64_t), u64_cmp) != NULL;
}

/* The allocation holding addr: a slab region's start, or a large extent's user
 * pointer; 0 when addr is in no active extent. */
static uint64_t allocation_of(const struct walk *w, uint64_t addr)
{
	const struct je_extent *x = extent_of(&w->xs, addr);
	if (!x || x->state != HS_JE_ACTIVE)
		return 0;
	if (!x->slab)
		return x->addr;
	if (x->szind >= w->j->sizes.nbins)
		return 0;
	uint64_t reg = w->j->sizes.bins[x->szind].reg_size;
	return x->base + (addr - x->base) / reg * reg;
}

/* jemalloc's own allocations in its heap: each tcache's stack (one allocation
 * per tcache), and explicit tcaches' tcache_t. */
static struct hs_error *find_meta(struct walk *w)
{
	struct je_state *j = w->j;
	w->meta = calloc(2 * j->ntcaches + 1, sizeof(uint64_t));
	if (!w->meta)
		return &hs_error_nomem;
	for (size_t t = 0; t < j->ntcaches; t++) {
		uint64_t a = w->cs.stacks && t < w->cs.nstacks ? allocation_of(w, w->cs.stacks[t]) : 0;
		if (a)
			w->meta[w->nmeta++] = a;
		a = allocation_of(w, j->tcaches[t].address);
		if (a)
			w->meta[w->nmeta++] = a;
	}
	if (w->nmeta)
		qsort(w->meta, w->nmeta, sizeof(uint64_t), u64_cmp);
	return NULL;
}

static unsigned local_arena(struct walk *w, unsigned ind)
{
	struct je_arena *a = arena_add(w->j, ind, 0);
	return a ? (unsigned)(a - w->j->arenas) : HS_ARENA_NONE;
}

static struct hs_error *add_block(struct walk *w, uint64_t addr, uint64_t size, unsigned where,
				  unsigned local)
{
	unsigned global = local == HS_ARENA_NONE ? HS_ARENA_NONE : w->global_base + local;
	if (local != HS_ARENA_NONE) {
		struct hs_arena *ar = &w->j->arenas[local].out;
		if (hs_where_is_free(where)) {
			ar->free_count++;
			ar->free_bytes += size;
		} else if (hs_where_is_used(where)) {
			ar->used_count++;
			ar->used_bytes += size;
		}
	}
	return hs_heap_add(w->heap, addr, size, where, global);
}

static unsigned cached_or(struct walk *w, uint64_t addr, unsigned szind, unsigned other)
{
	struct je_cached *c = cached_find(&w->cs, addr);
	if (!c)
		return other;
	if (c->bin != szind) {
		diag(w->j, D_TCACHE, HS_DIAG_ERROR, addr,
		     "0x%" PRIx64 " sits in bin %u of tcache 0x%" PRIx64 " but is an object of size class %u", addr,
		     c->bin, w->j->tcaches[c->tcache].address, szind);
		return other;
	}
	c->matched = true;
	return WST(JE_TCACHE);
}

static struct hs_error *emit_slab(struct walk *w, const struct je_extent *x, unsigned local)
{
	struct je_state *j = w->j;
	if (x->szind >= j->sizes.nbins) {
		diag(j, D_SLAB, HS_DIAG_ERROR, x->base, "slab 0x%" PRIx64 " has size class %u, not a bin; skipped",
		     x->base, x->szind);
		return NULL;
	}
	const struct hs_je_bin_info *bi = &j->sizes.bins[x->szind];
	if (x->size != bi->slab_size || x->addr != x->base) {
		diag(j, D_SLAB, HS_DIAG_ERROR, x->base,
		     "slab 0x%" PRIx64 " of %" PRIu64 "-byte regions is %" PRIu64 " bytes, not %" PRIu64 "; skipped",
		     x->base, bi->reg_size, x->size, bi->slab_size);
		return NULL;
	}
	unsigned nfree = hs_je_bitmap_count_free(x->bitmap, bi->nregs);
	if (nfree != x->nfree)
		diag(j, D_SLAB, HS_DIAG_WARNING, x->base,
		     "slab 0x%" PRIx64 ": its bitmap shows %u free regions, its edata_t says %u (a core taken mid-update?); the bitmap is used",
		     x->base, nfree, x->nfree);
	w->tot.slabs++;
	for (unsigned r = 0; r < bi->nregs; r++) {
		uint64_t a = x->base + (uint64_t)r * bi->reg_size;
		unsigned where;
		if (hs_je_region_free(x->bitmap, r)) {
			where = WST(JE_SLAB);
			if (cached_find(&w->cs, a))
				diag(j, D_TCACHE, HS_DIAG_ERROR, a,
				     "0x%" PRIx64 " is in a tcache and free in its slab: a double free, or a core taken mid-flush",
				     a);
			if (local < j->narenas) {
				w->slab_free[local][x->szind][0]++;
				w->slab_free[local][x->szind][1] += bi->reg_size;
			}
		} else {
			w->tot.allocated += bi->reg_size;
			where = cached_or(w, a, x->szind, is_meta(w, a) ? HS_WHERE_META : HS_WHERE_USED);
			if (where == WST(JE_TCACHE))
				w->tot.tcache += bi->reg_size;
			else if (where == HS_WHERE_META)
				w->tot.internal += bi->reg_size;
		}
		HS_CHECK(add_block(w, a, bi->reg_size, where, local));
	}
	return NULL;
}

static struct hs_error *emit_large(struct walk *w, const struct je_extent *x, unsigned local)
{
	struct je_state *j = w->j;
	if (x->szind >= j->sizes.nsizes) {
		diag(j, D_LARGE, HS_DIAG_ERROR, x->addr, "large extent 0x%" PRIx64 " has size class %u of %u; skipped",
		     x->base, x->szind, j->sizes.nsizes);
		return NULL;
	}
	uint64_t usize = j->sizes.index2size[x->szind];
	if (x->addr - x->base + usize > x->size) {
		diag(j, D_LARGE, HS_DIAG_ERROR, x->addr,
		     "large allocation 0x%" PRIx64 " of %" PRIu64 " bytes does not fit its %" PRIu64 "-byte extent at 0x%" PRIx64 "; skipped",
		     x->addr, usize, x->size, x->base);
		return NULL;
	}
	w->tot.large++;
	w->tot.allocated += usize;
	unsigned where = cached_or(w, x->addr, x->szind, is_meta(w, x->addr) ? HS_WHERE_META : WST(JE_LARGE));
	if (where == WST(JE_TCACHE))
		w->tot.tcache += usize;
	else if (where == HS_WHERE_META)
		w->tot.internal += usize;
	return add_block(w, x->addr, usize, where, local);
}

static struct hs_error *emit_extents(struct walk *w)
{
	struct je_state *j = w->j;
	for (size_t i = 0; i < w->xs.n; i++) {
		const struct je_extent *x = &w->xs.v[i];
		if ((i & 0xfff) == 0 && hs_walk_interrupted(j->ctx))
			return hs_error_create(HS_ERR_INTERRUPTED, "interrupted");
		unsigned local = local_arena(w, x->arena);
		if (local == HS_ARENA_NONE)
			return &hs_error_nomem;
		switch (x->state) {
		case HS_JE_ACTIVE:
			w->tot.active += x->size;
			HS_CHECK(x->slab ? emit_slab(w, x, local) : emit_large(w, x, local));
			break;
		case HS_JE_DIRTY:
		case HS_JE_MUZZY:
		case HS_JE_RETAINED:
			*(x->state == HS_JE_DIRTY ? &w->tot.dirty : x->state == HS_JE_MUZZY ? &w->tot.muzzy : &w->tot.retained) += x->size;
			w->ext_free[local][x->state][0]++;
			w->ext_free[local][x->state][1] += x->size;
			HS_CHECK(add_block(w, x->base, x->size, WST(JE_EXTENT), local));
			break;
		default:
			diag(j, D_EDATA, HS_DIAG_WARNING, x->base,
			     "extent 0x%" PRIx64 "-0x%" PRIx64 " is being %s (a core taken inside the allocator); left out",
			     x->base, x->base + x->size, x->state == HS_JE_MERGING ? "merged" : "changed");
		}
	}
	return NULL;
}

/* Base blocks: jemalloc's metadata (arena_t, edata_t, rtree leaves), one chain
 * per arena's base_t. */
static struct hs_error *emit_base(struct walk *w)
{
	struct je_state *j = w->j;
	const struct hs_je_layout *L = j->L;
	uint64_t seen[64];
	size_t nseen = 0;
	for (size_t a = 0; a < j->narenas; a++) {
		uint64_t base = j->arenas[a].base, b;
		bool dup = false;
		for (size_t k = 0; k < nseen; k++)
			dup |= seen[k] == base;
		if (!base || dup || !rd64(j, base + L->base_blocks, &b))
			continue;
		if (nseen < 64)
			seen[nseen++] = base;
		uint64_t total = 0, mapped = 0;
		for (unsigned n = 0; b; n++) {
			uint64_t size;
			uint64_t page = UINT64_C(1) << L->lg_page;
			if (n == MAX_BASE_BLOCKS || !plausible_ptr(b, page) || !rd64(j, b + L->block_size, &size) ||
			    !size || (size & (page - 1)) || size >= (UINT64_C(1) << 40)) {
				diag(j, D_OTHER, HS_DIAG_WARNING, b,
				     "the base blocks of arena %u end at 0x%" PRIx64 " (unreadable or not a block)", j->arenas[a].ind, b);
				break;
			}
			if (extent_of(&w->xs, b) || extent_of(&w->xs, b + size - 1)) {
				diag(j, D_OTHER, HS_DIAG_ERROR, b, "base block 0x%" PRIx64 " of arena %u overlaps the heap; skipped",
				     b, j->arenas[a].ind);
			} else {
				struct hs_region r = { b, b + size, HS_REGION_META, (unsigned)a };
				HS_CHECK(hs_alloc_desc_add_region(w->desc, &r));
				HS_CHECK(hs_heap_add(w->heap, b, size, HS_WHERE_META, w->global_base + (unsigned)a));
				total += size;
			}
			if (!rd64(j, b + L->block_next, &b))
				break;
		}
		w->tot.base += total;
		if (rd64(j, base + L->base_mapped, &mapped) && mapped != total)
			diag(j, D_OTHER, HS_DIAG_INFO, base,
			     "base of arena %u: its blocks add up to %" PRIu64 " bytes, its stats say %" PRIu64,
			     j->arenas[a].ind, total, mapped);
	}
	return NULL;
}

/* Heap regions: runs of adjacent extents of one arena. */
static struct hs_error *describe_regions(struct walk *w)
{
	for (size_t i = 0; i < w->xs.n;) {
		const struct je_extent *x = &w->xs.v[i];
		size_t k = i + 1;
		uint64_t end = x->base + x->size;
		while (k < w->xs.n && w->xs.v[k].arena == x->arena && w->xs.v[k].base == end) {
			end += w->xs.v[k].size;
			k++;
		}
		struct hs_region r = { x->base, end, HS_REGION_HEAP, local_arena(w, x->arena) };
		HS_CHECK(hs_alloc_desc_add_region(w->desc, &r));
		i = k;
	}
	return NULL;
}

static struct hs_error *describe_lists(struct walk *w)
{
	struct je_state *j = w->j;
	// Tcache bins: what each holds, against what its cache_bin_t declares.
	uint64_t (*per)[HS_JE_MAX_SIZES][3] = calloc(j->ntcaches ? j->ntcaches : 1, sizeof(*per));
	if (!per)
		return &hs_error_nomem;
	for (size_t i = 0; i < w->cs.n; i++) {
		const struct je_cached *c = &w->cs.v[i];
		per[c->tcache][c->bin][0]++;
		if (c->matched) {
			per[c->tcache][c->bin][1]++;
			per[c->tcache][c->bin][2] += j->sizes.index2size[c->bin];
		} else {
			diag(j, D_TCACHE, HS_DIAG_ERROR, c->ptr,
			     "bin %u of tcache 0x%" PRIx64 " holds 0x%" PRIx64 ", which is no allocated object of that size class",
			     c->bin, j->tcaches[c->tcache].address, c->ptr);
		}
	}
	struct hs_error *err = NULL;
	for (size_t t = 0; t < j->ntcaches && !err; t++) {
		for (unsigned b = 0; b < j->sizes.nsizes && !err; b++) {
			if (!per[t][b][0])
				continue;
			struct hs_freelist l = {
				.where = WST(JE_TCACHE), .arena = HS_ARENA_NONE, .tid = j->tcaches[t].tid,
				.owner = j->tcaches[t].address, .index = (int)b, .chunk_size = j->sizes.index2size[b],
				.count = per[t][b][1], .bytes = per[t][b][2], .declared = (int64_t)per[t][b][0],
			};
			err = hs_alloc_desc_add_list(w->desc, &l);
		}
	}
	free(per);
	HS_CHECK(err);
	for (size_t a = 0; a < j->narenas; a++) {
		for (unsigned b = 0; b < j->sizes.nbins; b++) {
			if (!w->slab_free[a][b][0])
				continue;
			uint64_t owner = j->arenas[a].address ? j->arenas[a].address + j->L->arena_bins + b * j->L->bin_size : 0;
			struct hs_freelist l = {
				.where = WST(JE_SLAB), .arena = (unsigned)a, .owner = owner, .index = (int)b,
				.chunk_size = j->sizes.bins[b].reg_size, .count = w->slab_free[a][b][0],
				.bytes = w->slab_free[a][b][1], .declared = -1,
			};
			HS_CHECK(hs_alloc_desc_add_list(w->desc, &l));
		}
		for (unsigned s = HS_JE_DIRTY; s <= HS_JE_RETAINED; s++) {
			if (!w->ext_free[a][s][0])
				continue;
			struct hs_freelist l = {
				.where = WST(JE_EXTENT), .arena = (unsigned)a, .owner = j->arenas[a].address, .index = (int)s,
				.chunk_size = UINT64_C(1) << j->L->lg_page, .count = w->ext_free[a][s][0],
				.bytes = w->ext_free[a][s][1], .declared = -1,
			};
			HS_CHECK(hs_alloc_desc_add_list(w->desc, &l));
		}
	}
	return NULL;
}

static int arena_ind_cmp(const void *a, const void *b)
{
	const struct je_arena *x = a, *y = b;
	return (x->ind > y->ind) - (x->ind < y->ind);
}

static struct hs_error *describe_arenas(struct walk *w)
{
	struct je_state *j = w->j;
	const struct hs_je_layout *L = j->L;
	uint64_t *sys = calloc(j->narenas ? j->narenas : 1, sizeof(uint64_t));
	if (!sys)
		return &hs_error_nomem;
	for (size_t i = 0; i < w->xs.n; i++) {
		const struct je_extent *x = &w->xs.v[i];
		if (x->state != HS_JE_RETAINED && x->arena < 4096 && j->local_of[x->arena])
			sys[j->local_of[x->arena] - 1] += x->size;
	}
	struct hs_error *err = NULL;
	for (size_t a = 0; a < j->narenas && !err; a++) {
		struct hs_arena *ar = &j->arenas[a].out;
		uint32_t nthreads;
		ar->address = j->arenas[a].address;
		snprintf(ar->label, sizeof(ar->label), "je arena %u", j->arenas[a].ind);
		ar->system_mem = sys[a];
		ar->nthreads = ar->address && rd32(j, ar->address + L->arena_nthreads, &nthreads) ? (int)nthreads : -1;
		err = hs_alloc_desc_add_arena(w->desc, ar);
	}
	free(sys);
	return err;
}

static void describe_facts(struct walk *w)
{
	struct je_state *j = w->j;
	const struct hs_je_layout *L = j->L;
	struct hs_alloc_desc *d = w->desc;
	// "5.3.0-0-g54eaed1d8b56b1aa...": the version and a 12-digit commit fit.
	snprintf(d->version, sizeof(d->version), "%.*s", (int)sizeof(d->version) - 1,
		 j->version[0] ? j->version : L->name);
	char *g = strstr(d->version, "-g");
	if (g && strlen(g) > 14)
		g[14] = 0;
	snprintf(d->layout_source, sizeof(d->layout_source), "built-in %s; emap by %.38s", L->name, j->how);
	hs_alloc_desc_fact(d, "je_arena_emap_global", j->emap);
	hs_alloc_desc_fact(d, "rtree root", j->emap + L->emap_root);
	if (j->arenas_array)
		hs_alloc_desc_fact(d, "je_arenas", j->arenas_array);
	if (j->have_tpoff)
		hs_alloc_desc_fact(d, "tsd TLS offset (negated)", (uint64_t)-j->tpoff);
	hs_alloc_desc_fact(d, "LG_PAGE", L->lg_page);
	hs_alloc_desc_fact(d, "LG_QUANTUM", L->lg_quantum);
	hs_alloc_desc_fact(d, "LG_VADDR", L->lg_vaddr);
	hs_alloc_desc_fact(d, "rtree levels", L->height);
	hs_alloc_desc_fact(d, "SC_NBINS", j->sizes.nbins);
	hs_alloc_desc_fact(d, "SC_NSIZES", j->sizes.nsizes);
	hs_alloc_desc_fact(d, "size tables checked", strcmp(j->sizes_how, "assumed") != 0);
	hs_alloc_desc_fact(d, "sizeof(edata_t)", L->edata_size);
	hs_alloc_desc_fact(d, "sizeof(tsd_t)", L->tsd_size);
	hs_alloc_desc_fact(d, "extents", w->xs.n);
	hs_alloc_desc_fact(d, "slabs", w->tot.slabs);
	hs_alloc_desc_fact(d, "large extents", w->tot.large);
	hs_alloc_desc_fact(d, "tcaches", j->ntcaches);
	hs_alloc_desc_fact(d, "allocated_bytes", w->tot.allocated);
	hs_alloc_desc_fact(d, "active_bytes", w->tot.active);
	hs_alloc_desc_fact(d, "tcache_bytes", w->tot.tcache);
	hs_alloc_desc_fact(d, "internal_bytes", w->tot.internal);
	hs_alloc_desc_fact(d, "dirty_bytes", w->tot.dirty);
	hs_alloc_desc_fact(d, "muzzy_bytes", w->tot.muzzy);
	hs_alloc_desc_fact(d, "retained_bytes", w->tot.retained);
	hs_alloc_desc_fact(d, "base_bytes", w->tot.base);
}

static void walk_free(struct walk *w)
{
	free(w->xs.v);
	free(w->cs.v);
	free(w->cs.stacks);
	free(w->meta);
	free(w->slab_free);
	free(w->ext_free);
}

static struct hs_error *walk_run(struct walk *w)
{
	struct je_state *j = w->j;
	HS_CHECK(collect_extents(j, &w->xs));
	HS_CHECK(find_tcaches(j));
	HS_CHECK(read_tcaches(j, &w->cs));
	HS_CHECK(find_meta(w));
	// Every arena an extent names gets an entry (found or not), before the
	// per-arena tables are sized.
	for (size_t i = 0; i < w->xs.n; i++)
		if (local_arena(w, w->xs.v[i].arena) == HS_ARENA_NONE)
			return &hs_error_nomem;
	// Arenas in index order: local index = position.
	if (j->narenas) {
		qsort(j->arenas, j->narenas, sizeof(*j->arenas), arena_ind_cmp);
		memset(j->local_of, 0, sizeof(j->local_of));
		for (size_t a = 0; a < j->narenas; a++)
			j->local_of[j->arenas[a].ind] = (uint16_t)(a + 1);
	}
	w->slab_free = calloc(j->narenas ? j->narenas : 1, sizeof(*w->slab_free));
	w->ext_free = calloc(j->narenas ? j->narenas : 1, sizeof(*w->ext_free));
	if (!w->slab_free || !w->ext_free)
		return &hs_error_nomem;
	HS_CHECK(emit_extents(w));
	HS_CHECK(emit_base(w));
	HS_CHECK(describe_arenas(w));
	HS_CHECK(describe_regions(w));
	HS_CHECK(describe_lists(w));
	describe_facts(w);
	if (!j->ntcaches)
		hs_walk_diag(j->ctx, HS_DIAG_WARNING, 0,
			    "no tcache was found (no arena ring, no thread's TLS): objects cached in tcaches are counted as used");
	hs_walk_diag_flush(j->ctx);
	return NULL;
}

static struct hs_error *je_walk(struct hs_walk_ctx *ctx, void *state, struct hs_heap *heap,
				struct hs_alloc_desc *desc)
{
	struct je_state *j = state;
	j->ctx = ctx;
	struct walk w = { .j = j, .heap = heap, .desc = desc, .global_base = ctx->arena_base };
	struct hs_error *err = walk_run(&w);
	walk_free(&w);
	return err;
}

static const char *const jemalloc_overrides[] = { "je_arenas", "je_arena_emap_global", "je_locator", NULL };

const struct hs_walker hs_jemalloc_walker = {
	.name = "jemalloc",
	.title = "jemalloc",
	.states = je_states,
	.nstates = JE_NSTATES,
	.detect = je_detect,
	.walk = je_walk,
	.destroy = state_destroy,
	.overrides = jemalloc_overrides,
};
