/* containers_hashtable.c - libstdc++'s _Hashtable: std::unordered_map,
 * unordered_set, unordered_multimap, unordered_multiset.
 *
 * Layout (GCC 5 and later, x86-64; the source of these offsets is
 * bits/hashtable.h and bits/hashtable_policy.h):
 *
 *   +0   _M_buckets         node_base **: the bucket array, or &_M_single_bucket
 *   +8   _M_bucket_count
 *   +16  _M_before_begin    node_base: its _M_nxt is the first node
 *   +24  _M_element_count
 *   +32  _M_rehash_policy   float _M_max_load_factor; size_t _M_next_resize
 *   +48  _M_single_bucket   the bucket when there is only one
 *
 *   node: +0 _M_nxt, +8 the value (the key first), then the cached hash
 *   code when the hash function is slow.
 *
 * All elements are on one singly linked list; a non-empty bucket holds the
 * node BEFORE its first node (&_M_before_begin for the bucket of the first
 * node), and a bucket's nodes are consecutive on the list.  So the chains are
 * the runs between the first nodes of the buckets: no hash function needed.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "containers.h"
#include "graph.h"
#include "target.h"

enum {
	HT_BUCKETS = 0, HT_BUCKET_COUNT = 1, HT_BEFORE_BEGIN = 2, HT_COUNT = 3, HT_MAX_LOAD = 4,
	HT_SINGLE_BUCKET = 6, HT_WORDS = 7,
	HT_NODE_VALUE = 8,               /* bytes from a node to its value */
	HT_MAX_BUCKETS = 1 << 30,
};

static bool plausible_load(uint64_t w)
{
	uint32_t bits = (uint32_t)w;
	float f;
	memcpy(&f, &bits, 4);
	return f > 0.0f && f <= 1000.0f;
}

static bool ht_probe(struct hs_cwalk *cw, uint64_t addr, const uint64_t *w)
{
	uint64_t bc = w[HT_BUCKET_COUNT], count = w[HT_COUNT];
	if (bc == 0 || bc > HT_MAX_BUCKETS || count == 0 || count > HS_CONTAINER_MAX_NODES ||
	    !plausible_load(w[HT_MAX_LOAD]))
		return false;
	if (bc == 1)
		return w[HT_BUCKETS] == addr + 8 * HT_SINGLE_BUCKET;
	return hs_cwalk_block(cw, w[HT_BUCKETS]) >= 0 && hs_cwalk_block(cw, w[HT_BEFORE_BEGIN]) >= 0;
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return (a > b) - (a < b);
}

// The chains: check every bucket, find the longest run.
static bool ht_chains(struct hs_cwalk *cw, uint64_t addr, const uint64_t *w, const uint32_t *nodes, size_t n)
{
	const struct hs_containers_input *in = cw->in;
	uint64_t bc = w[HT_BUCKET_COUNT];
	uint64_t before_begin = addr + 8 * HT_BEFORE_BEGIN;
	if (w[HT_BUCKETS] & 7)
		return hs_cwalk_fail(cw, "the bucket array 0x%" PRIx64 " is misaligned", w[HT_BUCKETS]);
	const uint64_t *b = (const uint64_t *)hs_memory_span(in->mem, w[HT_BUCKETS], bc * 8);
	if (!b)
		return hs_cwalk_fail(cw, "the bucket array 0x%" PRIx64 " is not in the core", w[HT_BUCKETS]);
	uint64_t *starts = malloc((n ? n : 1) * sizeof(uint64_t));
	if (!starts) {
		cw->nomem = true;
		return hs_cwalk_fail(cw, "out of memory");
	}
	size_t nstarts = 0;
	bool ok = true;
	for (uint64_t i = 0; i < bc && ok; i++) {
		if (!b[i])
			continue;
		uint64_t first;
		if (b[i] == before_begin) {
			first = w[HT_BEFORE_BEGIN];
		} else {
			ptrdiff_t k = hs_cwalk_block(cw, b[i]);
			if (k < 0 || cw->cs->owner[k] != cw->id) {
				ok = hs_cwalk_fail(cw, "bucket %" PRIu64 " points at 0x%" PRIx64 ", not at one of its nodes", i, b[i]);
				break;
			}
			ok = hs_cwalk_u64(cw, b[i], &first);
		}
		if (ok && nstarts == n)
			ok = hs_cwalk_fail(cw, "more non-empty buckets than elements");
		if (ok)
			starts[nstarts++] = first;
	}
	if (ok) {
		qsort(starts, nstarts, sizeof(*starts), cmp_u64);
		for (size_t i = 1; i < nstarts && ok; i++)
			if (starts[i] == starts[i - 1])
				ok = hs_cwalk_fail(cw, "two buckets begin at node 0x%" PRIx64, starts[i]);
	}
	uint64_t run = 0, longest = 0;
	for (size_t i = 0; i < n && ok; i++) {
		uint64_t node = in->heap->blocks[nodes[i]].address;
		if (bsearch(&node, starts, nstarts, sizeof(*starts), cmp_u64)) {
			if (run > longest)
				longest = run;
			run = 1;
		} else if (i == 0) {
			ok = hs_cwalk_fail(cw, "no bucket begins at the first node");
		} else {
			run++;
		}
	}
	if (run > longest)
		longest = run;
	free(starts);
	cw->c->max_chain = (int64_t)longest;
	return ok;
}

static bool ht_walk(struct hs_cwalk *cw, uint64_t addr, const uint64_t *w)
{
	struct hs_container *c = cw->c;
	uint64_t bc = w[HT_BUCKET_COUNT], count = w[HT_COUNT];
	c->buckets = (int64_t)bc;
	if (bc == 0 || bc > HT_MAX_BUCKETS)
		return hs_cwalk_fail(cw, "bucket count %" PRIu64 " is impossible", bc);
	if (count > HS_CONTAINER_MAX_NODES)
		return hs_cwalk_fail(cw, "element count %" PRIu64 " is too large", count);
	if (bc == 1 ? w[HT_BUCKETS] != addr + 8 * HT_SINGLE_BUCKET : !hs_cwalk_own(cw, w[HT_BUCKETS], HS_ROLE_BUCKETS))
		return hs_cwalk_fail(cw, "the bucket array 0x%" PRIx64 " is not an allocation", w[HT_BUCKETS]);
	if (bc > 1 && !cw->verify_only) {
		ptrdiff_t k = hs_cwalk_block(cw, w[HT_BUCKETS]);
		if (hs_block_size(&cw->in->heap->blocks[k]) < bc * 8)
			return hs_cwalk_fail(cw, "the bucket array is smaller than %" PRIu64 " buckets", bc);
	}
	size_t first_node = cw->nowned;
	uint64_t node = w[HT_BEFORE_BEGIN], n = 0;
	while (node) {
		if (n == count)
			return hs_cwalk_fail(cw, "more nodes than its count (%" PRIu64 "), or a cycle", count);
		if (!hs_cwalk_own(cw, node, HS_ROLE_NODE))
			return false;
		if (cw->entry) {
			if (cw->listed++ >= cw->limit)
				return true;
			cw->entry(cw, node, node + HT_NODE_VALUE, 0, 0);
		}
		if (!hs_cwalk_u64(cw, node, &node))
			return false;
		n++;
	}
	c->count = n;
	if (n != count)
		return hs_cwalk_fail(cw, "its count says %" PRIu64 " elements, %" PRIu64 " nodes are linked", count, n);
	if (cw->verify_only || bc == 1) {
		c->max_chain = n;
		return true;
	}
	return ht_chains(cw, addr, w, cw->owned + first_node, cw->nowned - first_node);
}

static bool ht_node_key(struct hs_cwalk *cw, uint64_t node, uint64_t *key, uint64_t *key_len)
{
	(void)cw;
	*key = node + HT_NODE_VALUE;
	*key_len = 0;
	return true;
}

const struct hs_container_kind hs_kind_hashtable = {
	.name = "std::_Hashtable",
	.family = "hashtable",
	.size = 8 * HT_WORDS,
	.anchor_word = HT_BEFORE_BEGIN,
	.key_kind = HS_KEY_UNKNOWN,
	.filter_word = HT_BUCKET_COUNT, .filter_mask = UINT64_MAX, .filter_lo = 1, .filter_hi = HT_MAX_BUCKETS,
	.probe = ht_probe,
	.walk = ht_walk,
	.node_key = ht_node_key,
};
