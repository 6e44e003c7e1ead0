/* clock.h - time, stage timings and the interrupt flag: what every stage of
 * the analysis checks or records.  A leaf module, so a stage (graph.c,
 * dominators.c, a walker) needs neither the session nor its header for them. */
#ifndef HS_CLOCK_H
#define HS_CLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include "heapscope.h"

/* Monotonic seconds. */
double hs_now(void);

/* Set by hs_interrupt() (public, signal-safe), cleared by
 * hs_interrupt_clear(); long loops poll it and stop with HS_ERR_INTERRUPTED. */
bool hs_interrupted(void);

#define HS_MAX_TIMINGS 16
/* Seconds per stage, in the order the stages first ran; a stage that runs
 * again adds to its line. */
struct hs_timings {
	struct hs_stage_timing v[HS_MAX_TIMINGS];
	size_t n;
};
/* Adds now - since to stage (a string literal: kept, not copied). */
void hs_timings_add(struct hs_timings *t, const char *stage, double since);

#endif
