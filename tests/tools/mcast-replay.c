/* mcast-replay: a test tool that captures multicast datagrams and sends
 * them again, to show that receivers reject replays.
 *
 *   mcast-replay GROUP PORT COUNT [TIMEOUT]
 *
 * Joins GROUP on PORT (shared with the programs under test), captures the
 * first COUNT datagrams, prints "captured N", sends each of them once more
 * to the group, unchanged, and prints "replayed N". Exit 0; 5 when fewer
 * than COUNT came within TIMEOUT (default 10s); 1 on a socket error. Only
 * ever used inside a test's own network namespace. */
#include "cli.h"
#include "clock.h"
#include "mcast.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define USAGE "mcast-replay group port count [timeout]"
#define MAX_COUNT 64

int main(int argc, char **argv)
{
	static unsigned char pkt[MAX_COUNT][9000];
	size_t len[MAX_COUNT];
	struct fd_mcast_opts o = {.ttl = 1};
	struct fd_err err;
	long long port, count;
	int64_t timeout = 10000, deadline;
	int fd, n = 0;

	fd_cli_init("mcast-replay", USAGE);
	if (argc < 4 || argc > 5)
		fd_usage_die("expected a group, a port and a count");
	if (fd_mcast_parse_group(argv[1], &o.group, &err) < 0)
		fd_usage_die("%s", err.msg);
	if (fd_parse_int(argv[2], 1, 65535, &port) < 0 ||
	    fd_parse_int(argv[3], 1, MAX_COUNT, &count) < 0 ||
	    (argc == 5 && fd_parse_duration(argv[4], &timeout) < 0))
		fd_usage_die("invalid port, count or timeout");
	o.port = (int)port;
	fd = fd_mcast_open(&o, &err);
	if (fd < 0)
		fd_die(FD_EXIT_RUNTIME, "%s", err.msg);
	deadline = fd_mono_ms() + timeout;
	while (n < count) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int64_t left = deadline - fd_mono_ms();
		ssize_t r;

		if (left <= 0)
			break;
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		r = recv(fd, pkt[n], sizeof(pkt[n]), 0);
		if (r > 0)
			len[n++] = (size_t)r;
	}
	printf("captured %d\n", n);
	fflush(stdout);
	for (int i = 0; i < n; i++)
		if (fd_mcast_send(fd, &o, pkt[i], len[i], &err) < 0)
			fd_die(FD_EXIT_RUNTIME, "%s", err.msg);
	printf("replayed %d\n", n);
	close(fd);
	return n < count ? FD_EXIT_TIMEOUT : FD_EXIT_OK;
}
