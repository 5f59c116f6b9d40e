/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * test-json.c: lib/json.c, the shim's JSON mapping (issues 3 and 4), and its output
 * writer (struct json_w): escaping, ill-formed UTF-8, numbers, nesting, misuse, and what
 * the renderers write parsed back with jansson.
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

#include <jansson.h>

#include "kc-api.h"
#include "kc-err.h"
#include "kc-proto.h"
#include "json.h"
#include "jsonw.h"

#define GOOD	"{\"country\":\"US\",\"state\":\"MA\",\"locality\":\"Boston\"," \
		"\"organization\":\"City of Boston\",\"common_name\":\"app.acme-corp.co.uk\"," \
		"\"sans\":[\"app.acme-corp.co.uk\",\"www.acme-corp.co.uk\"],\"key_type\":\"p256v1\"}"

static int
parse(const char *s, Keycustody__CreateCsrRequest **m)
{
	return json_create_csr_request(s, strlen(s), m);
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
	"-----END CERTIFICATE REQUEST-----\\n\"%s," \
	"\"key_uri\":\"pkcs11:token=kc;id=%%01;type=private\",\"key_id\":\"01\"}"

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

	assert_int_equal(json_reply_error(1400, KC_API_DECODE_MSG, 0, NULL, &out), 0);
	assert_string_equal(out, "{\"result\":null,\"success\":false,\"errors\":"
	    "[{\"code\":1400,\"message\":\"Unable to decode the JSON request body. Check your "
	    "input and try again.\"}],"
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
	h.has_audit_ok = 1;
	h.audit_ok = 1;
	assert_int_equal(json_health(&h, &ok, &out), 0);
	assert_int_equal(ok, 1);
	free(out);
	/* issue 12: a failing audit log refuses every change, so health is not ok. */
	h.audit_ok = 0;
	assert_int_equal(json_health(&h, &ok, &out), 0);
	assert_int_equal(ok, 0);
	assert_string_equal(out, "{\"status\":\"unavailable\",\"hsm_state\":\"ok\","
	    "\"store_ok\":true,\"audit_ok\":false}");
	free(out);
	h.has_audit_ok = 0;
	h.hsm_state = (char *)"down";
	assert_int_equal(json_health(&h, &ok, &out), 0);
	assert_int_equal(ok, 0);
	free(out);
	assert_int_equal(json_health(NULL, &ok, &out), 0);
	assert_int_equal(ok, 0);
	free(out);
}

/* keycustodyctl --json health: every field present, under its .proto name. */
static void
test_health_full(void **state)
{
	Keycustody__HealthResponse	 h = KEYCUSTODY__HEALTH_RESPONSE__INIT;
	char				*types[] = { (char *)"p256v1", (char *)"rsa\"2048" };
	char				*out;

	(void)state;
	h.hsm_state = (char *)"degraded";
	h.store_ok = 1;
	h.has_keys_in_custody = 1;
	h.keys_in_custody = 18446744073709551615ULL;
	h.has_workers = 1;
	h.workers = 0;			/* present although zero */
	h.queue_depth = 7;		/* absent: has_queue_depth is 0 */
	h.n_hsm_key_types = 2;
	h.hsm_key_types = types;
	assert_int_equal(json_health_full(&h, &out), 0);
	assert_string_equal(out, "{\"status\":\"unavailable\",\"hsm_state\":\"degraded\","
	    "\"store_ok\":true,\"keys_in_custody\":18446744073709551615,\"workers\":0,"
	    "\"hsm_key_types\":[\"p256v1\",\"rsa\\\"2048\"]}");
	free(out);
	h.hsm_state = (char *)"ok";
	h.n_hsm_key_types = 0;
	h.has_keys_in_custody = h.has_workers = 0;
	assert_int_equal(json_health_full(&h, &out), 0);
	assert_string_equal(out, "{\"status\":\"ok\",\"hsm_state\":\"ok\",\"store_ok\":true}");
	free(out);
}

#define PEM	"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
#define CSR_ID	"7b163417-1d2b-4c84-a38a-2fb7a0cd7752"

static int
parse_create(const char *s, Keycustody__CreateHostnameRequest **m)
{
	return json_create_hostname_request(s, strlen(s), m);
}

static int
parse_update(const char *s, Keycustody__UpdateHostnameRequest **m)
{
	return json_update_hostname_request(s, strlen(s), m);
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
	"\"created_at\":\"2026-11-26T15:16:25.123456Z\"," \
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

	/* The optional ssl.certificate_authority where set; the chain built, after the upload. */
	ssl.certificate_authority = (char *)"lets_encrypt";
	ssl.certificate_chain = (char *)"-----BEGIN CERTIFICATE-----\nMIIB\n"
	    "-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nMIIC\n"
	    "-----END CERTIFICATE-----\n";
	assert_int_equal(json_hostname(&h, &out), 0);
	assert_non_null(strstr(out, "\"method\":\"http\",\"certificate_authority\":"
	    "\"lets_encrypt\",\"status\":\"expired\""));
	assert_non_null(strstr(out, "-----END CERTIFICATE-----\\n\",\"certificate_chain\":"
	    "\"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n"
	    "-----BEGIN CERTIFICATE-----\\nMIIC\\n-----END CERTIFICATE-----\\n\"}}"));
	free(out);

	h.ssl = NULL;	/* a required submessage missing: never a half object */
	assert_int_equal(json_hostname(&h, &out), KC_ERR_INVALID);
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

/* --- the output writer --- */

/* The one string s as the writer writes it, as a JSON text ("..."). */
static char *
w_string(const char *s)
{
	struct json_w	 w;
	char		*out;
	size_t		 len;

	json_w_init(&w, 0);
	json_w_string(&w, s);
	assert_int_equal(json_w_steal(&w, &out, &len), 0);
	assert_int_equal(len, strlen(out));
	return out;
}

/* What jansson's json_dumps() writes for s (valid UTF-8), or NULL when it refuses s. */
static char *
jansson_string(const char *s)
{
	json_t	*j;
	char	*out;

	if ((j = json_string(s)) == NULL)
		return NULL;
	out = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
	json_decref(j);
	assert_non_null(out);
	return out;
}

/* text must be a JSON string that jansson reads back as want. */
static void
assert_parses_to(const char *text, const char *want)
{
	json_error_t	 jerr;
	json_t		*j;

	j = json_loads(text, JSON_DECODE_ANY, &jerr);
	if (j == NULL)
		fail_msg("not JSON (%s): %s", jerr.text, text);
	assert_true(json_is_string(j));
	assert_string_equal(json_string_value(j), want);
	json_decref(j);
}

/* Every byte from 1 to 0x7f, alone and between others: as jansson writes it. */
static void
test_w_ascii(void **state)
{
	static const char *const named[] = { "\b\\b", "\t\\t", "\n\\n", "\f\\f", "\r\\r",
	    "\"\\\"", "\\\\\\" };
	char	 s[4], want[16], *out, *ref;
	size_t	 i;
	int	 c;

	for (c = 1; c < 0x80; c++) {
		snprintf(s, sizeof(s), "a%cb", c);
		out = w_string(s);
		ref = jansson_string(s);
		assert_string_equal(out, ref);
		assert_parses_to(out, s);
		if (c < 0x20) {
			/* \b \t \n \f \r by name, the rest \u00XX in upper case */
			snprintf(want, sizeof(want), "\"a\\u%04Xb\"", c);
			for (i = 0; i < sizeof(named) / sizeof(named[0]); i++)
				if (named[i][0] == c)
					snprintf(want, sizeof(want), "\"a%sb\"", named[i] + 1);
			assert_string_equal(out, want);
		} else if (c != '"' && c != '\\') {
			snprintf(want, sizeof(want), "\"a%cb\"", c);	/* '/' and DEL too */
			assert_string_equal(out, want);
		}
		free(out);
		free(ref);
	}
	out = w_string("\"\\/\"");
	assert_string_equal(out, "\"\\\"\\\\/\\\"\"");
	free(out);
	out = w_string("");
	assert_string_equal(out, "\"\"");
	free(out);
	out = w_string(NULL);		/* NULL is "" */
	assert_string_equal(out, "\"\"");
	free(out);
}

/* Escapes at every offset of the 8-byte scan, and long plain runs. */
static void
test_w_runs(void **state)
{
	char	 s[80], *out, *ref;
	size_t	 len, pos;
	int	 k;

	static const char specials[] = { '\n', '"', '\\', 0x1f, 0x01, '\x80', '\xc3' };

	for (len = 1; len < sizeof(s); len++) {
		for (pos = 0; pos < len; pos++) {
			for (k = 0; k < (int)sizeof(specials); k++) {
				memset(s, 'x', len);
				s[len] = '\0';
				s[pos] = specials[k];
				if ((unsigned char)specials[k] == 0xc3 && pos + 1 < len)
					s[pos + 1] = '\xa9';		/* U+00E9 */
				out = w_string(s);
				if ((ref = jansson_string(s)) != NULL) {
					assert_string_equal(out, ref);
					assert_parses_to(out, s);
				} else
					assert_non_null(strstr(out, "\xef\xbf\xbd"));
				free(out);
				free(ref);
			}
		}
	}
}

/* Well-formed UTF-8 passes unchanged, from U+0080 to U+10FFFF. */
static void
test_w_utf8(void **state)
{
	static const char *const good[] = {
		"\xc2\x80", "\xc3\xa9t\xc3\xa9", "\xdf\xbf", "\xe0\xa0\x80", "\xe2\x82\xac",
		"\xed\x9f\xbf", "\xee\x80\x80", "\xef\xbf\xbd", "\xef\xbf\xbf",
		"\xe2\x80\xa8\xe2\x80\xa9",			/* U+2028, U+2029 */
		"\xf0\x90\x80\x80", "\xf0\x9f\x98\x80", "\xf3\xbf\xbf\xbf", "\xf4\x8f\xbf\xbf",
		"Z\xc3\xbcrich \xe6\x9d\xb1\xe4\xba\xac \xf0\x9f\x94\x91 -----BEGIN\n",
	};
	char	*out, *ref, want[64];
	size_t	 i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		out = w_string(good[i]);
		ref = jansson_string(good[i]);
		assert_non_null(ref);
		assert_string_equal(out, ref);
		assert_parses_to(out, good[i]);
		if (strchr(good[i], '\n') == NULL) {
			snprintf(want, sizeof(want), "\"%s\"", good[i]);
			assert_string_equal(out, want);
		}
		free(out);
		free(ref);
	}
}

/*
 * Ill-formed UTF-8: each maximal ill-formed subpart becomes one U+FFFD, as Python's
 * bytes.decode("utf-8", "replace") and WHATWG decode (the expectations come from Python).
 */
static void
test_w_utf8_invalid(void **state)
{
#define R "\xef\xbf\xbd"
	static const struct {
		const char	*in;
		const char	*want;
	} cases[] = {
		{ "\x80", R },
		{ "\xbf", R },
		{ "a\x80\x80z", "a" R R "z" },
		{ "\xc0\x80", R R },			/* overlong NUL */
		{ "\xc1\xbf", R R },			/* overlong */
		{ "\xc2", R },				/* cut by the end */
		{ "\xc2\xc2\x80", R "\xc2\x80" },
		{ "\xe2\x82x", R "x" },			/* cut: one for both */
		{ "\xe0\x80\xaf", R R R },		/* overlong */
		{ "\xe0\xa0", R },
		{ "\xed\xa0\x80", R R R },		/* surrogate U+D800 */
		{ "\xed\xbf\xbf", R R R },		/* surrogate U+DFFF */
		{ "\xf0\x9f\x98", R },
		{ "\xf0\x90\x80", R },
		{ "\xf0\x80\x80\x80", R R R R },	/* overlong */
		{ "\xf4\x90\x80\x80", R R R R },	/* above U+10FFFF */
		{ "\xf5\x80\x80\x80", R R R R },
		{ "\xf8\x88\x80\x80\x80", R R R R R },
		{ "\xfe", R },
		{ "\xff", R },
		{ "a\xf0\x9f\x98\x80\x80" "b", "a\xf0\x9f\x98\x80" R "b" },
		{ "\xe2\x82\n", R "\\n" },
		{ "x\xc3\"", "x" R "\\\"" },
	};
#undef R
	char	*out, want[64];
	size_t	 i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_null(jansson_string(cases[i].in));	/* jansson refuses them */
		out = w_string(cases[i].in);
		snprintf(want, sizeof(want), "\"%s\"", cases[i].want);
		assert_string_equal(out, want);
		free(out);
	}
}

/* All strings of 1 to 3 bytes from bytes that matter to UTF-8: always valid JSON. */
static void
test_w_utf8_all(void **state)
{
	static const unsigned char bytes[] = { 0x01, 0x0a, 0x22, 0x41, 0x5c, 0x7f, 0x80, 0x8f,
	    0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef,
	    0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff };
	json_error_t	 jerr;
	json_t		*j;
	char		 s[4], *out, *ref;
	size_t		 n = sizeof(bytes), a, b, c, len;

	for (a = 0; a < n; a++)
		for (b = 0; b <= n; b++)
			for (c = 0; c <= n; c++) {
				if (b == n && c < n)
					continue;
				s[0] = (char)bytes[a];
				s[1] = b < n ? (char)bytes[b] : '\0';
				s[2] = c < n ? (char)bytes[c] : '\0';
				s[3] = '\0';
				out = w_string(s);
				if ((j = json_loads(out, JSON_DECODE_ANY, &jerr)) == NULL)
					fail_msg("not JSON: %s", out);
				len = strlen(json_string_value(j));
				assert_true(len >= strlen(s));	/* nothing dropped */
				if ((ref = jansson_string(s)) != NULL) {
					assert_string_equal(out, ref);
					assert_string_equal(json_string_value(j), s);
				}
				json_decref(j);
				free(ref);
				free(out);
			}
}

static void
test_w_numbers(void **state)
{
	static const struct {
		int64_t		 v;
		const char	*want;
	} ints[] = {
		{ 0, "0" }, { 1, "1" }, { -1, "-1" }, { 9, "9" }, { 10, "10" }, { -10, "-10" },
		{ 1500, "1500" }, { 2147483647, "2147483647" }, { -2147483648LL, "-2147483648" },
		{ INT64_MAX, "9223372036854775807" },
		{ INT64_MIN, "-9223372036854775808" },
	};
	static const struct {
		uint64_t	 v;
		const char	*want;
	} uints[] = {
		{ 0, "0" }, { 99, "99" }, { 100, "100" }, { 4294967295U, "4294967295" },
		{ 9007199254740993ULL, "9007199254740993" },	/* 2^53 + 1 */
		{ 10000000000000000000ULL, "10000000000000000000" },
		{ UINT64_MAX, "18446744073709551615" },
	};
	struct json_w	 w;
	json_t		*j;
	char		*out;
	size_t		 i;

	for (i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		json_w_init(&w, 0);
		json_w_int(&w, ints[i].v);
		assert_int_equal(json_w_steal(&w, &out, NULL), 0);
		assert_string_equal(out, ints[i].want);
		j = json_loads(out, JSON_DECODE_ANY, NULL);
		assert_non_null(j);
		assert_true(json_integer_value(j) == ints[i].v);
		json_decref(j);
		free(out);
	}
	for (i = 0; i < sizeof(uints) / sizeof(uints[0]); i++) {
		json_w_init(&w, 0);
		json_w_uint(&w, uints[i].v);
		assert_int_equal(json_w_steal(&w, &out, NULL), 0);
		assert_string_equal(out, uints[i].want);
		free(out);
	}
	json_w_init(&w, 0);
	json_w_array_begin(&w);
	json_w_bool(&w, 1);
	json_w_bool(&w, 0);
	json_w_bool(&w, 42);
	json_w_null(&w);
	json_w_uint(&w, 7);
	json_w_int(&w, -7);
	json_w_array_end(&w);
	assert_int_equal(json_w_steal(&w, &out, NULL), 0);
	assert_string_equal(out, "[true,false,true,null,7,-7]");
	free(out);
}

static void
test_w_nesting(void **state)
{
	struct json_w	 w;
	json_t		*j;
	char		*out, want[2 * JSON_W_MAX_DEPTH + 1];
	int		 i;

	json_w_init(&w, 1);
	json_w_object_begin(&w);
	json_w_key(&w, "a");
	json_w_array_begin(&w);
	json_w_object_begin(&w);
	json_w_object_end(&w);
	json_w_array_begin(&w);
	json_w_array_end(&w);
	json_w_object_begin(&w);
	json_w_key(&w, "k\"ey");
	json_w_string(&w, "v");
	json_w_key(&w, "n");
	json_w_null(&w);
	json_w_object_end(&w);
	json_w_uint(&w, 1);
	json_w_array_end(&w);
	json_w_key(&w, "b");
	json_w_object_begin(&w);
	json_w_object_end(&w);
	json_w_object_end(&w);
	assert_int_equal(json_w_steal(&w, &out, NULL), 0);
	assert_string_equal(out,
	    "{\"a\":[{},[],{\"k\\\"ey\":\"v\",\"n\":null},1],\"b\":{}}");
	j = json_loads(out, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(j);
	json_decref(j);
	free(out);

	/* JSON_W_MAX_DEPTH arrays deep is allowed, one more is not. */
	json_w_init(&w, 0);
	for (i = 0; i < JSON_W_MAX_DEPTH; i++)
		json_w_array_begin(&w);
	for (i = 0; i < JSON_W_MAX_DEPTH; i++)
		json_w_array_end(&w);
	assert_int_equal(json_w_steal(&w, &out, NULL), 0);
	memset(want, '[', JSON_W_MAX_DEPTH);
	memset(want + JSON_W_MAX_DEPTH, ']', JSON_W_MAX_DEPTH);
	want[2 * JSON_W_MAX_DEPTH] = '\0';
	assert_string_equal(out, want);
	free(out);
	json_w_init(&w, 0);
	for (i = 0; i <= JSON_W_MAX_DEPTH; i++)
		json_w_array_begin(&w);
	for (i = 0; i <= JSON_W_MAX_DEPTH; i++)
		json_w_array_end(&w);
	assert_int_equal(json_w_steal(&w, &out, NULL), KC_ERR_INVALID);
	assert_null(out);
}

/* Calls out of place: an error, sticky, and never half a text. */
static void
test_w_misuse(void **state)
{
	struct json_w	 w;
	char		*out = (char *)"x";
	size_t		 len = 1;
	int		 i;

	for (i = 0; i < 12; i++) {
		json_w_init(&w, 0);
		switch (i) {
		case 0:		/* nothing written */
			break;
		case 1:		/* a key at the top */
			json_w_key(&w, "k");
			break;
		case 2:		/* a key in an array */
			json_w_array_begin(&w);
			json_w_key(&w, "k");
			json_w_array_end(&w);
			break;
		case 3:		/* a value in an object without its key */
			json_w_object_begin(&w);
			json_w_string(&w, "v");
			json_w_object_end(&w);
			break;
		case 4:		/* two keys in a row */
			json_w_object_begin(&w);
			json_w_key(&w, "a");
			json_w_key(&w, "b");
			json_w_null(&w);
			json_w_object_end(&w);
			break;
		case 5:		/* a key without its value */
			json_w_object_begin(&w);
			json_w_key(&w, "a");
			json_w_object_end(&w);
			break;
		case 6:		/* ends that do not match */
			json_w_object_begin(&w);
			json_w_array_end(&w);
			break;
		case 7:
			json_w_array_begin(&w);
			json_w_object_end(&w);
			break;
		case 8:		/* left open */
			json_w_array_begin(&w);
			break;
		case 9:		/* an end too many */
			json_w_array_begin(&w);
			json_w_array_end(&w);
			json_w_array_end(&w);
			break;
		case 10:	/* two values at the top */
			json_w_uint(&w, 1);
			json_w_uint(&w, 2);
			break;
		case 11:	/* an error is sticky: what follows changes nothing */
			json_w_object_begin(&w);
			json_w_string(&w, "v");
			json_w_key(&w, "k");
			json_w_string(&w, "v");
			json_w_object_end(&w);
			assert_int_equal(w.error, KC_ERR_INVALID);
			break;
		}
		assert_int_equal(json_w_steal(&w, &out, &len), KC_ERR_INVALID);
		assert_null(out);
		assert_int_equal(len, 0);
		assert_null(w.buf);		/* freed */
	}
	json_w_init(&w, 64);
	json_w_array_begin(&w);
	json_w_uninit(&w);			/* dropping a text is fine too */
	assert_null(w.buf);
}

/* From an empty buffer or a 1-byte one, through many reallocations. */
static void
test_w_growth(void **state)
{
	struct json_w	 w;
	json_t		*j;
	char		*out, s[700];
	size_t		 len, i, hint;

	memset(s, 'p', sizeof(s) - 1);
	s[sizeof(s) - 1] = '\0';
	for (i = 64; i < sizeof(s) - 1; i += 65)
		s[i] = '\n';				/* PEM-like */
	for (hint = 0; hint < 3; hint++) {
		json_w_init(&w, hint);
		json_w_array_begin(&w);
		for (i = 0; i < 500; i++)
			json_w_string(&w, s);
		json_w_array_end(&w);
		assert_int_equal(json_w_steal(&w, &out, &len), 0);
		assert_int_equal(len, strlen(out));
		j = json_loads(out, 0, NULL);
		assert_non_null(j);
		assert_int_equal(json_array_size(j), 500);
		assert_string_equal(json_string_value(json_array_get(j, 499)), s);
		json_decref(j);
		free(out);
	}
}

/* The dates of API objects: the same text as proto_time_format(), fast path or not. */
static void
test_w_time(void **state)
{
	static const int64_t s[] = {
		0, 1, 59, 60, 86399, 86400, 951782399, 951782400 /* 2000-02-29 */,
		951868800 /* 2000-03-01 */, 1795706185, 4107542400 /* 2100-03-01 */,
		4102444799, 4102444800, 253402300799 /* 9999-12-31T23:59:59 */,
		253402300800, 253402300801, -1, -86400, -62135596800 /* 0001-01-01 */,
		INT64_MAX / 1000000, INT64_MIN / 1000000,
	};
	static const int64_t frac[] = { 0, 1, 999999, 123456 };
	Keycustody__Csr			 c;
	Keycustody__CustomHostname	 h;
	Keycustody__CustomHostnameSsl	 ssl;
	json_t				*j;
	char				*sans[2], *hosts[2], *out, want[64];
	uint64_t			 x = 88172645463325252ULL;
	size_t				 i, k;
	int64_t				 us;

	csr_fill(&c, sans);
	hostname_fill(&h, &ssl, hosts);
	for (i = 0; i < sizeof(s) / sizeof(s[0]) + 2000; i++) {
		if (i < sizeof(s) / sizeof(s[0]))
			us = s[i] * 1000000;
		else {
			x ^= x << 13;			/* xorshift64 */
			x ^= x >> 7;
			x ^= x << 17;
			us = (int64_t)(x % 300000000000ULL) * 1000000 - 10000000000000LL;
		}
		for (k = 0; k < sizeof(frac) / sizeof(frac[0]); k++) {
			if (us > INT64_MAX - frac[k])
				continue;
			c.created_at_us = us + frac[k];
			h.created_at_us = us + frac[k];
			assert_int_equal(json_csr(&c, &out), 0);
			assert_non_null(j = json_loads(out, 0, NULL));
			proto_time_format(c.created_at_us, 0, want, sizeof(want));
			assert_string_equal(json_string_value(json_object_get(j,
			    "created_at")), want);
			json_decref(j);
			free(out);
			assert_int_equal(json_hostname(&h, &out), 0);
			assert_non_null(j = json_loads(out, 0, NULL));
			proto_time_format(h.created_at_us, 1, want, sizeof(want));
			assert_string_equal(json_string_value(json_object_get(j,
			    "created_at")), want);
			json_decref(j);
			free(out);
		}
	}
}

/* s from jansson's object o, member key. */
static const char *
jstr(const json_t *o, const char *key)
{
	json_t	*v = json_object_get(o, key);

	if (v == NULL || !json_is_string(v))
		fail_msg("%s: not a string", key);
	return json_string_value(v);
}

static json_int_t
jint(const json_t *o, const char *key)
{
	json_t	*v = json_object_get(o, key);

	if (v == NULL || !json_is_integer(v))
		fail_msg("%s: not an integer", key);
	return json_integer_value(v);
}

/* A CSR object parsed back: every field as c has it. */
static void
assert_csr_json(const json_t *o, const Keycustody__Csr *c)
{
	const json_t	*sans;
	char		 t[64];
	size_t		 i;

	assert_true(json_is_object(o));
	assert_string_equal(jstr(o, "id"), c->id);
	proto_time_format(c->created_at_us, 0, t, sizeof(t));
	assert_string_equal(jstr(o, "created_at"), t);
	assert_string_equal(jstr(o, "key_type"), c->key_type);
	assert_string_equal(jstr(o, "country"), c->country);
	assert_string_equal(jstr(o, "state"), c->state);
	assert_string_equal(jstr(o, "locality"), c->locality);
	assert_string_equal(jstr(o, "organization"), c->organization);
	if (c->organizational_unit != NULL && *c->organizational_unit != '\0')
		assert_string_equal(jstr(o, "organizational_unit"), c->organizational_unit);
	else
		assert_null(json_object_get(o, "organizational_unit"));
	assert_string_equal(jstr(o, "common_name"), c->common_name);
	sans = json_object_get(o, "sans");
	assert_true(json_is_array(sans));
	assert_int_equal(json_array_size(sans), c->n_sans);
	for (i = 0; i < c->n_sans; i++)
		assert_string_equal(json_string_value(json_array_get(sans, i)), c->sans[i]);
	assert_string_equal(jstr(o, "csr"), c->csr);
	if (c->name != NULL)
		assert_string_equal(jstr(o, "name"), c->name);
	else
		assert_null(json_object_get(o, "name"));
	if (c->description != NULL)
		assert_string_equal(jstr(o, "description"), c->description);
	else
		assert_null(json_object_get(o, "description"));
	if (c->has_key_missing && c->key_missing)
		assert_true(json_is_true(json_object_get(o, "key_missing")));
	else
		assert_null(json_object_get(o, "key_missing"));
	assert_null(json_object_get(o, "zone_id"));
	if (c->key_uri != NULL)
		assert_string_equal(jstr(o, "key_uri"), c->key_uri);
	else
		assert_null(json_object_get(o, "key_uri"));
	if (c->key_id != NULL)
		assert_string_equal(jstr(o, "key_id"), c->key_id);
	else
		assert_null(json_object_get(o, "key_id"));
	assert_int_equal(json_object_size(o), 10 + (c->key_uri != NULL) + (c->key_id != NULL) +
	    (c->organizational_unit != NULL &&
	    *c->organizational_unit != '\0') + (c->name != NULL) + (c->description != NULL) +
	    (c->has_key_missing && c->key_missing));
}

/* The success envelope around the result; result_info checked when page is not 0. */
static const json_t *
assert_envelope(const json_t *root, uint32_t page, uint32_t per_page, size_t count,
    uint64_t total, uint64_t pages)
{
	const json_t	*info;

	assert_true(json_is_true(json_object_get(root, "success")));
	assert_int_equal(json_array_size(json_object_get(root, "errors")), 0);
	assert_true(json_is_array(json_object_get(root, "errors")));
	assert_true(json_is_array(json_object_get(root, "messages")));
	assert_int_equal(json_array_size(json_object_get(root, "messages")), 0);
	info = json_object_get(root, "result_info");
	if (page == 0) {
		assert_null(info);
		assert_int_equal(json_object_size(root), 4);
	} else {
		assert_int_equal(json_object_size(root), 5);
		assert_int_equal(jint(info, "page"), page);
		assert_int_equal(jint(info, "per_page"), per_page);
		assert_int_equal(jint(info, "count"), count);
		assert_true((uint64_t)jint(info, "total_count") == total);
		assert_true((uint64_t)jint(info, "total_pages") == pages);
		assert_int_equal(json_object_size(info), 5);
	}
	return json_object_get(root, "result");
}

#define NASTY	"q\"b\\s/\x01\x1f\x7f\t\r\n \xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x91 \xe2\x80\xa8"

/* CSRs and a list page, with every kind of character, rendered and read back. */
static void
test_roundtrip_csr(void **state)
{
	Keycustody__ListCsrsResponse	 l = KEYCUSTODY__LIST_CSRS_RESPONSE__INIT;
	Keycustody__Csr			 c[3], *list[3];
	json_error_t			 jerr;
	json_t				*root;
	const json_t			*res;
	char				*sans[3][2], *out, pem[2048];
	size_t				 i, n;

	n = (size_t)snprintf(pem, sizeof(pem), "-----BEGIN CERTIFICATE REQUEST-----\n");
	for (i = 0; i < 20; i++)
		n += (size_t)snprintf(pem + n, sizeof(pem) - n, "%.64s\n",
		    "MIIBPTCB5AIBADBYMQswCQYDVQQGEwJVUzELMAkGA1UECAwCTUExDzANBgNVBAcMBkJvc3Rv");
	snprintf(pem + n, sizeof(pem) - n, "-----END CERTIFICATE REQUEST-----\n");
	for (i = 0; i < 3; i++) {
		csr_fill(&c[i], sans[i]);
		c[i].csr = pem;
		list[i] = &c[i];
	}
	c[1].organizational_unit = (char *)NASTY;
	c[1].name = (char *)NASTY;
	c[1].description = (char *)"";
	c[1].state = (char *)NASTY;
	sans[1][1] = (char *)NASTY;
	c[1].created_at_us = 0;
	c[2].has_key_missing = c[2].key_missing = 1;
	c[2].n_sans = 0;
	c[2].organizational_unit = (char *)"";

	for (i = 0; i < 3; i++) {
		assert_int_equal(json_reply_csr(&c[i], &out), 0);
		if ((root = json_loads(out, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
			fail_msg("not JSON: %s", jerr.text);
		assert_csr_json(assert_envelope(root, 0, 0, 0, 0, 0), &c[i]);
		json_decref(root);
		free(out);
	}

	l.csrs = list;
	l.n_csrs = 3;
	l.page = 4294967295U;
	l.per_page = 50;
	l.total_count = INT64_MAX;	/* the largest jansson reads back */
	assert_int_equal(json_reply_csr_list(&l, &out), 0);
	if ((root = json_loads(out, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
		fail_msg("not JSON: %s", jerr.text);
	res = assert_envelope(root, l.page, 50, 3, INT64_MAX, INT64_MAX / 50 + 1);
	assert_int_equal(json_array_size(res), 3);
	for (i = 0; i < 3; i++)
		assert_csr_json(json_array_get(res, i), &c[i]);
	json_decref(root);
	free(out);

	/* Beyond what jansson reads: written exactly all the same. */
	l.n_csrs = 0;
	l.per_page = 1;
	l.total_count = UINT64_MAX;
	assert_int_equal(json_reply_csr_list(&l, &out), 0);
	assert_non_null(strstr(out, "\"result_info\":{\"page\":4294967295,\"per_page\":1,"
	    "\"count\":0,\"total_count\":18446744073709551615,"
	    "\"total_pages\":18446744073709551615}}"));
	free(out);
	l.per_page = 7;
	l.total_count = UINT64_MAX;	/* ceil without overflow */
	assert_int_equal(json_reply_csr_list(&l, &out), 0);
	assert_non_null(strstr(out, "\"total_pages\":2635249153387078803}"));
	free(out);
	l.per_page = 0;			/* never from the daemon: no division by 0 */
	assert_int_equal(json_reply_csr_list(&l, &out), 0);
	assert_non_null(strstr(out, "\"total_pages\":0}"));
	free(out);
}

/* The daemon's strings are not checked for UTF-8: the reply is JSON all the same. */
static void
test_roundtrip_invalid_utf8(void **state)
{
	Keycustody__Csr		 c;
	Keycustody__Error	 e = KEYCUSTODY__ERROR__INIT;
	json_t			*root;
	char			*sans[2], *out;
	int			 status;

	csr_fill(&c, sans);
	c.common_name = (char *)"bad\xff\xfe.acme-corp.co.uk";
	sans[0] = (char *)"\xc3";
	c.description = (char *)"caf\xc3\xa9 \xed\xa0\x80";
	assert_int_equal(json_reply_csr(&c, &out), 0);
	assert_non_null(root = json_loads(out, JSON_REJECT_DUPLICATES, NULL));
	assert_string_equal(jstr(json_object_get(root, "result"), "common_name"),
	    "bad\xef\xbf\xbd\xef\xbf\xbd.acme-corp.co.uk");
	assert_string_equal(json_string_value(json_array_get(json_object_get(
	    json_object_get(root, "result"), "sans"), 0)), "\xef\xbf\xbd");
	assert_string_equal(jstr(json_object_get(root, "result"), "description"),
	    "caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	json_decref(root);
	free(out);

	e.status = KEYCUSTODY__STATUS__INVALID_ARGUMENT;
	e.code = 1412;
	e.message = (char *)"Invalid SAN \xe2\x82";
	assert_int_equal(json_reply_daemon_error(&e, &status, &out), 0);
	assert_int_equal(status, 400);
	assert_non_null(root = json_loads(out, 0, NULL));
	assert_string_equal(jstr(json_array_get(json_object_get(root, "errors"), 0),
	    "message"), "Invalid SAN \xef\xbf\xbd");
	json_decref(root);
	free(out);

	/* A path is whatever the client sent. */
	assert_int_equal(json_reply_no_route("/zones/\xff\"\\\n/x", &out), 0);
	assert_non_null(root = json_loads(out, 0, NULL));
	assert_string_equal(jstr(json_array_get(json_object_get(root, "errors"), 0),
	    "message"), "Could not route to /zones/\xef\xbf\xbd\"\\\n/x, perhaps your object "
	    "identifier is invalid?");
	json_decref(root);
	free(out);
}

/* Custom hostnames and a page of them, rendered and read back. */
static void
test_roundtrip_hostname(void **state)
{
	Keycustody__ListHostnamesResponse	 l = KEYCUSTODY__LIST_HOSTNAMES_RESPONSE__INIT;
	Keycustody__CustomHostname		 h, *list[2];
	Keycustody__CustomHostnameSsl		 ssl;
	const json_t				*res, *o, *s, *hs;
	json_t					*root;
	char					*hosts[2], *out, t[64];
	size_t					 i, k;

	hostname_fill(&h, &ssl, hosts);
	ssl.issuer = (char *)NASTY;
	hosts[1] = (char *)NASTY;
	list[0] = list[1] = &h;
	l.hostnames = list;
	l.n_hostnames = 2;
	l.page = 1;
	l.per_page = 5;
	l.total_count = 6;
	assert_int_equal(json_reply_hostname_list(&l, &out), 0);
	assert_non_null(root = json_loads(out, JSON_REJECT_DUPLICATES, NULL));
	res = assert_envelope(root, 1, 5, 2, 6, 2);
	assert_int_equal(json_array_size(res), 2);
	for (i = 0; i < 2; i++) {
		o = json_array_get(res, i);
		assert_int_equal(json_object_size(o), 4);
		assert_string_equal(jstr(o, "id"), h.id);
		assert_string_equal(jstr(o, "hostname"), h.hostname);
		proto_time_format(h.created_at_us, 1, t, sizeof(t));
		assert_string_equal(jstr(o, "created_at"), t);
		assert_null(json_object_get(o, "status"));	/* no constant status */
		s = json_object_get(o, "ssl");
		assert_int_equal(json_object_size(s), 13);
		assert_string_equal(jstr(s, "id"), ssl.id);
		assert_string_equal(jstr(s, "type"), "dv");
		assert_string_equal(jstr(s, "method"), "http");
		assert_string_equal(jstr(s, "status"), ssl.status);
		assert_string_equal(jstr(s, "bundle_method"), ssl.bundle_method);
		assert_string_equal(jstr(s, "custom_csr_id"), ssl.custom_csr_id);
		assert_string_equal(jstr(s, "issuer"), NASTY);
		assert_string_equal(jstr(s, "serial_number"), ssl.serial_number);
		assert_string_equal(jstr(s, "signature"), ssl.signature);
		proto_time_format(ssl.uploaded_on_us, 1, t, sizeof(t));
		assert_string_equal(jstr(s, "uploaded_on"), t);
		proto_time_format(ssl.expires_on_us, 0, t, sizeof(t));
		assert_string_equal(jstr(s, "expires_on"), t);
		hs = json_object_get(s, "hosts");
		assert_int_equal(json_array_size(hs), 2);
		for (k = 0; k < 2; k++)
			assert_string_equal(json_string_value(json_array_get(hs, k)),
			    hosts[k]);
		assert_string_equal(jstr(s, "custom_certificate"), PEM);
	}
	json_decref(root);
	free(out);

	/* A page with a hostname that lacks its ssl: no reply at all, not half of one. */
	h.ssl = NULL;
	assert_int_equal(json_reply_hostname_list(&l, &out), KC_ERR_INVALID);
	assert_null(out);
}

/* Health answers and the id replies, read back. */
static void
test_roundtrip_small(void **state)
{
	Keycustody__HealthResponse	 hr = KEYCUSTODY__HEALTH_RESPONSE__INIT;
	json_t				*root;
	char				*out;
	int				 ok;

	hr.hsm_state = (char *)"locked \"x\"";
	hr.store_ok = 1;
	assert_int_equal(json_health(&hr, &ok, &out), 0);
	assert_int_equal(ok, 0);
	assert_string_equal(out, "{\"status\":\"unavailable\",\"hsm_state\":\"locked "
	    "\\\"x\\\"\",\"store_ok\":true}");
	free(out);
	hr.hsm_state = NULL;
	hr.store_ok = 0;
	assert_int_equal(json_health(&hr, &ok, &out), 0);
	assert_string_equal(out, "{\"status\":\"unavailable\",\"hsm_state\":\"unknown\","
	    "\"store_ok\":false}");
	free(out);
	assert_int_equal(json_health(NULL, &ok, &out), 0);
	assert_string_equal(out, "{\"status\":\"unavailable\",\"daemon\":\"unreachable\"}");
	free(out);

	assert_int_equal(json_reply_id(NULL, &out), 0);
	assert_string_equal(out, "{\"result\":{\"id\":\"\"},\"success\":true,\"errors\":[],"
	    "\"messages\":[]}");
	free(out);
	assert_int_equal(json_reply_id("a\"b", &out), 0);
	assert_non_null(root = json_loads(out, 0, NULL));
	assert_string_equal(jstr(json_object_get(root, "result"), "id"), "a\"b");
	json_decref(root);
	free(out);
	assert_int_equal(json_reply_error(1500, NULL, 0, NULL, &out), 0);
	assert_string_equal(out, "{\"result\":null,\"success\":false,\"errors\":"
	    "[{\"code\":1500,\"message\":\"\"}],\"messages\":[]}");
	free(out);
	assert_int_equal(json_reply_error(-1, "m", -2, NULL, &out), 0);
	assert_string_equal(out, "{\"result\":null,\"success\":false,\"errors\":"
	    "[{\"code\":-1,\"message\":\"m\",\"error_chain\":[{\"code\":-2,\"message\":\"\"}]}],"
	    "\"messages\":[]}");
	free(out);
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
		cmocka_unit_test(test_health_full),
		cmocka_unit_test(test_hostname_create),
		cmocka_unit_test(test_hostname_custom_key),
		cmocka_unit_test(test_hostname_update),
		cmocka_unit_test(test_hostname_bad),
		cmocka_unit_test(test_hostname_depth),
		cmocka_unit_test(test_hostname_object),
		cmocka_unit_test(test_hostname_envelopes),
		cmocka_unit_test(test_hostname_daemon_errors),
		cmocka_unit_test(test_w_ascii),
		cmocka_unit_test(test_w_runs),
		cmocka_unit_test(test_w_utf8),
		cmocka_unit_test(test_w_utf8_invalid),
		cmocka_unit_test(test_w_utf8_all),
		cmocka_unit_test(test_w_numbers),
		cmocka_unit_test(test_w_nesting),
		cmocka_unit_test(test_w_misuse),
		cmocka_unit_test(test_w_growth),
		cmocka_unit_test(test_w_time),
		cmocka_unit_test(test_roundtrip_csr),
		cmocka_unit_test(test_roundtrip_invalid_utf8),
		cmocka_unit_test(test_roundtrip_hostname),
		cmocka_unit_test(test_roundtrip_small),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
