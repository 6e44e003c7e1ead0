/* alloc.c - what allocator walkers describe: the allocator-neutral
 * description (arenas, regions, free lists, facts), and the state registry:
 * the shared states and every walker's own, numbered once from the walker
 * table (src/alloc/walkers.c).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "vec.h"

/* --- the state registry ------------------------------------------------ */

static const struct hs_state_def shared_states[HS_WHERE_SHARED] = {
	[HS_WHERE_USED] = { "used", HS_STATE_USED, "a live allocation in an arena's heap or a slab" },
	[HS_WHERE_MMAPPED] = { "mmapped", HS_STATE_USED, "a live allocation in its own mapping" },
	[HS_WHERE_META] = { "meta", HS_STATE_META, "allocator metadata in a block: not user memory" },
	[HS_WHERE_POOL] = { "pool", HS_STATE_FREE, "on an application pool's free list" },
	[HS_WHERE_FREE_UNLISTED] = { "free-unlisted", HS_STATE_FREE,
				     "free by its header, on no list that was found (corruption)" },
};

#define MAX_WALKERS 64

static struct registry {
	const struct hs_state_def *defs[HS_WHERE_MAX];
	uint8_t kinds[HS_WHERE_MAX];
	uint8_t order[HS_WHERE_MAX];        /* display order -> id */
	size_t n;
	uint8_t walker_ids[HS_WHERE_MAX];   /* each walker's states, walker after walker */
	size_t walker_first[MAX_WALKERS];
	char titles[256], names[256];
} registry;
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;

static uint8_t register_state(struct registry *r, const struct hs_state_def *d)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->defs[i]->name, d->name))
			return (uint8_t)i;   /* shared by name (kinds are checked by test_alloc) */
	if (r->n == HS_WHERE_MAX)
		return HS_WHERE_FREE_UNLISTED;
	r->defs[r->n] = d;
	r->kinds[r->n] = (uint8_t)d->kind;
	return (uint8_t)r->n++;
}

/* Display order: shared used states, walkers' used states, meta, walkers'
 * free states, shared free states: "used mmapped large meta tcache ... pool
 * free-unlisted", the order reports list them in. */
static void order_states(struct registry *r)
{
	static const struct { enum hs_state_kind kind; bool shared; } groups[] = {
		{ HS_STATE_USED, true }, { HS_STATE_USED, false }, { HS_STATE_META, true },
		{ HS_STATE_META, false }, { HS_STATE_FREE, false }, { HS_STATE_FREE, true },
	};
	size_t k = 0;
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++)
		for (size_t i = 0; i < r->n; i++)
			if (r->kinds[i] == groups[g].kind && (i < HS_WHERE_SHARED) == groups[g].shared)
				r->order[k++] = (uint8_t)i;
}

static void registry_build(void)
{
	struct registry *r = &registry;
	for (size_t i = 0; i < HS_WHERE_SHARED; i++)
		register_state(r, &shared_states[i]);
	size_t next = 0;
	for (size_t w = 0; w < hs_nwalkers && w < MAX_WALKERS; w++) {
		const struct hs_walker *wk = hs_walkers[w];
		r->walker_first[w] = next;
		for (size_t k = 0; k < wk->nstates && next < HS_WHERE_MAX; k++)
			r->walker_ids[next++] = register_state(r, &wk->states[k]);
		size_t len = strlen(r->titles);
		snprintf(r->titles + len, sizeof(r->titles) - len, "%s%s", w ? ", " : "",
			 wk->title ? wk->title : wk->name);
		len = strlen(r->names);
		snprintf(r->names + len, sizeof(r->names) - len, "%s%s", w ? ", " : "", wk->name);
	}
	order_states(r);
}

static struct registry *registry_get(void)
{
	pthread_once(&registry_once, registry_build);
	return &registry;
}

const uint8_t *hs_where_kinds_table;

const uint8_t *hs_where_kinds_built(void)
{
	const uint8_t *k = registry_get()->kinds;
	__atomic_store_n(&hs_where_kinds_table, k, __ATOMIC_RELEASE);
	return k;
}
size_t hs_where_count(void) { return registry_get()->n; }
unsigned hs_where_at(size_t k) { return k < registry_get()->n ? registry.order[k] : HS_WHERE_USED; }

const char *hs_where_name(unsigned w)
{
	struct registry *r = registry_get();
	return w < r->n ? r->defs[w]->name : "unknown";
}

const char *hs_where_description(unsigned w)
{
	struct registry *r = registry_get();
	return w < r->n ? r->defs[w]->description : "";
}

const char *hs_where_state(unsigned w)
{
	return hs_where_is_free(w) ? "free" : hs_where_kind(w) == HS_STATE_META ? "meta" : "used";
}

int hs_where_by_name(const char *name)
{
	struct registry *r = registry_get();
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->defs[i]->name, name))
			return (int)i;
	return -1;
}

const uint8_t *hs_walker_state_ids(size_t i)
{
	struct registry *r = registry_get();
	return &r->walker_ids[i < MAX_WALKERS ? r->walker_first[i] : 0];
}

const char *hs_walker_titles(void) { return registry_get()->titles; }
const char *hs_walker_names(void) { return registry_get()->names; }

bool hs_walk_override_known(const char *name, size_t len)
{
	for (size_t w = 0; w < hs_nwalkers; w++)
		for (const char *const *o = hs_walkers[w]->overrides; o && *o; o++)
			if (strlen(*o) == len && !strncmp(*o, name, len))
				return true;
	return false;
}

const char *hs_walk_override_names(void)
{
	static char names[1024];
	if (names[0])
		return names;
	size_t n = 0;
	for (size_t w = 0; w < hs_nwalkers; w++)
		for (const char *const *o = hs_walkers[w]->overrides; o && *o; o++)
			n += (size_t)snprintf(names + n, n < sizeof(names) ? sizeof(names) - n : 0, "%s%s", n ? ", " : "", *o);
	return names;
}

const struct hs_walker *hs_walker_named(const char *name)
{
	for (size_t i = 0; i < hs_nwalkers; i++)
		if (!strcmp(hs_walkers[i]->name, name))
			return hs_walkers[i];
	return NULL;
}

/* --- the description ---------------------------------------------------- */

static void fact_set(struct hs_fact *facts, size_t *n, size_t max, const char *name, uint64_t value)
{
	for (size_t i = 0; i < *n; i++) {
		if (strcmp(facts[i].name, name) == 0) {
			facts[i].value = value;
			return;
		}
	}
	if (*n == max)
		return;
	snprintf(facts[*n].name, sizeof(facts[0].name), "%s", name);
	facts[*n].value = value;
	(*n)++;
}

void hs_arena_fact_set(struct hs_arena *a, const char *name, uint64_t value)
{
	fact_set(a->facts, &a->nfacts, HS_ARENA_FACTS, name, value);
}

uint64_t hs_arena_fact(const struct hs_arena *a, const char *name)
{
	for (size_t i = 0; i < a->nfacts; i++)
		if (!strcmp(a->facts[i].name, name))
			return a->facts[i].value;
	return 0;
}

void hs_alloc_desc_deinit(struct hs_alloc_desc *d)
{
	free(d->arenas);
	free(d->regions);
	free(d->lists);
	memset(d, 0, sizeof(*d));
}

struct hs_error *hs_alloc_desc_add_arena(struct hs_alloc_desc *d, const struct hs_arena *a)
{
	return HS_VEC_PUSH(d->arenas, d->narenas, d->caparenas, *a);
}

struct hs_error *hs_alloc_desc_add_region(struct hs_alloc_desc *d, const struct hs_region *r)
{
	return HS_VEC_PUSH(d->regions, d->nregions, d->capregions, *r);
}

struct hs_error *hs_alloc_desc_add_list(struct hs_alloc_desc *d, const struct hs_freelist *l)
{
	return HS_VEC_PUSH(d->lists, d->nlists, d->caplists, *l);
}

void hs_alloc_desc_fact(struct hs_alloc_desc *d, const char *name, uint64_t value)
{
	fact_set(d->facts, &d->nfacts, sizeof(d->facts) / sizeof(d->facts[0]), name, value);
}
