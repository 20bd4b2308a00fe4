/* libFuzzer harness for the Kubernetes answer parser (k8s.h): any bytes as
 * a PodList and as an EndpointsList, with the settings that change the
 * parse (explicit port or a named one, basename). Oracles: no memory error
 * or leak (ASan), every peer address normalized, the count returned equals
 * the peers called back, and the stats add up for pods. */
#include "discover.h"
#include "k8s.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int peer(const char *addr, const char *name, struct json_object *meta,
		void *arg)
{
	char norm[FD_PEER_ADDR_LEN];

	(void)name;
	if (fd_peer_addr_norm(addr, norm, sizeof(norm), NULL) < 0 ||
	    strcmp(norm, addr) != 0 || !meta)
		abort();
	(*(int *)arg)++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fd_k8s k;
	struct fd_k8s_stats st;
	char *body;

	if (size > 1 << 20)
		return 0;
	body = malloc(size + 1);
	if (!body)
		return 0;
	memcpy(body, data, size);
	body[size] = '\0';
	memset(&k, 0, sizeof(k));
	strcpy(k.selector, "app=fd");
	strcpy(k.ns, "prod");
	strcpy(k.port_name, "fd");
	for (int v = 0; v < 4; v++) {
		int got = 0, n;

		k.mode = v & 1 ? FD_K8S_PODS : FD_K8S_ENDPOINTS;
		k.port = v & 2 ? 7946 : 0;
		strcpy(k.basename, v & 2 ? "fd" : "");
		n = fd_k8s_parse(&k, body, size, peer, &got, &st, NULL);
		if (n >= 0 && n != got)
			abort();
		if (n >= 0 && k.mode == FD_K8S_PODS &&
		    st.items != (unsigned)n + st.not_ready + st.terminating +
					st.no_ip + st.bad_ip)
			abort();
	}
	free(body);
	return 0;
}
