/* error.c - see error.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "error.h"
#include "output.h"

struct hs_error hs_error_nomem = {
	.code = HS_ERR_NOMEM, .is_static = true, .message = (char *)"out of memory",
};

static struct hs_error *error_vcreate(enum hs_error_code code, const char *suffix,
				      const char *fmt, va_list ap)
{
	struct hs_error *err = calloc(1, sizeof(*err));
	if (!err)
		return &hs_error_nomem;
	char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0) {
		free(err);
		return &hs_error_nomem;
	}
	if (suffix) {
		char *full = NULL;
		if (asprintf(&full, "%s: %s", msg, suffix) < 0) {
			free(msg);
			free(err);
			return &hs_error_nomem;
		}
		free(msg);
		msg = full;
	}
	// Messages quote the target (paths, names): keep them printable, one
	// line, valid UTF-8, whatever the core holds.
	char *clean = hs_text_escape_dup(msg);
	free(msg);
	if (!clean) {
		free(err);
		return &hs_error_nomem;
	}
	err->code = code;
	err->message = clean;
	return err;
}

struct hs_error *hs_error_create(enum hs_error_code code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct hs_error *err = error_vcreate(code, NULL, fmt, ap);
	va_end(ap);
	return err;
}

struct hs_error *hs_error_errno(int errnum, const char *fmt, ...)
{
	enum hs_error_code code = HS_ERR_OS;
	if (errnum == EACCES || errnum == EPERM)
		code = HS_ERR_PERMISSION;
	else if (errnum == ENOMEM)
		code = HS_ERR_NOMEM;
	va_list ap;
	va_start(ap, fmt);
	struct hs_error *err = error_vcreate(code, strerror(errnum), fmt, ap);
	va_end(ap);
	return err;
}

struct hs_error *hs_error_fault(enum hs_error_code code, uint64_t addr)
{
	struct hs_error *err = hs_error_create(code, code == HS_ERR_NOT_DUMPED ?
		"memory at 0x%" PRIx64 " is not in the core (the process had it, the dump left it out)" :
		"address 0x%" PRIx64 " is not mapped in the target", addr);
	if (err != &hs_error_nomem)
		err->address = addr;
	return err;
}

enum hs_error_code hs_error_code(const struct hs_error *err)
{
	return err ? err->code : HS_OK;
}

const char *hs_error_message(const struct hs_error *err)
{
	return err ? err->message : "success";
}

void hs_error_destroy(struct hs_error *err)
{
	if (!err || err->is_static)
		return;
	free(err->message);
	free(err);
}
