/* fd-node's client subcommands: info, members, leave. */
#include "cli.h"
#include "client.h"
#include "jsonl.h"
#include "node.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

struct client_opts {
	const char *node;
	int64_t timeout;
	int table;
};

static const char *const sub_help[][2] = {
	{"info", "\nPrints the node's identity and state as one JSON line.\n"},
	{"members", "\nPrints every member the node knows (itself included), one JSON line each;\n"
		    "-f table prints aligned columns instead.\n"},
	{"leave", "\nAsks the node to leave the cluster gracefully (peers record it as left,\n"
		  "not failed) and stop. Prints the node's answer.\n"},
};

static void client_opts(int argc, char **argv, struct client_opts *o)
{
	static const struct option opts[] = {
		{"node", required_argument, NULL, 'n'},
		{"timeout", required_argument, NULL, 't'},
		{"format", required_argument, NULL, 'f'},
		FD_CLIENT_OPTIONS,
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int c;

	o->node = NULL;
	o->timeout = 5000;
	o->table = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":n:t:f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n': o->node = optarg; break;
		case 't':
			if (fd_parse_duration(optarg, &o->timeout) < 0 ||
			    o->timeout == 0)
				fd_usage_die("invalid --timeout '%s'", optarg);
			break;
		case 'f':
			if (strcmp(optarg, "json") && strcmp(optarg, "table"))
				fd_usage_die("invalid --format '%s' (json, table)",
					     optarg);
			o->table = strcmp(optarg, "table") == 0;
			break;
		case 'h':
			for (size_t i = 0;
			     i < sizeof(sub_help) / sizeof(sub_help[0]); i++)
				if (strcmp(argv[0], sub_help[i][0]) == 0)
					fd_help_exit(sub_help[i][1]);
			fd_help_exit(NULL);
		default:
			if (!fd_client_opt(c, optarg))
				fd_usage_getopt(c, argv);
		}
	}
	if (optind < argc)
		fd_usage_die("unexpected argument '%s'", argv[optind]);
}

/* One request to the node; dies with a clear message when it fails. */
static struct json_object *call(const struct client_opts *o, const char *method,
				const char *path)
{
	struct fd_client client;
	struct json_object *resp;
	struct fd_err err;
	long status;

	if (fd_client_init(&client, fd_node_addr(o->node), o->timeout, &err) < 0)
		fd_usage_die("%s", err.msg);
	if (fd_client_call_ok(&client, method, path, NULL, &status, &resp, &err) < 0) {
		int timed_out = status == 0 && errno == ETIMEDOUT;

		json_object_put(resp);
		fd_client_release(&client);
		fd_die(timed_out ? FD_EXIT_TIMEOUT : FD_EXIT_RUNTIME, "%s", err.msg);
	}
	fd_client_release(&client);
	return resp;
}

int cmd_info(int argc, char **argv)
{
	struct client_opts o;
	struct json_object *resp;

	client_opts(argc, argv, &o);
	resp = call(&o, "GET", "/v1/info");
	fd_emit(resp);
	json_object_put(resp);
	return fd_finish_stdout(FD_EXIT_OK);
}

int cmd_members(int argc, char **argv)
{
	struct client_opts o;
	struct json_object *resp, *members;

	client_opts(argc, argv, &o);
	resp = call(&o, "GET", "/v1/members");
	if (!json_object_object_get_ex(resp, "members", &members) ||
	    !json_object_is_type(members, json_type_array))
		fd_die(FD_EXIT_RUNTIME, "unexpected answer from '%s'",
		       fd_node_addr(o.node));
	if (o.table)
		printf("%-20s %-22s %-8s %12s  %s\n", "NAME", "ADDR", "STATE",
		       "INCARNATION", "SINCE");
	for (size_t i = 0; i < json_object_array_length(members); i++) {
		struct json_object *m = json_object_array_get_idx(members, i);

		if (!o.table) {
			fd_emit(m);
			continue;
		}
		printf("%-20s %-22s %-8s %14lld  %s\n", fd_json_get_str(m, "name"),
		       fd_json_get_str(m, "addr"), fd_json_get_str(m, "state"),
		       fd_json_get_int(m, "incarnation", 0),
		       fd_json_get_str(m, "since"));
	}
	json_object_put(resp);
	return fd_finish_stdout(FD_EXIT_OK);
}

int cmd_leave(int argc, char **argv)
{
	struct client_opts o;
	struct json_object *resp, *out;

	client_opts(argc, argv, &o);
	resp = call(&o, "POST", "/v1/leave");
	out = fd_json_record("result");
	json_object_object_foreach(resp, k, v)
		json_object_object_add(out, k, json_object_get(v));
	fd_emit(out);
	json_object_put(out);
	json_object_put(resp);
	return fd_finish_stdout(FD_EXIT_OK);
}
