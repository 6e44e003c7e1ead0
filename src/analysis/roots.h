/* roots.h - the root set: where a pointer keeps an allocation alive without
 * being inside another allocation.  Writable data of every module (globals),
 * each thread's live stack [sp, top), its TLS block and TCB, its registers, and
 * any other writable memory that is not the allocator's own (memory).  Ranges
 * are sorted by start and do not overlap; two that touch differ in kind,
 * thread or module (a mapping the core splits in several segments is one).
 */
#ifndef HS_ROOTS_H
#define HS_ROOTS_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"

struct hs_module;
struct hs_memory;
struct hs_notes;
struct hs_symbols;
struct hs_alloc_desc;

enum hs_root_kind { HS_ROOT_GLOBAL, HS_ROOT_STACK, HS_ROOT_REGISTER, HS_ROOT_TLS, HS_ROOT_MEMORY };

struct hs_root_range {
	uint64_t start, end;
	enum hs_root_kind kind;
	int tid;                          /* stack, tls: the thread; else 0 */
	const struct hs_module *module;   /* global: the module; else NULL */
};

struct hs_roots {
	struct hs_root_range *ranges;
	size_t n;
};

const char *hs_root_kind_name(enum hs_root_kind k);
/* What the root set is built from (the session fills it): the core's memory
 * and threads, the modules (NULL: none known), and the allocators' regions,
 * which are left out of every range. */
struct hs_roots_input {
	struct hs_memory *mem;
	const struct hs_notes *notes;
	struct hs_symbols *symbols;
	const struct hs_alloc_desc *desc;
	size_t ndesc;
};

struct hs_error *hs_roots_build(const struct hs_roots_input *in, struct hs_roots *ret);
void hs_roots_deinit(struct hs_roots *r);
/* The range holding addr, or NULL. */
const struct hs_root_range *hs_roots_find(const struct hs_roots *r, uint64_t addr);
/* Each thread's frames, unwound once: a report names thousands of stack
 * roots, and an unwind reads the core many times. */
struct hs_frame_cache;
void hs_frame_cache_destroy(struct hs_frame_cache *c);
/* The function whose frame holds stack address addr of thread tid, unwound
 * with libdwfl's core unwinder already attached to dwfl (a Dwfl *); false when unknown.
 * *cache (NULL at first) keeps the threads' frames; destroy it with the dwfl.
 * The session's hs_stack_frame_function decides when to ask (cores only). */
bool hs_stack_frame_unwind(void *dwfl, struct hs_symbols *symbols, struct hs_frame_cache **cache, int tid,
			   uint64_t addr, char *buf, size_t len);

#endif
