#include "cli.h"
#include "client.h"
#include "jsonl.h"
#include "node.h"

#include <errno.h>
#include <getopt.h>

/* Parses the client options shared by the subcommands; returns optind. */
static int client_opts(int argc, char **argv, const char **node, int64_t *timeout)
{
	static const struct option opts[] = {
		{"node", required_argument, NULL, 'n'},
		{"timeout", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int c;

	*node = NULL;
	*timeout = 5000;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":n:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			*node = optarg;
			break;
		case 't':
			if (fd_parse_duration(optarg, timeout) < 0 || *timeout == 0)
				fd_usage_die("invalid --timeout '%s'", optarg);
			break;
		case 'h':
			fd_help_exit("\nPrints the node's identity and state as one JSON line.\n");
		default:
			fd_usage_getopt(c, argv);
		}
	}
	return optind;
}

int cmd_info(int argc, char **argv)
{
	struct fd_client client;
	struct json_object *resp;
	struct fd_err err;
	const char *node;
	int64_t timeout;
	long status;
	int i = client_opts(argc, argv, &node, &timeout);

	if (i < argc)
		fd_usage_die("unexpected argument '%s'", argv[i]);
	if (fd_client_init(&client, fd_node_addr(node), timeout, &err) < 0)
		fd_usage_die("%s", err.msg);
	if (fd_client_call_ok(&client, "GET", "/v1/info", NULL, &status, &resp, &err) < 0) {
		json_object_put(resp);
		fd_client_release(&client);
		fd_die(status == 0 && errno == ETIMEDOUT ? FD_EXIT_TIMEOUT : FD_EXIT_RUNTIME,
		       "%s", err.msg);
	}
	fd_emit(resp);
	json_object_put(resp);
	fd_client_release(&client);
	return fd_finish_stdout(FD_EXIT_OK);
}
