/* dns and dns-srv: ask DNS with c-ares at every poll. A CLI asks one thing
 * at a time, so the wait is a plain select() on the channel's sockets (the
 * node will drive the same channel from its epoll loop). An answer that is
 * an error (SERVFAIL, NXDOMAIN, a timeout) or empty is a failed poll: it
 * removes nothing. */
#include "cli.h"
#include "strategy.h"
#include "jsonl.h"

#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>

#define MAX_ADDRS 256 /* addresses read from one answer */
#define MAX_SRV 256   /* SRV records read from one answer */
#ifndef T_SRV
#define T_SRV 33
#endif

struct dns {
	const struct dopts *o;
	const char *name;
	ares_channel ch;
	int pending;
};

struct answer {
	int status;
	unsigned char *buf;
	int len;
};

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf,
		      int alen)
{
	struct answer *a = arg;

	(void)timeouts;
	a->status = status;
	if (abuf && alen > 0) {
		a->buf = malloc((size_t)alen);
		if (!a->buf)
			fd_die(FD_EXIT_RUNTIME, "out of memory");
		memcpy(a->buf, abuf, (size_t)alen);
		a->len = alen;
	}
}

static void answer_clear(struct answer *a)
{
	free(a->buf);
	memset(a, 0, sizeof(*a));
}

/* Waits until every query sent has its callback (ares_cancel() on a stop
 * calls them with ARES_ECANCELLED). */
static void wait_all(struct dns *d)
{
	for (;;) {
		struct timeval max = {0, 100000}, tv, *tvp;
		fd_set r, w;
		int nfds;

		if (stop_requested())
			ares_cancel(d->ch);
		FD_ZERO(&r);
		FD_ZERO(&w);
		nfds = ares_fds(d->ch, &r, &w);
		if (nfds == 0)
			return;
		tvp = ares_timeout(d->ch, &max, &tv);
		if (select(nfds, &r, &w, NULL, tvp) < 0 && errno != EINTR)
			fd_die(FD_EXIT_RUNTIME, "unable to wait for DNS: %s",
			       strerror(errno));
		ares_process(d->ch, &r, &w);
	}
}

static const char *status_text(int status)
{
	switch (status) {
	case ARES_ESERVFAIL: return "server failure (SERVFAIL)";
	case ARES_ENOTFOUND: return "no such name (NXDOMAIN)";
	case ARES_EREFUSED: return "query refused (REFUSED)";
	case ARES_ETIMEOUT: return "timed out";
	case ARES_ECANCELLED: return "stopped";
	default: return ares_strerror(status);
	}
}

/* True for the answers that are not errors, only without records. */
static int no_records(int status)
{
	return status == ARES_ENODATA || status == ARES_ENOTFOUND;
}

static void query(struct dns *d, const char *name, int type, struct answer *a)
{
	memset(a, 0, sizeof(*a));
	a->status = -1;
	ares_query(d->ch, name, 1 /* C_IN */, type, on_answer, a);
}

/* Adds the addresses of a and aaaa (with port) through add(). Returns the
 * number added, or -1 for an answer that cannot be read. */
static int add_addrs(struct answer *a, struct answer *aaaa, int port,
		     int (*add)(const char *addr, void *arg), void *arg)
{
	struct ares_addrttl v4[MAX_ADDRS];
	struct ares_addr6ttl v6[MAX_ADDRS];
	char addr[FD_PEER_ADDR_LEN];
	int n4 = MAX_ADDRS, n6 = MAX_ADDRS, added = 0;

	if (a->status == ARES_SUCCESS &&
	    ares_parse_a_reply(a->buf, a->len, NULL, v4, &n4) != ARES_SUCCESS)
		return -1;
	if (aaaa->status == ARES_SUCCESS &&
	    ares_parse_aaaa_reply(aaaa->buf, aaaa->len, NULL, v6, &n6) != ARES_SUCCESS)
		return -1;
	for (int i = 0; a->status == ARES_SUCCESS && i < n4; i++)
		if (fd_peer_addr_ip(AF_INET, &v4[i].ipaddr, port, addr,
				    sizeof(addr)) == 0) {
			add(addr, arg);
			added++;
		}
	for (int i = 0; aaaa->status == ARES_SUCCESS && i < n6; i++)
		if (fd_peer_addr_ip(AF_INET6, &v6[i].ip6addr, port, addr,
				    sizeof(addr)) == 0) {
			add(addr, arg);
			added++;
		}
	return added;
}

struct add_ctx {
	struct poller *p;
	struct fd_peerset *set;
	struct json_object *meta;
};

static int add_peer(const char *addr, void *arg)
{
	struct add_ctx *c = arg;
	const struct dns *d = c->p->ctx;
	char name[600] = "";

	/* --basename: BASENAME@IP, the IP without port and brackets. */
	if (d->o->basename) {
		const char *ip = addr[0] == '[' ? addr + 1 : addr,
			   *end = addr[0] == '[' ? strchr(ip, ']')
						 : strrchr(ip, ':');

		snprintf(name, sizeof(name), "%s@%.*s", d->o->basename,
			 (int)(end ? end - ip : (long)strlen(ip)), ip);
	}
	if (peer_add_meta(c->set, addr, d->o->basename ? name : NULL, c->meta) < 0)
		c->p->bad_lines = 1;
	return 0;
}

static int dns_poll(struct poller *p, struct fd_peerset *set, struct fd_err *err)
{
	struct dns *d = p->ctx;
	struct answer a, aaaa;
	struct add_ctx c = {.p = p, .set = set};
	int n, rc = 0;

	query(d, d->name, 1 /* T_A */, &a);
	query(d, d->name, 28 /* T_AAAA */, &aaaa);
	wait_all(d);
	n = add_addrs(&a, &aaaa, d->o->port, add_peer, &c);
	if (n < 0)
		rc = fd_err_set(err, "unable to resolve '%s': malformed answer",
				d->name);
	else if (!no_records(a.status) && a.status != ARES_SUCCESS)
		rc = fd_err_set(err, "unable to resolve '%s' (A): %s", d->name,
				status_text(a.status));
	else if (!no_records(aaaa.status) && aaaa.status != ARES_SUCCESS)
		rc = fd_err_set(err, "unable to resolve '%s' (AAAA): %s",
				d->name, status_text(aaaa.status));
	else if (n == 0 && a.status == ARES_ENOTFOUND)
		rc = fd_err_set(err, "unable to resolve '%s': %s", d->name,
				status_text(ARES_ENOTFOUND));
	else if (n == 0)
		rc = fd_err_set(err, "unable to resolve '%s': no A or AAAA records",
				d->name);
	answer_clear(&a);
	answer_clear(&aaaa);
	return rc;
}

static struct json_object *srv_meta(const struct fd_srv *s)
{
	struct json_object *m = json_object_new_object();

	if (!m)
		fd_die(FD_EXIT_RUNTIME, "out of memory");
	json_object_object_add(m, "target", json_object_new_string(s->target));
	json_object_object_add(m, "priority", json_object_new_int(s->priority));
	json_object_object_add(m, "weight", json_object_new_int(s->weight));
	return m;
}

/* SRV, then A and AAAA for every target (from the same server: the names
 * may exist only there). A target without addresses is reported by name. */
static int srv_poll(struct poller *p, struct fd_peerset *set, struct fd_err *err)
{
	struct dns *d = p->ctx;
	struct answer srv, *res = NULL;
	struct ares_srv_reply *list = NULL;
	struct fd_srv v[MAX_SRV];
	size_t n = 0;
	int rc = 0, found = 0;

	query(d, d->name, T_SRV, &srv);
	wait_all(d);
	if (srv.status != ARES_SUCCESS) {
		rc = fd_err_set(err, "unable to resolve '%s' (SRV): %s", d->name,
				srv.status == ARES_ENODATA
					? "no SRV records"
					: status_text(srv.status));
		answer_clear(&srv);
		return rc;
	}
	if (ares_parse_srv_reply(srv.buf, srv.len, &list) != ARES_SUCCESS) {
		answer_clear(&srv);
		return fd_err_set(err, "unable to resolve '%s' (SRV): malformed answer",
				  d->name);
	}
	answer_clear(&srv);
	for (struct ares_srv_reply *r = list; r && n < MAX_SRV; r = r->next) {
		if (r->port == 0 || !r->host[0] || strcmp(r->host, ".") == 0)
			continue; /* "no such service here" */
		v[n++] = (struct fd_srv){r->priority, r->weight, r->port, r->host};
	}
	fd_srv_sort(v, n);
	res = calloc(2 * n + 1, sizeof(*res));
	if (!res)
		fd_die(FD_EXIT_RUNTIME, "out of memory");
	for (size_t i = 0; i < n; i++) {
		query(d, v[i].target, 1, &res[2 * i]);
		query(d, v[i].target, 28, &res[2 * i + 1]);
	}
	wait_all(d);
	for (size_t i = 0; i < n; i++) {
		struct answer *a = &res[2 * i], *aaaa = &res[2 * i + 1];
		struct add_ctx c = {.p = p, .set = set, .meta = srv_meta(&v[i])};
		int k = add_addrs(a, aaaa, v[i].port, add_peer, &c);

		if (k > 0) {
			found += k;
		} else if (k == 0 && no_records(a->status) &&
			   no_records(aaaa->status)) {
			char hp[300], addr[FD_PEER_ADDR_LEN];

			snprintf(hp, sizeof(hp), "%s:%u", v[i].target, v[i].port);
			if (fd_peer_addr_norm(hp, addr, sizeof(addr), NULL) == 0) {
				add_peer(addr, &c);
				found++;
			}
		} else if (!rc) {
			int st = a->status != ARES_SUCCESS && !no_records(a->status)
					 ? a->status
					 : aaaa->status;

			rc = fd_err_set(
				err, "unable to resolve '%s' (target of '%s'): %s",
				v[i].target, d->name,
				k < 0 ? "malformed answer" : status_text(st));
		}
		json_object_put(c.meta);
	}
	for (size_t i = 0; i < 2 * n; i++)
		answer_clear(&res[i]);
	free(res);
	ares_free_data(list);
	if (!rc && !found)
		rc = fd_err_set(err, "unable to resolve '%s' (SRV): no usable SRV records",
				d->name);
	return rc;
}

static int run(int argc, char **argv, const struct dopts *o, int srv)
{
	const char *what = srv ? "dns-srv" : "dns";
	/* NOCHECKRESP: c-ares 1.18 turns a SERVFAIL into "could not contact DNS
	 * servers" once it has tried them all; taken as is, it says SERVFAIL. */
	struct ares_options opts = {
		.flags = ARES_FLAG_NOCHECKRESP, .timeout = 1000, .tries = 2};
	struct dns d = {.o = o};
	struct poller p = {.poll = srv ? srv_poll : dns_poll, .ctx = &d};
	int rc;

	if (argc != 1)
		fd_usage_die(argc ? "%s: one NAME expected" : "%s: no NAME given",
			     what);
	d.name = argv[0];
	if (!d.name[0] || strlen(d.name) > 253 || strpbrk(d.name, " \t\r\n"))
		fd_usage_die("%s: invalid NAME '%s'", what, d.name);
	p.source = d.name;
	rc = ares_library_init(ARES_LIB_INIT_ALL);
	if (rc != ARES_SUCCESS)
		fd_die(FD_EXIT_RUNTIME, "unable to set up DNS: %s",
		       ares_strerror(rc));
	rc = ares_init_options(&d.ch, &opts,
			       ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
	if (rc != ARES_SUCCESS)
		fd_die(FD_EXIT_RUNTIME, "unable to set up DNS: %s",
		       ares_strerror(rc));
	if (o->resolver) {
		rc = ares_set_servers_ports_csv(d.ch, o->resolver);
		if (rc != ARES_SUCCESS)
			fd_die(FD_EXIT_RUNTIME, "unable to use resolver '%s': %s",
			       o->resolver, ares_strerror(rc));
	}
	rc = poll_run(&p, o);
	ares_destroy(d.ch);
	ares_library_cleanup();
	return rc;
}

int strategy_dns(int argc, char **argv, const struct dopts *o)
{
	return run(argc, argv, o, 0);
}

int strategy_dns_srv(int argc, char **argv, const struct dopts *o)
{
	return run(argc, argv, o, 1);
}
