#include "clock.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <time.h>

static int64_t clock_us(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t fd_mono_ms(void)
{
	return clock_us(CLOCK_MONOTONIC) / 1000;
}

int64_t fd_mono_us(void)
{
	return clock_us(CLOCK_MONOTONIC);
}

int64_t fd_wall_us(void)
{
	return clock_us(CLOCK_REALTIME);
}

char *fd_ts_format(int64_t wall_us, char *buf, size_t len)
{
	time_t sec = (time_t)(wall_us / 1000000);
	int64_t us = wall_us % 1000000;
	struct tm tm;

	if (us < 0) {
		us += 1000000;
		sec--;
	}
	gmtime_r(&sec, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (int)us);
	return buf;
}

/* A number of n decimal digits in [min, max] at *p, then the character
 * sep (0: none); advances *p. -1 when it is not there. */
static int field(const char **p, int n, int min, int max, char sep)
{
	int v = 0;

	for (int i = 0; i < n; i++, (*p)++) {
		if (!isdigit((unsigned char)**p))
			return -1;
		v = v * 10 + (**p - '0');
	}
	if (v < min || v > max)
		return -1;
	if (sep) {
		if (toupper((unsigned char)**p) != sep)
			return -1;
		(*p)++;
	}
	return v;
}

int fd_ts_parse(const char *s, int64_t *wall_us)
{
	const char *p = s;
	struct tm tm = {0};
	int64_t us = 0, scale = 100000, off = 0;
	int f[6];
	static const int len[6] = {4, 2, 2, 2, 2, 2},
			 lo[6] = {0, 1, 1, 0, 0, 0},
			 hi[6] = {9999, 12, 31, 23, 59, 60};
	static const char sep[6] = {'-', '-', 'T', ':', ':', 0};

	for (int i = 0; i < 6; i++) {
		f[i] = field(&p, len[i], lo[i], hi[i], sep[i]);
		if (f[i] < 0)
			goto bad;
	}
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			goto bad;
		for (; isdigit((unsigned char)*p); p++, scale /= 10)
			us += (*p - '0') * scale;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, oh, om;

		p++;
		oh = field(&p, 2, 0, 23, ':');
		om = oh < 0 ? -1 : field(&p, 2, 0, 59, 0);
		if (om < 0)
			goto bad;
		off = sign * (oh * 3600 + om * 60);
	} else {
		goto bad;
	}
	if (*p)
		goto bad;
	tm.tm_year = f[0] - 1900;
	tm.tm_mon = f[1] - 1;
	tm.tm_mday = f[2];
	tm.tm_hour = f[3];
	tm.tm_min = f[4];
	tm.tm_sec = f[5];
	*wall_us = ((int64_t)timegm(&tm) - off) * 1000000 + us;
	return 0;
bad:
	errno = EINVAL;
	return -1;
}
