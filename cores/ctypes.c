/* ctypes.c - the C type inference fixture (issue 14): leaked clusters whose
 * types no typed pointer gives, but which the truth knows ("inferred" in
 * leak_truth.h's objects; "type" stays what a typed pointer must give).
 *
 * Anchored, typed for certain from globals: g_nodes -> 3 nodes (struct node,
 * next at +8), g_rev -> a rev (next at +0), g_tree -> one tnode (no children,
 * no payload), g_big -> a big (peer NULL, first NULL).
 * Leaked:
 *   a 5-node list and a 3-node cycle of struct node        (layout, then field)
 *   a 2-rev list: rev has node's size but its pointer at +0 (layout: rev)
 *   a 7-tnode tree, each with a payload, each with a blob  (tnode by layout;
 *       payload and blob only through fields: no typed instance anywhere)
 *   a big <-> big cycle, each big -> a leaked node
 * Decoys that must stay unknown:
 *   3 pairs (node's size, no pointers), 2 quads (tnode's size, no pointers),
 *   a holder (node's layout, but its pointer at +8 points at the anchored
 *   rev: a certain block of another type).
 * Last, at the heap's end: g_late -> 5 more nodes, the first with a heap
 * address in its first word; and a leaked block that fits node only as that
 * instance shows it (a heap address at +0), with the node it points at.
 * Inference learns node from its instances at both ends of the heap
 * (issue 12: in parts, merged in block order).  Then two leaked tnodes that
 * share a payload: a leaf (one pointer: less sure) before the other (two);
 * the payload is the first one's by field, with its confidence.
 * And anchored, g_claims -> a claims whose members a then b lead to a ca and
 * a cb, which point at one block as a pair (ca) and as a quad (cb): typed
 * for certain as the first in queue order makes it, a pair.  (Sizes of their
 * own: no other type is seen at them.)
 */
#include "leak_truth.h"

struct node { int id; struct node *next; };
struct rev { struct rev *next; long id; };
struct pair { long a, b; };
struct blob { char data[48]; };
struct payload { long key; struct blob *blob; long v[2]; };
struct tnode { int id; struct tnode *left, *right; struct payload *pl; };
struct quad { long a, b, c, d; };
struct big { struct big *peer; char name[40]; struct node *first; };
struct holder { int id; struct rev *r; };
struct ca { long tag; struct pair *p; char pad[88]; };
struct cb { long tag; struct quad *q; char pad[104]; };
struct claims { struct ca *a; struct cb *b; char pad[136]; };

struct node *g_nodes;
struct rev *g_rev;
struct tnode *g_tree;
struct big *g_big;
struct node *g_late;
struct claims *g_claims;
void *g_guard;

#define LEAK(p, inf, unref, ...) lt_obj_inferred((p), (inf), (unref), __VA_ARGS__)

static __attribute__((noinline)) void build_anchored(void)
{
	struct node *prev = NULL;
	for (int i = 0; i < 3; i++) {
		struct node *n = malloc(sizeof(*n));
		if (i == 0) {
			lt_startup_chunks(n);
			lt_heap_of(n);
		}
		n->id = i, n->next = prev, prev = n;
		lt_obj(n, "node", 0, 0, "anchored node %d", i);
	}
	g_nodes = prev;
	g_rev = malloc(sizeof(*g_rev));
	g_rev->next = NULL, g_rev->id = 7;
	lt_obj(g_rev, "rev", 0, 0, "anchored rev");
	g_tree = calloc(1, sizeof(*g_tree));
	lt_obj(g_tree, "tnode", 0, 0, "anchored tnode");
	g_big = calloc(1, sizeof(*g_big));
	lt_obj(g_big, "big", 0, 0, "anchored big");
	struct claims *cl = calloc(1, sizeof(*cl));
	cl->a = calloc(1, sizeof(*cl->a));
	cl->b = calloc(1, sizeof(*cl->b));
	void *shared = calloc(1, sizeof(struct quad) + 100);
	cl->a->p = shared;
	cl->b->q = shared;
	lt_obj(cl, "claims", 0, 0, "anchored claims");
	lt_obj(cl->a, "ca", 0, 0, "first claimant");
	lt_obj(cl->b, "cb", 0, 0, "second claimant");
	lt_obj(shared, "pair", 0, 0, "claimed block");
	g_claims = cl;
}

static struct tnode *tree(int depth, int *id)
{
	struct tnode *t = malloc(sizeof(*t));
	t->id = (*id)++;
	t->pl = malloc(sizeof(*t->pl));
	t->pl->key = t->id;
	t->pl->blob = malloc(sizeof(struct blob));
	memset(t->pl->blob, 'b', sizeof(struct blob));
	t->pl->v[0] = t->pl->v[1] = 0;
	t->left = depth ? tree(depth - 1, id) : NULL;
	t->right = depth ? tree(depth - 1, id) : NULL;
	LEAK(t, "~tnode", t->id == 0, "tnode");
	LEAK(t->pl, "~payload", 0, "payload");
	LEAK(t->pl->blob, "~blob", 0, "blob");
	return t;
}

static __attribute__((noinline)) void build_leaked(void)
{
	struct node *list = NULL;
	for (int i = 0; i < 5; i++) {
		struct node *n = malloc(sizeof(*n));
		n->id = 100 + i, n->next = list, list = n;
	}
	for (struct node *n = list; n; n = n->next)
		LEAK(n, "~node", n == list, "list node");
	struct node *c[3];
	for (int i = 0; i < 3; i++)
		c[i] = malloc(sizeof(*c[i])), c[i]->id = 200 + i;
	for (int i = 0; i < 3; i++) {
		c[i]->next = c[(i + 1) % 3];
		LEAK(c[i], "~node", 0, "cycle node");
	}
	struct rev *r1 = malloc(sizeof(*r1)), *r2 = malloc(sizeof(*r2));
	r1->next = r2, r1->id = 1, r2->next = NULL, r2->id = 2;
	LEAK(r1, "~rev", 1, "rev head");
	LEAK(r2, "~rev", 0, "rev tail");
	int id = 0;
	tree(2, &id);
	struct big *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	a->peer = b, b->peer = a;
	strcpy(a->name, "a"), strcpy(b->name, "b");
	a->first = malloc(sizeof(struct node)), b->first = malloc(sizeof(struct node));
	a->first->id = 300, a->first->next = NULL, b->first->id = 301, b->first->next = NULL;
	LEAK(a, "~big", 0, "big a");
	LEAK(b, "~big", 0, "big b");
	LEAK(a->first, "~node", 0, "big a's node");
	LEAK(b->first, "~node", 0, "big b's node");
	for (int i = 0; i < 3; i++) {
		struct pair *p = malloc(sizeof(*p));
		p->a = 0x1234 + i, p->b = i;
		LEAK(p, NULL, 1, "decoy pair");
	}
	for (int i = 0; i < 2; i++) {
		struct quad *q = malloc(sizeof(*q));
		q->a = 1, q->b = 2, q->c = 3, q->d = i;
		LEAK(q, NULL, 1, "decoy quad");
	}
	struct holder *h = malloc(sizeof(*h));
	h->id = 9, h->r = g_rev;
	LEAK(h, NULL, 1, "decoy holder");
	list = NULL, a = b = NULL, h = NULL, r1 = r2 = NULL;
	memset(c, 0, sizeof(c));
}

static __attribute__((noinline)) void build_late(void)
{
	struct node *n[5];
	for (int i = 0; i < 5; i++) {
		n[i] = malloc(sizeof(*n[i]));
		n[i]->id = 400 + i;
		n[i]->next = i ? n[i - 1] : NULL;
		lt_obj(n[i], "node", 0, 0, "late node %d", i);
	}
	g_late = n[4];
	memcpy(n[0], &g_guard, sizeof(g_guard));
	void **q = malloc(sizeof(struct node)), **z = malloc(sizeof(struct node));
	q[0] = n[4], q[1] = z;
	z[0] = 0, z[1] = 0;
	LEAK(q, "~node", 1, "late leaked node");
	LEAK(z, "~node", 0, "late leaked node's next");
	q = z = NULL;
	struct tnode *leaf = calloc(1, sizeof(*leaf)), *inner = calloc(1, sizeof(*inner));
	struct payload *shared = calloc(1, sizeof(*shared));
	leaf->id = 500, leaf->pl = shared;
	inner->id = 501, inner->left = leaf, inner->pl = shared;
	shared->key = 502;
	LEAK(leaf, "~tnode", 0, "shared payload's first claimant");
	LEAK(inner, "~tnode", 1, "shared payload's second claimant");
	LEAK(shared, "~payload", 0, "shared payload");
	leaf = inner = NULL, shared = NULL;
}

int main(int argc, char **argv)
{
	int local = 0;
	const char *path = lt_begin(argc, argv, "ctypes", &local);
	build_anchored();
	build_leaked();
	// main_arena, for the fixture's gdb check: a chunk alone in the unsorted bin.
	void *big = malloc(1500);
	g_guard = malloc(24);
	lt_obj(g_guard, NULL, 0, 0, "guard");
	build_late();
	lt_free_unsorted(big);
	big = NULL;
	LT_DUMP(path, 1, argc, argv);
	return 0;
}
