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
#include <zstd.h>
#include "decompress.h"

#define ZSTD_MAGIC 0xFD2FB528u
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
static struct hs_error *make_output(const char *path, uint64_t size, int *ret)
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
				       "set TMPDIR to a larger file system, or decompress it yourself (zstd -d %s -o CORE)",
				       path, s, m, dir, d, path);
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

static struct hs_error *decompress_zstd(const uint8_t *src, size_t len, const char *path, int *ret)
{
	uint64_t size = content_size(src, len);
	int out;
	HS_CHECK(make_output(path, size, &out));
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
	uint32_t magic = 0;
	if (pread(*fd, &magic, 4, 0) != 4 || magic != ZSTD_MAGIC)
		return NULL;
	struct stat st;
	if (fstat(*fd, &st) != 0)
		return hs_error_errno(errno, "cannot stat %s", path);
	void *src = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, *fd, 0);
	if (src == MAP_FAILED)
		return hs_error_errno(errno, "cannot map %s", path);
	madvise(src, st.st_size, MADV_SEQUENTIAL);
	int out = -1;
	struct hs_error *err = decompress_zstd(src, st.st_size, path, &out);
	munmap(src, st.st_size);
	if (err)
		return err;
	close(*fd);
	*fd = out;
	return NULL;
}
