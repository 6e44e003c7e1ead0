/* unit_util.c - see unit_util.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>
#include "unit_util.h"

uint64_t unit_fact(const struct hs_alloc_desc *d, const char *name)
{
	for (size_t i = 0; i < d->nfacts; i++)
		if (!strcmp(d->facts[i].name, name))
			return d->facts[i].value;
	fail_msg("no fact %s", name);
	return 0;
}

size_t unit_count_diags(const struct hs_session *s, enum hs_diag_level min, const char *needle)
{
	size_t n = 0;
	for (size_t i = 0; i < s->diags.n; i++) {
		const struct hs_diag *d = &s->diags.items[i];
		if (d->level >= min && (!needle || strstr(d->message, needle)))
			n++;
	}
	return n;
}

void unit_walk(struct hs_session *s, const char *name, struct hs_heap *heap, struct hs_alloc_desc *d,
	       struct hs_error **detect_err, struct hs_error **walk_err)
{
	size_t w = 0;
	while (w < hs_nwalkers && strcmp(hs_walkers[w]->name, name))
		w++;
	assert_true(w < hs_nwalkers);
	const struct hs_walker *wk = hs_walkers[w];
	hs_error_destroy(hs_session_need_symbols(s));   /* as heap_walk(): work without */
	struct hs_walk_ctx ctx;
	hs_session_walk_ctx(s, w, &ctx);
	void *state = NULL;
	*detect_err = wk->detect(&ctx, &state);
	*walk_err = NULL;
	if (!*detect_err)
		*walk_err = wk->walk(&ctx, state, heap, d);
	wk->destroy(state);
}
