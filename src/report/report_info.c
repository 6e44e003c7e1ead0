/* report_info.c - `info`: the process, its threads, its modules, and its memory
 * map with a category for every mapping. */
#include <elf.h>
#include <inttypes.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include "commands.h"

enum category {
	CAT_MODULE_TEXT, CAT_MODULE_RODATA, CAT_MODULE_DATA, CAT_STACK, CAT_HEAP, CAT_MMAPPED_CHUNK,
	CAT_ALLOC_META, CAT_VDSO, CAT_FILE, CAT_ANON, CAT_NOT_DUMPED, CAT_COUNT
};
static const char *const category_names[CAT_COUNT] = {
	"module-text", "module-rodata", "module-data", "stack", "heap", "mmapped-chunk", "allocator-meta",
	"vdso", "file", "anonymous", "not-dumped",
};

struct mapping {
	const struct hs_segment *seg;
	enum category cat;
	const char *name;           /* file path or module name, may be NULL */
	uint64_t free_bytes;        /* free heap blocks inside (after the walk) */
};

static const struct hs_mapped_file *file_at(const struct hs_notes *n, uint64_t addr)
{
	for (size_t i = 0; i < n->nfiles; i++)
		if (n->files[i].start <= addr && addr < n->files[i].end)
			return &n->files[i];
	return NULL;
}

static bool is_stack(const struct hs_target *t, const struct hs_segment *seg)
{
	for (size_t i = 0; i < t->notes.nthreads; i++) {
		uint64_t sp = t->notes.threads[i].regs[HS_REG_RSP];
		if (seg->start <= sp && sp < seg->end)
			return true;
	}
	return false;
}

// The allocator's region kind for a mapping, when the walk found one inside it.
static int region_category(const struct hs_session *s, const struct hs_segment *seg)
{
	for (size_t d = 0; d < s->ndesc; d++) {
		for (size_t i = 0; i < s->desc[d].nregions; i++) {
			const struct hs_region *r = &s->desc[d].regions[i];
			if (r->end <= seg->start || r->start >= seg->end)
				continue;
			return r->kind == HS_REGION_HEAP ? CAT_HEAP :
			       r->kind == HS_REGION_MMAPPED_CHUNK ? CAT_MMAPPED_CHUNK : CAT_ALLOC_META;
		}
	}
	return -1;
}

static uint64_t free_bytes_in(const struct hs_heap *h, uint64_t start, uint64_t end)
{
	uint64_t sum = 0;
	for (size_t i = hs_heap_lower_bound(h, start); i < h->n && h->blocks[i].address < end; i++)
		if (hs_where_is_free(hs_block_where(&h->blocks[i])))
			sum += hs_block_size(&h->blocks[i]);
	return sum;
}

static void classify(struct hs_session *s, bool have_heap, struct mapping *m)
{
	const struct hs_target *t = s->target;
	const struct hs_segment *seg = m->seg;
	const struct hs_mapped_file *f = file_at(&t->notes, seg->start);
	struct hs_module *mod = s->symbols ? hs_symbols_module_at(s->symbols, seg->start) : NULL;
	uint64_t vdso = hs_notes_auxv(&t->notes, AT_SYSINFO_EHDR);
	int rc = have_heap ? region_category(s, seg) : -1;
	m->name = f ? f->path : mod ? mod->name : NULL;
	if (vdso && seg->start <= vdso && vdso < seg->end)
		m->cat = CAT_VDSO, m->name = "[vdso]";
	else if (seg->start == UINT64_C(0xffffffffff600000))
		m->cat = CAT_VDSO, m->name = "[vsyscall]";
	else if (rc == CAT_HEAP)   // before stacks: Go's goroutine stacks are in its heap arenas
		m->cat = rc;
	else if (is_stack(t, seg))
		m->cat = CAT_STACK;
	else if (rc >= 0 && !(rc == CAT_ALLOC_META && mod))
		m->cat = rc;
	else if (mod || (f && t->kind == HS_TARGET_PID && strstr(f->path, ".so")))
		m->cat = (seg->flags & HS_SEG_X) ? CAT_MODULE_TEXT :
			 (seg->flags & HS_SEG_W) ? CAT_MODULE_DATA : CAT_MODULE_RODATA;
	else if (f)
		m->cat = CAT_FILE;
	else if (seg->filesz == 0)
		m->cat = CAT_NOT_DUMPED;
	else
		m->cat = CAT_ANON;
	if (have_heap && (m->cat == CAT_HEAP || m->cat == CAT_MMAPPED_CHUNK))
		m->free_bytes = free_bytes_in(&s->heap, seg->start, seg->end);
}

// Mappings known only from NT_FILE (gcore leaves read-only file mappings out)
// have unknown permissions.
static void perms(const struct hs_segment *seg, char buf[4])
{
	if (seg->flags & HS_SEG_NOT_IN_CORE) {
		strcpy(buf, "???");
		return;
	}
	buf[0] = seg->flags & HS_SEG_R ? 'r' : '-';
	buf[1] = seg->flags & HS_SEG_W ? 'w' : '-';
	buf[2] = seg->flags & HS_SEG_X ? 'x' : '-';
	buf[3] = 0;
}

static void build_id_hex(const struct hs_module *m, char *buf, size_t len)
{
	hs_build_id_hex(m->build_id, m->build_id_len, buf, len);
}

/* What info shows, for its two renderers: the target and the process (from
 * the target), threads (the notes) and modules (the symbols) as they are,
 * and every mapping classified with the totals per category. */
struct info_model {
	struct hs_session *s;
	bool have_heap;
	struct mapping *maps;          /* one per segment of the target's memory */
	size_t nmaps;
	struct { uint64_t count, bytes, dumped, free; } tot[CAT_COUNT];
	int signal;                    /* the one that ended the process, 0 unknown */
};

static struct hs_error *info_model(struct hs_session *s, bool have_heap, struct info_model *m)
{
	const struct hs_target *t = s->target;
	const struct hs_memory *mem = &t->mem;
	*m = (struct info_model){ .s = s, .have_heap = have_heap, .nmaps = mem->nsegs };
	m->maps = calloc(mem->nsegs ? mem->nsegs : 1, sizeof(*m->maps));
	if (!m->maps)
		return &hs_error_nomem;
	for (size_t i = 0; i < mem->nsegs; i++) {
		struct mapping *mp = &m->maps[i];
		mp->seg = &mem->segs[i];
		classify(s, have_heap, mp);
		m->tot[mp->cat].count++;
		m->tot[mp->cat].bytes += mp->seg->end - mp->seg->start;
		m->tot[mp->cat].dumped += mp->seg->filesz;
		m->tot[mp->cat].free += mp->free_bytes;
	}
	m->signal = t->notes.have_siginfo ? t->notes.signo : t->notes.nthreads ? t->notes.threads[0].signo : 0;
	return NULL;
}

static bool has_free(int cat)
{
	return cat == CAT_HEAP || cat == CAT_MMAPPED_CHUNK;
}

/* --- JSON ---------------------------------------------------------------- */

static void info_json(struct hs_cmd *c, const struct info_model *m)
{
	const struct hs_target *t = m->s->target;
	struct hs_symbols *sy = m->s->symbols;
	struct hs_out *o = c->out;
	char sym[256], id[160], p[4];
	hs_cmd_json_begin(c, "info");
	hs_json_key(o, "target");
	hs_json_begin_object(o);
	hs_json_kstr(o, "kind", t->kind == HS_TARGET_CORE ? "core" : t->kind == HS_TARGET_PID ? "live" : "memory");
	hs_json_kstr(o, "path", t->path);
	hs_json_ku64(o, "size", t->file_size);
	hs_json_kbool(o, "truncated", t->missing_bytes != 0);
	hs_json_ku64(o, "missing_bytes", t->missing_bytes);
	hs_json_end_object(o);
	hs_json_key(o, "process");
	hs_json_begin_object(o);
	hs_json_ki64(o, "pid", t->pid);
	hs_json_kstr(o, "name", t->notes.fname);
	hs_json_kstr(o, "command_line", t->notes.psargs);
	hs_json_ki64(o, "signal", m->signal);
	hs_json_end_object(o);

	hs_json_key(o, "threads");
	hs_json_begin_array(o);
	for (size_t i = 0; i < t->notes.nthreads; i++) {
		const struct hs_thread *th = &t->notes.threads[i];
		uint64_t pc = th->regs[HS_REG_RIP];
		bool have_sym = sy && hs_symbols_describe(sy, pc, sym, sizeof(sym));
		hs_json_begin_object(o);
		hs_json_ki64(o, "tid", th->tid);
		hs_json_ku64(o, "pc", pc);
		hs_json_kstr(o, "pc_symbol", have_sym ? sym : NULL);
		hs_json_ku64(o, "sp", th->regs[HS_REG_RSP]);
		hs_json_ku64(o, "fs_base", th->regs[HS_REG_FS_BASE]);
		hs_json_key(o, "stack");
		if (th->stack_hi) {
			hs_json_begin_object(o);
			hs_json_ku64(o, "start", th->stack_lo);
			hs_json_ku64(o, "end", th->stack_hi);
			hs_json_ku64(o, "size", th->stack_hi - th->stack_lo);
			hs_json_end_object(o);
		} else {
			hs_json_null(o);
		}
		hs_json_end_object(o);
	}
	hs_json_end_array(o);

	hs_json_key(o, "modules");
	hs_json_begin_array(o);
	for (size_t i = 0; sy && i < sy->nmodules; i++) {
		const struct hs_module *md = &sy->modules[i];
		build_id_hex(md, id, sizeof(id));
		hs_json_begin_object(o);
		hs_json_kstr(o, "name", md->name);
		hs_json_kstr(o, "path", md->path);
		hs_json_ku64(o, "start", md->start);
		hs_json_ku64(o, "end", md->end);
		hs_json_kstr(o, "build_id", md->build_id_len ? id : NULL);
		hs_json_kstr(o, "go_build_id", md->go_build_id[0] ? md->go_build_id : NULL);
		hs_json_kbool(o, "main", md->is_main);
		hs_json_kbool(o, "elf_found", md->elf_found);
		hs_json_kbool(o, "debuginfo_found", md->debug_found);
		hs_json_kstr(o, "debuginfo_path", md->debug_path);
		hs_json_kstr(o, "debuginfo_copy", md->debug_copy);
		hs_json_kbool(o, "build_id_mismatch", md->build_id_mismatch);
		hs_json_kstr(o, "mismatch_path", md->mismatch_path);
		hs_json_end_object(o);
	}
	hs_json_end_array(o);

	hs_json_key(o, "mappings");
	hs_json_begin_array(o);
	for (size_t i = 0; i < m->nmaps; i++) {
		const struct mapping *mp = &m->maps[i];
		perms(mp->seg, p);
		hs_json_begin_object(o);
		hs_json_ku64(o, "start", mp->seg->start);
		hs_json_ku64(o, "end", mp->seg->end);
		hs_json_kstr(o, "perms", p);
		hs_json_kstr(o, "category", category_names[mp->cat]);
		hs_json_ku64(o, "dumped", mp->seg->filesz);
		if (m->have_heap && has_free(mp->cat))
			hs_json_ku64(o, "free", mp->free_bytes);
		hs_json_kstr(o, "name", mp->name);
		hs_json_end_object(o);
	}
	hs_json_end_array(o);
	hs_json_key(o, "categories");
	hs_json_begin_array(o);
	for (int k = 0; k < CAT_COUNT; k++) {
		if (!m->tot[k].count)
			continue;
		hs_json_begin_object(o);
		hs_json_kstr(o, "category", category_names[k]);
		hs_json_ku64(o, "count", m->tot[k].count);
		hs_json_ku64(o, "bytes", m->tot[k].bytes);
		hs_json_ku64(o, "dumped", m->tot[k].dumped);
		if (has_free(k))
			hs_json_ku64(o, "free", m->tot[k].free);
		hs_json_end_object(o);
	}
	hs_json_end_array(o);
	if (m->have_heap)
		hs_cmd_json_allocators(c);
	hs_cmd_diagnostics(c);
	hs_json_end_object(o);
	hs_json_done(o);
}

/* --- text ---------------------------------------------------------------- */

static void text_threads(struct hs_out *o, const struct info_model *m)
{
	const struct hs_target *t = m->s->target;
	char sym[256], sz[32];
	hs_out_printf(o, "\nThreads (%zu):\n  %-8s %-18s %-40s %-18s %s\n", t->notes.nthreads,
		      "TID", "PC", "FUNCTION", "SP", "STACK");
	for (size_t i = 0; i < t->notes.nthreads; i++) {
		const struct hs_thread *th = &t->notes.threads[i];
		uint64_t pc = th->regs[HS_REG_RIP], sp = th->regs[HS_REG_RSP];
		bool have_sym = m->s->symbols && hs_symbols_describe(m->s->symbols, pc, sym, sizeof(sym));
		hs_out_printf(o, "  %-8d 0x%016" PRIx64 " %-40.40s 0x%016" PRIx64 " ", th->tid, pc,
			      have_sym ? sym : "?", sp);
		if (th->stack_hi)
			hs_out_printf(o, "0x%" PRIx64 "-0x%" PRIx64 " (%s)\n", th->stack_lo, th->stack_hi,
				      hs_fmt_size(th->stack_hi - th->stack_lo, sz, sizeof(sz)));
		else
			hs_out_puts(o, "unknown (sp is in no mapping)\n");
	}
}

static void text_modules(struct hs_out *o, const struct info_model *m)
{
	const struct hs_symbols *sy = m->s->symbols;
	size_t n = sy ? sy->nmodules : 0;
	char id[160];
	hs_out_printf(o, "\nModules (%zu):\n  %-33s %-40s %-5s %s\n", n, "RANGE", "BUILD-ID", "ELF", "DEBUG INFO  NAME");
	for (size_t i = 0; i < n; i++) {
		const struct hs_module *md = &sy->modules[i];
		build_id_hex(md, id, sizeof(id));
		hs_out_printf(o, "  0x%012" PRIx64 "-0x%012" PRIx64 " %-40s %-5s %-11s %s%s\n", md->start, md->end,
			      md->build_id_len ? id : "-", md->elf_found ? "yes" : md->build_id_mismatch ? "MISMATCH" : "no",
			      md->debug_found ? "yes" : "no", md->name, md->is_main ? " (main)" : "");
		if (md->path && strcmp(md->path, md->name))
			hs_out_printf(o, "  %-33s   elf: %s\n", "", md->path);
		if (md->debug_path)
			hs_out_printf(o, "  %-33s   debug: %s\n", "", md->debug_path);
		if (md->debug_copy)
			hs_out_printf(o, "  %-33s          read from its copy %s\n", "", md->debug_copy);
	}
}

static void text_mappings(struct hs_out *o, const struct info_model *m)
{
	char p[4], sz[32], dz[32], fz[32];
	hs_out_printf(o, "\nMemory map (%zu mappings):\n  %-33s %-4s %10s %10s %-14s %s\n", m->nmaps,
		      "RANGE", "PERM", "SIZE", "IN CORE", "CATEGORY", "NAME");
	for (size_t i = 0; i < m->nmaps; i++) {
		const struct mapping *mp = &m->maps[i];
		uint64_t size = mp->seg->end - mp->seg->start;
		perms(mp->seg, p);
		hs_out_printf(o, "  0x%012" PRIx64 "-0x%012" PRIx64 " %-4s %10s %10s %-14s %s\n", mp->seg->start,
			      mp->seg->end, p, hs_fmt_size(size, sz, sizeof(sz)),
			      mp->seg->filesz == size ? "all" : hs_fmt_size(mp->seg->filesz, dz, sizeof(dz)),
			      category_names[mp->cat], mp->name ? mp->name : "");
	}
	hs_out_printf(o, "\nBy category:\n  %-14s %6s %10s %10s %10s\n", "CATEGORY", "COUNT", "SIZE", "IN CORE", "FREE");
	for (int k = 0; k < CAT_COUNT; k++) {
		if (!m->tot[k].count)
			continue;
		hs_out_printf(o, "  %-14s %6" PRIu64 " %10s %10s %10s\n", category_names[k], m->tot[k].count,
			      hs_fmt_size(m->tot[k].bytes, sz, sizeof(sz)), hs_fmt_size(m->tot[k].dumped, dz, sizeof(dz)),
			      has_free(k) && m->have_heap ? hs_fmt_size(m->tot[k].free, fz, sizeof(fz)) : "");
	}
}

// Each allocator's layout: where it came from (a built-in table row, libc's
// DWARF, overrides) and the facts the walk used (offsets, sizes, roots).
static void text_allocators(struct hs_out *o, const struct info_model *m)
{
	for (size_t d = 0; d < m->s->ndesc; d++) {
		const struct hs_alloc_desc *a = &m->s->desc[d];
		hs_out_printf(o, "\nAllocator %s %s (layout: %s):\n", a->allocator, a->version, a->layout_source);
		for (size_t f = 0; f < a->nfacts; f++) {
			uint64_t v = a->facts[f].value;
			if (v >= 0x10000)
				hs_out_printf(o, "  %-28s 0x%" PRIx64 "\n", a->facts[f].name, v);
			else
				hs_out_printf(o, "  %-28s %" PRIu64 "\n", a->facts[f].name, v);
		}
	}
}

static void info_text(struct hs_cmd *c, const struct info_model *m)
{
	const struct hs_target *t = m->s->target;
	struct hs_out *o = c->out;
	char sz[32];
	hs_out_printf(o, "%-9s %s (%s)\n", t->kind == HS_TARGET_CORE ? "Core:" : "Process:",
		      t->path, hs_fmt_size(t->file_size, sz, sizeof(sz)));
	if (t->missing_bytes)
		hs_out_printf(o, "%-9s TRUNCATED: %s of dumped memory missing\n", "",
			      hs_fmt_size(t->missing_bytes, sz, sizeof(sz)));
	hs_out_printf(o, "%-9s pid %d, %s", "Process:", t->pid,
		      t->notes.psargs[0] ? t->notes.psargs : t->notes.fname);
	if (m->signal)
		hs_out_printf(o, ", signal %d (%s)", m->signal,
			      sigabbrev_np(m->signal) ? sigabbrev_np(m->signal) : "?");
	hs_out_puts(o, "\n");
	text_threads(o, m);
	text_modules(o, m);
	text_mappings(o, m);
	if (m->have_heap)
		text_allocators(o, m);
	hs_cmd_diagnostics(c);
}

struct hs_error *hs_cmd_info(struct hs_cmd *c)
{
	HS_CHECK(hs_cmd_parse(c, NULL, 0, NULL, 0, NULL));
	struct hs_error *err = hs_session_need_symbols(c->s);
	if (err) {
		hs_diag_add(&c->s->diags, HS_DIAG_WARNING, "symbols", 0, "%s", hs_error_message(err));
		hs_error_destroy(err);
	}
	// The heap walk adds allocator categories; its failure is a finding here.
	err = hs_session_need_heap(c->s);
	bool have_heap = !err;
	if (err && err->code == HS_ERR_INTERRUPTED)
		return err;
	if (err) {
		hs_diag_add(&c->s->diags, HS_DIAG_WARNING, "heap", 0, "%s", hs_error_message(err));
		hs_error_destroy(err);
	}
	struct info_model m;
	HS_CHECK(info_model(c->s, have_heap, &m));
	if (c->json)
		info_json(c, &m);
	else
		info_text(c, &m);
	free(m.maps);
	return NULL;
}
