/* go_pools.h - a Go program's sync.Pools for the pools stage (go_pools.c). */
#ifndef HS_GO_POOLS_H
#define HS_GO_POOLS_H

#include "error.h"
#include "go_rt.h"

struct hs_diags;
struct hs_pools;

/* What hs_go_pools_read reads (the session fills it in: session.c). */
struct hs_go_pools_input {
	struct hs_gort_input rt;        /* the runtime to open (go_rt.h): its heap and symbols too */
	struct hs_diags *diags;         /* damage */
};

/* Add every sync.Pool of the walked Go heap, with the objects of its
 * caches, to p (hs_pools_add); nothing when the heap is not Go's.  Damage is
 * a diagnostic (the pool marked broken), never an error. */
struct hs_error *hs_go_pools_read(const struct hs_go_pools_input *in, struct hs_pools *p);

#endif
