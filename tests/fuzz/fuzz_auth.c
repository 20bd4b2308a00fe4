/* libFuzzer harness for auth: the key file parser, sealed datagrams and the
 * X-FD-Auth header, the decoders a node runs on bytes from outside.
 *
 * The first byte picks what the rest is:
 *   0  a key file: fd_keyring_parse; what parses formats and parses back
 *      to the same ring;
 *   1  a datagram: fd_auth_open with a fixed key (and its id), context and
 *      clock; what opens must not open a second time (replay cache), nor
 *      under another context;
 *   2  a request header: fd_auth_verify (body and streamed) and
 *      fd_auth_verify_response against it, fd_auth_header_kid;
 *   3  a key: fd_key_parse; what parses formats back to the same text.
 * Seeds (tests/fuzz/seeds-auth/) are made with the key below at the time
 * below (a sealed datagram that opens, signed headers that verify).
 * Built by scripts/run-fuzz with clang -fsanitize=fuzzer,address,undefined
 * against the libcommon sources.
 */
#include "auth.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ASSERT(c)                         \
	do {                              \
		if (!(c))                 \
			__builtin_trap(); \
	} while (0)

#define KEY "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define NOW 1767225600000LL

static struct fd_keyring ring;

static void init_ring(void)
{
	if (ring.n)
		return;
	if (fd_key_parse(KEY, &ring.keys[0], NULL) < 0)
		abort();
	ring.n = 1;
}

static void keyfile(const uint8_t *d, size_t n)
{
	struct fd_keyring kr, kr2;
	struct fd_err err;
	char *text;

	if (fd_keyring_parse((const char *)d, n, &kr, &err) < 0)
		return;
	ASSERT(kr.n >= 1 && kr.n <= FD_KEYRING_MAX);
	text = fd_keyring_format(&kr);
	ASSERT(text);
	ASSERT(fd_keyring_parse(text, strlen(text), &kr2, &err) == 0);
	ASSERT(kr2.n == kr.n);
	for (size_t i = 0; i < kr.n; i++)
		ASSERT(memcmp(kr.keys[i].bytes, kr2.keys[i].bytes, FD_KEY_LEN) == 0);
	free(text);
}

static void datagram(const uint8_t *d, size_t n)
{
	struct fd_replay *rc = fd_replay_new(FD_AUTH_WINDOW_MS_DEFAULT, 64);
	uint8_t *out = malloc(n ? n : 1);
	struct fd_err err;
	ssize_t r;

	ASSERT(rc && out);
	r = fd_auth_open(&ring, rc, "udp>127.0.0.1:4380", "fd", NOW, d, n, out,
			 n, &err);
	if (r >= 0) {
		ASSERT((size_t)r + FD_SEAL_OVERHEAD == n);
		ASSERT(fd_auth_open(&ring, rc, "udp>127.0.0.1:4380", "fd", NOW,
				    d, n, out, n, &err) < 0);
		ASSERT(fd_auth_open(&ring, NULL, "udp>127.0.0.1:4381", "fd",
				    NOW, d, n, out, n, &err) < 0);
	}
	fd_replay_free(rc);
	free(out);
}

static void header(const uint8_t *d, size_t n)
{
	char *h = malloc(n + 1), resp[FD_AUTH_HEADER_MAX];
	struct fd_replay *rc = fd_replay_new(FD_AUTH_WINDOW_MS_DEFAULT, 64);
	struct fd_err err;
	uint32_t kid;

	ASSERT(h && rc);
	memcpy(h, d, n);
	h[n] = '\0';
	if (fd_auth_verify(&ring, rc, "GET", "/v1/cluster/keys", "fd", NOW, "",
			   0, 0, h, &err) == 0)
		ASSERT(fd_auth_verify(&ring, rc, "GET", "/v1/cluster/keys",
				      "fd", NOW, "", 0, 0, h, &err) < 0);
	fd_auth_verify(&ring, NULL, "POST", "/v1/cluster/pubsub", "fd", NOW,
		       NULL, 0, 1, h, &err);
	fd_auth_verify_response(&ring, "fd", h, 200, "{}", 2, h, &err);
	if (fd_auth_sign_response(&ring, "fd", h, 200, "{}", 2, resp) == 0)
		ASSERT(fd_auth_verify_response(&ring, "fd", h, 200, "{}", 2,
					       resp, &err) == 0);
	fd_auth_header_kid(h, &kid);
	fd_replay_free(rc);
	free(h);
}

static void key(const uint8_t *d, size_t n)
{
	char *t = malloc(n + 1), b64[FD_KEY_B64_LEN + 1];
	struct fd_key k;

	ASSERT(t);
	memcpy(t, d, n);
	t[n] = '\0';
	if (fd_key_parse(t, &k, NULL) == 0) {
		fd_key_format(&k, b64);
		ASSERT(strstr(t, b64) != NULL);
	}
	free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	init_ring();
	if (size < 1)
		return 0;
	switch (data[0] & 3) {
	case 0: keyfile(data + 1, size - 1); break;
	case 1: datagram(data + 1, size - 1); break;
	case 2: header(data + 1, size - 1); break;
	case 3: key(data + 1, size - 1); break;
	}
	return 0;
}
