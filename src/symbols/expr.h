/* expr.h - where a C-like expression over a program's variables lives in the
 * target: NAME then steps `.member`, `->member` and `[index]`, through DWARF
 * types ("g_pool.free_head", "slabclass[3].slots", "t_cache").  NAME is a
 * global or static variable (the main module first), a TLS variable of the
 * executable (one location per thread), or a number (an address, untyped).
 * Without DWARF only a bare NAME resolves, through the ELF symbol table.
 *
 * Invariants: a parsed expression owns its strings; a result owns its
 * locations; `.` on a pointer to a struct reads the pointer (like `->`).
 * Resolution reads the core with checked reads only; every failure is an
 * hs_error with HS_ERR_USAGE (bad syntax, no such variable or member, wrong
 * kind of type) or the memory read's own code.
 */
#ifndef HS_EXPR_H
#define HS_EXPR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <elfutils/libdw.h>
#include "error.h"

struct hs_diags;
struct hs_memory;
struct hs_notes;
struct hs_symbols;

enum hs_expr_step_kind { HS_STEP_MEMBER, HS_STEP_ARROW, HS_STEP_INDEX };

struct hs_expr_step {
	enum hs_expr_step_kind kind;
	char *member;               /* MEMBER, ARROW */
	uint64_t index;             /* INDEX */
};

#define HS_EXPR_MAX_STEPS 32

struct hs_expr {
	char *name;                 /* the variable (NULL when address is used) */
	uint64_t address;           /* a numeric base */
	struct hs_expr_step steps[HS_EXPR_MAX_STEPS];
	size_t nsteps;
};

/* Syntax only (no session): HS_ERR_USAGE with the position on error. */
struct hs_error *hs_expr_parse(const char *text, struct hs_expr *ret);
void hs_expr_deinit(struct hs_expr *e);

struct hs_expr_loc {
	uint64_t address;           /* where the value is stored */
	int tid;                    /* TLS: the thread; 0 otherwise */
};

struct hs_expr_result {
	struct hs_expr_loc *locs;   /* one, or one per thread (TLS) */
	size_t n;
	bool tls;
	bool typed;                 /* type is the value's DWARF type (peeled) */
	Dwarf_Die type;
	uint64_t size;              /* the value's size in bytes, 8 when untyped */
};

/* What resolution reads (the session fills it in: hs_session_expr_eval). */
struct hs_expr_input {
	struct hs_memory *mem;
	const struct hs_notes *notes;     /* the threads: a TLS variable's blocks */
	struct hs_diags *diags;           /* a thread without a TLS block (a warning) */
	void *ctx;                        /* the callback's */
	/* The symbols, asked for only when the expression names a variable (an
	 * address needs none); an error says why there are none. */
	struct hs_error *(*symbols)(void *ctx, struct hs_symbols **ret);
};
/* Resolve text (hs_expr_parse's syntax) over in. */
struct hs_error *hs_expr_eval(const struct hs_expr_input *in, const char *text, struct hs_expr_result *ret);
void hs_expr_result_deinit(struct hs_expr_result *r);

/* DWARF helpers the expression resolver uses, for other walkers of globals. */
/* type with typedefs and cv-qualifiers removed. */
bool hs_dwarf_peel(Dwarf_Die *die, Dwarf_Die *ret);
/* The DW_AT_type of die, peeled. */
bool hs_dwarf_type_of(Dwarf_Die *die, Dwarf_Die *ret);
/* A member's byte offset (DW_AT_data_member_location: a constant, or
 * DW_OP_plus_uconst N; none for union members: 0). */
bool hs_dwarf_member_location(Dwarf_Die *m, uint64_t *ret);
/* A variable's location: a relocated address, or a TLS block offset. */
bool hs_dwarf_var_location(Dwarf_Die *var, uint64_t bias, uint64_t *ret, bool *tls_ret);
/* A member of struct/union type by name (anonymous members searched): its
 * byte offset and its (peeled) type. */
bool hs_dwarf_find_member(Dwarf_Die *type, const char *name, uint64_t *off_ret, Dwarf_Die *type_ret);
/* Byte size of a type (pointers 8), 0 when unknown. */
uint64_t hs_dwarf_size(Dwarf_Die *type);
struct hs_module;
/* An STT_TLS symbol of mod (ELF symbol table): its offset in the TLS block. */
bool hs_elf_tls_symbol(struct hs_module *mod, const char *name, uint64_t *offset_ret);
/* The executable's TLS block of thread number thread (index into the notes'
 * threads): dtv[1] read through mem from its fs_base. */
struct hs_error *hs_tls_block(const struct hs_notes *notes, struct hs_memory *mem, size_t thread, uint64_t *ret);

#endif
