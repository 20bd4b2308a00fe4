/* --announce mdns: the node's DNS-SD responder (protocol in
 * libcommon/mdns.h; this file owns the socket, the timer and the logs). */
#include "announce.h"
#include "cli.h"
#include "log.h"
#include "mdns.h"
#include "node.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct mdns_announcer {
	struct node *n;
	struct fd_mdns_responder r;
	struct fd_mcast_opts mo;
	int fd;
	struct fd_timer wake;
	struct fd_dns_msg *msg;
	enum fd_mdns_state logged; /* the last state logged */
	uint64_t bad, send_errors;
	int64_t send_error_logged;
};

static const char *state_name[] = {"probing", "announcing", "ready", "stopped"};

static void send_group(struct mdns_announcer *a, const uint8_t *buf, size_t len)
{
	struct fd_err err;

	if (fd_mcast_send(a->fd, &a->mo, buf, len, &err) == 0)
		return;
	a->send_errors++;
	if (!a->send_error_logged ||
	    fd_loop_now(a->n->loop) - a->send_error_logged > 10000) {
		fd_warnlog("mDNS: %s", err.msg);
		a->send_error_logged = fd_loop_now(a->n->loop);
	}
}

/* Sends what is due, then sleeps until the next thing. */
static void schedule(struct mdns_announcer *a)
{
	uint8_t buf[FD_MDNS_SEND_MAX];
	int64_t now = fd_loop_now(a->n->loop), next;
	ssize_t len;

	while ((len = fd_mdns_responder_poll(&a->r, now, buf, sizeof(buf), &next)) > 0)
		send_group(a, buf, (size_t)len);
	if (a->r.state != a->logged && a->r.state == FD_MDNS_READY)
		fd_info("mDNS: announced '%s' as %s (host %s.local)",
			a->r.svc.instance, FD_MDNS_SERVICE,
			a->r.svc.target[0] ? a->r.svc.target : a->r.svc.host);
	a->logged = a->r.state;
	if (next != INT64_MAX && fd_timer_arm_at(a->n->loop, &a->wake, next) < 0)
		fd_warnlog("mDNS: unable to arm a timer: out of memory");
}

static void on_wake(struct fd_loop *loop, struct fd_timer *t, void *arg)
{
	(void)loop;
	(void)t;
	schedule(arg);
}

static void on_readable(struct fd_loop *loop, int fd, uint32_t events, void *arg)
{
	struct mdns_announcer *a = arg;

	(void)events;
	for (;;) {
		uint8_t buf[FD_MDNS_RECV_MAX];
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);
		char old[FD_MDNS_LABEL_MAX + 1];
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0,
				     (struct sockaddr *)&from, &flen);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		if (fd_dns_decode(buf, (size_t)n, a->msg, NULL) < 0) {
			a->bad++;
			continue;
		}
		if (ntohs(from.sin_port) != FD_MDNS_PORT) {
			/* a legacy unicast query (RFC 6762 §6.7): the answer
			 * goes back to where it came from */
			uint8_t out[FD_MDNS_SEND_MAX];
			ssize_t len = fd_mdns_responder_legacy(&a->r, a->msg,
							       out, sizeof(out));

			if (len > 0 && from.sin_addr.s_addr != htonl(INADDR_ANY))
				sendto(fd, out, (size_t)len, 0,
				       (struct sockaddr *)&from, flen);
			continue;
		}
		snprintf(old, sizeof(old), "%s", a->r.svc.instance);
		switch (fd_mdns_responder_recv(&a->r, fd_loop_now(loop), a->msg)) {
		case FD_MDNS_EV_RENAMED:
			fd_warnlog("mDNS: the name '%s' is taken on the link: probing for '%s' (host %s)",
				   old, a->r.svc.instance, a->r.svc.host);
			break;
		case FD_MDNS_EV_REPROBE:
			fd_info("mDNS: '%s' is claimed by another responder: probing again",
				a->r.svc.instance);
			break;
		default: break;
		}
	}
	schedule(a);
}

struct mdns_announcer *mdns_announce_start(struct node *n)
{
	const struct announce_opts *o = n->opts->announce;
	struct mdns_announcer *a = calloc(1, sizeof(*a));
	struct fd_dns_msg *msg = malloc(sizeof(*msg));
	struct fd_mdns_svc svc;
	struct fd_err err;
	char host[256];
	uint64_t seed;
	int port;

	if (!a || !msg) {
		free(a);
		free(msg);
		return NULL;
	}
	a->msg = msg;
	a->n = n;
	a->fd = -1;
	if (fd_parse_hostport(n->addr, host, sizeof(host), -1, &port) < 0)
		announce_die(n, FD_EXIT_USAGE,
			     "--announce mdns: invalid address '%s'", n->addr);
	if (fd_mdns_svc_init(&svc, n->name, n->id, host, port, &err) < 0)
		announce_die(n, FD_EXIT_USAGE, "--announce mdns: %s%s", err.msg,
			     strlen(n->name) > FD_MDNS_LABEL_MAX ? " (pick a shorter --name)"
								 : "");
	if (fd_mdns_svc_txt(&svc, "id", n->id, &err) < 0 ||
	    fd_mdns_svc_txt(&svc, "version", FD_VERSION, &err) < 0)
		announce_die(n, FD_EXIT_USAGE, "--announce mdns: %s", err.msg);
	for (int i = 0; i < o->nmeta; i++) {
		char key[256];
		const char *eq = strchr(o->meta[i], '=');

		snprintf(key, sizeof(key), "%.*s", (int)(eq - o->meta[i]),
			 o->meta[i]);
		if (fd_mdns_svc_txt(&svc, key, eq + 1, &err) < 0)
			announce_die(n, FD_EXIT_USAGE,
				     "--announce mdns: --meta: %s", err.msg);
	}
	a->mo = o->mcast;
	inet_pton(AF_INET, FD_MDNS_GROUP, &a->mo.group);
	a->mo.port = FD_MDNS_PORT;
	a->mo.ttl = 255; /* RFC 6762 §11 */
	a->fd = fd_mcast_open(&a->mo, &err);
	if (a->fd < 0)
		announce_die(n, FD_EXIT_RUNTIME, "--announce mdns: %s", err.msg);
	memcpy(&seed, n->id_raw + 8, sizeof(seed));
	fd_mdns_responder_init(&a->r, &svc, seed, fd_loop_now(n->loop));
	fd_timer_init(&a->wake, on_wake, a);
	if (fd_loop_watch(n->loop, a->fd, EPOLLIN, on_readable, a) < 0)
		announce_die(n, FD_EXIT_RUNTIME, "--announce mdns: %s",
			     strerror(errno));
	fd_info("mDNS: probing for '%s' on %s:%d%s%s", svc.instance,
		FD_MDNS_GROUP, FD_MDNS_PORT, a->mo.ifname ? " via " : "",
		a->mo.ifname ? a->mo.ifname : "");
	schedule(a);
	return a;
}

void mdns_announce_leave(struct mdns_announcer *a)
{
	uint8_t buf[FD_MDNS_SEND_MAX];
	ssize_t len;

	if (!a || a->r.state == FD_MDNS_STOPPED)
		return;
	len = fd_mdns_responder_goodbye(&a->r, buf, sizeof(buf));
	if (len > 0) {
		send_group(a, buf, (size_t)len);
		fd_info("mDNS: goodbye sent for '%s'", a->r.svc.instance);
	}
	fd_timer_disarm(a->n->loop, &a->wake);
}

void mdns_announce_free(struct mdns_announcer *a)
{
	if (!a)
		return;
	mdns_announce_leave(a);
	fd_timer_disarm(a->n->loop, &a->wake);
	if (a->fd >= 0) {
		fd_loop_unwatch(a->n->loop, a->fd);
		close(a->fd);
	}
	free(a->msg);
	free(a);
}

struct json_object *mdns_announce_info(struct mdns_announcer *a)
{
	struct json_object *o = json_object_new_object();
	const struct fd_mdns_stats *s = &a->r.stats;

	json_object_object_add(o, "instance",
			       json_object_new_string(a->r.svc.instance));
	json_object_object_add(o, "service", json_object_new_string(FD_MDNS_SERVICE));
	json_object_object_add(o, "state",
			       json_object_new_string(state_name[a->r.state]));
	json_object_object_add(o, "probes",
			       json_object_new_int64((int64_t)s->probes));
	json_object_object_add(o, "announcements",
			       json_object_new_int64((int64_t)s->announcements));
	json_object_object_add(o, "queries",
			       json_object_new_int64((int64_t)s->queries));
	json_object_object_add(o, "answers",
			       json_object_new_int64((int64_t)s->answers));
	json_object_object_add(o, "conflicts",
			       json_object_new_int64((int64_t)s->conflicts));
	json_object_object_add(o, "renames",
			       json_object_new_int64((int64_t)s->renames));
	json_object_object_add(o, "malformed",
			       json_object_new_int64((int64_t)a->bad));
	json_object_object_add(o, "send_errors",
			       json_object_new_int64((int64_t)a->send_errors));
	return o;
}
