/* report_export.c - the ownership stacks (export.h), files written atomically,
 * and `export --format pprof|folded [-o FILE]`. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "commands.h"
#include "dominators.h"
#include "export.h"
#include "go_mark.h"
#include "graph.h"
#include "paths.h"
#include "progress.h"
#include "types.h"

/* Interning: open addressing, FNV-1a for strings, a mix for (parent, frame). */

static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return h;
}

static uint64_t hash_pair(uint32_t a, uint32_t b)
{
	uint64_t h = ((uint64_t)a << 32 | b) * 0x9e3779b97f4a7c15ull;
	return h ^ (h >> 29);
}

static bool table_grow(uint32_t **tab, size_t *cap, size_t used, uint64_t (*key)(const struct hs_stacks *, uint32_t),
		       const struct hs_stacks *st)
{
	if ((used + 1) * 2 <= *cap)
		return true;
	size_t ncap = *cap ? *cap * 2 : 1024;
	uint32_t *t = malloc(ncap * sizeof(*t));
	if (!t)
		return false;
	memset(t, 0xff, ncap * sizeof(*t));
	for (size_t i = 0; i < *cap; i++) {
		uint32_t v = (*tab)[i];
		if (v == HS_STACK_NONE)
			continue;
		size_t k = key(st, v) & (ncap - 1);
		while (t[k] != HS_STACK_NONE)
			k = (k + 1) & (ncap - 1);
		t[k] = v;
	}
	free(*tab);
	*tab = t;
	*cap = ncap;
	return true;
}

static uint64_t frame_key(const struct hs_stacks *st, uint32_t v) { return hash_str(st->frames[v]); }
static uint64_t node_key(const struct hs_stacks *st, uint32_t v)
{
	return hash_pair(st->nodes[v].parent, st->nodes[v].frame);
}

// A frame name: control bytes (hostile core data) become '?'.
static uint32_t intern_frame(struct hs_stacks *st, const char *name)
{
	if (!table_grow(&st->frame_hash, &st->frame_hash_cap, st->nframes, frame_key, st))
		return HS_STACK_NONE;
	char clean[512];
	snprintf(clean, sizeof(clean), "%s", name);
	for (char *p = clean; *p; p++)
		if ((uint8_t)*p < 0x20 || *p == 0x7f)
			*p = '?';
	size_t k = hash_str(clean) & (st->frame_hash_cap - 1);
	for (; st->frame_hash[k] != HS_STACK_NONE; k = (k + 1) & (st->frame_hash_cap - 1))
		if (!strcmp(st->frames[st->frame_hash[k]], clean))
			return st->frame_hash[k];
	if (st->nframes == st->frames_cap) {
		size_t cap = st->frames_cap ? st->frames_cap * 2 : 256;
		char **g = realloc(st->frames, cap * sizeof(*g));
		if (!g)
			return HS_STACK_NONE;
		st->frames = g;
		st->frames_cap = cap;
	}
	char *copy = strdup(clean);
	if (!copy)
		return HS_STACK_NONE;
	st->frames[st->nframes] = copy;
	st->frame_hash[k] = (uint32_t)st->nframes;
	return (uint32_t)st->nframes++;
}

// The child of parent with this frame; a frame equal to the parent's folds
// into it, and past the depth limit everything lands in one "[deeper]" frame.
static uint32_t push_frame(struct hs_stacks *st, uint32_t parent, uint32_t frame, uint32_t deeper)
{
	if (frame == HS_STACK_NONE)
		return HS_STACK_NONE;
	if (parent != HS_STACK_NONE) {
		if (st->nodes[parent].frame == frame || st->nodes[parent].frame == deeper)
			return parent;
		if (st->nodes[parent].depth + 1 >= HS_STACK_MAX_DEPTH)
			frame = deeper;
	}
	if (!table_grow(&st->node_hash, &st->node_hash_cap, st->nnodes, node_key, st))
		return HS_STACK_NONE;
	size_t k = hash_pair(parent, frame) & (st->node_hash_cap - 1);
	for (; st->node_hash[k] != HS_STACK_NONE; k = (k + 1) & (st->node_hash_cap - 1)) {
		const struct hs_stack_node *x = &st->nodes[st->node_hash[k]];
		if (x->parent == parent && x->frame == frame)
			return st->node_hash[k];
	}
	if (st->nnodes == st->nodes_cap) {
		size_t cap = st->nodes_cap ? st->nodes_cap * 2 : 1024;
		struct hs_stack_node *g = realloc(st->nodes, cap * sizeof(*g));
		if (!g)
			return HS_STACK_NONE;
		st->nodes = g;
		st->nodes_cap = cap;
	}
	uint32_t id = (uint32_t)st->nnodes++;
	st->nodes[id] = (struct hs_stack_node){
		.parent = parent, .frame = frame,
		.depth = parent == HS_STACK_NONE ? 1 : st->nodes[parent].depth + 1,
		.owner = parent == HS_STACK_NONE ? id : st->nodes[parent].owner,
	};
	st->node_hash[k] = id;
	return id;
}

void hs_stacks_deinit(struct hs_stacks *st)
{
	for (size_t i = 0; i < st->nframes; i++)
		free(st->frames[i]);
	free(st->frames);
	free(st->nodes);
	free(st->of_block);
	free(st->frame_hash);
	free(st->node_hash);
	memset(st, 0, sizeof(*st));
}

void hs_stacks_path(const struct hs_stacks *st, uint32_t k, const char *sep, char *buf, size_t len)
{
	uint32_t chain[HS_STACK_MAX_DEPTH + 1];
	size_t n = 0;
	for (; k != HS_STACK_NONE && n < HS_STACK_MAX_DEPTH + 1; k = st->nodes[k].parent)
		chain[n++] = k;
	size_t used = 0;
	if (len)
		buf[0] = 0;
	while (n-- > 0 && used + 1 < len) {
		int w = snprintf(buf + used, len - used, "%s%s", used ? sep : "", st->frames[st->nodes[chain[n]].frame]);
		if (w < 0)
			break;
		used += (size_t)w;
	}
}

/* The best root of each top-level allocation (a child of the virtual root). */

struct root_pick { uint8_t rank; uint8_t kind; int16_t reg; int32_t tid; uint64_t word; };

static int root_rank(enum hs_root_kind k)
{
	switch (k) {
	case HS_ROOT_GLOBAL: return 0;
	case HS_ROOT_TLS: return 1;
	case HS_ROOT_STACK: return 2;
	case HS_ROOT_REGISTER: return 3;
	default: return 4;
	}
}

// One pass over every root word: for each rooted allocation, the best kind
// (globals first), then the lowest address (deterministic).
static struct hs_error *pick_roots(struct hs_session *s, struct root_pick **ret)
{
	const struct hs_analysis *a = s->analysis;
	struct root_pick *pick = malloc((a->n ? a->n : 1) * sizeof(*pick));
	if (!pick)
		return &hs_error_nomem;
	for (size_t i = 0; i < a->n; i++)
		pick[i].rank = 0xff;
	const struct hs_roots *roots = &a->roots;
	for (size_t r = 0; r < roots->n; r++) {
		const struct hs_root_range *rg = &roots->ranges[r];
		uint8_t rank = (uint8_t)root_rank(rg->kind);
		uint64_t p = (rg->start + 7) & ~UINT64_C(7);
		while (p + 8 <= rg->end) {
			const uint8_t *bytes = hs_memory_span(&s->target->mem, p, 8);
			if (!bytes) {
				p += 8;
				continue;
			}
			uint64_t stop = p + hs_memory_available(&s->target->mem, p);
			if (stop > rg->end || stop < p)
				stop = rg->end;
			for (; p + 8 <= stop; p += 8, bytes += 8) {
				uint64_t v;
				memcpy(&v, bytes, 8);
				if (v < a->map.lo || v >= a->map.hi)
					continue;
				ptrdiff_t t = hs_addrmap_lookup(&a->map, v);
				if (t < 0 || rank >= pick[t].rank)
					continue;
				pick[t] = (struct root_pick){ rank, (uint8_t)rg->kind, -1, rg->tid, p };
			}
		}
	}
	const struct hs_notes *notes = &s->target->notes;
	for (size_t t = 0; t < notes->nthreads; t++)
		for (int r = 0; r < HS_NREGS; r++) {
			ptrdiff_t b = hs_addrmap_lookup(&a->map, notes->threads[t].regs[r]);
			uint8_t rank = (uint8_t)root_rank(HS_ROOT_REGISTER);
			if (b >= 0 && rank < pick[b].rank)
				pick[b] = (struct root_pick){ rank, HS_ROOT_REGISTER, (int16_t)r, notes->threads[t].tid, 0 };
		}
	*ret = pick;
	return NULL;
}

// The root frames of a top-level allocation; returns the owner node.
static uint32_t root_node(struct hs_session *s, struct hs_stacks *st, const struct root_pick *p, size_t i,
			  uint32_t deeper)
{
	const struct hs_analysis *a = s->analysis;
	char first[128], second[300];
	second[0] = 0;
	uint64_t goid;
	if (!(a->flags[i] & HS_NODE_REACHABLE)) {
		snprintf(first, sizeof(first), "%s", st->garbage ? "[garbage]" : "[leaked]");
	} else if (p->rank == 0xff) {
		snprintf(first, sizeof(first), "%s", (a->flags[i] & HS_NODE_ROOTED) ? "[root]" : "[several roots]");
	} else {
		switch ((enum hs_root_kind)p->kind) {
		case HS_ROOT_GLOBAL: {
			snprintf(first, sizeof(first), "globals");
			struct hs_symbol sym;
			uint64_t off;
			if (s->symbols && hs_symbols_addr_symbol(s->symbols, p->word, &sym, &off) && sym.name)
				snprintf(second, sizeof(second), "%s", sym.name);
			else if (!s->symbols || !hs_symbols_describe(s->symbols, p->word, second, sizeof(second)))
				snprintf(second, sizeof(second), "0x%" PRIx64, p->word);
			break;
		}
		case HS_ROOT_STACK:
			// Go: the goroutine's stack, and the function whose frame
			// holds the word.
			if (s->go_rt && p->word && hs_go_stack_root_name(s->goroutines, p->word, second, sizeof(second), &goid)) {
				bool precise;
				const char *fn = hs_go_stack_word(s->goroutines, p->word, &precise);
				snprintf(first, sizeof(first), "goroutine %" PRIu64, goid);
				snprintf(second, sizeof(second), "%s", fn ? fn : "stack");
				break;
			}
			snprintf(first, sizeof(first), "thread %d", p->tid);
			if (!hs_stack_frame_function(s, p->tid, p->word, second, sizeof(second)))
				snprintf(second, sizeof(second), "stack");
			break;
		case HS_ROOT_TLS:
			snprintf(first, sizeof(first), "thread %d", p->tid);
			snprintf(second, sizeof(second), "TLS");
			break;
		case HS_ROOT_REGISTER:
			snprintf(first, sizeof(first), "thread %d", p->tid);
			snprintf(second, sizeof(second), "register %s", p->reg >= 0 && p->reg < HS_NREGS ? hs_reg_names[p->reg] : "?");
			break;
		default:
			snprintf(first, sizeof(first), "other memory");
			break;
		}
	}
	uint32_t k = push_frame(st, HS_STACK_NONE, intern_frame(st, first), deeper);
	if (second[0] && k != HS_STACK_NONE)
		k = push_frame(st, k, intern_frame(st, second), deeper);
	if (k != HS_STACK_NONE)
		st->nodes[k].owner = k;   // the root frames are the owner
	return k;
}

// Every allocation counted in its node (of_block), and in the totals.
static void count_blocks(struct hs_session *s, struct hs_stacks *st)
{
	const struct hs_analysis *a = s->analysis;
	for (size_t i = 0; i < st->nblocks; i++) {
		uint32_t k = st->of_block[i];
		if (k == HS_STACK_NONE)
			continue;
		uint64_t size = hs_block_size(&s->heap.blocks[i]);
		st->nodes[k].count++;
		st->nodes[k].bytes += size;
		st->count++;
		st->bytes += size;
		if (hs_node_leaked(a, i)) {
			st->nodes[k].leaked_count++;
			st->nodes[k].leaked_bytes += size;
			st->leaked_count++;
			st->leaked_bytes += size;
		}
	}
}

struct hs_error *hs_stacks_build(struct hs_session *s, struct hs_stacks *st)
{
	memset(st, 0, sizeof(*st));
	HS_CHECK(hs_session_need_types(s));
	HS_CHECK(hs_session_need_dominators(s));
	st->garbage = s->go_rt != NULL;
	const struct hs_analysis *a = s->analysis;
	const struct hs_dominators *d = s->dominators;
	size_t n = a->n;
	hs_progress_begin(s, "ownership", n);
	struct root_pick *pick = NULL;
	HS_CHECK(pick_roots(s, &pick));
	size_t ntypes = 0;
	const uint32_t *type = hs_types_ids(s->types);
	for (size_t i = 0; type && i < n; i++)
		if (type[i] >= ntypes)
			ntypes = (size_t)type[i] + 1;
	uint32_t *type_frame = malloc((ntypes ? ntypes : 1) * sizeof(uint32_t));
	uint32_t *work = malloc((n ? n : 1) * sizeof(uint32_t));
	st->of_block = malloc((n ? n : 1) * sizeof(uint32_t));
	st->nblocks = n;
	struct hs_error *err = &hs_error_nomem;
	if (!type_frame || !work || !st->of_block)
		goto out;
	memset(type_frame, 0xff, (ntypes ? ntypes : 1) * sizeof(uint32_t));
	memset(st->of_block, 0xff, (n ? n : 1) * sizeof(uint32_t));
	uint32_t deeper = intern_frame(st, "[deeper]");
	if (deeper == HS_STACK_NONE)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (!(a->flags[i] & HS_NODE_USED) || st->of_block[i] != HS_STACK_NONE)
			continue;
		if ((i & 0xffff) == 0) {
			hs_progress_update(s, i);
			if (hs_interrupted()) {
				err = hs_error_create(HS_ERR_INTERRUPTED, "interrupted");
				goto out;
			}
		}
		// Climb the dominator tree to a resolved node (or the top), then
		// resolve back down.
		size_t depth = 0;
		uint32_t v = (uint32_t)i;
		while (v < n && st->of_block[v] == HS_STACK_NONE && depth < n) {
			work[depth++] = v;
			v = d->idom[v];
		}
		while (depth-- > 0) {
			uint32_t b = work[depth];
			uint32_t up = d->idom[b];
			uint32_t parent = up < n ? st->of_block[up] : root_node(s, st, &pick[b], b, deeper);
			uint32_t t = type ? type[b] : 0;
			uint32_t frame;
			if (t && t < ntypes && type_frame[t] != HS_STACK_NONE) {
				frame = type_frame[t];
			} else {
				const char *name = hs_types_name(s->types, t);
				char buf[64];
				if (!name) {
					snprintf(buf, sizeof(buf), "? (%" PRIu64 " bytes)", hs_block_size(&s->heap.blocks[b]));
					name = buf;
				}
				frame = intern_frame(st, name);
				if (t && t < ntypes)
					type_frame[t] = frame;
			}
			uint32_t node = parent == HS_STACK_NONE ? HS_STACK_NONE : push_frame(st, parent, frame, deeper);
			if (node == HS_STACK_NONE)
				goto out;
			st->of_block[b] = node;
		}
	}
	count_blocks(s, st);
	err = NULL;
out:
	hs_progress_end(s);
	free(pick);
	free(type_frame);
	free(work);
	if (err)
		hs_stacks_deinit(st);
	return err;
}

/* Owners only (diff): each used allocation's owner is the root frames of its
 * top-level dominator, the child of the virtual root that dominates it -- the
 * same virtual root as dominators.c (rooted allocations, then leaked heads,
 * then what is left, in index order).  Only that level of the tree is
 * needed, and it comes from the iterative dominator algorithm over a lattice
 * of three values per allocation: unknown, one top-level allocation, or
 * itself (its predecessors disagree, so only the virtual root dominates it).
 * Predecessors are met in reverse postorder until nothing changes. */

#define TOP_UNSET UINT32_MAX
#define TOP_MAX_PASSES 64

// Depth-first from start over the forward edges: postorder into post.
static void dfs_post(const struct hs_analysis *a, uint32_t start, uint8_t *seen, uint32_t *stack, uint32_t *pos,
		     uint32_t *post, size_t *npost)
{
	size_t sp = 0;
	seen[start] = 1;
	stack[sp] = start;
	pos[sp++] = a->fwd_off[start];
	while (sp) {
		uint32_t v = stack[sp - 1];
		if (pos[sp - 1] == a->fwd_off[v + 1]) {
			post[(*npost)++] = v;
			sp--;
			continue;
		}
		uint32_t w = a->fwd[pos[sp - 1]++];
		if (seen[w])
			continue;
		seen[w] = 1;
		stack[sp] = w;
		pos[sp++] = a->fwd_off[w];
	}
}

// top[i] for every used allocation; false when the passes do not settle.
static bool top_dominators(const struct hs_analysis *a, uint32_t *top, uint8_t *seen, uint32_t *stack,
			   uint32_t *pos, uint32_t *order)
{
	size_t n = a->n, npost = 0;
	memset(seen, 0, n ? n : 1);
	for (size_t i = 0; i < n; i++)
		top[i] = TOP_UNSET;
	for (int phase = 0; phase < 3; phase++)
		for (size_t i = 0; i < n; i++) {
			bool child = phase == 0 ? (a->flags[i] & HS_NODE_ROOTED) != 0 :
				     phase == 1 ? hs_node_unreferenced(a, i) :
				     (a->flags[i] & HS_NODE_USED) && !seen[i];
			if (!child)
				continue;
			top[i] = (uint32_t)i;   // the virtual root's child: its own
			if (!seen[i])
				dfs_post(a, (uint32_t)i, seen, stack, pos, order, &npost);
		}
	for (int pass = 0; pass < TOP_MAX_PASSES; pass++) {
		bool changed = false;
		for (size_t k = npost; k-- > 0;) {
			uint32_t b = order[k];
			if (top[b] == b)
				continue;   // a child of the virtual root, or its own for good
			uint32_t t = TOP_UNSET;
			bool reached = a->flags[b] & HS_NODE_REACHABLE;
			for (uint32_t e = a->rev_off[b]; e < a->rev_off[b + 1]; e++) {
				uint32_t d = top[a->rev[e]];
				// (No path from a root through the unreachable:
				// dominators.c's cut_edge.)
				if (d == TOP_UNSET || (reached && !(a->flags[a->rev[e]] & HS_NODE_REACHABLE)))
					continue;
				if (t == TOP_UNSET) {
					t = d;
				} else if (t != d) {
					t = b;
					break;
				}
			}
			if (t != TOP_UNSET && t != top[b]) {
				top[b] = t;
				changed = true;
			}
		}
		if (!changed)
			return true;
	}
	return false;
}

struct hs_error *hs_stacks_build_owners(struct hs_session *s, struct hs_stacks *st)
{
	memset(st, 0, sizeof(*st));
	HS_CHECK(hs_session_need_analysis(s));
	st->garbage = s->go_rt != NULL;
	struct hs_analysis *a = s->analysis;
	if (s->dominators)   // the dominator tree is there already: nothing to save
		return hs_stacks_build(s, st);
	HS_CHECK(hs_analysis_need_reverse(a));
	size_t n = a->n, m = n ? n : 1;
	uint32_t *top = malloc(m * sizeof(uint32_t)), *stack = malloc(m * sizeof(uint32_t));
	uint32_t *pos = malloc(m * sizeof(uint32_t)), *order = malloc(m * sizeof(uint32_t));
	uint8_t *seen = malloc(m);
	struct root_pick *pick = NULL;
	struct hs_error *err = &hs_error_nomem;
	if (!top || !stack || !pos || !order || !seen)
		goto out;
	double t0 = hs_now();
	if (!top_dominators(a, top, seen, stack, pos, order)) {
		// A graph that needs more passes than this: the full tree.
		free(top);
		free(stack);
		free(pos);
		free(order);
		free(seen);
		return hs_stacks_build(s, st);
	}
	hs_session_time(s, "owners", t0);
	if ((err = pick_roots(s, &pick)))
		goto out;
	err = &hs_error_nomem;
	uint32_t *node_of = stack;   // reused: top-level allocation -> its owner node
	memset(node_of, 0xff, m * sizeof(uint32_t));
	st->of_block = malloc(m * sizeof(uint32_t));
	st->nblocks = n;
	uint32_t deeper = st->of_block ? intern_frame(st, "[deeper]") : HS_STACK_NONE;
	if (deeper == HS_STACK_NONE)
		goto out;
	memset(st->of_block, 0xff, m * sizeof(uint32_t));
	for (size_t i = 0; i < n; i++) {
		uint32_t t = top[i];
		if (!(a->flags[i] & HS_NODE_USED) || t == TOP_UNSET)
			continue;
		if (node_of[t] == HS_STACK_NONE &&
		    (node_of[t] = root_node(s, st, &pick[t], t, deeper)) == HS_STACK_NONE)
			goto out;
		st->of_block[i] = node_of[t];
	}
	count_blocks(s, st);
	err = NULL;
out:
	free(top);
	free(stack);
	free(pos);
	free(order);
	free(seen);
	free(pick);
	if (err)
		hs_stacks_deinit(st);
	return err;
}

/* Files written atomically. */

static int outfile_write(void *ctx, const char *buf, size_t len)
{
	struct hs_outfile *f = ctx;
	while (len) {
		ssize_t w = write(f->fd, buf, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			f->failed = true;
			f->error = w < 0 ? errno : EIO;
			return -1;
		}
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

struct hs_error *hs_outfile_open(struct hs_outfile *f, const char *path)
{
	memset(f, 0, sizeof(*f));
	f->fd = -1;
	struct hs_outpath op;
	struct hs_error *err = hs_outpath(path, &op);
	if (err)
		return err;
	f->path = op.file;
	if (op.special) {
		// A device or a pipe: written as it comes (no temporary name).
		f->fd = open(f->path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
		if (f->fd < 0) {
			err = hs_error_errno(errno, "cannot write %s", f->path);
			free(f->path);
			return err;
		}
		hs_out_init(&f->out, outfile_write, f);
		return NULL;
	}
	size_t len = strlen(f->path);
	f->tmp = malloc(len + 16);
	if (!f->tmp) {
		free(f->path);
		return &hs_error_nomem;
	}
	// In the same directory, so that rename() is atomic.
	snprintf(f->tmp, len + 16, "%s.tmp.XXXXXX", f->path);
	f->fd = mkstemp(f->tmp);
	if (f->fd < 0) {
		err = hs_error_errno(errno, "cannot create %s", f->tmp);
		free(f->path);
		free(f->tmp);
		return err;
	}
	// mkstemp makes it 0600; give it what open(O_CREAT, 0666) would.
	mode_t mask = umask(022);
	umask(mask);
	fchmod(f->fd, 0666 & ~mask);
	hs_out_init(&f->out, outfile_write, f);
	return NULL;
}

void hs_outfile_abort(struct hs_outfile *f)
{
	if (f->fd >= 0)
		close(f->fd);
	if (f->tmp)
		unlink(f->tmp);
	free(f->path);
	free(f->tmp);
	f->fd = -1;
	f->path = f->tmp = NULL;
}

struct hs_error *hs_outfile_commit(struct hs_outfile *f)
{
	hs_out_flush(&f->out);
	struct hs_error *err = NULL;
	const char *written = f->tmp ? f->tmp : f->path;
	if (f->failed)
		err = hs_error_errno(f->error, "cannot write %s", written);
	else if (close(f->fd) != 0)
		err = hs_error_errno(errno, "cannot write %s", written);
	else if ((f->fd = -1, f->tmp && rename(f->tmp, f->path) != 0))
		err = hs_error_errno(errno, "cannot rename %s to %s", f->tmp, f->path);
	if (err) {
		hs_outfile_abort(f);
		return err;
	}
	free(f->path);
	free(f->tmp);
	f->path = f->tmp = NULL;
	return NULL;
}

/* export */

static void folded_line(struct hs_out *o, const struct hs_stacks *st, uint32_t k)
{
	uint32_t chain[HS_STACK_MAX_DEPTH + 1];
	size_t n = 0;
	for (uint32_t v = k; v != HS_STACK_NONE && n < HS_STACK_MAX_DEPTH + 1; v = st->nodes[v].parent)
		chain[n++] = v;
	while (n-- > 0) {
		// ';' separates frames: in a name it becomes ':'.
		const char *name = st->frames[st->nodes[chain[n]].frame];
		char buf[512];
		size_t j = 0;
		for (; name[j] && j + 1 < sizeof(buf); j++)
			buf[j] = name[j] == ';' ? ':' : name[j];
		buf[j] = 0;
		hs_out_puts(o, buf);
		if (n)
			hs_out_puts(o, ";");
	}
	hs_out_printf(o, " %" PRIu64 "\n", st->nodes[k].bytes);
}

/* The model of export: the stacks (hs_stacks_build), how many of them hold
 * something, and the profile's comments.  The profile goes to the output or
 * FILE (export_profile: pprof or folded); with -o FILE the output gets a
 * summary of it (export_text or export_json). */
struct export_model {
	struct hs_stacks st;
	const char *format, *file;
	bool pprof;
	size_t samples;                 /* stacks with allocations */
	char comment0[600], comment1[200];  /* pprof: what and whose */
};

static struct hs_error *export_model(struct hs_session *s, const char *format, const char *file,
				     struct export_model *m)
{
	m->format = format;
	m->file = file;
	m->pprof = !strcmp(format, "pprof");
	HS_CHECK(hs_stacks_build(s, &m->st));
	m->samples = 0;
	for (size_t k = 0; k < m->st.nnodes; k++)
		m->samples += m->st.nodes[k].count != 0;
	struct hs_module *mod = s->symbols ? hs_symbols_main_module(s->symbols) : NULL;
	snprintf(m->comment0, sizeof(m->comment0), "heapscope %s: who holds the memory of %s", HEAPSCOPE_VERSION,
		 s->target->path);
	size_t w = (size_t)snprintf(m->comment1, sizeof(m->comment1), "executable %s build-id ",
				    mod && mod->name ? mod->name : "?");
	for (size_t i = 0; mod && i < mod->build_id_len && w + 3 < sizeof(m->comment1); i++)
		w += (size_t)snprintf(m->comment1 + w, sizeof(m->comment1) - w, "%02x", mod->build_id[i]);
	if (mod && !mod->build_id_len && mod->go_build_id[0] && w < sizeof(m->comment1))
		snprintf(m->comment1 + w, sizeof(m->comment1) - w, "%s (Go)", mod->go_build_id);
	return NULL;
}

// The profile: pprof's bytes, or one folded line per stack that holds something.
static struct hs_error *export_profile(struct hs_out *o, const struct export_model *m)
{
	if (m->pprof) {
		struct hs_pprof_info info = { { m->comment0, m->comment1, NULL } };
		uint8_t *data;
		size_t len;
		HS_CHECK(hs_pprof_encode(&m->st, &info, &data, &len));
		hs_out_write(o, (const char *)data, len);
		free(data);
		return NULL;
	}
	for (size_t k = 0; k < m->st.nnodes && !o->stopped; k++)
		if (m->st.nodes[k].count)
			folded_line(o, &m->st, (uint32_t)k);
	return NULL;
}

static void export_text(struct hs_cmd *c, const struct export_model *m)
{
	char x[32];
	hs_out_printf(c->out, "wrote %s: %s profile, %zu stacks, %" PRIu64 " allocations, %s (%" PRIu64 " bytes) in use\n",
		      m->file, m->format, m->samples, m->st.count, hs_fmt_size(m->st.bytes, x, sizeof(x)), m->st.bytes);
}

static void export_json(struct hs_cmd *c, const struct export_model *m)
{
	hs_cmd_json_begin(c, "export");
	hs_json_kstr(c->out, "format", m->format);
	hs_json_kstr(c->out, "file", m->file);
	hs_json_ku64(c->out, "samples", m->samples);
	hs_json_ku64(c->out, "frames", m->st.nframes);
	hs_json_kcount(c->out, "in_use", m->st.count, m->st.bytes);
	hs_json_kcount(c->out, m->st.garbage ? "garbage" : "leaked", m->st.leaked_count, m->st.leaked_bytes);
	hs_cmd_diagnostics(c);
	hs_json_end_object(c->out);
	hs_json_done(c->out);
}

static const char export_usage[] = "export --format pprof|folded [-o FILE]";

struct hs_error *hs_cmd_export(struct hs_cmd *c)
{
	struct hs_export_opts opt = { 0 };
	HS_CHECK(hs_cmd_parse(c, &opt, sizeof(opt), NULL, 0, NULL));
	const char *format = opt.format, *file = opt.file;
	if (!format || (strcmp(format, "pprof") && strcmp(format, "folded")))
		return hs_error_create(HS_ERR_USAGE, "export needs --format pprof or --format folded: %s", export_usage);
	if (c->json && !file)
		return hs_error_create(HS_ERR_USAGE, "export --json needs -o FILE (stdout gets the JSON summary)");
	struct export_model m;
	HS_CHECK(export_model(c->s, format, file, &m));
	struct hs_outfile f;
	struct hs_out *o = c->out;
	struct hs_error *err = NULL;
	if (file) {
		if ((err = hs_outfile_open(&f, file))) {
			hs_stacks_deinit(&m.st);
			return err;
		}
		o = &f.out;
	} else {
		// The profile itself is the output: bytes as they are (pprof is
		// binary), and no diagnostics after it (use -o to see them).
		if (m.pprof)
			o->escape_text = false;
		c->diagnostics_done = true;
	}
	err = export_profile(o, &m);
	if (file) {
		err = err ? (hs_outfile_abort(&f), err) : hs_outfile_commit(&f);
		if (!err) {
			if (c->json)
				export_json(c, &m);
			else
				export_text(c, &m);
		}
	}
	hs_stacks_deinit(&m.st);
	return err;
}
