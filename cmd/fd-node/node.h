/* fd-node internals shared by the files of cmd/fd-node. */
#ifndef FD_NODE_NODE_H
#define FD_NODE_NODE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct node_opts {
	const char *name;
	const char *listen;
	const char *pid_file;
	const char *log_file;
	int detach;
	size_t max_body;
};

/* Runs the node until SIGTERM/SIGINT; returns the exit status. */
int node_main(const struct node_opts *opts);

/* Client subcommands; argv[0] is the subcommand. */
int cmd_info(int argc, char **argv);

#endif
