// leaks_cpp.cc - the C++ leak fixture (issue 4): objects with vtables (a base,
// a derived class, a class in a namespace, template instances) allocated with
// new, some anchored by globals, some leaked; heapscope must name them by
// their vtable ("vtable for X" -> X, as c++filt prints it) with or without
// debug info, and name the members of the hops in a chain from DWARF.
//
// Anchored: g_base -> Derived (declared Base *: the vtable wins);
//   g_widget -> app::Widget -parent-> app::Widget; g_holder -> Holder<int>
//   -next-> Holder<int>; g_plain -> Plain (no vtable: DWARF names it).
// Leaked: Derived -peer-> Derived, a lone Derived, app::Widget -parent->
//   app::Widget, Holder<int>, Holder<double>, Base, Plain (unknown type), and
//   the main arena's last chunk (a Derived: main_arena.top points into it).
// Freed: deleted objects in the tcache and fastbins, an array in the unsorted
// bin (its fd gives main_arena for the truth).
// Shapes (the same as leaks.c has, in C++): g_cpp_tree -> a tree of 7
//   TreeNode (a vtable, left/right, sizes 16*i bytes apart: retained sizes are
//   subtree sums); g_cpp_cursor -> 100 bytes into a char buffer (an interior
//   pointer only); a leaked headless cycle x <-peer-> y of Derived.
// Shared: g_share[0..3] -> four Share; the first two -> s1, the last two ->
//   s2 (.next), s1 and s2 -> s3 (.next): no root alone keeps s1, s2 or s3,
//   and s3's referrers are shared themselves (top's "shared: ..." owners).
#include <fcntl.h>
#include <malloc.h>
#include <new>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

// g++ predefines _GNU_SOURCE; truth.h defines it again (the headers are in).
#undef _GNU_SOURCE
extern "C" {
#include "leak_truth.h"
}

class Base {
public:
	virtual ~Base();
	long base_tag = 1;
};
Base::~Base() {}

class Derived : public Base {
public:
	~Derived() override;
	Derived *peer = nullptr;
	char payload[40] = {};
};
Derived::~Derived() {}

namespace app {
class Widget {
public:
	virtual void draw();
	virtual ~Widget();
	Widget *parent = nullptr;
	int w = 0, h = 0;
};
void Widget::draw() {}
Widget::~Widget() {}
} // namespace app

template <typename T> class Holder : public Base {
public:
	T value{};
	Holder *next = nullptr;
};

struct Plain {
	long a, b;
	Plain *next;
};

class TreeNode {
public:
	virtual ~TreeNode();
	TreeNode *left = nullptr, *right = nullptr;
	long id = 0;
};
TreeNode::~TreeNode() {}

Base *g_base;
app::Widget *g_widget;
Holder<int> *g_holder;
Plain *g_plain;
TreeNode *g_cpp_tree;

struct Share {
	Share *next;
	char tag[200];          // a size no other allocation has: nothing is inferred by it
};
Share *g_share[4];
char *g_cpp_cursor;

#define OFF(type, member) ((long)__builtin_offsetof(type, member))

static __attribute__((noinline)) void build_anchored()
{
	Derived *d = new Derived;
	lt_startup_chunks(d);
	lt_heap_of(d);
	g_base = d;
	lt_obj(d, "Derived", 0, 0, "c++ anchored Derived (as Base *)");
	struct lt_chain *c = lt_chain("anchored Derived", d, 1);
	lt_root_global(&c->root, &g_base, "g_base");
	lt_hop(c, d, -1, NULL);

	app::Widget *w = new app::Widget, *parent = new app::Widget;
	w->parent = parent;
	g_widget = w;
	lt_obj(w, "app::Widget", 0, 0, "c++ anchored Widget");
	lt_obj(parent, "app::Widget", 0, 0, "c++ anchored Widget parent");
	c = lt_chain("anchored Widget parent", parent, 1);
	lt_root_global(&c->root, &g_widget, "g_widget");
	lt_hop(c, w, OFF(app::Widget, parent), "parent");
	lt_hop(c, parent, -1, NULL);

	Holder<int> *h1 = new Holder<int>, *h2 = new Holder<int>;
	h1->next = h2;
	g_holder = h1;
	lt_obj(h1, "Holder<int>", 0, 0, "c++ anchored Holder<int>");
	lt_obj(h2, "Holder<int>", 0, 0, "c++ anchored Holder<int> next");
	c = lt_chain("anchored Holder<int> next", h2, 1);
	lt_root_global(&c->root, &g_holder, "g_holder");
	lt_hop(c, h1, OFF(Holder<int>, next), "next");
	lt_hop(c, h2, -1, NULL);
	struct lt_refs *r = lt_refs("anchored Holder<int> next", h2);
	lt_ref_alloc(r, h1, OFF(Holder<int>, next));

	Plain *p = new Plain();
	g_plain = p;
	lt_obj(p, "Plain", 0, 0, "anchored Plain (DWARF only)");
}

static __attribute__((noinline)) void build_leaked()
{
	Derived *d1 = new Derived, *d2 = new Derived, *d3 = new Derived;
	d1->peer = d2;
	lt_obj(d1, "Derived", 1, 1, "c++ leaked Derived head");
	lt_obj(d2, "Derived", 1, 0, "c++ leaked Derived peer");
	lt_obj(d3, "Derived", 1, 1, "c++ leaked lone Derived");
	struct lt_chain *c = lt_chain("leaked Derived peer", d2, 0);
	lt_hop(c, d1, OFF(Derived, peer), "peer");
	lt_hop(c, d2, -1, NULL);

	app::Widget *w1 = new app::Widget, *w2 = new app::Widget;
	w2->parent = w1;
	lt_obj(w2, "app::Widget", 1, 1, "c++ leaked Widget head");
	lt_obj(w1, "app::Widget", 1, 0, "c++ leaked Widget parent");
	c = lt_chain("leaked Widget parent", w1, 0);
	lt_hop(c, w2, OFF(app::Widget, parent), "parent");
	lt_hop(c, w1, -1, NULL);

	Holder<int> *hi = new Holder<int>;
	Holder<double> *hd = new Holder<double>;
	Base *b = new Base;
	Plain *p = new Plain();
	lt_obj(hi, "Holder<int>", 1, 1, "c++ leaked Holder<int>");
	lt_obj(hd, "Holder<double>", 1, 1, "c++ leaked Holder<double>");
	lt_obj(b, "Base", 1, 1, "c++ leaked Base");
	lt_obj(p, NULL, 1, 1, "leaked Plain (no vtable, unreachable)");
}

#define NTREE 7

// retained(i): node i and its subtree (nothing else points into the tree).
static size_t tree_retained(TreeNode **n, int i)
{
	if (i >= NTREE)
		return 0;
	return malloc_usable_size(n[i]) + tree_retained(n, 2 * i + 1) + tree_retained(n, 2 * i + 2);
}

static __attribute__((noinline)) void build_shapes()
{
	TreeNode *n[NTREE];
	for (int i = 0; i < NTREE; i++) {
		n[i] = new (::operator new(sizeof(TreeNode) + 16 * (size_t)i)) TreeNode;
		n[i]->id = i;
	}
	for (int i = 0; i < NTREE; i++) {
		n[i]->left = 2 * i + 1 < NTREE ? n[2 * i + 1] : nullptr;
		n[i]->right = 2 * i + 2 < NTREE ? n[2 * i + 2] : nullptr;
	}
	g_cpp_tree = n[0];
	for (int i = 0; i < NTREE; i++) {
		lt_obj(n[i], "TreeNode", 0, 0, "c++ tree node %d", i);
		lt_tree(i, i ? (i - 1) / 2 : -1, n[i], tree_retained(n, i));
	}
	// node 6: g_cpp_tree -> 0 -right-> 2 -right-> 6
	struct lt_chain *c = lt_chain("c++ tree node 6", n[6], 1);
	lt_root_global(&c->root, &g_cpp_tree, "g_cpp_tree");
	lt_hop(c, n[0], OFF(TreeNode, right), "right");
	lt_hop(c, n[2], OFF(TreeNode, right), "right");
	lt_hop(c, n[6], -1, NULL);
	struct lt_refs *r = lt_refs("c++ tree node 2", n[2]);
	lt_ref_alloc(r, n[0], OFF(TreeNode, right));

	char *buf = new char[256];
	memset(buf, 'x', 256);
	g_cpp_cursor = buf + 100;
	lt_obj(buf, NULL, 0, 0, "interior-pointed char buffer");
	lt_interior_only(buf);
	c = lt_chain("interior-pointed char buffer", buf, 1);
	lt_root_global(&c->root, &g_cpp_cursor, "g_cpp_cursor");
	lt_hop(c, buf, -1, NULL);

	// a leaked cycle with no head: each is pointed at by the other
	Derived *x = new Derived, *y = new Derived;
	x->peer = y;
	y->peer = x;
	lt_obj(x, "Derived", 1, 0, "c++ cycle x");
	lt_obj(y, "Derived", 1, 0, "c++ cycle y");
	lt_chain("c++ cycle x", x, 0);
	r = lt_refs("c++ cycle x", x);
	lt_ref_alloc(r, y, OFF(Derived, peer));
}

static __attribute__((noinline)) void build_shared()
{
	Share *s[3];
	for (int i = 0; i < 3; i++) {
		s[i] = new Share();
		snprintf(s[i]->tag, sizeof(s[i]->tag), "s%d", i + 1);
		lt_obj(s[i], "Share", 0, 0, "shared s%d", i + 1);
	}
	s[0]->next = s[1]->next = s[2];
	for (int i = 0; i < 4; i++) {
		g_share[i] = new Share();
		g_share[i]->next = s[i / 2];
		lt_obj(g_share[i], "Share", 0, 0, "g_share[%d]", i);
	}
}

static __attribute__((noinline)) void build_freed()
{
	Derived *t[9];
	app::Widget *w[3];
	for (int i = 0; i < 9; i++)
		t[i] = new Derived;
	for (int i = 0; i < 3; i++)
		w[i] = new app::Widget;
	char *unsorted = new char[2000];
	Derived *last = new Derived;   // the main arena's last chunk: main_arena.top points into it
	lt_obj(last, "Derived", 1, 1, "c++ trap: main arena top");
	// operator delete runs the destructor (the vtable word stays), then free()
	for (int i = 0; i < 9; i++)
		lt_freed(t[i], i < 7 ? "tcache" : "fastbin");
	for (int i = 0; i < 3; i++)
		lt_freed(w[i], "tcache");
	for (int i = 0; i < 9; i++)
		delete t[i];
	for (int i = 0; i < 3; i++)
		delete w[i];
	lt_freed(unsorted, "unsorted");
	delete[] unsorted;
	lt_main_arena_from_unsorted(unsorted);
}

int main(int argc, char **argv)
{
	const char *path = truth_path(argc, argv);
	int local = 0;
	truth_set_name("leaks_cpp");
	truth_thread(&local);
	build_anchored();
	build_leaked();
	build_shapes();
	build_shared();
	build_freed();
	truth_set_arenas(1);
	lt_write(path);
	lt_scrub_stack();
	LT_CLEAR_REGS();
	dump_here();
	truth_finish(argc, argv);
	return 0;
}
