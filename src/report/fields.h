/* fields.h - what a block's bytes say, for people: a DWARF-typed block's
 * members (".id = 2", ".next = 0x5555557622c0 -> node"), what a word points
 * at, a free-list link decoded (glibc's safe-linking), and where an address
 * outside the heap lies (which mapping, which thread's stack and frame, which
 * global, TLS).
 *
 * Everything here reads the target through checked reads and is bounded: a
 * member is decoded only inside the block, nested structs two levels deep,
 * arrays by their first elements.  Nothing is guessed: a block whose type did
 * not come from DWARF has no members.
 */
#ifndef HS_FIELDS_H
#define HS_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <elfutils/libdw.h>

struct hs_session;

struct hs_field {
	uint64_t offset, size;       /* in the block */
	char name[96];               /* "id", "inner.x", "v[1]" */
	char text[256];              /* "2", "0x55.. -> node", "\"abc\"", "NULL" */
	bool has_value;              /* a scalar or a pointer of at most 8 bytes */
	uint64_t value;              /* its bits (zero-extended) */
	bool pointer;
};

/* types.c: the DWARF type of block i (a struct or class), when its type came
 * from DWARF. */
struct hs_types;
bool hs_block_type_die(const struct hs_types *t, size_t i, Dwarf_Die *ret);

/* "fields": [{name, offset, size (with sizes), value, text}...] of an open
 * JSON object. */
struct hs_out;
void hs_json_fields(struct hs_out *o, const struct hs_field *f, size_t n, bool sizes);

/* The members of block i (at most max, those inside its first limit bytes),
 * in offset order; 0 when its type is not from DWARF. */
size_t hs_block_fields(struct hs_session *s, size_t i, uint64_t limit, struct hs_field *ret, size_t max);

/* What value v points at, for people: "-> node 0x5555557622c0" (a heap block:
 * its type or size, "+off" inside it), "-> g_table+8" (a symbol), "-> thread
 * 4242 stack"; "" when nothing known. */
void hs_describe_pointer(struct hs_session *s, uint64_t v, char *buf, size_t len);

/* Glibc's safe-linking: the pointer a tcache or fastbin link at addr holds,
 * when the block at addr is on such a list and safe-linking is on; false
 * otherwise.  *to_block_ret is what to add to it for the next block's address
 * (a fastbin links chunk headers, 16 bytes before the block; a tcache, blocks). */
bool hs_free_link(struct hs_session *s, size_t block, uint64_t addr, uint64_t stored, uint64_t *ret,
		  uint64_t *to_block_ret);

/* Where addr lies outside the heap. */
struct hs_place {
	const char *kind;            /* "global", "stack", "tls", "file", "anonymous", "unmapped" */
	char what[320];              /* "g_table+8 in /usr/bin/app", "thread 4242 stack, frame 1 ..." */
	uint64_t start, end;         /* the mapping (0, 0 when unmapped) */
	char perms[4];               /* "rw-" */
	char mapping[256];           /* its file, or "" */
	int tid;                     /* stack or TLS: the thread, else 0 */
	bool readable;
	uint64_t value;              /* the word at addr, when readable */
};
void hs_place_of(struct hs_session *s, uint64_t addr, struct hs_place *ret);

#endif
