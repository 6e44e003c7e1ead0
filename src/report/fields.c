/* fields.c - see fields.h. */
#include <dwarf.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "expr.h"
#include "fields.h"
#include "glibc_layouts.h"
#include "graph.h"
#include "locals.h"
#include "output.h"
#include "rtti.h"
#include "session.h"
#include "types.h"

#define MAX_NEST 2              /* structs inside structs, decoded (base classes: 8) */
#define MAX_ELEMS 4             /* array elements shown */
#define MAX_CHARS 48            /* of a char array */

void hs_describe_pointer(struct hs_session *s, uint64_t v, char *buf, size_t len)
{
	buf[0] = 0;
	if (v < 4096)
		return;
	ptrdiff_t k = hs_heap_find(&s->heap, v);
	if (k >= 0) {
		const struct hs_block *b = &s->heap.blocks[k];
		unsigned w = hs_block_where(b);
		const char *t = hs_where_is_used(w) ? hs_block_type(s->types, (size_t)k) : NULL;
		char what[160];
		if (t)
			snprintf(what, sizeof(what), "%s", t);
		else if (hs_where_is_used(w))
			snprintf(what, sizeof(what), "? (%" PRIu64 " bytes)", hs_block_size(b));
		else
			snprintf(what, sizeof(what), "%s block", hs_where_name(w));
		if (v == b->address)
			snprintf(buf, len, "-> %s 0x%" PRIx64, what, b->address);
		else
			snprintf(buf, len, "-> %s 0x%" PRIx64 "+%" PRIu64, what, b->address, v - b->address);
		return;
	}
	char sym[256];
	if (s->symbols && hs_symbols_describe(s->symbols, v, sym, sizeof(sym))) {
		snprintf(buf, len, "-> %s", sym);
		return;
	}
	const struct hs_notes *n = &s->target->notes;
	for (size_t i = 0; i < n->nthreads; i++)
		if (n->threads[i].stack_lo <= v && v < n->threads[i].stack_hi) {
			snprintf(buf, len, "-> thread %d stack", n->threads[i].tid);
			return;
		}
}

/* Members, from DWARF. */

struct decode {
	struct hs_session *s;
	uint64_t base, limit;        /* the block; bytes that may be read from it */
	struct hs_field *v;
	size_t n, max;
};

static bool type_of(Dwarf_Die *die, Dwarf_Die *ret)
{
	Dwarf_Attribute attr;
	return dwarf_attr_integrate(die, DW_AT_type, &attr) && dwarf_formref_die(&attr, ret) &&
	       dwarf_peel_type(ret, ret) == 0;
}

static uint64_t type_size(Dwarf_Die *t)
{
	if (dwarf_tag(t) == DW_TAG_pointer_type)
		return 8;
	Dwarf_Word size;
	return dwarf_aggregate_size(t, &size) == 0 ? size : 0;
}

static bool read_bytes(struct decode *d, uint64_t off, void *buf, uint64_t len)
{
	if (off + len > d->limit || off + len < off)
		return false;
	struct hs_error *err = hs_memory_read(&d->s->target->mem, d->base + off, buf, len);
	if (err) {
		hs_error_destroy(err);
		return false;
	}
	return true;
}

// A scalar (base type, enum, pointer) of at most 8 bytes as text.
static bool scalar_text(struct decode *d, Dwarf_Die *t, uint64_t off, char *buf, size_t len, uint64_t *value_ret)
{
	uint64_t size = type_size(t);
	uint64_t v = 0;
	if (!size || size > 8 || !read_bytes(d, off, &v, size))
		return false;
	*value_ret = v;
	int tag = dwarf_tag(t);
	if (tag == DW_TAG_pointer_type) {
		if (!v) {
			snprintf(buf, len, "NULL");
			return true;
		}
		char to[200];
		hs_describe_pointer(d->s, v, to, sizeof(to));
		snprintf(buf, len, "0x%" PRIx64 "%s%s", v, to[0] ? " " : "", to);
		return true;
	}
	Dwarf_Word enc = DW_ATE_unsigned;
	Dwarf_Attribute attr;
	if (tag == DW_TAG_enumeration_type) {
		Dwarf_Die e;
		if (dwarf_child(t, &e) == 0) {
			do {
				Dwarf_Sword sv;
				if (dwarf_tag(&e) == DW_TAG_enumerator && dwarf_attr(&e, DW_AT_const_value, &attr) &&
				    dwarf_formsdata(&attr, &sv) == 0 && (uint64_t)sv == v && dwarf_diename(&e)) {
					snprintf(buf, len, "%s", dwarf_diename(&e));
					return true;
				}
			} while (dwarf_siblingof(&e, &e) == 0);
		}
		snprintf(buf, len, "%" PRIu64, v);
		return true;
	}
	if (tag != DW_TAG_base_type || !dwarf_attr(t, DW_AT_encoding, &attr) || dwarf_formudata(&attr, &enc) != 0)
		return false;
	int64_t sv = size < 8 && (v >> (8 * size - 1)) & 1 ? (int64_t)(v | (~UINT64_C(0) << (8 * size))) : (int64_t)v;
	switch (enc) {
	case DW_ATE_signed:
		snprintf(buf, len, "%" PRId64, sv);
		return true;
	case DW_ATE_boolean:
		snprintf(buf, len, "%s", v ? "true" : "false");
		return true;
	case DW_ATE_float:
		if (size == 8) {
			double f;
			memcpy(&f, &v, 8);
			snprintf(buf, len, "%g", f);
			return true;
		}
		if (size == 4) {
			float f;
			memcpy(&f, &v, 4);
			snprintf(buf, len, "%g", (double)f);
			return true;
		}
		return false;
	case DW_ATE_signed_char:
	case DW_ATE_unsigned_char:
		if (v >= 0x20 && v < 0x7f)
			snprintf(buf, len, "%" PRId64 " '%c'", enc == DW_ATE_signed_char ? sv : (int64_t)v, (char)v);
		else
			snprintf(buf, len, "%" PRId64, enc == DW_ATE_signed_char ? sv : (int64_t)v);
		return true;
	default:
		snprintf(buf, len, "%" PRIu64, v);
		return true;
	}
}

static bool is_char(Dwarf_Die *t)
{
	Dwarf_Attribute attr;
	Dwarf_Word enc;
	return dwarf_tag(t) == DW_TAG_base_type && type_size(t) == 1 && dwarf_attr(t, DW_AT_encoding, &attr) &&
	       dwarf_formudata(&attr, &enc) == 0 && (enc == DW_ATE_signed_char || enc == DW_ATE_unsigned_char);
}

static uint64_t array_length(Dwarf_Die *array, Dwarf_Die *elem)
{
	uint64_t total = type_size(array), es = type_size(elem);
	return es ? total / es : 0;
}

static void array_text(struct decode *d, Dwarf_Die *arr, Dwarf_Die *elem, uint64_t off, char *buf, size_t len)
{
	uint64_t n = array_length(arr, elem), es = type_size(elem);
	if (is_char(elem)) {
		char chars[MAX_CHARS + 1];
		uint64_t take = n < MAX_CHARS ? n : MAX_CHARS;
		if (!read_bytes(d, off, chars, take)) {
			snprintf(buf, len, "(not readable)");
			return;
		}
		size_t used = (size_t)snprintf(buf, len, "\"");
		for (uint64_t k = 0; k < take && chars[k] && used + 6 < len; k++) {
			unsigned char ch = (unsigned char)chars[k];
			used += (size_t)snprintf(buf + used, len - used, ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\' ?
						 "%c" : "\\x%02x", ch);
		}
		snprintf(buf + used, len - used, "\"%s", take < n && chars[take - 1] ? "..." : "");
		return;
	}
	size_t used = (size_t)snprintf(buf, len, "[");
	for (uint64_t k = 0; k < n && k < MAX_ELEMS && used < len; k++) {
		char one[200];
		uint64_t v;
		if (!scalar_text(d, elem, off + k * es, one, sizeof(one), &v))
			snprintf(one, sizeof(one), "...");
		used += (size_t)snprintf(buf + used, len - used, "%s%s", k ? ", " : "", one);
	}
	if (used < len)
		snprintf(buf + used, len - used, n > MAX_ELEMS ? ", ... (%" PRIu64 ")]" : "]", n);
}

static struct hs_field *add(struct decode *d, uint64_t off, uint64_t size, const char *prefix, const char *name)
{
	if (d->n == d->max || off >= d->limit)
		return NULL;
	struct hs_field *f = &d->v[d->n++];
	memset(f, 0, sizeof(*f));
	f->offset = off;
	f->size = size;
	snprintf(f->name, sizeof(f->name), "%s%s", prefix, name ? name : "?");
	return f;
}

static void members(struct decode *d, Dwarf_Die *type, uint64_t base, const char *prefix, int depth)
{
	Dwarf_Die m;
	if (dwarf_child(type, &m) != 0)
		return;
	do {
		int mtag = dwarf_tag(&m);
		if ((mtag != DW_TAG_member && mtag != DW_TAG_inheritance) || d->n == d->max)
			continue;
		uint64_t off;
		Dwarf_Die t;
		if (!hs_dwarf_member_location(&m, &off) || !type_of(&m, &t))
			continue;
		off += base;
		// A base class's members are the object's own (C++ prints them so too).
		if (mtag == DW_TAG_inheritance) {
			if (depth < 8)
				members(d, &t, off, prefix, depth + 1);
			continue;
		}
		if (off >= d->limit)
			return;
		const char *name = dwarf_diename(&m);
		int tag = dwarf_tag(&t);
		if ((tag == DW_TAG_structure_type || tag == DW_TAG_class_type || tag == DW_TAG_union_type) &&
		    depth < MAX_NEST && name && strlen(prefix) < 64) {
			char sub[96];
			snprintf(sub, sizeof(sub), "%s%s.", prefix, name);
			if (tag != DW_TAG_union_type) {
				members(d, &t, off, sub, depth + 1);
				continue;
			}
		}
		struct hs_field *f = add(d, off, type_size(&t), prefix, name);
		if (!f)
			return;
		if (dwarf_hasattr(&m, DW_AT_bit_size)) {
			snprintf(f->text, sizeof(f->text), "(a bit-field)");
			continue;
		}
		Dwarf_Die elem;
		if (tag == DW_TAG_array_type && type_of(&t, &elem)) {
			array_text(d, &t, &elem, off, f->text, sizeof(f->text));
			continue;
		}
		if (scalar_text(d, &t, off, f->text, sizeof(f->text), &f->value)) {
			f->has_value = true;
			f->pointer = tag == DW_TAG_pointer_type;
			continue;
		}
		snprintf(f->text, sizeof(f->text), "(%" PRIu64 " bytes)", f->size);
	} while (dwarf_siblingof(&m, &m) == 0);
}

void hs_json_fields(struct hs_out *o, const struct hs_field *f, size_t n, bool sizes)
{
	hs_json_key(o, "fields");
	hs_json_begin_array(o);
	for (size_t j = 0; j < n && !o->stopped; j++) {
		hs_json_begin_object(o);
		hs_json_kstr(o, "name", f[j].name);
		hs_json_ku64(o, "offset", f[j].offset);
		if (sizes)
			hs_json_ku64(o, "size", f[j].size);
		hs_json_key(o, "value");
		if (f[j].has_value)
			hs_json_u64(o, f[j].value);
		else
			hs_json_null(o);
		hs_json_kstr(o, "text", f[j].text);
		hs_json_end_object(o);
	}
	hs_json_end_array(o);
}

size_t hs_block_fields(struct hs_session *s, size_t i, uint64_t limit, struct hs_field *ret, size_t max)
{
	Dwarf_Die type;
	if (i >= s->heap.n || !hs_block_type_die(s->types, i, &type))
		return 0;
	const struct hs_block *b = &s->heap.blocks[i];
	uint64_t size = hs_block_size(b);
	struct decode d = { s, b->address, limit < size ? limit : size, ret, 0, max };
	members(&d, &type, 0, "", 0);
	return d.n;
}

/* Free-list links. */

bool hs_free_link(struct hs_session *s, size_t block, uint64_t addr, uint64_t stored, uint64_t *ret,
		  uint64_t *to_block_ret)
{
	if (block >= s->heap.n || s->heap.blocks[block].address != addr)
		return false;
	const char *where = hs_where_name(hs_block_where(&s->heap.blocks[block]));
	if (strcmp(where, "tcache") && strcmp(where, "fastbin"))
		return false;
	for (size_t d = 0; d < s->ndesc; d++) {
		if (strcmp(s->desc[d].allocator, "glibc"))
			continue;
		for (size_t k = 0; k < s->desc[d].nfacts; k++)
			if (!strcmp(s->desc[d].facts[k].name, "safe_linking") && s->desc[d].facts[k].value) {
				*ret = hs_glibc_reveal(addr, stored);
				// A fastbin's fd is a chunk header, a tcache next the user's memory.
				*to_block_ret = strcmp(where, "fastbin") ? 0 : HS_GLIBC_CHUNK_HDR;
				return true;
			}
	}
	return false;
}

/* Places outside the heap. */

static void perms_of(const struct hs_segment *seg, char buf[4])
{
	buf[0] = seg->flags & HS_SEG_R ? 'r' : '-';
	buf[1] = seg->flags & HS_SEG_W ? 'w' : '-';
	buf[2] = seg->flags & HS_SEG_X ? 'x' : '-';
	buf[3] = 0;
}

void hs_place_of(struct hs_session *s, uint64_t addr, struct hs_place *p)
{
	memset(p, 0, sizeof(*p));
	const struct hs_notes *n = &s->target->notes;
	const struct hs_segment *seg = hs_memory_segment(&s->target->mem, addr);
	for (size_t i = 0; i < n->nfiles; i++)
		if (n->files[i].start <= addr && addr < n->files[i].end) {
			snprintf(p->mapping, sizeof(p->mapping), "%s", n->files[i].path ? n->files[i].path : "");
			p->start = n->files[i].start;
			p->end = n->files[i].end;
		}
	if (seg) {
		p->start = seg->start;
		p->end = seg->end;
		perms_of(seg, p->perms);
	}
	uint64_t v;
	struct hs_error *err = hs_memory_read_u64(&s->target->mem, addr & ~UINT64_C(7), &v);
	p->readable = !err;
	p->value = err ? 0 : v;
	hs_error_destroy(err);
	if (!seg && !p->mapping[0]) {
		p->kind = "unmapped";
		snprintf(p->what, sizeof(p->what), "not mapped in the target");
		return;
	}
	// TLS variables (the executable's): a thread's TLS block lies in its stack's mapping.
	const struct hs_local *tls;
	size_t ntls;
	hs_locals_tls(hs_session_locals(s), &tls, &ntls);
	for (size_t i = 0; i < ntls; i++)
		if (tls[i].start <= addr && addr < tls[i].end) {
			p->kind = "tls";
			p->tid = tls[i].tid;
			if (addr == tls[i].start)
				snprintf(p->what, sizeof(p->what), "thread %d TLS %s", tls[i].tid, tls[i].name);
			else
				snprintf(p->what, sizeof(p->what), "thread %d TLS %s+%" PRIu64, tls[i].tid, tls[i].name,
					 addr - tls[i].start);
			return;
		}
	// A thread's stack: the frame (and the local variable) it lies in.
	for (size_t i = 0; i < n->nthreads; i++) {
		const struct hs_thread *t = &n->threads[i];
		bool in = t->stack_lo <= addr && addr < t->stack_hi;
		bool below = seg && seg->start <= t->regs[HS_REG_RSP] && t->regs[HS_REG_RSP] < seg->end;
		if (!in && !below)
			continue;
		p->kind = "stack";
		p->tid = t->tid;
		char where[256], fn[256], dfn[256];
		if (!in)
			snprintf(p->what, sizeof(p->what), "thread %d stack, below its stack pointer (unused)", t->tid);
		else if (hs_local_name(hs_session_locals(s), t->tid, addr, where, sizeof(where)))
			snprintf(p->what, sizeof(p->what), "%s", where);
		else if (hs_stack_frame_function(s, t->tid, addr, fn, sizeof(fn)) && (hs_demangle(fn, dfn, sizeof(dfn)), 1))
			snprintf(p->what, sizeof(p->what), "thread %d stack, frame of %s()", t->tid, dfn);
		else
			snprintf(p->what, sizeof(p->what), "thread %d stack", t->tid);
		return;
	}
	struct hs_symbol sym;
	uint64_t off;
	char name[256];
	if (s->symbols && hs_symbols_addr_symbol(s->symbols, addr, &sym, &off) && sym.is_object) {
		hs_demangle(sym.name, name, sizeof(name));
		p->kind = "global";
		if (off)
			snprintf(p->what, sizeof(p->what), "%s+0x%" PRIx64, name, off);
		else
			snprintf(p->what, sizeof(p->what), "%s", name);
		return;
	}
	if (s->symbols && hs_symbols_describe(s->symbols, addr, name, sizeof(name))) {
		p->kind = p->mapping[0] ? "file" : "module";
		snprintf(p->what, sizeof(p->what), "%s", name);
		return;
	}
	p->kind = p->mapping[0] ? "file" : "anonymous";
	snprintf(p->what, sizeof(p->what), "%s", p->mapping[0] ? p->mapping : "anonymous memory");
}
