/* ctypes_many.c - the certain types of a program with many struct types
 * (4,096; big C programs have as many: CPython's libpython, a database).
 * Each struct sXYZ (XYZ in hex, 000 to fff) has a global pointer gXYZ, and
 * the types stage makes a layout for every struct a global points at, null
 * or not; three of them point at a block each, typed for certain through
 * it.  The layouts are found in a hash index: while its size was no power of
 * two, masking the probe went round a cycle of full slots for ever, and every
 * command that types (leaks, histogram, top) hung on such programs.  One
 * leaked block (an s123, no pointer set) fits no layout: unknown.
 * And g_cells -> one block of 70,000 struct cells, whose first and last
 * point at an s456 each (the others null): the types stage visits every
 * element of a block (it stopped at 65,536: the last s456 stayed unknown).
 * And g_table, a global array of 5,000 pointers to s789, the first and the
 * last set: a global array is visited element by element (flattened whole,
 * it stopped at 4,096 pointers).
 */
#include "leak_truth.h"

/* Members after (self, v) by the last digit: DIEs of 16 sizes, so that
 * their offsets are in no regular steps (evenly spaced keys spread evenly
 * over any hash index: no collision would be tested). */
#define BODY_0
#define BODY_1 long a;
#define BODY_2 long a, b;
#define BODY_3 char c;
#define BODY_4 long a; char c;
#define BODY_5 int i, j, k;
#define BODY_6 long alpha_beta_gamma;
#define BODY_7 short s;
#define BODY_8 long a, b, c, d;
#define BODY_9 void *q;
#define BODY_a double x;
#define BODY_b long a; int i;
#define BODY_c char name[8];
#define BODY_d long a, b, c;
#define BODY_e unsigned u;
#define BODY_f long long ll, mm;
#define DEF(n, d) struct s##n { struct s##n *self; long v; BODY_##d }; struct s##n *g##n;
/* Two of the same: a macro is not expanded again inside its own expansion. */
#define X16(M, P) M(P##0, 0) M(P##1, 1) M(P##2, 2) M(P##3, 3) M(P##4, 4) M(P##5, 5) M(P##6, 6) M(P##7, 7) \
	M(P##8, 8) M(P##9, 9) M(P##a, a) M(P##b, b) M(P##c, c) M(P##d, d) M(P##e, e) M(P##f, f)
#define Y16(M, P) M(P##0, 0) M(P##1, 1) M(P##2, 2) M(P##3, 3) M(P##4, 4) M(P##5, 5) M(P##6, 6) M(P##7, 7) \
	M(P##8, 8) M(P##9, 9) M(P##a, a) M(P##b, b) M(P##c, c) M(P##d, d) M(P##e, e) M(P##f, f)
#define DEF16(a, d) X16(DEF, a)
#define DEF256(a, _) Y16(DEF16, a)
DEF256(0, _) DEF256(1, _) DEF256(2, _) DEF256(3, _) DEF256(4, _) DEF256(5, _) DEF256(6, _) DEF256(7, _)
DEF256(8, _) DEF256(9, _) DEF256(a, _) DEF256(b, _) DEF256(c, _) DEF256(d, _) DEF256(e, _) DEF256(f, _)

#define NCELLS 70000
struct cell { struct s456 *p; long v; };
struct cell *g_cells;
#define NTABLE 5000
struct s789 *g_table[NTABLE];

static __attribute__((noinline)) void build_anchored(void)
{
	g000 = calloc(1, sizeof(*g000));
	g7a5 = calloc(1, sizeof(*g7a5));
	gfff = calloc(1, sizeof(*gfff));
	lt_startup_chunks(g000);
	lt_heap_of(g000);
	lt_obj(g000, "s000", 0, 0, "first");
	lt_obj(g7a5, "s7a5", 0, 0, "middle");
	lt_obj(gfff, "sfff", 0, 0, "last");
	g_cells = calloc(NCELLS, sizeof(*g_cells));
	g_cells[0].p = calloc(1, sizeof(struct s456));
	g_cells[NCELLS - 1].p = calloc(1, sizeof(struct s456));
	lt_obj(g_cells, "cell", 0, 0, "cells");
	lt_obj(g_cells[0].p, "s456", 0, 0, "first cell's");
	lt_obj(g_cells[NCELLS - 1].p, "s456", 0, 0, "last cell's");
	g_table[0] = calloc(1, sizeof(struct s789));
	g_table[NTABLE - 1] = calloc(1, sizeof(struct s789));
	lt_obj(g_table[0], "s789", 0, 0, "first in the table");
	lt_obj(g_table[NTABLE - 1], "s789", 0, 0, "last in the table");
}

static __attribute__((noinline)) void build_leaked(void)
{
	struct s123 *p = calloc(1, sizeof(*p));
	p->v = 2;
	lt_obj_inferred(p, NULL, 1, "leaked s123");
	p = NULL;
}

int main(int argc, char **argv)
{
	int local = 0;
	const char *path = lt_begin(argc, argv, "ctypes_many", &local);
	build_anchored();
	// main_arena, for the fixture's gdb check: a chunk alone in the unsorted
	// bin (the leaked block after it keeps it from top).
	void *big = malloc(1500);
	build_leaked();
	lt_free_unsorted(big);
	big = NULL;
	LT_DUMP(path, 1, argc, argv);
	return 0;
}
