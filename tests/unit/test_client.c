/* The client's choice of scheme, its TLS files and its token (client.h):
 * no network here, only what fd_client_init decides. */
#include "client.h"
#include "unit.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static void reset(void)
{
	memset(&fd_client_sec, 0, sizeof(fd_client_sec));
	unsetenv("FD_TLS_CA");
	unsetenv("FD_TLS_CERT");
	unsetenv("FD_TLS_KEY");
	unsetenv("FD_TOKEN");
}

/* 1 for https, 0 for http, -1 when init failed (err filled). */
static int scheme(const char *addr, struct fd_err *err)
{
	struct fd_client c;
	int tls;

	if (fd_client_init(&c, addr, 1000, err) < 0)
		return -1;
	tls = strcmp(fd_client_scheme(&c), "https") == 0;
	CHECK_EQ(tls, c.tls);
	fd_client_release(&c);
	return tls;
}

TEST(scheme_rule)
{
	struct fd_err err;

	reset();
	CHECK_EQ(scheme("127.0.0.1:4380", &err), 0);
	CHECK_EQ(scheme("http://127.0.0.1:4380", &err), 0);
	CHECK_EQ(scheme("https://127.0.0.1:4380", &err), 1);
	CHECK_EQ(scheme("https://[::1]:4380", &err), 1);
	/* a CA (option or environment) makes a bare address https */
	fd_client_sec.tls_ca = "/dev/null";
	CHECK_EQ(scheme("127.0.0.1:4380", &err), 1);
	CHECK_EQ(scheme("http://127.0.0.1:4380", &err), 0);
	reset();
	setenv("FD_TLS_CA", "/dev/null", 1);
	CHECK_EQ(scheme("127.0.0.1:4380", &err), 1);
	reset();
	setenv("FD_TLS_CA", "", 1); /* empty: unset */
	CHECK_EQ(scheme("127.0.0.1:4380", &err), 0);
	reset();
	fd_client_sec.tls_cert = "/dev/null";
	CHECK_EQ(scheme("127.0.0.1:4380", &err), 1);
	reset();
	CHECK_EQ(scheme("https://127.0.0.1", &err), -1);
	CHECK_STR(err.msg, "invalid node address 'https://127.0.0.1' (expected "
			   "HOST:PORT or https://HOST:PORT)");
	CHECK_EQ(scheme("ftp://127.0.0.1:1", &err), -1);
	CHECK_EQ(scheme("127.0.0.1:0", &err), -1);
}

TEST(tls_files_checked)
{
	struct fd_err err;

	reset();
	fd_client_sec.tls_ca = "/nonexistent/ca.pem";
	CHECK_EQ(scheme("127.0.0.1:1", &err), -1);
	CHECK_STR(err.msg, "unable to read the TLS CA '/nonexistent/ca.pem': "
			   "No such file or directory");
	reset();
	setenv("FD_TLS_KEY", "/dev/null", 1);
	CHECK_EQ(scheme("127.0.0.1:1", &err), -1);
	CHECK_STR(err.msg, "a TLS key without a certificate (--tls-cert)");
	reset();
}

TEST(token)
{
	struct fd_client c;
	struct fd_err err;

	reset();
	fd_client_sec.token = "abc-123";
	REQUIRE(fd_client_init(&c, "127.0.0.1:1", 1000, &err) == 0);
	CHECK_STR(c.auth, "Authorization: Bearer abc-123");
	fd_client_release(&c);
	CHECK(c.auth == NULL);
	fd_client_sec.token = "two words";
	CHECK_EQ(fd_client_init(&c, "127.0.0.1:1", 1000, &err), -1);
	CHECK_STR(err.msg, "invalid token (1 to 1024 visible ASCII characters)");
	fd_client_sec.token = "x\r\nHost: evil";
	CHECK_EQ(fd_client_init(&c, "127.0.0.1:1", 1000, &err), -1);
	reset();
	setenv("FD_TOKEN", "from-env", 1);
	REQUIRE(fd_client_init(&c, "127.0.0.1:1", 1000, &err) == 0);
	CHECK_STR(c.auth, "Authorization: Bearer from-env");
	fd_client_release(&c);
	/* the option wins over the environment */
	fd_client_sec.token = "from-opt";
	REQUIRE(fd_client_init(&c, "127.0.0.1:1", 1000, &err) == 0);
	CHECK_STR(c.auth, "Authorization: Bearer from-opt");
	fd_client_release(&c);
	reset();
	REQUIRE(fd_client_init(&c, "127.0.0.1:1", 1000, &err) == 0);
	CHECK(c.auth == NULL);
	fd_client_release(&c);
}

TEST(options)
{
	static const struct option opts[] = {FD_CLIENT_OPTIONS, {0}};
	int n = 0;

	reset();
	for (const struct option *o = opts; o->name; o++)
		n++;
	CHECK_EQ(n, 4);
	CHECK_EQ(fd_client_opt(FD_OPT_TLS_CA, "a"), 1);
	CHECK_EQ(fd_client_opt(FD_OPT_TLS_CERT, "b"), 1);
	CHECK_EQ(fd_client_opt(FD_OPT_TLS_KEY, "c"), 1);
	CHECK_EQ(fd_client_opt(FD_OPT_TOKEN, "d"), 1);
	CHECK_EQ(fd_client_opt('n', "x"), 0);
	CHECK_STR(fd_client_sec.tls_ca, "a");
	CHECK_STR(fd_client_sec.tls_cert, "b");
	CHECK_STR(fd_client_sec.tls_key, "c");
	CHECK_STR(fd_client_sec.token, "d");
	reset();
}
