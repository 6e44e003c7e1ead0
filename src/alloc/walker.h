/* walker.h - the one header an allocator walker includes.
 *
 * A walker sees the target through struct hs_walk_ctx, never the session:
 *
 *   memory       ctx->mem with memory.h's checked reads (hs_memory_read,
 *                _read_u64/_u32, _span zero-copy, _segment, _skip_hole): a
 *                read of bytes that were not dumped fails, never reads zeros;
 *                hs_walk_read_u64() / hs_walk_read() when a bool will do.
 *   symbols      hs_walk_module_named(), hs_walk_symbol() (ELF symbols of a
 *                module), symbols.h's hs_dwarf_struct_size/_member_offset/
 *                _variable (DWARF), hs_symbols_elf_* (a module's own ELF: program
 *                headers, sections, relocations).  ctx->symbols is NULL when no
 *                module could be loaded: everything then works from memory.
 *   target facts ctx->threads/nthreads (registers, regs[HS_REG_FS_BASE] for
 *                TLS), ctx->files/nfiles (NT_FILE mappings), hs_walk_auxv(),
 *                modules with build-ids and paths in ctx->symbols->modules.
 *   diagnostics  hs_walk_diag() (one finding) and, for findings that can
 *                repeat by the thousand, kinds declared with hs_walk_diag_kinds()
 *                and hs_walk_diagk() (at most per_kind each, the rest counted
 *                and said once by hs_walk_diag_flush()).
 *   options      hs_walk_override(ctx, "main_arena", &v) (--override
 *                NAME=ADDR), ctx->no_debuginfo.
 *   interruption hs_walk_interrupted(): check it in every long loop and
 *                return HS_ERR_INTERRUPTED.
 *   numbering    ctx->state[k]: the block `where` of the walker's states[k];
 *                ctx->arena_base: the global index of its first arena (blocks
 *                carry arena_base + local index).
 *   toolkit      vec.h (HS_VEC_PUSH, HS_LOWER_BOUND) and hs_chain_* below for
 *                every linked list read from the target (cycles, limits).
 */
#ifndef HS_WALKER_H
#define HS_WALKER_H

#include <stdbool.h>
#include <stdint.h>
#include "alloc.h"
#include "diag.h"
#include "error.h"
#include "heap.h"
#include "memory.h"
#include "notes.h"
#include "symbols.h"
#include "vec.h"

struct hs_walk_override { char name[40]; uint64_t value; };

#define HS_WALK_DIAG_KINDS 16

struct hs_walk_ctx {
	const struct hs_walker *walker;
	struct hs_memory *mem;
	struct hs_symbols *symbols;               /* NULL: no symbols */
	const struct hs_thread *threads;
	size_t nthreads;
	const struct hs_mapped_file *files;       /* NT_FILE (core) or /proc/PID/maps */
	size_t nfiles;
	const struct hs_notes *notes;             /* auxv and the rest, for hs_walk_auxv */
	const char *target_path;
	const struct hs_walk_override *overrides;
	size_t noverrides;
	bool no_debuginfo;
	const uint8_t *state;                     /* walker state k -> block where */
	unsigned arena_base;
	struct hs_diags *diags;
	/* rate-limited kinds (hs_walk_diag_kinds) */
	const char *const *diag_what;
	unsigned ndiag_kinds, diag_per_kind;
	unsigned diag_counts[HS_WALK_DIAG_KINDS];
	struct hs_walk_defer *defer;              /* non-NULL: findings are kept here */
	int jobs;                                 /* threads a walker may use */
};

/* Has the user asked to stop (Ctrl-C, hs_interrupt)? */
bool hs_walk_interrupted(const struct hs_walk_ctx *ctx);

/* --- memory ------------------------------------------------------------ */
bool hs_walk_read(struct hs_walk_ctx *ctx, uint64_t addr, void *buf, size_t len);
bool hs_walk_read_u64(struct hs_walk_ctx *ctx, uint64_t addr, uint64_t *ret);
bool hs_walk_read_u32(struct hs_walk_ctx *ctx, uint64_t addr, uint32_t *ret);

/* --- a linked list in the target ---------------------------------------- *
 * Brent's cycle detection in O(1) memory plus a length limit:
 *
 *	struct hs_chain ch;
 *	hs_chain_init(&ch, limit);
 *	for (uint64_t p = head; p; p = next) {
 *		enum hs_chain_step st = hs_chain_next(&ch, p);
 *		if (st != HS_CHAIN_OK) { diagnose st; break; }
 *		... read next from p ...
 *	}
 */
enum hs_chain_step { HS_CHAIN_OK, HS_CHAIN_CYCLE, HS_CHAIN_LIMIT };
struct hs_chain {
	uint64_t count, limit;
	uint64_t mark, power, lam;
};
void hs_chain_init(struct hs_chain *ch, uint64_t limit);
enum hs_chain_step hs_chain_next(struct hs_chain *ch, uint64_t addr);

/* --- symbols ------------------------------------------------------------ */
/* First module whose name or path's basename starts with prefix, or NULL. */
struct hs_module *hs_walk_module_named(struct hs_walk_ctx *ctx, const char *prefix);
struct hs_module *hs_walk_module_at(struct hs_walk_ctx *ctx, uint64_t addr);
/* A library as the file mappings show it, when no module list names it (a
 * truncated core loses the dynamic linker's list): the file whose base name
 * starts with prefix, its load range and bias, and only when the headers the
 * target holds at its start are the file's (not another file now at that
 * path).  Fills *m (its names point into ctx->files). */
bool hs_walk_module_from_files(struct hs_walk_ctx *ctx, const char *prefix, struct hs_module *m);
/* The last component of a path ("?" for none). */
const char *hs_base_name(const char *path);
/* ELF symbol by exact name in mod (NULL: every module); HS_ERR_NOT_FOUND when
 * absent or without symbols. */
struct hs_error *hs_walk_symbol(struct hs_walk_ctx *ctx, struct hs_module *mod, const char *name,
				struct hs_symbol *ret);
uint64_t hs_walk_auxv(const struct hs_walk_ctx *ctx, uint64_t type);   /* 0 if absent */

/* --- options ------------------------------------------------------------ */
/* A user override NAME=VALUE (--override) if given. */
bool hs_walk_override(const struct hs_walk_ctx *ctx, const char *name, uint64_t *ret);

/* --- diagnostics (stage: the walker's name) ----------------------------- */
void hs_walk_diag(struct hs_walk_ctx *ctx, enum hs_diag_level level, uint64_t addr, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Kinds of findings that repeat: what[k] completes "N more findings ... were
 * not listed" ("of bad chunk headers"); at most per_kind of each are listed. */
void hs_walk_diag_kinds(struct hs_walk_ctx *ctx, const char *const *what, unsigned nkinds,
			unsigned per_kind);
void hs_walk_diagk(struct hs_walk_ctx *ctx, unsigned kind, enum hs_diag_level level, uint64_t addr,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Say how many of each kind were not listed (at the end of walk()). */
void hs_walk_diag_flush(struct hs_walk_ctx *ctx);

/* Findings of work done on another thread, said later as if said then: a
 * copy of the context with .defer set keeps its findings (those that could
 * be listed, and the count of each kind), and hs_walk_defer_replay() says a
 * stretch of them through the real context, in order. */
struct hs_walk_deferred {
	unsigned kind;              /* UINT_MAX: not rate-limited (hs_walk_diag) */
	enum hs_diag_level level;
	uint64_t addr;
	char *message;
};
struct hs_walk_defer {
	struct hs_walk_deferred *v;
	size_t n, cap;
	unsigned total[HS_WALK_DIAG_KINDS], kept[HS_WALK_DIAG_KINDS];
	bool nomem;                 /* some findings were lost */
};
void hs_walk_defer_replay(struct hs_walk_ctx *ctx, const struct hs_walk_defer *df, size_t from, size_t to);
/* The counts of what was never kept (after the last replay). */
void hs_walk_defer_finish(struct hs_walk_ctx *ctx, const struct hs_walk_defer *df);
void hs_walk_defer_deinit(struct hs_walk_defer *df);

#endif
