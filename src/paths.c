/* paths.c - files named by the user or by a core (paths.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "paths.h"

struct hs_error *hs_outpath(const char *path, struct hs_outpath *out)
{
	*out = (struct hs_outpath){ 0 };
	if (!*path)
		return hs_error_create(HS_ERR_USAGE, "-o takes a file name, not an empty one");
	struct stat st, lst;
	if (stat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return hs_error_create(HS_ERR_USAGE, "%s is a directory; -o takes a file name", path);
		if (!S_ISREG(st.st_mode)) {
			// Renaming a file over /dev/null (we may be root) would
			// break the machine; a pipe's reader would see nothing.
			out->special = true;
			out->file = strdup(path);
			return out->file ? NULL : &hs_error_nomem;
		}
		// A link to a regular file: the file is replaced, not the link.
		if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode)) {
			out->file = realpath(path, NULL);
			if (!out->file)
				return hs_error_errno(errno, "cannot follow %s", path);
			return NULL;
		}
	}
	// A new file, a regular one, or a link to nothing (replaced).
	out->file = strdup(path);
	return out->file ? NULL : &hs_error_nomem;
}

int hs_open_regular(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -1;
	struct stat st;
	int e = 0, flags;
	if (fstat(fd, &st) != 0)
		e = errno;
	else if (!S_ISREG(st.st_mode))
		e = EINVAL;
	else if ((flags = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0)
		e = errno;
	if (e) {
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}
