/* glibc_layouts.c - the built-in glibc ptmalloc layout table (x86-64).
 *
 * Offsets were derived from the struct definitions at each release tag
 * (malloc/malloc.c: struct malloc_state, struct malloc_par,
 * tcache_perthread_struct, tcache_entry; malloc/arena.c: heap_info) with
 * x86-64 sizes (pointers and size_t 8, int 4), and the 2.35-2.41 row checked
 * against `ptype/o` on Debian 12's glibc 2.36 with libc6-dbg.  Between two rows
 * nothing the walker reads moved; the changes that start a row are named in its
 * source.
 */
#include "glibc_layouts.h"

#define A HS_GLIBC_ABSENT

/* malloc_state before 2.27: no have_fastchunks, fastbinsY right after flags. */
#define MS_226 \
	.ms_flags = 4, .ms_have_fastchunks = A, .ms_fastbins = 8, .ms_top = 88, \
	.ms_last_remainder = 96, .ms_bins = 104, .ms_binmap = 2136, .ms_next = 2152, \
	.ms_next_free = 2160, .ms_attached_threads = 2168, .ms_system_mem = 2176, \
	.ms_max_system_mem = 2184, .ms_sizeof = 2192
/* malloc_state since 2.27: int have_fastchunks after flags (4-byte hole follows). */
#define MS_227 \
	.ms_flags = 4, .ms_have_fastchunks = 8, .ms_fastbins = 16, .ms_top = 96, \
	.ms_last_remainder = 104, .ms_bins = 112, .ms_binmap = 2144, .ms_next = 2160, \
	.ms_next_free = 2168, .ms_attached_threads = 2176, .ms_system_mem = 2184, \
	.ms_max_system_mem = 2192, .ms_sizeof = 2200
/* malloc_par 2.26-2.34 (USE_TCACHE fields at the end). */
#define MP_226 \
	.mp_trim_threshold = 0, .mp_top_pad = 8, .mp_mmap_threshold = 16, .mp_arena_test = 24, \
	.mp_arena_max = 32, .mp_thp_pagesize = A, .mp_hp_pagesize = A, .mp_n_mmaps = 40, \
	.mp_n_mmaps_max = 44, .mp_max_n_mmaps = 48, .mp_mmapped_mem = 56, \
	.mp_max_mmapped_mem = 64, .mp_sbrk_base = 72, .mp_tcache_bins = 80, \
	.mp_tcache_max_bytes = 88, .mp_tcache_count = 96, .mp_sizeof = 112
/* malloc_par since 2.35: thp_pagesize, hp_pagesize, hp_flags after arena_max. */
#define MP_235 \
	.mp_trim_threshold = 0, .mp_top_pad = 8, .mp_mmap_threshold = 16, .mp_arena_test = 24, \
	.mp_arena_max = 32, .mp_thp_pagesize = 40, .mp_hp_pagesize = 48, .mp_n_mmaps = 60, \
	.mp_n_mmaps_max = 64, .mp_max_n_mmaps = 68, .mp_mmapped_mem = 80, \
	.mp_max_mmapped_mem = 88, .mp_sbrk_base = 96, .mp_tcache_bins = 104, \
	.mp_tcache_max_bytes = 112, .mp_tcache_count = 120, .mp_sizeof = 136
/* heap_info before 2.35: 4 words, pad[-6 * SIZE_SZ & MALLOC_ALIGN_MASK] = 0. */
#define HI_226 \
	.hi_ar_ptr = 0, .hi_prev = 8, .hi_size = 16, .hi_mprotect_size = 24, \
	.hi_pagesize = A, .hi_sizeof = 32
/* heap_info since 2.35: + pagesize, pad[-3 * SIZE_SZ & MALLOC_ALIGN_MASK] = 8. */
#define HI_235 \
	.hi_ar_ptr = 0, .hi_prev = 8, .hi_size = 16, .hi_mprotect_size = 24, \
	.hi_pagesize = 32, .hi_sizeof = 48
/* tcache_perthread_struct: char counts[64] until 2.29, uint16_t counts[64] since. */
#define TC_U8 \
	.tc_counts = 0, .tc_count_width = 1, .tc_entries = 64, .tc_nbins = 64, .tc_sizeof = 576
#define TC_U16 \
	.tc_counts = 0, .tc_count_width = 2, .tc_entries = 128, .tc_nbins = 64, .tc_sizeof = 640

const struct hs_glibc_layout hs_glibc_layouts[] = {
	{ .name = "2.26", .first = 226, .last = 226,
	  .source = "glibc-2.26: tcache added (char counts), no have_fastchunks",
	  MS_226, MP_226, HI_226, TC_U8, .te_next = 0, .te_key = A,
	  .key_is_pointer = false, .safe_linking = false },
	{ .name = "2.27-2.28", .first = 227, .last = 228,
	  .source = "glibc-2.27: malloc_state.have_fastchunks",
	  MS_227, MP_226, HI_226, TC_U8, .te_next = 0, .te_key = A,
	  .key_is_pointer = false, .safe_linking = false },
	{ .name = "2.29", .first = 229, .last = 229,
	  .source = "glibc-2.29: tcache_entry.key (pointer to the tcache)",
	  MS_227, MP_226, HI_226, TC_U8, .te_next = 0, .te_key = 8,
	  .key_is_pointer = true, .safe_linking = false },
	{ .name = "2.30-2.31", .first = 230, .last = 231,
	  .source = "glibc-2.30: tcache counts uint16_t",
	  MS_227, MP_226, HI_226, TC_U16, .te_next = 0, .te_key = 8,
	  .key_is_pointer = true, .safe_linking = false },
	{ .name = "2.32-2.33", .first = 232, .last = 233,
	  .source = "glibc-2.32: safe-linking (PROTECT_PTR) of tcache and fastbins",
	  MS_227, MP_226, HI_226, TC_U16, .te_next = 0, .te_key = 8,
	  .key_is_pointer = true, .safe_linking = true },
	{ .name = "2.34", .first = 234, .last = 234,
	  .source = "glibc-2.34: tcache_entry.key random (tcache_key)",
	  MS_227, MP_226, HI_226, TC_U16, .te_next = 0, .te_key = 8,
	  .key_is_pointer = false, .safe_linking = true },
	{ .name = "2.35-2.41", .first = 235, .last = 241,
	  .source = "glibc-2.35: heap_info.pagesize, mp_ thp/hp fields (checked on 2.36)",
	  MS_227, MP_235, HI_235, TC_U16, .te_next = 0, .te_key = 8,
	  .key_is_pointer = false, .safe_linking = true },
};

const size_t hs_glibc_nlayouts = sizeof(hs_glibc_layouts) / sizeof(hs_glibc_layouts[0]);

const struct hs_glibc_layout *hs_glibc_layout_for_version(unsigned version)
{
	for (size_t i = 0; i < hs_glibc_nlayouts; i++)
		if (version >= hs_glibc_layouts[i].first && version <= hs_glibc_layouts[i].last)
			return &hs_glibc_layouts[i];
	return NULL;
}

unsigned hs_glibc_tcache_index(uint64_t chunk_size)
{
	return (unsigned)((chunk_size - HS_GLIBC_MINSIZE + HS_GLIBC_ALIGN - 1) / HS_GLIBC_ALIGN);
}

uint64_t hs_glibc_tcache_chunk_size_of(unsigned index)
{
	return (uint64_t)index * HS_GLIBC_ALIGN + HS_GLIBC_MINSIZE;
}

unsigned hs_glibc_fastbin_index(uint64_t chunk_size)
{
	return (unsigned)(chunk_size >> 4) - 2;
}

uint64_t hs_glibc_fastbin_chunk_size_of(unsigned index)
{
	return ((uint64_t)index + 2) << 4;
}

/* largebin_index_64 */
static unsigned largebin_index(uint64_t sz)
{
	if ((sz >> 6) <= 48)
		return 48 + (unsigned)(sz >> 6);
	if ((sz >> 9) <= 20)
		return 91 + (unsigned)(sz >> 9);
	if ((sz >> 12) <= 10)
		return 110 + (unsigned)(sz >> 12);
	if ((sz >> 15) <= 4)
		return 119 + (unsigned)(sz >> 15);
	if ((sz >> 18) <= 2)
		return 124 + (unsigned)(sz >> 18);
	return 126;
}

unsigned hs_glibc_bin_index(uint64_t chunk_size)
{
	/* in_smallbin_range: sz < MIN_LARGE_SIZE = NSMALLBINS * SMALLBIN_WIDTH */
	if (chunk_size < (uint64_t)HS_GLIBC_NSMALLBINS * HS_GLIBC_ALIGN)
		return (unsigned)(chunk_size >> 4);
	return largebin_index(chunk_size);
}

uint64_t hs_glibc_bin_min_chunk_size(unsigned index)
{
	if (index < 2)
		return 0;
	if (index < HS_GLIBC_NSMALLBINS)
		return (uint64_t)index * HS_GLIBC_ALIGN;
	/* bin_index is monotonic: binary search the smallest size (in 16-byte
	 * steps) whose index is >= index. */
	uint64_t lo = HS_GLIBC_NSMALLBINS, hi = UINT64_C(1) << 40;   /* in 16-byte units */
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (hs_glibc_bin_index(mid * HS_GLIBC_ALIGN) < index)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo * HS_GLIBC_ALIGN;
}

bool hs_glibc_heap_info_size_known(uint64_t size)
{
	for (size_t i = 0; i < hs_glibc_nlayouts; i++)
		if (hs_glibc_layouts[i].hi_sizeof == size)
			return true;
	return false;
}
