/* symtab.h - a module's lazy lookup tables (struct hs_symtab), shared by
 * symbols.c (modules, the ELF symbol hash) and symbols_dwarf.c (the DWARF
 * index: types, members, variables).  Private to those two files.
 *
 * module->symtab is created with its module (symbols.c) and destroyed with
 * it; each half fills its own table on the first lookup (syms_built,
 * dwarf_built), and symbols.c's symtab_destroy frees both.
 */
#ifndef HS_SYMTAB_H
#define HS_SYMTAB_H

#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include "symbols.h"

/* One symbol table entry: the best definition of a name in the module. */
struct sym_slot {
	const char *name;              /* NULL: empty slot; owned by libdwfl */
	uint64_t address, size;
	uint32_t hash;
	uint8_t rank;                  /* higher is better, see sym_rank() */
	uint8_t type;                  /* STT_* */
};

struct die_slot;   /* symbols_dwarf.c */
struct zero_sym;   /* symbols.c */
struct sec_range;  /* symbols.c */

struct hs_symtab {
	Dwfl_Module *mod;
	// symbols
	bool syms_built;
	int nsyms;                     /* dwfl_module_getsymtab(): -1 when none */
	struct sym_slot *syms;
	size_t sym_mask, sym_count;
	// address -> symbol as libdwfl answers it (symbols.c, addr_index):
	// the sized symbols by start, each with the most end of those before
	int addr_state;                /* 0 not built, 1 usable, -1 ask libdwfl */
	struct addr_sym *asyms;
	size_t nasyms;
	int first_global;              /* dwfl_module_getsymtab_first_global */
	bool sizeless;                 /* the table has symbols without a size */
	// the symbols without a size, global and local apart, by address then
	// table order; and the main file's allocated sections by address
	// (libdwfl's choice among them depends on the section of the address)
	struct zero_sym *zglob, *zloc;
	size_t nzglob, nzloc;
	struct sec_range *secs;
	size_t nsecs;
	// vtables ("_ZTV" symbols) by address, for hs_symbols_maybe_vtable
	bool vtables_built;
	bool vtables_all;              /* no memory for them: any address may be one */
	struct addr_sym *vtables;      /* their ranges, as asyms */
	size_t nvtables;
	// DWARF
	bool dwarf_built;
	Dwarf *dw;                     /* NULL: no DWARF */
	Dwarf_Addr dwbias;
	struct die_slot *dies;
	size_t die_mask, die_count;
};

static inline uint32_t hash_name(const char *s)
{
	// FNV-1a, folded to 32 bits.
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return (uint32_t)(h ^ (h >> 32));
}

static inline bool starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* symbols.c: the symbol of that name in m's table (NULL when absent), and
 * why a module knows less than it could, for messages. */
struct hs_error *symbols_module_symbol(struct hs_module *m, const char *name,
				       const struct sym_slot **ret);
const char *symbols_module_why(const struct hs_module *m);

#endif
