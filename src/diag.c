/* diag.c - see diag.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "diag.h"
#include "output.h"

void hs_diags_init(struct hs_diags *d)
{
	d->items = NULL;
	d->n = d->cap = d->dropped = 0;
}

void hs_diags_deinit(struct hs_diags *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->items[i].message);
	free(d->items);
	hs_diags_init(d);
}

void hs_diag_add(struct hs_diags *d, enum hs_diag_level level, const char *stage,
		 uint64_t address, const char *fmt, ...)
{
	// A diagnostic that cannot be stored is counted, never fatal: findings must
	// not turn into failures of the analysis.
	if (d->n >= HS_DIAGS_MAX) {
		d->dropped++;
		return;
	}
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		struct hs_diag *items = realloc(d->items, cap * sizeof(*items));
		if (!items) {
			d->dropped++;
			return;
		}
		d->items = items;
		d->cap = cap;
	}
	char *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0) {
		d->dropped++;
		return;
	}
	// Findings quote the target: printable, one line, valid UTF-8.
	char *clean = hs_text_escape_dup(msg);
	free(msg);
	if (!clean) {
		d->dropped++;
		return;
	}
	d->items[d->n++] = (struct hs_diag){ level, stage, address, clean };
}
