// maps_cpp.cc - the container fixture (issue 9): the common map containers of
// a C++/GLib program, with their truth.  Built three ways by
// cores/make-maps-cores.sh (with debug info, without, and stripped), each with
// a gdb core and a kernel core.
//
// Globals: g_sessions (unordered_map<string, Session*>, 5000 sessions, each
// owning a payload), g_ids (unordered_set<long>), g_tags (unordered_multimap
// <int, Blob*>), g_index (map<int, Blob*>), g_names (set<string>, short
// strings), g_events (multimap<long, long>), g_erased (unordered_map<long,
// long> after erasing 19,990 of 20,000: a huge bucket array), g_degenerate (a
// hash with 3 distinct values: long chains), g_reg->byid (a map inside a heap
// object), g_table (GHashTable of g_strdup'd strings), g_items (uthash), and a
// leaked unordered_map<string, Session*> nobody points at.
//
// Truth ("containers"): per container its name, kind (with DWARF) and family
// (shape only), address, anchor, count, buckets, max_chain, height, bytes
// (its own nodes, bucket arrays; uthash: table, buckets and elements),
// retained (bytes plus every allocation only it reaches: keys' string
// buffers, sessions and their payloads, blobs, GLib's strings), and a few
// chosen entries with their keys, node and value addresses.  Everything is
// measured with malloc_usable_size() and the containers' own iterators, and
// written as text into truth.h's static buffer (no pointers kept in globals).
#include <glib.h>
#include <malloc.h>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <uthash.h>

#undef _GNU_SOURCE
extern "C" {
#include "truth.h"
}

struct Session {
	long id;
	int state;
	char *payload;
};

class Blob {
public:
	virtual ~Blob();
	long n = 0;
	char data[24] = {};
};
Blob::~Blob() {}

struct BadHash {
	// Not noexcept: libstdc++ caches the hash code in each node.
	size_t operator()(long k) const { return (size_t)(k % 3); }
};

struct Registry {
	long version;
	std::map<int, Blob *> byid;
};

struct item {
	int id;
	char name[16];
	UT_hash_handle hh;
};

std::unordered_map<std::string, Session *> g_sessions;
std::unordered_set<long> g_ids;
std::unordered_multimap<int, Blob *> g_tags;
std::map<int, Blob *> g_index;
std::set<std::string> g_names;
std::multimap<long, long> g_events;
std::unordered_map<long, long> g_erased;
std::unordered_map<long, long, BadHash> g_degenerate;
Registry *g_reg;
GHashTable *g_table;
// Broken after the truth is written (bad input): a count that lies, a
// chain that loops, a tree whose leaf points back at the root.
std::unordered_map<long, long> g_bad_count;
std::unordered_set<long> g_bad_cycle;
// The main thread's thread_local map: its anchor is the variable in the TLS.
static thread_local std::unordered_map<long, long> t_cache;
std::set<long> g_bad_tree;
struct item *g_items;

static size_t usable(const void *p)
{
	return p ? malloc_usable_size((void *)p) : 0;
}

// A std::string's own heap buffer (none when the characters are in place).
static size_t string_heap(const std::string &s)
{
	const char *in_place = (const char *)&s + 2 * sizeof(void *);
	return s.data() == in_place ? 0 : usable(s.data());
}

static Session *new_session(long id)
{
	Session *s = new Session;
	s->id = id;
	s->state = (int)(id % 4);
	s->payload = (char *)malloc(40);
	memset(s->payload, 'p', 40);
	return s;
}

static size_t session_bytes(const Session *s)
{
	return usable(s) + usable(s->payload);
}

static Blob *new_blob(long n)
{
	Blob *b = new Blob;
	b->n = n;
	return b;
}

static std::string session_key(long i)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "session-%06ld-api", i);
	return std::string(buf);
}

/* GLib 2.74's struct _GHashTable (ghash.c), to read the truth (checked below). */
struct ghash_mirror {
	gsize size;
	gint mod;
	guint mask;
	guint nnodes, noccupied;
	guint have_big_keys : 1, have_big_values : 1;
	gpointer keys;
	guint *hashes;
	gpointer values;
	GHashFunc hash_func;
	GEqualFunc key_equal_func;
	gint ref_count, version;
	GDestroyNotify key_destroy_func, value_destroy_func;
};

/* Writing the truth. */

static int ncontainers;

static void begin(const char *name, const char *kind, const char *family, const void *address,
		  const char *anchor, const char *key_type, const char *value_type)
{
	truth_cat("%s\n {\"name\":\"%s\",\"kind\":\"%s\",\"family\":\"%s\",\"address\":%lu,\"anchor\":",
		  ncontainers++ ? "," : "", name, kind, family, (unsigned long)address);
	if (anchor)
		truth_cat("\"%s\"", anchor);
	else
		truth_cat("null");
	truth_cat(",\"key_type\":");
	if (key_type)
		truth_cat("\"%s\"", key_type);
	else
		truth_cat("null");
	truth_cat(",\"value_type\":");
	if (value_type)
		truth_cat("\"%s\"", value_type);
	else
		truth_cat("null");
}

static void numbers(size_t count, long buckets, long max_chain, long height, size_t bytes, size_t retained)
{
	truth_cat(",\"count\":%zu,\"buckets\":", count);
	buckets >= 0 ? truth_cat("%ld", buckets) : truth_cat("null");
	truth_cat(",\"max_chain\":");
	max_chain >= 0 ? truth_cat("%ld", max_chain) : truth_cat("null");
	truth_cat(",\"height\":");
	height >= 0 ? truth_cat("%ld", height) : truth_cat("null");
	truth_cat(",\"bytes\":%zu,\"retained\":%zu,\"entries\":[", bytes, retained);
}

static int nentries;

// key: a JSON value (a quoted string or a number); value: an address or 0.
static void entry(const char *key, const void *node, const void *value, const char *value_type)
{
	truth_cat("%s{\"key\":%s,\"node\":%lu,\"value\":", nentries++ ? "," : "", key, (unsigned long)node);
	if (value)
		truth_cat("%lu", (unsigned long)value);
	else
		truth_cat("null");
	truth_cat(",\"value_type\":");
	value_type ? truth_cat("\"%s\"", value_type) : truth_cat("null");
	truth_cat("}");
}

static void end(void)
{
	truth_cat("]}");
	nentries = 0;
}

/* libstdc++ layouts, for the truth only: a hashtable's bucket array is its
 * first word; a tree node's links are public in _Rb_tree_node_base. */
template <class M> static const void *bucket_array(const M &m)
{
	const void *b = *(const void *const *)&m;
	// One bucket lives inside the object (_M_single_bucket): no allocation.
	return m.bucket_count() == 1 ? NULL : b;
}

template <class M> static size_t max_chain(const M &m)
{
	size_t best = 0;
	for (size_t b = 0; b < m.bucket_count(); b++)
		if (m.bucket_size(b) > best)
			best = m.bucket_size(b);
	return best;
}

static long tree_height(const std::_Rb_tree_node_base *n)
{
	if (!n)
		return 0;
	long l = tree_height(n->_M_left), r = tree_height(n->_M_right);
	return 1 + (l > r ? l : r);
}

template <class M> static long height_of(const M &m)
{
	// The header follows the (empty) comparator: its parent is the root.
	const std::_Rb_tree_node_base *header = (const std::_Rb_tree_node_base *)((const char *)&m + 8);
	return tree_height(header->_M_parent);
}

template <class It> static const void *hnode(It it)
{
	return it._M_cur;
}

template <class It> static const void *tnode(It it)
{
	return it._M_node;
}

// extra: bytes only the container reaches besides its elements (a heap
// map's own object: its bucket of the first node points into it).
static void sessions_truth(const char *name, const std::unordered_map<std::string, Session *> &m,
			   const char *anchor, const long *chosen, int nchosen, size_t extra)
{
	size_t bytes = usable(bucket_array(m)), owned = extra;
	for (auto it = m.begin(); it != m.end(); ++it) {
		bytes += usable(hnode(it));
		owned += string_heap(it->first) + session_bytes(it->second);
	}
	begin(name, "std::unordered_map", "hashtable", &m, anchor, "std::string", "Session*");
	numbers(m.size(), (long)m.bucket_count(), (long)max_chain(m), -1, bytes, bytes + owned);
	for (int i = 0; i < nchosen; i++) {
		auto it = m.find(session_key(chosen[i]));
		char key[48];
		snprintf(key, sizeof(key), "\"%s\"", it->first.c_str());
		entry(key, hnode(it), it->second, "Session");
	}
	end();
}

template <class M> static void long_map_truth(const char *name, const M &m, const char *kind, long first_key)
{
	size_t bytes = usable(bucket_array(m));
	for (auto it = m.begin(); it != m.end(); ++it)
		bytes += usable(hnode(it));
	begin(name, kind, "hashtable", &m, name, "long int", "long int");
	numbers(m.size(), (long)m.bucket_count(), (long)max_chain(m), -1, bytes, bytes);
	auto it = m.find(first_key);
	char key[32];
	snprintf(key, sizeof(key), "%ld", first_key);
	entry(key, hnode(it), NULL, NULL);
	end();
}

static void build(void)
{
	for (long i = 0; i < 5000; i++)
		g_sessions.emplace(session_key(i), new_session(i));
	for (long i = 0; i < 300; i++)
		g_ids.insert(i * 7919);
	for (int i = 0; i < 120; i++)
		g_tags.emplace(i % 40, new_blob(1000 + i));
	for (int i = 0; i < 200; i++)
		g_index.emplace(i, new_blob(i));
	for (int i = 0; i < 50; i++) {
		char buf[16];
		snprintf(buf, sizeof(buf), "name-%02d", i);
		g_names.insert(buf);
	}
	for (long i = 0; i < 100; i++)
		g_events.emplace(i / 4, i * 10);
	for (long i = 0; i < 20000; i++)
		g_erased.emplace(i, i);
	for (long i = 10; i < 20000; i++)
		g_erased.erase(i);
	for (long i = 0; i < 600; i++)
		g_degenerate.emplace(i, -i);
	g_reg = new Registry;
	g_reg->version = 7;
	for (int i = 0; i < 64; i++)
		g_reg->byid.emplace(i * 3, new_blob(5000 + i));
}

// GLib and uthash last: their resizes free arrays full of pointers to their
// elements, and nothing allocated later may reuse (and keep) those words.
static void build_c_tables(void)
{
	g_table = g_hash_table_new(g_str_hash, g_str_equal);
	for (int i = 0; i < 100; i++) {
		char k[32], v[32];
		snprintf(k, sizeof(k), "key-%03d", i);
		snprintf(v, sizeof(v), "value-%03d-of-the-table", i);
		g_hash_table_insert(g_table, g_strdup(k), g_strdup(v));
	}
	for (int i = 0; i < 150; i++) {
		struct item *it = (struct item *)calloc(1, sizeof(*it));
		it->id = i * 11;
		snprintf(it->name, sizeof(it->name), "item-%d", i);
		HASH_ADD_INT(g_items, id, it);
	}
}

// The leaked map: built first (fresh memory: no stale words in its nodes'
// unused bytes), measured last, and its only pointer kept inverted.
static uintptr_t leaked_enc;

static __attribute__((noinline)) void build_leaked(void)
{
	auto *m = new std::unordered_map<std::string, Session *>;
	for (long i = 0; i < 25; i++)
		m->emplace(session_key(900000 + i), new_session(900000 + i));
	leaked_enc = ~(uintptr_t)m;
}

static __attribute__((noinline)) void leaked_truth(void)
{
	auto *m = (std::unordered_map<std::string, Session *> *)~leaked_enc;
	long chosen[] = { 900003 };
	sessions_truth("leaked", *m, NULL, chosen, 1, usable(m));
}

static void write_truth(void)
{
	long chosen[] = { 12, 4321 };
	sessions_truth("g_sessions", g_sessions, "g_sessions", chosen, 2, 0);

	size_t bytes = usable(bucket_array(g_ids));
	for (auto it = g_ids.begin(); it != g_ids.end(); ++it)
		bytes += usable(hnode(it));
	begin("g_ids", "std::unordered_set", "hashtable", &g_ids, "g_ids", "long int", NULL);
	numbers(g_ids.size(), (long)g_ids.bucket_count(), (long)max_chain(g_ids), -1, bytes, bytes);
	entry("7919", hnode(g_ids.find(7919)), NULL, NULL);
	end();

	bytes = usable(bucket_array(g_tags));
	size_t owned = 0;
	for (auto it = g_tags.begin(); it != g_tags.end(); ++it) {
		bytes += usable(hnode(it));
		owned += usable(it->second);
	}
	begin("g_tags", "std::unordered_multimap", "hashtable", &g_tags, "g_tags", "int", "Blob*");
	numbers(g_tags.size(), (long)g_tags.bucket_count(), (long)max_chain(g_tags), -1, bytes, bytes + owned);
	auto t = g_tags.find(5);
	entry("5", hnode(t), t->second, "Blob");
	end();

	bytes = owned = 0;
	for (auto it = g_index.begin(); it != g_index.end(); ++it) {
		bytes += usable(tnode(it));
		owned += usable(it->second);
	}
	begin("g_index", "std::map", "rbtree", &g_index, "g_index", "int", "Blob*");
	numbers(g_index.size(), -1, -1, height_of(g_index), bytes, bytes + owned);
	auto ix = g_index.find(36);
	entry("36", tnode(ix), ix->second, "Blob");
	end();

	bytes = 0;
	for (auto it = g_names.begin(); it != g_names.end(); ++it)
		bytes += usable(tnode(it)) + string_heap(*it);
	begin("g_names", "std::set", "rbtree", &g_names, "g_names", "std::string", NULL);
	numbers(g_names.size(), -1, -1, height_of(g_names), bytes, bytes);
	entry("\"name-07\"", tnode(g_names.find("name-07")), NULL, NULL);
	end();

	bytes = 0;
	for (auto it = g_events.begin(); it != g_events.end(); ++it)
		bytes += usable(tnode(it));
	begin("g_events", "std::multimap", "rbtree", &g_events, "g_events", "long int", "long int");
	numbers(g_events.size(), -1, -1, height_of(g_events), bytes, bytes);
	entry("3", tnode(g_events.find(3)), NULL, NULL);
	end();

	long_map_truth("g_erased", g_erased, "std::unordered_map", 5);
	long_map_truth("g_degenerate", g_degenerate, "std::unordered_map", 300);

	bytes = owned = 0;
	for (auto it = g_reg->byid.begin(); it != g_reg->byid.end(); ++it) {
		bytes += usable(tnode(it));
		owned += usable(it->second);
	}
	begin("g_reg->byid", "std::map", "rbtree", &g_reg->byid, "g_reg->byid", "int", "Blob*");
	numbers(g_reg->byid.size(), -1, -1, height_of(g_reg->byid), bytes, bytes + owned);
	auto r = g_reg->byid.find(30);
	entry("30", tnode(r), r->second, "Blob");
	end();

	// GHashTable: open addressing (no chains); keys, hashes and values arrays.
	const struct ghash_mirror *gh = (const struct ghash_mirror *)g_table;
	if (gh->nnodes != g_hash_table_size(g_table) || gh->mask != gh->size - 1 || !gh->have_big_keys)
		truth_die("GHashTable is not laid out as glib 2.74's");
	bytes = usable(gh->keys) + usable(gh->hashes) + (gh->values != gh->keys ? usable(gh->values) : 0);
	owned = 0;
	GHashTableIter gi;
	gpointer k, v;
	g_hash_table_iter_init(&gi, g_table);
	while (g_hash_table_iter_next(&gi, &k, &v))
		owned += usable(k) + usable(v);
	begin("g_table", "GHashTable", "ghash", g_table, "g_table", NULL, NULL);
	numbers(g_hash_table_size(g_table), (long)gh->size, -1, -1, bytes, bytes + owned);
	// The bucket of "key-042": its slot in the keys array.
	for (gsize i = 0; i < gh->size; i++) {
		const char *key = ((const char *const *)gh->keys)[i];
		if (gh->hashes[i] >= 2 && !strcmp(key, "key-042"))
			entry("\"key-042\"", (const char *)gh->keys + i * sizeof(void *),
			      ((const void *const *)gh->values)[i], NULL);
	}
	end();

	// uthash: the table, its buckets, and the elements (intrusive nodes).
	UT_hash_table *tbl = g_items->hh.tbl;
	bytes = usable(tbl) + usable(tbl->buckets);
	unsigned longest = 0;
	for (unsigned b = 0; b < tbl->num_buckets; b++)
		if (tbl->buckets[b].count > longest)
			longest = tbl->buckets[b].count;
	for (struct item *it = g_items; it; it = (struct item *)it->hh.next)
		bytes += usable(it);
	begin("g_items", "uthash", "uthash", tbl, "g_items", NULL, NULL);
	numbers(HASH_COUNT(g_items), tbl->num_buckets, longest, -1, bytes, bytes);
	struct item *found;
	int id = 77;
	HASH_FIND_INT(g_items, &id, found);
	entry("77", found, NULL, NULL);
	end();
}

static void corrupt_truth(const char *name, const void *address, const char *what, int first)
{
	truth_cat("%s\n {\"name\":\"%s\",\"address\":%lu,\"what\":\"%s\"}", first ? "" : ",", name,
		  (unsigned long)address, what);
}

static void build_bad(void)
{
	for (long i = 0; i < 50; i++)
		g_bad_count.emplace(1000 + i, i);
	for (long i = 0; i < 30; i++)
		g_bad_cycle.insert(2000 + i);
	for (long i = 0; i < 40; i++)
		g_bad_tree.insert(3000 + i);
}

// libstdc++ layouts again (see containers_hashtable.c and _rbtree.c).
static void break_bad(void)
{
	((size_t *)&g_bad_count)[3] = 60;                      // _M_element_count
	void **node = (void **)((void **)&g_bad_cycle)[2];     // _M_before_begin._M_nxt
	void **first = node;
	while (*node)
		node = (void **)*node;
	*node = first;                                         // the last node's _M_nxt
	std::_Rb_tree_node_base *leaf = ((std::_Rb_tree_node_base *)((char *)&g_bad_tree + 8))->_M_left;
	leaf->_M_left = ((std::_Rb_tree_node_base *)((char *)&g_bad_tree + 8))->_M_parent;
}

static __attribute__((noinline)) void scrub_stack(void)
{
	volatile char buf[256 * 1024];
	explicit_bzero((void *)buf, sizeof(buf));
	__asm__ volatile("" ::"r"(buf) : "memory");
}

// A container on main's stack: its anchor is the frame.
static __attribute__((noinline)) void local_truth(const std::map<int, long> &m)
{
	size_t bytes = 0;
	for (auto it = m.begin(); it != m.end(); ++it)
		bytes += usable(tnode(it));
	char anchor[64];
	snprintf(anchor, sizeof(anchor), "thread %d stack (frame of main)", truth_gettid());
	// With DWARF the frame's variable, numbered and placed as GDB's backtrace
	// does (the test fills in {frame} and {line} from GDB's "bt").
	char named[128];
	snprintf(named, sizeof(named), "thread %d frame {frame} local_map (main at maps_cpp.cc:{line})", truth_gettid());
	begin("local_map", "std::map", "rbtree", &m, named, "int", "long int");
	truth_cat(",\"anchor_nodwarf\":\"%s\"", anchor);
	numbers(m.size(), -1, -1, height_of(m), bytes, bytes);
	entry("7", tnode(m.find(7)), NULL, NULL);
	end();
}

static void tls_truth(void)
{
	size_t bytes = usable(bucket_array(t_cache));
	for (auto it = t_cache.begin(); it != t_cache.end(); ++it)
		bytes += usable(hnode(it));
	char named[64], anchor[64];
	snprintf(named, sizeof(named), "thread %d TLS t_cache", truth_gettid());
	snprintf(anchor, sizeof(anchor), "thread %d TLS", truth_gettid());
	begin("t_cache", "std::unordered_map", "hashtable", &t_cache, named, "long int", "long int");
	truth_cat(",\"anchor_nodwarf\":\"%s\"", anchor);
	numbers(t_cache.size(), (long)t_cache.bucket_count(), (long)max_chain(t_cache), -1, bytes, bytes);
	entry("93", hnode(t_cache.find(93)), NULL, NULL);
	end();
}

int main(int argc, char **argv)
{
	const char *path = truth_path(argc, argv);
	int local = 0;
	std::map<int, long> local_map;
	truth_set_name("maps_cpp");
	truth_thread(&local);
	build_leaked();
	build();
	build_bad();
	for (int i = 0; i < 20; i++)
		local_map.emplace(i, i * 100L);
	for (long i = 0; i < 25; i++)
		t_cache.emplace(i * 31, i);
	build_c_tables();
	truth.outlen = 0;
	truth_cat("{\"fixture\":\"maps_cpp\",\n\"pid\":%d,\n\"containers\":[", (int)getpid());
	write_truth();
	leaked_truth();
	local_truth(local_map);
	tls_truth();
	truth_cat("],\n\"corrupt\":[");
	corrupt_truth("g_bad_count", &g_bad_count, "count", 1);
	corrupt_truth("g_bad_cycle", &g_bad_cycle, "cycle", 0);
	corrupt_truth("g_bad_tree", &g_bad_tree, "parent", 0);
	truth_cat("]}\n");
	truth_save(path);
	break_bad();
	scrub_stack();
	__asm__ volatile("xor %%eax,%%eax\n\txor %%ecx,%%ecx\n\txor %%edx,%%edx\n\t"
			 "xor %%esi,%%esi\n\txor %%edi,%%edi\n\txor %%r8d,%%r8d\n\t"
			 "xor %%r9d,%%r9d\n\txor %%r10d,%%r10d\n\txor %%r11d,%%r11d\n\t"
			 ::: "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "memory");
	dump_here();
	truth_finish(argc, argv);
	return (int)local_map.size() - 20;
}
