/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * answer-hostname.c: the custom hostname handlers: a certificate uploaded for a custom
 * CSR's key is checked (cert.c) and bound to one hostname of the zone. The checks run in the
 * order of API.md's table, so a request with several faults gets the first one's code.
 * Also the zone's fallback origin, checked as a custom origin server is.
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "audit.h"
#include "cert.h"
#include "kc-api.h"
#include "kc-err.h"
#include "kc-proto.h"
#include "kcd.h"
#include "kc-util.h"
#include "log.h"
#include "store.h"
#include "validate.h"
#include "xmalloc.h"

#define BUNDLE_DEFAULT	"ubiquitous"

/* The characters that Cloudflare's hostname messages (1407, 1415) name. */
static const char hostname_specials[] = "~`!@#$%^&*()=+{}[]|\\;:'\",<>/?";

/* Hostname rules: the SAN rules of API.md with this table's codes. */
static int
hostname_check(const char *name, struct kc_error *err)
{
	char	 reason[256] = "";

	if (name == NULL || *name == '\0') {
		kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, 1407,
		    "The custom hostname is required. Check your input and try again.");
		return KC_ERR_INVALID;
	}
	switch (val_dns_name(name, true, reason, sizeof(reason))) {
	case VAL_NAME_OK:
		return 0;
	case VAL_NAME_NONASCII:
		kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, 1408, "Custom hostnames with "
		    "non-ASCII characters are not supported. Check your input and try again.");
		break;
	case VAL_NAME_RESERVED:
		kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, 1409, "Reserved top domain "
		    "custom hostnames, such as 'test', 'example', 'invalid' or 'localhost', "
		    "is not supported. Check your input and try again.");
		break;
	case VAL_NAME_SUFFIX:
		kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, 1410,
		    "Unable to parse custom hostname - %s. Check your input and try again.",
		    reason);
		break;
	case VAL_NAME_EXAMPLE:
		kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, 1411, "Custom hostnames ending "
		    "in example.com, example.net, or example.org are prohibited. Check your "
		    "input and try again.");
		break;
	default:
		kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, 1407, "Invalid custom "
		    "hostname. Custom hostnames have to be smaller than 256 characters in "
		    "length, cannot be IP addresses, cannot contain any special characters "
		    "such as %s and cannot begin or end with a '-' character. Check your "
		    "input and try again.", hostname_specials);
		break;
	}
	return KC_ERR_INVALID;
}

static int
hostname_csr_id_check(const char *id, struct kc_error *err)
{
	if (id == NULL || !val_uuid(id)) {
		kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, 1430,
		    "The custom CSR ID is invalid. Check your input and try again.");
		return KC_ERR_INVALID;
	}
	return 0;
}

static int
hostname_csr_not_found(struct kc_error *err)
{
	kc_error_set(err, KC_STATUS_NOT_FOUND, 1431, "The custom CSR was not found.");
	return KC_ERR_NOT_FOUND;
}

static int
hostname_not_found(struct kc_error *err)
{
	kc_error_set(err, KC_STATUS_NOT_FOUND, KC_API_HOSTNAME_NOT_FOUND,
	    KC_API_HOSTNAME_NOT_FOUND_MSG);
	return KC_ERR_NOT_FOUND;
}

static int
hostname_bundle_check(const char *bm, enum cert_bundle *out, struct kc_error *err)
{
	if (cert_bundle_from_name(bm, out) == 0)
		return 0;
	kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, 1449, "The request input "
	    "`bundle_method` must be one of: ubiquitous, optimal, force.");
	return KC_ERR_INVALID;
}

static const char *const hostname_dcv_methods[] = { "http", "txt", "email" };

/*
 * A custom origin server or SNI: the hostname rules with Cloudflare's custom origin codes
 * (1415 to 1420), folded in place. An empty one is "none" and passes.
 */
static int
hostname_origin_check(char *name, struct kc_error *err)
{
	char	 reason[256] = "";

	if (name == NULL || *name == '\0')
		return 0;
	val_hostname_fold(name);
	if (strncmp(name, "*.", 2) == 0) {
		kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, 1420, "Wildcard custom origin "
		    "hostnames are not supported. Check your input and try again.");
		return KC_ERR_INVALID;
	}
	switch (val_dns_name(name, false, reason, sizeof(reason))) {
	case VAL_NAME_OK:
		return 0;
	case VAL_NAME_NONASCII:
		kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, 1416, "Custom origin hostnames "
		    "with non-ASCII characters are not supported. Check your input and try "
		    "again.");
		break;
	case VAL_NAME_RESERVED:
		kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, 1417, "Reserved top domain "
		    "custom origin hostnames, such as 'test', 'example', 'invalid' or "
		    "'localhost', is not supported. Check your input and try again.");
		break;
	case VAL_NAME_SUFFIX:
		kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, 1418, "Unable to parse custom "
		    "origin hostname - %s. Check your input and try again.", reason);
		break;
	case VAL_NAME_EXAMPLE:
		kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, 1419, "Custom origin hostnames "
		    "ending in example.com, example.net, or example.org are prohibited. Check "
		    "your input and try again.");
		break;
	default:
		kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, 1415, "Invalid custom origin "
		    "hostname. Custom origin hostnames have to be smaller than 256 characters "
		    "in length, cannot be IP addresses, cannot contain any special characters "
		    "such as %s and cannot begin or end with a '-' character. Check your "
		    "input and try again.", hostname_specials);
		break;
	}
	return KC_ERR_INVALID;
}

/* Replace *dst by a copy of src, or by NULL when src is empty. */
static void
hostname_set(char **dst, const char *src)
{
	free(*dst);
	*dst = src != NULL && *src != '\0' ? xstrdup(src) : NULL;
}

/*
 * The optional fields of a create or update, checked in this order and set in h where
 * given (NULL: kept): ssl.method (1432), ssl.type (1433), ssl.certificate_authority
 * (1434), ssl.settings (1434, 1422 ...),
 * custom_metadata (1401), custom_origin_server and custom_origin_sni (1415 to 1420).
 */
static int
hostname_check_opts(struct worker *w, const Keycustody__SslInput *ssl,
    const char *metadata, const char *origin, const char *sni, struct store_hostname *h,
    struct kc_error *err)
{
	char		*o = NULL, *n = NULL;
	unsigned int	 code;
	size_t		 i;
	int		 r;

	if (ssl != NULL && ssl->method != NULL) {
		for (i = 0; i < nitems(hostname_dcv_methods); i++)
			if (strcmp(ssl->method, hostname_dcv_methods[i]) == 0)
				break;
		if (i == nitems(hostname_dcv_methods)) {
			kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, 1432, "The validation "
			    "method is not supported. Only http, email, or txt are accepted. "
			    "Check your input and try again.");
			return KC_ERR_INVALID;
		}
	}
	if (ssl != NULL && ssl->type != NULL && strcmp(ssl->type, "dv") != 0) {
		kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, 1433, "The validation type is "
		    "not supported. Only 'dv' is accepted. Check your input and try again.");
		return KC_ERR_INVALID;
	}
	if (ssl != NULL && ssl->certificate_authority != NULL &&
	    val_certificate_authority(ssl->certificate_authority) == NULL) {
		kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, 1434, "The SSL attribute is "
		    "invalid: ssl.certificate_authority must be " VAL_CAS_TEXT ". Check "
		    "your input and try again.");
		return KC_ERR_INVALID;
	}
	if (ssl != NULL && ssl->settings != NULL) {
		if ((r = store_json_check(w->st, STORE_JSON_SETTINGS, ssl->settings,
		    &code)) != 0)
			return r;
		if (code != 0) {
			kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, code, "The SSL "
			    "attribute is invalid: ssl.settings takes at most %d bytes of "
			    "http2, tls_1_3, early_hints ('on' or 'off'), min_tls_version "
			    "('1.0' to '1.3') and ciphers (strings, not with 1.3). Check "
			    "your input and try again.", STORE_JSON_MAX);
			return KC_ERR_INVALID;
		}
	}
	if (metadata != NULL) {
		if ((r = store_json_check(w->st, STORE_JSON_METADATA, metadata,
		    &code)) != 0)
			return r;
		if (code != 0) {
			kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, code, "Unable to encode "
			    "the Custom Metadata as JSON: it must be an object of string "
			    "values, at most %d bytes. Check your input and try again.",
			    STORE_JSON_MAX);
			return KC_ERR_INVALID;
		}
	}
	o = origin != NULL ? xstrdup(origin) : NULL;
	n = sni != NULL ? xstrdup(sni) : NULL;
	if ((r = hostname_origin_check(o, err)) != 0 ||
	    (r = hostname_origin_check(n, err)) != 0)
		goto out;
	if (ssl != NULL && ssl->method != NULL)
		hostname_set(&h->ssl_method, ssl->method);
	if (ssl != NULL && ssl->type != NULL)
		hostname_set(&h->ssl_type, ssl->type);
	if (ssl != NULL && ssl->has_wildcard)
		h->ssl_wildcard = ssl->wildcard != 0;
	if (ssl != NULL && ssl->settings != NULL)
		hostname_set(&h->ssl_settings, ssl->settings);
	if (ssl != NULL && ssl->certificate_authority != NULL)
		hostname_set(&h->ssl_certificate_authority, ssl->certificate_authority);
	if (metadata != NULL) {
		free(h->custom_metadata);
		h->custom_metadata = xstrdup(metadata);
	}
	if (o != NULL)
		hostname_set(&h->custom_origin_server, o);
	if (n != NULL)
		hostname_set(&h->custom_origin_sni, n);
 out:
	free(o);
	free(n);
	return r;
}

/*
 * The certificate part of a create or update: the CSR (1430, 1431), the certificate
 * (1427, 1434, 1426, 1445/1444, 1429, 1447, 1441, 1446) and the bundle method (1449).
 * Fills the certificate fields of h.
 */
static int
hostname_check_ssl(struct worker *w, const char *zone, const char *hostname,
    const char *pem, bool custom_key, const char *csr_id, const char *bundle_method,
    struct store_hostname *h, struct kc_error *err)
{
	struct store_csr	*csr = NULL;
	struct cert_info	*ci = NULL;
	enum cert_bundle	 bundle;
	int			 r;

	if ((r = hostname_csr_id_check(csr_id, err)) != 0)
		return r;
	if ((r = store_csr_get(w->st, zone, csr_id, &csr)) == KC_ERR_NOT_FOUND)
		return hostname_csr_not_found(err);
	if (r != 0)
		return r;
	if (ans_key_missing(w, csr->key_id)) {
		kc_error_set(err, KC_STATUS_CONFLICT, KC_API_CSR_KEY_MISSING, "The key of the custom CSR is "
		    "missing from the HSM, so no certificate can be bound to it. Delete the "
		    "custom CSR and create a new one.");
		r = KC_ERR_CONFLICT;
		goto out;
	}
	if (pem == NULL || pem[strspn(pem, " \t\r\n")] == '\0') {
		kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, 1427,
		    "The certificate that you uploaded is empty. Check your input and try "
		    "again.");
		r = KC_ERR_INVALID;
		goto out;
	}
	if (custom_key) {
		kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, 1434, "The SSL attribute is "
		    "invalid. A custom_key cannot be uploaded: the key of a custom CSR is "
		    "generated in the HSM and never leaves it.");
		r = KC_ERR_INVALID;
		goto out;
	}
	if ((r = hostname_bundle_check(bundle_method, &bundle, err)) != 0 ||
	    (r = cert_check(w->kcd->certs, pem, strlen(pem), csr->pubkey_der, csr->pubkey_len,
	    hostname, bundle, kc_now_us(), &ci, err)) != 0)
		goto out;
	if (ci->dropped > 0)
		log_info("hostname %s: %zu uploaded certificate(s) not on the path from the leaf "
		    "to the trust anchor dropped", hostname, ci->dropped);

	snprintf(h->csr_id, sizeof(h->csr_id), "%s", csr_id);
	h->bundle_method = xstrdup(bundle_method);
	h->certificate_pem = ci->chain_pem;
	ci->chain_pem = NULL;
	h->certificate_uploaded = xstrdup(pem);
	h->issuer = ci->issuer;
	ci->issuer = NULL;
	h->serial_number = ci->serial;
	ci->serial = NULL;
	h->signature_alg = ci->signature;
	ci->signature = NULL;
	h->hosts = ci->hosts;
	h->nhosts = ci->nhosts;
	ci->hosts = NULL;
	ci->nhosts = 0;
	h->not_before_us = ci->not_before_us;
	h->expires_on_us = ci->not_after_us;
	h->uploaded_on_us = kc_now_us();
 out:
	cert_info_free(ci);
	store_csr_free(csr);
	return r;
}

/*
 * The audit record of a hostname operation: the actor, and what h (NULL: nothing known yet)
 * names: the hostname, the custom CSR and the SHA-256 fingerprint of its certificate.
 */
static int
hostname_audit(struct worker *w, const Keycustody__Request *req, const char *op,
    const char *zone, const char *id, const struct store_hostname *h, int r,
    const struct kc_error *err)
{
	struct audit_actor	 actor;
	struct audit_hostname	 ah;
	char			 fp[CERT_FINGERPRINT_LEN + 1];

	ans_actor(w, req, &actor);
	memset(&ah, 0, sizeof(ah));
	fp[0] = '\0';
	if (h != NULL) {
		ah.hostname = h->hostname;
		ah.csr_id = h->csr_id;
		if (h->certificate_pem != NULL)
			(void)cert_pem_fingerprint(h->certificate_pem, fp);
		ah.cert_sha256 = fp;
	}
	return audit_op_hostname(w->kcd->audit, &actor, op, zone, id, &ah, r, err);
}

/* Free what hostname_check_ssl() and the handlers put in a stack record. */
static void
hostname_clear(struct store_hostname *h)
{
	size_t	 i;

	free(h->hostname);
	free(h->bundle_method);
	free(h->certificate_pem);
	free(h->issuer);
	free(h->serial_number);
	free(h->signature_alg);
	for (i = 0; i < h->nhosts; i++)
		free(h->hosts[i]);
	free(h->hosts);
	free(h->custom_metadata);
	free(h->custom_origin_server);
	free(h->custom_origin_sni);
	free(h->ssl_method);
	free(h->ssl_type);
	free(h->ssl_settings);
	free(h->certificate_uploaded);
	free(h->ssl_certificate_authority);
	memset(h, 0, sizeof(*h));
	h->ssl_wildcard = -1;
}

/* As ans_str() for a field that may be NULL (never set): NULL stays NULL. */
static char *
hostname_opt(char **sp, enum ans_how how)
{
	return *sp == NULL ? NULL : ans_str(sp, how);
}

/*
 * The CustomHostname message of a record, its strings and hosts array copied or moved
 * (ANS_COPY, ANS_MOVE); the caller still frees h.
 */
static Keycustody__CustomHostname *
hostname_msg(struct store_hostname *h, enum ans_how how)
{
	Keycustody__CustomHostname	*m = xcalloc(1, sizeof(*m));
	Keycustody__CustomHostnameSsl	*s = xcalloc(1, sizeof(*s));
	size_t				 i;

	keycustody__custom_hostname__init(m);
	keycustody__custom_hostname_ssl__init(s);
	m->id = xstrdup(h->id);
	m->zone_id = xstrdup(h->zone_id);
	m->hostname = ans_str(&h->hostname, how);
	m->created_at_us = h->created_at_us;
	s->id = xstrdup(h->ssl_id);
	s->status = xstrdup(kc_now_us() < h->expires_on_us ? "active" : "expired");
	s->bundle_method = ans_str(&h->bundle_method, how);
	s->custom_csr_id = xstrdup(h->csr_id);
	s->issuer = ans_str(&h->issuer, how);
	s->serial_number = ans_str(&h->serial_number, how);
	s->signature = ans_str(&h->signature_alg, how);
	s->uploaded_on_us = h->uploaded_on_us;
	s->expires_on_us = h->expires_on_us;
	s->not_before_us = h->not_before_us;
	s->custom_certificate = ans_str(&h->certificate_uploaded, how);
	s->certificate_chain = ans_str(&h->certificate_pem, how);
	s->certificate_authority = hostname_opt(&h->ssl_certificate_authority, how);
	if (h->nhosts > 0 && how == ANS_MOVE) {
		s->hosts = h->hosts;
		s->n_hosts = h->nhosts;
		h->hosts = NULL;
		h->nhosts = 0;
	} else if (h->nhosts > 0) {
		s->hosts = xcalloc(h->nhosts, sizeof(*s->hosts));
		for (i = 0; i < h->nhosts; i++)
			s->hosts[i] = xstrdup(h->hosts[i]);
		s->n_hosts = h->nhosts;
	}
	s->method = hostname_opt(&h->ssl_method, how);
	s->type = hostname_opt(&h->ssl_type, how);
	s->settings = hostname_opt(&h->ssl_settings, how);
	if (h->ssl_wildcard >= 0) {
		s->has_wildcard = 1;
		s->wildcard = h->ssl_wildcard != 0;
	}
	m->custom_metadata = hostname_opt(&h->custom_metadata, how);
	m->custom_origin_server = hostname_opt(&h->custom_origin_server, how);
	m->custom_origin_sni = hostname_opt(&h->custom_origin_sni, how);
	m->ssl = s;
	return m;
}

int
answer_create_hostname(struct worker *w, const Keycustody__Request *req,
    Keycustody__Response *resp, struct kc_error *err)
{
	const Keycustody__CreateHostnameRequest	*m = req->create_hostname;
	const Keycustody__SslInput		*ssl = m->ssl;
	struct store_hostname			 h;
	const char				*bm;
	char					*name = NULL;
	int					 r;

	memset(&h, 0, sizeof(h));
	h.ssl_wildcard = -1;
	if ((r = ans_check_zone(m->zone_id, err)) != 0)
		return r;
	/* Checked, matched, stored and answered in the folded form (RFC 4343). */
	name = m->hostname != NULL ? xstrdup(m->hostname) : NULL;
	val_hostname_fold(name);
	if ((r = hostname_check(name, err)) != 0)
		goto out;
	bm = ssl != NULL && ssl->bundle_method != NULL ? ssl->bundle_method : BUNDLE_DEFAULT;
	if ((r = hostname_check_ssl(w, m->zone_id, name,
	    ssl != NULL ? ssl->custom_certificate : NULL,
	    ssl != NULL && ssl->has_custom_key_given && ssl->custom_key_given,
	    ssl != NULL ? ssl->custom_csr_id : NULL, bm, &h, err)) != 0 ||
	    (r = hostname_check_opts(w, ssl, m->custom_metadata, m->custom_origin_server,
	    m->custom_origin_sni, &h, err)) != 0)
		goto out;
	if ((r = kc_uuid(h.id)) != 0 || (r = kc_uuid(h.ssl_id)) != 0)
		goto out;
	snprintf(h.zone_id, sizeof(h.zone_id), "%s", m->zone_id);
	h.hostname = name;
	name = NULL;
	h.created_at_us = h.uploaded_on_us;
	if ((r = hostname_audit(w, req, "create_hostname.begin", m->zone_id, h.id, &h, 0,
	    NULL)) != 0)
		goto out;
	r = store_hostname_insert(w->st, &h);
	if (r == KC_ERR_CONFLICT)
		kc_error_set(err, KC_STATUS_CONFLICT, 1406, "Duplicate custom hostname found.");
	else if (r == KC_ERR_NOT_FOUND)
		(void)hostname_csr_not_found(err);
	if (r != 0)
		goto out;
	resp->body_case = KEYCUSTODY__RESPONSE__BODY_HOSTNAME;
	/* A copy: the audit record below goes by h.hostname. */
	resp->hostname = hostname_msg(&h, ANS_COPY);
 out:
	if (h.hostname != NULL)
		(void)hostname_audit(w, req, "create_hostname", m->zone_id, h.id, &h, r,
		    err);
	hostname_clear(&h);
	free(name);
	return r;
}

int
answer_undo_create_hostname(struct worker *w, const Keycustody__Request *req,
    const Keycustody__Response *resp)
{
	return store_hostname_delete(w->st, resp->hostname->zone_id, resp->hostname->id);
}

/*
 * A PATCH changes what it sends and only that (API.md): a certificate (ssl.custom_certificate
 * or ssl.custom_csr_id) goes through every check of a create; ssl.bundle_method alone
 * rebuilds the chain from the certificate as uploaded, with the same checks; the optional fields are checked and replace what is stored. An empty
 * body changes nothing and answers the object.
 */
int
answer_update_hostname(struct worker *w, const Keycustody__Request *req,
    Keycustody__Response *resp, struct kc_error *err)
{
	const Keycustody__UpdateHostnameRequest	*m = req->update_hostname;
	const Keycustody__SslInput		*ssl = m->ssl;
	struct store_hostname			*old = NULL, h;
	const char				*csr_id, *bm;
	bool					 cert;
	int					 r;

	memset(&h, 0, sizeof(h));
	h.ssl_wildcard = -1;
	if ((r = ans_check_zone(m->zone_id, err)) != 0)
		return r;
	if (m->id == NULL || !val_uuid(m->id))
		return hostname_not_found(err);
	if ((r = store_hostname_get(w->st, m->zone_id, m->id, &old)) == KC_ERR_NOT_FOUND)
		return hostname_not_found(err);
	if (r != 0)
		return r;
	cert = ssl != NULL && (ssl->custom_certificate != NULL ||
	    ssl->custom_csr_id != NULL);
	csr_id = ssl != NULL && ssl->custom_csr_id != NULL ? ssl->custom_csr_id : old->csr_id;
	bm = ssl != NULL && ssl->bundle_method != NULL ? ssl->bundle_method :
	    old->bundle_method;
	if (ssl != NULL && ssl->has_custom_key_given && ssl->custom_key_given && !cert) {
		kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, 1434, "The SSL attribute is "
		    "invalid. A custom_key cannot be uploaded: the key of a custom CSR is "
		    "generated in the HSM and never leaves it.");
		r = KC_ERR_INVALID;
		goto out;
	}
	if (cert) {
		if ((r = hostname_check_ssl(w, m->zone_id, old->hostname,
		    ssl->custom_certificate, ssl->has_custom_key_given &&
		    ssl->custom_key_given, csr_id, bm, &h, err)) != 0)
			goto out;
	} else if (ssl != NULL && ssl->bundle_method != NULL) {
		/*
		 * A method alone: the chain rebuilt from the certificate as uploaded, with
		 * every check of an upload (it may have expired, or the trust store moved
		 * on); nothing was uploaded, so uploaded_on stays.
		 */
		if ((r = hostname_check_ssl(w, m->zone_id, old->hostname,
		    old->certificate_uploaded, false, old->csr_id, bm, &h, err)) != 0)
			goto out;
		h.uploaded_on_us = old->uploaded_on_us;
	} else {
		/* The certificate as stored. */
		memcpy(h.csr_id, old->csr_id, sizeof(h.csr_id));
		h.bundle_method = xstrdup(bm);
		h.certificate_pem = old->certificate_pem;
		old->certificate_pem = NULL;
		h.certificate_uploaded = old->certificate_uploaded;
		old->certificate_uploaded = NULL;
		h.issuer = old->issuer;
		old->issuer = NULL;
		h.serial_number = old->serial_number;
		old->serial_number = NULL;
		h.signature_alg = old->signature_alg;
		old->signature_alg = NULL;
		h.hosts = old->hosts;
		h.nhosts = old->nhosts;
		old->hosts = NULL;
		old->nhosts = 0;
		h.not_before_us = old->not_before_us;
		h.expires_on_us = old->expires_on_us;
		h.uploaded_on_us = old->uploaded_on_us;
	}
	/* The optional fields as stored, then what the PATCH sends over them. */
	h.custom_metadata = old->custom_metadata;
	old->custom_metadata = NULL;
	h.custom_origin_server = old->custom_origin_server;
	old->custom_origin_server = NULL;
	h.custom_origin_sni = old->custom_origin_sni;
	old->custom_origin_sni = NULL;
	h.ssl_method = old->ssl_method;
	old->ssl_method = NULL;
	h.ssl_type = old->ssl_type;
	old->ssl_type = NULL;
	h.ssl_settings = old->ssl_settings;
	old->ssl_settings = NULL;
	h.ssl_certificate_authority = old->ssl_certificate_authority;
	old->ssl_certificate_authority = NULL;
	h.ssl_wildcard = old->ssl_wildcard;
	if ((r = hostname_check_opts(w, ssl, m->custom_metadata, m->custom_origin_server,
	    m->custom_origin_sni, &h, err)) != 0)
		goto out;
	/* The record keeps its identity; the certificate pack keeps its id too. */
	memcpy(h.id, old->id, sizeof(h.id));
	memcpy(h.zone_id, old->zone_id, sizeof(h.zone_id));
	memcpy(h.ssl_id, old->ssl_id, sizeof(h.ssl_id));
	h.hostname = xstrdup(old->hostname);
	h.created_at_us = old->created_at_us;
	if ((r = hostname_audit(w, req, "update_hostname.begin", m->zone_id, h.id, &h, 0,
	    NULL)) != 0)
		goto out;
	if ((r = store_hostname_update(w->st, &h)) == KC_ERR_NOT_FOUND) {
		/* The hostname or the CSR went away meanwhile. */
		(void)hostname_csr_not_found(err);
		goto out;
	}
	if (r != 0)
		goto out;
	resp->body_case = KEYCUSTODY__RESPONSE__BODY_HOSTNAME;
	resp->hostname = hostname_msg(&h, ANS_MOVE);
 out:
	(void)hostname_audit(w, req, "update_hostname", m->zone_id, m->id,
	    h.hostname != NULL ? &h : old, r, err);
	store_hostname_free(old);
	hostname_clear(&h);
	return r;
}

int
answer_get_hostname(struct worker *w, const Keycustody__Request *req,
    Keycustody__Response *resp, struct kc_error *err)
{
	const Keycustody__GetHostnameRequest	*m = req->get_hostname;
	struct store_hostname			*h = NULL;
	int					 r;

	if ((r = ans_check_zone(m->zone_id, err)) != 0)
		return r;
	if (m->id == NULL || !val_uuid(m->id))
		return hostname_not_found(err);
	if ((r = store_hostname_get(w->st, m->zone_id, m->id, &h)) == KC_ERR_NOT_FOUND)
		return hostname_not_found(err);
	if (r != 0)
		return r;
	resp->body_case = KEYCUSTODY__RESPONSE__BODY_HOSTNAME;
	resp->hostname = hostname_msg(h, ANS_MOVE);
	store_hostname_free(h);
	return 0;
}

int
answer_list_hostnames(struct worker *w, const Keycustody__Request *req,
    Keycustody__Response *resp, struct kc_error *err)
{
	const Keycustody__ListHostnamesRequest	*m = req->list_hostnames;
	Keycustody__ListHostnamesResponse	*l;
	struct val_host_query			 q;
	struct val_host_filter			 vf;
	struct store_hostname			**v = NULL;
	size_t					 n = 0, i;
	uint64_t				 total = 0;
	unsigned int				 page, per_page;
	int					 r;

	memset(&q, 0, sizeof(q));
	if ((r = ans_check_zone(m->zone_id, err)) != 0 ||
	    (r = ans_pagination(m->has_page, m->page, m->has_per_page, m->per_page, &page,
	    &per_page, err)) != 0)
		return r;
	q.id = m->id;
	q.hostname = m->hostname;
	q.hostname_exact = m->hostname_exact;
	q.hostname_contain = m->hostname_contain;
	q.hostname_starts_with = m->hostname_starts_with;
	q.custom_csr_id = m->custom_csr_id;
	q.ssl = m->ssl;
	q.ssl_status = m->ssl_status;
	q.wildcard = m->wildcard;
	q.order = m->order;
	q.hostname_status = m->hostname_status;
	q.certificate_authority = m->certificate_authority;
	q.custom_origin_server = m->custom_origin_server;
	if ((r = val_hostname_filter(&q, &vf, err)) != 0)
		return r;
	vf.f.descending = m->has_descending && m->descending;
	vf.f.now_us = kc_now_us();
	if ((r = store_hostname_find(w->st, m->zone_id, &vf.f, page, per_page, &v, &n,
	    &total)) != 0)
		return r;
	l = xcalloc(1, sizeof(*l));
	keycustody__list_hostnames_response__init(l);
	l->page = page;
	l->per_page = per_page;
	l->total_count = total;
	if (n > 0) {
		l->hostnames = xcalloc(n, sizeof(*l->hostnames));
		for (i = 0; i < n; i++)
			l->hostnames[i] = hostname_msg(v[i], ANS_MOVE);
		l->n_hostnames = n;
	}
	store_hostname_free_array(v, n);
	resp->body_case = KEYCUSTODY__RESPONSE__BODY_LIST_HOSTNAMES;
	resp->list_hostnames = l;
	return 0;
}

int
answer_delete_hostname(struct worker *w, const Keycustody__Request *req,
    Keycustody__Response *resp, struct kc_error *err)
{
	const Keycustody__DeleteHostnameRequest	*m = req->delete_hostname;
	Keycustody__DeleteHostnameResponse	*d;
	struct store_hostname			*old = NULL;
	int					 r;

	if ((r = ans_check_zone(m->zone_id, err)) != 0)
		return r;
	if (m->id == NULL || !val_uuid(m->id))
		return hostname_not_found(err);
	/* What is deleted, for the audit record; a missing one is answered below. */
	if ((r = store_hostname_get(w->st, m->zone_id, m->id, &old)) != 0 &&
	    r != KC_ERR_NOT_FOUND)
		return r;
	if ((r = hostname_audit(w, req, "delete_hostname.begin", m->zone_id, m->id, old, 0,
	    NULL)) != 0)
		goto out;
	if ((r = store_hostname_delete(w->st, m->zone_id, m->id)) == KC_ERR_NOT_FOUND)
		(void)hostname_not_found(err);
	(void)hostname_audit(w, req, "delete_hostname", m->zone_id, m->id, old, r, err);
 out:
	store_hostname_free(old);
	if (r != 0)
		return r;
	d = xcalloc(1, sizeof(*d));
	keycustody__delete_hostname_response__init(d);
	d->id = xstrdup(m->id);
	resp->body_case = KEYCUSTODY__RESPONSE__BODY_DELETE_HOSTNAME;
	resp->delete_hostname = d;
	return 0;
}

/*
 * The zone's fallback origin (API.md "fallback_origin"): one hostname per zone, checked as
 * a custom origin server is (1415 to 1420) and stored folded. Its status is "active" once
 * stored; nothing here deploys it, so no other status is ever true.
 */

/* The FallbackOrigin message of a row; removed: the reply of a delete, without status. */
static Keycustody__FallbackOrigin *
fallback_msg(const struct store_fallback *f, int removed)
{
	Keycustody__FallbackOrigin	*m = xcalloc(1, sizeof(*m));

	keycustody__fallback_origin__init(m);
	m->origin = xstrdup(f->origin);
	m->status = removed ? NULL : xstrdup("active");
	m->created_at_us = f->created_at_us;
	m->updated_at_us = f->updated_at_us;
	return m;
}

/* The audit record of a fallback origin write: the actor and the origin (NULL: none). */
static int
fallback_audit(struct worker *w, const Keycustody__Request *req, const char *op,
    const char *zone, const char *origin, int r, const struct kc_error *err)
{
	struct audit_actor	 actor;
	struct audit_hostname	 ah;

	ans_actor(w, req, &actor);
	memset(&ah, 0, sizeof(ah));
	ah.hostname = origin;
	return audit_op_hostname(w->kcd->audit, &actor, op, zone, NULL, &ah, r, err);
}

static int
fallback_not_found(struct kc_error *err)
{
	kc_error_set(err, KC_STATUS_NOT_FOUND, KC_API_FALLBACK_NOT_FOUND,
	    KC_API_FALLBACK_NOT_FOUND_MSG);
	return KC_ERR_NOT_FOUND;
}

int
answer_get_fallback_origin(struct worker *w, const Keycustody__Request *req,
    Keycustody__Response *resp, struct kc_error *err)
{
	const Keycustody__GetFallbackOriginRequest	*m = req->get_fallback_origin;
	struct store_fallback				 f;
	int						 r;

	if ((r = ans_check_zone(m->zone_id, err)) != 0)
		return r;
	if ((r = store_fallback_get(w->st, m->zone_id, &f)) == KC_ERR_NOT_FOUND)
		return fallback_not_found(err);
	if (r != 0)
		return r;
	resp->body_case = KEYCUSTODY__RESPONSE__BODY_FALLBACK_ORIGIN;
	resp->fallback_origin = fallback_msg(&f, 0);
	return 0;
}

int
answer_update_fallback_origin(struct worker *w, const Keycustody__Request *req,
    Keycustody__Response *resp, struct kc_error *err)
{
	const Keycustody__UpdateFallbackOriginRequest	*m = req->update_fallback_origin;
	struct store_fallback				 f;
	char						*origin = NULL;
	int						 r;

	if ((r = ans_check_zone(m->zone_id, err)) != 0)
		return r;
	/* A copy, folded in place; none or "" is no hostname at all. */
	origin = xstrdup(m->origin != NULL ? m->origin : "");
	if (*origin == '\0') {
		kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, 1415, "Invalid fallback "
		    "origin: the origin hostname is required. Check your input and try "
		    "again.");
		r = KC_ERR_INVALID;
		goto out;
	}
	if ((r = hostname_origin_check(origin, err)) != 0)
		goto out;
	if ((r = fallback_audit(w, req, "update_fallback_origin.begin", m->zone_id,
	    origin, 0, NULL)) != 0)
		goto out;
	r = store_fallback_put(w->st, m->zone_id, origin, kc_now_us(), &f);
	(void)fallback_audit(w, req, "update_fallback_origin", m->zone_id, origin, r, err);
	if (r != 0)
		goto out;
	resp->body_case = KEYCUSTODY__RESPONSE__BODY_FALLBACK_ORIGIN;
	resp->fallback_origin = fallback_msg(&f, 0);
 out:
	free(origin);
	return r;
}

int
answer_delete_fallback_origin(struct worker *w, const Keycustody__Request *req,
    Keycustody__Response *resp, struct kc_error *err)
{
	const Keycustody__DeleteFallbackOriginRequest	*m = req->delete_fallback_origin;
	struct store_fallback				 f;
	int						 r;

	if ((r = ans_check_zone(m->zone_id, err)) != 0)
		return r;
	/* What is removed, for the audit record; none is answered below. */
	if ((r = store_fallback_get(w->st, m->zone_id, &f)) != 0 && r != KC_ERR_NOT_FOUND)
		return r;
	if ((r = fallback_audit(w, req, "delete_fallback_origin.begin", m->zone_id,
	    r == 0 ? f.origin : NULL, 0, NULL)) != 0)
		return r;
	if ((r = store_fallback_delete(w->st, m->zone_id, &f)) == KC_ERR_NOT_FOUND)
		(void)fallback_not_found(err);
	(void)fallback_audit(w, req, "delete_fallback_origin", m->zone_id,
	    r == 0 ? f.origin : NULL, r, err);
	if (r != 0)
		return r;
	resp->body_case = KEYCUSTODY__RESPONSE__BODY_FALLBACK_ORIGIN;
	resp->fallback_origin = fallback_msg(&f, 1);
	return 0;
}
