/* udp-replay: a test tool that records UDP datagrams on the loopback
 * interface and sends bytes back, for capture-and-replay tests.
 *
 *   udp-replay capture PORT [COUNT] [TIMEOUT_MS]
 *        watches lo (an AF_PACKET socket: needs root, sees every
 *        datagram to 127.0.0.1:PORT while the receiver gets it as usual)
 *        and prints the payload of each of the first COUNT (default 1)
 *        IPv4 datagrams to PORT as one hex line; exit 5 when TIMEOUT_MS
 *        (default 10000) passes first.
 *   udp-replay send HOST:PORT HEX
 *        sends the bytes HEX to HOST:PORT from an ephemeral port.
 *
 * Only loopback: capture listens on lo, send refuses anything but
 * 127.0.0.0/8. */
#include "cli.h"
#include "jsonl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define USAGE                                            \
	"udp-replay capture PORT [COUNT] [TIMEOUT_MS]\n" \
	"       udp-replay send HOST:PORT HEX"

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int capture(int port, long long count, long long timeout)
{
	struct sockaddr_ll sll = {0};
	unsigned char buf[65536];
	long long deadline = now_ms() + timeout, got = 0;
	int fd = socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP));

	if (fd < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to open a packet socket: %s",
		       strerror(errno));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_IP);
	sll.sll_ifindex = (int)if_nametoindex("lo");
	if (!sll.sll_ifindex || bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to watch lo: %s", strerror(errno));
	/* ready: the caller may make the traffic happen now */
	fprintf(stderr, "udp-replay: watching lo for UDP to port %d\n", port);
	while (got < count) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		long long left = deadline - now_ms();
		ssize_t n;
		size_t ihl, off;
		const struct udphdr *uh;

		if (left <= 0)
			return FD_EXIT_TIMEOUT;
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		/* lo shows each packet twice: going out and coming in */
		if (n < 0 || from.sll_pkttype == PACKET_OUTGOING)
			continue;
		off = 0; /* SOCK_DGRAM: the IP header comes first */
		if ((size_t)n < off + 20 || (buf[off] >> 4) != 4 ||
		    buf[off + 9] != IPPROTO_UDP)
			continue;
		ihl = (size_t)(buf[off] & 15) * 4;
		if ((size_t)n < off + ihl + 8)
			continue;
		uh = (const struct udphdr *)(buf + off + ihl);
		if (ntohs(uh->dest) != port)
			continue;
		for (size_t i = off + ihl + 8; i < (size_t)n; i++)
			printf("%02x", buf[i]);
		printf("\n");
		fflush(stdout);
		got++;
	}
	close(fd);
	return FD_EXIT_OK;
}

static int send_hex(const char *addr, const char *hex)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	char host[64];
	unsigned char buf[65536];
	size_t n = strlen(hex) / 2;
	int port, fd;

	if (fd_parse_hostport(addr, host, sizeof(host), -1, &port) < 0 ||
	    inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
	    (ntohl(sa.sin_addr.s_addr) >> 24) != 127)
		fd_usage_die("expected 127.x.x.x:PORT, not '%s'", addr);
	if (strlen(hex) % 2 || n > sizeof(buf))
		fd_usage_die("HEX must be an even number of hex digits");
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			fd_usage_die("HEX must be hex digits");
		buf[i] = (unsigned char)v;
	}
	sa.sin_port = htons((uint16_t)port);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || sendto(fd, buf, n, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to send: %s", strerror(errno));
	close(fd);
	return FD_EXIT_OK;
}

int main(int argc, char **argv)
{
	long long port, count = 1, timeout = 10000;

	fd_cli_init("udp-replay", USAGE);
	if (argc == 2 && strcmp(argv[1], "--help") == 0)
		fd_help_exit(NULL);
	if (argc >= 3 && argc <= 5 && strcmp(argv[1], "capture") == 0) {
		if (fd_parse_int(argv[2], 1, 65535, &port) < 0 ||
		    (argc > 3 && fd_parse_int(argv[3], 1, 1000000, &count) < 0) ||
		    (argc > 4 && fd_parse_int(argv[4], 1, 3600000, &timeout) < 0))
			fd_usage_die("invalid number");
		return fd_finish_stdout(capture((int)port, count, timeout));
	}
	if (argc == 4 && strcmp(argv[1], "send") == 0)
		return send_hex(argv[2], argv[3]);
	fd_usage_die("expected capture or send");
}
