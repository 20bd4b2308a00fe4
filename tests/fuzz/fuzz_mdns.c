/* libFuzzer harness for the mDNS decoder, responder and browser.
 *
 * Oracles: no decoder reads out of bounds (ASan); a message that decodes
 * re-encodes (names compressed anew) into one that decodes to the same
 * questions and records; a responder and a browser fed the message neither
 * crash nor produce a packet that does not decode. */
#include "mdns.h"

#include <stdlib.h>
#include <string.h>

static struct fd_dns_msg msg, again;
static uint8_t buf[65536];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same_rr(const struct fd_dns_rr *a, const struct fd_dns_rr *b)
{
	if (a->section != b->section || a->type != b->type ||
	    a->class != b->class || a->flush != b->flush || a->ttl != b->ttl ||
	    !fd_dns_name_eq(&a->name, &b->name))
		return 0;
	switch (a->type) {
	case FD_DNS_A: return memcmp(a->addr, b->addr, 4) == 0;
	case FD_DNS_AAAA: return memcmp(a->addr, b->addr, 16) == 0;
	case FD_DNS_SRV:
		if (a->port != b->port || a->priority != b->priority ||
		    a->weight != b->weight)
			return 0;
		/* fall through */
	case FD_DNS_PTR: return fd_dns_name_eq(&a->target, &b->target);
	default:
		return a->rdlen == b->rdlen &&
		       (!a->rdlen || memcmp(a->rdata, b->rdata, a->rdlen) == 0);
	}
}

static void roundtrip(void)
{
	struct fd_dns_writer w;
	ssize_t len;

	fd_dns_w_init(&w, buf, sizeof(buf), msg.id, msg.flags);
	for (size_t i = 0; i < msg.nq; i++)
		fd_dns_w_question(&w, &msg.q[i].name, msg.q[i].type, msg.q[i].unicast);
	for (size_t i = 0; i < msg.nrr; i++)
		fd_dns_w_rr(&w, &msg.rr[i]);
	len = fd_dns_w_finish(&w);
	if (len < 0)
		abort(); /* what decoded from fewer than 64 KiB fits in 64 KiB */
	if (fd_dns_decode(buf, (size_t)len, &again, NULL) < 0 ||
	    again.nq != msg.nq || again.nrr != msg.nrr)
		abort();
	for (size_t i = 0; i < msg.nq; i++)
		if (!fd_dns_name_eq(&again.q[i].name, &msg.q[i].name) ||
		    again.q[i].type != msg.q[i].type ||
		    again.q[i].unicast != msg.q[i].unicast)
			abort();
	for (size_t i = 0; i < msg.nrr; i++)
		if (!same_rr(&again.rr[i], &msg.rr[i]))
			abort();
}

static void noop(const char *name, const char *addr, struct json_object *meta,
		 void *arg)
{
	(void)name;
	(void)addr;
	(void)meta;
	(void)arg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fd_mdns_responder r;
	static uint8_t out[FD_MDNS_SEND_MAX];
	struct fd_mdns_svc svc;
	struct fd_mdns_browser *b;
	int64_t next;
	ssize_t len;

	if (fd_dns_decode(data, size, &msg, NULL) < 0)
		return 0;
	roundtrip();
	if (fd_mdns_svc_init(&svc, "n1", "00112233445566778899aabbccddeeff",
			     "127.0.0.1", 4380, NULL) < 0)
		abort();
	fd_mdns_responder_init(&r, &svc, 1, 0);
	fd_mdns_responder_recv(&r, 0, &msg);
	for (int64_t now = 0; now < 3000; now = next) {
		len = fd_mdns_responder_poll(&r, now, out, sizeof(out), &next);
		if (len > 0 && fd_dns_decode(out, (size_t)len, &again, NULL) < 0)
			abort();
		if (len > 0)
			next = now;
	}
	fd_mdns_responder_recv(&r, 3000, &msg);
	len = fd_mdns_responder_legacy(&r, &msg, out, sizeof(out));
	if (len > 0 && fd_dns_decode(out, (size_t)len, &again, NULL) < 0)
		abort();
	b = fd_mdns_browser_new(64, 0, 1, 0);
	if (!b)
		return 0;
	fd_mdns_browser_recv(b, 0, &msg);
	fd_mdns_browser_each(b, 0, noop, NULL);
	len = fd_mdns_browser_poll(b, 200, out, sizeof(out), &next);
	if (len > 0 && fd_dns_decode(out, (size_t)len, &again, NULL) < 0)
		abort();
	fd_mdns_browser_free(b);
	return 0;
}
