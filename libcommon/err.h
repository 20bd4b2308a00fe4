/* Error reports from libcommon.
 *
 * libcommon never prints and never exits. A function that can fail in more
 * than one way fills a caller-provided struct fd_err with a lowercase message
 * (no trailing full stop) and returns -1 or NULL; the caller decides what to
 * say and whether to die.
 */
#ifndef FD_ERR_H
#define FD_ERR_H

struct fd_err {
	char msg[256];
};

/* Formats msg into err (when err is not NULL). Always returns -1. */
int fd_err_set(struct fd_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
