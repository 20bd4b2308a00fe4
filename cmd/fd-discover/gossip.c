/* gossip: listens to the nodes' multicast heartbeats (libcommon/gossip.h),
 * sealed with the cluster key, and asks once at start (twice in a one-shot
 * run) so that nodes answer without waiting for their next round.
 * Datagrams that do not open (another key, replayed, plain where a key is
 * needed, ...) are ignored and counted: --watch reports them as error
 * records (the first of each kind at once, then at most one per kind every
 * 10 s, with the count), and a last line on stderr sums them up. */
#include "cli.h"
#include "clock.h"
#include "gossip.h"
#include "jsonl.h"
#include "live.h"
#include "loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define REPORT_EVERY_MS 10000
#define REPLAY_MAX 65536

struct gossip {
	struct live l;
	struct fd_gossip_peers *peers;
	struct fd_keyring kr;
	struct fd_replay *rc;
	const char *cluster;
	struct fd_mcast_opts mo;
	int fd;
	int queries; /* still to send */
	struct fd_timer wake;
	struct fd_gossip_stats st;
	int64_t reported[FD_GOSSIP_MALFORMED + 1]; /* when, per verdict */
};

static const char *verdict_name[] = {
	"accepted", "bad key", "replayed", "unsealed", "sealed", "malformed",
};

/* The key file (fd_gossip_load_keyring): exits 2 for a file that is wrong,
 * 1 for one that cannot be read. */
static void load_key(const char *path, struct fd_keyring *kr)
{
	struct fd_err err;
	int usage;

	if (fd_gossip_load_keyring(path, kr, &usage, &err) < 0)
		fd_die(usage ? FD_EXIT_USAGE : FD_EXIT_RUNTIME, "%s", err.msg);
}

static size_t each(struct live *l, int64_t now,
		   void (*cb)(const char *name, const char *addr,
			      struct json_object *meta, void *arg),
		   void *arg)
{
	struct gossip *g = l->ctx;

	return fd_gossip_peers_each(g->peers, now, cb, arg);
}

static void send_query(struct gossip *g)
{
	struct fd_gossip_msg q = {.kind = FD_GOSSIP_QUERY};
	uint8_t buf[FD_GOSSIP_MAX];
	struct fd_err err;
	ssize_t len = fd_gossip_pack(g->kr.n ? &g->kr : NULL, g->cluster,
				     fd_wall_us() / 1000, &q, buf, sizeof(buf),
				     &err);

	if (len < 0 || fd_mcast_send(g->fd, &g->mo, buf, (size_t)len, &err) < 0)
		out_error("gossip", err.msg);
}

static void on_wake(struct fd_loop *loop, struct fd_timer *t, void *arg)
{
	struct gossip *g = arg;

	send_query(g);
	if (--g->queries > 0 && fd_timer_arm(loop, t, 1000) < 0)
		fd_die(FD_EXIT_RUNTIME, "out of memory");
}

static void report(struct gossip *g, enum fd_gossip_verdict v, const char *from,
		   const char *why, int64_t now)
{
	char msg[512];
	uint64_t counts[] = {g->st.accepted, g->st.bad_key, g->st.replayed,
			     g->st.unsealed, g->st.sealed,  g->st.malformed};

	if (!g->l.o->watch ||
	    (g->reported[v] && now - g->reported[v] < REPORT_EVERY_MS))
		return;
	g->reported[v] = now;
	snprintf(msg, sizeof(msg), "ignored a datagram from %s: %s (%s: %llu so far)",
		 from, why, verdict_name[v], (unsigned long long)counts[v]);
	out_error(from, msg);
}

static void on_readable(struct fd_loop *loop, int fd, uint32_t events, void *arg)
{
	struct gossip *g = arg;
	int changed = 0;

	(void)events;
	for (;;) {
		uint8_t buf[FD_GOSSIP_MAX + 1];
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);
		struct fd_gossip_msg m;
		struct fd_err err;
		enum fd_gossip_verdict v;
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0,
				     (struct sockaddr *)&from, &flen);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		v = fd_gossip_unpack(g->kr.n ? &g->kr : NULL, g->rc, g->cluster,
				     fd_wall_us() / 1000, buf, (size_t)n, &m,
				     &g->st, &err);
		if (v != FD_GOSSIP_OK) {
			char src[INET_ADDRSTRLEN + 8], ip[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, &from.sin_addr, ip, sizeof(ip));
			snprintf(src, sizeof(src), "%s:%u", ip, ntohs(from.sin_port));
			report(g, v, src, err.msg, fd_loop_now(loop));
			continue;
		}
		if (fd_gossip_peers_update(g->peers, fd_loop_now(loop), &m) > 0)
			changed = 1;
		fd_gossip_msg_release(&m);
	}
	if (changed)
		live_changed(&g->l);
}

static void final_stats(const struct gossip *g)
{
	const struct fd_gossip_stats *s = &g->st;

	if (!fd_gossip_ignored(s))
		return;
	fd_warn("gossip: %llu datagrams received, %llu accepted, %llu ignored (bad key %llu, replayed %llu, unsealed %llu, sealed %llu, malformed %llu)",
		(unsigned long long)s->received, (unsigned long long)s->accepted,
		(unsigned long long)fd_gossip_ignored(s),
		(unsigned long long)s->bad_key, (unsigned long long)s->replayed,
		(unsigned long long)s->unsealed, (unsigned long long)s->sealed,
		(unsigned long long)s->malformed);
}

int strategy_gossip(int argc, char **argv, const struct dopts *o)
{
	struct gossip g = {.fd = -1, .cluster = o->cluster};
	struct fd_err err;
	int rc;

	if (argc != 0)
		fd_usage_die("gossip: unexpected argument '%s'", argv[0]);
	if (!o->key_file && !o->insecure)
		fd_usage_die("gossip: no key: give --key-file FILE (or FD_KEY_FILE), or --insecure for plain heartbeats");
	if (o->key_file && o->insecure)
		fd_usage_die("gossip: --key-file and --insecure exclude each other");
	if (o->key_file) {
		load_key(o->key_file, &g.kr);
		g.rc = fd_replay_new(FD_AUTH_WINDOW_MS_DEFAULT, REPLAY_MAX);
		if (!g.rc)
			fd_die(FD_EXIT_RUNTIME, "out of memory");
	}
	g.mo = o->mcast;
	g.peers = fd_gossip_peers_new(0);
	if (!g.peers || live_init(&g.l, o) < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to start: %s", strerror(errno));
	g.l.each = each;
	g.l.ctx = &g;
	g.fd = fd_mcast_open(&g.mo, &err);
	if (g.fd < 0)
		fd_die(FD_EXIT_RUNTIME, "gossip: %s", err.msg);
	if (fd_loop_watch(g.l.loop, g.fd, EPOLLIN, on_readable, &g) < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to start: %s", strerror(errno));
	fd_timer_init(&g.wake, on_wake, &g);
	g.queries = o->watch ? 1 : 2;
	if (fd_timer_arm(g.l.loop, &g.wake, 0) < 0)
		fd_die(FD_EXIT_RUNTIME, "out of memory");
	rc = live_run(&g.l);
	if (rc < 0)
		fd_die(FD_EXIT_RUNTIME, "event loop failed: %s", strerror(errno));
	final_stats(&g);
	fd_timer_disarm(g.l.loop, &g.wake);
	fd_loop_unwatch(g.l.loop, g.fd);
	close(g.fd);
	fd_gossip_peers_free(g.peers);
	fd_replay_free(g.rc);
	fd_keyring_clear(&g.kr);
	live_release(&g.l);
	return rc;
}
