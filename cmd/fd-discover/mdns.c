/* mdns: browses DNS-SD service _fd._tcp.local over multicast DNS
 * (libcommon/mdns.h does the protocol; this file owns the socket). */
#include "cli.h"
#include "jsonl.h"
#include "live.h"
#include "loop.h"
#include "mdns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct mdns {
	struct live l;
	struct fd_mdns_browser *b;
	struct fd_mcast_opts mo;
	int fd;
	struct fd_timer wake;
	struct fd_dns_msg *msg;
	char last_error[256];
};

static size_t each(struct live *l, int64_t now,
		   void (*cb)(const char *name, const char *addr,
			      struct json_object *meta, void *arg),
		   void *arg)
{
	struct mdns *m = l->ctx;

	return fd_mdns_browser_each(m->b, now, cb, arg);
}

/* Sends the queries due and sleeps until the next. */
static void schedule(struct mdns *m)
{
	uint8_t buf[FD_MDNS_SEND_MAX];
	int64_t now = fd_loop_now(m->l.loop), next;
	ssize_t len;

	while ((len = fd_mdns_browser_poll(m->b, now, buf, sizeof(buf), &next)) > 0) {
		struct fd_err err;

		if (fd_mcast_send(m->fd, &m->mo, buf, (size_t)len, &err) < 0 &&
		    strcmp(err.msg, m->last_error) != 0) {
			out_error("mdns", err.msg);
			snprintf(m->last_error, sizeof(m->last_error), "%s", err.msg);
		}
	}
	if (fd_timer_arm_at(m->l.loop, &m->wake, next) < 0)
		fd_die(FD_EXIT_RUNTIME, "out of memory");
}

static void on_wake(struct fd_loop *loop, struct fd_timer *t, void *arg)
{
	(void)loop;
	(void)t;
	schedule(arg);
}

static void on_readable(struct fd_loop *loop, int fd, uint32_t events, void *arg)
{
	struct mdns *m = arg;
	uint8_t buf[FD_MDNS_RECV_MAX];
	int changed = 0;

	(void)events;
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		if (fd_dns_decode(buf, (size_t)n, m->msg, NULL) == 0 &&
		    fd_mdns_browser_recv(m->b, fd_loop_now(loop), m->msg))
			changed = 1;
	}
	if (changed)
		live_changed(&m->l);
	schedule(m);
}

int strategy_mdns(int argc, char **argv, const struct dopts *o)
{
	struct mdns m = {.fd = -1};
	struct fd_err err;
	uint64_t seed;
	struct timespec ts;
	int rc;

	if (argc != 0)
		fd_usage_die("mdns: unexpected argument '%s' (the service is %s)",
			     argv[0], FD_MDNS_SERVICE);
	if (o->mcast_group_set)
		fd_usage_die("mdns: the group is %s:%d; --multicast-addr, --multicast-port and --multicast-ttl are for gossip",
			     FD_MDNS_GROUP, FD_MDNS_PORT);
	m.mo = o->mcast;
	inet_pton(AF_INET, FD_MDNS_GROUP, &m.mo.group);
	m.mo.port = FD_MDNS_PORT;
	m.mo.ttl = 255; /* RFC 6762 §11 */
	m.msg = malloc(sizeof(*m.msg));
	if (!m.msg || live_init(&m.l, o) < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to start: %s", strerror(errno));
	m.l.each = each;
	m.l.ctx = &m;
	m.fd = fd_mcast_open(&m.mo, &err);
	if (m.fd < 0)
		fd_die(FD_EXIT_RUNTIME, "mdns: %s", err.msg);
	clock_gettime(CLOCK_REALTIME, &ts);
	seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
	m.b = fd_mdns_browser_new(0, 0, seed, fd_loop_now(m.l.loop));
	if (!m.b || fd_loop_watch(m.l.loop, m.fd, EPOLLIN, on_readable, &m) < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to start: %s", strerror(errno));
	fd_timer_init(&m.wake, on_wake, &m);
	schedule(&m);
	rc = live_run(&m.l);
	if (rc < 0)
		fd_die(FD_EXIT_RUNTIME, "event loop failed: %s", strerror(errno));
	fd_timer_disarm(m.l.loop, &m.wake);
	fd_loop_unwatch(m.l.loop, m.fd);
	close(m.fd);
	fd_mdns_browser_free(m.b);
	live_release(&m.l);
	free(m.msg);
	return rc;
}
