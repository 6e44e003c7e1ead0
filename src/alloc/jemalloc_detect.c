/* jemalloc_detect.c - jemalloc walker, build: which jemalloc this is and where
 * its roots are (called by je_detect in alloc_jemalloc.c).
 *
 * Reads the modules (symbols.c), the module's ELF file (version string,
 * .rodata), its symbols and the core's memory; produces in struct je_state
 * the module, the version and the candidate layouts (jemalloc_layout.h), the
 * size classes (their sz_index2size_tab and bin_infos images looked for in the
 * module's writable memory), the emap (by override or symbol, else by the
 * locators of jemalloc_locate.c, each checked by je_emap_check) and the
 * arenas.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jemalloc_walker.h"

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


/* --- detection ------------------------------------------------------------- */


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
	struct hs_module *m = &j->nt_module;
	if (!hs_walk_module_from_files(j->ctx, "libjemalloc", m))
		return NULL;
	j->mod_from_notes = true;
	hs_walk_diag(j->ctx, HS_DIAG_INFO, m->start,
		    "%s is not among the modules the core lists (truncated?); using it as the core's file note maps it",
		    m->path);
	return m;
}

/* Which module holds jemalloc, if any. */
struct hs_module *je_find_module(struct je_state *j, struct hs_symbol *emap_sym, bool *have_sym)
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
struct hs_error *je_check_build(struct je_state *j)
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
struct hs_error *je_check_size_classes(struct je_state *j)
{
	const struct hs_je_layout *L = j->L;
	HS_CHECK(hs_je_sizes_compute(L->lg_quantum, L->lg_page, &j->sizes));
	if (j->sizes.nbins != L->nbins || j->sizes.nsizes != L->nsizes)
		return hs_error_create(HS_ERR_OTHER, "internal: size classes disagree with the layout table");
	struct range rw[8];
	size_t nrw = je_module_rw(j, rw, 8);
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
	je_find_tpoff(j);
	j->tpoff_for = L;
}

static bool run_locator(struct je_state *j, unsigned which)
{
	return (which == 1 && je_locate_by_disassembly(j)) || (which == 2 && je_locate_by_tls(j)) ||
	       (which == 3 && je_locate_by_scan(j));
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

struct hs_error *je_locate_emap(struct je_state *j, const struct hs_symbol *sym, bool have_sym)
{
	char tried[160];
	cands_names(j, tried, sizeof(tried));
	uint64_t v;
	if (hs_walk_override(j->ctx, "je_arena_emap_global", &v)) {
		for (size_t c = 0; c < j->ncands; c++) {
			use_layout(j, j->cands[c]);
			if (je_accept_given(j, v, "override"))
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
			if (je_root_is_empty(j, sym->address, &leaf0))
				return hs_error_create(HS_ERR_NOT_FOUND,
						       "jemalloc is linked into %s but holds no memory (its extent map is empty)",
						       j->module_name);
			if (je_accept_given(j, sym->address, "symbol"))
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

struct je_arena *je_arena_add(struct je_state *j, unsigned ind, uint64_t address)
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
	if (arena_valid(j, v, &ind) && !je_arena_add(j, ind, v))
		*nomem = true;
	return false;
}

/* The arenas: je_arenas[] (symbol or override), else every pointer to an
 * arena_t in the module's writable memory and in the threads' tsd. */
struct hs_error *je_find_arenas(struct je_state *j)
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
			if (!je_arena_add(j, ind, a))
				return &hs_error_nomem;
		}
	} else {
		struct range rw[8];
		size_t nrw = je_module_rw(j, rw, 8);
		bool nomem = false;
		for (size_t r = 0; r < nrw; r++)
			je_scan_words(j, rw[r].lo, rw[r].hi, arena_word, &nomem);
		if (nomem)
			return &hs_error_nomem;
	}
	const struct hs_notes *nt = j->ctx->notes;
	for (size_t t = 0; j->have_tpoff && t < nt->nthreads; t++) {
		uint64_t tsd = nt->threads[t].regs[HS_REG_FS_BASE] + (uint64_t)j->tpoff, a;
		unsigned ind;
		if (je_tsd_valid(j, tsd) && rd64(j, tsd + L->tsd_arena, &a) && a && arena_valid(j, a, &ind) &&
		    !je_arena_add(j, ind, a))
			return &hs_error_nomem;
	}
	for (size_t i = 0; i < j->narenas; i++)
		if (j->arenas[i].address)
			rd64(j, j->arenas[i].address + L->arena_base, &j->arenas[i].base);
	return NULL;
}
