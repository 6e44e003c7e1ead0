/* test_heap.c - the allocation index: add in any order, finish, find by any
 * address inside a block. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include "unit_util.h"
#include "heap.h"
#include "vec.h"

static void test_empty(void **state)
{
	(void)state;
	struct hs_heap h;
	hs_heap_init(&h);
	size_t dropped = 7;
	assert_null(hs_heap_finish(&h, &dropped));
	assert_int_equal(dropped, 0);
	assert_int_equal(h.n, 0);
	assert_int_equal(hs_heap_find(&h, 0x1000), -1);
	assert_int_equal(hs_heap_find(&h, 0), -1);
	assert_int_equal(hs_heap_find(&h, UINT64_MAX), -1);
	assert_int_equal(hs_heap_lower_bound(&h, 0x1000), 0);
	hs_heap_deinit(&h);
	hs_heap_deinit(&h);   /* twice is fine */
}

static void test_block_packing(void **state)
{
	(void)state;
	struct hs_heap h;
	hs_heap_init(&h);
	assert_null(hs_heap_add(&h, 0x1000, 0x18, WHERE("tcache"), 3));
	assert_null(hs_heap_add(&h, 0x2000, UINT64_MAX, HS_WHERE_MMAPPED, HS_ARENA_NONE));
	assert_null(hs_heap_finish(&h, NULL));
	assert_int_equal(hs_block_size(&h.blocks[0]), 0x18);
	assert_int_equal(hs_block_where(&h.blocks[0]), WHERE("tcache"));
	assert_int_equal(hs_block_arena(&h.blocks[0]), 3);
	assert_int_equal(hs_block_size(&h.blocks[1]), HS_BLOCK_SIZE_MAX);   /* clamped */
	assert_int_equal(hs_block_arena(&h.blocks[1]), HS_ARENA_NONE);
	assert_true(hs_where_is_free(WHERE("tcache")));
	assert_false(hs_where_is_free(HS_WHERE_META));
	assert_false(hs_where_is_used(HS_WHERE_META));
	assert_true(hs_where_is_used(HS_WHERE_MMAPPED));
	assert_string_equal(hs_where_name(WHERE("fastbin")), "fastbin");
	assert_string_equal(hs_where_name(HS_WHERE_USED), "used");
	assert_string_equal(hs_where_name((enum hs_where)200), "unknown");
	hs_heap_deinit(&h);
}

/* Heaps emitted one after another, out of address order, as walkers do. */
static void test_find_interior(void **state)
{
	(void)state;
	struct hs_heap h;
	hs_heap_init(&h);
	/* a "thread heap" first, then the "main heap", then a zero-size block */
	assert_null(hs_heap_add(&h, 0x7000010, 0x28, HS_WHERE_USED, 1));
	assert_null(hs_heap_add(&h, 0x7000040, 0x100, WHERE("smallbin"), 1));
	assert_null(hs_heap_add(&h, 0x1010, 0x18, HS_WHERE_USED, 0));
	assert_null(hs_heap_add(&h, 0x1030, 0x28, WHERE("fastbin"), 0));
	assert_null(hs_heap_add(&h, 0x5000, 0, HS_WHERE_USED, 0));
	assert_false(h.sorted);
	assert_null(hs_heap_finish(&h, NULL));
	assert_true(h.sorted);
	assert_int_equal(h.n, 5);
	for (size_t i = 1; i < h.n; i++)
		assert_true(h.blocks[i - 1].address < h.blocks[i].address);

	assert_int_equal(hs_heap_find(&h, 0x1010), 0);      /* start */
	assert_int_equal(hs_heap_find(&h, 0x1017), 0);      /* interior */
	assert_int_equal(hs_heap_find(&h, 0x1027), 0);      /* last byte */
	assert_int_equal(hs_heap_find(&h, 0x1028), -1);     /* just past */
	assert_int_equal(hs_heap_find(&h, 0x100f), -1);     /* just before */
	assert_int_equal(hs_heap_find(&h, 0x1030), 1);
	assert_int_equal(hs_heap_find(&h, 0x5000), 2);      /* zero-size: its address only */
	assert_int_equal(hs_heap_find(&h, 0x5001), -1);
	assert_int_equal(hs_heap_find(&h, 0x70000a0), 4);
	assert_int_equal(hs_heap_find(&h, 0x7000140), -1);
	assert_int_equal(hs_heap_find(&h, 0), -1);
	assert_int_equal(hs_heap_find(&h, UINT64_MAX), -1);
	assert_int_equal(hs_heap_lower_bound(&h, 0x1011), 1);
	assert_int_equal(hs_heap_lower_bound(&h, 0x1030), 1);
	assert_int_equal(hs_heap_lower_bound(&h, 0x8000000), 5);
	hs_heap_deinit(&h);
}

/* Overlapping blocks (a corrupt heap, a walker bug): the first by address
 * stays, the others are counted. */
static void test_overlap(void **state)
{
	(void)state;
	struct hs_heap h;
	hs_heap_init(&h);
	assert_null(hs_heap_add(&h, 0x2000, 0x100, HS_WHERE_USED, 0));
	assert_null(hs_heap_add(&h, 0x2050, 0x10, WHERE("tcache"), 0));   /* inside */
	assert_null(hs_heap_add(&h, 0x2000, 0x20, WHERE("fastbin"), 0));  /* same start */
	assert_null(hs_heap_add(&h, 0x2100, 0x10, HS_WHERE_USED, 0));     /* adjacent: kept */
	assert_null(hs_heap_add(&h, 0x1ff0, 0x20, HS_WHERE_USED, 0));     /* runs into 0x2000 */
	size_t dropped = 0;
	assert_null(hs_heap_finish(&h, &dropped));
	assert_int_equal(dropped, 2);
	assert_int_equal(h.n, 3);
	/* 0x1ff0 + 0x20 runs past 0x2000: both blocks at 0x2000 go, 0x2050 stays */
	assert_int_equal(h.blocks[0].address, 0x1ff0);
	assert_int_equal(h.blocks[1].address, 0x2050);
	assert_int_equal(h.blocks[2].address, 0x2100);
	hs_heap_deinit(&h);
}

/* The same-start case keeps the block that was emitted first. */
static void test_same_start_keeps_first(void **state)
{
	(void)state;
	struct hs_heap h;
	hs_heap_init(&h);
	assert_null(hs_heap_add(&h, 0x3000, 0x40, WHERE("unsorted"), 2));
	assert_null(hs_heap_add(&h, 0x1000, 0x10, HS_WHERE_USED, 0));
	assert_null(hs_heap_add(&h, 0x3000, 0x40, HS_WHERE_USED, 0));
	size_t dropped = 0;
	assert_null(hs_heap_finish(&h, &dropped));
	assert_int_equal(dropped, 1);
	assert_int_equal(h.n, 2);
	assert_int_equal(hs_block_where(&h.blocks[1]), WHERE("unsorted"));
	assert_int_equal(hs_block_arena(&h.blocks[1]), 2);
	hs_heap_deinit(&h);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Many runs in random order sort like qsort, and every block is found by
 * its start and its last byte. */
static void test_many_runs(void **state)
{
	(void)state;
	enum { N = 50000 };
	uint64_t *addrs = malloc(N * sizeof(*addrs));
	struct hs_heap h;
	hs_heap_init(&h);
	srand(7);
	size_t n = 0;
	while (n < N) {
		/* a run of ascending blocks at a random 1 MiB slot */
		uint64_t base = ((uint64_t)(rand() % 100000) << 20) + 0x10;
		size_t run = 1 + (size_t)(rand() % 300);
		for (size_t k = 0; k < run && n < N; k++) {
			uint64_t a = base + k * 0x40;
			bool dup = false;
			for (size_t j = n > 400 ? n - 400 : 0; j < n && !dup; j++)
				dup = addrs[j] == a;
			if (dup)
				continue;
			addrs[n++] = a;
			assert_null(hs_heap_add(&h, a, 0x30, HS_WHERE_USED, 0));
		}
	}
	size_t dropped = 0;
	assert_null(hs_heap_finish(&h, &dropped));
	qsort(addrs, N, sizeof(*addrs), cmp_u64);
	size_t kept = 0;
	for (size_t i = 0; i < N; i++)
		kept += i == 0 || addrs[i] != addrs[i - 1];
	assert_int_equal(h.n + dropped, N);
	assert_int_equal(h.n, kept);
	for (size_t i = 0, j = 0; i < N; i++) {
		if (i && addrs[i] == addrs[i - 1])
			continue;
		assert_int_equal(h.blocks[j].address, addrs[i]);
		assert_int_equal(hs_heap_find(&h, addrs[i]), (ptrdiff_t)j);
		assert_int_equal(hs_heap_find(&h, addrs[i] + 0x2f), (ptrdiff_t)j);
		j++;
	}
	free(addrs);
	hs_heap_deinit(&h);
}

/* hs_array_move: every byte lands, for moves small and large, at offsets
 * that put source and destination anywhere in their huge pages, down one
 * array and from one array to another.  The large ones go by pages where the
 * kernel can: the source's moved pages then read zero. */
static void check_move(uint8_t *dst, uint8_t *src, size_t n, size_t *paged)
{
	uint32_t *w = (uint32_t *)src;
	for (size_t i = 0; i < n / 4; i++)
		w[i] = (uint32_t)(i * 2654435761u) ^ (uint32_t)(uintptr_t)src;
	uint32_t seed = (uint32_t)(uintptr_t)src;
	hs_array_move(dst, src, n);
	const uint32_t *d = (const uint32_t *)dst;
	for (size_t i = 0; i < n / 4; i++)
		if (d[i] != ((uint32_t)(i * 2654435761u) ^ seed))
			fail_msg("move of %zu bytes: word %zu wrong", n, i);
	// (4 MiB into the source is always inside its moved pages, if moved.)
	if (n >= (8u << 20) && (dst + n <= src || src + n <= dst) && !w[(4u << 20) / 4 + 1])
		++*paged;
}

static void test_array_move(void **state)
{
	(void)state;
	const size_t big = 96u << 20;
	uint8_t *a = hs_array_new(big, 1), *b = hs_array_new(big, 1);
	assert_non_null(a);
	assert_non_null(b);
	const size_t sizes[] = { 0, 16, 4096 + 48, (8u << 20) + 16, (20u << 20) + 4096 * 3 + 32 };
	const size_t offs[] = { 0, 16, 4096, (2u << 20) - 16, (2u << 20) + 4096 + 48 };
	size_t paged = 0, large = 0;
	for (size_t i = 0; i < 5; i++)
		for (size_t j = 0; j < 5; j++)
			for (size_t k = 0; k < 5; k++) {
				size_t n = sizes[i];
				// Down one array, far enough that a page move is allowed.
				check_move(a + offs[j], a + (40u << 20) + offs[k], n, &paged);
				// Down one array by less than the length: overlapping.
				check_move(a + offs[j], a + offs[j] + n / 2 + 16, n, &paged);
				// To another array (above or below it in memory).
				check_move(b + offs[k], a + (50u << 20) + offs[j], n, &paged);
				large += n >= (8u << 20) ? 2 : 0;
			}
	// Where mremap's DONTUNMAP is known (Linux 5.7), the large moves apart
	// go by pages.
	print_message("%zu of %zu large moves by pages\n", paged, large);
	assert_true(paged > 0);
	free(a);
	free(b);
}

/* The big arrays' requests: a mapping of whole huge pages (the usable size
 * and glibc's 16-byte header), zeroed where asked, every byte theirs; a
 * vector grown across 4 MiB keeps its elements; an overflowing size fails. */
static void test_array_huge(void **state)
{
	(void)state;
	mallopt(M_MMAP_THRESHOLD, 4 << 20);     /* as the CLI does */
	const size_t ns[] = { (4u << 20) / 8, (5u << 20) / 8 + 1000, ((6u << 20) - 24) / 8, (7u << 20) / 8 - 1 };
	for (size_t i = 0; i < 4; i++) {
		size_t n = ns[i];
		uint64_t *z = hs_array_zeroed(n, 8), *w = hs_array_new(n, 8);
		assert_non_null(z);
		assert_non_null(w);
		assert_true(malloc_usable_size(z) >= n * 8);
#ifndef __SANITIZE_ADDRESS__  /* (glibc's mappings: not ASan's allocator) */
		assert_int_equal((malloc_usable_size(z) + 16) % (2u << 20), 0);
		assert_int_equal((malloc_usable_size(w) + 16) % (2u << 20), 0);
#endif
		for (size_t k = 0; k < n; k++)
			if (z[k])
				fail_msg("array of %zu: word %zu not zero", n, k);
		for (size_t k = 0; k < n; k++)
			w[k] = z[k] = k * 2654435761u;
		for (size_t k = 0; k < n; k++)
			if (w[k] != k * 2654435761u || z[k] != w[k])
				fail_msg("array of %zu: word %zu lost", n, k);
		free(z);
		free(w);
	}
	uint32_t *v = NULL;
	size_t cap = 0;
	for (size_t k = 0; k < (3u << 20); k++) {
		assert_null(hs_vec_reserve(&v, &cap, k + 1, sizeof(*v)));
		v[k] = (uint32_t)(k ^ 0x5bd1e995u);
	}
	for (size_t k = 0; k < (3u << 20); k++)
		if (v[k] != (uint32_t)(k ^ 0x5bd1e995u))
			fail_msg("vector: element %zu lost", k);
	free(v);
	assert_null(hs_array_new(SIZE_MAX / 4, 8));
	assert_null(hs_array_zeroed(SIZE_MAX / 4, 8));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_block_packing),
		cmocka_unit_test(test_find_interior),
		cmocka_unit_test(test_overlap),
		cmocka_unit_test(test_same_start_keeps_first),
		cmocka_unit_test(test_many_runs),
		cmocka_unit_test(test_array_move),
		cmocka_unit_test(test_array_huge),
	};
	return cmocka_run_group_tests_name("heap", tests, NULL, NULL);
}
