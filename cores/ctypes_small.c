/* ctypes_small.c - the field rule past the small blocks (issue 12): a
 * second inferred-types fixture, whose layouts typed for certain point only
 * at structs of 72 bytes or more, so that inference's small bits (untyped
 * blocks under 72 bytes: too small for any of those layouts' pointers) are
 * set, and the truth says where they must not decide.
 *
 * Anchored, typed for certain from g_fan: a fan (next, m and leaf[] NULL).
 * Leaked:
 *   a fan whose next fan, mid and 20 leaves are open targets (more than the
 *       field rule matches by address: word by word)             (layout)
 *   its mid (72 bytes, as big as the smallest pointee: not small), whose
 *       tiny (16 bytes) is small, yet typed: mid's layout points at a
 *       struct under 72 bytes                                      (field)
 *   its leaves (72 bytes: not small)                               (field)
 *   its next fan, with 3 leaves and a small decoy where a leaf should be
 *       (no layout fits it: only the field rule types it); the decoy, too
 *       small for a leaf, stays unknown                            (field)
 */
#include "leak_truth.h"

#define LEAVES 20

struct tiny { long a, b; };
struct mid { long key; struct tiny *t; char pad[56]; };
struct leaf { long v; char pad[64]; };
struct fan { struct fan *next; struct mid *m; struct leaf *leaf[LEAVES]; };

struct fan *g_fan;

#define LEAK(p, inf, unref, ...) lt_obj_inferred((p), (inf), (unref), __VA_ARGS__)

static __attribute__((noinline)) void build_anchored(void)
{
	g_fan = calloc(1, sizeof(*g_fan));
	lt_startup_chunks(g_fan);
	lt_heap_of(g_fan);
	lt_obj(g_fan, "fan", 0, 0, "anchored fan");
}

static struct leaf *leaf(long v)
{
	struct leaf *l = calloc(1, sizeof(*l));
	l->v = v;
	LEAK(l, "~leaf", 0, "leaf");
	return l;
}

static __attribute__((noinline)) void build_leaked(void)
{
	struct fan *f = calloc(1, sizeof(*f));
	f->m = calloc(1, sizeof(*f->m));
	f->m->key = 1;
	f->m->t = calloc(1, sizeof(*f->m->t));
	f->m->t->a = 2;
	for (int i = 0; i < LEAVES; i++)
		f->leaf[i] = leaf(100 + i);
	LEAK(f, "~fan", 1, "wide fan");
	LEAK(f->m, "~mid", 0, "mid");
	LEAK(f->m->t, "~tiny", 0, "tiny");
	struct fan *g = calloc(1, sizeof(*g));
	f->next = g;
	for (int i = 0; i < 3; i++)
		g->leaf[i] = leaf(200 + i);
	g->leaf[3] = calloc(1, sizeof(struct tiny));
	g->leaf[3]->v = 3;
	LEAK(g, "~fan", 0, "narrow fan");
	LEAK(g->leaf[3], NULL, 0, "small decoy");
	f = g = NULL;
}

int main(int argc, char **argv)
{
	int local = 0;
	const char *path = lt_begin(argc, argv, "ctypes_small", &local);
	build_anchored();
	// main_arena, for the fixture's gdb check: a chunk alone in the unsorted
	// bin (the leaked blocks after it keep it from top).
	void *big = malloc(1500);
	build_leaked();
	lt_free_unsorted(big);
	big = NULL;
	LT_DUMP(path, 1, argc, argv);
	return 0;
}
