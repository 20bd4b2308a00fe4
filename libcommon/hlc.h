/* Hybrid logical clock (Kulkarni et al., "Logical Physical Clocks").
 *
 * A timestamp is one uint64_t: the high 48 bits are physical milliseconds
 * since the epoch, the low 16 bits a logical counter. Comparing two
 * timestamps as integers orders them: if event a happened before event b
 * (locally, or through a message carrying a's timestamp), then a < b. The
 * physical part stays close to the wall clock: it never runs ahead of the
 * largest wall time seen by more than the drift the clock accepts.
 *
 * Pure: the caller passes the wall time in (fd_wall_us() / 1000 in a node, a
 * fake clock in tests and the simulator). Nothing here reads a clock.
 *
 * Drift: a remote timestamp whose physical part is more than max_drift_ms
 * ahead of our wall clock is rejected by fd_hlc_update (errno ERANGE, the
 * clock unchanged), so one node with a broken clock cannot drag every
 * other clock into the future. The caller drops or logs that message; a
 * rejected timestamp may still be stored as data (an entry's hlc), it just
 * does not advance our clock.
 *
 * When the logical counter would overflow (65536 events in one millisecond)
 * the physical part is advanced by one millisecond instead: the clock stays
 * monotonic and runs ahead of the wall clock by at most that much.
 */
#ifndef FD_HLC_H
#define FD_HLC_H

#include <stddef.h>
#include <stdint.h>

#define FD_HLC_LOGICAL_BITS 16
#define FD_HLC_LOGICAL_MAX 0xffffu
#define FD_HLC_MS_MAX ((UINT64_C(1) << 48) - 1)
/* Default accepted drift of a remote clock ahead of ours. */
#define FD_HLC_DEFAULT_DRIFT_MS 60000
/* Length of the text form, "0190f5c2a1b3-0001", with its NUL. */
#define FD_HLC_STR_LEN 18

struct fd_hlc {
	uint64_t last;	       /* the latest timestamp issued or received */
	uint64_t max_drift_ms; /* see above; 0 takes the default */
};

/* Starts a clock at 0 with the given drift bound (0: the default). */
void fd_hlc_init(struct fd_hlc *c, uint64_t max_drift_ms);

/* A timestamp for a local or send event; strictly greater than every
 * timestamp this clock issued or accepted before. wall_ms above
 * FD_HLC_MS_MAX is clamped. Never fails. */
uint64_t fd_hlc_now(struct fd_hlc *c, uint64_t wall_ms);

/* Receive event: merges a remote timestamp. On success returns 0 and, when
 * out is not NULL, stores a timestamp greater than both the remote one and
 * every one issued before. Returns -1 with errno ERANGE, the clock unchanged,
 * when remote is more than max_drift_ms ahead of wall_ms. */
int fd_hlc_update(struct fd_hlc *c, uint64_t remote, uint64_t wall_ms, uint64_t *out);

/* -1, 0, 1 as a < b, a == b, a > b. */
int fd_hlc_cmp(uint64_t a, uint64_t b);

static inline uint64_t fd_hlc_make(uint64_t ms, uint64_t logical)
{
	return (ms << FD_HLC_LOGICAL_BITS) | (logical & FD_HLC_LOGICAL_MAX);
}

static inline uint64_t fd_hlc_ms(uint64_t t)
{
	return t >> FD_HLC_LOGICAL_BITS;
}

static inline unsigned fd_hlc_logical(uint64_t t)
{
	return (unsigned)(t & FD_HLC_LOGICAL_MAX);
}

/* Text form for JSON: 12 lowercase hex digits of milliseconds, '-', 4 hex
 * digits of logical counter. Fixed width, so strings sort like timestamps
 * (a JSON number cannot hold 64 bits exactly). buf holds at least
 * FD_HLC_STR_LEN bytes. Returns buf. */
char *fd_hlc_format(uint64_t t, char *buf, size_t len);

/* Parses the text form (exactly that form). Returns 0 or -1 with errno
 * EINVAL. */
int fd_hlc_parse(const char *s, uint64_t *t);

#endif
