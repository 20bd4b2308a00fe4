#include "cli.h"
#include "strategy.h"
#include "jsonl.h"

#include <getopt.h>
#include <string.h>

#define USAGE                                                                      \
	"fd-discover static [-w] [--format json|table] addr...\n"                  \
	"       fd-discover file [-w] [-i interval] [--down-after n] [--strict]\n" \
	"                   [--format json|table] path"

static const char help[] =
	"\n"
	"Finds peers and prints them as JSON lines: {\"type\":\"peer\",\"event\":\"up\",...}.\n"
	"\n"
	"Strategies:\n"
	"  static ADDR...          the addresses given (HOST[:PORT], default port 4380)\n"
	"  file PATH               one address per line; '#' starts a comment\n"
	"\n"
	"Options:\n"
	"  -w, --watch             keep going and print up/down changes until SIGINT/SIGTERM\n"
	"  -i, --interval DURATION re-read the source this often with --watch (default 1s)\n"
	"      --down-after N      a peer is down after N reads without it (default 1)\n"
	"      --strict            stop at the first bad line (exit 7)\n"
	"      --format FORMAT     json (default) or table\n"
	"  -h, --help              show this help\n"
	"  -V, --version           show the version\n";

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv, const struct dopts *o);
} strategies[] = {
	{"static", strategy_static},
	{"file", strategy_file},
};
#define KNOWN "static, file"

int main(int argc, char **argv)
{
	enum { OPT_DOWN_AFTER = 256, OPT_STRICT, OPT_FORMAT };
	static const struct option opts[] = {
		{"watch", no_argument, NULL, 'w'},
		{"interval", required_argument, NULL, 'i'},
		{"down-after", required_argument, NULL, OPT_DOWN_AFTER},
		{"strict", no_argument, NULL, OPT_STRICT},
		{"format", required_argument, NULL, OPT_FORMAT},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	struct dopts o = {.interval_ms = 1000, .down_after = 1};
	long long n;
	int c;

	fd_cli_init("fd-discover", USAGE);
	while ((c = getopt_long(argc, argv, ":wi:hV", opts, NULL)) != -1) {
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
