/* error.h - errors: what failed, where, and what to do.
 *
 * Every fallible internal function returns struct hs_error * (NULL = success).
 * hs_error_nomem is a static singleton, so making an error never fails; it is
 * never freed (hs_error_destroy ignores it).  Messages are one sentence, with
 * no trailing newline, printable: bytes from the target that are controls or
 * not well-formed UTF-8 are written \xNN (hs_text_escape_dup), so a message
 * is safe on a terminal and in JSON.
 */
#ifndef HS_ERROR_H
#define HS_ERROR_H

#include <stdbool.h>
#include <stdint.h>
#include "heapscope.h"

struct hs_error {
	enum hs_error_code code;
	bool is_static;
	uint64_t address;       /* for NOT_DUMPED / UNMAPPED: the first address that failed */
	bool at_open;           /* made opening a target (diff's older core): the exit
	                           status is the one for opening (hs_error_exit_status) */
	char *message;
};

extern struct hs_error hs_error_nomem;

struct hs_error *hs_error_create(enum hs_error_code code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* An OS error: the message is "<fmt>: strerror(errnum)". */
struct hs_error *hs_error_errno(int errnum, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A memory read fault at addr (code is HS_ERR_NOT_DUMPED or HS_ERR_UNMAPPED). */
struct hs_error *hs_error_fault(enum hs_error_code code, uint64_t addr);

#define HS_CHECK(expr) do { struct hs_error *err__ = (expr); if (err__) return err__; } while (0)

#endif
