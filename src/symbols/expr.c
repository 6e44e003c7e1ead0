/* expr.c - see expr.h: parse NAME(.m|->m|[i])* and resolve it through DWARF. */
#include <ctype.h>
#include <dwarf.h>
#include <elfutils/libdwfl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "expr.h"
#include "diag.h"
#include "glibc_layouts.h"
#include "memory.h"
#include "symbols.h"
#include "target.h"

/* Parsing. */

void hs_expr_deinit(struct hs_expr *e)
{
	free(e->name);
	for (size_t i = 0; i < e->nsteps; i++)
		free(e->steps[i].member);
	memset(e, 0, sizeof(*e));
}

static bool ident_start(char c) { return isalpha((unsigned char)c) || c == '_'; }
static bool ident_char(char c) { return isalnum((unsigned char)c) || c == '_' || c == ':'; }

static struct hs_error *syntax(const char *text, const char *p, const char *what)
{
	return hs_error_create(HS_ERR_USAGE, "bad expression '%s' at column %d: %s", text, (int)(p - text) + 1, what);
}

static char *ident(const char **p)
{
	const char *q = *p;
	while (ident_char(*q))
		q++;
	char *s = strndup(*p, q - *p);
	*p = q;
	return s;
}

struct hs_error *hs_expr_parse(const char *text, struct hs_expr *ret)
{
	struct hs_expr e = { 0 };
	const char *p = text;
	if (isdigit((unsigned char)*p)) {
		char *end;
		e.address = strtoull(p, &end, 0);
		if (end == p || (*end && *end != '.' && *end != '[' && *end != '-'))
			return syntax(text, end, "expected an address or a variable name");
		p = end;
		if (*p)
			return syntax(text, p, "an address takes no members or indexes");
	} else if (ident_start(*p)) {
		e.name = ident(&p);
		if (!e.name)
			return &hs_error_nomem;
	} else {
		return syntax(text, p, "expected a variable name");
	}
	struct hs_error *err = NULL;
	while (*p && !err) {
		if (e.nsteps == HS_EXPR_MAX_STEPS) {
			err = syntax(text, p, "too many steps");
			break;
		}
		struct hs_expr_step *st = &e.steps[e.nsteps];
		if (*p == '.' || (p[0] == '-' && p[1] == '>')) {
			st->kind = *p == '.' ? HS_STEP_MEMBER : HS_STEP_ARROW;
			p += *p == '.' ? 1 : 2;
			if (!ident_start(*p)) {
				err = syntax(text, p, "expected a member name");
				break;
			}
			if (!(st->member = ident(&p))) {
				err = &hs_error_nomem;
				break;
			}
		} else if (*p == '[') {
			char *end;
			p++;
			if (!isdigit((unsigned char)*p)) {
				err = syntax(text, p, "expected an index");
				break;
			}
			st->kind = HS_STEP_INDEX;
			st->index = strtoull(p, &end, 0);
			if (*end != ']') {
				err = syntax(text, end, "expected ']'");
				break;
			}
			p = end + 1;
		} else {
			err = syntax(text, p, "expected '.', '->' or '['");
			break;
		}
		e.nsteps++;
	}
	if (err) {
		hs_expr_deinit(&e);
		return err;
	}
	*ret = e;
	return NULL;
}

/* DWARF helpers. */

bool hs_dwarf_peel(Dwarf_Die *die, Dwarf_Die *ret)
{
	return dwarf_peel_type(die, ret) == 0;
}

bool hs_dwarf_type_of(Dwarf_Die *die, Dwarf_Die *ret)
{
	Dwarf_Attribute attr;
	return dwarf_attr_integrate(die, DW_AT_type, &attr) && dwarf_formref_die(&attr, ret) &&
	       hs_dwarf_peel(ret, ret);
}

bool hs_dwarf_var_location(Dwarf_Die *var, uint64_t bias, uint64_t *ret, bool *tls_ret)
{
	Dwarf_Attribute attr;
	Dwarf_Op *ops;
	size_t nops;
	if (!dwarf_attr(var, DW_AT_location, &attr) || dwarf_getlocation(&attr, &ops, &nops) != 0)
		return false;
	if (nops == 1 && ops[0].atom == DW_OP_addr) {
		*ret = ops[0].number + bias;
		*tls_ret = false;
		return true;
	}
	if (nops == 2 && (ops[1].atom == DW_OP_GNU_push_tls_address || ops[1].atom == DW_OP_form_tls_address) &&
	    (ops[0].atom == DW_OP_const8u || ops[0].atom == DW_OP_const4u || ops[0].atom == DW_OP_constu)) {
		*ret = ops[0].number;
		*tls_ret = true;
		return true;
	}
	return false;
}

bool hs_dwarf_member_location(Dwarf_Die *m, uint64_t *ret)
{
	Dwarf_Attribute attr;
	Dwarf_Word v;
	if (!dwarf_attr_integrate(m, DW_AT_data_member_location, &attr)) {
		*ret = 0;   // union members, and the first member in some producers
		return true;
	}
	if (dwarf_formudata(&attr, &v) == 0) {
		*ret = v;
		return true;
	}
	Dwarf_Op *ops;
	size_t nops;
	if (dwarf_getlocation(&attr, &ops, &nops) == 0 && nops == 1 && ops[0].atom == DW_OP_plus_uconst) {
		*ret = ops[0].number;
		return true;
	}
	return false;
}

static bool find_member(Dwarf_Die *type, const char *name, uint64_t *off_ret, Dwarf_Die *type_ret, int depth)
{
	Dwarf_Die m;
	int tag = dwarf_tag(type);
	if (depth > 8 || (tag != DW_TAG_structure_type && tag != DW_TAG_class_type && tag != DW_TAG_union_type) ||
	    dwarf_child(type, &m) != 0)
		return false;
	do {
		if (dwarf_tag(&m) != DW_TAG_member)
			continue;
		const char *mn = dwarf_diename(&m);
		uint64_t off;
		Dwarf_Die mt;
		if (!hs_dwarf_member_location(&m, &off) || !hs_dwarf_type_of(&m, &mt))
			continue;
		if (mn && !strcmp(mn, name)) {
			*off_ret = off;
			*type_ret = mt;
			return true;
		}
		uint64_t inner;
		if (!mn && find_member(&mt, name, &inner, type_ret, depth + 1)) {
			*off_ret = off + inner;
			return true;
		}
	} while (dwarf_siblingof(&m, &m) == 0);
	return false;
}

bool hs_dwarf_find_member(Dwarf_Die *type, const char *name, uint64_t *off_ret, Dwarf_Die *type_ret)
{
	return find_member(type, name, off_ret, type_ret, 0);
}

uint64_t hs_dwarf_size(Dwarf_Die *type)
{
	Dwarf_Word size;
	if (dwarf_tag(type) == DW_TAG_pointer_type)
		return 8;
	if (dwarf_aggregate_size(type, &size) == 0)
		return size;
	return 0;
}

struct hs_error *hs_tls_block(const struct hs_notes *notes, struct hs_memory *mem, size_t thread, uint64_t *ret)
{
	if (thread >= notes->nthreads)
		return hs_error_create(HS_ERR_NOT_FOUND, "no thread %zu", thread);
	uint64_t fs = notes->threads[thread].regs[HS_REG_FS_BASE], dtv;
	HS_CHECK(hs_memory_read_u64(mem, fs + HS_GLIBC_TCB_DTV, &dtv));
	return hs_memory_read_u64(mem, dtv + HS_GLIBC_DTV_ENTRY * HS_GLIBC_DTV_EXE_MODULE, ret);
}

bool hs_elf_tls_symbol(struct hs_module *mod, const char *name, uint64_t *offset_ret)
{
	Dwfl_Module *dm = mod->dwfl_module;
	int n = dm ? dwfl_module_getsymtab(dm) : -1;
	for (int i = 1; i < n; i++) {
		GElf_Sym sym;
		GElf_Addr addr;
		GElf_Word shndx;
		const char *sn = dwfl_module_getsym_info(dm, i, &sym, &addr, &shndx, NULL, NULL);
		// st_value of a TLS symbol is its offset in the module's TLS block.
		if (sn && GELF_ST_TYPE(sym.st_info) == STT_TLS && !strcmp(sn, name)) {
			*offset_ret = sym.st_value;
			return true;
		}
	}
	return false;
}

/* Resolution. */

struct found_var {
	Dwarf_Die die;
	uint64_t location;
	bool tls;
	bool is_main;
};

// The defining DIE (with a location) of a global named name in one module.
static bool find_variable(struct hs_module *mod, const char *name, struct found_var *ret)
{
	if (!mod->debug_found || !mod->dwfl_module)
		return false;
	Dwarf_Addr bias;
	Dwarf *dw = dwfl_module_getdwarf(mod->dwfl_module, &bias);
	if (!dw)
		return false;
	Dwarf_CU *cu = NULL;
	Dwarf_Die cudie, sub;
	Dwarf_Half version;
	uint8_t unit_type;
	while (dwarf_get_units(dw, cu, &cu, &version, &unit_type, &cudie, &sub) == 0) {
		Dwarf_Die c;
		if (dwarf_child(&cudie, &c) != 0)
			continue;
		do {
			if (dwarf_tag(&c) != DW_TAG_variable)
				continue;
			const char *n = dwarf_diename(&c);
			if (!n || strcmp(n, name))
				continue;
			if (!hs_dwarf_var_location(&c, bias, &ret->location, &ret->tls))
				continue;
			ret->die = c;
			ret->is_main = mod->is_main;
			return true;
		} while (dwarf_siblingof(&c, &c) == 0);
	}
	return false;
}

static struct hs_error *base_locations(const struct hs_expr_input *in, struct hs_symbols *sy, const struct hs_expr *e,
				       struct hs_expr_result *r)
{
	r->size = 8;
	if (!e->name) {
		r->locs = calloc(1, sizeof(*r->locs));
		if (!r->locs)
			return &hs_error_nomem;
		r->locs[0].address = e->address;
		r->n = 1;
		return NULL;
	}
	struct found_var v;
	bool found = false;
	struct hs_module *main = hs_symbols_main_module(sy);
	if (main)
		found = find_variable(main, e->name, &v);
	for (size_t m = 0; !found && m < sy->nmodules; m++)
		if (&sy->modules[m] != main)
			found = find_variable(&sy->modules[m], e->name, &v);
	if (found) {
		r->typed = hs_dwarf_type_of(&v.die, &r->type);
		if (r->typed && !(r->size = hs_dwarf_size(&r->type)))
			r->size = 8;
	}
	if (found && v.tls) {
tls:
		if (!v.is_main)
			return hs_error_create(HS_ERR_USAGE, "'%s' is a TLS variable of a shared library: only the executable's TLS is supported", e->name);
		const struct hs_notes *notes = in->notes;
		r->locs = calloc(notes->nthreads ? notes->nthreads : 1, sizeof(*r->locs));
		if (!r->locs)
			return &hs_error_nomem;
		r->tls = true;
		for (size_t t = 0; t < notes->nthreads; t++) {
			uint64_t block;
			struct hs_error *err = hs_tls_block(notes, in->mem, t, &block);
			if (err) {
				hs_diag_add(in->diags, HS_DIAG_WARNING, "pools", 0, "thread %d: no TLS block for '%s': %s",
					    notes->threads[t].tid, e->name, hs_error_message(err));
				hs_error_destroy(err);
				continue;
			}
			r->locs[r->n].address = block + v.location;
			r->locs[r->n++].tid = notes->threads[t].tid;
		}
		return NULL;
	}
	uint64_t addr;
	if (!found && main && hs_elf_tls_symbol(main, e->name, &v.location)) {
		// No DWARF: the executable's STT_TLS symbol holds the offset.
		found = true;
		v.tls = true;
		v.is_main = true;
		goto tls;
	}
	if (found) {
		addr = v.location;
	} else {
		struct hs_symbol sym;
		struct hs_error *err = hs_symbols_lookup(sy, NULL, e->name, &sym);
		if (err) {
			hs_error_destroy(err);
			return hs_error_create(HS_ERR_USAGE, "no variable '%s' in the target (no DWARF variable, no ELF symbol)", e->name);
		}
		if (!sym.is_object)
			return hs_error_create(HS_ERR_USAGE, "'%s' is not a variable", e->name);
		addr = sym.address;
	}
	r->locs = calloc(1, sizeof(*r->locs));
	if (!r->locs)
		return &hs_error_nomem;
	r->locs[0].address = addr;
	r->n = 1;
	return NULL;
}

static const char *type_name(Dwarf_Die *t)
{
	const char *n = dwarf_diename(t);
	return n ? n : "(anonymous)";
}

// One step, applied to every location.
static struct hs_error *apply_step(const struct hs_expr_input *in, const char *text, const struct hs_expr_step *st,
				   struct hs_expr_result *r)
{
	if (!r->typed)
		return hs_error_create(HS_ERR_USAGE, "'%s': no DWARF type for the variable (no debug info?): only a bare variable name or an address works without it", text);
	Dwarf_Die t = r->type, target;
	int tag = dwarf_tag(&t);
	bool deref = false;
	uint64_t add = 0;
	if (st->kind == HS_STEP_INDEX) {
		if (tag == DW_TAG_array_type) {
			if (!hs_dwarf_type_of(&t, &target))
				return hs_error_create(HS_ERR_USAGE, "'%s': an array of unknown element type", text);
		} else if (tag == DW_TAG_pointer_type) {
			if (!hs_dwarf_type_of(&t, &target))
				return hs_error_create(HS_ERR_USAGE, "'%s': cannot index a void pointer", text);
			deref = true;
		} else {
			return hs_error_create(HS_ERR_USAGE, "'%s': [%" PRIu64 "] on a value that is not an array or a pointer", text, st->index);
		}
		uint64_t esize = hs_dwarf_size(&target);
		if (!esize)
			return hs_error_create(HS_ERR_USAGE, "'%s': element size unknown", text);
		if (tag == DW_TAG_array_type) {
			uint64_t total = hs_dwarf_size(&t);
			if (total && st->index >= total / esize)
				return hs_error_create(HS_ERR_USAGE, "'%s': index %" PRIu64 " is out of bounds (%" PRIu64 " elements)", text, st->index, total / esize);
		}
		add = st->index * esize;
	} else {
		Dwarf_Die agg = t;
		if (tag == DW_TAG_pointer_type) {
			if (!hs_dwarf_type_of(&t, &agg))
				return hs_error_create(HS_ERR_USAGE, "'%s': member '%s' of a void pointer", text, st->member);
			deref = true;
		} else if (st->kind == HS_STEP_ARROW) {
			return hs_error_create(HS_ERR_USAGE, "'%s': '->%s' on a value that is not a pointer", text, st->member);
		}
		if (!hs_dwarf_find_member(&agg, st->member, &add, &target))
			return hs_error_create(HS_ERR_USAGE, "'%s': %s has no member '%s'", text, type_name(&agg), st->member);
	}
	for (size_t i = 0; i < r->n; i++) {
		uint64_t base = r->locs[i].address;
		if (deref) {
			struct hs_error *err = hs_memory_read_u64(in->mem, base, &base);
			if (err) {
				struct hs_error *e2 = hs_error_create(HS_ERR_USAGE, "'%s': cannot read the pointer at 0x%" PRIx64 ": %s",
								      text, r->locs[i].address, hs_error_message(err));
				hs_error_destroy(err);
				return e2;
			}
			if (!base)
				return hs_error_create(HS_ERR_USAGE, "'%s': a NULL pointer on the way (at 0x%" PRIx64 ")", text, r->locs[i].address);
		}
		r->locs[i].address = base + add;
	}
	r->type = target;
	r->size = hs_dwarf_size(&target);
	if (!r->size)
		r->size = 8;
	return NULL;
}

void hs_expr_result_deinit(struct hs_expr_result *r)
{
	free(r->locs);
	memset(r, 0, sizeof(*r));
}

struct hs_error *hs_expr_eval(const struct hs_expr_input *in, const char *text, struct hs_expr_result *ret)
{
	struct hs_expr e;
	HS_CHECK(hs_expr_parse(text, &e));
	struct hs_expr_result r = { 0 };
	// An address needs no symbols.
	struct hs_symbols *sy = NULL;
	struct hs_error *err = e.name ? in->symbols(in->ctx, &sy) : NULL;
	if (err) {
		struct hs_error *e2 = hs_error_create(HS_ERR_USAGE, "'%s': no symbols: %s", text, hs_error_message(err));
		hs_error_destroy(err);
		hs_expr_deinit(&e);
		return e2;
	}
	err = base_locations(in, sy, &e, &r);
	for (size_t i = 0; !err && i < e.nsteps; i++)
		err = apply_step(in, text, &e.steps[i], &r);
	hs_expr_deinit(&e);
	if (err) {
		hs_expr_result_deinit(&r);
		return err;
	}
	*ret = r;
	return NULL;
}
