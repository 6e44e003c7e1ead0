/* types.h - type names for allocations.  C++ objects by their vtable pointer
 * ("vtable for X" -> X, demangled); C structs by DWARF: a global or TLS
 * variable of pointer or struct type types what it points at, and types
 * propagate through pointer members of known structs (never through void *,
 * char * or unions; arrays element by element).  Those types are certain.
 * Blocks nothing typed reaches may then get an inferred type ("~node", see
 * below), kept apart: a certain type is never guessed.
 */
#ifndef HS_TYPES_H
#define HS_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "error.h"

struct hs_analysis;
struct hs_heap;
struct hs_memory;
struct hs_notes;
struct hs_symbols;
struct hs_types;

/* What the types stage reads (the session fills it in and runs the steps:
 * hs_session_need_types, session.h).  It never sees the session. */
struct hs_types_input {
	struct hs_analysis *a;            /* the graph: VPTR flags, address map, edges */
	const struct hs_heap *heap;
	struct hs_memory *mem;
	const struct hs_notes *notes;     /* threads, for TLS variables */
	struct hs_symbols *symbols;       /* NULL: nothing is typed for certain */
	int jobs;                         /* threads; <= 1: one */
};

/* An empty typing of n blocks (every block unknown); NULL on no memory. */
struct hs_types *hs_types_create(size_t n);
/* Certain types: vtables, then DWARF from globals and TLS variables through
 * pointer members. */
void hs_types_certain(const struct hs_types_input *in, struct hs_types *t);
/* Inferred types for what the certain ones did not reach (after the
 * containers have named their nodes). */
void hs_types_infer(const struct hs_types_input *in, struct hs_types *t);
void hs_types_destroy(struct hs_types *t);
/* Per block of the heap its type id (0 = unknown, else hs_types_name's id);
 * NULL for a NULL t.  Writable: containers.c and the Go types name blocks. */
uint32_t *hs_types_ids(struct hs_types *t);
/* The name of type id (1..), or NULL. */
const char *hs_types_name(const struct hs_types *t, uint32_t id);
/* The id of a type name, added if new (containers.c names nodes); 0 on no memory. */
uint32_t hs_types_intern(struct hs_types *t, const char *name);
/* The type name of block i, or NULL (also for a NULL t). */
const char *hs_block_type(const struct hs_types *t, size_t i);
/* The name of the member at byte offset off of block i, when its type came
 * from DWARF ("next", "entries[3]"); false otherwise.  (A Go heap's blocks:
 * hs_block_field, session.h.) */
bool hs_types_block_field(const struct hs_types *t, size_t i, uint64_t off, char *buf, size_t len);

/* Inferred types (issue 14): a block no typed pointer reaches may be given a
 * type by its layout or by an inferred block's pointer member; its name is
 * spelled "~node" and it is never taken for a certain type. */
enum { HS_TYPE_UNKNOWN, HS_TYPE_CERTAIN, HS_TYPE_INFERRED };
/* How block i's type is known; *rule ("layout", "field") and *confidence
 * (percent; 100 when certain) for inferred ones. */
int hs_block_type_certainty(const struct hs_types *t, size_t i, const char **rule, unsigned *confidence);
struct hs_out;
/* "type_certainty", "type_rule", "type_confidence" of block i, in an open
 * JSON object. */
void hs_json_type_info(struct hs_out *o, const struct hs_types *t, size_t i);
/* "type_certainty" of a group named name (inferred names start with '~'). */
void hs_json_type_name_info(struct hs_out *o, const char *name);

#endif
