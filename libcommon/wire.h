/* Wire encoding of the membership protocol (SWIM + Lifeguard).
 *
 * Pure: no I/O, no allocation. Every decoder is bounds-checked and strict:
 * a truncated, oversized, unknown-version or otherwise malformed input makes
 * it return -1 with errno set (EPROTONOSUPPORT for a foreign magic/version
 * byte pair that looks like a newer protocol, EBADMSG for everything else),
 * and it never reads outside [buf, buf + len).
 *
 * A datagram (at most FD_WIRE_MTU bytes) is
 *
 *	magic 0xFD 0x4D | version 1 | type | sender node | body | n | n updates
 *
 * where the sender node is the sender's own record (so any datagram
 * introduces its sender), the body depends on the type:
 *
 *	PING      seq u32, target id[16]   (an instance check: a restarted node
 *	                                    at the same address does not ack)
 *	ACK       seq u32                  (also the forwarded indirect ack)
 *	NACK      seq u32                  (Lifeguard: "I could not reach it")
 *	PING_REQ  seq u32, flags u8, target node (probe it for me)
 *	GOSSIP    (empty: piggyback only)
 *
 * and n (u8) piggybacked updates follow, each a node record plus a "from"
 * name (who suspects / declared failed; may be empty).
 *
 * A node record is: state u8 | incarnation u64 | id[16] | name (u8 length,
 * 1..255 bytes) | addr (u8 length, 0..63 bytes, "host:port"). Integers are
 * big-endian. Strings carry no NUL; names are UTF-8 without control characters, addrs
 * accept printable ASCII without spaces.
 *
 * The push-pull state (carried in an HTTP body, not a datagram) is
 *
 *	magic | version | type PUSHPULL | flags u8 | sender node | count u32 |
 *	count node records
 *
 * with count <= FD_WIRE_PP_MAX. Trailing bytes are an error everywhere.
 */
#ifndef FD_WIRE_H
#define FD_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define FD_WIRE_MAGIC0 0xFD
#define FD_WIRE_MAGIC1 0x4D
#define FD_WIRE_VERSION 1
#define FD_WIRE_MTU 1400 /* largest datagram we send or accept */
#define FD_WIRE_ID_LEN 16
#define FD_WIRE_NAME_MAX 255 /* bytes, without the NUL */
#define FD_WIRE_ADDR_MAX 63
#define FD_WIRE_MAX_UPDATES 64 /* per datagram; more never fit the MTU */
#define FD_WIRE_PP_MAX 65536   /* members in one push-pull state */
#define FD_WIRE_HDR_LEN 4

enum fd_wire_type {
	FD_WIRE_PING = 1,
	FD_WIRE_ACK = 2,
	FD_WIRE_NACK = 3,
	FD_WIRE_PING_REQ = 4,
	FD_WIRE_GOSSIP = 5,
	FD_WIRE_PUSHPULL = 6,
};

/* Member states as they travel (same values as enum fd_member_state). */
enum fd_wire_state {
	FD_WIRE_ALIVE = 0,
	FD_WIRE_SUSPECT = 1,
	FD_WIRE_FAILED = 2,
	FD_WIRE_LEFT = 3,
};

/* PING_REQ flags */
#define FD_WIRE_F_NACK 0x01 /* send a NACK if the target does not answer */
/* PUSHPULL flags */
#define FD_WIRE_F_JOIN 0x01 /* the sender is joining */

struct fd_wire_node {
	uint8_t state;
	uint64_t incarnation;
	uint8_t id[FD_WIRE_ID_LEN];
	char name[FD_WIRE_NAME_MAX + 1];
	char addr[FD_WIRE_ADDR_MAX + 1];
};

struct fd_wire_update {
	struct fd_wire_node node;
	char from[FD_WIRE_NAME_MAX + 1]; /* "" when not applicable */
};

/* A decoded datagram. Large (about 40 KB): keep it off small stacks. */
struct fd_wire_msg {
	uint8_t type;
	struct fd_wire_node sender;
	uint32_t seq;		    /* PING, ACK, NACK, PING_REQ */
	uint8_t flags;		    /* PING_REQ */
	struct fd_wire_node target; /* PING: id only; PING_REQ: full record */
	unsigned nupdates;
	struct fd_wire_update updates[FD_WIRE_MAX_UPDATES];
};

/* A bounds-checked cursor over a caller's buffer. Any get/put past the end
 * sets err and does nothing; check err once at the end. */
struct fd_wire_cur {
	uint8_t *p;
	size_t len;
	size_t off;
	int err;
};

void fd_wire_cur_init(struct fd_wire_cur *c, void *buf, size_t len);
void fd_wire_put_u8(struct fd_wire_cur *c, uint8_t v);
void fd_wire_put_u16(struct fd_wire_cur *c, uint16_t v);
void fd_wire_put_u32(struct fd_wire_cur *c, uint32_t v);
void fd_wire_put_u64(struct fd_wire_cur *c, uint64_t v);
void fd_wire_put_bytes(struct fd_wire_cur *c, const void *src, size_t n);
/* Length byte then the bytes; strings longer than max set err. */
void fd_wire_put_str(struct fd_wire_cur *c, const char *s, size_t max);
uint8_t fd_wire_get_u8(struct fd_wire_cur *c);
uint16_t fd_wire_get_u16(struct fd_wire_cur *c);
uint32_t fd_wire_get_u32(struct fd_wire_cur *c);
uint64_t fd_wire_get_u64(struct fd_wire_cur *c);
void fd_wire_get_bytes(struct fd_wire_cur *c, void *dst, size_t n);
/* Reads a length-prefixed string into dst (max + 1 bytes, NUL-terminated).
 * Sets err when it is longer than max, shorter than min, or holds a byte the
 * kind rejects (see above). */
void fd_wire_get_name(struct fd_wire_cur *c, char *dst, size_t min);
void fd_wire_get_addr(struct fd_wire_cur *c, char *dst);

/* Encoded sizes. A node whose strings exceed the caps has no size: the
 * encoders refuse it. */
size_t fd_wire_node_size(const struct fd_wire_node *n);
size_t fd_wire_update_size(const struct fd_wire_update *u);
/* Returns 1 when name / addr may travel (lengths and bytes), else 0. */
int fd_wire_name_ok(const char *name);
int fd_wire_addr_ok(const char *addr);

void fd_wire_put_node(struct fd_wire_cur *c, const struct fd_wire_node *n);
void fd_wire_get_node(struct fd_wire_cur *c, struct fd_wire_node *n);

/* Building a datagram: begin writes header, sender and body of msg (type,
 * sender, seq, flags, target; updates ignored) into buf (cap bytes, at most
 * FD_WIRE_MTU are used). Returns 0, or -1 (EINVAL) when they do not fit or
 * a string is out of bounds. Then add updates while they fit: add returns 0,
 * or -1 when u does not fit in the space left (the datagram is unchanged;
 * a smaller update may still fit) or is malformed. finish returns the
 * datagram length. */
struct fd_wire_enc {
	struct fd_wire_cur cur;
	size_t count_off;
	unsigned n;
};
int fd_wire_enc_begin(struct fd_wire_enc *e, void *buf, size_t cap,
		      const struct fd_wire_msg *msg);
int fd_wire_enc_add(struct fd_wire_enc *e, const struct fd_wire_update *u);
size_t fd_wire_enc_finish(struct fd_wire_enc *e);
/* Space left for updates, in bytes. */
size_t fd_wire_enc_room(const struct fd_wire_enc *e);

/* Encodes msg with all its updates. Returns the length, or -1 (EMSGSIZE
 * when it does not fit in min(cap, FD_WIRE_MTU), EINVAL when malformed). */
int fd_wire_encode(void *buf, size_t cap, const struct fd_wire_msg *msg);

/* Decodes one datagram (len <= FD_WIRE_MTU) into msg. Returns 0, or -1 with
 * errno EPROTONOSUPPORT (our magic, another version) or EBADMSG. */
int fd_wire_decode(const void *buf, size_t len, struct fd_wire_msg *msg);

/* Push-pull state. Encode: size = FD_WIRE_HDR_LEN + 1 + node size of the
 * sender + 4 + the node sizes of the members; begin writes the head, then
 * put each of the count members with fd_wire_put_node. */
void fd_wire_pp_begin(struct fd_wire_cur *c, uint8_t flags,
		      const struct fd_wire_node *sender, uint32_t count);

/* Decode: open validates the whole state (every record, the count, nothing
 * trailing) and fills flags, sender and count; then next returns the
 * records in order (1 per record, 0 at the end). Returns 0, or -1 with errno
 * as fd_wire_decode. The reader borrows buf. */
struct fd_wire_pp_reader {
	struct fd_wire_cur cur;
	uint8_t flags;
	struct fd_wire_node sender;
	uint32_t count;
	uint32_t done;
};
int fd_wire_pp_open(struct fd_wire_pp_reader *r, const void *buf, size_t len);
int fd_wire_pp_next(struct fd_wire_pp_reader *r, struct fd_wire_node *n);

/* Name of a type / state for messages ("ping", "alive"...); "?" if unknown. */
const char *fd_wire_type_name(int type);
const char *fd_wire_state_name(int state);

#endif
