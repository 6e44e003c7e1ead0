/* progress.h - progress of long work, reported through the callback the
 * front end gave (hs_session_set_progress); the library itself never prints.
 * A stage begins (name, total units or 0 when unknown), may update, and ends.
 * Updates are cheap when no callback is set; callers update every few
 * thousand units, not every one.
 */
#ifndef HS_PROGRESS_H
#define HS_PROGRESS_H

#include <stdint.h>

struct hs_session;

void hs_progress_begin(struct hs_session *s, const char *stage, uint64_t total);
void hs_progress_update(struct hs_session *s, uint64_t done);
void hs_progress_end(struct hs_session *s);

#endif
