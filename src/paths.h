/* paths.h - files named by the user or by a core, read or written safely.
 *
 * Reading: a path may name a FIFO or a device, whose open blocks (a FIFO
 * without a writer) or whose reads never end; only regular files are read.
 *
 * Writing ("-o PATH"): a new file is written under a temporary name beside
 * its final one and renamed into place when whole (export, report,
 * capture): what PATH names decides which file that is, and whether
 * renaming is right at all. */
#ifndef HS_PATHS_H
#define HS_PATHS_H

#include <stdbool.h>
#include "error.h"

struct hs_outpath {
	char *file;     /* the file to replace: PATH, or the regular file PATH's
			 * symbolic links lead to (the links stay links) */
	bool special;   /* PATH is a device, a FIFO or a socket (/dev/null,
			 * /dev/stdout, a pipe): written in place, never replaced */
};

/* PATH examined (an empty one or a directory is refused: HS_ERR_USAGE);
 * free out->file. */
struct hs_error *hs_outpath(const char *path, struct hs_outpath *out);

/* PATH opened read-only (O_CLOEXEC) if it is a regular file, without
 * blocking on a FIFO; -1 otherwise, errno EINVAL when it is no regular file. */
int hs_open_regular(const char *path);

#endif
