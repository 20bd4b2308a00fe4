/* Clocks and timestamps. */
#ifndef FD_CLOCK_H
#define FD_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic time in milliseconds / microseconds (CLOCK_MONOTONIC). */
int64_t fd_mono_ms(void);
int64_t fd_mono_us(void);
/* Wall-clock time in microseconds since the epoch (CLOCK_REALTIME). */
int64_t fd_wall_us(void);

/* Formats wall-clock microseconds as RFC 3339 UTC with microseconds,
 * "2026-11-26T17:06:31.123456Z", into buf (at least FD_TS_LEN bytes).
 * Returns buf. */
#define FD_TS_LEN 32
char *fd_ts_format(int64_t wall_us, char *buf, size_t len);
/* Parses an RFC 3339 time ("2026-11-26T17:06:31.123456Z", any number of
 * fraction digits, "Z" or a "+hh:mm"/"-hh:mm" offset; 't' and 'z' allowed)
 * into wall-clock microseconds. Returns 0, or -1 (EINVAL) when s is not one. */
int fd_ts_parse(const char *s, int64_t *wall_us);

#endif
