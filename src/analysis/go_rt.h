/* go_rt.h - the Go runtime as the analysis stages read it (after the walk):
 * spans, pointer maps, type descriptors, module data, specials.  The heap
 * walk (alloc_go.c) finds the objects; this says which of their words are
 * pointers (go_mark.c: roots and precise scanning) and what their types are
 * called (go_types.c).
 *
 * Offsets are looked up in the executable's DWARF by name; without DWARF the
 * go1.19 values (/work/shared/reference/go-runtime.md §8) are used, the only
 * release the walk accepts without DWARF.  Reads of the executable's
 * read-only segments (type descriptors, names, GC masks) fall back to the
 * file: a kernel core leaves them out.
 */
#ifndef HS_GO_RT_H
#define HS_GO_RT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "error.h"

struct hs_alloc_desc;
struct hs_heap;
struct hs_memory;
struct hs_module;
struct hs_elf_file;
struct hs_symbols;

struct hs_go_span {
	uint64_t start, end, elemsize, mspan, large_type, specials;
	uint8_t spanclass;
};

/* abi.Type (runtime._type before go1.21): the same layout in every release read. */
#define HS_GO_TYPE_SIZE      0
#define HS_GO_TYPE_PTRBYTES  8
#define HS_GO_TYPE_TFLAG     20
#define HS_GO_TYPE_KIND      23
#define HS_GO_TYPE_GCDATA    32
#define HS_GO_TYPE_STR       40
#define HS_GO_PTRTYPE_ELEM   48
#define HS_GO_TFLAG_EXTRA_STAR 2
#define HS_GO_TFLAG_GCMASK_ON_DEMAND 16
#define HS_GO_KIND_DIRECT_IFACE 32
#define HS_GO_KIND_MASK      31
#define HS_GO_KIND_PTR       22

/* A type's pointer mask: one bit per word of its PtrBytes (size: bytes). */
struct hs_go_type {
	uint64_t addr, size, ptrbytes;
	uint8_t kind, tflag;
	const uint8_t *mask;        /* NULL: unknown (scan conservatively) */
};

struct hs_gort {
	struct hs_memory *mem;      /* the input's: the target's memory and walked heap */
	const struct hs_heap *heap;
	struct hs_module *mod;
	struct hs_elf_file *file;
	int minor;                  /* 19 for go1.19.8 */
	bool dwarf;
	uint64_t mheap, arenas_l2, moddata, types;   /* moduledata.types */
	uint64_t data, edata, bss, ebss;
	uint64_t gcdata_n, gcdata_bits, gcbss_n, gcbss_bits;
	uint64_t ha_bitmap;         /* heapArena.bitmap (go1.19-1.21) */
	uint64_t sp_specials, sp_large_type;
	uint64_t special_offset, special_offset_size, special_kind, special_fin_fn;
	struct hs_go_span *spans;   /* in-use spans, sorted */
	size_t nspans;
	/* type descriptors read so far: open addressing on addr */
	struct hs_go_type *tcache;
	size_t tcap, tcount;
	uint8_t **masks;            /* owned mask bytes */
	size_t nmasks;
};

/* What hs_gort_open reads (the session fills it in: session.c).  mem and
 * heap must outlive the runtime opened (it keeps them); symbols NULL, or no
 * "go" description among desc, is HS_ERR_NOT_FOUND. */
struct hs_gort_input {
	struct hs_memory *mem;
	const struct hs_heap *heap;                /* the walked heap (its blocks) */
	struct hs_symbols *symbols;
	const struct hs_alloc_desc *desc;          /* the walked allocators' descriptions */
	size_t ndesc;
	bool no_debuginfo;                         /* --no-debuginfo: read as without DWARF */
};

/* The Go runtime of the walked heap, or HS_ERR_NOT_FOUND when it has no Go
 * allocator. */
struct hs_error *hs_gort_open(const struct hs_gort_input *in, struct hs_gort **ret);
void hs_gort_close(struct hs_gort *rt);
/* A field's offset by DWARF name (the go1.19 value without DWARF). */
struct hs_error *hs_gort_field(struct hs_gort *rt, const char *type, const char *member, uint64_t v119,
			       uint64_t *off);
/* Bytes of the target at addr: the core, else the executable's file. */
bool hs_go_read(struct hs_gort *rt, uint64_t addr, void *buf, size_t len);
const struct hs_go_span *hs_go_span_of(const struct hs_gort *rt, uint64_t addr);
/* The descriptor at addr (cached), or NULL when it cannot be read. */
const struct hs_go_type *hs_go_type(struct hs_gort *rt, uint64_t addr);
/* The descriptor's name ("main.Conn", "*bytes.Buffer") into buf. */
bool hs_go_type_name(struct hs_gort *rt, uint64_t addr, char *buf, size_t len);
/* Which words of the object [addr, addr + size) hold pointers: bit k of
 * bits for word k (bits has (size/8 + 63)/64 words, cleared here).  Returns
 * 0 no pointers, 1 bits filled, -1 unknown (scan every word).  Thread safe
 * once hs_gort_prepare_types has read every descriptor it needs. */
int hs_go_pointer_bits(const struct hs_gort *rt, uint64_t addr, uint64_t size, uint64_t *bits);
/* Read (single-threaded) the descriptors of every header- or
 * largeType-typed object of the heap, so hs_go_pointer_bits needs none. */
struct hs_error *hs_gort_prepare_types(struct hs_gort *rt);
/* The type word of a header- or largeType-typed object, or 0. */
uint64_t hs_go_object_type(const struct hs_gort *rt, uint64_t addr, uint64_t *data_off);

#endif
