/* dns and dns-srv inside the loop: c-ares tells which sockets it uses
 * (ARES_OPT_SOCK_STATE_CB) and the loop watches them; ares_process_fd()
 * runs on their events and on a timer set from ares_timeout(). So a slow
 * or silent server never holds the loop. The answers are judged as
 * fd-discover judges them: an error (SERVFAIL, NXDOMAIN, a timeout) or an
 * empty answer is a failed poll, which removes nothing.
 *
 *   dns      name=NAME port=PORT resolver=IP[:PORT] basename=B
 *   dns-srv  name=NAME resolver=IP[:PORT] basename=B
 *
 * basename names each peer "B@IP" (libcluster's DNSPoll node names). */
#include "dsource.h"
#include "cli.h"

#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_ADDRS 256
#define MAX_SRV 256
#define T_A 1
#define T_AAAA 28
#define T_SRV_ 33

struct answer {
	int status; /* -1 while waiting */
	unsigned char *buf;
	int len;
};

struct dns {
	struct fd_dsource *s;
	int srv;
	char *name, *basename;
	int port;
	ares_channel ch;
	struct fd_timer timer;
	int stopping, lib;
	int waiting;	    /* queries sent, not answered */
	struct answer q[2]; /* A and AAAA, or SRV */
	struct fd_srv *v;   /* SRV records, sorted */
	struct answer *res; /* A and AAAA per SRV target */
	struct ares_srv_reply *list;
	size_t nv;
};

static const char *const dns_keys[] = {"name", "port", "resolver", "basename", NULL};
static const char *const srv_keys[] = {"name", "resolver", "basename", NULL};

static void update_timer(struct dns *d)
{
	struct timeval tv, *tvp = ares_timeout(d->ch, NULL, &tv);

	if (!tvp) {
		fd_timer_disarm(d->s->loop, &d->timer);
		return;
	}
	fd_timer_arm(d->s->loop, &d->timer,
		     (int64_t)tvp->tv_sec * 1000 + (tvp->tv_usec + 999) / 1000);
}

static void on_fd(struct fd_loop *loop, int fd, uint32_t events, void *arg)
{
	struct dns *d = arg;
	ares_socket_t r = ARES_SOCKET_BAD, w = ARES_SOCKET_BAD;

	(void)loop;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		r = fd;
	if (events & EPOLLOUT)
		w = fd;
	ares_process_fd(d->ch, r, w);
	update_timer(d);
}

static void on_timer(struct fd_loop *loop, struct fd_timer *t, void *arg)
{
	struct dns *d = arg;

	(void)loop;
	(void)t;
	ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	update_timer(d);
}

static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns *d = data;

	if (!readable && !writable) {
		fd_loop_unwatch(d->s->loop, fd);
		return;
	}
	fd_loop_watch(d->s->loop, fd,
		      (readable ? EPOLLIN : 0) | (writable ? EPOLLOUT : 0),
		      on_fd, d);
}

static void answer_clear(struct answer *a)
{
	free(a->buf);
	memset(a, 0, sizeof(*a));
	a->status = -1;
}

static const char *status_text(int status)
{
	switch (status) {
	case ARES_ESERVFAIL: return "server failure (SERVFAIL)";
	case ARES_ENOTFOUND: return "no such name (NXDOMAIN)";
	case ARES_EREFUSED: return "query refused (REFUSED)";
	case ARES_ETIMEOUT: return "timed out";
	default: return ares_strerror(status);
	}
}

/* The answers that are not errors, only without records. */
static int no_records(int status)
{
	return status == ARES_ENODATA || status == ARES_ENOTFOUND;
}

/* Every query carries its source and its answer slot. */
struct qctx {
	struct dns *d;
	struct answer *a;
};

static void stage_done(struct dns *d);

static void on_query(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct qctx *q = arg;
	struct dns *d = q->d;
	struct answer *a = q->a;

	(void)timeouts;
	free(q);
	if (d->stopping) /* ares_destroy() calls back what is in flight */
		return;
	a->status = status;
	if (status == ARES_SUCCESS && abuf && alen > 0) {
		a->buf = malloc((size_t)alen);
		if (a->buf) {
			memcpy(a->buf, abuf, (size_t)alen);
			a->len = alen;
		} else {
			a->status = ARES_ENOMEM;
		}
	}
	if (--d->waiting == 0)
		stage_done(d);
}

/* d->waiting must count this query already (see send_all). */
static void send_query(struct dns *d, const char *name, int type, struct answer *a)
{
	struct qctx *q = malloc(sizeof(*q));

	answer_clear(a);
	if (!q) {
		a->status = ARES_ENOMEM;
		if (--d->waiting == 0)
			stage_done(d);
		return;
	}
	q->d = d;
	q->a = a;
	ares_query(d->ch, name, 1 /* C_IN */, type, on_query, q);
}

/* A and AAAA answers to peers. Returns the number added, or -1 for an
 * answer that cannot be read. */
static int add_addrs(struct dns *d, struct answer *a, struct answer *aaaa,
		     int port, struct json_object *meta)
{
	struct ares_addrttl v4[MAX_ADDRS];
	struct ares_addr6ttl v6[MAX_ADDRS];
	char addr[FD_PEER_ADDR_LEN], name[512], ip[INET6_ADDRSTRLEN];
	int n4 = MAX_ADDRS, n6 = MAX_ADDRS, added = 0;

	if (a->status == ARES_SUCCESS &&
	    ares_parse_a_reply(a->buf, a->len, NULL, v4, &n4) != ARES_SUCCESS)
		return -1;
	if (aaaa->status == ARES_SUCCESS &&
	    ares_parse_aaaa_reply(aaaa->buf, aaaa->len, NULL, v6, &n6) != ARES_SUCCESS)
		return -1;
	for (int i = 0; a->status == ARES_SUCCESS && i < n4; i++) {
		if (fd_peer_addr_ip(AF_INET, &v4[i].ipaddr, port, addr,
				    sizeof(addr)) < 0)
			continue;
		inet_ntop(AF_INET, &v4[i].ipaddr, ip, sizeof(ip));
		snprintf(name, sizeof(name), "%s@%s",
			 d->basename ? d->basename : "", ip);
		if (fd_dsource_add(d->s, addr, d->basename ? name : NULL, meta,
				   NULL) == 0)
			added++;
	}
	for (int i = 0; aaaa->status == ARES_SUCCESS && i < n6; i++) {
		if (fd_peer_addr_ip(AF_INET6, &v6[i].ip6addr, port, addr,
				    sizeof(addr)) < 0)
			continue;
		inet_ntop(AF_INET6, &v6[i].ip6addr, ip, sizeof(ip));
		snprintf(name, sizeof(name), "%s@%s",
			 d->basename ? d->basename : "", ip);
		if (fd_dsource_add(d->s, addr, d->basename ? name : NULL, meta,
				   NULL) == 0)
			added++;
	}
	return added;
}

static void a_done(struct dns *d)
{
	struct answer *a = &d->q[0], *aaaa = &d->q[1];
	int n = add_addrs(d, a, aaaa, d->port, NULL);

	if (n < 0)
		fd_dsource_fail(d->s, "unable to resolve '%s': malformed answer",
				d->name);
	else if (!no_records(a->status) && a->status != ARES_SUCCESS)
		fd_dsource_fail(d->s, "unable to resolve '%s' (A): %s", d->name,
				status_text(a->status));
	else if (!no_records(aaaa->status) && aaaa->status != ARES_SUCCESS)
		fd_dsource_fail(d->s, "unable to resolve '%s' (AAAA): %s",
				d->name, status_text(aaaa->status));
	else if (n == 0 && a->status == ARES_ENOTFOUND)
		fd_dsource_fail(d->s, "unable to resolve '%s': %s", d->name,
				status_text(ARES_ENOTFOUND));
	else if (n == 0)
		fd_dsource_fail(d->s, "unable to resolve '%s': no A or AAAA records",
				d->name);
	else
		fd_dsource_done(d->s);
	answer_clear(a);
	answer_clear(aaaa);
}

static void srv_clear(struct dns *d)
{
	for (size_t i = 0; d->res && i < 2 * d->nv; i++)
		answer_clear(&d->res[i]);
	free(d->res);
	free(d->v);
	if (d->list)
		ares_free_data(d->list);
	d->res = NULL;
	d->v = NULL;
	d->list = NULL;
	d->nv = 0;
}

/* SRV answered: ask every target's A and AAAA (from the same server: the
 * names may exist only there). */
static void srv_records(struct dns *d)
{
	struct answer *srv = &d->q[0];
	size_t n = 0;

	if (srv->status != ARES_SUCCESS) {
		fd_dsource_fail(d->s, "unable to resolve '%s' (SRV): %s", d->name,
				srv->status == ARES_ENODATA
					? "no SRV records"
					: status_text(srv->status));
		answer_clear(srv);
		return;
	}
	if (ares_parse_srv_reply(srv->buf, srv->len, &d->list) != ARES_SUCCESS) {
		answer_clear(srv);
		fd_dsource_fail(d->s, "unable to resolve '%s' (SRV): malformed answer",
				d->name);
		return;
	}
	answer_clear(srv);
	d->v = calloc(MAX_SRV, sizeof(*d->v));
	if (!d->v) {
		srv_clear(d);
		fd_dsource_fail(d->s, "out of memory");
		return;
	}
	for (struct ares_srv_reply *r = d->list; r && n < MAX_SRV; r = r->next) {
		if (r->port == 0 || !r->host[0] || strcmp(r->host, ".") == 0)
			continue; /* "no such service here" */
		d->v[n++] = (struct fd_srv){r->priority, r->weight, r->port, r->host};
	}
	fd_srv_sort(d->v, n);
	if (n == 0) {
		srv_clear(d);
		fd_dsource_fail(d->s, "unable to resolve '%s' (SRV): no usable SRV records",
				d->name);
		return;
	}
	d->res = calloc(2 * n, sizeof(*d->res));
	if (!d->res) {
		srv_clear(d);
		fd_dsource_fail(d->s, "out of memory");
		return;
	}
	d->nv = n;
	d->waiting = (int)(2 * n);
	for (size_t i = 0; i < n; i++) {
		send_query(d, d->v[i].target, T_A, &d->res[2 * i]);
		send_query(d, d->v[i].target, T_AAAA, &d->res[2 * i + 1]);
	}
}

static void srv_targets(struct dns *d)
{
	int found = 0, failed = 0;
	char why[300] = "";

	for (size_t i = 0; i < d->nv; i++) {
		struct answer *a = &d->res[2 * i], *aaaa = &d->res[2 * i + 1];
		struct json_object *m = json_object_new_object();
		int k;

		if (m) {
			json_object_object_add(
				m, "target", json_object_new_string(d->v[i].target));
			json_object_object_add(m, "priority",
					       json_object_new_int(d->v[i].priority));
			json_object_object_add(
				m, "weight", json_object_new_int(d->v[i].weight));
		}
		k = add_addrs(d, a, aaaa, d->v[i].port, m);
		if (k > 0) {
			found += k;
		} else if (k == 0 && no_records(a->status) &&
			   no_records(aaaa->status)) {
			char hp[300], addr[FD_PEER_ADDR_LEN];

			/* A target without addresses here is given by name. */
			snprintf(hp, sizeof(hp), "%s:%u", d->v[i].target,
				 d->v[i].port);
			if (fd_peer_addr_norm(hp, addr, sizeof(addr), NULL) == 0 &&
			    fd_dsource_add(d->s, addr, NULL, m, NULL) == 0)
				found++;
		} else if (!failed) {
			int st = a->status != ARES_SUCCESS && !no_records(a->status)
					 ? a->status
					 : aaaa->status;

			failed = 1;
			snprintf(why, sizeof(why),
				 "unable to resolve '%s' (target of '%s'): %s",
				 d->v[i].target, d->name,
				 k < 0 ? "malformed answer" : status_text(st));
		}
		json_object_put(m);
	}
	srv_clear(d);
	if (failed)
		fd_dsource_fail(d->s, "%s", why);
	else if (!found)
		fd_dsource_fail(d->s, "unable to resolve '%s' (SRV): no usable SRV records",
				d->name);
	else
		fd_dsource_done(d->s);
}

static void stage_done(struct dns *d)
{
	if (!d->srv)
		a_done(d);
	else if (!d->res)
		srv_records(d);
	else
		srv_targets(d);
}

static void dns_poll(struct fd_dsource *s)
{
	struct dns *d = s->priv;

	if (d->srv) {
		d->waiting = 1;
		send_query(d, d->name, T_SRV_, &d->q[0]);
	} else {
		d->waiting = 2;
		send_query(d, d->name, T_A, &d->q[0]);
		send_query(d, d->name, T_AAAA, &d->q[1]);
	}
	update_timer(d);
}

/* "IP" or "IP:PORT" (IPv6 in brackets) as c-ares takes it, into out. */
static int resolver_csv(const char *arg, char *out, size_t len)
{
	char host[256];
	unsigned char ip[16];
	int port, v6;

	if (fd_parse_hostport(arg, host, sizeof(host), 53, &port) < 0 || port == 0)
		return -1;
	v6 = inet_pton(AF_INET6, host, ip) == 1;
	if (!v6 && inet_pton(AF_INET, host, ip) != 1)
		return -1;
	snprintf(out, len, v6 ? "[%s]:%d" : "%s:%d", host, port);
	return 0;
}

static void dns_stop(struct fd_dsource *s)
{
	struct dns *d = s->priv;

	if (!d)
		return;
	d->stopping = 1;
	if (d->ch)
		ares_destroy(d->ch);
	if (d->lib)
		ares_library_cleanup();
	fd_timer_disarm(s->loop, &d->timer);
	answer_clear(&d->q[0]);
	answer_clear(&d->q[1]);
	srv_clear(d);
	free(d->name);
	free(d->basename);
	free(d);
	s->priv = NULL;
}

static int start(struct fd_dsource *s, const struct fd_dspec *sp, int srv,
		 struct fd_err *err)
{
	/* NOCHECKRESP: c-ares 1.18 turns a SERVFAIL into "could not contact
	 * DNS servers" once it has tried them all; taken as is, it says
	 * SERVFAIL (as fd-discover does). */
	struct ares_options opts = {.flags = ARES_FLAG_NOCHECKRESP,
				    .timeout = 1000,
				    .tries = 2,
				    .sock_state_cb = sock_state};
	const char *name = fd_dspec_get(sp, "name"),
		   *resolver = fd_dspec_get(sp, "resolver"),
		   *basename = fd_dspec_get(sp, "basename");
	char csv[300];
	long long port;
	struct dns *d;
	int rc;

	if (!name || !*name || strlen(name) > 253 || strpbrk(name, " \t\r\n"))
		return fd_err_set(err, "%s needs name=NAME (a DNS name)",
				  srv ? "dns-srv" : "dns");
	if (fd_dspec_int(sp, "port", FD_DEFAULT_PORT, 1, 65535, &port, err) < 0)
		return -1;
	if (resolver && resolver_csv(resolver, csv, sizeof(csv)) < 0)
		return fd_err_set(err, "invalid resolver '%s' (expected IP[:PORT])",
				  resolver);
	d = calloc(1, sizeof(*d));
	if (!d)
		return fd_err_set(err, "out of memory");
	d->s = s;
	d->srv = srv;
	d->port = (int)port;
	d->name = strdup(name);
	d->basename = basename ? strdup(basename) : NULL;
	d->q[0].status = d->q[1].status = -1;
	fd_timer_init(&d->timer, on_timer, d);
	s->priv = d;
	if (!d->name || (basename && !d->basename))
		return fd_err_set(err, "out of memory");
	opts.sock_state_cb_data = d;
	rc = ares_library_init(ARES_LIB_INIT_ALL);
	d->lib = rc == ARES_SUCCESS;
	if (rc == ARES_SUCCESS)
		rc = ares_init_options(&d->ch, &opts,
				       ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS |
					       ARES_OPT_TRIES |
					       ARES_OPT_SOCK_STATE_CB);
	if (rc != ARES_SUCCESS) {
		d->ch = NULL;
		return fd_err_set(err, "unable to set up DNS: %s",
				  ares_strerror(rc));
	}
	if (resolver) {
		rc = ares_set_servers_ports_csv(d->ch, csv);
		if (rc != ARES_SUCCESS)
			return fd_err_set(err, "unable to use resolver '%s': %s",
					  resolver, ares_strerror(rc));
	}
	return 0;
}

static int dns_start(struct fd_dsource *s, const struct fd_dspec *sp,
		     struct fd_err *err)
{
	return start(s, sp, 0, err);
}

static int srv_start(struct fd_dsource *s, const struct fd_dspec *sp,
		     struct fd_err *err)
{
	return start(s, sp, 1, err);
}

const struct fd_dsource_ops fd_dsource_dns = {
	.name = "dns",
	.keys = dns_keys,
	.start = dns_start,
	.poll = dns_poll,
	.stop = dns_stop,
};

const struct fd_dsource_ops fd_dsource_dns_srv = {
	.name = "dns-srv",
	.keys = srv_keys,
	.start = srv_start,
	.poll = dns_poll,
	.stop = dns_stop,
};
