/* containers_rbtree.c - libstdc++'s _Rb_tree: std::map, set, multimap,
 * multiset (with an empty comparator, as std::less is).
 *
 * Layout (bits/stl_tree.h, x86-64):
 *
 *   +0   the comparator (empty: padding)
 *   +8   _M_header: _M_color (int, red = 0), +16 _M_parent (the root),
 *        +24 _M_left (leftmost node), +32 _M_right (rightmost node)
 *   +40  _M_node_count
 *
 *   node: +0 _M_color (red 0, black 1), +8 _M_parent, +16 _M_left,
 *   +24 _M_right, +32 the value (the key first)
 *
 * Invariants checked: the root's parent is the header, every child's parent
 * is its node, colours are 0 or 1 and the root is black, the tree is no
 * deeper than a red-black tree of its size can be, the leftmost and
 * rightmost nodes are the header's, and the node count is the count.
 */
#include <inttypes.h>
#include <string.h>
#include "containers.h"
#include "target.h"

enum {
	RB_HEADER = 1, RB_COLOR = 1, RB_ROOT = 2, RB_LEFTMOST = 3, RB_RIGHTMOST = 4, RB_COUNT = 5, RB_WORDS = 6,
	/* node words */
	RBN_COLOR = 0, RBN_PARENT = 1, RBN_LEFT = 2, RBN_RIGHT = 3, RBN_WORDS = 4,
	RB_NODE_VALUE = 32,
	RB_MAX_DEPTH = 130,              /* 2 log2(2^64) + slack: deeper is not red-black */
	RB_RED = 0, RB_BLACK = 1,
};

static bool rb_probe(struct hs_cwalk *cw, uint64_t addr, const uint64_t *w)
{
	uint64_t count = w[RB_COUNT];
	// Nodes are malloc'd: a misaligned root is no tree (and no aligned load).
	if ((uint32_t)w[RB_COLOR] != RB_RED || count == 0 || count > HS_CONTAINER_MAX_NODES || (w[RB_ROOT] & 7))
		return false;
	const uint64_t *root = (const uint64_t *)hs_memory_span(cw->in->mem, w[RB_ROOT], 8 * RBN_WORDS);
	return root && root[RBN_PARENT] == addr + 8 * RB_HEADER && hs_cwalk_block(cw, w[RB_ROOT]) >= 0 &&
	       hs_cwalk_block(cw, w[RB_LEFTMOST]) >= 0 && hs_cwalk_block(cw, w[RB_RIGHTMOST]) >= 0;
}

static bool rb_walk(struct hs_cwalk *cw, uint64_t addr, const uint64_t *w)
{
	struct hs_container *c = cw->c;
	uint64_t header = addr + 8 * RB_HEADER, count = w[RB_COUNT];
	if (!w[RB_ROOT]) {
		c->height = 0;
		if (count || w[RB_LEFTMOST] != header || w[RB_RIGHTMOST] != header)
			return hs_cwalk_fail(cw, "no root, but a count of %" PRIu64 " or extreme nodes", count);
		return true;
	}
	// In order, with an explicit stack: sorted entries, every link checked.
	struct { uint64_t node, left, right; uint32_t depth; } stack[RB_MAX_DEPTH];
	size_t sp = 0;
	uint64_t cur = w[RB_ROOT], parent = header, n = 0, first = 0, last = 0;
	uint32_t depth = 1, height = 0;
	bool done = false;
	while (!done) {
		while (cur) {
			uint64_t nw[RBN_WORDS];
			if (sp == RB_MAX_DEPTH)
				return hs_cwalk_fail(cw, "deeper than a red-black tree can be (a loop?)");
			if (n + sp >= count + 1)
				return hs_cwalk_fail(cw, "more nodes than its count (%" PRIu64 "), or a cycle", count);
			if (!hs_cwalk_own(cw, cur, HS_ROLE_NODE) || !hs_cwalk_read(cw, cur, nw, sizeof(nw)))
				return false;
			if (nw[RBN_PARENT] != parent)
				return hs_cwalk_fail(cw, "node 0x%" PRIx64 " names 0x%" PRIx64 " as parent, not 0x%" PRIx64,
						     cur, nw[RBN_PARENT], parent);
			uint32_t color = (uint32_t)nw[RBN_COLOR];
			if (color > RB_BLACK || (parent == header && color != RB_BLACK))
				return hs_cwalk_fail(cw, "node 0x%" PRIx64 " has colour %u", cur, color);
			if (depth > height)
				height = depth;
			stack[sp].node = cur;
			stack[sp].left = nw[RBN_LEFT];
			stack[sp].right = nw[RBN_RIGHT];
			stack[sp++].depth = depth;
			parent = cur;
			cur = nw[RBN_LEFT];
			depth++;
		}
		if (!sp) {
			done = true;
			break;
		}
		sp--;
		uint64_t node = stack[sp].node;
		if (!n)
			first = node;
		last = node;
		n++;
		if (cw->entry) {
			if (cw->listed++ >= cw->limit)
				return true;
			cw->entry(cw, node, node + RB_NODE_VALUE, 0, 0);
		}
		parent = node;
		cur = stack[sp].right;
		depth = stack[sp].depth + 1;
	}
	c->count = n;
	c->height = height;
	if (n != count)
		return hs_cwalk_fail(cw, "its count says %" PRIu64 " elements, %" PRIu64 " nodes are in the tree", count, n);
	if (first != w[RB_LEFTMOST] || last != w[RB_RIGHTMOST])
		return hs_cwalk_fail(cw, "the header's leftmost/rightmost are not the tree's");
	return true;
}

static bool rb_node_key(struct hs_cwalk *cw, uint64_t node, uint64_t *key, uint64_t *key_len)
{
	(void)cw;
	*key = node + RB_NODE_VALUE;
	*key_len = 0;
	return true;
}

const struct hs_container_kind hs_kind_rbtree = {
	.name = "std::_Rb_tree",
	.family = "rbtree",
	.size = 8 * RB_WORDS,
	.anchor_word = RB_ROOT,
	.key_kind = HS_KEY_UNKNOWN,
	.filter_word = RB_COLOR, .filter_mask = UINT32_MAX, .filter_lo = RB_RED, .filter_hi = RB_RED,
	.probe = rb_probe,
	.walk = rb_walk,
	.node_key = rb_node_key,
};
