/* outpath.h - where "-o PATH" writes.  A new file is written under a
 * temporary name beside its final one and renamed into place when whole
 * (export, report, capture): what PATH names decides which file that is, and
 * whether renaming is right at all. */
#ifndef HS_OUTPATH_H
#define HS_OUTPATH_H

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

#endif
