#include "buf.h"
#include "unit.h"

#include <errno.h>
#include <stdlib.h>

TEST(append_and_cap)
{
	struct fd_buf b = FD_BUF_INIT(10);

	CHECK_STR(fd_buf_str(&b), "");
	CHECK_EQ(fd_buf_append(&b, "hello", 5), 0);
	CHECK_EQ(fd_buf_append(&b, "", 0), 0);
	CHECK_STR(fd_buf_str(&b), "hello");
	CHECK_EQ(fd_buf_append(&b, "world", 5), 0);
	CHECK_EQ(b.len, 10);
	errno = 0;
	CHECK_EQ(fd_buf_append(&b, "!", 1), -1);
	CHECK_EQ(errno, EMSGSIZE);
	CHECK_STR(fd_buf_str(&b), "helloworld");
	fd_buf_release(&b);
	CHECK_EQ(b.len, 0);
	CHECK_EQ(fd_buf_append(&b, "again", 5), 0);
	CHECK_STR(fd_buf_str(&b), "again");
	fd_buf_release(&b);
}

/* Property: random appends give the concatenation, binary data included,
 * and an append that would pass the maximum changes nothing. */
TEST(random_appends_match_reference)
{
	for (int round = 0; round < 200; round++) {
		size_t max = (size_t)unit_rand_below(20000) + 1, rlen = 0;
		struct fd_buf b = FD_BUF_INIT(max);
		char *ref = malloc(max), chunk[3000];

		for (int k = 0; k < 40; k++) {
			size_t n = (size_t)unit_rand_below(sizeof(chunk));

			for (size_t i = 0; i < n; i++)
				chunk[i] = (char)unit_rand();
			if (rlen + n <= max) {
				REQUIRE(fd_buf_append(&b, chunk, n) == 0);
				memcpy(ref + rlen, chunk, n);
				rlen += n;
			} else {
				CHECK_EQ(fd_buf_append(&b, chunk, n), -1);
			}
			REQUIRE(b.len == rlen);
		}
		CHECK(rlen == 0 || memcmp(b.data, ref, rlen) == 0);
		CHECK(b.data == NULL || b.data[b.len] == '\0');
		free(ref);
		fd_buf_release(&b);
	}
}

TEST(clear_keeps_memory)
{
	struct fd_buf b = FD_BUF_INIT(8);
	char *data;

	fd_buf_clear(&b); /* before the first append: nothing to do */
	CHECK_STR(fd_buf_str(&b), "");
	REQUIRE(fd_buf_append(&b, "abcdefgh", 8) == 0);
	data = b.data;
	fd_buf_clear(&b);
	CHECK(b.len == 0);
	CHECK(b.data == data);
	CHECK_STR(fd_buf_str(&b), "");
	/* The whole maximum is available again. */
	CHECK_EQ(fd_buf_append(&b, "12345678", 8), 0);
	CHECK_STR(fd_buf_str(&b), "12345678");
	fd_buf_release(&b);
}

/* Property: after fd_buf_reserve(n), appends of up to n bytes in all move
 * nothing; the contents stay what was appended; reserving past the maximum
 * is refused. */
TEST(reserve_then_append_moves_nothing)
{
	for (int iter = 0; iter < 500 && !unit_failed; iter++) {
		size_t max = 1 + unit_rand_below(100000);
		struct fd_buf b = FD_BUF_INIT(max);
		size_t pre = unit_rand_below(max + 1), n;
		char *ref = malloc(max + 1);
		const char *at;

		for (size_t i = 0; i < pre; i++)
			ref[i] = (char)unit_rand();
		REQUIRE(fd_buf_append(&b, ref, pre) == 0);
		n = unit_rand_below(max - pre + 1);
		errno = 0;
		CHECK_EQ(fd_buf_reserve(&b, max - pre + 1), -1);
		CHECK_EQ(errno, EMSGSIZE);
		REQUIRE(fd_buf_reserve(&b, n) == 0);
		at = fd_buf_str(&b);
		CHECK_EQ(b.len, pre);
		CHECK_STR(fd_buf_str(&b) + pre, "");
		for (size_t done = 0; done < n;) {
			size_t k = 1 + unit_rand_below(n - done);

			for (size_t i = 0; i < k; i++)
				ref[pre + done + i] = (char)unit_rand();
			REQUIRE(fd_buf_append(&b, ref + pre + done, k) == 0);
			done += k;
			if (b.len > 0)
				CHECK(b.data == at);
		}
		CHECK_EQ(b.len, pre + n);
		CHECK(b.len == 0 || memcmp(b.data, ref, b.len) == 0);
		free(ref);
		fd_buf_release(&b);
	}
}
