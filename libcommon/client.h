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

/* Security options every client binary takes, in one place: TLS and the
 * bearer token. A binary puts FD_CLIENT_OPTIONS in its getopt_long table
 * and hands the codes it does not know to fd_client_opt(); FD_CLIENT_HELP
 * is their --help text. The values go to the process-wide fd_client_sec,
 * which every fd_client_init() uses; the environment (FD_TLS_CA,
 * FD_TLS_CERT, FD_TLS_KEY, FD_TOKEN) fills what no option set.
 *
 * Which scheme: a node address "https://HOST:PORT" is TLS and
 * "http://HOST:PORT" is not; a bare "HOST:PORT" is TLS when a CA or a
 * client certificate is given (option or environment), plain otherwise.
 * TLS verifies the node's certificate and name against the CA (without
 * one: the system's store). --tls-key defaults to the --tls-cert file. */
struct fd_client_sec {
	const char *tls_ca, *tls_cert, *tls_key, *token;
};
extern struct fd_client_sec fd_client_sec;

enum {
	FD_OPT_TLS_CA = 0x1100,
	FD_OPT_TLS_CERT,
	FD_OPT_TLS_KEY,
	FD_OPT_TOKEN,
};
#define FD_CLIENT_OPTIONS                                               \
	{"tls-ca", required_argument, NULL, FD_OPT_TLS_CA},             \
		{"tls-cert", required_argument, NULL, FD_OPT_TLS_CERT}, \
		{"tls-key", required_argument, NULL, FD_OPT_TLS_KEY},   \
	{                                                               \
		"token", required_argument, NULL, FD_OPT_TOKEN          \
	}
#define FD_CLIENT_HELP                                                                          \
	"      --tls-ca FILE       verify the node's TLS certificate with this CA\n"            \
	"                          (a bare HOST:PORT then means https; default $FD_TLS_CA)\n"   \
	"      --tls-cert FILE     client certificate for mutual TLS (default $FD_TLS_CERT)\n"  \
	"      --tls-key FILE      its private key (default $FD_TLS_KEY, else in --tls-cert)\n" \
	"      --token TOKEN       bearer token for the node's ACL (default $FD_TOKEN)\n"
/* Takes option c with its argument: returns 1 when c is one of
 * FD_CLIENT_OPTIONS (the value is checked by fd_client_init), else 0. */
int fd_client_opt(int c, const char *arg);

struct fd_client {
	void *curl;	/* CURL * */
	char addr[280]; /* "host:port", IPv6 in brackets */
	int tls;	/* https */
	int64_t timeout_ms;
	struct curl_slist *headers;
	char *auth;	/* "Authorization: Bearer …", or NULL */
	char local[80]; /* "host!IP" to send from, or "" */
};

/* Prepares a client for node addr ("host:port" or "[v6]:port", port
 * required, optionally after "http://" or "https://"; see fd_node_addr()),
 * with fd_client_sec's TLS settings and token.
 * Returns 0, or -1 with err filled (a malformed address, an unreadable
 * --tls-* file, an invalid token, out of memory). */
int fd_client_init(struct fd_client *c, const char *addr, int64_t timeout_ms,
		   struct fd_err *err);
void fd_client_release(struct fd_client *c);
/* Makes every later request leave from the local address ip (an IP
 * literal, no brackets; NULL: the system's choice). Returns 0, or -1 with
 * errno EINVAL when it is too long. */
int fd_client_send_from(struct fd_client *c, const char *ip);

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

/* Streaming, for clients that move a lot of data (fd-pub, fd-sub). */

/* Supplies the next bytes of a request body: fills buf (up to len bytes)
 * and returns how many; 0 ends the body; FD_CLIENT_ABORT fails the request. */
#define FD_CLIENT_ABORT ((size_t)-1)
typedef size_t (*fd_client_read_fn)(char *buf, size_t len, void *arg);
/* POSTs a body of unknown length (chunked) produced by fn, then waits for the
 * answer, as fd_client_call does (the timeout covers the answer only: the
 * body may stream for as long as fn likes). */
int fd_client_post_stream(struct fd_client *c, const char *path,
			  const char *content_type, fd_client_read_fn fn,
			  void *arg, long *status, struct json_object **resp,
			  struct fd_err *err);
/* POSTs body[0..len) with a content type; otherwise as fd_client_call. */
int fd_client_post_bytes(struct fd_client *c, const char *path,
			 const char *content_type, const char *body, size_t len,
			 long *status, struct json_object **resp,
			 struct fd_err *err);

/* Gets the response body as it arrives; return 0 to go on, nonzero to stop
 * (the request then ends with errno ECANCELED). */
typedef int (*fd_client_write_fn)(const char *data, size_t len, void *arg);
/* GETs path and streams a 2xx body to fn (called once with len 0 when the
 * 2xx headers are in: "connected"); timeout_ms (0: none) bounds the
 * whole transfer. Returns 0 when the server ended the body cleanly. On a
 * non-2xx answer returns -1 with *status set and err = its "error" message
 * (fn is not called) and errno EPROTO. Otherwise -1 with *status 0 or the status seen, err
 * filled and errno ECONNREFUSED (no connection), ECONNRESET (the connection
 * broke during the body), ETIMEDOUT or ECANCELED. */
int fd_client_get_stream(struct fd_client *c, const char *path,
			 int64_t timeout_ms, fd_client_write_fn fn, void *arg,
			 long *status, struct fd_err *err);

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

/* Sets c's TLS options (CA, client certificate) on another curl easy
 * handle, for callers that drive their own (curl multi), and turns
 * proxies off: a node is reached directly (http_proxy and the like are
 * ignored). */
void fd_client_setup_curl(const struct fd_client *c, void *curl);
/* "http" or "https", as fd_client_init decided for c. */
const char *fd_client_scheme(const struct fd_client *c);

/* s percent-encoded for a URL's query (RFC 3986 unreserved characters kept).
 * Returns a new string the caller must free(), or NULL (ENOMEM). */
char *fd_client_escape(struct fd_client *c, const char *s);

#endif
