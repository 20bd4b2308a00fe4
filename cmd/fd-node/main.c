#include "announce.h"
#include "cli.h"
#include "client.h"
#include "dsource.h"
#include "log.h"
#include "node.h"
#include "pubsub.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define USAGE                                                                                  \
	"fd-node [-N name] [-l host:port] [-p profile] [-j addr]... [--retry-join] [-d]\n"     \
	"               [--discover spec]...\n"                                                \
	"               [--advertise host:port] [--ready-quorum] [--ready-expect n]\n"         \
	"               [--pid-file file] [--log-file file] [--log-level level]\n"             \
	"               [--log-format text|json] [--max-body size] [--max-duration t]\n"       \
	"               [--max-payload size] [--sub-queue n] [--sub-queue-bytes size]\n"       \
	"               [--overflow policy] [--chunk-size size] [--compress-min size]\n"       \
	"               [--channels separate|shared] [--key-file file] [--cluster name]\n"     \
	"               [--encrypt-rollout] [--insecure] [--tls-cert file [--tls-key file]]\n" \
	"               [--tls-ca file [--tls-verify-client]] [--acl-file file]\n"             \
	"               [--default-scope scopes] [--audit-log file] [--max-conns n]\n"         \
	"               [--max-client-conns n] [--announce mdns|gossip]...\n"                  \
	"               [--meta key=value]... [--multicast-addr group]\n"                      \
	"               [--multicast-port port] [--multicast-ttl n] [--multicast-if if]\n"     \
	"               [--gossip-interval t]\n"                                               \
	"       fd-node info|members|leave [-n node] [-t timeout] [-f json|table]\n"           \
	"       fd-node keys list|install KEY|use KEYID|remove KEYID [-n node] [-t timeout]\n" \
	"       fd-node keygen [--force] [file]"

static const char help[] =
	"\n"
	"Runs a node of an fd cluster, or talks to one.\n"
	"\n"
	"Node options:\n"
	"  -N, --name NAME         node name (default: the hostname)\n"
	"  -l, --listen HOST:PORT  TCP and UDP address (default 127.0.0.1:4380; port 0: any free)\n"
	"      --advertise H:P     address given to peers (needed with a wildcard --listen)\n"
	"  -p, --profile NAME      timing profile: local, lan (default) or wan\n"
	"  -j, --join ADDR         join the cluster through ADDR at start (repeatable)\n"
	"      --retry-join        keep retrying the --join addresses, with backoff\n"
	"      --discover SPEC     find peers with a strategy and join them, at every\n"
	"                          poll (repeatable), e.g. \"dns name=fd.test port=4380\"\n"
	"                          or \"static addrs=10.0.0.1:4380,10.0.0.2:4380\"\n"
	"      --ready-quorum      /readyz fails while this node sees no majority\n"
	"      --ready-expect N    /readyz fails while fewer than N members are alive\n"
	"  -d, --detach            run in the background once ready; print the identity line\n"
	"      --pid-file FILE     write the node's PID to FILE\n"
	"      --log-file FILE     append logs to FILE instead of stderr\n"
	"      --log-level LEVEL   debug, info, warn, error or off (default info)\n"
	"      --log-format FMT    text or json (default text)\n"
	"      --max-body SIZE     largest request body accepted (default 1MiB)\n"
	"      --max-duration T    longest life of a fault rule, and its default (10m)\n"
	"      --max-conns N       open connections at most (default 1024)\n"
	"      --max-client-conns N  open connections from one address (default 256;\n"
	"                          0: no limit but --max-conns)\n"
	"\n"
	"Security options:\n"
	"      --tls-cert FILE     serve HTTPS with this certificate (PEM, may hold the\n"
	"                          chain; default $FD_TLS_CERT); peers are called over\n"
	"                          https with it as the client certificate\n"
	"      --tls-key FILE      its private key (default $FD_TLS_KEY, else in --tls-cert)\n"
	"      --tls-ca FILE       CA for peers' and clients' certificates ($FD_TLS_CA)\n"
	"      --tls-verify-client every client needs a certificate --tls-ca signed\n"
	"      --acl-file FILE     bearer tokens and their scopes (JSON; reread on SIGHUP)\n"
	"      --default-scope S   what clients on this host may do without a token:\n"
	"                          all (default), none, or a list like read,publish:x.\n"
	"                          Clients on other hosts always need a token.\n"
	"      --audit-log FILE    append one JSON line per admin action to FILE\n"
	"\n"
	"Security options:\n"
	"      --key-file FILE     cluster key ring (default $FD_KEY_FILE): seal UDP,\n"
	"                          sign node-to-node HTTP; mode 0600 required\n"
	"      --cluster NAME      cluster name bound into every seal and signature (fd)\n"
	"      --encrypt-rollout   with --key-file: also accept plaintext and unsigned\n"
	"                          traffic, to move a live cluster to a key\n"
	"      --insecure          allow a non-loopback --listen/--advertise without a key\n"
	"\n"
	"Pub/sub options:\n"
	"      --max-payload SIZE  largest message payload (default 8MiB)\n"
	"      --sub-queue N       messages queued per subscriber (default 100000)\n"
	"      --sub-queue-bytes SIZE  bytes queued per subscriber (default 64MiB)\n"
	"      --overflow POLICY   full subscriber queue: drop-oldest (default), drop-new\n"
	"                          or disconnect\n"
	"      --chunk-size SIZE   larger payloads travel between nodes in chunks (64KiB)\n"
	"      --compress-min SIZE zstd-compress payloads from SIZE bytes between nodes\n"
	"                          (default 0: never)\n"
	"      --channels MODE     separate (default): high, normal and bulk each have\n"
	"                          their own queue and connection per peer; shared: one\n"
	"                          FIFO queue for all\n"
	"\n"
	"Announcing (for fd-discover mdns|gossip):\n"
	"      --announce WHAT     mdns, gossip, or both (mdns,gossip; repeatable)\n"
	"      --meta KEY=VALUE    announced with the node (TXT record, heartbeat meta)\n"
	"      --multicast-if IF   interface, by name or IPv4 address (default: route)\n"
	"      --multicast-addr GROUP  gossip group (default 233.252.1.32)\n"
	"      --multicast-port PORT   gossip UDP port (default 45892)\n"
	"      --multicast-ttl N   gossip IP TTL (default 1: the local link)\n"
	"      --gossip-interval T time between heartbeats (default 1s)\n"
	"\n"
	"Subcommands:\n"
	"  info                    print the node's identity and state as JSON\n"
	"  members                 print the members the node knows, one JSON line each\n"
	"  leave                   make the node leave the cluster gracefully and stop\n"
	"  keys list|install|use|remove  the key ring across the cluster\n"
	"  keygen [FILE]           write a new key (mode 0600; stdout without FILE)\n"
	"\n"
	"Client options:\n"
	"  -n, --node HOST:PORT    the node to ask (default $FD_NODE, else 127.0.0.1:4380)\n"
	"  -t, --timeout DURATION  how long to wait for an answer (default 5s)\n"
	"  -f, --format FMT        json (default) or table (members)\n" FD_CLIENT_HELP
	"\n"
	"  -h, --help              show this help\n"
	"  -V, --version           show the version\n";

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} subcommands[] = {
	{"info", cmd_info}, {"members", cmd_members}, {"leave", cmd_leave},
	{"keys", cmd_keys}, {"keygen", cmd_keygen},
};

static int valid_cluster(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '-' || *s == '_'))
			return 0;
	return 1;
}

/* The environment fills what --tls-* left unset, when there is a
 * certificate at all (FD_TLS_CA alone may be meant for the clients). */
static void tls_options(struct node_opts *o)
{
	const char *cert = getenv("FD_TLS_CERT"), *key = getenv("FD_TLS_KEY");
	const char *ca = getenv("FD_TLS_CA");

	if (!o->tls_cert && !o->tls_key && cert && *cert)
		o->tls_cert = cert;
	if (!o->tls_cert) {
		if (o->tls_key || o->tls_ca || o->tls_verify_client)
			fd_usage_die("--tls-key, --tls-ca and --tls-verify-client need "
				     "--tls-cert");
		return;
	}
	if (!o->tls_key && key && *key)
		o->tls_key = key;
	if (!o->tls_ca && ca && *ca)
		o->tls_ca = ca;
	if (o->tls_verify_client && !o->tls_ca)
		fd_usage_die("--tls-verify-client needs --tls-ca (the CA that signs "
			     "client certificates)");
}

int main(int argc, char **argv)
{
	enum {
		OPT_PID_FILE = 256,
		OPT_LOG_FILE,
		OPT_LOG_LEVEL,
		OPT_LOG_FORMAT,
		OPT_MAX_BODY,
		OPT_ADVERTISE,
		OPT_RETRY_JOIN,
		OPT_DISCOVER,
		OPT_READY_QUORUM,
		OPT_READY_EXPECT,
		OPT_MAX_DURATION,   /* faults */
		OPT_PS_MAX_PAYLOAD, /* pub/sub */
		OPT_PS_SUB_QUEUE,
		OPT_PS_SUB_QUEUE_BYTES,
		OPT_PS_OVERFLOW,
		OPT_PS_CHUNK,
		OPT_PS_COMPRESS_MIN,
		OPT_PS_CHANNELS,
		OPT_KEY_FILE, /* security */
		OPT_CLUSTER,
		OPT_ROLLOUT,
		OPT_INSECURE,
		OPT_TLS_CERT, /* security */
		OPT_TLS_KEY,
		OPT_TLS_CA,
		OPT_TLS_VERIFY_CLIENT,
		OPT_ACL_FILE,
		OPT_DEFAULT_SCOPE,
		OPT_AUDIT_LOG,
		OPT_MAX_CONNS,
		OPT_MAX_CLIENT_CONNS,
		OPT_ANNOUNCE, /* announce.h */
		OPT_META,
		OPT_MCAST_ADDR,
		OPT_MCAST_PORT,
		OPT_MCAST_TTL,
		OPT_MCAST_IF,
		OPT_GOSSIP_INTERVAL,
	};
	static const struct option opts[] = {
		{"name", required_argument, NULL, 'N'},
		{"listen", required_argument, NULL, 'l'},
		{"detach", no_argument, NULL, 'd'},
		{"profile", required_argument, NULL, 'p'},
		{"join", required_argument, NULL, 'j'},
		{"retry-join", no_argument, NULL, OPT_RETRY_JOIN},
		{"discover", required_argument, NULL, OPT_DISCOVER},
		{"advertise", required_argument, NULL, OPT_ADVERTISE},
		{"ready-quorum", no_argument, NULL, OPT_READY_QUORUM},
		{"ready-expect", required_argument, NULL, OPT_READY_EXPECT},
		{"pid-file", required_argument, NULL, OPT_PID_FILE},
		{"log-file", required_argument, NULL, OPT_LOG_FILE},
		{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
		{"log-format", required_argument, NULL, OPT_LOG_FORMAT},
		{"max-body", required_argument, NULL, OPT_MAX_BODY},
		{"max-duration", required_argument, NULL, OPT_MAX_DURATION},
		{"max-payload", required_argument, NULL, OPT_PS_MAX_PAYLOAD},
		{"sub-queue", required_argument, NULL, OPT_PS_SUB_QUEUE},
		{"sub-queue-bytes", required_argument, NULL, OPT_PS_SUB_QUEUE_BYTES},
		{"overflow", required_argument, NULL, OPT_PS_OVERFLOW},
		{"chunk-size", required_argument, NULL, OPT_PS_CHUNK},
		{"compress-min", required_argument, NULL, OPT_PS_COMPRESS_MIN},
		{"channels", required_argument, NULL, OPT_PS_CHANNELS},
		{"key-file", required_argument, NULL, OPT_KEY_FILE},
		{"cluster", required_argument, NULL, OPT_CLUSTER},
		{"encrypt-rollout", no_argument, NULL, OPT_ROLLOUT},
		{"insecure", no_argument, NULL, OPT_INSECURE},
		{"tls-cert", required_argument, NULL, OPT_TLS_CERT},
		{"tls-key", required_argument, NULL, OPT_TLS_KEY},
		{"tls-ca", required_argument, NULL, OPT_TLS_CA},
		{"tls-verify-client", no_argument, NULL, OPT_TLS_VERIFY_CLIENT},
		{"acl-file", required_argument, NULL, OPT_ACL_FILE},
		{"default-scope", required_argument, NULL, OPT_DEFAULT_SCOPE},
		{"audit-log", required_argument, NULL, OPT_AUDIT_LOG},
		{"max-conns", required_argument, NULL, OPT_MAX_CONNS},
		{"max-client-conns", required_argument, NULL, OPT_MAX_CLIENT_CONNS},
		{"announce", required_argument, NULL, OPT_ANNOUNCE},
		{"meta", required_argument, NULL, OPT_META},
		{"multicast-addr", required_argument, NULL, OPT_MCAST_ADDR},
		{"multicast-port", required_argument, NULL, OPT_MCAST_PORT},
		{"multicast-ttl", required_argument, NULL, OPT_MCAST_TTL},
		{"multicast-if", required_argument, NULL, OPT_MCAST_IF},
		{"gossip-interval", required_argument, NULL, OPT_GOSSIP_INTERVAL},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	struct node_opts o = {.listen = "127.0.0.1:4380",
			      .max_body = 1024 * 1024,
			      .fault_max_ms = 600000,
			      .max_conns = 1024,
			      .max_client_conns = 256,
			      .profile = "lan",
			      .cluster = "fd"};
	struct pubsub_opts ps;
	struct announce_opts an;
	char why[300];
	uint64_t size;
	long long v;
	char host[256];
	struct fd_err err;
	int c, port;

	fd_cli_init("fd-node", USAGE);
	pubsub_opts_default(&ps);
	o.pubsub = &ps;
	announce_opts_default(&an);
	o.announce = &an;
	if (argc > 1 && argv[1][0] != '-') {
		for (size_t i = 0;
		     i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
			if (strcmp(argv[1], subcommands[i].name) == 0)
				return subcommands[i].fn(argc - 1, argv + 1);
		fd_usage_die("unknown subcommand '%s'", argv[1]);
	}
	while ((c = getopt_long(argc, argv, ":N:l:dp:j:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'N': o.name = optarg; break;
		case 'l': o.listen = optarg; break;
		case 'd': o.detach = 1; break;
		case 'p':
			if (strcmp(optarg, "local") && strcmp(optarg, "lan") &&
			    strcmp(optarg, "wan"))
				fd_usage_die("invalid --profile '%s' (local, lan, wan)",
					     optarg);
			o.profile = optarg;
			break;
		case 'j':
			if (fd_parse_hostport(optarg, host, sizeof(host),
					      FD_DEFAULT_PORT, &port) < 0 ||
			    port == 0)
				fd_usage_die("invalid --join '%s' (expected HOST:PORT)",
					     optarg);
			if (o.njoin == NODE_MAX_JOIN)
				fd_usage_die("too many --join addresses (at most %d)",
					     NODE_MAX_JOIN);
			o.join[o.njoin++] = optarg;
			break;
		case OPT_RETRY_JOIN: o.retry_join = 1; break;
		case OPT_DISCOVER: /* checked once --key-file is known */
			if (o.ndiscover == NODE_MAX_DISCOVER)
				fd_usage_die("too many --discover specs (at most %d)",
					     NODE_MAX_DISCOVER);
			o.discover[o.ndiscover++] = optarg;
			break;
		case OPT_ADVERTISE: o.advertise = optarg; break;
		case OPT_READY_QUORUM: o.ready_quorum = 1; break;
		case OPT_READY_EXPECT:
			if (fd_parse_int(optarg, 1, 65536, &v) < 0)
				fd_usage_die("invalid --ready-expect '%s' (1 to 65536)",
					     optarg);
			o.ready_expect = (int)v;
			break;
		case OPT_PID_FILE: o.pid_file = optarg; break;
		case OPT_LOG_FILE: o.log_file = optarg; break;
		case OPT_LOG_LEVEL:
			if (fd_log_parse_level(optarg, &fd_log_level) < 0)
				fd_usage_die("invalid --log-level '%s' (debug, info, warn, error, off)",
					     optarg);
			break;
		case OPT_LOG_FORMAT:
			if (fd_log_parse_format(optarg, &fd_log_format) < 0)
				fd_usage_die("invalid --log-format '%s' (text, json)",
					     optarg);
			break;
		case OPT_MAX_BODY:
			if (fd_parse_size(optarg, &size) < 0 || size == 0 ||
			    size > (1ULL << 30))
				fd_usage_die("invalid --max-body '%s' (1 byte to 1GiB)",
					     optarg);
			o.max_body = (size_t)size;
			break;
		case OPT_MAX_DURATION:
			if (fd_parse_duration(optarg, &o.fault_max_ms) < 0 ||
			    o.fault_max_ms < 1000 || o.fault_max_ms > 7 * 86400000LL)
				fd_usage_die("invalid --max-duration '%s' (1s to 168h)",
					     optarg);
			break;
		case OPT_PS_MAX_PAYLOAD:
			if (fd_parse_size(optarg, &size) < 0 || size == 0 ||
			    size > (1ULL << 30))
				fd_usage_die("invalid --max-payload '%s' (1 byte to 1GiB)",
					     optarg);
			ps.max_payload = (size_t)size;
			break;
		case OPT_PS_SUB_QUEUE:
			if (fd_parse_int(optarg, 1, 10000000, &v) < 0)
				fd_usage_die("invalid --sub-queue '%s' (1 to 10000000)",
					     optarg);
			ps.sub_queue = (size_t)v;
			break;
		case OPT_PS_SUB_QUEUE_BYTES:
			if (fd_parse_size(optarg, &size) < 0 || size == 0 ||
			    size > (1ULL << 32))
				fd_usage_die("invalid --sub-queue-bytes '%s' (1 byte to 4GiB)",
					     optarg);
			ps.sub_queue_bytes = (size_t)size;
			break;
		case OPT_PS_OVERFLOW:
			ps.overflow = pubsub_parse_overflow(optarg);
			if (ps.overflow < 0)
				fd_usage_die("invalid --overflow '%s' (drop-oldest, drop-new, disconnect)",
					     optarg);
			break;
		case OPT_PS_CHUNK:
			if (fd_parse_size(optarg, &size) < 0 || size < 1024 ||
			    size > (16ULL << 20))
				fd_usage_die("invalid --chunk-size '%s' (1KiB to 16MiB)",
					     optarg);
			ps.chunk = (size_t)size;
			break;
		case OPT_PS_COMPRESS_MIN:
			if (fd_parse_size(optarg, &size) < 0 || size > (1ULL << 30))
				fd_usage_die("invalid --compress-min '%s'", optarg);
			ps.compress_min = (size_t)size;
			break;
		case OPT_PS_CHANNELS:
			if (strcmp(optarg, "separate") && strcmp(optarg, "shared"))
				fd_usage_die("invalid --channels '%s' (separate, shared)",
					     optarg);
			ps.shared_channel = strcmp(optarg, "shared") == 0;
			break;
		case OPT_KEY_FILE:
			if (!*optarg)
				fd_usage_die("invalid --key-file ''");
			o.key_file = optarg;
			break;
		case OPT_CLUSTER:
			if (!valid_cluster(optarg))
				fd_usage_die("invalid --cluster '%s' (1 to 64 letters, "
					     "digits, '.', '-', '_')",
					     optarg);
			o.cluster = optarg;
			break;
		case OPT_ROLLOUT: o.encrypt_rollout = 1; break;
		case OPT_INSECURE: o.insecure = 1; break;
		case OPT_TLS_CERT: o.tls_cert = optarg; break;
		case OPT_TLS_KEY: o.tls_key = optarg; break;
		case OPT_TLS_CA: o.tls_ca = optarg; break;
		case OPT_TLS_VERIFY_CLIENT: o.tls_verify_client = 1; break;
		case OPT_ACL_FILE: o.acl_file = optarg; break;
		case OPT_DEFAULT_SCOPE: o.default_scope = optarg; break;
		case OPT_AUDIT_LOG: o.audit_log = optarg; break;
		case OPT_MAX_CONNS:
			if (fd_parse_int(optarg, 16, 1000000, &v) < 0)
				fd_usage_die("invalid --max-conns '%s' (16 to 1000000)",
					     optarg);
			o.max_conns = (unsigned)v;
			break;
		case OPT_MAX_CLIENT_CONNS:
			if (fd_parse_int(optarg, 0, 1000000, &v) < 0)
				fd_usage_die("invalid --max-client-conns '%s' (0 to 1000000)",
					     optarg);
			o.max_client_conns = (unsigned)v;
			break;
		case OPT_ANNOUNCE:
			if (announce_parse_what(&an, optarg, why, sizeof(why)) < 0)
				fd_usage_die("%s", why);
			break;
		case OPT_META:
			if (announce_parse_meta(&an, optarg, why, sizeof(why)) < 0)
				fd_usage_die("%s", why);
			break;
		case OPT_MCAST_ADDR:
			if (fd_mcast_parse_group(optarg, &an.mcast.group, &err) < 0)
				fd_usage_die("invalid --multicast-addr: %s", err.msg);
			break;
		case OPT_MCAST_PORT:
			if (fd_parse_int(optarg, 1, 65535, &v) < 0)
				fd_usage_die("invalid --multicast-port '%s' (1 to 65535)",
					     optarg);
			an.mcast.port = (int)v;
			break;
		case OPT_MCAST_TTL:
			if (fd_parse_int(optarg, 1, 255, &v) < 0)
				fd_usage_die("invalid --multicast-ttl '%s' (1 to 255)",
					     optarg);
			an.mcast.ttl = (int)v;
			break;
		case OPT_MCAST_IF:
			if (fd_mcast_parse_if(optarg, &an.mcast, &err) < 0)
				fd_usage_die("invalid --multicast-if: %s", err.msg);
			break;
		case OPT_GOSSIP_INTERVAL:
			if (fd_parse_duration(optarg, &an.gossip_interval_ms) < 0 ||
			    an.gossip_interval_ms < 100 ||
			    an.gossip_interval_ms > 3600000)
				fd_usage_die("invalid --gossip-interval '%s' (100ms to 1h)",
					     optarg);
			break;
		case 'h': fd_help_exit(help);
		case 'V': fd_version_exit();
		default: fd_usage_getopt(c, argv);
		}
	}
	if (optind < argc)
		fd_usage_die("unexpected argument '%s'", argv[optind]);
	if (!o.key_file && getenv("FD_KEY_FILE") && *getenv("FD_KEY_FILE"))
		o.key_file = getenv("FD_KEY_FILE");
	/* a gossip source without key_file= takes the node's key (announce.c) */
	if (o.key_file)
		fd_dsource_gossip_key_expected();
	for (int i = 0; i < o.ndiscover; i++)
		if (fd_dsource_check(o.discover[i], &err) < 0)
			fd_usage_die("invalid --discover '%s': %s",
				     o.discover[i], err.msg);
	tls_options(&o);
	return node_main(&o);
}
