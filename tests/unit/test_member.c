/* Unit examples for the membership core. Most drive one core by hand with
 * scripted fake peers ("f0", "f1"...) that answer its pings and ping-reqs;
 * scenarios with several real cores use the simulator. */
#include "member.h"
#include "sim.h"
#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define NFAKE 16

struct fake {
	char name[16];
	char addr[32];
	uint8_t id[FD_MEMBER_ID_LEN];
	uint64_t inc;
	int dead; /* answers nothing */
};

static struct fake fakes[NFAKE];
static struct fd_wire_msg emsg, dmsg;
static struct fd_member_out out;

/* What the core sent, as seen by pump(). */
static const char *watch_name;
static unsigned watch_seen;
static uint64_t watch_inc;
static uint8_t watch_state;

static struct {
	struct fd_member_event ev[4096];
	unsigned n;
} evs;

static void mkid(uint8_t *id, unsigned i)
{
	memset(id, 0, FD_MEMBER_ID_LEN);
	id[0] = (uint8_t)i;
	id[15] = 0xab;
}

static void fakes_init(void)
{
	for (unsigned i = 0; i < NFAKE; i++) {
		snprintf(fakes[i].name, sizeof(fakes[i].name), "f%u", i);
		snprintf(fakes[i].addr, sizeof(fakes[i].addr), "10.9.0.%u:4380", i);
		mkid(fakes[i].id, 100 + i);
		fakes[i].inc = 1;
		fakes[i].dead = 0;
	}
	watch_name = NULL;
	watch_seen = 0;
	evs.n = 0;
}

static void fake_rec(const struct fake *f, struct fd_wire_node *w, uint8_t state)
{
	memset(w, 0, sizeof(*w));
	w->state = state;
	w->incarnation = f->inc;
	memcpy(w->id, f->id, FD_MEMBER_ID_LEN);
	snprintf(w->name, sizeof(w->name), "%s", f->name);
	snprintf(w->addr, sizeof(w->addr), "%s", f->addr);
}

static struct fake *fake_by(const char *addr, const char *name)
{
	for (unsigned i = 0; i < NFAKE; i++)
		if ((addr && strcmp(fakes[i].addr, addr) == 0) ||
		    (name && strcmp(fakes[i].name, name) == 0))
			return &fakes[i];
	return NULL;
}

/* Delivers a datagram from fake f to m, carrying n updates. */
static int send_from(struct fd_member *m, int64_t now, const struct fake *f,
		     uint8_t type, uint32_t seq, const struct fd_wire_update *u,
		     unsigned n)
{
	uint8_t buf[FD_WIRE_MTU];
	int len;

	memset(&emsg, 0, sizeof(emsg));
	emsg.type = type;
	fake_rec(f, &emsg.sender, FD_WIRE_ALIVE);
	emsg.seq = seq;
	for (unsigned i = 0; i < n; i++)
		emsg.updates[i] = u[i];
	emsg.nupdates = n;
	len = fd_wire_encode(buf, sizeof(buf), &emsg);
	if (len < 0)
		return -1;
	return fd_member_recv(m, now, f->addr, buf, (size_t)len);
}

static void drain_events(struct fd_member *m)
{
	struct fd_member_event ev;

	while (fd_member_next_event(m, &ev))
		if (evs.n < 4096)
			evs.ev[evs.n++] = ev;
}

/* Handles m's outputs the way the fakes would. Returns datagrams seen. */
static unsigned pump(struct fd_member *m, int64_t now)
{
	unsigned n = 0;

	while (fd_member_next_output(m, &out)) {
		struct fake *f, *t;

		if (out.kind != FD_MEMBER_OUT_DGRAM)
			continue;
		n++;
		if (fd_wire_decode(out.buf, out.len, &dmsg) != 0) {
			unit_fail(__FILE__, __LINE__,
				  "core sent an undecodable datagram");
			continue;
		}
		for (unsigned i = 0; watch_name && i < dmsg.nupdates; i++) {
			if (strcmp(dmsg.updates[i].node.name, watch_name) == 0) {
				watch_seen++;
				watch_inc = dmsg.updates[i].node.incarnation;
				watch_state = dmsg.updates[i].node.state;
			}
		}
		f = fake_by(out.addr, NULL);
		if (!f || f->dead)
			continue;
		if (dmsg.type == FD_WIRE_PING)
			send_from(m, now, f, FD_WIRE_ACK, dmsg.seq, NULL, 0);
		else if (dmsg.type == FD_WIRE_PING_REQ) {
			t = fake_by(NULL, dmsg.target.name);
			send_from(m, now, f,
				  t && !t->dead ? FD_WIRE_ACK : FD_WIRE_NACK,
				  dmsg.seq, NULL, 0);
		}
	}
	drain_events(m);
	return n;
}

static void run(struct fd_member *m, int64_t from, int64_t to)
{
	for (int64_t t = from; t <= to; t += 10) {
		fd_member_tick(m, t);
		pump(m, t);
	}
}

/* When non-zero, replaces the profile's suspicion multiplier (the timing
 * tests check Lifeguard's formula with memberlist's 4). */
static double susp_mult_override;

static struct fd_member *core_with_fakes(const char *profile, unsigned nf)
{
	struct fd_member_config cfg;
	uint8_t id[FD_MEMBER_ID_LEN];
	struct fd_member *m;

	fakes_init();
	if (fd_member_config_profile(&cfg, profile) < 0)
		return NULL;
	if (susp_mult_override)
		cfg.suspicion_mult = susp_mult_override;
	mkid(id, 1);
	m = fd_member_new(&cfg, "a", id, "10.0.0.1:4380", 1, 42, 0);
	if (!m)
		return NULL;
	for (unsigned i = 0; i < nf; i++)
		send_from(m, 0, &fakes[i], FD_WIRE_GOSSIP, 0, NULL, 0);
	pump(m, 0);
	return m;
}

static int64_t event_time(const char *name, enum fd_member_state st)
{
	for (unsigned i = 0; i < evs.n; i++)
		if (evs.ev[i].type == FD_MEMBER_EV_STATE &&
		    strcmp(evs.ev[i].name, name) == 0 && evs.ev[i].new_state == st)
			return evs.ev[i].time;
	return -1;
}

static unsigned count_events(const char *name, enum fd_member_state st)
{
	unsigned n = 0;

	for (unsigned i = 0; i < evs.n; i++)
		if (evs.ev[i].type == FD_MEMBER_EV_STATE &&
		    (!name || strcmp(evs.ev[i].name, name) == 0) &&
		    evs.ev[i].new_state == st)
			n++;
	return n;
}

TEST(config_profiles)
{
	struct fd_member_config c;

	REQUIRE(fd_member_config_profile(&c, "lan") == 0);
	CHECK_EQ(c.probe_interval, 1000);
	CHECK_EQ(c.probe_timeout, 500);
	CHECK_EQ(c.indirect_checks, 3);
	CHECK_DBL(c.suspicion_mult, 1.5, 1e-9);
	CHECK_EQ(c.gossip_interval, 200);
	CHECK_EQ(c.gossip_fanout, 3);
	CHECK_EQ(c.pushpull_interval, 30000);
	CHECK_EQ(c.retransmit_mult, 4);
	CHECK_EQ(fd_member_config_check(&c), 0);
	REQUIRE(fd_member_config_profile(&c, "local") == 0);
	CHECK_EQ(c.probe_interval, 150);
	CHECK_EQ(c.gossip_interval, 40);
	CHECK_EQ(fd_member_config_check(&c), 0);
	REQUIRE(fd_member_config_profile(&c, "wan") == 0);
	CHECK_EQ(c.probe_interval, 5000);
	CHECK_EQ(fd_member_config_check(&c), 0);
	errno = 0;
	CHECK_EQ(fd_member_config_profile(&c, "moon"), -1);
	CHECK_EQ(errno, EINVAL);
	c.probe_timeout = c.probe_interval;
	CHECK_EQ(fd_member_config_check(&c), -1);
}

TEST(new_rejects_bad_arguments)
{
	struct fd_member_config c;
	uint8_t id[FD_MEMBER_ID_LEN] = {1};
	struct fd_member *m;

	fd_member_config_profile(&c, "lan");
	CHECK(fd_member_new(&c, "", id, "h:1", 1, 1, 0) == NULL);
	CHECK(fd_member_new(&c, "a\nb", id, "h:1", 1, 1, 0) == NULL);
	CHECK(fd_member_new(&c, "a", id, "h 1", 1, 1, 0) == NULL);
	c.max_members = 0;
	CHECK(fd_member_new(&c, "a", id, "h:1", 1, 1, 0) == NULL);
	fd_member_config_profile(&c, "lan");
	m = fd_member_new(&c, "a", id, "h:1", 7, 1, 0);
	REQUIRE(m);
	CHECK_EQ(fd_member_size(m), 1);
	CHECK_EQ(fd_member_count(m, FD_MEMBER_ALIVE), 1);
	CHECK_EQ(fd_member_incarnation(m), 7);
	CHECK_EQ(fd_member_health(m), 0);
	CHECK_STR(fd_member_state_name(FD_MEMBER_SUSPECT), "suspect");
	CHECK_STR(fd_member_state_name(FD_MEMBER_NONE), "none");
	CHECK_EQ(fd_member_join(m, 0, "bad addr"), -1);
	fd_member_free(m);
	fd_member_free(NULL);
}

TEST(bad_datagrams_counted)
{
	struct fd_member *m = core_with_fakes("lan", 0);
	uint8_t buf[64];

	REQUIRE(m);
	memset(buf, 0x5a, sizeof(buf));
	CHECK_EQ(fd_member_recv(m, 1, "x:1", buf, sizeof(buf)), -1);
	CHECK_EQ(fd_member_stats(m)->rx_bad, 1);
	buf[0] = FD_WIRE_MAGIC0;
	buf[1] = FD_WIRE_MAGIC1;
	buf[2] = 9;
	CHECK_EQ(fd_member_recv(m, 1, "x:1", buf, sizeof(buf)), -1);
	CHECK_EQ(fd_member_stats(m)->rx_version, 1);
	CHECK_EQ(fd_member_pushpull_merge(m, 1, buf, sizeof(buf)), -1);
	CHECK_EQ(fd_member_stats(m)->pushpull_bad, 1);
	CHECK_EQ(fd_member_size(m), 1);
	fd_member_free(m);
}

TEST(sender_introduces_itself_and_acks)
{
	struct fd_member *m = core_with_fakes("lan", 3);
	struct fd_member_info info;

	REQUIRE(m);
	CHECK_EQ(fd_member_size(m), 4);
	CHECK_EQ(count_events(NULL, FD_MEMBER_ALIVE), 3);
	REQUIRE(fd_member_find(m, "f2", &info) == 0);
	CHECK_STR(info.addr, "10.9.0.2:4380");
	CHECK_EQ(info.state, FD_MEMBER_ALIVE);
	/* Every member gets probed and acks: nothing is suspected. */
	run(m, 0, 20000);
	CHECK_INT(fd_member_stats(m)->probes, >=, 15);
	CHECK_EQ(fd_member_stats(m)->probe_failed, 0);
	CHECK_EQ(fd_member_count(m, FD_MEMBER_ALIVE), 4);
	CHECK_EQ(fd_member_health(m), 0);
	/* A ping for another instance at our address is not acked. */
	{
		unsigned before = (unsigned)fd_member_stats(m)->rx_not_me;

		send_from(m, 20001, &fakes[0], FD_WIRE_PING, 5, NULL, 0);
		CHECK_EQ(fd_member_stats(m)->rx_not_me, before + 1);
	}
	fd_member_free(m);
}

/* n = 6 alive (us + 5): k = 4 - 2 = 2 confirmations wanted, min = 4 * 1 *
 * 1000 ms, max = 6 * min. */
static int64_t suspect_then_fail(unsigned confirmations, int64_t *suspected)
{
	struct fd_member *m = core_with_fakes("lan", 5);
	int64_t ts = -1, t;

	if (!m)
		return -1;
	fakes[4].dead = 1;
	for (t = 0; t < 60000 && ts < 0; t += 10) {
		fd_member_tick(m, t);
		pump(m, t);
		ts = event_time("f4", FD_MEMBER_SUSPECT);
	}
	*suspected = ts;
	for (unsigned i = 0; i < confirmations; i++) {
		struct fd_wire_update u;

		fake_rec(&fakes[4], &u.node, FD_WIRE_SUSPECT);
		snprintf(u.from, sizeof(u.from), "f%u", i);
		send_from(m, t, &fakes[i], FD_WIRE_GOSSIP, 0, &u, 1);
		/* A repeated confirmation and our own suspicion do not count. */
		send_from(m, t, &fakes[i], FD_WIRE_GOSSIP, 0, &u, 1);
		snprintf(u.from, sizeof(u.from), "a");
		send_from(m, t, &fakes[i], FD_WIRE_GOSSIP, 0, &u, 1);
	}
	for (; t < 60000 && event_time("f4", FD_MEMBER_FAILED) < 0; t += 10) {
		fd_member_tick(m, t);
		pump(m, t);
	}
	t = event_time("f4", FD_MEMBER_FAILED);
	CHECK_EQ(count_events("f4", FD_MEMBER_FAILED), 1);
	CHECK_EQ(count_events(NULL, FD_MEMBER_SUSPECT), 1); /* nobody else */
	CHECK_EQ(fd_member_health(m), 0); /* helpers nacked: not our fault */
	CHECK_INT(fd_member_stats(m)->nacks, >=, 3);
	fd_member_free(m);
	return t;
}

TEST(suspect_then_failed_timing)
{
	int64_t ts, tf;

	susp_mult_override = 4;
	tf = suspect_then_fail(0, &ts);
	susp_mult_override = 0;
	REQUIRE(ts > 0);
	/* Suspected within one round of probes (5 members, 1 s each). */
	CHECK_INT(ts, <=, 6000);
	/* No confirmation: the maximum, 6 * 4000 ms. */
	CHECK_INT(tf - ts, >=, 24000);
	CHECK_INT(tf - ts, <=, 24010);
}

TEST(suspicion_shrinks_with_confirmations)
{
	int64_t ts, tf;

	susp_mult_override = 4;
	/* One of two: max - log(2)/log(3) * (max - min) = 11381 ms. */
	tf = suspect_then_fail(1, &ts);
	CHECK_INT(tf - ts, >=, 11381);
	CHECK_INT(tf - ts, <=, 11391);
	/* Two: down to the minimum. */
	tf = suspect_then_fail(2, &ts);
	susp_mult_override = 0;
	CHECK_INT(tf - ts, >=, 4000);
	CHECK_INT(tf - ts, <=, 4010);
}

TEST(lan_suspicion_without_confirmations_is_the_minimum)
{
	int64_t ts, tf = suspect_then_fail(0, &ts);

	/* lan's mult 1.5 asks for no confirmation; the log10 scale is
	 * clamped to 1 below 10 members: 1.5 * 1 * 1000 ms. */
	REQUIRE(ts > 0);
	CHECK_INT(tf - ts, >=, 1500);
	CHECK_INT(tf - ts, <=, 1510);
}

TEST(refutes_suspicion_and_failure)
{
	struct fd_member *m = core_with_fakes("lan", 3);
	struct fd_wire_update u;
	uint64_t inc;

	REQUIRE(m);
	inc = fd_member_incarnation(m);
	memset(&u, 0, sizeof(u));
	u.node.state = FD_WIRE_SUSPECT;
	u.node.incarnation = inc;
	mkid(u.node.id, 1);
	snprintf(u.node.name, sizeof(u.node.name), "a");
	snprintf(u.node.addr, sizeof(u.node.addr), "10.0.0.1:4380");
	snprintf(u.from, sizeof(u.from), "f0");
	watch_name = "a";
	send_from(m, 10, &fakes[0], FD_WIRE_GOSSIP, 0, &u, 1);
	CHECK_EQ(fd_member_incarnation(m), inc + 1);
	CHECK_EQ(fd_member_stats(m)->refutes, 1);
	CHECK_EQ(fd_member_health(m), 1);
	run(m, 20, 3000);
	CHECK_INT(watch_seen, >=, 1);
	CHECK_EQ(watch_inc, inc + 1);
	CHECK_EQ(watch_state, FD_WIRE_ALIVE);
	/* A stale rumour (lower incarnation) is ignored... */
	send_from(m, 3001, &fakes[1], FD_WIRE_GOSSIP, 0, &u, 1);
	CHECK_EQ(fd_member_incarnation(m), inc + 1);
	/* ...a current "failed" is refuted too. */
	u.node.state = FD_WIRE_FAILED;
	u.node.incarnation = inc + 1;
	send_from(m, 3002, &fakes[1], FD_WIRE_GOSSIP, 0, &u, 1);
	CHECK_EQ(fd_member_incarnation(m), inc + 2);
	/* A rumour about another instance under our name is not ours. */
	u.node.id[0] = 99;
	u.node.incarnation = inc + 5;
	send_from(m, 3003, &fakes[1], FD_WIRE_GOSSIP, 0, &u, 1);
	CHECK_EQ(fd_member_incarnation(m), inc + 2);
	fd_member_free(m);
}

TEST(awareness_rises_when_our_acks_go_missing)
{
	struct fd_member *m = core_with_fakes("lan", 4);
	int64_t base;

	REQUIRE(m);
	base = fd_member_probe_interval(m);
	/* We hear nothing at all (our link is down): no acks, no nacks. */
	for (unsigned i = 0; i < 4; i++)
		fakes[i].dead = 1;
	run(m, 0, 4000);
	CHECK_INT(fd_member_health(m), >=, 2);
	CHECK_INT(fd_member_probe_interval(m), >, base);
	run(m, 4010, 60000);
	CHECK_EQ(fd_member_health(m), 7); /* capped at awareness_max - 1 */
	CHECK_EQ(fd_member_probe_interval(m), 8 * base);
	/* Back to health as acks flow again. */
	fakes_init();
	{
		int64_t t = 60010;

		/* revive the suspects and failed members we know */
		for (unsigned i = 0; i < 4; i++) {
			fakes[i].inc = 50;
			send_from(m, t, &fakes[i], FD_WIRE_GOSSIP, 0, NULL, 0);
		}
		run(m, t, t + 120000);
	}
	CHECK_EQ(fd_member_health(m), 0);
	CHECK_EQ(fd_member_count(m, FD_MEMBER_ALIVE), 5);
	fd_member_free(m);
}

TEST(update_retransmitted_lambda_log_n_times)
{
	/* 10 members: 4 * ceil(log10(11)) = 8 transmissions. */
	struct fd_member *m = core_with_fakes("lan", 8);

	REQUIRE(m);
	run(m, 0, 20000); /* the first announcements die out */
	watch_name = "f8";
	watch_seen = 0;
	send_from(m, 20010, &fakes[8], FD_WIRE_GOSSIP, 0, NULL, 0);
	CHECK_EQ(fd_member_count(m, FD_MEMBER_ALIVE), 10);
	run(m, 20010, 40000);
	CHECK_EQ(watch_seen, 8);
	CHECK_EQ(fd_member_pending_broadcasts(m), 0);
	fd_member_free(m);
}

TEST(datagrams_fit_and_updates_supersede)
{
	struct fd_member *m = core_with_fakes("lan", 15);
	struct fd_wire_update u;
	unsigned n = 0;

	REQUIRE(m);
	/* A suspicion then a refutation of f3: only the newer is queued. */
	fake_rec(&fakes[3], &u.node, FD_WIRE_SUSPECT);
	snprintf(u.from, sizeof(u.from), "f1");
	send_from(m, 1, &fakes[1], FD_WIRE_GOSSIP, 0, &u, 1);
	CHECK_EQ(fd_member_count(m, FD_MEMBER_SUSPECT), 1);
	fakes[3].inc = 2;
	send_from(m, 2, &fakes[3], FD_WIRE_GOSSIP, 0, NULL, 0);
	CHECK_EQ(fd_member_count(m, FD_MEMBER_SUSPECT), 0);
	watch_name = "f3";
	watch_seen = 0;
	for (int64_t t = 3; t < 5000; t += 10) {
		fd_member_tick(m, t);
		while (fd_member_next_output(m, &out)) {
			if (out.kind != FD_MEMBER_OUT_DGRAM)
				continue;
			CHECK_INT(out.len, <=, FD_WIRE_MTU);
			if (fd_wire_decode(out.buf, out.len, &dmsg) != 0) {
				unit_fail(__FILE__, __LINE__, "undecodable datagram");
				continue;
			}
			for (unsigned i = 0; i < dmsg.nupdates; i++)
				if (strcmp(dmsg.updates[i].node.name, "f3") == 0) {
					CHECK_EQ(dmsg.updates[i].node.state,
						 FD_WIRE_ALIVE);
					CHECK_EQ(dmsg.updates[i].node.incarnation, 2);
				}
			n++;
		}
	}
	CHECK_INT(n, >, 10);
	fd_member_free(m);
}

TEST(pushpull_roundtrip_between_cores)
{
	struct fd_member_config c;
	uint8_t ida[FD_MEMBER_ID_LEN], idb[FD_MEMBER_ID_LEN];
	struct fd_member *a, *b;
	uint8_t *buf;
	size_t len;

	fd_member_config_profile(&c, "lan");
	mkid(ida, 1);
	mkid(idb, 2);
	a = fd_member_new(&c, "a", ida, "10.0.0.1:1", 1, 1, 0);
	b = fd_member_new(&c, "b", idb, "10.0.0.2:1", 1, 2, 0);
	REQUIRE(a && b);
	CHECK_EQ(fd_member_join(a, 0, "10.0.0.2:1"), 0);
	REQUIRE(fd_member_next_output(a, &out) == 1);
	CHECK_EQ(out.kind, FD_MEMBER_OUT_PUSHPULL);
	CHECK_EQ(out.join, 1);
	CHECK_STR(out.addr, "10.0.0.2:1");
	/* a -> b, b merges and answers, a merges the answer. */
	REQUIRE(fd_member_pushpull_encode(a, 1, &buf, &len) == 0);
	CHECK_EQ(fd_member_pushpull_merge(b, 1, buf, len), 0);
	free(buf);
	REQUIRE(fd_member_pushpull_encode(b, 0, &buf, &len) == 0);
	CHECK_EQ(fd_member_pushpull_merge(a, 2, buf, len), 0);
	free(buf);
	CHECK_EQ(fd_member_count(a, FD_MEMBER_ALIVE), 2);
	CHECK_EQ(fd_member_count(b, FD_MEMBER_ALIVE), 2);
	/* b spreads the news of a; a, the newcomer, only news of b. */
	CHECK_EQ(fd_member_pending_broadcasts(b), 1);
	CHECK_EQ(fd_member_pending_broadcasts(a), 1);
	fd_member_free(a);
	fd_member_free(b);
}

/* ---- scenarios in the simulator ---- */

struct watch {
	unsigned failed, suspect, left, restarted, conflicts, newcomer;
	int64_t last_conflict;
};

static void on_event(void *arg, unsigned node, const struct fd_member_event *ev,
		     int64_t now)
{
	struct watch *w = arg;

	(void)node;
	(void)now;
	if (ev->type == FD_MEMBER_EV_CONFLICT) {
		w->conflicts++;
		if (ev->newcomer)
			w->newcomer |= 1u << node;
		w->last_conflict = now;
		return;
	}
	w->failed += ev->new_state == FD_MEMBER_FAILED;
	w->suspect += ev->new_state == FD_MEMBER_SUSPECT;
	w->left += ev->new_state == FD_MEMBER_LEFT;
	w->restarted += ev->restarted;
}

static struct fd_sim *small_sim(unsigned n, const char *profile, uint64_t seed,
				struct watch *w)
{
	struct fd_sim_config c = {
		.nodes = n, .seed = seed, .latency_min = 1, .latency_max = 3};
	struct fd_sim *s;
	unsigned zero = 0;

	fd_member_config_profile(&c.member, profile);
	s = fd_sim_new(&c);
	if (!s)
		return NULL;
	memset(w, 0, sizeof(*w));
	fd_sim_on_event(s, on_event, w);
	for (unsigned i = 0; i < n; i++)
		fd_sim_start(s, i, &zero, i ? 1 : 0);
	fd_sim_run_until(s, 3000);
	return s;
}

TEST(indirect_probe_saves_member_behind_broken_link)
{
	struct watch w;
	struct fd_sim *s = small_sim(6, "local", 7, &w);

	REQUIRE(s);
	REQUIRE(fd_sim_converged(s));
	fd_sim_block(s, 0, 1, 1);
	fd_sim_run_until(s, 60000);
	CHECK_EQ(w.failed, 0);
	CHECK_EQ(w.suspect, 0);
	CHECK(fd_sim_converged(s));
	CHECK_INT(fd_member_stats(fd_sim_member(s, 0))->ping_reqs, >, 0);
	/* Without helpers (all other links of 1 down too), 1 is suspected. */
	for (unsigned i = 2; i < 6; i++)
		fd_sim_block(s, i, 1, 1);
	fd_sim_run_until(s, 70000);
	CHECK_INT(w.failed, >, 0);
	fd_sim_free(s);
}

TEST(leave_is_left_not_failed)
{
	struct watch w;
	struct fd_sim *s = small_sim(5, "local", 8, &w);
	struct fd_member_quorum q;

	REQUIRE(s);
	fd_sim_leave(s, 2, 200);
	fd_sim_run_until(s, 3500);
	CHECK(!fd_sim_running(s, 2));
	CHECK_EQ(fd_sim_seen_as(s, 2, FD_MEMBER_LEFT), 4);
	fd_sim_run_until(s, 20000);
	CHECK_EQ(w.failed, 0);
	CHECK_EQ(w.left, 5); /* 4 peers + its own event */
	CHECK(fd_sim_converged(s));
	fd_member_quorum(fd_sim_member(s, 0), &q);
	CHECK_EQ(q.alive, 4);
	CHECK_EQ(q.expected, 4);
	CHECK_EQ(q.partitioned, 0);
	fd_sim_free(s);
}

TEST(restart_same_name_new_id_and_address_replaces)
{
	struct watch w;
	struct fd_sim *s = small_sim(6, "local", 9, &w);
	struct fd_member_info info;
	char old_addr[64];
	unsigned zero = 0;

	REQUIRE(s);
	snprintf(old_addr, sizeof(old_addr), "%s", fd_sim_addr(s, 3));
	fd_sim_kill(s, 3);
	fd_sim_run_until(s, 3100);
	fd_sim_start(s, 3, &zero, 1); /* before anyone noticed */
	CHECK(strcmp(old_addr, fd_sim_addr(s, 3)) != 0);
	fd_sim_run_until(s, 4500);
	CHECK(fd_sim_converged(s));
	CHECK_EQ(fd_member_find(fd_sim_member(s, 5), "n3", &info), 0);
	CHECK_STR(info.addr, fd_sim_addr(s, 3));
	CHECK_EQ(w.restarted, 5);
	CHECK_EQ(w.failed, 0);
	/* And after it was declared failed. */
	fd_sim_kill(s, 4);
	fd_sim_run_until(s, 9000);
	CHECK_EQ(fd_sim_seen_as(s, 4, FD_MEMBER_FAILED), 5);
	fd_sim_start(s, 4, &zero, 1);
	fd_sim_run_until(s, 10000);
	CHECK(fd_sim_converged(s));
	fd_sim_free(s);
}

TEST(failed_members_are_reaped)
{
	struct fd_sim_config c = {
		.nodes = 5, .seed = 3, .latency_min = 1, .latency_max = 2};
	struct fd_member_info info;
	struct fd_sim *s;
	unsigned zero = 0;

	fd_member_config_profile(&c.member, "local");
	c.member.reap_timeout = 5000;
	s = fd_sim_new(&c);
	REQUIRE(s);
	for (unsigned i = 0; i < 5; i++)
		fd_sim_start(s, i, &zero, i ? 1 : 0);
	fd_sim_run_until(s, 2000);
	fd_sim_kill(s, 4);
	fd_sim_run_until(s, 5000);
	CHECK_EQ(fd_sim_seen_as(s, 4, FD_MEMBER_FAILED), 4);
	CHECK_EQ(fd_member_find(fd_sim_member(s, 0), "n4", &info), 0);
	fd_sim_run_until(s, 12000);
	for (unsigned i = 0; i < 4; i++) {
		CHECK_EQ(fd_member_find(fd_sim_member(s, i), "n4", &info), -1);
		CHECK_EQ(fd_member_size(fd_sim_member(s, i)), 4);
	}
	fd_sim_free(s);
}

TEST(name_conflict_is_detected_on_both_sides)
{
	struct watch w;
	struct fd_sim *s = small_sim(5, "local", 11, &w);
	unsigned zero = 0;
	struct fd_member_info info;
	uint8_t id1[FD_MEMBER_ID_LEN];

	REQUIRE(s);
	fd_sim_kill(s, 4);
	fd_sim_run_until(s, 6000);
	CHECK_EQ(fd_member_find(fd_sim_member(s, 1), "n1", &info), 0);
	memcpy(id1, info.id, FD_MEMBER_ID_LEN);
	/* A second process calls itself n1. */
	fd_sim_set_name(s, 4, "n1");
	fd_sim_start(s, 4, &zero, 1);
	for (int64_t t = 6000; t < 12000 && !(w.newcomer & (1u << 4)); t += 10)
		fd_sim_run_until(s, t);
	CHECK_INT(w.conflicts, >=, 2);
	CHECK(w.newcomer & (1u << 4)); /* the newcomer knows it is one */
	CHECK(!(w.newcomer & (1u << 1)));
	/* Its shell exits ("name already in use"); the incumbent keeps it. */
	fd_sim_kill(s, 4);
	fd_sim_run_until(s, 30000);
	for (unsigned i = 0; i < 4; i++) {
		CHECK_EQ(fd_member_find(fd_sim_member(s, i), "n1", &info), 0);
		CHECK(info.state == FD_MEMBER_ALIVE &&
		      memcmp(info.id, id1, FD_MEMBER_ID_LEN) == 0);
	}
	fd_sim_free(s);
}

TEST(stalled_node_refutes_instead_of_dying)
{
	/* A process starved of CPU for a second: it is suspected, but its
	 * refutation arrives before the suspicion expires. */
	struct watch w;
	struct fd_sim *s = small_sim(8, "local", 12, &w);

	REQUIRE(s);
	fd_sim_stall(s, 5, 3800);
	fd_sim_run_until(s, 20000);
	CHECK_EQ(w.failed, 0);
	CHECK(fd_sim_converged(s));
	fd_sim_free(s);
}
