/* Raw HTTP requests to one node for the registry scenarios: one libcurl
 * easy handle per struct req, kept alive across requests, with bodies and
 * answers as bytes (ndjson batches, which fd_client does not speak). A req
 * can run blocking (req_do) or inside a curl multi (req_prepare, then
 * curl_multi_add_handle(req->curl), then req_finished). */
#ifndef FD_BENCH_REQ_H
#define FD_BENCH_REQ_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define REQ_RESP_MAX ((size_t)256 << 20)

struct curl_slist;

struct req {
	void *curl; /* CURL * */
	char base[96];
	struct curl_slist *hdrs;
	struct fd_buf resp; /* the answer's body, NUL terminated */
	long status;
};

/* For node addr ("host:port"); every request ends after timeout_ms.
 * Returns 0, or -1 with err. */
int req_init(struct req *q, const char *addr, int64_t timeout_ms, struct fd_err *err);
/* Frees the handle and the answer; safe on a zeroed req. */
void req_release(struct req *q);

/* Sets up method path (with query) and body (borrowed: it must live until
 * the request ends; NULL for none) and clears the last answer. Returns 0
 * or -1 (path too long). */
int req_prepare(struct req *q, const char *method, const char *path,
		const char *body, size_t len);
/* After the request ran (curl result code cc): sets status. Returns 0, or
 * -1 with err on a transport failure. */
int req_finished(struct req *q, int cc, struct fd_err *err);
/* req_prepare + run to the end. Returns 0 on any HTTP answer (status and
 * resp set), or -1 with err. */
int req_do(struct req *q, const char *method, const char *path,
	   const char *body, size_t len, struct fd_err *err);

#endif
