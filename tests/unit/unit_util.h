/* unit_util.h - small helpers shared by the walkers' unit tests (linked into
 * every unit test binary). */
#ifndef HS_UNIT_UTIL_H
#define HS_UNIT_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include "alloc.h"
#include "session.h"

/* A registered state's block `where` ("tcache", "slab"): walkers declare their
 * own states (src/alloc/alloc.h), the registry numbers them. */
#define WHERE(name) ((unsigned)hs_where_by_name(name))

/* Run walker `name` on the session as heap_walk() does: a context, detect,
 * walk (into heap and d), destroy.  Errors in *detect_err / *walk_err. */
void unit_walk(struct hs_session *s, const char *name, struct hs_heap *heap, struct hs_alloc_desc *d,
	       struct hs_error **detect_err, struct hs_error **walk_err);
/* The value of a walker's fact; fails the test when there is none. */
uint64_t unit_fact(const struct hs_alloc_desc *d, const char *name);
/* Diagnostics at level min or above whose message contains needle (any, if NULL). */
size_t unit_count_diags(const struct hs_session *s, enum hs_diag_level min, const char *needle);

#endif
