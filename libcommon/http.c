/* HTTP server (libmicrohttpd, external epoll mode) and client (libcurl multi),
 * both driven by fd_loop. See http.h for the contracts.
 *
 * MHD runs without threads: its own epoll fd is watched by our loop and
 * MHD_run() is called when it is readable or when MHD's timeout expires.
 * A suspended connection is invisible to MHD (it cannot see the client
 * leave), so while one is suspended we watch its socket for EPOLLRDHUP
 * ourselves and resume it when the peer hangs up. */
#include "http.h"
#include "buf.h"
#include "jsonl.h"
#include "log.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <ifaddrs.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_ROUTES 64
#define MAX_REPLY_HEADERS 8
#define DEFAULT_MAX_BODY (1024 * 1024)
#define DEFAULT_MAX_RESP (16 * 1024 * 1024)
#define DEFAULT_MAX_LARGE_BODY (64 * 1024 * 1024)

struct route {
	const char *method;
	const char *path;
	size_t plen;
	int prefix;
	unsigned flags;
	fd_http_handler h;
	void *arg;
};

struct fd_http_server {
	struct fd_loop *loop;
	struct MHD_Daemon *d;
	int epfd;
	struct fd_timer timer;
	size_t max_body, max_large_body;
	struct route routes[MAX_ROUTES];
	int nroutes;
	struct fd_http_req *reqs; /* every live request, for shutdown */
	/* fd_http_reply_after: replies asked for since the last run began
	 * (given after the next run), and those due after the current one */
	struct fd_http_req *after, *after_due;
	int stopping;
	int resumed; /* a connection was resumed since the last MHD_run() */
	int closed;  /* a connection was closed during the last MHD_run() */
	fd_http_server_gate gate; /* fault injection */
	void *gate_arg;
	uint64_t replies[6]; /* by status class (fd_http_server_counts) */
	fd_http_reply_hook reply_hook; /* response signing */
	void *reply_hook_arg;
	fd_http_server_auth auth;
	void *auth_arg;
	int tls, verify_client;
	char *tls_ca;	       /* MHD keeps a pointer to it */
	struct tls_cred *cred; /* the certificate served to new connections */
	struct fd_http_server *next_tls; /* tls_servers */
	struct own_addr *own;		 /* the host's addresses (peer_local) */
	size_t nown;
	int64_t own_at; /* when read (loop time); -1: never */
};

enum req_state {
	REQ_RECEIVING, /* headers and body coming in */
	REQ_HANDLING,  /* inside the handler */
	REQ_DEFERRED,  /* handler returned without a reply */
	REQ_REPLIED,   /* a response was queued (or is about to be) */
	REQ_STREAMING, /* a stream response is queued */
};

struct fd_http_req {
	struct fd_http_server *srv;
	struct MHD_Connection *conn;
	const char *method, *path, *subpath;
	char *target; /* path and query as sent */
	enum req_state state;
	struct fd_buf body;
	int too_big;
	struct json_object *json;
	struct MHD_Response *resp; /* built by a reply, not yet queued */
	unsigned status;
	char *hdr_name[MAX_REPLY_HEADERS], *hdr_value[MAX_REPLY_HEADERS];
	int nhdr;
	int suspended, watch_fd, peer_gone;
	fd_http_close_cb on_close;
	void *close_arg;
	/* stream */
	char *sbuf;
	size_t soff, slen, scap, smax;
	int sended;
	fd_http_drain_cb drain_cb;
	void *drain_arg;
	size_t drain_low;
	/* streaming request body */
	int sbody, body_done, body_paused;
	fd_http_body_cb body_cb;
	void *body_arg;
	char peer[64];
	int local;
	void *auth_data;
	void (*auth_free)(void *);
	/* held by the fault gate (fd_http_hold): the route to go on with */
	const struct route *held;
	int64_t hold_ms;
	struct fd_timer hold_timer;
	/* fd_http_reply_after: the reply, and the next in srv's list */
	struct fd_http_req *after_next;
	unsigned after_status;
	char *after_type, *after_body;
	size_t after_len;
	struct fd_http_req *prev, *next;
};

/* Server: MHD in our loop */

static void server_run(struct fd_http_server *srv);

static void on_mhd_timer(struct fd_loop *loop, struct fd_timer *t, void *arg)
{
	(void)loop;
	(void)t;
	server_run(arg);
}

static void on_mhd_fd(struct fd_loop *loop, int fd, uint32_t events, void *arg)
{
	(void)loop;
	(void)fd;
	(void)events;
	server_run(arg);
}

static void reply_after_due(struct fd_http_server *srv);

static void server_run(struct fd_http_server *srv)
{
	MHD_UNSIGNED_LONG_LONG timeout;

	srv->after_due = srv->after;
	srv->after = NULL;
	srv->resumed = srv->closed = 0;
	MHD_run(srv->d);
	reply_after_due(srv);
	/* A connection resumed during that run (a handler that wrote to a
	 * stream or replied to a deferred request) is only acted on in the
	 * next run, and MHD's own timeout does not count it: run again now
	 * rather than at the next unrelated event. The same after a connection
	 * closed: at --max-conns MHD takes its listening socket out of its
	 * epoll set, and only puts it back at the start of a run. */
	if (srv->resumed || srv->closed || srv->after)
		fd_timer_arm(srv->loop, &srv->timer, 0);
	else if (MHD_get_timeout(srv->d, &timeout) == MHD_YES)
		fd_timer_arm(srv->loop, &srv->timer,
			     timeout > INT32_MAX ? INT32_MAX : (int64_t)timeout);
	else
		fd_timer_disarm(srv->loop, &srv->timer);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	fd_debug("http: %s", buf);
}

static void on_connection(void *cls, struct MHD_Connection *conn,
			  void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct fd_http_server *srv = cls;

	(void)conn;
	(void)socket_context;
	if (toe == MHD_CONNECTION_NOTIFY_CLOSED)
		srv->closed = 1;
}

static void req_unwatch(struct fd_http_req *req)
{
	if (req->watch_fd >= 0) {
		fd_loop_unwatch(req->srv->loop, req->watch_fd);
		req->watch_fd = -1;
	}
}

static void req_resume(struct fd_http_req *req)
{
	if (!req->suspended)
		return;
	req_unwatch(req);
	req->suspended = 0;
	req->srv->resumed = 1;
	MHD_resume_connection(req->conn);
	/* In external polling mode MHD only acts on a resume in its next
	 * MHD_run(); we may be inside one now, so schedule it. */
	fd_timer_arm(req->srv->loop, &req->srv->timer, 0);
}

static void on_peer_hangup(struct fd_loop *loop, int fd, uint32_t events, void *arg)
{
	struct fd_http_req *req = arg;

	(void)loop;
	(void)fd;
	(void)events;
	req->peer_gone = 1;
	req_resume(req);
}

static void req_suspend(struct fd_http_req *req)
{
	const union MHD_ConnectionInfo *ci;

	if (req->suspended)
		return;
	MHD_suspend_connection(req->conn);
	req->suspended = 1;
	ci = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci && fd_loop_watch(req->srv->loop, ci->connect_fd, EPOLLRDHUP,
				on_peer_hangup, req) == 0)
		req->watch_fd = ci->connect_fd;
}

/* Takes req out of a list of fd_http_reply_after. */
static void after_unlink(struct fd_http_req **list, struct fd_http_req *req)
{
	for (; *list; list = &(*list)->after_next)
		if (*list == req) {
			*list = req->after_next;
			return;
		}
}

static void req_free(struct fd_http_req *req)
{
	after_unlink(&req->srv->after, req);
	after_unlink(&req->srv->after_due, req);
	free(req->after_type);
	free(req->after_body);
	req_unwatch(req);
	fd_timer_disarm(req->srv->loop, &req->hold_timer);
	if (req->auth_free)
		req->auth_free(req->auth_data);
	if (req->resp)
		MHD_destroy_response(req->resp);
	for (int i = 0; i < req->nhdr; i++) {
		free(req->hdr_name[i]);
		free(req->hdr_value[i]);
	}
	json_object_put(req->json);
	free((char *)req->subpath);
	free(req->target);
	fd_buf_release(&req->body);
	free(req->sbuf);
	free(req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct fd_http_server *srv = cls;
	struct fd_http_req *req = *con_cls;

	(void)conn;
	(void)toe;
	if (!req)
		return;
	*con_cls = NULL;
	if (req->prev)
		req->prev->next = req->next;
	else
		srv->reqs = req->next;
	if (req->next)
		req->next->prev = req->prev;
	/* Ended before the application let go of it: tell it. */
	if (req->on_close && (req->state == REQ_DEFERRED ||
			      (req->state == REQ_STREAMING && !req->sended)))
		req->on_close(req, req->close_arg);
	req_free(req);
}

static const struct route *find_route(struct fd_http_server *srv, const char *method,
				      const char *path, int *path_known)
{
	*path_known = 0;
	for (int i = 0; i < srv->nroutes; i++) {
		const struct route *r = &srv->routes[i];
		int match = r->prefix ? strncmp(path, r->path, r->plen) == 0
				      : strcmp(path, r->path) == 0;

		if (!match)
			continue;
		*path_known = 1;
		if (strcmp(method, r->method) == 0)
			return r;
	}
	return NULL;
}

static void allow_header(struct fd_http_req *req)
{
	char allow[128] = "";
	size_t n = 0;
	int known;

	for (int i = 0; i < req->srv->nroutes; i++) {
		const struct route *r = &req->srv->routes[i];

		if (!find_route(req->srv, r->method, req->path, &known) ||
		    strstr(allow, r->method))
			continue;
		n += (size_t)snprintf(allow + n, sizeof(allow) - n, "%s%s",
				      n ? ", " : "", r->method);
		if (n >= sizeof(allow))
			break;
	}
	fd_http_reply_header(req, "Allow", allow);
}

static void handle(struct fd_http_req *req, const struct route *r);

static void dispatch(struct fd_http_req *req)
{
	const struct route *r;
	int known;

	req->state = REQ_HANDLING;
	if (req->too_big) {
		fd_http_reply_error(req, 413, "request body larger than %zu bytes",
				    req->body.max);
		return;
	}
	r = find_route(req->srv, req->method, req->path, &known);
	if (!r) {
		if (known) {
			allow_header(req);
			fd_http_reply_error(req, 405, "method %s not allowed on %s",
					    req->method, req->path);
		} else {
			struct json_object *o = json_object_new_object();

			json_object_object_add(
				o, "error", json_object_new_string("not found"));
			json_object_object_add(o, "status", json_object_new_int(404));
			json_object_object_add(o, "path",
					       json_object_new_string(req->path));
			fd_http_reply_json(req, 404, o);
		}
		return;
	}
	req->subpath = strdup(r->prefix ? req->path + r->plen : "");
	if (!req->subpath) {
		fd_http_reply_error(req, 500, "out of memory");
		return;
	}
	if (req->srv->gate && req->srv->gate(req, req->srv->gate_arg)) {
		if (req->hold_ms > 0 && req->state == REQ_HANDLING) {
			/* held (fd_http_hold): the handler runs when the
			 * timer fires; the connection waits suspended (a
			 * streamed body from its first bytes: suspended
			 * before them, MHD would take the resume for the
			 * body's end) */
			req->held = r;
			req->state = REQ_DEFERRED;
			fd_timer_arm(req->srv->loop, &req->hold_timer, req->hold_ms);
		}
		return; /* fault gate: it replied, or holds the request */
	}
	handle(req, r);
}

/* The route's handler, past the fault gate. */
static void handle(struct fd_http_req *req, const struct route *r)
{
	struct fd_err err;

	if (r->flags & FD_HTTP_JSON) {
		if (fd_json_parse_value(fd_buf_str(&req->body), req->body.len,
					&req->json, &err) < 0) {
			fd_http_reply_error(req, 400,
					    "invalid request body: %s", err.msg);
			return;
		}
	}
	r->h(req, r->arg);
	if (req->state == REQ_HANDLING) {
		/* The handler neither replied nor deferred: a bug, but the client
		 * must not hang. */
		fd_http_reply_error(req, 500, "no reply");
	}
}

/* Collects the body; past the limit it is dropped and the request ends in
 * 413. Returns -1 only when out of memory. */
static int body_append(struct fd_http_req *req, const char *data, size_t len)
{
	if (req->too_big || fd_buf_append(&req->body, data, len) == 0)
		return 0;
	if (errno != EMSGSIZE)
		return -1;
	req->too_big = 1;
	fd_buf_release(&req->body);
	return 0;
}

/* The host's own addresses (getifaddrs), for telling whether a client is
 * on this host; read again when a lookup misses and the list is older than
 * OWN_MAX_AGE_MS, so an address added later counts within that time. */
#define OWN_MAX_AGE_MS 1000
#define OWN_MAX 256

struct own_addr {
	int family;
	unsigned char a[16];
};

static void own_refresh(struct fd_http_server *srv, int64_t now)
{
	struct ifaddrs *ifa = NULL;

	srv->nown = 0;
	srv->own_at = now;
	if (getifaddrs(&ifa) < 0)
		return;
	for (struct ifaddrs *i = ifa; i && srv->nown < OWN_MAX; i = i->ifa_next) {
		struct own_addr *o = &srv->own[srv->nown];

		if (!i->ifa_addr)
			continue;
		if (i->ifa_addr->sa_family == AF_INET) {
			o->family = AF_INET;
			memcpy(o->a,
			       &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr,
			       4);
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			o->family = AF_INET6;
			memcpy(o->a,
			       &((struct sockaddr_in6 *)(void *)i->ifa_addr)->sin6_addr,
			       16);
		} else {
			continue;
		}
		srv->nown++;
	}
	freeifaddrs(ifa);
}

static int own_find(const struct fd_http_server *srv, int family, const void *a)
{
	for (size_t i = 0; i < srv->nown; i++)
		if (srv->own[i].family == family &&
		    memcmp(srv->own[i].a, a, family == AF_INET ? 4 : 16) == 0)
			return 1;
	return 0;
}

/* Is the client on this host: a loopback address, or one of the host's
 * own? (The kernel drops packets from outside that claim a local source
 * address, unless accept_local is set.) */
static int peer_local(struct fd_http_server *srv, const struct sockaddr *peer)
{
	unsigned char a[16];
	int family = peer->sa_family;

	if (family == AF_INET) {
		const struct sockaddr_in *p = (const void *)peer;

		if ((ntohl(p->sin_addr.s_addr) >> 24) == 127)
			return 1;
		memcpy(a, &p->sin_addr, 4);
	} else if (family == AF_INET6) {
		const struct sockaddr_in6 *p = (const void *)peer;

		if (IN6_IS_ADDR_LOOPBACK(&p->sin6_addr))
			return 1;
		if (IN6_IS_ADDR_V4MAPPED(&p->sin6_addr)) {
			if (p->sin6_addr.s6_addr[12] == 127)
				return 1;
			family = AF_INET;
			memcpy(a, &p->sin6_addr.s6_addr[12], 4);
		} else {
			memcpy(a, &p->sin6_addr, 16);
		}
	} else {
		return 0;
	}
	if (own_find(srv, family, a))
		return 1;
	if (srv->own_at >= 0 && fd_loop_now(srv->loop) - srv->own_at < OWN_MAX_AGE_MS)
		return 0;
	own_refresh(srv, fd_loop_now(srv->loop));
	return own_find(srv, family, a);
}

static void format_peer(struct fd_http_req *req)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
		req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	char host[INET6_ADDRSTRLEN] = "?";
	char *buf = req->peer;
	size_t len = sizeof(req->peer);
	int port = 0;

	if (ci && ci->client_addr->sa_family == AF_INET) {
		const struct sockaddr_in *s =
			(const struct sockaddr_in *)(const void *)ci->client_addr;

		inet_ntop(AF_INET, &s->sin_addr, host, sizeof(host));
		port = ntohs(s->sin_port);
		snprintf(buf, len, "%s:%d", host, port);
	} else if (ci && ci->client_addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s =
			(const struct sockaddr_in6 *)(const void *)ci->client_addr;

		inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof(host));
		port = ntohs(s->sin6_port);
		snprintf(buf, len, "[%s]:%d", host, port);
	} else {
		snprintf(buf, len, "?");
	}
	req->local = -1; /* not known yet: fd_http_peer_local() */
}

/* --tls-verify-client: the client's certificate chain must check out
 * against the CA. MHD only asks GnuTLS to request one, so this is where it
 * is required. Returns 0, or -1 with why filled. */
static int verify_client(struct fd_http_req *req, char *why, size_t len)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
		req->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	gnutls_session_t session = ci ? (gnutls_session_t)ci->tls_session : NULL;
	unsigned int n = 0, status = 0;
	gnutls_datum_t out = {NULL, 0};

	if (!session) {
		snprintf(why, len, "no TLS session");
		return -1;
	}
	if (!gnutls_certificate_get_peers(session, &n) || n == 0) {
		snprintf(why, len, "no client certificate was presented");
		return -1;
	}
	if (gnutls_certificate_verify_peers2(session, &status) < 0) {
		snprintf(why, len, "the client certificate could not be checked");
		return -1;
	}
	if (status == 0)
		return 0;
	if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509,
							 &out, 0) == 0 &&
	    out.data) {
		snprintf(why, len, "the client certificate is not trusted: %s",
			 (const char *)out.data);
		gnutls_free(out.data);
	} else {
		snprintf(why, len, "the client certificate is not trusted");
	}
	return -1;
}

static enum MHD_Result queue(struct fd_http_req *req)
{
	enum MHD_Result rc;

	for (int i = 0; i < req->nhdr; i++)
		MHD_add_response_header(req->resp, req->hdr_name[i],
					req->hdr_value[i]);
	rc = MHD_queue_response(req->conn, req->status, req->resp);
	if (rc == MHD_YES)
		req->srv->replies[req->status / 100 < 6 ? req->status / 100 : 0]++;
	MHD_destroy_response(req->resp);
	req->resp = NULL;
	return rc;
}

static enum MHD_Result on_body_data(struct fd_http_req *req, const char *data,
				    size_t *size)
{
	if (req->peer_gone || req->srv->stopping)
		return MHD_NO;
	if (*size > 0) {
		size_t used;

		if (req->held) { /* held by the gate: the body waits too */
			req_suspend(req);
			return MHD_YES;
		}
		if (req->state != REQ_DEFERRED || !req->body_cb) {
			*size = 0; /* replied already: discard the rest */
			return MHD_YES;
		}
		used = req->body_cb(req, data, *size, 0, req->body_arg);
		*size -= used < *size ? used : *size;
		if (*size > 0) {
			req->body_paused = 1;
			req_suspend(req);
		}
		return MHD_YES;
	}
	if (req->held) { /* an empty body's end waits for the handler */
		req_suspend(req);
		return MHD_YES;
	}
	if (!req->body_done) {
		req->body_done = 1;
		if (req->state == REQ_DEFERRED && req->body_cb)
			req->body_cb(req, NULL, 0, 1, req->body_arg);
	}
	if (req->resp)
		return queue(req);
	if (req->state == REQ_DEFERRED)
		req_suspend(req);
	return MHD_YES;
}

/* A request the fault gate held: its handler runs now, outside MHD's
 * callbacks, so the connection is resumed for what the handler queued (or,
 * for a streamed body, to let the body in). */
static void on_hold_timer(struct fd_loop *loop, struct fd_timer *t, void *arg)
{
	struct fd_http_req *req = arg;
	const struct route *r = req->held;

	(void)loop;
	(void)t;
	if (!r || req->state != REQ_DEFERRED)
		return;
	req->held = NULL;
	req->state = REQ_HANDLING;
	handle(req, r);
	if (req->state != REQ_DEFERRED || req->sbody)
		req_resume(req);
}

void fd_http_hold(struct fd_http_req *req, int64_t ms)
{
	req->hold_ms = ms;
}

static struct fd_http_req *req_new(struct fd_http_server *srv)
{
	struct fd_http_req *req = calloc(1, sizeof(*req));

	if (!req)
		return NULL;
	req->srv = srv;
	req->watch_fd = -1;
	fd_timer_init(&req->hold_timer, on_hold_timer, req);
	req->next = srv->reqs;
	if (srv->reqs)
		srv->reqs->prev = req;
	srv->reqs = req;
	return req;
}

/* MHD's first word on a request, with the target as sent (path and query,
 * before any decoding): signed requests need it verbatim. What this returns
 * is the request's *con_cls. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct fd_http_req *req = req_new(cls);

	(void)conn;
	if (req)
		req->target = strdup(uri);
	return req;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn,
				 const char *url, const char *method,
				 const char *version, const char *upload_data,
				 size_t *upload_data_size, void **con_cls)
{
	struct fd_http_server *srv = cls;
	struct fd_http_req *req = *con_cls;

	(void)version;
	if (!req || !req->conn) {
		const struct route *r;
		const char *cl;
		int known;

		if (!req && !(req = req_new(srv)))
			return MHD_NO;
		req->conn = conn;
		req->method = method;
		req->path = url;
		r = find_route(srv, method, url, &known);
		req->body.max = r && (r->flags & FD_HTTP_LARGE) ? srv->max_large_body
								: srv->max_body;
		format_peer(req);
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						 MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > req->body.max)
			req->too_big = 1;
		*con_cls = req;
		if (r && (r->flags & FD_HTTP_STREAM_BODY)) {
			req->sbody = 1;
			req->too_big = 0;
		}
		if (srv->verify_client) {
			char why[300];

			if (verify_client(req, why, sizeof(why)) < 0) {
				fd_debug("http: %s refused: %s", req->peer, why);
				fd_http_reply_error(req, 403,
						    "client certificate required: %s",
						    why);
				return MHD_YES;
			}
		}
		if (r && srv->auth && srv->auth(req, r->flags, srv->auth_arg)) {
			if (req->state == REQ_RECEIVING) /* a hook that forgot */
				fd_http_reply_error(req, 403, "forbidden");
			return MHD_YES;
		}
		if (req->sbody)
			dispatch(req);
		return MHD_YES;
	}
	if (req->sbody)
		return on_body_data(req, upload_data, upload_data_size);
	if (req->state != REQ_RECEIVING && *upload_data_size > 0) {
		/* refused before its body: read it, drop it */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (req->state == REQ_RECEIVING && *upload_data_size > 0) {
		if (body_append(req, upload_data, *upload_data_size) < 0)
			return MHD_NO;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (req->peer_gone || srv->stopping)
		return MHD_NO;
	if (req->state == REQ_RECEIVING)
		dispatch(req);
	if (req->resp)
		return queue(req);
	if (req->state == REQ_DEFERRED)
		req_suspend(req);
	return MHD_YES;
}

/* TLS certificates: handed to GnuTLS by a callback at each handshake, so
 * fd_http_server_reload_tls can change them on a running server. A
 * certificate replaced stays allocated until the server goes (a handshake
 * that took it may still use it; reloads are rare). */
struct tls_cred {
	gnutls_pcert_st pcert[16]; /* the chain, leaf first */
	unsigned n;
	gnutls_privkey_t key;
	struct tls_cred *older;
};

/* The servers with TLS in this process: the callback finds its server
 * from the daemon of the handshake's connection. */
static struct fd_http_server *tls_servers;

static void cred_free(struct tls_cred *c)
{
	while (c) {
		struct tls_cred *older = c->older;

		for (unsigned i = 0; i < c->n; i++)
			gnutls_pcert_deinit(&c->pcert[i]);
		if (c->key)
			gnutls_privkey_deinit(c->key);
		free(c);
		c = older;
	}
}

/* A certificate chain and its key from PEM text. NULL with err filled. */
static struct tls_cred *cred_load(const char *cert, const char *key,
				  struct fd_err *err)
{
	struct tls_cred *c = calloc(1, sizeof(*c));
	gnutls_datum_t cd = {(unsigned char *)cert, (unsigned)strlen(cert)};
	gnutls_datum_t kd = {(unsigned char *)key, (unsigned)strlen(key)};
	unsigned n = sizeof(c->pcert) / sizeof(c->pcert[0]);
	int rc;

	if (!c) {
		fd_err_set(err, "out of memory");
		return NULL;
	}
	rc = gnutls_pcert_list_import_x509_raw(c->pcert, &n, &cd,
					       GNUTLS_X509_FMT_PEM, 0);
	if (rc < 0 || n == 0) {
		fd_err_set(err, "the certificate does not load: %s",
			   rc < 0 ? gnutls_strerror(rc) : "no certificate");
		free(c);
		return NULL;
	}
	c->n = n;
	{ /* the key must be the certificate's: GnuTLS checks it here */
		gnutls_certificate_credentials_t check;

		rc = gnutls_certificate_allocate_credentials(&check);
		if (rc >= 0) {
			rc = gnutls_certificate_set_x509_key_mem(
				check, &cd, &kd, GNUTLS_X509_FMT_PEM);
			gnutls_certificate_free_credentials(check);
		}
		if (rc < 0) {
			fd_err_set(err, "the certificate and key do not load: %s",
				   gnutls_strerror(rc));
			cred_free(c);
			return NULL;
		}
	}
	rc = gnutls_privkey_init(&c->key);
	if (rc >= 0)
		rc = gnutls_privkey_import_x509_raw(c->key, &kd,
						    GNUTLS_X509_FMT_PEM, NULL, 0);
	if (rc < 0) {
		fd_err_set(err, "the key does not load: %s", gnutls_strerror(rc));
		cred_free(c);
		return NULL;
	}
	return c;
}

static int on_tls_cert(gnutls_session_t session, const gnutls_datum_t *req_ca_dn,
		       int nreqs, const gnutls_pk_algorithm_t *pk_algos,
		       int pk_algos_length, gnutls_pcert_st **pcert,
		       unsigned int *pcert_length, gnutls_privkey_t *pkey)
{
	struct MHD_Connection *conn = gnutls_session_get_ptr(session);
	const union MHD_ConnectionInfo *ci =
		conn ? MHD_get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON)
		     : NULL;

	(void)req_ca_dn;
	(void)nreqs;
	(void)pk_algos;
	(void)pk_algos_length;
	for (struct fd_http_server *s = tls_servers; ci && s; s = s->next_tls)
		if (s->d == ci->daemon && s->cred) {
			*pcert = s->cred->pcert;
			*pcert_length = s->cred->n;
			*pkey = s->cred->key;
			return 0;
		}
	return -1;
}

static void server_tls_free(struct fd_http_server *srv)
{
	free(srv->own);
	free(srv->tls_ca);
	for (struct fd_http_server **p = &tls_servers; *p; p = &(*p)->next_tls)
		if (*p == srv) {
			*p = srv->next_tls;
			break;
		}
	cred_free(srv->cred);
}

int fd_http_server_reload_tls(struct fd_http_server *srv, const char *cert,
			      const char *key, struct fd_err *err)
{
	struct tls_cred *c;

	if (!srv->tls)
		return fd_err_set(err, "this server does not serve TLS");
	if (!(c = cred_load(cert, key, err)))
		return -1;
	c->older = srv->cred;
	srv->cred = c;
	return 0;
}

static int server_tls(struct fd_http_server *srv,
		      const struct fd_http_server_opts *opts, struct fd_err *err)
{
	if (!opts->tls_cert && !opts->tls_key) {
		if (opts->tls_verify_client)
			return fd_err_set(err, "client verification needs TLS");
		return 0;
	}
	if (!opts->tls_cert || !opts->tls_key)
		return fd_err_set(err, "TLS needs both a certificate and a key");
	if (opts->tls_verify_client && !opts->tls_ca)
		return fd_err_set(err, "client verification needs a CA");
	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
		return fd_err_set(err, "this libmicrohttpd was built without TLS");
	srv->verify_client = opts->tls_verify_client;
	srv->tls_ca = opts->tls_ca ? strdup(opts->tls_ca) : NULL;
	if (opts->tls_ca && !srv->tls_ca)
		return fd_err_set(err, "out of memory");
	if (!(srv->cred = cred_load(opts->tls_cert, opts->tls_key, err)))
		return -1;
	srv->tls = 1;
	srv->next_tls = tls_servers;
	tls_servers = srv;
	return 0;
}

struct fd_http_server *fd_http_server_new(struct fd_loop *loop,
					  const struct fd_http_server_opts *opts,
					  struct fd_err *err)
{
	struct fd_http_server *srv = calloc(1, sizeof(*srv));
	const union MHD_DaemonInfo *di;

	if (!srv) {
		fd_err_set(err, "out of memory");
		return NULL;
	}
	srv->loop = loop;
	srv->max_body = opts->max_body ? opts->max_body : DEFAULT_MAX_BODY;
	srv->max_large_body = opts->max_large_body ? opts->max_large_body
						   : DEFAULT_MAX_LARGE_BODY;
	fd_timer_init(&srv->timer, on_mhd_timer, srv);
	srv->own_at = -1;
	srv->own = calloc(OWN_MAX, sizeof(*srv->own));
	if (!srv->own || server_tls(srv, opts, err) < 0) {
		if (!srv->own)
			fd_err_set(err, "out of memory");
		server_tls_free(srv);
		free(srv);
		return NULL;
	}
	{
		struct MHD_OptionItem o[16];
		int n = 0;

#define OPT(k, v, p) o[n++] = (struct MHD_OptionItem){(k), (intptr_t)(v), (p)}
		OPT(MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL);
		OPT(MHD_OPTION_LISTEN_SOCKET, opts->listen_fd, NULL);
		OPT(MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_uri, srv);
		OPT(MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, srv);
		OPT(MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, srv);
		OPT(MHD_OPTION_CONNECTION_LIMIT,
		    opts->max_conns ? opts->max_conns : 1024, NULL);
		OPT(MHD_OPTION_CONNECTION_TIMEOUT,
		    opts->idle_timeout ? opts->idle_timeout : 60, NULL);
		OPT(MHD_OPTION_SIGPIPE_HANDLED_BY_APP, 1, NULL);
		if (opts->max_conns_per_ip)
			OPT(MHD_OPTION_PER_IP_CONNECTION_LIMIT,
			    opts->max_conns_per_ip, NULL);
		if (srv->tls) {
			OPT(MHD_OPTION_HTTPS_CERT_CALLBACK, 0, (void *)on_tls_cert);
			if (srv->tls_ca)
				OPT(MHD_OPTION_HTTPS_MEM_TRUST, 0, srv->tls_ca);
		}
		OPT(MHD_OPTION_END, 0, NULL);
#undef OPT
		srv->d = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
						  MHD_USE_ERROR_LOG |
						  (srv->tls ? MHD_USE_TLS : 0),
					  0, NULL, NULL, on_access, srv,
					  MHD_OPTION_ARRAY, o, MHD_OPTION_END);
	}
	if (!srv->d) {
		fd_err_set(err, srv->tls ? "unable to start the HTTPS server "
					   "(check the certificate and key)"
					 : "unable to start the HTTP server");
		server_tls_free(srv);
		free(srv);
		return NULL;
	}
	di = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_EPOLL_FD);
	srv->epfd = di ? di->epoll_fd : -1;
	if (srv->epfd < 0 ||
	    fd_loop_watch(loop, srv->epfd, EPOLLIN, on_mhd_fd, srv) < 0) {
		fd_err_set(err, "unable to watch the HTTP server");
		MHD_stop_daemon(srv->d);
		server_tls_free(srv);
		free(srv);
		return NULL;
	}
	server_run(srv);
	return srv;
}

void fd_http_server_free(struct fd_http_server *srv)
{
	if (!srv)
		return;
	srv->stopping = 1;
	for (struct fd_http_req *r = srv->reqs; r; r = r->next)
		req_resume(r);
	MHD_run(srv->d);
	fd_loop_unwatch(srv->loop, srv->epfd);
	fd_timer_disarm(srv->loop, &srv->timer);
	MHD_stop_daemon(srv->d);
	server_tls_free(srv);
	free(srv);
}

void fd_http_server_set_gate(struct fd_http_server *srv, fd_http_server_gate g,
			     void *arg)
{
	srv->gate = g;
	srv->gate_arg = arg;
}

void fd_http_server_set_reply_hook(struct fd_http_server *srv,
				   fd_http_reply_hook h, void *arg)
{
	srv->reply_hook = h;
	srv->reply_hook_arg = arg;
}

void fd_http_server_set_auth(struct fd_http_server *srv, fd_http_server_auth a,
			     void *arg)
{
	srv->auth = a;
	srv->auth_arg = arg;
}

void fd_http_set_auth_data(struct fd_http_req *req, void *data,
			   void (*free_fn)(void *))
{
	if (req->auth_free)
		req->auth_free(req->auth_data);
	req->auth_data = data;
	req->auth_free = free_fn;
}

void *fd_http_auth_data(const struct fd_http_req *req)
{
	return req->auth_data;
}

int fd_http_route(struct fd_http_server *srv, const char *method,
		  const char *path, unsigned flags, fd_http_handler h, void *arg)
{
	size_t plen = strlen(path);

	if (srv->nroutes == MAX_ROUTES) {
		errno = ENOSPC;
		return -1;
	}
	srv->routes[srv->nroutes++] = (struct route){
		.method = method,
		.path = path,
		.plen = plen,
		.prefix = plen > 1 && path[plen - 1] == '/',
		.flags = flags,
		.h = h,
		.arg = arg,
	};
	return 0;
}

void fd_http_server_counts(const struct fd_http_server *srv, uint64_t by_class[6])
{
	memcpy(by_class, srv->replies, sizeof(srv->replies));
}

const char *fd_http_method(const struct fd_http_req *req)
{
	return req->method;
}

const char *fd_http_path(const struct fd_http_req *req)
{
	return req->path;
}

const char *fd_http_target(const struct fd_http_req *req)
{
	return req->target ? req->target : req->path;
}

int fd_http_body_streamed(const struct fd_http_req *req)
{
	return req->sbody;
}

const char *fd_http_subpath(const struct fd_http_req *req)
{
	return req->subpath ? req->subpath : "";
}

const char *fd_http_query(struct fd_http_req *req, const char *key)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *fd_http_header(struct fd_http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *fd_http_body(const struct fd_http_req *req, size_t *len)
{
	if (len)
		*len = req->body.len;
	return fd_buf_str(&req->body);
}

struct json_object *fd_http_json(const struct fd_http_req *req)
{
	return req->json;
}

const char *fd_http_peer(const struct fd_http_req *req)
{
	return req->peer;
}

int fd_http_peer_local(struct fd_http_req *req)
{
	const union MHD_ConnectionInfo *ci;

	if (req->local < 0) {
		ci = MHD_get_connection_info(req->conn,
					     MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		req->local = ci && peer_local(req->srv, ci->client_addr);
	}
	return req->local;
}

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind,
			       const char *key, const char *value)
{
	(void)kind;
	json_object_object_add(cls, key, json_object_new_string(value ? value : ""));
	return MHD_YES;
}

struct json_object *fd_http_query_json(struct fd_http_req *req)
{
	struct json_object *o = json_object_new_object();

	if (o)
		MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND,
					  add_arg, o);
	return o;
}

unsigned fd_http_status(const struct fd_http_req *req)
{
	return req->state == REQ_REPLIED || req->state == REQ_STREAMING ? req->status
									: 0;
}

int fd_http_tls(const struct fd_http_req *req)
{
	return req->srv->tls;
}

void fd_http_reply(struct fd_http_req *req, unsigned status,
		   const char *content_type, const char *body, size_t len)
{
	if (req->state == REQ_REPLIED || req->state == REQ_STREAMING || req->resp)
		return;
	if (req->srv->reply_hook)
		req->srv->reply_hook(req, status, body, len, req->srv->reply_hook_arg);
	req->resp = MHD_create_response_from_buffer(len, (void *)body,
						    MHD_RESPMEM_MUST_COPY);
	if (!req->resp)
		return;
	MHD_add_response_header(req->resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	req->status = status;
	if (req->state == REQ_DEFERRED) {
		req->state = REQ_REPLIED;
		req_resume(req);
	}
	req->state = REQ_REPLIED;
}

void fd_http_reply_json(struct fd_http_req *req, unsigned status,
			struct json_object *obj)
{
	size_t len;
	const char *s = fd_json_str(obj, &len);
	char *line = malloc(len + 1);

	if (line) {
		memcpy(line, s, len);
		line[len] = '\n';
		fd_http_reply(req, status, "application/json", line, len + 1);
		free(line);
	}
	json_object_put(obj);
}

void fd_http_reply_error(struct fd_http_req *req, unsigned status,
			 const char *fmt, ...)
{
	struct json_object *o = json_object_new_object();
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "error", json_object_new_string(msg));
	json_object_object_add(o, "status", json_object_new_int((int)status));
	fd_http_reply_json(req, status, o);
}

int fd_http_reply_header(struct fd_http_req *req, const char *name, const char *value)
{
	if (req->nhdr == MAX_REPLY_HEADERS) {
		errno = ENOSPC;
		return -1;
	}
	req->hdr_name[req->nhdr] = strdup(name);
	req->hdr_value[req->nhdr] = strdup(value);
	if (!req->hdr_name[req->nhdr] || !req->hdr_value[req->nhdr]) {
		free(req->hdr_name[req->nhdr]);
		free(req->hdr_value[req->nhdr]);
		errno = ENOMEM;
		return -1;
	}
	req->nhdr++;
	return 0;
}

void fd_http_reply_after(struct fd_http_req *req, unsigned status,
			 const char *content_type, const char *body, size_t len)
{
	struct fd_http_req **tail = &req->srv->after;

	if (req->state != REQ_HANDLING || req->after_type)
		return;
	req->after_type = strdup(content_type);
	req->after_body = malloc(len ? len : 1);
	if (!req->after_type || !req->after_body) {
		free(req->after_type);
		free(req->after_body);
		req->after_type = req->after_body = NULL;
		fd_http_reply(req, status, content_type, body, len);
		return;
	}
	memcpy(req->after_body, body, len);
	req->after_len = len;
	req->after_status = status;
	req->state = REQ_DEFERRED;
	while (*tail)
		tail = &(*tail)->after_next;
	*tail = req;
	fd_timer_arm(req->srv->loop, &req->srv->timer, 0); /* a run to wait for */
}

/* After a run: the replies asked for before it began, in order. */
static void reply_after_due(struct fd_http_server *srv)
{
	struct fd_http_req *req;

	while ((req = srv->after_due)) {
		srv->after_due = req->after_next;
		req->after_next = NULL;
		fd_http_reply(req, req->after_status, req->after_type,
			      req->after_body, req->after_len);
		free(req->after_type);
		free(req->after_body);
		req->after_type = req->after_body = NULL;
	}
}

void fd_http_defer(struct fd_http_req *req)
{
	if (req->state == REQ_HANDLING)
		req->state = REQ_DEFERRED;
}

void fd_http_on_close(struct fd_http_req *req, fd_http_close_cb cb, void *arg)
{
	req->on_close = cb;
	req->close_arg = arg;
}

void fd_http_on_body(struct fd_http_req *req, fd_http_body_cb cb, void *arg)
{
	req->body_cb = cb;
	req->body_arg = arg;
}

void fd_http_body_resume(struct fd_http_req *req)
{
	if (!req->body_paused)
		return;
	req->body_paused = 0;
	req_resume(req);
}

void fd_http_set_timeout(struct fd_http_req *req, unsigned seconds)
{
	MHD_set_connection_option(req->conn, MHD_CONNECTION_OPTION_TIMEOUT, seconds);
}

/* Streams */

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct fd_http_req *req = cls;
	size_t n;

	(void)pos;
	if (req->peer_gone || req->srv->stopping)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (req->slen > 0) {
		n = req->slen < max ? req->slen : max;
		memcpy(buf, req->sbuf + req->soff, n);
		req->soff += n;
		req->slen -= n;
		if (req->slen == 0)
			req->soff = 0;
		if (req->drain_cb && req->slen <= req->drain_low)
			req->drain_cb(req, req->drain_arg);
		return (ssize_t)n;
	}
	if (req->sended)
		return MHD_CONTENT_READER_END_OF_STREAM;
	req_suspend(req);
	return 0;
}

int fd_http_stream_begin(struct fd_http_req *req, const char *content_type,
			 size_t max_queued)
{
	if (req->state != REQ_HANDLING || req->resp)
		return -1;
	req->resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024,
						      stream_read, req, NULL);
	if (!req->resp)
		return -1;
	MHD_add_response_header(req->resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	MHD_add_response_header(req->resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	req->status = 200;
	req->smax = max_queued ? max_queued : 1024 * 1024;
	req->state = REQ_STREAMING;
	return 0;
}

int fd_http_stream_write(struct fd_http_req *req, const char *data, size_t len)
{
	if (req->state != REQ_STREAMING || req->sended) {
		errno = EPIPE;
		return -1;
	}
	if (req->slen + len > req->smax) {
		errno = ENOBUFS;
		return -1;
	}
	if (req->soff + req->slen + len > req->scap) {
		if (req->soff > 0) {
			memmove(req->sbuf, req->sbuf + req->soff, req->slen);
			req->soff = 0;
		}
		if (req->slen + len > req->scap) {
			size_t n = req->scap ? req->scap : 4096;
			char *b;

			while (n < req->slen + len)
				n *= 2;
			b = realloc(req->sbuf, n);
			if (!b) {
				errno = ENOMEM;
				return -1;
			}
			req->sbuf = b;
			req->scap = n;
		}
	}
	memcpy(req->sbuf + req->soff + req->slen, data, len);
	req->slen += len;
	req_resume(req);
	return 0;
}

size_t fd_http_stream_queued(const struct fd_http_req *req)
{
	return req->slen;
}

void fd_http_stream_on_drain(struct fd_http_req *req, size_t low_water,
			     fd_http_drain_cb cb, void *arg)
{
	req->drain_cb = cb;
	req->drain_arg = arg;
	req->drain_low = low_water;
}

void fd_http_stream_end(struct fd_http_req *req)
{
	if (req->state != REQ_STREAMING)
		return;
	req->sended = 1;
	req_resume(req);
}

/* Client: libcurl multi in our loop */

struct creq {
	uint64_t id;
	CURL *easy;
	struct curl_slist *hdrs;
	char *body;
	struct fd_buf resp;
	int overflow;
	fd_http_done_cb cb;
	void *arg;
	fd_http_read_cb rd;
	void *rarg;
	char errbuf[CURL_ERROR_SIZE];
	struct creq *prev, *next;
	char *signed_hdr;  /* the signer's header line, if any */
	char *check_value; /* the response header the signer checks */
	char *target;	   /* path and query, for the signer's check */
	/* fault gate: a request held back (delay) or failed (drop) */
	struct fd_http_client *c;
	struct fd_timer gate_timer;
	int gated, gate_drop;
};

struct fd_http_client {
	struct fd_loop *loop;
	CURLM *multi;
	struct fd_timer timer;
	size_t max_resp;
	uint64_t next_id;
	struct creq *reqs;
	size_t n;
	fd_http_client_gate gate; /* fault injection */
	void *gate_arg;
	char *header;		      /* added to every request */
	struct fd_http_signer signer; /* sign is NULL: none */
	int tls;		      /* https only (fd_http_client_set_tls) */
	char *tls_ca; /* CA bundle for https (NULL: the system's) */
	char *tls_cert, *tls_key;
	int env_proxy; /* http_proxy and friends apply (off: straight there) */
};

static void creq_free(struct fd_http_client *c, struct creq *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		c->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	c->n--;
	fd_timer_disarm(c->loop, &r->gate_timer);
	if (!r->gated)
		curl_multi_remove_handle(c->multi, r->easy);
	curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->hdrs);
	free(r->body);
	free(r->signed_hdr);
	free(r->check_value);
	free(r->target);
	fd_buf_release(&r->resp);
	free(r);
}

static void check_done(struct fd_http_client *c)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(c->multi, &left))) {
		struct fd_http_resp resp = {0};
		struct creq *r = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		if (!r)
			continue;
		if (msg->data.result == CURLE_OK && !r->overflow) {
			curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE,
					  &resp.status);
		} else if (r->overflow) {
			resp.error = "response too large";
		} else {
			resp.timed_out = msg->data.result == CURLE_OPERATION_TIMEDOUT;
			resp.error = r->errbuf[0]
					     ? r->errbuf
					     : curl_easy_strerror(msg->data.result);
		}
		resp.body = fd_buf_str(&r->resp);
		resp.len = r->resp.len;
		if (resp.status && r->signed_hdr && c->signer.check &&
		    c->signer.check(r->target, r->signed_hdr, resp.status,
				    r->check_value, resp.body, resp.len, r->errbuf,
				    sizeof(r->errbuf), c->signer.arg) < 0) {
			resp.status = 0;
			resp.error = r->errbuf;
		}
		r->cb(&resp, r->arg);
		creq_free(c, r);
	}
}

static void on_curl_fd(struct fd_loop *loop, int fd, uint32_t events, void *arg)
{
	struct fd_http_client *c = arg;
	int flags = 0, running;

	(void)loop;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP))
		flags |= CURL_CSELECT_IN;
	if (events & EPOLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (events & EPOLLERR)
		flags |= CURL_CSELECT_ERR;
	curl_multi_socket_action(c->multi, fd, flags, &running);
	check_done(c);
}

static void on_curl_timer(struct fd_loop *loop, struct fd_timer *t, void *arg)
{
	struct fd_http_client *c = arg;
	int running;

	(void)loop;
	(void)t;
	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(c);
}

static int curl_socket_cb(CURL *e, curl_socket_t s, int what, void *userp, void *sockp)
{
	struct fd_http_client *c = userp;
	uint32_t ev = 0;

	(void)e;
	(void)sockp;
	if (what == CURL_POLL_REMOVE) {
		fd_loop_unwatch(c->loop, s);
		return 0;
	}
	if (what & CURL_POLL_IN)
		ev |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev |= EPOLLOUT;
	return fd_loop_watch(c->loop, s, ev, on_curl_fd, c) < 0 ? -1 : 0;
}

static int curl_timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	struct fd_http_client *c = userp;

	(void)m;
	if (timeout_ms < 0)
		fd_timer_disarm(c->loop, &c->timer);
	else if (fd_timer_arm(c->loop, &c->timer, timeout_ms) < 0)
		return -1;
	return 0;
}

static size_t on_curl_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct creq *r = userdata;
	size_t n = size * nmemb;

	if (fd_buf_append(&r->resp, ptr, n) < 0) {
		r->overflow = errno == EMSGSIZE;
		return 0;
	}
	return n;
}

struct fd_http_client *fd_http_client_new(struct fd_loop *loop, size_t max_resp,
					  struct fd_err *err)
{
	struct fd_http_client *c = calloc(1, sizeof(*c));

	if (!c) {
		fd_err_set(err, "out of memory");
		return NULL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    !(c->multi = curl_multi_init())) {
		fd_err_set(err, "unable to start the HTTP client");
		free(c);
		return NULL;
	}
	c->loop = loop;
	c->max_resp = max_resp ? max_resp : DEFAULT_MAX_RESP;
	fd_timer_init(&c->timer, on_curl_timer, c);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 8L);
	/* Idle keep-alive connections cost memory on both sides: keep a few. */
	curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, 8L);
	return c;
}

void fd_http_client_free(struct fd_http_client *c)
{
	if (!c)
		return;
	while (c->reqs)
		creq_free(c, c->reqs);
	fd_timer_disarm(c->loop, &c->timer);
	curl_multi_cleanup(c->multi);
	curl_global_cleanup();
	free(c->header);
	free(c->tls_ca);
	free(c->tls_cert);
	free(c->tls_key);
	free(c);
}

/* Fault gate: a dropped request fails from the loop as if unreachable; a
 * delayed one joins the multi handle when its timer fires. */
static void on_gate_timer(struct fd_loop *loop, struct fd_timer *t, void *arg)
{
	struct creq *r = arg;
	struct fd_http_client *c = r->c;
	struct fd_http_resp resp = {0};

	(void)loop;
	(void)t;
	if (!r->gate_drop) {
		r->gated = 0;
		if (curl_multi_add_handle(c->multi, r->easy) == CURLM_OK)
			return;
		r->gated = 1;
		resp.error = "unable to start the request";
	} else {
		resp.error = "connection refused (fault injected)";
	}
	resp.body = "";
	r->cb(&resp, r->arg);
	creq_free(c, r);
}

static int gate_request(struct fd_http_client *c, struct creq *r, const char *url)
{
	int64_t delay = 0;

	r->gate_drop = c->gate(url, &delay, c->gate_arg) < 0;
	if (!r->gate_drop && delay <= 0)
		return 0;
	r->c = c;
	r->gated = 1;
	fd_timer_init(&r->gate_timer, on_gate_timer, r);
	fd_timer_arm(c->loop, &r->gate_timer, r->gate_drop ? 0 : delay);
	return 1;
}

void fd_http_client_set_gate(struct fd_http_client *c, fd_http_client_gate g,
			     void *arg)
{
	c->gate = g;
	c->gate_arg = arg;
}

void fd_http_client_use_env_proxy(struct fd_http_client *c)
{
	c->env_proxy = 1;
}

int fd_http_client_set_header(struct fd_http_client *c, const char *header)
{
	char *h = strdup(header);

	if (!h)
		return -1;
	free(c->header);
	c->header = h;
	return 0;
}

void fd_http_client_set_signer(struct fd_http_client *c,
			       const struct fd_http_signer *s)
{
	if (s)
		c->signer = *s;
	else
		memset(&c->signer, 0, sizeof(c->signer));
}

/* Keeps the value of the response header the signer checks (the last one
 * of the last header block). */
static size_t on_curl_header(char *buf, size_t size, size_t nitems, void *userdata)
{
	struct creq *r = userdata;
	size_t n = size * nitems, nl = strlen(r->c->signer.check_header);

	if (n > 5 && strncmp(buf, "HTTP/", 5) == 0) {
		free(r->check_value); /* a new block (after a 100 Continue) */
		r->check_value = NULL;
	} else if (n > nl && buf[nl] == ':' &&
		   strncasecmp(buf, r->c->signer.check_header, nl) == 0) {
		const char *v = buf + nl + 1, *e = buf + n;

		while (v < e && (*v == ' ' || *v == '\t'))
			v++;
		while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' '))
			e--;
		free(r->check_value);
		r->check_value = strndup(v, (size_t)(e - v));
	}
	return n;
}

/* The signer's header line for this request (added to r->hdrs). */
static int sign_request(struct fd_http_client *c, struct creq *r, const char *method,
			const char *url, const char *body, size_t len, int stream)
{
	const char *p = strstr(url, "://");
	char line[512], dest[300];

	p = p ? strchr(p + 3, '/') : NULL;
	snprintf(dest, sizeof(dest), "%.*s",
		 p ? (int)(p - url) : (int)strlen(url), url);
	if (!p)
		p = "/";
	if (!c->signer.sign(dest, method, p, body, len, stream, line,
			    sizeof(line), c->signer.arg))
		return 0;
	r->signed_hdr = strdup(line);
	r->target = strdup(p);
	if (!r->signed_hdr || !r->target)
		return -1;
	r->hdrs = curl_slist_append(r->hdrs, line);
	r->c = c;
	if (c->signer.check_header) {
		curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, on_curl_header);
		curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r);
	}
	return 0;
}

int fd_http_client_set_tls(struct fd_http_client *c, const char *ca,
			   const char *cert, const char *key)
{
	char *a = ca ? strdup(ca) : NULL, *b = cert ? strdup(cert) : NULL;
	char *k = key ? strdup(key) : NULL;

	if ((ca && !a) || (cert && !b) || (key && !k)) {
		free(a);
		free(b);
		free(k);
		errno = ENOMEM;
		return -1;
	}
	free(c->tls_ca);
	free(c->tls_cert);
	free(c->tls_key);
	c->tls = 1;
	c->tls_ca = a;
	c->tls_cert = b;
	c->tls_key = k;
	return 0;
}

int fd_http_client_set_ca(struct fd_http_client *c, const char *path)
{
	char *p = path ? strdup(path) : NULL;

	if (path && !p)
		return -1;
	free(c->tls_ca);
	c->tls_ca = p;
	return 0;
}

static size_t on_curl_read(char *buf, size_t size, size_t nmemb, void *userdata)
{
	struct creq *r = userdata;

	return r->rd(buf, size * nmemb, r->rarg);
}

/* Frees a request that was never linked into c. */
static void creq_free_early(struct creq *r)
{
	curl_slist_free_all(r->hdrs);
	curl_easy_cleanup(r->easy);
	free(r->body);
	free(r);
}

static uint64_t request(struct fd_http_client *c, const char *method,
			const char *url, const char *body, size_t len,
			fd_http_read_cb rd, void *rarg,
			const char *const *headers, int64_t timeout_ms,
			fd_http_done_cb cb, void *arg, struct fd_err *err)
{
	struct creq *r = calloc(1, sizeof(*r));

	if (!r || !(r->easy = curl_easy_init())) {
		free(r);
		fd_err_set(err, "out of memory");
		return 0;
	}
	r->id = ++c->next_id;
	r->cb = cb;
	r->arg = arg;
	r->resp.max = c->max_resp;
	r->hdrs = curl_slist_append(NULL, "Expect:");
	for (size_t i = 0; headers && headers[i]; i++)
		r->hdrs = curl_slist_append(r->hdrs, headers[i]);
	if (c->header)
		r->hdrs = curl_slist_append(r->hdrs, c->header);
	if (c->signer.sign && sign_request(c, r, method, url, body,
					   body ? len : 0, !body && rd) < 0) {
		curl_slist_free_all(r->hdrs);
		curl_easy_cleanup(r->easy);
		free(r->signed_hdr);
		free(r->target);
		free(r);
		fd_err_set(err, "out of memory");
		return 0;
	}
	if (body) {
		r->body = malloc(len ? len : 1);
		if (!r->body) {
			creq_free_early(r);
			fd_err_set(err, "out of memory");
			return 0;
		}
		memcpy(r->body, body, len);
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->body);
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)len);
	} else if (rd) {
		r->rd = rd;
		r->rarg = rarg;
		curl_easy_setopt(r->easy, CURLOPT_POST, 1L);
		curl_easy_setopt(r->easy, CURLOPT_READFUNCTION, on_curl_read);
		curl_easy_setopt(r->easy, CURLOPT_READDATA, r);
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)len);
		/* fewer, larger sends */
		curl_easy_setopt(r->easy, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
	}
	if (c->tls && strncmp(url, "http://", 7) == 0) {
		char https[2048];

		if ((size_t)snprintf(https, sizeof(https), "https://%s",
				     url + 7) >= sizeof(https)) {
			creq_free_early(r);
			fd_err_set(err, "URL too long");
			return 0;
		}
		curl_easy_setopt(r->easy, CURLOPT_URL, https);
	} else {
		curl_easy_setopt(r->easy, CURLOPT_URL, url);
	}
	if (!c->env_proxy)
		curl_easy_setopt(r->easy, CURLOPT_PROXY, "");
	if (c->tls_ca)
		curl_easy_setopt(r->easy, CURLOPT_CAINFO, c->tls_ca);
	if (c->tls_cert) {
		curl_easy_setopt(r->easy, CURLOPT_SSLCERT, c->tls_cert);
		curl_easy_setopt(r->easy, CURLOPT_SSLKEY,
				 c->tls_key ? c->tls_key : c->tls_cert);
	}
	curl_easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "GET") == 0 && !body)
		curl_easy_setopt(r->easy, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->hdrs);
	curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_curl_data);
	curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_PRIVATE, (char *)r);
	curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	if (timeout_ms > 0) {
		curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
		curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
	}
	r->next = c->reqs;
	if (c->reqs)
		c->reqs->prev = r;
	c->reqs = r;
	c->n++;
	if (c->gate && gate_request(c, r, url))
		return r->id; /* held back or failed by the fault gate */
	if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) {
		creq_free(c, r);
		fd_err_set(err, "unable to start the request");
		return 0;
	}
	return r->id;
}

uint64_t fd_http_request(struct fd_http_client *c, const char *method,
			 const char *url, const char *body, size_t len,
			 const char *const *headers, int64_t timeout_ms,
			 fd_http_done_cb cb, void *arg, struct fd_err *err)
{
	return request(c, method, url, body, len, NULL, NULL, headers,
		       timeout_ms, cb, arg, err);
}

uint64_t fd_http_request_read(struct fd_http_client *c, const char *method,
			      const char *url, size_t len, fd_http_read_cb rd,
			      void *rarg, const char *const *headers,
			      int64_t timeout_ms, fd_http_done_cb cb, void *arg,
			      struct fd_err *err)
{
	return request(c, method, url, NULL, len, rd, rarg, headers, timeout_ms,
		       cb, arg, err);
}

void fd_http_cancel(struct fd_http_client *c, uint64_t handle)
{
	for (struct creq *r = c->reqs; r; r = r->next) {
		if (r->id == handle) {
			creq_free(c, r);
			return;
		}
	}
}

size_t fd_http_pending(const struct fd_http_client *c)
{
	return c->n;
}

int fd_http_url(char *buf, size_t len, const char *addr, const char *path)
{
	int n = snprintf(buf, len, "http://%s%s", addr, path);

	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}
