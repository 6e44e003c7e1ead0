/* go_layout.h - the Go runtime's heap structures (linux/amd64) the Go walker
 * reads, each by its DWARF name, with the go1.19 values as the fallback for
 * a binary built without DWARF (-ldflags=-w).
 *
 * Source: the DWARF of go1.19.8 binaries (Debian 12 golang-1.19-go), read with
 * gdb and checked on cores (docs/go.md; /work/shared/reference/go-runtime.md
 * has the same rows for 1.21-1.24).  The walker looks every row up in the
 * executable's DWARF by name; only without DWARF does it take the built-in
 * row, and only for the version the row was measured on.
 *
 *   runtime.mheap_ (one global):  allspans []*mspan (every mspan ever made,
 *     dead ones too), arenas [1 << arenaL1Bits]*[1 << arenaL2Bits]*heapArena,
 *     allArenas []arenaIdx, curArena {base, end} (the arena space not yet
 *     grown into), spanalloc/cachealloc (fixallocs of mspan and mcache
 *     structs: inuse bytes).
 *   runtime.heapArena (off-heap, one per 64 MiB arena):  spans[pagesPerArena]
 *     *mspan, the span of every page.
 *   runtime.mspan:  startAddr, npages, freeindex, nelems, allocBits (*gcBits,
 *     one bit per slot), allocCount, spanclass (sizeclass << 1 | noscan),
 *     state (mSpanStateBox: 0 dead, 1 in use, 2 manual), elemsize.
 *   runtime.allp ([]*p) and runtime.p.mcache: each P's mcache (its cached
 *     spans and tiny block), a struct off the heap.
 * A slice header is {array, len, cap} (Go's ABI).
 */
#ifndef HS_GO_LAYOUT_H
#define HS_GO_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A field of `size` bytes (a DWARF member's size: 1, 2, 4 or 8; more is
 * read as its first word) at p, of the little-endian target. */
static inline uint64_t hs_go_ld(const uint8_t *p, uint64_t size)
{
	uint64_t v = 0;
	memcpy(&v, p, size > 8 ? 8 : size);
	return v;
}

/* A uvarint (encoding/binary) of at most 10 bytes from p[0..len); *used is
 * its length, 0 when it does not end there. */
static inline uint64_t hs_go_uvarint(const uint8_t *p, size_t len, size_t *used)
{
	uint64_t v = 0;
	for (size_t i = 0; i < len && i < 10; i++) {
		v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			*used = i + 1;
			return v;
		}
	}
	*used = 0;
	return 0;
}

struct hs_elf_file;
/* The Go release an executable's .go.buildinfo names ("go1.22.4") into buf
 * (alloc_go.c); false when f has no .go.buildinfo (no Go program, or one
 * older than go1.18), true with buf "" when the release is not written there. */
bool hs_go_buildinfo_version(struct hs_elf_file *f, char *buf, size_t len);

/* X(id, struct, member (NULL: the struct's size), go1.19 offset, go1.19 size) */
#define HS_GO_FIELDS(X) \
	X(MH_SIZEOF,            "runtime.mheap",     NULL,               92672,   92672) \
	X(MH_SWEEPGEN,          "runtime.mheap",     "sweepgen",         65848,   4) \
	X(MH_ALLSPANS,          "runtime.mheap",     "allspans",         65856,   24) \
	X(MH_ARENAS,            "runtime.mheap",     "arenas",           65936,   8) \
	X(MH_ALLARENAS,         "runtime.mheap",     "allArenas",        66016,   24) \
	X(MH_CURARENA_BASE,     "runtime.mheap",     "curArena.base",    66088,   8) \
	X(MH_CURARENA_END,      "runtime.mheap",     "curArena.end",     66096,   8) \
	X(MH_SPANALLOC_INUSE,   "runtime.mheap",     "spanalloc.inuse",  92272,   8) \
	X(MH_CACHEALLOC_INUSE,  "runtime.mheap",     "cachealloc.inuse", 92344,   8) \
	X(HA_SIZEOF,            "runtime.heapArena", NULL,               2165776, 2165776) \
	X(HA_SPANS,             "runtime.heapArena", "spans",            2097152, 65536) \
	X(SP_SIZEOF,            "runtime.mspan",     NULL,               144,     144) \
	X(SP_STARTADDR,         "runtime.mspan",     "startAddr",        24,      8) \
	X(SP_NPAGES,            "runtime.mspan",     "npages",           32,      8) \
	X(SP_FREEINDEX,         "runtime.mspan",     "freeindex",        48,      8) \
	X(SP_NELEMS,            "runtime.mspan",     "nelems",           56,      8) \
	X(SP_ALLOCBITS,         "runtime.mspan",     "allocBits",        72,      8) \
	X(SP_SWEEPGEN,          "runtime.mspan",     "sweepgen",         88,      4) \
	X(SP_ALLOCCOUNT,        "runtime.mspan",     "allocCount",       96,      2) \
	X(SP_SPANCLASS,         "runtime.mspan",     "spanclass",        98,      1) \
	X(SP_STATE,             "runtime.mspan",     "state.s",          99,      1) \
	X(SP_ELEMSIZE,          "runtime.mspan",     "elemsize",         104,     8) \
	X(P_MCACHE,             "runtime.p",         "mcache",           64,      8) \
	X(MC_SIZEOF,            "runtime.mcache",    NULL,               1200,    1200)

#define HS_GO_ID(id, st, mem, off, size) HS_GO_##id,
enum hs_go_field { HS_GO_FIELDS(HS_GO_ID) HS_GO_NFIELDS };
#undef HS_GO_ID

struct hs_go_field_def { const char *type, *member; uint32_t off119, size119; };

#define HS_GO_DEF(id, st, mem, off, size) { st, mem, off, size },
static const struct hs_go_field_def hs_go_fields[HS_GO_NFIELDS] = { HS_GO_FIELDS(HS_GO_DEF) };
#undef HS_GO_DEF

/* Constants of linux/amd64 (runtime/malloc.go), the same in every version
 * heapscope reads; the walker checks them against DWARF sizes where it can
 * (heapArena.spans has pagesPerArena entries). */
#define HS_GO_PAGE_SIZE          UINT64_C(8192)                  /* _PageSize */
#define HS_GO_ARENA_BYTES        (UINT64_C(64) << 20)           /* heapArenaBytes */
#define HS_GO_ARENA_BASE_OFFSET  UINT64_C(0xffff800000000000)   /* arenaBaseOffset */
#define HS_GO_ARENA_L2_ENTRIES   (UINT64_C(1) << 22)            /* 1 << arenaL2Bits (arenaL1Bits = 0) */
#define HS_GO_NUM_SIZE_CLASSES   68                              /* _NumSizeClasses */
#define HS_GO_MAX_SMALL_SIZE     UINT64_C(32768)                 /* _MaxSmallSize */

/* The releases the walker has been checked on (with DWARF: Debian's 1.19,
 * 1.21-1.23 from bookworm-backports, 1.24), and the one the built-in rows are
 * for.  From go1.22 what the walk reads differs only in field sizes and
 * offsets (freeindex, nelems: uint16), all from DWARF; small spans end with
 * heap bits or hold malloc headers inside their slots, both within
 * nelems * elemsize as the runtime counts it. */
#define HS_GO_VERSIONS           "go1.19, go1.21, go1.22, go1.23, go1.24"
#define HS_GO_BUILTIN_VERSION    "go1.19"

#endif
