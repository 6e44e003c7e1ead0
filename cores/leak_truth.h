/* leak_truth.h - ground truth for the leak fixtures (leaks.c, leaks_cpp.cc).
 *
 * The leak truth must not change the pointer graph it describes: every heap
 * address recorded here is stored complemented (~p, never a user-space
 * address), so the records anchor nothing and add no referrers.  Decoded values
 * only exist in dead stack frames while the document is written; the fixture
 * scrubs its stack (lt_scrub_stack) and registers (LT_CLEAR_REGS) afterwards.
 *
 * lt_write() writes the document truth.h's truth_write() writes (fixture, pid,
 * arenas, threads, live, freed, internal, meta, mmapped, mallinfo2, corrupt,
 * notes: cores/validate.py checks it against glibc's view) plus "leaks":
 *   "main_arena": address, "heaps": [[lo, hi]...] (the heap memory: main heap
 *       and each thread heap, so an oracle knows what is not a root),
 *   "objects": [{"address","size","arena","label","type","inferred","leaked",
 *                "unreferenced","interior_only"}]  (inferred: the type only an
 *                inference can give, ctypes.c; null elsewhere)   every allocation the fixture made itself,
 *   "chains": [{"label","target","anchored","root":ROOT|null,
 *               "hops":[{"address","offset","field"}...]}]  the unique shortest
 *       chain; the last hop is the target's allocation (offset null),
 *   "refs": [{"label","target","referrers":[ROOT or {"kind":"allocation","address","offset"}]}],
 *   "tree": [{"id","address","size","retained","parent"}],
 *   "stale": [{"label","array","expect","words":[{"offset","value"}]}]
 *       freed arrays and the stale pointers they still hold.
 * ROOT = {"kind","address","symbol","thread","function","register"} as in the
 * CLI contract (null where not applicable).
 */
#ifndef CORES_LEAK_TRUTH_H
#define CORES_LEAK_TRUTH_H

#include "truth.h"
#include <linux/futex.h>
#include <sys/syscall.h>

#define LT_MAX_OBJ 256
#define LT_MAX_CHAIN 48
#define LT_MAX_HOPS 8
#define LT_MAX_REFS 32
#define LT_MAX_TREE 32
#define LT_MAX_STALE 4
#define LT_MAX_HEAPS 8

#define LT_ENC(p) (~(uintptr_t)(p))
#define LT_DEC(v) ((uintptr_t)~(v))

struct lt_object {
	uintptr_t enc;
	size_t size;
	intptr_t arena;
	char label[40];
	const char *type;       /* a literal; NULL: unknown */
	const char *inferred;   /* the type an inference must give it (ctypes.c); NULL: none */
	int leaked, unref, interior_only, freed;
	char expect[16];        /* freed: where glibc put it */
};

struct lt_root {
	const char *kind;       /* NULL: no root (a leaked chain) */
	uintptr_t address;      /* a global, stack or TLS word: never a heap address */
	char symbol[40];
	int thread;
	const char *function;
	const char *reg;
};

struct lt_hop {
	uintptr_t enc;
	long offset;            /* -1: the target (null) */
	const char *field;
};

struct lt_chain {
	char label[40];
	uintptr_t target_enc;
	int anchored;
	struct lt_root root;
	struct lt_hop hops[LT_MAX_HOPS];
	int nhops;
};

struct lt_ref {
	int is_root;
	struct lt_root root;
	uintptr_t enc;
	long offset;
};

struct lt_refs {
	char label[40];
	uintptr_t target_enc;
	struct lt_ref refs[4];
	int nrefs;
};

struct lt_tree {
	int id, parent;
	uintptr_t enc;
	size_t size, retained;
};

struct lt_stale {
	char label[32];
	uintptr_t array_enc;
	char expect[16];
	long offsets[16];
	uintptr_t values_enc[16];
	int nwords;
};

static struct {
	struct lt_object obj[LT_MAX_OBJ];
	int nobj;
	struct lt_chain chains[LT_MAX_CHAIN];
	int nchains;
	struct lt_refs refs[LT_MAX_REFS];
	int nrefs;
	struct lt_tree tree[LT_MAX_TREE];
	int ntree;
	struct lt_stale stale[LT_MAX_STALE];
	int nstale;
	uintptr_t heaps_enc[LT_MAX_HEAPS][2];
	int nheaps;
	uintptr_t main_arena_enc;
} lt;

/* Records are made from several threads, one at a time (the fixture starts
 * threads one after the other), under truth.lock anyway. */
static __attribute__((unused)) struct lt_object *lt_find(const void *p)
{
	for (int i = 0; i < lt.nobj; i++)
		if (lt.obj[i].enc == LT_ENC(p))
			return &lt.obj[i];
	truth_die("lt_find: not a recorded object");
	return NULL;
}

/* An allocation the fixture made: leaked or not, a cluster head or not, the
 * type heapscope must name it by (NULL: must stay unknown). */
static __attribute__((unused, noinline)) void lt_obj(const void *p, const char *type, int leaked,
						      int unref, const char *fmt, ...)
{
	pthread_mutex_lock(&truth.lock);
	if (lt.nobj >= LT_MAX_OBJ)
		truth_die("too many leak objects");
	struct lt_object *o = &lt.obj[lt.nobj++];
	memset(o, 0, sizeof(*o));
	o->enc = LT_ENC(p);
	o->size = malloc_usable_size((void *)p);
	o->arena = truth_arena_of(p);
	o->type = type;
	o->leaked = leaked;
	o->unref = unref;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(o->label, sizeof(o->label), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&truth.lock);
}

/* A leaked allocation only an inference can type: the type it must be given
 * ("~node"), or NULL when it must stay unknown (ctypes.c, ctypes_small.c). */
static __attribute__((unused, noinline)) void lt_obj_inferred(const void *p, const char *inferred, int unref,
							       const char *label)
{
	lt_obj(p, NULL, 1, unref, "%s", label);
	lt.obj[lt.nobj - 1].inferred = inferred;
}

/* A leak fixture's start: its truth's path (from its arguments), its name,
 * and the main thread's stack, known by local (a variable of main's). */
static __attribute__((unused)) const char *lt_begin(int argc, char **argv, const char *name, int *local)
{
	const char *path = truth_path(argc, argv);
	truth_set_name(name);
	truth_thread(local);
	return path;
}

static __attribute__((unused)) void lt_interior_only(const void *p)
{
	lt_find(p)->interior_only = 1;
}

/* Record p as freed (where glibc will put it) without freeing it (C++: the
 * caller deletes it). */
static __attribute__((unused, noinline)) void lt_freed(void *p, const char *expect)
{
	pthread_mutex_lock(&truth.lock);
	if (lt.nobj >= LT_MAX_OBJ)
		truth_die("too many leak objects");
	struct lt_object *o = &lt.obj[lt.nobj++];
	memset(o, 0, sizeof(*o));
	o->enc = LT_ENC(p);
	o->size = malloc_usable_size(p);
	o->arena = truth_arena_of(p);
	o->freed = 1;
	snprintf(o->expect, sizeof(o->expect), "%s", expect);
	snprintf(o->label, sizeof(o->label), "freed %s", expect);
	pthread_mutex_unlock(&truth.lock);
}

/* Record p as freed (where glibc will put it) and free it. */
static __attribute__((unused, noinline)) void lt_free(void *p, const char *expect)
{
	lt_freed(p, expect);
	free(p);
}

static __attribute__((unused)) struct lt_chain *lt_chain(const char *label, const void *target, int anchored)
{
	if (lt.nchains >= LT_MAX_CHAIN)
		truth_die("too many chains");
	struct lt_chain *c = &lt.chains[lt.nchains++];
	memset(c, 0, sizeof(*c));
	snprintf(c->label, sizeof(c->label), "%s", label);
	c->target_enc = LT_ENC(target);
	c->anchored = anchored;
	c->root.thread = -1;
	return c;
}

static __attribute__((unused)) void lt_root_global(struct lt_root *r, const void *word, const char *symbol)
{
	r->kind = "global";
	r->address = (uintptr_t)word;
	snprintf(r->symbol, sizeof(r->symbol), "%s", symbol);
	r->thread = -1;
}

static __attribute__((unused)) void lt_root_stack(struct lt_root *r, const void *word, int tid, const char *function)
{
	r->kind = "stack";
	r->address = (uintptr_t)word;
	r->thread = tid;
	r->function = function;
}

static __attribute__((unused)) void lt_root_tls(struct lt_root *r, const void *word, int tid)
{
	r->kind = "tls";
	r->address = (uintptr_t)word;
	r->thread = tid;
}

static __attribute__((unused)) void lt_root_register(struct lt_root *r, int tid, const char *reg)
{
	r->kind = "register";
	r->address = 0;
	r->thread = tid;
	r->reg = reg;
}

/* Append a hop: the allocation p, holding the pointer to the next hop at
 * offset (-1 on the target), in the member field (NULL: unknown). */
static __attribute__((unused)) void lt_hop(struct lt_chain *c, const void *p, long offset, const char *field)
{
	if (c->nhops >= LT_MAX_HOPS)
		truth_die("chain too long");
	c->hops[c->nhops].enc = LT_ENC(p);
	c->hops[c->nhops].offset = offset;
	c->hops[c->nhops].field = field;
	c->nhops++;
}

static __attribute__((unused)) struct lt_refs *lt_refs(const char *label, const void *target)
{
	if (lt.nrefs >= LT_MAX_REFS)
		truth_die("too many refs");
	struct lt_refs *r = &lt.refs[lt.nrefs++];
	memset(r, 0, sizeof(*r));
	snprintf(r->label, sizeof(r->label), "%s", label);
	r->target_enc = LT_ENC(target);
	return r;
}

static __attribute__((unused)) struct lt_root *lt_ref_root(struct lt_refs *r)
{
	if (r->nrefs >= 4)
		truth_die("too many referrers");
	struct lt_ref *x = &r->refs[r->nrefs++];
	x->is_root = 1;
	x->root.thread = -1;
	return &x->root;
}

static __attribute__((unused)) void lt_ref_alloc(struct lt_refs *r, const void *p, long offset)
{
	if (r->nrefs >= 4)
		truth_die("too many referrers");
	struct lt_ref *x = &r->refs[r->nrefs++];
	x->is_root = 0;
	x->enc = LT_ENC(p);
	x->offset = offset;
}

static __attribute__((unused)) void lt_tree(int id, int parent, const void *p, size_t retained)
{
	if (lt.ntree >= LT_MAX_TREE)
		truth_die("tree too large");
	struct lt_tree *t = &lt.tree[lt.ntree++];
	t->id = id;
	t->parent = parent;
	t->enc = LT_ENC(p);
	t->size = malloc_usable_size((void *)p);
	t->retained = retained;
}

/* A freed array: call before freeing it; lt_stale_word() for each stale pointer
 * it will still hold after free(). */
static __attribute__((unused)) struct lt_stale *lt_stale(const char *label, const void *array, const char *expect)
{
	if (lt.nstale >= LT_MAX_STALE)
		truth_die("too many stale arrays");
	struct lt_stale *s = &lt.stale[lt.nstale++];
	memset(s, 0, sizeof(*s));
	snprintf(s->label, sizeof(s->label), "%s", label);
	snprintf(s->expect, sizeof(s->expect), "%s", expect);
	s->array_enc = LT_ENC(array);
	return s;
}

static __attribute__((unused)) void lt_stale_word(struct lt_stale *s, long offset, const void *value)
{
	if (s->nwords >= 16)
		truth_die("too many stale words");
	s->offsets[s->nwords] = offset;
	s->values_enc[s->nwords] = LT_ENC(value);
	s->nwords++;
}

/* The heap memory around p: the main heap's [heap] mapping, or a thread
 * heap (its heap_info is at the 64 MiB-aligned start; heap_info.size at 16). */
static __attribute__((unused)) void lt_heap_of(const void *p)
{
	uintptr_t lo, hi;
	if (truth_arena_of(p) == 0) {
		if (truth_mapping_of((uintptr_t)p, &lo, &hi))
			truth_die("the main heap is not in /proc/self/maps");
	} else {
		lo = (uintptr_t)p & ~(TRUTH_HEAP_MAX - 1);
		hi = lo + ((const size_t *)lo)[2];
	}
	for (int i = 0; i < lt.nheaps; i++)
		if (LT_DEC(lt.heaps_enc[i][0]) == lo)
			return;
	if (lt.nheaps >= LT_MAX_HEAPS)
		truth_die("too many heaps");
	lt.heaps_enc[lt.nheaps][0] = LT_ENC(lo);
	lt.heaps_enc[lt.nheaps][1] = LT_ENC(hi);
	lt.nheaps++;
}

/* main_arena from a thread arena (heap_info.ar_ptr at the heap's start):
 * follow malloc_state.next (glibc 2.36 x86-64: offset 2160) to the one arena
 * that is not at a 64 MiB-aligned heap start + sizeof(heap_info) (48).
 * The fixture's gdb check compares it with &main_arena. */
#define LT_ARENA_NEXT 2160
static __attribute__((unused)) void lt_find_main_arena(const void *thread_ptr)
{
	uintptr_t a = *(const uintptr_t *)((uintptr_t)thread_ptr & ~(TRUTH_HEAP_MAX - 1));
	for (int i = 0; i < 64; i++) {
		if (a != ((a & ~(TRUTH_HEAP_MAX - 1)) + 48)) {
			lt.main_arena_enc = LT_ENC(a);
			return;
		}
		a = *(const uintptr_t *)(a + LT_ARENA_NEXT);
	}
	truth_die("main_arena not found");
}

/* main_arena from a chunk just freed into the main arena's unsorted bin (and
 * alone there): its fd is the bin's pseudo-chunk, main_arena.bins - 16, and
 * bins is at offset 112 (glibc 2.36 x86-64). */
static __attribute__((unused)) void lt_main_arena_from_unsorted(const void *freed)
{
	lt.main_arena_enc = LT_ENC(*(const uintptr_t *)freed - 96);
}

/* Free p (a chunk too big for the tcache, not next to top) into the unsorted
 * bin, alone there, and learn main_arena from it. */
static __attribute__((unused)) void lt_free_unsorted(void *p)
{
	lt_free(p, "unsorted");
	lt_main_arena_from_unsorted(p);
}

/* Internal chunks allocated before the fixture's first malloc (C++: the
 * libstdc++ emergency exception pool): walk the main heap from its start (the
 * tcache, then startup chunks) up to first.  In-use chunks become truth
 * "internal"; the tcache is "meta". */
static __attribute__((unused)) void lt_startup_chunks(const void *first)
{
	uintptr_t lo, hi;
	if (truth_mapping_of((uintptr_t)first, &lo, &hi))
		truth_die("the main heap is not in /proc/self/maps");
	uintptr_t c = lo, end = (uintptr_t)first - 16;
	int n = 0;
	while (c < end) {
		uintptr_t size = ((const uintptr_t *)c)[1] & ~TRUTH_SIZE_BITS;
		if (size < 32 || c + size > end + 16 || n++ > 1000)
			truth_die("startup chunk walk failed");
		uintptr_t next = c + size;
		int in_use = ((const uintptr_t *)next)[1] & 1;
		if (c == lo) {
			if (size != 0x290)
				truth_die("the heap does not start with the tcache");
			truth_meta(c + 16, size - 8, "tcache of thread 0");
		} else if (in_use) {
			truth_internal(c + 16, size - 8, "startup allocation %d", n);
		} else {
			truth_die("a free chunk before the fixture's first malloc");
		}
		c = next;
	}
}

/* Overwrite the dead stack below the caller: malloc's, printf's and the
 * recording functions' stale copies of heap addresses. */
static __attribute__((unused, noinline)) void lt_scrub_stack(void)
{
	volatile char buf[128 * 1024];
	explicit_bzero((void *)buf, sizeof(buf));
	__asm__ volatile("" ::"r"(buf) : "memory");
}

/* Zero the scratch registers (caller-saved) so no stale heap address stays in
 * one at the dump. */
#define LT_CLEAR_REGS()                                                                   \
	__asm__ volatile("xor %%eax,%%eax\n\txor %%ecx,%%ecx\n\txor %%edx,%%edx\n\t"     \
			 "xor %%esi,%%esi\n\txor %%edi,%%edi\n\txor %%r8d,%%r8d\n\t"      \
			 "xor %%r9d,%%r9d\n\txor %%r10d,%%r10d\n\txor %%r11d,%%r11d\n\t"  \
			 "pxor %%xmm0,%%xmm0\n\tpxor %%xmm1,%%xmm1\n\tpxor %%xmm2,%%xmm2\n\t" \
			 "pxor %%xmm3,%%xmm3\n\tpxor %%xmm4,%%xmm4\n\tpxor %%xmm5,%%xmm5\n\t" \
			 "pxor %%xmm6,%%xmm6\n\tpxor %%xmm7,%%xmm7\n\t"                  \
			 ::: "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11",  \
			 "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "memory")

/* A leak fixture's end, in main's frame: its truth written (with its number
 * of arenas), the dead stack
 * and the scratch registers cleared of heap addresses, the dump (gdb's
 * breakpoint in dump_here; the kernel core's abort in truth_finish). */
#define LT_DUMP(path, arenas, argc, argv)    \
	do {                                 \
		truth_set_arenas(arenas);    \
		lt_write(path);              \
		lt_scrub_stack();            \
		LT_CLEAR_REGS();             \
		dump_here();                 \
		truth_finish((argc), (argv)); \
	} while (0)

/* Wait until thread tid sleeps (state S in /proc/self/task/TID/stat). */
static __attribute__((unused)) void lt_wait_sleeping(int tid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	for (int tries = 0; tries < 10000; tries++) {
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			truth_die("cannot open a task's stat");
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0) {
			buf[n] = 0;
			char *rp = strrchr(buf, ')');
			if (rp && rp[1] == ' ' && rp[2] == 'S')
				return;
		}
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	truth_die("a thread never went to sleep");
}

static __attribute__((unused)) void lt_str(const char *s)
{
	if (s)
		truth_cat("\"%s\"", s);
	else
		truth_cat("null");
}

static __attribute__((unused)) void lt_write_root(const struct lt_root *r)
{
	if (!r->kind) {
		truth_cat("null");
		return;
	}
	truth_cat("{\"kind\":\"%s\",\"address\":", r->kind);
	if (r->address)
		truth_cat("%lu", (unsigned long)r->address);
	else
		truth_cat("null");
	truth_cat(",\"symbol\":");
	lt_str(r->symbol[0] ? r->symbol : NULL);
	truth_cat(",\"thread\":");
	if (r->thread > 0)
		truth_cat("%d", r->thread);
	else
		truth_cat("null");
	truth_cat(",\"function\":");
	lt_str(r->function);
	truth_cat(",\"register\":");
	lt_str(r->reg);
	truth_cat("}");
}

static __attribute__((unused)) void lt_write_leaks(void)
{
	truth_cat(",\n\"leaks\":{\"main_arena\":%lu,\n\"heaps\":[", (unsigned long)LT_DEC(lt.main_arena_enc));
	for (int i = 0; i < lt.nheaps; i++)
		truth_cat("%s[%lu,%lu]", i ? "," : "", (unsigned long)LT_DEC(lt.heaps_enc[i][0]),
			  (unsigned long)LT_DEC(lt.heaps_enc[i][1]));
	truth_cat("],\n\"objects\":[");
	int first = 1;
	for (int i = 0; i < lt.nobj; i++) {
		const struct lt_object *o = &lt.obj[i];
		if (o->freed)
			continue;
		truth_cat("%s\n {\"address\":%lu,\"size\":%lu,\"arena\":%ld,\"label\":\"%s\",\"type\":",
			  first ? "" : ",", (unsigned long)LT_DEC(o->enc), (unsigned long)o->size,
			  (long)o->arena, o->label);
		lt_str(o->type);
		truth_cat(",\"inferred\":");
		lt_str(o->inferred);
		truth_cat(",\"leaked\":%s,\"unreferenced\":%s,\"interior_only\":%s}",
			  o->leaked ? "true" : "false", o->unref ? "true" : "false",
			  o->interior_only ? "true" : "false");
		first = 0;
	}
	truth_cat("],\n\"chains\":[");
	for (int i = 0; i < lt.nchains; i++) {
		const struct lt_chain *c = &lt.chains[i];
		truth_cat("%s\n {\"label\":\"%s\",\"target\":%lu,\"anchored\":%s,\"root\":", i ? "," : "",
			  c->label, (unsigned long)LT_DEC(c->target_enc), c->anchored ? "true" : "false");
		lt_write_root(&c->root);
		truth_cat(",\"hops\":[");
		for (int j = 0; j < c->nhops; j++) {
			truth_cat("%s{\"address\":%lu,\"offset\":", j ? "," : "",
				  (unsigned long)LT_DEC(c->hops[j].enc));
			if (c->hops[j].offset >= 0)
				truth_cat("%ld", c->hops[j].offset);
			else
				truth_cat("null");
			truth_cat(",\"field\":");
			lt_str(c->hops[j].field);
			truth_cat("}");
		}
		truth_cat("]}");
	}
	truth_cat("],\n\"refs\":[");
	for (int i = 0; i < lt.nrefs; i++) {
		const struct lt_refs *r = &lt.refs[i];
		truth_cat("%s\n {\"label\":\"%s\",\"target\":%lu,\"referrers\":[", i ? "," : "", r->label,
			  (unsigned long)LT_DEC(r->target_enc));
		for (int j = 0; j < r->nrefs; j++) {
			truth_cat("%s", j ? "," : "");
			if (r->refs[j].is_root)
				lt_write_root(&r->refs[j].root);
			else
				truth_cat("{\"kind\":\"allocation\",\"address\":%lu,\"offset\":%ld}",
					  (unsigned long)LT_DEC(r->refs[j].enc), r->refs[j].offset);
		}
		truth_cat("]}");
	}
	truth_cat("],\n\"tree\":[");
	for (int i = 0; i < lt.ntree; i++) {
		const struct lt_tree *t = &lt.tree[i];
		truth_cat("%s\n {\"id\":%d,\"parent\":%d,\"address\":%lu,\"size\":%lu,\"retained\":%lu}",
			  i ? "," : "", t->id, t->parent, (unsigned long)LT_DEC(t->enc),
			  (unsigned long)t->size, (unsigned long)t->retained);
	}
	truth_cat("],\n\"stale\":[");
	for (int i = 0; i < lt.nstale; i++) {
		const struct lt_stale *s = &lt.stale[i];
		truth_cat("%s\n {\"label\":\"%s\",\"array\":%lu,\"expect\":\"%s\",\"words\":[", i ? "," : "",
			  s->label, (unsigned long)LT_DEC(s->array_enc), s->expect);
		for (int j = 0; j < s->nwords; j++)
			truth_cat("%s{\"offset\":%ld,\"value\":%lu}", j ? "," : "", s->offsets[j],
				  (unsigned long)LT_DEC(s->values_enc[j]));
		truth_cat("]}");
	}
	truth_cat("]}");
}

/* The base document (as truth_write() writes it) with live and freed from the
 * leak records, plus "leaks". */
static __attribute__((unused, noinline)) void lt_write(const char *path)
{
	struct mallinfo2 mi = mallinfo2();
	pthread_mutex_lock(&truth.lock);
	truth.outlen = 0;
	truth_cat("{\"fixture\":\"%s\",\n\"pid\":%d,\n\"arenas\":%d,\n\"threads\":[", truth.fixture,
		  (int)getpid(), truth.arenas);
	for (size_t i = 0; i < truth.nthreads; i++) {
		const struct truth_thread *t = &truth.threads[i];
		truth_cat("%s\n {\"tid\":%d,\"stack_local\":%lu,\"stack_mapping\":[%lu,%lu]}", i ? "," : "",
			  t->tid, (unsigned long)t->stack_local, (unsigned long)t->lo, (unsigned long)t->hi);
	}
	truth_cat("],\n\"live\":[");
	int first = 1;
	for (int i = 0; i < lt.nobj; i++) {
		const struct lt_object *o = &lt.obj[i];
		if (o->freed)
			continue;
		truth_cat("%s\n {\"address\":%lu,\"size\":%lu,\"arena\":%ld}", first ? "" : ",",
			  (unsigned long)LT_DEC(o->enc), (unsigned long)o->size, (long)o->arena);
		first = 0;
	}
	truth_cat("],\n\"freed\":[");
	first = 1;
	for (int i = 0; i < lt.nobj; i++) {
		const struct lt_object *o = &lt.obj[i];
		if (!o->freed)
			continue;
		truth_cat("%s\n {\"address\":%lu,\"size\":%lu,\"arena\":%ld,\"expect\":\"%s\"}", first ? "" : ",",
			  (unsigned long)LT_DEC(o->enc), (unsigned long)o->size, (long)o->arena, o->expect);
		first = 0;
	}
	truth_cat("]");
	truth_recs("internal", truth.internal, truth.ninternal, "what");
	truth_recs("meta", truth.meta, truth.nmeta, "what");
	truth_cat(",\n\"mmapped\":[");
	first = 1;
	for (int i = 0; i < lt.nobj; i++) {
		const struct lt_object *o = &lt.obj[i];
		if (o->freed || o->arena != -1)
			continue;
		truth_cat("%s%lu", first ? "" : ",", (unsigned long)LT_DEC(o->enc));
		first = 0;
	}
	truth_cat("],\n\"mallinfo2\":{\"arena\":%zu,\"ordblks\":%zu,\"smblks\":%zu,\"hblks\":%zu,"
		  "\"hblkhd\":%zu,\"usmblks\":%zu,\"fsmblks\":%zu,\"uordblks\":%zu,"
		  "\"fordblks\":%zu,\"keepcost\":%zu}",
		  mi.arena, mi.ordblks, mi.smblks, mi.hblks, mi.hblkhd, mi.usmblks, mi.fsmblks, mi.uordblks,
		  mi.fordblks, mi.keepcost);
	truth_cat(",\n\"corrupt\":[],\n\"notes\":[");
	for (size_t i = 0; i < truth.nnotes; i++)
		truth_cat("%s\"%s\"", i ? "," : "", truth.notes[i]);
	truth_cat("]");
	lt_write_leaks();
	truth_cat("}\n");

	truth_save(path);
	pthread_mutex_unlock(&truth.lock);
}

#endif
