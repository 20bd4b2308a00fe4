/* libFuzzer harness for the registry codec (libcommon/crdt.h).
 *
 * Feeds the input to fd_crdt_decode. Whatever decodes must re-encode to the
 * same bytes (the encoding is canonical), and must merge into a state
 * without trouble: a decoded delta, state or repair is joined into an empty
 * state (repairs are refused there unless they keep nothing), and a digest
 * is answered with a repair. Built by scripts/run-fuzz with
 * clang -fsanitize=fuzzer,address,undefined against the libcommon sources.
 */
#include "crdt.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fd_crdt_limits lim;
	struct fd_crdt *c, *s, *r;
	struct fd_err err;
	unsigned char *buf;
	size_t len;

	fd_crdt_limits_default(&lim);
	lim.max_names = 4096;
	lim.max_entries = 8192;
	lim.max_bytes = 1 << 24;
	c = fd_crdt_decode(data, size, &lim, &err);
	if (!c)
		return 0;
	if (fd_crdt_encode(c, &buf, &len) == 0) {
		if (len != size || memcmp(buf, data, size) != 0)
			abort();
		free(buf);
	}
	s = fd_crdt_new(1, &lim);
	if (s) {
		if (fd_crdt_kind(c) == FD_CRDT_DIGEST) {
			r = fd_crdt_repair(s, c);
			fd_crdt_free(r);
		} else {
			fd_crdt_merge(s, c);
			/* Merging twice changes nothing (idempotence). */
			if (fd_crdt_kind(c) != FD_CRDT_REPAIR &&
			    fd_crdt_encode(s, &buf, &len) == 0) {
				unsigned char *buf2;
				size_t len2;

				fd_crdt_merge(s, c);
				if (fd_crdt_encode(s, &buf2, &len2) == 0) {
					if (len2 != len || memcmp(buf, buf2, len) != 0)
						abort();
					free(buf2);
				}
				free(buf);
			}
			/* Local operations on the result keep working. */
			fd_crdt_register(s, "fuzz", 4, "1", 1, 1, 0, NULL, NULL);
			fd_crdt_node_gone(s, 2, NULL);
		}
		fd_crdt_free(s);
	}
	fd_crdt_free(c);
	return 0;
}
