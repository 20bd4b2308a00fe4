#include "cli.h"
#include "client.h"
#include "discover.h"
#include "join.h"
#include "jsonl.h"

#include <getopt.h>
#include <unistd.h>

#define USAGE "fd-join [-n node] [-e n] [-t timeout] [-q] [--strict] [addr...]"

static const char help[] =
	"\n"
	"Asks a node to join peers: the ADDRs given, else the addresses on stdin\n"
	"(host:port lines, or JSON lines with an \"addr\", such as fd-discover's).\n"
	"Prints one {\"type\":\"join\",...} line per address.\n"
	"\n"
	"Options:\n"
	"  -n, --node HOST:PORT    the node to ask (default $FD_NODE, else 127.0.0.1:4380)\n"
	"  -e, --expect N          then wait until N members are alive; print a result line\n"
	"  -t, --timeout DURATION  longest wait for each answer and for --expect (default 30s)\n"
	"  -q, --quiet             do not print the join lines\n"
	"      --strict            stop at the first bad input line (exit 7)\n" FD_CLIENT_HELP
	"  -h, --help              show this help\n"
	"  -V, --version           show the version\n";

int main(int argc, char **argv)
{
	enum { OPT_STRICT = 256 };
	static const struct option opts[] = {
		{"node", required_argument, NULL, 'n'},
		{"expect", required_argument, NULL, 'e'},
		{"timeout", required_argument, NULL, 't'},
		{"quiet", no_argument, NULL, 'q'},
		{"strict", no_argument, NULL, OPT_STRICT},
		FD_CLIENT_OPTIONS,
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	struct join j = {.timeout_ms = 30000, .timeout_arg = "30s"};
	char addr[FD_PEER_ADDR_LEN];
	struct fd_err err;
	const char *node = NULL;
	int c, rc = FD_EXIT_OK, from_stdin;

	fd_cli_init("fd-join", USAGE);
	while ((c = getopt_long(argc, argv, ":n:e:t:qhV", opts, NULL)) != -1) {
		switch (c) {
		case 'n': node = optarg; break;
		case 'e':
			if (fd_parse_int(optarg, 1, 1000000, &j.expect) < 0)
				fd_usage_die("invalid --expect '%s' (1 to 1000000)",
					     optarg);
			break;
		case 't':
			if (fd_parse_duration(optarg, &j.timeout_ms) < 0 ||
			    j.timeout_ms == 0)
				fd_usage_die("invalid --timeout '%s'", optarg);
			j.timeout_arg = optarg;
			break;
		case 'q': j.quiet = 1; break;
		case OPT_STRICT: j.strict = 1; break;
		case 'h': fd_help_exit(help);
		case 'V': fd_version_exit();
		default:
			if (!fd_client_opt(c, optarg))
				fd_usage_getopt(c, argv);
		}
	}
	argc -= optind;
	argv += optind;
	for (int i = 0; i < argc; i++)
		if (fd_peer_addr_norm(argv[i], addr, sizeof(addr), &err) < 0)
			fd_usage_die("%s", err.msg);
	/* A terminal is not read: "fd-join --expect 3" only waits. */
	from_stdin = argc == 0 && !isatty(STDIN_FILENO);
	if (argc == 0 && !from_stdin && !j.expect)
		fd_usage_die("no addresses given");
	join_init(&j, fd_node_addr(node));
	for (int i = 0; i < argc; i++) {
		fd_peer_addr_norm(argv[i], addr, sizeof(addr), NULL);
		join_add(&j, addr);
	}
	if (from_stdin)
		join_stdin(&j);
	join_flush(&j);
	if (j.sent == 0 && j.bad == 0 && !j.expect) {
		join_release(&j);
		fd_usage_die("no addresses given");
	}
	if (j.expect)
		rc = join_wait(&j);
	if (rc == FD_EXIT_OK && j.failed)
		rc = FD_EXIT_RUNTIME;
	if (rc == FD_EXIT_OK && j.bad)
		rc = FD_EXIT_DATA;
	join_release(&j);
	return fd_finish_stdout(rc);
}
