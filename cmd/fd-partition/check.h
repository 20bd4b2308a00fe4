/* fd-partition check (check.c): the history checker's command. */
#ifndef FD_PARTITION_CHECK_H
#define FD_PARTITION_CHECK_H

#include <stdint.h>

#define CHECK_USAGE                                                \
	"fd-partition [-n node]... [-t timeout] check [-w wait]\n" \
	"                    [--sub NAME=FILE]... [FILE...|-]"

/* Runs `check`; argv[0] is "check". nodes (-n given before the
 * subcommand) and timeout_ms are main's. Returns the exit status. */
int partition_check(int argc, char **argv, const char *const *nodes, int nnodes,
		    int64_t timeout_ms);
/* The same with main's options (partition.h's popt), for its table. */
int cmd_check(int argc, char **argv);

#endif
