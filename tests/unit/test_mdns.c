#include "mdns.h"
#include "discover.h"
#include "jsonl.h"
#include "unit.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static struct fd_dns_msg msg; /* large: not on the stack */

static int decode(const uint8_t *buf, ssize_t len)
{
	struct fd_err err;

	if (len <= 0)
		return -1;
	return fd_dns_decode(buf, (size_t)len, &msg, &err);
}

static const char id1[] = "00112233445566778899aabbccddeeff";
static const char id2[] = "ffeeddccbbaa99887766554433221100";

static void make_svc(struct fd_mdns_svc *s, const char *name, const char *id,
		     const char *host, int port)
{
	struct fd_err err;

	if (fd_mdns_svc_init(s, name, id, host, port, &err) < 0)
		unit_fail(__FILE__, __LINE__, "svc_init: %s", err.msg);
	fd_mdns_svc_txt(s, "id", id, &err);
	fd_mdns_svc_txt(s, "version", "1.0", &err);
}

TEST(names)
{
	struct fd_dns_name a, b, svc;
	char label[64], text[1100];

	CHECK_EQ(fd_dns_name_make(&a, NULL, "_fd._tcp.local"), 0);
	CHECK_EQ(a.len, 16);
	CHECK(memcmp(a.b, "\3_fd\4_tcp\5local", 16) == 0);
	CHECK_EQ(fd_dns_name_make(&b, NULL, "_FD._TCP.Local."), 0);
	CHECK(fd_dns_name_eq(&a, &b));
	CHECK_EQ(fd_dns_name_make(&b, "n1.x y", "_fd._tcp.local"), 0);
	CHECK(fd_dns_name_child(&b, &a, label));
	CHECK_STR(label, "n1.x y");
	CHECK(!fd_dns_name_child(&a, &b, label));
	fd_dns_name_text(&b, text, sizeof(text));
	CHECK_STR(text, "n1\\.x y._fd._tcp.local");
	CHECK_EQ(fd_dns_name_make(&b, NULL, ""), 0);
	CHECK_EQ(b.len, 1);
	CHECK_EQ(fd_dns_name_make(&b, NULL, "a..b"), -1);
	memset(label, 'x', 63);
	label[63] = '\0';
	CHECK_EQ(fd_dns_name_make(&b, label, "local"), 0);
	label[62] = 'x';
	CHECK_EQ(fd_dns_name_make(&b, "", "local"), -1);
	{
		char big[300];

		memset(big, 'a', sizeof(big));
		for (int i = 60; i < 300; i += 61)
			big[i] = '.';
		big[299] = '\0';
		CHECK_EQ(fd_dns_name_make(&b, NULL, big), -1);
	}
	/* svc = local; a = _fd._tcp.local: not one label under it */
	fd_dns_name_make(&svc, NULL, "local");
	CHECK(!fd_dns_name_child(&a, &svc, label));
}

/* A PTR query as every mDNS browser sends it, byte for byte. */
TEST(writer_exact_bytes)
{
	static const uint8_t want[] = {0,   0,	 0,   0,   0,	1,   0,	  0,
				       0,   0,	 0,   0,   3,	'_', 'f', 'd',
				       4,   '_', 't', 'c', 'p', 5,   'l', 'o',
				       'c', 'a', 'l', 0,   0,	12,  0,	  1};
	struct fd_dns_writer w;
	struct fd_dns_name n;
	uint8_t buf[64];

	fd_dns_name_make(&n, NULL, FD_MDNS_SERVICE);
	fd_dns_w_init(&w, buf, sizeof(buf), 0, 0);
	fd_dns_w_question(&w, &n, FD_DNS_PTR, 0);
	CHECK_EQ(fd_dns_w_finish(&w), sizeof(want));
	CHECK(memcmp(buf, want, sizeof(want)) == 0);
	/* too small a buffer, sections out of order: overflow */
	fd_dns_w_init(&w, buf, 20, 0, 0);
	fd_dns_w_question(&w, &n, FD_DNS_PTR, 0);
	CHECK_EQ(fd_dns_w_finish(&w), -1);
	{
		struct fd_dns_rr rr = {.section = FD_DNS_ADDITIONAL,
				       .name = n,
				       .type = FD_DNS_A,
				       .class = FD_DNS_IN};

		fd_dns_w_init(&w, buf, sizeof(buf), 0, 0);
		fd_dns_w_rr(&w, &rr);
		fd_dns_w_question(&w, &n, FD_DNS_PTR, 0);
		CHECK_EQ(fd_dns_w_finish(&w), -1);
	}
}

static void random_name(struct fd_dns_name *n)
{
	static const char *suffix[] = {"local", "_fd._tcp.local", "example.org", ""};
	char label[64];
	size_t len = 1 + unit_rand_below(20);

	for (size_t i = 0; i < len; i++)
		label[i] = (char)(unit_rand_below(2) ? 'a' + unit_rand_below(26)
						     : 1 + unit_rand_below(255));
	label[len] = '\0';
	for (size_t i = 0; i < len; i++)
		if (!label[i])
			label[i] = 'z';
	fd_dns_name_make(n, unit_rand_below(4) ? label : NULL,
			 suffix[unit_rand_below(4)]);
}

/* Random messages survive encode (with compression) and decode. */
TEST(codec_roundtrip_random)
{
	static struct fd_dns_rr want[40];
	static struct fd_dns_q wantq[8];
	static uint8_t txt[40][64];
	uint8_t buf[8192];

	printf("# seed %" PRIu64 "\n", unit_seed());
	for (int iter = 0; iter < 300 && !unit_failed; iter++) {
		struct fd_dns_writer w;
		size_t nq = unit_rand_below(8), nrr = unit_rand_below(40);
		int section = 1;
		ssize_t len;

		fd_dns_w_init(&w, buf, sizeof(buf), (uint16_t)iter, FD_DNS_QR);
		for (size_t i = 0; i < nq; i++) {
			random_name(&wantq[i].name);
			wantq[i].type = (uint16_t)(1 + unit_rand_below(255));
			wantq[i].class = FD_DNS_IN;
			wantq[i].unicast = (int)unit_rand_below(2);
			fd_dns_w_question(&w, &wantq[i].name, wantq[i].type,
					  wantq[i].unicast);
		}
		for (size_t i = 0; i < nrr; i++) {
			static const uint16_t types[] = {
				FD_DNS_A,   FD_DNS_AAAA, FD_DNS_PTR,
				FD_DNS_SRV, FD_DNS_TXT,	 99};
			struct fd_dns_rr *rr = &want[i];

			memset(rr, 0, sizeof(*rr));
			if (section < 3 && unit_rand_below(4) == 0)
				section++;
			rr->section = section;
			random_name(&rr->name);
			rr->type = types[unit_rand_below(6)];
			rr->class = FD_DNS_IN;
			rr->flush = (int)unit_rand_below(2);
			rr->ttl = (uint32_t)unit_rand();
			for (int k = 0; k < 16; k++)
				rr->addr[k] = (uint8_t)unit_rand();
			random_name(&rr->target);
			rr->priority = (uint16_t)unit_rand();
			rr->weight = (uint16_t)unit_rand();
			rr->port = (uint16_t)unit_rand();
			rr->rdlen = (uint16_t)unit_rand_below(64);
			for (int k = 0; k < rr->rdlen; k++)
				txt[i][k] = (uint8_t)unit_rand();
			rr->rdata = txt[i];
			fd_dns_w_rr(&w, rr);
		}
		len = fd_dns_w_finish(&w);
		REQUIRE(len > 0);
		REQUIRE(decode(buf, len) == 0);
		CHECK_EQ(msg.id, iter);
		CHECK_EQ(msg.flags, FD_DNS_QR);
		REQUIRE(msg.nq == nq && msg.nrr == nrr && !msg.truncated);
		for (size_t i = 0; i < nq; i++) {
			CHECK(fd_dns_name_eq(&msg.q[i].name, &wantq[i].name));
			CHECK_EQ(msg.q[i].type, wantq[i].type);
			CHECK_EQ(msg.q[i].unicast, wantq[i].unicast);
		}
		for (size_t i = 0; i < nrr; i++) {
			const struct fd_dns_rr *a = &msg.rr[i], *b = &want[i];

			CHECK_EQ(a->section, b->section);
			CHECK(fd_dns_name_eq(&a->name, &b->name));
			CHECK_EQ(a->type, b->type);
			CHECK_EQ(a->flush, b->flush);
			CHECK_EQ(a->ttl, b->ttl);
			switch (b->type) {
			case FD_DNS_A:
				CHECK(memcmp(a->addr, b->addr, 4) == 0);
				break;
			case FD_DNS_AAAA:
				CHECK(memcmp(a->addr, b->addr, 16) == 0);
				break;
			case FD_DNS_SRV:
				CHECK_EQ(a->port, b->port);
				CHECK_EQ(a->priority, b->priority);
				CHECK_EQ(a->weight, b->weight);
				/* fall through */
			case FD_DNS_PTR:
				CHECK(fd_dns_name_eq(&a->target, &b->target));
				break;
			default:
				CHECK_EQ(a->rdlen, b->rdlen);
				CHECK(a->rdlen == 0 ||
				      memcmp(a->rdata, b->rdata, a->rdlen) == 0);
			}
		}
	}
}

TEST(decode_rejects_bad_messages)
{
	/* a name pointing at itself */
	static const uint8_t loop[] = {0, 0, 0, 0,    0,  1, 0, 0, 0,
				       0, 0, 0, 0xc0, 12, 0, 1, 0, 1};
	/* a label running past the end */
	static const uint8_t past[] = {0, 0, 0, 0, 0, 1,   0,	0,
				       0, 0, 0, 0, 9, 'a', 'b', 0};
	/* an A record with 3 bytes of data */
	static const uint8_t short_a[] = {0, 0, 0x84, 0, 0, 0, 0, 1, 0,
					  0, 0, 0,    0, 0, 1, 0, 1, 0,
					  0, 0, 1,    0, 3, 1, 2, 3};
	struct fd_err err;

	CHECK_EQ(fd_dns_decode(loop, sizeof(loop), &msg, &err), -1);
	CHECK_EQ(fd_dns_decode(past, sizeof(past), &msg, &err), -1);
	CHECK_EQ(fd_dns_decode(short_a, sizeof(short_a), &msg, &err), -1);
	CHECK_STR(err.msg, "bad data in record 1 (type 1)");
	CHECK_EQ(fd_dns_decode(loop, 11, &msg, &err), -1);
	CHECK_STR(err.msg, "truncated header");
}

TEST(svc_and_txt)
{
	struct fd_mdns_svc s;
	struct fd_err err;
	struct json_object *o;
	char name[64];

	CHECK_EQ(fd_mdns_svc_init(&s, "n1", id1, "127.0.0.1", 4380, &err), 0);
	CHECK_STR(s.host, "fd-001122334455");
	CHECK_EQ(s.family, AF_INET);
	CHECK_EQ(fd_mdns_svc_init(&s, "n1", id1, "::1", 4380, &err), 0);
	CHECK_EQ(s.family, AF_INET6);
	CHECK_EQ(fd_mdns_svc_init(&s, "n1", id1, "db.example", 4380, &err), 0);
	CHECK_EQ(s.family, 0);
	CHECK_STR(s.target, "db.example");
	CHECK_EQ(fd_mdns_svc_init(&s, "n1", id1, "bad host", 4380, &err), -1);
	CHECK_EQ(fd_mdns_svc_init(&s, "", id1, "127.0.0.1", 1, &err), -1);
	CHECK_EQ(fd_mdns_svc_init(&s, "a\tb", id1, "127.0.0.1", 1, &err), -1);
	CHECK_EQ(fd_mdns_svc_init(&s, "n1", "xyz", "127.0.0.1", 1, &err), -1);
	CHECK_EQ(fd_mdns_svc_init(&s, "n1", id1, "127.0.0.1", 0, &err), -1);
	memset(name, 'a', 64);
	name[63] = '\0';
	CHECK_EQ(fd_mdns_svc_init(&s, name, id1, "127.0.0.1", 1, &err), 0);
	name[63] = 'a';
	CHECK_EQ(fd_mdns_instance_ok("\xc3\xa9t\xc3\xa9 (2)", &err), 0);
	CHECK_EQ(fd_mdns_instance_ok("\xc3", &err), -1);

	CHECK_EQ(fd_mdns_svc_init(&s, "n1", id1, "127.0.0.1", 4380, &err), 0);
	CHECK_EQ(fd_mdns_svc_txt(&s, "id", "abc", &err), 0);
	CHECK_EQ(fd_mdns_svc_txt(&s, "flag", NULL, &err), 0);
	CHECK_EQ(fd_mdns_svc_txt(&s, "zone", "caf\xc3\xa9", &err), 0);
	CHECK_EQ(fd_mdns_svc_txt(&s, "a=b", "x", &err), -1);
	CHECK_EQ(fd_mdns_svc_txt(&s, "", "x", &err), -1);
	o = fd_mdns_txt_json(s.txt, s.txt_len);
	CHECK_STR(fd_json_str(o, NULL),
		  "{\"id\":\"abc\",\"flag\":true,\"zone\":\"caf\xc3\xa9\"}");
	json_object_put(o);
	{
		/* "=x" has no key; "ID" repeats "id"; bad UTF-8; a length
		 * running past the end */
		static const uint8_t raw[] = {
			2,   '=', 'x', 4, 'i', 'd', '=',  '1', 4,  'I',
			'D', '=', '2', 3, 'b', '=', 0xff, 9,   'x'};

		o = fd_mdns_txt_json(raw, sizeof(raw));
		CHECK_STR(fd_json_str(o, NULL), "{\"id\":\"1\"}");
		json_object_put(o);
	}
	{
		char big[300];

		memset(big, 'v', sizeof(big));
		big[299] = '\0';
		CHECK_EQ(fd_mdns_svc_txt(&s, "k", big, &err), -1);
		big[200] = '\0';
		for (int i = 0; i < 4; i++)
			CHECK_EQ(fd_mdns_svc_txt(&s, "k", big, &err), 0);
		CHECK_EQ(fd_mdns_svc_txt(&s, "k", big, &err), -1);
		CHECK_STR(err.msg, "TXT record longer than 1000 bytes");
	}
}

TEST(rename_fits_a_label)
{
	char out[64], base[64];

	fd_mdns_rename("n1", 2, out);
	CHECK_STR(out, "n1 (2)");
	memset(base, 'a', 63);
	base[63] = '\0';
	fd_mdns_rename(base, 12, out);
	CHECK_EQ(strlen(out), 63);
	CHECK(strcmp(out + 58, " (12)") == 0);
	/* a two-byte character across the cut is dropped whole */
	memset(base, 'a', 63);
	base[58] = (char)0xc3;
	base[59] = (char)0xa9;
	fd_mdns_rename(base, 2, out);
	CHECK_EQ(strlen(out), 62);
	CHECK_EQ(fd_mdns_instance_ok(out, NULL), 0);
}

/* Runs r until now = until, collecting the packets it sends (decoded into
 * kinds), and returns the number sent. */
struct sent {
	int64_t at;
	int probe, announce, answer;
	ssize_t len;
	uint8_t buf[FD_MDNS_SEND_MAX];
};

static int run_responder(struct fd_mdns_responder *r, int64_t from,
			 int64_t until, struct sent *out, int max)
{
	int n = 0;
	int64_t now = from, next;

	while (now <= until && n < max) {
		ssize_t len = fd_mdns_responder_poll(r, now, out[n].buf,
						     sizeof(out[n].buf), &next);

		if (len > 0) {
			out[n].at = now;
			out[n].len = len;
			if (decode(out[n].buf, len) == 0) {
				out[n].probe = !(msg.flags & FD_DNS_QR);
				out[n].announce = (msg.flags & FD_DNS_QR) &&
						  msg.nrr == 5;
				out[n].answer = !out[n].probe && !out[n].announce;
			}
			n++;
			continue;
		}
		if (next <= now)
			next = now + 1;
		now = next;
	}
	return n;
}

TEST(responder_probes_then_announces)
{
	struct fd_mdns_svc s;
	struct fd_mdns_responder r;
	static struct sent out[16];
	int n;

	make_svc(&s, "n1", id1, "127.0.0.1", 4380);
	fd_mdns_responder_init(&r, &s, 7, 1000);
	n = run_responder(&r, 1000, 10000, out, 16);
	REQUIRE(n == 5);
	CHECK(out[0].probe && out[1].probe && out[2].probe);
	CHECK(out[0].at >= 1000 && out[0].at <= 1250);
	CHECK_EQ(out[1].at - out[0].at, 250);
	CHECK_EQ(out[2].at - out[1].at, 250);
	CHECK(out[3].announce && out[4].announce);
	CHECK_EQ(out[3].at - out[2].at, 250);
	CHECK_EQ(out[4].at - out[3].at, 1000);
	CHECK_EQ(r.state, FD_MDNS_READY);
	/* the probe: questions for the instance and the host (ANY), our
	 * unique records in authority, no QU bit (see mdns.h) */
	REQUIRE(decode(out[0].buf, out[0].len) == 0);
	CHECK_EQ(msg.nq, 2);
	CHECK_EQ(msg.q[0].type, FD_DNS_ANY);
	CHECK_EQ(msg.q[0].unicast, 0);
	CHECK_EQ(msg.nrr, 3);
	for (size_t i = 0; i < msg.nrr; i++)
		CHECK_EQ(msg.rr[i].section, FD_DNS_AUTHORITY);
	/* the announcement: TTLs, cache-flush on unique records only */
	REQUIRE(decode(out[3].buf, out[3].len) == 0);
	for (size_t i = 0; i < msg.nrr; i++) {
		const struct fd_dns_rr *rr = &msg.rr[i];

		switch (rr->type) {
		case FD_DNS_PTR:
			CHECK_EQ(rr->ttl, 4500);
			CHECK_EQ(rr->flush, 0);
			break;
		case FD_DNS_SRV:
			CHECK_EQ(rr->ttl, 120);
			CHECK_EQ(rr->flush, 1);
			CHECK_EQ(rr->port, 4380);
			break;
		case FD_DNS_TXT:
			CHECK_EQ(rr->ttl, 4500);
			CHECK_EQ(rr->flush, 1);
			break;
		case FD_DNS_A:
			CHECK_EQ(rr->ttl, 120);
			CHECK(memcmp(rr->addr, "\x7f\0\0\1", 4) == 0);
			break;
		default: CHECK(0);
		}
	}
	/* nothing more until something happens */
	CHECK_EQ(run_responder(&r, 10000, 400000, out, 16), 0);
}

static ssize_t ptr_query(uint8_t *buf, size_t cap, int known, uint32_t ttl,
			 const struct fd_mdns_svc *s)
{
	struct fd_dns_writer w;
	struct fd_dns_name svc;

	fd_dns_name_make(&svc, NULL, FD_MDNS_SERVICE);
	fd_dns_w_init(&w, buf, cap, 0x1234, 0);
	fd_dns_w_question(&w, &svc, FD_DNS_PTR, 0);
	if (known) {
		struct fd_dns_rr ka = {.section = FD_DNS_ANSWER,
				       .name = svc,
				       .type = FD_DNS_PTR,
				       .class = FD_DNS_IN,
				       .ttl = ttl};

		fd_dns_name_make(&ka.target, s->instance, FD_MDNS_SERVICE);
		fd_dns_w_rr(&w, &ka);
	}
	return fd_dns_w_finish(&w);
}

TEST(responder_answers_and_suppresses_known_answers)
{
	struct fd_mdns_svc s;
	struct fd_mdns_responder r;
	static struct sent out[16];
	uint8_t q[512];
	int64_t next;
	ssize_t len;

	make_svc(&s, "n1", id1, "127.0.0.1", 4380);
	fd_mdns_responder_init(&r, &s, 7, 0);
	/* a query while probing is not answered */
	REQUIRE(decode(q, ptr_query(q, sizeof(q), 0, 0, &s)) == 0);
	CHECK_EQ(fd_mdns_responder_recv(&r, 0, &msg), FD_MDNS_EV_NONE);
	run_responder(&r, 0, 5000, out, 16);
	REQUIRE(r.state == FD_MDNS_READY);
	REQUIRE(decode(q, ptr_query(q, sizeof(q), 0, 0, &s)) == 0);
	CHECK_EQ(fd_mdns_responder_recv(&r, 6000, &msg), FD_MDNS_EV_ANSWERING);
	/* a shared record: 20 to 120 ms later */
	CHECK_EQ(fd_mdns_responder_poll(&r, 6000, out[0].buf,
					sizeof(out[0].buf), &next),
		 0);
	CHECK(next >= 6020 && next <= 6120);
	len = fd_mdns_responder_poll(&r, next, out[0].buf, sizeof(out[0].buf), &next);
	REQUIRE(decode(out[0].buf, len) == 0);
	CHECK_EQ(msg.flags, FD_DNS_QR | FD_DNS_AA);
	REQUIRE(msg.nrr == 4);
	CHECK_EQ(msg.rr[0].type, FD_DNS_PTR);
	CHECK_EQ(msg.rr[0].section, FD_DNS_ANSWER);
	for (int i = 1; i < 4; i++)
		CHECK_EQ(msg.rr[i].section, FD_DNS_ADDITIONAL);
	/* the querier knows our PTR with over half its TTL: silence */
	REQUIRE(decode(q, ptr_query(q, sizeof(q), 1, 3000, &s)) == 0);
	CHECK_EQ(fd_mdns_responder_recv(&r, 7000, &msg), FD_MDNS_EV_NONE);
	/* ... with less than half: answered */
	REQUIRE(decode(q, ptr_query(q, sizeof(q), 1, 2000, &s)) == 0);
	CHECK_EQ(fd_mdns_responder_recv(&r, 7000, &msg), FD_MDNS_EV_ANSWERING);
	/* a question about our address alone: unique, at once */
	{
		struct fd_dns_writer w;
		struct fd_dns_name host;

		fd_mdns_responder_poll(&r, 8000, out[0].buf, sizeof(out[0].buf),
				       &next);
		fd_dns_name_make(&host, s.host, "local");
		fd_dns_w_init(&w, q, sizeof(q), 0, 0);
		fd_dns_w_question(&w, &host, FD_DNS_A, 1);
		REQUIRE(decode(q, fd_dns_w_finish(&w)) == 0);
		CHECK_EQ(fd_mdns_responder_recv(&r, 9000, &msg), FD_MDNS_EV_ANSWERING);
		len = fd_mdns_responder_poll(&r, 9000, out[0].buf,
					     sizeof(out[0].buf), &next);
		REQUIRE(decode(out[0].buf, len) == 0);
		REQUIRE(msg.nrr == 1);
		CHECK_EQ(msg.rr[0].type, FD_DNS_A);
	}
}

TEST(responder_legacy_unicast)
{
	struct fd_mdns_svc s;
	struct fd_mdns_responder r;
	static struct sent out[16];
	uint8_t q[512], a[FD_MDNS_SEND_MAX];
	ssize_t len;

	make_svc(&s, "n1", id1, "127.0.0.1", 4380);
	fd_mdns_responder_init(&r, &s, 7, 0);
	REQUIRE(decode(q, ptr_query(q, sizeof(q), 0, 0, &s)) == 0);
	CHECK_EQ(fd_mdns_responder_legacy(&r, &msg, a, sizeof(a)), 0);
	run_responder(&r, 0, 5000, out, 16);
	REQUIRE(decode(q, ptr_query(q, sizeof(q), 0, 0, &s)) == 0);
	len = fd_mdns_responder_legacy(&r, &msg, a, sizeof(a));
	REQUIRE(decode(a, len) == 0);
	CHECK_EQ(msg.id, 0x1234);
	CHECK_EQ(msg.nq, 1);
	REQUIRE(msg.nrr == 4);
	for (int i = 0; i < 4; i++) {
		CHECK(msg.rr[i].ttl <= 10);
		CHECK_EQ(msg.rr[i].flush, 0);
	}
}

/* Delivers every packet one responder sends to the other, in time order,
 * until both are quiet or until. */
static void run_pair(struct fd_mdns_responder *a, struct fd_mdns_responder *b,
		     int64_t until, int *events_a, int *events_b)
{
	static uint8_t buf[FD_MDNS_SEND_MAX];
	int64_t now = 0;

	while (now <= until) {
		int64_t na, nb;
		ssize_t len;

		len = fd_mdns_responder_poll(a, now, buf, sizeof(buf), &na);
		if (len > 0) {
			REQUIRE(decode(buf, len) == 0);
			/* its own packet loops back: never a conflict */
			CHECK_EQ(fd_mdns_responder_recv(a, now, &msg) ==
					 FD_MDNS_EV_RENAMED,
				 0);
			events_b[fd_mdns_responder_recv(b, now, &msg)]++;
			continue;
		}
		len = fd_mdns_responder_poll(b, now, buf, sizeof(buf), &nb);
		if (len > 0) {
			REQUIRE(decode(buf, len) == 0);
			CHECK_EQ(fd_mdns_responder_recv(b, now, &msg) ==
					 FD_MDNS_EV_RENAMED,
				 0);
			events_a[fd_mdns_responder_recv(a, now, &msg)]++;
			continue;
		}
		now = na < nb ? na : nb;
	}
}

TEST(conflict_with_an_announced_name_renames_the_newcomer)
{
	struct fd_mdns_svc s1, s2;
	struct fd_mdns_responder r1, r2;
	static struct sent out[16];
	int ev1[4] = {0}, ev2[4] = {0};

	make_svc(&s1, "n1", id1, "127.0.0.1", 4001);
	make_svc(&s2, "n1", id2, "127.0.0.1", 4002);
	fd_mdns_responder_init(&r1, &s1, 1, 0);
	run_responder(&r1, 0, 5000, out, 16);
	REQUIRE(r1.state == FD_MDNS_READY);
	fd_mdns_responder_init(&r2, &s2, 2, 0);
	run_pair(&r1, &r2, 20000, ev1, ev2);
	CHECK_STR(r1.svc.instance, "n1");
	CHECK_STR(r2.svc.instance, "n1 (2)");
	CHECK_EQ(ev2[FD_MDNS_EV_RENAMED], 1);
	CHECK_EQ(ev1[FD_MDNS_EV_RENAMED], 0);
	CHECK_EQ(r2.state, FD_MDNS_READY);
	CHECK_EQ(r1.state, FD_MDNS_READY);
	CHECK_EQ(r2.stats.renames, 1);
}

TEST(simultaneous_probes_tiebreak_one_loser)
{
	printf("# seed %" PRIu64 "\n", unit_seed());
	for (int iter = 0; iter < 50 && !unit_failed; iter++) {
		struct fd_mdns_svc s1, s2;
		struct fd_mdns_responder r1, r2;
		int ev1[4] = {0}, ev2[4] = {0};
		int p1 = 4000 + (int)unit_rand_below(100),
		    p2 = p1 + 1 + (int)unit_rand_below(100);

		make_svc(&s1, "same", id1, "127.0.0.1", p1);
		make_svc(&s2, "same", id2, "127.0.0.1", p2);
		fd_mdns_responder_init(&r1, &s1, unit_rand(), 0);
		fd_mdns_responder_init(&r2, &s2, unit_rand(), 0);
		run_pair(&r1, &r2, 30000, ev1, ev2);
		/* both end announced, under different names */
		CHECK_EQ(r1.state, FD_MDNS_READY);
		CHECK_EQ(r2.state, FD_MDNS_READY);
		CHECK(strcmp(r1.svc.instance, r2.svc.instance) != 0);
		CHECK_EQ(r1.renames + r2.renames, 1);
	}
}

/* Feeds every packet of a responder to a browser. */
static void feed(struct fd_mdns_browser *b, struct fd_mdns_responder *r,
		 int64_t from, int64_t until)
{
	static struct sent out[32];
	int n = run_responder(r, from, until, out, 32);

	for (int i = 0; i < n; i++) {
		REQUIRE(decode(out[i].buf, out[i].len) == 0);
		fd_mdns_browser_recv(b, out[i].at, &msg);
	}
}

static char seen[1024];

static void collect(const char *name, const char *addr,
		    struct json_object *meta, void *arg)
{
	size_t l = strlen(seen);

	(void)arg;
	snprintf(seen + l, sizeof(seen) - l, "%s %s %s\n", name, addr,
		 fd_json_str(meta, NULL));
}

static const char *browse(struct fd_mdns_browser *b, int64_t now)
{
	seen[0] = '\0';
	fd_mdns_browser_each(b, now, collect, NULL);
	return seen;
}

TEST(browser_sees_announcements_and_goodbyes)
{
	struct fd_mdns_svc s1, s2;
	struct fd_mdns_responder r1, r2;
	struct fd_mdns_browser *b = fd_mdns_browser_new(0, 0, 3, 0);
	uint8_t buf[FD_MDNS_SEND_MAX];
	ssize_t len;

	make_svc(&s1, "n1", id1, "127.0.0.1", 4001);
	make_svc(&s2, "n2 caf\xc3\xa9", id2, "10.1.2.3", 4002);
	fd_mdns_responder_init(&r1, &s1, 1, 0);
	fd_mdns_responder_init(&r2, &s2, 2, 0);
	feed(b, &r1, 0, 5000);
	feed(b, &r2, 0, 5000);
	CHECK_STR(browse(b, 5000),
		  "n1 127.0.0.1:4001 {\"id\":\"00112233445566778899aabbccddeeff\",\"version\":\"1.0\"}\n"
		  "n2 caf\xc3\xa9 10.1.2.3:4002 {\"id\":\"ffeeddccbbaa99887766554433221100\",\"version\":\"1.0\"}\n");
	/* goodbye: gone one second later (RFC 6762 §10.1) */
	len = fd_mdns_responder_goodbye(&r1, buf, sizeof(buf));
	REQUIRE(decode(buf, len) == 0);
	for (size_t i = 0; i < msg.nrr; i++)
		CHECK_EQ(msg.rr[i].ttl, 0);
	fd_mdns_browser_recv(b, 6000, &msg);
	CHECK_EQ(fd_mdns_browser_each(b, 6999, collect, NULL), 2);
	CHECK_STR(browse(b, 7000),
		  "n2 caf\xc3\xa9 10.1.2.3:4002 {\"id\":\"ffeeddccbbaa99887766554433221100\",\"version\":\"1.0\"}\n");
	CHECK_EQ(fd_mdns_responder_goodbye(&r1, buf, sizeof(buf)), 0);
	/* no refresh answered: the SRV and A records expire after 120 s */
	CHECK_EQ(fd_mdns_browser_each(b, 120000, collect, NULL), 1);
	CHECK_EQ(fd_mdns_browser_each(b, 125000, collect, NULL), 0);
	fd_mdns_browser_free(b);
}

TEST(browser_query_schedule_and_refresh)
{
	struct fd_mdns_svc s1;
	struct fd_mdns_responder r1;
	struct fd_mdns_browser *b = fd_mdns_browser_new(0, 8000, 3, 0);
	uint8_t buf[FD_MDNS_SEND_MAX];
	int64_t now = 0, next, at[8];
	int n = 0, refresh_srv = 0;

	/* the PTR question at 20-120 ms, then 1, 2, 4, 8, 8 s apart */
	while (n < 6) {
		ssize_t len = fd_mdns_browser_poll(b, now, buf, sizeof(buf), &next);

		if (len > 0) {
			REQUIRE(decode(buf, len) == 0);
			CHECK_EQ(msg.nq, 1);
			CHECK_EQ(msg.q[0].type, FD_DNS_PTR);
			at[n++] = now;
		}
		now = next;
	}
	CHECK(at[0] >= 20 && at[0] <= 120);
	CHECK_EQ(at[1] - at[0], 1000);
	CHECK_EQ(at[2] - at[1], 2000);
	CHECK_EQ(at[3] - at[2], 4000);
	CHECK_EQ(at[4] - at[3], 8000);
	CHECK_EQ(at[5] - at[4], 8000);
	/* an instance appears: the next PTR query carries it as a known
	 * answer; at 80-95 % of the SRV's 120 s it is asked for again */
	make_svc(&s1, "n1", id1, "127.0.0.1", 4001);
	fd_mdns_responder_init(&r1, &s1, 1, now);
	feed(b, &r1, now, now + 5000);
	now += 5000;
	for (int64_t end = now + 115000; now < end;) {
		ssize_t len = fd_mdns_browser_poll(b, now, buf, sizeof(buf), &next);

		if (len > 0) {
			REQUIRE(decode(buf, len) == 0);
			for (size_t i = 0; i < msg.nq; i++)
				if (msg.q[i].type == FD_DNS_SRV)
					refresh_srv++;
			if (msg.q[0].type == FD_DNS_PTR) {
				REQUIRE(msg.nrr == 1);
				CHECK_EQ(msg.rr[0].section, FD_DNS_ANSWER);
			}
		}
		now = next;
	}
	CHECK_EQ(refresh_srv, 4);
	/* unanswered, the SRV expired: the instance is gone and its SRV is
	 * asked for once a second while its PTR lives */
	CHECK_EQ(fd_mdns_browser_each(b, now + 10000, collect, NULL), 0);
	refresh_srv = 0;
	for (int64_t end = now + 20000; now < end;) {
		ssize_t len = fd_mdns_browser_poll(b, now, buf, sizeof(buf), &next);

		if (len > 0 && decode(buf, len) == 0)
			for (size_t i = 0; i < msg.nq; i++)
				if (msg.q[i].type == FD_DNS_SRV)
					refresh_srv++;
		now = next;
	}
	CHECK(refresh_srv >= 15 && refresh_srv <= 21);
	fd_mdns_browser_free(b);
}

/* A browser that heard only the PTR asks for SRV/TXT, then the address. */
TEST(browser_resolves_what_is_missing)
{
	struct fd_mdns_svc s1;
	struct fd_mdns_responder r1;
	struct fd_mdns_browser *b = fd_mdns_browser_new(0, 0, 3, 0);
	static struct sent out[16];
	uint8_t buf[FD_MDNS_SEND_MAX], q[FD_MDNS_SEND_MAX];
	int64_t next;
	ssize_t len;
	int n;

	make_svc(&s1, "n1", id1, "127.0.0.1", 4001);
	fd_mdns_responder_init(&r1, &s1, 1, 0);
	n = run_responder(&r1, 0, 5000, out, 16);
	REQUIRE(n == 5);
	/* keep only the PTR of the announcement */
	{
		struct fd_dns_writer w;

		REQUIRE(decode(out[3].buf, out[3].len) == 0);
		fd_dns_w_init(&w, buf, sizeof(buf), 0, FD_DNS_QR | FD_DNS_AA);
		fd_dns_w_rr(&w, &msg.rr[0]);
		REQUIRE(msg.rr[0].type == FD_DNS_PTR);
		len = fd_dns_w_finish(&w);
		REQUIRE(decode(buf, len) == 0);
	}
	CHECK_EQ(fd_mdns_browser_recv(b, 5000, &msg), 1);
	CHECK_EQ(fd_mdns_browser_each(b, 5000, collect, NULL), 0);
	len = fd_mdns_browser_poll(b, 5000, q, sizeof(q), &next);
	REQUIRE(decode(q, len) == 0);
	/* PTR (first query), SRV and TXT of n1 */
	CHECK_EQ(msg.nq, 3);
	CHECK_EQ(fd_mdns_responder_recv(&r1, 5000, &msg), FD_MDNS_EV_ANSWERING);
	len = fd_mdns_responder_poll(&r1, 5200, buf, sizeof(buf), &next);
	REQUIRE(decode(buf, len) == 0);
	fd_mdns_browser_recv(b, 5200, &msg);
	CHECK_STR(browse(b, 5200),
		  "n1 127.0.0.1:4001 {\"id\":\"00112233445566778899aabbccddeeff\",\"version\":\"1.0\"}\n");
	fd_mdns_browser_free(b);
}

/* A crowd of responders, some with the same name, and a browser on one
 * link: all end up announced under distinct names, and the browser sees
 * every one of them. Deliveries are shuffled within small delays. */
TEST(crowd_on_one_link)
{
	enum { N = 8 };
	static struct fd_mdns_responder r[N];
	static uint8_t q[64][FD_MDNS_SEND_MAX];
	static size_t qlen[64];
	static int64_t qat[64];
	static int qfrom[64];

	printf("# seed %" PRIu64 "\n", unit_seed());
	for (int iter = 0; iter < 10 && !unit_failed; iter++) {
		struct fd_mdns_browser *b =
			fd_mdns_browser_new(0, 0, unit_rand(), 0);
		int nq = 0, seen_n;
		int64_t now = 0;

		for (int i = 0; i < N; i++) {
			struct fd_mdns_svc s;
			char name[16], id[33];

			snprintf(name, sizeof(name), "n%d", (int)unit_rand_below(4));
			for (int k = 0; k < 32; k++)
				id[k] = "0123456789abcdef"[unit_rand_below(16)];
			id[32] = '\0';
			make_svc(&s, name, id, "127.0.0.1", 4000 + i);
			fd_mdns_responder_init(&r[i], &s, unit_rand(),
					       (int64_t)unit_rand_below(500));
		}
		while (now < 30000) {
			int64_t next = now + 1000;
			int sent = 0;

			for (int i = 0; i < N && nq < 64; i++) {
				int64_t nx;
				ssize_t len = fd_mdns_responder_poll(
					&r[i], now, q[nq], FD_MDNS_SEND_MAX, &nx);

				if (len > 0) {
					qlen[nq] = (size_t)len;
					qat[nq] = now + (int64_t)unit_rand_below(3);
					qfrom[nq++] = i;
					sent = 1;
				}
				if (nx < next)
					next = nx;
			}
			{
				int64_t nx;
				ssize_t len = fd_mdns_browser_poll(
					b, now, q[nq], FD_MDNS_SEND_MAX, &nx);

				if (len > 0 && nq < 64) {
					qlen[nq] = (size_t)len;
					qat[nq] = now + (int64_t)unit_rand_below(3);
					qfrom[nq++] = -1;
					sent = 1;
				}
				if (nx < next)
					next = nx;
			}
			/* deliver what is due, to everyone */
			for (int k = 0; k < nq; k++) {
				if (qat[k] > now)
					continue;
				REQUIRE(decode(q[k], (ssize_t)qlen[k]) == 0);
				for (int i = 0; i < N; i++)
					fd_mdns_responder_recv(&r[i], now, &msg);
				fd_mdns_browser_recv(b, now, &msg);
				memmove(q[k], q[k + 1],
					(size_t)(nq - k - 1) * sizeof(q[0]));
				memmove(qlen + k, qlen + k + 1,
					(size_t)(nq - k - 1) * sizeof(qlen[0]));
				memmove(qat + k, qat + k + 1,
					(size_t)(nq - k - 1) * sizeof(qat[0]));
				memmove(qfrom + k, qfrom + k + 1,
					(size_t)(nq - k - 1) * sizeof(qfrom[0]));
				nq--;
				k--;
				sent = 1;
			}
			for (int k = 0; k < nq; k++)
				if (qat[k] < next)
					next = qat[k];
			if (!sent)
				now = next > now ? next : now + 1;
		}
		for (int i = 0; i < N; i++) {
			CHECK_EQ(r[i].state, FD_MDNS_READY);
			for (int j = 0; j < i; j++)
				if (strcmp(r[i].svc.instance, r[j].svc.instance) == 0)
					unit_fail(__FILE__, __LINE__,
						  "iteration %d: '%s' twice",
						  iter, r[i].svc.instance);
		}
		seen_n = (int)fd_mdns_browser_each(b, now, collect, NULL);
		CHECK_EQ(seen_n, N);
		fd_mdns_browser_free(b);
	}
}
