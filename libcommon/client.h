/* A blocking client for one node's HTTP API, for the command-line tools
 * (fd-join, fd-registry, fd-node info, …). One keep-alive connection is
 * reused across calls. The node itself never uses this: it uses the async
 * client in http.h.
 */
#ifndef FD_CLIENT_H
#define FD_CLIENT_H

#include <json-c/json.h>
#include <stdint.h>

#include "err.h"

struct curl_slist;

struct fd_client {
	void *curl;	/* CURL * */
	char addr[280]; /* "host:port", IPv6 in brackets */
	int64_t timeout_ms;
	struct curl_slist *headers;
};

/* Prepares a client for node addr ("host:port" or "[v6]:port", port
 * required; see fd_node_addr()).
 * Returns 0, or -1 with err filled (a malformed address, out of memory). */
int fd_client_init(struct fd_client *c, const char *addr, int64_t timeout_ms,
		   struct fd_err *err);
void fd_client_release(struct fd_client *c);

/* Sends method path with body (NULL: none; serialized compactly) and waits
 * for the answer. On an HTTP answer of any status returns 0, sets *status and
 * *resp (a new object the caller must json_object_put(), or NULL when the
 * body is not JSON). On a transport failure returns -1 with err = "unable to
 * reach 'ADDR': why" (and errno = ETIMEDOUT on a timeout). */
int fd_client_call(struct fd_client *c, const char *method, const char *path,
		   struct json_object *body, long *status,
		   struct json_object **resp, struct fd_err *err);

/* Like fd_client_call, but a status other than 2xx is an error too: err takes
 * the body's "error" message. Returns 0, or -1 (transport error or non-2xx,
 * *status says which: 0 for transport). */
int fd_client_call_ok(struct fd_client *c, const char *method, const char *path,
		      struct json_object *body, long *status,
		      struct json_object **resp, struct fd_err *err);

/* Line-oriented answers (application/x-ndjson and other line formats), read
 * as they arrive, without holding the whole answer: lists of any length,
 * bulk results, and streams that never end by themselves (watches).
 *
 * on_line is called for each line of a 2xx answer (without its newline; a
 * last line without one counts too; empty lines are skipped); line is
 * borrowed until it returns. on_tick, when not NULL, is called about once a
 * second while the transfer waits for data (e.g. to notice that stdout's
 * reader went away). Either may return non-zero to stop the transfer. */
struct fd_client_lines {
	const char *method;
	const char *path;
	const char *body; /* NULL: no body */
	size_t len;
	const char *content_type; /* of body; NULL: application/json */
	size_t max_line;	  /* longest line accepted; 0: 16 MiB */
	int (*on_line)(const char *line, size_t len, void *arg);
	int (*on_tick)(void *arg);
	void *arg;
	/* out */
	long status;   /* HTTP status, 0 when none arrived */
	int stopped;   /* a callback stopped the transfer */
	int timed_out; /* c->timeout_ms passed (status may be set already) */
	unsigned long lines; /* lines handed to on_line */
};

/* Sends l->method l->path (with l->body) and reads the answer, waiting at
 * most c->timeout_ms in all (0: no limit). Returns 0 when a 2xx answer was
 * read to its end, 1 when a callback stopped it. Returns -1 with err filled
 * otherwise: a non-2xx answer (l->status set, err = its "error" message, or
 * "'ADDR' answered HTTP N"), a transport failure or a connection lost midway
 * (err = "unable to reach 'ADDR': why", or "connection to 'ADDR' lost: why"
 * once the answer began), a timeout (l->timed_out, errno = ETIMEDOUT), or a
 * line longer than max_line. */
int fd_client_lines(struct fd_client *c, struct fd_client_lines *l,
		    struct fd_err *err);

/* s percent-encoded for a URL's query (RFC 3986 unreserved characters kept).
 * Returns a new string the caller must free(), or NULL (ENOMEM). */
char *fd_client_escape(struct fd_client *c, const char *s);

#endif
