/* dominators.h - the dominator tree of the pointer graph under a virtual root,
 * and retained sizes: what would be freed with an allocation.
 *
 * The virtual root's children are the allocations a root points at, then the
 * heads of leaked clusters (unreferenced), then one member of each leaked
 * cycle, so every used allocation has an immediate dominator and leaked
 * clusters get retained sizes too.  An edge from an allocation no root
 * reaches to one a root reaches is left out: what the roots reach is
 * dominated through the paths from the roots alone.  Semi-NCA (Lengauer-Tarjan's
 * semidominators with path compression, then each immediate dominator as a
 * nearest common ancestor; Lengauer-Tarjan's buckets where that would take
 * too long), iterative (no recursion however deep the heap), its arrays
 * indexed by depth-first number (dominators.c).  With two jobs the search is
 * the main thread's and the rest is shared: a helper thread builds the
 * reverse edges and faults in the search's pages during the depth-first
 * search, then reads each vertex's predecessors ahead of the semidominators'
 * loop and hands them over through a ring.
 */
#ifndef HS_DOMINATORS_H
#define HS_DOMINATORS_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"

struct hs_analysis;
struct hs_heap;

#define HS_DOM_NONE UINT32_MAX

/* The result: per block i < n, idom[i] is its immediate dominator (n, the
 * virtual root, for the root's children; HS_DOM_NONE for blocks that are not
 * used allocations), retained[i] the bytes and retained_count[i] the
 * allocations of its dominated subtree, itself included.  Arrays have n + 1
 * entries.  The session owns it (hs_session_need_dominators, session.h). */
struct hs_dominators {
	size_t n;
	uint32_t *idom;
	uint64_t *retained;
	uint32_t *retained_count;
};

/* The dominator tree of a's graph over heap, a's heap index; a's reverse
 * edges are built (hs_analysis_need_reverse) on the way, beside the
 * depth-first search when a->jobs > 1. */
struct hs_error *hs_dominators_create(struct hs_analysis *a, const struct hs_heap *heap,
				      struct hs_dominators **ret);
void hs_dominators_destroy(struct hs_dominators *d);

#endif
