/* locals.c - see locals.h. */
#include <dwarf.h>
#include <elfutils/libdwfl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "expr.h"
#include "graph.h"
#include "locals.h"
#include "roots.h"
#include "symbols.h"
#include "target.h"

#define MAX_FRAMES 256
#define MAX_NS_DEPTH 4

struct thread_locals {
	int tid;
	bool done;
	struct hs_local *v;
	size_t n, cap;
};

struct hs_locals {
	struct hs_locals_input in;
	struct thread_locals *threads;      /* parallel to the core's thread notes */
	size_t nthreads;
	bool tls_done;
	struct hs_local *tls;
	size_t ntls, captls;
};

static void local_free(struct hs_local *l)
{
	free(l->function);
	free(l->file);
}

void hs_locals_destroy(struct hs_locals *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nthreads; i++) {
		for (size_t j = 0; j < c->threads[i].n; j++)
			local_free(&c->threads[i].v[j]);
		free(c->threads[i].v);
	}
	for (size_t j = 0; j < c->ntls; j++)
		local_free(&c->tls[j]);
	free(c->threads);
	free(c->tls);
	free(c);
}

struct hs_locals *hs_locals_create(const struct hs_locals_input *in)
{
	struct hs_locals *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->in = *in;
	const struct hs_notes *notes = in->notes;
	c->threads = calloc(notes->nthreads ? notes->nthreads : 1, sizeof(*c->threads));
	if (!c->threads) {
		free(c);
		return NULL;
	}
	c->nthreads = notes->nthreads;
	for (size_t i = 0; i < c->nthreads; i++)
		c->threads[i].tid = notes->threads[i].tid;
	return c;
}

static bool push(struct hs_local **v, size_t *n, size_t *cap, const struct hs_local *l)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct hs_local *g = realloc(*v, ncap * sizeof(*g));
		if (!g)
			return false;
		*v = g;
		*cap = ncap;
	}
	(*v)[(*n)++] = *l;
	return true;
}

static int local_cmp(const void *a, const void *b)
{
	const struct hs_local *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

static const char *die_name(Dwarf_Die *die)
{
	Dwarf_Attribute attr;
	return dwarf_attr_integrate(die, DW_AT_name, &attr) ? dwarf_formstring(&attr) : NULL;
}

// A variable's type and its size in bytes (8 when DWARF does not say).
static bool var_type(Dwarf_Die *var, Dwarf_Die *type_ret, uint64_t *size_ret)
{
	Dwarf_Attribute attr;
	Dwarf_Word size;
	*size_ret = 8;
	if (!dwarf_attr_integrate(var, DW_AT_type, &attr) || !dwarf_formref_die(&attr, type_ret))
		return false;
	if (dwarf_aggregate_size(type_ret, &size) == 0 && size > 0)
		*size_ret = size;
	return true;
}

/* Is [start, end) inside one root range of this kind and thread?  A location
 * computed wrong must not name other memory. */
static bool in_root(const struct hs_locals *c, uint64_t start, uint64_t end, enum hs_root_kind kind, int tid)
{
	const struct hs_root_range *r = c->in.roots ? hs_roots_find(c->in.roots, start) : NULL;
	return r && r->kind == kind && r->tid == tid && end <= r->end && start < end;
}

/* TLS: the executable's thread_local variables in every thread. */

// blocks[t]: thread t's TLS block of the executable (0: unknown).
static bool tls_scope(struct hs_locals *c, Dwarf_Die *scope, const uint64_t *blocks, int depth)
{
	const struct hs_notes *notes = c->in.notes;
	Dwarf_Die child;
	if (depth > MAX_NS_DEPTH || dwarf_child(scope, &child) != 0)
		return true;
	do {
		int tag = dwarf_tag(&child);
		uint64_t off, size;
		bool tls;
		if (tag == DW_TAG_namespace) {
			if (!tls_scope(c, &child, blocks, depth + 1))
				return false;
			continue;
		}
		if (tag != DW_TAG_variable || !hs_dwarf_var_location(&child, 0, &off, &tls) || !tls)
			continue;
		struct hs_local l = { .frame = -1, .name = die_name(&child) };
		l.has_type = var_type(&child, &l.type, &size);
		for (size_t t = 0; l.name && t < notes->nthreads; t++) {
			if (!blocks[t])
				continue;
			l.tid = notes->threads[t].tid;
			l.start = blocks[t] + off;
			l.end = l.start + size;
			if (in_root(c, l.start, l.end, HS_ROOT_TLS, l.tid) && !push(&c->tls, &c->ntls, &c->captls, &l))
				return false;
		}
	} while (dwarf_siblingof(&child, &child) == 0);
	return true;
}

static void build_tls(struct hs_locals *c)
{
	const struct hs_notes *notes = c->in.notes;
	c->tls_done = true;
	struct hs_module *m = c->in.symbols ? hs_symbols_main_module(c->in.symbols) : NULL;
	Dwarf_Addr bias;
	Dwarf *dw;
	if (!m || !m->debug_found || !m->dwfl_module || !(dw = dwfl_module_getdwarf(m->dwfl_module, &bias)))
		return;
	uint64_t *blocks = calloc(notes->nthreads ? notes->nthreads : 1, sizeof(*blocks));
	if (!blocks)
		return;
	for (size_t t = 0; t < notes->nthreads; t++)
		hs_error_destroy(hs_tls_block(notes, c->in.mem, t, &blocks[t]));
	Dwarf_CU *cu = NULL;
	Dwarf_Die cudie, subdie;
	Dwarf_Half version;
	uint8_t unit_type;
	while (dwarf_get_units(dw, cu, &cu, &version, &unit_type, &cudie, &subdie) == 0)
		if (!tls_scope(c, &cudie, blocks, 0))
			break;      // out of memory: what was found stands
	free(blocks);
	if (c->ntls)   // (qsort must not be given a NULL array, even of none)
		qsort(c->tls, c->ntls, sizeof(*c->tls), local_cmp);
}

/* Stacks: each frame's local variables, at the pc where the thread stopped. */

struct frame {
	uint64_t pc, sp, fp;
	bool has_fp;
};

struct frames {
	struct frame v[MAX_FRAMES];
	size_t n;
};

static int collect_frame(Dwfl_Frame *frame, void *arg)
{
	struct frames *f = arg;
	Dwarf_Addr pc, fp;
	bool activation;
	Dwarf_Word sp;
	if (!dwfl_frame_pc(frame, &pc, &activation) || dwfl_frame_reg(frame, 7, &sp) != 0)
		return DWARF_CB_ABORT;
	struct frame *fr = &f->v[f->n++];
	// A return address is past the call: look up the call itself.
	fr->pc = activation ? pc : pc - 1;
	fr->sp = sp;
	fr->has_fp = dwfl_frame_reg(frame, 6, &fp) == 0;
	fr->fp = fr->has_fp ? fp : 0;
	return f->n < MAX_FRAMES ? DWARF_CB_OK : DWARF_CB_ABORT;
}

// The address a one-operation location names in this frame; false for
// registers, pieces and computed locations.
static bool eval_location(const Dwarf_Op *ops, size_t nops, const struct frame *fr, uint64_t fb, bool has_fb,
			  uint64_t *ret)
{
	if (nops != 1)
		return false;
	int64_t off = (int64_t)ops[0].number;
	switch (ops[0].atom) {
	case DW_OP_fbreg:
		*ret = fb + (uint64_t)off;
		return has_fb;
	case DW_OP_breg7:
		*ret = fr->sp + (uint64_t)off;
		return true;
	case DW_OP_breg6:
		*ret = fr->fp + (uint64_t)off;
		return fr->has_fp;
	default:
		return false;
	}
}

// The frame base of function sub at pc (the CFA for GCC and Clang).
static bool frame_base(Dwarf_Die *sub, Dwarf_Addr pc, const struct frame *fr, uint64_t cfa, bool has_cfa,
		       uint64_t *ret)
{
	Dwarf_Attribute attr;
	Dwarf_Op *ops;
	size_t nops;
	if (!dwarf_attr_integrate(sub, DW_AT_frame_base, &attr) ||
	    dwarf_getlocation_addr(&attr, pc, &ops, &nops, 1) < 1 || nops != 1)
		return false;
	if (ops[0].atom == DW_OP_call_frame_cfa) {
		*ret = cfa;
		return has_cfa;
	}
	return eval_location(ops, nops, fr, 0, false, ret);
}

struct frame_label {
	const char *function;
	const char *file;
	int line;
};

static char *base_name_dup(const char *path)
{
	if (!path)
		return NULL;
	const char *slash = strrchr(path, '/');
	return strdup(slash ? slash + 1 : path);
}

static const char *call_file(Dwarf_Die *cu, Dwarf_Die *inlined)
{
	Dwarf_Attribute attr;
	Dwarf_Word idx;
	Dwarf_Files *files;
	size_t nfiles;
	if (!dwarf_attr(inlined, DW_AT_call_file, &attr) || dwarf_formudata(&attr, &idx) ||
	    dwarf_getsrcfiles(cu, &files, &nfiles) != 0 || idx >= nfiles)
		return NULL;
	return dwarf_filesrc(files, idx, NULL, NULL);
}

static int call_line(Dwarf_Die *inlined)
{
	Dwarf_Attribute attr;
	Dwarf_Word line;
	if (!dwarf_attr(inlined, DW_AT_call_line, &attr) || dwarf_formudata(&attr, &line) || line > INT32_MAX)
		return 0;
	return (int)line;
}

static bool add_scope_vars(const struct hs_locals *c, struct thread_locals *tl, Dwarf_Die *scope, Dwarf_Addr pc,
			   const struct frame *fr, uint64_t fb, bool has_fb, int fnum, const struct frame_label *lab)
{
	Dwarf_Die child;
	if (dwarf_child(scope, &child) != 0)
		return true;
	do {
		int tag = dwarf_tag(&child);
		Dwarf_Attribute attr;
		Dwarf_Op *ops;
		size_t nops;
		uint64_t addr, size;
		if ((tag != DW_TAG_variable && tag != DW_TAG_formal_parameter) ||
		    !dwarf_attr(&child, DW_AT_location, &attr) ||
		    dwarf_getlocation_addr(&attr, pc, &ops, &nops, 1) < 1 ||
		    !eval_location(ops, nops, fr, fb, has_fb, &addr))
			continue;
		struct hs_local l = { .tid = tl->tid, .frame = fnum, .name = die_name(&child), .line = lab->line };
		l.has_type = var_type(&child, &l.type, &size);
		l.start = addr;
		l.end = addr + size;
		if (!l.name || l.end < l.start || !in_root(c, l.start, l.end, HS_ROOT_STACK, tl->tid))
			continue;
		l.function = lab->function ? strdup(lab->function) : NULL;
		l.file = base_name_dup(lab->file);
		if (!push(&tl->v, &tl->n, &tl->cap, &l)) {
			local_free(&l);
			return false;
		}
	} while (dwarf_siblingof(&child, &child) == 0);
	return true;
}

/* One physical frame: its inlined calls (one GDB frame each) and the
 * function; returns how many GDB frames it is. */
static int frame_locals(const struct hs_locals *c, struct thread_locals *tl, const struct frames *fs, size_t i,
			int fnum)
{
	Dwfl *dwfl = c->in.symbols->dwfl;
	const struct frame *fr = &fs->v[i];
	Dwfl_Module *mod = dwfl_addrmodule(dwfl, fr->pc);
	Dwarf_Addr bias;
	Dwarf_Die *cu = mod ? dwfl_module_addrdie(mod, fr->pc, &bias) : NULL;
	Dwarf_Die *scopes = NULL;
	int nscopes = cu ? dwarf_getscopes(cu, fr->pc - bias, &scopes) : 0;
	int sub = -1;
	for (int j = 0; j < nscopes && sub < 0; j++)
		if (dwarf_tag(&scopes[j]) == DW_TAG_subprogram)
			sub = j;
	if (sub < 0) {
		free(scopes);
		return 1;
	}
	// The caller's sp is this frame's CFA on x86-64.
	bool has_cfa = i + 1 < fs->n;
	uint64_t fb = 0, cfa = has_cfa ? fs->v[i + 1].sp : 0;
	bool has_fb = frame_base(&scopes[sub], fr->pc - bias, fr, cfa, has_cfa, &fb);
	// The innermost frame's line is the pc's; an outer one's is the call
	// site of the inlined call it made.
	struct frame_label lab = { 0 };
	Dwfl_Line *line = dwfl_module_getsrc(mod, fr->pc);
	if (line)
		lab.file = dwfl_lineinfo(line, NULL, &lab.line, NULL, NULL, NULL);
	int n = 0, lo = 0;
	for (int j = 0; j <= sub; j++) {
		int tag = dwarf_tag(&scopes[j]);
		if (tag == DW_TAG_inlined_subroutine || tag == DW_TAG_subprogram) {
			// This call's lexical blocks (scopes[lo, j)) and its own scope.
			lab.function = die_name(&scopes[j]);
			for (int k = lo; k <= j; k++)
				if (!add_scope_vars(c, tl, &scopes[k], fr->pc - bias, fr, fb, has_fb, fnum + n, &lab))
					goto out;
			lo = j + 1;
			if (tag == DW_TAG_inlined_subroutine) {
				lab.file = call_file(cu, &scopes[j]);
				lab.line = call_line(&scopes[j]);
			}
			n++;
		}
	}
out:
	free(scopes);
	return n ? n : 1;
}

static void build_thread(const struct hs_locals *c, struct thread_locals *tl)
{
	tl->done = true;
	if (!c->in.symbols || !c->in.symbols->dwfl || !c->in.unwinder)
		return;
	Dwfl *dwfl = c->in.symbols->dwfl;
	if (!c->in.unwinder(c->in.ctx))
		return;
	struct frames *fs = calloc(1, sizeof(*fs));
	if (!fs)
		return;
	dwfl_getthread_frames(dwfl, tl->tid, collect_frame, fs);
	int fnum = 0;
	for (size_t i = 0; i < fs->n; i++)
		fnum += frame_locals(c, tl, fs, i, fnum);
	free(fs);
	if (tl->n)
		qsort(tl->v, tl->n, sizeof(*tl->v), local_cmp);
}

// The last variable starting at or below addr that holds it.
static const struct hs_local *find(const struct hs_local *v, size_t n, uint64_t addr)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	// Variables of inlined calls may share a slot: the innermost frame wins.
	const struct hs_local *best = NULL;
	for (size_t i = lo; i-- > 0 && lo - i <= 16;)
		if (v[i].start <= addr && addr < v[i].end && (!best || v[i].frame < best->frame))
			best = &v[i];
	return best;
}

const struct hs_local *hs_local_at(struct hs_locals *c, int tid, uint64_t addr)
{
	if (!c)
		return NULL;
	if (!c->tls_done)
		build_tls(c);
	const struct hs_local *l = find(c->tls, c->ntls, addr);
	if (l && l->tid == tid)
		return l;
	for (size_t i = 0; i < c->nthreads; i++) {
		struct thread_locals *tl = &c->threads[i];
		if (tl->tid != tid)
			continue;
		if (!tl->done)
			build_thread(c, tl);
		return find(tl->v, tl->n, addr);
	}
	return NULL;
}

bool hs_local_name(struct hs_locals *c, int tid, uint64_t addr, char *buf, size_t len)
{
	const struct hs_local *l = hs_local_at(c, tid, addr);
	if (!l)
		return false;
	char name[256];
	if (addr != l->start)
		snprintf(name, sizeof(name), "%s+0x%" PRIx64, l->name, addr - l->start);
	else
		snprintf(name, sizeof(name), "%s", l->name);
	if (l->frame < 0)
		snprintf(buf, len, "thread %d TLS %s", l->tid, name);
	else if (l->function && l->file && l->line)
		snprintf(buf, len, "thread %d frame %d %s (%s at %s:%d)", l->tid, l->frame, name, l->function,
			 l->file, l->line);
	else if (l->function)
		snprintf(buf, len, "thread %d frame %d %s (%s)", l->tid, l->frame, name, l->function);
	else
		snprintf(buf, len, "thread %d frame %d %s", l->tid, l->frame, name);
	return true;
}

void hs_locals_tls(struct hs_locals *c, const struct hs_local **ret, size_t *n_ret)
{
	*ret = NULL;
	*n_ret = 0;
	if (!c)
		return;
	if (!c->tls_done)
		build_tls(c);
	*ret = c->tls;
	*n_ret = c->ntls;
}
