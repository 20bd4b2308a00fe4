/* The cluster key in the node (auth.h does the cryptography): loads the
 * key file, seals every UDP datagram sent and opens every one received,
 * signs every node-to-node HTTP request and checks the answers, checks the
 * signature of every /v1/cluster/ request (401 otherwise) and signs the
 * answers; /v1/keys changes the ring across the cluster (through signed
 * /v1/cluster/keys requests with sealed bodies) and the file follows.
 *
 * A datagram is sealed under the context "udp>" + its destination address
 * and the cluster name (see keys_udp_send).
 *
 * Rollout (--encrypt-rollout): everything received may also be plaintext
 * or unsigned (counted). Requests are signed anyway (a node without a key
 * ignores the header). A datagram is sealed for a peer this node has
 * opened a sealed datagram from in the last EVIDENCE_MS; to any other peer
 * it goes twice, plain and sealed: a node without a key reads the first
 * (and drops the second as undecodable), a node with one reads both (the
 * membership protocol takes duplicates) and so starts sealing back. */
#include "auth.h"
#include "cli.h"
#include "clock.h"
#include "http.h"
#include "jsonl.h"
#include "log.h"
#include "member.h"
#include "node.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define CLUSTER_PREFIX "/v1/cluster/"
#define KEYS_PATH "/v1/cluster/keys"
#define KEY_FILE_MAX (64 * 1024)
#define LOG_EVERY_MS 5000	  /* at most one rejection line per kind */
#define EVIDENCE_MS 10000	  /* rollout: a peer seals for this long */
#define EVIDENCE_MAX 4096	  /* rollout: peers remembered */
#define UDP_REPLAY_MAX 65536	  /* datagram nonces within the window */
#define HTTP_REPLAY_MAX (1 << 18) /* request nonces within the window */
#define FANOUT_TIMEOUT_MS 5000

enum reason {
	R_MISSING,
	R_UNKNOWN_KEY,
	R_BAD,
	R_STALE,
	R_REPLAYED,
	R_OTHER,
	NREASONS
};

/* counter names; the first differs: a datagram is "not sealed", a
 * request "unsigned" */
static const char *const reason_names[NREASONS] = {
	"not_sealed", "unknown_key", "bad_auth", "stale", "replayed", "other"};

static const char *reason_name(enum reason r, int http)
{
	return http && r == R_MISSING ? "unsigned" : reason_names[r];
}

static enum reason reason_of(int e)
{
	switch (e) {
	case ENOMSG: return R_MISSING;
	case ENOKEY: return R_UNKNOWN_KEY;
	case EBADMSG: return R_BAD;
	case ETIME: return R_STALE;
	case EALREADY: return R_REPLAYED;
	default: return R_OTHER;
	}
}

static const char *hint_of(enum reason r, int http)
{
	switch (r) {
	case R_MISSING:
		return http ? " (this cluster needs a key: --key-file)"
			    : " (a node without a key?)";
	case R_UNKNOWN_KEY: return " (is it in the key file?)";
	case R_BAD:
		return http ? " (another cluster name, or forged?)"
			    : " (another cluster name, sent to another address, "
			      "or forged?)";
	case R_STALE: return " (are the clocks in sync?)";
	default: return "";
	}
}

struct ratelog {
	int64_t last;
	uint64_t suppressed;
};

struct evidence {
	char addr[FD_MEMBER_ADDR_MAX + 1];
	int64_t at; /* 0: empty slot */
};

struct keyop;

/* The last request signature, lent to the same request for other nodes:
 * the registry and pub/sub send one body to several peers at once, and a
 * signature names no destination (each node's replay cache takes the
 * nonce once), so one is enough. Never lent twice to one destination (its
 * replay cache would refuse it), nor past SIG_LEND_MS, nor across a change
 * of primary key, nor for a streamed body. */
#define SIG_LEND_MS 1000
#define SIG_LEND_BODY_MAX 65536
#define SIG_LEND_DESTS 32
struct siglend {
	uint32_t kid;
	int64_t at; /* 0: empty */
	char method[16];
	char *target, *body;
	size_t len;
	char value[FD_AUTH_HEADER_MAX];
	char *dests[SIG_LEND_DESTS];
	int ndests;
};

struct keys {
	struct node *n;
	struct fd_keyring kr;
	int enabled, rollout;
	const char *path, *cluster;
	struct fd_replay *udp_rc, *http_rc;
	struct evidence *ev; /* rollout only: EVIDENCE_MAX slots */
	struct ratelog udp_log[NREASONS], http_log[NREASONS];
	struct keyop *ops; /* /v1/keys fan-outs in flight */
	struct siglend lend;
	/* counters */
	uint64_t udp_sealed, udp_opened, udp_plain, udp_rej[NREASONS];
	uint64_t http_signed, http_lent, http_verified, http_unsigned,
		http_rej[NREASONS];
	uint64_t resp_signed, resp_verified, resp_unsigned, resp_rej;
	uint64_t reloads;
};

static int64_t wall_ms(void)
{
	return fd_wall_us() / 1000;
}

static void ratelog(struct ratelog *rl, int64_t now, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void ratelog(struct ratelog *rl, int64_t now, const char *fmt, ...)
{
	char msg[600];
	va_list ap;

	if (rl->last && now - rl->last < LOG_EVERY_MS) {
		rl->suppressed++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (rl->suppressed)
		fd_warnlog("%s (and %llu more like it in the last %ds)", msg,
			   (unsigned long long)rl->suppressed,
			   (int)((now - rl->last) / 1000));
	else
		fd_warnlog("%s", msg);
	rl->last = now;
	rl->suppressed = 0;
}

/* Key file */

/* Reads and parses the key file; 0, or -1 with why filled and *usage set
 * when the fault is the file's (permissions, contents), not the system's. */
static int read_key_file(const char *path, struct fd_keyring *kr, char *why,
			 size_t len, int *usage)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *text;
	ssize_t got;
	struct fd_err err;
	int rc;

	*usage = 0;
	if (fd < 0)
		return snprintf(why, len, "unable to open key file '%s': %s",
				path, strerror(errno)),
		       -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		*usage = 1;
		return snprintf(why, len, "key file '%s' is not a regular file", path),
		       -1;
	}
	if (st.st_mode & 077) {
		close(fd);
		*usage = 1;
		return snprintf(why, len,
				"key file '%s' is accessible to group or others "
				"(mode %04o): chmod 600 it",
				path, (unsigned)(st.st_mode & 07777)),
		       -1;
	}
	if (st.st_size > KEY_FILE_MAX) {
		close(fd);
		*usage = 1;
		return snprintf(why, len, "key file '%s' is too large", path), -1;
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text) {
		close(fd);
		return snprintf(why, len, "out of memory"), -1;
	}
	got = read(fd, text, (size_t)st.st_size + 1);
	close(fd);
	if (got < 0) {
		free(text);
		return snprintf(why, len, "unable to read key file '%s': %s",
				path, strerror(errno)),
		       -1;
	}
	rc = fd_keyring_parse(text, (size_t)got, kr, &err);
	OPENSSL_cleanse(text, (size_t)st.st_size + 1);
	free(text);
	if (rc < 0) {
		*usage = 1;
		return snprintf(why, len, "key file '%s': %s", path, err.msg), -1;
	}
	return 0;
}

/* Writes kr to the key file: a temporary file (0600) beside it, fsync'd,
 * renamed over it. 0, or -1 with why filled. */
static int save_key_file(const char *path, const struct fd_keyring *kr,
			 char *why, size_t len)
{
	char *text = fd_keyring_format(kr), tmp[4096], dir[4096];
	size_t tl;
	int fd, dfd;

	if (!text)
		return snprintf(why, len, "out of memory"), -1;
	tl = strlen(text);
	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp)) {
		free(text);
		return snprintf(why, len, "key file path too long"), -1;
	}
	fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
	if (fd < 0 || fchmod(fd, 0600) < 0 ||
	    write(fd, text, tl) != (ssize_t)tl || fsync(fd) < 0) {
		int e = errno;

		if (fd >= 0) {
			close(fd);
			unlink(tmp);
		}
		OPENSSL_cleanse(text, tl);
		free(text);
		return snprintf(why, len, "unable to write a new '%s': %s",
				path, strerror(e)),
		       -1;
	}
	OPENSSL_cleanse(text, tl);
	free(text);
	close(fd);
	if (rename(tmp, path) < 0) {
		int e = errno;

		unlink(tmp);
		return snprintf(why, len, "unable to replace '%s': %s", path,
				strerror(e)),
		       -1;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

static void log_ring(struct keys *ks, const char *what)
{
	char id[9];

	fd_key_id_hex(ks->kr.keys[ks->kr.primary].id, id);
	fd_info("%s: %zu key%s, primary %s, cluster '%s'%s", what, ks->kr.n,
		ks->kr.n == 1 ? "" : "s", id, ks->cluster,
		ks->rollout ? ", rollout (plaintext accepted)" : "");
}

int keys_load(struct node *n)
{
	const struct node_opts *o = n->opts;
	struct keys *ks = calloc(1, sizeof(*ks));
	char why[512];
	int usage;

	if (!ks)
		return -1;
	n->keys = ks;
	ks->n = n;
	ks->path = o->key_file;
	ks->cluster = o->cluster;
	ks->rollout = o->encrypt_rollout;
	if (!ks->path) {
		if (ks->rollout)
			fd_usage_die("--encrypt-rollout needs --key-file");
		return 0;
	}
	if (read_key_file(ks->path, &ks->kr, why, sizeof(why), &usage) < 0)
		fd_die(usage ? FD_EXIT_USAGE : FD_EXIT_RUNTIME, "%s", why);
	ks->enabled = 1;
	ks->udp_rc = fd_replay_new(FD_AUTH_WINDOW_MS_DEFAULT, UDP_REPLAY_MAX);
	ks->http_rc = fd_replay_new(FD_AUTH_WINDOW_MS_DEFAULT, HTTP_REPLAY_MAX);
	if (ks->rollout)
		ks->ev = calloc(EVIDENCE_MAX, sizeof(*ks->ev));
	if (!ks->udp_rc || !ks->http_rc || (ks->rollout && !ks->ev))
		fd_die(FD_EXIT_RUNTIME, "out of memory");
	return 0;
}

int keys_enabled(const struct node *n)
{
	return n->keys && n->keys->enabled;
}

const struct fd_keyring *keys_ring(const struct node *n)
{
	return keys_enabled(n) ? &n->keys->kr : NULL;
}

void keys_reload(struct node *n)
{
	struct keys *ks = n->keys;
	struct fd_keyring kr;
	char why[512];
	int usage;

	if (!ks->enabled) {
		fd_info("SIGHUP: no key file to reload (started without --key-file)");
		return;
	}
	if (read_key_file(ks->path, &kr, why, sizeof(why), &usage) < 0) {
		fd_errlog("SIGHUP: %s; keeping the keys in use", why);
		return;
	}
	fd_keyring_clear(&ks->kr);
	ks->kr = kr;
	fd_keyring_clear(&kr);
	ks->reloads++;
	log_ring(ks, "SIGHUP: key file reloaded");
}

/* Rollout evidence: peers we opened a sealed datagram from, by address */

static size_t ev_slot(const char *addr)
{
	uint64_t h = 1469598103934665603ULL;

	for (const char *s = addr; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (size_t)(h % EVIDENCE_MAX);
}

/* The slot for addr (or the free / stalest one to take, probing 8). */
static struct evidence *ev_find(struct keys *ks, const char *addr, int create,
				int64_t now)
{
	size_t h = ev_slot(addr);
	struct evidence *victim = NULL;

	for (size_t i = 0; i < 8; i++) {
		struct evidence *e = &ks->ev[(h + i) % EVIDENCE_MAX];

		if (e->at && strcmp(e->addr, addr) == 0)
			return e;
		if (!e->at) {
			if (!victim || victim->at)
				victim = e; /* an empty slot first */
		} else if (!victim || (victim->at && e->at < victim->at)) {
			victim = e; /* else the stalest */
		}
	}
	/* every slot fresh: keep them (that peer gets plain and sealed) */
	if (!create || (victim->at && now - victim->at <= EVIDENCE_MS))
		return NULL;
	snprintf(victim->addr, sizeof(victim->addr), "%s", addr);
	return victim;
}

static int peer_seals(struct keys *ks, const char *addr, int64_t now)
{
	struct evidence *e = ev_find(ks, addr, 0, now);

	return e && now - e->at <= EVIDENCE_MS;
}

/* UDP */

static int send_raw(struct node *n, const char *addr, const void *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl;

	if (node_sockaddr(addr, &ss, &sl) < 0)
		return -1;
	return sendto(n->udp_fd, buf, len, 0, (struct sockaddr *)&ss, sl) < 0 ? -1
									      : 0;
}

/* A datagram is sealed for its destination: the context is "udp>" and the
 * address it is sent to, which the receiver knows as its own address. So a
 * datagram captured on its way to one node does not open at another (and
 * at its own destination, the replay cache refuses it a second time). */
static void udp_context(char *ctx, size_t len, const char *addr)
{
	snprintf(ctx, len, "udp>%s", addr);
}

int keys_udp_send(struct node *n, const char *addr, const void *buf, size_t len)
{
	struct keys *ks = n->keys;
	uint8_t sealed[FD_WIRE_MTU + FD_SEAL_OVERHEAD];
	char ctx[96];
	ssize_t sl;

	if (!ks->enabled)
		return send_raw(n, addr, buf, len);
	if (ks->rollout && !peer_seals(ks, addr, fd_mono_ms()) &&
	    send_raw(n, addr, buf, len) < 0)
		return -1;
	udp_context(ctx, sizeof(ctx), addr);
	sl = fd_auth_seal(&ks->kr, ctx, ks->cluster, wall_ms(), buf, len,
			  sealed, sizeof(sealed));
	if (sl < 0)
		return -1;
	ks->udp_sealed++;
	return send_raw(n, addr, sealed, (size_t)sl);
}

const void *keys_udp_open(struct node *n, const char *from, const void *buf,
			  size_t len, void *out, size_t cap, size_t *outlen)
{
	struct keys *ks = n->keys;
	struct fd_err err;
	char ctx[96];
	ssize_t pl;
	enum reason r;

	*outlen = len;
	if (!ks->enabled)
		return buf;
	if (ks->rollout && !fd_auth_is_sealed(buf, len)) {
		ks->udp_plain++;
		return buf;
	}
	udp_context(ctx, sizeof(ctx), n->addr);
	pl = fd_auth_open(&ks->kr, ks->udp_rc, ctx, ks->cluster, wall_ms(), buf,
			  len, out, cap, &err);
	if (pl >= 0) {
		ks->udp_opened++;
		if (ks->rollout) {
			int64_t now = fd_mono_ms();
			struct evidence *e = ev_find(ks, from, 1, now);

			if (e)
				e->at = now;
		}
		*outlen = (size_t)pl;
		return out;
	}
	r = reason_of(errno);
	ks->udp_rej[r]++;
	ratelog(&ks->udp_log[r], fd_mono_ms(), "dropped datagram from %s: %s%s",
		from, err.msg, hint_of(r, 0));
	return NULL;
}

/* HTTP: the client side */

static void lend_clear(struct siglend *l)
{
	free(l->target);
	free(l->body);
	for (int i = 0; i < l->ndests; i++)
		free(l->dests[i]);
	memset(l, 0, sizeof(*l));
}

/* The lent signature's value if it signs this request and was never sent
 * to dest (which is recorded), else NULL. */
static const char *lend(struct siglend *l, uint32_t kid, int64_t now,
			const char *dest, const char *method, const char *target,
			const void *body, size_t len, int stream)
{
	if (!l->at || stream || l->kid != kid || now - l->at >= SIG_LEND_MS ||
	    now < l->at || l->len != len || l->ndests == SIG_LEND_DESTS ||
	    strcmp(l->method, method) || strcmp(l->target, target) ||
	    (len && memcmp(l->body, body, len)))
		return NULL;
	for (int i = 0; i < l->ndests; i++)
		if (strcmp(l->dests[i], dest) == 0)
			return NULL;
	if (!(l->dests[l->ndests] = strdup(dest)))
		return NULL;
	l->ndests++;
	return l->value;
}

/* Keeps a new signature to lend (when the request is small enough). */
static void lend_keep(struct siglend *l, uint32_t kid, int64_t now,
		      const char *dest, const char *method, const char *target,
		      const void *body, size_t len, int stream, const char *value)
{
	lend_clear(l);
	if (stream || len > SIG_LEND_BODY_MAX || strlen(method) >= sizeof(l->method))
		return; /* a streamed body is not signed: its header stays one's */
	l->target = strdup(target);
	l->body = malloc(len ? len : 1);
	l->dests[0] = strdup(dest);
	if (!l->target || !l->body || !l->dests[0]) {
		lend_clear(l);
		return;
	}
	l->ndests = 1;
	if (len)
		memcpy(l->body, body, len);
	l->len = len;
	l->kid = kid;
	l->at = now;
	strcpy(l->method, method);
	strcpy(l->value, value);
}

static int sign_request(const char *dest, const char *method,
			const char *target, const void *body, size_t len,
			int stream, char *hdr, size_t cap, void *arg)
{
	struct keys *ks = arg;
	char v[FD_AUTH_HEADER_MAX];
	const char *lent;
	int64_t now = wall_ms();
	uint32_t kid;

	if (!ks->enabled)
		return 0;
	kid = ks->kr.keys[ks->kr.primary].id;
	lent = lend(&ks->lend, kid, now, dest, method, target, body, len, stream);
	if (!lent) {
		if (fd_auth_sign(&ks->kr, method, target, ks->cluster, now,
				 body, len, stream, v) < 0)
			return 0;
		lend_keep(&ks->lend, kid, now, dest, method, target, body, len,
			  stream, v);
		lent = v;
	} else {
		ks->http_lent++;
	}
	snprintf(hdr, cap, "%s: %s", FD_AUTH_HEADER, lent);
	ks->http_signed++;
	return 1;
}

/* Whether the answers to a path (or request target) carry proof: those a
 * node merges or acts on, the answers of /v1/cluster/, but not the
 * registry delta's, a bare acknowledgement. Faking one (an attacker on the
 * path, without TLS) delays that peer's copy until anti-entropy, as
 * dropping the request does; signing and checking it cost registry.visible
 * 5 to 7 points with a key (measured, 100 interleaved pairs each way). */
static int answer_proven(const char *target)
{
	return strncmp(target, CLUSTER_PREFIX, strlen(CLUSTER_PREFIX)) == 0 &&
	       strcmp(target, REGISTRY_DELTA_PATH) != 0;
}

static int check_answer(const char *target, const char *sent, long status,
			const char *value, const char *body, size_t len,
			char *why, size_t cap, void *arg)
{
	struct keys *ks = arg;
	const char *req = sent + strlen(FD_AUTH_HEADER) + 2;
	struct fd_err err;

	/* An error answer can only make the request fail. */
	if (!ks->enabled || !answer_proven(target) || status < 200 || status > 299)
		return 0;
	if (!value && ks->rollout) {
		ks->resp_unsigned++;
		return 0;
	}
	if (fd_auth_verify_response(&ks->kr, ks->cluster, req, (unsigned)status,
				    body, len, value, &err) == 0) {
		ks->resp_verified++;
		return 0;
	}
	ks->resp_rej++;
	snprintf(why, cap, "answer not authenticated: %s%s", err.msg,
		 value ? "" : " (does that node hold the cluster key?)");
	return -1;
}

/* HTTP: the server side */

int keys_http_gate(struct node *n, struct fd_http_req *req)
{
	struct keys *ks = n->keys;
	const char *hdr, *body = NULL, *from;
	size_t len = 0;
	int stream;
	struct fd_err err;
	enum reason r;

	if (!ks->enabled ||
	    strncmp(fd_http_path(req), CLUSTER_PREFIX, strlen(CLUSTER_PREFIX)))
		return 0;
	hdr = fd_http_header(req, FD_AUTH_HEADER);
	if (!hdr && ks->rollout) {
		ks->http_unsigned++;
		return 0;
	}
	stream = fd_http_body_streamed(req);
	if (!stream)
		body = fd_http_body(req, &len);
	if (fd_auth_verify(&ks->kr, ks->http_rc, fd_http_method(req),
			   fd_http_target(req), ks->cluster, wall_ms(), body,
			   len, stream, hdr, &err) == 0) {
		ks->http_verified++;
		return 0;
	}
	r = reason_of(errno);
	ks->http_rej[r]++;
	from = fd_http_header(req, "X-FD-From");
	ratelog(&ks->http_log[r], fd_mono_ms(),
		"refused %s %s from %s%s%s%s: %s%s", fd_http_method(req),
		fd_http_path(req), fd_http_peer(req), from ? " ('" : "",
		from ? from : "", from ? "')" : "", err.msg, hint_of(r, 1));
	{
		struct json_object *o = json_object_new_object();
		char msg[400];

		snprintf(msg, sizeof(msg), "unauthorized: %s%s", err.msg,
			 hint_of(r, 1));
		json_object_object_add(o, "error", json_object_new_string(msg));
		json_object_object_add(o, "status", json_object_new_int(401));
		json_object_object_add(
			o, "reason",
			json_object_new_string(r == R_MISSING ? "unsigned"
							      : reason_names[r]));
		fd_http_reply_json(req, 401, o);
	}
	return 1;
}

static void sign_answer(struct fd_http_req *req, unsigned status,
			const char *body, size_t len, void *arg)
{
	struct keys *ks = arg;
	const char *hdr;
	char v[FD_AUTH_HEADER_MAX];

	if (!ks->enabled || !answer_proven(fd_http_path(req)))
		return;
	hdr = fd_http_header(req, FD_AUTH_HEADER);
	if (hdr &&
	    fd_auth_sign_response(&ks->kr, ks->cluster, hdr, status, body, len, v) == 0 &&
	    fd_http_reply_header(req, FD_AUTH_HEADER, v) == 0)
		ks->resp_signed++;
}

/* /v1/keys: the ring across the cluster */

static struct json_object *ring_json(struct keys *ks)
{
	struct json_object *o = json_object_new_object(),
			   *arr = json_object_new_array();
	char id[9];

	for (size_t i = 0; i < ks->kr.n; i++) {
		fd_key_id_hex(ks->kr.keys[i].id, id);
		json_object_array_add(arr, json_object_new_string(id));
	}
	fd_key_id_hex(ks->kr.keys[ks->kr.primary].id, id);
	json_object_object_add(o, "name", json_object_new_string(ks->n->name));
	json_object_object_add(o, "keys", arr);
	json_object_object_add(o, "primary", json_object_new_string(id));
	return o;
}

/* Applies op to the ring and the key file (file first: a change that
 * cannot be saved is not made). 0, or -1 with why filled and *status. */
static int apply(struct keys *ks, struct json_object *body, char *why,
		 size_t len, unsigned *status, char idbuf[9])
{
	const char *op = fd_json_get_str(body, "op");
	struct fd_keyring kr = ks->kr;
	struct fd_err err;
	struct fd_key k;
	uint32_t id = 0;
	int rc;

	*status = 400;
	idbuf[0] = '\0';
	if (!op)
		return snprintf(why, len,
				"expected {\"op\": \"install|use|remove\", ...}"),
		       -1;
	if (strcmp(op, "install") == 0) {
		if (fd_key_parse(fd_json_get_str(body, "key"), &k, &err) < 0)
			return snprintf(why, len, "\"key\": %s", err.msg), -1;
		fd_key_id_hex(k.id, idbuf);
		rc = fd_keyring_install(&kr, &k, &err);
		OPENSSL_cleanse(&k, sizeof(k));
	} else if (strcmp(op, "use") == 0 || strcmp(op, "remove") == 0) {
		if (fd_key_id_parse(fd_json_get_str(body, "id"), &id) < 0)
			return snprintf(why, len,
					"\"id\": expected a key id (8 hex digits)"),
			       -1;
		fd_key_id_hex(id, idbuf);
		rc = op[0] == 'u' ? fd_keyring_use(&kr, id, &err)
				  : fd_keyring_remove(&kr, id, &err);
	} else {
		return snprintf(why, len,
				"unknown op '%s' (install, use, remove)", op),
		       -1;
	}
	if (rc < 0) {
		OPENSSL_cleanse(&kr, sizeof(kr));
		*status = errno == ENOENT ? 404 : 409;
		return snprintf(why, len, "%s", err.msg), -1;
	}
	if (save_key_file(ks->path, &kr, why, len) < 0) {
		OPENSSL_cleanse(&kr, sizeof(kr));
		*status = 500;
		return -1;
	}
	ks->kr = kr;
	OPENSSL_cleanse(&kr, sizeof(kr));
	fd_info("keys: %s %s (%zu key%s, key file saved)", op, idbuf, ks->kr.n,
		ks->kr.n == 1 ? "" : "s");
	return 0;
}

struct keycall {
	struct keyop *op;
	char name[FD_MEMBER_NAME_MAX + 1];
};

struct keyop {
	struct keys *ks;
	struct fd_http_req *req;     /* NULL once the admin client left */
	struct json_object *results; /* array */
	int pending;
	struct keycall *calls;
	struct keyop *prev, *next;
};

static void op_free(struct keyop *op)
{
	struct keys *ks = op->ks;

	if (op->prev)
		op->prev->next = op->next;
	else
		ks->ops = op->next;
	if (op->next)
		op->next->prev = op->prev;
	json_object_put(op->results);
	free(op->calls);
	free(op);
}

static void op_finish(struct keyop *op)
{
	if (op->req) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "results", json_object_get(op->results));
		fd_http_on_close(op->req, NULL, NULL);
		fd_http_reply_json(op->req, 200, o);
	}
	op_free(op);
}

static void op_closed(struct fd_http_req *req, void *arg)
{
	struct keyop *op = arg;

	(void)req;
	op->req = NULL;
}

static struct json_object *result(const char *name, int ok, const char *error)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "ok", json_object_new_boolean(ok));
	if (error)
		json_object_object_add(o, "error", json_object_new_string(error));
	return o;
}

static void fanout_done(const struct fd_http_resp *r, void *arg)
{
	struct keycall *c = arg;
	struct keyop *op = c->op;
	struct json_object *body = r->status ? fd_json_parse(r->body, r->len, NULL)
					     : NULL,
			   *res;

	if (r->status == 200 && json_object_is_type(body, json_type_object)) {
		res = result(c->name, 1, NULL);
		json_object_object_foreach(body, k, v)
		{
			if (strcmp(k, "name") != 0)
				json_object_object_add(res, k, json_object_get(v));
		}
	} else {
		char why[400];
		const char *msg = fd_json_get_str(body, "error");

		if (r->error)
			snprintf(why, sizeof(why), "%s", r->error);
		else if (msg)
			snprintf(why, sizeof(why), "%s", msg);
		else
			snprintf(why, sizeof(why), "HTTP %ld", r->status);
		res = result(c->name, 0, why);
	}
	json_object_put(body);
	json_object_array_add(op->results, res);
	if (--op->pending == 0)
		op_finish(op);
}

/* Sends method /v1/cluster/keys (with the sealed body, for changes) to
 * every other member that is alive or suspect; the local result is the
 * first of the results. */
static void fanout(struct keys *ks, struct fd_http_req *req, const char *method,
		   const void *body, size_t len, struct json_object *local)
{
	const struct fd_member *m = members_core(ks->n);
	struct keyop *op = calloc(1, sizeof(*op));
	struct fd_member_info mi;
	size_t size = fd_member_size(m);
	static const char *const hdrs[] = {
		"Content-Type: application/octet-stream", NULL};

	if (!op || !(op->calls = calloc(size ? size : 1, sizeof(*op->calls)))) {
		free(op);
		json_object_put(local);
		fd_http_reply_error(req, 500, "out of memory");
		return;
	}
	op->ks = ks;
	op->req = req;
	op->results = json_object_new_array();
	json_object_array_add(op->results, local);
	op->next = ks->ops;
	if (ks->ops)
		ks->ops->prev = op;
	ks->ops = op;
	op->pending = 1; /* held until every request is out */
	for (size_t i = 1; fd_member_at(m, i, &mi) == 0; i++) {
		struct keycall *c = &op->calls[i];
		struct fd_err err;
		char url[300];

		if (mi.state != FD_MEMBER_ALIVE && mi.state != FD_MEMBER_SUSPECT)
			continue;
		c->op = op;
		snprintf(c->name, sizeof(c->name), "%s", mi.name);
		if (fd_http_url(url, sizeof(url), mi.addr, KEYS_PATH) < 0 ||
		    !fd_http_request(ks->n->client, method, url, body, len,
				     body ? hdrs : NULL, FANOUT_TIMEOUT_MS,
				     fanout_done, c, &err)) {
			json_object_array_add(op->results,
					      result(mi.name, 0, "unable to send"));
			continue;
		}
		op->pending++;
	}
	fd_http_defer(req);
	fd_http_on_close(req, op_closed, op);
	if (--op->pending == 0)
		op_finish(op);
}

static void h_keys_get(struct fd_http_req *req, void *arg)
{
	struct keys *ks = arg;
	struct json_object *local;

	if (!ks->enabled) {
		fd_http_reply_error(req, 409,
				    "this node runs without a key (--key-file)");
		return;
	}
	local = result(ks->n->name, 1, NULL);
	{
		struct json_object *r = ring_json(ks);

		json_object_object_foreach(r, k, v)
		{
			if (strcmp(k, "name") != 0)
				json_object_object_add(local, k, json_object_get(v));
		}
		json_object_put(r);
	}
	fanout(ks, req, "GET", NULL, 0, local);
}

static void h_keys_post(struct fd_http_req *req, void *arg)
{
	struct keys *ks = arg;
	struct json_object *body = fd_http_json(req), *local;
	const char *text;
	size_t len;
	uint8_t *sealed;
	ssize_t sl;
	unsigned status;
	char why[400], id[9];

	if (!ks->enabled) {
		fd_http_reply_error(req, 409,
				    "this node runs without a key (--key-file)");
		return;
	}
	if (apply(ks, body, why, sizeof(why), &status, id) < 0) {
		fd_http_reply_error(req, status, "%s", why);
		return;
	}
	fd_info("keys: %s %s requested by %s, telling the cluster",
		fd_json_get_str(body, "op"), id, fd_http_peer(req));
	/* the members get the same change, sealed (an installed key travels
	 * encrypted under the current primary) */
	text = fd_json_str(body, &len);
	sealed = malloc(len + FD_SEAL_OVERHEAD);
	sl = sealed ? fd_auth_seal(&ks->kr, "keys", ks->cluster, wall_ms(),
				   text, len, sealed, len + FD_SEAL_OVERHEAD)
		    : -1;
	if (sl < 0) {
		free(sealed);
		fd_http_reply_error(req, 500, "unable to seal the change");
		return;
	}
	local = result(ks->n->name, 1, NULL);
	json_object_object_add(local, "id", json_object_new_string(id));
	fanout(ks, req, "POST", sealed, (size_t)sl, local);
	OPENSSL_cleanse(sealed, (size_t)sl);
	free(sealed);
}

/* A member's part of a change (the request was verified by the gate). */
static void h_cluster_keys_post(struct fd_http_req *req, void *arg)
{
	struct keys *ks = arg;
	const char *body;
	size_t len;
	char *plain, why[400], id[9];
	ssize_t pl;
	struct fd_err err;
	struct json_object *o, *res;
	unsigned status;

	if (!ks->enabled) {
		fd_http_reply_error(req, 409,
				    "this node runs without a key (--key-file)");
		return;
	}
	body = fd_http_body(req, &len);
	plain = malloc(len + 1);
	if (!plain) {
		fd_http_reply_error(req, 500, "out of memory");
		return;
	}
	pl = fd_auth_open(&ks->kr, NULL, "keys", ks->cluster, wall_ms(), body,
			  len, plain, len, &err);
	if (pl < 0) {
		free(plain);
		fd_http_reply_error(req, 400, "unable to open the change: %s",
				    err.msg);
		return;
	}
	o = fd_json_parse(plain, (size_t)pl, NULL);
	OPENSSL_cleanse(plain, (size_t)pl);
	free(plain);
	if (apply(ks, o, why, sizeof(why), &status, id) < 0) {
		json_object_put(o);
		fd_http_reply_error(req, status, "%s", why);
		return;
	}
	fd_info("keys: change from %s applied",
		fd_http_header(req, "X-FD-From") ? fd_http_header(req, "X-FD-From")
						 : fd_http_peer(req));
	json_object_put(o);
	res = json_object_new_object();
	json_object_object_add(res, "id", json_object_new_string(id));
	fd_http_reply_json(req, 200, res);
}

static void h_cluster_keys_get(struct fd_http_req *req, void *arg)
{
	struct keys *ks = arg;

	if (!ks->enabled) {
		fd_http_reply_error(req, 409,
				    "this node runs without a key (--key-file)");
		return;
	}
	fd_http_reply_json(req, 200, ring_json(ks));
}

/* Setup */

int keys_init(struct node *n)
{
	struct fd_http_signer s = {
		.sign = sign_request,
		.check = check_answer,
		.check_header = FD_AUTH_HEADER,
		.arg = n->keys,
	};

	if (n->keys->enabled) {
		fd_http_client_set_signer(n->client, &s);
		log_ring(n->keys, "cluster key loaded");
	}
	return 0;
}

void keys_add_routes(struct node *n)
{
	struct keys *ks = n->keys;

	fd_http_server_set_reply_hook(n->http, sign_answer, ks);
	fd_http_route(n->http, "GET", "/v1/keys", 0, h_keys_get, ks);
	/* changing the ring can let anyone in: admin scope, audited */
	fd_http_route(n->http, "POST", "/v1/keys", FD_HTTP_JSON | FD_HTTP_ADMIN,
		      h_keys_post, ks);
	fd_http_route(n->http, "GET", KEYS_PATH, 0, h_cluster_keys_get, ks);
	fd_http_route(n->http, "POST", KEYS_PATH, 0, h_cluster_keys_post, ks);
}

static struct json_object *reasons_json(const uint64_t *c, int http)
{
	struct json_object *o = json_object_new_object();

	for (int i = 0; i < NREASONS; i++)
		json_object_object_add(o, reason_name((enum reason)i, http),
				       json_object_new_uint64(c[i]));
	return o;
}

void keys_add_info(struct node *n, struct json_object *info)
{
	struct keys *ks = n->keys;
	struct json_object *o = json_object_new_object(),
			   *udp = json_object_new_object(),
			   *http = json_object_new_object();
	char id[9];

	json_object_object_add(o, "enabled", json_object_new_boolean(ks->enabled));
	json_object_object_add(o, "cluster", json_object_new_string(ks->cluster));
	json_object_object_add(o, "rollout", json_object_new_boolean(ks->rollout));
	if (ks->enabled) {
		fd_key_id_hex(ks->kr.keys[ks->kr.primary].id, id);
		json_object_object_add(o, "primary", json_object_new_string(id));
		json_object_object_add(o, "keys",
				       json_object_new_int((int)ks->kr.n));
		json_object_object_add(o, "reloads",
				       json_object_new_uint64(ks->reloads));
	}
	json_object_object_add(udp, "sealed", json_object_new_uint64(ks->udp_sealed));
	json_object_object_add(udp, "opened", json_object_new_uint64(ks->udp_opened));
	json_object_object_add(udp, "rejected", reasons_json(ks->udp_rej, 0));
	json_object_object_add(udp, "plaintext_accepted",
			       json_object_new_uint64(ks->udp_plain));
	json_object_object_add(http, "signed",
			       json_object_new_uint64(ks->http_signed));
	json_object_object_add(http, "signatures_lent",
			       json_object_new_uint64(ks->http_lent));
	json_object_object_add(http, "verified",
			       json_object_new_uint64(ks->http_verified));
	json_object_object_add(http, "rejected", reasons_json(ks->http_rej, 1));
	json_object_object_add(http, "unsigned_accepted",
			       json_object_new_uint64(ks->http_unsigned));
	json_object_object_add(http, "answers_signed",
			       json_object_new_uint64(ks->resp_signed));
	json_object_object_add(http, "answers_verified",
			       json_object_new_uint64(ks->resp_verified));
	json_object_object_add(http, "answers_rejected",
			       json_object_new_uint64(ks->resp_rej));
	json_object_object_add(http, "answers_unsigned_accepted",
			       json_object_new_uint64(ks->resp_unsigned));
	json_object_object_add(o, "udp", udp);
	json_object_object_add(o, "http", http);
	json_object_object_add(info, "auth", o);
}

void keys_free(struct node *n)
{
	struct keys *ks = n->keys;

	if (!ks)
		return;
	/* the HTTP client is gone: nothing calls back any more */
	while (ks->ops)
		op_free(ks->ops);
	fd_replay_free(ks->udp_rc);
	fd_replay_free(ks->http_rc);
	free(ks->ev);
	lend_clear(&ks->lend);
	fd_keyring_clear(&ks->kr);
	free(ks);
	n->keys = NULL;
}
