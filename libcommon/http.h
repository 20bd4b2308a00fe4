/* HTTP in the node's loop: a server on libmicrohttpd and an async client on
 * libcurl multi, both driven by fd_loop (no threads).
 *
 * Server: routes are (method, path) pairs; a path ending in '/' matches every
 * path under it. Request bodies are collected up to a limit (413 beyond it);
 * a route flagged FD_HTTP_JSON gets its body parsed (400 on invalid JSON).
 * Every error reply is a JSON object {"error": "..."}; unknown paths get 404,
 * known paths with another method 405 with an Allow header.
 *
 * A handler replies at once (fd_http_reply_*), defers (fd_http_defer, then
 * replies later from any loop callback), or starts a stream
 * (fd_http_stream_begin) and writes to it as data comes. A deferred request
 * or a stream whose client goes away is reported through the on_close
 * callback; after it the handle is gone.
 *
 * Client: fd_http_request() starts a request and calls back once with the
 * status and body (or a transport error). Connections are kept alive and
 * reused per host by curl's connection cache.
 */
#ifndef FD_HTTP_H
#define FD_HTTP_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "loop.h"

struct fd_http_server;
struct fd_http_req;

enum {
	FD_HTTP_JSON = 1,  /* parse the body as JSON; 400 if it is not */
	FD_HTTP_LARGE = 2, /* body up to max_large_body (node-to-node state) */
	/* the handler runs as soon as the headers are in and takes the body in
	 * pieces through fd_http_on_body() (no body limit: the route bounds
	 * what it keeps) */
	FD_HTTP_STREAM_BODY = 4,
	/* Authorization classes, for the server's auth hook (http.c itself
	 * does not interpret them; fd-node's meaning is in cmd/fd-node/authz.c):
	 * none of them: the read scope */
	FD_HTTP_OPEN = 8,    /* no token needed (health probes) */
	FD_HTTP_ADMIN = 16,  /* the admin scope */
	FD_HTTP_SCOPED = 32, /* the handler checks per name (publish, …) */
};

typedef void (*fd_http_handler)(struct fd_http_req *req, void *arg);
typedef void (*fd_http_close_cb)(struct fd_http_req *req, void *arg);

struct fd_http_server_opts {
	int listen_fd; /* bound and listening TCP socket; owned by the server */
	size_t max_body;       /* largest request body (0: 1 MiB) */
	size_t max_large_body; /* the same for FD_HTTP_LARGE routes (0: 64 MiB) */
	unsigned max_conns;    /* 0: 1024 */
	unsigned max_conns_per_ip; /* connections from one address (0: none) */
	unsigned idle_timeout;	   /* seconds (0: 60) */
	/* TLS (libmicrohttpd's, on GnuTLS): PEM text, not file names, borrowed
	 * only during fd_http_server_new. tls_cert (which may hold the chain)
	 * and tls_key switch TLS on; tls_ca with tls_verify_client makes every
	 * request need a client certificate that tls_ca signed (the others get
	 * 403 before any route or hook runs). */
	const char *tls_cert, *tls_key, *tls_ca;
	int tls_verify_client;
};

/* A new certificate (chain) and key, PEM text, for the connections srv
 * accepts from now on (those open keep theirs). On error (a certificate
 * or key that does not load, a server without TLS) the one in use stays.
 * Returns 0, or -1 with err filled. */
struct fd_http_server;
int fd_http_server_reload_tls(struct fd_http_server *srv, const char *cert,
			      const char *key, struct fd_err *err);

/* Returns a new server serving on opts->listen_fd in loop, or NULL with err
 * filled. */
struct fd_http_server *fd_http_server_new(struct fd_loop *loop,
					  const struct fd_http_server_opts *opts,
					  struct fd_err *err);
/* Closes every connection (streams and deferred requests get on_close) and
 * frees the server. NULL does nothing. */
void fd_http_server_free(struct fd_http_server *srv);

/* Adds a route. path is borrowed (a string literal, typically). Returns 0 or
 * -1 (ENOMEM / too many routes). */
int fd_http_route(struct fd_http_server *srv, const char *method,
		  const char *path, unsigned flags, fd_http_handler h, void *arg);

/* Fault gate (fd-node's fault injection): called for every request that
 * matched a route, before its handler. Returning non-zero means the gate
 * replied (e.g. 503) and the handler does not run. NULL removes it. */
typedef int (*fd_http_server_gate)(struct fd_http_req *req, void *arg);
void fd_http_server_set_gate(struct fd_http_server *srv, fd_http_server_gate g,
			     void *arg);
/* From the gate: hold the request ms milliseconds (a delay rule), then go
 * on with it as if the gate had let it through. The gate returns non-zero
 * after this call; the connection waits suspended meanwhile. */
void fd_http_hold(struct fd_http_req *req, int64_t ms);

/* The replies the server has queued, by status class: by_class[1] for
 * 1xx ... by_class[5] for 5xx, by_class[0] for any other status. */
void fd_http_server_counts(const struct fd_http_server *srv, uint64_t by_class[6]);
/* Reply hook (fd-node's response signing): called by every non-stream
 * reply with its status and body before it is queued; it may add headers
 * (fd_http_reply_header). NULL removes it. */
typedef void (*fd_http_reply_hook)(struct fd_http_req *req, unsigned status,
				   const char *body, size_t len, void *arg);
void fd_http_server_set_reply_hook(struct fd_http_server *srv,
				   fd_http_reply_hook h, void *arg);
/* Authorization hook: called once per request that matched a route, as soon
 * as its headers are in (before the body is read, before the fault gate),
 * with the route's flags. Returns 0 to let the request go on, or non-zero
 * after replying (401, 403): the body is then read and dropped, and the
 * handler never runs. NULL removes it. */
typedef int (*fd_http_server_auth)(struct fd_http_req *req, unsigned flags,
				   void *arg);
void fd_http_server_set_auth(struct fd_http_server *srv, fd_http_server_auth a,
			     void *arg);
/* What the hook learnt about the client (who it is, what it may do), kept
 * with the request for its handler; free_fn(data) (when not NULL) runs when
 * the request ends. Setting it again frees the previous data. */
void fd_http_set_auth_data(struct fd_http_req *req, void *data,
			   void (*free_fn)(void *));
void *fd_http_auth_data(const struct fd_http_req *req);

/* Request accessors; strings are borrowed and valid until the request ends. */
const char *fd_http_method(const struct fd_http_req *req);
const char *fd_http_path(const struct fd_http_req *req);
/* The request target as sent: path and query, not decoded. */
const char *fd_http_target(const struct fd_http_req *req);
/* 1 on a route flagged FD_HTTP_STREAM_BODY (its body is not read yet when
 * the gate runs), else 0. */
int fd_http_body_streamed(const struct fd_http_req *req);
/* The part of the path after a prefix route's '/' ("" for exact routes),
 * percent-decoded. */
const char *fd_http_subpath(const struct fd_http_req *req);
const char *fd_http_query(struct fd_http_req *req, const char *key);
const char *fd_http_header(struct fd_http_req *req, const char *name);
const char *fd_http_body(const struct fd_http_req *req, size_t *len);
/* The parsed body of an FD_HTTP_JSON route (borrowed), else NULL. */
struct json_object *fd_http_json(const struct fd_http_req *req);
/* "ip:port" of the client. */
const char *fd_http_peer(const struct fd_http_req *req);
/* 1 when the client is on this host: its address is a loopback one
 * (127.0.0.0/8, ::1) or one of the host's own (a local client reaching the
 * node at its own address; the kernel drops packets from outside that
 * claim such a source), else 0. */
int fd_http_peer_local(struct fd_http_req *req);
/* Every query argument as a new JSON object of strings (the caller must
 * json_object_put() it). */
struct json_object *fd_http_query_json(struct fd_http_req *req);
/* The status of the reply given (0: none yet). */
unsigned fd_http_status(const struct fd_http_req *req);
/* 1 when the request came over TLS. */
int fd_http_tls(const struct fd_http_req *req);

/* Replies with status and obj (ownership of obj passes to the call). */
void fd_http_reply_json(struct fd_http_req *req, unsigned status,
			struct json_object *obj);
/* Replies {"error": message} with status. */
void fd_http_reply_error(struct fd_http_req *req, unsigned status, const char *fmt,
			 ...) __attribute__((format(printf, 3, 4)));
/* Replies with a body of the given content type (copied). */
void fd_http_reply(struct fd_http_req *req, unsigned status,
		   const char *content_type, const char *body, size_t len);
/* Adds a header to the coming reply (both strings copied). */
int fd_http_reply_header(struct fd_http_req *req, const char *name, const char *value);

/* Keeps the request open after the handler returns; reply later. */
void fd_http_defer(struct fd_http_req *req);
/* From a handler: the reply (arguments copied), given once the server's
 * next run is over, so that what the handler wrote to streams goes out
 * first (local watchers before a peer's acknowledgement). The reply hook
 * runs then. Out of memory, it replies at once. */
void fd_http_reply_after(struct fd_http_req *req, unsigned status,
			 const char *content_type, const char *body, size_t len);
/* Called if the client goes away (or the server is freed) before the
 * request ends; the request is gone afterwards. */
void fd_http_on_close(struct fd_http_req *req, fd_http_close_cb cb, void *arg);

/* Streaming request bodies (routes flagged FD_HTTP_STREAM_BODY). The
 * handler calls fd_http_on_body() and fd_http_defer(); cb then gets the body
 * as it arrives (end 0), and once more with len 0 and end 1 when it is
 * complete. cb returns how many bytes it consumed: fewer than len pauses the
 * body (the connection stops reading, so the client is slowed down, not
 * dropped) until fd_http_body_resume(); the bytes not consumed come again.
 * The handler (or cb) may reply at any time; a body still coming after a
 * reply is read and discarded. */
typedef size_t (*fd_http_body_cb)(struct fd_http_req *req, const char *data,
				  size_t len, int end, void *arg);
void fd_http_on_body(struct fd_http_req *req, fd_http_body_cb cb, void *arg);
void fd_http_body_resume(struct fd_http_req *req);
/* Sets this connection's idle timeout in seconds (0: none), for long
 * streams. */
void fd_http_set_timeout(struct fd_http_req *req, unsigned seconds);

/* Streams: a 200 response of unknown length (chunked), written as data
 * arrives. The queue is capped at max_queued bytes; fd_http_stream_write
 * returns -1 (ENOBUFS) when the data does not fit, and the caller decides
 * (drop, gap line, disconnect). */
int fd_http_stream_begin(struct fd_http_req *req, const char *content_type,
			 size_t max_queued);
int fd_http_stream_write(struct fd_http_req *req, const char *data, size_t len);
size_t fd_http_stream_queued(const struct fd_http_req *req);
/* Calls cb from the loop whenever the stream's queue has been written down
 * to low_water bytes or fewer (a producer waiting for room refills it). cb
 * may write to the stream. */
typedef void (*fd_http_drain_cb)(struct fd_http_req *req, void *arg);
void fd_http_stream_on_drain(struct fd_http_req *req, size_t low_water,
			     fd_http_drain_cb cb, void *arg);
/* Ends the stream once the queue is written. */
void fd_http_stream_end(struct fd_http_req *req);

/* Client */

struct fd_http_client;

struct fd_http_resp {
	long status;	  /* HTTP status, 0 on a transport error */
	const char *body; /* response body (NUL-terminated), borrowed */
	size_t len;
	const char *error; /* transport error ("connection refused"), or NULL */
	int timed_out;
};

typedef void (*fd_http_done_cb)(const struct fd_http_resp *resp, void *arg);

/* max_resp: largest response body accepted (0: 16 MiB). NULL + err on error. */
struct fd_http_client *fd_http_client_new(struct fd_loop *loop, size_t max_resp,
					  struct fd_err *err);
/* Cancels pending requests without calling back, frees. NULL does nothing. */
void fd_http_client_free(struct fd_http_client *c);

/* Starts method url with an optional body (copied) and extra headers (NULL
 * or a NULL-terminated array of "Name: value" strings, copied). cb runs
 * exactly once from the loop, unless the request is cancelled first.
 * Returns a handle (never 0), or 0 with err filled. */
uint64_t fd_http_request(struct fd_http_client *c, const char *method,
			 const char *url, const char *body, size_t len,
			 const char *const *headers, int64_t timeout_ms,
			 fd_http_done_cb cb, void *arg, struct fd_err *err);
/* The same with a body of len bytes that is not copied but read as it is
 * sent: rd(buf, max, rarg) fills buf with the next bytes (at most max, at
 * least 1 while any are left) and returns how many. So a large body costs
 * no copy up front, and whoever holds it may move it between reads. */
typedef size_t (*fd_http_read_cb)(char *buf, size_t max, void *rarg);
uint64_t fd_http_request_read(struct fd_http_client *c, const char *method,
			      const char *url, size_t len, fd_http_read_cb rd,
			      void *rarg, const char *const *headers,
			      int64_t timeout_ms, fd_http_done_cb cb, void *arg,
			      struct fd_err *err);
/* Cancels a pending request; cb is not called. Unknown handles are ignored. */
void fd_http_cancel(struct fd_http_client *c, uint64_t handle);
/* Requests started and not yet called back. */
size_t fd_http_pending(const struct fd_http_client *c);

/* Fault gate (fd-node's fault injection): called by fd_http_request for
 * every request with its url. Returns 0 to start it (after *delay_ms when
 * set above 0), or -1 to fail it as unreachable: the callback then runs
 * from the loop with error "connection refused (fault injected)". NULL
 * removes it. */
typedef int (*fd_http_client_gate)(const char *url, int64_t *delay_ms, void *arg);
void fd_http_client_set_gate(struct fd_http_client *c, fd_http_client_gate g,
			     void *arg);
/* A header ("Name: value", copied) added to every request of c from now
 * on (e.g. "X-FD-From: n1"). Returns 0, or -1 (ENOMEM). */
int fd_http_client_set_header(struct fd_http_client *c, const char *header);
/* Requests go straight to their host: http_proxy, https_proxy and
 * all_proxy are ignored (peers are reached directly), unless this is
 * called (a client of a service outside the cluster, such as the
 * Kubernetes API). */
void fd_http_client_use_env_proxy(struct fd_http_client *c);

/* Signing hook (fd-node's cluster key). sign is called for every request
 * of c with its destination (scheme, host and port of the URL), method,
 * target (path and query), and body (NULL with len 0 and stream 1 for a
 * body read as it is sent, fd_http_request_read); it
 * writes one header line ("Name: value") into hdr (cap bytes) and returns
 * 1, or returns 0 to add none. check (may be NULL) is called for each
 * answer to a request sign added a line to, before the request's callback:
 * with the target, that line, the status, the value of the answer's header
 * named check_header (NULL when absent) and the body. It returns 0 to pass
 * the answer on, or -1 with why filled: the callback then sees status 0
 * and error why. NULL removes the hook. */
struct fd_http_signer {
	int (*sign)(const char *dest, const char *method, const char *target,
		    const void *body, size_t len, int stream, char *hdr,
		    size_t cap, void *arg);
	int (*check)(const char *target, const char *sent, long status,
		     const char *value, const char *body, size_t len, char *why,
		     size_t cap, void *arg);
	const char *check_header; /* borrowed */
	void *arg;
};
void fd_http_client_set_signer(struct fd_http_client *c,
			       const struct fd_http_signer *s);

/* TLS for every request of c (libcurl on OpenSSL): peers are verified
 * against the CA file ca (NULL: the system's store), and c presents the
 * client certificate cert with its key (NULL: none; key NULL: in cert's
 * file). A TLS client speaks https only: a request for an http:// URL goes
 * to https:// on the same host and port (a node's one port is either TLS
 * or not, and a cluster runs one way). File names are copied. Returns 0,
 * or -1 (ENOMEM). */
int fd_http_client_set_tls(struct fd_http_client *c, const char *ca,
			   const char *cert, const char *key);
/* Only the CA bundle (a PEM file, copied path) that https requests of c
 * trust from now on, instead of the system's (NULL: the system's again),
 * for a client that also speaks plain http (fd_http_client_set_tls sets it
 * too). Returns 0, or -1 (ENOMEM). */
int fd_http_client_set_ca(struct fd_http_client *c, const char *path);

/* "http://HOST:PORT" + path for a node address "host:port" or "[v6]:port". */
int fd_http_url(char *buf, size_t len, const char *addr, const char *path);

#endif
