/* dns-responder: a tiny DNS server for the tests of the dns strategies.
 *
 *   dns-responder ZONEFILE
 *
 * Binds UDP 127.0.0.1:0, prints the port as one line on stdout and answers
 * queries from ZONEFILE, which it reads again whenever it changes (checked
 * at each query). One record per line; '#' starts a comment:
 *
 *   NAME A 127.0.0.1
 *   NAME AAAA ::1
 *   NAME SRV PRIORITY WEIGHT PORT TARGET
 *   NAME servfail        every query for NAME gets SERVFAIL
 *   NAME drop            queries for NAME get no answer (a timeout)
 *
 * A name with no line at all is NXDOMAIN; a name with lines but none of the
 * type asked is an empty answer (NOERROR). Names are compared without case
 * and without a trailing dot; TTLs are 0. Each query is logged on stderr
 * as "NAME TYPE RCODE ANSWERS". Only what the tests need: one question,
 * class IN, no compression in queries, no EDNS in answers. */
#include "cli.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define USAGE "dns-responder zonefile"
#define MAX_RECORDS 1024

enum { T_A = 1, T_AAAA = 28, T_SRV = 33, T_SERVFAIL = -1, T_DROP = -2 };

struct rec {
	char name[256];
	int type;
	unsigned char ip[16];
	unsigned prio, weight, port;
	char target[256];
};

static struct rec zone[MAX_RECORDS];
static size_t nzone;
static struct stat zone_st;

static void lower_nodot(char *s)
{
	size_t n = strlen(s);

	if (n > 1 && s[n - 1] == '.')
		s[n - 1] = '\0';
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

static void load(const char *path)
{
	struct stat st;
	char line[1024];
	FILE *f;

	if (stat(path, &st) < 0) {
		nzone = 0;
		memset(&zone_st, 0, sizeof(zone_st));
		return;
	}
	if (nzone && st.st_ino == zone_st.st_ino && st.st_size == zone_st.st_size &&
	    st.st_mtim.tv_sec == zone_st.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == zone_st.st_mtim.tv_nsec)
		return;
	f = fopen(path, "r");
	if (!f)
		return;
	zone_st = st;
	nzone = 0;
	while (fgets(line, sizeof(line), f) && nzone < MAX_RECORDS) {
		struct rec *r = &zone[nzone];
		char type[16], a[256];
		char *hash = strchr(line, '#');
		int n;

		if (hash)
			*hash = '\0';
		memset(r, 0, sizeof(*r));
		n = sscanf(line, "%255s %15s %255s %u %u %255s", r->name, type,
			   a, &r->weight, &r->port, r->target);
		if (n < 2)
			continue;
		lower_nodot(r->name);
		if (strcasecmp(type, "A") == 0 && n >= 3 &&
		    inet_pton(AF_INET, a, r->ip) == 1)
			r->type = T_A;
		else if (strcasecmp(type, "AAAA") == 0 && n >= 3 &&
			 inet_pton(AF_INET6, a, r->ip) == 1)
			r->type = T_AAAA;
		else if (strcasecmp(type, "SRV") == 0 && n == 6) {
			r->type = T_SRV;
			r->prio = (unsigned)atoi(a);
			lower_nodot(r->target);
		} else if (strcasecmp(type, "servfail") == 0)
			r->type = T_SERVFAIL;
		else if (strcasecmp(type, "drop") == 0)
			r->type = T_DROP;
		else {
			fprintf(stderr, "dns-responder: bad zone line: %s", line);
			continue;
		}
		nzone++;
	}
	fclose(f);
}

static size_t put16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
	return 2;
}

/* Encodes a dotted name; returns its length, 0 if it does not fit. */
static size_t put_name(unsigned char *p, size_t room, const char *name)
{
	size_t n = 0;

	while (*name) {
		const char *dot = strchr(name, '.');
		size_t l = dot ? (size_t)(dot - name) : strlen(name);

		if (l == 0 || l > 63 || n + l + 2 > room)
			return 0;
		p[n++] = (unsigned char)l;
		memcpy(p + n, name, l);
		n += l;
		name += l + (dot ? 1 : 0);
	}
	if (n + 1 > room)
		return 0;
	p[n++] = 0;
	return n;
}

static const char *type_name(int t)
{
	return t == T_A	     ? "A"
	       : t == T_AAAA ? "AAAA"
	       : t == T_SRV  ? "SRV"
			     : "other";
}

static void answer(int fd, const unsigned char *q, size_t qlen,
		   const struct sockaddr_in *from, socklen_t fromlen)
{
	unsigned char out[1500];
	char name[256];
	size_t pos = 12, n = 0, o;
	int qtype, rcode = 0, known = 0, drop = 0;
	unsigned ancount = 0;

	if (qlen < 12 || (q[2] & 0x80))
		return;
	while (pos < qlen && q[pos]) {
		size_t l = q[pos];

		if (l > 63 || pos + 1 + l > qlen || n + l + 2 > sizeof(name))
			return;
		if (n)
			name[n++] = '.';
		memcpy(name + n, q + pos + 1, l);
		n += l;
		pos += 1 + l;
	}
	name[n] = '\0';
	if (n == 0)
		snprintf(name, sizeof(name), ".");
	if (pos + 5 > qlen)
		return;
	pos++;
	qtype = q[pos] << 8 | q[pos + 1];
	pos += 4; /* type, class */
	lower_nodot(name);
	for (size_t i = 0; i < nzone; i++) {
		if (strcmp(zone[i].name, name) != 0)
			continue;
		known = 1;
		if (zone[i].type == T_SERVFAIL)
			rcode = 2;
		if (zone[i].type == T_DROP)
			drop = 1;
	}
	if (drop) {
		fprintf(stderr, "%s %s drop\n", name, type_name(qtype));
		return;
	}
	if (!known)
		rcode = 3;
	memcpy(out, q, pos); /* header and the question */
	out[2] = (unsigned char)(0x80 | (q[2] & 0x01)); /* QR, RD as asked */
	out[3] = (unsigned char)(0x80 | rcode);		/* RA */
	put16(out + 4, 1);
	o = pos;
	for (size_t i = 0; rcode == 0 && i < nzone; i++) {
		const struct rec *r = &zone[i];
		size_t rdlen, t;

		if (strcmp(r->name, name) != 0 || r->type != qtype)
			continue;
		if (o + 12 + 16 + 6 + 256 > sizeof(out))
			break;
		o += put16(out + o, 0xc00c); /* the name in the question */
		o += put16(out + o, (unsigned)r->type);
		o += put16(out + o, 1);
		o += put16(out + o, 0); /* TTL 0 */
		o += put16(out + o, 0);
		if (r->type == T_SRV) {
			put16(out + o + 2, r->prio);
			put16(out + o + 4, r->weight);
			put16(out + o + 6, r->port);
			t = put_name(out + o + 8, sizeof(out) - o - 8, r->target);
			if (!t)
				break;
			rdlen = 6 + t;
		} else {
			rdlen = r->type == T_A ? 4 : 16;
			memcpy(out + o + 2, r->ip, rdlen);
		}
		o += put16(out + o, (unsigned)rdlen);
		o += rdlen;
		ancount++;
	}
	put16(out + 6, ancount);
	put16(out + 8, 0);
	put16(out + 10, 0);
	fprintf(stderr, "%s %s %d %u\n", name, type_name(qtype), rcode, ancount);
	sendto(fd, out, o, 0, (const struct sockaddr *)from, fromlen);
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t salen = sizeof(sa);
	int fd;

	fd_cli_init("dns-responder", USAGE);
	if (argc != 2)
		fd_usage_die("one ZONEFILE expected");
	setvbuf(stderr, NULL, _IOLBF, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &salen) < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to bind: %s", strerror(errno));
	printf("%u\n", ntohs(sa.sin_port));
	fflush(stdout);
	for (;;) {
		unsigned char q[1500];
		struct sockaddr_in from;
		socklen_t fromlen = sizeof(from);
		ssize_t r = recvfrom(fd, q, sizeof(q), 0,
				     (struct sockaddr *)&from, &fromlen);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			fd_die(FD_EXIT_RUNTIME, "unable to receive: %s",
			       strerror(errno));
		load(argv[1]);
		answer(fd, q, (size_t)r, &from, fromlen);
	}
}
