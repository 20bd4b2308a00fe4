#include "hlc.h"

#include <errno.h>
#include <stdio.h>

void fd_hlc_init(struct fd_hlc *c, uint64_t max_drift_ms)
{
	c->last = 0;
	c->max_drift_ms = max_drift_ms ? max_drift_ms : FD_HLC_DEFAULT_DRIFT_MS;
}

/* The smallest timestamp that is > last and has at least wall_ms as its
 * physical part. */
static uint64_t advance(uint64_t last, uint64_t wall_ms)
{
	if (wall_ms > FD_HLC_MS_MAX)
		wall_ms = FD_HLC_MS_MAX;
	if (wall_ms > fd_hlc_ms(last))
		return fd_hlc_make(wall_ms, 0);
	if (fd_hlc_logical(last) < FD_HLC_LOGICAL_MAX)
		return last + 1;
	/* Logical overflow: borrow one millisecond from the future. At the very
	 * end of time (year 10889) the clock sticks; nothing useful to do. */
	if (fd_hlc_ms(last) == FD_HLC_MS_MAX)
		return last;
	return fd_hlc_make(fd_hlc_ms(last) + 1, 0);
}

uint64_t fd_hlc_now(struct fd_hlc *c, uint64_t wall_ms)
{
	c->last = advance(c->last, wall_ms);
	return c->last;
}

int fd_hlc_update(struct fd_hlc *c, uint64_t remote, uint64_t wall_ms, uint64_t *out)
{
	uint64_t drift = c->max_drift_ms ? c->max_drift_ms : FD_HLC_DEFAULT_DRIFT_MS;
	uint64_t base;

	if (wall_ms > FD_HLC_MS_MAX)
		wall_ms = FD_HLC_MS_MAX;
	if (fd_hlc_ms(remote) > wall_ms && fd_hlc_ms(remote) - wall_ms > drift) {
		errno = ERANGE;
		return -1;
	}
	base = remote > c->last ? remote : c->last;
	c->last = advance(base, wall_ms);
	if (out)
		*out = c->last;
	return 0;
}

int fd_hlc_cmp(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

char *fd_hlc_format(uint64_t t, char *buf, size_t len)
{
	snprintf(buf, len, "%012llx-%04x", (unsigned long long)fd_hlc_ms(t),
		 fd_hlc_logical(t));
	return buf;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

int fd_hlc_parse(const char *s, uint64_t *t)
{
	uint64_t v = 0;

	for (int i = 0; i < FD_HLC_STR_LEN - 1; i++) {
		int h;

		if (i == 12) {
			if (s[i] != '-')
				goto bad;
			continue;
		}
		h = hexval(s[i]);
		if (h < 0)
			goto bad;
		v = (v << 4) | (uint64_t)h;
	}
	if (s[FD_HLC_STR_LEN - 1] != '\0')
		goto bad;
	*t = v;
	return 0;
bad:
	errno = EINVAL;
	return -1;
}
