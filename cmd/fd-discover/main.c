#include "cli.h"
#include "strategy.h"
#include "jsonl.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#define USAGE                                                                          \
	"fd-discover static [-w] [--format json|table] addr...\n"                      \
	"       fd-discover file [-w] [-i interval] [--down-after n] [--strict]\n"     \
	"                   [--format json|table] path\n"                              \
	"       fd-discover exec [-w] [-i interval] [--down-after n] [--strict]\n"     \
	"                   [--exec-timeout t] [--expect n] [--timeout t] cmd\n"       \
	"       fd-discover dns|dns-srv [-w] [-i interval] [--down-after n]\n"         \
	"                   [-p port] [--resolver ip:port] [--basename b]\n"           \
	"                   [--expect n] [--timeout t] [--format json|table] name\n"   \
	"       fd-discover kubernetes --selector s [--namespace ns]\n"                \
	"                   [--mode endpoints|pods] [-p port] [--port-name name]\n"    \
	"                   [--api url] [--token-file f] [--ca-file f] [--sa-dir d]\n" \
	"                   [--basename b] [-w] [-i interval] [--down-after n]\n"      \
	"                   [--expect n] [--timeout t] [--format json|table]\n"        \
	"       fd-discover --auto [--explain] [--sa-dir d] [options]\n"               \
	"       fd-discover --config file [--topology name] [--explain] [options]"

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
	"  kubernetes              the API server's endpoints or pods by --selector\n"
	"\n"
	"Choosing the strategy:\n"
	"      --auto              from the environment: $FD_DISCOVER (a spec such as\n"
	"                          \"dns name=fd.test port=4380\"), else Kubernetes (a\n"
	"                          service account or KUBERNETES_SERVICE_HOST), else\n"
	"                          mdns, then gossip\n"
	"      --config FILE       a libcluster-style topology in JSON:\n"
	"                          {\"topologies\": {\"NAME\": {\"strategy\": ..., \"config\": {...}}}}\n"
	"      --topology NAME     which topology of --config (when it has several)\n"
	"      --explain           say on stderr, as JSON lines, what was checked and why\n"
	"                          the strategy was chosen\n"
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
	"  -p, --port PORT         dns: the peers' port (default 4380); kubernetes: the\n"
	"                          port instead of the one named --port-name\n"
	"      --resolver IP[:PORT]\n"
	"                          dns, dns-srv: ask this server (default: the system's)\n"
	"      --basename NAME     dns, kubernetes: name peers NAME@IP\n"
	"      --selector SEL      kubernetes: label selector, e.g. app=fd\n"
	"      --namespace NS      kubernetes: default: the service account's namespace\n"
	"      --mode MODE         kubernetes: endpoints (default: their ready addresses)\n"
	"                          or pods (Running and Ready, with an IP)\n"
	"      --port-name NAME    kubernetes: the named port to use (default fd)\n"
	"      --api URL           kubernetes: the API server (default\n"
	"                          https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT)\n"
	"      --token-file FILE   kubernetes: bearer token (default SA_DIR/token)\n"
	"      --ca-file FILE      kubernetes: CA bundle (default SA_DIR/ca.crt)\n"
	"      --sa-dir DIR        kubernetes, --auto: the service account's files (default\n"
	"                          /var/run/secrets/kubernetes.io/serviceaccount)\n"
	"      --format FORMAT     json (default) or table\n"
	"  -h, --help              show this help\n"
	"  -V, --version           show the version\n";

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv, const struct dopts *o);
} strategies[] = {
	{"static", strategy_static},   {"file", strategy_file},
	{"exec", strategy_exec},       {"dns", strategy_dns},
	{"dns-srv", strategy_dns_srv}, {"kubernetes", strategy_kubernetes},
};
#define KNOWN "static, file, exec, dns, dns-srv, kubernetes"

int have_strategy(const char *name)
{
	for (size_t i = 0; i < sizeof(strategies) / sizeof(strategies[0]); i++)
		if (strcmp(name, strategies[i].name) == 0)
			return 1;
	return 0;
}

int run_strategy(const char *name, int argc, char **argv, const struct dopts *o)
{
	for (size_t i = 0; i < sizeof(strategies) / sizeof(strategies[0]); i++) {
		if (strcmp(name, strategies[i].name) != 0)
			continue;
		out_init(o, strategies[i].name);
		return strategies[i].fn(argc, argv, o);
	}
	return -1;
}

const char *resolver_arg(const char *arg, char *out, size_t len)
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
		OPT_BASENAME,
		OPT_SELECTOR,
		OPT_NAMESPACE,
		OPT_MODE,
		OPT_API,
		OPT_TOKEN_FILE,
		OPT_CA_FILE,
		OPT_SA_DIR,
		OPT_PORT_NAME,
		OPT_AUTO,
		OPT_EXPLAIN,
		OPT_CONFIG,
		OPT_TOPOLOGY,
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
		{"basename", required_argument, NULL, OPT_BASENAME},
		{"selector", required_argument, NULL, OPT_SELECTOR},
		{"namespace", required_argument, NULL, OPT_NAMESPACE},
		{"mode", required_argument, NULL, OPT_MODE},
		{"api", required_argument, NULL, OPT_API},
		{"token-file", required_argument, NULL, OPT_TOKEN_FILE},
		{"ca-file", required_argument, NULL, OPT_CA_FILE},
		{"sa-dir", required_argument, NULL, OPT_SA_DIR},
		{"port-name", required_argument, NULL, OPT_PORT_NAME},
		{"auto", no_argument, NULL, OPT_AUTO},
		{"explain", no_argument, NULL, OPT_EXPLAIN},
		{"config", required_argument, NULL, OPT_CONFIG},
		{"topology", required_argument, NULL, OPT_TOPOLOGY},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	struct dopts o = {.interval_ms = 1000,
			  .down_after = 1,
			  .timeout_ms = 30000,
			  .timeout_arg = "30s",
			  .exec_timeout_ms = 10000,
			  .port = FD_DEFAULT_PORT};
	char resolver[300];
	long long n;
	int c, rc;

	fd_cli_init("fd-discover", USAGE);
	while ((c = getopt_long(argc, argv, ":wi:e:t:p:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'w': o.watch = 1; break;
		case 'i':
			if (fd_parse_duration(optarg, &o.interval_ms) < 0 ||
			    o.interval_ms < 10 || o.interval_ms > 86400000)
				fd_usage_die("invalid --interval '%s' (10ms to 24h)",
					     optarg);
			o.interval_given = 1;
			break;
		case OPT_DOWN_AFTER:
			if (fd_parse_int(optarg, 1, 1000000, &n) < 0)
				fd_usage_die("invalid --down-after '%s' (1 to 1000000)",
					     optarg);
			o.down_after = (unsigned)n;
			o.down_after_given = 1;
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
			o.exec_timeout_given = 1;
			break;
		case 'p':
			if (fd_parse_int(optarg, 1, 65535, &n) < 0)
				fd_usage_die("invalid --port '%s' (1 to 65535)",
					     optarg);
			o.port = (int)n;
			o.port_given = 1;
			break;
		case OPT_RESOLVER:
			o.resolver =
				resolver_arg(optarg, resolver, sizeof(resolver));
			if (!o.resolver)
				fd_usage_die("invalid --resolver '%s' (expected IP[:PORT])",
					     optarg);
			break;
		case OPT_BASENAME: o.basename = optarg; break;
		case OPT_SELECTOR: o.selector = optarg; break;
		case OPT_NAMESPACE: o.k8s_namespace = optarg; break;
		case OPT_MODE:
			if (strcmp(optarg, "endpoints") != 0 &&
			    strcmp(optarg, "pods") != 0)
				fd_usage_die("invalid --mode '%s' (endpoints, pods)",
					     optarg);
			o.k8s_mode = optarg;
			break;
		case OPT_API: o.api = optarg; break;
		case OPT_TOKEN_FILE: o.token_file = optarg; break;
		case OPT_CA_FILE: o.ca_file = optarg; break;
		case OPT_SA_DIR: o.sa_dir = optarg; break;
		case OPT_PORT_NAME: o.port_name = optarg; break;
		case OPT_AUTO: o.auto_pick = 1; break;
		case OPT_EXPLAIN: o.explain = 1; break;
		case OPT_CONFIG: o.config = optarg; break;
		case OPT_TOPOLOGY: o.topology = optarg; break;
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
	if (o.auto_pick && o.config)
		fd_usage_die("--auto and --config are two ways to choose: give one");
	if (o.topology && !o.config)
		fd_usage_die("--topology goes with --config");
	if (o.auto_pick || o.config) {
		if (argc > 0)
			fd_usage_die("unexpected argument '%s' (%s chooses the strategy)",
				     argv[0], o.config ? "--config" : "--auto");
		return fd_finish_stdout(run_auto(&o));
	}
	if (argc == 0)
		fd_usage_die("no strategy given (known: " KNOWN
			     "; or --auto, --config FILE)");
	if (o.explain)
		explain_given(argv[0]);
	rc = run_strategy(argv[0], argc - 1, argv + 1, &o);
	if (rc < 0)
		fd_usage_die("unknown strategy '%s' (known: " KNOWN ")", argv[0]);
	return fd_finish_stdout(rc);
}
