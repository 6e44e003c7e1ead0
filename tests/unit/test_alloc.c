/* test_alloc.c - the allocator interface: the walker toolkit (vector,
 * lower bound, bounded list walks, rate-limited diagnostics), the state
 * registry, and a dummy allocator added the way docs/architecture.md says:
 * one walker (below) plus one line in the walker table, nothing else.  The
 * dummy walker is then picked up by --allocator, the public allocator names,
 * `chunks --where`, summary and arenas, on a real (synthetic) core file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "heapscope.h"
#include "synth_core.h"
#include "walker.h"

/* --- the walker table of this test: the real one plus one line ---------- */

#define HS_WALKER_TABLE \
	HS_WALKER(glibc) \
	HS_WALKER(jemalloc) \
	HS_WALKER(dummy)
#include "../../src/alloc/walkers.c"

/* --- the dummy allocator: a heap at dummy_heap=ADDR starting "DUMMYHP!",
 * then a count and that many {size, state} records; blocks follow the
 * header back to back. */

#define DUMMY_MAGIC "DUMMYHP!"
enum { DUMMY_FREE, DUMMY_CACHED, DUMMY_NSTATES };
static const struct hs_state_def dummy_states[DUMMY_NSTATES] = {
	[DUMMY_FREE] = { "dummy-free", HS_STATE_FREE, "on the dummy allocator's free list" },
	[DUMMY_CACHED] = { "dummy-cached", HS_STATE_FREE, "in the dummy allocator's cache" },
};

struct dummy { uint64_t heap; };

static struct hs_error *dummy_detect(struct hs_walk_ctx *ctx, void **state_ret)
{
	uint64_t heap;
	char magic[8];
	if (!hs_walk_override(ctx, "dummy_heap", &heap) || !hs_walk_read(ctx, heap, magic, 8) ||
	    memcmp(magic, DUMMY_MAGIC, 8))
		return hs_error_create(HS_ERR_NOT_FOUND, "no dummy heap");
	struct dummy *d = calloc(1, sizeof(*d));
	if (!d)
		return &hs_error_nomem;
	d->heap = heap;
	*state_ret = d;
	return NULL;
}

static struct hs_error *dummy_walk(struct hs_walk_ctx *ctx, void *state, struct hs_heap *heap,
				   struct hs_alloc_desc *desc)
{
	struct dummy *d = state;
	uint64_t n, at = d->heap + 16 + 16 * 8;
	if (!hs_walk_read_u64(ctx, d->heap + 8, &n) || n > 8)
		return hs_error_create(HS_ERR_HEAP, "dummy heap header unreadable");
	struct hs_arena ar = { .address = d->heap, .nthreads = -1 };
	snprintf(ar.label, sizeof(ar.label), "dummy 0");
	struct hs_freelist fl = { .where = ctx->state[DUMMY_FREE], .arena = 0, .declared = -1 };
	for (uint64_t i = 0; i < n; i++) {
		uint64_t size, st;
		if (!hs_walk_read_u64(ctx, d->heap + 16 + 16 * i, &size) ||
		    !hs_walk_read_u64(ctx, d->heap + 24 + 16 * i, &st))
			return hs_error_create(HS_ERR_HEAP, "dummy record unreadable");
		unsigned where = st == 0 ? HS_WHERE_USED : ctx->state[st == 1 ? DUMMY_FREE : DUMMY_CACHED];
		HS_CHECK(hs_heap_add(heap, at, size, where, ctx->arena_base));
		if (hs_where_is_free(where)) {
			ar.free_count++, ar.free_bytes += size;
		} else {
			ar.used_count++, ar.used_bytes += size;
		}
		if (st == 1)
			fl.count++, fl.bytes += size;
		at += size;
	}
	hs_arena_fact_set(&ar, "records", n);
	struct hs_region r = { d->heap, at, HS_REGION_HEAP, 0 };
	HS_CHECK(hs_alloc_desc_add_arena(desc, &ar));
	HS_CHECK(hs_alloc_desc_add_region(desc, &r));
	HS_CHECK(hs_alloc_desc_add_list(desc, &fl));
	snprintf(desc->version, sizeof(desc->version), "1.0");
	snprintf(desc->layout_source, sizeof(desc->layout_source), "built-in");
	hs_alloc_desc_fact(desc, "dummy_heap", d->heap);
	return NULL;
}

static const char *const dummy_overrides[] = { "dummy_heap", NULL };

const struct hs_walker hs_dummy_walker = {
	.name = "dummy", .title = "dummy test allocator",
	.states = dummy_states, .nstates = DUMMY_NSTATES,
	.detect = dummy_detect, .walk = dummy_walk, .destroy = free,
	.overrides = dummy_overrides,
};

/* --- the toolkit --------------------------------------------------------- */

static void test_vec(void **state)
{
	(void)state;
	struct item { uint64_t key; int v; } *items = NULL;
	size_t n = 0, cap = 0;
	for (int i = 0; i < 1000; i++)
		assert_null(HS_VEC_PUSH(items, n, cap, ((struct item){ (uint64_t)i * 3, i })));
	assert_int_equal(n, 1000);
	assert_true(cap >= 1000 && cap < 2048);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(items[i].v, i);
	assert_null(HS_VEC_GROW(items, cap, 5000));
	assert_true(cap >= 5000);
	assert_int_equal(items[999].v, 999);
	/* a size that cannot be allocated leaves the vector as it was */
	size_t before = cap;
	assert_ptr_equal(HS_VEC_GROW(items, cap, SIZE_MAX / 2), &hs_error_nomem);
	assert_int_equal(cap, before);
	assert_int_equal(items[0].key, 0);

	/* lower bound: by a field, first of duplicates, ends */
	assert_int_equal(HS_LOWER_BOUND(items, n, key, 0), 0);
	assert_int_equal(HS_LOWER_BOUND(items, n, key, 1), 1);
	assert_int_equal(HS_LOWER_BOUND(items, n, key, 3), 1);
	assert_int_equal(HS_LOWER_BOUND(items, n, key, 2997), 999);
	assert_int_equal(HS_LOWER_BOUND(items, n, key, 2998), 1000);
	assert_int_equal(HS_LOWER_BOUND(items, 0, key, 5), 0);
	free(items);
	uint64_t plain[] = { 1, 5, 5, 5, 9 };
	assert_int_equal(HS_LOWER_BOUND_U64(plain, 5, 5), 1);
	assert_int_equal(HS_LOWER_BOUND_U64(plain, 5, 6), 4);
	assert_int_equal(HS_LOWER_BOUND_U64(plain, 5, UINT64_MAX), 5);
}

/* Follow next[] from head with hs_chain; returns the step that ended it. */
static enum hs_chain_step walk_chain(const uint64_t *next, uint64_t head, uint64_t limit, uint64_t *count)
{
	struct hs_chain ch;
	hs_chain_init(&ch, limit);
	for (uint64_t p = head; p; p = next[p]) {
		enum hs_chain_step st = hs_chain_next(&ch, p);
		if (st != HS_CHAIN_OK) {
			*count = ch.count;
			return st;
		}
	}
	*count = ch.count;
	return HS_CHAIN_OK;
}

static void test_chain(void **state)
{
	(void)state;
	uint64_t next[64] = { 0 };
	for (uint64_t i = 1; i < 40; i++)
		next[i] = i + 1;   /* 1 -> 2 -> ... -> 40 -> 0 */
	uint64_t count;
	assert_int_equal(walk_chain(next, 1, 100, &count), HS_CHAIN_OK);
	assert_int_equal(count, 40);
	assert_int_equal(walk_chain(next, 1, 40, &count), HS_CHAIN_OK);
	assert_int_equal(walk_chain(next, 1, 39, &count), HS_CHAIN_LIMIT);
	assert_int_equal(count, 39);
	next[40] = 17;     /* a cycle of 24 after a tail of 16 */
	assert_int_equal(walk_chain(next, 1, 1000000, &count), HS_CHAIN_CYCLE);
	assert_true(count >= 40 && count <= 2 * 40 + 24);
	next[5] = 5;       /* a self loop */
	assert_int_equal(walk_chain(next, 1, 1000000, &count), HS_CHAIN_CYCLE);
	assert_true(count <= 10);
}

static void test_diag_limits(void **state)
{
	(void)state;
	static const struct hs_walker w = { .name = "dummy" };
	static const char *const what[] = { "of bad headers", "of other" };
	struct hs_diags diags;
	hs_diags_init(&diags);
	struct hs_walk_ctx ctx = { .walker = &w, .diags = &diags };
	hs_walk_diag_kinds(&ctx, what, 2, 2);
	for (int i = 0; i < 5; i++)
		hs_walk_diagk(&ctx, 0, HS_DIAG_ERROR, 0x1000 + i, "header %d", i);
	hs_walk_diagk(&ctx, 1, HS_DIAG_WARNING, 0, "other");
	hs_walk_diag(&ctx, HS_DIAG_INFO, 0, "always %s", "listed");
	hs_walk_diag_flush(&ctx);
	assert_int_equal(diags.n, 5);
	assert_string_equal(diags.items[0].message, "header 0");
	assert_string_equal(diags.items[0].stage, "dummy");
	assert_int_equal(diags.items[1].address, 0x1001);
	assert_string_equal(diags.items[2].message, "other");
	assert_string_equal(diags.items[3].message, "always listed");
	assert_string_equal(diags.items[4].message, "3 more findings of bad headers were not listed");
	hs_diags_deinit(&diags);
}

/* --- the registry --------------------------------------------------------- */

static void test_registry(void **state)
{
	(void)state;
	/* shared states keep their ids and names */
	assert_string_equal(hs_where_name(HS_WHERE_USED), "used");
	assert_string_equal(hs_where_name(HS_WHERE_FREE_UNLISTED), "free-unlisted");
	assert_true(hs_where_is_used(HS_WHERE_MMAPPED));
	assert_false(hs_where_is_used(HS_WHERE_META));
	assert_false(hs_where_is_free(HS_WHERE_META));
	assert_string_equal(hs_where_state(HS_WHERE_META), "meta");
	/* every walker's state is registered with the kind it declared; a name
	 * two walkers declare ("tcache") is one state */
	for (size_t w = 0; w < hs_nwalkers; w++) {
		const uint8_t *ids = hs_walker_state_ids(w);
		for (size_t k = 0; k < hs_walkers[w]->nstates; k++) {
			assert_string_equal(hs_where_name(ids[k]), hs_walkers[w]->states[k].name);
			assert_int_equal(hs_where_kind(ids[k]), hs_walkers[w]->states[k].kind);
			assert_true(ids[k] >= HS_WHERE_SHARED);
		}
	}
	assert_int_equal(hs_walker_state_ids(0)[0], hs_where_by_name("tcache"));
	assert_int_equal(hs_walker_state_ids(1)[1], hs_where_by_name("tcache"));
	int free_id = hs_where_by_name("dummy-free");
	assert_true(free_id >= HS_WHERE_SHARED);
	assert_true(hs_where_is_free((unsigned)free_id));
	assert_string_equal(hs_where_description((unsigned)free_id), "on the dummy allocator's free list");
	assert_int_equal(hs_where_by_name("no-such-state"), -1);
	/* display order: used kinds, meta, the walkers' free states, shared free */
	static const char *const expect[] = { "used", "mmapped", "large", "meta", "tcache", "fastbin",
					      "unsorted", "smallbin", "largebin", "top", "slab", "extent",
					      "dummy-free", "dummy-cached", "pool", "free-unlisted", NULL };
	const char *const *names = hs_where_names();
	size_t i = 0;
	for (; expect[i]; i++)
		assert_string_equal(names[i], expect[i]);
	assert_null(names[i]);
	assert_int_equal(hs_where_count(), i);
	/* the public allocator names come from the table */
	const char *const *alloc = hs_allocator_names();
	assert_string_equal(alloc[0], "auto");
	assert_string_equal(alloc[3], "dummy");
	assert_null(alloc[4]);
	assert_string_equal(hs_walker_titles(), "glibc ptmalloc, jemalloc, dummy test allocator");
}

/* --- the dummy allocator on a core ---------------------------------------- */

#define HEAP UINT64_C(0x10000)
static char *tmpdir, *core_path;

static int group_setup(void **state)
{
	(void)state;
	tmpdir = synth_core_mkdtemp();
	if (!tmpdir)
		return -1;
	uint64_t mem[512] = { 0 };
	memcpy(mem, DUMMY_MAGIC, 8);
	mem[1] = 4;
	static const uint64_t recs[4][2] = { { 0x20, 0 }, { 0x30, 1 }, { 0x40, 2 }, { 0x50, 1 } };
	for (int i = 0; i < 4; i++)
		mem[2 + 2 * i] = recs[i][0], mem[3 + 2 * i] = recs[i][1];
	struct synth_core *sc = synth_core_create();
	struct synth_core_thread th = { .tid = 7 };
	synth_core_add_prstatus(sc, &th);
	synth_core_add_load(sc, HEAP, sizeof(mem), sizeof(mem), 6, mem);
	core_path = synth_core_path(tmpdir, "dummy.core");
	int rc = synth_core_write(sc, core_path);
	synth_core_destroy(sc);
	return rc;
}

static int group_teardown(void **state)
{
	(void)state;
	synth_core_rmdir(tmpdir);
	free(tmpdir);
	free(core_path);
	return 0;
}

struct capture { char *text; size_t len; };

static int capture_write(void *ctx, const char *buf, size_t len)
{
	struct capture *c = ctx;
	char *t = realloc(c->text, c->len + len + 1);
	if (!t)
		return 1;
	memcpy(t + c->len, buf, len);
	c->len += len;
	t[c->len] = 0;
	c->text = t;
	return 0;
}

/* Run argv on the dummy core; the output (malloc'd), the status in *status. */
static char *run(const char *allocator, bool json, const char *const *argv, int *status)
{
	struct hs_options opts = { .no_debuginfo = 1, .allocator = allocator, .overrides = "dummy_heap=0x10000" };
	struct hs_session *s = NULL;
	assert_null(hs_session_open_core(core_path, &opts, &s));
	int argc = 0;
	while (argv[argc])
		argc++;
	struct capture c = { 0 };
	struct hs_error *err = hs_session_run(s, argc, argv, json ? HS_FORMAT_JSON : HS_FORMAT_TEXT,
					      capture_write, &c, status);
	if (err)
		fail_msg("%s: %s", argv[0], hs_error_message(err));
	hs_session_destroy(s);
	return c.text ? c.text : strdup("");
}

static void test_dummy_walker(void **state)
{
	(void)state;
	int status;
	/* --allocator dummy and auto find it; --where takes its state */
	const char *const chunks[] = { "chunks", "--where", "dummy-free", NULL };
	const char *const *modes[] = { (const char *const[]){ "dummy" }, (const char *const[]){ "auto" } };
	for (size_t m = 0; m < 2; m++) {
		char *out = run(modes[m][0], true, chunks, &status);
		assert_int_equal(status, 0);
		assert_non_null(strstr(out, "\"where\": \"dummy-free\""));
		assert_non_null(strstr(out, "\"address\": 65712"));   /* 0x10000 + 0x90 + 0x20 */
		assert_non_null(strstr(out, "\"address\": 65824"));   /* + 0x30 + 0x40 */
		assert_null(strstr(out, "dummy-cached"));
		free(out);
	}
	const char *const summary[] = { "summary", NULL };
	char *out = run("dummy", false, summary, &status);
	assert_non_null(strstr(out, "Allocator:  dummy 1.0, 1 arena (layout: built-in)"));
	assert_non_null(strstr(out, "dummy-free"));
	assert_non_null(strstr(out, "dummy-cached"));
	free(out);
	const char *const arenas[] = { "arenas", NULL };
	out = run("dummy", true, arenas, &status);
	assert_non_null(strstr(out, "\"allocator\": \"dummy\""));
	assert_non_null(strstr(out, "\"name\": \"dummy 0\""));
	free(out);
	/* an unknown allocator: the message lists the table's */
	struct hs_options opts = { .no_debuginfo = 1, .allocator = "nosuch" };
	struct hs_session *s = NULL;
	struct hs_error *err = hs_session_open_core(core_path, &opts, &s);
	assert_non_null(err);
	assert_string_equal(hs_error_message(err), "unknown allocator 'nosuch': use glibc, jemalloc, dummy or auto");
	hs_error_destroy(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vec),
		cmocka_unit_test(test_chain),
		cmocka_unit_test(test_diag_limits),
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_dummy_walker),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
