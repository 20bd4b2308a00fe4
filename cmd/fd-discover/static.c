/* static: the addresses on the command line. */
#include "cli.h"
#include "strategy.h"
#include "jsonl.h"
#include "loop.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

static void on_stop(struct fd_loop *loop, int signo, void *arg)
{
	(void)signo;
	(void)arg;
	fd_loop_stop(loop);
}

int wait_for_signal(void)
{
	struct fd_loop *loop = fd_loop_new();
	int rc = -1;

	if (loop && fd_loop_signal(loop, SIGINT, on_stop, NULL) == 0 &&
	    fd_loop_signal(loop, SIGTERM, on_stop, NULL) == 0)
		rc = fd_loop_run(loop);
	fd_loop_free(loop);
	return rc;
}

int strategy_static(int argc, char **argv, const struct dopts *o)
{
	struct fd_peerset set;
	char addr[FD_PEER_ADDR_LEN];
	struct fd_err err;
	int rc = FD_EXIT_OK;

	if (argc == 0)
		fd_usage_die("static: no addresses given");
	/* All or nothing: a typo on the command line is a usage error. */
	for (int i = 0; i < argc; i++)
		if (fd_peer_addr_norm(argv[i], addr, sizeof(addr), &err) < 0)
			fd_usage_die("static: %s", err.msg);
	if (fd_peerset_init(&set, o->down_after, 0) < 0 || fd_peerset_begin(&set) < 0)
		fd_die(FD_EXIT_RUNTIME, "out of memory");
	for (int i = 0; i < argc; i++) {
		fd_peer_addr_norm(argv[i], addr, sizeof(addr), NULL);
		if (peer_add(&set, addr) < 0)
			rc = FD_EXIT_DATA;
	}
	fd_peerset_end(&set, out_down, &set);
	if (rc == FD_EXIT_OK)
		rc = expect_status(o, fd_peerset_count(&set)); /* cannot change */
	fd_peerset_release(&set);
	if (o->watch && fd_emit_flush() < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to write to stdout: %s",
		       strerror(errno));
	if (o->watch && wait_for_signal() < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to wait for signals: %s",
		       strerror(errno));
	return rc;
}
