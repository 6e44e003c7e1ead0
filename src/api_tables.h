/* api_tables.h - internals of the facts and tables API (api_tables.c). */
#ifndef HS_API_TABLES_H
#define HS_API_TABLES_H

#include <stdbool.h>
#include "heapscope.h"

/* Fills the name lists and the public command table once (thread-safe). */
void hs_api_tables_init(void);
/* The --where values (hs_where_names()), NULL-terminated, for option tables;
 * filled by hs_api_tables_init(). */
extern const char *hs_api_where_list[];
/* A value the option accepts (always true unless HS_OPTION_CHOICE). */
bool hs_option_value_ok(const struct hs_option_info *o, const char *value);

/* A session's facts (struct hs_session.api_facts), freed with the session. */
struct hs_api_facts;
void hs_api_facts_destroy(struct hs_api_facts *f);

#endif
