/* containers_ghash.c - GLib's GHashTable (open addressing).
 *
 * Layout of struct _GHashTable (glib/ghash.c, GLib 2.74 as in Debian 12,
 * x86-64; the same since small keys came in 2.59):
 *
 *   +0   gsize size            slots, a power of two (>= 8)
 *   +8   gint mod; +12 guint mask (size - 1)
 *   +16  guint nnodes; +20 guint noccupied (nodes + tombstones)
 *   +24  have_big_keys:1, have_big_values:1
 *   +32  keys    (8 bytes a slot when big keys, else 4)
 *   +40  hashes  (guint a slot: 0 unused, 1 tombstone, >= 2 in use)
 *   +48  values  (== keys for a set)
 *   +56  hash_func, +64 key_equal_func, +72 ref_count, +76 version,
 *   +80  key_destroy_func, +88 value_destroy_func
 *
 * The table owns its three arrays; keys and values are the program's (a
 * string key's bytes are what the key pointer points at).
 */
#include <inttypes.h>
#include <string.h>
#include "containers.h"
#include "graph.h"
#include "target.h"

enum {
	GH_SIZE = 0, GH_MOD_MASK = 1, GH_NODES = 2, GH_FLAGS = 3, GH_KEYS = 4, GH_HASHES = 5, GH_VALUES = 6,
	GH_HASH_FUNC = 7, GH_WORDS = 12,
	GH_BIG_KEYS = 1, GH_BIG_VALUES = 2,
	GH_MIN_SIZE = 8, GH_MAX_SIZE = 1 << 30,
	GH_TOMBSTONE = 1, GH_FIRST_HASH = 2,
};

static bool gh_probe(struct hs_cwalk *cw, uint64_t addr, const uint64_t *w)
{
	(void)addr;
	uint64_t size = w[GH_SIZE];
	uint32_t mask = (uint32_t)(w[GH_MOD_MASK] >> 32), nnodes = (uint32_t)w[GH_NODES],
		 noccupied = (uint32_t)(w[GH_NODES] >> 32);
	int32_t mod = (int32_t)w[GH_MOD_MASK];
	if (size < GH_MIN_SIZE || size > GH_MAX_SIZE || (size & (size - 1)) || mask != size - 1 || mod <= 0 ||
	    (uint64_t)mod > size || nnodes > noccupied || noccupied > size || (w[GH_FLAGS] >> 2))
		return false;
	return hs_cwalk_block(cw, w[GH_KEYS]) >= 0 && hs_cwalk_block(cw, w[GH_HASHES]) >= 0 &&
	       hs_cwalk_in_module(cw, w[GH_HASH_FUNC]);
}

static bool own_array(struct hs_cwalk *cw, uint64_t addr, uint64_t bytes, enum hs_block_role role)
{
	if (!hs_cwalk_own(cw, addr, role))
		return false;
	ptrdiff_t b = hs_cwalk_block(cw, addr);
	if (hs_block_size(&cw->in->heap->blocks[b]) < bytes)
		return hs_cwalk_fail(cw, "an array at 0x%" PRIx64 " is smaller than its %" PRIu64 " bytes", addr, bytes);
	return true;
}

static bool gh_walk(struct hs_cwalk *cw, uint64_t addr, const uint64_t *w)
{
	(void)addr;
	struct hs_container *c = cw->c;
	uint64_t size = w[GH_SIZE];
	uint32_t nnodes = (uint32_t)w[GH_NODES], noccupied = (uint32_t)(w[GH_NODES] >> 32);
	bool big_keys = w[GH_FLAGS] & GH_BIG_KEYS, big_values = w[GH_FLAGS] & GH_BIG_VALUES;
	c->buckets = (int64_t)size;
	if (size < GH_MIN_SIZE || size > GH_MAX_SIZE || (size & (size - 1)))
		return hs_cwalk_fail(cw, "size %" PRIu64 " is not a power of two", size);
	if (!hs_cwalk_in_module(cw, w[GH_HASH_FUNC]))
		return hs_cwalk_fail(cw, "its hash function 0x%" PRIx64 " is in no module", w[GH_HASH_FUNC]);
	if (!own_array(cw, w[GH_KEYS], size * (big_keys ? 8 : 4), HS_ROLE_KEYS) ||
	    !own_array(cw, w[GH_HASHES], size * 4, HS_ROLE_HASHES))
		return false;
	if (w[GH_VALUES] != w[GH_KEYS] && !own_array(cw, w[GH_VALUES], size * (big_values ? 8 : 4), HS_ROLE_VALUES))
		return false;
	if (w[GH_HASHES] & 3)
		return hs_cwalk_fail(cw, "its hash array 0x%" PRIx64 " is misaligned", w[GH_HASHES]);
	const uint32_t *hashes = (const uint32_t *)hs_memory_span(cw->in->mem, w[GH_HASHES], size * 4);
	const uint8_t *keys = hs_memory_span(cw->in->mem, w[GH_KEYS], size * (big_keys ? 8 : 4));
	const uint8_t *values = hs_memory_span(cw->in->mem, w[GH_VALUES], size * (big_values ? 8 : 4));
	if (!hashes || !keys || !values)
		return hs_cwalk_fail(cw, "its arrays are not in the core");
	uint64_t used = 0, tombstones = 0;
	for (uint64_t i = 0; i < size; i++) {
		if (hashes[i] == GH_TOMBSTONE)
			tombstones++;
		if (hashes[i] < GH_FIRST_HASH)
			continue;
		used++;
		if (cw->entry && cw->listed++ < cw->limit) {
			uint64_t k = 0, v = 0;
			memcpy(&k, keys + i * (big_keys ? 8 : 4), big_keys ? 8 : 4);
			memcpy(&v, values + i * (big_values ? 8 : 4), big_values ? 8 : 4);
			cw->entry(cw, w[GH_KEYS] + i * (big_keys ? 8 : 4), k, 0, v);
		}
	}
	c->count = used;
	if (used != nnodes || used + tombstones != noccupied)
		return hs_cwalk_fail(cw, "it counts %u nodes and %u occupied slots; the hashes say %" PRIu64 " and %" PRIu64,
				     nnodes, noccupied, used, used + tombstones);
	return true;
}

const struct hs_container_kind hs_kind_ghash = {
	.name = "GHashTable",
	.family = "ghash",
	.size = 8 * GH_WORDS,
	.anchor_word = GH_KEYS,
	.key_kind = HS_KEY_CSTRING_PTR,
	.filter_word = GH_SIZE, .filter_mask = UINT64_MAX, .filter_lo = GH_MIN_SIZE, .filter_hi = GH_MAX_SIZE,
	.probe = gh_probe,
	.walk = gh_walk,
};
