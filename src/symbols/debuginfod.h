/* debuginfod.h - where libdebuginfod put what it fetched.
 *
 * libdwfl fetches missing debug info itself when DEBUGINFOD_URLS is set
 * (dwfl_standard_find_debuginfo falls back to libdebuginfod, dlopen()ed by
 * libdw: Debian's libdebuginfod1), but does not name the file it got.  This
 * finds it in the client's cache, by the rules of libdebuginfod:
 * $DEBUGINFOD_CACHE_PATH, else $XDG_CACHE_HOME/debuginfod_client, else
 * $HOME/.cache/debuginfod_client; the file is BUILDID/debuginfo.
 */
#ifndef HS_DEBUGINFOD_H
#define HS_DEBUGINFOD_H

#include <stddef.h>
#include <stdint.h>

/* The cached debug file of this build-id (malloc()ed), or NULL when
 * DEBUGINFOD_URLS is unset or nothing non-empty is cached. */
char *hs_debuginfod_cached(const uint8_t *build_id, size_t len);

#endif
