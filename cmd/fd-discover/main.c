#include "cli.h"
#include "gossip.h"
#include "strategy.h"
#include "jsonl.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USAGE                                                                          \
	"fd-discover static [-w] [--format json|table] addr...\n"                      \
	"       fd-discover file [-w] [-i interval] [--down-after n] [--strict]\n"     \
	"                   [--format json|table] path\n"                              \
	"       fd-discover exec [-w] [-i interval] [--down-after n] [--strict]\n"     \
	"                   [--exec-timeout t] [--expect n] [--timeout t] cmd\n"       \
	"       fd-discover dns|dns-srv [-w] [-i interval] [--down-after n]\n"         \
	"                   [-p port] [--resolver ip:port] [--expect n]\n"             \
	"                   [--timeout t] [--format json|table] name\n"                \
	"       fd-discover mdns [-w] [-i interval] [--down-after n] [--window t]\n"   \
	"                   [--multicast-if if] [--expect n] [--timeout t]\n"          \
	"       fd-discover gossip [-w] [-i interval] [--down-after n] [--window t]\n" \
	"                   [--key-file file] [--cluster name] [--insecure]\n"         \
	"                   [--multicast-addr group] [--multicast-port port]\n"        \
	"                   [--multicast-ttl n] [--multicast-if if] [--expect n]\n"    \
	"                   [--timeout t]"

static const char help[] =
	"\n"
	"Finds peers and prints them as JSON lines: {\"type\":\"peer\",\"event\":\"up\",...}.\n"
	"\n"
	"Strategies:\n"
	"  static ADDR...          the addresses given (HOST[:PORT], default port 4380)\n"
	"  file PATH               one address per line; '#' starts a comment\n"
	"  exec CMD                run /bin/sh -c CMD at every poll; it prints addresses\n"
	"                          or JSON peer lines\n"
	"  dns NAME                the A and AAAA records of NAME, with --port\n"
	"  dns-srv NAME            the SRV records of NAME: targets and ports\n"
	"  mdns                    nodes announcing _fd._tcp.local over multicast DNS\n"
	"                          (fd-node --announce mdns)\n"
	"  gossip                  nodes' multicast heartbeats, sealed with the cluster\n"
	"                          key (fd-node --announce gossip)\n"
	"\n"
	"Options:\n"
	"  -w, --watch             keep going and print up/down changes until SIGINT/SIGTERM\n"
	"  -i, --interval DURATION re-read the source this often with --watch (default 1s)\n"
	"      --down-after N      a peer is down after N reads without it (default 1)\n"
	"      --strict            stop at the first bad line (exit 7)\n"
	"  -e, --expect N          without --watch: poll until N peers are found (exit 5\n"
	"                          if not within --timeout)\n"
	"  -t, --timeout DURATION  how long --expect waits (default 30s)\n"
	"      --exec-timeout DURATION\n"
	"                          exec: the longest a run may take (default 10s)\n"
	"  -p, --port PORT         dns: the peers' port (default 4380)\n"
	"      --resolver IP[:PORT]\n"
	"                          dns, dns-srv: ask this server (default: the system's)\n"
	"      --window DURATION   mdns, gossip: how long a one-shot run listens (2s)\n"
	"      --multicast-if IF   mdns, gossip: the interface (name or IPv4 address;\n"
	"                          default: the one the routing table picks)\n"
	"      --multicast-addr GROUP  gossip: the group (default 233.252.1.32)\n"
	"      --multicast-port PORT   gossip: the UDP port (default 45892)\n"
	"      --multicast-ttl N   gossip: the IP TTL of queries (default 1: the link)\n"
	"      --key-file FILE     gossip: the cluster key ring (default $FD_KEY_FILE)\n"
	"      --cluster NAME      gossip: the cluster name sealed in (default fd)\n"
	"      --insecure          gossip: no key, plain heartbeats\n"
	"      --format FORMAT     json (default) or table\n"
	"  -h, --help              show this help\n"
	"  -V, --version           show the version\n";

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv, const struct dopts *o);
} strategies[] = {
	{"static", strategy_static},   {"file", strategy_file},
	{"exec", strategy_exec},       {"dns", strategy_dns},
	{"dns-srv", strategy_dns_srv}, {"mdns", strategy_mdns},
	{"gossip", strategy_gossip},
};
#define KNOWN "static, file, exec, dns, dns-srv, mdns, gossip"

/* "IP" or "IP:PORT" (IPv6 in brackets) as c-ares takes it, into out. */
static const char *resolver_arg(const char *arg, char *out, size_t len)
{
	char host[256];
	unsigned char ip[16];
	int port, v6;

	if (fd_parse_hostport(arg, host, sizeof(host), 53, &port) < 0 || port == 0)
		return NULL;
	v6 = inet_pton(AF_INET6, host, ip) == 1;
	if (!v6 && inet_pton(AF_INET, host, ip) != 1)
		return NULL;
	snprintf(out, len, v6 ? "[%s]:%d" : "%s:%d", host, port);
	return out;
}

int main(int argc, char **argv)
{
	enum {
		OPT_DOWN_AFTER = 256,
		OPT_STRICT,
		OPT_FORMAT,
		OPT_EXEC_TIMEOUT,
		OPT_RESOLVER,
		OPT_WINDOW, /* mdns, gossip */
		OPT_MCAST_ADDR,
		OPT_MCAST_PORT,
		OPT_MCAST_TTL,
		OPT_MCAST_IF,
		OPT_KEY_FILE,
		OPT_CLUSTER,
		OPT_INSECURE,
	};
	static const struct option opts[] = {
		{"watch", no_argument, NULL, 'w'},
		{"interval", required_argument, NULL, 'i'},
		{"down-after", required_argument, NULL, OPT_DOWN_AFTER},
		{"strict", no_argument, NULL, OPT_STRICT},
		{"format", required_argument, NULL, OPT_FORMAT},
		{"expect", required_argument, NULL, 'e'},
		{"timeout", required_argument, NULL, 't'},
		{"exec-timeout", required_argument, NULL, OPT_EXEC_TIMEOUT},
		{"port", required_argument, NULL, 'p'},
		{"resolver", required_argument, NULL, OPT_RESOLVER},
		{"window", required_argument, NULL, OPT_WINDOW},
		{"multicast-addr", required_argument, NULL, OPT_MCAST_ADDR},
		{"multicast-port", required_argument, NULL, OPT_MCAST_PORT},
		{"multicast-ttl", required_argument, NULL, OPT_MCAST_TTL},
		{"multicast-if", required_argument, NULL, OPT_MCAST_IF},
		{"key-file", required_argument, NULL, OPT_KEY_FILE},
		{"cluster", required_argument, NULL, OPT_CLUSTER},
		{"insecure", no_argument, NULL, OPT_INSECURE},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	struct dopts o = {.interval_ms = 1000,
			  .down_after = 1,
			  .timeout_ms = 30000,
			  .timeout_arg = "30s",
			  .exec_timeout_ms = 10000,
			  .port = FD_DEFAULT_PORT,
			  .window_ms = 2000,
			  .mcast = {.port = FD_GOSSIP_PORT, .ttl = FD_GOSSIP_TTL},
			  .cluster = "fd"};
	char resolver[300];
	struct fd_err err;
	long long n;
	int c;

	fd_cli_init("fd-discover", USAGE);
	while ((c = getopt_long(argc, argv, ":wi:e:t:p:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'w': o.watch = 1; break;
		case 'i':
			if (fd_parse_duration(optarg, &o.interval_ms) < 0 ||
			    o.interval_ms < 10 || o.interval_ms > 86400000)
				fd_usage_die("invalid --interval '%s' (10ms to 24h)",
					     optarg);
			break;
		case OPT_DOWN_AFTER:
			if (fd_parse_int(optarg, 1, 1000000, &n) < 0)
				fd_usage_die("invalid --down-after '%s' (1 to 1000000)",
					     optarg);
			o.down_after = (unsigned)n;
			break;
		case OPT_STRICT: o.strict = 1; break;
		case 'e':
			if (fd_parse_int(optarg, 1, 1000000, &n) < 0)
				fd_usage_die("invalid --expect '%s' (1 to 1000000)",
					     optarg);
			o.expect = (unsigned)n;
			break;
		case 't':
			if (fd_parse_duration(optarg, &o.timeout_ms) < 0)
				fd_usage_die("invalid --timeout '%s'", optarg);
			o.timeout_arg = optarg;
			break;
		case OPT_EXEC_TIMEOUT:
			if (fd_parse_duration(optarg, &o.exec_timeout_ms) < 0 ||
			    o.exec_timeout_ms < 1)
				fd_usage_die("invalid --exec-timeout '%s'", optarg);
			break;
		case 'p':
			if (fd_parse_int(optarg, 1, 65535, &n) < 0)
				fd_usage_die("invalid --port '%s' (1 to 65535)",
					     optarg);
			o.port = (int)n;
			break;
		case OPT_RESOLVER:
			o.resolver =
				resolver_arg(optarg, resolver, sizeof(resolver));
			if (!o.resolver)
				fd_usage_die("invalid --resolver '%s' (expected IP[:PORT])",
					     optarg);
			break;
		case OPT_WINDOW:
			if (fd_parse_duration(optarg, &o.window_ms) < 0 ||
			    o.window_ms < 10 || o.window_ms > 3600000)
				fd_usage_die("invalid --window '%s' (10ms to 1h)",
					     optarg);
			break;
		case OPT_MCAST_ADDR:
			if (fd_mcast_parse_group(optarg, &o.mcast.group, &err) < 0)
				fd_usage_die("invalid --multicast-addr: %s", err.msg);
			o.mcast_group_set = 1;
			break;
		case OPT_MCAST_PORT:
			if (fd_parse_int(optarg, 1, 65535, &n) < 0)
				fd_usage_die("invalid --multicast-port '%s' (1 to 65535)",
					     optarg);
			o.mcast.port = (int)n;
			o.mcast_group_set = 1;
			break;
		case OPT_MCAST_TTL:
			if (fd_parse_int(optarg, 1, 255, &n) < 0)
				fd_usage_die("invalid --multicast-ttl '%s' (1 to 255)",
					     optarg);
			o.mcast.ttl = (int)n;
			o.mcast_group_set = 1;
			break;
		case OPT_MCAST_IF:
			if (fd_mcast_parse_if(optarg, &o.mcast, &err) < 0)
				fd_usage_die("invalid --multicast-if: %s", err.msg);
			break;
		case OPT_KEY_FILE:
			if (!*optarg)
				fd_usage_die("invalid --key-file ''");
			o.key_file = optarg;
			break;
		case OPT_CLUSTER:
			if (!*optarg || strlen(optarg) > 64 ||
			    strspn(optarg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") !=
				    strlen(optarg))
				fd_usage_die("invalid --cluster '%s' (1 to 64 letters, digits, '.', '-', '_')",
					     optarg);
			o.cluster = optarg;
			break;
		case OPT_INSECURE: o.insecure = 1; break;
		case OPT_FORMAT:
			if (strcmp(optarg, "json") != 0 &&
			    strcmp(optarg, "table") != 0)
				fd_usage_die("invalid --format '%s' (json, table)",
					     optarg);
			o.table = strcmp(optarg, "table") == 0;
			break;
		case 'h': fd_help_exit(help);
		case 'V': fd_version_exit();
		default: fd_usage_getopt(c, argv);
		}
	}
	argc -= optind;
	argv += optind;
	if (o.expect && o.watch)
		fd_usage_die("--expect is for one-shot runs, not --watch");
	if (!o.key_file && getenv("FD_KEY_FILE") && *getenv("FD_KEY_FILE"))
		o.key_file = getenv("FD_KEY_FILE");
	if (!o.mcast_group_set || !o.mcast.group.s_addr)
		fd_mcast_parse_group(FD_GOSSIP_GROUP, &o.mcast.group, NULL);
	if (argc == 0)
		fd_usage_die("no strategy given (known: " KNOWN ")");
	for (size_t i = 0; i < sizeof(strategies) / sizeof(strategies[0]); i++) {
		if (strcmp(argv[0], strategies[i].name) != 0)
			continue;
		out_init(&o, strategies[i].name);
		return fd_finish_stdout(strategies[i].fn(argc - 1, argv + 1, &o));
	}
	fd_usage_die("unknown strategy '%s' (known: " KNOWN ")", argv[0]);
}
