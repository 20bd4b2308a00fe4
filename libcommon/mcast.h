/* mcast: IPv4 UDP multicast sockets for discovery (mDNS and gossip).
 *
 * Several processes on one host share a group and port (several nodes, a
 * node and fd-discover): sockets are bound to INADDR_ANY:port with
 * SO_REUSEADDR and SO_REUSEPORT, and the kernel hands every multicast
 * datagram to each of them. Unicast datagrams to that port reach only one of
 * them, so the protocols on top answer by multicast.
 *
 * IPv4 only: IPv6 multicast (ff02::fb for mDNS) is not done.
 *
 * I/O, but no printing: errors fill struct fd_err with the advice an
 * operator needs (no multicast route, port taken, unknown interface).
 */
#ifndef FD_MCAST_H
#define FD_MCAST_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/types.h>

#include "err.h"

struct fd_mcast_opts {
	struct in_addr group; /* a multicast address (224.0.0.0/4) */
	int port;	      /* 1..65535 */
	int ttl;	      /* IP_MULTICAST_TTL, 1..255 */
	/* The interface: its index (0: the one the routing table picks for
	 * the group) and an IPv4 address of it (INADDR_ANY: none known). */
	int ifindex;
	struct in_addr ifaddr;
	const char *ifname; /* for messages; NULL: the default */
};

/* Parses a multicast group "a.b.c.d" (224.0.0.0/4). 0, or -1 with err. */
int fd_mcast_parse_group(const char *s, struct in_addr *out, struct fd_err *err);

/* Resolves --multicast-if: an interface name ("eth0", "lo") or one of the
 * host's IPv4 addresses. Sets o->ifindex, o->ifaddr and o->ifname (= s,
 * borrowed). 0, or -1 with err ("no such interface", "no interface has
 * address"). */
int fd_mcast_parse_if(const char *s, struct fd_mcast_opts *o, struct fd_err *err);

/* Opens a non-blocking socket bound to INADDR_ANY:port, member of the
 * group on the interface, sending to the group with the TTL, looping its
 * multicast back to the host (other processes there are peers). Returns the
 * fd, or -1 with err: for EADDRINUSE, "port N is in use by a socket without
 * SO_REUSEPORT"; for ENODEV/ENETUNREACH, the no-multicast-route advice. */
int fd_mcast_open(const struct fd_mcast_opts *o, struct fd_err *err);

/* Sends len bytes to the group. Returns 0, or -1 with err (the same advice
 * for a missing route). */
int fd_mcast_send(int fd, const struct fd_mcast_opts *o, const void *buf,
		  size_t len, struct fd_err *err);

/* The "no multicast route" advice for errno e (ENODEV, ENETUNREACH), or
 * NULL for another error. */
const char *fd_mcast_advice(int e);

#endif
