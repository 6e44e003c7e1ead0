/* tcmalloc_layout.h - gperftools tcmalloc layouts the walker knows (x86-64).
 *
 * Offsets verified against the gperftools-2.10 sources (the version Debian 12
 * ships as libtcmalloc-minimal4 / libgoogle-perftools4 2.10-1) by compiling an
 * offsetof() program against its headers with Debian's configuration
 * (8 KiB pages, kAddressBits 48, not TCMALLOC_SMALL_BUT_SLOW, _LP64); see
 * docs/tcmalloc.md.  A new version is a new table row, never code.
 */
#ifndef HS_TCMALLOC_LAYOUT_H
#define HS_TCMALLOC_LAYOUT_H

#include <stdint.h>

struct hs_tc_layout {
	const char *version;          /* "2.10": the "gperftools X.Y" string */
	unsigned page_shift;          /* kPageShift */
	unsigned class_sizes_max;     /* kClassSizesMax */
	/* PageMap2<48 - kPageShift>: root_[1 << root_bits] -> leaf of values[1 << leaf_bits] */
	unsigned leaf_bits, root_bits;

	/* class Span (48 bytes in 2.10):
	 *   0 start (PageID)  8 length (pages)  16 next  24 prev
	 *  32 objects (free list; or a SpanSet iterator for large free spans)
	 *  40 bit-fields, one little-endian 32-bit word:
	 *
	 *   31      28 27  26 25 24 23        16 15                 0
	 *  +----------+---+---+-----+-----------+-------------------+
	 *  |  unused  |it |smp| loc | sizeclass |     refcount      |
	 *  +----------+---+---+-----+-----------+-------------------+
	 *  loc: 0 IN_USE, 1 ON_NORMAL_FREELIST, 2 ON_RETURNED_FREELIST;
	 *  smp: sampled; it: has_span_iter. */
	uint64_t span_size, span_start, span_length, span_next, span_prev, span_objects;
	uint64_t span_bits;            /* the 32-bit word of the bit-fields */
	unsigned refcount_shift, refcount_width, sizeclass_shift, sizeclass_width;
	unsigned location_shift, location_width, sample_shift;

	/* class SizeMap (Static::sizemap_) */
	uint64_t sizemap_size, sm_class_array, sm_class_array_len, sm_num_objects_to_move;
	uint64_t sm_class_to_size, sm_class_to_pages, sm_num_size_classes;

	/* class PageHeap (Static::pageheap_) */
	uint64_t pageheap_size, ph_pagemap_root, ph_pagemap_allocator, ph_free, ph_spanlist_size;
	uint64_t ph_stats, ph_max_pages;   /* free_[kMaxPages] of {normal, returned} */
	/* PageHeap::Stats */
	uint64_t st_system_bytes, st_free_bytes, st_unmapped_bytes;

	/* class CentralFreeList, Static::central_cache_[kClassSizesMax] of
	 * CentralFreeListPadded */
	uint64_t cfl_stride, cfl_size_class, cfl_empty, cfl_nonempty, cfl_num_spans, cfl_counter;
	uint64_t cfl_tc_slots, cfl_tc_slot_size, cfl_max_slots, cfl_used_slots;

	/* class ThreadCache (ThreadCache::thread_heaps_ list) */
	uint64_t tc_size, tc_list, tc_fl_size, tc_fl_list, tc_fl_length, tc_fl_object_size;
	uint64_t tc_size_field, tc_tid, tc_next, tc_prev;
};

/* Span::location */
enum { HS_TC_IN_USE = 0, HS_TC_ON_NORMAL_FREELIST = 1, HS_TC_ON_RETURNED_FREELIST = 2 };

static const struct hs_tc_layout hs_tc_layout_2_10 = {
	.version = "2.10",
	.page_shift = 13,
	.class_sizes_max = 128,
	.leaf_bits = 18, .root_bits = 17,

	.span_size = 48, .span_start = 0, .span_length = 8, .span_next = 16, .span_prev = 24,
	.span_objects = 32, .span_bits = 40,
	.refcount_shift = 0, .refcount_width = 16, .sizeclass_shift = 16, .sizeclass_width = 8,
	.location_shift = 24, .location_width = 2, .sample_shift = 26,

	.sizemap_size = 4232, .sm_class_array = 0, .sm_class_array_len = 2169,
	.sm_num_objects_to_move = 2172, .sm_class_to_size = 2684, .sm_class_to_pages = 3200,
	.sm_num_size_classes = 4224,

	.pageheap_size = 1585360, .ph_pagemap_root = 524288, .ph_pagemap_allocator = 524288 + 1048576,
	.ph_free = 1572968, .ph_spanlist_size = 96, .ph_stats = 1585256, .ph_max_pages = 128,
	.st_system_bytes = 0, .st_free_bytes = 8, .st_unmapped_bytes = 16,

	.cfl_stride = 1216, .cfl_size_class = 8, .cfl_empty = 16, .cfl_nonempty = 64,
	.cfl_num_spans = 112, .cfl_counter = 120, .cfl_tc_slots = 128, .cfl_tc_slot_size = 16,
	.cfl_max_slots = 64, .cfl_used_slots = 1152,

	.tc_size = 4160, .tc_list = 0, .tc_fl_size = 32, .tc_fl_list = 0, .tc_fl_length = 8,
	.tc_fl_object_size = 24, .tc_size_field = 4096, .tc_tid = 4128, .tc_next = 4144,
	.tc_prev = 4152,
};

static const struct hs_tc_layout *const hs_tc_layouts[] = { &hs_tc_layout_2_10 };
#define HS_TC_NLAYOUTS (sizeof(hs_tc_layouts) / sizeof(hs_tc_layouts[0]))

#endif
