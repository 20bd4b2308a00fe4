#include "acl.h"
#include "jsonl.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const kind_names[FD_SCOPE_NKINDS] = {
	"read", "register", "publish", "subscribe", "admin",
};

const char *fd_scope_name(enum fd_scope_kind kind)
{
	return (unsigned)kind < FD_SCOPE_NKINDS ? kind_names[kind] : "?";
}

static int push(struct fd_scopes *s, enum fd_scope_kind kind,
		const char *prefix, size_t plen, struct fd_err *err)
{
	struct fd_scope *v;
	char *p = NULL;

	if (s->n >= FD_ACL_MAX_SCOPES)
		return fd_err_set(err, "more than %d scopes", FD_ACL_MAX_SCOPES);
	if (prefix) {
		p = strndup(prefix, plen);
		if (!p)
			return fd_err_set(err, "out of memory");
	}
	v = realloc(s->v, (s->n + 1) * sizeof(*v));
	if (!v) {
		free(p);
		return fd_err_set(err, "out of memory");
	}
	s->v = v;
	s->v[s->n++] = (struct fd_scope){kind, p};
	return 0;
}

int fd_scopes_add(struct fd_scopes *s, const char *scope, struct fd_err *err)
{
	const char *colon = strchr(scope, ':');
	size_t klen = colon ? (size_t)(colon - scope) : strlen(scope);
	const char *prefix = colon ? colon + 1 : NULL;
	size_t plen = prefix ? strlen(prefix) : 0;
	int kind = -1;

	if (!colon && strcmp(scope, "all") == 0) {
		for (int k = 0; k < FD_SCOPE_NKINDS; k++)
			if (push(s, (enum fd_scope_kind)k, NULL, 0, err) < 0)
				return -1;
		return 0;
	}
	for (int k = 0; k < FD_SCOPE_NKINDS; k++)
		if (strlen(kind_names[k]) == klen &&
		    memcmp(scope, kind_names[k], klen) == 0)
			kind = k;
	if (kind < 0)
		return fd_err_set(err,
				  "unknown scope '%.80s' (read, register[:PREFIX], "
				  "publish[:PREFIX], subscribe[:PREFIX], admin, all)",
				  scope);
	if (prefix && (kind == FD_SCOPE_READ || kind == FD_SCOPE_ADMIN))
		return fd_err_set(err, "scope '%.80s': %s takes no prefix",
				  scope, kind_names[kind]);
	if (prefix && plen == 0)
		return fd_err_set(err, "scope '%.80s': empty prefix (write '%s' for every name)",
				  scope, kind_names[kind]);
	if (plen > FD_ACL_MAX_PREFIX)
		return fd_err_set(err, "scope '%.80s…': prefix longer than %d bytes",
				  scope, FD_ACL_MAX_PREFIX);
	for (size_t i = 0; i < plen; i++) {
		unsigned char c = (unsigned char)prefix[i];

		if (c <= ' ' || c == 0x7f)
			return fd_err_set(err, "scope '%.80s': whitespace or control character in the prefix",
					  scope);
		if (c == '*' || c == '>')
			return fd_err_set(err,
					  "scope '%.80s': a prefix is a plain string, without wildcards "
					  "('%s:orders.' covers orders.x)",
					  scope, kind_names[kind]);
	}
	return push(s, (enum fd_scope_kind)kind, prefix, plen, err);
}

void fd_scopes_release(struct fd_scopes *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].prefix);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

int fd_scopes_parse_list(struct fd_scopes *s, const char *list, struct fd_err *err)
{
	const char *p = list;

	fd_scopes_release(s);
	if (strcmp(list, "none") == 0)
		return 0;
	if (!*list)
		return fd_err_set(err, "empty scope list (use 'none' for no scope)");
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		char one[FD_ACL_MAX_PREFIX + 16];

		if (len == 0 || len >= sizeof(one)) {
			fd_scopes_release(s);
			return fd_err_set(err, "invalid scope list '%.80s'", list);
		}
		memcpy(one, p, len);
		one[len] = '\0';
		if (fd_scopes_add(s, one, err) < 0) {
			fd_scopes_release(s);
			return -1;
		}
		p += len;
		if (*p == ',' && !*++p) {
			fd_scopes_release(s);
			return fd_err_set(err, "invalid scope list '%.80s'", list);
		}
	}
	return 0;
}

static int has_prefix(const char *prefix, const char *name, size_t len)
{
	size_t plen = strlen(prefix);

	return plen <= len && memcmp(prefix, name, plen) == 0;
}

int fd_scopes_allow(const struct fd_scopes *s, enum fd_scope_kind kind,
		    const char *name, size_t len)
{
	for (size_t i = 0; i < s->n; i++) {
		const struct fd_scope *sc = &s->v[i];

		if (sc->kind != kind)
			continue;
		if (!sc->prefix || (name && has_prefix(sc->prefix, name, len)))
			return 1;
	}
	return 0;
}

/* The literal start of a pattern: everything before its first wildcard
 * token. Every subject the pattern matches starts with it and may go on
 * with any token there, so a prefix covers them all exactly when it is a
 * prefix of this part. */
static size_t literal_len(const char *pattern, size_t len)
{
	size_t start = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && pattern[i] != '.')
			continue;
		if (i - start == 1 && (pattern[start] == '*' || pattern[start] == '>'))
			return start;
		start = i + 1;
	}
	return len;
}

int fd_scopes_allow_pattern(const struct fd_scopes *s, const char *pattern, size_t len)
{
	size_t lit = literal_len(pattern, len);

	for (size_t i = 0; i < s->n; i++) {
		const struct fd_scope *sc = &s->v[i];

		if (sc->kind != FD_SCOPE_SUBSCRIBE)
			continue;
		if (!sc->prefix || has_prefix(sc->prefix, pattern, lit))
			return 1;
	}
	return 0;
}

/* ACL */

static void sha256(const void *data, size_t len, unsigned char out[32])
{
	unsigned int n = 32;

	if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1)
		memset(out, 0, 32); /* cannot happen with a built-in digest */
}

int fd_acl_token_valid(const char *token, size_t len)
{
	if (len == 0 || len > FD_ACL_MAX_TOKEN)
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)token[i] <= ' ' || (unsigned char)token[i] >= 0x7f)
			return 0;
	return 1;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void token_release(struct fd_acl_token *t)
{
	free(t->id);
	fd_scopes_release(&t->scopes);
}

/* One entry of "tokens"; fills t. i is its index, for messages. */
static int parse_token(struct json_object *o, size_t i, struct fd_acl_token *t,
		       struct fd_err *err)
{
	struct json_object *id = NULL, *tok = NULL, *hash = NULL, *scopes = NULL;
	struct fd_err e;
	const char *s;
	size_t len;

	if (!json_object_is_type(o, json_type_object))
		return fd_err_set(err, "token %zu: not an object", i + 1);
	json_object_object_foreach(o, k, v)
	{
		if (strcmp(k, "id") == 0)
			id = v;
		else if (strcmp(k, "token") == 0)
			tok = v;
		else if (strcmp(k, "token_sha256") == 0)
			hash = v;
		else if (strcmp(k, "scopes") == 0)
			scopes = v;
		else
			return fd_err_set(err,
					  "token %zu: unknown field '%.40s' "
					  "(id, token, token_sha256, scopes)",
					  i + 1, k);
	}
	if (!id || !json_object_is_type(id, json_type_string))
		return fd_err_set(err, "token %zu: no \"id\" string", i + 1);
	s = json_object_get_string(id);
	len = (size_t)json_object_get_string_len(id);
	if (len == 0 || len > FD_ACL_MAX_ID)
		return fd_err_set(err, "token %zu: \"id\" must be 1 to %d bytes",
				  i + 1, FD_ACL_MAX_ID);
	for (size_t j = 0; j < len; j++)
		if ((unsigned char)s[j] < ' ' || (unsigned char)s[j] >= 0x7f ||
		    s[j] == '"' || s[j] == '\\')
			return fd_err_set(err, "token %zu: \"id\" must be printable ASCII without quotes",
					  i + 1);
	t->id = strdup(s);
	if (!t->id)
		return fd_err_set(err, "out of memory");
	if (!tok == !hash)
		return fd_err_set(err, "token %zu (\"%s\"): give one of \"token\" and \"token_sha256\"",
				  i + 1, t->id);
	if (tok) {
		s = json_object_get_string(tok);
		len = (size_t)json_object_get_string_len(tok);
		if (!json_object_is_type(tok, json_type_string) ||
		    !fd_acl_token_valid(s, len) || len < FD_ACL_MIN_TOKEN)
			return fd_err_set(err,
					  "token %zu (\"%s\"): \"token\" must be %d to %d visible "
					  "ASCII characters",
					  i + 1, t->id, FD_ACL_MIN_TOKEN,
					  FD_ACL_MAX_TOKEN);
		sha256(s, len, t->hash);
	} else {
		s = json_object_get_string(hash);
		if (!json_object_is_type(hash, json_type_string) ||
		    json_object_get_string_len(hash) != 64)
			return fd_err_set(err, "token %zu (\"%s\"): \"token_sha256\" must be 64 hex digits",
					  i + 1, t->id);
		for (int j = 0; j < 32; j++) {
			int hi = hexval(s[2 * j]), lo = hexval(s[2 * j + 1]);

			if (hi < 0 || lo < 0)
				return fd_err_set(err, "token %zu (\"%s\"): \"token_sha256\" must be 64 hex digits",
						  i + 1, t->id);
			t->hash[j] = (unsigned char)(hi << 4 | lo);
		}
	}
	if (!scopes || !json_object_is_type(scopes, json_type_array))
		return fd_err_set(err, "token %zu (\"%s\"): no \"scopes\" array",
				  i + 1, t->id);
	if (json_object_array_length(scopes) > FD_ACL_MAX_SCOPES)
		return fd_err_set(err, "token %zu (\"%s\"): more than %d scopes",
				  i + 1, t->id, FD_ACL_MAX_SCOPES);
	for (size_t j = 0; j < json_object_array_length(scopes); j++) {
		struct json_object *sc = json_object_array_get_idx(scopes, j);

		if (!json_object_is_type(sc, json_type_string))
			return fd_err_set(err, "token %zu (\"%s\"): scope %zu is not a string",
					  i + 1, t->id, j + 1);
		if (fd_scopes_add(&t->scopes, json_object_get_string(sc), &e) < 0)
			return fd_err_set(err, "token %zu (\"%s\"): %s", i + 1,
					  t->id, e.msg);
	}
	return 0;
}

struct fd_acl *fd_acl_parse(const char *text, size_t len, struct fd_err *err)
{
	struct json_object *root, *tokens = NULL;
	struct fd_acl *acl;
	struct fd_err e;
	size_t n;

	if (len > FD_ACL_MAX_FILE) {
		fd_err_set(err, "larger than %d bytes", FD_ACL_MAX_FILE);
		return NULL;
	}
	root = fd_json_parse(text, len, &e);
	if (!root) {
		fd_err_set(err, "invalid JSON: %s", e.msg);
		return NULL;
	}
	if (!json_object_is_type(root, json_type_object)) {
		json_object_put(root);
		fd_err_set(err, "not a JSON object");
		return NULL;
	}
	json_object_object_foreach(root, k, v)
	{
		if (strcmp(k, "tokens") != 0) {
			fd_err_set(err, "unknown field '%.40s' (tokens)", k);
			json_object_put(root);
			return NULL;
		}
		tokens = v;
	}
	if (!tokens || !json_object_is_type(tokens, json_type_array)) {
		json_object_put(root);
		fd_err_set(err, "no \"tokens\" array");
		return NULL;
	}
	n = json_object_array_length(tokens);
	if (n > FD_ACL_MAX_TOKENS) {
		json_object_put(root);
		fd_err_set(err, "more than %d tokens", FD_ACL_MAX_TOKENS);
		return NULL;
	}
	acl = calloc(1, sizeof(*acl));
	if (acl && n)
		acl->tokens = calloc(n, sizeof(*acl->tokens));
	if (!acl || (n && !acl->tokens)) {
		free(acl);
		json_object_put(root);
		fd_err_set(err, "out of memory");
		return NULL;
	}
	acl->refs = 1;
	for (size_t i = 0; i < n; i++) {
		struct fd_acl_token *t = &acl->tokens[i];

		acl->n = i + 1;
		if (parse_token(json_object_array_get_idx(tokens, i), i, t, err) < 0)
			goto fail;
		for (size_t j = 0; j < i; j++) {
			if (strcmp(acl->tokens[j].id, t->id) == 0) {
				fd_err_set(err, "token %zu: id \"%s\" given twice",
					   i + 1, t->id);
				goto fail;
			}
			if (memcmp(acl->tokens[j].hash, t->hash, 32) == 0) {
				fd_err_set(err, "token %zu (\"%s\"): the same secret as \"%s\"",
					   i + 1, t->id, acl->tokens[j].id);
				goto fail;
			}
		}
	}
	json_object_put(root);
	return acl;
fail:
	json_object_put(root);
	fd_acl_unref(acl);
	return NULL;
}

struct fd_acl *fd_acl_load(const char *path, struct fd_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct fd_acl *acl = NULL;
	struct fd_err e;
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	ssize_t r;

	if (fd < 0) {
		fd_err_set(err, "unable to open '%s': %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		fd_err_set(err, "'%s' is not a regular file", path);
		goto out;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		fd_err_set(err,
			   "'%s' is writable by group or others (mode %03o): "
			   "anyone who can write it can grant themselves any scope",
			   path, (unsigned)(st.st_mode & 0777));
		goto out;
	}
	if (st.st_size > FD_ACL_MAX_FILE) {
		fd_err_set(err, "'%s' is larger than %d bytes", path, FD_ACL_MAX_FILE);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		fd_err_set(err, "out of memory");
		goto out;
	}
	while (len <= (size_t)st.st_size) {
		r = read(fd, buf + len, (size_t)st.st_size + 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fd_err_set(err, "unable to read '%s': %s", path,
				   strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len > (size_t)st.st_size) {
		fd_err_set(err, "'%s' changed while being read", path);
		goto out;
	}
	acl = fd_acl_parse(buf, len, &e);
	if (!acl)
		fd_err_set(err, "'%s': %s", path, e.msg);
out:
	free(buf);
	close(fd);
	return acl;
}

struct fd_acl *fd_acl_ref(struct fd_acl *acl)
{
	acl->refs++;
	return acl;
}

void fd_acl_unref(struct fd_acl *acl)
{
	if (!acl || --acl->refs > 0)
		return;
	for (size_t i = 0; i < acl->n; i++)
		token_release(&acl->tokens[i]);
	free(acl->tokens);
	free(acl);
}

const struct fd_acl_token *fd_acl_find(const struct fd_acl *acl,
				       const char *token, size_t len)
{
	const struct fd_acl_token *found = NULL;
	unsigned char h[32];

	if (!acl)
		return NULL;
	sha256(token, len, h);
	for (size_t i = 0; i < acl->n; i++) {
		/* no early exit: every entry costs the same */
		int same = CRYPTO_memcmp(h, acl->tokens[i].hash, 32) == 0;

		if (same)
			found = &acl->tokens[i];
	}
	return found;
}
