/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * cmd-health.c: keycustodyctl health.
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

/* What the token offers (issue 15): key types, how each signs, what it cannot do. */
static void
cmd_health_token(const Keycustody__HealthResponse *hr)
{
	size_t	i;

	for (i = 0; i < hr->n_hsm_key_types; i++)
		printf("%s %-8s %s\n", i == 0 ? "key types:          " :
		    "                    ", hr->hsm_key_types[i],
		    i < hr->n_hsm_sign_mechanisms ? hr->hsm_sign_mechanisms[i] : "");
	for (i = 0; i < hr->n_hsm_key_types_refused; i++)
		printf("%s %s\n", i == 0 ? "not offered:        " : "                    ",
		    hr->hsm_key_types_refused[i]);
	if (hr->hsm_key_history_missing != NULL)
		printf("key history:         the token does not report %s "
		    "(accept_missing_key_history)\n", hr->hsm_key_history_missing);
	if (hr->hsm_audit_mac != NULL)
		printf("audit MAC:           %s\n", hr->hsm_audit_mac);
}

int
cmd_health(struct ctl_opts *o, int argc, char **argv)
{
	Keycustody__Request		 req = KEYCUSTODY__REQUEST__INIT;
	Keycustody__HealthRequest	 h = KEYCUSTODY__HEALTH_REQUEST__INIT;
	Keycustody__Response		*resp;
	const Keycustody__HealthResponse *hr = NULL;
	char				*s;
	int				 rc = 0;

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
		if (json_health_full(hr, &s) != 0)
			fatalx("out of memory");
		printf("%s\n", s);
		free(s);
	} else {
		printf("hsm:                 %s\n", hr->hsm_state);
		printf("store:               %s\n", hr->store_ok ? "ok" : "failing");
		printf("audit log:           %s\n", !hr->has_audit_ok || hr->audit_ok ?
		    "ok" : "failing: changes are refused");
		printf("token:               %s\n", hr->token_label ? hr->token_label : "-");
		printf("signer:              %s\n", hr->signer ? hr->signer : "-");
		printf("keys in custody:     %llu\n", (unsigned long long)hr->keys_in_custody);
		printf("queue:               %u / %u\n", hr->queue_depth, hr->queue_limit);
		printf("workers:             %u\n", hr->workers);
		printf("records missing key: %llu\n",
		    (unsigned long long)hr->records_missing_key);
		printf("orphan keys:         %llu\n", (unsigned long long)hr->orphan_keys);
		if (hr->has_unresolved_creates)
			printf("unresolved creates:  %llu\n",
			    (unsigned long long)hr->unresolved_creates);
		if (hr->has_hsm_module_failures)
			printf("hsm history:         %llu down, %llu recovered, %llu failed "
			    "recoveries, %llu sessions reopened, %llu timeouts\n",
			    (unsigned long long)hr->hsm_module_failures,
			    (unsigned long long)hr->hsm_recoveries,
			    (unsigned long long)hr->hsm_recovery_failures,
			    (unsigned long long)hr->hsm_session_repairs,
			    (unsigned long long)hr->hsm_timeouts);
		if (hr->has_hsm_refusals)
			printf("hsm answers:         %llu refusals, %llu late probes\n",
			    (unsigned long long)hr->hsm_refusals,
			    (unsigned long long)hr->hsm_probe_stalls);
		if (hr->has_connections)
			printf("connections:         %u / %u (admin %u, gateway %u, reader %u), "
			    "%llu refused, %llu cut off for unread replies\n", hr->connections,
			    hr->connection_limit, hr->admin_connections, hr->gateway_connections,
			    hr->reader_connections, (unsigned long long)hr->connections_refused,
			    (unsigned long long)hr->connections_cut_off);
		if (hr->has_creates_running)
			printf("key creation:        %u running, %u waiting their turn, %llu "
			    "rate-limited (429), %llu over quota\n", hr->creates_running,
			    hr->creates_waiting, (unsigned long long)hr->creates_rate_limited,
			    (unsigned long long)hr->creates_over_quota);
		if (hr->has_destroys_yielded)
			printf("key destruction:     %llu waited for creates "
			    "(destroy_yield_max)\n", (unsigned long long)hr->destroys_yielded);
		if (hr->has_log_lines_suppressed)
			printf("log lines suppressed: %llu\n",
			    (unsigned long long)hr->log_lines_suppressed);
		if (hr->has_token_pairs)
			printf("token scan:          %llu pairs, %llu duplicate, %llu "
			    "incomplete, %llu debris; %llu scans, %llu searches\n",
			    (unsigned long long)hr->token_pairs,
			    (unsigned long long)hr->token_duplicates,
			    (unsigned long long)hr->token_incomplete,
			    (unsigned long long)hr->token_debris,
			    (unsigned long long)hr->hsm_scans,
			    (unsigned long long)hr->hsm_searches);
		cmd_health_token(hr);
		printf("uptime:              %llus\n", (unsigned long long)hr->uptime_seconds);
		printf("version:             %s\n", hr->version ? hr->version : "-");
	}
	if (rc == 0 && hr != NULL && strcmp(hr->hsm_state, "ok") != 0)
		rc = EXIT_CONN;
	keycustody__response__free_unpacked(resp, NULL);
	return rc;
}
