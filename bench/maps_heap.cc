// maps_heap.cc - a C++ process with about 1 M allocations in containers, for
// bench/maps.sh: an unordered_map<string, Obj*> of 300,000 entries (node,
// key buffer and Obj each: 900,000 allocations), a map<long, long> of
// 100,000, and 1,000 small maps in a vector (COUNT SMALL on the command
// line change both).  Stops in dump_here().
#include <cstdio>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

struct Obj {
	long id;
	char pad[40];
};

std::unordered_map<std::string, Obj *> g_cache;
std::map<long, long> g_index;
std::vector<std::map<int, int> *> g_small;

extern "C" __attribute__((noinline)) void dump_here(void) { __asm__ volatile(""); }

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 300000;
	long small = argc > 2 ? atol(argv[2]) : 1000;
	char key[64];
	for (long i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "cache-entry-%09ld-key", i);
		Obj *o = new Obj;
		o->id = i;
		g_cache.emplace(key, o);
	}
	for (long i = 0; i < n / 3; i++)
		g_index.emplace(i * 7, i);
	for (long i = 0; i < small; i++) {
		auto *m = new std::map<int, int>;
		for (int j = 0; j < 10; j++)
			m->emplace(j, (int)i);
		g_small.push_back(m);
	}
	dump_here();
	return 0;
}
