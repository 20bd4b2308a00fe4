/* Peer discovery: the parts every strategy shares, without I/O.
 *
 * A strategy (static, file, ...) produces answers: complete lists of peer
 * addresses, one per read of its source. fd_peer_addr_norm() validates and
 * normalizes each address; struct fd_peerset turns the stream of answers
 * into "up" and "down" changes:
 *
 * - a peer is up the first time an answer names it (duplicates count once);
 * - a peer goes down after down_after answers in a row that do not name it;
 * - a failed read is not an answer, and neither is an empty one (a source
 *   that says nothing, or is caught half-written, never removes peers).
 */
#ifndef FD_DISCOVER_H
#define FD_DISCOVER_H

#include <json-c/json.h>
#include <stddef.h>

#include "err.h"

/* Longest normalized address, with the NUL: "[" host "]:" port. */
#define FD_PEER_ADDR_LEN 272

/* Normalizes "host", "host:port", "[v6]" or "[v6]:port" into out (at least
 * FD_PEER_ADDR_LEN bytes) as "host:port", "[v6]:port" for an IPv6 host; a
 * missing port is FD_DEFAULT_PORT. Port 0 is refused (it names no peer).
 * Returns 0, or -1 with err = "invalid address 'S' (expected HOST[:PORT])". */
int fd_peer_addr_norm(const char *s, char *out, size_t outlen, struct fd_err *err);

/* One line of a peer file (len bytes, no newline needed): text from '#' on
 * is a comment, surrounding blanks are ignored. Returns 1 with the
 * normalized address in out, 0 for a blank or comment-only line, -1 with err
 * for anything else (err names the problem, not the line number). */
int fd_peer_file_line(const char *line, size_t len, char *out, size_t outlen,
		      struct fd_err *err);

/* One line of a command's output (exec strategy): a plain address line as
 * fd_peer_file_line() takes it, or a JSON object (the line starts with '{')
 * such as fd-discover prints: {"addr":"HOST:PORT"} with optional "type"
 * ("peer"), "event" ("up"), "name" (a string) and "meta" (an object).
 * Records of another type and "down" events are skipped.
 * Returns 1 with the normalized address in out and, when obj is not NULL,
 * *obj set to the parsed object (a new reference the caller must
 * json_object_put(), NULL for a plain line); 0 for a line to skip; -1 with
 * err naming the problem (not the line number). */
int fd_peer_line(const char *line, size_t len, char *out, size_t outlen,
		 struct json_object **obj, struct fd_err *err);

/* Formats a binary IPv4 (AF_INET, 4 bytes) or IPv6 (AF_INET6, 16 bytes)
 * address and a port (1..65535) as a normalized peer address ("a.b.c.d:p",
 * "[v6]:p"). Returns 0, or -1 with errno = EINVAL. */
int fd_peer_addr_ip(int family, const void *ip, int port, char *out, size_t outlen);

/* One SRV record of an answer. */
struct fd_srv {
	unsigned short priority, weight, port;
	const char *target; /* borrowed; without the trailing dot */
};

/* Sorts SRV records into the order peers are reported in: priority
 * ascending, then weight descending, then target and port. */
void fd_srv_sort(struct fd_srv *v, size_t n);

struct fd_peerset {
	unsigned down_after; /* answers without a peer before it is down (>= 1) */
	size_t max;	     /* most peers kept */
	/* private */
	struct json_object *peers; /* addr -> consecutive answers without it */
	struct json_object *seen;  /* addrs of the answer being built */
};

/* down_after 0 is taken as 1; max 0 as 65536. Returns 0, or -1 (ENOMEM). */
int fd_peerset_init(struct fd_peerset *s, unsigned down_after, size_t max);
void fd_peerset_release(struct fd_peerset *s);

/* Starts an answer. */
int fd_peerset_begin(struct fd_peerset *s);
/* Adds addr (normalized) to the answer. Returns 1 when the peer is new
 * (it is up: report it), 0 when it is known or a duplicate, -1 with
 * errno = ENOSPC when max peers are known already, ENOMEM. */
int fd_peerset_add(struct fd_peerset *s, const char *addr);
/* The same, recording the peer's name (NULL: keep the one known) and meta
 * (borrowed, a reference is kept; NULL: keep the one known): the latest
 * answer's description wins. */
int fd_peerset_add_meta(struct fd_peerset *s, const char *addr,
			const char *name, struct json_object *meta);
/* Ends the answer and calls down(addr) for each peer that has now been
 * missing from down_after answers in a row; it is forgotten afterwards
 * (down() can still fd_peerset_get() it, to say what went down).
 * An empty answer changes nothing. Returns the number of peers down. */
size_t fd_peerset_end(struct fd_peerset *s,
		      void (*down)(const char *addr, void *arg), void *arg);
/* Drops the answer being built without counting it (a failed read). */
void fd_peerset_abort(struct fd_peerset *s);

/* Number of peers currently up. */
size_t fd_peerset_count(const struct fd_peerset *s);
/* Looks up a peer that is up: 0 with *name and *meta (either may be NULL)
 * set to what the last answers said (borrowed, valid until s changes; NULL
 * when not known), or -1 when addr is not up. */
int fd_peerset_get(const struct fd_peerset *s, const char *addr,
		   const char **name, struct json_object **meta);
/* Calls fn for every peer that is up (fn must not change s). */
void fd_peerset_each(const struct fd_peerset *s,
		     void (*fn)(const char *addr, const char *name,
				struct json_object *meta, void *arg),
		     void *arg);

#endif
