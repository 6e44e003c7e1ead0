/* clock.c - time, stage timings and the interrupt flag (clock.h). */
#include <signal.h>
#include <string.h>
#include <time.h>
#include "clock.h"

static volatile sig_atomic_t interrupt_flag;

void hs_interrupt(void) { interrupt_flag = 1; }
void hs_interrupt_clear(void) { interrupt_flag = 0; }
bool hs_interrupted(void) { return interrupt_flag != 0; }

double hs_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void hs_timings_add(struct hs_timings *t, const char *stage, double since)
{
	double s = hs_now() - since;
	for (size_t i = 0; i < t->n; i++) {
		if (!strcmp(t->v[i].stage, stage)) {
			t->v[i].seconds += s;
			return;
		}
	}
	if (t->n < HS_MAX_TIMINGS) {
		t->v[t->n].stage = stage;
		t->v[t->n++].seconds = s;
	}
}
