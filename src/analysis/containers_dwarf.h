/* containers_dwarf.h - what DWARF says about containers: globals of a known
 * container type (std::unordered_map<...> g_x), and container members of
 * DWARF-typed structs, with their exact kind and key and value types.
 * Only the executable's DWARF is read (where the program's types are); the
 * executable's thread_local containers are listed in every thread.
 */
#ifndef HS_CONTAINERS_DWARF_H
#define HS_CONTAINERS_DWARF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <elfutils/libdw.h>
#include "containers.h"

struct hs_dwarf_container {
	uint64_t address;                   /* 0 for a struct member (see _member) */
	char *name;                         /* "g_sessions" */
	const char *kind;                   /* "std::unordered_map" (static) */
	const struct hs_container_kind *kind_impl;
	char *key_type, *value_type, *value_pointee;   /* "std::string", "Session*", "Session" */
	enum hs_key_kind key_kind;
	uint32_t key_size, value_offset;
};

struct hs_containers_dwarf {
	struct hs_dwarf_container *v;
	size_t n;
};

/* The executable's global containers and its thread_local ones in every
 * thread (none without its DWARF). */
struct hs_error *hs_containers_dwarf_globals(const struct hs_containers_input *in, struct hs_containers_dwarf *ret);
void hs_containers_dwarf_deinit(struct hs_containers_dwarf *d);
/* Is the DWARF type (a variable's) a known container?  ret filled. */
bool hs_containers_dwarf_describe(Dwarf_Die *type, struct hs_dwarf_container *ret);
/* The member at byte offset off of the struct or class named type_name, when
 * it is a container: ret filled (free with hs_dwarf_container_deinit). */
bool hs_containers_dwarf_member(const struct hs_containers_input *in, const char *type_name, uint64_t off,
				struct hs_dwarf_container *ret);
void hs_dwarf_container_deinit(struct hs_dwarf_container *c);

#endif
