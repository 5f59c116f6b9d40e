/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * fuzz-json.c: the shim's JSON mapping (lib/json.c). Every input is a request body given
 * to the four request mappings; what they accept is packed and unpacked as protobuf (the
 * trip to the daemon) and serialized back as API objects and envelopes, whose output must
 * be JSON again and carry the strings it was given. The body as a string, whatever its
 * bytes, also goes through the id replies and error envelopes: the output must be JSON, and
 * carry the string when it is UTF-8. The first 8 bytes double as a timestamp for the date
 * formatting.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "log.h"
#include "json.h"

static __dead void
json_fail(const char *what)
{
	fprintf(stderr, "fuzz-json: %s\n", what);
	abort();
}

/*
 * out must parse as JSON; when key and want are set, out[key] (or out.result[key]) must
 * equal want.
 */
static void
json_check(int r, char *out, const char *key, const char *want)
{
	json_error_t	 jerr;
	json_t		*root, *o, *v;

	/* Any bytes may be written (ill-formed UTF-8 is replaced): nothing may fail. */
	if (r != 0 || out == NULL)
		json_fail("serializer failed");
	if ((root = json_loads(out, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
		json_fail("output is not JSON");
	if (key != NULL && want != NULL) {
		o = json_object_get(root, "result");
		if (o == NULL)
			o = root;
		if ((v = json_object_get(o, key)) == NULL || !json_is_string(v) ||
		    strcmp(json_string_value(v), want) != 0)
			json_fail("a string did not survive the trip");
	}
	json_decref(root);
	free(out);
}

static const char *
json_or(const char *s, const char *dflt)
{
	return s != NULL ? s : dflt;
}

/* Packed and unpacked, as the shim sends it to the daemon. */
static Keycustody__CreateCsrRequest *
json_trip_csr(Keycustody__CreateCsrRequest *m)
{
	Keycustody__CreateCsrRequest	*u;
	uint8_t				*buf;
	size_t				 n;

	m->zone_id = strdup(FUZZ_ZONE);
	n = keycustody__create_csr_request__get_packed_size(m);
	if ((buf = malloc(n + 1)) == NULL || m->zone_id == NULL)
		json_fail("out of memory");
	if (keycustody__create_csr_request__pack(m, buf) != n)
		json_fail("pack size");
	if ((u = keycustody__create_csr_request__unpack(NULL, n, buf)) == NULL)
		json_fail("packed request does not unpack");
	free(buf);
	if (u->n_sans != m->n_sans ||
	    (m->common_name != NULL) != (u->common_name != NULL) ||
	    (m->common_name != NULL && strcmp(m->common_name, u->common_name) != 0))
		json_fail("request changed in the protobuf trip");
	return u;
}

static void
json_csr_out(const Keycustody__CreateCsrRequest *m, int64_t ts)
{
	Keycustody__Csr			 c;
	Keycustody__ListCsrsResponse	 l;
	Keycustody__Csr			*cv[1];
	char				*out;
	int				 r;

	keycustody__csr__init(&c);
	c.id = (char *)FUZZ_CSR_ID;
	c.zone_id = (char *)FUZZ_ZONE;
	c.created_at_us = ts;
	c.key_type = (char *)json_or(m->key_type, "rsa2048");
	c.country = (char *)json_or(m->country, "");
	c.state = (char *)json_or(m->state, "");
	c.locality = (char *)json_or(m->locality, "");
	c.organization = (char *)json_or(m->organization, "");
	c.organizational_unit = m->organizational_unit;
	c.common_name = (char *)json_or(m->common_name, "");
	c.sans = m->sans;
	c.n_sans = m->n_sans;
	c.csr = (char *)"-----BEGIN CERTIFICATE REQUEST-----\n";
	c.name = m->name;
	c.description = m->description;

	r = json_csr(&c, &out);
	json_check(r, out, "common_name", c.common_name);
	r = json_reply_csr(&c, &out);
	json_check(r, out, "common_name", c.common_name);
	keycustody__list_csrs_response__init(&l);
	cv[0] = &c;
	l.csrs = cv;
	l.n_csrs = 1;
	l.page = 1;
	l.per_page = 20;
	/* jansson reads integers up to INT64_MAX; above, test-json checks the digits. */
	l.total_count = (uint64_t)ts & INT64_MAX;
	r = json_csr_list(&l, &out);
	json_check(r, out, NULL, NULL);
	r = json_reply_csr_list(&l, &out);
	json_check(r, out, NULL, NULL);
}

static void
json_hostname_out(const char *hostname, const Keycustody__SslInput *in, int64_t ts)
{
	Keycustody__CustomHostname		 h;
	Keycustody__CustomHostnameSsl		 s;
	Keycustody__ListHostnamesResponse	 l;
	Keycustody__CustomHostname		*hv[1];
	char					*hosts[1], *out;
	int					 r;

	keycustody__custom_hostname__init(&h);
	keycustody__custom_hostname_ssl__init(&s);
	h.id = (char *)FUZZ_HOST_ID;
	h.zone_id = (char *)FUZZ_ZONE;
	h.hostname = (char *)json_or(hostname, "");
	h.created_at_us = ts;
	s.id = (char *)FUZZ_HOST_ID;
	s.status = (char *)"active";
	s.bundle_method = (char *)json_or(in != NULL ? in->bundle_method : NULL, "ubiquitous");
	s.custom_csr_id = (char *)json_or(in != NULL ? in->custom_csr_id : NULL, "");
	s.issuer = (char *)"KeycustodyFuzz";
	s.serial_number = (char *)"4242";
	s.signature = (char *)"ECDSAWithSHA256";
	s.uploaded_on_us = ts;
	s.expires_on_us = -ts;
	s.not_before_us = ts / 2;
	hosts[0] = h.hostname;
	s.hosts = hosts;
	s.n_hosts = 1;
	s.custom_certificate = (char *)json_or(in != NULL ? in->custom_certificate : NULL, "");
	h.ssl = &s;

	r = json_hostname(&h, &out);
	json_check(r, out, "hostname", h.hostname);
	r = json_reply_hostname(&h, &out);
	json_check(r, out, "hostname", h.hostname);
	keycustody__list_hostnames_response__init(&l);
	hv[0] = &h;
	l.hostnames = hv;
	l.n_hostnames = 1;
	l.page = 1;
	l.per_page = 50;
	l.total_count = 1;
	r = json_hostname_list(&l, &out);
	json_check(r, out, NULL, NULL);
	r = json_reply_hostname_list(&l, &out);
	json_check(r, out, NULL, NULL);
}

/*
 * The body as one string, any bytes (protobuf-c does not check the daemon's strings for
 * UTF-8). It must come back unchanged when jansson takes it for UTF-8.
 */
static void
json_strings_out(const char *s)
{
	Keycustody__Error	 e;
	json_t			*probe;
	const char		*want = NULL;
	char			*out;
	int			 status, r;

	if ((probe = json_string(s)) != NULL) {
		want = s;
		json_decref(probe);
	}
	r = json_id(s, &out);
	json_check(r, out, "id", want);
	r = json_reply_id(s, &out);
	json_check(r, out, "id", want);
	r = json_reply_error(1400, s, 1401, s, &out);
	json_check(r, out, NULL, NULL);
	r = json_reply_no_route(s, &out);
	json_check(r, out, NULL, NULL);
	keycustody__error__init(&e);
	e.status = KEYCUSTODY__STATUS__UNAVAILABLE;
	e.code = 1503;
	e.message = (char *)s;
	e.has_retry_after = 1;
	e.retry_after = 7;
	r = json_reply_daemon_error(&e, &status, &out);
	json_check(r, out, NULL, NULL);
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
	Keycustody__CreateCsrRequest		*csr = NULL, *u;
	Keycustody__CreateHostnameRequest	*ch = NULL;
	Keycustody__UpdateHostnameRequest	*uh = NULL;
	Keycustody__UpdateFallbackOriginRequest	*fo = NULL;
	Keycustody__FallbackOrigin		 f = KEYCUSTODY__FALLBACK_ORIGIN__INIT;
	const char				*body = (const char *)data;
	char					*s, *out = NULL;
	int64_t					 ts = 0;
	int					 r;

	if (size >= sizeof(ts))
		memcpy(&ts, data, sizeof(ts));

	if (json_create_csr_request(body, size, &csr) == 0) {
		if (csr == NULL)
			json_fail("no request on success");
		u = json_trip_csr(csr);
		json_csr_out(u, ts);
		keycustody__create_csr_request__free_unpacked(u, NULL);
		keycustody__create_csr_request__free_unpacked(csr, NULL);
	} else if (csr != NULL)
		json_fail("request on failure");

	if (json_create_hostname_request(body, size, &ch) == 0) {
		json_hostname_out(ch->hostname, ch->ssl, ts);
		keycustody__create_hostname_request__free_unpacked(ch, NULL);
	}
	if (json_update_hostname_request(body, size, &uh) == 0) {
		json_hostname_out(NULL, uh->ssl, ts);
		keycustody__update_hostname_request__free_unpacked(uh, NULL);
	}
	if (json_update_fallback_origin_request(body, size, &fo) == 0) {
		f.origin = (char *)json_or(fo->origin, "");
		f.status = fo->origin != NULL ? (char *)"active" : NULL;
		f.created_at_us = ts;
		f.updated_at_us = ts;
		r = json_reply_fallback_origin(&f, &out);
		json_check(r, out, "origin", f.origin);
		keycustody__update_fallback_origin_request__free_unpacked(fo, NULL);
	}

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	json_strings_out(s);
	free(s);
	return 0;
}
