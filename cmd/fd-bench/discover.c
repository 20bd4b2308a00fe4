/* Discovery scenarios: N fd-node processes find each other with
 * --discover, then one more starts; how long until the N have it as an
 * alive member. And once more for a node killed and started again without
 * any discovery of its own: only the others' polls bring it back
 * (libcluster #148).
 *
 * The source is served by a child of fd-bench: a DNS server answering A
 * records (discover.dns), or a Kubernetes API server answering a pod list
 * (discover.kubernetes). Nodes listen on 127.0.0.1, 127.0.0.2, ... with one
 * port, as pods do on their own IPs. The polling interval is 1 s. */
#include "scenario.h"
#include "clock.h"
#include "cluster.h"
#include "http.h"
#include "jsonl.h"
#include "loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define POLL_US 10000
#define INTERVAL "1s"
#define DNS_NAME "fd.bench"

/* A port free for TCP and UDP on 127.0.0.1 .. 127.0.0.n. */
static int free_port(int n)
{
	for (int tries = 0; tries < 50; tries++) {
		struct sockaddr_in sa = {.sin_family = AF_INET,
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t sl = sizeof(sa);
		int fds[64], nf = 0, port = 0, ok = 1;

		fds[nf] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fds[nf] < 0 ||
		    bind(fds[nf], (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    getsockname(fds[nf], (struct sockaddr *)&sa, &sl) < 0) {
			if (fds[nf] >= 0)
				close(fds[nf]);
			continue;
		}
		nf++;
		port = ntohs(sa.sin_port);
		for (int i = 1; i <= n && ok && nf < 62; i++)
			for (int type = 0; type < 2 && ok; type++) {
				if (i == 1 && type == 0)
					continue;
				sa.sin_addr.s_addr =
					htonl(0x7f000000u + (unsigned)i);
				fds[nf] = socket(AF_INET,
						 (type ? SOCK_DGRAM : SOCK_STREAM) |
							 SOCK_CLOEXEC,
						 0);
				ok = fds[nf] >= 0 &&
				     bind(fds[nf], (struct sockaddr *)&sa,
					  sizeof(sa)) == 0;
				if (fds[nf] >= 0)
					nf++;
			}
		for (int i = 0; i < nf; i++)
			close(fds[i]);
		if (ok)
			return port;
	}
	return -1;
}

/* The peer list the source serves: 127.0.0.1 .. 127.0.0.count, and
 * 127.0.0.moved instead of 127.0.0.count when moved is not 0 (a pod that
 * came back on another IP). */
static int write_peers(const char *path, int count, int moved, int k8s)
{
	char tmp[400];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	if (k8s)
		fprintf(f, "{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"items\":[");
	for (int i = 1; i <= count; i++) {
		int ip = i == count && moved ? moved : i;

		if (k8s)
			fprintf(f,
				"%s{\"metadata\":{\"name\":\"b%d\",\"namespace\":\"bench\","
				"\"labels\":{\"app\":\"fd\"}},\"spec\":{\"nodeName\":\"local\"},"
				"\"status\":{\"phase\":\"Running\",\"podIP\":\"127.0.0.%d\","
				"\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}",
				i > 1 ? "," : "", i, ip);
		else
			fprintf(f, "127.0.0.%d\n", ip);
	}
	if (k8s)
		fprintf(f, "]}\n");
	if (fclose(f) != 0)
		return -1;
	return rename(tmp, path);
}

/* The DNS server: A records of DNS_NAME from the peer file (read at every
 * query); AAAA gets an empty answer, other names NXDOMAIN. */
static void dns_serve(int fd, const char *path)
{
	for (;;) {
		unsigned char q[512], r[1024];
		char name[256];
		size_t off = 12, nl = 0, len;
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, q, sizeof(q), 0,
				     (struct sockaddr *)&from, &fl);
		int qtype, an = 0, rcode;
		FILE *f;
		char line[64];

		if (n < 12)
			continue;
		while (off < (size_t)n && q[off] && q[off] < 64 &&
		       off + 1 + q[off] < (size_t)n &&
		       nl + q[off] + 1 < sizeof(name)) {
			memcpy(name + nl, q + off + 1, q[off]);
			nl += q[off];
			name[nl++] = '.';
			off += 1 + (size_t)q[off];
		}
		if (off + 5 > (size_t)n || q[off] != 0)
			continue;
		if (nl)
			nl--;
		name[nl] = '\0';
		off++;
		qtype = q[off] << 8 | q[off + 1];
		off += 4;
		memcpy(r, q, off);
		len = off;
		rcode = strcasecmp(name, DNS_NAME) == 0 ? 0 : 3;
		if (rcode == 0 && qtype == 1 && (f = fopen(path, "r"))) {
			while (fgets(line, sizeof(line), f) && len + 16 < sizeof(r)) {
				struct in_addr ip;

				line[strcspn(line, "\n")] = '\0';
				if (inet_pton(AF_INET, line, &ip) != 1)
					continue;
				memcpy(r + len,
				       (const unsigned char[]){0xc0, 0x0c, 0, 1, 0,
							       1, 0, 0, 0, 0, 0, 4},
				       12);
				memcpy(r + len + 12, &ip, 4);
				len += 16;
				an++;
			}
			fclose(f);
		}
		r[2] = (unsigned char)(0x84 | (q[2] & 1)); /* QR, AA, RD as asked */
		r[3] = (unsigned char)(0x80 | rcode);	   /* RA */
		r[4] = 0;
		r[5] = 1;
		r[6] = (unsigned char)(an >> 8);
		r[7] = (unsigned char)an;
		memset(r + 8, 0, 4);
		sendto(fd, r, len, 0, (struct sockaddr *)&from, fl);
	}
}

static void on_pods(struct fd_http_req *req, void *arg)
{
	FILE *f = fopen(arg, "r");
	char *buf = malloc(1 << 20);
	size_t n = 0;

	if (f && buf)
		n = fread(buf, 1, (1 << 20) - 1, f);
	if (f)
		fclose(f);
	if (!buf || !n)
		fd_http_reply_error(req, 500, "no pod list");
	else
		fd_http_reply(req, 200, "application/json", buf, n);
	free(buf);
}

/* The Kubernetes API server: the pod list file for every list request. */
static void k8s_serve(int fd, const char *path)
{
	struct fd_loop *loop = fd_loop_new();
	struct fd_http_server_opts ho = {.listen_fd = fd};
	struct fd_http_server *srv;
	struct fd_err err;

	if (!loop || !(srv = fd_http_server_new(loop, &ho, &err)))
		_exit(1);
	fd_http_route(srv, "GET", "/api/v1/namespaces/", 0, on_pods, (void *)path);
	fd_loop_run(loop);
	_exit(0);
}

/* Starts the source's server as a child; *port is where it listens. */
static pid_t serve(int k8s, const char *path, int *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, (k8s ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
	pid_t pid;

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    (k8s && listen(fd, 64) < 0) ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(sa.sin_port);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		signal(SIGTERM, SIG_DFL);
		if (k8s)
			k8s_serve(fd, path);
		dns_serve(fd, path);
		_exit(0);
	}
	close(fd);
	return pid;
}

/* Waits until nodes 0..n-1 all see node `who` in state want. */
static int wait_state(struct cluster *c, int n, int who, const char *want,
		      int64_t deadline, struct fd_err *err)
{
	for (;;) {
		int left = 0;

		for (int i = 0; i < n; i++) {
			char state[16];
			int alive, failed;

			if (cluster_members(c, i, &alive, &failed,
					    c->nodes[who].name, state) < 0 ||
			    strcmp(state, want) != 0)
				left++;
		}
		if (left == 0)
			return 0;
		if (fd_mono_ms() > deadline)
			return fd_err_set(err, "%d of %d nodes did not see %s %s in time",
					  left, n, c->nodes[who].name, want);
		usleep(POLL_US);
	}
}

static int run_discover(const struct bench_opts *o, int n, double *v,
			struct fd_err *err, int k8s)
{
	struct cluster c;
	char path[400], spec[512], listen[64];
	const char *extra[] = {"--discover", spec, NULL};
	int port, sport = 0, rc = -1;
	pid_t server = -1;
	int64_t t0;

	memset(&c, 0, sizeof(c));
	c.fd_node = o->fd_node;
	c.profile = o->profile;
	c.encrypt = o->encrypt;
	if (n < 1 || n > 60)
		return fd_err_set(err, "1 to 60 nodes");
	if (cluster_init(&c, n + 1, err) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/%s", c.dir, k8s ? "pods.json" : "zone");
	port = free_port(n + 2);
	if (port < 0 || write_peers(path, n, 0, k8s) < 0 ||
	    (server = serve(k8s, path, &sport)) < 0) {
		fd_err_set(err, "unable to set up the %s server: %s",
			   k8s ? "Kubernetes API" : "DNS", strerror(errno));
		goto out;
	}
	if (k8s)
		snprintf(spec, sizeof(spec),
			 "kubernetes selector=app=fd namespace=bench mode=pods port=%d "
			 "api=http://127.0.0.1:%d sa_dir=%s interval=" INTERVAL,
			 port, sport, c.dir);
	else
		snprintf(spec, sizeof(spec),
			 "dns name=" DNS_NAME
			 " port=%d resolver=127.0.0.1:%d interval=" INTERVAL,
			 port, sport);
	/* The cluster: n nodes that find each other. */
	for (int i = 0; i < n; i++) {
		snprintf(listen, sizeof(listen), "127.0.0.%d:%d", i + 1, port);
		if (cluster_start_node(&c, i, listen, extra,
				       fd_mono_ms() + 10000 + 200LL * n, err) < 0)
			goto out;
	}
	c.n = n; /* converged: the n running ones */
	rc = cluster_wait_converged(&c, n, fd_mono_ms() + o->timeout_ms, err);
	c.n = n + 1;
	if (rc < 0)
		goto out;
	rc = -1;
	/* One more: listed by the source as it starts. */
	snprintf(listen, sizeof(listen), "127.0.0.%d:%d", n + 1, port);
	t0 = fd_mono_us();
	if (write_peers(path, n + 1, 0, k8s) < 0) {
		fd_err_set(err, "unable to write '%s': %s", path, strerror(errno));
		goto out;
	}
	if (cluster_start_node(&c, n, listen, extra, fd_mono_ms() + 10000, err) < 0 ||
	    wait_state(&c, n, n, "alive", fd_mono_ms() + o->timeout_ms, err) < 0)
		goto out;
	v[0] = (double)(fd_mono_us() - t0) / 1e6;
	/* Killed, failed everywhere, back under its name at another address
	 * (a pod recreated on a new IP) with no discovery of its own: only the
	 * others' polls can find it (membership alone knows the old address). */
	cluster_kill(&c, n);
	if (wait_state(&c, n, n, "failed", fd_mono_ms() + o->timeout_ms, err) < 0)
		goto out;
	snprintf(listen, sizeof(listen), "127.0.0.%d:%d", n + 2, port);
	t0 = fd_mono_us();
	if (write_peers(path, n + 1, n + 2, k8s) < 0) {
		fd_err_set(err, "unable to write '%s': %s", path, strerror(errno));
		goto out;
	}
	if (cluster_start_node(&c, n, listen, NULL, fd_mono_ms() + 10000, err) < 0 ||
	    wait_state(&c, n, n, "alive", fd_mono_ms() + o->timeout_ms, err) < 0)
		goto out;
	v[1] = (double)(fd_mono_us() - t0) / 1e6;
	rc = 0;
out:
	if (server > 0) {
		kill(server, SIGKILL);
		waitpid(server, NULL, 0);
	}
	unlink(path);
	cluster_stop(&c);
	return rc;
}

static int run_dns(const struct bench_opts *o, int n, double *v, struct fd_err *err)
{
	return run_discover(o, n, v, err, 0);
}

static int run_k8s(const struct bench_opts *o, int n, double *v, struct fd_err *err)
{
	return run_discover(o, n, v, err, 1);
}

const struct scenario discover_scenarios[] = {
	{"discover.dns",
	 "N nodes with --discover dns (A records from a DNS server, polled every 1s); "
	 "seconds from one more node's start until all N have it alive (join), and "
	 "from its restart after a SIGKILL at another address (a pod on a new IP), "
	 "with no discovery of its own, until all N have it alive again (rejoin)",
	 1,
	 3,
	 {{"discover.dns.join", "s"}, {"discover.dns.rejoin", "s"}},
	 run_dns,
	 0},
	{"discover.kubernetes",
	 "the same with --discover kubernetes (pods from a Kubernetes API server, "
	 "polled every 1s)",
	 1,
	 3,
	 {{"discover.kubernetes.join", "s"}, {"discover.kubernetes.rejoin", "s"}},
	 run_k8s,
	 0},
};
const int discover_nscenarios =
	sizeof(discover_scenarios) / sizeof(discover_scenarios[0]);
