/* containers_uthash.c - uthash (troydhanson/uthash 2.x): hash tables whose
 * handle (UT_hash_handle) is a member of the program's own structs.
 *
 * Layout (uthash.h, x86-64):
 *
 *   UT_hash_table (malloc'd):  +0 buckets, +8 num_buckets (u32),
 *     +12 log2_num_buckets, +16 num_items, +24 tail (a handle), +32 hho
 *     (offset of the handle in the element), +40 ideal_chain_maxlen,
 *     +44 nonideal_items, +48 ineff_expands, +52 noexpand, +56 signature
 *     (HASH_SIGNATURE 0xa0111fe1)
 *   UT_hash_bucket (16 bytes): +0 hh_head, +8 count, +12 expand_mult
 *   UT_hash_handle: +0 tbl, +8 prev (element), +16 next (element),
 *     +24 hh_prev, +32 hh_next (handles, bucket order), +40 key, +48 keylen,
 *     +52 hashv
 *
 * The table is found at allocation starts by its signature; the elements are
 * its nodes (they hold the handles), the anchor is what points at the head.
 */
#include <inttypes.h>
#include <string.h>
#include "containers.h"
#include "target.h"

enum {
	UT_BUCKETS = 0, UT_NBUCKETS = 1, UT_NITEMS = 2, UT_TAIL = 3, UT_HHO = 4, UT_SIGWORD = 7, UT_WORDS = 8,
	UT_SIGNATURE = 0xa0111fe1u,
	UT_BUCKET_SIZE = 16, UT_BUCKET_COUNT = 8,
	UTH_TBL = 0, UTH_PREV = 8, UTH_NEXT = 16, UTH_HH_NEXT = 32, UTH_KEY = 40, UTH_KEYLEN = 48,
	UT_MAX_HHO = 1 << 16, UT_MAX_BUCKETS = 1 << 30,
};

static bool ut_probe(struct hs_cwalk *cw, uint64_t addr, const uint64_t *w)
{
	(void)addr;
	uint32_t nb = (uint32_t)w[UT_NBUCKETS], log2 = (uint32_t)(w[UT_NBUCKETS] >> 32);
	return (uint32_t)w[UT_SIGWORD] == UT_SIGNATURE && log2 < 31 && nb == 1u << log2 &&
	       (uint32_t)w[UT_NITEMS] && hs_cwalk_block(cw, w[UT_BUCKETS]) >= 0;
}

static bool ut_walk(struct hs_cwalk *cw, uint64_t addr, const uint64_t *w)
{
	struct hs_container *c = cw->c;
	uint64_t nb = (uint32_t)w[UT_NBUCKETS], items = (uint32_t)w[UT_NITEMS];
	int64_t hho = (int64_t)w[UT_HHO];
	c->buckets = (int64_t)nb;
	if (nb == 0 || nb > UT_MAX_BUCKETS || hho < 0 || hho > UT_MAX_HHO)
		return hs_cwalk_fail(cw, "bucket count %" PRIu64 " or handle offset %" PRId64 " is impossible", nb, hho);
	if (!hs_cwalk_own(cw, addr, HS_ROLE_TABLE) || !hs_cwalk_own(cw, w[UT_BUCKETS], HS_ROLE_BUCKETS))
		return false;
	// Back from the tail to the head (application order).
	uint64_t h = w[UT_TAIL], n = 1, prev;
	for (;;) {
		if (!hs_cwalk_u64(cw, h + UTH_PREV, &prev))
			return false;
		if (!prev)
			break;
		if (n++ > items)
			return hs_cwalk_fail(cw, "more elements than its count (%" PRIu64 "), or a cycle", items);
		h = prev + (uint64_t)hho;
	}
	uint64_t head = h - (uint64_t)hho;
	c->handle = head;
	n = 0;
	for (uint64_t e = head; e;) {
		uint64_t hh = e + (uint64_t)hho, tbl, key, keylen;
		if (n++ >= items)
			return hs_cwalk_fail(cw, "more elements than its count (%" PRIu64 "), or a cycle", items);
		if (!hs_cwalk_u64(cw, hh + UTH_TBL, &tbl) || !hs_cwalk_u64(cw, hh + UTH_KEY, &key) ||
		    !hs_cwalk_u64(cw, hh + UTH_KEYLEN, &keylen))
			return false;
		if (tbl != addr)
			return hs_cwalk_fail(cw, "element 0x%" PRIx64 " belongs to table 0x%" PRIx64, e, tbl);
		// An element allocated alone is a node of the table's.
		if (hs_cwalk_block(cw, e) >= 0 && !hs_cwalk_own(cw, e, HS_ROLE_ELEMENT))
			return false;
		if (cw->entry) {
			if (cw->listed++ >= cw->limit)
				return true;
			cw->entry(cw, e, key, (uint32_t)keylen, 0);
		}
		if (!hs_cwalk_u64(cw, hh + UTH_NEXT, &e))
			return false;
	}
	c->count = n;
	if (n != items)
		return hs_cwalk_fail(cw, "its count says %" PRIu64 " elements, %" PRIu64 " are linked", items, n);
	if (cw->verify_only)
		return true;
	const uint8_t *b = hs_memory_span(cw->in->mem, w[UT_BUCKETS], nb * UT_BUCKET_SIZE);
	if (!b)
		return hs_cwalk_fail(cw, "its buckets are not in the core");
	uint64_t total = 0, longest = 0;
	for (uint64_t i = 0; i < nb; i++) {
		uint64_t hh, cnt = 0;
		uint32_t want;
		memcpy(&hh, b + i * UT_BUCKET_SIZE, 8);
		memcpy(&want, b + i * UT_BUCKET_SIZE + UT_BUCKET_COUNT, 4);
		while (hh) {
			if (cnt++ > items)
				return hs_cwalk_fail(cw, "bucket %" PRIu64 " loops", i);
			if (!hs_cwalk_u64(cw, hh + UTH_HH_NEXT, &hh))
				return false;
		}
		if (cnt != want)
			return hs_cwalk_fail(cw, "bucket %" PRIu64 " counts %u, holds %" PRIu64, i, want, cnt);
		total += cnt;
		if (cnt > longest)
			longest = cnt;
	}
	c->max_chain = (int64_t)longest;
	if (total != items)
		return hs_cwalk_fail(cw, "its buckets hold %" PRIu64 " elements, not %" PRIu64, total, items);
	return true;
}

static bool ut_node_key(struct hs_cwalk *cw, uint64_t node, uint64_t *key, uint64_t *key_len)
{
	uint64_t hho, len;
	if (!hs_cwalk_u64(cw, cw->c->address + 8 * UT_HHO, &hho) || hho > UT_MAX_HHO ||
	    !hs_cwalk_u64(cw, node + hho + UTH_KEY, key) || !hs_cwalk_u64(cw, node + hho + UTH_KEYLEN, &len))
		return false;
	*key_len = (uint32_t)len;
	return true;
}

const struct hs_container_kind hs_kind_uthash = {
	.name = "uthash",
	.family = "uthash",
	.size = 8 * UT_WORDS,
	.at_block_start = true,
	.key_kind = HS_KEY_BYTES,
	.filter_word = UT_SIGWORD, .filter_mask = UINT32_MAX, .filter_lo = UT_SIGNATURE, .filter_hi = UT_SIGNATURE,
	.probe = ut_probe,
	.walk = ut_walk,
	.node_key = ut_node_key,
};
