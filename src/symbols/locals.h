/* locals.h - the program's variables on threads' stacks and in their TLS,
 * from DWARF: which local variable of which frame, or which thread_local, a
 * root word lies in.  Containers, owners and chains name their anchors with it:
 * "thread 4242 frame 1 local_map (main at maps_cpp.cc:516)",
 * "thread 4242 TLS t_cache".
 *
 * Frames are numbered as GDB numbers them (0 innermost, one frame per inlined
 * call where the module has DWARF), so "frame 1" is what `frame 1` selects.
 * Stack locals need the unwinder (cores only); TLS variables are the
 * executable's (module 1 of each thread's dtv, as hs_tls_block reads it).  Variables in registers, or whose location is not a simple memory
 * address at that pc, are not listed.  Each thread is read lazily, on the first
 * question about it.
 */
#ifndef HS_LOCALS_H
#define HS_LOCALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <elfutils/libdw.h>

struct hs_memory;
struct hs_notes;
struct hs_roots;
struct hs_symbols;

/* What the locals read (the session fills it in: session.c).  A variable is
 * listed only when it lies inside one root range of its kind and thread (a
 * location computed wrong must not name other memory). */
struct hs_locals_input {
	struct hs_memory *mem;
	const struct hs_notes *notes;     /* the threads (their TLS blocks) */
	struct hs_symbols *symbols;       /* NULL: no variables */
	const struct hs_roots *roots;     /* the graph's root ranges; NULL: no variables */
	void *ctx;                        /* the callback's */
	/* libdwfl's unwinder attached to symbols' Dwfl (once, shared with the
	 * session's frame functions): true when it can unwind the threads;
	 * NULL: no stack locals (not a core). */
	bool (*unwinder)(void *ctx);
};
/* The variables found so far, read lazily: a thread on the first question
 * about it, TLS on the first question. */
struct hs_locals;

struct hs_local {
	uint64_t start, end;        /* where it lies in the target */
	int tid;
	int frame;                  /* GDB's frame number; -1: a TLS variable */
	const char *name;           /* "local_map" (DWARF's string) */
	char *function;             /* the frame's function, demangled ("main"); NULL: TLS */
	char *file;                 /* the frame's source file (base name), or NULL */
	int line;                   /* its line, 0 when unknown */
	Dwarf_Die type;             /* valid while the symbols' DWARF lives */
	bool has_type;
};

/* An empty cache over in (copied; what it points to must outlive it); NULL on
 * no memory. */
struct hs_locals *hs_locals_create(const struct hs_locals_input *in);
void hs_locals_destroy(struct hs_locals *l);
/* The variable of thread tid holding addr, or NULL. */
const struct hs_local *hs_local_at(struct hs_locals *l, int tid, uint64_t addr);
/* "thread 4242 frame 1 local_map (main at maps_cpp.cc:516)", with "+off"
 * after the name when addr is inside the variable; false when no variable
 * holds addr. */
bool hs_local_name(struct hs_locals *l, int tid, uint64_t addr, char *buf, size_t len);
/* Every thread's TLS variables (the executable's), sorted by start, through
 * *ret (owned by l). */
void hs_locals_tls(struct hs_locals *l, const struct hs_local **ret, size_t *n_ret);

#endif
