#include "mcast.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NO_ROUTE \
	"no multicast route: add one, e.g. `ip route add 224.0.0.0/4 dev lo`, or pick --multicast-if"

const char *fd_mcast_advice(int e)
{
	return e == ENODEV || e == ENETUNREACH ? NO_ROUTE : NULL;
}

int fd_mcast_parse_group(const char *s, struct in_addr *out, struct fd_err *err)
{
	if (inet_pton(AF_INET, s, out) != 1)
		return fd_err_set(err, "'%s' is not an IPv4 address", s);
	if (!IN_MULTICAST(ntohl(out->s_addr)))
		return fd_err_set(
			err, "'%s' is not a multicast address (224.0.0.0/4)", s);
	return 0;
}

int fd_mcast_parse_if(const char *s, struct fd_mcast_opts *o, struct fd_err *err)
{
	struct ifaddrs *list = NULL;
	struct in_addr a;
	int by_addr = inet_pton(AF_INET, s, &a) == 1, found = 0;

	if (!*s || strlen(s) >= IF_NAMESIZE + 16)
		return fd_err_set(err, "no such interface '%s'", s);
	if (getifaddrs(&list) < 0)
		return fd_err_set(err, "unable to list interfaces: %s",
				  strerror(errno));
	o->ifindex = 0;
	o->ifaddr.s_addr = htonl(INADDR_ANY);
	for (struct ifaddrs *i = list; i; i = i->ifa_next) {
		struct in_addr ia;

		if (!i->ifa_name)
			continue;
		if (by_addr) {
			if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
				continue;
			ia = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
			if (ia.s_addr != a.s_addr)
				continue;
		} else if (strcmp(i->ifa_name, s) != 0) {
			continue;
		}
		found = 1;
		if (!o->ifindex)
			o->ifindex = (int)if_nametoindex(i->ifa_name);
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
		    o->ifaddr.s_addr == htonl(INADDR_ANY))
			o->ifaddr = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
	}
	freeifaddrs(list);
	if (!found && !by_addr) {
		/* An interface without any address is not in the list. */
		o->ifindex = (int)if_nametoindex(s);
		found = o->ifindex > 0;
	}
	if (!found || !o->ifindex)
		return by_addr ? fd_err_set(err, "no interface has address '%s'", s)
			       : fd_err_set(err, "no such interface '%s'", s);
	o->ifname = s;
	return 0;
}

static int fail(int fd, struct fd_err *err, const char *what,
		const struct fd_mcast_opts *o)
{
	int e = errno;
	char group[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &o->group, group, sizeof(group));
	if (e == EADDRINUSE)
		fd_err_set(err, "unable to bind UDP port %d: in use by a socket without SO_REUSEPORT (another program, or another user's)",
			   o->port);
	else if (fd_mcast_advice(e))
		fd_err_set(err, "unable to join %s:%d%s%s: %s", group, o->port,
			   o->ifname ? " on " : "", o->ifname ? o->ifname : "",
			   fd_mcast_advice(e));
	else
		fd_err_set(err, "unable to %s (%s:%d): %s", what, group,
			   o->port, strerror(e));
	if (fd >= 0)
		close(fd);
	errno = e;
	return -1;
}

int fd_mcast_open(const struct fd_mcast_opts *o, struct fd_err *err)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_port = htons((uint16_t)o->port),
				  .sin_addr.s_addr = htonl(INADDR_ANY)};
	struct ip_mreqn mr = {.imr_multiaddr = o->group,
			      .imr_address = o->ifaddr,
			      .imr_ifindex = o->ifindex};
	unsigned char ttl = (unsigned char)o->ttl, loop = 1;
	int one = 1;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return fail(fd, err, "create a UDP socket", o);
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		return fail(fd, err, "share the port", o);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		return fail(fd, err, "bind", o);
	if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0)
		return fail(fd, err, "join the group", o);
	if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof(ttl)) < 0 ||
	    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof(loop)) < 0)
		return fail(fd, err, "set the multicast TTL", o);
	/* By address when there is one: the datagrams then carry it as their
	 * source (by index alone, loopback sends them from 0.0.0.0). */
	if (o->ifaddr.s_addr != htonl(INADDR_ANY)) {
		if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &o->ifaddr,
			       sizeof(o->ifaddr)) < 0)
			return fail(fd, err, "pick the interface", o);
	} else if (o->ifindex) {
		struct ip_mreqn ifr = {.imr_ifindex = o->ifindex};

		if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &ifr, sizeof(ifr)) < 0)
			return fail(fd, err, "pick the interface", o);
	}
	return fd;
}

int fd_mcast_send(int fd, const struct fd_mcast_opts *o, const void *buf,
		  size_t len, struct fd_err *err)
{
	struct sockaddr_in to = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)o->port),
				 .sin_addr = o->group};
	char group[INET_ADDRSTRLEN];
	ssize_t n;

	do
		n = sendto(fd, buf, len, 0, (struct sockaddr *)&to, sizeof(to));
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return 0;
	inet_ntop(AF_INET, &o->group, group, sizeof(group));
	if (fd_mcast_advice(errno))
		return fd_err_set(err, "unable to send to %s:%d: %s", group,
				  o->port, fd_mcast_advice(errno));
	return fd_err_set(err, "unable to send to %s:%d: %s", group, o->port,
			  strerror(errno));
}
