/* diag.h - findings: what a stage noticed and kept going past (corrupt chunk,
 * not dumped memory, build-id mismatch).  Stages never print; they record here
 * and the front end shows them.
 */
#ifndef HS_DIAG_H
#define HS_DIAG_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"

enum hs_diag_level { HS_DIAG_INFO, HS_DIAG_WARNING, HS_DIAG_ERROR };

struct hs_diag {
	enum hs_diag_level level;
	const char *stage;     /* static string: "core", "symbols", "glibc", ... */
	uint64_t address;      /* 0 when none */
	char *message;
};

struct hs_diags {
	struct hs_diag *items;
	size_t n, cap;
	size_t dropped;        /* past the cap (HS_DIAGS_MAX), only counted */
};
#define HS_DIAGS_MAX 10000

void hs_diags_init(struct hs_diags *d);
void hs_diags_deinit(struct hs_diags *d);
void hs_diag_add(struct hs_diags *d, enum hs_diag_level level, const char *stage,
		 uint64_t address, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
