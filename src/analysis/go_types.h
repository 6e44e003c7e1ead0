/* go_types.h - Go objects named by their Go types (go_types.c). */
#ifndef HS_GO_TYPES_H
#define HS_GO_TYPES_H

struct hs_session;
struct hs_analysis;
struct hs_types;

/* Fill a->type for the Go heap's objects (the session's go_rt, set with the
 * analysis); nothing when the heap is not Go's. */
void hs_go_types(struct hs_session *s, struct hs_analysis *a, struct hs_types *t);

/* The field of Go block i at byte off ("next", "[7]", "[3].item"), when its
 * type came from DWARF; false otherwise. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
bool hs_go_block_field(struct hs_session *s, size_t i, uint64_t off, char *buf, size_t len);
/* The field at byte off of the Go global named var, by its DWARF type:
 * "main.registry.ByID"; false without DWARF or when no member holds it. */
bool hs_go_global_field(struct hs_session *s, const char *var, uint64_t off, char *buf, size_t len);

#endif
