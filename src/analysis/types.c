/* types.c - see types.h. */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "expr.h"
#include "graph.h"
#include "output.h"
#include "rtti.h"
#include "testhook.h"
#include "symbols.h"
#include "target.h"
#include "types.h"
#include "vec.h"

/* Bounds: hostile DWARF and huge arrays must not make this slow. */
#define MAX_SLOTS 4096          /* pointer slots of one flattened struct */
#define MAX_ARRAY 65536         /* elements of one array type flattened */
#define MAX_DEPTH 8             /* nesting of structs inside structs */
#define MAX_LAYOUTS 65535       /* struct types known: the array never moves */
#define NO_LAYOUT UINT16_MAX    /* a block's layout when none: MAX_LAYOUTS fit below */
#define LAYOUT_SLOTS (1u << 17) /* the layouts' hash index: a power of two, over twice MAX_LAYOUTS */
_Static_assert(LAYOUT_SLOTS > 2 * MAX_LAYOUTS && !(LAYOUT_SLOTS & (LAYOUT_SLOTS - 1)), "LAYOUT_SLOTS");

extern char *__cxa_demangle(const char *mangled, char *out, size_t *len, int *status);

/* A pointer inside a struct, flattened through nested structs and arrays. */
struct slot {
	uint64_t offset;
	int pointee;                /* index into types->layouts: the pointed-at struct */
	const char *field;          /* member name (owned by libdw) */
	uint32_t index;             /* array element, or UINT32_MAX */
};

/* A struct type known from DWARF. */
struct layout {
	Dwarf_Die die;
	uint64_t key;               /* module << 40 | die offset */
	uint32_t name_id;           /* into names */
	uint64_t size;
	struct slot *slots;
	size_t nslots;
	uint64_t min_pointee;       /* the smallest pointed-at struct's size (UINT64_MAX: none) */
	bool built;
	/* All members, for field names: offset, size, name. */
	struct member { uint64_t offset, size; const char *name; } *members;
	size_t nmembers;
};

struct hs_types {
	char **names;               /* names[0] unused: 0 means unknown */
	size_t nnames, namecap;
	uint32_t *nindex;           /* hash index of names (open addressing; 0 empty) */
	size_t ncap;
	struct layout *layouts;
	size_t nlayouts;
	uint32_t *lindex;           /* hash index of layouts by key (index + 1; 0 empty) */
	uint32_t *type;             /* per block: its type id, 0 = unknown */
	size_t n;                   /* blocks */
	uint16_t *block_layout;     /* per block: the DWARF layout that typed it, or NO_LAYOUT */
	/* vtable cache: word -> name id (0 none), open addressing */
	uint64_t *vkeys;
	uint32_t *vvals;
	size_t vcap;
	/* Inferred types (infer_types): per block the rule and the confidence
	 * in percent, in one byte (INFER_BY_FIELD, INFER_CONF); NULL when
	 * nothing was inferred. */
	uint8_t *infer;
	/* While the certain types propagate, and while inference runs: per
	 * block a bit, typed (type != 0).  Both ask it of every block a pointer
	 * leads to, at random: 1.25 MB at 10 M stays in the cache where the
	 * types (40 MB) do not. */
	uint64_t *typed;
	/* While inference runs: per block a bit, closed, set for the typed
	 * blocks (as typed is) and for the used ones smaller than small_below,
	 * the smallest struct a pointer member of the layouts the layout rule
	 * matches points at.  The field rule types none of them through such a
	 * layout: it asks the one bit (1.25 MB at 10 M), not the blocks' headers
	 * (160 MB) nor the typed bit besides. */
	uint64_t *closed;
	uint64_t small_below;
};

static inline bool typed_bit(const struct hs_types *t, uint32_t b)
{
	return __atomic_load_n(&t->typed[b / 64], __ATOMIC_RELAXED) >> (b % 64) & 1;
}

// Block b typed (the main thread only: the others read the bits meanwhile).
static inline void typed_set(struct hs_types *t, uint32_t b)
{
	__atomic_store_n(&t->typed[b / 64], t->typed[b / 64] | UINT64_C(1) << (b % 64), __ATOMIC_RELAXED);
}

// Block b closed (inference's main thread only).
static inline void closed_set(struct hs_types *t, uint32_t b)
{
	__atomic_store_n(&t->closed[b / 64], t->closed[b / 64] | UINT64_C(1) << (b % 64), __ATOMIC_RELAXED);
}

void hs_types_destroy(struct hs_types *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nnames; i++)
		free(t->names[i]);
	free(t->names);
	free(t->nindex);
	for (size_t i = 0; i < t->nlayouts; i++) {
		free(t->layouts[i].slots);
		free(t->layouts[i].members);
	}
	free(t->layouts);
	free(t->type);
	free(t->block_layout);
	free(t->lindex);
	free(t->vkeys);
	free(t->vvals);
	free(t->infer);
	free(t->closed);
	free(t);
}

static size_t name_hash(const char *name)
{
	uint64_t h = 0xcbf29ce484222325ull;     /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 0x100000001b3ull;
	return (size_t)(h ^ (h >> 29));
}

// Rebuild the name index at twice the capacity (kept under half full).
static bool names_grow(struct hs_types *t)
{
	size_t cap = t->ncap ? t->ncap * 2 : 256;
	uint32_t *idx = calloc(cap, sizeof(*idx));
	if (!idx)
		return false;
	for (size_t i = 1; i < t->nnames; i++) {
		size_t h = name_hash(t->names[i]) & (cap - 1);
		while (idx[h])
			h = (h + 1) & (cap - 1);
		idx[h] = (uint32_t)i;
	}
	free(t->nindex);
	t->nindex = idx;
	t->ncap = cap;
	return true;
}

/* The id of name (added when new); 0 when out of memory.  Ids index
 * t->names; a hash index over them keeps this O(1) whatever the number of
 * C++ classes, struct layouts and container node types. */
static uint32_t intern(struct hs_types *t, const char *name)
{
	if (2 * (t->nnames + 1) > t->ncap && !names_grow(t))
		return 0;
	size_t h = name_hash(name) & (t->ncap - 1);
	for (; t->nindex[h]; h = (h + 1) & (t->ncap - 1))
		if (!strcmp(t->names[t->nindex[h]], name))
			return t->nindex[h];
	if (t->nnames == t->namecap) {
		size_t cap = t->namecap * 2;
		char **g = realloc(t->names, cap * sizeof(*g));
		if (!g)
			return 0;
		t->names = g;
		t->namecap = cap;
	}
	char *copy = strdup(name);
	if (!copy)
		return 0;
	t->names[t->nnames] = copy;
	t->nindex[h] = (uint32_t)t->nnames;
	return (uint32_t)t->nnames++;
}

/* C++: vtables. */

static uint32_t vtable_lookup(const struct hs_types_input *in, struct hs_types *t, uint64_t w)
{
	size_t mask = t->vcap - 1, h = (size_t)((w * 0x9e3779b97f4a7c15ull) >> 20) & mask;
	while (t->vkeys[h] && t->vkeys[h] != w)
		h = (h + 1) & mask;
	if (t->vkeys[h] == w)
		return t->vvals[h];
	uint32_t id = 0;
	struct hs_symbol sym;
	uint64_t off;
	if (hs_symbols_maybe_vtable(in->symbols, w) && hs_symbols_addr_symbol(in->symbols, w, &sym, &off) &&
	    !strncmp(sym.name, "_ZTV", 4) &&
	    off >= 16 && (!sym.size || off < sym.size)) {
		int status = -1;
		char *d = __cxa_demangle(sym.name, NULL, NULL, &status);
		if (d && status == 0)
			id = intern(t, strncmp(d, "vtable for ", 11) ? d : d + 11);
		free(d);
	} else {
		// No vtable symbol (stripped): the class from RTTI.
		char cls[256];
		if (hs_rtti_class_name(in->symbols, in->mem, w, cls, sizeof(cls)))
			id = intern(t, cls);
	}
	t->vkeys[h] = w;
	t->vvals[h] = id;
	return id;
}

static size_t vtable_cache_count(const struct hs_types *t)
{
	size_t n = 0;
	for (size_t i = 0; i < t->vcap; i++)
		n += t->vkeys[i] != 0;
	return n;
}

static void type_by_vtables(const struct hs_types_input *in, struct hs_analysis *a, struct hs_types *t)
{
	const struct hs_heap *h = in->heap;
	size_t used_slots = 0;
	for (size_t i = 0; i < a->n; i++) {
		if (!(a->flags[i] & HS_NODE_VPTR))
			continue;
		uint64_t w;
		const uint8_t *p = hs_memory_span(in->mem, h->blocks[i].address, 8);
		if (!p)
			continue;
		memcpy(&w, p, 8);
		if (used_slots * 2 >= t->vcap) {
			used_slots = vtable_cache_count(t);
			if (used_slots * 2 >= t->vcap)
				memset(t->vkeys, 0, t->vcap * sizeof(*t->vkeys)), used_slots = 0;
		}
		used_slots++;
		t->type[i] = vtable_lookup(in, t, w);
	}
}

/* C: DWARF. */

static bool die_type(Dwarf_Die *die, Dwarf_Die *ret)
{
	Dwarf_Attribute attr;
	return dwarf_attr_integrate(die, DW_AT_type, &attr) && dwarf_formref_die(&attr, ret) &&
	       dwarf_peel_type(ret, ret) == 0;
}

static bool is_struct(Dwarf_Die *d)
{
	int tag = dwarf_tag(d);
	return (tag == DW_TAG_structure_type || tag == DW_TAG_class_type) && !dwarf_hasattr(d, DW_AT_declaration);
}

// An array type's elements (all its dimensions), at most limit; 0 when
// unknown (a flexible array).
static uint64_t array_count_upto(Dwarf_Die *array, uint64_t limit)
{
	Dwarf_Die sub;
	if (dwarf_child(array, &sub) != 0)
		return 0;
	uint64_t total = 1;
	do {
		if (dwarf_tag(&sub) != DW_TAG_subrange_type)
			continue;
		Dwarf_Attribute attr;
		Dwarf_Word v;
		if (dwarf_attr_integrate(&sub, DW_AT_count, &attr) && dwarf_formudata(&attr, &v) == 0)
			total *= v;
		else if (dwarf_attr_integrate(&sub, DW_AT_upper_bound, &attr) && dwarf_formudata(&attr, &v) == 0)
			total *= v + 1;
		else
			return 0;   // flexible array: size unknown
		if (total > limit)
			return limit;
	} while (dwarf_siblingof(&sub, &sub) == 0);
	return total;
}

static uint64_t array_count(Dwarf_Die *array)
{
	return array_count_upto(array, MAX_ARRAY);
}

static int layout_find_or_add(struct hs_types *t, Dwarf_Die *die, unsigned module);

static bool member_offset(Dwarf_Die *member, uint64_t *ret)
{
	return hs_dwarf_member_location(member, ret);
}

struct flatten {
	struct hs_types *t;
	struct layout *l;
	unsigned module;
	bool full;
};

static void add_slot(struct flatten *f, uint64_t off, int pointee, const char *field, uint32_t index)
{
	if (f->l->nslots >= MAX_SLOTS) {
		f->full = true;
		return;
	}
	if ((f->l->nslots & (f->l->nslots - 1)) == 0 || f->l->nslots == 0) {
		size_t cap = f->l->nslots ? f->l->nslots * 2 : 4;
		struct slot *g = realloc(f->l->slots, cap * sizeof(*g));
		if (!g) {
			f->full = true;
			return;
		}
		f->l->slots = g;
	}
	f->l->slots[f->l->nslots++] = (struct slot){ off, pointee, field, index };
}

// The pointer slots of a value of type `type` at offset `base`.
static void flatten_type(struct flatten *f, Dwarf_Die *type, uint64_t base, const char *field, int depth)
{
	if (f->full || depth > MAX_DEPTH)
		return;
	Dwarf_Die target, elem;
	int tag = dwarf_tag(type);
	if (tag == DW_TAG_pointer_type) {
		if (die_type(type, &target) && is_struct(&target)) {
			int k = layout_find_or_add(f->t, &target, f->module);
			if (k >= 0)
				add_slot(f, base, k, field, UINT32_MAX);
		}
	} else if (tag == DW_TAG_structure_type || tag == DW_TAG_class_type) {
		Dwarf_Die m;
		if (dwarf_child(type, &m) != 0)
			return;
		do {
			if (dwarf_tag(&m) != DW_TAG_member || dwarf_hasattr(&m, DW_AT_bit_size) ||
			    dwarf_hasattr(&m, DW_AT_data_bit_offset))
				continue;
			uint64_t off;
			Dwarf_Die mt;
			if (!member_offset(&m, &off) || !die_type(&m, &mt))
				continue;
			flatten_type(f, &mt, base + off, dwarf_diename(&m), depth + 1);
		} while (dwarf_siblingof(&m, &m) == 0 && !f->full);
	} else if (tag == DW_TAG_array_type && die_type(type, &elem)) {
		uint64_t n = array_count(type);
		Dwarf_Word esize = dwarf_tag(&elem) == DW_TAG_pointer_type ? 8 : 0;
		if (!esize) {
			int sz = dwarf_bytesize(&elem);
			esize = sz > 0 ? (Dwarf_Word)sz : 0;
		}
		for (uint64_t i = 0; esize && i < n && !f->full; i++) {
			size_t before = f->l->nslots;
			flatten_type(f, &elem, base + i * esize, field, depth + 1);
			for (size_t k = before; k < f->l->nslots; k++)
				if (f->l->slots[k].index == UINT32_MAX)
					f->l->slots[k].index = (uint32_t)i;
		}
	}
	// Unions, void *, char *, scalars: nothing (conservative).
}

static void collect_members(struct layout *l)
{
	Dwarf_Die m;
	if (dwarf_child(&l->die, &m) != 0)
		return;
	size_t cap = 0;
	do {
		if (dwarf_tag(&m) != DW_TAG_member)
			continue;
		uint64_t off;
		Dwarf_Die mt;
		if (!member_offset(&m, &off) || !die_type(&m, &mt))
			continue;
		int sz = dwarf_tag(&mt) == DW_TAG_pointer_type ? 8 : dwarf_bytesize(&mt);
		if (dwarf_tag(&mt) == DW_TAG_array_type && die_type(&mt, &mt)) {
			int es = dwarf_tag(&mt) == DW_TAG_pointer_type ? 8 : dwarf_bytesize(&mt);
			Dwarf_Die arr;
			die_type(&m, &arr);
			sz = es > 0 ? es * (int)array_count(&arr) : 0;
		}
		if (l->nmembers == cap) {
			cap = cap ? cap * 2 : 8;
			struct member *g = realloc(l->members, cap * sizeof(*g));
			if (!g)
				return;
			l->members = g;
		}
		l->members[l->nmembers++] = (struct member){ off, sz > 0 ? (uint64_t)sz : 0, dwarf_diename(&m) };
	} while (dwarf_siblingof(&m, &m) == 0);
}

static int layout_find_or_add(struct hs_types *t, Dwarf_Die *die, unsigned module)
{
	uint64_t key = ((uint64_t)module << 40) | dwarf_dieoffset(die);
	// The index has over twice the slots the layouts can fill: never full.
	// (Its size is a power of two: with any other, masking the probe skips
	// slots and can go round in a cycle of full ones for ever.)
	if (!t->lindex && !(t->lindex = calloc(LAYOUT_SLOTS, sizeof(*t->lindex))))
		return -1;
	size_t mask = LAYOUT_SLOTS - 1, h = (size_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & mask;
	for (; t->lindex[h]; h = (h + 1) & mask)
		if (t->layouts[t->lindex[h] - 1].key == key)
			return (int)t->lindex[h] - 1;
	const char *name = dwarf_diename(die);
	int size = dwarf_bytesize(die);
	if (!name || size <= 0)
		return -1;
	// The propagation's helper thread reads layouts while new ones are added:
	// they live in one array of fixed capacity (untouched pages cost nothing).
	if (!t->layouts && !(t->layouts = calloc(MAX_LAYOUTS, sizeof(*t->layouts))))
		return -1;
	if (t->nlayouts == MAX_LAYOUTS)
		return -1;
	struct layout *l = &t->layouts[t->nlayouts];
	memset(l, 0, sizeof(*l));
	l->die = *die;
	l->key = key;
	l->name_id = intern(t, name);
	l->size = (uint64_t)size;
	t->lindex[h] = (uint32_t)t->nlayouts + 1;
	return (int)t->nlayouts++;
}

static struct layout *layout_built(struct hs_types *t, int k, unsigned module)
{
	struct layout *l = &t->layouts[k];
	if (!l->built) {
		Dwarf_Die die = l->die;
		struct flatten f = { .t = t, .module = module };
		struct layout tmp = *l;
		f.l = &tmp;
		flatten_type(&f, &die, 0, NULL, 0);
		collect_members(&tmp);
		l->min_pointee = UINT64_MAX;
		for (size_t k = 0; k < tmp.nslots; k++)
			if (t->layouts[tmp.slots[k].pointee].size < l->min_pointee)
				l->min_pointee = t->layouts[tmp.slots[k].pointee].size;
		l->slots = tmp.slots;
		l->nslots = tmp.nslots;
		l->members = tmp.members;
		l->nmembers = tmp.nmembers;
		// Published last: the helper thread reads a layout once it is built.
		__atomic_store_n(&l->built, true, __ATOMIC_RELEASE);
	}
	return l;
}

/* A class named by vtables, looked up in DWARF for its members. */
struct wanted { uint32_t name_id; int layout; unsigned module; };

struct propagate {
	const struct hs_types_input *in;
	struct hs_analysis *a;
	struct hs_types *t;
	uint32_t *queue;
	uint16_t *qlayout;              /* each queued block's layout: not read at random */
	size_t head, tail;
	const struct hs_segment *seg;   /* where the last block's bytes were */
	struct wanted *wanted;
	size_t nwanted;
};

// Type block b as layout k (untyped, its start, big enough): queued, its
// layout built now, so that any thread may gather it.  Its name goes into
// the types once propagation is done (name_typed): while it runs, the bit
// says typed, and one array less is written at random.
static void type_block(struct propagate *p, uint32_t b, int k)
{
	typed_set(p->t, b);
	p->t->block_layout[b] = (uint16_t)k;
	p->qlayout[p->tail] = (uint16_t)k;
	p->queue[p->tail++] = b;
	layout_built(p->t, k, (unsigned)(p->t->layouts[k].key >> 40));
}

// Pointer value v, found where layout k is expected, is block b's start
// (hs_addrmap_lookup's answer, -1 for none): type b.  False when v cannot be
// such a pointer (not null, not a block start).
static bool type_hit(struct propagate *p, uint64_t v, int64_t b, int k)
{
	if (!v)
		return true;
	if (b < 0 || p->in->heap->blocks[b].address != v)
		return false;
	if (!typed_bit(p->t, (uint32_t)b) && hs_block_size(&p->in->heap->blocks[b]) >= p->t->layouts[k].size)
		type_block(p, (uint32_t)b, k);
	return true;
}

static bool type_value(struct propagate *p, uint64_t v, int k)
{
	return type_hit(p, v, v ? hs_addrmap_lookup(&p->a->map, v) : -1, k);
}

static void type_target(struct propagate *p, uint64_t addr, int k)
{
	uint64_t v;
	const uint8_t *q = hs_memory_span(p->in->mem, addr, 8);
	if (!q)
		return;
	memcpy(&v, q, 8);
	(void)type_value(p, v, k);
}

// Every element of the struct array in block b (one element unless the block
// holds several): the pointer slots, read straight from the core.
static void visit_block(struct propagate *p, uint32_t b, int k, unsigned module)
{
	const struct hs_block *blk = &p->in->heap->blocks[b];
	uint64_t size = hs_block_size(blk);
	const uint8_t *data = hs_memory_span(p->in->mem, blk->address, size);
	if (!data)
		return;
	struct layout *l = layout_built(p->t, k, module);
	uint64_t count = size / l->size;
	// Element 0 always; the next ones while they still look like this struct
	// (every pointer slot null or a block start): arrays are typed
	// conservatively, and a struct with a trailing buffer stops at once.
	bool plausible = true;
	for (uint64_t e = 0; e < count && plausible; e++) {
		const uint8_t *elem = data + e * l->size;
		for (size_t i = 0; i < l->nslots; i++) {
			uint64_t v;
			memcpy(&v, elem + l->slots[i].offset, 8);
			plausible &= type_value(p, v, l->slots[i].pointee);
		}
		if (!l->nslots)
			break;
	}
}

static void word_targets(const struct hs_analysis *a, const struct hs_block *blocks, size_t i,
			 const uint8_t *d, size_t nw, int64_t *out);

/* hs_addrmap_lookup of layout l's slot words vals (of block b's first
 * element, its bytes d) into hits, read off the pointer graph as inference
 * does (word_targets): no lookup, and the headers read are those of the
 * blocks the slots lead to, which typing reads next.  Slots beyond the first
 * SLOT_WORDS words or not on a word, and a block the scan did not read
 * (unaligned), are looked up. */
#define SLOT_WORDS 64
static void slot_targets(const struct hs_analysis *a, const struct hs_block *blocks, uint32_t b,
			 const uint8_t *d, const struct layout *l, const uint64_t *vals, int64_t *hits)
{
	uint64_t top = 0;
	bool words = !(blocks[b].address & 7);
	for (size_t i = 0; i < l->nslots; i++) {
		words &= !(l->slots[i].offset & 7);
		if (l->slots[i].offset + 8 > top)
			top = l->slots[i].offset + 8;
	}
	if (!words || top > 8 * SLOT_WORDS) {
		for (size_t i = 0; i < l->nslots; i++)
			hits[i] = hs_addrmap_lookup(&a->map, vals[i]);
		return;
	}
	int64_t tg[SLOT_WORDS];
	word_targets(a, blocks, b, d, top / 8, tg);
	for (size_t i = 0; i < l->nslots; i++)
		hits[i] = tg[l->slots[i].offset / 8];
}

/* The bytes [addr, addr + size) of a block, through *seg (the segment of the
 * last one) when it holds them too.  Only the main thread may load a
 * segment (live targets). */
static const uint8_t *bytes_of(struct propagate *p, const struct hs_segment **seg, uint64_t addr,
			       uint64_t size, bool main_thread)
{
	const struct hs_segment *g = *seg;
	if (g && g->data && addr >= g->start && addr - g->start <= g->span &&
	    size <= g->span - (addr - g->start))
		return g->data + (addr - g->start);
	struct hs_memory *mem = p->in->mem;
	if (main_thread) {
		const uint8_t *d = hs_memory_span(mem, addr, size);
		if (d)
			*seg = hs_memory_segment(mem, addr);
		return d;
	}
	g = hs_memory_segment(mem, addr);
	if (!g || !g->data || addr - g->start > g->span || size > g->span - (addr - g->start))
		return NULL;
	*seg = g;
	return g->data + (addr - g->start);
}

#define TYPE_BATCH 32           /* queue entries in a batch */
#define TYPE_STRETCH 16384      /* queue entries gathered before they are applied */

/* One batch of queue entries [from, to): each block's bytes (NULL: nothing
 * to visit) and its first element's pointer slots, resolved: the block the
 * slot types (its start, and big enough for the pointed type), SLOT_NONE
 * (null, or a block too small) or SLOT_NOT_START (no block start: the
 * block's later elements are not visited). */
#define SLOT_NONE (-1)
#define SLOT_NOT_START (-2)
struct tbatch {
	size_t from, to, nv;
	const uint8_t *data[TYPE_BATCH];
	int layout[TYPE_BATCH];         /* the block's layout and size: not read again */
	uint64_t size[TYPE_BATCH];
	bool more[TYPE_BATCH];          /* a later element is visited and may type a block */
	uint64_t vals[HS_LOOKUP_BATCH];
	int64_t hits[HS_LOOKUP_BATCH];
};

/* Does visit_block, after element 0 of block b (its bytes d, its slots'
 * targets hits), visit another element whose slots may type a block?  The
 * elements visited are decided without the types: the next while every
 * slot so far is null or a block start. */
static bool later_elements(const struct propagate *p, const uint8_t *d, uint64_t size, const struct layout *l,
			   const int64_t *hits)
{
	for (size_t i = 0; i < l->nslots; i++)
		if (hits[i] == SLOT_NOT_START)
			return false;
	uint64_t count = size / l->size;
	for (uint64_t e = 1; e < count && l->nslots; e++) {
		const uint8_t *elem = d + e * l->size;
		bool plausible = true;
		for (size_t i = 0; i < l->nslots; i++) {
			uint64_t v;
			memcpy(&v, elem + l->slots[i].offset, 8);
			if (!v)
				continue;
			int64_t b = hs_addrmap_lookup(&p->a->map, v);
			if (b >= 0 && p->in->heap->blocks[b].address == v)
				return true;
			plausible = false;
		}
		if (!plausible)
			return false;
	}
	return false;
}

/* Fill r from the queue entries [from, to), fewer when the slots do not fit
 * or (another thread than the main one) a block's layout is not built or its
 * bytes are not loaded: returns where it stopped.  Nothing here depends on
 * what is typed yet, so a stretch of the queue is gathered on several
 * threads before it is applied. */
static size_t gather(struct propagate *p, struct tbatch *r, size_t from, size_t to, unsigned module,
		     const struct hs_segment **seg, bool main_thread)
{
	const struct hs_block *blocks = p->in->heap->blocks;
	struct hs_types *t = p->t;
	size_t last, nv = 0;
	for (size_t j = from; j < to; j++) {
		__builtin_prefetch(&blocks[p->queue[j]]);
		__builtin_prefetch(&p->a->fwd_off[p->queue[j]]);
	}
	for (last = from; last < to; last++) {
		uint32_t b = p->queue[last];
		const struct layout *l = &t->layouts[p->qlayout[last]];
		if (main_thread)
			l = layout_built(t, p->qlayout[last], module);
		else if (!__atomic_load_n(&l->built, __ATOMIC_ACQUIRE))
			break;
		size_t ns = l->nslots <= HS_LOOKUP_BATCH ? l->nslots : 0;
		if (nv + ns > HS_LOOKUP_BATCH)
			break;
		uint64_t size = hs_block_size(&blocks[b]);
		// Smaller than one element: nothing to visit (as in visit_block).
		const uint8_t *d = NULL;
		if (size >= l->size) {
			d = bytes_of(p, seg, blocks[b].address, size, main_thread);
			if (!d && !main_thread)
				break;  // perhaps not loaded: the main thread visits it
		}
		r->data[last - from] = d;
		r->layout[last - from] = p->qlayout[last];
		r->size[last - from] = size;
		if (!d)
			continue;
		for (size_t i = 0; i < ns; i++)
			__builtin_prefetch(d + l->slots[i].offset);
		if (size >= 2 * l->size && ns)
			__builtin_prefetch(d + l->size);
		nv += ns;
	}
	// The slots' targets off the pointer graph (slot_targets): the blocks'
	// edges, then the headers of the blocks they lead to.
	const struct hs_analysis *a = p->a;
	for (size_t j = from; j < last; j++)
		if (r->data[j - from])
			__builtin_prefetch(&a->fwd[a->fwd_off[p->queue[j]]]);
	for (size_t j = from; j < last; j++) {
		uint32_t b = p->queue[j];
		if (r->data[j - from])
			for (uint32_t e = a->fwd_off[b]; e < a->fwd_off[b + 1]; e++)
				__builtin_prefetch(&blocks[a->fwd[e]]);
	}
	nv = 0;
	for (size_t j = from; j < last; j++) {
		uint32_t b = p->queue[j];
		const struct layout *l = &t->layouts[p->qlayout[j]];
		const uint8_t *d = r->data[j - from];
		if (!d || l->nslots > HS_LOOKUP_BATCH)
			continue;
		for (size_t i = 0; i < l->nslots; i++)
			memcpy(&r->vals[nv + i], d + l->slots[i].offset, 8);
		int64_t *hits = &r->hits[nv];
		slot_targets(a, blocks, b, d, l, &r->vals[nv], hits);
		// What type_hit decides without the types: is the target to be typed?
		for (size_t i = 0; i < l->nslots; i++) {
			uint64_t v = r->vals[nv + i];
			int64_t h = hits[i];
			if (!v)
				hits[i] = SLOT_NONE;
			else if (h < 0 || blocks[h].address != v)
				hits[i] = SLOT_NOT_START;
			else if (hs_block_size(&blocks[h]) < t->layouts[l->slots[i].pointee].size)
				hits[i] = SLOT_NONE;
		}
		r->more[j - from] = later_elements(p, d, r->size[j - from], l, hits);
		nv += l->nslots;
	}
	r->from = from;
	r->to = last;
	r->nv = nv;
	return last;
}

// Ask for what apply() reads and writes of batch r's targets.
static void prefetch_hits(const struct propagate *p, const struct tbatch *r)
{
	for (size_t i = 0; i < r->nv; i++)
		if (r->hits[i] >= 0) {
			__builtin_prefetch(&p->t->typed[r->hits[i] / 64]);
			__builtin_prefetch(&p->t->block_layout[r->hits[i]], 1);
		}
}

/* Type what the batch's blocks point at, in queue order, as visit_block
 * would one block at a time (main thread only). */
static void apply(struct propagate *p, const struct tbatch *r, unsigned module)
{
	size_t nv = 0;
	for (size_t j = r->from; j < r->to; j++) {
		int k = r->layout[j - r->from];
		const struct layout *l = &p->t->layouts[k];
		const uint8_t *d = r->data[j - r->from];
		if (!d)
			continue;
		if (l->nslots > HS_LOOKUP_BATCH) {
			visit_block(p, p->queue[j], k, module);
			continue;
		}
		bool plausible = true;
		for (size_t i = 0; i < l->nslots; i++, nv++) {
			int64_t h = r->hits[nv];
			plausible &= h != SLOT_NOT_START;
			if (h >= 0 && !typed_bit(p->t, (uint32_t)h))
				type_block(p, (uint32_t)h, l->slots[i].pointee);
		}
		if (!r->more[j - r->from])
			continue;
		uint64_t count = r->size[j - r->from] / l->size;
		for (uint64_t e = 1; e < count && plausible; e++) {
			const uint8_t *elem = d + e * l->size;
			for (size_t i = 0; i < l->nslots; i++) {
				uint64_t v;
				memcpy(&v, elem + l->slots[i].offset, 8);
				plausible &= type_value(p, v, l->slots[i].pointee);
			}
		}
	}
}

/* A stretch of the queue is cut into units of TYPE_UNIT entries, which the
 * threads that gather it claim one at a time (next).  A unit is gathered
 * into batches from `from` up to stop: to, unless a block needs the main
 * thread (its layout not built, its bytes not loaded) or memory ran out,
 * and then the rest is gathered as the unit is applied. */
#define TYPE_UNIT 256
#define TYPE_UNITS (TYPE_STRETCH / TYPE_UNIT)
struct tunit {
	size_t from, to, stop;
	struct tbatch *batch;
	size_t nbatch, cap;
};

struct tstretch {
	struct tunit unit[TYPE_UNITS];
	size_t nunits, next, end;
};

/* A thread's part of a round: the main thread applies the stretch gathered
 * in the round before (apply, NULL for none), then both gather the next. */
struct tpart {
	struct propagate *p;
	unsigned module;
	bool main_thread;
	struct tstretch *apply, *gather;
	struct tbatch *scratch;         /* main: the rest of a unit, a batch at a time */
};

static void gather_units(struct tpart *tp)
{
	const struct hs_segment *seg = NULL;
	const struct hs_segment **segp = tp->main_thread ? &tp->p->seg : &seg;
	struct tstretch *st = tp->gather;
	for (;;) {
		size_t k = __atomic_fetch_add(&st->next, 1, __ATOMIC_RELAXED);
		if (k >= st->nunits)
			break;
		struct tunit *u = &st->unit[k];
		size_t j = u->from;
		u->nbatch = 0;
		while (j < u->to && !HS_VEC_GROW(u->batch, u->cap, u->nbatch + 1)) {
			size_t end = u->to - j > TYPE_BATCH ? j + TYPE_BATCH : u->to;
			size_t last = gather(tp->p, &u->batch[u->nbatch], j, end, tp->module, segp, tp->main_thread);
			if (last == j)
				break;
			u->nbatch++;
			j = last;
		}
		u->stop = j;
	}
}

// Type what stretch st's blocks point at, unit by unit in queue order (main
// thread only).
static void apply_units(struct tpart *tp)
{
	struct propagate *p = tp->p;
	const struct tstretch *st = tp->apply;
	for (size_t k = 0; k < st->nunits; k++) {
		const struct tunit *u = &st->unit[k];
		for (size_t x = 0; x < u->nbatch; x++) {
			if (x == 0)
				prefetch_hits(p, &u->batch[0]);
			if (x + 1 < u->nbatch)
				prefetch_hits(p, &u->batch[x + 1]);
			apply(p, &u->batch[x], tp->module);
		}
		p->head = u->stop;
		while (p->head < u->to) {
			size_t end = u->to - p->head > TYPE_BATCH ? p->head + TYPE_BATCH : u->to;
			p->head = gather(p, tp->scratch, p->head, end, tp->module, &p->seg, true);
			prefetch_hits(p, tp->scratch);
			apply(p, tp->scratch, tp->module);
		}
	}
}

static void *tpart_run(void *arg)
{
	struct tpart *tp = arg;
	if (tp->apply)
		apply_units(tp);
	gather_units(tp);
	return NULL;
}

// Cut the queue entries [from, to) into st's units of `unit` entries (at
// most TYPE_UNITS of them).
static void stretch_cut(struct tstretch *st, size_t from, size_t to, size_t unit)
{
	st->nunits = 0;
	st->next = 0;
	st->end = to;
	for (size_t j = from; j < to; j += unit) {
		struct tunit *u = &st->unit[st->nunits++];
		u->from = j;
		u->to = to - j > unit ? j + unit : to;
		u->stop = j;
		u->nbatch = 0;
	}
}

/* Propagate through pointer members, breadth first (each block once), a
 * stretch of the queue at a time: its blocks' bytes and the targets of their
 * first element's pointer slots are gathered on two threads (memory latency,
 * not work, is what this costs), then the stretch is typed in queue order by
 * this thread, so the result is the one of visiting the blocks one by one.
 * Gathering reads nothing typing writes (but the queue entries it is given,
 * queued before), so while this thread types one stretch the other gathers
 * the next one already queued, and this thread joins it when done. */
static void propagate_queue(struct propagate *p, unsigned module)
{
	struct tstretch *st = calloc(2, sizeof(*st));
	struct tbatch *scratch = malloc(sizeof(*scratch));
	if (!st || !scratch) {
		free(st);
		free(scratch);
		return;
	}
	// (Tests cut the stretches small: every round is run on small heaps.)
	bool small = hs_test_small_splits();
	size_t stretch = small ? 32 : TYPE_STRETCH, unit = small ? 4 : TYPE_UNIT;
	struct tstretch *ready = NULL, *next = &st[0];
	for (;;) {
		size_t from = ready ? ready->end : p->head;
		size_t to = p->tail - from > stretch ? from + stretch : p->tail;
		if (!ready && from == to)
			break;
		stretch_cut(next, from, to, unit);
		struct tpart parts[2] = {
			{ .p = p, .module = module, .main_thread = true, .apply = ready, .gather = next,
			  .scratch = scratch },
			{ .p = p, .module = module, .gather = next },
		};
		size_t n = p->in->jobs > 1 && to - from >= (small ? 2 : 16) ? 2 : 1;
		hs_run_parts(n, tpart_run, parts, sizeof(parts[0]));
		ready = from < to ? next : NULL;
		next = next == &st[0] ? &st[1] : &st[0];
	}
	for (size_t k = 0; k < 2; k++)
		for (size_t u = 0; u < TYPE_UNITS; u++)
			free(st[k].unit[u].batch);
	free(st);
	free(scratch);
}

// A global variable: its type decides what it types.  An array's element
// is flattened once and every element visited: the array flattened whole
// would stop at MAX_SLOTS pointers (a table of 10,000 pointers typed the
// first 4,096 targets).
static void visit_variable(struct propagate *p, Dwarf_Die *var, uint64_t addr, unsigned module)
{
	Dwarf_Die type, elem;
	if (!die_type(var, &type))
		return;
	uint64_t count = 1, esize = 0;
	if (dwarf_tag(&type) == DW_TAG_array_type && die_type(&type, &elem)) {
		int sz = dwarf_tag(&elem) == DW_TAG_pointer_type ? 8 : dwarf_bytesize(&elem);
		count = array_count_upto(&type, UINT32_MAX);
		esize = sz > 0 ? (uint64_t)sz : 0;
		if (!count || !esize || count > UINT64_MAX / esize || addr + count * esize < addr)
			return;
		type = elem;
	}
	struct layout scratch = { 0 };
	struct flatten f = { .t = p->t, .l = &scratch, .module = module };
	flatten_type(&f, &type, 0, NULL, 0);
	// (Up to the first element not in the core: what DWARF claims of a
	// damaged core's arrays bounds no work.)
	for (uint64_t e = 0; e < count && scratch.nslots; e++) {
		if (esize && !hs_memory_span(p->in->mem, addr + e * esize, esize))
			break;
		for (size_t i = 0; i < scratch.nslots; i++)
			type_target(p, addr + e * esize + scratch.slots[i].offset, scratch.slots[i].pointee);
	}
	free(scratch.slots);
}

static bool variable_address(Dwarf_Die *var, uint64_t bias, uint64_t *ret)
{
	Dwarf_Attribute attr;
	Dwarf_Op *ops;
	size_t nops;
	if (!dwarf_attr(var, DW_AT_location, &attr) || dwarf_getlocation(&attr, &ops, &nops) != 0 ||
	    nops != 1 || ops[0].atom != DW_OP_addr)
		return false;
	*ret = ops[0].number + bias;
	return true;
}

// A thread_local of the executable: its offset in the TLS block.
static bool tls_variable(Dwarf_Die *var, uint64_t *ret)
{
	bool tls;
	return hs_dwarf_var_location(var, 0, ret, &tls) && tls;
}

static void visit_tls_variable(struct propagate *p, Dwarf_Die *var, uint64_t off, unsigned module)
{
	const struct hs_notes *notes = p->in->notes;
	for (size_t i = 0; i < notes->nthreads; i++) {
		uint64_t block;
		struct hs_error *err = hs_tls_block(notes, p->in->mem, i, &block);
		if (err) {
			hs_error_destroy(err);
			continue;
		}
		visit_variable(p, var, block + off, module);
	}
}

// A class definition: is it one the vtables named ("app::Widget")?
static void match_class(struct propagate *p, Dwarf_Die *die, const char *prefix, unsigned module)
{
	const char *name = dwarf_diename(die);
	if (!name || !is_struct(die))
		return;
	char qualified[512];
	snprintf(qualified, sizeof(qualified), "%s%s", prefix, name);
	for (size_t i = 0; i < p->nwanted; i++) {
		if (p->wanted[i].layout >= 0 || strcmp(p->t->names[p->wanted[i].name_id], qualified))
			continue;
		p->wanted[i].layout = layout_find_or_add(p->t, die, module);
		p->wanted[i].module = module;
	}
}

static void visit_scope(struct propagate *p, Dwarf_Die *scope, uint64_t bias, unsigned module, int depth,
			const char *prefix)
{
	bool is_main = p->in->symbols->modules[module].is_main;
	Dwarf_Die child;
	if (depth > 4 || dwarf_child(scope, &child) != 0)
		return;
	do {
		int tag = dwarf_tag(&child);
		uint64_t addr;
		if (tag == DW_TAG_variable && variable_address(&child, bias, &addr))
			visit_variable(p, &child, addr, module);
		else if (tag == DW_TAG_variable && is_main && tls_variable(&child, &addr))
			visit_tls_variable(p, &child, addr, module);
		else if ((tag == DW_TAG_structure_type || tag == DW_TAG_class_type) && p->nwanted)
			match_class(p, &child, prefix, module);
		else if (tag == DW_TAG_namespace) {
			char inner[512];
			const char *ns = dwarf_diename(&child);
			snprintf(inner, sizeof(inner), "%s%s::", prefix, ns ? ns : "(anonymous namespace)");
			visit_scope(p, &child, bias, module, depth + 1, inner);
		}
	} while (dwarf_siblingof(&child, &child) == 0);
}

/* The typed bits of words [first, last) from the types. */
struct typed_part {
	struct hs_types *t;
	size_t first, last;
};

static void *fill_typed(void *arg)
{
	const struct typed_part *tp = arg;
	const struct hs_types *t = tp->t;
	for (size_t w = tp->first; w < tp->last; w++) {
		uint64_t bits = 0;
		for (size_t j = 0; j < 64 && w * 64 + j < t->n; j++)
			bits |= (uint64_t)(t->type[w * 64 + j] != 0) << j;
		t->typed[w] = bits;
	}
	return NULL;
}

// fn over the typed bits' words in parts: two when jobs allow and the heap
// is big enough (in tests, from 64 blocks).
static void typed_run(struct hs_types *t, int jobs, void *(*fn)(void *))
{
	size_t nwords = t->n / 64 + 1;
	size_t nparts = jobs > 1 && t->n > (hs_test_small_splits() ? 64 : 4096) ? 2 : 1;
	struct typed_part tparts[2];
	for (size_t k = 0; k < nparts; k++)
		tparts[k] = (struct typed_part){ t, nwords * k / nparts, nwords * (k + 1) / nparts };
	hs_run_parts(nparts, fn, tparts, sizeof(tparts[0]));
}

// t->typed from the types; false on no memory.
static bool typed_begin(struct hs_types *t, int jobs)
{
	t->typed = hs_array_new(t->n / 64 + 1, sizeof(uint64_t));
	if (!t->typed)
		return false;
	typed_run(t, jobs, fill_typed);
	return true;
}

static void typed_end(struct hs_types *t)
{
	free(t->typed);
	t->typed = NULL;
}

/* The names of the blocks of words [first, last) that propagation typed
 * (typed, no name yet): their layouts'. */
static void *name_typed(void *arg)
{
	const struct typed_part *tp = arg;
	struct hs_types *t = tp->t;
	for (size_t w = tp->first; w < tp->last; w++)
		for (uint64_t b = t->typed[w]; b; b &= b - 1) {
			size_t i = w * 64 + (size_t)__builtin_ctzll(b);
			if (!t->type[i])
				t->type[i] = t->layouts[t->block_layout[i]].name_id;
		}
	return NULL;
}

static void type_by_dwarf(const struct hs_types_input *in, struct hs_analysis *a, struct hs_types *t)
{
	struct propagate p = { .in = in, .a = a, .t = t, .queue = hs_array_new(a->n, sizeof(uint32_t)),
			       .qlayout = hs_array_new(a->n, sizeof(uint16_t)) };
	// Every name so far came from a vtable.
	p.wanted = malloc(t->nnames * sizeof(*p.wanted));
	if (!p.queue || !p.qlayout || !p.wanted || !typed_begin(t, in->jobs)) {
		free(p.queue);
		free(p.qlayout);
		free(p.wanted);
		return;
	}
	for (size_t i = 1; i < t->nnames; i++)
		p.wanted[p.nwanted++] = (struct wanted){ (uint32_t)i, -1, 0 };
	for (size_t m = 0; m < in->symbols->nmodules; m++) {
		struct hs_module *mod = &in->symbols->modules[m];
		if (!mod->debug_found || !mod->dwfl_module)
			continue;
		Dwarf_Addr bias;
		Dwarf *dw = dwfl_module_getdwarf(mod->dwfl_module, &bias);
		if (!dw)
			continue;
		Dwarf_CU *cu = NULL;
		Dwarf_Die cudie, subdie;
		Dwarf_Half version;
		uint8_t unit_type;
		while (dwarf_get_units(dw, cu, &cu, &version, &unit_type, &cudie, &subdie) == 0)
			visit_scope(&p, &cudie, bias, (unsigned)m, 0, "");
		// Objects typed by their vtable whose class this module describes:
		// their members type what they point at too.
		bool any = false;
		for (size_t w = 0; w < p.nwanted; w++)
			any |= p.wanted[w].layout >= 0 && p.wanted[w].module == m;
		for (size_t i = 0; any && i < a->n; i++) {
			// wanted[id - 1] is the entry of vtable name id.
			uint32_t id = t->type[i];
			if (!id || id > p.nwanted || t->block_layout[i] != NO_LAYOUT)
				continue;
			const struct wanted *w = &p.wanted[id - 1];
			if (w->layout < 0 || w->module != m)
				continue;
			t->block_layout[i] = (uint16_t)w->layout;
			layout_built(t, w->layout, (unsigned)m);
			p.qlayout[p.tail] = (uint16_t)w->layout;
			p.queue[p.tail++] = (uint32_t)i;
		}
		propagate_queue(&p, (unsigned)m);
	}
	typed_run(t, in->jobs, name_typed);
	typed_end(t);
	free(p.queue);
	free(p.qlayout);
	free(p.wanted);
}

/* Inferred types: C blocks no typed pointer reaches (leaked clusters above
 * all).  Kept apart from certain types: the name is "~node", the rule and a
 * confidence are kept per block.  Two rules:
 *   layout  the block's usable size is one at which blocks of exactly one
 *           struct type were typed for certain, and its words fit that type:
 *           heap pointers only where the type has pointers (or where typed
 *           instances held them), each to the start of a block of the pointed
 *           type's size and never of another certain type; at least one such
 *           pointer (a block of no pointers proves nothing).
 *   field   a pointer member of an inferred block points at the block.
 * Unknown stays unknown when the evidence is ambiguous or missing. */
enum { INFER_NONE, INFER_LAYOUT, INFER_FIELD };
/* A block's inference in one byte (types->infer): 0 none; the confidence
 * (1-100) by layout, or INFER_BY_FIELD and the confidence (0-100) by field. */
#define INFER_BY_FIELD 0x80
#define INFER_CONF(b) ((b) & 0x7f)
#define INFER_MAX_BYTES 512     /* blocks larger than this are not matched by layout */
#define INFER_LEARN 256         /* typed instances read per (type, size) */

struct seen {                   /* typed for certain: struct layout k at usable size */
	int k;
	uint64_t size, count, mask; /* mask: words (of 64) that held heap pointers */
	size_t learned;
	uint32_t next;              /* while counting: the previous entry of this size + 1, 0 none */
};

static int seen_cmp(const void *x, const void *y)
{
	const struct seen *a = x, *b = y;
	return a->size != b->size ? (a->size < b->size ? -1 : 1) : (a->k > b->k) - (a->k < b->k);
}

/* Block bytes for inference, read where the scan read them (a segment's
 * dumped data, never loaded here: threads share the memory), the last
 * segment kept. */
struct cursor {
	const struct hs_memory *mem;
	const struct hs_block *blocks;
	const struct hs_segment *seg;
};

static const uint8_t *block_bytes(struct cursor *c, size_t i, uint64_t *size)
{
	uint64_t addr = c->blocks[i].address;
	*size = hs_block_size(&c->blocks[i]);
	if (*size > INFER_MAX_BYTES)
		*size = INFER_MAX_BYTES;
	const struct hs_segment *seg = c->seg;
	if (!seg || addr < seg->start || addr - seg->start >= seg->span)
		seg = c->seg = hs_memory_segment(c->mem, addr);
	if (!seg || !seg->data || addr - seg->start > seg->span || *size > seg->span - (addr - seg->start))
		return NULL;
	return seg->data + (addr - seg->start);
}

/* Inference reads a block, the headers of the blocks it points at and their
 * types: all cache misses, in no order the hardware guesses.  Ask for those
 * of a block some blocks ahead. */
#define INFER_AHEAD 8
// Ask for the headers and types of the blocks block i points at (the layout
// rule reads their certain types).
static void prefetch_targets(const struct hs_block *blocks, const struct hs_analysis *a,
			     const struct hs_types *t, size_t i)
{
	for (uint32_t e = a->fwd_off[i]; e < a->fwd_off[i + 1]; e++) {
		uint32_t b = a->fwd[e];
		__builtin_prefetch(&blocks[b]);
		__builtin_prefetch(&t->type[b]);
	}
}

static void prefetch_block(struct cursor *c, const struct hs_analysis *a, const struct hs_types *t, size_t i)
{
	uint64_t size;
	const uint8_t *d = block_bytes(c, i, &size);
	if (d) {
		__builtin_prefetch(d);
		if (size > 64)
			__builtin_prefetch(d + 64);
	}
	prefetch_targets(c->blocks, a, t, i);
}

static bool points_into(const struct hs_analysis *a, const struct hs_block *b, uint64_t v)
{
	return v >= b->address && (a->map.exact ? v == b->address : v - b->address < hs_block_size(b));
}

/* The used block each of block i's first nw words points into (-1: none),
 * read off the pointer graph instead of looked up again: the scan appended
 * block i's edges in word order, a run of words into one block as one edge,
 * none to block i itself (graph.c, flush_words).  So a word points into the
 * last edge's block, the next edge's, block i, or no used block at all; one
 * read of the target's header instead of a lookup that misses the cache
 * twice. */
static void word_targets(const struct hs_analysis *a, const struct hs_block *blocks, size_t i,
			 const uint8_t *d, size_t nw, int64_t *out)
{
	uint32_t e = a->fwd_off[i], end = a->fwd_off[i + 1];
	int64_t last = -1;
	for (size_t k = 0; k < nw; k++) {
		uint64_t v;
		memcpy(&v, d + 8 * k, 8);
		out[k] = -1;
		if (v < a->map.lo || v >= a->map.hi)
			continue;
		if (last >= 0 && points_into(a, &blocks[last], v))
			out[k] = last;
		else if (e < end && points_into(a, &blocks[a->fwd[e]], v))
			out[k] = last = a->fwd[e++];
		else if (points_into(a, &blocks[i], v))
			out[k] = (int64_t)i;
	}
}

// Block i's bytes (at most INFER_MAX_BYTES) and what each of its first
// `upto` bytes' words points into.
static const uint8_t *block_words(struct cursor *c, const struct hs_analysis *a, size_t i,
				  uint64_t upto, uint64_t *size, int64_t *tg)
{
	const uint8_t *d = block_bytes(c, i, size);
	if (d)
		word_targets(a, c->blocks, i, d, (upto < *size ? upto : *size) / 8, tg);
	return d;
}

// The heap-pointer words of block i's first 64 words.
static uint64_t pointer_mask(struct cursor *c, struct hs_analysis *a, size_t i)
{
	uint64_t size, mask = 0;
	int64_t tg[INFER_MAX_BYTES / 8];
	if (!block_words(c, a, i, INFER_MAX_BYTES, &size, tg))
		return 0;
	for (uint64_t k = 0; k < size / 8; k++)
		if (tg[k] >= 0)
			mask |= 1ull << k;
	return mask;
}

// Does block i (its words d, their targets tg) fit layout l (seen typed with
// pointer words mask)?  The number of pointer slots holding a fitting heap
// pointer, or -1 on a contradiction.  Reads what inference does not change
// (certain types, the graph), so parts of the heap are matched in parallel.
// first[z]: the first entry of seen (sorted by size) at size z, nseen for none.
static int layout_fits(const struct hs_types_input *in, const struct hs_types *t,
		       const uint8_t *d, uint64_t size, const int64_t *tg,
		       const struct layout *l, uint64_t mask, const struct seen *seen, size_t nseen,
		       const uint32_t *first)
{
	if (l->size > size || l->size > INFER_MAX_BYTES)
		return -1;
	const struct hs_block *blocks = in->heap->blocks;
	int hits = 0;
	for (uint64_t o = 0; o + 8 <= l->size; o += 8) {
		uint64_t v;
		memcpy(&v, d + o, 8);
		const struct slot *sl = NULL;
		for (size_t k = 0; k < l->nslots && !sl; k++)
			if (l->slots[k].offset == o)
				sl = &l->slots[k];
		int64_t b = tg[o / 8];
		if (!sl) {
			// A heap pointer where the type has none, and no typed
			// instance had one either: another layout.
			if (b >= 0 && !(mask >> (o / 8) & 1))
				return -1;
			continue;
		}
		if (!v)
			continue;
		if (b < 0 || blocks[b].address != v)
			return -1;      // a struct pointer that is no block start
		// The target's size fits the pointed type: a size it was seen at,
		// or its own size rounded up to a chunk (glibc: at most 23 bytes
		// more): a pointer into a bigger block is another layout's.
		const struct layout *p = &t->layouts[sl->pointee];
		uint64_t tsize = hs_block_size(&blocks[b]);
		bool fits = tsize >= p->size && tsize < p->size + 24;
		for (size_t j = tsize <= INFER_MAX_BYTES && !fits ? first[tsize] : nseen;
		     j < nseen && seen[j].size == tsize && !fits; j++)
			fits = seen[j].k == sl->pointee;
		if (!fits)
			return -1;
		// (Every type so far is certain: the layout rule runs before any
		// is inferred.)
		if (t->type[b] && t->type[b] != p->name_id)
			return -1;      // points at a certain block of another type
		hits++;
	}
	return hits;
}

/* The layout rule over the blocks: a block that fits exactly one type's
 * layouts gets block_layout (the layout) and conf (nonzero); the caller
 * applies them in block order.  The candidates crowd where the program's
 * typed structures do, so the threads take chunks of INFER_CHUNK blocks from
 * *next as they go rather than a half each. */
#define INFER_CHUNK 32768
struct infer_part {
	const struct hs_types_input *in;
	struct hs_analysis *a;
	struct hs_types *t;
	const struct seen *seen;
	size_t nseen, *next, chunk;
};

// The layout rule over blocks [lo, hi) (see infer_part).
static void infer_chunk(const struct infer_part *ip, size_t lo, size_t hi, const uint32_t *first,
			int64_t *tg, struct cursor *cp, struct cursor *ahead)
{
	const struct hs_types_input *in = ip->in;
	struct hs_analysis *a = ip->a;
	struct hs_types *t = ip->t;
	const struct seen *seen = ip->seen;
	size_t nseen = ip->nseen;
	const struct hs_block *blocks = in->heap->blocks;
	uint64_t closed = 0;        /* the closed bits of block i's word so far */
	for (size_t i = lo; i < hi; i++) {
		if ((a->flags[i] & HS_NODE_USED) && (t->type[i] || hs_block_size(&blocks[i]) < t->small_below))
			closed |= UINT64_C(1) << (i % 64);
		if (i % 64 == 63 || i + 1 == hi) {
			// (A word two chunks share: or-ed.)
			if (closed)
				__atomic_fetch_or(&t->closed[i / 64], closed, __ATOMIC_RELAXED);
			closed = 0;
		}
		// Only blocks matched below are worth their cache misses.
		size_t j = i + INFER_AHEAD;
		if (j < hi && (a->flags[j] & HS_NODE_USED) && !t->type[j] &&
		    a->fwd_off[j + 1] != a->fwd_off[j]) {
			uint64_t sz = hs_block_size(&blocks[j]);
			if (sz <= INFER_MAX_BYTES && first[sz] < nseen)
				prefetch_block(ahead, a, t, j);
		}
		if (!(a->flags[i] & HS_NODE_USED) || t->type[i] || a->fwd_off[i + 1] == a->fwd_off[i])
			continue;
		uint64_t size = hs_block_size(&blocks[i]);
		// Every layout seen at this size.
		if (size > INFER_MAX_BYTES || first[size] == nseen)
			continue;
		size_t at = first[size];
		uint64_t bytes, upto = 0;
		for (size_t j = at; j < nseen && seen[j].size == size; j++)
			if (t->layouts[seen[j].k].size > upto)
				upto = t->layouts[seen[j].k].size;
		const uint8_t *d = block_words(cp, a, i, upto, &bytes, tg);
		if (!d)
			continue;
		int found = -1, hits = 0;
		uint64_t count = 0;
		bool ambiguous = false;
		for (size_t j = at; j < nseen && seen[j].size == size; j++) {
			const struct layout *l = &t->layouts[seen[j].k];
			int h = layout_fits(in, t, d, bytes, tg, l, seen[j].mask, seen, nseen, first);
			if (h <= 0)
				continue;
			if (found >= 0 && t->layouts[found].name_id != l->name_id)
				ambiguous = true;
			found = seen[j].k;
			hits = h;
			count = seen[j].count;
		}
		if (found < 0 || ambiguous)
			continue;
		t->block_layout[i] = (uint16_t)found;
		// More pointers matched and more typed instances seen: surer.
		t->infer[i] = (uint8_t)(60 + (hits > 1 ? 15 : 5) + (count >= 8 ? 15 : count >= 2 ? 10 : 0));
	}
}

static void *infer_layouts(void *arg)
{
	const struct infer_part *ip = arg;
	const struct seen *seen = ip->seen;
	size_t nseen = ip->nseen, n = ip->a->n;
	int64_t tg[INFER_MAX_BYTES / 8];
	struct cursor c = { ip->in->mem, ip->in->heap->blocks, NULL }, ahead = c;
	// The first layout seen at each size (seen is sorted by size; none is
	// larger than INFER_MAX_BYTES), nseen for none.
	uint32_t first[INFER_MAX_BYTES + 1];
	for (size_t z = 0; z <= INFER_MAX_BYTES; z++)
		first[z] = (uint32_t)nseen;
	for (size_t j = nseen; j-- > 0;)
		first[seen[j].size] = (uint32_t)j;
	for (;;) {
		size_t lo = __atomic_fetch_add(ip->next, ip->chunk, __ATOMIC_RELAXED);
		if (lo >= n)
			break;
		size_t hi = n - lo > ip->chunk ? lo + ip->chunk : n;
		infer_chunk(ip, lo, hi, first, tg, &c, &ahead);
	}
	return NULL;
}

// "~NAME" of layout k, interned once per layout.  The cache grows: building a
// pointee's layout can add layouts while inference runs.
struct name_cache {
	uint32_t *id;
	size_t n;
};

static uint32_t inferred_name(struct hs_types *t, int k, struct name_cache *c)
{
	if ((size_t)k >= c->n) {
		size_t n = t->nlayouts > (size_t)k ? t->nlayouts : (size_t)k + 1;
		uint32_t *g = realloc(c->id, n * sizeof(*g));
		if (!g)
			return 0;
		memset(g + c->n, 0, (n - c->n) * sizeof(*g));
		c->id = g;
		c->n = n;
	}
	if (!c->id[k]) {
		char name[512];
		snprintf(name, sizeof(name), "~%s", t->names[t->layouts[k].name_id]);
		c->id[k] = intern(t, name);
	}
	return c->id[k];
}

/* The field rule's candidates of a unit of the queue, queue[from, to): each
 * queued block's pointer members that point at the start of an untyped
 * block big enough for the member's type, in queue and member order.  Reads
 * what the typing does not change (the queued blocks and their layouts,
 * built before they were queued) but for the types: a block typed stays
 * typed, so the one who applies checks again only that the target is still
 * untyped, and the types are read and written as atomics. */
#define FIELD_STRETCH 65536
#define FIELD_UNIT 4096
#define FIELD_UNITS (FIELD_STRETCH / FIELD_UNIT)
struct field_pair {
	uint32_t b;             /* the target */
	int32_t pk;             /* its layout */
	uint8_t conf;           /* the source's confidence (set before it was queued) */
};
struct field_unit {
	size_t from, to;
	struct field_pair *pairs;
	size_t n, cap;
	bool nomem;
};

struct field_stretch {
	struct field_unit unit[FIELD_UNITS];
	size_t nunits, next, end;
};

/* A thread's part of a round of the field rule: the main thread applies the
 * stretch gathered in the round before (apply, NULL for none), appending what
 * it types to the queue, then both gather the next stretch, a unit at a
 * time. */
struct field_part {
	const struct hs_types_input *in;
	struct hs_analysis *a;
	struct hs_types *t;
	uint32_t *queue;
	struct field_stretch *apply, *gather;
	size_t *tail;
	struct name_cache *names;
	bool nomem;
};

/* The bits that tell which targets of queued block i the field rule may
 * still type: closed when i's layout points only at structs of small_below
 * bytes or more, else typed. */
static inline const uint64_t *field_bits(const struct hs_types *t, uint32_t i)
{
	return t->layouts[t->block_layout[i]].min_pointee >= t->small_below ? t->closed : t->typed;
}

// Is target b open: its bit (of field_bits) clear?
static inline bool field_open(const uint64_t *bits, uint32_t b)
{
	return !(__atomic_load_n(&bits[b / 64], __ATOMIC_RELAXED) >> (b % 64) & 1);
}

/* A queued block's open targets are matched to its pointer members by
 * address, up to this many; more, through word_targets. */
#define FIELD_OPEN 16
#define FIELD_RING (2 * INFER_AHEAD)

static void field_gather(const struct field_part *fp, struct field_unit *u)
{
	const struct hs_types_input *in = fp->in;
	struct hs_analysis *a = fp->a;
	const struct hs_types *t = fp->t;
	const struct hs_block *blocks = in->heap->blocks;
	const uint32_t *queue = fp->queue;
	int64_t tg[INFER_MAX_BYTES / 8];
	struct cursor c = { in->mem, blocks, NULL }, ahead = c;
	// Whether a block INFER_AHEAD entries ahead had an open target (by
	// queue entry; false before it is asked).
	bool open_ahead[FIELD_RING] = { false };
	u->n = 0;
	u->nomem = false;
	for (size_t q = u->from; q < u->to; q++) {
		// The queue is in no address order: every read misses, and the
		// core keeps only so many on their way.  Ask for them in steps,
		// each reading only what the steps before asked for: a block's
		// edge offsets and layout; its edges; their targets' bits; then,
		// only when a target is still open, its header and confidence and
		// the open targets' headers; last its bytes.  (Most blocks'
		// targets are typed or too small for their pointers.)
		if (q + 4 * INFER_AHEAD < u->to) {
			uint32_t j = queue[q + 4 * INFER_AHEAD];
			__builtin_prefetch(&a->fwd_off[j]);
			__builtin_prefetch(&t->block_layout[j]);
		}
		if (q + 3 * INFER_AHEAD < u->to)
			__builtin_prefetch(&a->fwd[a->fwd_off[queue[q + 3 * INFER_AHEAD]]]);
		if (q + 2 * INFER_AHEAD < u->to) {
			uint32_t j = queue[q + 2 * INFER_AHEAD];
			const uint64_t *bits = field_bits(t, j);
			for (uint32_t e = a->fwd_off[j]; e < a->fwd_off[j + 1]; e++)
				__builtin_prefetch(&bits[a->fwd[e] / 64]);
		}
		if (q + INFER_AHEAD < u->to) {
			uint32_t j = queue[q + INFER_AHEAD];
			const uint64_t *bits = field_bits(t, j);
			bool any = false;
			for (uint32_t e = a->fwd_off[j]; e < a->fwd_off[j + 1]; e++)
				if (field_open(bits, a->fwd[e])) {
					__builtin_prefetch(&blocks[a->fwd[e]]);
					any = true;
				}
			open_ahead[(q + INFER_AHEAD) % FIELD_RING] = any;
			if (any) {
				__builtin_prefetch(&blocks[j]);
				__builtin_prefetch(&t->infer[j]);
			}
		}
		if (q + INFER_AHEAD / 2 < u->to && open_ahead[(q + INFER_AHEAD / 2) % FIELD_RING]) {
			uint64_t size;
			const uint8_t *d = block_bytes(&ahead, queue[q + INFER_AHEAD / 2], &size);
			if (d)
				__builtin_prefetch(d);
		}
		uint32_t i = queue[q];
		const struct layout *l = &t->layouts[t->block_layout[i]];
		const uint64_t *bits = field_bits(t, i);
		uint32_t open[FIELD_OPEN];
		size_t nopen = 0;
		for (uint32_t e = a->fwd_off[i]; e < a->fwd_off[i + 1]; e++)
			if (field_open(bits, a->fwd[e]) && nopen++ < FIELD_OPEN)
				open[nopen - 1] = a->fwd[e];
		if (!nopen || !l->nslots)
			continue;
		// A pointer member's target: the open target starting where it
		// points (a block starting there is the one word_targets names;
		// a member off a word has no edge of its own: none).
		uint64_t size;
		const uint8_t *d = nopen > FIELD_OPEN ? block_words(&c, a, i, l->size, &size, tg)
						      : block_bytes(&c, i, &size);
		for (size_t k = 0; d && k < l->nslots; k++) {
			uint64_t off = l->slots[k].offset;
			if (off + 8 > size)
				continue;
			uint64_t v;
			memcpy(&v, d + off, 8);
			int64_t b = -1;
			if (nopen > FIELD_OPEN) {
				if (tg[off / 8] >= 0 && blocks[tg[off / 8]].address == v)
					b = tg[off / 8];
			} else if (!(off % 8)) {
				for (size_t x = 0; x < nopen && b < 0; x++)
					if (blocks[open[x]].address == v)
						b = open[x];
			}
			int pk = l->slots[k].pointee;
			if (b < 0 || !field_open(bits, (uint32_t)b) || hs_block_size(&blocks[b]) < t->layouts[pk].size)
				continue;
			if (HS_VEC_GROW(u->pairs, u->cap, u->n + 1)) {
				u->nomem = true;
				return;
			}
			u->pairs[u->n++] = (struct field_pair){ (uint32_t)b, pk, (uint8_t)INFER_CONF(t->infer[i]) };
		}
	}
}

// Type the targets of stretch st's pairs, in queue order (main thread only).
// False when a unit ran out of memory (what it gathered is applied).
static bool field_apply(struct field_part *fp)
{
	struct hs_types *t = fp->t;
	const struct field_stretch *st = fp->apply;
	for (size_t k = 0; k < st->nunits; k++) {
		const struct field_unit *u = &st->unit[k];
		for (size_t x = 0; x < u->n; x++) {
			if (x + INFER_AHEAD < u->n) {
				uint32_t ahead = u->pairs[x + INFER_AHEAD].b;
				__builtin_prefetch(&t->typed[ahead / 64]);
				__builtin_prefetch(&t->block_layout[ahead], 1);
				__builtin_prefetch(&t->infer[ahead], 1);
			}
			uint32_t bi = u->pairs[x].b;
			int pk = u->pairs[x].pk;
			if (typed_bit(t, bi))
				continue;
			layout_built(t, pk, (unsigned)(t->layouts[pk].key >> 40));
			// (Named once the rule is done: field_names.)
			if (!inferred_name(t, pk, fp->names))
				continue;
			typed_set(t, bi);
			closed_set(t, bi);
			t->block_layout[bi] = (uint16_t)pk;
			t->infer[bi] = (uint8_t)(INFER_BY_FIELD | u->pairs[x].conf * 95 / 100);
			fp->queue[(*fp->tail)++] = bi;
		}
		if (u->nomem)
			return false;
	}
	return true;
}

static void *field_run(void *arg)
{
	struct field_part *fp = arg;
	if (fp->apply && !field_apply(fp)) {
		fp->nomem = true;
		return NULL;
	}
	struct field_stretch *st = fp->gather;
	for (;;) {
		size_t k = __atomic_fetch_add(&st->next, 1, __ATOMIC_RELAXED);
		if (k >= st->nunits)
			break;
		field_gather(fp, &st->unit[k]);
	}
	return NULL;
}

// Cut the queue entries [from, to) into st's units of `unit` entries (at
// most FIELD_UNITS of them).
static void field_cut(struct field_stretch *st, size_t from, size_t to, size_t unit)
{
	st->nunits = 0;
	st->next = 0;
	st->end = to;
	for (size_t j = from; j < to; j += unit) {
		struct field_unit *u = &st->unit[st->nunits++];
		u->from = j;
		u->to = to - j > unit ? j + unit : to;
		u->n = 0;
		u->nomem = false;
	}
}

/* The names of blocks [first, last) the field rule typed: "~NAME" of their
 * layouts, interned as they were typed (names). */
struct field_names_part {
	struct hs_types *t;
	const struct name_cache *names;
	size_t first, last;
};

static void *field_names(void *arg)
{
	const struct field_names_part *np = arg;
	struct hs_types *t = np->t;
	for (size_t i = np->first; i < np->last; i++)
		if (t->infer[i] & INFER_BY_FIELD)
			t->type[i] = np->names->id[t->block_layout[i]];
	return NULL;
}

/* The entry of (k, size) in *seen, whose entries of each size are chained
 * from by_size (newest first: by_size[size] - 1, then each one's next - 1),
 * added when new; -1 on no memory. */
static ptrdiff_t seen_entry(struct seen **seen, size_t *nseen, size_t *cap, uint32_t *by_size, int k,
			    uint64_t size)
{
	for (uint32_t j = by_size[size]; j; j = (*seen)[j - 1].next)
		if ((*seen)[j - 1].k == k)
			return j - 1;
	if (HS_VEC_GROW(*seen, *cap, *nseen + 1))
		return -1;
	(*seen)[*nseen] = (struct seen){ .k = k, .size = size, .next = by_size[size] };
	by_size[size] = (uint32_t)++*nseen;
	return (ptrdiff_t)*nseen - 1;
}

/* What the certain types of blocks [first, last) teach (learn_run): the
 * (layout, size) entries in the order met, with their counts, and the blocks
 * of each one's first INFER_LEARN instances, in block order.  Merged part
 * after part (learn_merge), the masks are those of the first INFER_LEARN
 * instances of the whole heap, as one pass over it reads them. */
struct learn_inst { uint32_t entry, block; };
struct learn_part {
	const struct hs_types *t;
	const struct hs_block *blocks;
	size_t first, last;
	struct seen *seen;
	size_t nseen, capseen;
	struct learn_inst *inst;
	size_t ninst, capinst;
	uint32_t by_size[INFER_MAX_BYTES + 1];
	bool nomem;
};

static void *learn_run(void *arg)
{
	struct learn_part *lp = arg;
	const struct hs_types *t = lp->t;
	for (size_t i = lp->first; i < lp->last; i++) {
		int k = t->block_layout[i];
		if (k == NO_LAYOUT || !t->type[i] || t->type[i] != t->layouts[k].name_id)
			continue;
		uint64_t size = hs_block_size(&lp->blocks[i]);
		if (size > INFER_MAX_BYTES)
			continue;
		ptrdiff_t e = seen_entry(&lp->seen, &lp->nseen, &lp->capseen, lp->by_size, k, size);
		if (e < 0) {
			lp->nomem = true;
			return NULL;
		}
		if (lp->seen[e].count++ >= INFER_LEARN)
			continue;
		struct learn_inst x = { (uint32_t)e, (uint32_t)i };
		if (HS_VEC_PUSH(lp->inst, lp->ninst, lp->capinst, x)) {
			lp->nomem = true;
			return NULL;
		}
	}
	return NULL;
}

// The parts' entries into *seen, in block order, and the pointer masks of
// each entry's first INFER_LEARN instances; false on no memory.
static bool learn_merge(const struct learn_part *lp, size_t nparts, struct cursor *learn, struct hs_analysis *a,
			struct seen **seen, size_t *nseen, size_t *capseen, uint32_t *by_size)
{
	for (size_t p = 0; p < nparts; p++) {
		if (lp[p].nomem)
			return false;
		size_t *map = malloc((lp[p].nseen ? lp[p].nseen : 1) * sizeof(*map));
		if (!map)
			return false;
		for (size_t j = 0; j < lp[p].nseen; j++) {
			ptrdiff_t g = seen_entry(seen, nseen, capseen, by_size, lp[p].seen[j].k, lp[p].seen[j].size);
			if (g < 0) {
				free(map);
				return false;
			}
			map[j] = (size_t)g;
			(*seen)[g].count += lp[p].seen[j].count;
		}
		for (size_t x = 0; x < lp[p].ninst; x++) {
			struct seen *e = &(*seen)[map[lp[p].inst[x].entry]];
			if (e->learned < INFER_LEARN) {
				e->learned++;
				e->mask |= pointer_mask(learn, a, lp[p].inst[x].block);
			}
		}
		free(map);
	}
	return true;
}

static void infer_types(const struct hs_types_input *in, struct hs_analysis *a, struct hs_types *t)
{
	if (!t->nlayouts || !a->n)
		return;
	// Candidates: untyped used blocks that hold a heap pointer.
	bool any = false;
	for (size_t i = 0; i < a->n && !any; i++)
		any = (a->flags[i] & HS_NODE_USED) && !t->type[i] && a->fwd_off[i + 1] > a->fwd_off[i];
	if (!any)
		return;
	// What was typed for certain, by (layout, usable size): the heap in
	// parts on two threads, merged in block order.
	struct name_cache names = { 0 };
	struct cursor learn = { in->mem, in->heap->blocks, NULL };
	struct seen *seen = NULL;
	size_t nseen = 0, capseen = 0;
	uint32_t by_size[INFER_MAX_BYTES + 1] = { 0 };
	bool small = hs_test_small_splits();
	size_t nlearn = in->jobs > 1 && a->n > (small ? 16 : 65536) ? 2 : 1;
	struct learn_part *lp = calloc(nlearn, sizeof(*lp));
	if (!lp)
		goto out;
	for (size_t k = 0; k < nlearn; k++) {
		lp[k].t = t;
		lp[k].blocks = in->heap->blocks;
		lp[k].first = a->n * k / nlearn;
		lp[k].last = a->n * (k + 1) / nlearn;
	}
	hs_run_parts(nlearn, learn_run, lp, sizeof(lp[0]));
	bool learned = learn_merge(lp, nlearn, &learn, a, &seen, &nseen, &capseen, by_size);
	for (size_t k = 0; k < nlearn; k++) {
		free(lp[k].seen);
		free(lp[k].inst);
	}
	free(lp);
	if (!learned)
		goto out;
	if (!nseen)
		goto out;
	qsort(seen, nseen, sizeof(*seen), seen_cmp);
	t->small_below = UINT64_MAX;
	for (size_t j = 0; j < nseen; j++) {
		const struct layout *l = layout_built(t, seen[j].k, (unsigned)(t->layouts[seen[j].k].key >> 40));
		if (l->min_pointee < t->small_below)
			t->small_below = l->min_pointee;
	}
	t->infer = hs_array_zeroed(a->n, 1);
	t->closed = hs_array_zeroed(a->n / 64 + 1, sizeof(uint64_t));
	uint32_t *queue = hs_array_new(a->n, sizeof(uint32_t));
	if (!t->infer || !t->closed || !queue || !typed_begin(t, in->jobs)) {
		free(queue);
		free(t->infer);
		t->infer = NULL;
		goto out;
	}
	// layout: both halves of the heap at once, applied in block order.
	// (Tests cut the work small: every round is run on small heaps.)
	struct infer_part parts[2];
	size_t nparts = in->jobs > 1 && a->n > (small ? 64 : 4096) ? 2 : 1, next = 0;
	for (size_t k = 0; k < nparts; k++)
		parts[k] = (struct infer_part){ .in = in, .a = a, .t = t, .seen = seen, .nseen = nseen,
						.next = &next, .chunk = small ? 16 : INFER_CHUNK };
	hs_run_parts(nparts, infer_layouts, parts, sizeof(parts[0]));
	size_t head = 0, tail = 0;
	for (size_t i = 0; i < a->n; i++) {
		if (!t->infer[i])
			continue;
		uint32_t id = inferred_name(t, t->block_layout[i], &names);
		if (!id) {
			t->infer[i] = 0;
			t->block_layout[i] = NO_LAYOUT;
			continue;
		}
		t->type[i] = id;
		typed_set(t, (uint32_t)i);
		closed_set(t, (uint32_t)i);
		queue[tail++] = (uint32_t)i;
	}
	// field: what inferred blocks' pointer members point at, a stretch of
	// the queue at a time: its pointers gathered on two threads, then
	// applied in queue order (the result of visiting blocks one by one).
	// While this thread applies one stretch, the other gathers the next one
	// already queued, and this thread joins it when done.
	struct field_stretch *st = calloc(2, sizeof(*st)), *ready = NULL, *fill = st;
	size_t fstretch = small ? 16 : FIELD_STRETCH, funit = small ? 4 : FIELD_UNIT;
	while (st) {
		size_t from = head;
		size_t to = tail - from > fstretch ? from + fstretch : tail;
		if (!ready && from == to)
			break;
		field_cut(fill, from, to, funit);
		struct field_part parts2[2] = {
			{ .in = in, .a = a, .t = t, .queue = queue, .apply = ready, .gather = fill,
			  .tail = &tail, .names = &names },
			{ .in = in, .a = a, .t = t, .queue = queue, .gather = fill },
		};
		size_t n2 = nparts == 2 && to - from >= (small ? 2 : 1024) ? 2 : 1;
		hs_run_parts(n2, field_run, parts2, sizeof(parts2[0]));
		if (parts2[0].nomem)
			break;  // what was inferred is still true
		head = to;
		ready = from < to ? fill : NULL;
		fill = fill == &st[0] ? &st[1] : &st[0];
	}
	struct field_names_part np[2];
	for (size_t k = 0; k < nparts; k++)
		np[k] = (struct field_names_part){ t, &names, a->n * k / nparts, a->n * (k + 1) / nparts };
	hs_run_parts(nparts, field_names, np, sizeof(np[0]));
	for (size_t k = 0; st && k < 2; k++)
		for (size_t u = 0; u < FIELD_UNITS; u++)
			free(st[k].unit[u].pairs);
	free(st);
	free(queue);
out:
	typed_end(t);
	free(t->closed);
	t->closed = NULL;
	free(names.id);
	free(seen);
}

struct hs_types *hs_types_create(size_t n)
{
	struct hs_types *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->nnames = 1;
	t->namecap = 64;
	t->names = calloc(t->namecap, sizeof(char *));
	t->vcap = 1 << 14;
	t->vkeys = calloc(t->vcap, sizeof(*t->vkeys));
	t->vvals = calloc(t->vcap, sizeof(*t->vvals));
	t->n = n;
	t->block_layout = hs_array_new(n, sizeof(uint16_t));
	t->type = hs_array_zeroed(n, sizeof(uint32_t));
	if (!t->names || !t->vkeys || !t->vvals || !t->block_layout || !t->type) {
		hs_types_destroy(t);
		return NULL;
	}
	memset(t->block_layout, 0xff, (n ? n : 1) * sizeof(uint16_t));   // NO_LAYOUT
	return t;
}

void hs_types_certain(const struct hs_types_input *in, struct hs_types *t)
{
	if (!in->symbols)
		return;
	type_by_vtables(in, in->a, t);
	type_by_dwarf(in, in->a, t);
}

void hs_types_infer(const struct hs_types_input *in, struct hs_types *t)
{
	infer_types(in, in->a, t);
}

uint32_t *hs_types_ids(struct hs_types *t)
{
	return t ? t->type : NULL;
}

uint32_t hs_types_intern(struct hs_types *t, const char *name)
{
	return intern(t, name);
}

const char *hs_types_name(const struct hs_types *t, uint32_t id)
{
	return t && id && id < t->nnames ? t->names[id] : NULL;
}

const char *hs_block_type(const struct hs_types *t, size_t i)
{
	if (!t || i >= t->n || !t->type[i])
		return NULL;
	return t->names[t->type[i]];
}

bool hs_types_block_field(const struct hs_types *t, size_t i, uint64_t off, char *buf, size_t len)
{
	if (!t || i >= t->n || t->block_layout[i] == NO_LAYOUT)
		return false;
	const struct layout *l = &t->layouts[t->block_layout[i]];
	if (!l->size)
		return false;
	uint64_t elem = off / l->size, in = off % l->size;
	for (size_t k = 0; k < l->nmembers; k++) {
		const struct member *m = &l->members[k];
		if (m->name && m->offset <= in && in < m->offset + (m->size ? m->size : 1)) {
			if (elem)
				snprintf(buf, len, "[%llu].%s", (unsigned long long)elem, m->name);
			else
				snprintf(buf, len, "%s", m->name);
			return true;
		}
	}
	return false;
}

bool hs_block_type_die(const struct hs_types *t, size_t i, Dwarf_Die *ret)
{
	if (!t || i >= t->n || t->block_layout[i] == NO_LAYOUT)
		return false;
	*ret = t->layouts[t->block_layout[i]].die;
	return true;
}

int hs_block_type_certainty(const struct hs_types *t, size_t i, const char **rule, unsigned *confidence)
{
	static const char *const rules[] = { [INFER_LAYOUT] = "layout", [INFER_FIELD] = "field" };
	*rule = NULL;
	*confidence = 0;
	if (!t || i >= t->n || !t->type[i])
		return HS_TYPE_UNKNOWN;
	if (t->infer && t->infer[i]) {
		*rule = rules[t->infer[i] & INFER_BY_FIELD ? INFER_FIELD : INFER_LAYOUT];
		*confidence = INFER_CONF(t->infer[i]);
		return HS_TYPE_INFERRED;
	}
	*confidence = 100;
	return HS_TYPE_CERTAIN;
}

void hs_json_type_info(struct hs_out *o, const struct hs_types *t, size_t i)
{
	const char *rule;
	unsigned conf;
	int c = hs_block_type_certainty(t, i, &rule, &conf);
	hs_json_kstr(o, "type_certainty", c == HS_TYPE_INFERRED ? "inferred" : c == HS_TYPE_CERTAIN ? "certain" : NULL);
	hs_json_kstr(o, "type_rule", rule);
	hs_json_key(o, "type_confidence");
	if (c == HS_TYPE_UNKNOWN)
		hs_json_null(o);
	else
		hs_json_u64(o, conf);
}

void hs_json_type_name_info(struct hs_out *o, const char *name)
{
	hs_json_kstr(o, "type_certainty", !name ? NULL : name[0] == '~' ? "inferred" : "certain");
}
