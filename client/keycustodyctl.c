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

#include "json.h"
#include "kc-err.h"
#include "kc-proto.h"
#include "keycustody.h"
#include "log.h"
#include "xmalloc.h"

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))

#define EXIT_API	1	/* the daemon answered with an error */
#define EXIT_USAGE	2
#define EXIT_CONN	3	/* no answer from the daemon */

struct ctl_opts {
	const char	*socket;
	int		 json;
	int		 timeout_ms;
};

struct cmd_entry {
	const char	*noun;
	const char	*verb;
	const char	*usage;
	int		(*exec)(struct ctl_opts *, int, char **);
};

static int	cmd_health(struct ctl_opts *, int, char **);
static int	cmd_csr_create(struct ctl_opts *, int, char **);
static int	cmd_csr_list(struct ctl_opts *, int, char **);
static int	cmd_csr_get(struct ctl_opts *, int, char **);
static int	cmd_csr_delete(struct ctl_opts *, int, char **);

static const struct cmd_entry cmd_table[] = {
	{ "health", NULL, "health", cmd_health },
	{ "csr", "create", "csr create --zone ZONE --country CC --state ST --locality L "
	    "--organization O [--organizational-unit OU] --common-name CN --san NAME... "
	    "[--key-type rsa2048|p256v1|rsa3072|rsa4096|p384v1] [--name N] "
	    "[--description D]", cmd_csr_create },
	{ "csr", "list", "csr list --zone ZONE [--page N] [--per-page N] [--desc]",
	    cmd_csr_list },
	{ "csr", "get", "csr get --zone ZONE ID", cmd_csr_get },
	{ "csr", "delete", "csr delete --zone ZONE ID", cmd_csr_delete },
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

static __dead void
cmd_usage(const char *noun, const char *verb)
{
	size_t	 i;

	for (i = 0; i < nitems(cmd_table); i++)
		if (strcmp(cmd_table[i].noun, noun) == 0 && (verb == NULL ||
		    cmd_table[i].verb == NULL || strcmp(cmd_table[i].verb, verb) == 0))
			fprintf(stderr, "usage: keycustodyctl %s\n", cmd_table[i].usage);
	exit(EXIT_USAGE);
}

/* One call to the daemon; exits on transport failure. Caller frees the response. */
static Keycustody__Response *
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
static int
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

static void
ctl_print_csr(struct ctl_opts *o, const Keycustody__Csr *c)
{
	char	 ts[32], *s;
	size_t	 i;

	if (o->json) {
		if (json_csr(c, &s) != 0)
			fatalx("out of memory");
		printf("%s\n", s);
		free(s);
		return;
	}
	proto_time_format(c->created_at_us, 0, ts, sizeof(ts));
	printf("id:                  %s\n", c->id);
	printf("created_at:          %s\n", ts);
	printf("key_type:            %s\n", c->key_type);
	printf("country:             %s\n", c->country);
	printf("state:               %s\n", c->state);
	printf("locality:            %s\n", c->locality);
	printf("organization:        %s\n", c->organization);
	if (c->organizational_unit != NULL)
		printf("organizational_unit: %s\n", c->organizational_unit);
	printf("common_name:         %s\n", c->common_name);
	for (i = 0; i < c->n_sans; i++)
		printf("san:                 %s\n", c->sans[i]);
	if (c->name != NULL)
		printf("name:                %s\n", c->name);
	if (c->description != NULL)
		printf("description:         %s\n", c->description);
	if (c->key_uri != NULL)
		printf("key_uri:             %s\n", c->key_uri);
	printf("%s", c->csr);
}

static unsigned int
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

static int
cmd_health(struct ctl_opts *o, int argc, char **argv)
{
	Keycustody__Request		 req = KEYCUSTODY__REQUEST__INIT;
	Keycustody__HealthRequest	 h = KEYCUSTODY__HEALTH_REQUEST__INIT;
	Keycustody__Response		*resp;
	const Keycustody__HealthResponse *hr = NULL;
	char				*s;
	int				 rc = 0, healthy;

	if (argc != 1)
		cmd_usage("health", NULL);
	req.body_case = KEYCUSTODY__REQUEST__BODY_HEALTH;
	req.health = &h;
	resp = ctl_call(o, &req);
	if (resp->error != NULL)
		rc = ctl_error(o, resp->error);
	else if ((hr = resp->health) == NULL)
		fatalx("health: empty answer");
	else if (o->json) {
		if (json_health(hr, &healthy, &s) != 0)
			fatalx("out of memory");
		printf("%s\n", s);
		free(s);
	} else {
		printf("hsm:                 %s\n", hr->hsm_state);
		printf("store:               %s\n", hr->store_ok ? "ok" : "failing");
		printf("token:               %s\n", hr->token_label ? hr->token_label : "-");
		printf("signer:              %s\n", hr->signer ? hr->signer : "-");
		printf("keys in custody:     %llu\n", (unsigned long long)hr->keys_in_custody);
		printf("queue:               %u / %u\n", hr->queue_depth, hr->queue_limit);
		printf("workers:             %u\n", hr->workers);
		printf("records missing key: %llu\n",
		    (unsigned long long)hr->records_missing_key);
		printf("orphan keys:         %llu\n", (unsigned long long)hr->orphan_keys);
		printf("uptime:              %llus\n", (unsigned long long)hr->uptime_seconds);
		printf("version:             %s\n", hr->version ? hr->version : "-");
	}
	if (rc == 0 && hr != NULL && strcmp(hr->hsm_state, "ok") != 0)
		rc = EXIT_CONN;
	keycustody__response__free_unpacked(resp, NULL);
	return rc;
}

static int
cmd_csr_create(struct ctl_opts *o, int argc, char **argv)
{
	enum { O_ZONE = 256, O_C, O_ST, O_L, O_O, O_OU, O_CN, O_SAN, O_KT, O_NAME, O_DESC };
	static const struct option longopts[] = {
		{ "zone",		required_argument, NULL, O_ZONE },
		{ "country",		required_argument, NULL, O_C },
		{ "state",		required_argument, NULL, O_ST },
		{ "locality",		required_argument, NULL, O_L },
		{ "organization",	required_argument, NULL, O_O },
		{ "organizational-unit", required_argument, NULL, O_OU },
		{ "common-name",	required_argument, NULL, O_CN },
		{ "san",		required_argument, NULL, O_SAN },
		{ "key-type",		required_argument, NULL, O_KT },
		{ "name",		required_argument, NULL, O_NAME },
		{ "description",	required_argument, NULL, O_DESC },
		{ NULL, 0, NULL, 0 }
	};
	Keycustody__Request		 req = KEYCUSTODY__REQUEST__INIT;
	Keycustody__CreateCsrRequest	 m = KEYCUSTODY__CREATE_CSR_REQUEST__INIT;
	Keycustody__Response		*resp;
	char				**sans = NULL;
	size_t				 nsans = 0;
	int				 ch, rc = 0;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case O_ZONE: m.zone_id = optarg; break;
		case O_C: m.country = optarg; break;
		case O_ST: m.state = optarg; break;
		case O_L: m.locality = optarg; break;
		case O_O: m.organization = optarg; break;
		case O_OU: m.organizational_unit = optarg; break;
		case O_CN: m.common_name = optarg; break;
		case O_SAN:
			sans = xreallocarray(sans, nsans + 1, sizeof(*sans));
			sans[nsans++] = optarg;
			break;
		case O_KT: m.key_type = optarg; break;
		case O_NAME: m.name = optarg; break;
		case O_DESC: m.description = optarg; break;
		default:
			cmd_usage("csr", "create");
		}
	}
	if (optind != argc || m.zone_id == NULL)
		cmd_usage("csr", "create");
	m.sans = sans;
	m.n_sans = nsans;
	req.body_case = KEYCUSTODY__REQUEST__BODY_CREATE_CSR;
	req.create_csr = &m;
	resp = ctl_call(o, &req);
	if (resp->error != NULL)
		rc = ctl_error(o, resp->error);
	else if (resp->csr != NULL)
		ctl_print_csr(o, resp->csr);
	keycustody__response__free_unpacked(resp, NULL);
	free(sans);
	return rc;
}

static int
cmd_csr_list(struct ctl_opts *o, int argc, char **argv)
{
	enum { O_ZONE = 256, O_PAGE, O_PER, O_DESC };
	static const struct option longopts[] = {
		{ "zone",	required_argument,	NULL, O_ZONE },
		{ "page",	required_argument,	NULL, O_PAGE },
		{ "per-page",	required_argument,	NULL, O_PER },
		{ "desc",	no_argument,		NULL, O_DESC },
		{ NULL, 0, NULL, 0 }
	};
	Keycustody__Request		 req = KEYCUSTODY__REQUEST__INIT;
	Keycustody__ListCsrsRequest	 m = KEYCUSTODY__LIST_CSRS_REQUEST__INIT;
	Keycustody__Response		*resp;
	const Keycustody__ListCsrsResponse *l;
	char				 ts[32], *s;
	size_t				 i;
	int				 ch, rc = 0;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case O_ZONE:
			m.zone_id = optarg;
			break;
		case O_PAGE:
			m.has_page = 1;
			m.page = ctl_uint("--page", optarg);
			break;
		case O_PER:
			m.has_per_page = 1;
			m.per_page = ctl_uint("--per-page", optarg);
			break;
		case O_DESC:
			m.has_descending = 1;
			m.descending = 1;
			break;
		default:
			cmd_usage("csr", "list");
		}
	}
	if (optind != argc || m.zone_id == NULL)
		cmd_usage("csr", "list");
	req.body_case = KEYCUSTODY__REQUEST__BODY_LIST_CSRS;
	req.list_csrs = &m;
	resp = ctl_call(o, &req);
	if (resp->error != NULL)
		rc = ctl_error(o, resp->error);
	else if ((l = resp->list_csrs) == NULL)
		fatalx("list: empty answer");
	else if (o->json) {
		if (json_csr_list(l, &s) != 0)
			fatalx("out of memory");
		printf("%s\n", s);
		free(s);
	} else {
		printf("%-36s  %-20s  %-8s  %s\n", "ID", "CREATED", "KEY", "COMMON NAME");
		for (i = 0; i < l->n_csrs; i++) {
			proto_time_format(l->csrs[i]->created_at_us, 0, ts, sizeof(ts));
			printf("%-36s  %-20s  %-8s  %s\n", l->csrs[i]->id, ts,
			    l->csrs[i]->key_type, l->csrs[i]->common_name);
		}
		printf("page %u, %zu shown, %llu in all\n", l->page, l->n_csrs,
		    (unsigned long long)l->total_count);
	}
	keycustody__response__free_unpacked(resp, NULL);
	return rc;
}

/* Shared by get and delete: --zone ZONE ID. */
static void
ctl_zone_id(int argc, char **argv, const char *verb, const char **zone, const char **id)
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
			cmd_usage("csr", verb);
		*zone = optarg;
	}
	if (*zone == NULL || optind + 1 != argc)
		cmd_usage("csr", verb);
	*id = argv[optind];
}

static int
cmd_csr_get(struct ctl_opts *o, int argc, char **argv)
{
	Keycustody__Request	 req = KEYCUSTODY__REQUEST__INIT;
	Keycustody__GetCsrRequest m = KEYCUSTODY__GET_CSR_REQUEST__INIT;
	Keycustody__Response	*resp;
	const char		*zone, *id;
	int			 rc = 0;

	ctl_zone_id(argc, argv, "get", &zone, &id);
	m.zone_id = (char *)zone;
	m.id = (char *)id;
	req.body_case = KEYCUSTODY__REQUEST__BODY_GET_CSR;
	req.get_csr = &m;
	resp = ctl_call(o, &req);
	if (resp->error != NULL)
		rc = ctl_error(o, resp->error);
	else if (resp->csr != NULL)
		ctl_print_csr(o, resp->csr);
	keycustody__response__free_unpacked(resp, NULL);
	return rc;
}

static int
cmd_csr_delete(struct ctl_opts *o, int argc, char **argv)
{
	Keycustody__Request	 req = KEYCUSTODY__REQUEST__INIT;
	Keycustody__DeleteCsrRequest m = KEYCUSTODY__DELETE_CSR_REQUEST__INIT;
	Keycustody__Response	*resp;
	const char		*zone, *id;
	char			*s;
	int			 rc = 0;

	ctl_zone_id(argc, argv, "delete", &zone, &id);
	m.zone_id = (char *)zone;
	m.id = (char *)id;
	req.body_case = KEYCUSTODY__REQUEST__BODY_DELETE_CSR;
	req.delete_csr = &m;
	resp = ctl_call(o, &req);
	if (resp->error != NULL)
		rc = ctl_error(o, resp->error);
	else if (resp->delete_csr != NULL) {
		if (o->json) {
			if (json_id(resp->delete_csr->id, &s) != 0)
				fatalx("out of memory");
			printf("%s\n", s);
			free(s);
		} else
			printf("deleted %s\n", resp->delete_csr->id);
	}
	keycustody__response__free_unpacked(resp, NULL);
	return rc;
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
	size_t		 i;
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
