/* alloc.c - what allocator walkers describe: the allocator-neutral
 * description (arenas, regions, free lists, facts) and block state names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"

static const char *const where_names[HS_WHERE_COUNT] = {
	[HS_WHERE_USED] = "used",
	[HS_WHERE_MMAPPED] = "mmapped",
	[HS_WHERE_LARGE] = "large",
	[HS_WHERE_META] = "meta",
	[HS_WHERE_TCACHE] = "tcache",
	[HS_WHERE_FASTBIN] = "fastbin",
	[HS_WHERE_UNSORTED] = "unsorted",
	[HS_WHERE_SMALLBIN] = "smallbin",
	[HS_WHERE_LARGEBIN] = "largebin",
	[HS_WHERE_TOP] = "top",
	[HS_WHERE_SLAB] = "slab",
	[HS_WHERE_EXTENT] = "extent",
	[HS_WHERE_POOL] = "pool",
	[HS_WHERE_FREE_UNLISTED] = "free-unlisted",
};

const char *hs_where_state(unsigned w)
{
	return hs_where_is_free(w) ? "free" : w == HS_WHERE_META ? "meta" : "used";
}

const char *hs_where_name(enum hs_where w)
{
	if ((unsigned)w < HS_WHERE_COUNT && where_names[w])
		return where_names[w];
	return "unknown";
}

void hs_alloc_desc_deinit(struct hs_alloc_desc *d)
{
	free(d->arenas);
	free(d->regions);
	free(d->lists);
	memset(d, 0, sizeof(*d));
}

/* Append one element to a growable array (*items, *n), doubling capacity
 * when *n reaches a power of two. */
static struct hs_error *append(void **items, size_t *n, size_t elem, const void *item)
{
	size_t count = *n;
	if (count == 0 || (count & (count - 1)) == 0) {
		size_t cap = count ? count * 2 : 8;
		void *p = realloc(*items, cap * elem);
		if (!p)
			return &hs_error_nomem;
		*items = p;
	}
	memcpy((char *)*items + count * elem, item, elem);
	*n = count + 1;
	return NULL;
}

struct hs_error *hs_alloc_desc_add_arena(struct hs_alloc_desc *d, const struct hs_arena *a)
{
	return append((void **)&d->arenas, &d->narenas, sizeof(*a), a);
}

struct hs_error *hs_alloc_desc_add_region(struct hs_alloc_desc *d, const struct hs_region *r)
{
	return append((void **)&d->regions, &d->nregions, sizeof(*r), r);
}

struct hs_error *hs_alloc_desc_add_list(struct hs_alloc_desc *d, const struct hs_freelist *l)
{
	return append((void **)&d->lists, &d->nlists, sizeof(*l), l);
}

void hs_alloc_desc_fact(struct hs_alloc_desc *d, const char *name, uint64_t value)
{
	const size_t max = sizeof(d->facts) / sizeof(d->facts[0]);
	for (size_t i = 0; i < d->nfacts; i++) {
		if (strcmp(d->facts[i].name, name) == 0) {
			d->facts[i].value = value;
			return;
		}
	}
	if (d->nfacts == max)
		return;
	snprintf(d->facts[d->nfacts].name, sizeof(d->facts[0].name), "%s", name);
	d->facts[d->nfacts].value = value;
	d->nfacts++;
}
