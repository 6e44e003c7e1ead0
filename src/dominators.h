/* dominators.h - the dominator tree of the pointer graph under a virtual root,
 * and retained sizes: what would be freed with an allocation.
 *
 * The virtual root's children are the allocations a root points at, then the
 * heads of leaked clusters (unreferenced), then one member of each leaked
 * cycle, so every used allocation has an immediate dominator and leaked
 * clusters get retained sizes too.  Lengauer-Tarjan with path compression,
 * iterative (no recursion however deep the heap).
 */
#ifndef HS_DOMINATORS_H
#define HS_DOMINATORS_H

#include "error.h"

struct hs_session;

/* Fill s->analysis->idom (the virtual root is n) and ->retained. */
struct hs_error *hs_session_need_dominators(struct hs_session *s);

#endif
