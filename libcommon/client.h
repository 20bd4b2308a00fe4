/* A blocking client for one node's HTTP API, for the command-line tools
 * (fd-join, fd-registry, fd-node info, …). One keep-alive connection is
 * reused across calls. The node itself never uses this: it uses the async
 * client in http.h.
 */
#ifndef FD_CLIENT_H
#define FD_CLIENT_H

#include <json-c/json.h>
#include <stdint.h>

#include "err.h"

struct curl_slist;

struct fd_client {
	void *curl;	/* CURL * */
	char addr[280]; /* "host:port", IPv6 in brackets */
	int64_t timeout_ms;
	struct curl_slist *headers;
};

/* Prepares a client for node addr ("host:port" or "[v6]:port", port
 * required; see fd_node_addr()).
 * Returns 0, or -1 with err filled (a malformed address, out of memory). */
int fd_client_init(struct fd_client *c, const char *addr, int64_t timeout_ms,
		   struct fd_err *err);
void fd_client_release(struct fd_client *c);

/* Sends method path with body (NULL: none; serialized compactly) and waits
 * for the answer. On an HTTP answer of any status returns 0, sets *status and
 * *resp (a new object the caller must json_object_put(), or NULL when the
 * body is not JSON). On a transport failure returns -1 with err = "unable to
 * reach 'ADDR': why" (and errno = ETIMEDOUT on a timeout). */
int fd_client_call(struct fd_client *c, const char *method, const char *path,
		   struct json_object *body, long *status,
		   struct json_object **resp, struct fd_err *err);

/* Like fd_client_call, but a status other than 2xx is an error too: err takes
 * the body's "error" message. Returns 0, or -1 (transport error or non-2xx,
 * *status says which: 0 for transport). */
int fd_client_call_ok(struct fd_client *c, const char *method, const char *path,
		      struct json_object *body, long *status,
		      struct json_object **resp, struct fd_err *err);

#endif
