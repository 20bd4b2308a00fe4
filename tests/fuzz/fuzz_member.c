/* libFuzzer harness for the membership core fed with hostile input.
 *
 * The input is a script of records: kind (u8), length (u16, big-endian),
 * bytes. Kind % 4: 0 a datagram from one of four peers, 1 a push-pull state
 * to merge, 2 advance the clock by length ms and run the timers, 3 join or
 * leave. Oracles: no memory error or leak (ASan), every datagram the core
 * emits decodes and fits the MTU, its push-pull state opens, the table
 * stays within its cap. */
#include "member.h"

#include <stdlib.h>
#include <string.h>

static struct fd_member_out out;
static struct fd_wire_msg msg;
static struct fd_member_event ev;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void drain(struct fd_member *m)
{
	while (fd_member_next_output(m, &out)) {
		if (out.kind == FD_MEMBER_OUT_DGRAM &&
		    (out.len > FD_WIRE_MTU ||
		     fd_wire_decode(out.buf, out.len, &msg) != 0))
			abort();
	}
	while (fd_member_next_event(m, &ev))
		;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const peers[] = {"10.0.0.2:1", "10.0.0.3:1",
					    "10.0.0.4:1", "x"};
	struct fd_member_config cfg;
	uint8_t id[FD_MEMBER_ID_LEN] = {1, 2, 3};
	struct fd_member *m;
	struct fd_wire_pp_reader r;
	int64_t now = 0;
	uint8_t *pp;
	size_t pplen;

	fd_member_config_profile(&cfg, "local");
	cfg.max_members = 64;
	m = fd_member_new(&cfg, "fz", id, "10.0.0.1:1", 1, 1, now);
	if (!m)
		abort();
	while (size >= 3) {
		uint8_t kind = data[0];
		size_t len = (size_t)data[1] << 8 | data[2];

		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		switch (kind % 4) {
		case 0:
			fd_member_recv(m, now, peers[(kind >> 2) % 4], data, len);
			break;
		case 1: fd_member_pushpull_merge(m, now, data, len); break;
		case 2:
			now += (int64_t)len;
			fd_member_tick(m, now);
			break;
		default:
			if (kind & 4)
				fd_member_leave(m, now);
			else
				fd_member_join(m, now, peers[(kind >> 3) % 4]);
		}
		drain(m);
		data += len;
		size -= len;
	}
	if (fd_member_size(m) > 64)
		abort();
	if (fd_member_pushpull_encode(m, 0, &pp, &pplen) != 0)
		abort();
	if (fd_wire_pp_open(&r, pp, pplen) != 0 || r.count != fd_member_size(m))
		abort();
	free(pp);
	fd_member_free(m);
	return 0;
}
