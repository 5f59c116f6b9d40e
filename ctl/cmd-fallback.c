/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * cmd-fallback.c: keycustodyctl fallback-origin get|set|delete: the zone's fallback origin
 * (the API's custom_hostnames/fallback_origin).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "ctl.h"
#include "json.h"
#include "kc-proto.h"
#include "keycustody.h"
#include "log.h"

static void
fallback_print(struct ctl_opts *o, const Keycustody__FallbackOrigin *f)
{
	char	 ts[40], *out;

	if (o->json) {
		if (json_fallback_origin(f, &out) != 0)
			fatalx("out of memory");
		printf("%s\n", out);
		free(out);
		return;
	}
	printf("origin:         %s\n", f->origin);
	if (f->status != NULL)
		printf("status:         %s\n", f->status);
	proto_time_format(f->created_at_us, 1, ts, sizeof(ts));
	printf("created_at:     %s\n", ts);
	proto_time_format(f->updated_at_us, 1, ts, sizeof(ts));
	printf("updated_at:     %s\n", ts);
}

/* Send a request whose answer is a fallback origin, print it. */
static int
fallback_call(struct ctl_opts *o, Keycustody__Request *req)
{
	Keycustody__Response	*resp;
	int			 rc = 0;

	resp = ctl_call(o, req);
	if (resp->error != NULL)
		rc = ctl_error(o, resp->error);
	else if (resp->fallback_origin != NULL)
		fallback_print(o, resp->fallback_origin);
	else
		fatalx("%s: empty answer", proto_request_name(req->body_case));
	keycustody__response__free_unpacked(resp, NULL);
	return rc;
}

int
cmd_fallback_get(struct ctl_opts *o, int argc, char **argv)
{
	Keycustody__Request			 req = KEYCUSTODY__REQUEST__INIT;
	Keycustody__GetFallbackOriginRequest	 m =
	    KEYCUSTODY__GET_FALLBACK_ORIGIN_REQUEST__INIT;
	const char				*zone;

	ctl_zone(argc, argv, "fallback-origin", "get", &zone);
	m.zone_id = (char *)zone;
	req.body_case = KEYCUSTODY__REQUEST__BODY_GET_FALLBACK_ORIGIN;
	req.get_fallback_origin = &m;
	return fallback_call(o, &req);
}

int
cmd_fallback_set(struct ctl_opts *o, int argc, char **argv)
{
	Keycustody__Request			 req = KEYCUSTODY__REQUEST__INIT;
	Keycustody__UpdateFallbackOriginRequest	 m =
	    KEYCUSTODY__UPDATE_FALLBACK_ORIGIN_REQUEST__INIT;
	const char				*zone, *origin;

	ctl_zone_id(argc, argv, "fallback-origin", "set", &zone, &origin);
	m.zone_id = (char *)zone;
	/* As given: the daemon checks and normalizes it, as it does the API's. */
	m.origin = (char *)origin;
	req.body_case = KEYCUSTODY__REQUEST__BODY_UPDATE_FALLBACK_ORIGIN;
	req.update_fallback_origin = &m;
	return fallback_call(o, &req);
}

int
cmd_fallback_delete(struct ctl_opts *o, int argc, char **argv)
{
	Keycustody__Request			 req = KEYCUSTODY__REQUEST__INIT;
	Keycustody__DeleteFallbackOriginRequest	 m =
	    KEYCUSTODY__DELETE_FALLBACK_ORIGIN_REQUEST__INIT;
	const char				*zone;

	ctl_zone(argc, argv, "fallback-origin", "delete", &zone);
	m.zone_id = (char *)zone;
	req.body_case = KEYCUSTODY__REQUEST__BODY_DELETE_FALLBACK_ORIGIN;
	req.delete_fallback_origin = &m;
	return fallback_call(o, &req);
}
