/* UTF-8 validation. Pure. */
#ifndef FD_UTF8_H
#define FD_UTF8_H

#include <stddef.h>

/* Checks that s[0..len) is valid UTF-8 (no overlongs, no surrogates, nothing
 * above U+10FFFF). Returns 1 or 0. */
int fd_utf8_valid(const char *s, size_t len);

#endif
