#include "commands.h"
struct hs_error *hs_cmd_report(struct hs_cmd *c) { (void)c; return hs_error_create(HS_ERR_USAGE, "todo"); }
