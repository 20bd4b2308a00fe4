#include "cli.h"
#include "client.h"
#include "jsonl.h"
#include "registry.h"

#include <getopt.h>
#include <string.h>
#include <unistd.h>

#define U_REGISTER                                                                      \
	"fd-registry register [-n node] [-t timeout] [-q] [--replace] [--persistent]\n" \
	"                   [--on-conflict yield|keep] (NAME [VALUE|-] | --batch [--strict])"
#define U_LOOKUP                                                      \
	"fd-registry lookup [-n node] [-t timeout] [-f json|table]\n" \
	"                   (NAME [-w wait] | --batch [--strict])"
#define U_UNREGISTER \
	"fd-registry unregister [-n node] [-t timeout] [-q] [--force] NAME"
#define U_LIST \
	"fd-registry list [-n node] [-t timeout] [-p prefix] [-f json|table]"
#define U_WATCH \
	"fd-registry watch [-n node] [-p prefix] [-c count] [-t timeout]"
#define USAGE                                                    \
	U_REGISTER "\n       " U_LOOKUP "\n       " U_UNREGISTER \
		   "\n       " U_LIST "\n       " U_WATCH

static const char help[] =
	"\n"
	"Registers, looks up, unregisters, lists and watches names in the cluster's\n"
	"registry, through one node. Entries and events are printed as JSON lines.\n"
	"\n"
	"Subcommands:\n"
	"  register NAME [VALUE|-]  register NAME if it is free (exit 4 when taken);\n"
	"                           VALUE is JSON, else a string; - reads it from stdin\n"
	"  register --batch         register {\"name\":...,\"value\":...} lines from stdin\n"
	"  lookup NAME              print NAME's entry (exit 3 when absent)\n"
	"  lookup --batch           look up the names on stdin (plain or {\"name\":...})\n"
	"  unregister NAME          remove NAME (only its owner's node may, or --force)\n"
	"  list                     print every entry, sorted by name\n"
	"  watch                    print registry events as they happen\n"
	"\n"
	"Options:\n"
	"  -n, --node HOST:PORT     the node to ask (default $FD_NODE, else 127.0.0.1:4380)\n"
	"  -t, --timeout DURATION   longest wait for an answer (default 30s);\n"
	"                           watch: how long to watch (default: until stopped)\n"
	"  -q, --quiet              register, unregister: print nothing on success\n"
	"  -f, --format json|table  lookup, list: JSON lines (default) or a table\n"
	"  -b, --batch              register, lookup: read records from stdin\n"
	"      --strict             --batch: stop at the first bad input line (exit 7)\n"
	"      --replace            register: replace the entry of a taken name\n"
	"      --persistent         register: keep the entry when its owner is gone\n"
	"      --on-conflict yield|keep\n"
	"                           register: after a partition heals, drop (yield) or\n"
	"                           keep a losing entry as a visible loser\n"
	"  -w, --wait DURATION      lookup: wait this long for NAME to appear (exit 5)\n"
	"      --force              unregister: even when another node owns NAME\n"
	"  -p, --prefix PREFIX      list, watch: only names starting with PREFIX\n"
	"  -c, --count N            watch: stop after N events\n" FD_CLIENT_HELP
	"  -h, --help               show this help\n"
	"  -V, --version            show the version\n";

enum {
	OPT_REPLACE = 256,
	OPT_PERSISTENT,
	OPT_ON_CONFLICT,
	OPT_FORCE,
	OPT_STRICT,
};

/* The options each subcommand takes, besides -n, -t, -h, -V. */
static const struct cmd_def {
	const char *name;
	enum reg_cmd cmd;
	const char *opts; /* option codes as characters; see opt_char() */
	const char *usage;
} cmds[] = {
	{"register", REG_REGISTER, "qbSRPC", U_REGISTER},
	{"lookup", REG_LOOKUP, "fbSw", U_LOOKUP},
	{"unregister", REG_UNREGISTER, "qF", U_UNREGISTER},
	{"list", REG_LIST, "fp", U_LIST},
	{"watch", REG_WATCH, "pc", U_WATCH},
};

static char opt_char(int c)
{
	switch (c) {
	case OPT_REPLACE: return 'R';
	case OPT_PERSISTENT: return 'P';
	case OPT_ON_CONFLICT: return 'C';
	case OPT_FORCE: return 'F';
	case OPT_STRICT: return 'S';
	default: return (char)c;
	}
}

static const struct option opts[] = {
	{"node", required_argument, NULL, 'n'},
	{"timeout", required_argument, NULL, 't'},
	{"quiet", no_argument, NULL, 'q'},
	{"format", required_argument, NULL, 'f'},
	{"batch", no_argument, NULL, 'b'},
	{"strict", no_argument, NULL, OPT_STRICT},
	{"replace", no_argument, NULL, OPT_REPLACE},
	{"persistent", no_argument, NULL, OPT_PERSISTENT},
	{"on-conflict", required_argument, NULL, OPT_ON_CONFLICT},
	{"wait", required_argument, NULL, 'w'},
	{"force", no_argument, NULL, OPT_FORCE},
	{"prefix", required_argument, NULL, 'p'},
	{"count", required_argument, NULL, 'c'},
	FD_CLIENT_OPTIONS,
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{0},
};

/* Dies unless every option given (seen, by opt_char) applies to cmd. */
static void check_opts(const char *seen, size_t nseen, const char *cmd,
		       const char *allowed)
{
	for (size_t i = 0; i < nseen; i++) {
		if (strchr("nt", seen[i]) || strchr(allowed, seen[i]))
			continue;
		for (size_t k = 0; opts[k].name; k++)
			if (opt_char(opts[k].val) == seen[i])
				fd_usage_die("option '--%s' does not apply to '%s'",
					     opts[k].name, cmd);
	}
}

static void check_name_arg(const char *name)
{
	struct fd_err err;

	if (reg_name_check(name, strlen(name), 0, &err) < 0)
		fd_usage_die("invalid name: %s", err.msg);
}

int main(int argc, char **argv)
{
	struct reg r = {.timeout_ms = 30000, .timeout_arg = "30s", .wait_ms = -1};
	char seen[64];
	size_t nseen = 0, i;
	const char *cmd;
	const struct cmd_def *def = NULL;
	struct fd_err err;
	int c, rc, timeout_given = 0;

	fd_cli_init("fd-registry", USAGE);
	while ((c = getopt_long(argc, argv, ":n:t:qf:bw:p:c:hV", opts, NULL)) != -1) {
		if (nseen < sizeof(seen) && c != '?' && c != ':' && c < FD_OPT_TLS_CA)
			seen[nseen++] = opt_char(c);
		switch (c) {
		case 'n': r.node = optarg; break;
		case 't':
			if (fd_parse_duration(optarg, &r.timeout_ms) < 0 ||
			    r.timeout_ms == 0)
				fd_usage_die("invalid --timeout '%s'", optarg);
			r.timeout_arg = optarg;
			timeout_given = 1;
			break;
		case 'q': r.quiet = 1; break;
		case 'f':
			if (strcmp(optarg, "json") && strcmp(optarg, "table"))
				fd_usage_die("invalid --format '%s' (json, table)",
					     optarg);
			r.table = strcmp(optarg, "table") == 0;
			break;
		case 'b': r.batch = 1; break;
		case OPT_STRICT: r.strict = 1; break;
		case OPT_REPLACE: r.replace = 1; break;
		case OPT_PERSISTENT: r.persistent = 1; break;
		case OPT_ON_CONFLICT:
			if (strcmp(optarg, "yield") && strcmp(optarg, "keep"))
				fd_usage_die("invalid --on-conflict '%s' (yield, keep)",
					     optarg);
			r.on_conflict = optarg;
			break;
		case 'w':
			if (fd_parse_duration(optarg, &r.wait_ms) < 0)
				fd_usage_die("invalid --wait '%s'", optarg);
			r.wait_arg = optarg;
			break;
		case OPT_FORCE: r.force = 1; break;
		case 'p':
			if (reg_name_check(optarg, strlen(optarg), 1, &err) < 0)
				fd_usage_die("invalid --prefix: %s", err.msg);
			r.prefix = optarg;
			break;
		case 'c':
			if (fd_parse_int(optarg, 1, 1000000000, &r.count) < 0)
				fd_usage_die("invalid --count '%s' (1 to 1000000000)",
					     optarg);
			break;
		case 'h': fd_help_exit(help);
		case 'V': fd_version_exit();
		default:
			if (!fd_client_opt(c, optarg))
				fd_usage_getopt(c, argv);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0)
		fd_usage_die("no subcommand given");
	cmd = argv[0];
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(cmd, cmds[i].name) == 0)
			def = &cmds[i];
	if (!def) {
		fd_usage_die("unknown subcommand '%s'", cmd);
	} else {
		r.cmd = def->cmd;
		/* From here on, complaints show this subcommand's usage. */
		fd_usage = def->usage;
		check_opts(seen, nseen, cmd, def->opts);
	}
	argc--;
	argv++;
	if (r.cmd == REG_WATCH && !timeout_given)
		r.timeout_ms = 0;
	if (r.batch) {
		if (argc > 0)
			fd_usage_die("unexpected argument '%s' (--batch reads stdin)",
				     argv[0]);
		if (r.wait_ms >= 0)
			fd_usage_die("--wait does not apply to --batch");
	} else {
		if (r.strict)
			fd_usage_die("--strict applies to --batch only");
		if (r.cmd == REG_LIST || r.cmd == REG_WATCH) {
			if (argc > 0)
				fd_usage_die("unexpected argument '%s'", argv[0]);
		} else if (argc == 0) {
			fd_usage_die("no NAME given");
		} else {
			check_name_arg(argv[0]);
			if (argc > (r.cmd == REG_REGISTER ? 2 : 1))
				fd_usage_die("unexpected argument '%s'",
					     argv[r.cmd == REG_REGISTER ? 2 : 1]);
		}
	}
	if (fd_client_init(&r.client, fd_node_addr(r.node), r.timeout_ms, &err) < 0) {
		fd_client_release(&r.client);
		fd_usage_die("%s", err.msg);
	}
	switch (r.cmd) {
	case REG_REGISTER:
		rc = r.batch ? reg_register_batch(&r)
			     : reg_register(&r, argv[0], argc > 1 ? argv[1] : NULL);
		break;
	case REG_LOOKUP:
		rc = r.batch ? reg_lookup_batch(&r) : reg_lookup(&r, argv[0]);
		break;
	case REG_UNREGISTER: rc = reg_unregister(&r, argv[0]); break;
	case REG_LIST: rc = reg_list(&r); break;
	default: rc = reg_watch(&r); break;
	}
	fd_client_release(&r.client);
	return fd_finish_stdout(rc);
}
