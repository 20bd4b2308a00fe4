/* Who may do what on this node (--acl-file, --default-scope), and the audit
 * log of admin actions (--audit-log).
 *
 * The HTTP server's auth hook runs before a route's handler (and before
 * its body is read): node-to-node routes (/v1/cluster/) and FD_HTTP_OPEN
 * ones pass; otherwise the client is its bearer token's entry in the ACL
 * (401 for an unknown one), or, without a token, a client on this host
 * gets --default-scope and any other gets 401. Then the route's class
 * decides: FD_HTTP_ADMIN needs admin, FD_HTTP_SCOPED routes check each
 * name in their handler (node_allow and friends), every other route needs
 * read (403 when lacking).
 *
 * What the hook learnt stays with the request (struct principal), holding a
 * reference to the ACL it came from: a request that began before a SIGHUP
 * reload keeps the rights it was given. A request on an admin route (or
 * marked with node_audit_request) writes one audit line when it ends, with
 * the status it got. */
#include "acl.h"
#include "clock.h"
#include "http.h"
#include "jsonl.h"
#include "log.h"
#include "node.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct authz {
	struct node *n;
	struct fd_acl *acl; /* NULL: no --acl-file, no token is known */
	struct fd_scopes local;
	const char *default_scope; /* as given, for messages */
	int audit_fd;
};

struct principal {
	struct authz *az;
	struct fd_acl *acl;		/* a reference, or NULL */
	const struct fd_acl_token *tok; /* NULL: no token (a local client) */
	struct fd_http_req *req;
	struct json_object *args; /* audited requests: the query */
	const char *action;	  /* audited requests: what (static) */
	int audit;
};

static void principal_free(void *p);

int authz_init(struct node *n, char *msg, size_t len)
{
	const struct node_opts *o = n->opts;
	struct authz *az = calloc(1, sizeof(*az));
	struct fd_err err;

	if (!az) {
		snprintf(msg, len, "out of memory");
		return -1;
	}
	n->authz = az;
	az->n = n;
	az->audit_fd = -1;
	az->default_scope = o->default_scope ? o->default_scope : "all";
	if (fd_scopes_parse_list(&az->local, az->default_scope, &err) < 0) {
		snprintf(msg, len, "invalid --default-scope '%s': %s",
			 az->default_scope, err.msg);
		return -2;
	}
	if (o->acl_file) {
		az->acl = fd_acl_load(o->acl_file, &err);
		if (!az->acl) {
			snprintf(msg, len, "invalid --acl-file: %s", err.msg);
			return -2;
		}
		fd_info("ACL '%s': %zu tokens", o->acl_file, az->acl->n);
	}
	if (o->audit_log) {
		az->audit_fd = open(o->audit_log,
				    O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		if (az->audit_fd < 0) {
			snprintf(msg, len, "unable to open the audit log '%s': %s",
				 o->audit_log, strerror(errno));
			return -1;
		}
	}
	return 0;
}

void authz_free(struct node *n)
{
	struct authz *az = n->authz;

	if (!az)
		return;
	fd_acl_unref(az->acl);
	fd_scopes_release(&az->local);
	if (az->audit_fd >= 0)
		close(az->audit_fd);
	free(az);
	n->authz = NULL;
}

/* Audit */

static void audit_write(struct authz *az, struct json_object *o)
{
	size_t len;
	const char *s;
	char *line;

	if (az->audit_fd < 0)
		return;
	s = fd_json_str(o, &len);
	line = malloc(len + 1);
	if (!line) {
		fd_errlog("audit log: out of memory");
		return;
	}
	memcpy(line, s, len);
	line[len] = '\n';
	/* one write, so lines never interleave; then on disk before we go on */
	if (write(az->audit_fd, line, len + 1) != (ssize_t)(len + 1) ||
	    fsync(az->audit_fd) < 0)
		fd_errlog("unable to write the audit log '%s': %s",
			  az->n->opts->audit_log, strerror(errno));
	free(line);
}

static const char *result_of(unsigned status)
{
	if (status == 0)
		return "aborted";
	if (status < 300)
		return "ok";
	if (status == 401 || status == 403)
		return "denied";
	return "failed";
}

static void audit(struct authz *az, const char *who, const char *peer,
		  const char *action, struct json_object *detail, unsigned status)
{
	struct json_object *o = fd_json_record("audit");
	char ts[FD_TS_LEN];

	json_object_object_add(
		o, "ts",
		json_object_new_string(fd_ts_format(fd_wall_us(), ts, sizeof(ts))));
	json_object_object_add(o, "who", json_object_new_string(who));
	if (peer)
		json_object_object_add(o, "peer", json_object_new_string(peer));
	json_object_object_add(o, "node", json_object_new_string(az->n->name));
	json_object_object_add(o, "action", json_object_new_string(action));
	if (detail)
		json_object_object_add(o, "detail", detail);
	json_object_object_add(o, "status", json_object_new_int((int)status));
	json_object_object_add(o, "result",
			       json_object_new_string(result_of(status)));
	audit_write(az, o);
	json_object_put(o);
}

/* A token's id; "local" for a client on this host without one (the only
 * ones let in without a token); else the address. */
static const char *who_of(const struct principal *p, const char *peer)
{
	if (p && p->tok)
		return p->tok->id;
	return p ? "local" : peer;
}

void node_audit(struct node *n, struct fd_http_req *req, const char *action,
		struct json_object *detail, unsigned status)
{
	const struct principal *p = req ? fd_http_auth_data(req) : NULL;

	if (!n->authz || n->authz->audit_fd < 0) {
		json_object_put(detail);
		return;
	}
	audit(n->authz, req ? who_of(p, fd_http_peer(req)) : "node",
	      req ? fd_http_peer(req) : NULL, action, detail, status);
}

/* A body for the audit log: secrets (a key being installed) stay out of it. */
static struct json_object *redacted(struct json_object *body)
{
	struct json_object *copy;

	if (!json_object_is_type(body, json_type_object) ||
	    !json_object_object_get_ex(body, "key", NULL))
		return json_object_get(body);
	copy = json_object_new_object();
	json_object_object_foreach(body, k, v)
	{
		json_object_object_add(copy, k,
				       strcmp(k, "key") == 0
					       ? json_object_new_string("(redacted)")
					       : json_object_get(v));
	}
	return copy;
}

/* An audited request ends: one line with what it asked and what it got. */
static void principal_free(void *arg)
{
	struct principal *p = arg;

	if (p->audit && p->az->audit_fd >= 0) {
		struct json_object *detail = json_object_new_object();
		struct json_object *body = fd_http_json(p->req);
		char action[300];

		if (p->action)
			snprintf(action, sizeof(action), "%s", p->action);
		else
			snprintf(action, sizeof(action), "%s %s",
				 fd_http_method(p->req), fd_http_path(p->req));
		if (p->args && json_object_object_length(p->args) > 0)
			json_object_object_add(detail, "args",
					       json_object_get(p->args));
		if (body)
			json_object_object_add(detail, "body", redacted(body));
		if (json_object_object_length(detail) == 0) {
			json_object_put(detail);
			detail = NULL;
		}
		audit(p->az, who_of(p, fd_http_peer(p->req)), fd_http_peer(p->req),
		      action, detail, fd_http_status(p->req));
	}
	json_object_put(p->args);
	fd_acl_unref(p->acl);
	free(p);
}

static struct principal *principal_new(struct authz *az, struct fd_http_req *req,
				       const struct fd_acl_token *tok)
{
	struct principal *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->az = az;
	p->req = req;
	p->tok = tok;
	p->acl = tok ? fd_acl_ref(az->acl) : NULL;
	fd_http_set_auth_data(req, p, principal_free);
	return p;
}

static void audit_mark(struct principal *p, const char *action)
{
	if (p->audit || p->az->audit_fd < 0)
		return;
	p->audit = 1;
	p->action = action;
	p->args = fd_http_query_json(p->req);
}

void node_audit_request(struct node *n, struct fd_http_req *req, const char *action)
{
	struct principal *p = fd_http_auth_data(req);

	if (!n->authz || n->authz->audit_fd < 0)
		return;
	if (!p)
		p = principal_new(n->authz, req, NULL);
	if (p)
		audit_mark(p, action);
}

/* Checks */

/* The scopes of the request's client, and its name for messages. */
static const struct fd_scopes *scopes_of(struct authz *az, struct fd_http_req *req,
					 char *who, size_t len)
{
	const struct principal *p = fd_http_auth_data(req);

	if (p && p->tok) {
		snprintf(who, len, "token \"%s\"", p->tok->id);
		return &p->tok->scopes;
	}
	snprintf(who, len, "clients without a token (--default-scope %s)",
		 az->default_scope);
	return &az->local;
}

const struct fd_scopes *node_scopes(struct node *n, struct fd_http_req *req,
				    char *who, size_t len)
{
	return scopes_of(n->authz, req, who, len);
}

void node_forbidden(struct fd_http_req *req, const char *who,
		    enum fd_scope_kind kind, const char *name, size_t len)
{
	/* "token "ci" lacks publish:billing.x" */
	if (name)
		fd_http_reply_error(req, 403, "forbidden: %s %s %s:%.*s", who,
				    strncmp(who, "token", 5) ? "lack" : "lacks",
				    fd_scope_name(kind), (int)len, name);
	else
		fd_http_reply_error(req, 403, "forbidden: %s %s %s", who,
				    strncmp(who, "token", 5) ? "lack" : "lacks",
				    fd_scope_name(kind));
}

int node_allow(struct node *n, struct fd_http_req *req, enum fd_scope_kind kind,
	       const char *name, size_t len)
{
	char who[160];
	const struct fd_scopes *s = scopes_of(n->authz, req, who, sizeof(who));

	if (fd_scopes_allow(s, kind, name, len))
		return 1;
	node_forbidden(req, who, kind, name, len);
	return 0;
}

int node_allow_pattern(struct node *n, struct fd_http_req *req,
		       const char *pattern, size_t len)
{
	char who[160];
	const struct fd_scopes *s = scopes_of(n->authz, req, who, sizeof(who));

	if (fd_scopes_allow_pattern(s, pattern, len))
		return 1;
	node_forbidden(req, who, FD_SCOPE_SUBSCRIBE, pattern, len);
	return 0;
}

/* The hook */

/* 401; an admin route's refusal is audited too (who: the address). */
static int unauthorized(struct authz *az, struct fd_http_req *req,
			unsigned flags, const char *why)
{
	fd_http_reply_header(req, "WWW-Authenticate", "Bearer");
	fd_http_reply_error(req, 401, "unauthorized: %s", why);
	if ((flags & FD_HTTP_ADMIN) && az->audit_fd >= 0) {
		char action[300];

		snprintf(action, sizeof(action), "%s %s", fd_http_method(req),
			 fd_http_path(req));
		audit(az, fd_http_peer(req), fd_http_peer(req), action, NULL, 401);
	}
	return 1;
}

static int auth_hook(struct fd_http_req *req, unsigned flags, void *arg)
{
	struct authz *az = arg;
	const char *h, *path = fd_http_path(req);
	const struct fd_acl_token *tok = NULL;
	struct principal *p = NULL;
	enum fd_scope_kind need = FD_SCOPE_READ;

	if ((flags & FD_HTTP_OPEN) || strncmp(path, "/v1/cluster/", 12) == 0)
		return 0;
	h = fd_http_header(req, "Authorization");
	if (h) {
		const char *t = h + 7;

		if (strncasecmp(h, "Bearer ", 7) != 0)
			return unauthorized(az, req, flags,
					    "expected 'Authorization: Bearer TOKEN'");
		while (*t == ' ')
			t++;
		tok = fd_acl_find(az->acl, t, strlen(t));
		if (!tok) {
			fd_warnlog("unknown token from %s on %s %s",
				   fd_http_peer(req), fd_http_method(req), path);
			return unauthorized(az, req, flags,
					    az->acl ? "unknown token"
						    : "unknown token (this node "
						      "has no --acl-file)");
		}
	} else if (!fd_http_peer_local(req)) {
		return unauthorized(az, req, flags,
				    "a token is needed from other hosts "
				    "(--token or FD_TOKEN)");
	} else if (az->local.n == 0) {
		return unauthorized(az, req, flags,
				    "a token is needed (--default-scope none)");
	}
	if (tok || (flags & FD_HTTP_ADMIN)) {
		p = principal_new(az, req, tok);
		if (!p) {
			fd_http_reply_error(req, 500, "out of memory");
			return 1;
		}
	}
	if (flags & FD_HTTP_ADMIN) {
		audit_mark(p, NULL);
		need = FD_SCOPE_ADMIN;
	} else if (flags & FD_HTTP_SCOPED) {
		return 0;
	}
	return node_allow(az->n, req, need, NULL, 0) ? 0 : 1;
}

void authz_add_hook(struct node *n)
{
	fd_http_server_set_auth(n->http, auth_hook, n->authz);
}

void authz_reload(struct node *n)
{
	struct authz *az = n->authz;
	struct json_object *detail = json_object_new_object();
	struct fd_acl *acl;
	struct fd_err err;

	if (!n->opts->acl_file) {
		json_object_put(detail);
		return;
	}
	json_object_object_add(detail, "file",
			       json_object_new_string(n->opts->acl_file));
	acl = fd_acl_load(n->opts->acl_file, &err);
	if (!acl) {
		fd_errlog("ACL not reloaded, the old one stays: %s", err.msg);
		json_object_object_add(detail, "error",
				       json_object_new_string(err.msg));
		audit(az, "SIGHUP", NULL, "acl reload", detail, 500);
		return;
	}
	fd_acl_unref(az->acl);
	az->acl = acl;
	fd_info("ACL '%s' reloaded: %zu tokens", n->opts->acl_file, acl->n);
	json_object_object_add(detail, "tokens",
			       json_object_new_int64((int64_t)acl->n));
	audit(az, "SIGHUP", NULL, "acl reload", detail, 200);
}
