#ifndef HS_DEBUG_CACHE_H
#define HS_DEBUG_CACHE_H

#include <stddef.h>
#include <stdint.h>

/* The directory of decompressed debug-file copies (debug_cache.c):
 * $HEAPSCOPE_CACHE_DIR/debug, else $XDG_CACHE_HOME/heapscope/debug, else
 * ~/.cache/heapscope/debug; NULL when HEAPSCOPE_CACHE_DIR is set and empty
 * (no copies) or there is no home.  Freed by the caller. */
char *hs_debug_cache_dir(void);

/* The copy of the debug file with build-id id, with plain DWARF sections:
 * its descriptor, *orig_ret the file it was made from (which must still be
 * there, unchanged) and *copy_ret its path (both freed by the caller); -1
 * when there is none. */
int hs_debug_cache_open(const uint8_t *id, size_t idlen, char **orig_ret, char **copy_ret);

/* Make the copy of debug file orig (build-id id) for the runs to come, when
 * its compressed sections are worth it; any failure leaves none. */
void hs_debug_cache_store(const char *orig, const uint8_t *id, size_t idlen);

#endif
