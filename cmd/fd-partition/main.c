/* fd-partition: fault injection over a set of nodes through their
 * /v1/faults API. All or nothing: every argument and every node is checked
 * before the first rule is installed, and an install that fails midway is
 * undone on the nodes already changed. */
#include "cli.h"
#include "client.h"
#include "clock.h"
#include "discover.h"
#include "jsonl.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define USAGE                                                                \
	"fd-partition [-n node]... [-d duration] [-t timeout] [--tag tag]\n" \
	"                    [--dry-run] split GROUP GROUP...|isolate NODE|heal|status"

#define MAX_NODES 64

static const char help[] =
	"\n"
	"Breaks a cluster on purpose, through each node's fault rules: the nodes\n"
	"are the -n addresses, else the lines on stdin (host:port, or JSON lines\n"
	"with an \"addr\", such as `fd-node members` prints).\n"
	"\n"
	"Subcommands:\n"
	"  split GROUP GROUP...    cut the nodes into sides; a GROUP is NODE[,NODE...]\n"
	"                          (a name or an address); unlisted nodes form a side\n"
	"  isolate NODE            cut NODE off from every other node\n"
	"  heal                    remove the rules fd-partition installed\n"
	"  status                  print each node's fault rules, one JSON line per node\n"
	"\n"
	"Options:\n"
	"  -n, --node HOST:PORT    a node of the cluster (repeatable)\n"
	"  -d, --duration T        the rules expire after T (default: the node's\n"
	"                          --max-duration, 10m unless set)\n"
	"      --dry-run           check everything and print what would be done\n"
	"      --tag TAG           the rules' tag (default fd-partition)\n"
	"  -t, --timeout T         longest wait for each node (default 5s)\n" FD_CLIENT_HELP
	"  -h, --help              show this help\n"
	"  -V, --version           show the version\n";

struct target {
	char addr[FD_PEER_ADDR_LEN];
	const char *scheme; /* "https://", "http://" as given, or "" */
	char name[256];
	int group;
	struct fd_client c;
	int installed;
};

static struct target targets[MAX_NODES];
static int ntargets;
static int64_t timeout_ms = 5000, duration_ms;
static const char *tag = "fd-partition";

static void add_target(const char *s, int lineno)
{
	char addr[FD_PEER_ADDR_LEN];
	const char *scheme = "";
	struct fd_err err;

	if (strncmp(s, "https://", 8) == 0 || strncmp(s, "http://", 7) == 0) {
		scheme = s[4] == 's' ? "https://" : "http://";
		s += strlen(scheme);
	}
	if (fd_peer_addr_norm(s, addr, sizeof(addr), &err) < 0) {
		if (lineno)
			fd_die(FD_EXIT_DATA, "line %d: %s", lineno, err.msg);
		fd_usage_die("%s", err.msg);
	}
	for (int i = 0; i < ntargets; i++)
		if (strcmp(targets[i].addr, addr) == 0)
			return;
	if (ntargets == MAX_NODES)
		fd_usage_die("too many nodes (at most %d)", MAX_NODES);
	targets[ntargets].scheme = scheme;
	memcpy(targets[ntargets++].addr, addr, sizeof(addr));
}

/* Nodes from stdin; any bad line stops before anything is changed. */
static void read_stdin(void)
{
	struct fd_jsonl_reader r;
	struct json_object *rec;
	struct fd_err err;
	int rc, bad = 0;

	fd_jsonl_reader_init(&r, STDIN_FILENO, 0);
	r.plain_ok = 1;
	while ((rc = fd_jsonl_read(&r, &rec, &err)) != FD_JSONL_EOF) {
		const char *addr;

		if (rc == FD_JSONL_IOERR)
			fd_die(FD_EXIT_RUNTIME, "unable to read stdin: %s",
			       strerror(errno));
		if (rc == FD_JSONL_BAD) {
			fd_warn("%s", err.msg);
			bad++;
			continue;
		}
		addr = json_object_is_type(rec, json_type_string)
			       ? json_object_get_string(rec)
			       : fd_json_get_str(rec, "addr");
		if (!addr) {
			fd_warn("line %lu: no \"addr\"", r.lineno);
			bad++;
		} else {
			add_target(addr, (int)r.lineno);
		}
		json_object_put(rec);
	}
	fd_jsonl_reader_release(&r);
	if (bad)
		fd_die(FD_EXIT_DATA, "%d bad input line%s: nothing changed",
		       bad, bad == 1 ? "" : "s");
}

/* Connects to every node and learns its name. */
static void resolve(void)
{
	for (int i = 0; i < ntargets; i++) {
		struct target *t = &targets[i];
		struct json_object *info = NULL;
		struct fd_err err;
		const char *name;
		long status;
		char url[FD_PEER_ADDR_LEN + 16];

		snprintf(url, sizeof(url), "%.8s%.*s", t->scheme,
			 (int)sizeof(t->addr) - 1, t->addr);
		if (fd_client_init(&t->c, url, timeout_ms, &err) < 0 ||
		    fd_client_call_ok(&t->c, "GET", "/v1/info", NULL, &status,
				      &info, &err) < 0)
			fd_die(FD_EXIT_RUNTIME, "%s: nothing changed", err.msg);
		name = fd_json_get_str(info, "name");
		if (!name)
			fd_die(FD_EXIT_RUNTIME,
			       "'%s' is not an fd node: nothing changed", t->addr);
		snprintf(t->name, sizeof(t->name), "%s", name ? name : "");
		json_object_put(info);
		for (int k = 0; k < i; k++)
			if (strcmp(targets[k].name, t->name) == 0)
				fd_usage_die("'%s' and '%s' are the same node '%s'",
					     targets[k].addr, t->addr, t->name);
	}
}

static int find_target(const char *s)
{
	char addr[FD_PEER_ADDR_LEN];

	for (int i = 0; i < ntargets; i++)
		if (strcmp(targets[i].name, s) == 0)
			return i;
	if (fd_peer_addr_norm(s, addr, sizeof(addr), NULL) == 0)
		for (int i = 0; i < ntargets; i++)
			if (strcmp(targets[i].addr, addr) == 0)
				return i;
	return -1;
}

/* Syntax of the groups, before any node is asked: no empty group, no empty
 * or repeated member. */
static void check_groups(int argc, char **argv)
{
	const char *tok[MAX_NODES];
	size_t len[MAX_NODES];
	int n = 0;

	for (int g = 0; g < argc; g++) {
		const char *p = argv[g];

		if (!*p)
			fd_usage_die("group %d is empty", g + 1);
		for (;;) {
			size_t l = strcspn(p, ",");

			if (l == 0)
				fd_usage_die("group %d ('%s') has an empty node name",
					     g + 1, argv[g]);
			for (int k = 0; k < n; k++)
				if (len[k] == l && strncmp(tok[k], p, l) == 0)
					fd_usage_die("node '%.*s' is named twice",
						     (int)l, p);
			if (n >= MAX_NODES)
				fd_usage_die("too many nodes (at most %d)", MAX_NODES);
			tok[n % MAX_NODES] = p;
			len[n % MAX_NODES] = l;
			n++;
			p += l;
			if (!*p)
				break;
			p++;
		}
	}
}

/* Assigns each target its group; unlisted ones form one more. Returns the
 * number of groups. */
static int assign_groups(int argc, char **argv)
{
	int rest = 0, ngroups = argc;

	for (int i = 0; i < ntargets; i++)
		targets[i].group = -1;
	for (int g = 0; g < argc; g++) {
		char *copy = strdup(argv[g]), *save = NULL;

		if (!copy)
			fd_die(FD_EXIT_RUNTIME, "out of memory");
		for (char *tok = strtok_r(copy, ",", &save); tok;
		     tok = strtok_r(NULL, ",", &save)) {
			int i = find_target(tok);

			if (i < 0)
				fd_usage_die("unknown node '%s' (not among the %d nodes given)",
					     tok, ntargets);
			if (targets[i < 0 ? 0 : i].group >= 0)
				fd_usage_die("node '%s' is named twice",
					     targets[i].name);
			targets[i < 0 ? 0 : i].group = g;
		}
		free(copy);
	}
	for (int i = 0; i < ntargets; i++)
		if (targets[i].group < 0) {
			targets[i].group = ngroups;
			rest = 1;
		}
	ngroups += rest;
	if (ngroups < 2)
		fd_usage_die("a split needs at least two sides");
	return ngroups;
}

static struct json_object *record(const char *action)
{
	struct json_object *o = fd_json_record("fault");
	char ts[FD_TS_LEN];

	json_object_object_add(o, "action", json_object_new_string(action));
	json_object_object_add(o, "tag", json_object_new_string(tag));
	json_object_object_add(
		o, "ts",
		json_object_new_string(fd_ts_format(fd_wall_us(), ts, sizeof(ts))));
	return o;
}

static void emit(struct json_object *o)
{
	if (fd_emit(o) < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to write stdout: %s",
		       strerror(errno));
	json_object_put(o);
}

/* Removes the tag's rules from target t. Returns 0, or -1 with err. */
static int remove_rules(struct target *t, struct fd_err *err)
{
	struct json_object *resp = NULL;
	char path[128];
	long status;
	int rc;

	snprintf(path, sizeof(path), "/v1/faults?tag=%s", tag);
	rc = fd_client_call_ok(&t->c, "DELETE", path, NULL, &status, &resp, err);
	json_object_put(resp);
	return rc;
}

static int split(int ngroups, int dry_run, const char *action)
{
	struct json_object *o = record(action), *groups = json_object_new_array();

	for (int g = 0; g < ngroups; g++) {
		struct json_object *arr = json_object_new_array();

		for (int i = 0; i < ntargets; i++)
			if (targets[i].group == g)
				json_object_array_add(
					arr, json_object_new_string(targets[i].name));
		json_object_array_add(groups, arr);
	}
	json_object_object_add(o, "groups", groups);
	if (duration_ms)
		json_object_object_add(o, "duration", fd_json_seconds(duration_ms));
	if (dry_run) {
		json_object_object_add(o, "dry_run", json_object_new_boolean(1));
		emit(o);
		return FD_EXIT_OK;
	}
	for (int i = 0; i < ntargets; i++) {
		struct json_object *body = json_object_new_object(),
				   *rules = json_object_new_array(), *resp = NULL;
		struct fd_err err;
		long status;
		int rc;

		json_object_object_add(body, "tag", json_object_new_string(tag));
		for (int k = 0; k < ntargets; k++) {
			struct json_object *r;

			if (targets[k].group == targets[i].group)
				continue;
			r = json_object_new_object();
			json_object_object_add(
				r, "peer", json_object_new_string(targets[k].name));
			json_object_object_add(r, "direction",
					       json_object_new_string("both"));
			json_object_object_add(r, "action",
					       json_object_new_string("drop"));
			if (duration_ms)
				json_object_object_add(r, "duration",
						       fd_json_seconds(duration_ms));
			json_object_array_add(rules, r);
		}
		json_object_object_add(body, "rules", rules);
		rc = fd_client_call_ok(&targets[i].c, "PUT", "/v1/faults", body,
				       &status, &resp, &err);
		json_object_put(body);
		json_object_put(resp);
		if (rc < 0) {
			fd_warn("unable to install the rules on '%s' (%s): %s",
				targets[i].name, targets[i].addr, err.msg);
			for (int k = 0; k <= i; k++)
				if (remove_rules(&targets[k], &err) < 0)
					fd_warn("unable to undo the rules on '%s': %s (they expire by themselves)",
						targets[k].name, err.msg);
			json_object_put(o);
			fd_die(status == 400 ? FD_EXIT_USAGE : FD_EXIT_RUNTIME,
			       "split undone on every node");
		}
	}
	emit(o);
	return FD_EXIT_OK;
}

static int heal(int dry_run)
{
	struct json_object *o = record("heal"), *nodes = json_object_new_array();
	int rc = FD_EXIT_OK;

	for (int i = 0; i < ntargets; i++) {
		struct fd_err err;

		json_object_array_add(nodes, json_object_new_string(targets[i].name));
		if (!dry_run && remove_rules(&targets[i], &err) < 0) {
			fd_warn("unable to heal '%s': %s", targets[i].name, err.msg);
			rc = FD_EXIT_RUNTIME;
		}
	}
	json_object_object_add(o, "nodes", nodes);
	if (dry_run)
		json_object_object_add(o, "dry_run", json_object_new_boolean(1));
	emit(o);
	return rc;
}

static int status(void)
{
	for (int i = 0; i < ntargets; i++) {
		struct json_object *o = record("status"), *resp = NULL, *rules;
		struct fd_err err;
		long st;

		if (fd_client_call_ok(&targets[i].c, "GET", "/v1/faults", NULL,
				      &st, &resp, &err) < 0) {
			json_object_put(o);
			fd_die(FD_EXIT_RUNTIME, "%s", err.msg);
		}
		json_object_object_del(o, "tag");
		json_object_object_add(o, "node",
				       json_object_new_string(targets[i].name));
		json_object_object_add(o, "addr",
				       json_object_new_string(targets[i].addr));
		if (!json_object_object_get_ex(resp, "rules", &rules))
			rules = NULL;
		json_object_object_add(o, "rules",
				       rules ? json_object_get(rules)
					     : json_object_new_array());
		json_object_put(resp);
		emit(o);
	}
	return FD_EXIT_OK;
}

int main(int argc, char **argv)
{
	enum { OPT_DRY_RUN = 256, OPT_TAG };
	static const struct option opts[] = {
		{"node", required_argument, NULL, 'n'},
		{"duration", required_argument, NULL, 'd'},
		{"timeout", required_argument, NULL, 't'},
		{"dry-run", no_argument, NULL, OPT_DRY_RUN},
		{"tag", required_argument, NULL, OPT_TAG},
		FD_CLIENT_OPTIONS,
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	const char *nodes[MAX_NODES], *cmd;
	int c, nnodes = 0, dry_run = 0, rc;

	fd_cli_init("fd-partition", USAGE);
	/* "+": options stop at the subcommand, so group names are not parsed */
	while ((c = getopt_long(argc, argv, "+:n:d:t:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (nnodes == MAX_NODES)
				fd_usage_die("too many nodes (at most %d)", MAX_NODES);
			nodes[nnodes++ % MAX_NODES] = optarg;
			break;
		case 'd':
			if (fd_parse_duration(optarg, &duration_ms) < 0 ||
			    duration_ms == 0)
				fd_usage_die("invalid --duration '%s' (a positive duration)",
					     optarg);
			break;
		case 't':
			if (fd_parse_duration(optarg, &timeout_ms) < 0 ||
			    timeout_ms == 0)
				fd_usage_die("invalid --timeout '%s'", optarg);
			break;
		case OPT_DRY_RUN: dry_run = 1; break;
		case OPT_TAG: tag = optarg; break;
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
	if (strspn(tag, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			"0123456789._:-") != strlen(tag) ||
	    !*tag || strlen(tag) > 63)
		fd_usage_die("invalid --tag '%s'", tag);
	if (strcmp(cmd, "split") == 0) {
		if (argc < 2)
			fd_usage_die("split needs at least one group");
		check_groups(argc - 1, argv + 1);
	} else if (strcmp(cmd, "isolate") == 0) {
		if (argc != 2)
			fd_usage_die("isolate needs exactly one node");
		check_groups(1, argv + 1);
		if (strchr(argv[1], ','))
			fd_usage_die("isolate takes one node, not a group");
	} else if (strcmp(cmd, "heal") == 0 || strcmp(cmd, "status") == 0) {
		if (argc != 1)
			fd_usage_die("unexpected argument '%s'", argv[1]);
	} else {
		fd_usage_die("unknown subcommand '%s'", cmd);
	}
	for (int i = 0; i < nnodes; i++)
		add_target(nodes[i], 0);
	if (nnodes == 0 && !isatty(STDIN_FILENO))
		read_stdin();
	if (ntargets == 0)
		fd_usage_die("no nodes given (-n, or lines on stdin)");
	resolve();
	if (strcmp(cmd, "split") == 0 || strcmp(cmd, "isolate") == 0)
		rc = split(assign_groups(argc - 1, argv + 1), dry_run, cmd);
	else if (strcmp(cmd, "heal") == 0)
		rc = heal(dry_run);
	else
		rc = status();
	for (int i = 0; i < ntargets; i++)
		fd_client_release(&targets[i].c);
	return fd_finish_stdout(rc);
}
