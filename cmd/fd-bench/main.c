#include "scenario.h"
#include "run.h"
#include "cli.h"
#include "jsonl.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define USAGE                                                                               \
	"fd-bench [-N nodes,...] [-r runs] [-p profile] [--duration t] [--timeout t]\n"     \
	"                [--entries n] [--baseline file [--threshold pct]]\n"               \
	"                [-f json|table|github] [--fd-node path] [--encrypt] scenario...\n" \
	"       fd-bench list"

static const char help[] =
	"\n"
	"Runs benchmark scenarios against local fd-node processes on 127.0.0.1 and\n"
	"prints one result line per figure: median, min and max over the runs.\n"
	"\n"
	"  -N, --nodes LIST        cluster sizes, e.g. 8,32,64 (default per scenario)\n"
	"  -r, --runs N            runs per figure (default 5)\n"
	"  -p, --profile NAME      node profile: local, lan or wan (default local)\n"
	"      --duration T        length of timed scenarios (default 60s)\n"
	"      --timeout T         longest wait for a condition in one run (default 60s)\n"
	"      --entries N         names per run of the registry scenarios (default per scenario)\n"
	"      --baseline FILE     compare with an earlier result file; exit 6 on a regression\n"
	"      --threshold PCT     change beyond the measured spread that counts (default 10)\n"
	"  -f, --format FMT        json (default), table, or github (benchmark-action JSON)\n"
	"      --fd-node PATH      the fd-node binary (default: beside fd-bench, else PATH)\n"
	"      --encrypt           the nodes share a generated cluster key (--key-file):\n"
	"                          sealed UDP, signed node-to-node HTTP\n"
	"  -h, --help, -V, --version\n"
	"\n"
	"Scenarios: fd-bench list\n";

static void default_fd_node(char *buf, size_t len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	snprintf(buf, len, "fd-node");
	if (n <= 0)
		return;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (!slash)
		return;
	*slash = '\0';
	if ((size_t)snprintf(buf, len, "%s/fd-node", self) < len &&
	    access(buf, X_OK) == 0)
		return;
	snprintf(buf, len, "fd-node");
}

static int list(void)
{
	const struct scenario *s;

	for (int i = 0; (s = bench_scenario(i)); i++) {
		struct json_object *o = fd_json_record("scenario");

		json_object_object_add(o, "name", json_object_new_string(s->name));
		json_object_object_add(o, "unit",
				       json_object_new_string(s->figures[0].unit));
		json_object_object_add(o, "description",
				       json_object_new_string(s->description));
		fd_emit(o);
		json_object_put(o);
	}
	return fd_finish_stdout(FD_EXIT_OK);
}

int main(int argc, char **argv)
{
	enum {
		OPT_DURATION = 256,
		OPT_TIMEOUT,
		OPT_BASELINE,
		OPT_THRESHOLD,
		OPT_FD_NODE,
		OPT_ENTRIES,
		OPT_ENCRYPT,
	};
	static const struct option opts[] = {
		{"nodes", required_argument, NULL, 'N'},
		{"runs", required_argument, NULL, 'r'},
		{"profile", required_argument, NULL, 'p'},
		{"duration", required_argument, NULL, OPT_DURATION},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"baseline", required_argument, NULL, OPT_BASELINE},
		{"threshold", required_argument, NULL, OPT_THRESHOLD},
		{"format", required_argument, NULL, 'f'},
		{"fd-node", required_argument, NULL, OPT_FD_NODE},
		{"entries", required_argument, NULL, OPT_ENTRIES},
		{"encrypt", no_argument, NULL, OPT_ENCRYPT},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	struct bench_run run = {.runs = 5, .threshold = 10, .format = "json"};
	char fd_node[PATH_MAX];
	long long v;
	int c;

	fd_cli_init("fd-bench", USAGE);
	run.opts.profile = "local";
	run.opts.duration_ms = 60000;
	run.opts.timeout_ms = 60000;
	run.opts.progress = isatty(STDERR_FILENO);
	default_fd_node(fd_node, sizeof(fd_node));
	run.opts.fd_node = fd_node;
	while ((c = getopt_long(argc, argv, ":N:r:p:f:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'N':
			if (bench_parse_nodes(&run, optarg) < 0)
				fd_usage_die("invalid --nodes '%s' (e.g. 8,32,64; 1 to 1000 each)",
					     optarg);
			break;
		case 'r':
			if (fd_parse_int(optarg, 1, 1000, &v) < 0)
				fd_usage_die("invalid --runs '%s' (1 to 1000)",
					     optarg);
			run.runs = (int)v;
			break;
		case 'p':
			if (strcmp(optarg, "local") && strcmp(optarg, "lan") &&
			    strcmp(optarg, "wan"))
				fd_usage_die("invalid --profile '%s' (local, lan, wan)",
					     optarg);
			run.opts.profile = optarg;
			break;
		case OPT_DURATION:
			if (fd_parse_duration(optarg, &run.opts.duration_ms) < 0)
				fd_usage_die("invalid --duration '%s'", optarg);
			break;
		case OPT_TIMEOUT:
			if (fd_parse_duration(optarg, &run.opts.timeout_ms) < 0 ||
			    run.opts.timeout_ms == 0)
				fd_usage_die("invalid --timeout '%s'", optarg);
			break;
		case OPT_BASELINE: run.baseline_path = optarg; break;
		case OPT_THRESHOLD:
			if (fd_parse_int(optarg, 0, 1000, &v) < 0)
				fd_usage_die("invalid --threshold '%s' (0 to 1000 percent)",
					     optarg);
			run.threshold = (double)v;
			break;
		case 'f':
			if (strcmp(optarg, "json") && strcmp(optarg, "table") &&
			    strcmp(optarg, "github"))
				fd_usage_die("invalid --format '%s' (json, table, github)",
					     optarg);
			run.format = optarg;
			break;
		case OPT_FD_NODE: run.opts.fd_node = optarg; break;
		case OPT_ENCRYPT: run.opts.encrypt = 1; break;
		case OPT_ENTRIES:
			if (fd_parse_int(optarg, 1, 1000000, &v) < 0)
				fd_usage_die("invalid --entries '%s' (1 to 1000000)",
					     optarg);
			run.opts.entries = (long)v;
			break;
		case 'h': fd_help_exit(help);
		case 'V': fd_version_exit();
		default: fd_usage_getopt(c, argv);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 1 && strcmp(argv[0], "list") == 0)
		return list();
	if (argc == 0)
		fd_usage_die("no scenario given (fd-bench list shows them)");
	return fd_finish_stdout(bench_run_all(&run, argc, argv));
}
