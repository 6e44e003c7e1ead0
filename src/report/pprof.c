/* pprof.c - the ownership stacks as pprof's profile.proto, gzip-compressed
 * (zlib).  Facts: ../shared/reference/pprof.md.  The protobuf encoding is the
 * small subset a profile needs: varints, and length-delimited fields (strings,
 * nested messages, packed repeated integers).
 *
 * Layout: string 0 is ""; sample types inuse_objects/count, inuse_space/bytes,
 * leaked_objects/count, leaked_space/bytes, default inuse_space.  One Function
 * and one Location per frame (id = frame + 1), one Mapping with has_functions
 * etc. set so that pprof does not try to symbolize; Function.system_name is
 * left unset so that pprof never "demangles" (strips) a frame name.  One Sample
 * per stack that holds allocations, leaf first, labelled state=anchored|leaked.
 * A Go heap's (st->garbage) say garbage for leaked: garbage_objects,
 * garbage_space, state=anchored|garbage.
 */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "export.h"

struct pb {
	uint8_t *p;
	size_t n, cap;
	bool nomem;
};

static void pb_reserve(struct pb *b, size_t more)
{
	if (b->nomem || b->n + more <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->n + more)
		cap *= 2;
	uint8_t *g = realloc(b->p, cap);
	if (!g) {
		b->nomem = true;
		return;
	}
	b->p = g;
	b->cap = cap;
}

static void pb_bytes(struct pb *b, const void *data, size_t len)
{
	pb_reserve(b, len);
	if (b->nomem)
		return;
	memcpy(b->p + b->n, data, len);
	b->n += len;
}

static void pb_varint(struct pb *b, uint64_t v)
{
	uint8_t tmp[10];
	size_t k = 0;
	do {
		tmp[k++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
		v >>= 7;
	} while (v);
	pb_bytes(b, tmp, k);
}

enum { WIRE_VARINT = 0, WIRE_LEN = 2 };

static void pb_key(struct pb *b, unsigned field, unsigned wire) { pb_varint(b, (uint64_t)field << 3 | wire); }

static void pb_uint(struct pb *b, unsigned field, uint64_t v)
{
	pb_key(b, field, WIRE_VARINT);
	pb_varint(b, v);
}

static void pb_lenfield(struct pb *b, unsigned field, const void *data, size_t len)
{
	pb_key(b, field, WIRE_LEN);
	pb_varint(b, len);
	pb_bytes(b, data, len);
}

static void pb_msg(struct pb *b, unsigned field, const struct pb *m)
{
	pb_lenfield(b, field, m->p, m->n);
	b->nomem |= m->nomem;
}

enum {
	S_EMPTY, S_INUSE_OBJECTS, S_COUNT, S_INUSE_SPACE, S_BYTES, S_LEAKED_OBJECTS, S_LEAKED_SPACE,
	S_STATE, S_ANCHORED, S_LEAKED, S_MAPPING, S_FIRST_COMMENT,
};

static const char *const fixed_strings[] = {
	"", "inuse_objects", "count", "inuse_space", "bytes", "leaked_objects", "leaked_space",
	"state", "anchored", "leaked", "heapscope-ownership",
};

// The string at fixed index i, for a Go heap's profile when garbage.
static const char *fixed_string(size_t i, bool garbage)
{
	if (garbage && i == S_LEAKED_OBJECTS)
		return "garbage_objects";
	if (garbage && i == S_LEAKED_SPACE)
		return "garbage_space";
	if (garbage && i == S_LEAKED)
		return "garbage";
	return fixed_strings[i];
}

static void value_type(struct pb *out, struct pb *tmp, unsigned field, uint64_t type, uint64_t unit)
{
	tmp->n = 0;
	pb_uint(tmp, 1, type);
	pb_uint(tmp, 2, unit);
	pb_msg(out, field, tmp);
}

static struct hs_error *gzip(const struct pb *in, uint8_t **ret, size_t *len_ret)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	// windowBits 15 + 16: a gzip header and trailer.
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return hs_error_create(HS_ERR_OTHER, "zlib: deflateInit2 failed");
	size_t cap = deflateBound(&z, in->n) + 64;
	uint8_t *out = malloc(cap);
	if (!out) {
		deflateEnd(&z);
		return &hs_error_nomem;
	}
	z.next_in = in->p;
	z.avail_in = (uInt)in->n;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	int rc = in->n > UINT32_MAX ? Z_BUF_ERROR : deflate(&z, Z_FINISH);
	size_t len = z.total_out;
	deflateEnd(&z);
	if (rc != Z_STREAM_END) {
		free(out);
		return hs_error_create(HS_ERR_OTHER, "zlib: deflate failed (%d)", rc);
	}
	*ret = out;
	*len_ret = len;
	return NULL;
}

struct hs_error *hs_pprof_encode(const struct hs_stacks *st, const struct hs_pprof_info *info,
				 uint8_t **ret, size_t *len_ret)
{
	struct pb prof = { 0 }, tmp = { 0 }, sub = { 0 };
	size_t ncomments = 0;
	while (ncomments < 3 && info && info->comments[ncomments])
		ncomments++;
	size_t nfixed = sizeof(fixed_strings) / sizeof(fixed_strings[0]);
	size_t frame_base = nfixed + ncomments;

	// 1 sample_type
	value_type(&prof, &tmp, 1, S_INUSE_OBJECTS, S_COUNT);
	value_type(&prof, &tmp, 1, S_INUSE_SPACE, S_BYTES);
	value_type(&prof, &tmp, 1, S_LEAKED_OBJECTS, S_COUNT);
	value_type(&prof, &tmp, 1, S_LEAKED_SPACE, S_BYTES);
	// 2 sample
	for (size_t k = 0; k < st->nnodes && !prof.nomem; k++) {
		const struct hs_stack_node *x = &st->nodes[k];
		if (!x->count)
			continue;
		tmp.n = 0;
		sub.n = 0;
		for (uint32_t v = (uint32_t)k; v != HS_STACK_NONE; v = st->nodes[v].parent)
			pb_varint(&sub, (uint64_t)st->nodes[v].frame + 1);
		pb_msg(&tmp, 1, &sub);          // location_id, packed, leaf first
		sub.n = 0;
		pb_varint(&sub, x->count);
		pb_varint(&sub, x->bytes);
		pb_varint(&sub, x->leaked_count);
		pb_varint(&sub, x->leaked_bytes);
		pb_msg(&tmp, 2, &sub);          // value, packed
		sub.n = 0;
		pb_uint(&sub, 1, S_STATE);
		pb_uint(&sub, 2, x->leaked_count ? S_LEAKED : S_ANCHORED);
		pb_msg(&tmp, 3, &sub);          // label
		pb_msg(&prof, 2, &tmp);
	}
	// 3 mapping: functions, file names and lines are all "known"
	tmp.n = 0;
	pb_uint(&tmp, 1, 1);
	pb_uint(&tmp, 5, S_MAPPING);
	for (unsigned f = 7; f <= 10; f++)
		pb_uint(&tmp, f, 1);
	pb_msg(&prof, 3, &tmp);
	// 4 location, 5 function: one each per frame
	for (size_t f = 0; f < st->nframes && !prof.nomem; f++) {
		tmp.n = 0;
		sub.n = 0;
		pb_uint(&tmp, 1, f + 1);
		pb_uint(&tmp, 2, 1);
		pb_uint(&sub, 1, f + 1);        // Line.function_id
		pb_msg(&tmp, 4, &sub);
		pb_msg(&prof, 4, &tmp);
	}
	for (size_t f = 0; f < st->nframes && !prof.nomem; f++) {
		tmp.n = 0;
		pb_uint(&tmp, 1, f + 1);
		pb_uint(&tmp, 2, frame_base + f);
		pb_msg(&prof, 5, &tmp);
	}
	// 6 string_table
	for (size_t i = 0; i < nfixed; i++)
		pb_lenfield(&prof, 6, fixed_string(i, st->garbage), strlen(fixed_string(i, st->garbage)));
	for (size_t i = 0; i < ncomments; i++)
		pb_lenfield(&prof, 6, info->comments[i], strlen(info->comments[i]));
	for (size_t f = 0; f < st->nframes; f++)
		pb_lenfield(&prof, 6, st->frames[f], strlen(st->frames[f]));
	// 13 comment, 14 default_sample_type
	for (size_t i = 0; i < ncomments; i++)
		pb_uint(&prof, 13, S_FIRST_COMMENT + i);
	pb_uint(&prof, 14, S_INUSE_SPACE);
	struct hs_error *err = NULL;
	if (prof.nomem || tmp.nomem || sub.nomem)
		err = &hs_error_nomem;
	else
		err = gzip(&prof, ret, len_ret);
	free(prof.p);
	free(tmp.p);
	free(sub.p);
	return err;
}
