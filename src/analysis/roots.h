/* roots.h - the root set: where a pointer keeps an allocation alive without
 * being inside another allocation.  Writable data of every module (globals),
 * each thread's live stack [sp, top), its TLS block and TCB, its registers, and
 * any other writable memory that is not the allocator's own (memory).  Ranges
 * are sorted by start and do not overlap.
 */
#ifndef HS_ROOTS_H
#define HS_ROOTS_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"

struct hs_session;
struct hs_module;

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
struct hs_error *hs_roots_build(struct hs_session *s, struct hs_roots *ret);
void hs_roots_deinit(struct hs_roots *r);
/* The range holding addr, or NULL. */
const struct hs_root_range *hs_roots_find(const struct hs_roots *r, uint64_t addr);
/* The function whose frame holds stack address addr of thread tid (cores:
 * unwound with libdwfl); false when unknown. */
bool hs_stack_frame_function(struct hs_session *s, int tid, uint64_t addr, char *buf, size_t len);

#endif
