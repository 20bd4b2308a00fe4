/* Kubernetes discovery: the API server's pods or endpoints, as peers.
 *
 * Settings come from a spec (dspec.h) and the pod's environment, as
 * libcluster's Kubernetes strategy takes them:
 *
 *   selector=   label selector (required), e.g. "app=fd"
 *   namespace=  default: SA_DIR/namespace (the pod's own namespace)
 *   mode=       endpoints (default: addresses of the Endpoints objects,
 *               ready ones only) or pods (Running pods with the condition
 *               Ready=True, a podIP and no deletionTimestamp)
 *   port=       the peers' port; default: the container port (pods) or
 *               endpoints port named port_name, else 4380
 *   port_name=  default "fd"
 *   api=        API server URL; default https://$KUBERNETES_SERVICE_HOST:
 *               $KUBERNETES_SERVICE_PORT
 *   token_file= default SA_DIR/token (sent as a bearer token when it exists)
 *   ca_file=    default SA_DIR/ca.crt (when it exists; else the system CAs)
 *   sa_dir=     default /var/run/secrets/kubernetes.io/serviceaccount
 *   basename=   peers are named BASENAME@IP (libcluster's node names)
 *               instead of by their pod's name
 *   cached=     true: ask with resourceVersion=0 (the API server's cache)
 *
 * fd_k8s_parse is pure (and fuzzed); fd_k8s_config reads the environment
 * and the namespace file, fd_k8s_auth the token file (read at every poll:
 * projected tokens are rotated).
 */
#ifndef FD_K8S_H
#define FD_K8S_H

#include <json-c/json.h>
#include <stddef.h>

#include "dspec.h"
#include "err.h"

#define FD_K8S_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

enum fd_k8s_mode { FD_K8S_ENDPOINTS, FD_K8S_PODS };

struct fd_k8s {
	char api[512]; /* no trailing '/' */
	char ns[64];
	char selector[1024];
	enum fd_k8s_mode mode;
	int port; /* 0: by port_name, else FD_DEFAULT_PORT */
	char port_name[64];
	char basename[128]; /* "": name peers by pod */
	char token_file[1024];
	char ca_file[1024]; /* "": the system's CAs */
	char sa_dir[1024];
	int cached;
};

/* Keys a kubernetes spec takes (NULL-terminated). */
extern const char *const fd_k8s_keys[];

/* Fills k from sp and the environment. Returns 0, or -1 with err (a missing
 * selector, no namespace, no API server, a bad value). */
int fd_k8s_config(struct fd_k8s *k, const struct fd_dspec *sp, struct fd_err *err);

/* The list URL (API/api/v1/namespaces/NS/pods?labelSelector=...) into buf.
 * Returns 0, or -1 (ENAMETOOLONG). */
int fd_k8s_url(const struct fd_k8s *k, char *buf, size_t len);

/* "Authorization: Bearer TOKEN" into buf, or "" when k has no token file
 * (a default one that does not exist). Returns 0, or -1 with err (an
 * explicit token file that cannot be read, an empty token). */
int fd_k8s_auth(const struct fd_k8s *k, char *buf, size_t len, struct fd_err *err);

/* What one answer held besides peers, for messages. */
struct fd_k8s_stats {
	unsigned items;	      /* pods, or Endpoints objects */
	unsigned not_ready;   /* pods not Running+Ready, notReadyAddresses */
	unsigned terminating; /* pods with a deletionTimestamp */
	unsigned no_ip;	      /* pods without a podIP yet */
	unsigned bad_ip;      /* addresses that are not IP addresses */
};

typedef int (*fd_k8s_peer_cb)(const char *addr, const char *name,
			      struct json_object *meta, void *arg);

/* Parses a PodList or EndpointsList answer (len bytes, NUL not needed) and
 * calls peer() for every ready address, with its normalized address, its
 * name (pod name, or BASENAME@IP; NULL when unknown) and meta {"namespace",
 * "pod", "node", "ip"[, "service"]} (borrowed for the call). A peer()
 * returning -1 stops the parse (its error is the caller's). Returns the
 * number of peers, or -1 with err when the answer is not such a list. */
int fd_k8s_parse(const struct fd_k8s *k, const char *body, size_t len,
		 fd_k8s_peer_cb peer, void *arg, struct fd_k8s_stats *st,
		 struct fd_err *err);

/* A message for a failed answer: "kubernetes API answered 403: MESSAGE"
 * with the Status object's message when the body has one. */
void fd_k8s_status_error(long status, const char *body, size_t len, char *out,
			 size_t outlen);

/* A message for an answer with no ready peer (e.g. "no ready pods match
 * 'app=fd' in namespace 'x' (3 pods: 2 not ready, 1 terminating)"). */
void fd_k8s_empty_error(const struct fd_k8s *k, const struct fd_k8s_stats *st,
			char *out, size_t outlen);

#endif
