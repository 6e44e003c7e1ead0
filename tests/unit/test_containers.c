/* test_containers.c - the container recognisers on synthetic memory: a good
 * libstdc++ hashtable and red-black tree are found with their exact numbers;
 * the same with a count that lies, a chain that loops, a bucket pointing
 * outside its nodes, a tree whose child names another parent, a tree deeper
 * than red-black allows, a wrong colour, are never called containers (no
 * DWARF vouches for them); and words that only look like pointers make none.
 * Tables in heap blocks, probed as the scan reads the blocks, are walked in
 * address order however the scan's parts took the blocks, and one in a
 * block cut short by the end of the core is probed all the same.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include "containers.h"
#include "graph.h"
#include "session.h"
#include "target.h"
#include "types.h"
#include "unit_util.h"

/* [BASE, BASE + SIZE): root memory (the container objects) below HEAP, and
 * NBLOCKS used 0x78-byte blocks from HEAP, 0x80 apart. */
#define BASE 0x100000u
#define SIZE 0x20000u
#define HEAP (BASE + 0x4000)
#define NBLOCKS 256
#define BLOCK(i) (HEAP + 0x80u * (i))
#define BLOCK_SIZE 0x78u

struct synth {
	uint8_t mem[SIZE];
};

static void w64(struct synth *x, uint64_t addr, uint64_t v)
{
	memcpy(x->mem + (addr - BASE), &v, 8);
}

static uint64_t float_word(float f)
{
	uint32_t bits;
	memcpy(&bits, &f, 4);
	return bits;
}

/* heap_region: the blocks' memory is an allocator's heap, not a root (the
 * containers in blocks are then found by probing the heap's blocks), up to
 * the end of the segment and beyond; with it, one more block of BLOCK_SIZE
 * bytes at TAIL, its last bytes past the segment: not in the core. */
#define TAIL (BASE + SIZE - 0x40)
static struct hs_session *open_synth_jobs(struct synth *x, int jobs, bool heap_region)
{
	struct hs_segment seg = { .start = BASE, .end = BASE + SIZE, .filesz = SIZE, .data = x->mem,
				  .flags = HS_SEG_R | HS_SEG_W };
	struct hs_target *t;
	assert_null(hs_target_open_buffers(&seg, 1, &t));
	struct hs_session *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	s->target = t;
	s->jobs = jobs;
	if (heap_region) {
		s->desc = calloc(1, sizeof(*s->desc));
		assert_non_null(s->desc);
		s->ndesc = s->capdesc = 1;
		s->desc[0].regions = calloc(1, sizeof(*s->desc[0].regions));
		assert_non_null(s->desc[0].regions);
		s->desc[0].regions[0] = (struct hs_region){ .start = HEAP, .end = TAIL + 0x1000, .kind = HS_REGION_HEAP };
		s->desc[0].nregions = s->desc[0].capregions = 1;
	}
	hs_diags_init(&s->diags);
	hs_heap_init(&s->heap);
	for (unsigned i = 0; i < NBLOCKS; i++)
		assert_null(hs_heap_add(&s->heap, BLOCK(i), BLOCK_SIZE, HS_WHERE_USED, 0));
	if (heap_region)
		assert_null(hs_heap_add(&s->heap, TAIL, BLOCK_SIZE, HS_WHERE_USED, 0));
	size_t dropped;
	assert_null(hs_heap_finish(&s->heap, &dropped));
	s->heap_done = true;
	assert_null(hs_session_need_types(s));
	assert_null(hs_session_need_container_retained(s));
	return s;
}

static struct hs_session *open_synth(struct synth *x)
{
	return open_synth_jobs(x, 0, false);
}

/* A libstdc++ _Hashtable at obj (containers_hashtable.c's layout): nodes
 * n[0..nn) linked in that order, buckets at the block bucket_block with
 * bucket_count buckets, first_of[i] the node index each non-empty bucket
 * begins with (its bucket word holds the node before it). */
struct ht {
	uint64_t obj;
	unsigned bucket_block, bucket_count;
	const unsigned *nodes;
	size_t nn;
	uint64_t count;               /* what the object says */
	const unsigned (*first_of)[2];  /* {bucket, index in nodes} */
	size_t nfirst;
};

static void put_ht(struct synth *x, const struct ht *h)
{
	w64(x, h->obj + 0, BLOCK(h->bucket_block));
	w64(x, h->obj + 8, h->bucket_count);
	w64(x, h->obj + 16, h->nn ? BLOCK(h->nodes[0]) : 0);
	w64(x, h->obj + 24, h->count);
	w64(x, h->obj + 32, float_word(1.0f));
	w64(x, h->obj + 40, h->bucket_count);
	w64(x, h->obj + 48, 0);
	for (size_t i = 0; i < h->nn; i++) {
		w64(x, BLOCK(h->nodes[i]), i + 1 < h->nn ? BLOCK(h->nodes[i + 1]) : 0);
		w64(x, BLOCK(h->nodes[i]) + 8, 1000 + i);        // the key
	}
	for (size_t i = 0; i < h->nfirst; i++) {
		unsigned b = h->first_of[i][0], k = h->first_of[i][1];
		w64(x, BLOCK(h->bucket_block) + 8 * b, k == 0 ? h->obj + 16 : BLOCK(h->nodes[k - 1]));
	}
}

/* A libstdc++ _Rb_tree at obj: node i's {parent, left, right, colour}
 * given as block numbers (-1: none; parent -1: the header). */
struct rb_node {
	unsigned block;
	int parent, left, right;
	unsigned color;
};

static void put_rb(struct synth *x, uint64_t obj, const struct rb_node *v, size_t n, int root, int leftmost,
		   int rightmost, uint64_t count)
{
	uint64_t header = obj + 8;
	w64(x, obj + 8, 0);       // the header is red
	w64(x, obj + 16, root >= 0 ? BLOCK(v[root].block) : 0);
	w64(x, obj + 24, leftmost >= 0 ? BLOCK(v[leftmost].block) : header);
	w64(x, obj + 32, rightmost >= 0 ? BLOCK(v[rightmost].block) : header);
	w64(x, obj + 40, count);
	for (size_t i = 0; i < n; i++) {
		uint64_t a = BLOCK(v[i].block);
		w64(x, a, v[i].color);
		w64(x, a + 8, v[i].parent < 0 ? header : BLOCK(v[v[i].parent].block));
		w64(x, a + 16, v[i].left < 0 ? 0 : BLOCK(v[v[i].left].block));
		w64(x, a + 24, v[i].right < 0 ? 0 : BLOCK(v[v[i].right].block));
		w64(x, a + 32, 10 * i);
	}
}

static const struct hs_container *at(struct hs_session *s, uint64_t obj)
{
	return hs_container_at(s->containers, obj);
}

/* Three nodes in two buckets (5 buckets): the longest chain is 2. */
static const unsigned good_nodes[] = { 1, 2, 3 };
static const unsigned good_first[][2] = { { 0, 0 }, { 3, 2 } };

static void test_hashtable_good(void **state)
{
	(void)state;
	static struct synth x;
	memset(&x, 0, sizeof(x));
	struct ht h = { .obj = BASE + 0x100, .bucket_block = 0, .bucket_count = 5, .nodes = good_nodes, .nn = 3,
			.count = 3, .first_of = good_first, .nfirst = 2 };
	put_ht(&x, &h);
	struct hs_session *s = open_synth(&x);
	const struct hs_container *c = at(s, h.obj);
	assert_non_null(c);
	assert_string_equal(c->kind->family, "hashtable");
	assert_int_equal(c->count, 3);
	assert_int_equal(c->buckets, 5);
	assert_int_equal(c->max_chain, 2);
	assert_int_equal(c->height, -1);
	assert_int_equal(c->nblocks, 4);
	assert_int_equal(c->bytes, 4 * BLOCK_SIZE);
	assert_int_equal(c->retained, 4 * BLOCK_SIZE);
	assert_non_null(c->anchor);                 // reached from root memory
	assert_int_equal(s->containers->n, 1);
	hs_session_destroy(s);
}

static void test_hashtable_broken(void **state)
{
	(void)state;
	static struct synth x;
	// 1: a count that lies; 2: a chain that loops back; 3: a bucket that
	// points at a block that is not one of its nodes; 4: two buckets
	// beginning at the same node.
	static const unsigned nodes[4][3] = { { 10, 11, 12 }, { 20, 21, 22 }, { 30, 31, 32 }, { 40, 41, 42 } };
	static const unsigned first_bad[][2] = { { 0, 0 }, { 3, 2 } };
	static const unsigned first_dup[][2] = { { 0, 0 }, { 3, 1 }, { 4, 1 } };
	memset(&x, 0, sizeof(x));
	struct ht lies = { .obj = BASE + 0x100, .bucket_block = 9, .bucket_count = 5, .nodes = nodes[0], .nn = 3,
			   .count = 4, .first_of = first_bad, .nfirst = 2 };
	struct ht loop = { .obj = BASE + 0x200, .bucket_block = 19, .bucket_count = 5, .nodes = nodes[1], .nn = 3,
			   .count = 3, .first_of = first_bad, .nfirst = 2 };
	struct ht stray = { .obj = BASE + 0x300, .bucket_block = 29, .bucket_count = 5, .nodes = nodes[2], .nn = 3,
			    .count = 3, .first_of = first_bad, .nfirst = 2 };
	struct ht dup = { .obj = BASE + 0x400, .bucket_block = 39, .bucket_count = 5, .nodes = nodes[3], .nn = 3,
			  .count = 3, .first_of = first_dup, .nfirst = 3 };
	put_ht(&x, &lies);
	put_ht(&x, &loop);
	w64(&x, BLOCK(22), BLOCK(20));
	put_ht(&x, &stray);
	w64(&x, BLOCK(29) + 8 * 3, BLOCK(100));
	put_ht(&x, &dup);
	// The control: the same shape, intact, is found.
	static const unsigned ok_nodes[] = { 50, 51, 52 };
	struct ht ok = { .obj = BASE + 0x500, .bucket_block = 49, .bucket_count = 5, .nodes = ok_nodes, .nn = 3,
			 .count = 3, .first_of = first_bad, .nfirst = 2 };
	put_ht(&x, &ok);
	struct hs_session *s = open_synth(&x);
	assert_null(at(s, lies.obj));
	assert_null(at(s, loop.obj));
	assert_null(at(s, stray.obj));
	assert_null(at(s, dup.obj));
	assert_non_null(at(s, ok.obj));
	assert_int_equal(at(s, ok.obj)->count, 3);
	assert_int_equal(s->containers->n, 1);
	// A refused candidate leaves no block owned.
	for (size_t i = 0; i < s->analysis->n; i++)
		assert_int_equal(s->containers->owner[i] != 0, s->heap.blocks[i].address >= BLOCK(49) &&
				 s->heap.blocks[i].address <= BLOCK(52));
	hs_session_destroy(s);
}

/* A valid 5-node red-black tree: a black root with two black children, a
 * red leaf left of the left child (leftmost) and right of the right child
 * (rightmost); height 3. */
static const struct rb_node good_tree[] = {
	{ 50, -1, 1, 2, 1 },      // 0: root, black
	{ 51, 0, 3, -1, 1 },      // 1: black
	{ 52, 0, -1, 4, 1 },      // 2: black
	{ 53, 1, -1, -1, 0 },     // 3: red, leftmost
	{ 54, 2, -1, -1, 0 },     // 4: red, rightmost
};

static void test_rbtree_good(void **state)
{
	(void)state;
	static struct synth x;
	memset(&x, 0, sizeof(x));
	uint64_t obj = BASE + 0x100;
	put_rb(&x, obj, good_tree, 5, 0, 3, 4, 5);
	struct hs_session *s = open_synth(&x);
	const struct hs_container *c = at(s, obj);
	assert_non_null(c);
	assert_string_equal(c->kind->family, "rbtree");
	assert_int_equal(c->count, 5);
	assert_int_equal(c->height, 3);
	assert_int_equal(c->buckets, -1);
	assert_int_equal(c->nblocks, 5);
	assert_int_equal(c->bytes, 5 * BLOCK_SIZE);
	assert_int_equal(s->containers->n, 1);
	hs_session_destroy(s);
}

static void test_rbtree_broken(void **state)
{
	(void)state;
	static struct synth x;
	memset(&x, 0, sizeof(x));
	struct rb_node t[5];
	// 1: a count that lies.
	memcpy(t, good_tree, sizeof(t));
	for (int i = 0; i < 5; i++)
		t[i].block = 60 + (unsigned)i;
	put_rb(&x, BASE + 0x100, t, 5, 0, 3, 4, 6);
	// 2: a child that names another parent.
	for (int i = 0; i < 5; i++)
		t[i].block = 70 + (unsigned)i;
	put_rb(&x, BASE + 0x200, t, 5, 0, 3, 4, 5);
	w64(&x, BLOCK(74) + 8, BLOCK(71));
	// 3: a leaf whose left link loops back to the root (the parent check
	// catches the loop at once).
	for (int i = 0; i < 5; i++)
		t[i].block = 80 + (unsigned)i;
	put_rb(&x, BASE + 0x300, t, 5, 0, 3, 4, 5);
	w64(&x, BLOCK(83) + 16, BLOCK(80));
	// 4: a red root.
	for (int i = 0; i < 5; i++)
		t[i].block = 90 + (unsigned)i;
	t[0].color = 0;
	put_rb(&x, BASE + 0x400, t, 5, 0, 3, 4, 5);
	t[0].color = 1;
	// 5: leftmost not the tree's first node.
	for (int i = 0; i < 5; i++)
		t[i].block = 100 + (unsigned)i;
	put_rb(&x, BASE + 0x500, t, 5, 0, 1, 4, 5);
	// The control: the same tree, intact, is found.
	for (int i = 0; i < 5; i++)
		t[i].block = 110 + (unsigned)i;
	put_rb(&x, BASE + 0x600, t, 5, 0, 3, 4, 5);
	struct hs_session *s = open_synth(&x);
	assert_int_equal(s->containers->n, 1);
	assert_non_null(at(s, BASE + 0x600));
	for (size_t i = 0; i < s->analysis->n; i++)
		assert_int_equal(s->containers->owner[i] != 0, s->heap.blocks[i].address >= BLOCK(110) &&
				 s->heap.blocks[i].address <= BLOCK(114));
	hs_session_destroy(s);
}

/* A long list of nodes, each the parent of the next (a degenerate "tree"
 * deeper than red-black allows): refused, and the walk is bounded. */
static void test_rbtree_too_deep(void **state)
{
	(void)state;
	static struct synth x;
	memset(&x, 0, sizeof(x));
	static struct rb_node chain[200];
	for (int i = 0; i < 200; i++)
		chain[i] = (struct rb_node){ (unsigned)i + 20, i - 1, i + 1 < 200 ? i + 1 : -1, -1, 1 };
	put_rb(&x, BASE + 0x100, chain, 200, 0, 199, 0, 200);
	struct hs_session *s = open_synth(&x);
	assert_int_equal(s->containers->n, 0);
	hs_session_destroy(s);
}

/* Root memory and blocks full of words that point into the heap, at block
 * starts and inside, with small integers between: no container. */
/* Two tables in heap blocks (an allocator's heap, not roots) claim the same
 * nodes: the first in address order is the container, the other's walk
 * finds them taken.  The scan
 * probes the heap's blocks as it reads them; here on two parts cut small
 * and run one after the other, so that the first part, done with its half,
 * takes the back half of the second's (blocks 192-255) before blocks
 * 144-159: its hits come out of address order, and are walked in it all the
 * same, as when the containers stage probes the heap on its own. */
static void test_heap_tables_in_address_order(void **state)
{
	(void)state;
	static struct synth x;
	static const unsigned shared[] = { 152, 153, 154 };
	static const unsigned first[][2] = { { 0, 0 }, { 3, 2 } };
	const struct ht a = { .obj = BLOCK(150), .bucket_block = 151, .bucket_count = 5, .nodes = shared, .nn = 3,
			      .count = 3, .first_of = first, .nfirst = 2 };
	struct ht b = a;
	b.obj = BLOCK(200);
	b.bucket_block = 201;
	setenv("HEAPSCOPE_TEST_SMALL_SPLITS", "1", 1);
	setenv("HEAPSCOPE_TEST_NO_THREADS", "1", 1);
	for (int alone = 0; alone < 2; alone++) {
		if (alone)
			setenv("HEAPSCOPE_TEST_PROBE_AFTER_SCAN", "1", 1);
		memset(&x, 0, sizeof(x));
		put_ht(&x, &b);
		put_ht(&x, &a);
		struct hs_session *s = open_synth_jobs(&x, 2, true);
		const struct hs_container *c = at(s, a.obj);
		assert_non_null(c);
		assert_int_equal(c->count, 3);
		assert_null(at(s, b.obj));
		assert_int_equal(s->containers->n, 1);
		hs_session_destroy(s);
	}
	unsetenv("HEAPSCOPE_TEST_PROBE_AFTER_SCAN");
	unsetenv("HEAPSCOPE_TEST_NO_THREADS");
	unsetenv("HEAPSCOPE_TEST_SMALL_SPLITS");
}

/* A table in a block whose end is not in the core: the scan does not read
 * the block, and discovery probes what of it was dumped. */
static void test_heap_table_in_a_block_cut_short(void **state)
{
	(void)state;
	static struct synth x;
	static const unsigned nodes[] = { 11, 12, 13 };
	static const unsigned first[][2] = { { 0, 0 }, { 3, 2 } };
	const struct ht h = { .obj = TAIL, .bucket_block = 10, .bucket_count = 5, .nodes = nodes, .nn = 3,
			      .count = 3, .first_of = first, .nfirst = 2 };
	for (int alone = 0; alone < 2; alone++) {
		if (alone)
			setenv("HEAPSCOPE_TEST_PROBE_AFTER_SCAN", "1", 1);
		memset(&x, 0, sizeof(x));
		put_ht(&x, &h);
		struct hs_session *s = open_synth_jobs(&x, 2, true);
		const struct hs_container *c = at(s, h.obj);
		assert_non_null(c);
		assert_int_equal(c->count, 3);
		assert_int_equal(c->buckets, 5);
		assert_int_equal(s->containers->n, 1);
		hs_session_destroy(s);
	}
	unsetenv("HEAPSCOPE_TEST_PROBE_AFTER_SCAN");
}

/* A table whose object is the last words of its block is found; one a word
 * further on, its last word past the block's end, is not: a container lies
 * in one block (both ways of probing). */
static void test_heap_table_at_a_block_end(void **state)
{
	(void)state;
	static struct synth x;
	static const unsigned nodes[] = { 21, 22, 23 };
	static const unsigned first[][2] = { { 0, 0 }, { 3, 2 } };
	for (int alone = 0; alone < 2; alone++) {
		if (alone)
			setenv("HEAPSCOPE_TEST_PROBE_AFTER_SCAN", "1", 1);
		for (uint64_t past = 0; past < 2; past++) {
			const struct ht h = { .obj = BLOCK(20) + BLOCK_SIZE - 56 + 8 * past, .bucket_block = 24,
					      .bucket_count = 5, .nodes = nodes, .nn = 3, .count = 3,
					      .first_of = first, .nfirst = 2 };
			memset(&x, 0, sizeof(x));
			put_ht(&x, &h);
			struct hs_session *s = open_synth_jobs(&x, 2, true);
			const struct hs_container *c = at(s, h.obj);
			if (past) {
				assert_null(c);
				assert_int_equal(s->containers->n, 0);
			} else {
				assert_non_null(c);
				assert_int_equal(c->count, 3);
			}
			hs_session_destroy(s);
		}
	}
	unsetenv("HEAPSCOPE_TEST_PROBE_AFTER_SCAN");
}

static void test_no_false_positives(void **state)
{
	(void)state;
	static struct synth x;
	memset(&x, 0, sizeof(x));
	uint64_t seed = 0x9e3779b97f4a7c15u;
	for (uint64_t a = BASE; a + 8 <= BASE + SIZE; a += 8) {
		seed = seed * 6364136223846793005u + 1442695040888963407u;
		uint64_t r = seed >> 33, v;
		switch (r % 4) {
		case 0: v = BLOCK(r % NBLOCKS); break;
		case 1: v = BLOCK(r % NBLOCKS) + 8 * (r % 15); break;
		case 2: v = r % 8; break;
		default: v = float_word(1.0f); break;
		}
		w64(&x, a, v);
	}
	struct hs_session *s = open_synth(&x);
	assert_int_equal(s->containers->n, 0);
	hs_session_destroy(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hashtable_good),
		cmocka_unit_test(test_hashtable_broken),
		cmocka_unit_test(test_rbtree_good),
		cmocka_unit_test(test_rbtree_broken),
		cmocka_unit_test(test_rbtree_too_deep),
		cmocka_unit_test(test_heap_tables_in_address_order),
		cmocka_unit_test(test_heap_table_in_a_block_cut_short),
		cmocka_unit_test(test_heap_table_at_a_block_end),
		cmocka_unit_test(test_no_false_positives),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
