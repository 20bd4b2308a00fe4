#include "cli.h"
#include "unit.h"

#include <errno.h>
#include <stdio.h>

TEST(duration_units)
{
	int64_t ms = -1;

	CHECK_EQ(fd_parse_duration("250ms", &ms), 0);
	CHECK_EQ(ms, 250);
	CHECK_EQ(fd_parse_duration("3s", &ms), 0);
	CHECK_EQ(ms, 3000);
	CHECK_EQ(fd_parse_duration("1m", &ms), 0);
	CHECK_EQ(ms, 60000);
	CHECK_EQ(fd_parse_duration("2h", &ms), 0);
	CHECK_EQ(ms, 7200000);
	CHECK_EQ(fd_parse_duration("1.5", &ms), 0);
	CHECK_EQ(ms, 1500);
	CHECK_EQ(fd_parse_duration("0", &ms), 0);
	CHECK_EQ(ms, 0);
	CHECK_EQ(fd_parse_duration("0.25s", &ms), 0);
	CHECK_EQ(ms, 250);
}

TEST(duration_rejects)
{
	const char *bad[] = {"",    "-1s", "+1s", "s",	   "1x", "1 s",	  " 1s",
			     "1ss", "nan", "inf", "1e400", "ms", "1.2.3s"};
	int64_t ms = 42;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		if (fd_parse_duration(bad[i], &ms) != -1)
			unit_fail(__FILE__, __LINE__, "accepted '%s'", bad[i]);
		CHECK(errno == EINVAL || errno == ERANGE);
	}
	CHECK_EQ(ms, 42);
}

/* Property: formatting n ms as "<n>ms", "<n/1000>s" round-trips. */
TEST(duration_roundtrip_random)
{
	char buf[64];
	int64_t ms;

	for (int i = 0; i < 5000; i++) {
		int64_t v = (int64_t)unit_rand_below(1000000000);

		snprintf(buf, sizeof(buf), "%" PRId64 "ms", v);
		REQUIRE(fd_parse_duration(buf, &ms) == 0);
		CHECK_EQ(ms, v);
		snprintf(buf, sizeof(buf), "%" PRId64 ".%03ds", v / 1000,
			 (int)(v % 1000));
		REQUIRE(fd_parse_duration(buf, &ms) == 0);
		CHECK_EQ(ms, v);
	}
}

TEST(size_units)
{
	uint64_t b;

	CHECK_EQ(fd_parse_size("64KiB", &b), 0);
	CHECK_EQ(b, 65536);
	CHECK_EQ(fd_parse_size("64K", &b), 0);
	CHECK_EQ(b, 65536);
	CHECK_EQ(fd_parse_size("8MiB", &b), 0);
	CHECK_EQ(b, 8 << 20);
	CHECK_EQ(fd_parse_size("1GiB", &b), 0);
	CHECK_EQ(b, 1 << 30);
	CHECK_EQ(fd_parse_size("10MB", &b), 0);
	CHECK_EQ(b, 10000000);
	CHECK_EQ(fd_parse_size("123", &b), 0);
	CHECK_EQ(b, 123);
	CHECK_EQ(fd_parse_size("5B", &b), 0);
	CHECK_EQ(b, 5);
	CHECK_EQ(fd_parse_size("", &b), -1);
	CHECK_EQ(fd_parse_size("-1", &b), -1);
	CHECK_EQ(fd_parse_size("1.5K", &b), -1);
	CHECK_EQ(fd_parse_size("1Ki", &b), -1);
	CHECK_EQ(fd_parse_size("99999999999999999999", &b), -1);
	CHECK_EQ(fd_parse_size("17179869184G", &b), -1);
	CHECK_EQ(errno, ERANGE);
}

TEST(parse_int_bounds)
{
	long long v;

	CHECK_EQ(fd_parse_int("42", 0, 100, &v), 0);
	CHECK_EQ(v, 42);
	CHECK_EQ(fd_parse_int("101", 0, 100, &v), -1);
	CHECK_EQ(errno, ERANGE);
	CHECK_EQ(fd_parse_int("4x", 0, 100, &v), -1);
	CHECK_EQ(errno, EINVAL);
	CHECK_EQ(fd_parse_int("", 0, 100, &v), -1);
}

TEST(hostport)
{
	char host[64];
	int port = -1;

	CHECK_EQ(fd_parse_hostport("127.0.0.1:4380", host, sizeof(host), -1, &port),
		 0);
	CHECK_STR(host, "127.0.0.1");
	CHECK_EQ(port, 4380);
	CHECK_EQ(fd_parse_hostport("[::1]:0", host, sizeof(host), -1, &port), 0);
	CHECK_STR(host, "::1");
	CHECK_EQ(port, 0);
	CHECK_EQ(fd_parse_hostport("node-a", host, sizeof(host), 4380, &port), 0);
	CHECK_STR(host, "node-a");
	CHECK_EQ(port, 4380);
	CHECK_EQ(fd_parse_hostport("node-a", host, sizeof(host), -1, &port), -1);
	CHECK_EQ(fd_parse_hostport("a:65536", host, sizeof(host), -1, &port), -1);
	CHECK_EQ(fd_parse_hostport("a:-1", host, sizeof(host), -1, &port), -1);
	CHECK_EQ(fd_parse_hostport(":80", host, sizeof(host), -1, &port), -1);
	CHECK_EQ(fd_parse_hostport("::1:80", host, sizeof(host), -1, &port), -1);
	CHECK_EQ(fd_parse_hostport("[::1", host, sizeof(host), -1, &port), -1);
	CHECK_EQ(fd_parse_hostport("a b:80", host, sizeof(host), -1, &port), -1);
	CHECK_EQ(fd_parse_hostport("a:80x", host, sizeof(host), -1, &port), -1);
	CHECK_EQ(fd_parse_hostport("", host, sizeof(host), -1, &port), -1);
}

TEST(exit_codes_are_design_s4)
{
	CHECK_EQ(FD_EXIT_OK, 0);
	CHECK_EQ(FD_EXIT_RUNTIME, 1);
	CHECK_EQ(FD_EXIT_USAGE, 2);
	CHECK_EQ(FD_EXIT_NOTFOUND, 3);
	CHECK_EQ(FD_EXIT_CONFLICT, 4);
	CHECK_EQ(FD_EXIT_TIMEOUT, 5);
	CHECK_EQ(FD_EXIT_REGRESSION, 6);
	CHECK_EQ(FD_EXIT_DATA, 7);
}
