#include "clock.h"

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
