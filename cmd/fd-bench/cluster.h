/* A local cluster of fd-node processes for benchmarks: started on
 * 127.0.0.1 with ephemeral ports, killed by PID when done. */
#ifndef FD_BENCH_CLUSTER_H
#define FD_BENCH_CLUSTER_H

#include <stdint.h>
#include <sys/types.h>

#include "client.h"
#include "err.h"

struct bench_node {
	pid_t pid;
	char name[32];
	char addr[64];
	int out_fd; /* the node's stdout, until its identity line is read */
	struct fd_client client;
	int has_client;
};

struct cluster {
	const char *fd_node; /* path of the fd-node binary */
	const char *profile;
	int encrypt;   /* give the nodes a generated key (--key-file) */
	char dir[256]; /* private temp dir: logs, the key file */
	char key_file[300];
	struct bench_node *nodes;
	int n;
};

/* Starts n nodes: the first, then the rest told to --join it, all without
 * waiting for each other; then waits (up to timeout_ms) for every identity
 * line. extra (NULL-terminated, may be NULL) is passed to every node; with
 * c->encrypt, so is --key-file with a key generated for this cluster.
 * Returns 0, or -1 with err filled (the nodes started are stopped). */
int cluster_start(struct cluster *c, int n, const char *const *extra,
		  int64_t timeout_ms, struct fd_err *err);
/* A cluster of max nodes none of which runs yet (each started later with
 * cluster_start_node), and its temp dir. Returns 0, or -1 with err. */
int cluster_init(struct cluster *c, int max, struct fd_err *err);
/* Starts node i on listen ("host:port") with extra (NULL-terminated, may
 * be NULL) and no --join, and waits (until deadline, fd_mono_ms) for its
 * identity line. Returns 0, or -1 with err (cluster_stop cleans up). */
int cluster_start_node(struct cluster *c, int i, const char *listen,
		       const char *const *extra, int64_t deadline,
		       struct fd_err *err);
/* SIGTERM to all, up to 2 s, then SIGKILL; reaps; removes the temp dir. */
void cluster_stop(struct cluster *c);
/* SIGKILL one node (it stays in the array with pid 0). */
void cluster_kill(struct cluster *c, int i);

/* Asks node i for its members. Sets *alive to the alive count and *failed to
 * the number in state failed; state_of (NULL or a name) gets that member's
 * state copied into state (at least 16 bytes). Returns 0 or -1. */
int cluster_members(struct cluster *c, int i, int *alive, int *failed,
		    const char *state_of, char *state);
/* Waits until every live node sees `want` alive members (polling every
 * 10 ms) or until deadline (fd_mono_ms). Returns 0, or -1 with err. */
int cluster_wait_converged(struct cluster *c, int want, int64_t deadline,
			   struct fd_err *err);
/* Fetches node i's /v1/info (a new object, or NULL). */
struct json_object *cluster_info(struct cluster *c, int i);

/* A process's memory in bytes: resident set (shared library pages
 * included), proportional set (shared pages divided among the processes
 * that map them) and private anonymous memory. Returns 0 or -1. */
struct proc_mem {
	long long rss, pss, private;
};
int proc_mem(pid_t pid, struct proc_mem *m);
/* CPU time (user + system) a process has used so far, in microseconds;
 * -1 on error. */
long long proc_cpu_us(pid_t pid);

#endif
