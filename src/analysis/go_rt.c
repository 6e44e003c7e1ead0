/* go_rt.c - see go_rt.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "go_rt.h"
#include "alloc.h"
#include "heap.h"
#include "memory.h"
#include "symbols.h"

#define MAX_SPANS (UINT64_C(1) << 24)
#define MAX_TYPE_PTRBYTES (UINT64_C(1) << 32)
#define ARENA_BYTES (UINT64_C(64) << 20)
#define ARENA_BASE_OFFSET UINT64_C(0xffff800000000000)
#define ARENA_L2_ENTRIES (UINT64_C(1) << 22)
#define PAGE_SIZE UINT64_C(8192)
#define MALLOC_HEADER_MIN 512   /* minSizeForMallocHeader (go1.22+) */

static struct hs_error *field(struct hs_gort *rt, const char *type, const char *member, uint64_t v119,
			      uint64_t *off, uint64_t *size);

bool hs_go_read(struct hs_gort *rt, uint64_t addr, void *buf, size_t len)
{
	return hs_elf_read_image(rt->mem, rt->file, addr, buf, len);
}

static bool rd64(struct hs_gort *rt, uint64_t addr, uint64_t *v)
{
	return hs_go_read(rt, addr, v, 8);
}

struct hs_error *hs_gort_field(struct hs_gort *rt, const char *type, const char *member, uint64_t v119,
			       uint64_t *off)
{
	return field(rt, type, member, v119, off, NULL);
}

// A field's offset (and size) by name, or the go1.19 value without DWARF.
static struct hs_error *field(struct hs_gort *rt, const char *type, const char *member, uint64_t v119,
			      uint64_t *off, uint64_t *size)
{
	if (!rt->dwarf) {
		*off = v119;
		return NULL;
	}
	uint32_t bit;
	struct hs_error *err = hs_dwarf_member_offset(rt->mod, type, member, off, &bit);
	if (!err && size)
		err = hs_dwarf_member_size(rt->mod, type, member, size);
	if (err) {
		struct hs_error *e = hs_error_create(HS_ERR_HEAP, "Go runtime layout: %s.%s is not in the DWARF (%s)",
						     type, member, hs_error_message(err));
		hs_error_destroy(err);
		return e;
	}
	return NULL;
}

static int span_cmp(const void *a, const void *b)
{
	const struct hs_go_span *x = a, *y = b;
	return (x->start > y->start) - (x->start < y->start);
}

static struct hs_error *read_spans(struct hs_gort *rt, uint64_t allspans_off)
{
	uint64_t o_start, o_npages, o_class, o_state, o_elem, hdr[2];
	HS_CHECK(field(rt, "runtime.mspan", "startAddr", 24, &o_start, NULL));
	HS_CHECK(field(rt, "runtime.mspan", "npages", 32, &o_npages, NULL));
	HS_CHECK(field(rt, "runtime.mspan", "spanclass", 98, &o_class, NULL));
	HS_CHECK(field(rt, "runtime.mspan", "state.s", 99, &o_state, NULL));
	HS_CHECK(field(rt, "runtime.mspan", "elemsize", 104, &o_elem, NULL));
	if (!hs_go_read(rt, rt->mheap + allspans_off, hdr, sizeof(hdr)) || hdr[1] > MAX_SPANS)
		return hs_error_create(HS_ERR_HEAP, "runtime.mheap_.allspans cannot be read");
	size_t cap = 0;
	uint8_t b[256];
	uint64_t need = rt->sp_large_type ? rt->sp_large_type + 8 : o_elem + 8;
	if (rt->sp_specials + 8 > need)
		need = rt->sp_specials + 8;
	if (need > sizeof(b))
		return hs_error_create(HS_ERR_HEAP, "Go runtime layout: runtime.mspan is larger than expected");
	for (uint64_t i = 0; i < hdr[1]; i++) {
		uint64_t p;
		if (!rd64(rt, hdr[0] + i * 8, &p) || !p || !hs_go_read(rt, p, b, need) || b[o_state] != 1)
			continue;
		if (rt->nspans == cap) {
			cap = cap ? 2 * cap : 1024;
			struct hs_go_span *n = realloc(rt->spans, cap * sizeof(*n));
			if (!n)
				return &hs_error_nomem;
			rt->spans = n;
		}
		struct hs_go_span *s = &rt->spans[rt->nspans];
		uint64_t npages;
		memcpy(&s->start, b + o_start, 8);
		memcpy(&npages, b + o_npages, 8);
		memcpy(&s->elemsize, b + o_elem, 8);
		memcpy(&s->specials, b + rt->sp_specials, 8);
		if (rt->sp_large_type)
			memcpy(&s->large_type, b + rt->sp_large_type, 8);
		s->spanclass = b[o_class];
		s->mspan = p;
		if (npages == 0 || npages > (UINT64_C(1) << 40) / PAGE_SIZE || !s->elemsize)
			continue;
		s->end = s->start + npages * PAGE_SIZE;
		rt->nspans++;
	}
	qsort(rt->spans, rt->nspans, sizeof(*rt->spans), span_cmp);
	return NULL;
}

static const struct hs_alloc_desc *go_desc(const struct hs_gort_input *in)
{
	for (size_t i = 0; i < in->ndesc; i++)
		if (in->desc[i].allocator && !strcmp(in->desc[i].allocator, "go"))
			return &in->desc[i];
	return NULL;
}

static bool fact(const struct hs_alloc_desc *d, const char *name, uint64_t *v)
{
	for (size_t i = 0; i < d->nfacts; i++)
		if (!strcmp(d->facts[i].name, name)) {
			*v = d->facts[i].value;
			return true;
		}
	return false;
}

static struct hs_error *open_rt(struct hs_gort *rt, const struct hs_gort_input *in)
{
	const struct hs_alloc_desc *d = go_desc(in);
	uint64_t allspans_off, arenas_off, v;
	if (!d || !in->symbols)
		return hs_error_create(HS_ERR_NOT_FOUND, "no Go heap");
	if (!fact(d, "runtime.mheap_", &rt->mheap) || !fact(d, "mheap.allspans", &allspans_off))
		return hs_error_create(HS_ERR_HEAP, "the Go walk left no runtime.mheap_");
	if (sscanf(d->version, "go1.%d", &rt->minor) != 1)
		return hs_error_create(HS_ERR_HEAP, "Go version unknown");
	// The executable (a live process's module range may end before
	// .noptrbss, where runtime.mheap_ is).
	struct hs_symbol ms;
	rt->mod = hs_symbols_main_module(in->symbols);
	struct hs_error *e = rt->mod ? hs_symbols_lookup(in->symbols, rt->mod, "runtime.mheap_", &ms) : NULL;
	if (!rt->mod || e || ms.address != rt->mheap)
		rt->mod = hs_symbols_module_at(in->symbols, rt->mheap);
	hs_error_destroy(e);
	if (!rt->mod)
		return hs_error_create(HS_ERR_HEAP, "runtime.mheap_ is in no module");
	rt->dwarf = rt->mod->debug_found && !in->no_debuginfo;
	rt->file = hs_elf_open(rt->mod->path, rt->mod->bias);
	// Without DWARF the walk accepted go1.19 only: its values below.
	if (!rt->dwarf && rt->minor != 19)
		return hs_error_create(HS_ERR_HEAP, "no DWARF and not go1.19");
	HS_CHECK(field(rt, "runtime.mheap", "arenas", 65936, &arenas_off, NULL));
	HS_CHECK(field(rt, "runtime.mspan", "specials", 128, &rt->sp_specials, NULL));
	if (rt->minor >= 22)
		HS_CHECK(field(rt, "runtime.mspan", "largeType", 0, &rt->sp_large_type, NULL));
	else
		HS_CHECK(field(rt, "runtime.heapArena", "bitmap", 0, &rt->ha_bitmap, NULL));
	HS_CHECK(field(rt, "runtime.special", "offset", 8, &rt->special_offset, &rt->special_offset_size));
	if (!rt->dwarf)
		rt->special_offset_size = 2;
	HS_CHECK(field(rt, "runtime.special", "kind", 10, &rt->special_kind, NULL));
	HS_CHECK(field(rt, "runtime.specialfinalizer", "fn", 16, &rt->special_fin_fn, NULL));
	if (!rd64(rt, rt->mheap + arenas_off, &rt->arenas_l2))
		return hs_error_create(HS_ERR_HEAP, "runtime.mheap_.arenas cannot be read");
	// The module data: types (names), data and bss with their GC masks.
	struct hs_symbol sym;
	struct hs_error *err = hs_symbols_lookup(in->symbols, rt->mod, "runtime.firstmoduledata", &sym);
	if (err)
		return err;
	rt->moddata = sym.address;
	static const struct { const char *name; uint64_t v119; } md[] = {
		{ "types", 280 }, { "data", 208 }, { "edata", 216 }, { "bss", 224 }, { "ebss", 232 },
		{ "gcdatamask", 496 }, { "gcbssmask", 512 },
	};
	uint64_t vals[7];
	for (size_t i = 0; i < 7; i++) {
		uint64_t off;
		HS_CHECK(field(rt, "runtime.moduledata", md[i].name, md[i].v119, &off, NULL));
		if (i < 5) {
			if (!rd64(rt, rt->moddata + off, &vals[i]))
				return hs_error_create(HS_ERR_HEAP, "runtime.firstmoduledata.%s cannot be read", md[i].name);
			continue;
		}
		// bitvector{n int32; bytedata *uint8}
		uint64_t bv[2];
		if (!hs_go_read(rt, rt->moddata + off, bv, sizeof(bv)))
			return hs_error_create(HS_ERR_HEAP, "runtime.firstmoduledata.%s cannot be read", md[i].name);
		v = bv[0] & 0xffffffff;
		if (i == 5)
			rt->gcdata_n = v, rt->gcdata_bits = bv[1];
		else
			rt->gcbss_n = v, rt->gcbss_bits = bv[1];
	}
	rt->types = vals[0];
	rt->data = vals[1];
	rt->edata = vals[2];
	rt->bss = vals[3];
	rt->ebss = vals[4];
	return read_spans(rt, allspans_off);
}

struct hs_error *hs_gort_open(const struct hs_gort_input *in, struct hs_gort **ret)
{
	*ret = NULL;
	struct hs_gort *rt = calloc(1, sizeof(*rt));
	if (!rt)
		return &hs_error_nomem;
	rt->mem = in->mem;
	rt->heap = in->heap;
	struct hs_error *err = open_rt(rt, in);
	if (err) {
		hs_gort_close(rt);
		return err;
	}
	*ret = rt;
	return NULL;
}

void hs_gort_close(struct hs_gort *rt)
{
	if (!rt)
		return;
	hs_elf_close(rt->file);
	free(rt->spans);
	for (size_t i = 0; i < rt->nmasks; i++)
		free(rt->masks[i]);
	free(rt->masks);
	free(rt->tcache);
	free(rt);
}

const struct hs_go_span *hs_go_span_of(const struct hs_gort *rt, uint64_t addr)
{
	size_t lo = 0, hi = rt->nspans;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (rt->spans[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < rt->nspans && rt->spans[lo].start <= addr ? &rt->spans[lo] : NULL;
}

/* --- type descriptors ----------------------------------------------------- */

static size_t thash(uint64_t a, size_t cap)
{
	return (size_t)((a >> 3) * UINT64_C(0x9e3779b97f4a7c15) >> 20) & (cap - 1);
}

static const struct hs_go_type *tfind(const struct hs_gort *rt, uint64_t addr)
{
	if (!rt->tcap)
		return NULL;
	for (size_t h = thash(addr, rt->tcap);; h = (h + 1) & (rt->tcap - 1)) {
		if (rt->tcache[h].addr == addr)
			return &rt->tcache[h];
		if (!rt->tcache[h].addr)
			return NULL;
	}
}

static bool tgrow(struct hs_gort *rt)
{
	size_t cap = rt->tcap ? rt->tcap * 2 : 256;
	struct hs_go_type *n = calloc(cap, sizeof(*n));
	if (!n)
		return false;
	for (size_t i = 0; i < rt->tcap; i++) {
		if (!rt->tcache[i].addr)
			continue;
		size_t h = thash(rt->tcache[i].addr, cap);
		while (n[h].addr)
			h = (h + 1) & (cap - 1);
		n[h] = rt->tcache[i];
	}
	free(rt->tcache);
	rt->tcache = n;
	rt->tcap = cap;
	return true;
}

const struct hs_go_type *hs_go_type(struct hs_gort *rt, uint64_t addr)
{
	if (!addr || (addr & 7))
		return NULL;
	const struct hs_go_type *c = tfind(rt, addr);
	if (c)
		return c;
	uint8_t b[48];
	if (!hs_go_read(rt, addr, b, sizeof(b)))
		return NULL;
	struct hs_go_type t = { .addr = addr };
	uint64_t gcdata;
	memcpy(&t.size, b + HS_GO_TYPE_SIZE, 8);
	memcpy(&t.ptrbytes, b + HS_GO_TYPE_PTRBYTES, 8);
	memcpy(&gcdata, b + HS_GO_TYPE_GCDATA, 8);
	t.tflag = b[HS_GO_TYPE_TFLAG];
	t.kind = b[HS_GO_TYPE_KIND];
	if (t.ptrbytes > t.size || t.ptrbytes > MAX_TYPE_PTRBYTES || (t.ptrbytes && !t.size))
		return NULL;
	if (t.ptrbytes) {
		// go1.24: a big type's GCData is a slot for a mask built on demand.
		if (rt->minor >= 24 && (t.tflag & HS_GO_TFLAG_GCMASK_ON_DEMAND) && !rd64(rt, gcdata, &gcdata))
			gcdata = 0;
		size_t n = (size_t)((t.ptrbytes / 8 + 7) / 8);
		uint8_t *m = gcdata ? malloc(n) : NULL;
		uint8_t **ms = realloc(rt->masks, (rt->nmasks + 1) * sizeof(*ms));
		if (ms)
			rt->masks = ms;
		if (m && ms && hs_go_read(rt, gcdata, m, n)) {
			rt->masks[rt->nmasks++] = m;
			t.mask = m;
		} else {
			free(m);
		}
	}
	if ((rt->tcount + 1) * 2 > rt->tcap && !tgrow(rt))
		return NULL;
	size_t h = thash(addr, rt->tcap);
	while (rt->tcache[h].addr)
		h = (h + 1) & (rt->tcap - 1);
	rt->tcache[h] = t;
	rt->tcount++;
	return &rt->tcache[h];
}

bool hs_go_type_name(struct hs_gort *rt, uint64_t addr, char *buf, size_t len)
{
	uint8_t b[48], hdr[11];
	if (!len || !hs_go_read(rt, addr, b, sizeof(b)))
		return false;
	int32_t str;
	memcpy(&str, b + HS_GO_TYPE_STR, 4);
	if (str <= 0 || !hs_go_read(rt, rt->types + (uint64_t)str, hdr, 1))
		return false;
	// name: a flag byte, a uvarint length, the bytes.
	uint64_t n = 0;
	size_t used = 0;
	for (size_t i = 0; i < 4; i++) {
		if (!hs_go_read(rt, rt->types + (uint64_t)str + 1 + i, hdr + 1 + i, 1))
			return false;
		n |= (uint64_t)(hdr[1 + i] & 0x7f) << (7 * i);
		if (!(hdr[1 + i] & 0x80)) {
			used = i + 1;
			break;
		}
	}
	if (!used || n == 0 || n >= 4096)
		return false;
	bool star = b[HS_GO_TYPE_TFLAG] & HS_GO_TFLAG_EXTRA_STAR;
	char tmp[4096];
	if (!hs_go_read(rt, rt->types + (uint64_t)str + 1 + used, tmp, n))
		return false;
	tmp[n] = 0;
	const char *name = star && tmp[0] == '*' ? tmp + 1 : tmp;
	for (const char *p = name; *p; p++)
		if ((unsigned char)*p < 0x20)
			return false;
	snprintf(buf, len, "%s", name);
	return true;
}

uint64_t hs_go_object_type(const struct hs_gort *rt, uint64_t addr, uint64_t *data_off)
{
	*data_off = 0;
	const struct hs_go_span *s = hs_go_span_of(rt, addr);
	if (!s || rt->minor < 22 || (s->spanclass & 1))
		return 0;
	if (s->spanclass >> 1 == 0)
		return addr == s->start ? s->large_type : 0;
	if (s->elemsize <= MALLOC_HEADER_MIN)
		return 0;
	uint64_t t;
	const uint8_t *p = hs_memory_span(rt->mem, addr, 8);
	if (!p)
		return 0;
	memcpy(&t, p, 8);
	*data_off = 8;
	return t;
}

struct hs_error *hs_gort_prepare_types(struct hs_gort *rt)
{
	if (rt->minor < 22)
		return NULL;
	const struct hs_heap *h = rt->heap;
	for (size_t i = 0; i < h->n; i++) {
		const struct hs_block *b = &h->blocks[i];
		if (!hs_where_is_used(hs_block_where(b)))
			continue;
		uint64_t off, t = hs_go_object_type(rt, b->address, &off);
		if (t)
			(void)hs_go_type(rt, t);
	}
	return NULL;
}

/* --- pointer maps ----------------------------------------------------------- */

static void set_bit(uint64_t *bits, uint64_t k)
{
	bits[k / 64] |= UINT64_C(1) << (k % 64);
}

int hs_go_pointer_bits(const struct hs_gort *rt, uint64_t addr, uint64_t size, uint64_t *bits)
{
	const struct hs_go_span *s = hs_go_span_of(rt, addr);
	if (!s)
		return -1;
	if (s->spanclass & 1)
		return 0;
	uint64_t nwords = size / 8;
	memset(bits, 0, (nwords + 63) / 64 * 8);
	struct hs_memory *mem = rt->mem;
	if (rt->minor < 22) {
		// The arena's bitmap: go1.19 2 bits per word (pointer bit w%4 and
		// scan bit 4 + w%4 of byte w/4: no scan bit, no more pointers);
		// go1.20-1.21 1 bit per word.
		uint64_t ri = (addr - ARENA_BASE_OFFSET) / ARENA_BYTES, base = ri * ARENA_BYTES + ARENA_BASE_OFFSET;
		uint64_t ha;
		const uint8_t *p = ri < ARENA_L2_ENTRIES ? hs_memory_span(mem, rt->arenas_l2 + ri * 8, 8) : NULL;
		if (!p || addr + size > base + ARENA_BYTES)
			return -1;
		memcpy(&ha, p, 8);
		uint64_t w0 = (addr - base) / 8;
		if (rt->minor == 19) {
			const uint8_t *bm = hs_memory_span(mem, ha + rt->ha_bitmap + w0 / 4, (w0 + nwords + 3) / 4 - w0 / 4 + 1);
			if (!bm)
				return -1;
			for (uint64_t k = 0; k < nwords; k++) {
				uint64_t w = w0 + k;
				uint8_t byte = bm[w / 4 - w0 / 4];
				if (!(byte >> (4 + w % 4) & 1))
					break;
				if (byte >> (w % 4) & 1)
					set_bit(bits, k);
			}
			return 1;
		}
		const uint8_t *bm = hs_memory_span(mem, ha + rt->ha_bitmap + w0 / 64 * 8, ((w0 + nwords) / 64 - w0 / 64 + 1) * 8);
		if (!bm)
			return -1;
		for (uint64_t k = 0; k < nwords; k++) {
			uint64_t w = w0 + k;
			if (bm[w / 8 - w0 / 64 * 8] >> (w % 8) & 1)
				set_bit(bits, k);
		}
		return 1;
	}
	if (s->spanclass >> 1 != 0 && s->elemsize <= MALLOC_HEADER_MIN) {
		// go1.22+: heap bits at the end of the span, one per word of it.
		uint64_t bmsize = (s->end - s->start) / 64, k0 = (addr - s->start) / 8;
		const uint8_t *bm = hs_memory_span(mem, s->end - bmsize, bmsize);
		if (!bm || (k0 + nwords + 7) / 8 > bmsize)
			return -1;
		for (uint64_t k = 0; k < nwords; k++) {
			uint64_t w = k0 + k;
			if (bm[w / 8] >> (w % 8) & 1)
				set_bit(bits, k);
		}
		return 1;
	}
	// A malloc header or the span's largeType: the type's mask, tiled.
	uint64_t off, ta = hs_go_object_type(rt, addr, &off);
	const struct hs_go_type *t = ta ? tfind(rt, ta) : NULL;
	if (!t)
		return -1;
	if (!t->ptrbytes)
		return 0;
	if (!t->mask || t->ptrbytes < 8)
		return -1;
	uint64_t pw = t->ptrbytes / 8;
	for (uint64_t o = off; o + t->ptrbytes <= size; o += t->size)
		for (uint64_t j = 0; j < pw; j++)
			if (t->mask[j / 8] >> (j % 8) & 1)
				set_bit(bits, o / 8 + j);
	return 1;
}
