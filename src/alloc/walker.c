/* walker.c - the walker context's helpers (walker.h): checked reads, bounded
 * list walks, symbols, overrides and rate-limited diagnostics. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "clock.h"
#include "symtab.h"
#include "vec.h"
#include "walker.h"

bool hs_walk_interrupted(const struct hs_walk_ctx *ctx)
{
	(void)ctx;
	return hs_interrupted();
}

bool hs_walk_read(struct hs_walk_ctx *ctx, uint64_t addr, void *buf, size_t len)
{
	struct hs_error *err = hs_memory_read(ctx->mem, addr, buf, len);
	hs_error_destroy(err);
	return !err;
}

bool hs_walk_read_u64(struct hs_walk_ctx *ctx, uint64_t addr, uint64_t *ret)
{
	struct hs_error *err = hs_memory_read_u64(ctx->mem, addr, ret);
	hs_error_destroy(err);
	return !err;
}

bool hs_walk_read_u32(struct hs_walk_ctx *ctx, uint64_t addr, uint32_t *ret)
{
	struct hs_error *err = hs_memory_read_u32(ctx->mem, addr, ret);
	hs_error_destroy(err);
	return !err;
}

void hs_chain_init(struct hs_chain *ch, uint64_t limit)
{
	*ch = (struct hs_chain){ .limit = limit, .mark = UINT64_MAX, .power = 1 };
}

enum hs_chain_step hs_chain_next(struct hs_chain *ch, uint64_t addr)
{
	if (addr == ch->mark)
		return HS_CHAIN_CYCLE;
	if (ch->count >= ch->limit)
		return HS_CHAIN_LIMIT;
	ch->count++;
	// Brent: the mark moves to the current entry whenever lam reaches a
	// power of two; a cycle brings the walk back to the mark.
	if (++ch->lam == ch->power) {
		ch->mark = addr;
		ch->power *= 2;
		ch->lam = 0;
	}
	return HS_CHAIN_OK;
}

struct hs_module *hs_walk_module_named(struct hs_walk_ctx *ctx, const char *prefix)
{
	return ctx->symbols ? hs_symbols_module_named(ctx->symbols, prefix) : NULL;
}

struct hs_module *hs_walk_module_at(struct hs_walk_ctx *ctx, uint64_t addr)
{
	return ctx->symbols ? hs_symbols_module_at(ctx->symbols, addr) : NULL;
}

const char *hs_base_name(const char *path)
{
	const char *s = path ? strrchr(path, '/') : NULL;
	return s ? s + 1 : (path ? path : "?");
}

bool hs_walk_module_from_files(struct hs_walk_ctx *ctx, const char *prefix, struct hs_module *m)
{
	const struct hs_mapped_file *first = NULL;
	uint64_t end = 0;
	size_t plen = strlen(prefix);
	for (size_t i = 0; i < ctx->nfiles; i++) {
		const struct hs_mapped_file *f = &ctx->files[i];
		if (!f->path || strncmp(hs_base_name(f->path), prefix, plen))
			continue;
		if (!first && f->offset == 0)
			first = f;
		if (first && !strcmp(f->path, first->path) && f->end > end)
			end = f->end;
	}
	if (!first)
		return false;
	struct hs_elf_file *f = hs_elf_open(first->path, 0);
	if (!f)
		return false;
	// The bias puts the first PT_LOAD (file offset 0) at the mapping's start.
	GElf_Phdr ph;
	bool ok = false;
	memset(m, 0, sizeof(*m));
	for (size_t i = 0; i < hs_elf_nphdrs(f) && !ok; i++)
		if (hs_elf_phdr(f, i, &ph) && ph.p_type == PT_LOAD) {
			m->bias = first->start - (ph.p_vaddr & ~UINT64_C(4095));
			ok = true;
		}
	// The ELF header and program headers the target holds must be the
	// file's: otherwise another file is at that path now.
	uint8_t hdr[256];
	uint64_t fsize;
	const uint8_t *image = hs_elf_image(f, &fsize);
	size_t n = fsize >= sizeof(hdr) ? sizeof(hdr) : 64;
	if (ok && fsize >= n && hs_walk_read(ctx, first->start, hdr, n) && memcmp(hdr, image, n))
		ok = false;
	hs_elf_close(f);
	if (!ok)
		return false;
	m->name = first->path;
	m->path = first->path;
	m->start = first->start;
	m->end = end;
	return true;
}

struct hs_error *hs_walk_symbol(struct hs_walk_ctx *ctx, struct hs_module *mod, const char *name,
				struct hs_symbol *ret)
{
	if (!ctx->symbols)
		return hs_error_create(HS_ERR_NOT_FOUND, "%s: no symbols", name);
	return hs_symbols_lookup(ctx->symbols, mod, name, ret);
}

uint64_t hs_walk_auxv(const struct hs_walk_ctx *ctx, uint64_t type)
{
	return ctx->notes ? hs_notes_auxv(ctx->notes, type) : 0;
}

bool hs_walk_override(const struct hs_walk_ctx *ctx, const char *name, uint64_t *ret)
{
	for (size_t i = 0; i < ctx->noverrides; i++) {
		if (!strcmp(ctx->overrides[i].name, name)) {
			*ret = ctx->overrides[i].value;
			return true;
		}
	}
	return false;
}

static void defer(struct hs_walk_defer *df, unsigned kind, enum hs_diag_level level, uint64_t addr,
		  const char *text)
{
	char *m = strdup(text);
	if (!m || HS_VEC_GROW(df->v, df->cap, df->n + 1)) {
		free(m);
		df->nomem = true;
		return;
	}
	df->v[df->n++] = (struct hs_walk_deferred){ kind, level, addr, m };
}

static void vdiag(struct hs_walk_ctx *ctx, enum hs_diag_level level, uint64_t addr, const char *fmt,
		  va_list ap)
{
	char buf[512];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (ctx->defer)
		defer(ctx->defer, UINT_MAX, level, addr, buf);
	else
		hs_diag_add(ctx->diags, level, ctx->walker ? ctx->walker->name : "heap", addr, "%s", buf);
}

void hs_walk_diag(struct hs_walk_ctx *ctx, enum hs_diag_level level, uint64_t addr, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vdiag(ctx, level, addr, fmt, ap);
	va_end(ap);
}

void hs_walk_diag_kinds(struct hs_walk_ctx *ctx, const char *const *what, unsigned nkinds,
			unsigned per_kind)
{
	ctx->diag_what = what;
	ctx->ndiag_kinds = nkinds < HS_WALK_DIAG_KINDS ? nkinds : HS_WALK_DIAG_KINDS;
	ctx->diag_per_kind = per_kind;
	memset(ctx->diag_counts, 0, sizeof(ctx->diag_counts));
}

void hs_walk_diagk(struct hs_walk_ctx *ctx, unsigned kind, enum hs_diag_level level, uint64_t addr,
		   const char *fmt, ...)
{
	if (kind >= ctx->ndiag_kinds)
		kind = ctx->ndiag_kinds ? ctx->ndiag_kinds - 1 : 0;
	struct hs_walk_defer *df = ctx->defer;
	if (df && ctx->ndiag_kinds) {
		// Only the first per_kind can ever be listed: keep those.
		if (df->total[kind]++ >= ctx->diag_per_kind)
			return;
		char buf[512];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(buf, sizeof(buf), fmt, ap);
		va_end(ap);
		df->kept[kind]++;
		defer(df, kind, level, addr, buf);
		return;
	}
	if (ctx->diag_counts[kind]++ >= ctx->diag_per_kind && ctx->ndiag_kinds)
		return;
	va_list ap;
	va_start(ap, fmt);
	vdiag(ctx, level, addr, fmt, ap);
	va_end(ap);
}

void hs_walk_defer_replay(struct hs_walk_ctx *ctx, const struct hs_walk_defer *df, size_t from, size_t to)
{
	const char *stage = ctx->walker ? ctx->walker->name : "heap";
	for (size_t i = from; i < to && i < df->n; i++) {
		const struct hs_walk_deferred *d = &df->v[i];
		if (d->kind != UINT_MAX && ctx->diag_counts[d->kind]++ >= ctx->diag_per_kind)
			continue;
		hs_diag_add(ctx->diags, d->level, stage, d->addr, "%s", d->message);
	}
}

// What was counted and never kept comes after every kept finding of its
// kind, when that kind's limit was reached: only the count is left to add.
void hs_walk_defer_finish(struct hs_walk_ctx *ctx, const struct hs_walk_defer *df)
{
	for (unsigned k = 0; k < ctx->ndiag_kinds; k++)
		ctx->diag_counts[k] += df->total[k] - df->kept[k];
	if (df->nomem)
		hs_diag_add(ctx->diags, HS_DIAG_WARNING, ctx->walker ? ctx->walker->name : "heap", 0,
			    "out of memory: some findings of the walk were lost");
}

void hs_walk_defer_deinit(struct hs_walk_defer *df)
{
	for (size_t i = 0; i < df->n; i++)
		free(df->v[i].message);
	free(df->v);
	memset(df, 0, sizeof(*df));
}

void hs_walk_diag_flush(struct hs_walk_ctx *ctx)
{
	for (unsigned k = 0; k < ctx->ndiag_kinds; k++) {
		if (ctx->diag_counts[k] > ctx->diag_per_kind)
			hs_walk_diag(ctx, HS_DIAG_WARNING, 0, "%u more findings %s were not listed",
				     ctx->diag_counts[k] - ctx->diag_per_kind, ctx->diag_what[k]);
		ctx->diag_counts[k] = 0;
	}
}
