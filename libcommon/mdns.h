/* mdns: DNS-SD over multicast DNS (RFC 6762, RFC 6763) for the service
 * _fd._tcp.local, sans I/O: a DNS message codec, a responder (the node:
 * probing, announcing, answering, goodbye) and a browser (fd-discover: a
 * cache of what responders said, continuous querying, TTL expiry). The
 * caller owns the socket and the clock; it passes packets and the time in,
 * and sends what comes out to 224.0.0.251:5353.
 *
 * A node is one service instance: "<node name>._fd._tcp.local" with
 *   PTR _fd._tcp.local -> the instance              (shared, TTL 4500 s)
 *   SRV the instance -> 0 0 <HTTP port> <host>      (unique, TTL 120 s)
 *   TXT the instance: "id=…", "version=…", meta     (unique, TTL 4500 s)
 *   A/AAAA <host> -> the advertised address         (unique, TTL 120 s)
 *   PTR _services._dns-sd._udp.local -> _fd._tcp.local (service enumeration)
 * <host> is "fd-<first 12 hex digits of the node id>.local": a name of its
 * own per node, so several nodes on one host (or one advertising another
 * address) never claim the same host name. When the advertised host is a
 * DNS name rather than an address, it is the SRV target and there is no
 * address record.
 *
 * Deviations from RFC 6762, on purpose: probes do not set the QU
 * (unicast-response) bit and every answer goes out by multicast, because
 * several responders share port 5353 on one host and a unicast reply would
 * reach only one of them; legacy unicast queries (source port other than
 * 5353, RFC 6762 §6.7) are answered by unicast as the RFC says. No NSEC
 * negative answers. IPv4 only (the caller's socket).
 */
#ifndef FD_MDNS_H
#define FD_MDNS_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

#define FD_MDNS_GROUP "224.0.0.251"
#define FD_MDNS_PORT 5353
#define FD_MDNS_SERVICE "_fd._tcp.local"
#define FD_MDNS_TTL_HOST 120   /* A, AAAA, SRV (RFC 6762 §10) */
#define FD_MDNS_TTL_OTHER 4500 /* PTR, TXT */
#define FD_MDNS_TTL_LEGACY 10  /* most a legacy unicast answer carries */
#define FD_MDNS_RECV_MAX 9000  /* largest packet read (RFC 6762 §17) */
#define FD_MDNS_SEND_MAX 1460  /* what we send fits one Ethernet frame */
#define FD_MDNS_LABEL_MAX 63
#define FD_MDNS_TXT_MAX 1000 /* TXT rdata of our own instance */

/* DNS */

#define FD_DNS_NAME_MAX 255
enum {
	FD_DNS_A = 1,
	FD_DNS_PTR = 12,
	FD_DNS_TXT = 16,
	FD_DNS_AAAA = 28,
	FD_DNS_SRV = 33,
	FD_DNS_ANY = 255,
	FD_DNS_IN = 1,
	FD_DNS_QR = 0x8000, /* flags: a response */
	FD_DNS_AA = 0x0400, /* flags: authoritative */
};

/* A domain name in uncompressed wire form: labels (a length byte, then the
 * bytes), ending with the root's zero byte; len counts all of it. */
struct fd_dns_name {
	uint8_t len;
	uint8_t b[FD_DNS_NAME_MAX];
};

/* Builds label (raw bytes, any content, NULL: none) followed by the labels
 * of dotted ("_fd._tcp.local"; "" or "." for the root). 0, or -1 with
 * errno = EINVAL (a label empty or over 63 bytes, the name over 255). */
int fd_dns_name_make(struct fd_dns_name *n, const char *label, const char *dotted);
/* Equal names, ASCII letters compared without case (RFC 1035). */
int fd_dns_name_eq(const struct fd_dns_name *a, const struct fd_dns_name *b);
/* When n is one label under parent: 1 with the label copied into out (at
 * least FD_MDNS_LABEL_MAX + 1 bytes, NUL-terminated; a label holding a NUL
 * byte does not match); else 0. */
int fd_dns_name_child(const struct fd_dns_name *n,
		      const struct fd_dns_name *parent, char *out);
/* The name as dotted text (dots and backslashes inside labels escaped as
 * "\." and "\\", no trailing dot) into out (at least 4 * 255 bytes). */
void fd_dns_name_text(const struct fd_dns_name *n, char *out, size_t len);

struct fd_dns_q {
	struct fd_dns_name name;
	uint16_t type, class; /* class without the QU bit */
	int unicast;	      /* the QU bit */
};

enum { FD_DNS_ANSWER = 1, FD_DNS_AUTHORITY = 2, FD_DNS_ADDITIONAL = 3 };

struct fd_dns_rr {
	int section; /* FD_DNS_ANSWER, _AUTHORITY, _ADDITIONAL */
	struct fd_dns_name name;
	uint16_t type, class; /* class without the cache-flush bit */
	int flush;	      /* the cache-flush bit */
	uint32_t ttl;
	/* rdata, decoded for the types used here */
	struct fd_dns_name target;	 /* PTR, SRV */
	uint16_t priority, weight, port; /* SRV */
	uint8_t addr[16];		 /* A (4 bytes), AAAA (16) */
	const uint8_t *rdata;		 /* TXT and other types: raw */
	uint16_t rdlen;
};

#define FD_DNS_MAX_Q 32
#define FD_DNS_MAX_RR 64

/* A decoded message. Large (about 40 KiB): keep it off small stacks. */
struct fd_dns_msg {
	uint16_t id, flags;
	size_t nq, nrr;
	int truncated; /* it held more questions or records than kept here */
	struct fd_dns_q q[FD_DNS_MAX_Q];
	struct fd_dns_rr rr[FD_DNS_MAX_RR];
};

/* Decodes a message (compressed names followed with loop protection; every
 * record is checked even past the ones kept). rdata pointers borrow buf.
 * 0, or -1 with err ("truncated", "bad name", ...). */
int fd_dns_decode(const uint8_t *buf, size_t len, struct fd_dns_msg *m,
		  struct fd_err *err);

/* Encoder: sections in order (questions, answers, authority, additional);
 * names compressed against the ones written before (not inside SRV rdata,
 * as RFC 2782 asks). */
struct fd_dns_writer {
	uint8_t *buf;
	size_t cap, len;
	int overflow; /* it did not fit, or sections out of order */
	int section;  /* the last one written (0: questions) */
	uint16_t count[4];
	size_t nlabels; /* offsets of labels written, for compression */
	uint16_t labels[64];
};
void fd_dns_w_init(struct fd_dns_writer *w, uint8_t *buf, size_t cap,
		   uint16_t id, uint16_t flags);
void fd_dns_w_question(struct fd_dns_writer *w, const struct fd_dns_name *name,
		       uint16_t type, int unicast);
/* Writes rr in rr->section (A: 4 bytes of addr; AAAA: 16; PTR, SRV: the
 * decoded fields; other types: rdata). */
void fd_dns_w_rr(struct fd_dns_writer *w, const struct fd_dns_rr *rr);
/* The message's length, or -1 when it overflowed. */
ssize_t fd_dns_w_finish(struct fd_dns_writer *w);

/* The service instance a node announces */

struct fd_mdns_svc {
	char instance[FD_MDNS_LABEL_MAX + 1]; /* UTF-8 label */
	char host[FD_MDNS_LABEL_MAX + 1]; /* "fd-…": the name host.local */
	char target[256]; /* SRV target when it is not host.local ("" if it is) */
	uint16_t port;
	int family; /* AF_INET, AF_INET6, or 0: no address record */
	uint8_t addr[16];
	uint8_t txt[FD_MDNS_TXT_MAX];
	size_t txt_len;
};

/* Checks an instance name: 1 to 63 bytes of UTF-8 without control
 * characters. 0, or -1 with err. */
int fd_mdns_instance_ok(const char *name, struct fd_err *err);
/* Fills svc for a node: instance name, node id (hex; its first 12 digits
 * name the host), HTTP port, advertised host (an IPv4 or IPv6 literal gives
 * the address record; a DNS name becomes the SRV target). 0, or -1 with
 * err. The TXT record starts empty. */
int fd_mdns_svc_init(struct fd_mdns_svc *svc, const char *instance, const char *id,
		     const char *adv_host, int port, struct fd_err *err);
/* Appends "key=value" to the TXT record (RFC 6763 §6: key of printable
 * ASCII without '=', 1..9 bytes recommended, at most 255 bytes a string;
 * value NULL: a key alone, a boolean attribute). 0, or -1 with err (bad
 * key, string over 255 bytes, record over FD_MDNS_TXT_MAX). */
int fd_mdns_svc_txt(struct fd_mdns_svc *svc, const char *key, const char *value,
		    struct fd_err *err);
/* The instance name for conflict number n (n >= 2): "base (n)", the base
 * cut at a UTF-8 boundary to fit 63 bytes (RFC 6762 §9). */
void fd_mdns_rename(const char *base, int n, char *out);

/* TXT rdata as a JSON object: "k=v" -> "k": "v", a bare "k" -> true; keys
 * are kept as sent, the first of a key (compared without case) wins;
 * strings that are not UTF-8 are skipped. Returns a new object the caller
 * must json_object_put(), NULL on ENOMEM. */
struct json_object *fd_mdns_txt_json(const uint8_t *rdata, size_t len);

/* Responder */

enum fd_mdns_state {
	FD_MDNS_PROBING,
	FD_MDNS_ANNOUNCING,
	FD_MDNS_READY,
	FD_MDNS_STOPPED,
};

/* What fd_mdns_responder_recv() saw, for the caller to log. */
enum fd_mdns_event {
	FD_MDNS_EV_NONE,
	FD_MDNS_EV_RENAMED,  /* a conflict while probing: svc.instance is new */
	FD_MDNS_EV_REPROBE,  /* a conflict after probing, or a lost tie-break:
				probing again (RFC 6762 §8.2, §9) */
	FD_MDNS_EV_ANSWERING /* a query to answer: poll() when it is due */
};

struct fd_mdns_stats {
	uint64_t probes, announcements, queries, answers, conflicts, renames;
};

struct fd_mdns_responder {
	struct fd_mdns_svc svc;
	char base[FD_MDNS_LABEL_MAX + 1]; /* the instance name asked for */
	char base_host[FD_MDNS_LABEL_MAX + 1];
	enum fd_mdns_state state;
	int sent;	      /* probes or announcements sent in this state */
	int renames;	      /* conflicts that renamed us */
	int64_t next;	      /* the next probe or announcement */
	unsigned pending;     /* records to answer (private bits) */
	int64_t answer_at;    /* when they are due */
	int64_t conflict_win; /* rate limit: start of the 10 s window */
	int conflict_n;	      /* conflicts in that window */
	uint64_t rng;
	struct fd_mdns_stats stats;
};

/* Starts probing for svc's names at now (the first probe after a random
 * 0-250 ms, RFC 6762 §8.1). seed: any value, for the random delays. */
void fd_mdns_responder_init(struct fd_mdns_responder *r,
			    const struct fd_mdns_svc *svc, uint64_t seed,
			    int64_t now);
/* A packet received from port 5353 (another port: see _legacy below).
 * Detects conflicts (a response claiming our unique names with other data;
 * a simultaneous probe we lose) and schedules answers to queries. */
enum fd_mdns_event fd_mdns_responder_recv(struct fd_mdns_responder *r, int64_t now,
					  const struct fd_dns_msg *m);
/* The packet due at now into buf (cap at least FD_MDNS_SEND_MAX): a probe,
 * an announcement or an answer, for the group. Returns its length, 0 when
 * nothing is due; *next is when to call again. Call until it returns 0. */
ssize_t fd_mdns_responder_poll(struct fd_mdns_responder *r, int64_t now,
			       uint8_t *buf, size_t cap, int64_t *next);
/* The answer to a legacy unicast query (RFC 6762 §6.7: the query's id and
 * questions repeated, TTLs of at most 10 s, no cache-flush bits), to send
 * back to its source; 0 when there is nothing to answer (or not yet
 * announced). */
ssize_t fd_mdns_responder_legacy(struct fd_mdns_responder *r,
				 const struct fd_dns_msg *m, uint8_t *buf,
				 size_t cap);
/* The goodbye (every record with TTL 0, RFC 6762 §10.1) into buf; the
 * responder stops. Returns the length, 0 when it never announced. */
ssize_t fd_mdns_responder_goodbye(struct fd_mdns_responder *r, uint8_t *buf,
				  size_t cap);

/* Browser */

struct fd_mdns_browser_stats {
	uint64_t packets, records, queries, dropped; /* dropped: cache full */
};

struct fd_mdns_browser;

/* A new browser keeping at most max_records records (0: 1024); the first
 * query is due 20-120 ms after now (RFC 6762 §5.2). max_interval_ms caps
 * the growth of the interval between queries (1 s, 2 s, 4 s, …; 0: one
 * hour, the RFC's). NULL with errno = ENOMEM. */
struct fd_mdns_browser *fd_mdns_browser_new(size_t max_records,
					    int64_t max_interval_ms,
					    uint64_t seed, int64_t now);
void fd_mdns_browser_free(struct fd_mdns_browser *b);
/* Feeds a received packet; only responses are taken. Records with TTL 0
 * expire one second later (goodbye, RFC 6762 §10.1); the cache-flush bit
 * expires, one second later, the other records of that name and type
 * received more than a second ago (§10.2). Returns 1 when the packet
 * brought a record not cached before, else 0. */
int fd_mdns_browser_recv(struct fd_mdns_browser *b, int64_t now,
			 const struct fd_dns_msg *m);
/* The query due at now into buf (cap at least FD_MDNS_SEND_MAX): the PTR
 * question (with the known answers whose TTL is over half left, §7.1) on
 * the backoff schedule, questions for the SRV, TXT and addresses of
 * instances not resolved yet (at most once a second), and refreshes of
 * records at 80, 85, 90 and 95 % of their TTL (§5.2). Drops expired
 * records. Returns the length, 0 when nothing is due; *next is when to call
 * again. */
ssize_t fd_mdns_browser_poll(struct fd_mdns_browser *b, int64_t now,
			     uint8_t *buf, size_t cap, int64_t *next);
/* Calls cb for each instance resolved at now: its name, its address
 * (normalized HOST:PORT: the SRV port and the target's A record, else its
 * AAAA, else the target itself when it is not under .local) and its TXT as
 * a JSON object (borrowed for the call). Instances in name order. Returns
 * the number of calls. */
size_t fd_mdns_browser_each(struct fd_mdns_browser *b, int64_t now,
			    void (*cb)(const char *name, const char *addr,
				       struct json_object *meta, void *arg),
			    void *arg);
const struct fd_mdns_browser_stats *fd_mdns_browser_stats(const struct fd_mdns_browser *b);

#endif
