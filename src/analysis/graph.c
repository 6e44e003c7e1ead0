/* graph.c - see graph.h: a conservative pointer scan over zero-copy spans of the
 * core, on in->jobs threads, into CSR edges; then reachability and classes.
 * It reads only its input (struct hs_graph_input): no session. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "clock.h"
#include "diag.h"
#include "graph.h"
#include "memory.h"
#include "notes.h"
#include "symbols.h"
#include "testhook.h"
#include "vec.h"

/* A gap wider than this between blocks starts a new span of the address map. */
#define SPAN_GAP (UINT64_C(1) << 20)

/* The address map. */

void hs_addrmap_deinit(struct hs_addrmap *m)
{
	free(m->spans);
	free(m->pages);
	free(m->groups);
	memset(m, 0, sizeof(*m));
}

static uint64_t block_end(const struct hs_block *b)
{
	return b->address + hs_block_size(b);
}

/* The granule of a span: the power of two at or above its mean block size
 * (so at most one entry per block: 4 bytes), 16 bytes at least. */
static unsigned span_shift(uint64_t bytes, size_t nblocks)
{
	uint64_t mean = bytes / (nblocks ? nblocks : 1);
	unsigned shift = 4;
	while (shift < 40 && (UINT64_C(1) << shift) < mean)
		shift++;
	return shift;
}

/* The start bits of the spans whose starts share an alignment and where they
 * cost at most GROUP_BYTES_PER_BLOCK bytes a block (see graph.h).  A span
 * without them is looked up by its granules alone. */
#define GROUP_BYTES_PER_BLOCK 16

static struct hs_error *size_groups(struct hs_addrmap *m)
{
	size_t ngroups = 0;
	for (size_t k = 0; k < m->nspans; k++) {
		struct hs_addr_span *sp = &m->spans[k];
		uint64_t or = sp->starts_or;
		unsigned ashift = or ? (unsigned)__builtin_ctzll(or) : 4;
		if (ashift > 20)
			ashift = 20;
		uint64_t slots = ((sp->end - 1 - sp->start) >> ashift) + 1;
		uint64_t groups = slots / 64 + 1;
		uint64_t nblocks = sp->last_block - sp->first_block + 1;
		if (groups > nblocks * GROUP_BYTES_PER_BLOCK / sizeof(struct hs_addr_group) + 1 ||
		    nblocks > UINT32_MAX)
			continue;
		sp->ashift = ashift;
		sp->first_group = ngroups;
		ngroups += (size_t)groups;
	}
	if (!ngroups)
		return NULL;
	struct hs_addr_group *g = hs_array_zeroed(ngroups, sizeof(*g));
	if (!g)
		return &hs_error_nomem;
	m->groups = g;
	return NULL;
}

/* Fill the start bits sized by size_groups for blocks [first, last): a part
 * of the heap that starts and ends at a group's edge, so parts share no
 * group. */
struct group_part {
	struct hs_addrmap *m;
	size_t first, last;
};

static void *fill_groups(void *arg)
{
	const struct group_part *gp = arg;
	struct hs_addrmap *m = gp->m;
	const struct hs_block *blocks = m->heap->blocks;
	for (size_t k = 0; k < m->nspans; k++) {
		const struct hs_addr_span *sp = &m->spans[k];
		if (sp->first_group == SIZE_MAX || sp->last_block < gp->first || sp->first_block >= gp->last)
			continue;
		struct hs_addr_group *sg = m->groups + sp->first_group;
		size_t lo = sp->first_block > gp->first ? sp->first_block : gp->first;
		size_t hi = sp->last_block < gp->last - 1 ? sp->last_block : gp->last - 1;
		for (size_t i = lo; i <= hi; i++) {
			const struct hs_block *b = &blocks[i];
			uint64_t slot = (b->address - sp->start) >> sp->ashift;
			uint64_t bit = UINT64_C(1) << (slot % 64);
			sg[slot / 64].s |= bit;
			if (hs_where_is_used(hs_block_where(b)) && (m->exact || hs_block_size(b) > 0))
				sg[slot / 64].u |= bit;
		}
	}
	return NULL;
}

/* Each group's base: the blocks of its span before it. */
static void group_bases(struct hs_addrmap *m)
{
	for (size_t k = 0; k < m->nspans; k++) {
		const struct hs_addr_span *sp = &m->spans[k];
		if (sp->first_group == SIZE_MAX)
			continue;
		struct hs_addr_group *sg = m->groups + sp->first_group;
		size_t ngroups = (((sp->end - 1 - sp->start) >> sp->ashift) + 1) / 64 + 1;
		uint32_t base = 0;
		for (size_t q = 0; q < ngroups; q++) {
			sg[q].base = base;
			base += hs_popcount64(sg[q].s);
		}
	}
}

/* Where the second of two parts of the start bits can begin: the first block
 * at or after the middle whose group is not its predecessor's (n: none). */
static size_t group_split(const struct hs_addrmap *m)
{
	const struct hs_block *blocks = m->heap->blocks;
	size_t n = m->heap->n, k = 0;
	for (size_t i = n / 2; i > 0 && i < n; i++) {
		while (k < m->nspans && m->spans[k].last_block < i)
			k++;
		const struct hs_addr_span *sp = &m->spans[k];
		if (sp->first_group == SIZE_MAX || sp->first_block == i)
			return i;
		unsigned shift = sp->ashift + 6;
		if ((blocks[i].address - sp->start) >> shift != (blocks[i - 1].address - sp->start) >> shift)
			return i;
	}
	return n;
}

struct hs_error *hs_addrmap_build(struct hs_addrmap *m, const struct hs_heap *heap,
				  const uint8_t *flags, bool exact, int jobs)
{
	memset(m, 0, sizeof(*m));
	m->heap = heap;
	m->flags = flags;
	m->exact = exact;
	size_t n = heap->n;
	if (!n)
		return NULL;
	if (n > UINT32_MAX)
		return hs_error_create(HS_ERR_HEAP, "more than 4 G blocks");
	// Pass 1: the spans.
	size_t nspans = 0, nentries = 0, cap = 16, first = 0;
	struct hs_addr_span *spans = malloc(cap * sizeof(*spans));
	if (!spans)
		return &hs_error_nomem;
	for (size_t i = 0; i < n; i++) {
		const struct hs_block *b = &heap->blocks[i];
		uint64_t end = block_end(b) > b->address ? block_end(b) : b->address + 1;
		if (nspans && b->address <= spans[nspans - 1].end + SPAN_GAP) {
			if (end > spans[nspans - 1].end)
				spans[nspans - 1].end = end;
			spans[nspans - 1].last_block = i;
			spans[nspans - 1].starts_or |= b->address - spans[nspans - 1].start;
			continue;
		}
		if (nspans == cap) {
			cap *= 2;
			struct hs_addr_span *g = realloc(spans, cap * sizeof(*spans));
			if (!g) {
				free(spans);
				return &hs_error_nomem;
			}
			spans = g;
		}
		spans[nspans++] = (struct hs_addr_span){ .start = b->address, .end = end, .first_block = i,
							 .last_block = i, .first_group = SIZE_MAX };
	}
	m->spans = spans;
	m->nspans = nspans;
	m->lo = spans[0].start;
	m->hi = spans[nspans - 1].end;
	HS_CHECK(size_groups(m));
	// The granules of the spans without start bits (those with them answer
	// every lookup from their groups).
	for (size_t k = 0; k < nspans; k++) {
		struct hs_addr_span *sp = &spans[k];
		sp->shift = span_shift(sp->end - sp->start, sp->last_block - first + 1);
		sp->nentries = sp->first_group == SIZE_MAX ? ((sp->end - 1 - sp->start) >> sp->shift) + 1 : 0;
		sp->first_entry = nentries;
		nentries += sp->nentries;
		first = sp->last_block + 1;
	}
	if (nentries && !(m->pages = hs_array_new(nentries, sizeof(*m->pages))))
		return &hs_error_nomem;
	// The start bits in two parts on two threads, and the granules here
	// after the first part.
	struct group_part parts[2] = { { m, 0, n }, { m, n, n } };
	size_t nparts = 1;
	if (m->groups && jobs > 1 && n >= 4096) {
		parts[0].last = parts[1].first = group_split(m);
		nparts = parts[1].first < n ? 2 : 1;
	}
	pthread_t tid;
	bool started = m->groups && nparts > 1 && !hs_test_no_threads() &&
		       pthread_create(&tid, NULL, fill_groups, &parts[1]) == 0;
	if (m->groups)
		fill_groups(&parts[0]);
	// Pass 2: for each granule, the first block that ends after it starts
	// (the span's last block when none does).
	for (size_t k = 0; k < nspans; k++) {
		const struct hs_addr_span *sp = &spans[k];
		if (!sp->nentries)
			continue;   // (start bits; and pages may be NULL)
		uint32_t *e = m->pages + sp->first_entry;
		size_t i = sp->first_block;
		for (size_t g = 0; g < sp->nentries; g++) {
			uint64_t gstart = sp->start + ((uint64_t)g << sp->shift);
			while (i < sp->last_block && block_end(&heap->blocks[i]) <= gstart)
				i++;
			e[g] = (uint32_t)i;
		}
	}
	if (started)
		pthread_join(tid, NULL);
	else if (m->groups && nparts > 1)
		fill_groups(&parts[1]);
	if (m->groups)
		group_bases(m);
	return NULL;
}

/* Groups asked for ahead of the one read.  All of a batch's asked for at
 * once (256) overflow the core's outstanding misses and wait for each other;
 * about this many on their way all the time keep them busy (scan at 30 M:
 * 1.7 -> 1.4 s; 12, 24 and 48 ahead did less well). */
#define LOOKUP_AHEAD 32

/* A value's state between the passes of hs_addrmap_lookup_many. */
enum { LK_DONE, LK_GROUP, LK_PAGE, LK_BLOCK };

void hs_addrmap_lookup_many(const struct hs_addrmap *m, const uint64_t *v, int64_t *ret, size_t n)
{
	const struct hs_addr_span *spn[HS_LOOKUP_BATCH];
	const struct hs_addr_group *grp[HS_LOOKUP_BATCH];
	uint16_t gk[HS_LOOKUP_BATCH];
	uint8_t state[HS_LOOKUP_BATCH];
	const struct hs_block *blocks = m->heap->blocks;
	size_t ng = 0;
	// 1: the span of each value, and its start bits' group (a span that
	// has them: the first LOOKUP_AHEAD asked for) or its granule entry
	// (asked for).
	for (size_t k = 0; k < n; k++) {
		ret[k] = -1;
		state[k] = LK_DONE;
		uint64_t x = v[k];
		if (x < m->lo || x >= m->hi)
			continue;
		const struct hs_addr_span *sp = hs_addr_span_of(m, x);
		if (x >= sp->end)
			continue;
		spn[k] = sp;
		uint64_t off = x - sp->start;
		if (sp->first_group != SIZE_MAX) {
			state[k] = LK_GROUP;
			grp[k] = &m->groups[sp->first_group + (off >> sp->ashift) / 64];
			if (ng < LOOKUP_AHEAD)
				__builtin_prefetch(grp[k]);
			gk[ng++] = (uint16_t)k;
			continue;
		}
		state[k] = LK_PAGE;
		ret[k] = (int64_t)(sp->first_entry + (off >> sp->shift));
		__builtin_prefetch(&m->pages[ret[k]]);
	}
	// 2: a value at a slot: the block starting there answers, or none does
	// and, unless exact, the last block starting before it is asked for (as
	// for a value between slots).
	for (size_t j = 0; j < ng; j++) {
		// (The group LOOKUP_AHEAD values on asked for now.)
		if (j + LOOKUP_AHEAD < ng)
			__builtin_prefetch(grp[gk[j + LOOKUP_AHEAD]]);
		size_t k = gk[j];
		const struct hs_addr_span *sp = spn[k];
		uint64_t off = v[k] - sp->start, slot = off >> sp->ashift;
		const struct hs_addr_group *g = grp[k];
		uint64_t bit = UINT64_C(1) << (slot % 64);
		bool at_slot = !(off & ((UINT64_C(1) << sp->ashift) - 1));
		state[k] = LK_DONE;
		if (at_slot && (g->u & bit)) {
			ret[k] = (int64_t)(sp->first_block + g->base + hs_popcount64(g->s & (bit - 1)));
		} else if ((at_slot && (g->s & bit)) || m->exact) {
			ret[k] = -1;
		} else {
			state[k] = LK_BLOCK;
			ret[k] = (int64_t)hs_addr_group_block(sp, g, slot);
			__builtin_prefetch(&blocks[ret[k]]);
		}
	}
	// 3: the first candidate block of a granule; ask for it.
	for (size_t k = 0; k < n; k++) {
		if (state[k] != LK_PAGE)
			continue;
		state[k] = LK_BLOCK;
		ret[k] = m->pages[ret[k]];
		__builtin_prefetch(&blocks[ret[k]]);
	}
	// 4: step to the block holding the value.
	for (size_t k = 0; k < n; k++) {
		if (state[k] != LK_BLOCK)
			continue;
		size_t i = (size_t)ret[k];
		uint64_t x = v[k];
		while (i < spn[k]->last_block && blocks[i + 1].address <= x)
			i++;
		const struct hs_block *b = &blocks[i];
		if (b->address > x || !hs_where_is_used(hs_block_where(b)) ||
		    (m->exact ? x != b->address : x - b->address >= hs_block_size(b)))
			ret[k] = -1;
		else
			ret[k] = (int64_t)i;
	}
}

/* The scan. */

struct u32vec { uint32_t *v; size_t n, cap; };

static bool u32vec_push(struct u32vec *x, uint32_t value)
{
	if (x->n == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 4096;
		uint32_t *g = realloc(x->v, cap * sizeof(*g));
		if (!g)
			return false;
		hs_hint_huge(g, cap * sizeof(*g));
		x->v = g;
		x->cap = cap;
	}
	x->v[x->n++] = value;
	return true;
}

/* Each in cache lines of its own: a worker writes its count of words and
 * its edges' at every word it keeps, and the next one's fields read at
 * every block would share a line with them. */
struct worker {
	_Alignas(64) const struct hs_graph_input *in;
	struct hs_analysis *a;
	struct u32vec edges;
	bool fixed;                  /* edges is a slice of the reserved array (scan_share's all) */
	uint32_t *degree;            /* shared array, each worker writes its own blocks' */
	struct scan_share *share;
	size_t me, nparts;           /* this part is number me of nparts */
	size_t chunk;                /* the chunk its edges go to */
	const struct hs_scan_visitor *visitor;  /* NULL: none, or it declined */
	uint32_t *heap_words;        /* the visitor's: the block's words into the heap */
	size_t not_dumped;
	bool nomem;
	/* candidate words waiting for their lookup: value and source block */
	uint64_t val[HS_LOOKUP_BATCH];
	uint32_t src[HS_LOOKUP_BATCH];
	int64_t hit[HS_LOOKUP_BATCH];
	size_t nval;
	uint32_t last_src, last_target;
	uint64_t *bits;              /* in->pointer_bits' answer */
	size_t capbits;
};

static bool in_image(const struct hs_analysis *a, uint64_t v)
{
	size_t lo = 0, hi = a->nimages;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (a->images[mid].end <= v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < a->nimages && a->images[lo].start <= v;
}

/* Look the waiting words up, and append their edges in word order: no
 * self-edges, and a run of words into one block is one edge.  types.c
 * (word_targets) reads the words' targets back off these rules. */
static void flush_words(struct worker *w)
{
	hs_addrmap_lookup_many(&w->a->map, w->val, w->hit, w->nval);
	for (size_t k = 0; k < w->nval; k++) {
		int64_t t = w->hit[k];
		uint32_t i = w->src[k];
		if (i != w->last_src) {
			w->last_src = i;
			w->last_target = UINT32_MAX;
		}
		if (t < 0 || (uint32_t)t == i || (uint32_t)t == w->last_target)
			continue;
		w->last_target = (uint32_t)t;
		// (A reserved slice has room for a word each: never full here.)
		if ((w->fixed && w->edges.n == w->edges.cap) || !u32vec_push(&w->edges, (uint32_t)t)) {
			w->nomem = true;
			break;
		}
		w->degree[i]++;
	}
	w->nval = 0;
}

static void scan_block(struct worker *w, size_t i, const uint64_t *words, size_t nwords)
{
	const struct hs_addrmap *m = &w->a->map;
	uint64_t lo = m->lo, hi = m->hi;
	// While the block is in cache: could its first word be a vtable pointer?
	// (types.c looks only at the blocks flagged here.)
	if (nwords && in_image(w->a, words[0]))
		w->a->flags[i] |= HS_NODE_VPTR;
	uint32_t *heap = w->visitor && nwords <= HS_SCAN_HEAP_WORDS ? w->heap_words : NULL;
	size_t nheap = 0;
	for (size_t k = 0; (k = hs_next_heap_word((const uint8_t *)words, k, nwords, lo, hi)) < nwords; k++) {
		uint64_t v = words[k];
		w->val[w->nval] = v;
		w->src[w->nval++] = (uint32_t)i;
		if (heap)
			heap[nheap++] = (uint32_t)k;
		if (w->nval == HS_LOOKUP_BATCH)
			flush_words(w);
	}
	if (w->visitor)
		w->visitor->block(w->visitor->ctx, w->me, i, words, nwords, heap, nheap);
}

// Only the words the block's pointer map names (1); -1: no map, scan all.
static int scan_precise(struct worker *w, size_t i, uint64_t addr, uint64_t size, const uint64_t *words)
{
	size_t need = (size / 8 + 63) / 64;
	if (need > w->capbits) {
		uint64_t *n = realloc(w->bits, need * sizeof(*n));
		if (!n) {
			w->nomem = true;
			return 0;
		}
		w->bits = n;
		w->capbits = need;
	}
	int r = w->in->pointer_bits(w->in->pointer_ctx, addr, size, w->bits);
	if (r <= 0)
		return r;
	const struct hs_addrmap *m = &w->a->map;
	for (size_t k = 0; k < need; k++) {
		for (uint64_t b = w->bits[k]; b; b &= b - 1) {
			size_t j = k * 64 + (size_t)__builtin_ctzll(b);
			if (j >= size / 8)
				break;     /* past the block: not a word of it */
			uint64_t v = words[j];
			if (v < m->lo || v >= m->hi)
				continue;
			w->val[w->nval] = v;
			w->src[w->nval++] = (uint32_t)i;
			if (w->nval == HS_LOOKUP_BATCH)
				flush_words(w);
		}
	}
	return 1;
}

/* The parts share the blocks in batches of SCAN_BATCH: each part has a range
 * of batches of its own, taken from the front one at a time; a part whose
 * range is empty takes the back half of the largest range left (a thread
 * that runs slower, for whatever reason, is not waited for).  A piece of
 * blocks scanned by one part is a chunk: its edges, in block order, go where
 * the words before its first block would in one array reserved ahead (a
 * block has no more edges than words), and the chunks are put one after
 * another in block order at the end (scan_heap).  Without the reserved array
 * each part keeps its range and a list of its own. */
#define SCAN_BATCH 4096

struct scan_chunk {
	size_t first;                /* block */
	uint32_t *edges;
	size_t n;
};

struct scan_share {
	pthread_mutex_t lock;
	size_t front[64], back[64];  /* each part's batches still to scan */
	size_t batch, n;
	const uint64_t *words;       /* the words before each batch; [nbatches]: all */
	uint32_t *all;               /* NULL: no stealing */
	struct scan_chunk *chunks;
	size_t nchunks, cap;
};

// The part's next batch [*lo, *hi), its own or, when its range is empty,
// from the back half of the largest range left: a new chunk of the part's
// (its edges so far, all looked up, are the old chunk's).  False when no
// batch is left.
static bool next_batch(struct worker *w, size_t *lo, size_t *hi)
{
	struct scan_share *sh = w->share;
	size_t me = w->me;
	bool ok = false;
	pthread_mutex_lock(&sh->lock);
	if (sh->front[me] == sh->back[me] && sh->all && sh->nchunks < sh->cap) {
		size_t v = me, most = 1;
		for (size_t j = 0; j < w->nparts; j++)
			if (sh->back[j] - sh->front[j] > most) {
				most = sh->back[j] - sh->front[j];
				v = j;
			}
		if (v != me) {
			size_t split = sh->back[v] - most / 2;
			sh->front[me] = split;
			sh->back[me] = sh->back[v];
			sh->back[v] = split;
			sh->chunks[w->chunk].n = w->edges.n;
			w->chunk = sh->nchunks++;
			sh->chunks[w->chunk] = (struct scan_chunk){ .first = split * sh->batch,
								    .edges = sh->all + sh->words[split] };
			w->edges = (struct u32vec){ .v = sh->chunks[w->chunk].edges, .n = 0,
						    .cap = sh->words[sh->back[me]] - sh->words[split] };
		}
	}
	if (sh->front[me] < sh->back[me]) {
		size_t b = sh->front[me]++;
		*lo = b * sh->batch;
		*hi = *lo + sh->batch < sh->n ? *lo + sh->batch : sh->n;
		ok = true;
	}
	pthread_mutex_unlock(&sh->lock);
	return ok;
}

// Block i is not scanned word by word: the visitor reads it itself.
static void visit_unread(struct worker *w, size_t i)
{
	if (w->visitor)
		w->visitor->block(w->visitor->ctx, w->me, i, NULL, 0, NULL, 0);
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	struct hs_memory *mem = w->in->mem;
	const struct hs_block *blocks = w->in->heap->blocks;
	const struct hs_segment *seg = NULL;
	size_t lo, hi;
	w->last_src = w->last_target = UINT32_MAX;
	while (!w->nomem && next_batch(w, &lo, &hi)) {
		for (size_t i = lo; i < hi; i++)
			w->degree[i] = 0;
		for (size_t i = lo; i < hi && !w->nomem; i++) {
			if (!(w->a->flags[i] & HS_NODE_USED))
				continue;
			uint64_t addr = blocks[i].address, size = hs_block_size(&blocks[i]) & ~UINT64_C(7);
			if (!seg || addr < seg->start || addr + size > seg->start + seg->span)
				seg = hs_memory_segment(mem, addr);
			if (!seg || !seg->data || addr + size > seg->start + seg->span || (addr & 7)) {
				w->not_dumped++;
				seg = NULL;
				visit_unread(w, i);
				continue;
			}
			const uint64_t *words = (const uint64_t *)(seg->data + (addr - seg->start));
			if (w->in->pointer_bits) {
				int r = scan_precise(w, i, addr, size, words);
				if (r >= 0) {
					visit_unread(w, i);
					continue;
				}
			}
			scan_block(w, i, words, size / 8);
		}
		// The batch's words looked up: its edges are all in the list
		// (the next batch may be another chunk's).
		if (!w->nomem)
			flush_words(w);
	}
	w->share->chunks[w->chunk].n = w->edges.n;
	return NULL;
}

struct batch_words_part {
	const struct hs_block *blocks;
	const uint8_t *flags;
	size_t n, batch;
	uint64_t *words;
	size_t first, last;          /* batches */
};

static void *batch_words_run(void *arg)
{
	const struct batch_words_part *p = arg;
	for (size_t b = p->first; b < p->last; b++) {
		size_t end = (b + 1) * p->batch < p->n ? (b + 1) * p->batch : p->n;
		uint64_t acc = 0;
		for (size_t i = b * p->batch; i < end; i++)
			if (p->flags[i] & HS_NODE_USED)
				acc += hs_block_size(&p->blocks[i]) / 8;
		p->words[b] = acc;
	}
	return NULL;
}

static int chunk_cmp(const void *x, const void *y)
{
	const struct scan_chunk *a = x, *b = y;
	return (a->first > b->first) - (a->first < b->first);
}

// Split the blocks into jobs ranges of about equal bytes to scan, in
// batches; the parts balance themselves by taking halves of each other's
// ranges (next_batch).
static struct hs_error *scan_heap(const struct hs_graph_input *in, struct hs_analysis *a)
{
	bool small = hs_test_small_splits();
	size_t n = a->n, jobs = in->jobs > 0 ? (size_t)in->jobs : 1, batch = small ? 4 : SCAN_BATCH;
	if (jobs > 64)
		jobs = 64;
	if (n < (small ? 16 : 4096))
		jobs = 1;
	size_t nbatches = (n + batch - 1) / batch;
	struct scan_share sh = { .batch = batch, .n = n };
	struct worker *w = aligned_alloc(_Alignof(struct worker), 64 * sizeof(*w));
	uint32_t *degree = hs_array_new(n + 1, sizeof(*degree));
	uint64_t *words = malloc((nbatches + 1) * sizeof(*words));
	// At most one chunk per batch.
	sh.cap = nbatches + jobs;
	sh.chunks = malloc(sh.cap * sizeof(*sh.chunks));
	if (!degree || !w || !words || !sh.chunks) {
		free(w);
		free(degree);
		free(words);
		free(sh.chunks);
		return &hs_error_nomem;
	}
	memset(w, 0, 64 * sizeof(*w));
	pthread_mutex_init(&sh.lock, NULL);
	// The words before each batch: a chunk's edges are no more than its
	// words, so one starting at batch b has room from words[b] on.  Each
	// batch's words counted by all the parts, then summed up.
	struct batch_words_part bp[64];
	for (size_t j = 0; j < jobs; j++)
		bp[j] = (struct batch_words_part){ in->heap->blocks, a->flags, n, batch, words,
						   nbatches * j / jobs, nbatches * (j + 1) / jobs };
	hs_run_parts(jobs, batch_words_run, bp, sizeof(bp[0]));
	uint64_t acc = 0;
	for (size_t b = 0; b < nbatches; b++) {
		uint64_t x = words[b];
		words[b] = acc;
		acc += x;
	}
	words[nbatches] = acc;
	sh.words = words;
	// The first ranges: about equal words each, whole batches.
	size_t k = 0, from = 0;
	for (size_t b = 0; b < nbatches && k + 1 < jobs; b++) {
		if (words[b + 1] - words[from] >= acc / jobs + 1) {
			sh.front[k] = from;
			sh.back[k++] = b + 1;
			from = b + 1;
		}
	}
	sh.front[k] = from;
	sh.back[k++] = nbatches;
	// The edges of all parts in one array reserved ahead: pages never
	// written cost nothing, and a list that never grows is never moved (the
	// first read of moved pages is slow on some virtual machines).  Without
	// it (too big for the address space: at most 4 GiB, or none to be had)
	// the parts grow lists of their own.  (A hostile core's sizes bound
	// nothing real.)
	if (acc >= (small ? 1 : 4096) && acc <= (UINT64_C(1) << 30))
		sh.all = hs_array_new(acc, sizeof(*sh.all));
	// The visitor is told each block's heap words (when it can be: else it
	// is not started at all).
	const struct hs_scan_visitor *visitor = NULL;
	uint32_t *heap_words[64] = { NULL };
	bool have = in->visitor != NULL;
	for (size_t j = 0; have && j < k; j++)
		have = (heap_words[j] = malloc(HS_SCAN_HEAP_WORDS * sizeof(uint32_t))) != NULL;
	if (have && in->visitor->begin(in->visitor->ctx, a, k))
		visitor = in->visitor;
	for (size_t j = 0; j < k; j++) {
		w[j] = (struct worker){ .in = in, .a = a, .degree = degree, .share = &sh, .me = j,
					.nparts = k, .chunk = j, .visitor = visitor, .heap_words = heap_words[j] };
		sh.chunks[j] = (struct scan_chunk){ .first = sh.front[j] * batch };
		if (sh.all) {
			sh.chunks[j].edges = sh.all + words[sh.front[j]];
			w[j].edges = (struct u32vec){ .v = sh.chunks[j].edges, .n = 0,
						      .cap = words[sh.back[j]] - words[sh.front[j]] };
			w[j].fixed = true;
		}
	}
	sh.nchunks = k;
	hs_run_parts(k, worker_run, w, sizeof(w[0]));
	pthread_mutex_destroy(&sh.lock);
	bool nomem = false;
	size_t total = 0, not_dumped = 0;
	for (size_t j = 0; j < k; j++) {
		nomem |= w[j].nomem;
		not_dumped += w[j].not_dumped;
	}
	for (size_t c = 0; c < sh.nchunks; c++)
		total += sh.chunks[c].n;
	struct hs_error *err = NULL;
	if (nomem || total > UINT32_MAX) {
		err = nomem ? &hs_error_nomem : hs_error_create(HS_ERR_HEAP, "more than 4 G pointers in the heap");
		goto out;
	}
	// CSR: offsets are the prefix sums of the degrees; edges are the
	// chunks' one after another, which is block order.
	a->fwd_off = degree;
	degree = NULL;
	uint32_t sum = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t d = a->fwd_off[i];
		a->fwd_off[i] = sum;
		sum += d;
	}
	a->fwd_off[n] = sum;
	if (sh.all) {
		qsort(sh.chunks, sh.nchunks, sizeof(*sh.chunks), chunk_cmp);
		// One reserved array: each chunk's edges moved down after the one
		// before (by their pages, when far: hs_array_move); the rest
		// (never written) given back in place.
		size_t at = 0;
		for (size_t c = 0; c < sh.nchunks; c++) {
			if (sh.chunks[c].n && sh.chunks[c].edges != sh.all + at)
				hs_array_move(sh.all + at, sh.chunks[c].edges, sh.chunks[c].n * sizeof(uint32_t));
			at += sh.chunks[c].n;
		}
		uint32_t *g = realloc(sh.all, (total ? total : 1) * sizeof(*g));
		a->fwd = g ? g : sh.all;
		sh.all = NULL;
		goto done;
	}
	// The first part's list grows into the whole edge array (realloc
	// usually remaps it in place); each other list is freed once copied.
	a->fwd = realloc(w[0].edges.v, (total ? total : 1) * sizeof(*a->fwd));
	hs_hint_huge(a->fwd, total * sizeof(*a->fwd));
	if (!a->fwd) {
		err = &hs_error_nomem;
		goto out;
	}
	w[0].edges.v = NULL;
	size_t at = w[0].edges.n;
	for (size_t j = 1; j < k; j++) {
		if (w[j].edges.n)
			memcpy(a->fwd + at, w[j].edges.v, w[j].edges.n * sizeof(uint32_t));
		at += w[j].edges.n;
		free(w[j].edges.v);
		w[j].edges.v = NULL;
	}
done:
	if (not_dumped)
		hs_diag_add(in->diags, HS_DIAG_WARNING, "graph", 0,
			    "%zu allocations are not in the core (not dumped): their pointers are unknown, so what they hold may be reported leaked",
			    not_dumped);
out:
	for (size_t j = 0; j < k; j++) {
		if (!w[j].fixed)
			free(w[j].edges.v);
		free(w[j].bits);
		free(w[j].heap_words);
	}
	free(sh.all);
	free(sh.chunks);
	free(words);
	free(w);
	free(degree);
	return err;
}

static void mark_word(struct hs_analysis *a, uint64_t v)
{
	ptrdiff_t t = hs_addrmap_lookup(&a->map, v);
	if (t >= 0)
		a->flags[t] |= HS_NODE_ROOTED;
}

static void scan_roots(const struct hs_graph_input *in, struct hs_analysis *a)
{
	struct hs_memory *mem = in->mem;
	for (size_t r = 0; r < a->roots.n; r++) {
		uint64_t start = (a->roots.ranges[r].start + 7) & ~UINT64_C(7), end = a->roots.ranges[r].end;
		while (start + 8 <= end) {
			const struct hs_segment *seg = hs_memory_segment(mem, start);
			if (!seg || !seg->data)
				break;
			// Holes of a sparse core are zeros: skipped, never faulted in.
			uint64_t skip = hs_memory_skip_hole(mem, start);
			if (skip != start) {
				start = (skip + 7) & ~UINT64_C(7);
				continue;
			}
			uint64_t run = hs_memory_data_run(mem, start);
			uint64_t stop = run < end - start ? start + run : end;
			const uint64_t *words = (const uint64_t *)(seg->data + (start - seg->start));
			size_t nwords = (stop - start) / 8;
			for (size_t k = 0; k < nwords; k++)
				if (words[k] >= a->map.lo && words[k] < a->map.hi)
					mark_word(a, words[k]);
			start += nwords * 8;
			if (nwords == 0)
				break;
		}
	}
	const struct hs_notes *notes = in->notes;
	for (size_t t = 0; notes && t < notes->nthreads; t++)
		for (int r = 0; r < HS_NREGS; r++)
			mark_word(a, notes->threads[t].regs[r]);
}

void hs_run_parts(size_t nparts, void *(*fn)(void *), void *parts, size_t argsize)
{
	pthread_t tid[64];
	bool started[64] = { false };
	if (nparts > 64)
		nparts = 64;
	bool threads = nparts > 1 && !hs_test_no_threads();
	for (size_t j = 1; threads && j < nparts; j++)
		started[j] = pthread_create(&tid[j], NULL, fn, (char *)parts + j * argsize) == 0;
	fn(parts);
	for (size_t j = 1; j < nparts; j++) {
		if (started[j])
			pthread_join(tid[j], NULL);
		else
			fn((char *)parts + j * argsize);
	}
}

#define PREFAULT_MIN ((size_t)16 << 20)   /* bytes in all below which one thread is as quick */
#define PREFAULT_PAGE ((uintptr_t)4096)

struct prefault_part {
	void *const *p;
	const size_t *bytes;
	size_t n;
	uint64_t lo, hi;        /* this part's bytes of all the arrays, one after another */
};

static void *prefault_run(void *arg)
{
	const struct prefault_part *pp = arg;
	uint64_t at = 0;
	for (size_t k = 0; k < pp->n && at < pp->hi; at += pp->bytes[k], k++) {
		uint64_t lo = pp->lo > at ? pp->lo - at : 0, hi = pp->hi - at;
		if (hi > pp->bytes[k])
			hi = pp->bytes[k];
		if (!pp->p[k] || lo >= hi)
			continue;
		// The array's whole pages only (its first and last may be another
		// block's), a page across two parts' edge in both.
		uintptr_t p0 = (uintptr_t)pp->p[k], first = (p0 + PREFAULT_PAGE - 1) & ~(PREFAULT_PAGE - 1);
		uintptr_t last = (p0 + pp->bytes[k]) & ~(PREFAULT_PAGE - 1);
		uintptr_t a = (p0 + lo) & ~(PREFAULT_PAGE - 1), e = (p0 + hi + PREFAULT_PAGE - 1) & ~(PREFAULT_PAGE - 1);
		a = a < first ? first : a;
		e = e > last ? last : e;
		if (e > a)
			(void)hs_populate((void *)a, e - a);
	}
	return NULL;
}

void hs_prefault(void *const *p, const size_t *bytes, size_t n, int jobs)
{
	uint64_t total = 0;
	for (size_t k = 0; k < n; k++)
		total += bytes[k];
	if (jobs < 2 || total < PREFAULT_MIN)
		return;
	if (jobs > 64)
		jobs = 64;
	struct prefault_part parts[64];
	for (int j = 0; j < jobs; j++)
		parts[j] = (struct prefault_part){ p, bytes, n, total * (uint64_t)j / (uint64_t)jobs,
						   total * (uint64_t)(j + 1) / (uint64_t)jobs };
	hs_run_parts((size_t)jobs, prefault_run, parts, sizeof(parts[0]));
}

static size_t jobs_of(const struct hs_graph_input *in)
{
	size_t jobs = in->jobs > 0 ? (size_t)in->jobs : 1;
	return jobs > 64 ? 64 : jobs;
}

/* Reachability: breadth first from the rooted blocks, a bit a block for
 * "reached" (the bits of 30 M blocks, 3.75 MB, stay in the cache where their
 * flags' bytes do not, and every edge reads its target's).  A narrow frontier
 * (a long list) is a queue this thread works through alone.  A wider one is
 * expanded by all jobs at once (a block is claimed with an atomic or of its
 * bit, so each one is reached once): cut into parts of the queue, or, when
 * it holds a block in 64 or more, as a bitmap whose words the parts claim in
 * ranges (a word or so read and merged for each frontier block: still
 * linear; sparser, the level's fixed cost of reading and merging the
 * bitmaps, 5 words a word, beat the queue's: at 2,048, reachability at 30 M
 * took 1.05 s, at 64 0.82 s).
 * A bitmap level is visited in block order: its blocks' offsets and edges are
 * read going up the arrays, in the same pages and often the same lines, not
 * all over them as a queue's are.  (At 30 M blocks: 0.90 -> 0.7 s.)
 *
 * A bitmap level takes no atomic operation.  Its visit only reads "reached"
 * and sets each target not reached yet in a bitmap of the part's own (a
 * target met twice is set twice); then the parts, word range by word range,
 * merge those bitmaps into the next level: the bits not reached yet, which
 * become reached.  A locked read-modify-write on every block found (two,
 * when "reached" and the next level were shared) waits for its line and
 * holds back the loads behind it, which were half of the visit's time. */
#define PARALLEL_FRONTIER 8192
#define REACH_RANGE 512         /* frontier words a part claims at a time */
#define REACH_RUN 256           /* frontier blocks a part visits at a time */

/* A queue is visited in no order of the arrays: ask for what the visit of
 * from[q + REACH_AHEAD] will read (its offsets), of from[q + REACH_AHEAD / 2]
 * (its edges, by the offsets asked for before) and of from[q + REACH_AHEAD / 4]
 * (its targets' bits, by the edges asked for before). */
#define REACH_AHEAD 16

static inline void reach_prefetch(const struct hs_analysis *a, const uint64_t *seen, const uint32_t *from,
				  size_t q, size_t n)
{
	if (q + REACH_AHEAD < n)
		__builtin_prefetch(&a->fwd_off[from[q + REACH_AHEAD]]);
	if (q + REACH_AHEAD / 2 < n)
		__builtin_prefetch(&a->fwd[a->fwd_off[from[q + REACH_AHEAD / 2]]]);
	if (q + REACH_AHEAD / 4 < n) {
		uint32_t i = from[q + REACH_AHEAD / 4];
		for (uint32_t e = a->fwd_off[i]; e < a->fwd_off[i + 1]; e++)
			__builtin_prefetch(&seen[a->fwd[e] / 64]);
	}
}

/* One level of a wide frontier: from[0, n) (a part of the queue), or the
 * bitmap cur (of nwords words, the ranges claimed through *claim).  What a
 * part reaches first goes on its list out, or with a bitmap level into the
 * bitmap next. */
struct reach_part {
	struct hs_analysis *a;
	uint64_t *seen;
	const uint32_t *from;
	size_t n;
	uint64_t *cur, *next;       /* next: the part's own bitmap */
	uint64_t *const *nexts;     /* merge: every part's next (njobs of them) */
	size_t njobs;
	size_t nwords, range, *claim;   /* words claimed range at a time */
	size_t found;
	struct u32vec out;
	bool nomem;
};

/* Visit from[0, n): their targets not reached yet.  In a queue level
 * (bits false) each is claimed (reached) and goes on the part's list; in a
 * bitmap level (bits) it goes into the part's own bitmap next, "reached"
 * only read meanwhile.  Inlined into each caller with bits constant. */
static inline __attribute__((always_inline)) void reach_visit(struct reach_part *r, const uint32_t *from,
							      size_t n, bool bits)
{
	const struct hs_analysis *a = r->a;
	uint64_t *seen = r->seen, *next = r->next;
	for (size_t q = 0; q < n; q++) {
		reach_prefetch(a, seen, from, q, n);
		uint32_t i = from[q];
		for (uint32_t e = a->fwd_off[i]; e < a->fwd_off[i + 1]; e++) {
			uint32_t t = a->fwd[e];
			uint64_t bit = UINT64_C(1) << (t % 64);
			if (bits) {
				if (!(seen[t / 64] & bit))
					next[t / 64] |= bit;
				continue;
			}
			if (__atomic_load_n(&seen[t / 64], __ATOMIC_RELAXED) & bit)
				continue;
			if (__atomic_fetch_or(&seen[t / 64], bit, __ATOMIC_RELAXED) & bit)
				continue;
			r->found++;
			if (!u32vec_push(&r->out, t))
				r->nomem = true;
		}
	}
}

// After a bitmap level, words [w, end): every part's bits not reached yet
// into cur (the next level) and reached, the parts' bitmaps cleared.
static void reach_merge(struct reach_part *r, size_t w, size_t end)
{
	for (; w < end; w++) {
		uint64_t x = 0;
		for (size_t j = 0; j < r->njobs; j++) {
			x |= r->nexts[j][w];
			r->nexts[j][w] = 0;
		}
		x &= ~r->seen[w];
		r->seen[w] |= x;
		r->cur[w] = x;
		r->found += hs_popcount64(x);
	}
}

static void *reach_part_run(void *arg)
{
	struct reach_part *r = arg;
	if (!r->cur) {
		reach_visit(r, r->from, r->n, false);
		return NULL;
	}
	if (r->nexts) {
		for (;;) {
			size_t w = __atomic_fetch_add(r->claim, r->range, __ATOMIC_RELAXED);
			if (w >= r->nwords)
				break;
			reach_merge(r, w, r->nwords - w > r->range ? w + r->range : r->nwords);
		}
		return NULL;
	}
	// The bitmap's blocks REACH_RUN at a time (the merge after the level
	// writes every word of cur anew).
	uint32_t run[REACH_RUN + 64];
	for (;;) {
		size_t w = __atomic_fetch_add(r->claim, r->range, __ATOMIC_RELAXED);
		if (w >= r->nwords)
			break;
		size_t end = r->nwords - w > r->range ? w + r->range : r->nwords;
		while (w < end) {
			size_t n = 0;
			for (; w < end && n <= REACH_RUN; w++) {
				uint64_t b = r->cur[w];
				for (; b; b &= b - 1)
					run[n++] = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(b));
			}
			reach_visit(r, run, n, true);
		}
	}
	return NULL;
}

/* The reached bits of words [first, last) into the flags. */
struct reached_part {
	uint8_t *flags;
	const uint64_t *seen;
	size_t first, last;
};

static void *mark_reached(void *arg)
{
	const struct reached_part *rp = arg;
	for (size_t w = rp->first; w < rp->last; w++)
		for (uint64_t b = rp->seen[w]; b; b &= b - 1)
			rp->flags[w * 64 + (size_t)__builtin_ctzll(b)] |= HS_NODE_REACHABLE;
	return NULL;
}

// Append the blocks of bitmap bits (words [0, nwords)) to queue at *tail,
// in block order, clearing the bits.
static void bits_to_queue(uint64_t *bits, size_t nwords, uint32_t *queue, size_t *tail)
{
	for (size_t w = 0; w < nwords; w++) {
		for (uint64_t b = bits[w]; b; b &= b - 1)
			queue[(*tail)++] = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(b));
		bits[w] = 0;
	}
}

static struct hs_error *reach(const struct hs_graph_input *in, struct hs_analysis *a)
{
	size_t jobs = jobs_of(in);
	bool small = hs_test_small_splits();
	size_t nwords = a->n / 64 + 1;
	// (Tests cut the frontiers and ranges small: every way is taken on
	// small graphs, and every part takes some of a bitmap level.)
	size_t wide = small ? 16 : PARALLEL_FRONTIER, range = small ? 8 : REACH_RANGE;
	size_t bitmap = nwords > wide ? nwords : wide;
	bool parallel = jobs > 1 && a->n >= wide;
	uint32_t *queue = hs_array_new(a->n, sizeof(*queue));
	uint64_t *seen = hs_array_zeroed(nwords, sizeof(*seen));
	uint64_t *cur = parallel ? hs_array_zeroed(nwords, sizeof(*cur)) : NULL;
	uint64_t *nexts[64] = { NULL };     // each part's own next level
	bool nomem = !queue || !seen || (parallel && !cur);
	for (size_t j = 0; parallel && j < jobs; j++)
		nomem |= !(nexts[j] = hs_array_zeroed(nwords, sizeof(uint64_t)));
	if (nomem) {
		free(queue);
		free(seen);
		free(cur);
		for (size_t j = 0; j < jobs; j++)
			free(nexts[j]);
		return &hs_error_nomem;
	}
	struct reach_part parts[64];
	memset(parts, 0, sizeof(parts));
	struct hs_error *err = NULL;
	// head..tail: the queue's frontier; width: the bitmap cur's blocks (a
	// block is queued, or set in a bitmap, once: the queue has room for all).
	size_t head = 0, tail = 0, width = 0;
	// Each part's list has room for every block (pages never written cost
	// nothing): it never grows, so it is never moved (the first read of
	// moved pages is slow on some virtual machines).
	for (size_t j = 0; parallel && j < jobs; j++) {
		parts[j].out.v = hs_array_new(a->n, sizeof(uint32_t));
		if (parts[j].out.v)
			parts[j].out.cap = a->n;
	}
	for (size_t i = 0; i < a->n; i++) {
		if (a->flags[i] & HS_NODE_ROOTED) {
			seen[i / 64] |= UINT64_C(1) << (i % 64);
			queue[tail++] = (uint32_t)i;
		}
	}
	for (;;) {
		if (width) {
			if (width < bitmap) {
				bits_to_queue(cur, nwords, queue, &tail);
				width = 0;
				continue;
			}
			// The bitmap's blocks in ranges of words, what each part
			// reaches into its own bitmap; then those merged, in ranges
			// of words, into cur: the next level.
			size_t claim = 0;
			for (size_t j = 0; j < jobs; j++) {
				parts[j] = (struct reach_part){ .a = a, .seen = seen, .cur = cur, .next = nexts[j],
								.nwords = nwords, .range = range, .claim = &claim,
								.out = parts[j].out };
			}
			hs_run_parts(jobs, reach_part_run, parts, sizeof(parts[0]));
			claim = 0;
			for (size_t j = 0; j < jobs; j++) {
				parts[j].nexts = nexts;
				parts[j].njobs = jobs;
			}
			hs_run_parts(jobs, reach_part_run, parts, sizeof(parts[0]));
			width = 0;
			for (size_t j = 0; j < jobs; j++)
				width += parts[j].found;
			continue;
		}
		if (head == tail)
			break;
		if (parallel && tail - head >= bitmap) {
			width = tail - head;
			for (; head < tail; head++)
				cur[queue[head] / 64] |= UINT64_C(1) << (queue[head] % 64);
			continue;
		}
		if (parallel && tail - head >= wide) {
			// The frontier [head, tail) in jobs parts; what they reach is
			// queued after it, part after part.
			size_t per = (tail - head) / jobs + 1, at = head;
			for (size_t j = 0; j < jobs; j++) {
				size_t cnt = tail - at < per ? tail - at : per;
				parts[j] = (struct reach_part){ .a = a, .seen = seen, .from = queue + at, .n = cnt,
								.out = parts[j].out };
				parts[j].out.n = 0;
				at += cnt;
			}
			hs_run_parts(jobs, reach_part_run, parts, sizeof(parts[0]));
			head = tail;
			for (size_t j = 0; j < jobs; j++) {
				if (parts[j].nomem) {
					err = &hs_error_nomem;
					goto out;
				}
				memcpy(queue + tail, parts[j].out.v, parts[j].out.n * sizeof(*queue));
				tail += parts[j].out.n;
			}
			continue;
		}
		reach_prefetch(a, seen, queue, head, tail);
		uint32_t i = queue[head++];
		for (uint32_t e = a->fwd_off[i]; e < a->fwd_off[i + 1]; e++) {
			uint32_t t = a->fwd[e];
			uint64_t bit = UINT64_C(1) << (t % 64);
			if (!(seen[t / 64] & bit)) {
				seen[t / 64] |= bit;
				queue[tail++] = t;
			}
		}
	}
	// The bits into the flags, the words in jobs parts.
	struct reached_part rp[64];
	size_t nrp = a->n >= PARALLEL_FRONTIER ? jobs : 1;
	for (size_t j = 0; j < nrp; j++)
		rp[j] = (struct reached_part){ a->flags, seen, nwords * j / nrp, nwords * (j + 1) / nrp };
	hs_run_parts(nrp, mark_reached, rp, sizeof(rp[0]));
out:
	for (size_t j = 0; j < jobs; j++)
		free(parts[j].out.v);
	free(queue);
	free(seen);
	free(cur);
	for (size_t j = 0; j < jobs; j++)
		free(nexts[j]);
	return err;
}

/* Leak classes.  Only a leaked block can point into a leaked one (an edge
 * from a reachable block would have made it reachable), so REFERENCED is
 * marked from the leaked blocks' edges alone: a few in a hundred of them on
 * a real heap. */
struct classify_part {
	struct hs_analysis *a;
	const struct hs_block *blocks;
	size_t first, last;
	uint64_t leaked_count, leaked_bytes, unref_count, unref_bytes;
};

static void *mark_referenced(void *arg)
{
	struct classify_part *c = arg;
	struct hs_analysis *a = c->a;
	for (size_t i = c->first; i < c->last; i++) {
		// (Another part may be setting REFERENCED in this byte.)
		uint8_t f = __atomic_load_n(&a->flags[i], __ATOMIC_RELAXED);
		if ((f & (HS_NODE_USED | HS_NODE_REACHABLE)) != HS_NODE_USED)
			continue;
		for (uint32_t e = a->fwd_off[i]; e < a->fwd_off[i + 1]; e++) {
			uint32_t t = a->fwd[e];
			if (!(__atomic_load_n(&a->flags[t], __ATOMIC_RELAXED) & HS_NODE_REFERENCED))
				__atomic_fetch_or(&a->flags[t], HS_NODE_REFERENCED, __ATOMIC_RELAXED);
		}
	}
	return NULL;
}

static void *count_leaked(void *arg)
{
	struct classify_part *c = arg;
	const struct hs_analysis *a = c->a;
	for (size_t i = c->first; i < c->last; i++) {
		if (!hs_node_leaked(a, i))
			continue;
		uint64_t size = hs_block_size(&c->blocks[i]);
		c->leaked_count++;
		c->leaked_bytes += size;
		if (!(a->flags[i] & HS_NODE_REFERENCED)) {
			c->unref_count++;
			c->unref_bytes += size;
		}
	}
	return NULL;
}

static void classify(const struct hs_graph_input *in, struct hs_analysis *a)
{
	size_t jobs = a->n < 4096 && !hs_test_small_splits() ? 1 : jobs_of(in);
	struct classify_part parts[64];
	for (size_t j = 0; j < jobs; j++)
		parts[j] = (struct classify_part){ a, in->heap->blocks, a->n * j / jobs, a->n * (j + 1) / jobs };
	hs_run_parts(jobs, mark_referenced, parts, sizeof(parts[0]));
	hs_run_parts(jobs, count_leaked, parts, sizeof(parts[0]));
	for (size_t j = 0; j < jobs; j++) {
		a->leaked_count += parts[j].leaked_count;
		a->leaked_bytes += parts[j].leaked_bytes;
		a->unref_count += parts[j].unref_count;
		a->unref_bytes += parts[j].unref_bytes;
	}
}

static struct hs_error *collect_images(const struct hs_graph_input *in, struct hs_analysis *a)
{
	size_t n = in->nmodules;
	a->images = calloc(n ? n : 1, sizeof(*a->images));
	if (!a->images)
		return &hs_error_nomem;
	// Modules are sorted by start; overlapping ranges do not occur.
	for (size_t i = 0; i < n; i++) {
		a->images[a->nimages].start = in->modules[i].start;
		a->images[a->nimages++].end = in->modules[i].end;
	}
	return NULL;
}

/* The used blocks of [first, last) flagged, counted and summed. */
struct used_part {
	const struct hs_block *blocks;
	uint8_t *flags;
	size_t first, last;
	uint64_t count, bytes;
};

static void *mark_used(void *arg)
{
	struct used_part *up = arg;
	for (size_t i = up->first; i < up->last; i++) {
		if (hs_where_is_used(hs_block_where(&up->blocks[i]))) {
			up->flags[i] = HS_NODE_USED;
			up->count++;
			up->bytes += hs_block_size(&up->blocks[i]);
		}
	}
	return NULL;
}

struct hs_error *hs_analysis_create(const struct hs_graph_input *in, struct hs_roots *roots,
				    struct hs_analysis **ret)
{
	struct hs_analysis *a = calloc(1, sizeof(*a));
	if (!a) {
		hs_roots_deinit(roots);
		return &hs_error_nomem;
	}
	a->roots = *roots;              /* owned from here */
	*roots = (struct hs_roots){ 0 };
	struct hs_error *err = NULL;
	a->n = in->heap->n;
	a->jobs = (int)jobs_of(in);
	a->flags = hs_array_zeroed(a->n, 1);
	if (!a->flags) {
		err = &hs_error_nomem;
		goto fail;
	}
	struct used_part up[2] = { { in->heap->blocks, a->flags, 0, a->n, 0, 0 } };
	size_t nup = a->jobs > 1 && a->n >= 65536 ? 2 : 1;
	if (nup == 2) {
		up[1] = up[0];
		up[0].last = up[1].first = a->n / 2;
	}
	hs_run_parts(nup, mark_used, up, sizeof(up[0]));
	for (size_t k = 0; k < nup; k++) {
		a->used_count += up[k].count;
		a->used_bytes += up[k].bytes;
	}
	double t0 = hs_now();
	if ((err = collect_images(in, a)) ||
	    (err = hs_memory_load_all(in->mem)))
		goto fail;
	hs_timings_add(in->timings, "load", t0);
	t0 = hs_now();
	if ((err = hs_addrmap_build(&a->map, in->heap, a->flags, in->exact_pointers,
					 a->n < 4096 ? 1 : (int)jobs_of(in))))
		goto fail;
	hs_timings_add(in->timings, "index", t0);
	if (hs_interrupted()) {
		err = hs_error_create(HS_ERR_INTERRUPTED, "interrupted");
		goto fail;
	}
	t0 = hs_now();
	if ((err = scan_heap(in, a)))
		goto fail;
	hs_timings_add(in->timings, "scan", t0);
	t0 = hs_now();
	scan_roots(in, a);
	hs_timings_add(in->timings, "roots", t0);
	t0 = hs_now();
	if ((err = reach(in, a)))
		goto fail;
	hs_timings_add(in->timings, "reachability", t0);
	t0 = hs_now();
	classify(in, a);
	hs_timings_add(in->timings, "classes", t0);
	*ret = a;
	return NULL;
fail:
	hs_analysis_destroy(a);
	return err;
}

void hs_analysis_destroy(struct hs_analysis *a)
{
	if (!a)
		return;
	free(a->flags);
	free(a->images);
	free(a->fwd_off);
	free(a->fwd);
	free(a->rev_off);
	free(a->rev);
	hs_roots_deinit(&a->roots);
	hs_addrmap_deinit(&a->map);
	free(a);
}

struct hs_error *hs_analysis_reverse_jobs(struct hs_analysis *a, int jobs)
{
	if (a->rev_off)
		return NULL;
	size_t n = a->n, m = a->fwd_off[n];
	uint32_t *off = hs_array_zeroed(n + 1, sizeof(*off)), *rev = hs_array_new(m, sizeof(*rev));
	if (!off || !rev) {
		free(off);
		free(rev);
		return &hs_error_nomem;
	}
	// This thread writes both, at random: their pages first.
	void *const arrays[] = { off, rev };
	const size_t bytes[] = { (n + 1) * sizeof(*off), m * sizeof(*rev) };
	hs_prefault(arrays, bytes, 2, jobs);
	// off[i] counts, then starts, the edges into block i; each edge moves
	// its target's start up by one, so that off[i] ends where off[i + 1]
	// started, and is moved back.
	for (size_t e = 0; e < m; e++)
		off[a->fwd[e]]++;
	uint32_t sum = 0;
	for (size_t i = 0; i <= n; i++) {
		uint32_t c = off[i];
		off[i] = sum;
		sum += c;
	}
	for (size_t i = 0; i < n; i++)
		for (uint32_t e = a->fwd_off[i]; e < a->fwd_off[i + 1]; e++)
			rev[off[a->fwd[e]]++] = (uint32_t)i;
	memmove(off + 1, off, n * sizeof(*off));
	off[0] = 0;
	a->rev_off = off;
	a->rev = rev;
	return NULL;
}

struct hs_error *hs_analysis_need_reverse(struct hs_analysis *a)
{
	return hs_analysis_reverse_jobs(a, a->jobs);
}

void hs_scan_for_target(const struct hs_analysis *an, struct hs_memory *mem, uint64_t start, uint64_t len, size_t target,
			void (*fn)(uint64_t word_addr, void *ctx), void *ctx)
{
	const struct hs_addrmap *m = &an->map;
	uint64_t a = (start + 7) & ~UINT64_C(7), end = start + len;
	while (a + 8 <= end) {
		const uint8_t *p = hs_memory_span(mem, a, 8);
		if (!p) {
			// Not dumped: on to the next dumped byte (a hostile block
			// can span terabytes of nothing).
			uint64_t next = hs_memory_next_dumped(mem, a + 1);
			if (next >= end || next > UINT64_MAX - 8)
				break;
			a = (next + 7) & ~UINT64_C(7);
			continue;
		}
		uint64_t avail = hs_memory_available(mem, a);
		uint64_t stop = a + avail < end ? a + avail : end;
		for (; a + 8 <= stop; a += 8, p += 8) {
			uint64_t v;
			memcpy(&v, p, 8);
			if (v >= m->lo && v < m->hi && hs_addrmap_lookup(m, v) == (ptrdiff_t)target)
				fn(a, ctx);
		}
	}
}
