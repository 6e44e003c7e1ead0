/* glibc_layouts.h - glibc ptmalloc struct layouts (x86-64), one row per
 * layout generation, each row with its source.
 *
 * The walker never uses a numeric offset of its own: it reads every field
 * through a struct hs_glibc_layout, which comes from this table (chosen by the
 * version banner and confirmed by feature checks), from libc's DWARF (same
 * struct, filled at run time), or from the table adjusted by user overrides.
 * HS_GLIBC_ABSENT marks a field that a generation does not have.
 *
 * Constants that did not change from 2.26 to 2.41 are below as macros, with
 * where they come from (malloc/malloc.c, malloc/arena.c, x86-64).
 */
#ifndef HS_GLIBC_LAYOUTS_H
#define HS_GLIBC_LAYOUTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HS_GLIBC_ABSENT 0xffffu

/* Chunk header bits (malloc.c: PREV_INUSE, IS_MMAPPED, NON_MAIN_ARENA). */
#define HS_GLIBC_PREV_INUSE     UINT64_C(1)
#define HS_GLIBC_IS_MMAPPED     UINT64_C(2)
#define HS_GLIBC_NON_MAIN_ARENA UINT64_C(4)
#define HS_GLIBC_SIZE_BITS      UINT64_C(7)
/* malloc_state.flags: NONCONTIGUOUS_BIT (main arena grown by mmap, not sbrk). */
#define HS_GLIBC_NONCONTIGUOUS  2u
/* SIZE_SZ 8, MALLOC_ALIGNMENT 16 = 2 * SIZE_SZ, CHUNK_HDR_SZ 16, MINSIZE 32. */
#define HS_GLIBC_SIZE_SZ        8u
#define HS_GLIBC_ALIGN          16u
#define HS_GLIBC_CHUNK_HDR      16u
#define HS_GLIBC_MINSIZE        32u
/* struct malloc_chunk: mchunk_prev_size, mchunk_size, then (free chunks
 * only) fd, bk, and in large bins fd_nextsize, bk_nextsize; the user's memory
 * (chunk2mem) starts at HS_GLIBC_CHUNK_HDR, where fd would be. */
#define HS_GLIBC_CHUNK_PREV_SIZE 0u
#define HS_GLIBC_CHUNK_SIZE      8u
#define HS_GLIBC_CHUNK_FD        16u
#define HS_GLIBC_CHUNK_BK        24u
#define HS_GLIBC_CHUNK_FD_NEXTSIZE 32u
#define HS_GLIBC_CHUNK_BK_NEXTSIZE 40u
/* Where the size word of the chunk holding user pointer mem is. */
#define HS_GLIBC_MEM_SIZE_WORD(mem) ((mem) - HS_GLIBC_CHUNK_HDR + HS_GLIBC_CHUNK_SIZE)
/* Safe-linking (2.32+, malloc.c PROTECT_PTR/REVEAL_PTR): a tcache next or
 * fastbin fd stored at address pos holds ptr ^ (pos >> 12). */
#define HS_GLIBC_SAFE_LINK_SHIFT 12u
static inline uint64_t hs_glibc_reveal(uint64_t pos, uint64_t stored)
{
	return stored ^ (pos >> HS_GLIBC_SAFE_LINK_SHIFT);
}

/* Threads (sysdeps/x86_64/nptl/tls.h, elf/dl-tls.c): the TCB (tcbhead_t) is
 * at fs_base and its second word is the dtv pointer; dtv_t entries are 16
 * bytes (the block's address, then to_free), dtv[-1] holds the number of
 * entries and dtv[m] module m's TLS block; the executable is module 1. */
#define HS_GLIBC_TCB_DTV         8u
#define HS_GLIBC_DTV_ENTRY       16u
#define HS_GLIBC_DTV_EXE_MODULE  1u

/* NBINS 128 (bins[] holds bins 1..127 as fd/bk pairs), NSMALLBINS 64,
 * NFASTBINS 10 (fastbin_index(request2size(MAX_FAST_SIZE)) + 1). */
#define HS_GLIBC_NBINS          128u
#define HS_GLIBC_NSMALLBINS     64u
#define HS_GLIBC_NFASTBINS      10u
/* HEAP_MAX_SIZE = 2 * DEFAULT_MMAP_THRESHOLD_MAX = 2 * 4 MiB * sizeof(long). */
#define HS_GLIBC_HEAP_MAX       (UINT64_C(64) << 20)
/* tcache: TCACHE_MAX_BINS 64; counts were char until 2.29, uint16_t since 2.30
 * (MAX_TCACHE_COUNT UINT16_MAX). */
#define HS_GLIBC_TCACHE_MAX_BINS 64u
#define HS_GLIBC_TCACHE_COUNT_MAX 65535u

struct hs_glibc_layout {
	const char *name;          /* "2.35-2.41", or "DWARF" */
	unsigned first, last;      /* versions covered, major * 100 + minor */
	const char *source;        /* where the numbers come from */

	/* struct malloc_state */
	uint16_t ms_flags, ms_have_fastchunks, ms_fastbins, ms_top, ms_last_remainder;
	uint16_t ms_bins, ms_binmap, ms_next, ms_next_free, ms_attached_threads;
	uint16_t ms_system_mem, ms_max_system_mem, ms_sizeof;

	/* struct malloc_par (mp_) */
	uint16_t mp_trim_threshold, mp_top_pad, mp_mmap_threshold, mp_arena_test, mp_arena_max;
	uint16_t mp_thp_pagesize, mp_hp_pagesize;
	uint16_t mp_n_mmaps, mp_n_mmaps_max, mp_max_n_mmaps, mp_mmapped_mem, mp_max_mmapped_mem;
	uint16_t mp_sbrk_base, mp_tcache_bins, mp_tcache_max_bytes, mp_tcache_count;
	uint16_t mp_sizeof;

	/* heap_info (struct _heap_info, malloc/arena.c) */
	uint16_t hi_ar_ptr, hi_prev, hi_size, hi_mprotect_size, hi_pagesize, hi_sizeof;

	/* tcache_perthread_struct and tcache_entry */
	uint16_t tc_counts, tc_count_width, tc_entries, tc_nbins, tc_sizeof;
	uint16_t te_next, te_key;

	bool key_is_pointer;       /* 2.29-2.33: key = the owning tcache; 2.34+: random */
	bool safe_linking;         /* 2.32+: tcache next and fastbin fd are PROTECT_PTR'd */
};

extern const struct hs_glibc_layout hs_glibc_layouts[];
extern const size_t hs_glibc_nlayouts;

/* Is size the sizeof(heap_info) of some row (an arena that follows its
 * heap_info starts that far into the heap)? */
bool hs_glibc_heap_info_size_known(uint64_t size);

/* The row covering version (major * 100 + minor), or NULL. */
const struct hs_glibc_layout *hs_glibc_layout_for_version(unsigned version);

/* Chunk size of the tcache_perthread_struct's chunk for a layout (0x250, 0x290). */
static inline uint64_t hs_glibc_tcache_chunk_size(const struct hs_glibc_layout *l)
{
	return ((uint64_t)l->tc_sizeof + HS_GLIBC_SIZE_SZ + HS_GLIBC_ALIGN - 1) &
	       ~(uint64_t)(HS_GLIBC_ALIGN - 1);
}

/* Size classes (malloc.c, x86-64; unchanged 2.26-2.41), from a chunk size:
 * csize2tidx, fastbin_index, and bin_index (smallbin_index below MIN_LARGE_SIZE
 * 1024, else largebin_index_64).  The inverse gives the smallest chunk size of
 * a bin (0 for bin 1, the unsorted bin). */
unsigned hs_glibc_tcache_index(uint64_t chunk_size);
uint64_t hs_glibc_tcache_chunk_size_of(unsigned index);
unsigned hs_glibc_fastbin_index(uint64_t chunk_size);
uint64_t hs_glibc_fastbin_chunk_size_of(unsigned index);
unsigned hs_glibc_bin_index(uint64_t chunk_size);
uint64_t hs_glibc_bin_min_chunk_size(unsigned index);

#endif
