/* go_types.h - Go objects named by their Go types (go_types.c). */
#ifndef HS_GO_TYPES_H
#define HS_GO_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "error.h"

struct hs_analysis;
struct hs_gort;
struct hs_heap;
struct hs_memory;
struct hs_pools;
struct hs_types;

/* What hs_go_types reads (the session fills it in: session.c). */
struct hs_go_types_input {
	struct hs_gort *rt;             /* the Go heap's runtime (go_mark.h's, with the analysis); NULL: not Go */
	struct hs_analysis *a;
	const struct hs_heap *heap;
	struct hs_memory *mem;
	/* The program's sync.Pools (pools.h; the session's pools stage), asked
	 * once, with DWARF, after what the globals reach is typed: NULL with
	 * *ret set, or an error (their objects stay untyped; the pools command
	 * says why).  pools NULL: the same. */
	struct hs_error *(*pools)(void *ctx, const struct hs_pools **ret);
	void *ctx;
};

/* Fill t (a type per block of in->a) for the Go heap's objects; nothing
 * when in->rt is NULL.  *block_die (freed first) becomes, with DWARF, per
 * block its element type's DIE offset + 1 (bit 63: after a malloc header),
 * for hs_go_block_field; NULL without. */
void hs_go_types(const struct hs_go_types_input *in, struct hs_types *t, uint64_t **block_die);

/* The field of Go block i (of a, heap) at byte off ("next", "[7]",
 * "[3].item"), when hs_go_types gave its type from DWARF (block_die); false
 * otherwise, or when rt, a or block_die is NULL. */
bool hs_go_block_field(const struct hs_gort *rt, const struct hs_analysis *a, const struct hs_heap *heap,
		       const uint64_t *block_die, size_t i, uint64_t off, char *buf, size_t len);
/* The field at byte off of the Go global named var, by its DWARF type:
 * "main.registry.ByID"; false without DWARF (or rt NULL) or when no member
 * holds it. */
bool hs_go_global_field(const struct hs_gort *rt, const char *var, uint64_t off, char *buf, size_t len);

#endif
