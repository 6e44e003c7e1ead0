/* test_heap.c - the allocation index: add in any order, finish, find by any
 * address inside a block. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include "unit_util.h"
#include "heap.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_block_packing),
		cmocka_unit_test(test_find_interior),
		cmocka_unit_test(test_overlap),
		cmocka_unit_test(test_same_start_keeps_first),
		cmocka_unit_test(test_many_runs),
	};
	return cmocka_run_group_tests_name("heap", tests, NULL, NULL);
}
