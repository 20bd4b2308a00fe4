/* fd-partition: fault injection over a set of nodes through their
 * /v1/faults API. All or nothing: every argument and every node is checked
 * before the first rule is installed, and an install that fails midway is
 * undone on the nodes already changed.
 *
 * This file parses the options and calls the subcommand; each subcommand
 * lives in its own file (partition.h). */
#include "check.h"
#include "cli.h"
#include "client.h"
#include "jsonl.h"
#include "partition.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USAGE                                                                        \
	"fd-partition [-n node[@netns]]... [-d duration] [-t timeout] [--tag tag]\n" \
	"                    [--backend gate|netns] [--dry-run] SUBCOMMAND [ARG...]"

static const char help[] =
	"\n"
	"Breaks a cluster on purpose, through each node's fault rules (or nftables\n"
	"in the nodes' network namespaces): the nodes are the -n addresses, else the\n"
	"lines on stdin (host:port, or JSON lines with an \"addr\", such as\n"
	"`fd-node members` prints). All or nothing; every rule expires.\n"
	"\n"
	"Subcommands:\n"
	"  split GROUP GROUP...    cut the nodes into sides; a GROUP is NODE[,NODE...]\n"
	"                          (a name or an address); unlisted nodes form a side\n"
	"  isolate NODE            cut NODE off from every other node\n"
	"  halves [--random [--seed S]]\n"
	"                          two halves, in order or shuffled from the seed\n"
	"  bridge [NODE]           two halves that only NODE (the bridge) joins\n"
	"  ring [--random [--seed S]]\n"
	"                          each node hears a different majority\n"
	"  grudge FILE|-           a JSON grudge {\"n1\": [\"n2\"]}: n1 drops n2's traffic\n"
	"  slow --delay D [--jitter J] [NODES]\n"
	"                          delay every message to or from NODES (default all)\n"
	"  flaky --loss P [NODES]  lose every message to or from NODES with P (20%)\n"
	"  chaos [--seed S] [--interval I] [--nemesis LIST] [--kill CMD] [--restart CMD]\n"
	"                          one fault after another, drawn from the seed, for\n"
	"                          --duration; LIST of split isolate bridge ring halves\n"
	"                          slow flaky kill; {name} {addr} in CMD\n"
	"  heal                    remove the rules fd-partition installed\n"
	"  status                  print each node's fault rules, one JSON line per node\n"
	"  check [FILE...|-]       check the history of a run (see check --help)\n"
	"\n"
	"Options (before or after the subcommand):\n"
	"  -n, --node HOST:PORT[@NETNS]\n"
	"                          a node of the cluster (repeatable), in namespace NETNS\n"
	"  -d, --duration T        the rules expire after T (default: the node's\n"
	"                          --max-duration, 10m unless set); chaos: run length\n"
	"      --dry-run           check everything and print what would be done\n"
	"      --tag TAG           the rules' tag (default fd-partition)\n"
	"      --backend B         gate (the nodes' fault gates, default) or netns\n"
	"                          (nftables in the nodes' namespaces; root)\n"
	"  -t, --timeout T         longest wait for each node (default 5s)\n" FD_CLIENT_HELP
	"  -h, --help              show this help\n"
	"  -V, --version           show the version\n";

struct popts popt = {.timeout_ms = 5000, .tag = "fd-partition"};

static const struct subcommand {
	const char *name;
	int (*run)(int argc, char **argv);
} subcommands[] = {
	/* clang-format off: one subcommand a line */
	{"split", cmd_split},
	{"isolate", cmd_split},
	{"halves", cmd_split},
	{"bridge", cmd_bridge},
	{"ring", cmd_ring},
	{"grudge", cmd_grudge},
	{"slow", cmd_slow},
	{"flaky", cmd_slow},
	{"chaos", cmd_chaos},
	{"heal", cmd_heal},
	{"status", cmd_status},
	{"check", cmd_check}, /* check.c */
	/* clang-format on */
	{NULL, NULL},
};

enum { OPT_DRY_RUN = 256, OPT_TAG, OPT_BACKEND };

static const struct option common_opts[] = {
	{"node", required_argument, NULL, 'n'},
	{"duration", required_argument, NULL, 'd'},
	{"timeout", required_argument, NULL, 't'},
	{"dry-run", no_argument, NULL, OPT_DRY_RUN},
	{"tag", required_argument, NULL, OPT_TAG},
	{"backend", required_argument, NULL, OPT_BACKEND},
	FD_CLIENT_OPTIONS,
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{0},
};
#define COMMON_SHORT "n:d:t:hV"

/* Handles a common option; returns 0 when c is not one. */
static int common_opt(int c, const char *arg)
{
	switch (c) {
	case 'n':
		if (popt.nnodes == MAX_NODES)
			fd_usage_die("too many nodes (at most %d)", MAX_NODES);
		popt.nodes[popt.nnodes++ % MAX_NODES] = arg;
		return 1;
	case 'd':
		if (fd_parse_duration(arg, &popt.duration_ms) < 0 ||
		    popt.duration_ms == 0)
			fd_usage_die("invalid --duration '%s' (a positive duration)",
				     arg);
		return 1;
	case 't':
		if (fd_parse_duration(arg, &popt.timeout_ms) < 0 ||
		    popt.timeout_ms == 0)
			fd_usage_die("invalid --timeout '%s'", arg);
		return 1;
	case OPT_DRY_RUN: popt.dry_run = 1; return 1;
	case OPT_TAG: popt.tag = arg; return 1;
	case OPT_BACKEND:
		if (strcmp(arg, "gate") && strcmp(arg, "netns"))
			fd_usage_die("invalid --backend '%s' (gate or netns)", arg);
		popt.netns = strcmp(arg, "netns") == 0;
		return 1;
	case 'h': fd_help_exit(help);
	case 'V': fd_version_exit();
	}
	return fd_client_opt(c, arg); /* --tls-*, --token */
}

int part_getopt(int argc, char **argv, const char *shortopts,
		const struct option *extra, void (*on_opt)(int c, const char *arg))
{
	struct option all[64];
	char sopts[64];
	size_t n = 0;
	int c;

	for (const struct option *o = common_opts; o->name; o++)
		all[n++] = *o;
	for (const struct option *o = extra; o && o->name && n < 63; o++)
		all[n++] = *o;
	memset(&all[n], 0, sizeof(all[n]));
	snprintf(sopts, sizeof(sopts), ":" COMMON_SHORT "%s",
		 shortopts ? shortopts : "");
	optind = 1;
	while ((c = getopt_long(argc, argv, sopts, all, NULL)) != -1) {
		if (c == '?' || c == ':')
			fd_usage_getopt(c, argv);
		if (common_opt(c, optarg))
			continue;
		if (!on_opt)
			fd_usage_getopt('?', argv);
		else
			on_opt(c, optarg);
	}
	return optind;
}

int main(int argc, char **argv)
{
	const struct subcommand *s;
	int c, rc;

	fd_cli_init("fd-partition", USAGE);
	/* "+": options stop at the subcommand, which parses the rest */
	while ((c = getopt_long(argc, argv, "+:" COMMON_SHORT, common_opts, NULL)) !=
	       -1)
		if (!common_opt(c, optarg))
			fd_usage_getopt(c, argv);
	argc -= optind;
	argv += optind;
	if (argc == 0)
		fd_usage_die("no subcommand given");
	for (s = subcommands; s->name; s++)
		if (strcmp(s->name, argv[0]) == 0)
			break;
	if (!s->name)
		fd_usage_die("unknown subcommand '%s'", argv[0]);
	rc = s->run(argc, argv);
	targets_release();
	return fd_finish_stdout(rc);
}
