/* pools.c - see pools.h: declared pools, detection, the bounded walk of a
 * free list, and what pooled objects retain. */
#include <ctype.h>
#include <dwarf.h>
#include <elfutils/libdwfl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "expr.h"
#include "graph.h"
#include "pools.h"
#include "memory.h"
#include "notes.h"
#include "symbols.h"

/* Bounds: hostile DWARF and huge programs must not make detection slow. */
#define MAX_CANDIDATES 4096       /* head pointers examined */
#define MAX_ARRAY_ELEMS 256       /* elements of one global array of structs */
#define MAX_DEPTH 3               /* nesting of struct members */
#define MAX_LINK_OFFSET 256       /* link offsets tried without DWARF */
#define MAX_BACK_OFFSET 512       /* offsets checked for a back pointer */
#define MAX_SYMBOL_WORDS 64       /* words of one name-matched symbol */

/* The rule's words (docs/cli.md). */
static const char *const pool_words[] = {
	"free", "pool", "spare", "avail", "recycl", "unused", "reuse", "cache",
};

/* Modules whose own free lists are the allocator's or the runtime's business. */
static const char *const system_modules[] = {
	"libc.so", "ld-linux", "libm.so", "libstdc++", "libgcc_s", "libjemalloc", "libpthread",
	"libdl.so", "librt.so", "libtcmalloc", "libmimalloc", "linux-vdso",
};

static bool name_marks_pool(const char *name)
{
	if (!name)
		return false;
	char low[256];
	size_t i = 0;
	for (; name[i] && i + 1 < sizeof(low); i++)
		low[i] = (char)tolower((unsigned char)name[i]);
	low[i] = 0;
	for (size_t w = 0; w < sizeof(pool_words) / sizeof(pool_words[0]); w++)
		if (strstr(low, pool_words[w]))
			return true;
	return false;
}

static bool is_system_module(const struct hs_module *m)
{
	const char *base = strrchr(m->name, '/');
	base = base ? base + 1 : m->name;
	for (size_t i = 0; i < sizeof(system_modules) / sizeof(system_modules[0]); i++)
		if (!strncmp(base, system_modules[i], strlen(system_modules[i])))
			return true;
	return false;
}

static uint64_t gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* Specs. */

// The ':' that separates LINK: the last one that is not part of "::".
static const char *spec_colon(const char *spec)
{
	const char *found = NULL;
	for (const char *p = spec; *p; p++)
		if (*p == ':' && p[1] != ':' && (p == spec || p[-1] != ':'))
			found = p;
	return found;
}

struct spec {
	char expr[512];
	const char *link_name;      /* points into link_buf, or NULL */
	char link_buf[128];
	uint64_t link;              /* when numeric */
};

static struct hs_error *spec_parse(const char *text, struct spec *ret)
{
	memset(ret, 0, sizeof(*ret));
	const char *colon = spec_colon(text);
	size_t elen = colon ? (size_t)(colon - text) : strlen(text);
	if (elen == 0 || elen >= sizeof(ret->expr))
		return hs_error_create(HS_ERR_USAGE, "bad pool spec '%s': expected EXPR[:LINK]", text);
	memcpy(ret->expr, text, elen);
	ret->expr[elen] = 0;
	if (colon) {
		const char *l = colon + 1;
		if (!*l || strlen(l) >= sizeof(ret->link_buf))
			return hs_error_create(HS_ERR_USAGE, "bad pool spec '%s': LINK is empty or too long", text);
		if (isdigit((unsigned char)*l)) {
			char *end;
			ret->link = strtoull(l, &end, 0);
			if (*end || ret->link % 8 || ret->link > (1u << 20))
				return hs_error_create(HS_ERR_USAGE, "bad pool spec '%s': LINK must be a member name or a byte offset that is a multiple of 8", text);
		} else {
			for (const char *p = l; *p; p++)
				if (!isalnum((unsigned char)*p) && *p != '_')
					return hs_error_create(HS_ERR_USAGE, "bad pool spec '%s': LINK must be a member name or a byte offset", text);
			strcpy(ret->link_buf, l);
			ret->link_name = ret->link_buf;
		}
	}
	struct hs_expr e;
	struct hs_error *err = hs_expr_parse(ret->expr, &e);
	if (err) {
		struct hs_error *e2 = hs_error_create(HS_ERR_USAGE, "bad pool spec '%s': %s", text, hs_error_message(err));
		hs_error_destroy(err);
		return e2;
	}
	hs_expr_deinit(&e);
	return NULL;
}

struct hs_error *hs_pool_spec_check(const char *spec)
{
	struct spec sp;
	return spec_parse(spec, &sp);
}

/* The walk. */

struct chain {
	uint64_t *v;
	size_t n, cap;
	bool ended;                 /* reached NULL */
	const char *why;            /* else: why it stopped */
	uint64_t bad;               /* the address that stopped it */
	bool slab, mixed;
	uint64_t size;              /* usable size (separate) or stride (slab), 0 unknown */
};

static void chain_reset(struct chain *c)
{
	uint64_t *v = c->v;
	size_t cap = c->cap;
	memset(c, 0, sizeof(*c));
	c->v = v;
	c->cap = cap;
}

static bool chain_push(struct chain *c, uint64_t p)
{
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		uint64_t *g = realloc(c->v, cap * sizeof(*g));
		if (!g)
			return false;
		c->v = g;
		c->cap = cap;
	}
	c->v[c->n++] = p;
	return true;
}

static int u64_cmp(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return (a > b) - (a < b);
}

// A cycle was found: keep the objects up to the first one seen twice.
static struct hs_error *chain_cut_cycle(struct chain *c)
{
	uint64_t *sorted = malloc((c->n ? c->n : 1) * sizeof(*sorted));
	uint8_t *seen = calloc(c->n ? c->n : 1, 1);
	if (!sorted || !seen) {
		free(sorted);
		free(seen);
		return &hs_error_nomem;
	}
	memcpy(sorted, c->v, c->n * sizeof(*sorted));
	qsort(sorted, c->n, sizeof(*sorted), u64_cmp);
	for (size_t i = 0; i < c->n; i++) {
		uint64_t *at = bsearch(&c->v[i], sorted, c->n, sizeof(*sorted), u64_cmp);
		// bsearch may land on any of equal keys: step to the first.
		while (at > sorted && at[-1] == c->v[i])
			at--;
		if (seen[at - sorted]) {
			c->bad = c->v[i];
			c->n = i;
			break;
		}
		seen[at - sorted] = 1;
	}
	free(sorted);
	free(seen);
	return NULL;
}

static size_t walk_bound(const struct hs_heap *heap)
{
	// No list holds more objects than the heap has 16-byte units in use.
	uint64_t bytes = 0;
	for (size_t i = 0; i < heap->n; i++)
		if (hs_where_is_used(hs_block_where(&heap->blocks[i])))
			bytes += hs_block_size(&heap->blocks[i]);
	return (size_t)(bytes / 16 + 1);
}

// Follow head through the word at link, Brent's cycle check, bounded.
static struct hs_error *walk(const struct hs_pools_input *in, uint64_t head, uint64_t link, size_t bound, struct chain *c)
{
	chain_reset(c);
	uint64_t p = head, tortoise = head;
	size_t power = 1, lam = 0;
	bool cycle = false;
	while (p) {
		if (c->n >= bound) {
			c->why = "is longer than the heap can hold";
			c->bad = p;
			break;
		}
		ptrdiff_t k = hs_heap_find(in->heap, p);
		const struct hs_block *b = k >= 0 ? &in->heap->blocks[k] : NULL;
		if (!b || !hs_where_is_used(hs_block_where(b)) || (p & 7)) {
			c->why = b ? "links to a block that is not in use" : "links outside the heap";
			c->bad = p;
			break;
		}
		if (p + link + 8 > b->address + hs_block_size(b)) {
			c->why = "has a link word outside its allocation";
			c->bad = p;
			break;
		}
		if (!chain_push(c, p))
			return &hs_error_nomem;
		if (p != b->address)
			c->slab = true;
		uint64_t next;
		struct hs_error *err = hs_memory_read_u64(in->mem, p + link, &next);
		if (err) {
			hs_error_destroy(err);
			c->why = "has a link word that cannot be read (not dumped)";
			c->bad = p;
			break;
		}
		p = next;
		if (p && p == tortoise) {
			cycle = true;
			break;
		}
		if (++lam == power) {
			tortoise = p;
			power *= 2;
			lam = 0;
		}
	}
	if (cycle) {
		c->bad = p;
		HS_CHECK(chain_cut_cycle(c));
		c->why = "is cyclic";
	}
	c->ended = !c->why;
	return NULL;
}

// Separate allocations: one usable size?  Slots: the stride.
static void chain_sizes(const struct hs_pools_input *in, struct chain *c, uint64_t size_hint)
{
	if (!c->n)
		return;
	if (!c->slab) {
		c->size = hs_block_size(&in->heap->blocks[hs_heap_find(in->heap, c->v[0])]);
		for (size_t i = 1; i < c->n; i++)
			if (hs_block_size(&in->heap->blocks[hs_heap_find(in->heap, c->v[i])]) != c->size)
				c->mixed = true;
		return;
	}
	uint64_t *sorted = malloc(c->n * sizeof(*sorted));
	if (!sorted)
		return;
	memcpy(sorted, c->v, c->n * sizeof(*sorted));
	qsort(sorted, c->n, sizeof(*sorted), u64_cmp);
	uint64_t g = 0;
	for (size_t i = 1; i < c->n; i++)
		if (hs_heap_find(in->heap, sorted[i]) == hs_heap_find(in->heap, sorted[i - 1]))
			g = gcd(g, sorted[i] - sorted[i - 1]);
	free(sorted);
	c->size = g ? g : size_hint;
}

static uint64_t object_bytes(const struct hs_pools_input *in, const struct chain *c, size_t i)
{
	if (c->slab)
		return c->size;
	return hs_block_size(&in->heap->blocks[hs_heap_find(in->heap, c->v[i])]);
}

/* The pool list. */

struct builder {
	const struct hs_pools_input *in;
	struct hs_pools *p;
	size_t pcap, ocap;
	size_t bound;
};

static struct hs_error *add_pool(struct builder *b, const char *anchor, uint64_t anchor_address, int tid,
				 bool declared, uint64_t head, uint64_t link, const struct chain *c)
{
	struct hs_pools *p = b->p;
	if (p->n == b->pcap) {
		size_t cap = b->pcap ? b->pcap * 2 : 8;
		struct hs_pool *g = realloc(p->pools, cap * sizeof(*g));
		if (!g)
			return &hs_error_nomem;
		p->pools = g;
		b->pcap = cap;
	}
	if (p->nobjs + c->n > b->ocap) {
		size_t cap = b->ocap ? b->ocap : 64;
		while (cap < p->nobjs + c->n)
			cap *= 2;
		struct hs_pool_object *g = realloc(p->objs, cap * sizeof(*g));
		if (!g)
			return &hs_error_nomem;
		p->objs = g;
		b->ocap = cap;
	}
	struct hs_pool *pool = &p->pools[p->n];
	memset(pool, 0, sizeof(*pool));
	if (!(pool->anchor = strdup(anchor)))
		return &hs_error_nomem;
	pool->anchor_address = anchor_address;
	pool->tid = tid;
	pool->declared = declared;
	pool->head = head;
	pool->link = link;
	pool->slab = c->slab;
	pool->object_size = c->size;
	pool->broken = !c->ended;
	pool->first = p->nobjs;
	pool->count = c->n;
	for (size_t i = 0; i < c->n; i++) {
		uint64_t size = object_bytes(b->in, c, i);
		p->objs[p->nobjs++] = (struct hs_pool_object){
			.address = c->v[i], .size = size, .pool = (uint32_t)p->n,
			.block = (uint32_t)hs_heap_find(b->in->heap, c->v[i]),
		};
		pool->bytes += size;
	}
	p->count += pool->count;
	p->bytes += pool->bytes;
	p->n++;
	return NULL;
}

// The link offset of a declared pool: a number, or a member of what EXPR points at.
static struct hs_error *spec_link(const char *text, const struct spec *sp, struct hs_expr_result *r,
				  uint64_t *link_ret, uint64_t *size_hint_ret)
{
	*link_ret = sp->link;
	*size_hint_ret = 0;
	Dwarf_Die pointee;
	bool typed = r->typed && dwarf_tag(&r->type) == DW_TAG_pointer_type && hs_dwarf_type_of(&r->type, &pointee);
	if (typed)
		*size_hint_ret = hs_dwarf_size(&pointee);
	if (r->typed && dwarf_tag(&r->type) != DW_TAG_pointer_type)
		return hs_error_create(HS_ERR_USAGE, "pool '%s': %s is not a pointer (EXPR names where the first free object's address is stored)",
				       text, sp->expr);
	if (!sp->link_name)
		return NULL;
	if (!typed)
		return hs_error_create(HS_ERR_USAGE, "pool '%s': LINK '%s' needs the DWARF type of what %s points at; give a byte offset instead",
				       text, sp->link_name, sp->expr);
	Dwarf_Die mt;
	if (!hs_dwarf_find_member(&pointee, sp->link_name, link_ret, &mt)) {
		const char *tn = dwarf_diename(&pointee);
		return hs_error_create(HS_ERR_USAGE, "pool '%s': %s has no member '%s'", text, tn ? tn : "the pointed-at type",
				       sp->link_name);
	}
	return NULL;
}

static void report_broken(const struct hs_pools_input *in, const char *anchor, int tid, const struct chain *c)
{
	char thread[32] = "";
	if (tid)
		snprintf(thread, sizeof(thread), " (thread %d)", tid);
	if (!strcmp(c->why, "is cyclic"))
		hs_diag_add(in->diags, HS_DIAG_ERROR, "pools", c->bad,
			    "the free list of pool %s%s is cyclic (0x%" PRIx64 " comes again): counted its %zu distinct objects",
			    anchor, thread, c->bad, c->n);
	else
		hs_diag_add(in->diags, HS_DIAG_ERROR, "pools", c->bad,
			    "the free list of pool %s%s %s at 0x%" PRIx64 ": counted the %zu objects before it", anchor,
			    thread, c->why, c->bad, c->n);
}

static struct hs_error *declare(struct builder *b, const char *text, struct chain *c)
{
	const struct hs_pools_input *in = b->in;
	struct spec sp;
	HS_CHECK(spec_parse(text, &sp));
	struct hs_expr_result r;
	struct hs_error *err = in->eval(in->ctx, sp.expr, &r);
	if (err) {
		// The resolver's messages begin with the expression: say it once.
		const char *msg = hs_error_message(err);
		size_t elen = strlen(sp.expr);
		if (msg[0] == '\'' && !strncmp(msg + 1, sp.expr, elen) && !strncmp(msg + 1 + elen, "': ", 3))
			msg += elen + 4;
		struct hs_error *e2 = hs_error_create(err->code == HS_ERR_NOMEM ? HS_ERR_NOMEM : HS_ERR_USAGE,
						      "pool '%s': %s", text, msg);
		hs_error_destroy(err);
		return e2;
	}
	uint64_t link, size_hint;
	err = spec_link(text, &sp, &r, &link, &size_hint);
	for (size_t i = 0; !err && i < r.n; i++) {
		uint64_t head;
		struct hs_error *rerr = hs_memory_read_u64(in->mem, r.locs[i].address, &head);
		if (rerr) {
			hs_diag_add(in->diags, HS_DIAG_ERROR, "pools", r.locs[i].address, "pool %s: cannot read its head: %s",
				    sp.expr, hs_error_message(rerr));
			hs_error_destroy(rerr);
			continue;
		}
		if (!(err = walk(in, head, link, b->bound, c))) {
			chain_sizes(in, c, size_hint);
			if (!c->ended)
				report_broken(in, sp.expr, r.locs[i].tid, c);
			err = add_pool(b, sp.expr, r.locs[i].address, r.locs[i].tid, true, head, link, c);
		}
	}
	hs_expr_result_deinit(&r);
	return err;
}

/* Detection. */

struct candidate {
	char label[160];
	uint64_t address;           /* of the head pointer */
	int tid;
	int64_t link_hint;          /* from DWARF: the one self-pointer member; -1 */
	uint64_t size_hint;         /* DWARF size of the pointee; 0 */
};

struct candidates {
	struct candidate *v;
	size_t n, cap;
	bool full;
};

static void cand_add(struct candidates *cs, const char *label, uint64_t address, int tid, int64_t link_hint,
		     uint64_t size_hint)
{
	if (cs->n == MAX_CANDIDATES) {
		cs->full = true;
		return;
	}
	if (cs->n == cs->cap) {
		size_t cap = cs->cap ? cs->cap * 2 : 32;
		struct candidate *g = realloc(cs->v, cap * sizeof(*g));
		if (!g) {
			cs->full = true;
			return;
		}
		cs->v = g;
		cs->cap = cap;
	}
	struct candidate *c = &cs->v[cs->n++];
	snprintf(c->label, sizeof(c->label), "%s", label);
	c->address = address;
	c->tid = tid;
	c->link_hint = link_hint;
	c->size_hint = size_hint;
}

// A pointer to struct T: T's only member pointing to T is the link.
static int64_t self_link(Dwarf_Die *pointee)
{
	int tag = dwarf_tag(pointee);
	Dwarf_Die m;
	if ((tag != DW_TAG_structure_type && tag != DW_TAG_class_type) || dwarf_child(pointee, &m) != 0)
		return -1;
	int64_t found = -1;
	int n = 0;
	Dwarf_Off self = dwarf_dieoffset(pointee);
	do {
		Dwarf_Die mt, target;
		const char *name = dwarf_diename(&m);
		uint64_t off;
		if (dwarf_tag(&m) != DW_TAG_member || !name || !hs_dwarf_type_of(&m, &mt) ||
		    dwarf_tag(&mt) != DW_TAG_pointer_type || !hs_dwarf_type_of(&mt, &target) ||
		    dwarf_dieoffset(&target) != self || !hs_dwarf_find_member(pointee, name, &off, &target))
			continue;
		found = (int64_t)off;
		n++;
	} while (dwarf_siblingof(&m, &m) == 0);
	return n == 1 ? found : -1;
}

struct visit {
	const struct hs_pools_input *in;
	struct candidates *cs;
	uint64_t (*tls_blocks)[2];  /* tid, block */
	size_t ntls;
};

// A value of type t at addr (or at TLS offset addr): pointers that a name marks.
static void visit_value(struct visit *v, Dwarf_Die *t, uint64_t addr, bool tls, const char *path, bool marked,
			int depth)
{
	if (depth > MAX_DEPTH || v->cs->full)
		return;
	int tag = dwarf_tag(t);
	if (tag == DW_TAG_pointer_type) {
		Dwarf_Die pointee;
		bool has = hs_dwarf_type_of(t, &pointee);
		if (!marked && !(has && name_marks_pool(dwarf_diename(&pointee))))
			return;
		int64_t link = has ? self_link(&pointee) : -1;
		uint64_t size = has ? hs_dwarf_size(&pointee) : 0;
		if (!tls) {
			cand_add(v->cs, path, addr, 0, link, size);
			return;
		}
		for (size_t i = 0; i < v->ntls; i++)
			cand_add(v->cs, path, v->tls_blocks[i][1] + addr, (int)v->tls_blocks[i][0], link, size);
	} else if (tag == DW_TAG_structure_type || tag == DW_TAG_class_type) {
		bool m2 = marked || name_marks_pool(dwarf_diename(t));
		Dwarf_Die m;
		if (dwarf_child(t, &m) != 0)
			return;
		do {
			Dwarf_Die mt;
			uint64_t off;
			const char *name = dwarf_diename(&m);
			if (dwarf_tag(&m) != DW_TAG_member || !name || dwarf_hasattr(&m, DW_AT_bit_size) ||
			    !hs_dwarf_type_of(&m, &mt) || !hs_dwarf_find_member(t, name, &off, &mt))
				continue;
			char inner[160];
			snprintf(inner, sizeof(inner), "%s.%s", path, name);
			visit_value(v, &mt, addr + off, tls, inner, m2 || name_marks_pool(name), depth + 1);
		} while (dwarf_siblingof(&m, &m) == 0 && !v->cs->full);
	} else if (tag == DW_TAG_array_type) {
		Dwarf_Die et;
		if (!hs_dwarf_type_of(t, &et))
			return;
		uint64_t es = hs_dwarf_size(&et), total = hs_dwarf_size(t);
		if (!es || !total)
			return;
		uint64_t n = total / es;
		if (n > MAX_ARRAY_ELEMS)
			n = MAX_ARRAY_ELEMS;
		for (uint64_t i = 0; i < n && !v->cs->full; i++) {
			char inner[160];
			snprintf(inner, sizeof(inner), "%s[%" PRIu64 "]", path, i);
			visit_value(v, &et, addr + i * es, tls, inner, marked, depth + 1);
		}
	}
}

static void candidates_from_dwarf(struct visit *v, struct hs_module *mod)
{
	Dwarf_Addr bias;
	Dwarf *dw = dwfl_module_getdwarf(mod->dwfl_module, &bias);
	if (!dw)
		return;
	Dwarf_CU *cu = NULL;
	Dwarf_Die cudie, sub;
	Dwarf_Half version;
	uint8_t unit_type;
	while (dwarf_get_units(dw, cu, &cu, &version, &unit_type, &cudie, &sub) == 0 && !v->cs->full) {
		Dwarf_Die c;
		if (dwarf_child(&cudie, &c) != 0)
			continue;
		do {
			uint64_t loc;
			bool tls;
			Dwarf_Die t;
			const char *name = dwarf_diename(&c);
			if (dwarf_tag(&c) != DW_TAG_variable || !name || !hs_dwarf_var_location(&c, bias, &loc, &tls) ||
			    (tls && !mod->is_main) || !hs_dwarf_type_of(&c, &t))
				continue;
			visit_value(v, &t, loc, tls, name, name_marks_pool(name), 0);
		} while (dwarf_siblingof(&c, &c) == 0 && !v->cs->full);
	}
}

// No DWARF: object symbols whose name marks a pool; every word may be a head.
static void candidates_from_symtab(struct visit *v, struct hs_module *mod)
{
	Dwfl_Module *dm = mod->dwfl_module;
	int n = dwfl_module_getsymtab(dm);
	for (int i = 1; i < n && !v->cs->full; i++) {
		GElf_Sym sym;
		GElf_Addr addr;
		GElf_Word shndx;
		const char *name = dwfl_module_getsym_info(dm, i, &sym, &addr, &shndx, NULL, NULL);
		bool tls = GELF_ST_TYPE(sym.st_info) == STT_TLS;
		if (!name || (GELF_ST_TYPE(sym.st_info) != STT_OBJECT && !(tls && mod->is_main)) || sym.st_size < 8 ||
		    !name_marks_pool(name))
			continue;
		uint64_t words = sym.st_size / 8;
		if (words > MAX_SYMBOL_WORDS)
			words = MAX_SYMBOL_WORDS;
		for (uint64_t w = 0; w < words; w++) {
			char label[160];
			if (w)
				snprintf(label, sizeof(label), "%s+%" PRIu64, name, w * 8);
			else
				snprintf(label, sizeof(label), "%s", name);
			if (!tls) {
				cand_add(v->cs, label, addr + w * 8, 0, -1, 0);
				continue;
			}
			for (size_t t = 0; t < v->ntls; t++)
				cand_add(v->cs, label, v->tls_blocks[t][1] + sym.st_value + w * 8,
					 (int)v->tls_blocks[t][0], -1, 0);
		}
	}
}

// Is there an offset j where every object after the first points back to the one before?
static bool doubly_linked(const struct hs_pools_input *in, const struct chain *c, uint64_t link)
{
	if (c->n < 2)
		return false;
	uint64_t limit = c->size && c->size < MAX_BACK_OFFSET ? c->size : MAX_BACK_OFFSET;
	for (uint64_t j = 0; j + 8 <= limit; j += 8) {
		if (j == link)
			continue;
		bool all = true;
		for (size_t i = 1; i < c->n && all; i++) {
			uint64_t w;
			struct hs_error *err = hs_memory_read_u64(in->mem, c->v[i] + j, &w);
			if (err) {
				hs_error_destroy(err);
				all = false;
			} else {
				all = w == c->v[i - 1];
			}
		}
		if (all)
			return true;
	}
	return false;
}

static bool chain_is_pool(const struct chain *c)
{
	return c->ended && c->n && !c->mixed && (!c->slab || c->size >= 16);
}

// Walk a candidate with its DWARF link, or find the link: the offset giving
// the longest valid chain (the smallest on ties).
static struct hs_error *try_candidate(struct builder *b, const struct candidate *cand, uint64_t head,
				      struct chain *c, struct chain *best, uint64_t *link_ret)
{
	const struct hs_pools_input *in = b->in;
	*link_ret = 0;
	chain_reset(best);
	if (cand->link_hint >= 0) {
		HS_CHECK(walk(in, head, (uint64_t)cand->link_hint, b->bound, best));
		chain_sizes(in, best, cand->size_hint);
		*link_ret = (uint64_t)cand->link_hint;
		if (!chain_is_pool(best))
			chain_reset(best);
		return NULL;
	}
	ptrdiff_t k = hs_heap_find(in->heap, head);
	if (k < 0)
		return NULL;
	const struct hs_block *blk = &in->heap->blocks[k];
	uint64_t room = blk->address + hs_block_size(blk) - head;
	if (cand->size_hint && cand->size_hint < room)
		room = cand->size_hint;
	for (uint64_t off = 0; off + 8 <= room && off < MAX_LINK_OFFSET; off += 8) {
		HS_CHECK(walk(in, head, off, b->bound, c));
		chain_sizes(in, c, cand->size_hint);
		// A guessed link must link: two objects at least.
		if (!chain_is_pool(c) || c->n < 2 || c->n <= best->n)
			continue;
		struct chain t = *best;
		*best = *c;
		*c = t;
		*link_ret = off;
	}
	return NULL;
}

/* "Referenced from elsewhere": a word in a global, TLS or other root memory,
 * or in an allocation, pointing into a candidate's object, that is neither
 * the anchor nor a link word of the chain (stacks and registers may). */
struct ref_check {
	const struct hs_pools_input *in;
	struct { uint64_t addr, end; uint32_t cand; } *objs;
	size_t nobjs;
	uint64_t *allowed;          /* sorted word addresses */
	size_t nallowed;
	bool *referenced;           /* per candidate pool */
};

static void check_word(struct ref_check *r, uint64_t where, uint64_t v)
{
	size_t lo = 0, hi = r->nobjs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r->objs[mid].addr <= v)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo || v >= r->objs[lo - 1].end)
		return;
	size_t o = lo - 1;
	if (where >= r->objs[o].addr && where < r->objs[o].end)
		return;
	if (bsearch(&where, r->allowed, r->nallowed, sizeof(uint64_t), u64_cmp))
		return;
	r->referenced[r->objs[o].cand] = true;
}

static void check_range(struct ref_check *r, uint64_t start, uint64_t len)
{
	struct hs_memory *mem = r->in->mem;
	uint64_t a = (start + 7) & ~UINT64_C(7), end = start + len;
	uint64_t lo = r->objs[0].addr, hi = r->objs[r->nobjs - 1].end;
	while (a + 8 <= end) {
		const uint8_t *p = hs_memory_span(mem, a, 8);
		if (!p) {
			a += 8;
			continue;
		}
		uint64_t avail = hs_memory_available(mem, a);
		uint64_t stop = a + avail < end ? a + avail : end;
		for (; a + 8 <= stop; a += 8, p += 8) {
			uint64_t v;
			memcpy(&v, p, 8);
			if (v >= lo && v < hi)
				check_word(r, a, v);
		}
	}
}

static int obj_cmp(const void *x, const void *y)
{
	const uint64_t *a = x, *b = y;
	return (a[0] > b[0]) - (a[0] < b[0]);
}

static int u32_cmp(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
	return (a > b) - (a < b);
}

// pools[first..n) are candidates: mark the ones referenced from elsewhere.
static struct hs_error *referenced_elsewhere(const struct hs_pools_input *in, struct hs_pools *p, size_t first, bool *referenced)
{
	size_t nobj = 0;
	for (size_t i = first; i < p->n; i++)
		nobj += p->pools[i].count;
	if (!nobj)
		return NULL;
	struct hs_analysis *a;
	HS_CHECK(in->graph(in->ctx, &a));
	HS_CHECK(hs_analysis_need_reverse(a));
	struct ref_check r = { .in = in, .referenced = referenced };
	r.objs = malloc(nobj * sizeof(*r.objs));
	r.allowed = malloc((nobj + p->n) * sizeof(uint64_t));
	uint32_t *blocks = NULL;
	struct hs_error *err = NULL;
	if (!r.objs || !r.allowed) {
		err = &hs_error_nomem;
		goto out;
	}
	for (size_t i = first; i < p->n; i++) {
		const struct hs_pool *pool = &p->pools[i];
		r.allowed[r.nallowed++] = pool->anchor_address;
		for (size_t k = 0; k < pool->count; k++) {
			const struct hs_pool_object *o = &p->objs[pool->first + k];
			r.objs[r.nobjs].addr = o->address;
			r.objs[r.nobjs].end = o->address + o->size;
			r.objs[r.nobjs++].cand = (uint32_t)(i - first);
			r.allowed[r.nallowed++] = o->address + pool->link;
		}
	}
	qsort(r.objs, r.nobjs, sizeof(*r.objs), obj_cmp);
	qsort(r.allowed, r.nallowed, sizeof(uint64_t), u64_cmp);
	for (size_t i = 0; i < a->roots.n; i++) {
		const struct hs_root_range *rr = &a->roots.ranges[i];
		if (rr->kind == HS_ROOT_GLOBAL || rr->kind == HS_ROOT_TLS || rr->kind == HS_ROOT_MEMORY)
			check_range(&r, rr->start, rr->end - rr->start);
	}
	// The allocations holding the objects, and every allocation pointing into them.
	size_t nb = 0, cap = 0;
	for (size_t k = 0; k < r.nobjs; k++) {
		uint32_t bl = (uint32_t)hs_heap_find(in->heap, r.objs[k].addr);
		size_t need = nb + 1 + (a->rev_off[bl + 1] - a->rev_off[bl]);
		if (need > cap) {
			cap = need * 2;
			uint32_t *g = realloc(blocks, cap * sizeof(*g));
			if (!g) {
				err = &hs_error_nomem;
				goto out;
			}
			blocks = g;
		}
		blocks[nb++] = bl;
		for (uint32_t e = a->rev_off[bl]; e < a->rev_off[bl + 1]; e++)
			blocks[nb++] = a->rev[e];
	}
	qsort(blocks, nb, sizeof(*blocks), u32_cmp);
	for (size_t k = 0; k < nb; k++) {
		if (k && blocks[k] == blocks[k - 1])
			continue;
		const struct hs_block *b = &in->heap->blocks[blocks[k]];
		check_range(&r, b->address, hs_block_size(b));
	}
out:
	free(blocks);
	free(r.objs);
	free(r.allowed);
	return err;
}

static bool head_known(const struct hs_pools *p, uint64_t anchor_address, uint64_t head)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->pools[i].anchor_address == anchor_address || (head && p->pools[i].head == head))
			return true;
	return false;
}

static void drop_pools_from(struct hs_pools *p, size_t first, const bool *drop)
{
	size_t out = first, oout = first < p->n ? p->pools[first].first : p->nobjs;
	for (size_t i = first; i < p->n; i++) {
		struct hs_pool *pool = &p->pools[i];
		if (drop[i - first]) {
			p->count -= pool->count;
			p->bytes -= pool->bytes;
			free(pool->anchor);
			continue;
		}
		size_t from = pool->first;
		pool->first = oout;
		for (size_t k = 0; k < pool->count; k++) {
			p->objs[oout] = p->objs[from + k];
			p->objs[oout++].pool = (uint32_t)out;
		}
		p->pools[out++] = *pool;
	}
	p->n = out;
	p->nobjs = oout;
}

static struct hs_error *detect(struct builder *b, struct chain *c, struct chain *best)
{
	const struct hs_pools_input *in = b->in;
	struct hs_symbols *sy = in->symbols;
	if (!sy)
		return NULL;
	struct candidates cs = { 0 };
	const struct hs_notes *notes = in->notes;
	struct visit v = { .in = in, .cs = &cs };
	v.tls_blocks = calloc(notes->nthreads ? notes->nthreads : 1, sizeof(*v.tls_blocks));
	if (!v.tls_blocks)
		return &hs_error_nomem;
	for (size_t t = 0; t < notes->nthreads; t++) {
		uint64_t block;
		struct hs_error *err = hs_tls_block(notes, in->mem, t, &block);
		if (err) {
			hs_error_destroy(err);
			continue;
		}
		v.tls_blocks[v.ntls][0] = (uint64_t)notes->threads[t].tid;
		v.tls_blocks[v.ntls++][1] = block;
	}
	for (size_t m = 0; m < sy->nmodules; m++) {
		struct hs_module *mod = &sy->modules[m];
		if (!mod->dwfl_module || is_system_module(mod))
			continue;
		if (mod->debug_found)
			candidates_from_dwarf(&v, mod);
		else
			candidates_from_symtab(&v, mod);
	}
	free(v.tls_blocks);
	if (cs.full)
		hs_diag_add(in->diags, HS_DIAG_WARNING, "pools", 0,
			    "pool detection looked at the first %d candidate head pointers only", MAX_CANDIDATES);
	size_t first = b->p->n;
	struct hs_error *err = NULL;
	for (size_t i = 0; i < cs.n && !err; i++) {
		const struct candidate *cand = &cs.v[i];
		uint64_t head, link;
		struct hs_error *rerr = hs_memory_read_u64(in->mem, cand->address, &head);
		if (rerr) {
			hs_error_destroy(rerr);
			continue;
		}
		if (!head || (head & 7) || hs_heap_find(in->heap, head) < 0 || head_known(b->p, cand->address, head))
			continue;
		if ((err = try_candidate(b, cand, head, c, best, &link)) || !best->n)
			continue;
		if (doubly_linked(in, best, link))
			continue;
		err = add_pool(b, cand->label, cand->address, cand->tid, false, head, link, best);
	}
	free(cs.v);
	if (err || b->p->n == first)
		return err;
	bool *referenced = calloc(b->p->n - first, sizeof(bool));
	if (!referenced)
		return &hs_error_nomem;
	err = referenced_elsewhere(in, b->p, first, referenced);
	if (err && (err->code == HS_ERR_INTERRUPTED || err->code == HS_ERR_NOMEM)) {
		free(referenced);
		return err;
	}
	if (err) {
		// Without the graph a live list cannot be told from a pool: detect nothing.
		hs_diag_add(in->diags, HS_DIAG_WARNING, "pools", 0, "pool detection needs the pointer graph: %s",
			    hs_error_message(err));
		hs_error_destroy(err);
		err = NULL;
		for (size_t i = first; i < b->p->n; i++)
			referenced[i - first] = true;
	}
	drop_pools_from(b->p, first, referenced);
	free(referenced);
	return NULL;
}

/* The stage. */

void hs_pools_destroy(struct hs_pools *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++) {
		free(p->pools[i].anchor);
		for (size_t k = 0; k < p->pools[i].ntypes; k++)
			free(p->pools[i].types[k].name);
		free(p->pools[i].types);
	}
	free(p->pools);
	free(p->objs);
	free(p->sorted);
	free(p);
}

static const struct hs_pool_object *sorted_obj(const struct hs_pools *p, size_t i)
{
	return &p->objs[p->sorted[i]];
}

static int sorted_cmp(const void *x, const void *y, void *ctx)
{
	const struct hs_pools *p = ctx;
	uint64_t a = p->objs[*(const uint32_t *)x].address, b = p->objs[*(const uint32_t *)y].address;
	return (a > b) - (a < b);
}

struct hs_error *hs_pools_create(const struct hs_pools_input *in, struct hs_pools **ret)
{
	*ret = NULL;
	struct hs_pools *p = calloc(1, sizeof(*p));
	if (!p)
		return &hs_error_nomem;
	struct builder b = { .in = in, .p = p, .bound = walk_bound(in->heap) };
	struct chain c = { 0 }, best = { 0 };
	struct hs_error *err = NULL;
	for (size_t i = 0; !err && i < in->nspecs; i++)
		err = declare(&b, in->specs[i], &c);
	if (!err && in->detect)
		err = detect(&b, &c, &best);
	if (!err && in->more)
		err = in->more(in->ctx, p);
	free(c.v);
	free(best.v);
	if (!err && p->nobjs) {
		p->sorted = malloc(p->nobjs * sizeof(*p->sorted));
		if (!p->sorted) {
			err = &hs_error_nomem;
		} else {
			for (size_t i = 0; i < p->nobjs; i++)
				p->sorted[i] = (uint32_t)i;
			qsort_r(p->sorted, p->nobjs, sizeof(*p->sorted), sorted_cmp, p);
		}
	}
	if (err) {
		hs_pools_destroy(p);
		return err;
	}
	*ret = p;
	return NULL;
}

struct hs_error *hs_pools_add(struct hs_pools *p, struct hs_pool *pool, const struct hs_pool_object *objs, size_t n)
{
	struct hs_pool *g = realloc(p->pools, (p->n + 1) * sizeof(*g));
	struct hs_pool_object *o = g ? realloc(p->objs, (p->nobjs + n ? p->nobjs + n : 1) * sizeof(*o)) : NULL;
	if (g)
		p->pools = g;
	if (o)
		p->objs = o;
	if (!g || !o || p->nobjs + n > UINT32_MAX) {
		free(pool->anchor);
		for (size_t k = 0; k < pool->ntypes; k++)
			free(pool->types[k].name);
		free(pool->types);
		return &hs_error_nomem;
	}
	pool->first = p->nobjs;
	pool->count = n;
	pool->bytes = 0;
	for (size_t i = 0; i < n; i++) {
		p->objs[p->nobjs] = objs[i];
		p->objs[p->nobjs++].pool = (uint32_t)p->n;
		pool->bytes += objs[i].size;
	}
	p->pools[p->n++] = *pool;
	p->count += pool->count;
	p->bytes += pool->bytes;
	return NULL;
}

const struct hs_pool_object *hs_pools_find(const struct hs_pools *p, uint64_t addr)
{
	if (!p || !p->nobjs)
		return NULL;
	size_t lo = 0, hi = p->nobjs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (sorted_obj(p, mid)->address <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return NULL;
	const struct hs_pool_object *o = sorted_obj(p, lo - 1);
	return addr < o->address + o->size ? o : NULL;
}

bool hs_pools_block_pooled(const struct hs_pools *p, const struct hs_heap *heap, size_t i)
{
	const struct hs_pool_object *o = hs_pools_find(p, heap->blocks[i].address);
	return o && !p->pools[o->pool].slab && o->address == heap->blocks[i].address;
}

/* What pooled objects hold and retain. */

struct retain {
	const struct hs_pools *p;
	const struct hs_heap *heap;
	struct hs_memory *mem;
	const struct hs_analysis *a;
	uint8_t *whole;             /* per block: a pooled object (separate allocation) */
	uint8_t *slots;             /* per block: holds pooled slots */
	uint32_t *queue;
	size_t head, tail;
	uint32_t *stamp;            /* per block: the last visit's mark */
	uint32_t mark;
	const uint8_t *only;        /* visit only blocks with only[i] (NULL: all) */
	uint64_t bytes;
};

static void retain_push(struct retain *r, size_t t)
{
	if (r->stamp[t] == r->mark || (r->only && !r->only[t]))
		return;
	r->stamp[t] = r->mark;
	r->queue[r->tail++] = (uint32_t)t;
	r->bytes += hs_block_size(&r->heap->blocks[t]);
}

// The words of [start, start + len) that are not in a pooled slot.
static void push_words(struct retain *r, uint64_t start, uint64_t len, bool skip_pooled, uint64_t skip_word)
{
	struct hs_memory *mem = r->mem;
	const struct hs_addrmap *m = &r->a->map;
	for (uint64_t a = start; a + 8 <= start + len; a += 8) {
		if (a == skip_word || (skip_pooled && hs_pools_find(r->p, a)))
			continue;
		const uint8_t *p = hs_memory_span(mem, a, 8);
		uint64_t v;
		if (!p)
			continue;
		memcpy(&v, p, 8);
		if (v < m->lo || v >= m->hi)
			continue;
		ptrdiff_t t = hs_addrmap_lookup(m, v);
		if (t >= 0)
			retain_push(r, (size_t)t);
	}
}

static void retain_run(struct retain *r)
{
	while (r->head < r->tail) {
		uint32_t i = r->queue[r->head++];
		if (r->whole[i])
			continue;
		if (r->slots[i]) {
			const struct hs_block *b = &r->heap->blocks[i];
			push_words(r, b->address, hs_block_size(b), true, UINT64_MAX);
			continue;
		}
		for (uint32_t e = r->a->fwd_off[i]; e < r->a->fwd_off[i + 1]; e++)
			retain_push(r, r->a->fwd[e]);
	}
}

// A sync.Pool's object is a Go object, scanned precisely: its graph edges.
static bool polluted_edges(const struct retain *r, const struct hs_pool_object *o)
{
	for (uint32_t e = r->a->fwd_off[o->block]; e < r->a->fwd_off[o->block + 1]; e++)
		if (!hs_pools_find(r->p, r->heap->blocks[r->a->fwd[e]].address))
			return true;
	return false;
}

static bool polluted(const struct retain *r, const struct hs_pool *pool, const struct hs_pool_object *o)
{
	if (pool->sync_pool)
		return polluted_edges(r, o);
	const struct hs_addrmap *m = &r->a->map;
	for (uint64_t a = o->address; a + 8 <= o->address + o->size; a += 8) {
		if (a == o->address + pool->link)
			continue;
		const uint8_t *p = hs_memory_span(r->mem, a, 8);
		uint64_t v;
		if (!p)
			continue;
		memcpy(&v, p, 8);
		if (v < m->lo || v >= m->hi || hs_addrmap_lookup(m, v) < 0 || hs_pools_find(r->p, v))
			continue;
		return true;
	}
	return false;
}

struct hs_error *hs_pools_analyse(struct hs_pools *p, const struct hs_analysis *a, const struct hs_heap *heap,
				  struct hs_memory *mem)
{
	if (p->analysed)
		return NULL;
	size_t n = a->n;
	if (!p->nobjs) {
		p->analysed = true;
		return NULL;
	}
	struct retain r = { .p = p, .heap = heap, .mem = mem, .a = a };
	r.whole = calloc(n ? n : 1, 1);
	r.slots = calloc(n ? n : 1, 1);
	uint8_t *only = calloc(n ? n : 1, 1);
	r.queue = malloc((n ? n : 1) * sizeof(uint32_t));
	r.stamp = calloc(n ? n : 1, sizeof(uint32_t));
	if (!r.whole || !r.slots || !only || !r.queue || !r.stamp) {
		free(r.whole), free(r.slots), free(only), free(r.queue), free(r.stamp);
		return &hs_error_nomem;
	}
	for (size_t k = 0; k < p->nobjs; k++) {
		struct hs_pool_object *o = &p->objs[k];
		if (p->pools[o->pool].slab)
			r.slots[o->block] = 1;
		else
			r.whole[o->block] = 1;
		o->polluted = polluted(&r, &p->pools[o->pool], o);
		p->pools[o->pool].polluted += o->polluted;
		p->polluted += o->polluted;
	}
	// What the roots reach when pooled objects hold nothing.
	r.mark = 1;
	for (size_t i = 0; i < n; i++)
		if (a->flags[i] & HS_NODE_ROOTED)
			retain_push(&r, i);
	retain_run(&r);
	// Reachable now, not then, and not pooled itself: only pools keep it.
	for (size_t i = 0; i < n; i++) {
		only[i] = (a->flags[i] & HS_NODE_REACHABLE) && r.stamp[i] != 1 && !r.whole[i];
		if (only[i])
			p->polluted_retained += hs_block_size(&heap->blocks[i]);
	}
	r.only = only;
	for (size_t i = 0; i < p->n; i++) {
		struct hs_pool *pool = &p->pools[i];
		r.mark = (uint32_t)i + 2;
		r.head = r.tail = 0;
		r.bytes = 0;
		for (size_t k = 0; k < pool->count; k++) {
			const struct hs_pool_object *o = &p->objs[pool->first + k];
			if (pool->sync_pool)
				for (uint32_t e = a->fwd_off[o->block]; e < a->fwd_off[o->block + 1]; e++)
					retain_push(&r, a->fwd[e]);
			else
				push_words(&r, o->address, o->size, false, o->address + pool->link);
		}
		retain_run(&r);
		pool->polluted_retained = r.bytes;
	}
	free(r.whole), free(r.slots), free(only), free(r.queue), free(r.stamp);
	p->analysed = true;
	return NULL;
}
