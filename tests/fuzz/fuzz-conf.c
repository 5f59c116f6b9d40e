/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * fuzz-conf.c: the configuration file reader that keycustodyd and keycustody-http share
 * (lib/kc-conf-file.c), through the daemon's settings (daemon/conf.c conf_load, conf_set,
 * conf_check). conf_load() reads a path, so the input is written to a file in the scratch
 * directory first; what loads is checked as keycustodyd would check it.
 */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "fuzz.h"
#include "kc-err.h"

static char	 conf_path[PATH_MAX];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_log_init();
	fuzz_path(conf_path, sizeof(conf_path), "keycustodyd.conf");
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kc_conf	 c;
	char		*cause = NULL;
	int		 r;

	fuzz_write_file(conf_path, data, size);
	conf_init(&c);
	r = conf_load(&c, conf_path, &cause);
	if (r != 0 && cause == NULL) {
		fprintf(stderr, "fuzz-conf: refusal without a cause\n");
		abort();
	}
	free(cause);
	cause = NULL;
	if (r == 0) {
		(void)conf_check(&c, &cause);
		free(cause);
	}
	conf_free(&c);
	return 0;
}
