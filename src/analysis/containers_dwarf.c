/* containers_dwarf.c - see containers_dwarf.h. */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "containers_dwarf.h"
#include "locals.h"
#include "symbols.h"

/* Container class templates, by the name DWARF gives their instances. */
static const struct known {
	const char *prefix;
	const char *kind;
	const struct hs_container_kind *impl;
	bool is_map;                 /* a mapped type follows the key */
} known[] = {
	{ "unordered_map<", "std::unordered_map", &hs_kind_hashtable, true },
	{ "unordered_multimap<", "std::unordered_multimap", &hs_kind_hashtable, true },
	{ "unordered_set<", "std::unordered_set", &hs_kind_hashtable, false },
	{ "unordered_multiset<", "std::unordered_multiset", &hs_kind_hashtable, false },
	{ "map<", "std::map", &hs_kind_rbtree, true },
	{ "multimap<", "std::multimap", &hs_kind_rbtree, true },
	{ "set<", "std::set", &hs_kind_rbtree, false },
	{ "multiset<", "std::multiset", &hs_kind_rbtree, false },
};

/* Names as people write them. */
static const struct { const char *dwarf, *short_name; } abbreviations[] = {
	{ "basic_string<char, std::char_traits<char>, std::allocator<char> >", "std::string" },
};

#define MAX_DEPTH 6

static bool type_of(Dwarf_Die *die, Dwarf_Die *ret)
{
	Dwarf_Attribute attr;
	return dwarf_attr_integrate(die, DW_AT_type, &attr) && dwarf_formref_die(&attr, ret);
}

static void type_name(Dwarf_Die *t, char *buf, size_t len, int depth)
{
	Dwarf_Die target;
	int tag = dwarf_tag(t);
	if (depth > MAX_DEPTH) {
		snprintf(buf, len, "?");
		return;
	}
	if (tag == DW_TAG_pointer_type || tag == DW_TAG_reference_type) {
		char inner[256];
		if (type_of(t, &target))
			type_name(&target, inner, sizeof(inner), depth + 1);
		else
			snprintf(inner, sizeof(inner), "void");
		size_t n = strnlen(inner, sizeof(inner) - 2);
		inner[n] = tag == DW_TAG_pointer_type ? '*' : '&';
		inner[n + 1] = 0;
		snprintf(buf, len, "%s", inner);
		return;
	}
	if ((tag == DW_TAG_const_type || tag == DW_TAG_volatile_type) && type_of(t, &target)) {
		type_name(&target, buf, len, depth + 1);
		return;
	}
	const char *name = dwarf_diename(t);
	if (!name) {
		snprintf(buf, len, "?");
		return;
	}
	for (size_t i = 0; i < sizeof(abbreviations) / sizeof(abbreviations[0]); i++)
		if (!strcmp(name, abbreviations[i].dwarf))
			name = abbreviations[i].short_name;
	snprintf(buf, len, "%s", name);
}

static uint32_t type_size(Dwarf_Die *t)
{
	Dwarf_Die peeled;
	if (dwarf_peel_type(t, &peeled) != 0)
		return 0;
	int tag = dwarf_tag(&peeled);
	if (tag == DW_TAG_pointer_type || tag == DW_TAG_reference_type)
		return 8;
	int sz = dwarf_bytesize(&peeled);
	return sz > 0 ? (uint32_t)sz : 0;
}

static enum hs_key_kind key_kind(Dwarf_Die *t)
{
	Dwarf_Die peeled;
	if (dwarf_peel_type(t, &peeled) != 0)
		return HS_KEY_UNKNOWN;
	int tag = dwarf_tag(&peeled);
	if (tag == DW_TAG_pointer_type)
		return HS_KEY_POINTER;
	if (tag == DW_TAG_enumeration_type)
		return HS_KEY_INT;
	if (tag == DW_TAG_base_type) {
		Dwarf_Attribute attr;
		Dwarf_Word enc;
		if (!dwarf_attr_integrate(&peeled, DW_AT_encoding, &attr) || dwarf_formudata(&attr, &enc))
			return HS_KEY_UNKNOWN;
		if (enc == DW_ATE_signed || enc == DW_ATE_signed_char)
			return HS_KEY_INT;
		if (enc == DW_ATE_unsigned || enc == DW_ATE_unsigned_char || enc == DW_ATE_boolean)
			return HS_KEY_UINT;
		return HS_KEY_UNKNOWN;
	}
	const char *name = dwarf_diename(&peeled);
	if ((tag == DW_TAG_class_type || tag == DW_TAG_structure_type) && name &&
	    !strncmp(name, "basic_string<char,", 18))
		return HS_KEY_STRING;
	return HS_KEY_UNKNOWN;
}

void hs_dwarf_container_deinit(struct hs_dwarf_container *c)
{
	free(c->name);
	free(c->key_type);
	free(c->value_type);
	free(c->value_pointee);
	memset(c, 0, sizeof(*c));
}

void hs_containers_dwarf_deinit(struct hs_containers_dwarf *d)
{
	for (size_t i = 0; i < d->n; i++)
		hs_dwarf_container_deinit(&d->v[i]);
	free(d->v);
	memset(d, 0, sizeof(*d));
}

// Is type (a variable's or a member's) a known container?  Fill ret.
static bool describe(Dwarf_Die *type, struct hs_dwarf_container *ret)
{
	Dwarf_Die t;
	if (dwarf_peel_type(type, &t) != 0)
		return false;
	int tag = dwarf_tag(&t);
	const char *name = dwarf_diename(&t);
	if ((tag != DW_TAG_class_type && tag != DW_TAG_structure_type) || !name)
		return false;
	const struct known *k = NULL;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]) && !k; i++)
		if (!strncmp(name, known[i].prefix, strlen(known[i].prefix)))
			k = &known[i];
	if (!k)
		return false;
	Dwarf_Die params[2], child;
	int np = 0;
	if (dwarf_child(&t, &child) == 0) {
		do {
			if (dwarf_tag(&child) == DW_TAG_template_type_parameter && np < 2 && type_of(&child, &params[np]))
				np++;
		} while (np < 2 && dwarf_siblingof(&child, &child) == 0);
	}
	memset(ret, 0, sizeof(*ret));
	ret->kind = k->kind;
	ret->kind_impl = k->impl;
	if (np < 1)
		return true;
	char buf[256];
	type_name(&params[0], buf, sizeof(buf), 0);
	ret->key_type = strdup(buf);
	ret->key_kind = key_kind(&params[0]);
	ret->key_size = type_size(&params[0]);
	if (!k->is_map || np < 2)
		return true;
	type_name(&params[1], buf, sizeof(buf), 0);
	ret->value_type = strdup(buf);
	uint32_t vsize = type_size(&params[1]), align = vsize >= 8 ? 8 : vsize ? vsize : 1;
	ret->value_offset = (ret->key_size + align - 1) / align * align;
	Dwarf_Die peeled, pointee;
	if (dwarf_peel_type(&params[1], &peeled) == 0 && dwarf_tag(&peeled) == DW_TAG_pointer_type &&
	    type_of(&peeled, &pointee)) {
		type_name(&pointee, buf, sizeof(buf), 0);
		ret->value_pointee = strdup(buf);
	}
	return true;
}

static bool variable_address(Dwarf_Die *var, uint64_t bias, uint64_t *ret)
{
	Dwarf_Attribute attr;
	Dwarf_Op *ops;
	size_t nops;
	if (!dwarf_attr(var, DW_AT_location, &attr) || dwarf_getlocation(&attr, &ops, &nops) != 0 ||
	    nops != 1 || ops[0].atom != DW_OP_addr)
		return false;
	*ret = ops[0].number + bias;
	return true;
}

static bool push(struct hs_containers_dwarf *d, size_t *cap, const struct hs_dwarf_container *c)
{
	if (d->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct hs_dwarf_container *g = realloc(d->v, ncap * sizeof(*g));
		if (!g)
			return false;
		d->v = g;
		*cap = ncap;
	}
	d->v[d->n++] = *c;
	return true;
}

static bool visit_scope(Dwarf_Die *scope, uint64_t bias, struct hs_containers_dwarf *d, size_t *cap, int depth)
{
	Dwarf_Die child;
	if (depth > 4 || dwarf_child(scope, &child) != 0)
		return true;
	do {
		int tag = dwarf_tag(&child);
		uint64_t addr;
		Dwarf_Die type;
		struct hs_dwarf_container c;
		if (tag == DW_TAG_variable && variable_address(&child, bias, &addr) && type_of(&child, &type) &&
		    describe(&type, &c)) {
			c.address = addr;
			const char *name = dwarf_diename(&child);
			c.name = strdup(name ? name : "?");
			if (!push(d, cap, &c)) {
				hs_dwarf_container_deinit(&c);
				return false;
			}
		} else if (tag == DW_TAG_namespace && !visit_scope(&child, bias, d, cap, depth + 1)) {
			return false;
		}
	} while (dwarf_siblingof(&child, &child) == 0);
	return true;
}

static Dwarf *main_dwarf(const struct hs_containers_input *in, Dwarf_Addr *bias)
{
	struct hs_module *m = in->symbols ? hs_symbols_main_module(in->symbols) : NULL;
	if (!m || !m->debug_found || !m->dwfl_module)
		return NULL;
	return dwfl_module_getdwarf(m->dwfl_module, bias);
}

struct hs_error *hs_containers_dwarf_globals(const struct hs_containers_input *in, struct hs_containers_dwarf *ret)
{
	memset(ret, 0, sizeof(*ret));
	Dwarf_Addr bias;
	Dwarf *dw = main_dwarf(in, &bias);
	if (!dw)
		return NULL;
	size_t cap = 0;
	Dwarf_CU *cu = NULL;
	Dwarf_Die cudie, subdie;
	Dwarf_Half version;
	uint8_t unit_type;
	while (dwarf_get_units(dw, cu, &cu, &version, &unit_type, &cudie, &subdie) == 0) {
		if (!visit_scope(&cudie, bias, ret, &cap, 0)) {
			hs_containers_dwarf_deinit(ret);
			return &hs_error_nomem;
		}
	}
	// Every thread's thread_local containers.
	const struct hs_local *tls = NULL;
	size_t ntls = 0;
	hs_locals_tls(in->locals, &tls, &ntls);
	for (size_t i = 0; i < ntls; i++) {
		Dwarf_Die type = tls[i].type;
		struct hs_dwarf_container c;
		if (!tls[i].has_type || !describe(&type, &c))
			continue;
		char name[256];
		snprintf(name, sizeof(name), "thread %d TLS %s", tls[i].tid, tls[i].name);
		c.address = tls[i].start;
		if (!(c.name = strdup(name)) || !push(ret, &cap, &c)) {
			hs_dwarf_container_deinit(&c);
			hs_containers_dwarf_deinit(ret);
			return &hs_error_nomem;
		}
	}
	return NULL;
}

static bool find_struct(Dwarf_Die *scope, const char *name, Dwarf_Die *ret, int depth)
{
	Dwarf_Die child;
	if (depth > 4 || dwarf_child(scope, &child) != 0)
		return false;
	do {
		int tag = dwarf_tag(&child);
		const char *n = dwarf_diename(&child);
		if ((tag == DW_TAG_structure_type || tag == DW_TAG_class_type) && n && !strcmp(n, name) &&
		    !dwarf_hasattr(&child, DW_AT_declaration)) {
			*ret = child;
			return true;
		}
		if (tag == DW_TAG_namespace && find_struct(&child, name, ret, depth + 1))
			return true;
	} while (dwarf_siblingof(&child, &child) == 0);
	return false;
}

bool hs_containers_dwarf_describe(Dwarf_Die *type, struct hs_dwarf_container *ret)
{
	return describe(type, ret);
}

bool hs_containers_dwarf_member(const struct hs_containers_input *in, const char *type_name_, uint64_t off,
				struct hs_dwarf_container *ret)
{
	Dwarf_Addr bias;
	Dwarf *dw = main_dwarf(in, &bias);
	if (!dw)
		return false;
	// "app::Registry" is looked up by its last component.
	const char *last = strrchr(type_name_, ':');
	const char *name = last ? last + 1 : type_name_;
	Dwarf_CU *cu = NULL;
	Dwarf_Die cudie, subdie, st, m;
	Dwarf_Half version;
	uint8_t unit_type;
	while (dwarf_get_units(dw, cu, &cu, &version, &unit_type, &cudie, &subdie) == 0) {
		if (!find_struct(&cudie, name, &st, 0) || dwarf_child(&st, &m) != 0)
			continue;
		do {
			Dwarf_Attribute attr;
			Dwarf_Word v;
			Dwarf_Die type;
			if (dwarf_tag(&m) != DW_TAG_member || !dwarf_attr_integrate(&m, DW_AT_data_member_location, &attr) ||
			    dwarf_formudata(&attr, &v) || v != off || !type_of(&m, &type))
				continue;
			if (describe(&type, ret)) {
				const char *mn = dwarf_diename(&m);
				ret->name = strdup(mn ? mn : "?");
				return true;
			}
		} while (dwarf_siblingof(&m, &m) == 0);
		return false;
	}
	return false;
}
