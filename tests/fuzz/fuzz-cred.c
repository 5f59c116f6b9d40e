/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * fuzz-cred.c: the shim's credentials file parser (http/cred.c cred_parse) and the
 * lookups that run on every HTTP request against what it parsed. The secrets "fuzz-token"
 * and "fuzz-key" are tried against every table (their SHA-256 are in the seeds).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cred.h"
#include "fuzz.h"
#include "log.h"
#include "kc-err.h"

static __dead void
cred_fail(const char *what)
{
	fprintf(stderr, "fuzz-cred: %s\n", what);
	abort();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_log_init();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cred_table	*t = NULL;
	const struct cred	*c;
	char			*cause = NULL;
	int			 r;

	r = cred_parse((const char *)data, size, &t, &cause);
	if (r != 0) {
		if (t != NULL)
			cred_fail("table on failure");
		if (r == KC_ERR_INVALID && cause == NULL)
			cred_fail("refusal without a cause");
		free(cause);
		return 0;
	}
	if (t == NULL)
		cred_fail("no table on success");
	if ((c = cred_find_token(t, "fuzz-token")) != NULL) {
		if (c->type != CRED_TOKEN || cred_lookup(t, c->name) != c)
			cred_fail("token credential");
		(void)cred_allows(c, FUZZ_ZONE, 1);
		(void)cred_allows(c, "not-a-zone", 0);
	}
	if ((c = cred_find_key(t, "Ops@Keycustody-Fuzz.com", "fuzz-key")) != NULL) {
		if (c->type != CRED_KEY || cred_lookup(t, c->name) != c)
			cred_fail("key credential");
		(void)cred_allows(c, FUZZ_ZONE, 0);
	}
	(void)cred_lookup(t, "writer");
	(void)cred_count(t);
	cred_table_free(t);
	free(cause);
	return 0;
}
