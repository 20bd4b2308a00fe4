/* fd-node internals shared by the files of cmd/fd-node. */
#ifndef FD_NODE_NODE_H
#define FD_NODE_NODE_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "loop.h"

#define NODE_MAX_JOIN 32
#define NODE_MAX_DISCOVER 8
/* The registry's delta route: its answer is a bare acknowledgement */
#define REGISTRY_DELTA_PATH "/v1/cluster/registry"

struct node_opts {
	const char *name;
	const char *listen;
	const char *advertise;
	const char *pid_file;
	const char *log_file;
	const char *profile;
	const char *join[NODE_MAX_JOIN];
	int njoin;
	const char *discover[NODE_MAX_DISCOVER]; /* --discover specs */
	int ndiscover;
	int retry_join;
	int ready_quorum;
	int ready_expect;
	int detach;
	size_t max_body;
	int64_t fault_max_ms; /* --max-duration: longest fault rule (faults.c) */
	const char *key_file; /* --key-file / FD_KEY_FILE (keys.c) */
	const char *cluster;  /* --cluster: sealed into every datagram */
	int encrypt_rollout;  /* accept plaintext too, while moving to a key */
	int insecure;	      /* plaintext on a non-loopback address */
	/* TLS (--tls-*), client authorization and audit (authz.c) */
	const char *tls_cert, *tls_key, *tls_ca;
	int tls_verify_client;
	const char *acl_file, *default_scope, *audit_log;
	unsigned max_conns, max_client_conns;
	const struct pubsub_opts *pubsub;     /* pub/sub options (pubsub.h) */
	const struct announce_opts *announce; /* --announce (announce.h) */
};

struct members;
struct registry;
struct pubsub;
struct pubsub_opts;
struct faults;
struct keys;
struct authz;
struct discover;

struct node {
	struct fd_loop *loop;
	struct fd_http_server *http;
	struct fd_http_client *client;
	const struct node_opts *opts;
	char name[256];
	unsigned char id_raw[16];
	char id[33];
	char addr[80];
	int tcp_fd, udp_fd;
	int64_t started_mono, started_wall;
	struct members *members;
	struct registry *registry;
	struct pubsub *pubsub;	   /* pubsub.c */
	struct faults *faults;	   /* faults.c */
	struct keys *keys;	   /* keys.c */
	struct discover *discover; /* discover.c */
	struct authz *authz;	   /* authz.c */
	struct announce *announce; /* announce.c: --announce mdns|gossip */
	int report_fd; /* --detach: tells the parent we are ready (or not) */
	int stopping;
	int exit_code;
};

/* Runs the node until SIGTERM/SIGINT; returns the exit status. */
int node_main(const struct node_opts *opts);
/* Tells a --detach parent how start-up went: FD_EXIT_OK, or the exit status
 * it should end with and the message it should print. Later calls do
 * nothing. */
void node_report(struct node *n, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Stops the loop with an exit status (the first non-zero one wins). */
void node_stop(struct node *n, int code);
/* A numeric "ip:port" / "[v6]:port" as a socket address. Returns 0, or -1
 * (a host name or a malformed address). */
int node_sockaddr(const char *addr, struct sockaddr_storage *ss, socklen_t *len);
/* Wall-clock microseconds of a loop time (monotonic ms). */
int64_t node_wall_us(const struct node *n, int64_t mono_ms);

/* Membership changes, for the subsystems that follow them (registry,
 * pub/sub): called by members.c for every state event of another member
 * (joined, alive, suspect, failed, left, reaped; restarted instances
 * included). node.c passes it on. */
struct fd_member_event;
void node_member_changed(struct node *n, const struct fd_member_event *ev);

/* Membership (members.c) */
/* The membership core, for read-only queries (fd_member_at, _find,
 * _count): who is alive and where. */
struct fd_member;
const struct fd_member *members_core(const struct node *n);
int members_init(struct node *n);
void members_free(struct node *n);
void members_add_routes(struct node *n);
/* Starts the --join attempts. */
void members_start(struct node *n);
/* Joins addrs (count of them) the way POST /v1/join does, then calls
 * done(results, arg) with the join records (borrowed: {"addr", "ok",
 * "name", "id"} or {"addr", "ok": false, "error"}), or done(NULL, arg) when
 * the join could not run or the node stopped first. */
typedef void (*members_join_cb)(struct json_object *results, void *arg);
void members_join(struct node *n, const char *const *addrs, int count,
		  members_join_cb done, void *arg);
/* Graceful leave: announce, drain a little, then stop the loop. */
void members_leave(struct node *n);
void members_add_info(struct node *n, struct json_object *info);
/* Each subsystem's families for /metrics (metrics.h). */
struct fd_metrics;
void members_add_metrics(struct node *n, struct fd_metrics *m);
/* 1 when ready; else 0 with why filled. */
int members_ready(struct node *n, char *why, size_t len);

/* Discovery (discover.c): --discover sources, polled in the loop; what
 * they find and is not an alive member is joined, at every poll. */
int discover_init(struct node *n);
void discover_free(struct node *n);
void discover_add_info(struct node *n, struct json_object *info);

/* Registry (registry.c) */
int registry_init(struct node *n);
void registry_free(struct node *n);
void registry_add_routes(struct node *n);
void registry_add_info(struct node *n, struct json_object *info);
void registry_add_metrics(struct node *n, struct fd_metrics *m);
void registry_member_changed(struct node *n, const struct fd_member_event *ev);

/* Fault gate (faults.c): rules from /v1/faults applied to node-to-node
 * traffic. faults_init sets the HTTP client's gate and X-FD-From header;
 * faults_add_routes the admin routes and the server's gate (/v1/cluster/).
 * faults_udp_out / faults_udp_in return 1 when they took the datagram
 * (dropped, or queued for later), 0 to send / deliver it now. */
int faults_init(struct node *n);
void faults_free(struct node *n);
void faults_add_routes(struct node *n);
void faults_add_info(struct node *n, struct json_object *info);
void faults_add_metrics(struct node *n, struct fd_metrics *m);
int faults_udp_out(struct node *n, const char *addr, const void *buf, size_t len);
int faults_udp_in(struct node *n, const char *from, const void *buf, size_t len);
/* Delivers a datagram faults_udp_in held back (members.c). */
void members_udp_deliver(struct node *n, const char *from, const void *buf,
			 size_t len);

/* Cluster key (keys.c). keys_load reads --key-file before anything binds
 * (and dies on a bad file; -1: out of memory); keys_init signs the HTTP client's requests;
 * keys_add_routes adds /v1/keys, /v1/cluster/keys and the answer signing.
 * keys_udp_send seals and sends a datagram (0, or -1: not sent);
 * keys_udp_open opens a received one: the payload (buf itself, or out
 * with *outlen), or NULL to drop it (counted, logged). keys_http_gate
 * returns 1 when it refused a /v1/cluster/ request (401 sent). */
int keys_load(struct node *n);
int keys_enabled(const struct node *n);
/* The cluster key ring, NULL without --key-file; a reload or a key
 * installed, used or removed changes it in place (gossip.c, the gossip
 * discovery source seal and open with it). */
struct fd_keyring;
const struct fd_keyring *keys_ring(const struct node *n);
int keys_init(struct node *n);
void keys_add_routes(struct node *n);
void keys_add_info(struct node *n, struct json_object *info);
void keys_reload(struct node *n);
void keys_free(struct node *n);
int keys_udp_send(struct node *n, const char *addr, const void *buf, size_t len);
const void *keys_udp_open(struct node *n, const char *from, const void *buf,
			  size_t len, void *out, size_t cap, size_t *outlen);
struct fd_http_req;
int keys_http_gate(struct node *n, struct fd_http_req *req);
/* Authorization and audit (authz.c). Routes say what they need with
 * their flags (http.h): none: read; FD_HTTP_ADMIN: admin, audited;
 * FD_HTTP_SCOPED: the handler checks each name with node_allow*();
 * FD_HTTP_OPEN: nothing. /v1/cluster/ routes are not token-checked. */
#include "acl.h"
struct fd_http_req;
/* Parses --default-scope, loads --acl-file, opens --audit-log. Returns 0,
 * or -2 (a usage error: exit 2) / -1 (exit 1) with msg filled. */
int authz_init(struct node *n, char *msg, size_t len);
void authz_free(struct node *n);
/* Installs the HTTP server's auth hook (n->http must exist). */
void authz_add_hook(struct node *n);
/* SIGHUP: loads --acl-file again; a bad file keeps the old ACL (logged and
 * audited). */
void authz_reload(struct node *n);
/* 1 when the request's client may do kind on name[0..len) (read and admin:
 * NULL, 0); else replies 403 ("forbidden: token "ci" lacks
 * publish:billing.x") and returns 0. */
int node_allow(struct node *n, struct fd_http_req *req, enum fd_scope_kind kind,
	       const char *name, size_t len);
/* The same for subscribing to a pattern. */
int node_allow_pattern(struct node *n, struct fd_http_req *req,
		       const char *pattern, size_t len);
/* The client's scopes, for handlers that check many names themselves (the
 * pointer lives as long as the request), and who it is for messages
 * ("token "ci""). */
const struct fd_scopes *node_scopes(struct node *n, struct fd_http_req *req,
				    char *who, size_t len);
/* Replies 403 in the words node_allow uses. */
void node_forbidden(struct fd_http_req *req, const char *who,
		    enum fd_scope_kind kind, const char *name, size_t len);
/* One audit line now: action ("keys use"), detail (owned; NULL: none), the
 * status given. who is the request's token id, "local" or its address
 * ("node" without a request). Nothing without --audit-log. */
void node_audit(struct node *n, struct fd_http_req *req, const char *action,
		struct json_object *detail, unsigned status);
/* Audits the request when it ends (with its status), as action (a string
 * that outlives it; NULL: "METHOD PATH"). Admin routes are audited so
 * already. */
void node_audit_request(struct node *n, struct fd_http_req *req, const char *action);

/* Client subcommands; argv[0] is the subcommand. */
int cmd_info(int argc, char **argv);
int cmd_members(int argc, char **argv);
int cmd_leave(int argc, char **argv);
int cmd_keys(int argc, char **argv);   /* keycmd.c */
int cmd_keygen(int argc, char **argv); /* keycmd.c */

#endif
