/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * json.c: the shim's JSON mapping, API.md bodies <-> protobuf. Owns jansson (request bodies
 * in) and the API objects and envelopes (every reply out, on jsonw.c's writer); pure (no I/O).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kc-api.h"
#include "kc-err.h"
#include "kc-proto.h"
#include "kc-util.h"
#include "json.h"
#include "jsonw.h"

/* Depth of a JSON value: scalars are 0, an empty container 1. */
static int
json_depth(const json_t *v, int limit)
{
	const char	*key;
	json_t		*e;
	size_t		 i;
	int		 d, max = 0;

	if (limit < 0)
		return 1;
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, key, e) {
			if ((d = json_depth(e, limit - 1)) > max)
				max = d;
			if (max > limit)
				break;
		}
		return max + 1;
	}
	if (json_is_array(v)) {
		json_array_foreach(v, i, e) {
			if ((d = json_depth(e, limit - 1)) > max)
				max = d;
			if (max > limit)
				break;
		}
		return max + 1;
	}
	return 0;
}

/*
 * Parse body into a JSON object (duplicate keys and excessive depth refused).
 * @param rootp on success, caller releases with json_decref()
 */
static int
json_load_object(const char *body, size_t len, json_t **rootp)
{
	json_error_t	 jerr;
	json_t		*root;

	*rootp = NULL;
	if (body == NULL)
		return KC_ERR_INVALID;
	if ((root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
		return json_error_code(&jerr) == json_error_out_of_memory ?
		    KC_ERR_NOMEM : KC_ERR_INVALID;
	if (!json_is_object(root) || json_depth(root, JSON_MAX_DEPTH) > JSON_MAX_DEPTH) {
		json_decref(root);
		return KC_ERR_INVALID;
	}
	*rootp = root;
	return 0;
}

/*
 * Copy the string member key of obj into *dst. Absent or null leaves *dst NULL; any other
 * type is KC_ERR_INVALID.
 */
static int
json_get_string(const json_t *obj, const char *key, char **dst)
{
	json_t	*v;

	*dst = NULL;
	if ((v = json_object_get(obj, key)) == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return KC_ERR_INVALID;
	/* jansson refuses \u0000 unless JSON_ALLOW_NUL: the value is a C string. */
	if ((*dst = strdup(json_string_value(v))) == NULL)
		return KC_ERR_NOMEM;
	return 0;
}

static int
json_get_sans(const json_t *obj, Keycustody__CreateCsrRequest *m)
{
	json_t	*v, *e;
	size_t	 i, n;

	if ((v = json_object_get(obj, "sans")) == NULL || json_is_null(v))
		return 0;
	if (!json_is_array(v))
		return KC_ERR_INVALID;
	n = json_array_size(v);
	json_array_foreach(v, i, e) {
		if (!json_is_string(e))
			return KC_ERR_INVALID;
	}
	if (n == 0)
		return 0;
	if ((m->sans = calloc(n, sizeof(*m->sans))) == NULL)
		return KC_ERR_NOMEM;
	json_array_foreach(v, i, e) {
		if ((m->sans[i] = strdup(json_string_value(e))) == NULL)
			return KC_ERR_NOMEM;
		m->n_sans = i + 1;
	}
	return 0;
}

int
json_create_csr_request(const char *body, size_t len, Keycustody__CreateCsrRequest **reqp)
{
	Keycustody__CreateCsrRequest	*m = NULL;
	json_t				*root = NULL;
	int				 r;

	*reqp = NULL;
	if ((r = json_load_object(body, len, &root)) != 0)
		goto out;
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		r = KC_ERR_NOMEM;
		goto out;
	}
	keycustody__create_csr_request__init(m);
	if ((r = json_get_string(root, "country", &m->country)) != 0 ||
	    (r = json_get_string(root, "state", &m->state)) != 0 ||
	    (r = json_get_string(root, "locality", &m->locality)) != 0 ||
	    (r = json_get_string(root, "organization", &m->organization)) != 0 ||
	    (r = json_get_string(root, "organizational_unit",
	    &m->organizational_unit)) != 0 ||
	    (r = json_get_string(root, "common_name", &m->common_name)) != 0 ||
	    (r = json_get_sans(root, m)) != 0 ||
	    (r = json_get_string(root, "key_type", &m->key_type)) != 0 ||
	    (r = json_get_string(root, "name", &m->name)) != 0 ||
	    (r = json_get_string(root, "description", &m->description)) != 0)
		goto out;
	*reqp = m;
	m = NULL;
	r = 0;
 out:
	if (m != NULL)
		keycustody__create_csr_request__free_unpacked(m, NULL);
	json_decref(root);
	return r;
}

/*
 * The object member key of obj as compact JSON text in *dst (NULL when absent or null); not
 * an object, or (strings) a member that is not a string, is KC_ERR_INVALID, as a typed
 * decoder of the original would refuse it (1400). Content is the daemon's to check.
 */
static int
json_get_object_text(const json_t *obj, const char *key, int strings, char **dst)
{
	const char	*k;
	json_t		*v, *e;

	*dst = NULL;
	if ((v = json_object_get(obj, key)) == NULL || json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return KC_ERR_INVALID;
	if (strings)
		json_object_foreach(v, k, e) {
			if (!json_is_string(e))
				return KC_ERR_INVALID;
		}
	if ((*dst = json_dumps(v, JSON_COMPACT)) == NULL)
		return KC_ERR_NOMEM;
	return 0;
}

/*
 * The ssl member of a custom hostname body. Absent or null leaves *sslp NULL; an ssl that
 * is not an object, or a known member of the wrong type, is KC_ERR_INVALID. custom_key
 * (any value, null included) is only flagged: the daemon refuses it with 1434.
 */
static int
json_get_ssl(const json_t *obj, Keycustody__SslInput **sslp)
{
	Keycustody__SslInput	*ssl;
	json_t			*v, *w;
	int			 r;

	*sslp = NULL;
	if ((v = json_object_get(obj, "ssl")) == NULL || json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return KC_ERR_INVALID;
	if ((ssl = calloc(1, sizeof(*ssl))) == NULL)
		return KC_ERR_NOMEM;
	keycustody__ssl_input__init(ssl);
	if ((r = json_get_string(v, "custom_csr_id", &ssl->custom_csr_id)) != 0 ||
	    (r = json_get_string(v, "custom_certificate",
	    &ssl->custom_certificate)) != 0 ||
	    (r = json_get_string(v, "bundle_method", &ssl->bundle_method)) != 0 ||
	    (r = json_get_string(v, "method", &ssl->method)) != 0 ||
	    (r = json_get_string(v, "type", &ssl->type)) != 0 ||
	    (r = json_get_string(v, "certificate_authority",
	    &ssl->certificate_authority)) != 0 ||
	    (r = json_get_object_text(v, "settings", 0, &ssl->settings)) != 0) {
		keycustody__ssl_input__free_unpacked(ssl, NULL);
		return r;
	}
	if ((w = json_object_get(v, "wildcard")) != NULL && !json_is_null(w)) {
		if (!json_is_boolean(w)) {
			keycustody__ssl_input__free_unpacked(ssl, NULL);
			return KC_ERR_INVALID;
		}
		ssl->has_wildcard = 1;
		ssl->wildcard = json_is_true(w);
	}
	if (json_object_get(v, "custom_key") != NULL)
		ssl->has_custom_key_given = ssl->custom_key_given = 1;
	*sslp = ssl;
	return 0;
}

int
json_create_hostname_request(const char *body, size_t len,
    Keycustody__CreateHostnameRequest **reqp)
{
	Keycustody__CreateHostnameRequest	*m = NULL;
	json_t					*root = NULL;
	int					 r;

	*reqp = NULL;
	if ((r = json_load_object(body, len, &root)) != 0)
		goto out;
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		r = KC_ERR_NOMEM;
		goto out;
	}
	keycustody__create_hostname_request__init(m);
	if ((r = json_get_string(root, "hostname", &m->hostname)) != 0 ||
	    (r = json_get_ssl(root, &m->ssl)) != 0 ||
	    (r = json_get_object_text(root, "custom_metadata", 1,
	    &m->custom_metadata)) != 0 ||
	    (r = json_get_string(root, "custom_origin_server",
	    &m->custom_origin_server)) != 0 ||
	    (r = json_get_string(root, "custom_origin_sni", &m->custom_origin_sni)) != 0)
		goto out;
	*reqp = m;
	m = NULL;
 out:
	if (m != NULL)
		keycustody__create_hostname_request__free_unpacked(m, NULL);
	json_decref(root);
	return r;
}

int
json_update_hostname_request(const char *body, size_t len,
    Keycustody__UpdateHostnameRequest **reqp)
{
	Keycustody__UpdateHostnameRequest	*m = NULL;
	json_t					*root = NULL;
	int					 r;

	*reqp = NULL;
	if ((r = json_load_object(body, len, &root)) != 0)
		goto out;
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		r = KC_ERR_NOMEM;
		goto out;
	}
	keycustody__update_hostname_request__init(m);
	if ((r = json_get_ssl(root, &m->ssl)) != 0 ||
	    (r = json_get_object_text(root, "custom_metadata", 1,
	    &m->custom_metadata)) != 0 ||
	    (r = json_get_string(root, "custom_origin_server",
	    &m->custom_origin_server)) != 0 ||
	    (r = json_get_string(root, "custom_origin_sni", &m->custom_origin_sni)) != 0)
		goto out;
	*reqp = m;
	m = NULL;
 out:
	if (m != NULL)
		keycustody__update_hostname_request__free_unpacked(m, NULL);
	json_decref(root);
	return r;
}

int
json_update_fallback_origin_request(const char *body, size_t len,
    Keycustody__UpdateFallbackOriginRequest **reqp)
{
	Keycustody__UpdateFallbackOriginRequest	*m = NULL;
	json_t					*root = NULL;
	int					 r;

	*reqp = NULL;
	if ((r = json_load_object(body, len, &root)) != 0)
		goto out;
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		r = KC_ERR_NOMEM;
		goto out;
	}
	keycustody__update_fallback_origin_request__init(m);
	if ((r = json_get_string(root, "origin", &m->origin)) != 0)
		goto out;
	*reqp = m;
	m = NULL;
 out:
	if (m != NULL)
		keycustody__update_fallback_origin_request__free_unpacked(m, NULL);
	json_decref(root);
	return r;
}

/*
 * The API objects and envelopes, on the writer. Members go in jansson's former order (the
 * order API.md lists them); a NULL string is written as "", as it always was.
 */

/* proto_time_format()'s longest: "-2147481748-01-01T00:00:00.000000Z" and a NUL, rounded up. */
#define JSON_TIME_LEN	40
#define JSON_TIME_MAX	253402300799LL	/* 9999-12-31T23:59:59Z, in seconds */

/* n decimal digits of v, zero-padded, at p. */
static void
json_time_digits(char *p, int64_t v, int n)
{
	while (n-- > 0) {
		p[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

/*
 * proto_time_format(us, micro, buf, len) for the times of API objects, without gmtime_r(),
 * strftime() and snprintf(), which were a sixth of the rendering of a list page (perf).
 * Only 1970 to 9999 here (the date from the day number as in H. Hinnant's
 * civil_from_days()); other times, never seen in practice, go to proto_time_format().
 */
static void
json_time(int64_t us, int micro, char *buf, size_t len)
{
	int64_t	 t, days, secs, doe, yoe, doy, mp, y, m, d;

	if (us < 0 || us / 1000000 > JSON_TIME_MAX ||
	    len < sizeof("9999-12-31T23:59:59.999999Z")) {
		proto_time_format(us, micro, buf, len);
		return;
	}
	t = us / 1000000;
	days = t / 86400;
	secs = t % 86400;
	/* Days since 0000-03-01 of the proleptic Gregorian calendar: March-based years. */
	days += 719468;
	doe = days % 146097;				/* day of the 400-year era */
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);	/* day of the year from March 1 */
	mp = (5 * doy + 2) / 153;			/* month from March, 0-11 */
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y = days / 146097 * 400 + yoe + (m <= 2);
	json_time_digits(buf, y, 4);
	buf[4] = '-';
	json_time_digits(buf + 5, m, 2);
	buf[7] = '-';
	json_time_digits(buf + 8, d, 2);
	buf[10] = 'T';
	json_time_digits(buf + 11, secs / 3600, 2);
	buf[13] = ':';
	json_time_digits(buf + 14, secs / 60 % 60, 2);
	buf[16] = ':';
	json_time_digits(buf + 17, secs % 60, 2);
	if (micro) {
		buf[19] = '.';
		json_time_digits(buf + 20, us % 1000000, 6);
		memcpy(buf + 26, "Z", 2);
	} else
		memcpy(buf + 19, "Z", 2);
}

/* Buffer sizes to start with: one P-256 CSR object is about 0.9 kB, an RSA-4096 one 2.2. */
#define JSON_CSR_HINT		1536
#define JSON_HOSTNAME_HINT	4096	/* with a certificate chain */
#define JSON_ENVELOPE_HINT	256

/* A member whose value is the string s (NULL: ""). */
static void
json_w_kstr(struct json_w *w, const char *key, const char *s)
{
	json_w_key(w, key);
	json_w_string(w, s);
}

static void
json_w_kuint(struct json_w *w, const char *key, uint64_t v)
{
	json_w_key(w, key);
	json_w_uint(w, v);
}

/* The API object of a CSR (no zone_id); key_uri and key_id are extensions (API.md). */
static void
json_w_csr(struct json_w *w, const Keycustody__Csr *c)
{
	char	 created[JSON_TIME_LEN];
	size_t	 i;

	json_time(c->created_at_us, 0, created, sizeof(created));
	json_w_object_begin(w);
	json_w_kstr(w, "id", c->id);
	json_w_kstr(w, "created_at", created);
	json_w_kstr(w, "key_type", c->key_type);
	json_w_kstr(w, "country", c->country);
	json_w_kstr(w, "state", c->state);
	json_w_kstr(w, "locality", c->locality);
	json_w_kstr(w, "organization", c->organization);
	if (c->organizational_unit != NULL && *c->organizational_unit != '\0')
		json_w_kstr(w, "organizational_unit", c->organizational_unit);
	json_w_kstr(w, "common_name", c->common_name);
	json_w_key(w, "sans");
	json_w_array_begin(w);
	for (i = 0; i < c->n_sans; i++)
		json_w_string(w, c->sans[i]);
	json_w_array_end(w);
	json_w_kstr(w, "csr", c->csr);
	if (c->name != NULL)
		json_w_kstr(w, "name", c->name);
	if (c->description != NULL)
		json_w_kstr(w, "description", c->description);
	/* Extensions: where the key is (RFC 7512, no PIN in it) and its CKA_ID. */
	if (c->key_uri != NULL)
		json_w_kstr(w, "key_uri", c->key_uri);
	if (c->key_id != NULL)
		json_w_kstr(w, "key_id", c->key_id);
	if (c->module_key_uri != NULL)
		json_w_kstr(w, "module_key_uri", c->module_key_uri);
	/* Extension: the key was lost from the token behind the daemon's back. */
	if (c->has_key_missing && c->key_missing) {
		json_w_key(w, "key_missing");
		json_w_bool(w, 1);
	}
	json_w_object_end(w);
}

/* A JSON value parsed back from the daemon, on the writer; a real number fails w. */
static void
json_w_value(struct json_w *w, json_t *v, int depth)
{
	const char	*k;
	json_t		*e;
	size_t		 i;

	if (depth > JSON_MAX_DEPTH) {
		json_w_fail(w, KC_ERR_INVALID);
		return;
	}
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		json_w_object_begin(w);
		json_object_foreach(v, k, e) {
			json_w_key(w, k);
			json_w_value(w, e, depth + 1);
		}
		json_w_object_end(w);
		break;
	case JSON_ARRAY:
		json_w_array_begin(w);
		json_array_foreach(v, i, e)
			json_w_value(w, e, depth + 1);
		json_w_array_end(w);
		break;
	case JSON_STRING:
		json_w_string(w, json_string_value(v));
		break;
	case JSON_INTEGER:
		json_w_int(w, json_integer_value(v));
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		json_w_bool(w, json_is_true(v));
		break;
	case JSON_NULL:
		json_w_null(w);
		break;
	default:
		json_w_fail(w, KC_ERR_INVALID);
		break;
	}
}

/* A member whose value is the JSON object text (stored by the daemon); NULL: no member. */
static void
json_w_kjson(struct json_w *w, const char *key, const char *text)
{
	json_error_t	 jerr;
	json_t		*v;

	if (text == NULL)
		return;
	if ((v = json_loads(text, JSON_REJECT_DUPLICATES, &jerr)) == NULL ||
	    !json_is_object(v)) {
		json_decref(v);
		json_w_fail(w, KC_ERR_INVALID);
		return;
	}
	json_w_key(w, key);
	json_w_value(w, v, 0);
	json_decref(v);
}

/*
 * The API object of a custom hostname (no zone_id), with its ssl object; the optional
 * fields only when set. A hostname without ssl is refused: never half an object. No
 * top-level status: nothing here verifies ownership or deploys (docs/API.md), and a
 * constant would claim a check that was never made; ssl.status is the checked one.
 */
static void
json_w_hostname(struct json_w *w, const Keycustody__CustomHostname *hn)
{
	const Keycustody__CustomHostnameSsl	*ssl = hn->ssl;
	char					 created[JSON_TIME_LEN];
	char					 uploaded[JSON_TIME_LEN];
	char					 expires[JSON_TIME_LEN];
	size_t					 i;

	if (ssl == NULL) {
		json_w_fail(w, KC_ERR_INVALID);
		return;
	}
	json_time(hn->created_at_us, 1, created, sizeof(created));
	json_time(ssl->uploaded_on_us, 1, uploaded, sizeof(uploaded));
	json_time(ssl->expires_on_us, 0, expires, sizeof(expires));
	json_w_object_begin(w);
	json_w_kstr(w, "id", hn->id);
	json_w_kstr(w, "hostname", hn->hostname);
	json_w_kstr(w, "created_at", created);
	json_w_kjson(w, "custom_metadata", hn->custom_metadata);
	if (hn->custom_origin_server != NULL)
		json_w_kstr(w, "custom_origin_server", hn->custom_origin_server);
	if (hn->custom_origin_sni != NULL)
		json_w_kstr(w, "custom_origin_sni", hn->custom_origin_sni);
	json_w_key(w, "ssl");
	json_w_object_begin(w);
	json_w_kstr(w, "id", ssl->id);
	json_w_kstr(w, "type", ssl->type != NULL ? ssl->type : "dv");
	json_w_kstr(w, "method", ssl->method != NULL ? ssl->method : "http");
	if (ssl->has_wildcard) {
		json_w_key(w, "wildcard");
		json_w_bool(w, ssl->wildcard);
	}
	json_w_kjson(w, "settings", ssl->settings);
	if (ssl->certificate_authority != NULL)
		json_w_kstr(w, "certificate_authority", ssl->certificate_authority);
	json_w_kstr(w, "status", ssl->status);
	json_w_kstr(w, "bundle_method", ssl->bundle_method);
	json_w_kstr(w, "custom_csr_id", ssl->custom_csr_id);
	json_w_kstr(w, "issuer", ssl->issuer);
	json_w_kstr(w, "serial_number", ssl->serial_number);
	json_w_kstr(w, "signature", ssl->signature);
	json_w_kstr(w, "uploaded_on", uploaded);
	json_w_kstr(w, "expires_on", expires);
	json_w_key(w, "hosts");
	json_w_array_begin(w);
	for (i = 0; i < ssl->n_hosts; i++)
		json_w_string(w, ssl->hosts[i]);
	json_w_array_end(w);
	json_w_kstr(w, "custom_certificate", ssl->custom_certificate);
	if (ssl->certificate_chain != NULL)
		json_w_kstr(w, "certificate_chain", ssl->certificate_chain);
	json_w_object_end(w);
	json_w_object_end(w);
}

/*
 * The API object of a fallback origin (API.md "fallback_origin"): errors is always empty,
 * nothing being activated here; status only where the daemon gave one.
 */
static void
json_w_fallback(struct json_w *w, const Keycustody__FallbackOrigin *f)
{
	char	 created[JSON_TIME_LEN];
	char	 updated[JSON_TIME_LEN];

	json_time(f->created_at_us, 1, created, sizeof(created));
	json_time(f->updated_at_us, 1, updated, sizeof(updated));
	json_w_object_begin(w);
	json_w_kstr(w, "origin", f->origin);
	if (f->status != NULL)
		json_w_kstr(w, "status", f->status);
	json_w_kstr(w, "created_at", created);
	json_w_kstr(w, "updated_at", updated);
	json_w_key(w, "errors");
	json_w_array_begin(w);
	json_w_array_end(w);
	json_w_object_end(w);
}

/* {"id": id}; a NULL id is "". */
static void
json_w_id(struct json_w *w, const char *id)
{
	json_w_object_begin(w);
	json_w_kstr(w, "id", id);
	json_w_object_end(w);
}

/* result_info of a list page (API.md "Envelope"). */
struct json_page {
	uint32_t	 page;
	uint32_t	 per_page;
	size_t		 count;
	uint64_t	 total;
};

/* Open a success envelope; the result comes next. */
static void
json_w_success_begin(struct json_w *w)
{
	json_w_object_begin(w);
	json_w_key(w, "result");
}

/* Close a success envelope, with result_info when pg is not NULL. */
static void
json_w_success_end(struct json_w *w, const struct json_page *pg)
{
	uint64_t	 pages = 0;

	json_w_key(w, "success");
	json_w_bool(w, 1);
	json_w_key(w, "errors");
	json_w_array_begin(w);
	json_w_array_end(w);
	json_w_key(w, "messages");
	json_w_array_begin(w);
	json_w_array_end(w);
	if (pg != NULL) {
		if (pg->per_page > 0)
			pages = pg->total / pg->per_page + (pg->total % pg->per_page != 0);
		json_w_key(w, "result_info");
		json_w_object_begin(w);
		json_w_kuint(w, "page", pg->page);
		json_w_kuint(w, "per_page", pg->per_page);
		json_w_kuint(w, "count", pg->count);
		json_w_kuint(w, "total_count", pg->total);
		json_w_kuint(w, "total_pages", pages);
		json_w_object_end(w);
	}
	json_w_object_end(w);
}

/*
 * The result of a successful reply: n CSRs, n custom hostnames, or the object {"id": id};
 * one of them alone, or with page, the array of a list page.
 */
struct json_result {
	const Keycustody__Csr			*const *csrs;
	const Keycustody__CustomHostname	*const *hostnames;
	const Keycustody__FallbackOrigin	*fallback;
	const char				*id;
	size_t					 n;
	const struct json_page			*page;
};

/*
 * Render res: bare, or with envelope in the success envelope (with result_info for a
 * page). Every successful reply and API object goes out through here.
 */
static int
json_render(const struct json_result *res, int envelope, char **out)
{
	struct json_w	 w;
	size_t		 i, hint = envelope ? JSON_ENVELOPE_HINT : 0;

	if (res->csrs != NULL)
		hint += res->n * JSON_CSR_HINT;
	else if (res->hostnames != NULL)
		hint += res->n * JSON_HOSTNAME_HINT;
	json_w_init(&w, hint);
	if (envelope)
		json_w_success_begin(&w);
	if (res->page != NULL)
		json_w_array_begin(&w);
	for (i = 0; i < res->n; i++) {
		if (res->csrs != NULL)
			json_w_csr(&w, res->csrs[i]);
		else if (res->hostnames != NULL)
			json_w_hostname(&w, res->hostnames[i]);
		else if (res->fallback != NULL)
			json_w_fallback(&w, res->fallback);
		else
			json_w_id(&w, res->id);
	}
	if (res->page != NULL)
		json_w_array_end(&w);
	if (envelope)
		json_w_success_end(&w, res->page);
	return json_w_steal(&w, out, NULL);
}

/* One CSR, bare or in its envelope. */
static int
json_render_csr(const Keycustody__Csr *csr, int envelope, char **out)
{
	const struct json_result	 res = { .csrs = &csr, .n = 1 };

	return json_render(&res, envelope, out);
}

/* A page of CSRs, bare (the array) or in its envelope with result_info. */
static int
json_render_csr_page(const Keycustody__ListCsrsResponse *l, int envelope, char **out)
{
	const struct json_page		 pg = { l->page, l->per_page, l->n_csrs,
					    l->total_count };
	const struct json_result	 res = {
		.csrs = (const Keycustody__Csr *const *)l->csrs, .n = l->n_csrs, .page = &pg
	};

	return json_render(&res, envelope, out);
}

/* One custom hostname, bare or in its envelope. */
static int
json_render_hostname(const Keycustody__CustomHostname *hn, int envelope, char **out)
{
	const struct json_result	 res = { .hostnames = &hn, .n = 1 };

	return json_render(&res, envelope, out);
}

/* A page of custom hostnames, bare (the array) or in its envelope with result_info. */
static int
json_render_hostname_page(const Keycustody__ListHostnamesResponse *l, int envelope,
    char **out)
{
	const struct json_page		 pg = { l->page, l->per_page, l->n_hostnames,
					    l->total_count };
	const struct json_result	 res = {
		.hostnames = (const Keycustody__CustomHostname *const *)l->hostnames,
		.n = l->n_hostnames, .page = &pg
	};

	return json_render(&res, envelope, out);
}

/* {"id": id}, bare or in its envelope. */
static int
json_render_id(const char *id, int envelope, char **out)
{
	const struct json_result	 res = { .id = id, .n = 1 };

	return json_render(&res, envelope, out);
}

int
json_csr(const Keycustody__Csr *csr, char **out)
{
	return json_render_csr(csr, 0, out);
}

int
json_reply_csr(const Keycustody__Csr *csr, char **out)
{
	return json_render_csr(csr, 1, out);
}

int
json_csr_list(const Keycustody__ListCsrsResponse *l, char **out)
{
	return json_render_csr_page(l, 0, out);
}

int
json_reply_csr_list(const Keycustody__ListCsrsResponse *l, char **out)
{
	return json_render_csr_page(l, 1, out);
}

int
json_hostname(const Keycustody__CustomHostname *hn, char **out)
{
	return json_render_hostname(hn, 0, out);
}

int
json_reply_hostname(const Keycustody__CustomHostname *hn, char **out)
{
	return json_render_hostname(hn, 1, out);
}

int
json_hostname_list(const Keycustody__ListHostnamesResponse *l, char **out)
{
	return json_render_hostname_page(l, 0, out);
}

int
json_reply_hostname_list(const Keycustody__ListHostnamesResponse *l, char **out)
{
	return json_render_hostname_page(l, 1, out);
}

int
json_id(const char *id, char **out)
{
	return json_render_id(id, 0, out);
}

int
json_reply_id(const char *id, char **out)
{
	return json_render_id(id, 1, out);
}

/* A fallback origin, bare or in its envelope. */
static int
json_render_fallback(const Keycustody__FallbackOrigin *f, int envelope, char **out)
{
	const struct json_result	 res = { .fallback = f, .n = 1 };

	return json_render(&res, envelope, out);
}

int
json_fallback_origin(const Keycustody__FallbackOrigin *f, char **out)
{
	return json_render_fallback(f, 0, out);
}

int
json_reply_fallback_origin(const Keycustody__FallbackOrigin *f, char **out)
{
	return json_render_fallback(f, 1, out);
}


/* Open a failure envelope: the error objects come next, in the errors array. */
static void
json_w_failure_begin(struct json_w *w)
{
	json_w_object_begin(w);
	json_w_key(w, "result");
	json_w_null(w);
	json_w_key(w, "success");
	json_w_bool(w, 0);
	json_w_key(w, "errors");
	json_w_array_begin(w);
}

static void
json_w_failure_end(struct json_w *w)
{
	json_w_array_end(w);
	json_w_key(w, "messages");
	json_w_array_begin(w);
	json_w_array_end(w);
	json_w_object_end(w);
}

/* Open an error object {"code", "message" (NULL: "")}; more members may follow. */
static void
json_w_error_begin(struct json_w *w, int code, const char *message)
{
	json_w_object_begin(w);
	json_w_key(w, "code");
	json_w_int(w, code);
	json_w_kstr(w, "message", message);
}

int
json_reply_error(int code, const char *message, int chain_code, const char *chain_message,
    char **out)
{
	struct json_w	 w;

	json_w_init(&w, JSON_ENVELOPE_HINT);
	json_w_failure_begin(&w);
	json_w_error_begin(&w, code, message);
	if (chain_code != 0) {
		json_w_key(&w, "error_chain");
		json_w_array_begin(&w);
		json_w_error_begin(&w, chain_code, chain_message);
		json_w_object_end(&w);
		json_w_array_end(&w);
	}
	json_w_object_end(&w);
	json_w_failure_end(&w);
	return json_w_steal(&w, out, NULL);
}

int
json_reply_no_route(const char *path, char **out)
{
	const char	*msg[] = { "Could not route to ", path != NULL ? path : "/",
			    ", perhaps your object identifier is invalid?" };
	struct json_w	 w;

	json_w_init(&w, JSON_ENVELOPE_HINT);
	json_w_failure_begin(&w);
	json_w_object_begin(&w);
	json_w_key(&w, "code");
	json_w_int(&w, KC_API_ZONE_INVALID);
	/* The message is one string of three parts, written without a copy of path. */
	json_w_key(&w, "message");
	json_w_string_parts(&w, msg, sizeof(msg) / sizeof(msg[0]));
	json_w_object_end(&w);
	json_w_error_begin(&w, 7000, "No route for that URI");
	json_w_object_end(&w);
	json_w_failure_end(&w);
	return json_w_steal(&w, out, NULL);
}

int
json_reply_daemon_error(const Keycustody__Error *e, int *http_status, char **out)
{
	int	 code;

	*http_status = kc_status_http((int)e->status);
	code = e->code != 0 ? (int)e->code : (*http_status >= 500 ?
	    (*http_status == 503 ? KC_API_UNAVAILABLE : KC_API_INTERNAL) : 1000);
	return json_reply_error(code, e->message, 0, NULL, out);
}

/* A failing audit log refuses every change (fail closed): not healthy either. */
static int
json_health_ok(const Keycustody__HealthResponse *h)
{
	return h != NULL && h->hsm_state != NULL && strcmp(h->hsm_state, "ok") == 0 &&
	    h->store_ok && (!h->has_audit_ok || h->audit_ok);
}

int
json_health(const Keycustody__HealthResponse *h, int *ok, char **out)
{
	struct json_w	 w;

	*ok = json_health_ok(h);
	json_w_init(&w, JSON_ENVELOPE_HINT);
	json_w_object_begin(&w);
	if (*ok)
		json_w_kstr(&w, "status", "ok");
	else if (h == NULL) {
		json_w_kstr(&w, "status", "unavailable");
		json_w_kstr(&w, "daemon", "unreachable");
	} else {
		json_w_kstr(&w, "status", "unavailable");
		json_w_kstr(&w, "hsm_state", h->hsm_state != NULL ? h->hsm_state : "unknown");
		json_w_key(&w, "store_ok");
		json_w_bool(&w, h->store_ok);
		if (h->has_audit_ok) {
			json_w_key(&w, "audit_ok");
			json_w_bool(&w, h->audit_ok);
		}
	}
	json_w_object_end(&w);
	return json_w_steal(&w, out, NULL);
}

/* protobuf-c's in-memory size of one element of field f. */
static size_t
json_message_elem_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return sizeof(uint64_t);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_ENUM:
		return sizeof(int);
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	default:
		return sizeof(uint32_t);
	}
}

static void	json_message_write(struct json_w *, const ProtobufCMessage *);

/* One value of field f at p (an element, for a repeated field). */
static void
json_message_value(struct json_w *w, const ProtobufCFieldDescriptor *f, const void *p)
{
	const ProtobufCEnumValue	*ev;
	const ProtobufCBinaryData	*bd;
	char				*hex;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		json_w_int(w, *(const int32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		json_w_uint(w, *(const uint32_t *)p);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		json_w_int(w, *(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		json_w_uint(w, *(const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		json_w_bool(w, *(const protobuf_c_boolean *)p);
		break;
	case PROTOBUF_C_TYPE_ENUM:
		ev = protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)p);
		if (ev != NULL)
			json_w_string(w, ev->name);
		else
			json_w_int(w, *(const int *)p);
		break;
	case PROTOBUF_C_TYPE_STRING:
		json_w_string(w, *(char *const *)p);
		break;
	case PROTOBUF_C_TYPE_BYTES:
		bd = p;
		if (bd->len > SIZE_MAX / 2 - 1 || (hex = malloc(bd->len * 2 + 1)) == NULL) {
			json_w_fail(w, KC_ERR_NOMEM);
			break;
		}
		kc_hex(bd->data, bd->len, hex);
		json_w_string(w, hex);
		free(hex);
		break;
	case PROTOBUF_C_TYPE_MESSAGE:
		json_message_write(w, *(const ProtobufCMessage *const *)p);
		break;
	default:
		json_w_null(w);	/* float/double: none in our protocol */
		break;
	}
}

/* Whether field f of the message at base is present (a set oneof member, a has_ flag). */
static int
json_message_has(const ProtobufCFieldDescriptor *f, const char *base)
{
	const void	*p = base + f->offset;

	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(const uint32_t *)(const void *)(base + f->quantifier_offset) == f->id;
	if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE)
		return *(const void *const *)p != NULL;
	if (f->label == PROTOBUF_C_LABEL_OPTIONAL)
		return *(const protobuf_c_boolean *)(const void *)(base + f->quantifier_offset);
	return 1;
}

/* The members of m's object, into the object open in w. */
static void
json_message_members(struct json_w *w, const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor	*d = m->descriptor;
	const ProtobufCFieldDescriptor		*f;
	const char				*base = (const char *)m;
	size_t					 i, j, n, sz;

	for (i = 0; i < d->n_fields; i++) {
		f = &d->fields[i];
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			n = *(const size_t *)(const void *)(base + f->quantifier_offset);
			if (n == 0)
				continue;
			sz = json_message_elem_size(f);
			json_w_key(w, f->name);
			json_w_array_begin(w);
			for (j = 0; j < n; j++)
				json_message_value(w, f,
				    *(char *const *)(const void *)(base + f->offset) + j * sz);
			json_w_array_end(w);
		} else if (json_message_has(f, base)) {
			json_w_key(w, f->name);
			json_message_value(w, f, base + f->offset);
		}
	}
}

static void
json_message_write(struct json_w *w, const ProtobufCMessage *m)
{
	if (m == NULL) {
		json_w_null(w);
		return;
	}
	json_w_object_begin(w);
	json_message_members(w, m);
	json_w_object_end(w);
}

int
json_health_full(const Keycustody__HealthResponse *h, char **out)
{
	struct json_w	 w;

	json_w_init(&w, JSON_ENVELOPE_HINT);
	json_w_object_begin(&w);
	json_w_kstr(&w, "status", json_health_ok(h) ? "ok" : "unavailable");
	json_message_members(&w, &h->base);
	json_w_object_end(&w);
	return json_w_steal(&w, out, NULL);
}

void
json_init(void)
{
	json_object_seed(0);
}
