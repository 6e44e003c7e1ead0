/* decompress.h - compressed cores, read transparently: a zstd, xz or lz4 file
 * (recognised by its magic number, not its name) is decompressed once into an
 * unlinked file, which the target then maps like any core.
 *
 * Where it goes: a memfd when the decompressed size (as the file records it:
 * zstd and lz4 frames' content size, an xz stream's index) fits comfortably
 * in available memory, else an unlinked file in $TMPDIR (default /var/tmp)
 * when its file system has the room; else a clear error saying how big the
 * core is and how to decompress it by hand.
 * Zero pages are left as holes (gdb's cores are mostly zeros).  A stream cut
 * short gives the part that is there (the target then reports a truncated
 * core); corrupt data is an error.
 */
#ifndef HS_DECOMPRESS_H
#define HS_DECOMPRESS_H

#include "error.h"

/* If *fd (open on path) is compressed, replace it with a descriptor of the
 * decompressed core (closing the original).  Otherwise leave it alone. */
struct hs_error *hs_decompress_if_compressed(int *fd, const char *path);

#endif
