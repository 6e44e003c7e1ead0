/* rtti.h - C++ ABI names: demangling symbols for people, and class names from
 * RTTI when a vtable has no symbol (stripped executables and libraries).
 *
 * Itanium C++ ABI, x86-64: an object's vptr points 16 bytes into its vtable;
 * the word before it (vptr[-1]) is the address of the class's std::type_info,
 * whose second word points at the mangled type name ("7Derived",
 * "N3app6WidgetE") in the module's .rodata.  Every step is a checked read and
 * must land in a loaded module, and the name must demangle, so an arbitrary
 * word that happens to point into a module is never given a class.
 */
#ifndef HS_RTTI_H
#define HS_RTTI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hs_memory;
struct hs_symbols;

/* A symbol as people read it: C++ names demangled, ABI tags dropped
 * ("_Z10g_sessionsB5cxx11" -> "g_sessions"); anything else copied.  Returns buf. */
const char *hs_demangle(const char *name, char *buf, size_t len);

/* The class of an object whose first word is vptr, from RTTI read through mem,
 * every pointer on the way checked to lie in one of the modules of sy (NULL:
 * none does); false when the words around vptr are not a vtable with
 * type_info. */
bool hs_rtti_class_name(struct hs_symbols *sy, struct hs_memory *mem, uint64_t vptr, char *buf, size_t len);

#endif
