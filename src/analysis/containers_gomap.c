/* containers_gomap.c - Go maps, both layouts.  Found by their Go types, not
 * by shape: go_types.c names each map header block by its DWARF type
 * (hash<K,V> up to go1.23, map<K,V> in go1.24), and every offset below comes
 * from the DWARF of those types the compiler synthesizes, by member name.
 *
 *   hmap (go1.19-1.23)  header {count, flags, B, noverflow, hash0, buckets,
 *       oldbuckets, nevacuate, extra}; 1 << B buckets of {tophash [8]uint8,
 *       keys [8]K, values [8]V, overflow *bucket}, each followed by its chain
 *       of overflow buckets (allocated alone, or taken from the tail of the
 *       bucket array).  Slot j is live when tophash[j] >= 5 (minTopHash), a
 *       tombstone when it is 1 (emptyOne).  While the map grows, the old
 *       buckets not yet evacuated (tophash[0] of 2, 3 or 4 says evacuated)
 *       hold live entries too.
 *   Swiss (go1.24)      Map {used, seed, dirPtr, dirLen, ...}: dirLen 0 and
 *       dirPtr one group (a small map, or nil), else dirPtr a [dirLen]*table
 *       where a table fills the consecutive entries it covers; table {used,
 *       capacity, growthLeft, localDepth, index, groups {data, lengthMask}};
 *       a group is a control word (byte j: 0x80 empty, 0xfe deleted, high bit
 *       clear: slot j full) and 8 slots {key K; elem V}.
 * Every count is checked against the walk; every chain and directory is
 * bounded.  The walk reports each live entry: node = its bucket or group,
 * key = the key's address, value = the value when it is a pointer.
 */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "containers.h"
#include "expr.h"
#include "go_rt.h"
#include "graph.h"
#include "symbols.h"
#include "target.h"

#define SLOTS 8
#define MIN_TOPHASH 5
#define EMPTY_ONE 1
#define CTRL_EMPTY 0x80
#define CTRL_DELETED 0xfe
#define MAX_B 40                    /* 1 << B buckets: far more than any core holds */
#define MAX_CHAIN (1u << 16)        /* overflow buckets in one chain */
#define MAX_DIR (1u << 24)          /* directory entries of a Swiss map */
#define MAX_BUCKET_BYTES (1u << 16)
#define DW_AT_go_kind 0x2900
#define GO_KIND_STRING 24

/* --- layout from DWARF ------------------------------------------------------ */

static bool member(Dwarf_Die *type, const char *name, uint32_t *off, Dwarf_Die *mt)
{
	uint64_t o;
	Dwarf_Die t;
	if (!hs_dwarf_find_member(type, name, &o, mt ? mt : &t) || o > UINT32_MAX)
		return false;
	*off = (uint32_t)o;
	return true;
}

// A pointer type's pointee, peeled.
static bool pointee(Dwarf_Die *ptr, Dwarf_Die *ret)
{
	return dwarf_tag(ptr) == DW_TAG_pointer_type && hs_dwarf_type_of(ptr, ret);
}

// The element of array type arr ([8]K): its type and size.
static bool array_elem(Dwarf_Die *arr, Dwarf_Die *ret, uint32_t *size)
{
	if (dwarf_tag(arr) != DW_TAG_array_type || !hs_dwarf_type_of(arr, ret))
		return false;
	uint64_t n = hs_dwarf_size(ret);
	if (!n || n > MAX_BUCKET_BYTES)
		return false;
	*size = (uint32_t)n;
	return true;
}

static enum hs_key_kind kind_of(Dwarf_Die *t)
{
	Dwarf_Attribute attr;
	Dwarf_Word v = 0, enc;
	if (dwarf_attr(t, DW_AT_go_kind, &attr))
		dwarf_formudata(&attr, &v);
	if (v == GO_KIND_STRING)
		return HS_KEY_GO_STRING;
	int tag = dwarf_tag(t);
	if (tag == DW_TAG_pointer_type)
		return HS_KEY_POINTER;
	if (tag == DW_TAG_base_type && dwarf_attr(t, DW_AT_encoding, &attr) && dwarf_formudata(&attr, &enc) == 0) {
		if (enc == DW_ATE_signed)
			return HS_KEY_INT;
		if (enc == DW_ATE_unsigned)
			return HS_KEY_UINT;
	}
	return HS_KEY_BYTES;
}

static char *name_of(Dwarf_Die *t)
{
	const char *n = dwarf_diename(t);
	return strdup(n ? n : "?");
}

// hash<K,V>: the bucket type, through the buckets member.
static bool hmap_layout(Dwarf_Die *h, struct hs_go_map_layout *L, Dwarf_Die *kt, Dwarf_Die *vt)
{
	Dwarf_Die bp, b, arr;
	uint32_t dummy;
	if (!member(h, "count", &L->count_off, NULL) || !member(h, "flags", &L->flags_off, NULL) ||
	    !member(h, "B", &L->b_off, NULL) || !member(h, "buckets", &L->buckets_off, &bp) ||
	    !member(h, "oldbuckets", &L->oldbuckets_off, NULL) || !pointee(&bp, &b))
		return false;
	uint64_t bs = hs_dwarf_size(&b);
	if (!bs || bs > MAX_BUCKET_BYTES || !member(&b, "tophash", &dummy, NULL) ||
	    !member(&b, "keys", &L->keys_off, &arr) || !array_elem(&arr, kt, &L->key_size) ||
	    !member(&b, "values", &L->elems_off, &arr) || !array_elem(&arr, vt, &L->elem_size) ||
	    !member(&b, "overflow", &L->overflow_off, NULL) || dummy != 0)
		return false;
	L->bucket_size = (uint32_t)bs;
	// hmap.extra (*mapextra): the overflow buckets' slices of a map whose
	// buckets hold no pointers.
	Dwarf_Die xp, x;
	uint64_t xs;
	if (member(h, "extra", &L->extra_off, &xp) && pointee(&xp, &x) && (xs = hs_dwarf_size(&x)) && xs <= 64 &&
	    member(&x, "overflow", &L->x_overflow_off, NULL) && member(&x, "oldoverflow", &L->x_oldoverflow_off, NULL) &&
	    L->extra_off + 8 <= 48 && L->x_overflow_off + 8 <= xs && L->x_oldoverflow_off + 8 <= xs)
		L->x_size = (uint32_t)xs;
	return L->keys_off >= SLOTS && L->keys_off + SLOTS * L->key_size <= bs &&
	       L->elems_off + SLOTS * L->elem_size <= bs && L->overflow_off + 8 <= bs && L->b_off < 48 &&
	       L->flags_off < 48 && L->count_off + 8 <= 48 && L->buckets_off + 8 <= 48 && L->oldbuckets_off + 8 <= 48;
}

// map<K,V>: tables through dirPtr (**table<K,V>), groups through
// table.groups.data (*group), slots {key, elem}.
static bool swiss_layout(Dwarf_Die *m, struct hs_go_map_layout *L, Dwarf_Die *kt, Dwarf_Die *vt)
{
	Dwarf_Die dp, tp, t, gr, gp, g, arr, slot;
	uint32_t slot_size;
	L->swiss = true;
	if (!member(m, "used", &L->count_off, NULL) || !member(m, "dirPtr", &L->dir_ptr_off, &dp) ||
	    !member(m, "dirLen", &L->dir_len_off, NULL) || !pointee(&dp, &tp) || !pointee(&tp, &t))
		return false;
	if (!member(&t, "used", &L->t_used_off, NULL) || !member(&t, "capacity", &L->t_cap_off, NULL) ||
	    !member(&t, "growthLeft", &L->t_growth_off, NULL) || !member(&t, "groups", &L->t_data_off, &gr))
		return false;
	uint32_t d, mk;
	if (!member(&gr, "data", &d, &gp) || !member(&gr, "lengthMask", &mk, NULL) || !pointee(&gp, &g))
		return false;
	L->t_mask_off = L->t_data_off + mk;
	L->t_data_off += d;
	uint64_t gs = hs_dwarf_size(&g), ts = hs_dwarf_size(&t);
	if (!gs || gs > MAX_BUCKET_BYTES || !member(&g, "slots", &L->keys_off, &arr) ||
	    !array_elem(&arr, &slot, &slot_size) || !member(&slot, "key", &L->slot_key_off, kt) ||
	    !member(&slot, "elem", &L->slot_elem_off, vt))
		return false;
	L->bucket_size = (uint32_t)gs;
	L->slot_size = slot_size;
	L->key_size = (uint32_t)hs_dwarf_size(kt);
	L->elem_size = (uint32_t)hs_dwarf_size(vt);
	return L->keys_off >= 8 && L->keys_off + SLOTS * slot_size <= gs && L->slot_key_off + L->key_size <= slot_size &&
	       L->slot_elem_off + L->elem_size <= slot_size && L->count_off + 8 <= 48 && L->dir_ptr_off + 8 <= 48 &&
	       L->dir_len_off + 8 <= 48 && ts && ts <= 64 && L->t_used_off + 2 <= ts && L->t_cap_off + 2 <= ts &&
	       L->t_growth_off + 2 <= ts && L->t_data_off + 8 <= ts && L->t_mask_off + 8 <= ts;
}

bool hs_go_map_describe(const struct hs_containers_input *in, size_t i, struct hs_go_map_found *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (!in->go_rt || !in->go_block_die || !in->a || i >= in->a->n || !in->go_block_die[i] ||
	    (in->go_block_die[i] >> 63))
		return false;
	Dwarf_Addr bias;
	Dwarf *dw = in->go_rt->mod->dwfl_module ? dwfl_module_getdwarf(in->go_rt->mod->dwfl_module, &bias) : NULL;
	Dwarf_Die d, kt, vt;
	if (!dw || !dwarf_offdie(dw, in->go_block_die[i] - 1, &d))
		return false;
	const char *n = dwarf_diename(&d);
	if (!n || dwarf_tag(&d) != DW_TAG_structure_type)
		return false;
	struct hs_go_map_layout *L = &ret->layout;
	if (!strncmp(n, "hash<", 5)) {
		if (!hmap_layout(&d, L, &kt, &vt))
			return false;
	} else if (!strncmp(n, "map<", 4)) {
		if (!swiss_layout(&d, L, &kt, &vt))
			return false;
	} else {
		return false;
	}
	L->key_kind = (uint8_t)kind_of(&kt);
	L->elem_kind = (uint8_t)kind_of(&vt);
	ret->key_type = name_of(&kt);
	ret->value_type = name_of(&vt);
	if (!ret->key_type || !ret->value_type) {
		hs_go_map_found_deinit(ret);
		return false;
	}
	return true;
}

void hs_go_map_found_deinit(struct hs_go_map_found *f)
{
	free(f->key_type);
	free(f->value_type);
	f->key_type = f->value_type = NULL;
}

/* --- the walk --------------------------------------------------------------- */

// Claim the used block holding [addr, addr + len) (its start need not be
// addr: a malloc header, or overflow buckets taken from the bucket array).
static bool own_range(struct hs_cwalk *cw, uint64_t addr, uint64_t len, enum hs_block_role role, const char *what)
{
	const struct hs_analysis *a = cw->in->a;
	ptrdiff_t b = addr >= a->map.lo && addr < a->map.hi ? hs_addrmap_lookup(&a->map, addr) : -1;
	if (b < 0)
		return hs_cwalk_fail(cw, "its %s 0x%" PRIx64 " is not in a heap object", what, addr);
	const struct hs_block *blk = &cw->in->heap->blocks[b];
	if (addr + len < addr || addr + len > blk->address + hs_block_size(blk))
		return hs_cwalk_fail(cw, "its %s 0x%" PRIx64 " (%" PRIu64 " bytes) overruns the object at 0x%" PRIx64, what,
				     addr, len, blk->address);
	if (cw->verify_only || cw->cs->owner[b] == cw->id)
		return true;
	return hs_cwalk_own(cw, blk->address, role);
}

static uint64_t rd_uint(const uint8_t *p, uint32_t size)
{
	uint64_t v = 0;
	memcpy(&v, p, size < 8 ? size : 8);
	return v;
}

struct tally { uint64_t live, tombstones, overflow, max_chain; };

static void report(struct hs_cwalk *cw, uint64_t node, uint64_t key, const uint8_t *value)
{
	const struct hs_go_map_layout *L = &cw->c->go;
	if (!cw->entry || cw->listed >= cw->limit)
		return;
	cw->listed++;
	uint64_t v = L->elem_kind == HS_KEY_POINTER ? rd_uint(value, 8) : 0;
	cw->entry(cw, node, key, 0, v);
}

// One bucket and its overflow chain.
static bool hmap_chain(struct hs_cwalk *cw, uint64_t b, bool count_shape, struct tally *t)
{
	const struct hs_go_map_layout *L = &cw->c->go;
	uint64_t in_chain = 0;
	for (uint32_t n = 0; b; n++) {
		if (n > MAX_CHAIN)
			return hs_cwalk_fail(cw, "an overflow chain is longer than %u buckets (a cycle?)", MAX_CHAIN);
		if (n && !own_range(cw, b, L->bucket_size, HS_ROLE_BUCKETS, "overflow bucket"))
			return false;
		const uint8_t *p = hs_memory_span(cw->in->mem, b, L->bucket_size);
		if (!p)
			return hs_cwalk_fail(cw, "its bucket 0x%" PRIx64 " is not in the core", b);
		if (n && count_shape)
			t->overflow++;
		for (unsigned j = 0; j < SLOTS; j++) {
			if (p[j] == EMPTY_ONE && count_shape)
				t->tombstones++;
			if (p[j] < MIN_TOPHASH)
				continue;
			t->live++;
			in_chain++;
			report(cw, b, b + L->keys_off + j * L->key_size, p + L->elems_off + j * L->elem_size);
		}
		b = rd_uint(p + L->overflow_off, 8);
	}
	if (in_chain > t->max_chain)
		t->max_chain = in_chain;
	return true;
}

// hmap.extra and the slices of overflow buckets it keeps: the map's own.
static bool hmap_extra(struct hs_cwalk *cw, uint64_t extra)
{
	const struct hs_go_map_layout *L = &cw->c->go;
	uint8_t x[64];
	if (!own_range(cw, extra, L->x_size, HS_ROLE_TABLE, "extra") || !hs_cwalk_read(cw, extra, x, L->x_size))
		return false;
	const uint32_t offs[2] = { L->x_overflow_off, L->x_oldoverflow_off };
	for (int i = 0; i < 2; i++) {
		uint64_t sl = rd_uint(x + offs[i], 8), hdr[3];
		if (!sl)
			continue;
		if (!own_range(cw, sl, 24, HS_ROLE_TABLE, "overflow slice") || !hs_cwalk_read(cw, sl, hdr, sizeof(hdr)))
			return false;
		if (hdr[0] && (hdr[2] > (UINT64_C(1) << 40) ||
			       !own_range(cw, hdr[0], hdr[2] * 8, HS_ROLE_TABLE, "overflow slice's array")))
			return hs_cwalk_fail(cw, "its overflow slice 0x%" PRIx64 " is broken", sl);
	}
	return true;
}

static bool hmap_walk(struct hs_cwalk *cw, uint64_t addr, const uint64_t *w)
{
	struct hs_container *c = cw->c;
	const struct hs_go_map_layout *L = &c->go;
	const uint8_t *h = (const uint8_t *)w;
	uint64_t count = rd_uint(h + L->count_off, 8), buckets = rd_uint(h + L->buckets_off, 8);
	uint64_t old = rd_uint(h + L->oldbuckets_off, 8);
	unsigned B = h[L->b_off], flags = h[L->flags_off];
	c->count = count;
	c->overflow = c->tombstones = 0;
	if (B > MAX_B)
		return hs_cwalk_fail(cw, "B = %u: more buckets than memory holds", B);
	if (!own_range(cw, addr, 48, HS_ROLE_TABLE, "header"))
		return false;
	uint64_t nb = UINT64_C(1) << B, bs = L->bucket_size;
	c->buckets = buckets ? (int64_t)nb : 0;
	if (!buckets) {
		if (count)
			return hs_cwalk_fail(cw, "count %" PRIu64 " without buckets", count);
		c->max_chain = 0;
		return true;
	}
	if (!own_range(cw, buckets, nb * bs, HS_ROLE_BUCKETS, "bucket array"))
		return false;
	uint64_t extra = L->x_size ? rd_uint(h + L->extra_off, 8) : 0;
	if (extra && !hmap_extra(cw, extra))
		return false;
	struct tally t = { 0 };
	for (uint64_t i = 0; i < nb; i++)
		if (!hmap_chain(cw, buckets + i * bs, true, &t))
			return false;
	c->overflow = (int64_t)t.overflow;
	c->tombstones = (int64_t)t.tombstones;
	c->max_chain = (int64_t)t.max_chain;
	if (old) {
		// Growing: the old array has half as many buckets, or as many in
		// a same-size grow (flags & sameSizeGrow).
		uint64_t nold = (flags & 8) || !B ? nb : nb / 2;
		if (!own_range(cw, old, nold * bs, HS_ROLE_BUCKETS, "old bucket array"))
			return false;
		for (uint64_t i = 0; i < nold; i++) {
			const uint8_t *p = hs_memory_span(cw->in->mem, old + i * bs, 1);
			if (!p)
				return hs_cwalk_fail(cw, "its old bucket 0x%" PRIx64 " is not in the core", old + i * bs);
			if (p[0] > EMPTY_ONE && p[0] < MIN_TOPHASH)
				continue;   // evacuated: its entries are in the new array
			if (!hmap_chain(cw, old + i * bs, false, &t))
				return false;
		}
	}
	if (t.live != count)
		return hs_cwalk_fail(cw, "its count says %" PRIu64 " entries, its buckets hold %" PRIu64, count, t.live);
	return true;
}

// One Swiss group: its live slots, and deleted ones.
static bool swiss_group(struct hs_cwalk *cw, uint64_t g, struct tally *t)
{
	const struct hs_go_map_layout *L = &cw->c->go;
	const uint8_t *p = hs_memory_span(cw->in->mem, g, L->bucket_size);
	if (!p)
		return hs_cwalk_fail(cw, "its group 0x%" PRIx64 " is not in the core", g);
	for (unsigned j = 0; j < SLOTS; j++) {
		if (p[j] == CTRL_DELETED)
			t->tombstones++;
		if (p[j] & 0x80)
			continue;
		t->live++;
		uint64_t slot = L->keys_off + j * L->slot_size;
		report(cw, g, g + slot + L->slot_key_off, p + slot + L->slot_elem_off);
	}
	return true;
}

static bool swiss_table(struct hs_cwalk *cw, uint64_t tab, struct tally *t, uint64_t *groups)
{
	const struct hs_go_map_layout *L = &cw->c->go;
	uint8_t tb[64];
	if (!own_range(cw, tab, L->t_mask_off + 8, HS_ROLE_TABLE, "table") ||
	    !hs_cwalk_read(cw, tab, tb, L->t_mask_off + 8))
		return false;
	uint64_t used = rd_uint(tb + L->t_used_off, 2), cap = rd_uint(tb + L->t_cap_off, 2);
	uint64_t data = rd_uint(tb + L->t_data_off, 8), n = rd_uint(tb + L->t_mask_off, 8) + 1;
	if (!n || n * SLOTS != cap || (n & (n - 1)))
		return hs_cwalk_fail(cw, "table 0x%" PRIx64 ": %" PRIu64 " groups for capacity %" PRIu64, tab, n, cap);
	if (!own_range(cw, data, n * L->bucket_size, HS_ROLE_BUCKETS, "group array"))
		return false;
	uint64_t before = t->live;
	for (uint64_t i = 0; i < n; i++)
		if (!swiss_group(cw, data + i * L->bucket_size, t))
			return false;
	*groups += n;
	if (t->live - before != used)
		return hs_cwalk_fail(cw, "table 0x%" PRIx64 " says %" PRIu64 " entries, its groups hold %" PRIu64, tab, used,
				     t->live - before);
	return true;
}

static bool swiss_walk(struct hs_cwalk *cw, uint64_t addr, const uint64_t *w)
{
	struct hs_container *c = cw->c;
	const struct hs_go_map_layout *L = &c->go;
	const uint8_t *h = (const uint8_t *)w;
	uint64_t used = rd_uint(h + L->count_off, 8), dir = rd_uint(h + L->dir_ptr_off, 8);
	uint64_t dirlen = rd_uint(h + L->dir_len_off, 8);
	c->count = used;
	c->tombstones = 0;
	c->tables = 0;
	c->buckets = 0;
	if (!own_range(cw, addr, 48, HS_ROLE_TABLE, "header"))
		return false;
	struct tally t = { 0 };
	if (!dirlen) {
		if (dir) {
			if (!own_range(cw, dir, L->bucket_size, HS_ROLE_BUCKETS, "group") || !swiss_group(cw, dir, &t))
				return false;
			c->buckets = 1;
		}
	} else {
		if (dirlen > MAX_DIR || (dirlen & (dirlen - 1)))
			return hs_cwalk_fail(cw, "its directory has %" PRIu64 " entries", dirlen);
		if (!own_range(cw, dir, dirlen * 8, HS_ROLE_TABLE, "directory"))
			return false;
		const uint8_t *d = hs_memory_span(cw->in->mem, dir, dirlen * 8);
		if (!d)
			return hs_cwalk_fail(cw, "its directory 0x%" PRIx64 " is not in the core", dir);
		uint64_t groups = 0, prev = 0;
		for (uint64_t i = 0; i < dirlen; i++) {
			uint64_t tab = rd_uint(d + i * 8, 8);
			if (tab == prev)
				continue;   // the same table covers consecutive entries
			prev = tab;
			c->tables++;
			if (!swiss_table(cw, tab, &t, &groups))
				return false;
		}
		c->buckets = (int64_t)groups;
	}
	c->tombstones = (int64_t)t.tombstones;
	if (t.live != used)
		return hs_cwalk_fail(cw, "it says %" PRIu64 " entries, its groups hold %" PRIu64, used, t.live);
	return true;
}

static bool gomap_probe(struct hs_cwalk *cw, uint64_t addr, const uint64_t *w)
{
	(void)cw, (void)addr, (void)w;
	return false;   // never by shape: go_types.c finds them
}

static bool gomap_walk(struct hs_cwalk *cw, uint64_t addr, const uint64_t *w)
{
	cw->c->layout = cw->c->go.swiss ? "swiss" : "hmap";
	return cw->c->go.swiss ? swiss_walk(cw, addr, w) : hmap_walk(cw, addr, w);
}

// The live slot of own block b (a bucket or group array, an overflow
// bucket) whose key or value holds byte word: its key's address.
static bool gomap_slot_key(struct hs_cwalk *cw, size_t b, uint64_t word, uint64_t *key_ret)
{
	const struct hs_go_map_layout *L = &cw->c->go;
	const struct hs_block *blk = &cw->in->heap->blocks[b];
	uint64_t data = 0;
	if (cw->in->go_rt)
		(void)hs_go_object_type(cw->in->go_rt, blk->address, &data);
	uint64_t base = blk->address + data;
	if (word < base || !L->bucket_size)
		return false;
	uint64_t g = base + (word - base) / L->bucket_size * L->bucket_size, o = word - g;
	const uint8_t *p = hs_memory_span(cw->in->mem, g, L->bucket_size);
	if (!p || g + L->bucket_size > blk->address + hs_block_size(blk))
		return false;
	unsigned j;
	if (L->swiss) {
		if (o < L->keys_off)
			return false;
		j = (unsigned)((o - L->keys_off) / L->slot_size);
		if (j >= SLOTS || (p[j] & 0x80))
			return false;
		*key_ret = g + L->keys_off + j * L->slot_size + L->slot_key_off;
		return true;
	}
	if (o >= L->keys_off && o < L->keys_off + SLOTS * L->key_size && L->key_size)
		j = (unsigned)((o - L->keys_off) / L->key_size);
	else if (o >= L->elems_off && o < L->elems_off + SLOTS * L->elem_size && L->elem_size)
		j = (unsigned)((o - L->elems_off) / L->elem_size);
	else
		return false;
	if (p[j] < MIN_TOPHASH)
		return false;
	*key_ret = g + L->keys_off + j * L->key_size;
	return true;
}

const struct hs_container_kind hs_kind_gomap = {
	.name = "map",
	.family = "gomap",
	.size = 48,
	.at_block_start = true,
	.key_kind = HS_KEY_BYTES,
	.probe = gomap_probe,
	.walk = gomap_walk,
	.slot_key = gomap_slot_key,
};
