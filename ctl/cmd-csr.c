/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * cmd-csr.c: keycustodyctl csr create|list|get|delete.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "json.h"
#include "kc-err.h"
#include "kc-proto.h"
#include "keycustody.h"
#include "log.h"
#include "xmalloc.h"

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
	if (c->module_key_uri != NULL)
		printf("module_key_uri:      %s\n", c->module_key_uri);
	printf("%s", c->csr);
}

/*
 * For --help: the key types the daemon's token offers (health), or why they cannot be
 * listed; never exits, since help is printed either way.
 */
static void
cmd_csr_key_types(struct ctl_opts *o)
{
	Keycustody__Request		 req = KEYCUSTODY__REQUEST__INIT;
	Keycustody__HealthRequest	 hreq = KEYCUSTODY__HEALTH_REQUEST__INIT;
	Keycustody__Response		*resp = NULL;
	const Keycustody__HealthResponse *h;
	struct kcc			*c;
	char				*cause = NULL;
	size_t				 i;
	int				 r;

	req.body_case = KEYCUSTODY__REQUEST__BODY_HEALTH;
	req.health = &hreq;
	if ((r = kcc_open(o->socket, &c, &cause)) != 0) {
		printf("key types this token offers: unknown (%s)\n",
		    cause != NULL ? cause : kc_strerror(r));
		free(cause);
		return;
	}
	r = kcc_call(c, &req, o->timeout_ms, &resp);
	kcc_close(c);
	if (r != 0 || resp->health == NULL || resp->health->n_hsm_key_types == 0) {
		printf("key types this token offers: unknown (%s)\n", r != 0 ?
		    kc_strerror(r) : "the daemon does not say");
		if (resp != NULL)
			keycustody__response__free_unpacked(resp, NULL);
		return;
	}
	h = resp->health;
	printf("key types this token offers (default rsa2048):\n");
	for (i = 0; i < h->n_hsm_key_types; i++)
		printf("  %-8s signed with %s\n", h->hsm_key_types[i],
		    i < h->n_hsm_sign_mechanisms ? h->hsm_sign_mechanisms[i] : "?");
	for (i = 0; i < h->n_hsm_key_types_refused; i++)
		printf("  not offered: %s\n", h->hsm_key_types_refused[i]);
	keycustody__response__free_unpacked(resp, NULL);
}

int
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
		{ "help",		no_argument,	   NULL, 'h' },
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
		case 'h':
			cmd_help("csr", "create");
			cmd_csr_key_types(o);
			exit(0);
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

int
cmd_csr_list(struct ctl_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		CTL_LIST_OPTIONS,
		{ NULL, 0, NULL, 0 }
	};
	struct ctl_list			 lo = { NULL, 0, 0, 0, 0, 0 };
	Keycustody__Request		 req = KEYCUSTODY__REQUEST__INIT;
	Keycustody__ListCsrsRequest	 m = KEYCUSTODY__LIST_CSRS_REQUEST__INIT;
	Keycustody__Response		*resp;
	const Keycustody__ListCsrsResponse *l;
	char				 ts[32], *s;
	size_t				 i;
	int				 ch, rc = 0;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1)
		if (!ctl_list_flag(&lo, ch, optarg))
			cmd_usage("csr", "list");
	m.zone_id = (char *)lo.zone;
	m.has_page = lo.has_page;
	m.page = lo.page;
	m.has_per_page = lo.has_per_page;
	m.per_page = lo.per_page;
	m.has_descending = m.descending = lo.desc;
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

int
cmd_csr_get(struct ctl_opts *o, int argc, char **argv)
{
	Keycustody__Request	 req = KEYCUSTODY__REQUEST__INIT;
	Keycustody__GetCsrRequest m = KEYCUSTODY__GET_CSR_REQUEST__INIT;
	Keycustody__Response	*resp;
	const char		*zone, *id;
	int			 rc = 0;

	ctl_zone_id(argc, argv, "csr", "get", &zone, &id);
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

int
cmd_csr_delete(struct ctl_opts *o, int argc, char **argv)
{
	Keycustody__Request	 req = KEYCUSTODY__REQUEST__INIT;
	Keycustody__DeleteCsrRequest m = KEYCUSTODY__DELETE_CSR_REQUEST__INIT;
	Keycustody__Response	*resp;
	const char		*zone, *id;
	int			 rc = 0;

	ctl_zone_id(argc, argv, "csr", "delete", &zone, &id);
	m.zone_id = (char *)zone;
	m.id = (char *)id;
	req.body_case = KEYCUSTODY__REQUEST__BODY_DELETE_CSR;
	req.delete_csr = &m;
	resp = ctl_call(o, &req);
	if (resp->error != NULL)
		rc = ctl_error(o, resp->error);
	else if (resp->delete_csr != NULL)
		ctl_print_deleted(o, resp->delete_csr->id);
	keycustody__response__free_unpacked(resp, NULL);
	return rc;
}

