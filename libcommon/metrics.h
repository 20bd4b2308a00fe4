/* Metrics in the Prometheus text exposition format, version 0.0.4
 * (Content-Type "text/plain; version=0.0.4"), written into a buffer:
 *
 *   # HELP fd_pubsub_published_total Messages published through this node.
 *   # TYPE fd_pubsub_published_total counter
 *   fd_pubsub_published_total 42
 *   fd_members{state="alive"} 3
 *
 * Pure: no I/O. Each subsystem adds its families through the same writer
 * (fd-node's members_add_metrics, registry_add_metrics, ...). Help texts are
 * escaped (backslash, newline) and label values too (backslash, double
 * quote, newline); names and label names are the caller's literals and must
 * follow the format's rules ([a-zA-Z_:][a-zA-Z0-9_:]*). A family is
 * announced once: a second fd_metrics_family with the same name (the last
 * one) adds samples to it without repeating HELP and TYPE.
 */
#ifndef FD_METRICS_H
#define FD_METRICS_H

#include <stdint.h>

#include "buf.h"

struct fd_metrics {
	struct fd_buf *out;
	char family[128]; /* the last family announced */
	int failed;	  /* an append failed (out of memory, buffer cap) */
};

void fd_metrics_init(struct fd_metrics *m, struct fd_buf *out);

/* Announces a family: type is "counter" or "gauge". */
void fd_metrics_family(struct fd_metrics *m, const char *name, const char *type,
		       const char *help);
/* One sample of the family: labels is NULL or a NULL-terminated list of
 * name, value pairs. The _u64 form prints the exact integer. */
void fd_metrics_sample(struct fd_metrics *m, const char *name,
		       const char *const *labels, double value);
void fd_metrics_sample_u64(struct fd_metrics *m, const char *name,
			   const char *const *labels, uint64_t value);
/* A family with one sample and no labels. */
void fd_metrics_counter(struct fd_metrics *m, const char *name,
			const char *help, uint64_t value);
void fd_metrics_gauge(struct fd_metrics *m, const char *name, const char *help,
		      double value);

/* 0, or -1 when something could not be written (the output is then
 * incomplete). */
int fd_metrics_error(const struct fd_metrics *m);

#endif
