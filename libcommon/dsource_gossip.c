/* gossip inside the loop (fd-node --discover gossip): the nodes' sealed
 * multicast heartbeats (gossip.h) on a socket of its own, opened at the
 * first poll, which also asks who is there. A poll answers from the peers
 * heard (those not expired); a new one kicks a poll at once.
 *
 * Keys (libcluster's Gossip names where it has them): multicast_addr,
 * port, multicast_if (or if_addr), multicast_ttl; key_file, cluster,
 * insecure. Without key_file the key set with fd_dsource_gossip_key() is
 * used (fd-node's own); without either, insecure=true is needed (plain
 * heartbeats). libcluster's secret= (a shared password) is refused: fd
 * seals with the cluster key. Datagrams that do not open are counted
 * (fd_gossip_stats) and do not fail a poll. */
#include "dsource.h"
#include "gossip.h"
#include "mcast.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"

#define REPLAY_MAX 65536

static const struct fd_keyring *default_kr;
static const char *default_cluster = "fd";
static int default_expected;

void fd_dsource_gossip_key_expected(void)
{
	default_expected = 1;
}

void fd_dsource_gossip_key(const struct fd_keyring *kr, const char *cluster)
{
	default_kr = kr && kr->n ? kr : NULL;
	default_cluster = cluster ? cluster : "fd";
}

struct gsrc {
	struct fd_dsource *s;
	struct fd_mcast_opts mo;
	char ifname[64];
	char cluster[80];
	struct fd_keyring own;	     /* from key_file= */
	const struct fd_keyring *kr; /* own, fd-node's, or NULL (insecure) */
	struct fd_replay *rc;
	struct fd_gossip_peers *peers;
	struct fd_gossip_stats st;
	int fd; /* -1 until the first poll */
};

static const char *const gossip_keys[] = {
	"multicast_addr", "port",    "multicast_port",
	"multicast_if",	  "if_addr", "multicast_ttl",
	"key_file",	  "cluster", "insecure",
	"secret",	  NULL};

static int truthy(const char *v)
{
	return v && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0 ||
		     strcmp(v, "yes") == 0);
}

static int gossip_start(struct fd_dsource *s, const struct fd_dspec *sp,
			struct fd_err *err)
{
	const char *v, *key_file = fd_dspec_get(sp, "key_file");
	const char *ins = fd_dspec_get(sp, "insecure");
	struct gsrc *g = calloc(1, sizeof(*g));
	long long n;
	struct fd_err e;

	if (!g)
		return fd_err_set(err, "out of memory");
	s->priv = g;
	g->s = s;
	g->fd = -1;
	fd_mcast_parse_group(FD_GOSSIP_GROUP, &g->mo.group, NULL);
	if (fd_dspec_get(sp, "secret"))
		return fd_err_set(
			err, "secret= (libcluster's shared password) is not supported: heartbeats are sealed with the cluster key (key_file=)");
	if (ins && !truthy(ins) && strcmp(ins, "false") != 0)
		return fd_err_set(err, "invalid insecure '%s' (true, false)", ins);
	v = fd_dspec_get(sp, "multicast_addr");
	if (v && fd_mcast_parse_group(v, &g->mo.group, &e) < 0)
		return fd_err_set(err, "invalid multicast_addr: %s", e.msg);
	if (fd_dspec_get(sp, "port") && fd_dspec_get(sp, "multicast_port"))
		return fd_err_set(
			err, "port and multicast_port are one setting: give one");
	if (fd_dspec_int(sp, fd_dspec_get(sp, "port") ? "port" : "multicast_port",
			 FD_GOSSIP_PORT, 1, 65535, &n, err) < 0)
		return -1;
	g->mo.port = (int)n;
	if (fd_dspec_int(sp, "multicast_ttl", FD_GOSSIP_TTL, 1, 255, &n, err) < 0)
		return -1;
	g->mo.ttl = (int)n;
	v = fd_dspec_get(sp, "multicast_if");
	if (!v) {
		v = fd_dspec_get(sp, "if_addr"); /* libcluster's bind address */
		if (v && strcmp(v, "0.0.0.0") == 0)
			v = NULL;
	}
	if (v) {
		snprintf(g->ifname, sizeof(g->ifname), "%s", v);
		if (fd_mcast_parse_if(g->ifname, &g->mo, &e) < 0)
			return fd_err_set(err, "invalid multicast_if: %s", e.msg);
	}
	v = fd_dspec_get(sp, "cluster");
	snprintf(g->cluster, sizeof(g->cluster), "%s", v ? v : default_cluster);
	if (key_file) {
		int usage;

		if (fd_gossip_load_keyring(key_file, &g->own, &usage, &e) < 0)
			return fd_err_set(err, "%s", e.msg);
		g->kr = &g->own;
	} else if (!truthy(ins)) {
		g->kr = default_kr;
	}
	/* Only checking (no loop yet), with the owner's key to come: fine. */
	if (!g->kr && !truthy(ins) && !(default_expected && !s->loop))
		return fd_err_set(
			err, "gossip needs a key: key_file=FILE (or the node's --key-file), or insecure=true for plain heartbeats");
	if (g->kr && truthy(ins))
		return fd_err_set(
			err, "gossip: key_file and insecure=true exclude each other");
	if (g->kr) {
		g->rc = fd_replay_new(FD_AUTH_WINDOW_MS_DEFAULT, REPLAY_MAX);
		if (!g->rc)
			return fd_err_set(err, "out of memory");
	}
	g->peers = fd_gossip_peers_new(0);
	if (!g->peers)
		return fd_err_set(err, "out of memory");
	return 0;
}

static void send_query(struct gsrc *g)
{
	struct fd_gossip_msg q = {.kind = FD_GOSSIP_QUERY};
	uint8_t buf[FD_GOSSIP_MAX];
	ssize_t len = fd_gossip_pack(g->kr, g->cluster, fd_wall_us() / 1000, &q,
				     buf, sizeof(buf), NULL);

	if (len > 0)
		fd_mcast_send(g->fd, &g->mo, buf, (size_t)len, NULL);
}

static void on_readable(struct fd_loop *loop, int fd, uint32_t events, void *arg)
{
	struct gsrc *g = arg;
	int grew = 0;

	(void)events;
	for (;;) {
		uint8_t buf[FD_GOSSIP_MAX + 1];
		struct fd_gossip_msg m;
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		if (fd_gossip_unpack(g->kr, g->rc, g->cluster, fd_wall_us() / 1000,
				     buf, (size_t)n, &m, &g->st, NULL) != FD_GOSSIP_OK)
			continue;
		if (fd_gossip_peers_update(g->peers, fd_loop_now(loop), &m) > 0)
			grew = 1;
		fd_gossip_msg_release(&m);
	}
	if (grew)
		fd_dsource_kick(g->s);
}

static void add_peer(const char *name, const char *addr,
		     struct json_object *meta, void *arg)
{
	fd_dsource_add(arg, addr, name, meta, NULL);
}

static void gossip_poll(struct fd_dsource *s)
{
	struct gsrc *g = s->priv;

	if (g->fd < 0) {
		struct fd_err err;

		g->fd = fd_mcast_open(&g->mo, &err);
		if (g->fd < 0) {
			fd_dsource_fail(s, "%s", err.msg);
			return;
		}
		if (fd_loop_watch(s->loop, g->fd, EPOLLIN, on_readable, g) < 0) {
			fd_dsource_fail(s, "unable to listen: %s", strerror(errno));
			return;
		}
		send_query(g);
	}
	fd_gossip_peers_each(g->peers, fd_loop_now(s->loop), add_peer, s);
	fd_dsource_done(s);
}

static void gossip_stop(struct fd_dsource *s)
{
	struct gsrc *g = s->priv;

	if (!g)
		return;
	if (g->fd >= 0) {
		fd_loop_unwatch(s->loop, g->fd);
		close(g->fd);
	}
	fd_gossip_peers_free(g->peers);
	fd_replay_free(g->rc);
	fd_keyring_clear(&g->own);
	free(g);
	s->priv = NULL;
}

const struct fd_dsource_ops fd_dsource_gossip = {
	.name = "gossip",
	.keys = gossip_keys,
	.start = gossip_start,
	.poll = gossip_poll,
	.stop = gossip_stop,
};
