#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *fd_prog = "fd";
const char *fd_usage = "";

void fd_cli_init(const char *prog, const char *usage)
{
	fd_prog = prog;
	fd_usage = usage;
	opterr = 0;
	signal(SIGPIPE, SIG_IGN);
}

static void vwarn(const char *fmt, va_list ap)
{
	char buf[1024];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	fprintf(stderr, "%s: %s\n", fd_prog, buf);
}

void fd_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
}

void fd_die(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
	exit(code);
}

void fd_usage_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
	fprintf(stderr, "usage: %s\n", fd_usage);
	exit(FD_EXIT_USAGE);
}

void fd_usage_getopt(int c, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "?";

	if (c == ':' && optopt && arg[0] == '-' && arg[1] != '-')
		fd_usage_die("option '-%c' requires an argument", optopt);
	if (c == ':')
		fd_usage_die("option '%s' requires an argument", arg);
	if (optopt)
		fd_usage_die("unknown option '-%c'", optopt);
	fd_usage_die("unknown option '%s'", arg);
}

void fd_help_exit(const char *help)
{
	printf("usage: %s\n%s", fd_usage, help ? help : "");
	if (fflush(stdout) || ferror(stdout))
		exit(FD_EXIT_RUNTIME);
	exit(FD_EXIT_OK);
}

void fd_version_exit(void)
{
	printf("%s %s\n", fd_prog, FD_VERSION);
	exit(fflush(stdout) ? FD_EXIT_RUNTIME : FD_EXIT_OK);
}

int fd_parse_duration(const char *s, int64_t *ms)
{
	static const struct {
		const char *unit;
		double ms;
	} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"", 1000}};
	char *end;
	double v;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		goto inval;
	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno || !isfinite(v))
		goto inval;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].unit) != 0)
			continue;
		v *= units[i].ms;
		if (v > (double)INT64_MAX / 2) {
			errno = ERANGE;
			return -1;
		}
		*ms = (int64_t)llround(v);
		return 0;
	}
inval:
	errno = EINVAL;
	return -1;
}

int fd_parse_size(const char *s, uint64_t *bytes)
{
	static const struct {
		const char *unit;
		uint64_t mult;
	} units[] = {
		{"", 1},
		{"B", 1},
		{"K", 1ULL << 10},
		{"KiB", 1ULL << 10},
		{"M", 1ULL << 20},
		{"MiB", 1ULL << 20},
		{"G", 1ULL << 30},
		{"GiB", 1ULL << 30},
		{"KB", 1000},
		{"MB", 1000000},
		{"GB", 1000000000},
		{"k", 1ULL << 10},
	};
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		goto inval;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].unit) != 0)
			continue;
		if (v > UINT64_MAX / units[i].mult) {
			errno = ERANGE;
			return -1;
		}
		*bytes = v * units[i].mult;
		return 0;
	}
inval:
	errno = EINVAL;
	return -1;
}

int fd_parse_int(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	if (!s || !*s || *s == ' ') {
		errno = EINVAL;
		return -1;
	}
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end) {
		errno = EINVAL;
		return -1;
	}
	if (errno == ERANGE || v < min || v > max) {
		errno = ERANGE;
		return -1;
	}
	*out = v;
	return 0;
}

int fd_parse_hostport(const char *s, char *host, size_t hostlen, int defport,
		      int *port)
{
	const char *h = s, *hend, *p = NULL;
	long long v;

	if (!s || !*s)
		goto inval;
	if (*s == '[') {
		h = s + 1;
		hend = strchr(h, ']');
		if (!hend || hend == h)
			goto inval;
		if (hend[1] == ':')
			p = hend + 2;
		else if (hend[1])
			goto inval;
	} else {
		hend = strrchr(s, ':');
		if (hend && strchr(s, ':') != hend)
			goto inval; /* bare IPv6 needs brackets */
		if (hend)
			p = hend + 1;
		else
			hend = s + strlen(s);
	}
	if (hend == h || (size_t)(hend - h) >= hostlen)
		goto inval;
	for (const char *c = h; c < hend; c++)
		if (*c <= ' ' || *c == '/' || *c == '@' || *c == '?' || *c == '#')
			goto inval;
	if (p) {
		if (fd_parse_int(p, 0, 65535, &v) < 0)
			goto inval;
		*port = (int)v;
	} else if (defport >= 0) {
		*port = defport;
	} else {
		goto inval;
	}
	memcpy(host, h, (size_t)(hend - h));
	host[hend - h] = '\0';
	return 0;
inval:
	errno = EINVAL;
	return -1;
}

const char *fd_node_addr(const char *arg)
{
	const char *env;

	if (arg && *arg)
		return arg;
	env = getenv("FD_NODE");
	return env && *env ? env : FD_DEFAULT_NODE;
}
