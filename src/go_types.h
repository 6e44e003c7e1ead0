/* go_types.h - Go objects named by their Go types (go_types.c). */
#ifndef HS_GO_TYPES_H
#define HS_GO_TYPES_H

struct hs_session;
struct hs_analysis;
struct hs_types;

/* Fill a->type for the Go heap's objects (the session's go_rt, set with the
 * analysis); nothing when the heap is not Go's. */
void hs_go_types(struct hs_session *s, struct hs_analysis *a, struct hs_types *t);

#endif
