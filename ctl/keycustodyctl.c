/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * keycustodyctl.c: the command-line client: parses a command, sends one request to the
 * daemon through libkeycustody and prints the answer (a table, or with --json the object
 * that the HTTP API returns as "result"). The daemon is the authority; errors are echoed.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd-audit.h"
#include "ctl.h"
#include "json.h"
#include "kc-api.h"
#include "kc-err.h"
#include "kc-proto.h"
#include "kc-util.h"
#include "keycustody.h"
#include "log.h"
#include "xmalloc.h"

struct cmd_entry {
	const char	*noun;
	const char	*verb;
	const char	*usage;
	int		(*exec)(struct ctl_opts *, int, char **);
};

static const struct cmd_entry cmd_table[] = {
	{ "health", NULL, "health", cmd_health },
	{ "csr", "create", "csr create --zone ZONE --country CC --state ST --locality L "
	    "--organization O [--organizational-unit OU] --common-name CN --san NAME... "
	    "[--key-type " KC_KEY_TYPES_USAGE "] [--name N] "
	    "[--description D]", cmd_csr_create },
	{ "csr", "list", "csr list --zone ZONE [--page N] [--per-page N] [--desc]",
	    cmd_csr_list },
	{ "csr", "get", "csr get --zone ZONE ID", cmd_csr_get },
	{ "csr", "delete", "csr delete --zone ZONE ID", cmd_csr_delete },
	{ "hostname", "create", "hostname create --zone ZONE --hostname NAME --csr CSR-ID "
	    "--cert FILE [--bundle-method ubiquitous|optimal|force]", cmd_hostname_create },
	{ "hostname", "list", "hostname list --zone ZONE [--page N] [--per-page N] [--desc] "
	    "[--hostname NAME] [--csr CSR-ID]", cmd_hostname_list },
	{ "hostname", "get", "hostname get --zone ZONE ID", cmd_hostname_get },
	{ "hostname", "update", "hostname update --zone ZONE [--csr CSR-ID] --cert FILE "
	    "[--bundle-method M] ID", cmd_hostname_update },
	{ "hostname", "delete", "hostname delete --zone ZONE ID", cmd_hostname_delete },
	{ "fallback-origin", "get", "fallback-origin get --zone ZONE", cmd_fallback_get },
	{ "fallback-origin", "set", "fallback-origin set --zone ZONE ORIGIN", cmd_fallback_set },
	{ "fallback-origin", "delete", "fallback-origin delete --zone ZONE",
	    cmd_fallback_delete },
	{ "audit", "verify", CMD_AUDIT_USAGE, cmd_audit_verify },
};

static __dead void
usage(void)
{
	size_t	 i;

	fprintf(stderr, "usage: keycustodyctl [--json] [-s socket] [-T timeout-seconds] "
	    "command [args]\ncommands:\n");
	for (i = 0; i < nitems(cmd_table); i++)
		fprintf(stderr, "    %s\n", cmd_table[i].usage);
	exit(EXIT_USAGE);
}

__dead void
cmd_usage(const char *noun, const char *verb)
{
	size_t	 i;

	for (i = 0; i < nitems(cmd_table); i++)
		if (strcmp(cmd_table[i].noun, noun) == 0 && (verb == NULL ||
		    cmd_table[i].verb == NULL || strcmp(cmd_table[i].verb, verb) == 0))
			fprintf(stderr, "usage: keycustodyctl %s\n", cmd_table[i].usage);
	exit(EXIT_USAGE);
}

void
cmd_help(const char *noun, const char *verb)
{
	size_t	 i;

	for (i = 0; i < nitems(cmd_table); i++)
		if (strcmp(cmd_table[i].noun, noun) == 0 && (verb == NULL ||
		    cmd_table[i].verb == NULL || strcmp(cmd_table[i].verb, verb) == 0))
			printf("usage: keycustodyctl %s\n", cmd_table[i].usage);
}

/* One call to the daemon; exits on transport failure. Caller frees the response. */
Keycustody__Response *
ctl_call(struct ctl_opts *o, Keycustody__Request *req)
{
	struct kcc		*c;
	Keycustody__Response	*resp = NULL;
	char			*cause = NULL;
	int			 r;

	if ((r = kcc_open(o->socket, &c, &cause)) != 0) {
		fprintf(stderr, "keycustodyctl: %s\n", cause != NULL ? cause : kc_strerror(r));
		free(cause);
		exit(EXIT_CONN);
	}
	r = kcc_call(c, req, o->timeout_ms, &resp);
	kcc_close(c);
	if (r != 0) {
		fprintf(stderr, "keycustodyctl: %s: %s\n", proto_request_name(req->body_case),
		    kc_strerror(r));
		exit(EXIT_CONN);
	}
	return resp;
}

/* Print the daemon's error (as the HTTP API would with --json) and return the exit code. */
int
ctl_error(struct ctl_opts *o, const Keycustody__Error *e)
{
	char	*s;
	int	 http;

	if (o->json) {
		if (json_reply_daemon_error(e, &http, &s) != 0)
			fatalx("out of memory");
		printf("%s\n", s);
		free(s);
	} else
		fprintf(stderr, "keycustodyctl: error %u (%s): %s\n", e->code,
		    kc_status_name((int)e->status), e->message);
	return e->status == KEYCUSTODY__STATUS__UNAVAILABLE ? EXIT_CONN : EXIT_API;
}

unsigned int
ctl_uint(const char *flag, const char *s)
{
	unsigned long	 ul;
	char		*end;

	errno = 0;
	ul = strtoul(s, &end, 10);
	if (*s == '\0' || *s == '-' || *end != '\0' || errno != 0 || ul > UINT_MAX) {
		fprintf(stderr, "keycustodyctl: %s: \"%s\" is not a number\n", flag, s);
		exit(EXIT_USAGE);
	}
	return (unsigned int)ul;
}

/* Shared by get and delete: --zone ZONE ID. */
/* --zone ZONE and exactly nargs operands (0 or 1); the operand, or NULL. */
static const char *
ctl_zone_args(int argc, char **argv, const char *noun, const char *verb, const char **zone,
    int nargs)
{
	static const struct option longopts[] = {
		{ "zone", required_argument, NULL, 'z' },
		{ NULL, 0, NULL, 0 }
	};
	int	 ch;

	*zone = NULL;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (ch != 'z')
			cmd_usage(noun, verb);
		*zone = optarg;
	}
	if (*zone == NULL || argc - optind != nargs)
		cmd_usage(noun, verb);
	return nargs > 0 ? argv[optind] : NULL;
}

void
ctl_zone_id(int argc, char **argv, const char *noun, const char *verb, const char **zone,
    const char **id)
{
	*id = ctl_zone_args(argc, argv, noun, verb, zone, 1);
}

void
ctl_zone(int argc, char **argv, const char *noun, const char *verb, const char **zone)
{
	(void)ctl_zone_args(argc, argv, noun, verb, zone, 0);
}

int
ctl_list_flag(struct ctl_list *l, int ch, const char *arg)
{
	switch (ch) {
	case CTL_O_ZONE:
		l->zone = arg;
		return 1;
	case CTL_O_PAGE:
		l->has_page = 1;
		l->page = ctl_uint("--page", arg);
		return 1;
	case CTL_O_PER_PAGE:
		l->has_per_page = 1;
		l->per_page = ctl_uint("--per-page", arg);
		return 1;
	case CTL_O_DESC:
		l->desc = 1;
		return 1;
	default:
		return 0;
	}
}

void
ctl_print_deleted(struct ctl_opts *o, const char *id)
{
	char	*s;

	if (!o->json) {
		printf("deleted %s\n", id);
		return;
	}
	if (json_id(id, &s) != 0)
		fatalx("out of memory");
	printf("%s\n", s);
	free(s);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "json",	no_argument,		NULL, 'j' },
		{ "socket",	required_argument,	NULL, 's' },
		{ "timeout",	required_argument,	NULL, 'T' },
		{ "help",	no_argument,		NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct ctl_opts	 o = { NULL, 0, 0 };
	size_t		 i, j;
	int		 ch, skip;

	log_init(1, 0);
	/* Global options stop at the first command word ('+'). */
	while ((ch = getopt_long(argc, argv, "+hjs:T:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			o.json = 1;
			break;
		case 's':
			o.socket = optarg;
			break;
		case 'T':
			o.timeout_ms = (int)ctl_uint("--timeout", optarg) * 1000;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	/* --json may also follow the command's own flags ("csr create ... --json"). */
	for (i = j = 0; i < (size_t)argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			while (i < (size_t)argc)
				argv[j++] = argv[i++];
			break;
		}
		if (strcmp(argv[i], "--json") == 0)
			o.json = 1;
		else
			argv[j++] = argv[i];
	}
	argc = (int)j;
	argv[argc] = NULL;
	if (argc < 1)
		usage();
	for (i = 0; i < nitems(cmd_table); i++) {
		if (strcmp(cmd_table[i].noun, argv[0]) != 0)
			continue;
		if (cmd_table[i].verb == NULL)
			return cmd_table[i].exec(&o, argc, argv);
		if (argc < 2)
			cmd_usage(argv[0], NULL);
		if (strcmp(cmd_table[i].verb, argv[1]) == 0) {
			skip = 1;
			return cmd_table[i].exec(&o, argc - skip, argv + skip);
		}
	}
	if (argc >= 1)
		for (i = 0; i < nitems(cmd_table); i++)
			if (strcmp(cmd_table[i].noun, argv[0]) == 0)
				cmd_usage(argv[0], NULL);
	usage();
}
