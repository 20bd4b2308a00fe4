/* The node daemon: binds its port (TCP for HTTP, UDP for membership), then
 * runs everything in one fd_loop. */
#include "node.h"
#include "announce.h"
#include "pubsub.h"
#include "cli.h"
#include "clock.h"
#include "http.h"
#include "jsonl.h"
#include "log.h"
#include "metrics.h"
#include "loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define NAME_MAX_LEN 255

/* Binding */

static int bind_one(const struct sockaddr *sa, socklen_t salen, int type)
{
	int fd = socket(sa->sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0)
		return -1;
	if (type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, sa, salen) < 0 || (type == SOCK_STREAM && listen(fd, 512) < 0)) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int sock_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void set_port(struct sockaddr_storage *ss, int port)
{
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
}

static int is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >>
			24) == 127;
	if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a =
			&((const struct sockaddr_in6 *)ss)->sin6_addr;

		return IN6_IS_ADDR_LOOPBACK(a) ||
		       (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return 0;
}

/* 1 when every address host resolves to is a loopback one. */
static int host_is_loopback(const char *host)
{
	struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *ai = NULL;
	int all = 1;

	if (getaddrinfo(host, NULL, &hints, &ai) != 0)
		return 0;
	for (struct addrinfo *a = ai; a; a = a->ai_next) {
		struct sockaddr_storage ss;

		memcpy(&ss, a->ai_addr, a->ai_addrlen);
		all &= is_loopback(&ss);
	}
	freeaddrinfo(ai);
	return all;
}

/* Secure by default: without a key, traffic is plaintext and anyone who
 * can reach the port can join; only loopback is allowed unless the
 * operator says --insecure. Checked before anything is bound. */
static void refuse_plaintext(struct node *n, const char *what, const char *addr)
{
	if (keys_enabled(n) || n->opts->insecure)
		return;
	fd_die(FD_EXIT_USAGE,
	       "refusing %s '%s' without a cluster key: node-to-node traffic "
	       "would be plaintext and unauthenticated (give --key-file FILE, "
	       "made by 'fd-node keygen FILE', or --insecure)",
	       what, addr);
}

/* Binds TCP and UDP on one port: the given one, or with port 0 the first
 * free port for both (a free TCP port may be taken for UDP: try again). */
static int node_bind(struct node *n, const char *listen)
{
	struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICSERV,
				 .ai_socktype = SOCK_STREAM};
	struct addrinfo *ai = NULL;
	struct sockaddr_storage ss;
	char host[256], port_s[8], shown[INET6_ADDRSTRLEN];
	int port, rc, tries = 0;

	if (fd_parse_hostport(listen, host, sizeof(host), -1, &port) < 0)
		fd_usage_die("invalid --listen '%s' (expected HOST:PORT)", listen);
	snprintf(port_s, sizeof(port_s), "%d", port);
	rc = getaddrinfo(host, port_s, &hints, &ai);
	if (rc != 0)
		fd_die(FD_EXIT_RUNTIME, "unable to resolve '%s': %s", host,
		       gai_strerror(rc));
	memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	if (!is_loopback(&ss))
		refuse_plaintext(n, "to listen on", listen);
	if (n->opts->advertise) {
		char ahost[256];
		int aport;

		if (fd_parse_hostport(n->opts->advertise, ahost, sizeof(ahost),
				      -1, &aport) == 0 &&
		    !host_is_loopback(ahost))
			refuse_plaintext(n, "to advertise", n->opts->advertise);
	}
	for (;;) {
		socklen_t len = ss.ss_family == AF_INET6
					? sizeof(struct sockaddr_in6)
					: sizeof(struct sockaddr_in);

		n->tcp_fd = bind_one((struct sockaddr *)&ss, len, SOCK_STREAM);
		if (n->tcp_fd < 0)
			break;
		set_port(&ss, sock_port(n->tcp_fd));
		n->udp_fd = bind_one((struct sockaddr *)&ss, len, SOCK_DGRAM);
		if (n->udp_fd >= 0)
			break;
		close(n->tcp_fd);
		n->tcp_fd = -1;
		if (port != 0 || errno != EADDRINUSE || ++tries == 50)
			break;
		set_port(&ss, 0);
	}
	if (n->tcp_fd < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to listen on '%s': %s", listen,
		       strerror(errno));
	if (n->opts->advertise) {
		char ahost[256];
		int aport;

		if (fd_parse_hostport(n->opts->advertise, ahost, sizeof(ahost),
				      -1, &aport) < 0 ||
		    aport == 0 || strlen(n->opts->advertise) >= sizeof(n->addr))
			fd_usage_die("invalid --advertise '%s' (expected HOST:PORT)",
				     n->opts->advertise);
		snprintf(n->addr, sizeof(n->addr), "%s", n->opts->advertise);
		return 0;
	}
	if (ss.ss_family == AF_INET6) {
		if (IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&ss)->sin6_addr))
			fd_usage_die("--listen on a wildcard address needs --advertise HOST:PORT");
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr,
			  shown, sizeof(shown));
		snprintf(n->addr, sizeof(n->addr), "[%s]:%d", shown,
			 sock_port(n->tcp_fd));
	} else {
		if (((struct sockaddr_in *)&ss)->sin_addr.s_addr == htonl(INADDR_ANY))
			fd_usage_die("--listen on a wildcard address needs --advertise HOST:PORT");
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr,
			  shown, sizeof(shown));
		snprintf(n->addr, sizeof(n->addr), "%s:%d", shown,
			 sock_port(n->tcp_fd));
	}
	return 0;
}

/* HTTP API */

static struct json_object *node_info(struct node *n)
{
	struct json_object *o = fd_json_record("node");
	char ts[FD_TS_LEN];

	json_object_object_add(o, "name", json_object_new_string(n->name));
	json_object_object_add(o, "id", json_object_new_string(n->id));
	json_object_object_add(o, "addr", json_object_new_string(n->addr));
	json_object_object_add(o, "pid", json_object_new_int(getpid()));
	json_object_object_add(o, "version", json_object_new_string(FD_VERSION));
	json_object_object_add(o, "started",
			       json_object_new_string(fd_ts_format(
				       n->started_wall, ts, sizeof(ts))));
	json_object_object_add(o, "uptime",
			       fd_json_seconds(fd_mono_ms() - n->started_mono));
	members_add_info(n, o);
	keys_add_info(n, o); /* keys.c */
	registry_add_info(n, o);
	pubsub_add_info(n, o);
	faults_add_info(n, o);	 /* faults.c */
	discover_add_info(n, o); /* discover.c */
	announce_add_info(n, o); /* announce.c */
	return o;
}

static void h_healthz(struct fd_http_req *req, void *arg)
{
	struct node *n = arg;
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "status", json_object_new_string("ok"));
	/* open to all: a node checks with it whether an address is itself */
	json_object_object_add(o, "id", json_object_new_string(n->id));
	json_object_object_add(o, "addr", json_object_new_string(n->addr));
	fd_http_reply_json(req, 200, o);
}

static void h_readyz(struct fd_http_req *req, void *arg)
{
	struct json_object *o = json_object_new_object();
	char why[160];
	int ready = members_ready(arg, why, sizeof(why));

	json_object_object_add(o, "ready", json_object_new_boolean(ready));
	if (!ready)
		json_object_object_add(o, "reason", json_object_new_string(why));
	fd_http_reply_json(req, ready ? 200 : 503, o);
}

static void h_info(struct fd_http_req *req, void *arg)
{
	fd_http_reply_json(req, 200, node_info(arg));
}

static void h_metrics(struct fd_http_req *req, void *arg)
{
	static const char *const classes[] = {"other", "1xx", "2xx",
					      "3xx",   "4xx", "5xx"};
	struct node *n = arg;
	struct fd_buf b = FD_BUF_INIT(64 * 1024 * 1024);
	const char *info[] = {"name",	 n->name,    "id", n->id,
			      "version", FD_VERSION, NULL};
	struct fd_metrics m;
	uint64_t by_class[6];

	fd_metrics_init(&m, &b);
	fd_metrics_family(&m, "fd_node_info", "gauge",
			  "This node: its name, id and version (always 1).");
	fd_metrics_sample(&m, "fd_node_info", info, 1);
	fd_metrics_gauge(&m, "fd_uptime_seconds", "Seconds since the node started.",
			 (double)(fd_mono_ms() - n->started_mono) / 1000.0);
	fd_http_server_counts(n->http, by_class);
	fd_metrics_family(&m, "fd_http_requests_total", "counter",
			  "HTTP requests answered (this one not yet), by status class.");
	for (int i = 1; i <= 6; i++) {
		const char *l[] = {"code", classes[i % 6], NULL};

		fd_metrics_sample_u64(&m, "fd_http_requests_total", l,
				      by_class[i % 6]);
	}
	members_add_metrics(n, &m);
	registry_add_metrics(n, &m);
	pubsub_add_metrics(n, &m);
	faults_add_metrics(n, &m); /* faults.c */
	if (fd_metrics_error(&m) < 0)
		fd_http_reply_error(req, 500, "unable to write the metrics");
	else
		fd_http_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8",
			      b.data ? b.data : "", b.len);
	fd_buf_release(&b);
}

static void h_log_level(struct fd_http_req *req, void *arg)
{
	const char *level = fd_json_get_str(fd_http_json(req), "level");
	enum fd_log_level l;
	struct json_object *o;

	(void)arg;
	if (!level || fd_log_parse_level(level, &l) < 0) {
		fd_http_reply_error(
			req, 400,
			"expected {\"level\": \"debug|info|warn|error|off\"}");
		return;
	}
	fd_log_level = l;
	fd_info("log level set to %s by %s", level, fd_http_peer(req));
	o = json_object_new_object();
	json_object_object_add(o, "level", json_object_new_string(level));
	fd_http_reply_json(req, 200, o);
}

static void on_stop_signal(struct fd_loop *loop, int signo, void *arg)
{
	struct node *n = arg;

	(void)loop;
	if (n->members && !n->stopping) {
		fd_info("SIG%s received, leaving the cluster", sigabbrev_np(signo));
		members_leave(n);
		return;
	}
	fd_info("SIG%s received again, stopping now", sigabbrev_np(signo));
	node_stop(n, FD_EXIT_OK);
}

void node_stop(struct node *n, int code)
{
	if (!n->exit_code)
		n->exit_code = code;
	n->stopping = 1;
	fd_loop_stop(n->loop);
}

void node_member_changed(struct node *n, const struct fd_member_event *ev)
{
	registry_member_changed(n, ev);
	pubsub_member_changed(n, ev);
}

int node_sockaddr(const char *addr, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[80];
	int port;

	memset(ss, 0, sizeof(*ss));
	if (fd_parse_hostport(addr, host, sizeof(host), -1, &port) < 0)
		return -1;
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		ss->ss_family = AF_INET;
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
		*len = sizeof(struct sockaddr_in);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		ss->ss_family = AF_INET6;
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
		*len = sizeof(struct sockaddr_in6);
		return 0;
	}
	return -1;
}

int64_t node_wall_us(const struct node *n, int64_t mono_ms)
{
	return n->started_wall + (mono_ms - n->started_mono) * 1000;
}

static void tls_reload(struct node *n);

static void on_hup(struct fd_loop *loop, int signo, void *arg)
{
	struct node *n = arg;

	(void)loop;
	(void)signo;
	fd_info("SIGHUP received: reloading");
	keys_reload(n); /* keys.c: the key file */
	if (n->opts->acl_file)
		authz_reload(n); /* authz.c: --acl-file */
	if (n->opts->tls_cert)
		tls_reload(n);
}

static void make_identity(struct node *n, const char *name)
{
	if (name) {
		if (!*name || strlen(name) > NAME_MAX_LEN)
			fd_usage_die("invalid --name: 1 to %d bytes", NAME_MAX_LEN);
		for (const char *c = name; *c; c++)
			if ((unsigned char)*c < 0x21 || *c == 0x7f)
				fd_usage_die("invalid --name '%s': no spaces or control characters",
					     name);
		if (!fd_utf8_valid(name, strlen(name)))
			fd_usage_die("invalid --name: not UTF-8");
		snprintf(n->name, sizeof(n->name), "%s", name);
	} else if (gethostname(n->name, sizeof(n->name) - 1) < 0 || !n->name[0]) {
		snprintf(n->name, sizeof(n->name), "node");
	}
	if (RAND_bytes(n->id_raw, sizeof(n->id_raw)) != 1)
		fd_die(FD_EXIT_RUNTIME, "unable to generate a node id");
	for (size_t i = 0; i < sizeof(n->id_raw); i++)
		snprintf(n->id + 2 * i, 3, "%02x", n->id_raw[i]);
}

static void print_identity(struct node *n, pid_t pid)
{
	struct json_object *o = fd_json_record("node");

	json_object_object_add(o, "name", json_object_new_string(n->name));
	json_object_object_add(o, "id", json_object_new_string(n->id));
	json_object_object_add(o, "addr", json_object_new_string(n->addr));
	json_object_object_add(o, "pid", json_object_new_int(pid));
	if (fd_emit(o) < 0 || fd_emit_flush() < 0)
		fd_warn("unable to write to stdout: %s", strerror(errno));
	json_object_put(o);
}

/* --detach: the parent waits until the child is serving (or has failed),
 * then prints the identity line and exits. The child reports through a
 * pipe: "ok" or an error message. */
static int detach(struct node *n, int *report_fd)
{
	int p[2];
	pid_t pid;
	char msg[512];
	ssize_t len;

	if (pipe2(p, O_CLOEXEC) < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to detach: %s", strerror(errno));
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to detach: %s", strerror(errno));
	if (pid == 0) {
		close(p[0]);
		setsid();
		*report_fd = p[1];
		return 0;
	}
	close(p[1]);
	close(n->tcp_fd);
	close(n->udp_fd);
	do
		len = read(p[0], msg, sizeof(msg) - 1);
	while (len < 0 && errno == EINTR);
	close(p[0]);
	/* "0" or "CODE message" */
	if (len == 1 && msg[0] == '0') {
		print_identity(n, pid);
		_exit(fd_finish_stdout(FD_EXIT_OK));
	}
	if (len > 2 && msg[0] >= '1' && msg[0] <= '7' && msg[1] == ' ') {
		msg[len] = '\0';
		fd_die(msg[0] - '0', "%s", msg + 2);
	}
	fd_die(FD_EXIT_RUNTIME, "the detached node exited during start-up");
}

void node_report(struct node *n, int code, const char *fmt, ...)
{
	char msg[512];
	int len = snprintf(msg, sizeof(msg), "%d", code);
	va_list ap;

	if (n->report_fd < 0)
		return;
	if (code != FD_EXIT_OK) {
		msg[len++] = ' ';
		va_start(ap, fmt);
		vsnprintf(msg + len, sizeof(msg) - (size_t)len, fmt, ap);
		va_end(ap);
	}
	if (write(n->report_fd, msg, strlen(msg)) < 0)
		fd_warn("unable to report start-up: %s", strerror(errno));
	close(n->report_fd);
	n->report_fd = -1;
}

static int redirect_stdio(const char *log_file, int detached)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	int log = -1;

	if (log_file) {
		log = open(log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (log < 0)
			return -1;
	}
	if (detached && null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		if (log < 0)
			dup2(null, STDERR_FILENO);
	}
	if (log >= 0) {
		dup2(log, STDERR_FILENO);
		close(log);
	}
	if (null >= 0)
		close(null);
	return 0;
}

/* A PEM file for --tls-*: a new string the caller frees, or NULL with msg
 * filled. */
static char *read_pem(const char *opt, const char *path, char *msg, size_t len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t n = 0, cap = 0;

	if (!f) {
		snprintf(msg, len, "unable to read %s '%s': %s", opt, path,
			 strerror(errno));
		return NULL;
	}
	for (;;) {
		size_t r;

		if (n + 4096 + 1 > cap) {
			char *b = cap < (1 << 20) ? realloc(buf, cap + 65536) : NULL;

			if (!b) {
				snprintf(msg, len, "%s '%s': too large", opt, path);
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = b;
			cap += 65536;
		}
		r = fread(buf + n, 1, cap - n - 1, f);
		n += r;
		if (r == 0)
			break;
	}
	buf[n] = '\0';
	if (ferror(f) || !strstr(buf, "-----BEGIN ")) {
		snprintf(msg, len, "%s '%s': not a PEM file", opt, path);
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

/* SIGHUP: the --tls-cert and --tls-key files again, for the connections
 * from now on (a renewed certificate without a restart); on any error the
 * certificate in use stays. The client side (node to node) reads them at
 * each new connection. --tls-ca is read at start only. */
static void tls_reload(struct node *n)
{
	const struct node_opts *o = n->opts;
	char msg[512];
	char *cert = read_pem("--tls-cert", o->tls_cert, msg, sizeof(msg)),
	     *key = NULL;
	struct fd_err err;

	if (cert)
		key = read_pem("--tls-key", o->tls_key ? o->tls_key : o->tls_cert,
			       msg, sizeof(msg));
	if (!cert || !key)
		fd_errlog("SIGHUP: TLS certificate not reloaded, the old one stays: %s",
			  msg);
	else if (fd_http_server_reload_tls(n->http, cert, key, &err) < 0)
		fd_errlog("SIGHUP: TLS certificate not reloaded, the old one stays: %s",
			  err.msg);
	else
		fd_info("SIGHUP: TLS certificate '%s' reloaded", o->tls_cert);
	free(cert);
	if (key)
		OPENSSL_cleanse(key, strlen(key));
	free(key);
}

/* Reads the --tls-* files into hopts (freed by the caller). Dies on error:
 * these are the command line's mistakes. */
static void tls_files(const struct node_opts *o, struct fd_http_server_opts *hopts)
{
	char msg[512];

	if (!o->tls_cert)
		return;
	if (!(hopts->tls_cert = read_pem("--tls-cert", o->tls_cert, msg, sizeof(msg))) ||
	    !(hopts->tls_key = read_pem("--tls-key", o->tls_key ? o->tls_key : o->tls_cert,
					msg, sizeof(msg))) ||
	    (o->tls_ca &&
	     !(hopts->tls_ca = read_pem("--tls-ca", o->tls_ca, msg, sizeof(msg)))))
		fd_usage_die("%s", msg);
	hopts->tls_verify_client = o->tls_verify_client;
}

static int write_pid_file(const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fprintf(f, "%d\n", (int)getpid());
	return fclose(f);
}

int node_main(const struct node_opts *opts)
{
	struct node n = {.opts = opts, .tcp_fd = -1, .udp_fd = -1, .report_fd = -1};
	struct fd_http_server_opts hopts = {0};
	struct fd_err err;
	char msg[512];
	int rc;

	make_identity(&n, opts->name);
	if (keys_load(&n) < 0) /* before binding: no key, no public address */
		fd_die(FD_EXIT_RUNTIME, "out of memory");
	node_bind(&n, opts->listen);
	/* before --detach: a bad file is the command line's mistake, said here */
	tls_files(opts, &hopts);
	rc = authz_init(&n, msg, sizeof(msg));
	if (rc == -2)
		fd_usage_die("%s", msg);
	if (rc < 0)
		fd_die(FD_EXIT_RUNTIME, "%s", msg);
	if (opts->detach)
		detach(&n, &n.report_fd);
	n.started_mono = fd_mono_ms();
	n.started_wall = fd_wall_us();
	if (redirect_stdio(opts->log_file, opts->detach) < 0) {
		snprintf(msg, sizeof(msg), "unable to open '%s': %s",
			 opts->log_file, strerror(errno));
		node_report(&n, FD_EXIT_RUNTIME, "%s", msg);
		fd_die(FD_EXIT_RUNTIME, "%s", msg);
	}
	if (opts->pid_file && write_pid_file(opts->pid_file) < 0) {
		snprintf(msg, sizeof(msg), "unable to write '%s': %s",
			 opts->pid_file, strerror(errno));
		node_report(&n, FD_EXIT_RUNTIME, "%s", msg);
		fd_die(FD_EXIT_RUNTIME, "%s", msg);
	}
	n.loop = fd_loop_new();
	if (!n.loop)
		fd_die(FD_EXIT_RUNTIME, "unable to create the event loop: %s",
		       strerror(errno));
	if (fd_loop_signal(n.loop, SIGTERM, on_stop_signal, &n) < 0 ||
	    fd_loop_signal(n.loop, SIGINT, on_stop_signal, &n) < 0 ||
	    fd_loop_signal(n.loop, SIGHUP, on_hup, &n) < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to set up the event loop: %s",
		       strerror(errno));
	n.client = fd_http_client_new(n.loop, 64 * 1024 * 1024, &err);
	/* A TLS node talks https to its peers, verifies them against --tls-ca
	 * and shows its own certificate (for clusters with
	 * --tls-verify-client). */
	if (n.client && opts->tls_cert &&
	    fd_http_client_set_tls(n.client, opts->tls_ca, opts->tls_cert,
				   opts->tls_key ? opts->tls_key : opts->tls_cert) < 0)
		fd_die(FD_EXIT_RUNTIME, "out of memory");
	if (!n.client || keys_init(&n) < 0 || faults_init(&n) < 0 ||
	    members_init(&n) < 0 || registry_init(&n) < 0) {
		snprintf(msg, sizeof(msg), "unable to start membership: %s",
			 n.client ? strerror(errno) : err.msg);
		node_report(&n, FD_EXIT_RUNTIME, "%s", msg);
		fd_die(FD_EXIT_RUNTIME, "%s", msg);
	}
	hopts.listen_fd = n.tcp_fd;
	hopts.max_body = opts->max_body;
	hopts.max_conns = opts->max_conns;
	hopts.max_conns_per_ip = opts->max_client_conns;
	n.http = fd_http_server_new(n.loop, &hopts, &err);
	free((char *)hopts.tls_cert);
	free((char *)hopts.tls_key);
	free((char *)hopts.tls_ca);
	if (!n.http) {
		node_report(&n, FD_EXIT_RUNTIME, "%s", err.msg);
		fd_die(FD_EXIT_RUNTIME, "%s", err.msg);
	}
	authz_add_hook(&n); /* authz.c: tokens and scopes on every route */
	fd_http_route(n.http, "GET", "/healthz", FD_HTTP_OPEN, h_healthz, &n);
	fd_http_route(n.http, "GET", "/readyz", FD_HTTP_OPEN, h_readyz, &n);
	fd_http_route(n.http, "GET", "/v1/info", 0, h_info, &n);
	fd_http_route(n.http, "GET", "/metrics", 0, h_metrics, &n);
	fd_http_route(n.http, "PUT", "/v1/log-level",
		      FD_HTTP_JSON | FD_HTTP_ADMIN, h_log_level, &n);
	faults_add_routes(&n); /* faults.c: /v1/faults and the server-side gate */
	keys_add_routes(&n);   /* keys.c: /v1/keys, answer signing */
	members_add_routes(&n);
	registry_add_routes(&n);
	if (pubsub_init(&n) < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to start pub/sub: out of memory");
	pubsub_add_routes(&n);

	fd_info("node '%s' (%s) listening on %s%s, profile %s", n.name, n.id,
		n.addr, opts->tls_cert ? " (TLS)" : "", opts->profile);
	if (!opts->detach)
		print_identity(&n, getpid());
	announce_start(&n); /* --announce mdns|gossip (announce.c) */
	members_start(&n);  /* reports readiness to a --detach parent */
	if (discover_init(&n) < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to start discovery: out of memory");

	if (fd_loop_run(n.loop) < 0) {
		fd_errlog("event loop failed: %s", strerror(errno));
		n.exit_code = FD_EXIT_RUNTIME;
	}
	announce_free(&n);	     /* goodbyes if not said yet */
	fd_http_server_free(n.http); /* ends requests: their audit lines */
	fd_http_client_free(n.client);
	discover_free(&n);
	authz_free(&n);
	registry_free(&n);
	pubsub_free(&n);
	members_free(&n);
	faults_free(&n);
	keys_free(&n);
	close(n.udp_fd);
	fd_loop_free(n.loop);
	if (opts->pid_file)
		unlink(opts->pid_file);
	fd_info("stopped");
	return fd_finish_stdout(n.exit_code);
}
