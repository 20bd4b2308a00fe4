/* libFuzzer harness for the wire decoders (datagram and push-pull state).
 *
 * Oracles: no decoder reads out of bounds (ASan); what decodes re-encodes
 * to exactly the same bytes (the format has one encoding per message); a
 * push-pull state that opens iterates over exactly count records. */
#include "wire.h"

#include <stdlib.h>
#include <string.h>

static struct fd_wire_msg msg;
static uint8_t again[FD_WIRE_MTU];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fd_wire_pp_reader r;
	struct fd_wire_node n;
	uint32_t count = 0;

	if (fd_wire_decode(data, size, &msg) == 0) {
		int len = fd_wire_encode(again, sizeof(again), &msg);

		if (len < 0 || (size_t)len != size || memcmp(again, data, size) != 0)
			abort();
	}
	if (fd_wire_pp_open(&r, data, size) == 0) {
		while (fd_wire_pp_next(&r, &n)) {
			if (!fd_wire_name_ok(n.name) ||
			    !fd_wire_addr_ok(n.addr) || n.state > FD_WIRE_LEFT)
				abort();
			count++;
		}
		if (count != r.count)
			abort();
	}
	return 0;
}
