/* Leveled logging to stderr, as text or as JSON lines.
 *
 * Text:  2026-11-26T17:06:31.123456Z fd-node warn: probe of 'n2' timed out
 * JSON:  {"ts":"…","level":"warn","prog":"fd-node","msg":"…","trace":"…"}
 *
 * Logging is the one thing libcommon writes (to stderr only). A message below
 * the current level costs one comparison.
 */
#ifndef FD_LOG_H
#define FD_LOG_H

#include <stddef.h>
#include <stdint.h>

enum fd_log_level {
	FD_LOG_DEBUG,
	FD_LOG_INFO,
	FD_LOG_WARN,
	FD_LOG_ERROR,
	FD_LOG_OFF,
};

enum fd_log_format { FD_LOG_TEXT, FD_LOG_JSON };

extern enum fd_log_level fd_log_level;
extern enum fd_log_format fd_log_format;
/* The trace id of the work being done, logged with each line while set
 * (NULL: none). Borrowed: the caller keeps it alive while it is set. */
extern const char *fd_log_trace;

/* Parse "debug|info|warn|error|off" / "text|json". Return 0 or -1. */
int fd_log_parse_level(const char *s, enum fd_log_level *out);
int fd_log_parse_format(const char *s, enum fd_log_format *out);
const char *fd_log_level_name(enum fd_log_level l);

void fd_log(enum fd_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define fd_debug(...)                                      \
	do {                                               \
		if (fd_log_level <= FD_LOG_DEBUG)          \
			fd_log(FD_LOG_DEBUG, __VA_ARGS__); \
	} while (0)
#define fd_info(...) fd_log(FD_LOG_INFO, __VA_ARGS__)
#define fd_warnlog(...) fd_log(FD_LOG_WARN, __VA_ARGS__)
#define fd_errlog(...) fd_log(FD_LOG_ERROR, __VA_ARGS__)

/* Renders one log line (without the newline) into buf; used by fd_log and
 * by the tests. Returns the length that was (or would have been) written. */
int fd_log_render(char *buf, size_t len, int64_t wall_us,
		  enum fd_log_level level, const char *msg);

#endif
