/* go_pools.h - a Go program's sync.Pools for the pools stage (go_pools.c). */
#ifndef HS_GO_POOLS_H
#define HS_GO_POOLS_H

#include "error.h"

struct hs_session;
struct hs_pools;

/* Add every sync.Pool of the session's Go heap, with the objects of its
 * caches, to p (hs_pools_add); nothing when the heap is not Go's.  Damage is
 * a diagnostic (the pool marked broken), never an error. */
struct hs_error *hs_go_pools_read(struct hs_session *s, struct hs_pools *p);

#endif
