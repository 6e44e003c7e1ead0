/* go_types.c - Go objects named by their Go types (see go_types.h).
 *
 * Two sources, the first winning:
 *   runtime   from go1.22 an object with pointers of more than 512 bytes
 *             carries its *abi.Type in a malloc header, and a large object
 *             in its span's largeType: the type's own name, from the
 *             executable's type data (no DWARF needed);
 *   DWARF     every global (DW_TAG_variable at an address) types what its
 *             pointers, slices and interfaces point at, and those objects
 *             type theirs, breadth first: a pointer field *T names its
 *             target T, a slice []T its backing array []T, an interface
 *             value names its data by the runtime type word (eface._type,
 *             iface.tab->Type; a pointer-shaped type *T points at a T,
 *             another type at a boxed copy).  DWARF types and runtime types
 *             meet through DW_AT_go_runtime_type.
 * Conventions: a block holding two or more T (a backing array) is "[]T";
 * map buckets keep the runtime's names ("map.bucket[K]V", "map.hdr[K]V",
 * go1.24's "map.group[K]V"); a pointer must be the object's start (after
 * its malloc header) to type it; a tiny block (16 bytes of noscan objects
 * packed together) is never typed.  Objects reached only through untyped
 * memory (goroutine stacks, unsafe.Pointer, strings) stay unknown and are
 * grouped by size.
 */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "expr.h"
#include "go_rt.h"
#include "go_types.h"
#include "testhook.h"
#include "pools.h"
#include "graph.h"
#include "memory.h"
#include "symbols.h"
#include "types.h"

#define DW_AT_go_kind 0x2900
#define DW_AT_go_runtime_type 0x2904
#define GO_KIND_ARRAY 17
#define GO_KIND_INTERFACE 20
#define GO_KIND_SLICE 23
#define GO_KIND_STRING 24
#define MAX_ENTRIES 4096          /* pointer entries of one flattened type */
#define MAX_ELEMS 65536           /* array elements flattened into one type's plan */
#define MAX_DEPTH 10
#define MAX_PLANS 65536

enum { E_PTR, E_SLICE, E_EFACE, E_IFACE };

struct entry {
	uint64_t off;
	uint8_t kind;
	int target;                 /* plan of what it points at (E_PTR, E_SLICE) */
	uint32_t name;              /* E_SLICE: the slice's name */
};

/* A DWARF type flattened: where its pointers are and what they point at. */
struct plan {
	uint64_t die_off, size;
	Dwarf_Die die;
	uint32_t name;              /* its Go name, interned */
	struct entry *e;
	size_t n;
	bool built;
};

struct item { uint32_t block; int plan; uint64_t data, count; };

struct gt {
	const struct hs_go_types_input *in;
	uint64_t *block_die;        /* hs_go_types' result: NULL without DWARF */
	struct hs_analysis *a;
	struct hs_types *t;
	uint32_t *type;             /* hs_types_ids(t): a type per block */
	struct hs_gort *rt;
	struct plan *plans;
	size_t nplans;
	uint64_t *pkeys;            /* die offset + 1 -> plan + 1, open addressing */
	int *pvals;
	size_t pcap;
	uint64_t *rkeys, *rvals;    /* runtime type offset + 1 -> die offset */
	size_t rcap, rcount;        /* doubled at half full */
	Dwarf *dw;
	uint64_t types;             /* moduledata.types */
	struct item *q;
	size_t qhead, qtail, qcap;
	uint64_t visits;
	bool nomem;
};

static size_t hash64(uint64_t v, size_t cap)
{
	return (size_t)(v * UINT64_C(0x9e3779b97f4a7c15) >> 17) & (cap - 1);
}

/* --- names ---------------------------------------------------------------- */

// "bucket<string,interface {}>" -> "map.bucket[string]interface {}" (the
// runtime's names for the types the compiler makes for maps).
static void go_name(const char *dw, char *buf, size_t len)
{
	static const struct { const char *dwarf, *go; } maps[] = {
		{ "bucket<", "map.bucket[" }, { "hash<", "map.hdr[" }, { "map<", "map.hdr[" },
		{ "table<", "map.table[" }, { "groupReference<", "map.groupReference[" },
	};
	if (!strncmp(dw, "noalg.", 6))
		dw += 6;
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		size_t n = strlen(maps[i].dwarf);
		size_t l = strlen(dw);
		if (strncmp(dw, maps[i].dwarf, n) || l < n + 1 || dw[l - 1] != '>')
			continue;
		// split K,V at the top-level comma
		int depth = 0;
		const char *comma = NULL;
		for (const char *p = dw + n; p < dw + l - 1; p++) {
			if (*p == '<' || *p == '[' || *p == '(' || *p == '{')
				depth++;
			else if (*p == '>' || *p == ']' || *p == ')' || *p == '}')
				depth--;
			else if (*p == ',' && depth == 0 && !comma)
				comma = p;
		}
		if (!comma)
			break;
		snprintf(buf, len, "%s%.*s]%.*s", maps[i].go, (int)(comma - dw - n), dw + n,
			 (int)(dw + l - 1 - comma - 1), comma + 1);
		return;
	}
	snprintf(buf, len, "%s", dw);
}

static uint32_t intern_go(struct gt *g, const char *dwarf_name)
{
	char buf[512];
	go_name(dwarf_name, buf, sizeof(buf));
	return hs_types_intern(g->t, buf);
}

static uint32_t intern_array(struct gt *g, uint32_t elem)
{
	const char *e = hs_types_name(g->t, elem);
	if (!e)
		return 0;
	if (!strncmp(e, "map.", 4))
		return elem;
	char buf[520];
	snprintf(buf, sizeof(buf), "[]%s", e);
	return hs_types_intern(g->t, buf);
}

/* --- DWARF plans ------------------------------------------------------------ */

static bool die_type(Dwarf_Die *die, Dwarf_Die *ret)
{
	Dwarf_Attribute attr;
	return dwarf_attr_integrate(die, DW_AT_type, &attr) && dwarf_formref_die(&attr, ret) &&
	       dwarf_peel_type(ret, ret) == 0;
}

static int go_kind(Dwarf_Die *d)
{
	Dwarf_Attribute attr;
	Dwarf_Word v;
	if (dwarf_attr(d, DW_AT_go_kind, &attr) && dwarf_formudata(&attr, &v) == 0)
		return (int)v;
	return 0;
}

static uint64_t type_size(Dwarf_Die *d)
{
	if (dwarf_tag(d) == DW_TAG_pointer_type)
		return 8;
	Dwarf_Word n;
	if (dwarf_aggregate_size(d, &n) == 0)
		return n;
	return 0;
}

static int plan_of(struct gt *g, Dwarf_Die *die);

static void add_entry(struct gt *g, struct plan *p, struct entry e)
{
	if (p->n >= MAX_ENTRIES)
		return;
	if ((p->n & (p->n - 1)) == 0) {
		struct entry *n = realloc(p->e, (p->n ? 2 * p->n : 4) * sizeof(*n));
		if (!n) {
			g->nomem = true;
			return;
		}
		p->e = n;
	}
	p->e[p->n++] = e;
}

// The pointers of a value of type d at offset base, into plan k's entries
// (k's array may move: plans are added while flattening).
static void flatten(struct gt *g, int k, Dwarf_Die *d, uint64_t base, int depth)
{
	if (depth > MAX_DEPTH || g->nomem)
		return;
	int tag = dwarf_tag(d), kind = go_kind(d);
	Dwarf_Die t;
	if (tag == DW_TAG_pointer_type) {
		if (!die_type(d, &t))
			return;
		int target = plan_of(g, &t);
		if (target >= 0)
			add_entry(g, &g->plans[k], (struct entry){ base, E_PTR, target, 0 });
		return;
	}
	if (tag == DW_TAG_structure_type && kind == GO_KIND_SLICE) {
		Dwarf_Die m;
		if (dwarf_child(d, &m) != 0)
			return;
		do {
			const char *n = dwarf_diename(&m);
			Dwarf_Die pt, et;
			if (!n || strcmp(n, "array") || !die_type(&m, &pt) || dwarf_tag(&pt) != DW_TAG_pointer_type ||
			    !die_type(&pt, &et))
				continue;
			int target = plan_of(g, &et);
			const char *sn = dwarf_diename(d);
			if (target >= 0 && sn)
				add_entry(g, &g->plans[k], (struct entry){ base, E_SLICE, target, intern_go(g, sn) });
			return;
		} while (dwarf_siblingof(&m, &m) == 0);
		return;
	}
	if (tag == DW_TAG_structure_type && kind == GO_KIND_STRING)
		return;
	const char *sname = tag == DW_TAG_structure_type ? dwarf_diename(d) : NULL;
	if (sname && (!strcmp(sname, "runtime.eface") || !strcmp(sname, "runtime.iface"))) {
		add_entry(g, &g->plans[k], (struct entry){ base, sname[8] == 'i' ? E_IFACE : E_EFACE, -1, 0 });
		return;
	}
	if (tag == DW_TAG_structure_type && kind == GO_KIND_INTERFACE) {
		Dwarf_Die m;
		if (dwarf_child(d, &m) == 0) {
			const char *n = dwarf_diename(&m);
			add_entry(g, &g->plans[k], (struct entry){ base, n && !strcmp(n, "tab") ? E_IFACE : E_EFACE, -1, 0 });
		}
		return;
	}
	if (tag == DW_TAG_structure_type) {
		Dwarf_Die m;
		if (dwarf_child(d, &m) != 0)
			return;
		do {
			uint64_t off;
			Dwarf_Die mt;
			if (dwarf_tag(&m) != DW_TAG_member || !hs_dwarf_member_location(&m, &off) || !die_type(&m, &mt))
				continue;
			flatten(g, k, &mt, base + off, depth + 1);
		} while (dwarf_siblingof(&m, &m) == 0 && !g->nomem);
		return;
	}
	if (tag == DW_TAG_array_type && die_type(d, &t)) {
		uint64_t es = type_size(&t), total = type_size(d);
		if (!es)
			return;
		size_t before = g->plans[k].n;
		flatten(g, k, &t, base, depth + 1);
		if (g->plans[k].n == before)
			return;   // no pointers in the element
		size_t per = g->plans[k].n - before;
		for (uint64_t i = 1; i < total / es && i < MAX_ELEMS && g->plans[k].n + per <= MAX_ENTRIES; i++)
			for (size_t j = 0; j < per; j++) {
				struct entry e = g->plans[k].e[before + j];
				e.off += i * es;
				add_entry(g, &g->plans[k], e);
			}
	}
	// chans, funcs, maps' typedefs (peeled above), scalars: nothing.
}

static int plan_of(struct gt *g, Dwarf_Die *die)
{
	uint64_t key = dwarf_dieoffset(die) + 1;
	if (!g->pcap)
		return -1;
	size_t h = hash64(key, g->pcap);
	for (; g->pkeys[h]; h = (h + 1) & (g->pcap - 1))
		if (g->pkeys[h] == key)
			return g->pvals[h];
	const char *name = dwarf_diename(die);
	uint64_t size = type_size(die);
	if (!name || !size || g->nplans >= MAX_PLANS || (g->nplans + 1) * 2 > g->pcap)
		return -1;
	int k = (int)g->nplans++;
	g->plans[k] = (struct plan){ .die_off = key - 1, .size = size, .die = *die, .name = intern_go(g, name) };
	g->pkeys[h] = key;
	g->pvals[h] = k;
	return k;
}

static struct plan *plan_built(struct gt *g, int k)
{
	if (!g->plans[k].built) {
		g->plans[k].built = true;
		Dwarf_Die d = g->plans[k].die;
		flatten(g, k, &d, 0, 0);
	}
	return &g->plans[k];
}

/* --- runtime types -> DWARF ------------------------------------------------- */

// Double the map (false on no memory: it stays as it is).
static bool rmap_grow(struct gt *g)
{
	size_t cap = 2 * g->rcap;
	uint64_t *keys = calloc(cap, sizeof(*keys)), *vals = calloc(cap, sizeof(*vals));
	if (!keys || !vals) {
		free(keys);
		free(vals);
		return false;
	}
	for (size_t i = 0; i < g->rcap; i++) {
		if (!g->rkeys[i])
			continue;
		size_t h = hash64(g->rkeys[i], cap);
		while (keys[h])
			h = (h + 1) & (cap - 1);
		keys[h] = g->rkeys[i];
		vals[h] = g->rvals[i];
	}
	free(g->rkeys);
	free(g->rvals);
	g->rkeys = keys;
	g->rvals = vals;
	g->rcap = cap;
	return true;
}

// A type of a big program may go unmapped (no memory), never a full map:
// its probes would go round for ever.
static void rmap_add(struct gt *g, uint64_t off, uint64_t die)
{
	if (!g->rcap || ((g->rcount + 1) * 2 > g->rcap && !rmap_grow(g)))
		return;
	size_t h = hash64(off + 1, g->rcap);
	while (g->rkeys[h] && g->rkeys[h] != off + 1)
		h = (h + 1) & (g->rcap - 1);
	g->rcount += !g->rkeys[h];
	g->rkeys[h] = off + 1;
	g->rvals[h] = die;
}

// The plan of the DWARF type of runtime type descriptor addr, or -1.
static int plan_of_runtime(struct gt *g, uint64_t addr)
{
	if (!g->rcap || !g->dw || addr < g->types)
		return -1;
	uint64_t off = addr - g->types + 1;
	for (size_t h = hash64(off, g->rcap); g->rkeys[h]; h = (h + 1) & (g->rcap - 1)) {
		if (g->rkeys[h] != off)
			continue;
		Dwarf_Die d;
		if (!dwarf_offdie(g->dw, g->rvals[h], &d) || dwarf_peel_type(&d, &d) != 0)
			return -1;
		return plan_of(g, &d);
	}
	return -1;
}

/* --- typing blocks -------------------------------------------------------- */

static void push(struct gt *g, uint32_t b, int plan, uint64_t data, uint64_t count)
{
	if (plan < 0 || !count)
		return;
	if (g->qtail == g->qcap) {
		size_t cap = g->qcap ? 2 * g->qcap : 1024;
		struct item *n = realloc(g->q, cap * sizeof(*n));
		if (!n) {
			g->nomem = true;
			return;
		}
		g->q = n;
		g->qcap = cap;
	}
	g->q[g->qtail++] = (struct item){ b, plan, data, count };
}

// Block b's element type (for field names): its DIE, and its data offset.
static void record(struct gt *g, size_t b, int k, uint64_t off)
{
	if (k >= 0 && g->block_die)
		g->block_die[b] = (g->plans[k].die_off + 1) | (off ? UINT64_C(1) << 63 : 0);
}

// v points at what plan k describes (count of them at most; 0: as many as
// the block holds): type its block.
static void type_target(struct gt *g, uint64_t v, int k, uint32_t name, uint64_t count)
{
	ptrdiff_t b = v ? hs_addrmap_lookup(&g->a->map, v) : -1;
	// A block the runtime named without a DWARF type to match (go1.22's
	// map.bucket[K]V in a malloc header) keeps its name; DWARF gives its
	// contents their types.
	bool named = b >= 0 && g->type[b];
	if (b < 0 || (named && (!g->block_die || g->block_die[b])))
		return;
	const struct hs_block *blk = &g->in->heap->blocks[b];
	uint64_t size = hs_block_size(blk), off = 0;
	const struct hs_go_span *sp = hs_go_span_of(g->rt, blk->address);
	if (!sp)
		return;
	uint64_t esize = g->plans[k].size;
	if ((sp->spanclass & 1) && sp->elemsize == 16 && esize < 16)
		return;   // a tiny block: several objects
	if (g->rt->minor >= 22 && !(sp->spanclass & 1) && sp->spanclass >> 1 && sp->elemsize > 512)
		off = 8;  // the malloc header
	if (v != blk->address + off || esize == 0 || esize > size - off)
		return;
	uint64_t fit = (size - off) / esize;
	if (!count || count > fit)
		count = fit;
	if (!name)
		name = count >= 2 ? intern_array(g, g->plans[k].name) : g->plans[k].name;
	if (!named)
		g->type[b] = name;
	record(g, (size_t)b, k, off);
	push(g, (uint32_t)b, k, v, count);
}

static bool rd(struct gt *g, uint64_t addr, uint64_t *v)
{
	const uint8_t *p = hs_memory_span(g->in->mem, addr, 8);
	if (!p)
		return false;
	memcpy(v, p, 8);
	return true;
}

// An interface value: its data typed by the dynamic type.
static void type_iface(struct gt *g, uint64_t typeword, uint64_t data)
{
	const struct hs_go_type *t = typeword && data ? hs_go_type(g->rt, typeword) : NULL;
	if (!t)
		return;
	uint64_t target = typeword;
	if (t->kind & HS_GO_KIND_DIRECT_IFACE) {
		// pointer-shaped: *T points at a T
		if ((t->kind & HS_GO_KIND_MASK) != HS_GO_KIND_PTR || !hs_go_read(g->rt, typeword + HS_GO_PTRTYPE_ELEM, &target, 8))
			return;
	}
	int k = plan_of_runtime(g, target);
	if (k >= 0) {
		type_target(g, data, k, 0, 1);
		return;
	}
}

// The values of plan k at addr.
static void visit(struct gt *g, int k, uint64_t addr)
{
	struct plan *p = plan_built(g, k);
	for (size_t i = 0; i < p->n && !g->nomem; i++) {
		const struct entry e = g->plans[k].e[i];
		uint64_t v, w;
		if (!rd(g, addr + e.off, &v) || !v)
			continue;
		switch (e.kind) {
		case E_PTR:
			type_target(g, v, e.target, 0, 0);
			break;
		case E_SLICE:
			if (rd(g, addr + e.off + 16, &w))
				type_target(g, v, e.target, e.name, w);
			break;
		case E_EFACE:
			if (rd(g, addr + e.off + 8, &w))
				type_iface(g, v, w);
			break;
		case E_IFACE:
			if (rd(g, v + 8, &v) && rd(g, addr + e.off + 8, &w))
				type_iface(g, v, w);
			break;
		}
		p = &g->plans[k];
	}
}

// Values visited at most: each block is typed once, and every element of
// it visited (a slice of a million pointers types a million objects), but a
// damaged core's types could ask for billions of reads.  Values with no
// pointer in them are not visited, nor counted.
#define MAX_VISITS (UINT64_C(1) << 27)

static void drain(struct gt *g)
{
	while (g->qhead < g->qtail && !g->nomem && g->visits < MAX_VISITS) {
		struct item it = g->q[g->qhead++];
		if (!plan_built(g, it.plan)->n)
			continue;
		uint64_t es = g->plans[it.plan].size;
		for (uint64_t i = 0; i < it.count && g->visits < MAX_VISITS; i++, g->visits++)
			visit(g, it.plan, it.data + i * es);
	}
}

static void type_runtime(struct gt *g);
static void drain(struct gt *g);

// A global's address: Go writes DW_AT_location as a block (DW_FORM_block1)
// holding DW_OP_addr, which dwarf_getlocation may refuse in DWARF 4.
static bool var_address(Dwarf_Die *var, Dwarf_Addr bias, uint64_t *ret)
{
	bool tls;
	if (hs_dwarf_var_location(var, bias, ret, &tls))
		return !tls;
	Dwarf_Attribute attr;
	Dwarf_Block b;
	if (!dwarf_attr(var, DW_AT_location, &attr) || dwarf_formblock(&attr, &b) != 0 || b.length != 9 ||
	    b.data[0] != DW_OP_addr)
		return false;
	uint64_t a;
	memcpy(&a, b.data + 1, 8);
	*ret = a + bias;
	return true;
}

// Every unit: runtime type offsets, and the globals as roots.
static void scan_dwarf(struct gt *g, struct hs_module *mod)
{
	Dwarf_Addr bias;
	g->dw = mod->dwfl_module ? dwfl_module_getdwarf(mod->dwfl_module, &bias) : NULL;
	if (!g->dw)
		return;
	Dwarf_CU *cu = NULL;
	Dwarf_Die cudie, sub, c;
	Dwarf_Half version;
	uint8_t ut;
	struct { uint64_t addr, die; } *vars = NULL;
	size_t nvars = 0, capvars = 0;
	while (dwarf_get_units(g->dw, cu, &cu, &version, &ut, &cudie, &sub) == 0) {
		if (dwarf_child(&cudie, &c) != 0)
			continue;
		do {
			Dwarf_Attribute attr;
			Dwarf_Word v;
			int tag = dwarf_tag(&c);
			if (tag == DW_TAG_variable) {
				uint64_t addr;
				if (!var_address(&c, bias, &addr))
					continue;
				if (nvars == capvars) {
					capvars = capvars ? 2 * capvars : 1024;
					void *n = realloc(vars, capvars * sizeof(*vars));
					if (!n)
						break;
					vars = n;
				}
				vars[nvars].addr = addr;
				vars[nvars++].die = dwarf_dieoffset(&c);
			} else if (dwarf_attr(&c, DW_AT_go_runtime_type, &attr)) {
				Dwarf_Addr a;
				if (dwarf_formudata(&attr, &v) == 0)
					rmap_add(g, v, dwarf_dieoffset(&c));
				else if (dwarf_formaddr(&attr, &a) == 0)   // DW_FORM_addr, an offset all the same
					rmap_add(g, a >= g->types ? a - g->types : a, dwarf_dieoffset(&c));
			}
		} while (dwarf_siblingof(&c, &c) == 0);
	}
	// The runtime-typed objects first (certain), then what the globals reach.
	type_runtime(g);
	drain(g);
	for (size_t i = 0; i < nvars && !g->nomem; i++) {
		Dwarf_Die var, t;
		if (!dwarf_offdie(g->dw, vars[i].die, &var) || !die_type(&var, &t))
			continue;
		int k = plan_of(g, &t);
		if (k >= 0)
			visit(g, k, vars[i].addr);
	}
	free(vars);
}

// Header- and largeType-typed objects: named by the runtime type.
static void type_runtime(struct gt *g)
{
	const struct hs_heap *h = g->in->heap;
	uint64_t last_t = 0;
	uint32_t last_name = 0;
	for (size_t i = 0; i < h->n && !g->nomem; i++) {
		const struct hs_block *b = &h->blocks[i];
		if (!(g->a->flags[i] & HS_NODE_USED))
			continue;
		uint64_t off, ta = hs_go_object_type(g->rt, b->address, &off);
		const struct hs_go_type *t = ta ? hs_go_type(g->rt, ta) : NULL;
		if (!t || !t->size)
			continue;
		uint64_t n = (hs_block_size(b) - off) / t->size;
		if (ta != last_t) {
			char name[512];
			last_name = hs_go_type_name(g->rt, ta, name, sizeof(name)) ? hs_types_intern(g->t, name) : 0;
			last_t = ta;
		}
		if (!last_name)
			continue;
		g->type[i] = n >= 2 ? intern_array(g, last_name) : last_name;
		int k = plan_of_runtime(g, ta);
		record(g, i, k, off);
		push(g, (uint32_t)i, k, b->address + off, n);
	}
}

// The objects of the program's sync.Pools (go_pools.c): reached only
// through the pools' unsafe.Pointer caches, typed by their interface values.
static void type_pooled(struct gt *g)
{
	const struct hs_pools *p = NULL;
	struct hs_error *err = g->in->pools ? g->in->pools(g->in->ctx, &p) : NULL;
	if (err || !p) {
		hs_error_destroy(err);   // the pools command says why
		return;
	}
	for (size_t i = 0; i < p->n && !g->nomem; i++) {
		const struct hs_pool *pool = &p->pools[i];
		for (size_t k = 0; pool->sync_pool && k < pool->count; k++) {
			const struct hs_pool_object *o = &p->objs[pool->first + k];
			type_iface(g, pool->types[o->type].addr, o->value);
		}
	}
}

void hs_go_types(const struct hs_go_types_input *in, struct hs_types *t, uint64_t **block_die)
{
	if (!in->rt)
		return;
	struct hs_analysis *a = in->a;
	struct gt g = { .in = in, .a = a, .t = t, .type = hs_types_ids(t), .rt = in->rt, .types = in->rt->types };
	bool dwarf = in->rt->dwarf;
	free(*block_die);
	*block_die = dwarf ? calloc(a->n ? a->n : 1, sizeof(**block_die)) : NULL;
	g.block_die = *block_die;
	if (dwarf) {
		g.plans = calloc(MAX_PLANS, sizeof(*g.plans));
		g.pcap = 2 * MAX_PLANS;
		g.pkeys = calloc(g.pcap, sizeof(*g.pkeys));
		g.pvals = calloc(g.pcap, sizeof(*g.pvals));
		// (Tests start it small: every Go fixture grows it.)
		g.rcap = hs_test_small_splits() ? 16 : 1 << 17;
		g.rkeys = calloc(g.rcap, sizeof(*g.rkeys));
		g.rvals = calloc(g.rcap, sizeof(*g.rvals));
		if (!g.plans || !g.pkeys || !g.pvals || !g.rkeys || !g.rvals)
			dwarf = false, g.pcap = g.rcap = 0;
	}
	if (dwarf) {
		scan_dwarf(&g, in->rt->mod);
		drain(&g);
		type_pooled(&g);
		drain(&g);
	} else {
		type_runtime(&g);
	}
	for (size_t i = 0; i < g.nplans; i++)
		free(g.plans[i].e);
	free(g.plans);
	free(g.pkeys);
	free(g.pvals);
	free(g.rkeys);
	free(g.rvals);
	free(g.q);
}

// buf = head, "[index]" (unless UINT64_MAX), then ".inner" (or "inner"
// when it is an index itself), truncated to len.
static void join(char *buf, size_t len, const char *head, unsigned long long index, const char *inner)
{
	char tmp[600];
	char idx[32] = "";
	if (index != UINT64_MAX)
		snprintf(idx, sizeof(idx), "[%llu]", index);
	const char *dot = inner[0] && inner[0] != '[' && (head[0] || idx[0]) ? "." : "";
	snprintf(tmp, sizeof(tmp), "%.200s%s%s%.300s", head, idx, dot, inner);
	size_t n = strlen(tmp);
	if (n >= len)
		n = len - 1;
	memcpy(buf, tmp, n);
	buf[n] = 0;
}

// The member of type d holding byte off: "next", "hdr.len", "[3]".
static bool member_at(Dwarf_Die *d, uint64_t off, char *buf, size_t len, int depth)
{
	if (depth > MAX_DEPTH || !len)
		return false;
	int tag = dwarf_tag(d);
	Dwarf_Die t;
	if (tag == DW_TAG_array_type && die_type(d, &t)) {
		uint64_t es = type_size(&t);
		if (!es)
			return false;
		char inner[256] = "";
		if (!member_at(&t, off % es, inner, sizeof(inner), depth + 1))
			inner[0] = 0;
		join(buf, len, "", (unsigned long long)(off / es), inner);
		return true;
	}
	if (tag != DW_TAG_structure_type || go_kind(d) == GO_KIND_SLICE || go_kind(d) == GO_KIND_STRING ||
	    go_kind(d) == GO_KIND_INTERFACE)
		return false;
	Dwarf_Die m;
	if (dwarf_child(d, &m) != 0)
		return false;
	do {
		uint64_t mo;
		Dwarf_Die mt;
		const char *name = dwarf_diename(&m);
		if (dwarf_tag(&m) != DW_TAG_member || !name || !hs_dwarf_member_location(&m, &mo) || !die_type(&m, &mt))
			continue;
		uint64_t sz = type_size(&mt);
		if (off < mo || off >= mo + (sz ? sz : 1))
			continue;
		char inner[256] = "";
		if (!member_at(&mt, off - mo, inner, sizeof(inner), depth + 1))
			inner[0] = 0;
		join(buf, len, name, UINT64_MAX, inner);
		return true;
	} while (dwarf_siblingof(&m, &m) == 0);
	return false;
}

bool hs_go_block_field(const struct hs_gort *rt, const struct hs_analysis *a, const struct hs_heap *heap,
		       const uint64_t *block_die, size_t i, uint64_t off, char *buf, size_t len)
{
	if (!rt || !block_die || !a || i >= a->n || !block_die[i])
		return false;
	uint64_t v = block_die[i], data = v >> 63 ? 8 : 0;
	Dwarf_Addr bias;
	Dwarf *dw = rt->mod->dwfl_module ? dwfl_module_getdwarf(rt->mod->dwfl_module, &bias) : NULL;
	Dwarf_Die d;
	if (!dw || off < data || !dwarf_offdie(dw, (v & ~(UINT64_C(1) << 63)) - 1, &d))
		return false;
	uint64_t es = type_size(&d), in = off - data;
	if (!es)
		return false;
	uint64_t elem = in / es;
	char inner[256];
	bool have = member_at(&d, in % es, inner, sizeof(inner), 0);
	bool array = hs_block_size(&heap->blocks[i]) - data >= 2 * es;
	if (!have)
		inner[0] = 0;
	if (array)
		join(buf, len, "", elem, inner);
	else if (have)
		join(buf, len, "", UINT64_MAX, inner);
	else
		return false;
	return true;
}

// The DWARF type of the global named var (a top-level DW_TAG_variable).
static bool global_type(Dwarf *dw, const char *var, Dwarf_Die *ret)
{
	Dwarf_CU *cu = NULL;
	Dwarf_Die cudie, sub, c;
	Dwarf_Half version;
	uint8_t ut;
	while (dwarf_get_units(dw, cu, &cu, &version, &ut, &cudie, &sub) == 0) {
		if (dwarf_child(&cudie, &c) != 0)
			continue;
		do {
			const char *n;
			if (dwarf_tag(&c) == DW_TAG_variable && (n = dwarf_diename(&c)) && !strcmp(n, var))
				return die_type(&c, ret);
		} while (dwarf_siblingof(&c, &c) == 0);
	}
	return false;
}

bool hs_go_global_field(const struct hs_gort *rt, const char *var, uint64_t off, char *buf, size_t len)
{
	Dwarf_Addr bias;
	Dwarf *dw = rt && rt->dwarf && rt->mod->dwfl_module ? dwfl_module_getdwarf(rt->mod->dwfl_module, &bias) : NULL;
	Dwarf_Die t;
	char inner[256];
	if (!dw || !global_type(dw, var, &t) || off >= type_size(&t) || !member_at(&t, off, inner, sizeof(inner), 0))
		return false;
	join(buf, len, var, UINT64_MAX, inner);
	return true;
}
