/* --announce: options, and the dispatch to mdns.c and gossip.c. */
#include "announce.h"
#include "cli.h"
#include "dsource.h"
#include "gossip.h"
#include "node.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct announce {
	struct mdns_announcer *mdns;
	struct gossip_announcer *gossip;
	int left;
};

void announce_opts_default(struct announce_opts *o)
{
	memset(o, 0, sizeof(*o));
	fd_mcast_parse_group(FD_GOSSIP_GROUP, &o->mcast.group, NULL);
	o->mcast.port = FD_GOSSIP_PORT;
	o->mcast.ttl = FD_GOSSIP_TTL;
	o->gossip_interval_ms = FD_GOSSIP_INTERVAL_MS;
}

int announce_parse_what(struct announce_opts *o, const char *arg, char *why, size_t len)
{
	const char *p = arg;

	for (;;) {
		size_t n = strcspn(p, ",");

		if (n == 4 && strncmp(p, "mdns", 4) == 0)
			o->what |= ANNOUNCE_MDNS;
		else if (n == 6 && strncmp(p, "gossip", 6) == 0)
			o->what |= ANNOUNCE_GOSSIP;
		else
			return snprintf(why, len,
					"invalid --announce '%s' (mdns, gossip, or both: mdns,gossip)",
					arg),
			       -1;
		if (!p[n])
			return 0;
		p += n + 1;
	}
}

int announce_parse_meta(struct announce_opts *o, const char *arg, char *why, size_t len)
{
	const char *eq = strchr(arg, '=');

	if (!eq || eq == arg || strlen(arg) > 255)
		return snprintf(why, len,
				"invalid --meta '%s' (KEY=VALUE, at most 255 bytes)",
				arg),
		       -1;
	for (const char *c = arg; c < eq; c++)
		if (*c < 0x21 || *c > 0x7e)
			return snprintf(why, len,
					"invalid --meta '%s' (a key of printable ASCII)",
					arg),
			       -1;
	if ((eq - arg == 2 && strncmp(arg, "id", 2) == 0) ||
	    (eq - arg == 7 && strncmp(arg, "version", 7) == 0))
		return snprintf(why, len,
				"invalid --meta '%s' (id and version are the node's)",
				arg),
		       -1;
	for (int i = 0; i < o->nmeta; i++)
		if (strncmp(o->meta[i], arg, (size_t)(eq - arg) + 1) == 0)
			return snprintf(why, len, "--meta '%.*s' given twice",
					(int)(eq - arg), arg),
			       -1;
	if (o->nmeta == ANNOUNCE_MAX_META)
		return snprintf(why, len, "too many --meta (at most %d)",
				ANNOUNCE_MAX_META),
		       -1;
	o->meta[o->nmeta++] = arg;
	return 0;
}

void announce_start(struct node *n)
{
	const struct announce_opts *o = n->opts->announce;
	struct announce *a;

	/* --discover gossip opens heartbeats with the node's key (dsource.h) */
	fd_dsource_gossip_key(keys_ring(n), n->opts->cluster);
	if (!o || !o->what)
		return;
	a = calloc(1, sizeof(*a));
	if (!a)
		fd_die(FD_EXIT_RUNTIME, "out of memory");
	n->announce = a;
	if (o->what & ANNOUNCE_MDNS) {
		a->mdns = mdns_announce_start(n);
		if (!a->mdns)
			announce_die(n, FD_EXIT_RUNTIME,
				     "--announce mdns: out of memory");
	}
	if (o->what & ANNOUNCE_GOSSIP) {
		a->gossip = gossip_announce_start(n);
		if (!a->gossip)
			announce_die(n, FD_EXIT_RUNTIME,
				     "--announce gossip: out of memory");
	}
}

void announce_leave(struct node *n)
{
	struct announce *a = n->announce;

	if (!a || a->left)
		return;
	a->left = 1;
	if (a->mdns)
		mdns_announce_leave(a->mdns);
	if (a->gossip)
		gossip_announce_leave(a->gossip);
}

void announce_free(struct node *n)
{
	struct announce *a = n->announce;

	if (!a)
		return;
	announce_leave(n);
	mdns_announce_free(a->mdns);
	gossip_announce_free(a->gossip);

	free(a);
	n->announce = NULL;
}

void announce_add_info(struct node *n, struct json_object *info)
{
	struct announce *a = n->announce;
	struct json_object *o;

	if (!a)
		return;
	o = json_object_new_object();
	if (a->mdns)
		json_object_object_add(o, "mdns", mdns_announce_info(a->mdns));
	if (a->gossip)
		json_object_object_add(o, "gossip", gossip_announce_info(a->gossip));

	json_object_object_add(info, "announce", o);
}

noreturn void announce_die(struct node *n, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	node_report(n, code, "%s", msg);
	fd_die(code, "%s", msg);
}
