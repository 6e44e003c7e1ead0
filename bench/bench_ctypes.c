/* bench_ctypes.c - a C heap for timing type inference (issue 14): COUNT
 * allocations, a fifth of them typed for certain (lists held by globals of
 * struct type), the rest leaked clusters of the same structs that only
 * inference can type (lists of `struct item`, trees of `struct tnode` with
 * payloads).  Stops in dump_here(), where bench/ctypes.sh takes a core.
 *
 * Usage: bench_ctypes COUNT
 */
#include <stdio.h>
#include <stdlib.h>

struct item { long id; struct item *next; long v[4]; };
struct payload { long key; char text[40]; };
struct tnode { struct tnode *left, *right; struct payload *pl; long id; };

struct item *g_items;
struct tnode *g_tree;

__attribute__((noinline)) void dump_here(void) { __asm__ volatile("" ::: "memory"); }

static struct tnode *tree(long *n, int depth)
{
	if (depth == 0 || *n <= 0)
		return NULL;
	struct tnode *t = calloc(1, sizeof(*t));
	struct payload *p = calloc(1, sizeof(*p));
	p->key = *n;
	t->pl = p;
	t->id = (*n)--;
	*n -= 1;
	t->left = tree(n, depth - 1);
	t->right = tree(n, depth - 1);
	return t;
}

int main(int argc, char **argv)
{
	long count = argc > 1 ? atol(argv[1]) : 1000000;
	long typed = count / 5, n;
	for (long i = 0; i < typed / 2; i++) {      /* certain: items and a tree */
		struct item *it = calloc(1, sizeof(*it));
		it->id = i;
		it->next = g_items;
		g_items = it;
	}
	n = typed / 2;
	g_tree = tree(&n, 20);
	for (long left = count - typed, c = 0; left > 0; c++) {  /* leaked clusters */
		if (c % 2) {
			struct item *head = NULL;
			for (int k = 0; k < 8 && left > 0; k++, left--) {
				struct item *it = calloc(1, sizeof(*it));
				it->id = left;
				it->next = head;
				head = it;
			}
		} else {
			long m = 30;
			left -= 30 - (tree(&m, 4) ? m : 0);
		}
	}
	dump_here();
	return 0;
}
