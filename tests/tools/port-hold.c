/* port-hold: a test tool that occupies a port so a test can see what a
 * program does when its port is taken.
 *
 *   port-hold tcp|udp [PORT]
 *
 * Binds 127.0.0.1:PORT (default 0, a free port) with the given protocol (tcp
 * also listens), prints the bound port as one line on stdout and holds it
 * until killed. Binding fails with exit 1 and a message, as any fd binary. */
#include "cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define USAGE "port-hold tcp|udp [port]"

int main(int argc, char **argv)
{
	struct sockaddr_in sa;
	socklen_t salen = sizeof(sa);
	long long port = 0;
	int fd, type;

	fd_cli_init("port-hold", USAGE);
	if (argc == 2 && strcmp(argv[1], "--help") == 0)
		fd_help_exit(NULL);
	if (argc < 2 || argc > 3)
		fd_usage_die("expected a protocol and an optional port");
	if (strcmp(argv[1], "tcp") == 0)
		type = SOCK_STREAM;
	else if (strcmp(argv[1], "udp") == 0)
		type = SOCK_DGRAM;
	else
		fd_usage_die("unknown protocol '%s'", argv[1]);
	if (argc == 3 && fd_parse_int(argv[2], 0, 65535, &port) < 0)
		fd_usage_die("invalid port '%s'", argv[2]);

	fd = socket(AF_INET, type, 0);
	if (fd < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to create a socket: %s",
		       strerror(errno));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to bind '127.0.0.1:%lld': %s",
		       port, strerror(errno));
	if (type == SOCK_STREAM && listen(fd, 16) < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to listen: %s", strerror(errno));
	if (getsockname(fd, (struct sockaddr *)&sa, &salen) < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to read the bound port: %s",
		       strerror(errno));
	printf("%u\n", (unsigned)ntohs(sa.sin_port));
	if (fflush(stdout) == EOF)
		fd_die(FD_EXIT_RUNTIME, "unable to write to stdout: %s",
		       strerror(errno));
	for (;;)
		pause();
}
