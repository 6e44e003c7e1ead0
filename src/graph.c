/* graph.c - see graph.h: a conservative pointer scan over zero-copy spans of the
 * core, on s->jobs threads, into CSR edges; then reachability and classes. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "graph.h"
#include "types.h"
#include "session.h"

#define PAGE_SHIFT 12
/* A gap wider than this between blocks starts a new span of the address map. */
#define SPAN_GAP (UINT64_C(1) << 20)

/* The address map. */

void hs_addrmap_deinit(struct hs_addrmap *m)
{
	free(m->spans);
	free(m->pages);
	memset(m, 0, sizeof(*m));
}

static uint64_t block_end(const struct hs_block *b)
{
	return b->address + hs_block_size(b);
}

struct hs_error *hs_addrmap_build(struct hs_addrmap *m, const struct hs_heap *heap,
				  const uint8_t *flags, bool exact)
{
	memset(m, 0, sizeof(*m));
	m->heap = heap;
	m->flags = flags;
	m->exact = exact;
	size_t n = heap->n;
	if (!n)
		return NULL;
	// Pass 1: spans and their page counts.
	size_t nspans = 0, npages = 0, cap = 16;
	struct hs_addr_span *spans = malloc(cap * sizeof(*spans));
	if (!spans)
		return &hs_error_nomem;
	for (size_t i = 0; i < n; i++) {
		const struct hs_block *b = &heap->blocks[i];
		if (nspans && b->address <= spans[nspans - 1].end + SPAN_GAP) {
			if (block_end(b) > spans[nspans - 1].end)
				spans[nspans - 1].end = block_end(b);
			spans[nspans - 1].last_block = i;
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
		spans[nspans++] = (struct hs_addr_span){ .start = b->address, .end = block_end(b), .last_block = i };
	}
	for (size_t k = 0; k < nspans; k++) {
		spans[k].page0 = spans[k].start >> PAGE_SHIFT;
		spans[k].npages = ((spans[k].end - 1) >> PAGE_SHIFT) - spans[k].page0 + 1;
		spans[k].first_entry = npages;
		npages += spans[k].npages;
	}
	uint32_t *pages = malloc((npages ? npages : 1) * sizeof(*pages));
	if (!pages || n > UINT32_MAX) {
		free(spans);
		free(pages);
		return pages ? hs_error_create(HS_ERR_HEAP, "more than 4 G blocks") : &hs_error_nomem;
	}
	// Pass 2: for each page, the first block that ends after the page starts.
	size_t i = 0;
	for (size_t k = 0; k < nspans; k++) {
		for (size_t p = 0; p < spans[k].npages; p++) {
			uint64_t page_start = (spans[k].page0 + p) << PAGE_SHIFT;
			while (i < spans[k].last_block && block_end(&heap->blocks[i]) <= page_start)
				i++;
			pages[spans[k].first_entry + p] = (uint32_t)i;
		}
		i = spans[k].last_block + 1;
	}
	m->spans = spans;
	m->nspans = nspans;
	m->pages = pages;
	m->lo = spans[0].start;
	m->hi = spans[nspans - 1].end;
	return NULL;
}

ptrdiff_t hs_addrmap_lookup(const struct hs_addrmap *m, uint64_t v)
{
	if (v < m->lo || v >= m->hi)
		return -1;
	size_t lo = 0, hi = m->nspans;
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (m->spans[mid].start <= v)
			lo = mid;
		else
			hi = mid;
	}
	const struct hs_addr_span *sp = &m->spans[lo];
	if (v < sp->start || v >= sp->end)
		return -1;
	size_t pg = (v >> PAGE_SHIFT) - sp->page0;
	size_t a = m->pages[sp->first_entry + pg];
	size_t b = pg + 1 < sp->npages ? m->pages[sp->first_entry + pg + 1] : sp->last_block;
	if (b > sp->last_block)
		b = sp->last_block;
	// The last block in [a, b] that starts at or below v.
	const struct hs_block *blocks = m->heap->blocks;
	if (blocks[a].address > v)
		return -1;
	while (a < b) {
		size_t mid = a + (b - a + 1) / 2;
		if (blocks[mid].address <= v)
			a = mid;
		else
			b = mid - 1;
	}
	if (!(m->flags[a] & HS_NODE_USED))
		return -1;
	if (m->exact ? v != blocks[a].address : v >= block_end(&blocks[a]))
		return -1;
	return (ptrdiff_t)a;
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
		x->v = g;
		x->cap = cap;
	}
	x->v[x->n++] = value;
	return true;
}

struct worker {
	struct hs_session *s;
	struct hs_analysis *a;
	size_t first, last;          /* blocks [first, last) */
	struct u32vec edges;
	uint32_t *degree;            /* shared array, each worker writes its own range */
	size_t not_dumped;
	bool nomem;
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

static void scan_block(struct worker *w, size_t i, const uint64_t *words, size_t nwords)
{
	const struct hs_addrmap *m = &w->a->map;
	uint64_t lo = m->lo, hi = m->hi;
	uint32_t last = UINT32_MAX, count = 0;
	// While the block is in cache: could its first word be a vtable pointer?
	// (types.c looks only at the blocks flagged here.)
	if (nwords && in_image(w->a, words[0]))
		w->a->flags[i] |= HS_NODE_VPTR;
	for (size_t k = 0; k < nwords; k++) {
		uint64_t v = words[k];
		if (v < lo || v >= hi)
			continue;
		ptrdiff_t t = hs_addrmap_lookup(m, v);
		if (t < 0 || (size_t)t == i || (uint32_t)t == last)
			continue;
		last = (uint32_t)t;
		if (!u32vec_push(&w->edges, last)) {
			w->nomem = true;
			return;
		}
		count++;
	}
	w->degree[i] = count;
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	struct hs_memory *mem = &w->s->target->mem;
	const struct hs_block *blocks = w->s->heap.blocks;
	const struct hs_segment *seg = NULL;
	for (size_t i = w->first; i < w->last && !w->nomem; i++) {
		w->degree[i] = 0;
		if (!(w->a->flags[i] & HS_NODE_USED))
			continue;
		uint64_t addr = blocks[i].address, size = hs_block_size(&blocks[i]) & ~UINT64_C(7);
		if (!seg || addr < seg->start || addr + size > seg->start + seg->filesz)
			seg = hs_memory_segment(mem, addr);
		if (!seg || !seg->data || addr + size > seg->start + seg->filesz || (addr & 7)) {
			w->not_dumped++;
			seg = NULL;
			continue;
		}
		scan_block(w, i, (const uint64_t *)(seg->data + (addr - seg->start)), size / 8);
	}
	return NULL;
}

// Split the blocks into jobs parts of about equal bytes to scan.
static struct hs_error *scan_heap(struct hs_session *s, struct hs_analysis *a)
{
	size_t n = a->n, jobs = s->jobs > 0 ? (size_t)s->jobs : 1;
	if (jobs > 64)
		jobs = 64;
	if (n < 4096)
		jobs = 1;
	struct worker w[64];
	uint32_t *degree = malloc((n + 1) * sizeof(*degree));
	if (!degree)
		return &hs_error_nomem;
	uint64_t per = a->used_bytes / jobs + 1, acc = 0;
	size_t first = 0, k = 0;
	for (size_t i = 0; i < n && k + 1 < jobs; i++) {
		if (a->flags[i] & HS_NODE_USED)
			acc += hs_block_size(&s->heap.blocks[i]);
		if (acc >= per) {
			w[k] = (struct worker){ .s = s, .a = a, .first = first, .last = i + 1, .degree = degree };
			first = i + 1;
			acc = 0;
			k++;
		}
	}
	w[k++] = (struct worker){ .s = s, .a = a, .first = first, .last = n, .degree = degree };
	pthread_t tid[64];
	bool started[64] = { false };
	for (size_t j = 1; j < k; j++)
		started[j] = pthread_create(&tid[j], NULL, worker_run, &w[j]) == 0;
	worker_run(&w[0]);
	for (size_t j = 1; j < k; j++) {
		if (started[j])
			pthread_join(tid[j], NULL);
		else
			worker_run(&w[j]);
	}
	bool nomem = false;
	size_t total = 0, not_dumped = 0;
	for (size_t j = 0; j < k; j++) {
		nomem |= w[j].nomem;
		total += w[j].edges.n;
		not_dumped += w[j].not_dumped;
	}
	struct hs_error *err = NULL;
	if (nomem || total > UINT32_MAX) {
		err = nomem ? &hs_error_nomem : hs_error_create(HS_ERR_HEAP, "more than 4 G pointers in the heap");
		goto out;
	}
	// CSR: offsets are the prefix sums of the degrees; edges are the workers'
	// lists one after another, which is block order.
	a->fwd_off = degree;
	degree = NULL;
	uint32_t sum = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t d = a->fwd_off[i];
		a->fwd_off[i] = sum;
		sum += d;
	}
	a->fwd_off[n] = sum;
	a->fwd = malloc((total ? total : 1) * sizeof(*a->fwd));
	if (!a->fwd) {
		err = &hs_error_nomem;
		goto out;
	}
	size_t at = 0;
	for (size_t j = 0; j < k; j++) {
		if (w[j].edges.n)
			memcpy(a->fwd + at, w[j].edges.v, w[j].edges.n * sizeof(uint32_t));
		at += w[j].edges.n;
	}
	if (not_dumped)
		hs_diag_add(&s->diags, HS_DIAG_WARNING, "graph", 0,
			    "%zu allocations are not in the core (not dumped): their pointers are unknown, so what they hold may be reported leaked",
			    not_dumped);
out:
	for (size_t j = 0; j < k; j++)
		free(w[j].edges.v);
	free(degree);
	return err;
}

static void mark_word(struct hs_analysis *a, uint64_t v)
{
	ptrdiff_t t = hs_addrmap_lookup(&a->map, v);
	if (t >= 0)
		a->flags[t] |= HS_NODE_ROOTED;
}

static void scan_roots(struct hs_session *s, struct hs_analysis *a)
{
	struct hs_memory *mem = &s->target->mem;
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
	const struct hs_notes *notes = &s->target->notes;
	for (size_t t = 0; t < notes->nthreads; t++)
		for (int r = 0; r < HS_NREGS; r++)
			mark_word(a, notes->threads[t].regs[r]);
}

static struct hs_error *reach(struct hs_analysis *a)
{
	uint32_t *queue = malloc((a->n ? a->n : 1) * sizeof(*queue));
	if (!queue)
		return &hs_error_nomem;
	size_t head = 0, tail = 0;
	for (size_t i = 0; i < a->n; i++) {
		if (a->flags[i] & HS_NODE_ROOTED) {
			a->flags[i] |= HS_NODE_REACHABLE;
			queue[tail++] = (uint32_t)i;
		}
	}
	while (head < tail) {
		uint32_t i = queue[head++];
		for (uint32_t e = a->fwd_off[i]; e < a->fwd_off[i + 1]; e++) {
			uint32_t t = a->fwd[e];
			if (!(a->flags[t] & HS_NODE_REACHABLE)) {
				a->flags[t] |= HS_NODE_REACHABLE;
				queue[tail++] = t;
			}
		}
	}
	free(queue);
	return NULL;
}

static void classify(struct hs_session *s, struct hs_analysis *a)
{
	for (size_t i = 0; i < a->n; i++)
		for (uint32_t e = a->fwd_off[i]; e < a->fwd_off[i + 1]; e++)
			a->flags[a->fwd[e]] |= HS_NODE_REFERENCED;
	for (size_t i = 0; i < a->n; i++) {
		if (!hs_node_leaked(a, i))
			continue;
		uint64_t size = hs_block_size(&s->heap.blocks[i]);
		a->leaked_count++;
		a->leaked_bytes += size;
		if (!(a->flags[i] & HS_NODE_REFERENCED)) {
			a->unref_count++;
			a->unref_bytes += size;
		}
	}
}

static struct hs_error *collect_images(struct hs_session *s, struct hs_analysis *a)
{
	size_t n = s->symbols ? s->symbols->nmodules : 0;
	a->images = calloc(n ? n : 1, sizeof(*a->images));
	if (!a->images)
		return &hs_error_nomem;
	// Modules are sorted by start; overlapping ranges do not occur.
	for (size_t i = 0; i < n; i++) {
		a->images[a->nimages].start = s->symbols->modules[i].start;
		a->images[a->nimages++].end = s->symbols->modules[i].end;
	}
	return NULL;
}

struct hs_error *hs_analysis_create(struct hs_session *s, struct hs_analysis **ret)
{
	struct hs_analysis *a = calloc(1, sizeof(*a));
	if (!a)
		return &hs_error_nomem;
	struct hs_error *err = NULL;
	a->n = s->heap.n;
	a->flags = calloc(a->n ? a->n : 1, 1);
	if (!a->flags) {
		err = &hs_error_nomem;
		goto fail;
	}
	for (size_t i = 0; i < a->n; i++) {
		if (hs_where_is_used(hs_block_where(&s->heap.blocks[i]))) {
			a->flags[i] = HS_NODE_USED;
			a->used_count++;
			a->used_bytes += hs_block_size(&s->heap.blocks[i]);
		}
	}
	if ((err = collect_images(s, a)) ||
	    (err = hs_memory_load_all(&s->target->mem)) ||
	    (err = hs_addrmap_build(&a->map, &s->heap, a->flags, s->exact_pointers)) ||
	    (err = hs_roots_build(s, &a->roots)))
		goto fail;
	if (hs_interrupted()) {
		err = hs_error_create(HS_ERR_INTERRUPTED, "interrupted");
		goto fail;
	}
	if ((err = scan_heap(s, a)))
		goto fail;
	scan_roots(s, a);
	if ((err = reach(a)))
		goto fail;
	classify(s, a);
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
	free(a->type);
	hs_types_destroy(a->types);
	free(a->retained);
	free(a->idom);
	free(a);
}

struct hs_error *hs_analysis_need_reverse(struct hs_analysis *a)
{
	if (a->rev_off)
		return NULL;
	size_t n = a->n, m = a->fwd_off[n];
	uint32_t *off = calloc(n + 1, sizeof(*off)), *rev = malloc((m ? m : 1) * sizeof(*rev));
	if (!off || !rev) {
		free(off);
		free(rev);
		return &hs_error_nomem;
	}
	for (size_t e = 0; e < m; e++)
		off[a->fwd[e] + 1]++;
	for (size_t i = 0; i < n; i++)
		off[i + 1] += off[i];
	uint32_t *fill = malloc((n ? n : 1) * sizeof(*fill));
	if (!fill) {
		free(off);
		free(rev);
		return &hs_error_nomem;
	}
	memcpy(fill, off, n * sizeof(*fill));
	for (size_t i = 0; i < n; i++)
		for (uint32_t e = a->fwd_off[i]; e < a->fwd_off[i + 1]; e++)
			rev[fill[a->fwd[e]]++] = (uint32_t)i;
	free(fill);
	a->rev_off = off;
	a->rev = rev;
	return NULL;
}

void hs_scan_for_target(struct hs_session *s, uint64_t start, uint64_t len, size_t target,
			void (*fn)(uint64_t word_addr, void *ctx), void *ctx)
{
	const struct hs_addrmap *m = &s->analysis->map;
	uint64_t a = (start + 7) & ~UINT64_C(7), end = start + len;
	while (a + 8 <= end) {
		const uint8_t *p = hs_memory_span(&s->target->mem, a, 8);
		if (!p) {
			// Not dumped: on to the next dumped byte (a hostile block
			// can span terabytes of nothing).
			uint64_t next = hs_memory_next_dumped(&s->target->mem, a + 1);
			if (next >= end || next > UINT64_MAX - 8)
				break;
			a = (next + 7) & ~UINT64_C(7);
			continue;
		}
		uint64_t avail = hs_memory_available(&s->target->mem, a);
		uint64_t stop = a + avail < end ? a + avail : end;
		for (; a + 8 <= stop; a += 8, p += 8) {
			uint64_t v;
			memcpy(&v, p, 8);
			if (v >= m->lo && v < m->hi && hs_addrmap_lookup(m, v) == (ptrdiff_t)target)
				fn(a, ctx);
		}
	}
}
