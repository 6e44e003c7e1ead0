/* containers.h - the program's containers (hash maps, trees) found in the
 * core: where each one is, how it is reached, what it holds, what it costs and
 * retains, and the types it gives its nodes and elements.
 *
 * Every container kind is one recogniser (struct hs_container_kind, one file
 * each: containers_hashtable.c, containers_rbtree.c, containers_ghash.c,
 * containers_uthash.c) listed in the table in containers.c.  Instances are
 * found by SHAPE: every aligned word of the roots and of used allocations is
 * offered to each kind's probe (cheap, a few words), and a candidate is kept
 * only when the kind's walk verifies its invariants (element count equals the
 * nodes reachable, bucket pointers inside one bucket array, sentinel/header
 * links, red-black parent links).  DWARF then names what it can: a global, or a
 * member of a DWARF-typed heap object, whose type is a known container gives
 * the exact kind ("std::unordered_map") and key and value types; such a
 * container is walked even when the shape probe refused it, and a broken one
 * gets a diagnostic naming it.  Walks are bounded (HS_CONTAINER_MAX_NODES).
 *
 * The stage reads only its input (struct hs_containers_input, kept in the
 * result for the entries, keys and names read on demand), never the session.
 * Ownership: struct hs_containers is the session's (s->containers); strings
 * in it are owned by it.  owner[i] of a block is the container it belongs to
 * (index + 1), 0 if none.
 */
#ifndef HS_CONTAINERS_H
#define HS_CONTAINERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "error.h"

struct hs_root_range;

struct hs_analysis;
struct hs_container_probes;
struct hs_cwalk;
struct hs_diags;
struct hs_gort;
struct hs_heap;
struct hs_local;
struct hs_locals;
struct hs_memory;
struct hs_notes;
struct hs_symbols;
struct hs_types;

#define HS_CONTAINER_MAX_NODES (UINT64_C(1) << 26)

enum hs_container_finding {
	HS_FIND_DEGENERATE = 1,     /* a bucket chain much longer than the load says */
	HS_FIND_SPARSE = 2,         /* a bucket array far larger than its elements need */
	HS_FIND_MOST_OF_HEAP = 4,   /* it retains more than half of the bytes in use */
	HS_FIND_CORRUPT = 8,        /* an invariant is broken: see the diagnostics */
};

/* How keys are stored, for rendering. */
enum hs_key_kind {
	HS_KEY_UNKNOWN,             /* in place, type unknown: guessed (std::string or a word) */
	HS_KEY_STRING,              /* a std::string in place */
	HS_KEY_INT,                 /* a signed integer in place (key_size bytes) */
	HS_KEY_UINT,                /* unsigned */
	HS_KEY_POINTER,             /* a pointer in place */
	HS_KEY_CSTRING_PTR,         /* the entry holds a pointer to a C string or an object */
	HS_KEY_BYTES,               /* key_size bytes at the key address (uthash) */
	HS_KEY_GO_STRING,           /* a Go string in place: {pointer, length} */
};

/* A Go map's layout, from the DWARF of its synthesized types
 * (containers_gomap.c): offsets in the header, a table (Swiss), a bucket or
 * group, a slot. */
struct hs_go_map_layout {
	bool swiss;
	uint32_t count_off, flags_off, b_off, buckets_off, oldbuckets_off;   /* hmap */
	uint32_t extra_off, x_size, x_overflow_off, x_oldoverflow_off;      /* hmap.extra (0: none) */
	uint32_t dir_ptr_off, dir_len_off;                                   /* Swiss Map */
	uint32_t t_used_off, t_cap_off, t_growth_off, t_data_off, t_mask_off;/* Swiss table */
	uint32_t bucket_size;       /* an hmap bucket, a Swiss group */
	uint32_t keys_off, elems_off, overflow_off;   /* in a bucket; Swiss: keys_off is the slots' */
	uint32_t slot_size, slot_key_off, slot_elem_off;                     /* Swiss */
	uint32_t key_size, elem_size;
	uint8_t key_kind, elem_kind;  /* enum hs_key_kind */
};

struct hs_container {
	const struct hs_container_kind *kind;
	char *kind_name;            /* "std::unordered_map" (DWARF) or the kind's own name */
	uint64_t address;           /* the container object (GHashTable, UT_hash_table) */
	uint64_t handle;            /* what its anchor names: address, or (uthash) the head element */
	char *anchor;               /* how it is reached ("g_sessions", "g_reg->byid"); NULL: leaked */
	char *key_type, *value_type;/* NULL when unknown */
	enum hs_key_kind key_kind;
	uint32_t key_size;          /* bytes of the key in place (0 unknown) */
	uint32_t value_offset;      /* of the mapped value from the key (0: none/unknown) */
	bool value_is_pointer;      /* the mapped value is a pointer: value_pointee types its target */
	char *value_pointee;        /* "Session" */
	uint64_t count;
	int64_t buckets, max_chain, height;   /* -1: not this kind's notion */
	int64_t overflow, tombstones, tables; /* Go maps: overflow buckets (hmap),
	                               deleted slots, tables (Swiss); -1: not this kind's */
	const char *layout;         /* Go maps: "hmap" or "swiss" (static); NULL */
	struct hs_go_map_layout go; /* Go maps */
	uint64_t nblocks, bytes;    /* its own allocations: nodes, bucket arrays, table */
	uint64_t retained;          /* bytes plus what only it reaches */
	unsigned findings;          /* enum hs_container_finding */
	bool from_dwarf;
};

/* What an own block is to its container (the type name's last word). */
enum hs_block_role { HS_ROLE_NODE, HS_ROLE_BUCKETS, HS_ROLE_KEYS, HS_ROLE_HASHES, HS_ROLE_VALUES,
		     HS_ROLE_TABLE, HS_ROLE_ELEMENT };

/* What the containers stage reads (the session fills it in:
 * hs_session_need_containers, session.h).  The session's services it may
 * need come as callbacks, all required. */
struct hs_containers_input {
	struct hs_analysis *a;            /* roots, graph, address map */
	const struct hs_heap *heap;
	struct hs_memory *mem;
	struct hs_symbols *symbols;       /* NULL: no DWARF names; globals by address */
	struct hs_types *types;           /* NULL: nodes and elements are not typed */
	struct hs_diags *diags;           /* broken containers */
	const struct hs_gort *go_rt;      /* a Go heap's runtime; NULL */
	const uint64_t *go_block_die;     /* go_types.c: per block its type's DIE + 1; NULL */
	/* The program's local and TLS variables (locals.h: a stack or TLS word's
	 * variable and its name, "main::cache"); NULL: none. */
	struct hs_locals *locals;
	/* The heap's blocks probed as the scan read them (below); NULL, or
	 * probes the scan did not run: discovery probes them itself. */
	struct hs_container_probes *probes;
	int jobs;                         /* threads discovery may use */
	void *ctx;                        /* the callbacks' */
	/* The member at byte off of block b ("next", a Go struct's field). */
	bool (*block_field)(void *ctx, size_t b, uint64_t off, char *buf, size_t len);
	/* Go: the field at byte off of global var ("main.registry.ByID"). */
	bool (*global_field)(void *ctx, const char *var, uint64_t off, char *buf, size_t len);
	/* The function of the stack frame of thread tid holding addr. */
	bool (*frame_function)(void *ctx, int tid, uint64_t addr, char *buf, size_t len);
};

struct hs_containers {
	struct hs_containers_input in;
	struct hs_container *v;
	size_t n;
	uint32_t *owner;            /* per block: container index + 1, or 0 */
	uint8_t *role;              /* per own block: enum hs_block_role */
	bool anchors_done, retained_done;
	size_t nroot;               /* v[0, nroot): found in root ranges, by address */
	size_t nshape;              /* v[nshape, n): DWARF's, that the shape refused */
	uint32_t *at;               /* v by address: open addressing, index + 1 (0 empty) */
	size_t atcap;               /* at's slots: a power of two, at least twice n */
};

/* One recogniser.  probe() looks at the words w[0 .. size/8) at addr (in the
 * core, any memory) and says whether a walk is worth it; walk() checks every
 * invariant, reports own blocks and entries through the hs_cwalk, fills count,
 * buckets, max_chain, height, and returns false (with cw->why) when the words
 * are not such a container or it is broken. */
struct hs_container_kind {
	const char *name;           /* "std::_Hashtable" */
	const char *family;         /* "hashtable", "rbtree", "ghash", "uthash" */
	uint32_t size;              /* bytes of the object probe() reads */
	bool at_block_start;        /* probe only at allocation starts */
	uint32_t anchor_word;       /* else: probe where word [anchor_word] holds a heap
	                               address (true of every non-empty instance) */
	enum hs_key_kind key_kind;  /* default key storage */
	/* What probe() checks first, as data: word filter_word of the object,
	 * masked with filter_mask, lies in [filter_lo, filter_hi].  Nearly
	 * every word offered fails it, and the probing loop tests it without
	 * a call.  filter_mask 0: none. */
	uint32_t filter_word;
	uint64_t filter_mask, filter_lo, filter_hi;
	bool (*probe)(struct hs_cwalk *cw, uint64_t addr, const uint64_t *w);
	bool (*walk)(struct hs_cwalk *cw, uint64_t addr, const uint64_t *w);
	/* The key of node (as walk() reports it to entry()); false if none. */
	bool (*node_key)(struct hs_cwalk *cw, uint64_t node, uint64_t *key_ret, uint64_t *key_len_ret);
	/* Kinds whose blocks hold many entries (Go's bucket arrays): the key of
	 * the live entry whose key or value holds byte word of own block b. */
	bool (*slot_key)(struct hs_cwalk *cw, size_t b, uint64_t word, uint64_t *key_ret);
};

/* What a walk reports to (containers.c implements it). */
struct hs_cwalk {
	const struct hs_containers_input *in;
	struct hs_containers *cs;
	struct hs_container *c;
	uint32_t id;                /* container index + 1 */
	bool verify_only;
	/* entries, when listing one container */
	void (*entry)(struct hs_cwalk *cw, uint64_t node, uint64_t key, uint64_t key_len, uint64_t value);
	void *ctx;
	char why[200];
	uint64_t limit;             /* entries wanted (listing) */
	uint64_t listed;
	/* private */
	uint32_t *owned;            /* blocks claimed by this walk */
	size_t nowned, capowned;
	bool nomem;
};

/* For recognisers. */
/* The used block starting exactly at addr, or -1. */
ptrdiff_t hs_cwalk_block(struct hs_cwalk *cw, uint64_t addr);
/* Claim the used block starting at addr as the container's own; false (and
 * why) when it is not a block start or belongs to another container. */
bool hs_cwalk_own(struct hs_cwalk *cw, uint64_t addr, enum hs_block_role role);
bool hs_cwalk_read(struct hs_cwalk *cw, uint64_t addr, void *buf, size_t len);
bool hs_cwalk_u64(struct hs_cwalk *cw, uint64_t addr, uint64_t *ret);
/* addr lies in a loaded module (code or data). */
bool hs_cwalk_in_module(struct hs_cwalk *cw, uint64_t addr);
bool hs_cwalk_fail(struct hs_cwalk *cw, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

extern const struct hs_container_kind hs_kind_hashtable, hs_kind_rbtree, hs_kind_ghash, hs_kind_uthash;
/* Go maps: not probed by shape; found through the Go types of their headers. */
extern const struct hs_container_kind hs_kind_gomap;

/* Block i is a Go map's header (its Go type hash<K,V> or map<K,V>): its
 * layout and key and value types (free with hs_go_map_found_deinit). */
struct hs_go_map_found {
	struct hs_go_map_layout layout;
	char *key_type, *value_type;
};
bool hs_go_map_describe(const struct hs_containers_input *in, size_t i, struct hs_go_map_found *ret);
void hs_go_map_found_deinit(struct hs_go_map_found *f);

/* The shape probes of the heap's blocks, run by the scan while it reads
 * them (hs_graph_input's visitor: the heap's bytes are then read once, not
 * twice).  Made from the input's heap, mem, symbols and go_rt (the analysis
 * is the one the scan builds), before the analysis; given to
 * hs_containers_create in its input, which walks what they found as if it
 * had probed the heap itself.  NULL when out of memory. */
struct hs_container_probes *hs_container_probes_create(const struct hs_containers_input *in);
const struct hs_scan_visitor *hs_container_probes_visitor(struct hs_container_probes *p);
void hs_container_probes_destroy(struct hs_container_probes *p);

/* Find, walk, name and measure every container; type their nodes and
 * elements in in->types (the certain types: hs_session_need_types runs this
 * between the certain and the inferred ones). */
struct hs_error *hs_containers_create(const struct hs_containers_input *in, struct hs_containers **ret);
void hs_containers_destroy(struct hs_containers *c);
/* Anchors (how each container is reached), then retained bytes and findings:
 * each a pass over the graph, computed when a report needs them. */
struct hs_error *hs_containers_need_anchors(struct hs_containers *cs);
struct hs_error *hs_containers_need_retained(struct hs_containers *cs);
/* The container at addr (its object), or NULL (also for a NULL cs). */
const struct hs_container *hs_container_at(const struct hs_containers *cs, uint64_t addr);
/* List the entries of c (one of cs's): entry(...) for each, at most limit. */
struct hs_error *hs_container_entries(struct hs_containers *cs, const struct hs_container *c,
				      void (*entry)(struct hs_cwalk *cw, uint64_t node, uint64_t key,
						    uint64_t key_len, uint64_t value),
				      void *ctx, uint64_t limit);
/* The mapped value of an entry: what the pointer at key + value_offset
 * holds (0 when c has no pointer values). */
uint64_t hs_container_entry_value(const struct hs_containers *cs, const struct hs_container *c, uint64_t key,
				  uint64_t value);
/* Render a key as JSON-safe text: "\"session-000012-api\"" (quoted) or "42"
 * or "0x55..."; *is_string_ret says which. */
void hs_container_key_text(const struct hs_containers *cs, const struct hs_container *c, uint64_t key,
			   uint64_t key_len, char *buf, size_t len, bool *is_string_ret);
/* A Go map entry's value when it is a number or a string (not a pointer:
 * see hs_container_entry_value), rendered as keys are; false otherwise. */
bool hs_container_value_text(const struct hs_containers *cs, const struct hs_container *c, uint64_t node, uint64_t key,
			     char *buf, size_t len, bool *is_string_ret);
/* When block i is a node of a container with keys: "g_sessions[\"k\"]"
 * (false for a NULL cs). */
bool hs_container_node_name(struct hs_containers *cs, size_t i, char *buf, size_t len);
/* The same for the entry of block i holding byte off (Go's bucket arrays:
 * "main.sessions[\"sess/00012\"]"); falls back to hs_container_node_name. */
bool hs_container_entry_name(struct hs_containers *cs, size_t i, uint64_t off, char *buf, size_t len);

/* Owners: retained bytes per root (each global, each thread's stack, TLS,
 * registers) computed by labelling every block with the one owner that
 * reaches it (or "shared"). */
struct hs_owner {
	char *name;                 /* "g_cache", "thread 1234 stack", ... */
	const char *kind;           /* "global", "stack", "tls", "register", "memory";
				       Go: "goroutine", "finalizer" */
	uint64_t retained, count;
};
struct hs_owners {
	struct hs_owner *v;         /* most retained first, then by name */
	size_t n;
	uint64_t shared_bytes, shared_count;     /* reached from more than one owner */
};
/* What the owners stage reads (the session fills it in: hs_session_need_owners). */
struct hs_owners_input {
	const struct hs_analysis *a;             /* roots, graph, address map */
	const struct hs_heap *heap;
	struct hs_memory *mem;
	const struct hs_notes *notes;            /* each thread's registers own what they point at */
	struct hs_symbols *symbols;              /* NULL: globals are named by address */
	const struct hs_containers *containers;  /* NULL: none; anchors name globals without symbols */
	/* The owner of root word p in range r when the front of the heap knows
	 * better than "thread N stack" (a Go goroutine: "goroutine 17
	 * (main.f)", kind "goroutine"; Go finalizers): true and the name and
	 * kind (a static string); false: the default.  NULL: none. */
	bool (*root_name)(void *ctx, const struct hs_root_range *r, uint64_t p, char *buf, size_t len,
			  const char **kind);
	/* A root that owns only what no other root reaches (a Go runtime
	 * goroutine's stack: its stale words must not make the program's data
	 * shared).  NULL: none. */
	bool (*weak_root)(void *ctx, const struct hs_root_range *r);
	void *ctx;
};
struct hs_error *hs_owners_create(const struct hs_owners_input *in, struct hs_owners **ret);
void hs_owners_destroy(struct hs_owners *o);

#endif
