/* test_pools.c - application pools: --pool specs, and the bounded walk of a free list over a synthetic heap: a good
 * list, a cyclic one, a self loop, a link out of the heap, a link into a free
 * block, slots inside one allocation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include "expr.h"
#include "pools.h"
#include "session.h"
#include "target.h"
#include "unit_util.h"

static void test_spec_check(void **state)
{
	(void)state;
	static const char *const good[] = { "g_pool", "g_pool:next", "g_pool:8", "g.free[2].head:0x10",
					    "ns::pool:next", "ns::pool", "0x1000:16" };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct hs_error *err = hs_pool_spec_check(good[i]);
		if (err)
			fail_msg("'%s': %s", good[i], hs_error_message(err));
	}
	static const char *const bad[] = { "", ":next", "g_pool:", "g_pool:7", "g_pool:next.x", "g_pool[:8" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct hs_error *err = hs_pool_spec_check(bad[i]);
		if (!err)
			fail_msg("'%s' was accepted", bad[i]);
		assert_int_equal(hs_error_code(err), HS_ERR_USAGE);
		hs_error_destroy(err);
	}
}

/* A synthetic process: [BASE, BASE + SIZE) holds anchors at BASE and 32-byte
 * blocks from HEAP; the heap index knows them (used, or free when asked). */
#define BASE 0x10000u
#define SIZE 0x10000u
#define HEAP (BASE + 0x1000)
#define BLOCK(i) (HEAP + 0x40u * (i))

struct synth {
	uint8_t mem[SIZE];
	struct hs_session *s;
};

static void w64(struct synth *x, uint64_t addr, uint64_t v)
{
	memcpy(x->mem + (addr - BASE), &v, 8);
}

static struct hs_session *open_synth(struct synth *x, const char *const *specs, unsigned free_block)
{
	struct hs_segment seg = { .start = BASE, .end = BASE + SIZE, .filesz = SIZE, .data = x->mem,
				  .flags = HS_SEG_R | HS_SEG_W };
	struct hs_target *t;
	assert_null(hs_target_open_buffers(&seg, 1, &t));
	struct hs_session *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	s->target = t;
	hs_diags_init(&s->diags);
	hs_heap_init(&s->heap);
	for (unsigned i = 0; i < 16; i++)
		assert_null(hs_heap_add(&s->heap, BLOCK(i), 0x200 * (i == 15) + 40,
					i == free_block ? WHERE("tcache") : HS_WHERE_USED, 0));
	size_t dropped;
	assert_null(hs_heap_finish(&s->heap, &dropped));
	s->heap_done = true;
	size_t n = 0;
	while (specs[n])
		n++;
	s->pool_specs = calloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		s->pool_specs[i] = strdup(specs[i]);
	s->npool_specs = n;
	s->no_pool_detection = true;
	x->s = s;
	return s;
}

static void close_synth(struct synth *x)
{
	struct hs_session *s = x->s;
	hs_pools_destroy(s->pools);
	hs_error_destroy(s->pools_error);
	for (size_t i = 0; i < s->npool_specs; i++)
		free(s->pool_specs[i]);
	free(s->pool_specs);
	hs_heap_deinit(&s->heap);
	hs_target_destroy(s->target);
	hs_diags_deinit(&s->diags);
	free(s);
}

static void expect_pool(const struct hs_pool *p, const struct hs_pools *all, uint64_t count, bool broken,
			const uint64_t *objs)
{
	assert_int_equal(p->count, count);
	assert_int_equal(p->broken, broken);
	for (uint64_t k = 0; k < count; k++)
		assert_int_equal(all->objs[p->first + k].address, objs[k]);
}

static void test_walks(void **state)
{
	(void)state;
	static struct synth x;
	memset(&x, 0, sizeof(x));
	// good: 0 -> 1 -> 2; cyclic: 3 -> 4 -> 5 -> 4; self: 6 -> 6;
	// out: 7 -> 0xdead0; into free: 8 -> 9 (free); link +8: 10 -> 11.
	w64(&x, BASE + 0x00, BLOCK(0));
	w64(&x, BLOCK(0), BLOCK(1));
	w64(&x, BLOCK(1), BLOCK(2));
	w64(&x, BASE + 0x08, BLOCK(3));
	w64(&x, BLOCK(3), BLOCK(4));
	w64(&x, BLOCK(4), BLOCK(5));
	w64(&x, BLOCK(5), BLOCK(4));
	w64(&x, BASE + 0x10, BLOCK(6));
	w64(&x, BLOCK(6), BLOCK(6));
	w64(&x, BASE + 0x18, BLOCK(7));
	w64(&x, BLOCK(7), 0xdead0);
	w64(&x, BASE + 0x20, BLOCK(8));
	w64(&x, BLOCK(8), BLOCK(9));
	w64(&x, BASE + 0x28, BLOCK(10));
	w64(&x, BLOCK(10) + 8, BLOCK(11));
	static const char *const specs[] = { "0x10000", "0x10008", "0x10010:0", "0x10018", "0x10020", "0x10028:8",
					     "0x10030", NULL };
	struct hs_session *s = open_synth(&x, specs, 9);
	assert_null(hs_session_need_pools(s));
	const struct hs_pools *p = s->pools;
	assert_int_equal(p->n, 7);
	expect_pool(&p->pools[0], p, 3, false, (uint64_t[]){ BLOCK(0), BLOCK(1), BLOCK(2) });
	expect_pool(&p->pools[1], p, 3, true, (uint64_t[]){ BLOCK(3), BLOCK(4), BLOCK(5) });
	expect_pool(&p->pools[2], p, 1, true, (uint64_t[]){ BLOCK(6) });
	expect_pool(&p->pools[3], p, 1, true, (uint64_t[]){ BLOCK(7) });
	expect_pool(&p->pools[4], p, 1, true, (uint64_t[]){ BLOCK(8) });
	expect_pool(&p->pools[5], p, 2, false, (uint64_t[]){ BLOCK(10), BLOCK(11) });
	expect_pool(&p->pools[6], p, 0, false, NULL);
	assert_int_equal(p->pools[0].object_size, 40);
	assert_int_equal(p->pools[0].bytes, 120);
	assert_int_equal(p->pools[5].link, 8);
	assert_int_equal(p->count, 3 + 3 + 1 + 1 + 1 + 2);
	assert_int_equal(unit_count_diags(s, HS_DIAG_ERROR, "is cyclic"), 2);
	assert_int_equal(unit_count_diags(s, HS_DIAG_ERROR, "links outside the heap"), 1);
	assert_int_equal(unit_count_diags(s, HS_DIAG_ERROR, "links to a block that is not in use"), 1);
	// Lookups: an object's interior; a block that is not pooled.
	assert_non_null(hs_pools_find(s->pools, BLOCK(1) + 17));
	assert_null(hs_pools_find(s->pools, BLOCK(12)));
	assert_true(hs_pools_block_pooled(s->pools, &s->heap, 1));
	assert_false(hs_pools_block_pooled(s->pools, &s->heap, 12));
	close_synth(&x);
}

static void test_slots(void **state)
{
	(void)state;
	static struct synth x;
	memset(&x, 0, sizeof(x));
	// Block 15 is 552 bytes: free slots at +32, +96, +128, +224 (stride 32).
	uint64_t b = BLOCK(15);
	w64(&x, BASE, b + 224);
	w64(&x, b + 224, b + 32);
	w64(&x, b + 32, b + 128);
	w64(&x, b + 128, b + 96);
	static const char *const specs[] = { "0x10000", NULL };
	struct hs_session *s = open_synth(&x, specs, 99);
	assert_null(hs_session_need_pools(s));
	const struct hs_pool *p = &s->pools->pools[0];
	expect_pool(p, s->pools, 4, false, (uint64_t[]){ b + 224, b + 32, b + 128, b + 96 });
	assert_true(p->slab);
	assert_int_equal(p->object_size, 32);
	assert_int_equal(p->bytes, 128);
	assert_false(hs_pools_block_pooled(s->pools, &s->heap, 15));
	assert_non_null(hs_pools_find(s->pools, b + 100));
	assert_null(hs_pools_find(s->pools, b + 64));
	close_synth(&x);
}

static void test_bad_spec_is_usage(void **state)
{
	(void)state;
	static struct synth x;
	memset(&x, 0, sizeof(x));
	static const char *const specs[] = { "0x1", NULL };   // not mapped
	struct hs_session *s = open_synth(&x, specs, 99);
	assert_null(hs_session_need_pools(s));
	assert_int_equal(s->pools->n, 0);
	assert_int_equal(unit_count_diags(s, HS_DIAG_ERROR, "cannot read its head"), 1);
	close_synth(&x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec_check),
		cmocka_unit_test(test_walks),
		cmocka_unit_test(test_slots),
		cmocka_unit_test(test_bad_spec_is_usage),
	};
	return cmocka_run_group_tests_name("pools", tests, NULL, NULL);
}
