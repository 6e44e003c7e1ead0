/* unit_util.h - small helpers shared by the walkers' unit tests (linked into
 * every unit test binary). */
#ifndef HS_UNIT_UTIL_H
#define HS_UNIT_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include "alloc.h"
#include "session.h"

/* The value of a walker's fact; fails the test when there is none. */
uint64_t unit_fact(const struct hs_alloc_desc *d, const char *name);
/* Diagnostics at level min or above whose message contains needle (any, if NULL). */
size_t unit_count_diags(const struct hs_session *s, enum hs_diag_level min, const char *needle);

#endif
