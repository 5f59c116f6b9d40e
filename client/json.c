/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * json.c: the shim's JSON mapping, API.md bodies <-> protobuf. Owns jansson; pure (no I/O).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kc-err.h"
#include "kc-proto.h"
#include "json.h"

/* Depth of a JSON value: scalars are 0, an empty container 1. */
static int
json_depth(const json_t *v, int limit)
{
	const char	*key;
	json_t		*e;
	size_t		 i;
	int		 d, max = 0;

	if (limit < 0)
		return (1);
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, key, e) {
			if ((d = json_depth(e, limit - 1)) > max)
				max = d;
			if (max > limit)
				break;
		}
		return (max + 1);
	}
	if (json_is_array(v)) {
		json_array_foreach(v, i, e) {
			if ((d = json_depth(e, limit - 1)) > max)
				max = d;
			if (max > limit)
				break;
		}
		return (max + 1);
	}
	return (0);
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
		return (KC_ERR_INVALID);
	if ((root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
		return (json_error_code(&jerr) == json_error_out_of_memory ?
		    KC_ERR_NOMEM : KC_ERR_INVALID);
	if (!json_is_object(root) || json_depth(root, JSON_MAX_DEPTH) > JSON_MAX_DEPTH) {
		json_decref(root);
		return (KC_ERR_INVALID);
	}
	*rootp = root;
	return (0);
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
		return (0);
	if (!json_is_string(v))
		return (KC_ERR_INVALID);
	/* jansson refuses \u0000 unless JSON_ALLOW_NUL: the value is a C string. */
	if ((*dst = strdup(json_string_value(v))) == NULL)
		return (KC_ERR_NOMEM);
	return (0);
}

static int
json_get_sans(const json_t *obj, Keycustody__CreateCsrRequest *m)
{
	json_t	*v, *e;
	size_t	 i, n;

	if ((v = json_object_get(obj, "sans")) == NULL || json_is_null(v))
		return (0);
	if (!json_is_array(v))
		return (KC_ERR_INVALID);
	n = json_array_size(v);
	json_array_foreach(v, i, e) {
		if (!json_is_string(e))
			return (KC_ERR_INVALID);
	}
	if (n == 0)
		return (0);
	if ((m->sans = calloc(n, sizeof(*m->sans))) == NULL)
		return (KC_ERR_NOMEM);
	json_array_foreach(v, i, e) {
		if ((m->sans[i] = strdup(json_string_value(e))) == NULL)
			return (KC_ERR_NOMEM);
		m->n_sans = i + 1;
	}
	return (0);
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
	return (r);
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
	json_t			*v;
	int			 r;

	*sslp = NULL;
	if ((v = json_object_get(obj, "ssl")) == NULL || json_is_null(v))
		return (0);
	if (!json_is_object(v))
		return (KC_ERR_INVALID);
	if ((ssl = calloc(1, sizeof(*ssl))) == NULL)
		return (KC_ERR_NOMEM);
	keycustody__ssl_input__init(ssl);
	if ((r = json_get_string(v, "custom_csr_id", &ssl->custom_csr_id)) != 0 ||
	    (r = json_get_string(v, "custom_certificate",
	    &ssl->custom_certificate)) != 0 ||
	    (r = json_get_string(v, "bundle_method", &ssl->bundle_method)) != 0) {
		keycustody__ssl_input__free_unpacked(ssl, NULL);
		return (r);
	}
	if (json_object_get(v, "custom_key") != NULL)
		ssl->has_custom_key_given = ssl->custom_key_given = 1;
	*sslp = ssl;
	return (0);
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
	    (r = json_get_ssl(root, &m->ssl)) != 0)
		goto out;
	*reqp = m;
	m = NULL;
 out:
	if (m != NULL)
		keycustody__create_hostname_request__free_unpacked(m, NULL);
	json_decref(root);
	return (r);
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
	if ((r = json_get_ssl(root, &m->ssl)) != 0)
		goto out;
	*reqp = m;
	m = NULL;
 out:
	if (m != NULL)
		keycustody__update_hostname_request__free_unpacked(m, NULL);
	json_decref(root);
	return (r);
}

/* Set obj[key] to a new value; takes ownership of v, NULL (allocation failure) included. */
static int
json_set(json_t *obj, const char *key, json_t *v)
{
	if (v == NULL) {
		return (KC_ERR_NOMEM);
	}
	return (json_object_set_new(obj, key, v) == 0 ? 0 : KC_ERR_NOMEM);
}

/* Set obj[key] to the string s; a NULL s is set to "". */
static int
json_set_str(json_t *obj, const char *key, const char *s)
{
	return (json_set(obj, key, json_string(s != NULL ? s : "")));
}

static json_t *
json_csr_object(const Keycustody__Csr *c)
{
	json_t	*o, *sans = NULL;
	char	 created[32];
	size_t	 i;
	int	 r;

	if ((o = json_object()) == NULL)
		return (NULL);
	proto_time_format(c->created_at_us, 0, created, sizeof(created));
	if ((r = json_set_str(o, "id", c->id)) != 0 ||
	    (r = json_set_str(o, "created_at", created)) != 0 ||
	    (r = json_set_str(o, "key_type", c->key_type)) != 0 ||
	    (r = json_set_str(o, "country", c->country)) != 0 ||
	    (r = json_set_str(o, "state", c->state)) != 0 ||
	    (r = json_set_str(o, "locality", c->locality)) != 0 ||
	    (r = json_set_str(o, "organization", c->organization)) != 0)
		goto fail;
	if (c->organizational_unit != NULL && *c->organizational_unit != '\0' &&
	    (r = json_set_str(o, "organizational_unit", c->organizational_unit)) != 0)
		goto fail;
	if ((r = json_set_str(o, "common_name", c->common_name)) != 0)
		goto fail;
	if ((sans = json_array()) == NULL)
		goto fail;
	for (i = 0; i < c->n_sans; i++) {
		if (json_array_append_new(sans, json_string(c->sans[i])) != 0)
			goto fail;
	}
	r = json_set(o, "sans", sans);
	sans = NULL;
	if (r != 0 || (r = json_set_str(o, "csr", c->csr)) != 0)
		goto fail;
	if (c->name != NULL && (r = json_set_str(o, "name", c->name)) != 0)
		goto fail;
	if (c->description != NULL &&
	    (r = json_set_str(o, "description", c->description)) != 0)
		goto fail;
	/* Extension: the key was lost from the token behind the daemon's back. */
	if (c->has_key_missing && c->key_missing &&
	    (r = json_set(o, "key_missing", json_true())) != 0)
		goto fail;
	return (o);
 fail:
	json_decref(sans);
	json_decref(o);
	return (NULL);
}

/* Serialize v (NULL: allocation failed earlier) into *out and release v. */
static int
json_dump_out(json_t *v, char **out)
{
	*out = NULL;
	if (v == NULL)
		return (KC_ERR_NOMEM);
	*out = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(v);
	return (*out != NULL ? 0 : KC_ERR_NOMEM);
}

/* A success envelope around result (owned); extra (owned, may be NULL) is result_info. */
static json_t *
json_envelope(json_t *result, json_t *info)
{
	json_t	*e;

	if (result == NULL || (e = json_object()) == NULL)
		goto fail;
	if (json_set(e, "result", result) != 0) {
		result = NULL;
		goto fail2;
	}
	result = NULL;
	if (json_set(e, "success", json_true()) != 0 ||
	    json_set(e, "errors", json_array()) != 0 ||
	    json_set(e, "messages", json_array()) != 0)
		goto fail2;
	if (info != NULL) {
		if (json_set(e, "result_info", info) != 0) {
			info = NULL;
			goto fail2;
		}
	}
	return (e);
 fail2:
	json_decref(e);
 fail:
	json_decref(result);
	json_decref(info);
	return (NULL);
}

int
json_csr(const Keycustody__Csr *csr, char **out)
{
	return (json_dump_out(json_csr_object(csr), out));
}

int
json_reply_csr(const Keycustody__Csr *csr, char **out)
{
	return (json_dump_out(json_envelope(json_csr_object(csr), NULL), out));
}

/* The array of API objects of a page of CSRs. */
static json_t *
json_csr_array(const Keycustody__ListCsrsResponse *l)
{
	json_t	*a, *o;
	size_t	 i;

	if ((a = json_array()) == NULL)
		return (NULL);
	for (i = 0; i < l->n_csrs; i++) {
		if ((o = json_csr_object(l->csrs[i])) == NULL ||
		    json_array_append_new(a, o) != 0) {
			json_decref(a);
			return (NULL);
		}
	}
	return (a);
}

int
json_csr_list(const Keycustody__ListCsrsResponse *l, char **out)
{
	return (json_dump_out(json_csr_array(l), out));
}

int
json_id(const char *id, char **out)
{
	return (json_dump_out(json_pack("{s:s}", "id", id != NULL ? id : ""), out));
}

/* The result_info object of a list page (API.md "Envelope"). */
static json_t *
json_result_info(uint32_t page, uint32_t per_page, size_t count, uint64_t total)
{
	uint64_t	 pages = 0;

	if (per_page > 0)
		pages = (total + per_page - 1) / per_page;
	return (json_pack("{s:I,s:I,s:I,s:I,s:I}",
	    "page", (json_int_t)page,
	    "per_page", (json_int_t)per_page,
	    "count", (json_int_t)count,
	    "total_count", (json_int_t)total,
	    "total_pages", (json_int_t)pages));
}

int
json_reply_csr_list(const Keycustody__ListCsrsResponse *l, char **out)
{
	json_t	*a, *info;

	*out = NULL;
	if ((a = json_csr_array(l)) == NULL)
		return (KC_ERR_NOMEM);
	if ((info = json_result_info(l->page, l->per_page, l->n_csrs,
	    l->total_count)) == NULL) {
		json_decref(a);
		return (KC_ERR_NOMEM);
	}
	return (json_dump_out(json_envelope(a, info), out));
}

/* The ssl object of a custom hostname (API.md; certificate_authority left out). */
static json_t *
json_hostname_ssl_object(const Keycustody__CustomHostnameSsl *ssl)
{
	json_t	*o, *hosts = NULL;
	char	 uploaded[40], expires[40];
	size_t	 i;
	int	 r;

	if ((o = json_object()) == NULL)
		return (NULL);
	proto_time_format(ssl->uploaded_on_us, 1, uploaded, sizeof(uploaded));
	proto_time_format(ssl->expires_on_us, 0, expires, sizeof(expires));
	if ((r = json_set_str(o, "id", ssl->id)) != 0 ||
	    (r = json_set_str(o, "type", "dv")) != 0 ||
	    (r = json_set_str(o, "method", "http")) != 0 ||
	    (r = json_set_str(o, "status", ssl->status)) != 0 ||
	    (r = json_set_str(o, "bundle_method", ssl->bundle_method)) != 0 ||
	    (r = json_set_str(o, "custom_csr_id", ssl->custom_csr_id)) != 0 ||
	    (r = json_set_str(o, "issuer", ssl->issuer)) != 0 ||
	    (r = json_set_str(o, "serial_number", ssl->serial_number)) != 0 ||
	    (r = json_set_str(o, "signature", ssl->signature)) != 0 ||
	    (r = json_set_str(o, "uploaded_on", uploaded)) != 0 ||
	    (r = json_set_str(o, "expires_on", expires)) != 0)
		goto fail;
	if ((hosts = json_array()) == NULL)
		goto fail;
	for (i = 0; i < ssl->n_hosts; i++) {
		if (json_array_append_new(hosts, json_string(ssl->hosts[i])) != 0)
			goto fail;
	}
	r = json_set(o, "hosts", hosts);
	hosts = NULL;
	if (r != 0 ||
	    (r = json_set_str(o, "custom_certificate", ssl->custom_certificate)) != 0)
		goto fail;
	return (o);
 fail:
	json_decref(hosts);
	json_decref(o);
	return (NULL);
}

/* The API object of a custom hostname (no zone_id). */
static json_t *
json_hostname_object(const Keycustody__CustomHostname *hn)
{
	json_t	*o, *ssl;
	char	 created[40];

	if (hn->ssl == NULL || (o = json_object()) == NULL)
		return (NULL);
	proto_time_format(hn->created_at_us, 1, created, sizeof(created));
	if (json_set_str(o, "id", hn->id) != 0 ||
	    json_set_str(o, "hostname", hn->hostname) != 0 ||
	    json_set_str(o, "created_at", created) != 0 ||
	    json_set_str(o, "status", "active") != 0 ||
	    (ssl = json_hostname_ssl_object(hn->ssl)) == NULL ||
	    json_set(o, "ssl", ssl) != 0) {
		json_decref(o);
		return (NULL);
	}
	return (o);
}

int
json_hostname(const Keycustody__CustomHostname *hn, char **out)
{
	return (json_dump_out(json_hostname_object(hn), out));
}

int
json_reply_hostname(const Keycustody__CustomHostname *hn, char **out)
{
	return (json_dump_out(json_envelope(json_hostname_object(hn), NULL), out));
}

/* The array of API objects of a page of custom hostnames. */
static json_t *
json_hostname_array(const Keycustody__ListHostnamesResponse *l)
{
	json_t	*a, *o;
	size_t	 i;

	if ((a = json_array()) == NULL)
		return (NULL);
	for (i = 0; i < l->n_hostnames; i++) {
		if ((o = json_hostname_object(l->hostnames[i])) == NULL ||
		    json_array_append_new(a, o) != 0) {
			json_decref(a);
			return (NULL);
		}
	}
	return (a);
}

int
json_hostname_list(const Keycustody__ListHostnamesResponse *l, char **out)
{
	return (json_dump_out(json_hostname_array(l), out));
}

int
json_reply_hostname_list(const Keycustody__ListHostnamesResponse *l, char **out)
{
	json_t	*a, *info;

	*out = NULL;
	if ((a = json_hostname_array(l)) == NULL)
		return (KC_ERR_NOMEM);
	if ((info = json_result_info(l->page, l->per_page, l->n_hostnames,
	    l->total_count)) == NULL) {
		json_decref(a);
		return (KC_ERR_NOMEM);
	}
	return (json_dump_out(json_envelope(a, info), out));
}

int
json_reply_id(const char *id, char **out)
{
	return (json_dump_out(json_envelope(json_pack("{s:s}", "id", id != NULL ? id : ""),
	    NULL), out));
}

/* A failure envelope around errors (owned). */
static json_t *
json_failure(json_t *errors)
{
	if (errors == NULL)
		return (NULL);
	return (json_pack("{s:n,s:b,s:o,s:[]}", "result", "success", 0,
	    "errors", errors, "messages"));
}

int
json_reply_error(int code, const char *message, int chain_code, const char *chain_message,
    char **out)
{
	json_t	*err;

	if (message == NULL)
		message = "";
	if (chain_code != 0)
		err = json_pack("[{s:i,s:s,s:[{s:i,s:s}]}]", "code", code, "message",
		    message, "error_chain", "code", chain_code, "message",
		    chain_message != NULL ? chain_message : "");
	else
		err = json_pack("[{s:i,s:s}]", "code", code, "message", message);
	return (json_dump_out(json_failure(err), out));
}

int
json_reply_no_route(const char *path, char **out)
{
	json_t	*err, *msg;

	if ((msg = json_sprintf("Could not route to %s, perhaps your object identifier "
	    "is invalid?", path != NULL ? path : "/")) == NULL)
		return (KC_ERR_NOMEM);
	err = json_pack("[{s:i,s:o},{s:i,s:s}]", "code", 7003, "message", msg,
	    "code", 7000, "message", "No route for that URI");
	return (json_dump_out(json_failure(err), out));
}

int
json_reply_daemon_error(const Keycustody__Error *e, int *http_status, char **out)
{
	int	 code;

	*http_status = kc_status_http((int)e->status);
	code = e->code != 0 ? (int)e->code : (*http_status >= 500 ?
	    (*http_status == 503 ? KC_API_UNAVAILABLE : KC_API_INTERNAL) : 1000);
	return (json_reply_error(code, e->message, 0, NULL, out));
}

int
json_health(const Keycustody__HealthResponse *h, int *ok, char **out)
{
	json_t	*o;

	*ok = h != NULL && h->hsm_state != NULL && strcmp(h->hsm_state, "ok") == 0 &&
	    h->store_ok;
	if (*ok)
		o = json_pack("{s:s}", "status", "ok");
	else if (h == NULL)
		o = json_pack("{s:s,s:s}", "status", "unavailable", "daemon", "unreachable");
	else
		o = json_pack("{s:s,s:s,s:b}", "status", "unavailable", "hsm_state",
		    h->hsm_state != NULL ? h->hsm_state : "unknown", "store_ok",
		    (int)h->store_ok);
	return (json_dump_out(o, out));
}

void
json_init(void)
{
	json_object_seed(0);
}
