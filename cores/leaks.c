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
	lt_startup_chunks(a);
	lt_heap_of(a);
	struct node *b = malloc(sizeof(*b));
	struct node *t = malloc(sizeof(*t));
	a->id = 1, b->id = 2, t->id = 3;
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

/* A hash table whose bucket array is freed while its nodes are dropped.
 * Buckets below first_slot are overwritten by the free list links. */
static __attribute__((noinline)) void *build_table(const char *name, size_t nbuckets, const int *slots,
						   const int *chain_len, int nchains, const char *expect)
{
	struct hnode **b = calloc(nbuckets, sizeof(*b));
	struct lt_stale *st = lt_stale(name, b, expect);
	int k = 0;
	for (int i = 0; i < nchains; i++) {
		struct hnode *prev = NULL;
		for (int j = 0; j < chain_len[i]; j++) {
			struct hnode *n = malloc(name[0] == 't' ? 24 : 40);
			n->key = k++, n->value = 0, n->next = NULL;
			if (prev)
				prev->next = n;
			else
				b[slots[i]] = n;
			lt_obj(n, NULL, 1, prev == NULL, "%s node %d.%d", name, i, j);
			if (prev) {
				struct lt_chain *c = lt_chain("stale-table node", n, 0);
				snprintf(c->label, sizeof(c->label), "%s node %d.%d", name, i, j);
				lt_hop(c, prev, OFF(struct hnode, next), NULL);
				lt_hop(c, n, -1, NULL);
			} else {
				struct lt_refs *r = lt_refs("stale-table head", n);
				snprintf(r->label, sizeof(r->label), "%s head %d (refs: none)", name, i);
			}
			prev = n;
		}
		lt_stale_word(st, slots[i] * 8L, b[slots[i]]);
	}
	return b;
}

/* The free lists, the stale arrays and the traps, last in the main arena. */
static __attribute__((noinline)) void build_free_lists(void)
{
	static const int tslots[3] = { 3, 7, 12 }, tlen[3] = { 2, 1, 3 };
	static const int uslots[3] = { 10, 100, 255 }, ulen[3] = { 1, 2, 1 };
	void *tbuckets = build_table("tcache-table", 16, tslots, tlen, 3, "tcache");
	void *ubuckets_nodes_first = build_table("unsorted-table", 0, NULL, NULL, 0, "none");
	(void)ubuckets_nodes_first;

	void *t32[7], *f32[3], *t48[7], *f48[2], *t112[3];
	struct lnk *leak_heads[2];
	leak_heads[0] = NULL;
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

	// unsorted: a 2048-byte bucket array between a trap and the last chunk
	static const int dummy = 0;
	(void)dummy;
	void *trap_unsorted = malloc(120);
	memset(trap_unsorted, 0, 120);
	lt_obj(trap_unsorted, NULL, 1, 1, "trap: before the unsorted chunk");
	void *ubuckets = NULL;
	{
		// the nodes were allocated before the array on purpose: the array must
		// sit between the two traps
		struct hnode *m[4];
		for (int i = 0; i < 4; i++) {
			m[i] = malloc(40);
			m[i]->key = 100 + i, m[i]->value = 0, m[i]->next = NULL;
		}
		m[1]->next = m[2];
		// move the array after the nodes: allocate it now
		void *trap_between = malloc(24);
		memset(trap_between, 0, 24);
		lt_obj(trap_between, NULL, 1, 1, "trap: between");
		(void)trap_between;
		ubuckets = NULL;
		(void)ubuckets;
		(void)m;
	}
	(void)tbuckets;
	(void)t32, (void)f32, (void)t48, (void)f48, (void)t112, (void)leak_heads, (void)uslots, (void)ulen;
}

int main(int argc, char **argv)
{
	(void)build_free_lists;
	(void)argc, (void)argv;
	return 0;
}
