/* export.h - the ownership model behind export, diff and report: every used
 * allocation gets a "stack" of frames from the root that holds it, through
 * the types of its dominators, to its own type:
 *
 *   globals;g_config;config;entry        (root frames; owners; the object)
 *   thread 4242;hold_on_stack;? (64 bytes)
 *   [leaked];node
 *
 * On a Go heap the unreachable are garbage awaiting GC, not leaked: their
 * stacks start at "[garbage]" and garbage is set (the leaked_ counts are
 * then garbage's); a goroutine's stack is "goroutine 7;main.worker".
 *
 * Stacks are nodes of a trie (parent, frame); consecutive equal frames are
 * folded into one (a linked list of 1 M nodes is one frame, not 1 M), and a
 * stack is at most HS_STACK_MAX_DEPTH frames deep (deeper owners are cut at a
 * "[deeper]" frame).  Every used allocation is counted in exactly one trie
 * node, so the per-node counts sum to the bytes in use.
 *
 * Also here: pprof's profile.proto encoder (pprof.c), and files written
 * atomically (-o FILE: a temporary file in the same directory, renamed).
 */
#ifndef HS_EXPORT_H
#define HS_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "output.h"

struct hs_session;

#define HS_STACK_MAX_DEPTH 64
#define HS_STACK_NONE UINT32_MAX

struct hs_stack_node {
	uint32_t parent;             /* HS_STACK_NONE at the top */
	uint32_t frame;              /* index into frames */
	uint32_t depth;              /* 1 at the top */
	uint32_t owner;              /* the node of its last root frame (the owner) */
	uint64_t count, bytes;       /* allocations whose stack ends here */
	uint64_t leaked_count, leaked_bytes;
};

struct hs_stacks {
	char **frames;               /* interned, printable (control bytes replaced) */
	size_t nframes, frames_cap;
	struct hs_stack_node *nodes;
	size_t nnodes, nodes_cap;
	uint32_t *of_block;          /* block -> node (HS_STACK_NONE: not used) */
	size_t nblocks;
	uint64_t count, bytes, leaked_count, leaked_bytes;   /* totals */
	bool garbage;                /* Go: the unreachable are garbage awaiting GC */
	/* private: hash tables */
	uint32_t *frame_hash, *node_hash;
	size_t frame_hash_cap, node_hash_cap;
};

/* Needs the analysis, types and dominators of s. */
struct hs_error *hs_stacks_build(struct hs_session *s, struct hs_stacks *ret);
/* The owners alone (diff): every used allocation is counted in its owner's
 * root-frames node, the one hs_stacks_build() puts at the top of its stack;
 * from the top level of the dominator tree only, without building it. */
struct hs_error *hs_stacks_build_owners(struct hs_session *s, struct hs_stacks *ret);
void hs_stacks_deinit(struct hs_stacks *st);
/* "frame;frame;frame" of node k into buf (sep between frames). */
void hs_stacks_path(const struct hs_stacks *st, uint32_t k, const char *sep, char *buf, size_t len);

/* pprof.c: the gzipped profile.proto of the stacks. */
struct hs_pprof_info {
	const char *comments[4];     /* NULL-terminated */
};
struct hs_error *hs_pprof_encode(const struct hs_stacks *st, const struct hs_pprof_info *info,
				 uint8_t **ret, size_t *len_ret);

/* -o FILE: output to a temporary file next to FILE, renamed on commit; to a
 * device or a pipe (paths.h) straight, tmp NULL. */
struct hs_outfile {
	char *path, *tmp;
	int fd;
	bool failed;
	int error;
	struct hs_out out;
};
struct hs_error *hs_outfile_open(struct hs_outfile *f, const char *path);
/* Flush, close and rename; on any earlier write failure, remove and fail
 * (what a device or a pipe got stays got). */
struct hs_error *hs_outfile_commit(struct hs_outfile *f);
void hs_outfile_abort(struct hs_outfile *f);

#endif
