/* Command-line helpers shared by every binary: exit codes (DESIGN.md §4),
 * messages in the form "fd-xxx: what failed: why", usage errors, and the
 * parsing of durations and sizes.
 *
 * fd_die() and fd_usage_die() exit; they exist for cmd/ only. Everything else
 * here returns a status and leaves the decision to the caller.
 */
#ifndef FD_CLI_H
#define FD_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdnoreturn.h>

enum fd_exit {
	FD_EXIT_OK = 0,
	FD_EXIT_RUNTIME = 1,	/* runtime error */
	FD_EXIT_USAGE = 2,	/* bad command line */
	FD_EXIT_NOTFOUND = 3,	/* the thing asked for does not exist */
	FD_EXIT_CONFLICT = 4,	/* it exists and may not be replaced */
	FD_EXIT_TIMEOUT = 5,	/* timeout, or the condition was not met */
	FD_EXIT_REGRESSION = 6, /* a benchmark regressed beyond the threshold */
	FD_EXIT_DATA = 7,	/* bad input data (some records were skipped) */
};

/* The running program's name, set first thing in main(). */
extern const char *fd_prog;
/* Its usage line(s), printed by fd_usage_die() after the complaint. */
extern const char *fd_usage;

/* Sets fd_prog and fd_usage, ignores SIGPIPE (we talk to sockets and pipes;
 * EPIPE is handled where it is written, see jsonl.h). */
void fd_cli_init(const char *prog, const char *usage);
/* Also sets getopt's opterr to 0: bad options are reported by
 * fd_usage_getopt() in our own words. */

/* "fd-xxx: message\n" on stderr. */
void fd_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
noreturn void fd_die(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* One line saying what was wrong, then "usage: ..." on stderr; exit 2. */
noreturn void fd_usage_die(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
/* For getopt_long() returning '?' or ':' (with an optstring starting with
 * ':' and opterr = 0): names the bad option and exits 2. */
noreturn void fd_usage_getopt(int c, char **argv);
/* Prints "usage: ..." and help text on stdout and exits 0 (for --help). */
noreturn void fd_help_exit(const char *help);
/* Prints "fd-xxx VERSION" on stdout and exits 0 (for --version). */
noreturn void fd_version_exit(void);

/* Parses a duration: a non-negative number with an optional fraction and an
 * optional unit ms, s, m or h; a bare number is seconds ("1.5" = 1500 ms).
 * Returns 0 and sets *ms, or -1 with errno = EINVAL / ERANGE. */
int fd_parse_duration(const char *s, int64_t *ms);

/* Parses a size in bytes: an integer with an optional unit B, K/KiB, M/MiB,
 * G/GiB (powers of 1024) or KB, MB, GB (powers of 1000).
 * Returns 0 and sets *bytes, or -1 with errno = EINVAL / ERANGE. */
int fd_parse_size(const char *s, uint64_t *bytes);

/* Parses a base-10 integer in [min, max] with nothing after it.
 * Returns 0 or -1 with errno = EINVAL / ERANGE. */
int fd_parse_int(const char *s, long long min, long long max, long long *out);

/* Splits "host:port" or "[v6]:port" into host (copied into host, at most
 * hostlen bytes with the NUL) and port. A missing ":port" takes defport
 * (-1: required). Port 0 is allowed. Returns 0, or -1 with errno = EINVAL. */
int fd_parse_hostport(const char *s, char *host, size_t hostlen, int defport,
		      int *port);

/* The node a client talks to: arg when not NULL, else $FD_NODE, else
 * FD_DEFAULT_NODE. */
#define FD_DEFAULT_PORT 4380
#define FD_DEFAULT_NODE "127.0.0.1:4380"
const char *fd_node_addr(const char *arg);

#endif
