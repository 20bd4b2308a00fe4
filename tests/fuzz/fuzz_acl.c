/* libFuzzer harness for the ACL file parser and the scope checks (acl.h).
 *
 * The input is split at its first NUL: before it, an ACL file; after it,
 * a scope list for fd_scopes_parse_list and then a NUL-separated token,
 * name and pattern to check against every parsed scope set.
 *
 * Properties checked on every input (a failure traps):
 *   - a parsed ACL has at most FD_ACL_MAX_TOKENS entries, ids within limits
 *     and unique; fd_acl_find gives the entry whose secret was presented or
 *     none, and never an entry for a different secret;
 *   - for every scope set: a pattern allowed for subscribing only matches
 *     subjects the set allows (its wildcards filled in are allowed by
 *     fd_scopes_allow for FD_SCOPE_SUBSCRIBE); a name allowed for publish
 *     stays allowed when extended (prefixes are prefixes).
 */
#include "acl.h"
#include "topic.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ASSERT(c)                         \
	do {                              \
		if (!(c))                 \
			__builtin_trap(); \
	} while (0)

/* The pattern with each wildcard token replaced by "z". */
static size_t instantiate(const char *p, size_t len, char *out, size_t cap)
{
	size_t o = 0, start = 0;

	for (size_t i = 0; i <= len && o + 2 < cap; i++) {
		if (i < len && p[i] != '.')
			continue;
		if (i - start == 1 && (p[start] == '*' || p[start] == '>')) {
			out[o++] = 'z';
		} else {
			size_t n = i - start < cap - o - 2 ? i - start : cap - o - 2;

			memcpy(out + o, p + start, n);
			o += n;
		}
		if (i < len)
			out[o++] = '.';
		start = i + 1;
	}
	return o;
}

static void check_scopes(const struct fd_scopes *s, const char *name,
			 size_t nlen, const char *pattern, size_t plen)
{
	char sub[600];
	char ext[600];

	for (int k = 0; k < FD_SCOPE_NKINDS; k++)
		fd_scopes_allow(s, (enum fd_scope_kind)k, name, nlen);
	if (nlen < 500 && fd_scopes_allow(s, FD_SCOPE_PUBLISH, name, nlen)) {
		memcpy(ext, name, nlen);
		memcpy(ext + nlen, ".more", 5);
		ASSERT(fd_scopes_allow(s, FD_SCOPE_PUBLISH, ext, nlen + 5));
	}
	if (plen <= FD_TOPIC_MAX_LEN &&
	    fd_topic_valid_pattern(pattern, plen, NULL) == 0 &&
	    fd_scopes_allow_pattern(s, pattern, plen)) {
		size_t n = instantiate(pattern, plen, sub, sizeof(sub));

		ASSERT(fd_topic_match(pattern, plen, sub, n));
		ASSERT(fd_scopes_allow(s, FD_SCOPE_SUBSCRIBE, sub, n));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const char *nul = memchr(text, '\0', size);
	size_t flen = nul ? (size_t)(nul - text) : size;
	const char *rest = nul ? nul + 1 : "";
	size_t rlen = nul ? size - flen - 1 : 0;
	char *list = NULL, *tok, *name, *pattern;
	struct fd_scopes s = {0};
	struct fd_acl *acl;
	struct fd_err err;

	/* the tail: list \0 token \0 name \0 pattern, each NUL-terminated */
	list = calloc(1, rlen + 4);
	if (!list)
		return 0;
	memcpy(list, rest, rlen);
	tok = list + strlen(list) + 1;
	if (tok > list + rlen)
		tok = list + rlen + 1;
	name = tok + strlen(tok) + 1;
	if (name > list + rlen + 2)
		name = list + rlen + 2;
	pattern = name + strlen(name) + 1;
	if (pattern > list + rlen + 3)
		pattern = list + rlen + 3;

	acl = fd_acl_parse(text, flen, &err);
	if (acl) {
		const struct fd_acl_token *t;

		ASSERT(acl->n <= FD_ACL_MAX_TOKENS && acl->refs == 1);
		for (size_t i = 0; i < acl->n; i++) {
			size_t idl = strlen(acl->tokens[i].id);

			ASSERT(idl >= 1 && idl <= FD_ACL_MAX_ID);
			ASSERT(acl->tokens[i].scopes.n <= FD_ACL_MAX_SCOPES);
			for (size_t j = 0; j < i; j++)
				ASSERT(strcmp(acl->tokens[i].id, acl->tokens[j].id));
			check_scopes(&acl->tokens[i].scopes, name, strlen(name),
				     pattern, strlen(pattern));
		}
		t = fd_acl_find(acl, tok, strlen(tok));
		/* found only by its own secret: hash compare, so a second
		 * lookup with one byte more must not find the same entry */
		if (t) {
			char *longer = malloc(strlen(tok) + 2);

			if (longer) {
				memcpy(longer, tok, strlen(tok));
				memcpy(longer + strlen(tok), "x", 2);
				ASSERT(fd_acl_find(acl, longer, strlen(longer)) != t);
				free(longer);
			}
		}
		fd_acl_unref(fd_acl_ref(acl));
		fd_acl_unref(acl);
	}
	if (fd_scopes_parse_list(&s, list, &err) == 0) {
		ASSERT(s.n <= FD_ACL_MAX_SCOPES);
		check_scopes(&s, name, strlen(name), pattern, strlen(pattern));
	} else {
		ASSERT(s.n == 0 && err.msg[0]);
	}
	fd_scopes_release(&s);
	free(list);
	return 0;
}
