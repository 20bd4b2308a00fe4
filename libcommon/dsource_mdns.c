/* mdns inside the loop (fd-node --discover mdns): a browser (mdns.h) on a
 * socket of its own in the group 224.0.0.251:5353, opened at the first
 * poll. A poll answers from the cache (what has not expired); a packet
 * that brings a new record kicks a poll at once, so a node that announces
 * itself is joined within the same second.
 *
 * Keys: multicast_if (name or IPv4 address of the interface). */
#include "dsource.h"
#include "mcast.h"
#include "mdns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct msrc {
	struct fd_dsource *s;
	struct fd_mcast_opts mo;
	char ifname[64];
	int fd; /* -1 until the first poll */
	struct fd_mdns_browser *b;
	struct fd_dns_msg *msg;
	struct fd_timer wake;
};

static const char *const mdns_keys[] = {"multicast_if", NULL};

static int mdns_start(struct fd_dsource *s, const struct fd_dspec *sp,
		      struct fd_err *err)
{
	const char *ifn = fd_dspec_get(sp, "multicast_if");
	struct msrc *m = calloc(1, sizeof(*m));

	if (!m)
		return fd_err_set(err, "out of memory");
	s->priv = m;
	m->s = s;
	m->fd = -1;
	inet_pton(AF_INET, FD_MDNS_GROUP, &m->mo.group);
	m->mo.port = FD_MDNS_PORT;
	m->mo.ttl = 255; /* RFC 6762 §11 */
	if (ifn) {
		struct fd_err e;

		snprintf(m->ifname, sizeof(m->ifname), "%s", ifn);
		if (fd_mcast_parse_if(m->ifname, &m->mo, &e) < 0)
			return fd_err_set(err, "invalid multicast_if: %s", e.msg);
	}
	m->msg = malloc(sizeof(*m->msg));
	if (!m->msg)
		return fd_err_set(err, "out of memory");
	return 0;
}

/* Sends the queries due, sleeps until the next. */
static void schedule(struct msrc *m)
{
	uint8_t buf[FD_MDNS_SEND_MAX];
	int64_t now = fd_loop_now(m->s->loop), next;
	ssize_t len;

	while ((len = fd_mdns_browser_poll(m->b, now, buf, sizeof(buf), &next)) > 0)
		fd_mcast_send(m->fd, &m->mo, buf, (size_t)len, NULL);
	fd_timer_arm_at(m->s->loop, &m->wake, next);
}

static void on_wake(struct fd_loop *loop, struct fd_timer *t, void *arg)
{
	(void)loop;
	(void)t;
	schedule(arg);
}

static void on_readable(struct fd_loop *loop, int fd, uint32_t events, void *arg)
{
	struct msrc *m = arg;
	uint8_t buf[FD_MDNS_RECV_MAX];
	int grew = 0;

	(void)events;
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		if (fd_dns_decode(buf, (size_t)n, m->msg, NULL) == 0 &&
		    fd_mdns_browser_recv(m->b, fd_loop_now(loop), m->msg))
			grew = 1;
	}
	schedule(m);
	if (grew)
		fd_dsource_kick(m->s);
}

static void add_peer(const char *name, const char *addr,
		     struct json_object *meta, void *arg)
{
	fd_dsource_add(arg, addr, name, meta, NULL);
}

static void mdns_poll(struct fd_dsource *s)
{
	struct msrc *m = s->priv;

	if (m->fd < 0) {
		struct fd_err err;
		struct timespec ts;

		m->fd = fd_mcast_open(&m->mo, &err);
		if (m->fd < 0) {
			fd_dsource_fail(s, "%s", err.msg);
			return;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		m->b = fd_mdns_browser_new(
			0, 0, (uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 32,
			fd_loop_now(s->loop));
		fd_timer_init(&m->wake, on_wake, m);
		if (!m->b ||
		    fd_loop_watch(s->loop, m->fd, EPOLLIN, on_readable, m) < 0) {
			fd_dsource_fail(s, "unable to browse: %s", strerror(errno));
			return;
		}
		schedule(m);
	}
	fd_mdns_browser_each(m->b, fd_loop_now(s->loop), add_peer, s);
	fd_dsource_done(s);
}

static void mdns_stop(struct fd_dsource *s)
{
	struct msrc *m = s->priv;

	if (!m)
		return;
	if (m->fd >= 0) {
		fd_timer_disarm(s->loop, &m->wake);
		fd_loop_unwatch(s->loop, m->fd);
		close(m->fd);
	}
	fd_mdns_browser_free(m->b);
	free(m->msg);
	free(m);
	s->priv = NULL;
}

const struct fd_dsource_ops fd_dsource_mdns = {
	.name = "mdns",
	.keys = mdns_keys,
	.start = mdns_start,
	.poll = mdns_poll,
	.stop = mdns_stop,
};
