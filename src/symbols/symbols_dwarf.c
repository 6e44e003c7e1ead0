/* symbols_dwarf.c - DWARF types, members and variables of a module, through
 * libdw (see symbols.h: hs_dwarf_struct_size, hs_dwarf_member_offset,
 * hs_dwarf_member_size, hs_dwarf_variable).
 *
 * Reads the module's DWARF (libdwfl found it in symbols.c's create, with
 * debuginfod and the debug paths); builds on the first lookup a name -> DIE
 * index (module->symtab, symtab.h) over the top-level structs, unions,
 * typedefs and variables of every unit, dwz partial units included once;
 * answers sizes, member offsets and sizes (bit-fields, anonymous members,
 * "a.b.c" paths) and variable addresses, falling back to the ELF symbol table
 * (symbols.c) for a variable DWARF does not locate.  Every walk of the DWARF
 * is bounded (the limits below): debug info is as hostile as the core.
 */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <gelf.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "symbols.h"
#include "symtab.h"

#define MAX_DIES           (1u << 24)   /* index entries per module */
#define MAX_IMPORT_DEPTH   16           /* nested DW_TAG_imported_unit */
#define MAX_ANON_DEPTH     16           /* anonymous struct/union members */
#define MAX_MEMBER_PATH    512          /* "a.b.c" */
#define MAX_MEMBER_PARTS   32

enum die_kind { DIE_STRUCT = 1, DIE_TYPEDEF, DIE_VARIABLE };

/* Quality of an index entry: a better one replaces a worse one of the same name. */
enum { Q_DECLARATION = 0, Q_DEFINITION = 1, Q_LOCATED = 2 };

struct die_slot {
	const char *name;              /* NULL: empty slot; in .debug_str */
	Dwarf_Die die;
	uint32_t hash;
	uint8_t kind, quality;
};

/* Visited units (dwz partial units are imported by many CUs). */
struct unit_key {
	Dwarf *dw;
	Dwarf_Off off;
};

struct unit_set {
	struct unit_key *keys;         /* dw == NULL: empty */
	size_t mask, count;
};

/* ---- DWARF index ---- */

static struct hs_error *unit_set_add(struct unit_set *set, Dwarf *dw, Dwarf_Off off, bool *added)
{
	*added = false;
	if (2 * (set->count + 1) > set->mask + 1 || !set->keys) {
		size_t cap = set->keys ? 2 * (set->mask + 1) : 256;
		struct unit_key *keys = calloc(cap, sizeof(*keys));
		if (!keys)
			return &hs_error_nomem;
		for (size_t i = 0; set->keys && i <= set->mask; i++) {
			struct unit_key *k = &set->keys[i];
			if (!k->dw)
				continue;
			size_t j = (((uintptr_t)k->dw >> 4) ^ k->off * 0x9e3779b97f4a7c15ull) & (cap - 1);
			while (keys[j].dw)
				j = (j + 1) & (cap - 1);
			keys[j] = *k;
		}
		free(set->keys);
		set->keys = keys;
		set->mask = cap - 1;
	}
	size_t j = (((uintptr_t)dw >> 4) ^ off * 0x9e3779b97f4a7c15ull) & set->mask;
	for (;; j = (j + 1) & set->mask) {
		if (!set->keys[j].dw)
			break;
		if (set->keys[j].dw == dw && set->keys[j].off == off)
			return NULL;
	}
	set->keys[j] = (struct unit_key){ dw, off };
	set->count++;
	*added = true;
	return NULL;
}

static uint32_t die_hash(const char *name, uint8_t kind)
{
	return hash_name(name) ^ (kind * 0x9e3779b9u);
}

static struct hs_error *die_grow(struct hs_symtab *st)
{
	size_t cap = st->dies ? 2 * (st->die_mask + 1) : 1024;
	struct die_slot *dies = calloc(cap, sizeof(*dies));
	if (!dies)
		return &hs_error_nomem;
	for (size_t i = 0; st->dies && i <= st->die_mask; i++) {
		if (!st->dies[i].name)
			continue;
		size_t j = st->dies[i].hash & (cap - 1);
		while (dies[j].name)
			j = (j + 1) & (cap - 1);
		dies[j] = st->dies[i];
	}
	free(st->dies);
	st->dies = dies;
	st->die_mask = cap - 1;
	return NULL;
}

static struct hs_error *die_insert(struct hs_symtab *st, uint8_t kind, const char *name,
				   const Dwarf_Die *die, uint8_t quality)
{
	if (!st->dies || 2 * (st->die_count + 1) > st->die_mask + 1) {
		if (st->die_count >= MAX_DIES)
			return NULL;   // bounded: later names are not indexed
		HS_CHECK(die_grow(st));
	}
	uint32_t hash = die_hash(name, kind);
	for (size_t i = hash & st->die_mask;; i = (i + 1) & st->die_mask) {
		struct die_slot *slot = &st->dies[i];
		if (!slot->name) {
			*slot = (struct die_slot){
				.name = name, .die = *die, .hash = hash, .kind = kind,
				.quality = quality,
			};
			st->die_count++;
			return NULL;
		}
		if (slot->hash == hash && slot->kind == kind && strcmp(slot->name, name) == 0) {
			// The first complete definition wins over declarations.
			if (quality > slot->quality) {
				slot->die = *die;
				slot->quality = quality;
			}
			return NULL;
		}
	}
}

static const struct die_slot *die_find(const struct hs_symtab *st, uint8_t kind, const char *name)
{
	if (!st->dies)
		return NULL;
	uint32_t hash = die_hash(name, kind);
	for (size_t i = hash & st->die_mask;; i = (i + 1) & st->die_mask) {
		const struct die_slot *slot = &st->dies[i];
		if (!slot->name)
			return NULL;
		if (slot->hash == hash && slot->kind == kind && strcmp(slot->name, name) == 0)
			return slot;
	}
}

static struct hs_error *index_die(struct hs_symtab *st, Dwarf_Die *die)
{
	uint8_t kind, quality = Q_DEFINITION;
	bool declaration = dwarf_hasattr(die, DW_AT_declaration);
	switch (dwarf_tag(die)) {
	case DW_TAG_structure_type:
	case DW_TAG_union_type:
	case DW_TAG_class_type:
		kind = DIE_STRUCT;
		if (declaration)
			quality = Q_DECLARATION;
		break;
	case DW_TAG_typedef:
		kind = DIE_TYPEDEF;
		break;
	case DW_TAG_variable:
		kind = DIE_VARIABLE;
		if (dwarf_hasattr(die, DW_AT_location))
			quality = Q_LOCATED;
		else if (declaration)
			quality = Q_DECLARATION;
		break;
	default:
		return NULL;
	}
	// dwarf_diename follows DW_AT_specification: "int x = 1;" after "extern int x;"
	// is a nameless DIE that points at the declaration.
	const char *name = dwarf_diename(die);
	if (!name || !name[0])
		return NULL;
	return die_insert(st, kind, name, die, quality);
}

static struct hs_error *index_unit(struct hs_symtab *st, struct unit_set *seen,
				   Dwarf_Die *unit, int depth)
{
	bool added;
	HS_CHECK(unit_set_add(seen, dwarf_cu_getdwarf(unit->cu), dwarf_dieoffset(unit), &added));
	if (!added)
		return NULL;
	Dwarf_Die child;
	if (dwarf_child(unit, &child) != 0)
		return NULL;
	do {
		if (dwarf_tag(&child) == DW_TAG_imported_unit) {
			// dwz: the types live in a partial unit, possibly in the alt file.
			Dwarf_Attribute attr;
			Dwarf_Die imported;
			if (depth < MAX_IMPORT_DEPTH && dwarf_attr(&child, DW_AT_import, &attr) &&
			    dwarf_formref_die(&attr, &imported))
				HS_CHECK(index_unit(st, seen, &imported, depth + 1));
			continue;
		}
		HS_CHECK(index_die(st, &child));
	} while (dwarf_siblingof(&child, &child) == 0);
	return NULL;
}

static struct hs_error *dwarf_index_build(struct hs_symtab *st)
{
	if (st->dwarf_built)
		return NULL;
	Dwarf_Addr bias = 0;
	Dwarf *dw = dwfl_module_getdwarf(st->mod, &bias);
	if (!dw) {
		st->dwarf_built = true;
		return NULL;
	}
	struct unit_set seen = { 0 };
	struct hs_error *err = NULL;
	Dwarf_CU *cu = NULL, *next = NULL;
	Dwarf_Half version;
	uint8_t unit_type;
	Dwarf_Die cudie, subdie;
	while (!err) {
		memset(&subdie, 0, sizeof(subdie));
		if (dwarf_get_units(dw, cu, &next, &version, &unit_type, &cudie, &subdie) != 0)
			break;
		cu = next;
		// A skeleton's types are in its split unit.
		Dwarf_Die *top = unit_type == DW_UT_skeleton && subdie.addr ? &subdie : &cudie;
		err = index_unit(st, &seen, top, 0);
	}
	free(seen.keys);
	if (err) {
		free(st->dies);
		st->dies = NULL;
		st->die_mask = st->die_count = 0;
		return err;
	}
	st->dw = dw;
	st->dwbias = bias;
	st->dwarf_built = true;
	return NULL;
}

/* The module's DWARF, indexed; NOT_FOUND naming the module when it has none. */
static struct hs_error *dwarf_ready(struct hs_module *m, const char *what, const char *name)
{
	if (!m)
		return hs_error_create(HS_ERR_USAGE, "no module given for %s '%s'", what, name);
	if (!m->symtab)
		return hs_error_create(HS_ERR_NOT_FOUND, "module %s has no DWARF debug info%s (looking for %s '%s')",
				       m->name, symbols_module_why(m), what, name);
	HS_CHECK(dwarf_index_build(m->symtab));
	if (!m->symtab->dw)
		return hs_error_create(HS_ERR_NOT_FOUND,
				       "module %s has no DWARF debug info%s (looking for %s '%s')",
				       m->name, symbols_module_why(m), what, name);
	return NULL;
}

static bool is_aggregate_tag(int tag)
{
	return tag == DW_TAG_structure_type || tag == DW_TAG_union_type || tag == DW_TAG_class_type;
}

/* A declaration-only struct stands for the complete one of the same name. */
static void complete_type(const struct hs_symtab *st, Dwarf_Die *type)
{
	if (!is_aggregate_tag(dwarf_tag(type)) || !dwarf_hasattr(type, DW_AT_declaration))
		return;
	const char *name = dwarf_diename(type);
	const struct die_slot *slot = name ? die_find(st, DIE_STRUCT, name) : NULL;
	if (slot && slot->quality >= Q_DEFINITION)
		*type = slot->die;
}

/* The type named name (a struct/union tag, or a typedef), peeled and complete. */
static struct hs_error *find_type(struct hs_module *m, const char *name, Dwarf_Die *ret)
{
	if (starts_with(name, "struct "))
		name += 7;
	else if (starts_with(name, "union "))
		name += 6;
	HS_CHECK(dwarf_ready(m, "type", name));
	const struct hs_symtab *st = m->symtab;
	const struct die_slot *tag = die_find(st, DIE_STRUCT, name);
	if (tag && tag->quality >= Q_DEFINITION) {
		*ret = tag->die;
		return NULL;
	}
	const struct die_slot *td = die_find(st, DIE_TYPEDEF, name);
	if (td) {
		Dwarf_Die die = td->die, peeled;
		if (dwarf_peel_type(&die, &peeled) == 0) {
			complete_type(st, &peeled);
			if (!dwarf_hasattr(&peeled, DW_AT_declaration)) {
				*ret = peeled;
				return NULL;
			}
		}
	}
	if (tag || td)
		return hs_error_create(HS_ERR_NOT_FOUND,
				       "type '%s' is only declared, never defined, in the debug info of module %s",
				       name, m->name);
	return hs_error_create(HS_ERR_NOT_FOUND, "no type '%s' in the debug info of module %s",
			       name, m->name);
}

struct hs_error *hs_dwarf_struct_size(struct hs_module *mod, const char *struct_name,
				      uint64_t *ret)
{
	Dwarf_Die type;
	HS_CHECK(find_type(mod, struct_name, &type));
	Dwarf_Word size;
	if (dwarf_aggregate_size(&type, &size) != 0)
		return hs_error_create(HS_ERR_NOT_FOUND, "type '%s' has no size in the debug info of module %s",
				       struct_name, mod->name);
	*ret = size;
	return NULL;
}

/* DW_AT_data_member_location: a constant, or DW_OP_plus_uconst N (DWARF 2). */
static bool member_location(Dwarf_Attribute *attr, uint64_t *ret)
{
	switch (dwarf_whatform(attr)) {
	case DW_FORM_exprloc:
	case DW_FORM_block:
	case DW_FORM_block1:
	case DW_FORM_block2:
	case DW_FORM_block4: {
		Dwarf_Op *ops;
		size_t n;
		if (dwarf_getlocation(attr, &ops, &n) != 0)
			return false;
		if (n == 1 && ops[0].atom == DW_OP_plus_uconst) {
			*ret = ops[0].number;
			return true;
		}
		if (n == 2 && (ops[0].atom == DW_OP_constu || ops[0].atom == DW_OP_consts) &&
		    ops[1].atom == DW_OP_plus) {
			*ret = ops[0].number;
			return true;
		}
		return false;
	}
	case DW_FORM_sdata:
	case DW_FORM_implicit_const: {
		Dwarf_Sword v;
		if (dwarf_formsdata(attr, &v) != 0 || v < 0)
			return false;
		*ret = (uint64_t)v;
		return true;
	}
	default: {
		Dwarf_Word v;
		if (dwarf_formudata(attr, &v) != 0)
			return false;
		*ret = v;
		return true;
	}
	}
}

static bool die_udata(Dwarf_Die *die, unsigned int name, Dwarf_Word *ret)
{
	Dwarf_Attribute attr;
	return dwarf_attr_integrate(die, name, &attr) && dwarf_formudata(&attr, ret) == 0;
}

static bool little_endian_die(Dwarf_Die *die)
{
	Elf *elf = dwarf_getelf(dwarf_cu_getdwarf(die->cu));
	const char *ident = elf ? elf_getident(elf, NULL) : NULL;
	return !ident || ident[EI_DATA] != ELFDATA2MSB;
}

/* The member's offset in bits from the start of its struct. */
static bool member_bit_offset(Dwarf_Die *member, uint64_t *ret)
{
	Dwarf_Attribute attr;
	Dwarf_Word v;
	if (die_udata(member, DW_AT_data_bit_offset, &v)) {   // DWARF 4+ bitfields
		*ret = v;
		return true;
	}
	uint64_t bytes = 0;   // absent: the first member of a union, or offset 0
	if (dwarf_attr_integrate(member, DW_AT_data_member_location, &attr) &&
	    !member_location(&attr, &bytes))
		return false;
	if (bytes > UINT64_MAX / 8)
		return false;
	uint64_t bits = bytes * 8;
	Dwarf_Word bit_offset, bit_size, storage;
	if (die_udata(member, DW_AT_bit_offset, &bit_offset)) {
		// DWARF 2/3 bitfield: bit_offset counts from the most significant bit of
		// a storage unit of DW_AT_byte_size bytes (else the member type's size).
		if (!die_udata(member, DW_AT_bit_size, &bit_size))
			return false;
		if (!die_udata(member, DW_AT_byte_size, &storage)) {
			Dwarf_Die type;
			if (!dwarf_attr_integrate(member, DW_AT_type, &attr) ||
			    !dwarf_formref_die(&attr, &type) || dwarf_aggregate_size(&type, &storage) != 0)
				return false;
		}
		if (storage > 64 || bit_offset + bit_size > storage * 8)
			return false;
		bits += little_endian_die(member) ? storage * 8 - bit_offset - bit_size : bit_offset;
	}
	*ret = bits;
	return true;
}

/* The peeled, complete type of a member. */
static bool member_type(const struct hs_symtab *st, Dwarf_Die *member, Dwarf_Die *ret)
{
	Dwarf_Attribute attr;
	Dwarf_Die type;
	if (!dwarf_attr_integrate(member, DW_AT_type, &attr) || !dwarf_formref_die(&attr, &type) ||
	    dwarf_peel_type(&type, ret) != 0)
		return false;
	complete_type(st, ret);
	return true;
}

/* Find member name in the aggregate, looking into anonymous struct/union
 * members.  *found says whether it is there; the error is for bad DWARF. */
static struct hs_error *find_member(const struct hs_module *m, Dwarf_Die *agg, const char *name,
				    int depth, Dwarf_Die *member_ret, uint64_t *bits_ret,
				    bool *found)
{
	*found = false;
	Dwarf_Die child;
	if (dwarf_child(agg, &child) != 0)
		return NULL;
	do {
		if (dwarf_tag(&child) != DW_TAG_member)
			continue;
		const char *mname = dwarf_diename(&child);
		if (mname && strcmp(mname, name) != 0)
			continue;
		uint64_t bits;
		if (!member_bit_offset(&child, &bits))
			return hs_error_create(HS_ERR_NOT_FOUND,
					       "member '%s' of '%s' has a location heapscope cannot read (module %s)",
					       mname ? mname : "(anonymous)", dwarf_diename(agg) ? dwarf_diename(agg) : "?",
					       m->name);
		if (mname) {
			*member_ret = child;
			*bits_ret = bits;
			*found = true;
			return NULL;
		}
		Dwarf_Die inner;
		if (depth >= MAX_ANON_DEPTH || !member_type(m->symtab, &child, &inner) ||
		    !is_aggregate_tag(dwarf_tag(&inner)))
			continue;
		uint64_t inner_bits;
		HS_CHECK(find_member(m, &inner, name, depth + 1, member_ret, &inner_bits, found));
		if (*found) {
			*bits_ret = bits + inner_bits;
			return NULL;
		}
	} while (dwarf_siblingof(&child, &child) == 0);
	return NULL;
}

/* Follow a dotted member path: its offset in bits and the last member's
 * peeled type (type_ret->addr is NULL when it has none). */
static struct hs_error *member_path(struct hs_module *mod, const char *struct_name, const char *member,
				    uint64_t *bits_ret, Dwarf_Die *type_ret)
{
	if (!member || !member[0] || strlen(member) >= MAX_MEMBER_PATH)
		return hs_error_create(HS_ERR_USAGE, "bad member path '%s'", member ? member : "");
	Dwarf_Die type;
	HS_CHECK(find_type(mod, struct_name, &type));
	char path[MAX_MEMBER_PATH];
	strcpy(path, member);
	uint64_t total = 0;
	int parts = 0;
	char *save = NULL;
	for (char *part = strtok_r(path, ".", &save); part; part = strtok_r(NULL, ".", &save)) {
		if (++parts > MAX_MEMBER_PARTS)
			return hs_error_create(HS_ERR_USAGE, "member path '%s' is too deep", member);
		if (!is_aggregate_tag(dwarf_tag(&type)))
			return hs_error_create(HS_ERR_NOT_FOUND,
					       "'%s' in %s.%s: not a struct or union (module %s)",
					       part, struct_name, member, mod->name);
		Dwarf_Die found_die;
		uint64_t bits = 0;
		bool found;
		HS_CHECK(find_member(mod, &type, part, 0, &found_die, &bits, &found));
		if (!found)
			return hs_error_create(HS_ERR_NOT_FOUND, "%s has no member '%s' (looking for %s.%s in module %s)",
					       struct_name, part, struct_name, member, mod->name);
		total += bits;
		if (!member_type(mod->symtab, &found_die, &type))
			memset(&type, 0, sizeof(type));   // only a problem if the path goes on
		if (save && *save && !type.addr)
			return hs_error_create(HS_ERR_NOT_FOUND, "member '%s' of %s has no type (module %s)",
					       part, struct_name, mod->name);
	}
	if (parts == 0)
		return hs_error_create(HS_ERR_USAGE, "bad member path '%s'", member);
	*bits_ret = total;
	*type_ret = type;
	return NULL;
}

struct hs_error *hs_dwarf_member_offset(struct hs_module *mod, const char *struct_name,
					const char *member, uint64_t *byte_ret,
					uint32_t *bit_ret)
{
	uint64_t total;
	Dwarf_Die type;
	HS_CHECK(member_path(mod, struct_name, member, &total, &type));
	*byte_ret = total / 8;
	*bit_ret = (uint32_t)(total % 8);
	return NULL;
}

struct hs_error *hs_dwarf_member_size(struct hs_module *mod, const char *struct_name,
				      const char *member, uint64_t *ret)
{
	uint64_t total;
	Dwarf_Die type;
	HS_CHECK(member_path(mod, struct_name, member, &total, &type));
	Dwarf_Word size;
	if (!type.addr || dwarf_aggregate_size(&type, &size) != 0)
		return hs_error_create(HS_ERR_NOT_FOUND, "member %s.%s has no size in the debug info of module %s",
				       struct_name, member, mod->name);
	*ret = size;
	return NULL;
}

/* DW_AT_location = DW_OP_addr X (or DW_OP_addrx) -> X + bias. */
static bool variable_address(const struct hs_symtab *st, Dwarf_Die *var, uint64_t *ret,
			     const char **why)
{
	Dwarf_Attribute attr;
	Dwarf_Op *ops;
	size_t n;
	if (!dwarf_attr(var, DW_AT_location, &attr) || dwarf_getlocation(&attr, &ops, &n) != 0 ||
	    n == 0) {
		*why = "has no single location";
		return false;
	}
	if (ops[0].atom == DW_OP_addr && n == 1) {
		*ret = ops[0].number + st->dwbias;
		return true;
	}
	if ((ops[0].atom == DW_OP_addrx || ops[0].atom == DW_OP_GNU_addr_index) && n == 1) {
		Dwarf_Attribute result;
		Dwarf_Addr addr;
		if (dwarf_getlocation_attr(&attr, &ops[0], &result) == 0 &&
		    dwarf_formaddr(&result, &addr) == 0) {
			*ret = addr + st->dwbias;
			return true;
		}
	}
	for (size_t i = 0; i < n; i++)
		if (ops[i].atom == DW_OP_form_tls_address || ops[i].atom == DW_OP_GNU_push_tls_address) {
			*why = "is thread-local";
			return false;
		}
	*why = "has a location that is not a fixed address";
	return false;
}

struct hs_error *hs_dwarf_variable(struct hs_module *mod, const char *name, uint64_t *addr_ret)
{
	if (!mod || !name || !name[0])
		return hs_error_create(HS_ERR_USAGE, "no module or name given for a variable");
	const char *why = "is not in the debug info";
	if (!mod->symtab)
		return hs_error_create(HS_ERR_NOT_FOUND, "variable '%s' not found in module %s", name, mod->name);
	HS_CHECK(dwarf_index_build(mod->symtab));
	if (!mod->symtab->dw) {
		why = mod->build_id_mismatch ? "cannot be looked up (the file on disk has another build-id)"
		      : !mod->elf_found ? "cannot be looked up (the module's ELF file was not found)"
		      : "cannot be looked up in DWARF (the module has no debug info)";
	} else {
		const struct die_slot *slot = die_find(mod->symtab, DIE_VARIABLE, name);
		if (slot && slot->quality == Q_LOCATED) {
			Dwarf_Die die = slot->die;
			if (variable_address(mod->symtab, &die, addr_ret, &why))
				return NULL;
		} else if (slot) {
			why = "is only declared in the debug info";
		}
	}
	// The symbol table knows statics too when it is the full .symtab.
	const struct sym_slot *sym;
	HS_CHECK(symbols_module_symbol(mod, name, &sym));
	if (sym && sym->address && (sym->type == STT_OBJECT || sym->type == STT_COMMON)) {
		*addr_ret = sym->address;
		return NULL;
	}
	return hs_error_create(HS_ERR_NOT_FOUND, "variable '%s' %s and is not a data symbol of module %s",
			       name, why, mod->name);
}
