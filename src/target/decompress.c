/* decompress.c - see decompress.h. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <lz4frame.h>
#include <lzma.h>
#include <zstd.h>
#include "decompress.h"

#define ZSTD_MAGIC 0xFD2FB528u
#define LZ4_MAGIC 0x184D2204u
static const uint8_t xz_magic[6] = { 0xFD, '7', 'z', 'X', 'Z', 0x00 };
#define PAGE 4096

/* MemAvailable from /proc/meminfo, in bytes (0 if unknown). */
static uint64_t mem_available(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	if (!f)
		return 0;
	char line[256];
	uint64_t kb = 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %" SCNu64 " kB", &kb) == 1)
			break;
	fclose(f);
	return kb * 1024;
}

/* The sum of the frames' content sizes; UINT64_MAX when a frame does not say. */
static uint64_t content_size(const uint8_t *src, size_t len)
{
	uint64_t total = 0;
	while (len) {
		unsigned long long fcs = ZSTD_getFrameContentSize(src, len);
		size_t fsize = ZSTD_findFrameCompressedSize(src, len);
		if (fcs == ZSTD_CONTENTSIZE_UNKNOWN || fcs == ZSTD_CONTENTSIZE_ERROR || ZSTD_isError(fsize))
			return UINT64_MAX;
		total += fcs;
		src += fsize;
		len -= fsize;
	}
	return total;
}

static const char *tmp_dir(void)
{
	const char *d = getenv("TMPDIR");
	return d && *d ? d : "/var/tmp";
}

static void human(uint64_t v, char *buf, size_t len)
{
	const char *units[] = { "bytes", "KiB", "MiB", "GiB", "TiB" };
	double x = (double)v;
	int u = 0;
	while (x >= 1024 && u < 4) {
		x /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", x, units[u]);
}

/* An unlinked place for size bytes (UINT64_MAX: unknown). */
static struct hs_error *make_output(const char *path, const char *tool, uint64_t size, int *ret)
{
	uint64_t avail = mem_available();
	// Memory when the core takes at most half of what is available.
	if (size != UINT64_MAX && avail && size <= avail / 2) {
		int fd = memfd_create("heapscope-core", MFD_CLOEXEC);
		if (fd >= 0) {
			*ret = fd;
			return NULL;
		}
	}
	const char *dir = tmp_dir();
	struct statvfs vfs;
	if (size != UINT64_MAX && statvfs(dir, &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize < size) {
		char s[32], m[32], d[32];
		human(size, s, sizeof(s));
		human(avail, m, sizeof(m));
		human((uint64_t)vfs.f_bavail * vfs.f_frsize, d, sizeof(d));
		return hs_error_create(HS_ERR_TARGET,
				       "%s decompresses to %s: more than memory (%s available) or %s (%s free) can hold; "
				       "set TMPDIR to a larger file system, or decompress it yourself (%s -dc %s > CORE)",
				       path, s, m, dir, d, tool, path);
	}
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		char tmpl[4096];
		snprintf(tmpl, sizeof(tmpl), "%s/heapscope-core.XXXXXX", dir);
		fd = mkostemp(tmpl, O_CLOEXEC);
		if (fd >= 0)
			unlink(tmpl);
	}
	if (fd < 0)
		return hs_error_errno(errno, "cannot make a file in %s to decompress %s into (set TMPDIR)", dir, path);
	*ret = fd;
	return NULL;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	const uint64_t *w = (const uint64_t *)p;
	for (size_t i = 0; i < n / 8; i++)
		if (w[i])
			return false;
	return true;
}

/* Write [buf, buf+n) at *off, skipping whole zero pages (holes). */
static int write_sparse(int fd, const uint8_t *buf, size_t n, uint64_t *off)
{
	size_t i = 0;
	while (i < n) {
		size_t k = PAGE - (*off % PAGE);
		if (k > n - i)
			k = n - i;
		if (!(k == PAGE && all_zero(buf + i, k))) {
			size_t done = 0;
			while (done < k) {
				ssize_t w = pwrite(fd, buf + i + done, k - done, (off_t)(*off + done));
				if (w < 0 && errno == EINTR)
					continue;
				if (w <= 0)
					return w < 0 ? errno : ENOSPC;
				done += w;
			}
		}
		i += k;
		*off += k;
	}
	return 0;
}

/* Write a block of decompressed core; an error names the file and the size. */
static struct hs_error *emit(int out, const uint8_t *buf, size_t n, uint64_t *off, const char *path,
			     uint64_t size)
{
	int e = write_sparse(out, buf, n, off);
	if (!e)
		return NULL;
	char s[32];
	human(size, s, sizeof(s));
	return hs_error_errno(e, "cannot decompress %s (%s) into %s", path,
			      size == UINT64_MAX ? "size unknown" : s, tmp_dir());
}

/* The uncompressed size of a single xz stream, from its index (UINT64_MAX if
 * the file is not exactly one stream or its footer or index do not decode). */
static uint64_t xz_content_size(const uint8_t *src, size_t len)
{
	lzma_stream_flags footer;
	if (len < 2 * LZMA_STREAM_HEADER_SIZE ||
	    lzma_stream_footer_decode(&footer, src + len - LZMA_STREAM_HEADER_SIZE) != LZMA_OK ||
	    footer.backward_size > len - 2 * LZMA_STREAM_HEADER_SIZE)
		return UINT64_MAX;
	const uint8_t *ix = src + len - LZMA_STREAM_HEADER_SIZE - footer.backward_size;
	lzma_index *index = NULL;
	uint64_t memlimit = 64u << 20;
	size_t pos = 0;
	if (lzma_index_buffer_decode(&index, &memlimit, NULL, ix, &pos, footer.backward_size) != LZMA_OK)
		return UINT64_MAX;
	uint64_t size = UINT64_MAX;
	// One stream: its compressed size plus header and footer is the whole file.
	if (lzma_index_stream_count(index) == 1 && lzma_index_file_size(index) == len)
		size = lzma_index_uncompressed_size(index);
	lzma_index_end(index, NULL);
	return size;
}

static struct hs_error *decompress_xz(const uint8_t *src, size_t len, const char *path, int *ret)
{
	uint64_t size = xz_content_size(src, len);
	int out;
	HS_CHECK(make_output(path, "xz", size, &out));
	lzma_stream z = LZMA_STREAM_INIT;
	size_t cap = 1u << 20;
	uint8_t *buf = malloc(cap);
	struct hs_error *err = NULL;
	if (!buf || lzma_stream_decoder(&z, UINT64_MAX, LZMA_CONCATENATED) != LZMA_OK) {
		err = &hs_error_nomem;
		goto out;
	}
	z.next_in = src;
	z.avail_in = len;
	uint64_t off = 0;
	for (;;) {
		z.next_out = buf;
		z.avail_out = cap;
		lzma_ret r = lzma_code(&z, LZMA_FINISH);
		if ((err = emit(out, buf, cap - z.avail_out, &off, path, size)))
			goto out;
		if (r == LZMA_STREAM_END)
			break;
		if (r == LZMA_BUF_ERROR && z.avail_in == 0)
			break;   // cut short: keep what is there (a truncated core)
		if (r != LZMA_OK) {
			err = hs_error_create(HS_ERR_TARGET, "%s is a damaged xz file (%s after %" PRIu64 " bytes of core)",
					      path, r == LZMA_MEM_ERROR ? "out of memory" :
					      r == LZMA_FORMAT_ERROR ? "not xz" : "corrupt data", off);
			goto out;
		}
	}
	if (ftruncate(out, (off_t)off) != 0)
		err = hs_error_errno(errno, "cannot decompress %s", path);
out:
	lzma_end(&z);
	free(buf);
	if (err)
		close(out);
	else
		*ret = out;
	return err;
}

static struct hs_error *decompress_lz4(const uint8_t *src, size_t len, const char *path, int *ret)
{
	LZ4F_dctx *z = NULL;
	if (LZ4F_isError(LZ4F_createDecompressionContext(&z, LZ4F_VERSION)))
		return &hs_error_nomem;
	// The frame header says the content size when the writer knew it (lz4 -1 FILE does).
	LZ4F_frameInfo_t info;
	memset(&info, 0, sizeof(info));
	size_t hlen = len;
	uint64_t size = UINT64_MAX;
	if (LZ4F_isError(LZ4F_getFrameInfo(z, &info, src, &hlen))) {
		hlen = 0;   // the decoder then says what is wrong with the header
		LZ4F_resetDecompressionContext(z);
	} else if (info.contentSize) {
		size = info.contentSize;
	}
	int out = -1;
	struct hs_error *err = make_output(path, "lz4", size, &out);
	size_t cap = 4u << 20;
	uint8_t *buf = err ? NULL : malloc(cap);
	if (!err && !buf)
		err = &hs_error_nomem;
	size_t at = hlen;
	uint64_t off = 0;
	while (!err && at < len) {
		size_t olen = cap, ilen = len - at;
		size_t hint = LZ4F_decompress(z, buf, &olen, src + at, &ilen, NULL);
		if (LZ4F_isError(hint)) {
			err = hs_error_create(HS_ERR_TARGET, "%s is a damaged lz4 file (%s after %" PRIu64 " bytes of core)",
					      path, LZ4F_getErrorName(hint), off);
			break;
		}
		at += ilen;
		if ((err = emit(out, buf, olen, &off, path, size)))
			break;
		if (hint == 0 && at < len)   // another frame follows: lz4 concatenates
			LZ4F_resetDecompressionContext(z);
		if (olen == 0 && ilen == 0)
			break;
	}
	// Cut short (hint != 0 at the end): keep what is there (a truncated core).
	if (!err && ftruncate(out, (off_t)off) != 0)
		err = hs_error_errno(errno, "cannot decompress %s", path);
	free(buf);
	LZ4F_freeDecompressionContext(z);
	if (err) {
		if (out >= 0)
			close(out);
	} else {
		*ret = out;
	}
	return err;
}

static struct hs_error *decompress_zstd(const uint8_t *src, size_t len, const char *path, int *ret)
{
	uint64_t size = content_size(src, len);
	int out;
	HS_CHECK(make_output(path, "zstd", size, &out));
	ZSTD_DCtx *z = ZSTD_createDCtx();
	size_t cap = ZSTD_DStreamOutSize() * 4;
	uint8_t *buf = malloc(cap);
	struct hs_error *err = NULL;
	if (!z || !buf) {
		err = &hs_error_nomem;
		goto out;
	}
	ZSTD_inBuffer in = { src, len, 0 };
	uint64_t off = 0;
	size_t hint = 1;
	while (in.pos < in.size) {
		ZSTD_outBuffer o = { buf, cap, 0 };
		hint = ZSTD_decompressStream(z, &o, &in);
		if (ZSTD_isError(hint)) {
			err = hs_error_create(HS_ERR_TARGET, "%s is a damaged zstd file (%s after %" PRIu64 " bytes of core)",
					      path, ZSTD_getErrorName(hint), off);
			goto out;
		}
		int e = write_sparse(out, buf, o.pos, &off);
		if (e) {
			char s[32];
			human(size, s, sizeof(s));
			err = hs_error_errno(e, "cannot decompress %s (%s) into %s", path,
					     size == UINT64_MAX ? "size unknown" : s, tmp_dir());
			goto out;
		}
		if (o.pos == 0 && in.pos == in.size)
			break;
	}
	// Drain what the decoder still holds.
	for (;;) {
		ZSTD_outBuffer o = { buf, cap, 0 };
		ZSTD_inBuffer none = { NULL, 0, 0 };
		size_t r = ZSTD_decompressStream(z, &o, &none);
		if (ZSTD_isError(r) || o.pos == 0)
			break;
		int e = write_sparse(out, buf, o.pos, &off);
		if (e) {
			err = hs_error_errno(e, "cannot decompress %s into %s", path, tmp_dir());
			goto out;
		}
	}
	// hint != 0: the last frame is cut short; keep what is there (a truncated core).
	if (ftruncate(out, (off_t)off) != 0)
		err = hs_error_errno(errno, "cannot decompress %s", path);
out:
	free(buf);
	ZSTD_freeDCtx(z);
	if (err)
		close(out);
	else
		*ret = out;
	return err;
}

struct hs_error *hs_decompress_if_compressed(int *fd, const char *path)
{
	uint8_t head[6] = { 0 };
	uint32_t magic;
	if (pread(*fd, head, sizeof(head), 0) != (ssize_t)sizeof(head))
		return NULL;
	memcpy(&magic, head, 4);
	struct hs_error *(*decompress)(const uint8_t *, size_t, const char *, int *) =
		magic == ZSTD_MAGIC ? decompress_zstd :
		magic == LZ4_MAGIC ? decompress_lz4 :
		!memcmp(head, xz_magic, sizeof(xz_magic)) ? decompress_xz : NULL;
	if (!decompress)
		return NULL;
	struct stat st;
	if (fstat(*fd, &st) != 0)
		return hs_error_errno(errno, "cannot stat %s", path);
	void *src = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, *fd, 0);
	if (src == MAP_FAILED)
		return hs_error_errno(errno, "cannot map %s", path);
	madvise(src, st.st_size, MADV_SEQUENTIAL);
	int out = -1;
	struct hs_error *err = decompress(src, st.st_size, path, &out);
	munmap(src, st.st_size);
	if (err)
		return err;
	close(*fd);
	*fd = out;
	return NULL;
}
