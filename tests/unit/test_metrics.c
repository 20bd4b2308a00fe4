#include "metrics.h"
#include "unit.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

TEST(families_samples_and_escaping)
{
	struct fd_buf b = FD_BUF_INIT(1 << 20);
	struct fd_metrics m;
	static const char *const l1[] = {"state", "alive", NULL};
	static const char *const l2[] = {"peer", "a\"b\\c\nd", "dir", "in", NULL};

	fd_metrics_init(&m, &b);
	fd_metrics_family(&m, "fd_members", "gauge", "Members by state.");
	fd_metrics_sample(&m, "fd_members", l1, 3);
	fd_metrics_family(&m, "fd_members", "gauge", "Members by state.");
	fd_metrics_sample(&m, "fd_members", NULL, 0.25);
	fd_metrics_counter(&m, "fd_x_total", "Line one\nback\\slash",
			   18446744073709551615ULL);
	fd_metrics_family(&m, "fd_y", "gauge", "y");
	fd_metrics_sample(&m, "fd_y", l2, NAN);
	fd_metrics_sample(&m, "fd_y", NULL, -INFINITY);
	fd_metrics_gauge(&m, "fd_z", "z", 1e20);
	CHECK_EQ(fd_metrics_error(&m), 0);
	CHECK_STR(fd_buf_str(&b), "# HELP fd_members Members by state.\n"
				  "# TYPE fd_members gauge\n"
				  "fd_members{state=\"alive\"} 3\n"
				  "fd_members 0.25\n"
				  "# HELP fd_x_total Line one\\nback\\\\slash\n"
				  "# TYPE fd_x_total counter\n"
				  "fd_x_total 18446744073709551615\n"
				  "# HELP fd_y y\n"
				  "# TYPE fd_y gauge\n"
				  "fd_y{peer=\"a\\\"b\\\\c\\nd\",dir=\"in\"} NaN\n"
				  "fd_y -Inf\n"
				  "# HELP fd_z z\n"
				  "# TYPE fd_z gauge\n"
				  "fd_z 1e+20\n");
	fd_buf_release(&b);
}

TEST(a_full_buffer_is_reported)
{
	struct fd_buf b = FD_BUF_INIT(40);
	struct fd_metrics m;

	fd_metrics_init(&m, &b);
	fd_metrics_counter(&m, "fd_something_long_total",
			   "a help text that does not fit", 1);
	CHECK_EQ(fd_metrics_error(&m), -1);
	fd_buf_release(&b);
}
