/* debuginfod.c - see debuginfod.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "debuginfod.h"
#include "symbols.h"

char *hs_debuginfod_cached(const uint8_t *build_id, size_t len)
{
	const char *urls = getenv("DEBUGINFOD_URLS");
	if (!urls || !*urls || !len || len > 64)
		return NULL;
	char dir[4096];
	const char *cache = getenv("DEBUGINFOD_CACHE_PATH"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	if (cache && *cache)
		snprintf(dir, sizeof(dir), "%s", cache);
	else if (xdg && *xdg)
		snprintf(dir, sizeof(dir), "%s/debuginfod_client", xdg);
	else if (home && *home)
		snprintf(dir, sizeof(dir), "%s/.cache/debuginfod_client", home);
	else
		return NULL;
	char hex[129];
	hs_build_id_hex(build_id, len, hex, sizeof(hex));
	size_t plen = strlen(dir) + strlen(hex) + 16;
	char *path = malloc(plen);
	if (!path)
		return NULL;
	snprintf(path, plen, "%s/%s/debuginfo", dir, hex);
	struct stat st;
	// An empty file is the client's record of a miss.
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
		free(path);
		return NULL;
	}
	return path;
}
