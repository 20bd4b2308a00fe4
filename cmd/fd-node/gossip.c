/* --announce gossip: the node's multicast heartbeats (message format and
 * sealing in libcommon/gossip.h; this file owns the socket and timers). */
#include "announce.h"
#include "cli.h"
#include "clock.h"
#include "gossip.h"
#include "jsonl.h"
#include "log.h"
#include "node.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define REPLAY_MAX 65536
#define LOG_EVERY_MS 10000
#define ANSWER_WITHIN_MS 100 /* a query is answered this soon */

struct gossip_announcer {
	struct node *n;
	struct fd_mcast_opts mo;
	int fd;
	const struct fd_keyring *kr; /* NULL: --insecure */
	struct fd_replay *rc;
	struct fd_timer beat;
	struct fd_gossip_msg hb;
	struct fd_gossip_stats st;
	uint64_t sent, answered, send_errors;
	int64_t logged[FD_GOSSIP_MALFORMED + 1], send_error_logged;
	uint64_t rng;
	int left;
};

static const char *verdict_name[] = {
	"accepted", "bad key", "replayed", "unsealed", "sealed", "malformed",
};

static int send_msg(struct gossip_announcer *a, const struct fd_gossip_msg *m)
{
	uint8_t buf[FD_GOSSIP_MAX];
	struct fd_err err;
	ssize_t len = fd_gossip_pack(a->kr, a->n->opts->cluster, fd_wall_us() / 1000,
				     m, buf, sizeof(buf), &err);

	if (len >= 0 && fd_mcast_send(a->fd, &a->mo, buf, (size_t)len, &err) == 0) {
		a->sent++;
		return 0;
	}
	a->send_errors++;
	if (!a->send_error_logged ||
	    fd_loop_now(a->n->loop) - a->send_error_logged > LOG_EVERY_MS) {
		fd_warnlog("gossip: %s", err.msg);
		a->send_error_logged = fd_loop_now(a->n->loop);
	}
	return -1;
}

static void on_beat(struct fd_loop *loop, struct fd_timer *t, void *arg)
{
	struct gossip_announcer *a = arg;

	send_msg(a, &a->hb);
	if (fd_timer_arm(loop, t, a->hb.interval_ms) < 0)
		fd_warnlog("gossip: unable to arm a timer: out of memory");
}

static void ignored(struct gossip_announcer *a, enum fd_gossip_verdict v,
		    const struct sockaddr_in *from, const char *why)
{
	int64_t now = fd_loop_now(a->n->loop);
	uint64_t counts[] = {a->st.accepted, a->st.bad_key, a->st.replayed,
			     a->st.unsealed, a->st.sealed,  a->st.malformed};
	char ip[INET_ADDRSTRLEN];

	if (a->logged[v] && now - a->logged[v] < LOG_EVERY_MS)
		return;
	a->logged[v] = now;
	inet_ntop(AF_INET, &from->sin_addr, ip, sizeof(ip));
	fd_warnlog("gossip: ignored a datagram from %s:%u: %s (%s: %llu so far)",
		   ip, ntohs(from->sin_port), why, verdict_name[v],
		   (unsigned long long)counts[v]);
}

static void on_readable(struct fd_loop *loop, int fd, uint32_t events, void *arg)
{
	struct gossip_announcer *a = arg;

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
		v = fd_gossip_unpack(a->kr, a->rc, a->n->opts->cluster,
				     fd_wall_us() / 1000, buf, (size_t)n, &m,
				     &a->st, &err);
		if (v != FD_GOSSIP_OK) {
			ignored(a, v, &from, err.msg);
			continue;
		}
		if (m.kind == FD_GOSSIP_QUERY && !a->left) {
			/* answer within 100 ms (spread, so a crowd does not
			 * answer in one burst), unless a beat is due sooner */
			int64_t at = fd_loop_now(loop) +
				     (int64_t)(a->rng % (ANSWER_WITHIN_MS + 1));

			a->rng = a->rng * 6364136223846793005ULL +
				 1442695040888963407ULL;
			if (!fd_timer_armed(&a->beat) || a->beat.deadline > at) {
				fd_timer_arm_at(loop, &a->beat, at);
				a->answered++;
			}
		}
		fd_gossip_msg_release(&m);
	}
}

struct gossip_announcer *gossip_announce_start(struct node *n)
{
	const struct announce_opts *o = n->opts->announce;
	struct gossip_announcer *a = calloc(1, sizeof(*a));
	uint8_t probe[FD_GOSSIP_MAX];
	char group[INET_ADDRSTRLEN];
	struct fd_err err;

	if (!a)
		return NULL;
	a->n = n;
	a->fd = -1;
	a->kr = keys_ring(n);
	if (!a->kr && !n->opts->insecure)
		announce_die(n, FD_EXIT_USAGE,
			     "--announce gossip: no cluster key: give --key-file FILE (or FD_KEY_FILE), or --insecure for plain heartbeats");
	if (a->kr) {
		a->rc = fd_replay_new(FD_AUTH_WINDOW_MS_DEFAULT, REPLAY_MAX);
		if (!a->rc)
			announce_die(n, FD_EXIT_RUNTIME,
				     "--announce gossip: out of memory");
	}
	a->hb.kind = FD_GOSSIP_HEARTBEAT;
	snprintf(a->hb.name, sizeof(a->hb.name), "%s", n->name);
	snprintf(a->hb.id, sizeof(a->hb.id), "%s", n->id);
	if (fd_peer_addr_norm(n->addr, a->hb.addr, sizeof(a->hb.addr), &err) < 0)
		announce_die(n, FD_EXIT_USAGE, "--announce gossip: %s", err.msg);
	a->hb.interval_ms = o->gossip_interval_ms;
	a->hb.meta = json_object_new_object();
	json_object_object_add(a->hb.meta, "id", json_object_new_string(n->id));
	json_object_object_add(a->hb.meta, "version",
			       json_object_new_string(FD_VERSION));
	for (int i = 0; i < o->nmeta; i++) {
		const char *eq = strchr(o->meta[i], '=');
		char key[256];

		snprintf(key, sizeof(key), "%.*s", (int)(eq - o->meta[i]),
			 o->meta[i]);
		json_object_object_add(a->hb.meta, key,
				       json_object_new_string(eq + 1));
	}
	if (fd_gossip_pack(a->kr, n->opts->cluster, 0, &a->hb, probe,
			   sizeof(probe), &err) < 0)
		announce_die(n, FD_EXIT_USAGE, "--announce gossip: %s", err.msg);
	a->mo = o->mcast;
	a->fd = fd_mcast_open(&a->mo, &err);
	if (a->fd < 0)
		announce_die(n, FD_EXIT_RUNTIME, "--announce gossip: %s", err.msg);
	memcpy(&a->rng, n->id_raw, sizeof(a->rng));
	fd_timer_init(&a->beat, on_beat, a);
	if (fd_loop_watch(n->loop, a->fd, EPOLLIN, on_readable, a) < 0 ||
	    fd_timer_arm(n->loop, &a->beat, 0) < 0)
		announce_die(n, FD_EXIT_RUNTIME, "--announce gossip: %s",
			     strerror(errno));
	inet_ntop(AF_INET, &a->mo.group, group, sizeof(group));
	fd_info("gossip: heartbeats to %s:%d every %lld ms, %s%s%s", group,
		a->mo.port, (long long)a->hb.interval_ms,
		a->kr ? "sealed with the cluster key" : "plain (--insecure)",
		a->mo.ifname ? " via " : "", a->mo.ifname ? a->mo.ifname : "");
	return a;
}

void gossip_announce_leave(struct gossip_announcer *a)
{
	struct fd_gossip_msg bye;

	if (!a || a->left)
		return;
	a->left = 1;
	fd_timer_disarm(a->n->loop, &a->beat);
	bye = a->hb;
	bye.kind = FD_GOSSIP_LEAVE;
	if (send_msg(a, &bye) == 0)
		fd_info("gossip: leave sent");
}

void gossip_announce_free(struct gossip_announcer *a)
{
	if (!a)
		return;
	gossip_announce_leave(a);
	if (a->fd >= 0) {
		fd_loop_unwatch(a->n->loop, a->fd);
		close(a->fd);
	}
	fd_replay_free(a->rc);
	fd_gossip_msg_release(&a->hb);
	free(a);
}

struct json_object *gossip_announce_info(struct gossip_announcer *a)
{
	struct json_object *o = fd_gossip_stats_json(&a->st);
	char group[INET_ADDRSTRLEN];

	if (!o)
		return NULL;
	inet_ntop(AF_INET, &a->mo.group, group, sizeof(group));
	json_object_object_add(o, "group", json_object_new_string(group));
	json_object_object_add(o, "port", json_object_new_int(a->mo.port));
	json_object_object_add(o, "ttl", json_object_new_int(a->mo.ttl));
	json_object_object_add(o, "interval", fd_json_seconds(a->hb.interval_ms));
	json_object_object_add(o, "sealed", json_object_new_boolean(a->kr != NULL));
	json_object_object_add(o, "sent", json_object_new_int64((int64_t)a->sent));
	json_object_object_add(o, "queries_answered",
			       json_object_new_int64((int64_t)a->answered));
	json_object_object_add(o, "send_errors",
			       json_object_new_int64((int64_t)a->send_errors));
	return o;
}
