/* leaks.c - the leak-analysis fixture (issue 4): a heap whose anchored, leaked
 * and unreferenced sets, reference chains, referrers, types and retained sizes
 * are known exactly.  Ground truth: leak_truth.h ("leaks" in the truth JSON).
 *
 * Roots and what each anchors (and nothing else anchors):
 *   g_chain -> a -> b -> target         struct node, next at offset 8
 *   g_registry.head -> node              a struct global: root symbol g_registry+8
 *   g_config -> config -> entries -> entry -> entry, entry->key (char *: type
 *       unknown), entry->opaque (void *: unknown), config->name (char *)
 *   g_tree -> 15 tnodes (left 8, right 16), g_tree_alias -> node 5 as well,
 *       so node 5's subtree is not dominated by its tree parent
 *   g_cursor -> 100 bytes into a buffer (interior pointer only)
 *   g_big -> an mmapped chunk, g_guards[] -> guards ending each thread arena
 *   main's TLS tls_ptr -> tls_obj; thread 3's TLS tls_ptr -> tls_obj
 *   thread 1's frame hold_on_stack(): local held -> blob -> child (offset 8)
 *   thread 2's r12 (only there: it waits in a raw futex syscall) -> obj -> child
 * Leaked:
 *   cluster A head -> a -> b; cluster B head -> a, head -> c (offset 8)
 *   cycle x <-> y (no head); head h -> c1 <-> c2; s -> s (self loop: a head)
 *   a leaked mmapped chunk
 *   nodes of a hash table whose bucket array was freed (tcache) and of one whose
 *     bucket array was freed into the unsorted bin: the stale bucket words must
 *     not anchor them
 *   traps: the chunk before a fastbin head and the chunk before the unsorted
 *     chunk (main_arena's bin pointers point at their last word), the main
 *     arena's and thread 1's arena's last chunks (malloc_state.top points at
 *     their last word): allocator metadata must anchor nothing
 * Free: 7 + 3 chunks of 32 (tcache, fastbin), 7 + 2 of 48, 3 of 112 (tcache),
 *   some holding stale pointers to leaked heads (which stay unreferenced).
 */
#include "leak_truth.h"

struct node {
	int id;
	struct node *next;
};

struct registry {
	long magic;
	struct node *head;
};

struct entry {
	int id;
	char *key;
	struct entry *next;
	void *opaque;
};

struct config {
	int version;
	struct entry *entries;
	int nentries;
	char *name;
};

struct tnode {
	int id;
	struct tnode *left;
	struct tnode *right;
	long weight;
};

struct tls_obj {
	long tag;
	char data[40];
};

struct lnk {
	struct lnk *next;
	struct lnk *other;
};

struct hnode {
	struct hnode *next;
	long key;
	long value;
};

struct node *g_chain;
struct registry g_registry = { 0x5eed, NULL };
struct config *g_config;
struct tnode *g_tree;
struct tnode *g_tree_alias;
char *g_cursor;
void *g_big;
void *g_guards[4];
static __thread struct tls_obj *tls_ptr;

#define NTREE 15
#define SHARED 5                /* the tree node g_tree_alias also points at */

static pthread_barrier_t hold;
static volatile int ready_flag[4];
static volatile int thread_tid[4];
static int never_word;          /* thread 2 waits on it forever */

#define OFF(type, member) ((long)__builtin_offsetof(type, member))

static __attribute__((noinline)) void build_chain(void)
{
	struct node *a = malloc(sizeof(*a));
	struct node *b = malloc(sizeof(*b));
	struct node *t = malloc(sizeof(*t));
	a->id = 1, b->id = 2, t->id = 3;
	lt_startup_chunks(a);
	lt_heap_of(a);
	a->next = b, b->next = t, t->next = NULL;
	g_chain = a;
	lt_obj(a, "node", 0, 0, "chain a");
	lt_obj(b, "node", 0, 0, "chain b");
	lt_obj(t, "node", 0, 0, "chain target");
	struct node *hop[3] = { a, b, t };
	static const char *labels[3] = { "chain a", "chain b", "chain target" };
	for (int n = 0; n < 3; n++) {
		struct lt_chain *c = lt_chain(labels[n], hop[n], 1);
		lt_root_global(&c->root, &g_chain, "g_chain");
		for (int i = 0; i < n; i++)
			lt_hop(c, hop[i], OFF(struct node, next), "next");
		lt_hop(c, hop[n], -1, NULL);
	}
	struct lt_refs *r = lt_refs("chain b", b);
	lt_ref_alloc(r, a, OFF(struct node, next));

	struct node *rn = malloc(sizeof(*rn));
	rn->id = 4, rn->next = NULL;
	g_registry.head = rn;
	lt_obj(rn, "node", 0, 0, "registry node");
	struct lt_chain *c = lt_chain("registry node", rn, 1);
	lt_root_global(&c->root, &g_registry.head, "g_registry+8");
	lt_hop(c, rn, -1, NULL);
	r = lt_refs("registry node", rn);
	lt_root_global(lt_ref_root(r), &g_registry.head, "g_registry+8");
}

static __attribute__((noinline)) void build_config(void)
{
	struct config *cfg = malloc(sizeof(*cfg));
	cfg->version = 7;
	cfg->name = strdup("fixture-config");
	cfg->nentries = 3;
	struct entry *e[3];
	for (int i = 0; i < 3; i++) {
		e[i] = malloc(sizeof(struct entry));
		e[i]->id = i;
		e[i]->key = malloc(16 + 8 * i);
		snprintf(e[i]->key, 16, "key%d", i);
		e[i]->opaque = malloc(64);
		memset(e[i]->opaque, 0, 64);
	}
	for (int i = 0; i < 3; i++)
		e[i]->next = i < 2 ? e[i + 1] : NULL;
	cfg->entries = e[0];
	g_config = cfg;
	lt_obj(cfg, "config", 0, 0, "config");
	lt_obj(cfg->name, NULL, 0, 0, "config name (char *)");
	for (int i = 0; i < 3; i++) {
		lt_obj(e[i], "entry", 0, 0, "entry %d", i);
		lt_obj(e[i]->key, NULL, 0, 0, "entry %d key (char *)", i);
		lt_obj(e[i]->opaque, NULL, 0, 0, "entry %d opaque (void *)", i);
	}
	struct lt_chain *c = lt_chain("entry 2", e[2], 1);
	lt_root_global(&c->root, &g_config, "g_config");
	lt_hop(c, cfg, OFF(struct config, entries), "entries");
	lt_hop(c, e[0], OFF(struct entry, next), "next");
	lt_hop(c, e[1], OFF(struct entry, next), "next");
	lt_hop(c, e[2], -1, NULL);
	c = lt_chain("entry 1 key", e[1]->key, 1);
	lt_root_global(&c->root, &g_config, "g_config");
	lt_hop(c, cfg, OFF(struct config, entries), "entries");
	lt_hop(c, e[0], OFF(struct entry, next), "next");
	lt_hop(c, e[1], OFF(struct entry, key), "key");
	lt_hop(c, e[1]->key, -1, NULL);
	c = lt_chain("config name", cfg->name, 1);
	lt_root_global(&c->root, &g_config, "g_config");
	lt_hop(c, cfg, OFF(struct config, name), "name");
	lt_hop(c, cfg->name, -1, NULL);
}

/* retained(i): node i and every node only reachable through it: its subtree,
 * minus node SHARED's subtree for SHARED's ancestors (g_tree_alias reaches it). */
static size_t tree_retained(struct tnode **n, int i)
{
	if (i >= NTREE)
		return 0;
	size_t r = malloc_usable_size(n[i]);
	for (int c = 2 * i + 1; c <= 2 * i + 2; c++)
		if (c != SHARED)
			r += tree_retained(n, c);
	return r;
}

static __attribute__((noinline)) void build_tree(void)
{
	struct tnode *n[NTREE];
	for (int i = 0; i < NTREE; i++) {
		n[i] = malloc(sizeof(struct tnode) + 16 * (size_t)i + (i % 3) * 200);
		memset(n[i], 0, sizeof(struct tnode));
		n[i]->id = i;
		n[i]->weight = i * 10;
	}
	for (int i = 0; i < NTREE; i++) {
		n[i]->left = 2 * i + 1 < NTREE ? n[2 * i + 1] : NULL;
		n[i]->right = 2 * i + 2 < NTREE ? n[2 * i + 2] : NULL;
	}
	g_tree = n[0];
	g_tree_alias = n[SHARED];
	for (int i = 0; i < NTREE; i++) {
		lt_obj(n[i], "tnode", 0, 0, "tree node %d", i);
		lt_tree(i, i ? (i - 1) / 2 : -1, n[i], tree_retained(n, i));
	}
	// node 14: g_tree -> 0 -right-> 2 -right-> 6 -right-> 14
	struct lt_chain *c = lt_chain("tree node 14", n[14], 1);
	lt_root_global(&c->root, &g_tree, "g_tree");
	lt_hop(c, n[0], OFF(struct tnode, right), "right");
	lt_hop(c, n[2], OFF(struct tnode, right), "right");
	lt_hop(c, n[6], OFF(struct tnode, right), "right");
	lt_hop(c, n[14], -1, NULL);
	// node 12 = right child of node 5: through the alias, not through 0 -> 2
	c = lt_chain("tree node 12", n[12], 1);
	lt_root_global(&c->root, &g_tree_alias, "g_tree_alias");
	lt_hop(c, n[SHARED], OFF(struct tnode, right), "right");
	lt_hop(c, n[12], -1, NULL);
	struct lt_refs *r = lt_refs("tree node 5", n[SHARED]);
	lt_root_global(lt_ref_root(r), &g_tree_alias, "g_tree_alias");
	lt_ref_alloc(r, n[2], OFF(struct tnode, left));
}

static __attribute__((noinline)) void build_misc_anchored(void)
{
	char *buf = malloc(256);
	memset(buf, 'x', 256);
	g_cursor = buf + 100;
	lt_obj(buf, NULL, 0, 0, "interior-pointed buffer");
	lt_interior_only(buf);
	struct lt_chain *c = lt_chain("interior-pointed buffer", buf, 1);
	lt_root_global(&c->root, &g_cursor, "g_cursor");
	lt_hop(c, buf, -1, NULL);

	g_big = malloc(300000);
	memset(g_big, 0, 64);
	lt_obj(g_big, NULL, 0, 0, "anchored mmapped chunk");

	tls_ptr = malloc(sizeof(struct tls_obj));
	tls_ptr->tag = 0;
	lt_obj(tls_ptr, "tls_obj", 0, 0, "main thread tls_ptr");
	c = lt_chain("main thread tls_ptr", tls_ptr, 1);
	lt_root_tls(&c->root, &tls_ptr, truth_gettid());
	lt_hop(c, tls_ptr, -1, NULL);
	struct lt_refs *r = lt_refs("main thread tls_ptr", tls_ptr);
	lt_root_tls(lt_ref_root(r), &tls_ptr, truth_gettid());
}

static __attribute__((noinline)) void build_leaked(void)
{
	// cluster A: head -> a -> b
	struct lnk *ha = malloc(64), *aa = malloc(48), *ab = malloc(200);
	memset(ha, 0, 64), memset(aa, 0, 48), memset(ab, 0, 200);
	ha->next = aa, aa->next = ab;
	lt_obj(ha, NULL, 1, 1, "cluster A head");
	lt_obj(aa, NULL, 1, 0, "cluster A a");
	lt_obj(ab, NULL, 1, 0, "cluster A b");
	struct lt_chain *c = lt_chain("cluster A b", ab, 0);
	lt_hop(c, ha, OFF(struct lnk, next), NULL);
	lt_hop(c, aa, OFF(struct lnk, next), NULL);
	lt_hop(c, ab, -1, NULL);
	c = lt_chain("cluster A head", ha, 0);
	lt_hop(c, ha, -1, NULL);
	struct lt_refs *r = lt_refs("cluster A head", ha);
	r = lt_refs("cluster A a", aa);
	lt_ref_alloc(r, ha, OFF(struct lnk, next));

	// cluster B: head -> a, head -> c
	struct lnk *hb = malloc(1000), *ba = malloc(24), *bc = malloc(120);
	memset(hb, 0, 1000), memset(ba, 0, 24), memset(bc, 0, 120);
	hb->next = ba, hb->other = bc;
	lt_obj(hb, NULL, 1, 1, "cluster B head");
	lt_obj(ba, NULL, 1, 0, "cluster B a");
	lt_obj(bc, NULL, 1, 0, "cluster B c");
	c = lt_chain("cluster B c", bc, 0);
	lt_hop(c, hb, OFF(struct lnk, other), NULL);
	lt_hop(c, bc, -1, NULL);

	// a cycle with no head
	struct lnk *x = malloc(40), *y = malloc(56);
	memset(x, 0, 40), memset(y, 0, 56);
	x->next = y, y->next = x;
	lt_obj(x, NULL, 1, 0, "cycle x");
	lt_obj(y, NULL, 1, 0, "cycle y");
	lt_chain("cycle x", x, 0);
	r = lt_refs("cycle x", x);
	lt_ref_alloc(r, y, OFF(struct lnk, next));

	// a head in front of a cycle
	struct lnk *h = malloc(72), *c1 = malloc(32), *c2 = malloc(32);
	memset(h, 0, 72), memset(c1, 0, 32), memset(c2, 0, 32);
	h->next = c1, c1->next = c2, c2->next = c1;
	lt_obj(h, NULL, 1, 1, "cycle head h");
	lt_obj(c1, NULL, 1, 0, "headed cycle c1");
	lt_obj(c2, NULL, 1, 0, "headed cycle c2");
	c = lt_chain("headed cycle c2", c2, 0);
	lt_hop(c, h, OFF(struct lnk, next), NULL);
	lt_hop(c, c1, OFF(struct lnk, next), NULL);
	lt_hop(c, c2, -1, NULL);

	// a self loop: no *other* allocation points at it, so it is a head
	struct lnk *s = malloc(48);
	memset(s, 0, 48);
	s->next = s;
	lt_obj(s, NULL, 1, 1, "self loop");
	r = lt_refs("self loop", s);
	lt_ref_alloc(r, s, OFF(struct lnk, next));

	// a leaked mmapped chunk
	void *big = malloc(200000);
	memset(big, 0, 64);
	lt_obj(big, NULL, 1, 1, "leaked mmapped chunk");
}


/* A hash table whose bucket array is freed while its nodes are dropped: the
 * nodes of each bucket's chain, leaked; the chain heads are cluster heads (the
 * stale bucket words must not count as referrers). */
struct table_spec {
	const char *name;
	size_t nbuckets, node_size;
	int nchains;
	int slots[3], len[3];
};

static __attribute__((noinline)) void make_nodes(const struct table_spec *t, struct hnode **heads)
{
	int k = 0;
	for (int i = 0; i < t->nchains; i++) {
		struct hnode *path[4];
		for (int j = 0; j < t->len[i]; j++) {
			struct hnode *n = malloc(t->node_size);
			memset(n, 0, t->node_size);
			n->key = k++;
			path[j] = n;
			if (j)
				path[j - 1]->next = n;
			lt_obj(n, NULL, 1, j == 0, "%s node %d.%d", t->name, i, j);
			if (j == 0) {
				struct lt_refs *r = lt_refs("", n);
				snprintf(r->label, sizeof(r->label), "%s head %d", t->name, i);
				continue;
			}
			struct lt_chain *c = lt_chain("", n, 0);
			snprintf(c->label, sizeof(c->label), "%s node %d.%d", t->name, i, j);
			for (int h = 0; h < j; h++)
				lt_hop(c, path[h], OFF(struct hnode, next), NULL);
			lt_hop(c, n, -1, NULL);
		}
		heads[i] = path[0];
	}
}

static __attribute__((noinline)) void fill_table(const struct table_spec *t, struct hnode **b,
						 struct hnode **heads, const char *expect)
{
	struct lt_stale *st = lt_stale(t->name, b, expect);
	for (int i = 0; i < t->nchains; i++) {
		b[t->slots[i]] = heads[i];
		lt_stale_word(st, t->slots[i] * 8L, heads[i]);
	}
}

/* The free lists, the stale bucket arrays and the main-arena traps: the last
 * thing in the main arena (after the threads' DTVs). */
static __attribute__((noinline)) void build_free_lists(void)
{
	// Buckets 0 and 1 hold the tcache links after free(), 0-3 the bin links.
	static const struct table_spec tspec = { "tcache-table", 16, 24, 3, { 3, 7, 12 }, { 2, 1, 3 } };
	static const struct table_spec uspec = { "unsorted-table", 256, 40, 3, { 10, 100, 255 }, { 1, 2, 1 } };
	struct hnode *theads[3], *uheads[3];

	make_nodes(&tspec, theads);
	struct hnode **tb = calloc(tspec.nbuckets, sizeof(*tb));
	fill_table(&tspec, tb, theads, "tcache");
	make_nodes(&uspec, uheads);

	void *t32[7], *f32[3], *t48[7], *f48[2], *t112[3];
	for (int i = 0; i < 7; i++)
		t32[i] = malloc(24);
	f32[0] = malloc(24);
	f32[1] = malloc(24);
	void *trap_fast = malloc(88);
	f32[2] = malloc(24);    // the fastbin head at the dump: trap_fast is right before it
	for (int i = 0; i < 7; i++)
		t48[i] = malloc(40);
	f48[0] = malloc(40);
	f48[1] = malloc(40);
	for (int i = 0; i < 3; i++)
		t112[i] = malloc(100);
	memset(trap_fast, 0, 88);
	lt_obj(trap_fast, NULL, 1, 1, "trap: before the fastbin head");

	void *trap_unsorted = malloc(120);
	struct hnode **ub = calloc(uspec.nbuckets, sizeof(*ub));
	void *trap_top = malloc(56);   // the main arena's last chunk: main_arena.top points into it
	memset(trap_unsorted, 0, 120);
	memset(trap_top, 0, 56);
	lt_obj(trap_unsorted, NULL, 1, 1, "trap: before the unsorted chunk");
	lt_obj(trap_top, NULL, 1, 1, "trap: main arena top");
	fill_table(&uspec, ub, uheads, "unsorted");

	// Stale pointers to leaked heads in chunks about to be freed (past the
	// words the free lists overwrite): they must not make the heads referenced.
	((void **)f32[0])[1] = uheads[0];
	((void **)f48[0])[2] = uheads[2];
	((void **)t112[0])[5] = theads[1];
	((void **)t48[3])[3] = theads[2];

	for (int i = 0; i < 7; i++)
		lt_free(t32[i], "tcache");
	for (int i = 0; i < 3; i++)
		lt_free(f32[i], "fastbin");
	for (int i = 0; i < 7; i++)
		lt_free(t48[i], "tcache");
	for (int i = 0; i < 2; i++)
		lt_free(f48[i], "fastbin");
	for (int i = 0; i < 3; i++)
		lt_free(t112[i], "tcache");
	lt_free(tb, "tcache");
	lt_free(ub, "unsorted");
}

/* Thread 1: an object held only by a local of this frame while it waits. */
static __attribute__((noinline)) void hold_on_stack(void)
{
	void *held = malloc(96);
	truth_thread_tcache(held, 1);
	truth_thread_dtv(1);
	lt_heap_of(held);
	lt_find_main_arena(held);
	void *child = malloc(40);
	memset(held, 0, 96);
	memset(child, 0, 40);
	((void **)held)[1] = child;
	void *trap = malloc(56);        // this arena's last chunk: its malloc_state.top points into it
	memset(trap, 0, 56);
	int tid = truth_gettid();
	lt_obj(held, NULL, 0, 0, "stack-held");
	lt_obj(child, NULL, 0, 0, "stack-held child");
	lt_obj(trap, NULL, 1, 1, "trap: thread 1 arena top");
	struct lt_chain *c = lt_chain("stack-held", held, 1);
	lt_root_stack(&c->root, &held, tid, "hold_on_stack");
	lt_hop(c, held, -1, NULL);
	c = lt_chain("stack-held child", child, 1);
	lt_root_stack(&c->root, &held, tid, "hold_on_stack");
	lt_hop(c, held, 8, NULL);
	lt_hop(c, child, -1, NULL);
	struct lt_refs *r = lt_refs("stack-held", held);
	lt_root_stack(lt_ref_root(r), &held, tid, "hold_on_stack");
	c = NULL, r = NULL, child = NULL, trap = NULL;
	thread_tid[1] = tid;
	lt_scrub_stack();
	LT_CLEAR_REGS();
	ready_flag[1] = 1;
	pthread_barrier_wait(&hold);
	__asm__ volatile("" ::"m"(held));
}

/* Thread 2: an object held only by r12 while the thread sleeps in a raw futex
 * syscall (no function call could spill the callee-saved register).  Before
 * the asm the pointer only exists complemented (not a pointer) in this frame. */
static __attribute__((noinline)) void hold_in_register(void)
{
	void *p = malloc(72);
	truth_thread_tcache(p, 2);
	truth_thread_dtv(2);
	lt_heap_of(p);
	void *q = malloc(32);
	memset(p, 0, 72);
	memset(q, 0, 32);
	*(void **)p = q;
	g_guards[2] = malloc(24);       // the arena's last chunk, anchored by a global
	int tid = truth_gettid();
	lt_obj(p, NULL, 0, 0, "register-held");
	lt_obj(q, NULL, 0, 0, "register-held child");
	lt_obj(g_guards[2], NULL, 0, 0, "guard: thread 2 arena top");
	struct lt_chain *c = lt_chain("register-held", p, 1);
	lt_root_register(&c->root, tid, "r12");
	lt_hop(c, p, -1, NULL);
	c = lt_chain("register-held child", q, 1);
	lt_root_register(&c->root, tid, "r12");
	lt_hop(c, p, 0, NULL);
	lt_hop(c, q, -1, NULL);
	struct lt_refs *r = lt_refs("register-held", p);
	lt_root_register(lt_ref_root(r), tid, "r12");
	uintptr_t enc = LT_ENC(p);
	int *word = &never_word;
	volatile int *flag = &ready_flag[2];
	p = NULL, q = NULL, c = NULL, r = NULL;
	thread_tid[2] = tid;
	lt_scrub_stack();
	__asm__ volatile(
		"mov %[enc], %%r12\n\t"
		"not %%r12\n\t"
		"xor %%ebx, %%ebx\n\t"
		"xor %%r8d, %%r8d\n\t"
		"xor %%r9d, %%r9d\n\t"
		"xor %%r13d, %%r13d\n\t"
		"xor %%r14d, %%r14d\n\t"
		"xor %%r15d, %%r15d\n\t"
		"pxor %%xmm0, %%xmm0\n\tpxor %%xmm1, %%xmm1\n\tpxor %%xmm2, %%xmm2\n\t"
		"pxor %%xmm3, %%xmm3\n\tpxor %%xmm4, %%xmm4\n\tpxor %%xmm5, %%xmm5\n\t"
		"mov %[word], %%rdi\n\t"
		"mov %[flag], %%rax\n\t"
		"movl $1, (%%rax)\n\t"
		"1:\n\t"
		"mov %[nr], %%eax\n\t"
		"mov %[op], %%esi\n\t"
		"xor %%edx, %%edx\n\t"
		"xor %%r10d, %%r10d\n\t"
		"syscall\n\t"
		"jmp 1b\n\t"
		:
		: [enc] "m"(enc), [word] "m"(word), [flag] "m"(flag), [nr] "i"(SYS_futex),
		  [op] "i"(FUTEX_WAIT_PRIVATE)
		: "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14",
		  "r15", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "memory");
	__builtin_unreachable();
}

/* Thread 3: an object held only by this thread's tls_ptr. */
static __attribute__((noinline)) void hold_in_tls(void)
{
	tls_ptr = malloc(sizeof(struct tls_obj));
	truth_thread_tcache(tls_ptr, 3);
	truth_thread_dtv(3);
	lt_heap_of(tls_ptr);
	memset(tls_ptr, 0, sizeof(struct tls_obj));
	g_guards[3] = malloc(24);
	int tid = truth_gettid();
	lt_obj(tls_ptr, "tls_obj", 0, 0, "thread 3 tls_ptr");
	lt_obj(g_guards[3], NULL, 0, 0, "guard: thread 3 arena top");
	struct lt_chain *c = lt_chain("thread 3 tls_ptr", tls_ptr, 1);
	lt_root_tls(&c->root, &tls_ptr, tid);
	lt_hop(c, tls_ptr, -1, NULL);
	struct lt_refs *r = lt_refs("thread 3 tls_ptr", tls_ptr);
	lt_root_tls(lt_ref_root(r), &tls_ptr, tid);
	c = NULL, r = NULL;
	thread_tid[3] = tid;
	lt_scrub_stack();
	LT_CLEAR_REGS();
	ready_flag[3] = 1;
	pthread_barrier_wait(&hold);
}

static void *thread_main(void *arg)
{
	int no = (int)(intptr_t)arg;
	int local = no;
	truth_thread(&local);
	if (no == 1)
		hold_on_stack();
	else if (no == 2)
		hold_in_register();
	else
		hold_in_tls();
	return NULL;
}

int main(int argc, char **argv)
{
	const char *path = truth_path(argc, argv);
	int local = 0;
	truth_set_name("leaks");
	truth_thread(&local);
	build_chain();
	build_config();
	build_tree();
	build_misc_anchored();
	build_leaked();

	// One thread at a time, each done with its mallocs before the next
	// starts, so each gets its own arena.
	pthread_t t[3];
	pthread_barrier_init(&hold, NULL, 3);
	for (int i = 1; i <= 3; i++) {
		if (pthread_create(&t[i - 1], NULL, thread_main, (void *)(intptr_t)i))
			truth_die("pthread_create failed");
		while (!ready_flag[i])
			sched_yield();
		lt_wait_sleeping(thread_tid[i]);
	}
	truth_set_arenas(4);
	build_free_lists();
	lt_write(path);
	lt_scrub_stack();
	LT_CLEAR_REGS();
	dump_here();
	truth_finish(argc, argv);
	return 0;
}
