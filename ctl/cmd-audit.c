/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * cmd-audit.c: owns "keycustodyctl audit verify": checks an audit log, or a rotated set of
 * them oldest first, with lib/audit-verify.c and reports the first broken or missing line.
 * Offline: the structure, the hash chain and the sequence; the keyed MACs need the HSM's
 * key, so only "keycustodyd --verify-audit" checks them, and this command says so.
 */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "audit-verify.h"
#include "cmd-audit.h"
#include "kc-err.h"

#define CMD_AUDIT_EXIT_BAD	1
#define CMD_AUDIT_EXIT_USAGE	2

static int
cmd_audit_usage(void)
{
	fprintf(stderr, "usage: keycustodyctl %s\n", CMD_AUDIT_USAGE);
	return CMD_AUDIT_EXIT_USAGE;
}

int
cmd_audit_verify(struct ctl_opts *o, int argc, char **argv)
{
	static const struct option	 longopts[] = {
		{ "head",	required_argument,	NULL,	'H' },
		{ "after",	required_argument,	NULL,	'a' },
		{ NULL,		0,			NULL,	0 }
	};
	struct audit_verify_opts	 opts;
	struct audit_chain		 chain;
	const char			*head = NULL;
	int				 ch, r;

	(void)o;
	optind = 1;
	memset(&opts, 0, sizeof(opts));
	while ((ch = getopt_long(argc, argv, "a:H:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'H':
			head = optarg;
			break;
		case 'a':
			opts.after = optarg;
			break;
		default:
			return cmd_audit_usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		return cmd_audit_usage();
	if (head != NULL && strlen(head) != AUDIT_HASH_LEN) {
		fprintf(stderr, "keycustodyctl: --head: not a hex SHA-256\n");
		return CMD_AUDIT_EXIT_USAGE;
	}
	if (opts.after != NULL && strlen(opts.after) != AUDIT_HASH_LEN) {
		fprintf(stderr, "keycustodyctl: --after: not a hex SHA-256\n");
		return CMD_AUDIT_EXIT_USAGE;
	}
	if ((r = audit_verify_files_opts(argv, argc, &chain, &opts, stderr)) != 0) {
		if (r == KC_ERR_BAD_MESSAGE)
			fprintf(stderr, "audit log BROKEN\n");
		else
			fprintf(stderr, "audit log NOT VERIFIED: %s\n", kc_strerror(r));
		return CMD_AUDIT_EXIT_BAD;
	}
	if (head != NULL && strcasecmp(head, chain.hash) != 0) {
		fprintf(stderr, "%s:%" PRIu64 ": the chain ends at %s, not at the expected head "
		    "%s: the last line was altered, or lines are missing at the end\n",
		    argv[argc - 1], chain.lines, chain.hash, head);
		fprintf(stderr, "audit log BROKEN\n");
		return CMD_AUDIT_EXIT_BAD;
	}
	printf("audit log OK: %" PRIu64 " lines, last hash %s\n", chain.total, chain.hash);
	if (chain.keyed > 0)
		printf("MACs NOT checked: %" PRIu64 " keyed line(s) need the HSM's key; run "
		    "'keycustodyd --verify-audit FILE...' to check them\n", chain.keyed);
	return 0;
}
