/* Prometheus text format writer: see metrics.h. */
#include "metrics.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void fd_metrics_init(struct fd_metrics *m, struct fd_buf *out)
{
	m->out = out;
	m->family[0] = '\0';
	m->failed = 0;
}

static void put(struct fd_metrics *m, const char *s, size_t len)
{
	if (!m->failed && fd_buf_append(m->out, s, len) < 0)
		m->failed = 1;
}

static void puts_(struct fd_metrics *m, const char *s)
{
	put(m, s, strlen(s));
}

/* s with backslash and newline escaped, and double quote when quote. */
static void put_escaped(struct fd_metrics *m, const char *s, int quote)
{
	const char *run = s;

	for (; *s; s++) {
		const char *esc = *s == '\\'	       ? "\\\\"
				  : *s == '\n'	       ? "\\n"
				  : quote && *s == '"' ? "\\\""
						       : NULL;

		if (!esc)
			continue;
		put(m, run, (size_t)(s - run));
		puts_(m, esc);
		run = s + 1;
	}
	put(m, run, (size_t)(s - run));
}

void fd_metrics_family(struct fd_metrics *m, const char *name, const char *type,
		       const char *help)
{
	if (strcmp(m->family, name) == 0)
		return;
	snprintf(m->family, sizeof(m->family), "%s", name);
	puts_(m, "# HELP ");
	puts_(m, name);
	puts_(m, " ");
	put_escaped(m, help, 0);
	puts_(m, "\n# TYPE ");
	puts_(m, name);
	puts_(m, " ");
	puts_(m, type);
	puts_(m, "\n");
}

static void start_sample(struct fd_metrics *m, const char *name,
			 const char *const *labels)
{
	puts_(m, name);
	if (labels && labels[0]) {
		puts_(m, "{");
		for (int i = 0; labels[i] && labels[i + 1]; i += 2) {
			if (i)
				puts_(m, ",");
			puts_(m, labels[i]);
			puts_(m, "=\"");
			put_escaped(m, labels[i + 1], 1);
			puts_(m, "\"");
		}
		puts_(m, "}");
	}
	puts_(m, " ");
}

void fd_metrics_sample(struct fd_metrics *m, const char *name,
		       const char *const *labels, double value)
{
	char num[40];

	start_sample(m, name, labels);
	if (isnan(value))
		snprintf(num, sizeof(num), "NaN\n");
	else if (isinf(value))
		snprintf(num, sizeof(num), "%sInf\n", value < 0 ? "-" : "+");
	else if (value == (double)(int64_t)value && fabs(value) < 1e15)
		snprintf(num, sizeof(num), "%lld\n", (long long)value);
	else
		snprintf(num, sizeof(num), "%.17g\n", value);
	puts_(m, num);
}

void fd_metrics_sample_u64(struct fd_metrics *m, const char *name,
			   const char *const *labels, uint64_t value)
{
	char num[32];

	start_sample(m, name, labels);
	snprintf(num, sizeof(num), "%llu\n", (unsigned long long)value);
	puts_(m, num);
}

void fd_metrics_counter(struct fd_metrics *m, const char *name,
			const char *help, uint64_t value)
{
	fd_metrics_family(m, name, "counter", help);
	fd_metrics_sample_u64(m, name, NULL, value);
}

void fd_metrics_gauge(struct fd_metrics *m, const char *name, const char *help,
		      double value)
{
	fd_metrics_family(m, name, "gauge", help);
	fd_metrics_sample(m, name, NULL, value);
}

int fd_metrics_error(const struct fd_metrics *m)
{
	return m->failed ? -1 : 0;
}
