#include "err.h"

#include <stdarg.h>
#include <stdio.h>

int fd_err_set(struct fd_err *err, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return -1;
}
