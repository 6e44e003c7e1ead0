/* progress.c - see progress.h. */
#include "progress.h"
#include "session.h"

void hs_session_set_progress(struct hs_session *s, hs_progress_fn fn, void *ctx)
{
	s->progress_fn = fn;
	s->progress_ctx = ctx;
}

void hs_progress_begin(struct hs_session *s, const char *stage, uint64_t total)
{
	s->progress_stage = stage;
	s->progress_total = total;
	if (s->progress_fn)
		s->progress_fn(s->progress_ctx, stage, 0, total);
}

void hs_progress_update(struct hs_session *s, uint64_t done)
{
	if (s->progress_fn && s->progress_stage)
		s->progress_fn(s->progress_ctx, s->progress_stage, done, s->progress_total);
}

void hs_progress_end(struct hs_session *s)
{
	if (s->progress_fn && s->progress_stage)
		s->progress_fn(s->progress_ctx, s->progress_stage, s->progress_total ? s->progress_total : 1,
			       s->progress_total ? s->progress_total : 1);
	s->progress_stage = NULL;
}
