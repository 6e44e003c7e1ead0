/* mimalloc_layout.h - mimalloc's structures (x86-64) for the mimalloc walker,
 * one row per supported release, each with its source.
 *
 * Source: mimalloc v2.0.9 (github.com/microsoft/mimalloc, tag v2.0.9,
 * 28cf67e5), include/mimalloc-types.h, compiled for x86-64 the way Debian 12
 * builds libmimalloc2.0 2.0.9+ds-2 (release: MI_DEBUG 0, MI_SECURE 0, so no
 * MI_PADDING and no MI_ENCODE_FREELIST) and measured with offsetof/sizeof;
 * checked on cores of Debian's library (docs/mimalloc.md).
 *
 *   mi_segment_t (32 MiB aligned, its own first slices): cookie, the slice
 *     count of the segment and of its header, kind (0 normal, 1 huge), the
 *     slice entries in use, the owning thread (its thread pointer, fs_base;
 *     0 when abandoned), then slices[]: one mi_page_t per 64 KiB slice.
 *   mi_page_t (a span of slices; the first slice describes it): slice_count,
 *     slice_offset (0 at a span's first slice), capacity (blocks made),
 *     reserved, free, used, xblock_size (0: a free span), local_free,
 *     xthread_free (low 2 bits: delayed-free flags), xheap.
 *   mi_heap_t: thread_delayed_free (blocks other threads freed, of any of its
 *     pages), thread_id.
 * A page's blocks start at its first slice, plus 3 * MI_MAX_ALIGN_GUARANTEE
 * (384) when the block size is 8..1024; a block size of MI_HUGE_BLOCK_SIZE
 * means "the whole page".  mi_version() is "mov $VERSION, %eax; ret".
 */
#ifndef HS_MIMALLOC_LAYOUT_H
#define HS_MIMALLOC_LAYOUT_H

#include <stdint.h>

struct hs_mi_layout {
	unsigned version;              /* mi_version(): 209 is 2.0.9 */
	const char *name;              /* "2.0.9" */
	uint32_t segment_shift, slice_shift, slices_per_segment;
	/* mi_segment_t */
	uint16_t seg_cookie, seg_segment_slices, seg_info_slices, seg_kind, seg_slice_entries, seg_thread_id;
	uint16_t seg_abandoned, seg_used, seg_slices;
	uint32_t seg_sizeof;
	/* mi_page_t (= mi_slice_t) */
	uint16_t pg_sizeof, pg_slice_count, pg_slice_offset, pg_capacity, pg_reserved, pg_free, pg_used;
	uint16_t pg_xblock_size, pg_local_free, pg_xthread_free, pg_xheap;
	/* mi_heap_t */
	uint16_t hp_thread_delayed_free, hp_thread_id;
	/* small pages' block start offset (3 * MI_MAX_ALIGN_GUARANTEE) for
	 * block sizes in [small_start_min, small_start_max] */
	uint32_t small_start, small_start_min, small_start_max;
	uint64_t huge_block_size;      /* MI_HUGE_BLOCK_SIZE */
};

static const struct hs_mi_layout hs_mi_layout_209 = {
	.version = 209, .name = "2.0.9",
	.segment_shift = 25, .slice_shift = 16, .slices_per_segment = 512,
	.seg_cookie = 216, .seg_segment_slices = 224, .seg_info_slices = 232, .seg_kind = 240,
	.seg_slice_entries = 248, .seg_thread_id = 256, .seg_abandoned = 192, .seg_used = 208,
	.seg_slices = 264, .seg_sizeof = 41304,
	.pg_sizeof = 80, .pg_slice_count = 0, .pg_slice_offset = 4, .pg_capacity = 10, .pg_reserved = 12,
	.pg_free = 16, .pg_used = 24, .pg_xblock_size = 28, .pg_local_free = 32, .pg_xthread_free = 40,
	.pg_xheap = 48,
	.hp_thread_delayed_free = 2840, .hp_thread_id = 2848,
	.small_start = 384, .small_start_min = 8, .small_start_max = 1024,
	.huge_block_size = UINT64_C(2) << 30,
};

static const struct hs_mi_layout *const hs_mi_layouts[] = { &hs_mi_layout_209 };
#define HS_MI_NLAYOUTS (sizeof(hs_mi_layouts) / sizeof(hs_mi_layouts[0]))

#endif
