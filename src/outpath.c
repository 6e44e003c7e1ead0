/* outpath.c - where "-o PATH" writes (outpath.h). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "outpath.h"

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
