/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * test-json.c: client/json.c, the shim's JSON mapping (issues 3 and 4).
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kc-err.h"
#include "kc-proto.h"
#include "json.h"

#define GOOD	"{\"country\":\"US\",\"state\":\"MA\",\"locality\":\"Boston\"," \
		"\"organization\":\"City of Boston\",\"common_name\":\"app.acme-corp.co.uk\"," \
		"\"sans\":[\"app.acme-corp.co.uk\",\"www.acme-corp.co.uk\"],\"key_type\":\"p256v1\"}"

static int
parse(const char *s, Keycustody__CreateCsrRequest **m)
{
	return (json_create_csr_request(s, strlen(s), m));
}

static void
test_good(void **state)
{
	Keycustody__CreateCsrRequest	*m;

	assert_int_equal(parse(GOOD, &m), 0);
	assert_string_equal(m->country, "US");
	assert_string_equal(m->state, "MA");
	assert_string_equal(m->locality, "Boston");
	assert_string_equal(m->organization, "City of Boston");
	assert_string_equal(m->common_name, "app.acme-corp.co.uk");
	assert_int_equal(m->n_sans, 2);
	assert_string_equal(m->sans[1], "www.acme-corp.co.uk");
	assert_string_equal(m->key_type, "p256v1");
	assert_null(m->organizational_unit);
	assert_null(m->name);
	assert_null(m->description);
	assert_null(m->zone_id);
	keycustody__create_csr_request__free_unpacked(m, NULL);
}

/* Absent and null fields stay absent: the daemon reports them with their own code. */
static void
test_absent(void **state)
{
	Keycustody__CreateCsrRequest	*m;

	assert_int_equal(parse("{}", &m), 0);
	assert_null(m->country);
	assert_null(m->common_name);
	assert_int_equal(m->n_sans, 0);
	assert_null(m->key_type);
	keycustody__create_csr_request__free_unpacked(m, NULL);
	assert_int_equal(parse("{\"country\":null,\"sans\":null,\"state\":\"\"}", &m), 0);
	assert_null(m->country);
	assert_int_equal(m->n_sans, 0);
	assert_string_equal(m->state, "");
	keycustody__create_csr_request__free_unpacked(m, NULL);
	assert_int_equal(parse("{\"sans\":[]}", &m), 0);
	assert_int_equal(m->n_sans, 0);
	keycustody__create_csr_request__free_unpacked(m, NULL);
}

static void
test_unknown_ignored(void **state)
{
	Keycustody__CreateCsrRequest	*m;

	assert_int_equal(parse("{\"country\":\"US\",\"zone_id\":5,\"x\":{\"y\":[1,{}]},"
	    "\"name\":\"n\",\"description\":\"d\",\"organizational_unit\":\"ou\"}", &m), 0);
	assert_string_equal(m->country, "US");
	assert_null(m->zone_id);	/* never from the body */
	assert_string_equal(m->name, "n");
	assert_string_equal(m->description, "d");
	assert_string_equal(m->organizational_unit, "ou");
	keycustody__create_csr_request__free_unpacked(m, NULL);
}

static void
test_wrong_types(void **state)
{
	static const char *const fields[] = { "country", "state", "locality",
	    "organization", "organizational_unit", "common_name", "key_type", "name",
	    "description" };
	static const char *const values[] = { "1", "1.5", "true", "false", "[]",
	    "[\"a\"]", "{}" };
	Keycustody__CreateCsrRequest	*m = NULL;
	char				 buf[256];
	size_t				 i, j;

	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		for (j = 0; j < sizeof(values) / sizeof(values[0]); j++) {
			snprintf(buf, sizeof(buf), "{\"%s\":%s}", fields[i], values[j]);
			assert_int_equal(parse(buf, &m), KC_ERR_INVALID);
			assert_null(m);
		}
	}
}

static void
test_sans(void **state)
{
	static const char *const bad[] = {
		"{\"sans\":\"a.acme-corp.co.uk\"}",
		"{\"sans\":{}}",
		"{\"sans\":1}",
		"{\"sans\":true}",
		"{\"sans\":[\"a.acme-corp.co.uk\",1]}",
		"{\"sans\":[null]}",
		"{\"sans\":[[\"a\"]]}",
		"{\"sans\":[\"a\",{}]}",
	};
	Keycustody__CreateCsrRequest	*m = NULL;
	size_t				 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(bad[i], &m), KC_ERR_INVALID);
		assert_null(m);
	}
}

static void
test_undecodable(void **state)
{
	static const char *const bad[] = {
		"", " ", "{", "{\"country\":", "[]", "[{}]", "\"x\"", "1", "null", "true",
		"{\"country\":\"US\",\"country\":\"US\"}",	/* duplicate */
		"{\"a\":1,\"a\":2}",				/* duplicate unknown */
		"{\"country\":\"a\\u0000b\"}",			/* NUL */
		"{\"country\":\"\xff\"}",			/* not UTF-8 */
		"{} {}",
		"{'country':'US'}",
	};
	Keycustody__CreateCsrRequest	*m = NULL;
	size_t				 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(bad[i], &m), KC_ERR_INVALID);
		assert_null(m);
	}
	assert_int_equal(json_create_csr_request(NULL, 0, &m), KC_ERR_INVALID);
	/* Not NUL-terminated: only len bytes count. */
	assert_int_equal(json_create_csr_request("{}garbage", 2, &m), 0);
	keycustody__create_csr_request__free_unpacked(m, NULL);
}

static void
test_depth(void **state)
{
	Keycustody__CreateCsrRequest	*m = NULL;
	char				 buf[512];
	size_t				 i, n = 0;
	int				 depth;

	/* {"x": [[...]]}: an object plus depth - 1 arrays. */
	for (depth = JSON_MAX_DEPTH; depth <= JSON_MAX_DEPTH + 1; depth++) {
		n = 0;
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "{\"x\":");
		for (i = 0; i < (size_t)depth - 1; i++)
			buf[n++] = '[';
		for (i = 0; i < (size_t)depth - 1; i++)
			buf[n++] = ']';
		buf[n++] = '}';
		buf[n] = '\0';
		if (depth == JSON_MAX_DEPTH) {
			assert_int_equal(parse(buf, &m), 0);
			keycustody__create_csr_request__free_unpacked(m, NULL);
		} else
			assert_int_equal(parse(buf, &m), KC_ERR_INVALID);
	}
}

static void
csr_fill(Keycustody__Csr *c, char **sans)
{
	keycustody__csr__init(c);
	c->id = (char *)"7b163417-1d2b-4c84-a38a-2fb7a0cd7752";
	c->zone_id = (char *)"023e105f4ecef8ad9ca31a8372d0c353";
	c->created_at_us = 1795706185123456LL;	/* 2026-11-26T15:16:25.123456Z */
	c->key_type = (char *)"p256v1";
	c->country = (char *)"US";
	c->state = (char *)"MA";
	c->locality = (char *)"Boston";
	c->organization = (char *)"City of Boston";
	c->common_name = (char *)"app.acme-corp.co.uk";
	sans[0] = (char *)"app.acme-corp.co.uk";
	sans[1] = (char *)"www.acme-corp.co.uk";
	c->n_sans = 2;
	c->sans = sans;
	c->csr = (char *)"-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n"
	    "-----END CERTIFICATE REQUEST-----\n";
	c->key_uri = (char *)"pkcs11:token=kc;id=%01;type=private";
	c->key_id = (char *)"01";
}

#define CSR_OBJ	"{\"id\":\"7b163417-1d2b-4c84-a38a-2fb7a0cd7752\"," \
	"\"created_at\":\"2026-11-26T15:16:25Z\",\"key_type\":\"p256v1\"," \
	"\"country\":\"US\",\"state\":\"MA\",\"locality\":\"Boston\"," \
	"\"organization\":\"City of Boston\",%s\"common_name\":\"app.acme-corp.co.uk\"," \
	"\"sans\":[\"app.acme-corp.co.uk\",\"www.acme-corp.co.uk\"]," \
	"\"csr\":\"-----BEGIN CERTIFICATE REQUEST-----\\nMIIB\\n" \
	"-----END CERTIFICATE REQUEST-----\\n\"%s}"

static void
test_csr_object(void **state)
{
	Keycustody__Csr	 c;
	char		*sans[2], *out, want[1024];

	csr_fill(&c, sans);
	assert_int_equal(json_csr(&c, &out), 0);
	snprintf(want, sizeof(want), CSR_OBJ, "", "");
	assert_string_equal(out, want);
	free(out);

	c.organizational_unit = (char *)"";	/* empty: omitted */
	assert_int_equal(json_csr(&c, &out), 0);
	assert_string_equal(out, want);
	free(out);

	c.organizational_unit = (char *)"Parade";
	c.name = (char *)"n";
	c.description = (char *)"d \"q\"";
	assert_int_equal(json_csr(&c, &out), 0);
	snprintf(want, sizeof(want), CSR_OBJ, "\"organizational_unit\":\"Parade\",",
	    ",\"name\":\"n\",\"description\":\"d \\\"q\\\"\"");
	assert_string_equal(out, want);
	free(out);
}

static void
test_envelopes(void **state)
{
	Keycustody__ListCsrsResponse	 l = KEYCUSTODY__LIST_CSRS_RESPONSE__INIT;
	Keycustody__Csr			 c, *list[1];
	char				*sans[2], *out, want[2048], obj[1024];

	csr_fill(&c, sans);
	snprintf(obj, sizeof(obj), CSR_OBJ, "", "");
	assert_int_equal(json_reply_csr(&c, &out), 0);
	snprintf(want, sizeof(want), "{\"result\":%s,\"success\":true,\"errors\":[],"
	    "\"messages\":[]}", obj);
	assert_string_equal(out, want);
	free(out);

	list[0] = &c;
	l.csrs = list;
	l.n_csrs = 1;
	l.page = 3;
	l.per_page = 5;
	l.total_count = 11;
	assert_int_equal(json_reply_csr_list(&l, &out), 0);
	snprintf(want, sizeof(want), "{\"result\":[%s],\"success\":true,\"errors\":[],"
	    "\"messages\":[],\"result_info\":{\"page\":3,\"per_page\":5,\"count\":1,"
	    "\"total_count\":11,\"total_pages\":3}}", obj);
	assert_string_equal(out, want);
	free(out);

	l.n_csrs = 0;
	l.page = 1;
	l.total_count = 0;
	assert_int_equal(json_reply_csr_list(&l, &out), 0);
	assert_string_equal(out, "{\"result\":[],\"success\":true,\"errors\":[],"
	    "\"messages\":[],\"result_info\":{\"page\":1,\"per_page\":5,\"count\":0,"
	    "\"total_count\":0,\"total_pages\":0}}");
	free(out);

	l.n_csrs = 1;
	assert_int_equal(json_csr_list(&l, &out), 0);
	snprintf(want, sizeof(want), "[%s]", obj);
	assert_string_equal(out, want);
	free(out);
	l.n_csrs = 0;
	assert_int_equal(json_csr_list(&l, &out), 0);
	assert_string_equal(out, "[]");
	free(out);
	assert_int_equal(json_id("abc", &out), 0);
	assert_string_equal(out, "{\"id\":\"abc\"}");
	free(out);

	assert_int_equal(json_reply_id("abc", &out), 0);
	assert_string_equal(out, "{\"result\":{\"id\":\"abc\"},\"success\":true,"
	    "\"errors\":[],\"messages\":[]}");
	free(out);

	assert_int_equal(json_reply_error(1400, JSON_MSG_BAD_BODY, 0, NULL, &out), 0);
	assert_string_equal(out, "{\"result\":null,\"success\":false,\"errors\":"
	    "[{\"code\":1400,\"message\":\"Unable to decode the JSON request body.\"}],"
	    "\"messages\":[]}");
	free(out);

	assert_int_equal(json_reply_error(6008, "Invalid request parameters", 11000,
	    "per_page variable must be a number between 5 and 50", &out), 0);
	assert_string_equal(out, "{\"result\":null,\"success\":false,\"errors\":"
	    "[{\"code\":6008,\"message\":\"Invalid request parameters\",\"error_chain\":"
	    "[{\"code\":11000,\"message\":\"per_page variable must be a number between 5 "
	    "and 50\"}]}],\"messages\":[]}");
	free(out);

	assert_int_equal(json_reply_no_route("/zones/x/custom_csrs", &out), 0);
	assert_string_equal(out, "{\"result\":null,\"success\":false,\"errors\":"
	    "[{\"code\":7003,\"message\":\"Could not route to /zones/x/custom_csrs, perhaps "
	    "your object identifier is invalid?\"},{\"code\":7000,\"message\":"
	    "\"No route for that URI\"}],\"messages\":[]}");
	free(out);
}

static void
test_daemon_error(void **state)
{
	Keycustody__Error	 e = KEYCUSTODY__ERROR__INIT;
	char			*out;
	int			 status;

	e.status = KEYCUSTODY__STATUS__NOT_FOUND;
	e.code = 1419;
	e.message = (char *)"The custom CSR was not found.";
	assert_int_equal(json_reply_daemon_error(&e, &status, &out), 0);
	assert_int_equal(status, kc_status_http(KC_STATUS_NOT_FOUND));
	assert_string_equal(out, "{\"result\":null,\"success\":false,\"errors\":"
	    "[{\"code\":1419,\"message\":\"The custom CSR was not found.\"}],"
	    "\"messages\":[]}");
	free(out);
	e.status = KEYCUSTODY__STATUS__UNAVAILABLE;
	e.code = 0;
	e.message = (char *)"busy";
	assert_int_equal(json_reply_daemon_error(&e, &status, &out), 0);
	assert_int_equal(status, kc_status_http(KC_STATUS_UNAVAILABLE));
	assert_non_null(strstr(out, "\"code\":1503"));
	free(out);
}

static void
test_health(void **state)
{
	Keycustody__HealthResponse	 h = KEYCUSTODY__HEALTH_RESPONSE__INIT;
	char				*out;
	int				 ok;

	h.hsm_state = (char *)"ok";
	h.store_ok = 1;
	assert_int_equal(json_health(&h, &ok, &out), 0);
	assert_int_equal(ok, 1);
	assert_string_equal(out, "{\"status\":\"ok\"}");
	free(out);
	h.hsm_state = (char *)"down";
	assert_int_equal(json_health(&h, &ok, &out), 0);
	assert_int_equal(ok, 0);
	free(out);
	assert_int_equal(json_health(NULL, &ok, &out), 0);
	assert_int_equal(ok, 0);
	free(out);
}

#define PEM	"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
#define CSR_ID	"7b163417-1d2b-4c84-a38a-2fb7a0cd7752"

static int
parse_create(const char *s, Keycustody__CreateHostnameRequest **m)
{
	return (json_create_hostname_request(s, strlen(s), m));
}

static int
parse_update(const char *s, Keycustody__UpdateHostnameRequest **m)
{
	return (json_update_hostname_request(s, strlen(s), m));
}

static void
test_hostname_create(void **state)
{
	Keycustody__CreateHostnameRequest	*m = NULL;

	assert_int_equal(parse_create("{\"hostname\":\"shop.acme-corp.co.uk\",\"ssl\":"
	    "{\"custom_csr_id\":\"" CSR_ID "\",\"custom_certificate\":\"-----BEGIN "
	    "CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n\",\"bundle_method\":"
	    "\"force\",\"method\":\"http\",\"type\":\"dv\",\"settings\":{\"min_tls_version\":"
	    "\"1.2\"}},\"custom_origin_server\":\"o.acme-corp.co.uk\"}", &m), 0);
	assert_null(m->zone_id);
	assert_string_equal(m->hostname, "shop.acme-corp.co.uk");
	assert_non_null(m->ssl);
	assert_string_equal(m->ssl->custom_csr_id, CSR_ID);
	assert_string_equal(m->ssl->custom_certificate, PEM);
	assert_string_equal(m->ssl->bundle_method, "force");
	assert_int_equal(m->ssl->has_custom_key_given, 0);
	keycustody__create_hostname_request__free_unpacked(m, NULL);

	/* Absent and null stay absent: the daemon answers 1407, 1430, 1427 ... itself. */
	assert_int_equal(parse_create("{}", &m), 0);
	assert_null(m->hostname);
	assert_null(m->ssl);
	keycustody__create_hostname_request__free_unpacked(m, NULL);
	assert_int_equal(parse_create("{\"hostname\":null,\"ssl\":null}", &m), 0);
	assert_null(m->hostname);
	assert_null(m->ssl);
	keycustody__create_hostname_request__free_unpacked(m, NULL);
	assert_int_equal(parse_create("{\"hostname\":\"\",\"ssl\":{}}", &m), 0);
	assert_string_equal(m->hostname, "");
	assert_non_null(m->ssl);
	assert_null(m->ssl->custom_csr_id);
	assert_null(m->ssl->custom_certificate);
	assert_null(m->ssl->bundle_method);
	assert_int_equal(m->ssl->has_custom_key_given, 0);
	keycustody__create_hostname_request__free_unpacked(m, NULL);
	assert_int_equal(parse_create("{\"ssl\":{\"custom_certificate\":null,"
	    "\"custom_csr_id\":\"\"}}", &m), 0);
	assert_null(m->ssl->custom_certificate);
	assert_string_equal(m->ssl->custom_csr_id, "");
	keycustody__create_hostname_request__free_unpacked(m, NULL);
}

/* custom_key, whatever its value, is flagged for the daemon's 1434; never copied. */
static void
test_hostname_custom_key(void **state)
{
	static const char *const values[] = { "\"-----BEGIN PRIVATE KEY-----\"", "null",
	    "1", "{}", "[]", "false", "\"\"" };
	Keycustody__CreateHostnameRequest	*m = NULL;
	Keycustody__UpdateHostnameRequest	*u = NULL;
	char					 buf[256];
	size_t					 i;

	for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		snprintf(buf, sizeof(buf), "{\"hostname\":\"a.acme-corp.co.uk\",\"ssl\":"
		    "{\"custom_key\":%s}}", values[i]);
		assert_int_equal(parse_create(buf, &m), 0);
		assert_int_equal(m->ssl->has_custom_key_given, 1);
		assert_int_equal(m->ssl->custom_key_given, 1);
		keycustody__create_hostname_request__free_unpacked(m, NULL);
		snprintf(buf, sizeof(buf), "{\"ssl\":{\"custom_key\":%s}}", values[i]);
		assert_int_equal(parse_update(buf, &u), 0);
		assert_int_equal(u->ssl->custom_key_given, 1);
		keycustody__update_hostname_request__free_unpacked(u, NULL);
	}
	/* Only inside ssl. */
	assert_int_equal(parse_create("{\"custom_key\":\"k\",\"ssl\":{}}", &m), 0);
	assert_int_equal(m->ssl->has_custom_key_given, 0);
	keycustody__create_hostname_request__free_unpacked(m, NULL);
}

static void
test_hostname_update(void **state)
{
	Keycustody__UpdateHostnameRequest	*u = NULL;

	assert_int_equal(parse_update("{\"hostname\":\"ignored.acme-corp.co.uk\",\"ssl\":"
	    "{\"custom_certificate\":\"x\"}}", &u), 0);
	assert_null(u->zone_id);
	assert_null(u->id);
	assert_string_equal(u->ssl->custom_certificate, "x");
	assert_null(u->ssl->custom_csr_id);
	assert_null(u->ssl->bundle_method);
	keycustody__update_hostname_request__free_unpacked(u, NULL);
	assert_int_equal(parse_update("{}", &u), 0);
	assert_null(u->ssl);
	keycustody__update_hostname_request__free_unpacked(u, NULL);
	/* A wrong type for a field that PATCH does not use is still ignored. */
	assert_int_equal(parse_update("{\"hostname\":5}", &u), 0);
	keycustody__update_hostname_request__free_unpacked(u, NULL);
}

static void
test_hostname_bad(void **state)
{
	static const char *const bad[] = {
		"", "{", "[]", "\"x\"", "null", "1",
		"{\"hostname\":1}", "{\"hostname\":[\"a\"]}", "{\"hostname\":{}}",
		"{\"hostname\":true}",
		"{\"ssl\":\"x\"}", "{\"ssl\":[]}", "{\"ssl\":1}", "{\"ssl\":true}",
		"{\"ssl\":{\"custom_csr_id\":1}}",
		"{\"ssl\":{\"custom_csr_id\":[\"" CSR_ID "\"]}}",
		"{\"ssl\":{\"custom_certificate\":{}}}",
		"{\"ssl\":{\"custom_certificate\":[\"a\",\"b\"]}}",
		"{\"ssl\":{\"bundle_method\":false}}",
		"{\"ssl\":{\"bundle_method\":2}}",
		"{\"ssl\":{},\"ssl\":{}}",				/* duplicate */
		"{\"ssl\":{\"custom_csr_id\":\"a\",\"custom_csr_id\":\"b\"}}",
		"{\"ssl\":{\"custom_certificate\":\"a\\u0000b\"}}",	/* NUL */
		"{\"hostname\":\"\xff.acme-corp.co.uk\"}",		/* not UTF-8 */
	};
	Keycustody__CreateHostnameRequest	*m = NULL;
	Keycustody__UpdateHostnameRequest	*u = NULL;
	size_t					 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse_create(bad[i], &m), KC_ERR_INVALID);
		assert_null(m);
		if (strstr(bad[i], "hostname") != NULL)
			continue;
		assert_int_equal(parse_update(bad[i], &u), KC_ERR_INVALID);
		assert_null(u);
	}
	assert_int_equal(json_create_hostname_request(NULL, 0, &m), KC_ERR_INVALID);
	assert_int_equal(json_update_hostname_request(NULL, 0, &u), KC_ERR_INVALID);
	/* Not NUL-terminated: only len bytes count. */
	assert_int_equal(json_create_hostname_request("{}{", 2, &m), 0);
	keycustody__create_hostname_request__free_unpacked(m, NULL);
}

static void
test_hostname_depth(void **state)
{
	Keycustody__CreateHostnameRequest	*m = NULL;
	char					 buf[512];
	size_t					 i, n;

	/* {"ssl": {"x": [[...]]}}: the limit counts inside ssl too. */
	n = (size_t)snprintf(buf, sizeof(buf), "{\"ssl\":{\"x\":");
	for (i = 0; i < JSON_MAX_DEPTH - 1; i++)
		buf[n++] = '[';
	for (i = 0; i < JSON_MAX_DEPTH - 1; i++)
		buf[n++] = ']';
	buf[n++] = '}';
	buf[n++] = '}';
	buf[n] = '\0';
	assert_int_equal(parse_create(buf, &m), KC_ERR_INVALID);
	assert_null(m);
}

static void
hostname_fill(Keycustody__CustomHostname *h, Keycustody__CustomHostnameSsl *ssl, char **hosts)
{
	keycustody__custom_hostname__init(h);
	keycustody__custom_hostname_ssl__init(ssl);
	h->id = (char *)"0b6a4d6e-1b4c-4f6a-9d3e-2a1b0c9d8e7f";
	h->zone_id = (char *)"023e105f4ecef8ad9ca31a8372d0c353";
	h->hostname = (char *)"shop.acme-corp.co.uk";
	h->created_at_us = 1795706185123456LL;		/* 2026-11-26T15:16:25.123456Z */
	h->ssl = ssl;
	ssl->id = (char *)"5d0f8a2c-7e3b-4c1d-8f9a-0b1c2d3e4f5a";
	ssl->status = (char *)"active";
	ssl->bundle_method = (char *)"ubiquitous";
	ssl->custom_csr_id = (char *)CSR_ID;
	ssl->issuer = (char *)"AcmeCorpIntermediateCA";
	ssl->serial_number = (char *)"340282366920938463463374607431768211455";
	ssl->signature = (char *)"ECDSAWithSHA256";
	ssl->uploaded_on_us = 1795706185000042LL;	/* 2026-11-26T15:16:25.000042Z */
	ssl->not_before_us = 1795600000000000LL;
	ssl->expires_on_us = 1827242185000000LL;	/* 2027-11-26T15:16:25Z */
	hosts[0] = (char *)"shop.acme-corp.co.uk";
	hosts[1] = (char *)"*.acme-corp.co.uk";
	ssl->hosts = hosts;
	ssl->n_hosts = 2;
	ssl->custom_certificate = (char *)PEM;
}

#define HOSTNAME_OBJ	"{\"id\":\"0b6a4d6e-1b4c-4f6a-9d3e-2a1b0c9d8e7f\"," \
	"\"hostname\":\"shop.acme-corp.co.uk\"," \
	"\"created_at\":\"2026-11-26T15:16:25.123456Z\",\"status\":\"active\"," \
	"\"ssl\":{\"id\":\"5d0f8a2c-7e3b-4c1d-8f9a-0b1c2d3e4f5a\",\"type\":\"dv\"," \
	"\"method\":\"http\",\"status\":\"%s\",\"bundle_method\":\"ubiquitous\"," \
	"\"custom_csr_id\":\"" CSR_ID "\",\"issuer\":\"AcmeCorpIntermediateCA\"," \
	"\"serial_number\":\"340282366920938463463374607431768211455\"," \
	"\"signature\":\"ECDSAWithSHA256\"," \
	"\"uploaded_on\":\"2026-11-26T15:16:25.000042Z\"," \
	"\"expires_on\":\"2027-11-26T15:16:25Z\"," \
	"\"hosts\":[%s]," \
	"\"custom_certificate\":\"-----BEGIN CERTIFICATE-----\\nMIIB\\n" \
	"-----END CERTIFICATE-----\\n\"}}"

static void
test_hostname_object(void **state)
{
	Keycustody__CustomHostname	 h;
	Keycustody__CustomHostnameSsl	 ssl;
	char				*hosts[2], *out, want[2048];

	hostname_fill(&h, &ssl, hosts);
	assert_int_equal(json_hostname(&h, &out), 0);
	snprintf(want, sizeof(want), HOSTNAME_OBJ, "active",
	    "\"shop.acme-corp.co.uk\",\"*.acme-corp.co.uk\"");
	assert_string_equal(out, want);
	assert_null(strstr(out, "zone_id"));
	assert_null(strstr(out, "certificate_authority"));
	assert_null(strstr(out, "not_before"));
	free(out);

	ssl.status = (char *)"expired";
	ssl.n_hosts = 0;
	assert_int_equal(json_hostname(&h, &out), 0);
	snprintf(want, sizeof(want), HOSTNAME_OBJ, "expired", "");
	assert_string_equal(out, want);
	free(out);

	h.ssl = NULL;	/* a required submessage missing: never a half object */
	assert_int_equal(json_hostname(&h, &out), KC_ERR_NOMEM);
	assert_null(out);
}

static void
test_hostname_envelopes(void **state)
{
	Keycustody__ListHostnamesResponse	 l = KEYCUSTODY__LIST_HOSTNAMES_RESPONSE__INIT;
	Keycustody__CustomHostname		 h, *list[2];
	Keycustody__CustomHostnameSsl		 ssl;
	char					*hosts[2], *out, want[6144], obj[2048];

	hostname_fill(&h, &ssl, hosts);
	snprintf(obj, sizeof(obj), HOSTNAME_OBJ, "active",
	    "\"shop.acme-corp.co.uk\",\"*.acme-corp.co.uk\"");
	assert_int_equal(json_reply_hostname(&h, &out), 0);
	snprintf(want, sizeof(want), "{\"result\":%s,\"success\":true,\"errors\":[],"
	    "\"messages\":[]}", obj);
	assert_string_equal(out, want);
	free(out);

	list[0] = list[1] = &h;
	l.hostnames = list;
	l.n_hostnames = 2;
	l.page = 2;
	l.per_page = 5;
	l.total_count = 7;
	assert_int_equal(json_reply_hostname_list(&l, &out), 0);
	snprintf(want, sizeof(want), "{\"result\":[%s,%s],\"success\":true,\"errors\":[],"
	    "\"messages\":[],\"result_info\":{\"page\":2,\"per_page\":5,\"count\":2,"
	    "\"total_count\":7,\"total_pages\":2}}", obj, obj);
	assert_string_equal(out, want);
	free(out);
	assert_int_equal(json_hostname_list(&l, &out), 0);
	snprintf(want, sizeof(want), "[%s,%s]", obj, obj);
	assert_string_equal(out, want);
	free(out);

	l.n_hostnames = 0;
	l.page = 9;
	l.per_page = 20;
	l.total_count = 0;
	assert_int_equal(json_reply_hostname_list(&l, &out), 0);
	assert_string_equal(out, "{\"result\":[],\"success\":true,\"errors\":[],"
	    "\"messages\":[],\"result_info\":{\"page\":9,\"per_page\":20,\"count\":0,"
	    "\"total_count\":0,\"total_pages\":0}}");
	free(out);

	/* DELETE of a custom hostname answers the bare object. */
	assert_int_equal(json_id(h.id, &out), 0);
	assert_string_equal(out, "{\"id\":\"0b6a4d6e-1b4c-4f6a-9d3e-2a1b0c9d8e7f\"}");
	free(out);
}

static void
test_hostname_daemon_errors(void **state)
{
	static const struct {
		Keycustody__Status	 status;
		unsigned int		 code;
		int			 http;
	} cases[] = {
		{ KEYCUSTODY__STATUS__INVALID_ARGUMENT, 1441, 400 },
		{ KEYCUSTODY__STATUS__NOT_FOUND, 1431, 404 },
		{ KEYCUSTODY__STATUS__NOT_FOUND, 1436, 404 },
		{ KEYCUSTODY__STATUS__CONFLICT, 1406, 409 },
		{ KEYCUSTODY__STATUS__CONFLICT, 1420, 409 },
	};
	Keycustody__Error	 e = KEYCUSTODY__ERROR__INIT;
	char			*out, want[512];
	size_t			 i;
	int			 status;

	e.message = (char *)"The certificate that you uploaded is having trouble bundling "
	    "against the public trust store. (certificate has expired)";
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		e.status = cases[i].status;
		e.code = cases[i].code;
		assert_int_equal(json_reply_daemon_error(&e, &status, &out), 0);
		assert_int_equal(status, cases[i].http);
		snprintf(want, sizeof(want), "{\"result\":null,\"success\":false,\"errors\":"
		    "[{\"code\":%u,\"message\":\"%s\"}],\"messages\":[]}", cases[i].code,
		    e.message);
		assert_string_equal(out, want);
		free(out);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_absent),
		cmocka_unit_test(test_unknown_ignored),
		cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_sans),
		cmocka_unit_test(test_undecodable),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_csr_object),
		cmocka_unit_test(test_envelopes),
		cmocka_unit_test(test_daemon_error),
		cmocka_unit_test(test_health),
		cmocka_unit_test(test_hostname_create),
		cmocka_unit_test(test_hostname_custom_key),
		cmocka_unit_test(test_hostname_update),
		cmocka_unit_test(test_hostname_bad),
		cmocka_unit_test(test_hostname_depth),
		cmocka_unit_test(test_hostname_object),
		cmocka_unit_test(test_hostname_envelopes),
		cmocka_unit_test(test_hostname_daemon_errors),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
