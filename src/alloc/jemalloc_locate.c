/* jemalloc_locate.c - jemalloc walker, locate: the emap of a jemalloc without
 * symbols (called by je_locate_emap in jemalloc_detect.c).
 *
 * Reads the module's code (RIP-relative leas in exported functions), each
 * thread's TLS (tsd -> rtree_ctx -> leaf -> root; the TLS offset from the
 * module's TPOFF64 relocations or PT_TLS) and the module's writable memory (a
 * scan); produces a candidate emap address, accepted only
 * when the rtree it implies decodes consistently (je_emap_check,
 * jemalloc_rtree.c).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jemalloc_walker.h"

/* --- writable memory of the module ------------------------------------- */

/* The module's writable segments, from its program headers (relocated), or
 * from the core's writable segments within the module's load range. */
size_t je_module_rw(struct je_state *j, struct range *out, size_t cap)
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
bool je_scan_words(struct je_state *j, uint64_t lo, uint64_t hi,
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


/* --- locators ------------------------------------------------------------ */

static bool try_emap(struct je_state *j, uint64_t emap, const char *how)
{
	struct emap_score sc;
	if (!je_emap_check(j, emap, &sc))
		return false;
	j->emap = emap;
	snprintf(j->how, sizeof(j->how), "%s", how);
	return true;
}

/* Is the rtree root of emap all zero (jemalloc linked in, never used)? */
bool je_root_is_empty(struct je_state *j, uint64_t emap, uint64_t *first_ret)
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
bool je_accept_given(struct je_state *j, uint64_t emap, const char *how)
{
	if (try_emap(j, emap, how))
		return true;
	struct emap_score sc;
	je_emap_check(j, emap, &sc);
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
bool je_locate_by_disassembly(struct je_state *j)
{
	static const char *const funcs[] = {
		"malloc_usable_size", "sallocx", "xallocx", "sdallocx", "free", "realloc", "rallocx",
		"dallocx", "aligned_alloc", "valloc", "memalign", "posix_memalign",
		"je_malloc_usable_size", "je_sallocx", "je_free", "_rjem_malloc_usable_size", "_rjem_sallocx",
	};
	if (!j->file)
		return false;
	struct range rw[8];
	size_t nrw = je_module_rw(j, rw, 8);
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
bool je_tsd_valid(struct je_state *j, uint64_t tsd)
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
		if (fs && je_tsd_valid(j, fs + (uint64_t)tpoff))
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

void je_find_tpoff(struct je_state *j)
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
		if (je_scan_words(j, rw[r].lo, rw[r].hi, word_equals, &f)) {
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
bool je_locate_by_tls(struct je_state *j)
{
	const struct hs_je_layout *L = j->L;
	if (!j->have_tpoff)
		return false;
	struct range rw[8];
	size_t nrw = je_module_rw(j, rw, 8);
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
				if (je_scan_words(j, 0, UINT64_MAX, node_slot_try, &ns))
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

bool je_locate_by_scan(struct je_state *j)
{
	struct range rw[8];
	size_t nrw = je_module_rw(j, rw, 8);
	uint64_t budget = UINT64_C(1) << 28;   // at most 2 GiB read, about half a second
	for (size_t r = 0; r < nrw; r++)
		if (je_scan_words(j, rw[r].lo, rw[r].hi, leaf_candidate, &budget))
			return true;
	return false;
}
