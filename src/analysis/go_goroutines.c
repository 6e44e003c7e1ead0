/* go_goroutines.c - every goroutine of a Go program from runtime.allgs
 * (go_goroutines.h says what is read and from where).
 *
 * Unwinding is the runtime's own (runtime/traceback.go on amd64): the frame
 * of the function at pc is pcsp(pc) bytes above sp, its return address is
 * the word after it, the caller's sp the word after that.  pcsp is a table
 * per function in .gopclntab, read from the executable file (a kernel core
 * leaves the read-only segments out).  Without the file, frame pointers:
 * [bp] is the caller's bp, [bp + 8] the return address.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "go_goroutines.h"
#include "go_layout.h"
#include "vec.h"

/* X(id, struct, member (NULL: sizeof), optional, offsets in go1.19, 1.21, 1.22, 1.23, 1.24)
 * The rows are the reference's tables (read from each release's DWARF). */
#define NA UINT32_MAX
#define GR_FIELDS(X) \
	X(G_SIZEOF,      "runtime.g",          NULL,           0, 392, 408, 424, 432, 440) \
	X(G_STACK_LO,    "runtime.g",          "stack.lo",     0, 0, 0, 0, 0, 0) \
	X(G_STACK_HI,    "runtime.g",          "stack.hi",     0, 8, 8, 8, 8, 8) \
	X(G_SCHED_SP,    "runtime.g",          "sched.sp",     0, 56, 56, 56, 56, 56) \
	X(G_SCHED_PC,    "runtime.g",          "sched.pc",     0, 64, 64, 64, 64, 64) \
	X(G_SCHED_BP,    "runtime.g",          "sched.bp",     0, 104, 104, 104, 104, 104) \
	X(G_SYSCALLSP,   "runtime.g",          "syscallsp",    0, 112, 112, 112, 112, 112) \
	X(G_SYSCALLPC,   "runtime.g",          "syscallpc",    0, 120, 120, 120, 120, 120) \
	X(G_STATUS,      "runtime.g",          "atomicstatus", 0, 144, 144, 144, 152, 152) \
	X(G_GOID,        "runtime.g",          "goid",         0, 152, 152, 152, 160, 160) \
	X(G_WAITSINCE,   "runtime.g",          "waitsince",    0, 168, 168, 168, 176, 176) \
	X(G_WAITREASON,  "runtime.g",          "waitreason",   0, 176, 176, 176, 184, 184) \
	X(G_STARTPC,     "runtime.g",          "startpc",      0, 312, 296, 296, 304, 304) \
	X(G_GOPC,        "runtime.g",          "gopc",         0, 296, 280, 280, 288, 288) \
	X(G_PARENTGOID,  "runtime.g",          "parentGoid",   1, NA, 272, 272, 280, 280) \
	X(G_WAITING,     "runtime.g",          "waiting",      0, 328, 312, 312, 320, 320) \
	X(M_PROCID,      "runtime.m",          "procid",       0, 72, 72, 72, 72, 72) \
	X(M_GSIGNAL,     "runtime.m",          "gsignal",      0, 80, 80, 80, 80, 80) \
	X(M_CURG,        "runtime.m",          "curg",         0, 192, 192, 192, 192, 192) \
	X(M_ALLLINK,     "runtime.m",          "alllink",      0, 336, 336, 328, 328, 328) \
	X(SG_G,          "runtime.sudog",      "g",            0, 0, 0, 0, 0, 0) \
	X(SG_WAITLINK,   "runtime.sudog",      "waitlink",     0, 64, 64, 64, 64, 64) \
	X(SG_C,          "runtime.sudog",      "c",            0, 80, 80, 80, 80, 80) \
	X(HC_ELEMTYPE,   "runtime.hchan",      "elemtype",     0, 32, 32, 32, 40, 40) \
	X(MD_TYPES,      "runtime.moduledata", "types",        0, 280, 296, 296, 296, 296)

#define GR_ID(id, st, mem, opt, a, b, c, d, e) id,
enum { GR_FIELDS(GR_ID) GR_NFIELDS };
#undef GR_ID
struct gr_def { const char *type, *member; bool optional; uint32_t off[5]; };
#define GR_DEF(id, st, mem, opt, a, b, c, d, e) { st, mem, opt, { a, b, c, d, e } },
static const struct gr_def gr_defs[GR_NFIELDS] = { GR_FIELDS(GR_DEF) };
#undef GR_DEF
static const char *const gr_versions[5] = { "go1.19", "go1.21", "go1.22", "go1.23", "go1.24" };

/* abi.Type (runtime._type before go1.21): tflag and str (a nameOff from
 * moduledata.types) at the same offsets in every version read. */
#define TYPE_TFLAG 20
#define TYPE_STR 40
#define TFLAG_EXTRA_STAR 2

#define MAX_GOROUTINES (UINT64_C(1) << 22)
#define MAX_MS 100000
#define MAX_TYPES 256

static const char *const status_names[] = {   /* runtime.gStatusStrings */
	"idle", "runnable", "running", "syscall", "waiting", "moribund_unused", "dead", "enqueue_unused",
	"copystack", "preempted",
};

struct pcln {                 /* .gopclntab (go1.18+ layout: pcHeader) */
	const uint8_t *base;
	uint64_t len, nfunc, text, funcnames, pctab, functab;
	uint32_t funcsize;            /* sizeof(runtime._func): 40, 44 from go1.20 */
};

struct hs_go_rt {
	struct hs_walk_ctx *ctx;
	struct hs_module *mod;
	struct hs_elf_file *file;
	uint64_t f[GR_NFIELDS][2];    /* offset (NA: absent), size */
	struct pcln pcln;
	bool have_pcln;
	uint64_t types;               /* moduledata.types, 0 unknown */
	uint64_t rodata, gofunc;      /* moduledata's: bases of stack objects' masks, funcdata */
	const char **reasons;         /* waitReasonStrings, copied */
	size_t nreasons;
	struct { uint64_t addr; char *name; } typenames[MAX_TYPES];
	size_t ntypes;
	char *strings;                /* every string this module made, chained */
	struct stack_scan *scan;      /* stack_live's, kept from one goroutine to the next */
};

#define OFF(rt, id) ((rt)->f[id][0])
#define SZ(rt, id) ((rt)->f[id][1])

/* Bytes of the process: from the core, else from the executable (what a
 * kernel core leaves out: rodata, pclntab). */
static bool rd(struct hs_go_rt *rt, uint64_t addr, void *buf, size_t len)
{
	return hs_elf_read_image(rt->ctx->mem, rt->file, addr, buf, len);
}

static bool rd64(struct hs_go_rt *rt, uint64_t addr, uint64_t *v)
{
	return rd(rt, addr, v, 8);
}

/* A string kept for the list's life. */
static const char *keep(struct hs_go_rt *rt, const char *s, size_t n)
{
	char *p = malloc(sizeof(char *) + n + 1);
	if (!p)
		return NULL;
	memcpy(p, &rt->strings, sizeof(char *));
	rt->strings = p;
	memcpy(p + sizeof(char *), s, n);
	p[sizeof(char *) + n] = 0;
	return p + sizeof(char *);
}

/* --- version and layout --------------------------------------------------- */

static int version_index(const char *v)
{
	for (int i = 0; i < 5; i++) {
		size_t n = strlen(gr_versions[i]);
		if (!strncmp(v, gr_versions[i], n) && (v[n] == 0 || v[n] == '.' || !strncmp(v + n, "rc", 2)))
			return i;
	}
	return -1;
}

static struct hs_error *resolve_layout(struct hs_go_rt *rt, struct hs_go_goroutines *l)
{
	bool dwarf = rt->mod->debug_found && !rt->ctx->no_debuginfo;
	int v = version_index(l->version);
	const char *exe = rt->mod->path ? strrchr(rt->mod->path, '/') : NULL;
	exe = exe ? exe + 1 : rt->mod->name;
	if (!dwarf && v < 0)
		return hs_error_create(HS_ERR_HEAP, "%s is %s without DWARF%s: heapscope knows the goroutine layout of "
				       "go1.19 and go1.21-1.24 only", exe, l->version[0] ? l->version : "a Go program",
				       rt->ctx->no_debuginfo ? " (--no-debuginfo)" : "");
	for (size_t i = 0; i < GR_NFIELDS; i++) {
		const struct gr_def *d = &gr_defs[i];
		struct hs_error *err = NULL;
		if (dwarf) {
			uint32_t bit;
			if (!d->member) {
				err = hs_dwarf_struct_size(rt->mod, d->type, &rt->f[i][0]);
				rt->f[i][1] = rt->f[i][0];
			} else {
				err = hs_dwarf_member_offset(rt->mod, d->type, d->member, &rt->f[i][0], &bit);
				if (!err)
					err = hs_dwarf_member_size(rt->mod, d->type, d->member, &rt->f[i][1]);
			}
			if (err && d->optional) {
				hs_error_destroy(err);
				rt->f[i][0] = NA;
				continue;
			}
			if (err) {
				struct hs_error *e = hs_error_create(HS_ERR_HEAP, "unsupported Go runtime layout in %s (%s): "
					"%s.%s is not in its DWARF (%s)", exe, l->version[0] ? l->version : "version unknown",
					d->type, d->member ? d->member : "size", hs_error_message(err));
				hs_error_destroy(err);
				return e;
			}
		} else {
			rt->f[i][0] = d->off[v];
			rt->f[i][1] = !d->member ? d->off[v] : i == G_STATUS ? 4 : i == G_WAITREASON ? 1 : 8;
		}
	}
	if (dwarf)
		snprintf(l->layout, sizeof(l->layout), "DWARF of %s", exe);
	else
		snprintf(l->layout, sizeof(l->layout), "built-in %s (%s)", gr_versions[v],
			 rt->ctx->no_debuginfo ? "--no-debuginfo" : "no DWARF");
	if (SZ(rt, G_SIZEOF) > 65536 || SZ(rt, G_STATUS) > 8 || SZ(rt, G_WAITREASON) > 8)
		return hs_error_create(HS_ERR_HEAP, "unsupported Go runtime layout in %s: runtime.g is %" PRIu64 " bytes",
				       exe, SZ(rt, G_SIZEOF));
	return NULL;
}

/* --- pclntab -------------------------------------------------------------- */

static bool pcln_open(struct hs_go_rt *rt)
{
	uint64_t n = 0;
	const uint8_t *p = rt->file ? hs_elf_section(rt->file, ".gopclntab", &n) : NULL;
	if (!p || n < 72)
		return false;
	uint32_t magic = (uint32_t)hs_go_ld(p, 4);
	if ((magic != 0xfffffff0 && magic != 0xfffffff1) || p[6] != 1 || p[7] != 8)
		return false;   // go1.18+ layout, amd64 (pc quantum 1, 8-byte pointers)
	struct pcln *c = &rt->pcln;
	c->base = p;
	c->len = n;
	c->nfunc = hs_go_ld(p + 8, 8);
	c->text = hs_go_ld(p + 24, 8) + hs_elf_bias(rt->file);
	c->funcnames = hs_go_ld(p + 32, 8);
	c->pctab = hs_go_ld(p + 56, 8);
	c->functab = hs_go_ld(p + 64, 8);
	c->funcsize = magic == 0xfffffff0 ? 40 : 44;
	if (c->nfunc == 0 || c->nfunc > n / 8 || c->funcnames >= n || c->pctab >= n || c->functab >= n ||
	    (c->nfunc + 1) * 8 > n - c->functab)
		return false;
	return true;
}

// The _func of pc: its offset in the function table's section, or 0.
static uint64_t pcln_func(const struct pcln *c, uint64_t pc)
{
	if (pc < c->text)
		return 0;
	uint64_t off = pc - c->text;
	const uint8_t *ft = c->base + c->functab;
	if (off >= hs_go_ld(ft + c->nfunc * 8, 4))   // the last entry is the end of text
		return 0;
	size_t lo = 0, hi = c->nfunc;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (hs_go_ld(ft + mid * 8, 4) <= off)
			lo = mid;
		else
			hi = mid;
	}
	if (hs_go_ld(ft + lo * 8, 4) > off)
		return 0;
	uint64_t fo = c->functab + hs_go_ld(ft + lo * 8 + 4, 4);
	return fo + 20 <= c->len ? fo : 0;
}

static const char *pcln_name(const struct pcln *c, uint64_t fo)
{
	int32_t noff = (int32_t)hs_go_ld(c->base + fo + 4, 4);
	if (noff < 0 || c->funcnames + (uint64_t)noff >= c->len)
		return NULL;
	const char *s = (const char *)c->base + c->funcnames + noff;
	return memchr(s, 0, c->len - c->funcnames - noff) ? s : NULL;
}

// The runtime's pcvalue: the value of table `table` of the function at fo
// for pc (-1 when pc is past its table).
static bool pcln_value(const struct pcln *c, uint64_t fo, uint32_t table, uint64_t pc, int64_t *ret)
{
	uint64_t entry = c->text + hs_go_ld(c->base + fo, 4);
	uint64_t p = c->pctab + table, cur = entry;
	uint64_t val = UINT64_MAX;   // -1, in wrapping arithmetic (the table is not trusted)
	for (int step = 0; step < 100000 && p < c->len; step++) {
		size_t used;
		uint64_t uv = hs_go_uvarint(c->base + p, c->len - p, &used);
		if (!used || (uv == 0 && step > 0))
			return false;
		p += used;
		val += (uv & 1) ? ~(uv >> 1) : uv >> 1;
		uint64_t pcd = hs_go_uvarint(c->base + p, c->len - p, &used);
		if (!used)
			return false;
		p += used;
		cur += pcd;
		if (pc < cur) {
			*ret = (int64_t)val;
			return true;
		}
	}
	return false;
}

const char *hs_go_func_name(struct hs_go_goroutines *l, uint64_t pc, bool ret_addr)
{
	struct hs_go_rt *rt = l->rt;
	uint64_t at = ret_addr && pc ? pc - 1 : pc;
	if (rt->have_pcln) {
		uint64_t fo = pcln_func(&rt->pcln, at);
		if (fo)
			return pcln_name(&rt->pcln, fo);
	}
	struct hs_symbol sym;
	uint64_t off;
	if (rt->ctx->symbols && hs_symbols_addr_symbol(rt->ctx->symbols, at, &sym, &off) && !sym.is_object)
		return sym.name;
	return NULL;
}

/* --- names from the runtime ---------------------------------------------- */

// runtime.waitReasonStrings: [N]string, each {ptr, len}.
static void read_reasons(struct hs_go_rt *rt)
{
	struct hs_symbol sym;
	struct hs_error *err = hs_walk_symbol(rt->ctx, rt->mod, "runtime.waitReasonStrings", &sym);
	if (err || sym.size % 16 || sym.size > 16 * 256) {
		hs_error_destroy(err);
		hs_walk_diag(rt->ctx, HS_DIAG_WARNING, 0, "runtime.waitReasonStrings cannot be read: wait reasons are "
			     "given by number");
		return;
	}
	size_t n = sym.size / 16;
	rt->reasons = calloc(n, sizeof(*rt->reasons));
	if (!rt->reasons)
		return;
	rt->nreasons = n;
	for (size_t i = 0; i < n; i++) {
		uint64_t s[2];
		char buf[128];
		if (!rd(rt, sym.address + i * 16, s, 16) || s[1] >= sizeof(buf) || !rd(rt, s[0], buf, s[1]))
			continue;
		rt->reasons[i] = keep(rt, buf, s[1]);
	}
}

static const char *reason_name(struct hs_go_rt *rt, unsigned r)
{
	if (r < rt->nreasons && rt->reasons[r])
		return rt->reasons[r];
	char buf[32];
	snprintf(buf, sizeof(buf), "wait reason %u", r);
	return keep(rt, buf, strlen(buf));
}

// The name of the abi.Type at t ("*main.Job"), from its nameOff in
// moduledata.types: a flags byte, a uvarint length, the bytes.
static const char *type_name(struct hs_go_rt *rt, uint64_t t)
{
	if (!t || !rt->types)
		return NULL;
	for (size_t i = 0; i < rt->ntypes; i++)
		if (rt->typenames[i].addr == t)
			return rt->typenames[i].name;
	uint8_t h[48];
	if (!rd(rt, t, h, sizeof(h)))
		return NULL;
	int32_t str = (int32_t)hs_go_ld(h + TYPE_STR, 4);
	uint8_t n[4 + 512];
	uint64_t at = rt->types + (uint64_t)(int64_t)str;
	if (str <= 0 || !rd(rt, at, n, 4))
		return NULL;
	size_t used;
	uint64_t len = hs_go_uvarint(n + 1, 3, &used);
	if (!used || len == 0 || len > 512 || !rd(rt, at + 1 + used, n, len))
		return NULL;
	size_t skip = (h[TYPE_TFLAG] & TFLAG_EXTRA_STAR) && n[0] == '*';
	const char *name = keep(rt, (const char *)n + skip, len - skip);
	if (name && rt->ntypes < MAX_TYPES) {
		rt->typenames[rt->ntypes].addr = t;
		rt->typenames[rt->ntypes++].name = (char *)name;
	}
	return name;
}

/* --- one goroutine ------------------------------------------------------- */

static bool in_package(const char *fn, const char *pkg)
{
	size_t n = strlen(pkg);
	return !strncmp(fn, pkg, n) && fn[n] == '.';
}

/* The runtime and the standard library's waiting primitives (sync.Mutex,
 * WaitGroup, Cond, time.Sleep, system calls): the blocking function is the
 * first frame past them, the program's own. */
static bool waiting_machinery(const char *fn)
{
	return in_package(fn, "runtime") || !strncmp(fn, "runtime/", 8) || !strncmp(fn, "internal/", 9) ||
	       in_package(fn, "sync") || in_package(fn, "sync/atomic") || in_package(fn, "time") ||
	       in_package(fn, "syscall");
}

static bool top_frame(const char *fn)
{
	static const char *const tops[] = { "runtime.goexit", "runtime.mstart", "runtime.mstart0", "runtime.rt0_go",
					    "runtime.mcall", "runtime.morestack", "runtime.systemstack" };
	for (size_t i = 0; i < sizeof(tops) / sizeof(tops[0]); i++)
		if (!strcmp(fn, tops[i]))
			return true;
	return false;
}

// Room for one more in an array of n grown by doubling from 8 (no capacity
// kept: a million goroutines of a few frames each stay small).
static bool grow(void **p, size_t n, size_t size)
{
	if (n && (n < 8 || (n & (n - 1))))
		return true;
	void *q = realloc(*p, (n ? 2 * n : 8) * size);
	if (!q)
		return false;
	*p = q;
	return true;
}

static struct hs_error *push_frame(struct hs_go_goroutines *l, struct hs_go_goroutine *gr, uint64_t pc, uint64_t sp,
				    bool exact)
{
	if (!grow((void **)&gr->frames, gr->nframes, sizeof(*gr->frames)) ||
	    !grow((void **)&gr->funcs, gr->nframes, sizeof(*gr->funcs)) ||
	    !grow((void **)&gr->sps, gr->nframes, sizeof(*gr->sps)))
		return &hs_error_nomem;
	gr->frames[gr->nframes] = pc;
	gr->sps[gr->nframes] = sp;
	gr->funcs[gr->nframes] = hs_go_func_name(l, pc, !exact);
	gr->nframes++;
	return NULL;
}

// A frame a signal injected (asynchronous preemption, a fault): its caller
// was interrupted anywhere, not at a call.
static bool async_frame(const char *fn)
{
	return !strcmp(fn, "runtime.asyncPreempt") || !strcmp(fn, "runtime.sigpanic");
}

static struct hs_error *unwind(struct hs_go_goroutines *l, struct hs_go_goroutine *gr)
{
	struct hs_go_rt *rt = l->rt;
	uint64_t pc = gr->pc, sp = gr->sp, bp = gr->bp;
	bool exact = true;   // pc is where the frame stopped, not a return address
	if (!pc) {
		gr->unwind_stop = "no saved pc";
		return NULL;
	}
	while (gr->nframes < HS_GO_MAX_FRAMES) {
		HS_CHECK(push_frame(l, gr, pc, sp, exact));
		const char *fn = gr->funcs[gr->nframes - 1];
		if (fn && top_frame(fn))
			return NULL;
		uint64_t ret, next_sp, next_bp = bp;
		if (rt->have_pcln) {
			uint64_t fo = pcln_func(&rt->pcln, exact ? pc : pc - 1);
			int64_t size;
			if (!fo) {
				gr->unwind_stop = "a pc outside Go's code";
				return NULL;
			}
			if (!pcln_value(&rt->pcln, fo, (uint32_t)hs_go_ld(rt->pcln.base + fo + 16, 4), pc, &size) || size < 0 ||
			    size > 1 << 24) {
				gr->unwind_stop = "no frame size for a pc";
				return NULL;
			}
			uint64_t fp = sp + (uint64_t)size;
			if (!rd64(rt, fp, &ret)) {
				gr->unwind_stop = "a return address is not in the core";
				return NULL;
			}
			next_sp = fp + 8;
		} else {
			if (bp < sp || bp + 16 > gr->stack_hi || !rd64(rt, bp + 8, &ret) || !rd64(rt, bp, &next_bp)) {
				gr->unwind_stop = "a frame pointer off the stack";
				return NULL;
			}
			next_sp = bp + 16;
		}
		if (!ret) {
			gr->unwind_stop = "a zero return address before runtime.goexit";
			return NULL;
		}
		if (next_sp <= sp || next_sp > gr->stack_hi) {
			gr->unwind_stop = "a frame off the stack";
			return NULL;
		}
		// A frame a signal injected (asynchronous preemption, a fault)
		// returns to where its caller was interrupted.
		exact = fn && async_frame(fn);
		pc = ret;
		sp = next_sp;
		bp = next_bp;
	}
	gr->unwind_stop = "too many frames";
	return NULL;
}

/* --- what of a stack the garbage collector scans ------------------------- */

/* runtime/funcdata.h (every version read) */
#define PCDATA_STACKMAP 1
#define FUNCDATA_ARGS 0
#define FUNCDATA_LOCALS 1
#define FUNCDATA_STACKOBJECTS 2
#define MAX_MAP_BITS (1u << 20)
#define MAX_STACK_OBJECTS 4096
/* A stack above this from sp is scanned word by word: a map per word of it
 * would cost more than it saves. */
#define MAX_MAPPED_STACK (UINT64_C(64) << 20)

#define MAX_CACHED_FRAMES (1u << 20)

enum { W_NONE, W_PRECISE, W_ALL };

/* What a frame's maps say, [sp + start, sp + end) of kind: the same for
 * every frame at one pc (its size is the pc's too), so read once a pc. */
struct frame_rec { uint32_t start, end; uint8_t kind; };
struct frame_entry {
	uint64_t pc, size;   /* size 0: an empty slot */
	uint32_t first, n;   /* its recs */
	bool ok;             /* false: no maps to trust */
};

struct stack_scan {
	struct hs_go_rt *rt;
	uint64_t base, hi;   /* [base, hi): from sp to the stack's top */
	uint8_t *kind;       /* a W_ a word of it */
	size_t cap;          /* kind's */
	uint64_t sp;         /* the frame being read */
	struct frame_rec *recs;
	size_t nrecs, caprecs;
	struct frame_entry *cache;   /* open addressing, a power of two */
	size_t ncache, capcache;
	bool nomem;
	uint8_t bits[MAX_MAP_BITS / 8];
};

static void mark(struct stack_scan *ss, uint64_t start, uint64_t end, uint8_t k)
{
	if (start < ss->base)
		start = ss->base;
	if (end > ss->hi)
		end = ss->hi;
	for (uint64_t a = start & ~UINT64_C(7); a < end; a += 8) {
		uint8_t *w = &ss->kind[(a - ss->base) / 8];
		if (*w < k)
			*w = k;
	}
}

// [start, end) of the frame being read is of kind k.
static void note(struct stack_scan *ss, uint64_t start, uint64_t end, uint8_t k)
{
	if (start < ss->sp || end <= start || end - ss->sp > UINT32_MAX)
		return;
	const struct frame_rec r = { (uint32_t)(start - ss->sp), (uint32_t)(end - ss->sp), k };
	if (HS_VEC_PUSH(ss->recs, ss->nrecs, ss->caprecs, r))
		ss->nomem = true;
}

// Table `table` of the function at fo for pc, as pcdatavalue (-1: none).
static bool func_pcdata(const struct pcln *c, uint64_t fo, uint32_t table, uint64_t pc, int64_t *v)
{
	uint64_t at = fo + c->funcsize + 4 * (uint64_t)table;
	*v = -1;
	if (fo + c->funcsize > c->len || table >= hs_go_ld(c->base + fo + 28, 4) || at + 4 > c->len)
		return true;
	uint32_t off = (uint32_t)hs_go_ld(c->base + at, 4);
	return !off || pcln_value(c, fo, off, pc, v);
}

// Funcdata i of the function at fo: its address in the process, 0 none.
static uint64_t func_data(const struct hs_go_rt *rt, uint64_t fo, unsigned i)
{
	const struct pcln *c = &rt->pcln;
	if (fo + c->funcsize > c->len || i >= c->base[fo + c->funcsize - 1])
		return 0;
	uint64_t at = fo + c->funcsize + 4 * (hs_go_ld(c->base + fo + 28, 4) + i);
	if (at + 4 > c->len)
		return 0;
	uint32_t off = (uint32_t)hs_go_ld(c->base + at, 4);
	return off == UINT32_MAX ? 0 : rt->gofunc + off;
}

// Bit vector `index` of the runtime.stackmap at addr ({n, nbit int32;
// bytedata}) into ss->bits; false when it cannot be read or is not one.
static bool stackmap_bits(struct stack_scan *ss, uint64_t addr, int64_t index, uint32_t *nbit)
{
	uint8_t h[8];
	if (!addr || !rd(ss->rt, addr, h, 8))
		return false;
	int32_t n = (int32_t)hs_go_ld(h, 4), nb = (int32_t)hs_go_ld(h + 4, 4);
	if (n <= 0 || index < 0 || index >= n || nb < 0 || (uint32_t)nb > MAX_MAP_BITS)
		return false;
	uint64_t bytes = ((uint64_t)nb + 7) / 8;
	*nbit = (uint32_t)nb;
	return nb == 0 || rd(ss->rt, addr + 8 + (uint64_t)index * bytes, ss->bits, bytes);
}

static void note_bits(struct stack_scan *ss, uint64_t at, uint32_t nbit)
{
	for (uint32_t k = 0; k < nbit;) {
		if (!(ss->bits[k / 8] >> (k % 8) & 1)) {
			k++;
			continue;
		}
		uint32_t e = k + 1;
		while (e < nbit && ss->bits[e / 8] >> (e % 8) & 1)
			e++;
		note(ss, at + 8 * (uint64_t)k, at + 8 * (uint64_t)e, W_PRECISE);
		k = e;
	}
}

// The stack objects of a frame (address-taken locals and arguments), each
// scanned by its own pointer mask.  The collector scans only those a
// pointer reaches; all are kept here (what the goroutine's defer and panic
// records point at is among them), so a dead one keeps at most its own.
static bool frame_objects(struct stack_scan *ss, uint64_t fo, uint64_t sp, uint64_t varp, uint64_t argp)
{
	uint64_t at = func_data(ss->rt, fo, FUNCDATA_STACKOBJECTS), n;
	if (!at)
		return true;
	if (!rd64(ss->rt, at, &n) || n > MAX_STACK_OBJECTS)
		return false;
	for (uint64_t i = 0; i < n; i++) {
		uint8_t r[16];   // runtime.stackObjectRecord {off, size, ptrdata int32; gcdataoff uint32}
		if (!rd(ss->rt, at + 8 + 16 * i, r, 16))
			return false;
		int32_t off = (int32_t)hs_go_ld(r, 4), size = (int32_t)hs_go_ld(r + 4, 4);
		int32_t ptrdata = (int32_t)hs_go_ld(r + 8, 4);
		uint64_t obj = (off < 0 ? varp : argp) + (uint64_t)(int64_t)off;
		if (size <= 0 || obj < sp)
			continue;   // not allocated in the frame yet
		uint32_t nbit = ptrdata > 0 ? (uint32_t)ptrdata / 8 : 0;
		if (ptrdata < 0 || ptrdata > size || nbit > MAX_MAP_BITS || !ss->rt->rodata ||
		    !rd(ss->rt, ss->rt->rodata + (uint32_t)hs_go_ld(r + 12, 4), ss->bits, (nbit + 7) / 8)) {
			note(ss, obj, obj + (uint64_t)size, W_ALL);   // a GC program, or no mask
			continue;
		}
		note_bits(ss, obj, nbit);
	}
	return true;
}

// The live pointer slots of the frame of the function at fo, [sp, fp), fp
// its caller's sp, stopped at pc (a call's return address, or where the
// scheduler saved it): as the runtime's getStackMap.  False when its maps
// cannot be had: the caller scans the frame word by word.
static bool frame_maps(struct stack_scan *ss, uint64_t fo, uint64_t pc, uint64_t sp, uint64_t fp)
{
	const struct pcln *c = &ss->rt->pcln;
	uint64_t entry = c->text + hs_go_ld(c->base + fo, 4);
	int64_t index;
	if (!func_pcdata(c, fo, PCDATA_STACKMAP, pc != entry ? pc - 1 : pc, &index))
		return false;
	if (index < 0)
		index = 0;
	// varp: below the return address, and the saved frame pointer when
	// the frame has one; argp: the caller's sp.
	uint64_t varp = fp - 8, argp = fp;
	if (varp > sp)
		varp -= 8;
	uint32_t nbit;
	if (varp > sp) {
		if (!stackmap_bits(ss, func_data(ss->rt, fo, FUNCDATA_LOCALS), index, &nbit) ||
		    (uint64_t)nbit * 8 > varp - sp)
			return false;
		note_bits(ss, varp - 8 * (uint64_t)nbit, nbit);
	}
	uint64_t args = func_data(ss->rt, fo, FUNCDATA_ARGS);
	int32_t nargs = (int32_t)hs_go_ld(c->base + fo + 8, 4);
	if (args) {
		if (!stackmap_bits(ss, args, index, &nbit))
			return false;
		note_bits(ss, argp, nbit);
	} else if (nargs > 0) {
		note(ss, argp, argp + (uint64_t)nargs, W_ALL);
	}
	return frame_objects(ss, fo, sp, varp, argp);
}

// The frame at pc of fp - sp bytes, with [sp, fp) marked by its maps; false
// when it has none to trust.  Read once a pc (and size).
static bool frame_cached(struct stack_scan *ss, uint64_t fo, uint64_t pc, bool exact, uint64_t sp, uint64_t fp)
{
	uint64_t key = pc ^ (uint64_t)exact << 63, size = fp - sp;
	if (ss->ncache * 2 >= ss->capcache && ss->capcache < 2 * MAX_CACHED_FRAMES) {
		size_t cap = ss->capcache ? 2 * ss->capcache : 1024;
		struct frame_entry *c = calloc(cap, sizeof(*c));
		if (c) {
			for (size_t i = 0; i < ss->capcache; i++) {
				if (!ss->cache[i].size)
					continue;
				size_t h = (size_t)(ss->cache[i].pc * 0x9e3779b97f4a7c15ull >> 20) & (cap - 1);
				while (c[h].size)
					h = (h + 1) & (cap - 1);
				c[h] = ss->cache[i];
			}
			free(ss->cache);
			ss->cache = c;
			ss->capcache = cap;
		}
	}
	struct frame_entry *e = NULL;
	if (ss->ncache * 2 < ss->capcache) {
		size_t h = (size_t)(key * 0x9e3779b97f4a7c15ull >> 20) & (ss->capcache - 1);
		while (ss->cache[h].size && (ss->cache[h].pc != key || ss->cache[h].size != size))
			h = (h + 1) & (ss->capcache - 1);
		e = &ss->cache[h];
	}
	if (!e || !e->size) {
		size_t first = ss->nrecs;
		ss->sp = sp;
		bool ok = frame_maps(ss, fo, pc, sp, fp) && !ss->nomem;
		if (!ok)
			ss->nrecs = first;
		struct frame_entry fe = { key, size, (uint32_t)first, (uint32_t)(ss->nrecs - first), ok };   // size >= 8
		if (!e) {   // the cache is full: used once
			for (size_t k = first; ok && k < ss->nrecs; k++)
				mark(ss, sp + ss->recs[k].start, sp + ss->recs[k].end, ss->recs[k].kind);
			ss->nrecs = first;
			return ok;
		}
		*e = fe;
		ss->ncache++;
	}
	for (size_t k = e->first; e->ok && k < (size_t)e->first + e->n; k++)
		mark(ss, sp + ss->recs[k].start, sp + ss->recs[k].end, ss->recs[k].kind);
	return e->ok;
}

static bool push_live(struct hs_go_goroutine *gr, uint64_t start, uint64_t end, bool precise)
{
	struct hs_go_stack_range *last = gr->nlive ? &gr->live[gr->nlive - 1] : NULL;
	if (last && last->end == start && last->precise == precise) {
		last->end = end;
		return true;
	}
	if (!grow((void **)&gr->live, gr->nlive, sizeof(*gr->live)))
		return false;
	gr->live[gr->nlive++] = (struct hs_go_stack_range){ start, end, precise };
	return true;
}

static bool reflect_stub(const char *fn)
{
	return !strcmp(fn, "reflect.makeFuncStub") || !strcmp(fn, "reflect.methodValueCall");
}

/* gr->live: frame by frame from sp up to the outermost (runtime.goexit),
 * where the collector itself stops.  Word by word: a frame without maps,
 * the frame a running goroutine is in (it may be anywhere in it) and the one
 * a signal interrupted, and the rest of the stack where the unwind stopped
 * short.  Without .gopclntab, the whole stack from sp. */
static struct hs_error *stack_live(struct hs_go_goroutines *l, struct hs_go_goroutine *gr)
{
	struct hs_go_rt *rt = l->rt;
	uint64_t from = gr->sp >= gr->stack_lo && gr->sp < gr->stack_hi ? gr->sp & ~UINT64_C(7) : gr->stack_lo;
	// What the scheduler saved is where a goroutine is only when it is not
	// running (a running one whose thread was not found: a stale picture).
	bool saved = !strcmp(gr->regs_from, "sched") || !strcmp(gr->regs_from, "syscall");
	bool settled = gr->status == HS_G_RUNNABLE || gr->status == HS_G_WAITING || gr->status == HS_G_SYSCALL ||
		       gr->status == HS_G_PREEMPTED;
	if (!rt->have_pcln || !rt->gofunc || gr->nframes == 0 || gr->stack_hi - from > MAX_MAPPED_STACK ||
	    (saved && !settled))
		return push_live(gr, from, gr->stack_hi, false) ? NULL : &hs_error_nomem;
	size_t nw = (gr->stack_hi - from) / 8;
	if (!rt->scan && !(rt->scan = calloc(1, sizeof(*rt->scan))))
		return &hs_error_nomem;
	struct stack_scan *ss = rt->scan;
	if (ss->cap < nw) {
		free(ss->kind);
		ss->cap = 0;
		if (!(ss->kind = malloc(nw > 4096 ? nw : 4096)))
			return &hs_error_nomem;
		ss->cap = nw > 4096 ? nw : 4096;
	}
	memset(ss->kind, 0, nw);
	ss->rt = rt, ss->base = from, ss->hi = gr->stack_hi;
	uint8_t *kind = ss->kind;
	bool interrupted = !saved;   // the next frame stopped anywhere, not at a call
	for (size_t i = 0; i < gr->nframes; i++) {
		const char *fn = gr->funcs[i];
		uint64_t sp = gr->sps[i], pc = gr->frames[i];
		if (fn && top_frame(fn))
			break;
		if (i + 1 == gr->nframes) {   // the unwind stopped here
			mark(ss, sp, ss->hi, W_ALL);
			break;
		}
		uint64_t fp = gr->sps[i + 1];
		bool exact = i == 0 || (gr->funcs[i - 1] && async_frame(gr->funcs[i - 1]));
		uint64_t fo = pcln_func(&rt->pcln, exact ? pc : pc - 1);
		bool word_by_word = interrupted || !fn || async_frame(fn) || reflect_stub(fn) || !fo;
		if (word_by_word || !frame_cached(ss, fo, pc, exact, sp, fp)) {
			int32_t nargs = fo ? (int32_t)hs_go_ld(rt->pcln.base + fo + 8, 4) : 0;
			mark(ss, sp, fp + (nargs > 0 ? (uint64_t)nargs : 0), W_ALL);
		}
		interrupted = fn && async_frame(fn);
	}
	bool ok = true;
	for (size_t w = 0; w < nw && ok;) {
		size_t e = w + 1;
		while (e < nw && kind[e] == kind[w])
			e++;
		if (kind[w] != W_NONE)
			ok = push_live(gr, from + 8 * w, from + 8 * e, kind[w] == W_PRECISE);
		w = e;
	}
	return ok ? NULL : &hs_error_nomem;
}

static struct hs_error *read_waits(struct hs_go_goroutines *l, struct hs_go_goroutine *gr, uint64_t sg)
{
	struct hs_go_rt *rt = l->rt;
	struct hs_chain ch;
	hs_chain_init(&ch, HS_GO_MAX_WAITS);
	for (; sg; ) {
		enum hs_chain_step st = hs_chain_next(&ch, sg);
		if (st != HS_CHAIN_OK) {
			hs_walk_diag(rt->ctx, HS_DIAG_WARNING, gr->g, "goroutine %" PRIu64 ": its sudog list (g.waiting) %s",
				     gr->goid, st == HS_CHAIN_CYCLE ? "loops" : "is too long: cut");
			break;
		}
		uint64_t g, c, next;
		if (!rd64(rt, sg + OFF(rt, SG_G), &g) || !rd64(rt, sg + OFF(rt, SG_C), &c) ||
		    !rd64(rt, sg + OFF(rt, SG_WAITLINK), &next)) {
			hs_walk_diag(rt->ctx, HS_DIAG_WARNING, sg, "goroutine %" PRIu64 ": sudog 0x%" PRIx64 " is not in the "
				     "core", gr->goid, sg);
			break;
		}
		if (g != gr->g) {
			hs_walk_diag(rt->ctx, HS_DIAG_WARNING, sg, "goroutine %" PRIu64 ": sudog 0x%" PRIx64 " names another "
				     "g (0x%" PRIx64 "): its waits are left out", gr->goid, sg, g);
			break;
		}
		bool seen = false;
		for (size_t i = 0; i < gr->nwaits; i++)
			seen |= gr->waits[i].chan == c;
		if (c && !seen) {
			if (!grow((void **)&gr->waits, gr->nwaits, sizeof(*gr->waits)))
				return &hs_error_nomem;
			uint64_t et = 0;
			rd64(rt, c + OFF(rt, HC_ELEMTYPE), &et);
			gr->waits[gr->nwaits].chan = c;
			gr->waits[gr->nwaits++].elem_type = type_name(rt, et);
		}
		sg = next;
	}
	return NULL;
}

static int thread_of(struct hs_go_rt *rt, uint64_t procid)
{
	for (size_t i = 0; i < rt->ctx->nthreads; i++)
		if ((uint64_t)rt->ctx->threads[i].tid == procid)
			return (int)i;
	return -1;
}

/* An M running a goroutine: the thread's id, its signal stack. */
struct go_m { uint64_t curg, procid, sig_lo, sig_hi; };

/* A thread in the runtime's signal handler (a crash: GOTRACEBACK=crash
 * dumps core from there) is on its M's gsignal stack; the goroutine's
 * registers are in the kernel's signal frame on that stack: a ucontext whose
 * uc_stack is the sigaltstack, {ss_sp = lo, ss_flags, ss_size = hi - lo}, and
 * 40 bytes in, its gregs (rbp 10, rsp 15, rip 16). */
#define UC_STACK 16
#define UC_GREGS 40
static bool signal_regs(struct hs_go_rt *rt, const struct go_m *m, uint64_t rsp, uint64_t lo, uint64_t hi,
			uint64_t *sp, uint64_t *pc, uint64_t *bp, uint64_t *at)
{
	if (!m->sig_lo || rsp < m->sig_lo || rsp >= m->sig_hi || m->sig_hi - rsp > (UINT64_C(1) << 20))
		return false;
	uint64_t n = (m->sig_hi - rsp) / 8;
	uint64_t *w = malloc(n * 8);
	bool found = false;
	if (w && rd(rt, rsp, w, n * 8)) {
		for (uint64_t i = 0; i + 2 < n && !found; i++) {
			if (w[i] != m->sig_lo || w[i + 2] != m->sig_hi - m->sig_lo)
				continue;
			uint64_t g = i - UC_STACK / 8 + UC_GREGS / 8;
			if (i < UC_STACK / 8 || g + 17 > n || w[g + 15] < lo || w[g + 15] >= hi)
				continue;
			*bp = w[g + 10], *sp = w[g + 15], *pc = w[g + 16];
			*at = rsp + 8 * g;
			found = true;
		}
	}
	free(w);
	return found;
}

static struct hs_error *read_goroutine(struct hs_go_goroutines *l, uint64_t gp, const uint8_t *b,
				       const struct go_m *ms, size_t nms)
{
	struct hs_go_rt *rt = l->rt;
	unsigned status = (unsigned)hs_go_ld(b + OFF(rt, G_STATUS), SZ(rt, G_STATUS)) & ~0x1000u;
	if (status == HS_G_DEAD || status == HS_G_IDLE) {
		l->ndead++;
		return NULL;
	}
	struct hs_go_goroutine *gr = &l->g[l->n];
	*gr = (struct hs_go_goroutine){ .g = gp, .status = status };
	gr->status_name = status < sizeof(status_names) / sizeof(status_names[0]) ? status_names[status] : "unknown";
	gr->goid = hs_go_ld(b + OFF(rt, G_GOID), SZ(rt, G_GOID));
	if (OFF(rt, G_PARENTGOID) != NA)
		gr->parent_goid = hs_go_ld(b + OFF(rt, G_PARENTGOID), SZ(rt, G_PARENTGOID));
	gr->waitreason = (unsigned)hs_go_ld(b + OFF(rt, G_WAITREASON), SZ(rt, G_WAITREASON));
	// waitReasonZero is "": the runtime then says "waiting", as status does.
	if (status == HS_G_WAITING && (gr->wait_reason = reason_name(rt, gr->waitreason)) && !gr->wait_reason[0])
		gr->wait_reason = NULL;
	gr->waitsince = (int64_t)hs_go_ld(b + OFF(rt, G_WAITSINCE), 8);
	gr->stack_lo = hs_go_ld(b + OFF(rt, G_STACK_LO), 8);
	gr->stack_hi = hs_go_ld(b + OFF(rt, G_STACK_HI), 8);
	gr->startpc = hs_go_ld(b + OFF(rt, G_STARTPC), 8);
	gr->gopc = hs_go_ld(b + OFF(rt, G_GOPC), 8);
	gr->start_func = hs_go_func_name(l, gr->startpc, false);
	// The main goroutine is made by the runtime's start-up, and is the
	// program's (runtime.isSystemGoroutine says the same).
	gr->created_by = gr->gopc && gr->goid != 1 ? hs_go_func_name(l, gr->gopc, true) : NULL;
	gr->system = gr->start_func && in_package(gr->start_func, "runtime") && strcmp(gr->start_func, "runtime.main");
	gr->blocking = 0;
	l->n++;
	if (gr->stack_lo >= gr->stack_hi || gr->stack_hi - gr->stack_lo > (UINT64_C(1) << 30)) {
		gr->unwind_stop = "its stack bounds are not a stack";
		gr->blocking = 0;
		return NULL;
	}
	// Where it stopped: a thread's registers when one runs it, its syscall
	// frame, else what the scheduler saved.
	for (size_t i = 0; i < nms && !gr->regs_from; i++) {
		int t = ms[i].curg == gp ? thread_of(rt, ms[i].procid) : -1;
		if (t < 0)
			continue;
		const uint64_t *r = rt->ctx->threads[t].regs;
		gr->tid = rt->ctx->threads[t].tid;
		// A thread in the runtime's signal handler or on g0 is not on
		// the goroutine's stack: its registers are not the goroutine's.
		if (r[HS_REG_RSP] >= gr->stack_lo && r[HS_REG_RSP] < gr->stack_hi) {
			gr->sp = r[HS_REG_RSP], gr->pc = r[HS_REG_RIP], gr->bp = r[HS_REG_RBP];
			gr->regs_from = "thread";
		} else if (signal_regs(rt, &ms[i], r[HS_REG_RSP], gr->stack_lo, gr->stack_hi, &gr->sp, &gr->pc, &gr->bp,
					       &gr->regs_at)) {
			gr->regs_from = "signal";
		}
	}
	if (!gr->regs_from && status == HS_G_SYSCALL) {
		gr->sp = hs_go_ld(b + OFF(rt, G_SYSCALLSP), 8), gr->pc = hs_go_ld(b + OFF(rt, G_SYSCALLPC), 8);
		gr->bp = hs_go_ld(b + OFF(rt, G_SCHED_BP), 8);
		gr->regs_from = "syscall";
	}
	if (!gr->regs_from) {
		gr->sp = hs_go_ld(b + OFF(rt, G_SCHED_SP), 8), gr->pc = hs_go_ld(b + OFF(rt, G_SCHED_PC), 8);
		gr->bp = hs_go_ld(b + OFF(rt, G_SCHED_BP), 8);
		gr->regs_from = "sched";
	}
	if (gr->sp < gr->stack_lo || gr->sp >= gr->stack_hi)
		gr->unwind_stop = gr->tid ? "its thread is not on its stack (in a signal handler or the scheduler)"
					  : "its saved stack pointer is off its stack";
	else
		HS_CHECK(unwind(l, gr));
	HS_CHECK(stack_live(l, gr));
	for (gr->blocking = 0; gr->blocking < gr->nframes; gr->blocking++)
		if (!gr->funcs[gr->blocking] || !waiting_machinery(gr->funcs[gr->blocking]))
			break;
	if (gr->blocking < gr->nframes && !gr->funcs[gr->blocking])
		gr->blocking = gr->nframes;
	uint64_t waiting = hs_go_ld(b + OFF(rt, G_WAITING), 8);
	if (status == HS_G_WAITING && waiting)
		HS_CHECK(read_waits(l, gr, waiting));
	return NULL;
}

/* --- the list ------------------------------------------------------------ */

// Every M's running goroutine and thread id: runtime.allm, linked by alllink.
static struct hs_error *read_ms(struct hs_go_rt *rt, struct go_m **ret, size_t *nret)
{
	struct hs_symbol sym;
	uint64_t m;
	*ret = NULL;
	*nret = 0;
	struct hs_error *err = hs_walk_symbol(rt->ctx, rt->mod, "runtime.allm", &sym);
	if (err || !rd64(rt, sym.address, &m)) {
		hs_error_destroy(err);
		return NULL;
	}
	struct go_m *v = NULL;
	size_t n = 0, cap = 0;
	struct hs_chain ch;
	hs_chain_init(&ch, MAX_MS);
	while (m) {
		enum hs_chain_step st = hs_chain_next(&ch, m);
		uint64_t curg, procid, next, gsignal = 0, sig[2] = { 0, 0 };
		if (st != HS_CHAIN_OK || !rd64(rt, m + OFF(rt, M_CURG), &curg) ||
		    !rd64(rt, m + OFF(rt, M_PROCID), &procid) || !rd64(rt, m + OFF(rt, M_ALLLINK), &next)) {
			hs_walk_diag(rt->ctx, HS_DIAG_WARNING, m, "runtime.allm: M 0x%" PRIx64 " %s: the Ms after it are "
				     "not read", m, st == HS_CHAIN_CYCLE ? "closes a loop" : st == HS_CHAIN_LIMIT ?
				     "is past the limit" : "is not in the core");
			break;
		}
		if (curg) {
			if (rd64(rt, m + OFF(rt, M_GSIGNAL), &gsignal) && gsignal &&
			    (!rd64(rt, gsignal + OFF(rt, G_STACK_LO), &sig[0]) ||
			     !rd64(rt, gsignal + OFF(rt, G_STACK_HI), &sig[1]) || sig[0] >= sig[1]))
				sig[0] = sig[1] = 0;
			if (n == cap) {
				cap = cap ? 2 * cap : 16;
				struct go_m *nv = realloc(v, cap * sizeof(*v));
				if (!nv) {
					free(v);
					return &hs_error_nomem;
				}
				v = nv;
			}
			v[n++] = (struct go_m){ curg, procid, sig[0], sig[1] };
		}
		m = next;
	}
	*ret = v;
	*nret = n;
	return NULL;
}

void hs_go_goroutines_free(struct hs_go_goroutines *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++) {
		free(l->g[i].frames);
		free(l->g[i].funcs);
		free(l->g[i].waits);
		free(l->g[i].sps);
		free(l->g[i].live);
	}
	free(l->g);
	if (l->rt) {
		hs_elf_close(l->rt->file);
		if (l->rt->scan) {
			free(l->rt->scan->kind);
			free(l->rt->scan->recs);
			free(l->rt->scan->cache);
		}
		free(l->rt->scan);
		free(l->rt->reasons);
		for (char *p = l->rt->strings; p;) {
			char *next;
			memcpy(&next, p, sizeof(char *));
			free(p);
			p = next;
		}
		free(l->rt);
	}
	free(l);
}

static struct hs_error *list_all(struct hs_go_goroutines *l)
{
	struct hs_go_rt *rt = l->rt;
	struct hs_walk_ctx *ctx = rt->ctx;
	struct hs_symbol sym;
	uint64_t hdr[3];
	HS_CHECK(hs_walk_symbol(ctx, rt->mod, "runtime.allgs", &sym));
	if (!rd(rt, sym.address, hdr, sizeof(hdr)))
		return hs_error_create(HS_ERR_HEAP, "runtime.allgs (0x%" PRIx64 ") is not in the core: the goroutines "
				       "cannot be listed", sym.address);
	if (hdr[1] > MAX_GOROUTINES || hdr[1] > hdr[2])
		return hs_error_create(HS_ERR_HEAP, "runtime.allgs says %" PRIu64 " goroutines (capacity %" PRIu64 "): "
				       "not a list heapscope can believe (corrupt?)", hdr[1], hdr[2]);
	l->nallgs = hdr[1];
	if (!hdr[1])
		return NULL;
	uint64_t *gs = malloc(hdr[1] * 8);
	uint8_t *b = malloc(SZ(rt, G_SIZEOF));
	l->g = calloc(hdr[1], sizeof(*l->g));
	struct go_m *ms = NULL;
	size_t nms = 0;
	struct hs_error *err = NULL;
	if (!gs || !b || !l->g) {
		err = &hs_error_nomem;
		goto out;
	}
	if (!rd(rt, hdr[0], gs, hdr[1] * 8)) {
		err = hs_error_create(HS_ERR_HEAP, "runtime.allgs' array (0x%" PRIx64 ", %" PRIu64 " entries) is not in the "
				      "core: the goroutines cannot be listed", hdr[0], hdr[1]);
		goto out;
	}
	err = read_ms(rt, &ms, &nms);
	for (uint64_t i = 0; i < hdr[1] && !err; i++) {
		if ((i & 255) == 0 && hs_walk_interrupted(ctx)) {
			err = hs_error_create(HS_ERR_INTERRUPTED, "interrupted");
			break;
		}
		if (!gs[i] || !rd(rt, gs[i], b, SZ(rt, G_SIZEOF))) {
			l->unreadable++;
			hs_walk_diag(ctx, HS_DIAG_WARNING, gs[i], "runtime.allgs[%" PRIu64 "] = 0x%" PRIx64 " is not in the "
				     "core: that goroutine is left out", i, gs[i]);
			continue;
		}
		err = read_goroutine(l, gs[i], b, ms, nms);
	}
out:
	free(gs);
	free(b);
	free(ms);
	return err;
}

// No runtime.allgs: a Go executable without its symbol table still has its
// .go.buildinfo; say what is missing rather than "not Go".
static struct hs_error *no_symbols(struct hs_walk_ctx *ctx)
{
	struct hs_module *mod = ctx->symbols ? hs_symbols_main_module(ctx->symbols) : NULL;
	struct hs_elf_file *f = mod ? hs_elf_open(mod->path, mod->bias) : NULL;
	char version[32];
	bool go = hs_go_buildinfo_version(f, version, sizeof(version));
	hs_elf_close(f);
	if (!go)
		return hs_error_create(HS_ERR_NOT_FOUND, "the Go runtime is not in this process: no runtime.allgs symbol");
	const char *exe = mod->path ? strrchr(mod->path, '/') : NULL;
	return hs_error_create(HS_ERR_HEAP, "%s is a Go program (%s) without a symbol table (built with -ldflags=-s?): "
			       "runtime.allgs cannot be found, so its goroutines cannot be listed; rebuild without -s "
			       "(-w alone keeps the symbols)", exe ? exe + 1 : mod->name,
			       version[0] ? version : "version unknown");
}

struct hs_error *hs_go_goroutines_list(struct hs_walk_ctx *ctx, struct hs_go_goroutines **ret)
{
	*ret = NULL;
	struct hs_module *mod = ctx->symbols ? hs_symbols_main_module(ctx->symbols) : NULL;
	struct hs_symbol sym;
	struct hs_error *err = mod ? hs_walk_symbol(ctx, mod, "runtime.allgs", &sym) : NULL;
	if (!mod || err) {
		hs_error_destroy(err);
		err = hs_walk_symbol(ctx, NULL, "runtime.allgs", &sym);
		mod = err ? NULL : hs_walk_module_at(ctx, sym.address);
	}
	if (err || !mod) {
		hs_error_destroy(err);
		return no_symbols(ctx);
	}
	struct hs_go_goroutines *l = calloc(1, sizeof(*l));
	struct hs_go_rt *rt = l ? calloc(1, sizeof(*rt)) : NULL;
	if (!rt) {
		free(l);
		return &hs_error_nomem;
	}
	l->rt = rt;
	rt->ctx = ctx;
	rt->mod = mod;
	rt->file = hs_elf_open(mod->path, mod->bias);
	hs_go_buildinfo_version(rt->file, l->version, sizeof(l->version));
	err = resolve_layout(rt, l);
	if (!err && version_index(l->version) < 0)
		hs_walk_diag(ctx, HS_DIAG_WARNING, 0, "%s is not a Go release heapscope was checked on (go1.19, "
			     "go1.21-1.24): the goroutines are read by the DWARF names of those",
			     l->version[0] ? l->version : "the Go version");
	if (!err) {
		rt->have_pcln = pcln_open(rt);
		l->unwinder = rt->have_pcln ? "pclntab frame sizes" : "frame pointers";
		l->names = rt->have_pcln ? "pclntab" : "symtab";
		if (!rt->have_pcln)
			hs_walk_diag(ctx, HS_DIAG_WARNING, 0, "the executable's .gopclntab cannot be read%s: stacks are "
				     "unwound by frame pointers and named from .symtab", rt->file ? "" : " (no file)");
		struct hs_error *e = hs_walk_symbol(ctx, mod, "runtime.firstmoduledata", &sym);
		if (e || !rd64(rt, sym.address + OFF(rt, MD_TYPES), &rt->types))
			rt->types = 0;   // channels' element types are then not named
		// rodata and gofunc follow types and etypes (go1.18+).
		if (e || !rd64(rt, sym.address + OFF(rt, MD_TYPES) + 16, &rt->rodata) ||
		    !rd64(rt, sym.address + OFF(rt, MD_TYPES) + 24, &rt->gofunc))
			rt->rodata = rt->gofunc = 0;   // stacks are then scanned word by word
		hs_error_destroy(e);
		read_reasons(rt);
		err = list_all(l);
	}
	if (err) {
		hs_go_goroutines_free(l);
		return err;
	}
	*ret = l;
	return NULL;
}
