/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * xmalloc.h: allocation that cannot fail, for executables (fatal on out-of-memory).
 * Library-like code (proto.c, json.c, csr.c) returns KC_ERR_NOMEM instead.
 */
#ifndef KC_XMALLOC_H
#define KC_XMALLOC_H

#include <stddef.h>

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
int	 xasprintf(char **, const char *, ...)
	    __attribute__((__format__(__printf__, 2, 3)));
/** Free a buffer that held a secret: wipe len bytes first. NULL is a no-op. */
void	 freezero_kc(void *, size_t);

#endif /* KC_XMALLOC_H */
