/* Pub/sub frames: the binary records that carry published messages from a
 * client to its node (PUB) and from node to node (MSG, MORE). Pure: no I/O.
 *
 * Every frame is a 4-byte little-endian length (of what follows) and a type
 * byte; integers marked varint are LEB128 (at most 10 bytes):
 *
 *   PUB  1  prio:u8 topic_len:u8 topic data...
 *           a client publishes data (the rest of the frame: one JSON value)
 *           on topic with priority prio (FD_PSF_HIGH, _NORMAL, _BULK).
 *   MSG  2  flags:u8 prio:u8 topic_len:u8 topic stream:varint seq:varint
 *           ts_us:varint total:varint [ngroups:u8 (len:u8 group)*] piece...
 *           a message from the sending node: publisher stream, sequence
 *           number, wall-clock publish time; total is the length of the
 *           payload (compressed when FD_PSF_ZSTD), of which piece is the
 *           first part; the rest follows in MORE frames of the same priority
 *           (frames of other priorities may come in between). Groups (FD_PSF_GROUPS) name the
 *           queue groups this node was picked for.
 *   MORE 3  prio:u8 piece...
 *           the next part of the last MSG of that priority.
 *   GAP  4  prio:u8 topic_len:u8 topic missed:varint
 *           the sending node could not bring the receiver missed messages
 *           of that priority on topic (a subject, or ">" for several
 *           topics): a partition, a failed batch. They came after the
 *           messages sent before this frame and before those after it, so
 *           the receiver tells its subscribers in order (a gap line).
 *
 * So a large payload travels as chunks, and a sender can put a frame of
 * another channel between them. The decoder checks every length and reads
 * nothing outside its buffer; validating topics and JSON is the caller's
 * business (a node validates what a client sends, not what a peer sends).
 */
#ifndef FD_PSFRAME_H
#define FD_PSFRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "err.h"

enum fd_psf_type {
	FD_PSF_PUB = 1,
	FD_PSF_MSG = 2,
	FD_PSF_MORE = 3,
	FD_PSF_GAP = 4,
};

enum fd_psf_prio {
	FD_PSF_HIGH = 0,
	FD_PSF_NORMAL = 1,
	FD_PSF_BULK = 2,
};
#define FD_PSF_NPRIO 3

enum {
	FD_PSF_ZSTD = 1,   /* the payload is one zstd frame */
	FD_PSF_GROUPS = 2, /* a group list follows the header */
};

#define FD_PSF_MAX_GROUPS 32
/* Bytes of a MSG frame besides topic, groups and piece, at most. */
#define FD_PSF_MSG_OVERHEAD (4 + 1 + 3 + 4 * 10 + 1)

/* A decoded frame; pointers borrow from the decoded buffer. */
struct fd_psf {
	enum fd_psf_type type;
	unsigned flags, prio;
	const char *topic;
	size_t topic_len;
	uint64_t stream, seq, ts, total; /* GAP: total is missed */
	unsigned ngroups;
	const char *groups; /* ngroups of (len:u8, bytes) */
	size_t groups_len;
	const char *data; /* PUB: the payload; MSG, MORE: the piece */
	size_t len;
};

/* Decodes one frame body (after the length prefix). Returns 0, or -1 with
 * err filled (errno EBADMSG). */
int fd_psf_parse(const void *body, size_t len, struct fd_psf *f, struct fd_err *err);
/* Iterates a MSG frame's groups: *off starts at 0. Returns 1 with the next
 * group in (*g, *glen), or 0 at the end. */
int fd_psf_group_next(const struct fd_psf *f, size_t *off, const char **g,
		      size_t *glen);

/* Encoders: append one frame to b. Return 0, or -1 (errno EINVAL for a
 * topic or group over 255 bytes or too many groups; EMSGSIZE/ENOMEM from
 * the buffer; nothing appended then). */
int fd_psf_put_pub(struct fd_buf *b, unsigned prio, const char *topic,
		   size_t tlen, const char *data, size_t dlen);
int fd_psf_put_msg(struct fd_buf *b, unsigned flags, unsigned prio,
		   const char *topic, size_t tlen, uint64_t stream, uint64_t seq,
		   uint64_t ts, uint64_t total, const char *const *groups,
		   unsigned ngroups, const char *piece, size_t plen);
int fd_psf_put_more(struct fd_buf *b, unsigned prio, const char *piece, size_t plen);
int fd_psf_put_gap(struct fd_buf *b, unsigned prio, const char *topic,
		   size_t tlen, uint64_t missed);
/* Appends a whole message as a MSG frame carrying its first chunk bytes of
 * payload and MORE frames carrying chunk bytes each (chunk > 0). Returns 0,
 * or -1 as the encoders above (nothing appended then). */
int fd_psf_put_chunks(struct fd_buf *b, unsigned flags, unsigned prio,
		      const char *topic, size_t tlen, uint64_t stream, uint64_t seq,
		      uint64_t ts, const char *const *groups, unsigned ngroups,
		      const char *payload, size_t plen, size_t chunk);

/* The frames fd_psf_put_chunks would append, read a piece at a time from
 * anywhere, the payload copied only as it is read (a sender can queue a
 * large message without copying it, and frame it as it sends). Borrows
 * topic, groups and payload: they must outlive it. */
struct fd_psf_chunker {
	char *head; /* the MSG frame up to its piece (malloc'd) */
	size_t hlen;
	const char *payload;
	size_t plen, chunk, first;
	unsigned prio;
	size_t size; /* the frames' bytes in all */
};
/* Returns 0, or -1 as fd_psf_put_chunks (errno EINVAL, ENOMEM). */
int fd_psf_chunker_init(struct fd_psf_chunker *c, unsigned flags, unsigned prio,
			const char *topic, size_t tlen, uint64_t stream, uint64_t seq,
			uint64_t ts, const char *const *groups, unsigned ngroups,
			const char *payload, size_t plen, size_t chunk);
void fd_psf_chunker_release(struct fd_psf_chunker *c);
/* Copies the frames' bytes [off, off + max) (fewer at the end) to out.
 * Returns how many. */
size_t fd_psf_chunker_read(const struct fd_psf_chunker *c, size_t off,
			   char *out, size_t max);

/* Reassembles the messages of one priority from their MSG and MORE frames.
 * A message that never completes is lost when the next MSG starts, and so
 * is one whose pieces run past its total or past max. */
struct fd_psf_reasm {
	int active;
	/* the message's header: topic and groups point into the storage
	 * below; data and len are the whole payload once complete */
	struct fd_psf head;
	char topic[256];
	char *groups; /* malloc'd, gcap bytes */
	size_t gcap;
	size_t headroom, tailroom;
	int copied; /* the last message is in buf (not in its one frame) */
	struct fd_buf buf;
};
/* max: the largest payload accepted. A message's payload is copied into a
 * buffer with headroom bytes free before it and tailroom after it, which
 * the caller can take (fd_psf_reasm_detach) to build a record around the
 * payload without copying it. */
void fd_psf_reasm_init(struct fd_psf_reasm *r, size_t max, size_t headroom,
		       size_t tailroom);
/* Forgets a message in progress; keeps the memory. */
void fd_psf_reasm_reset(struct fd_psf_reasm *r);
void fd_psf_reasm_release(struct fd_psf_reasm *r);
/* Takes one decoded MSG or MORE frame f (of r's priority). Returns 1 when a
 * message is complete: r->head holds it, its payload in r->head.data and
 * r->head.len, valid until the next call; 0 when more is to come (or f was
 * a MORE without a start, ignored). *lost is set to the number of messages
 * given up (0 or 1, or 2: the one interrupted and the new one). Returns -1
 * with errno ENOMEM only when out of memory (the message is lost). */
int fd_psf_reasm_add(struct fd_psf_reasm *r, const struct fd_psf *f, unsigned *lost);
/* After fd_psf_reasm_add returned 1: the buffer holding the message, which
 * the caller must free(): headroom bytes, the payload (r->head.len bytes),
 * tailroom bytes. NULL when the message came whole in one frame (r->head
 * points into that frame). The next message gets a new buffer. */
char *fd_psf_reasm_detach(struct fd_psf_reasm *r);

/* Splits a byte stream into frames. max is the largest frame body accepted.
 * The reader buffers at most one partial frame. */
typedef void (*fd_psf_part_fn)(void *arg, const char *body, size_t have, size_t flen);
struct fd_psf_reader {
	size_t max;
	struct fd_buf part;
	size_t skip; /* bytes left of an oversized frame */
	fd_psf_part_fn part_fn;
	void *part_arg;
};
void fd_psf_reader_init(struct fd_psf_reader *r, size_t max);
/* Optional: fn sees a frame that comes in several pieces grow: its body so
 * far (have bytes of flen) after each piece, the last time (have == flen)
 * just before the frame is offered. So a caller can work on a large frame a
 * piece at a time instead of all at once when it is complete. A frame that
 * comes whole in one feed is only offered. */
void fd_psf_reader_on_part(struct fd_psf_reader *r, fd_psf_part_fn fn, void *arg);
void fd_psf_reader_release(struct fd_psf_reader *r);
/* fn gets each complete frame body; it returns 0 to go on, 1 to refuse the
 * frame for now (the reader keeps it: the next feed, with or without new
 * data, offers it again), -1 to fail (err filled by fn). A frame over max
 * is offered as (NULL, its length): fn returns -1 to fail, else the frame is
 * skipped without being buffered. */
typedef int (*fd_psf_frame_fn)(void *arg, const char *body, size_t len,
			       struct fd_err *err);
/* Feeds data[0..len). Returns the bytes consumed (less than len only when fn
 * refused a frame), or -1 with err filled (fn failed). */
ssize_t fd_psf_feed(struct fd_psf_reader *r, const char *data, size_t len,
		    fd_psf_frame_fn fn, void *arg, struct fd_err *err);
/* Only inside fn, for the frame offered when it came in pieces (body ==
 * r->part.data + 4): takes the buffer holding it (its 4-byte length, then
 * the body), which the caller must free(); the frame counts as consumed
 * whatever fn returns, and the reader goes on with a new buffer. */
char *fd_psf_reader_detach(struct fd_psf_reader *r);
/* True when the reader holds the start of a frame (the stream ended inside
 * a frame if no more data comes). */
int fd_psf_reader_partial(const struct fd_psf_reader *r);

#endif
