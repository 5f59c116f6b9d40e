/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * fuzz-cert.c: the certificate chain parser and validator (daemon/cert.c cert_check): the
 * input is an uploaded chain in PEM, checked against a trust store holding the fixed root
 * of fuzz.h, the fixed key's SubjectPublicKeyInfo and one of four hostnames, chosen by the
 * input's length (the fixed leaves cover three). An accepted chain must be accepted again
 * in the normalized form that cert.c stores.
 */
#include "config.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "fuzz.h"
#include "log.h"
#include "kc-err.h"

#define CERT_NOW_US	1798761600000000LL	/* 2027-01-01T00:00:00Z */

static const char *const cert_hosts[] = {
	FUZZ_HOSTNAME, "www.keycustody-fuzz.com", "keycustody-fuzz.com", "Api.Keycustody-Fuzz.com"
};

static struct cert_store	*cert_store;
static int			 cert_verbose;	/* $KC_FUZZ_VERBOSE */

static __dead void
cert_fail(const char *what, const char *cause)
{
	fprintf(stderr, "fuzz-cert: %s: %s\n", what, cause != NULL ? cause : "failed");
	abort();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char	*bundles[1];
	char		 ca[PATH_MAX], *cause = NULL;

	fuzz_log_init();
	cert_verbose = getenv("KC_FUZZ_VERBOSE") != NULL;
	fuzz_path(ca, sizeof(ca), "ca.pem");
	fuzz_write_file(ca, fuzz_ca_pem, strlen(fuzz_ca_pem));
	bundles[0] = ca;
	if (cert_store_new(false, bundles, 1, &cert_store, &cause) != 0)
		cert_fail("cert_store_new", cause);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cert_info	*ci = NULL, *again = NULL;
	struct kc_error		 err;
	const uint8_t		*spki;
	const char		*host = cert_hosts[size % 4];
	size_t			 spkilen;
	int			 r;

	spki = fuzz_spki(&spkilen);
	memset(&err, 0, sizeof(err));
	r = cert_check(cert_store, (const char *)data, size, spki, spkilen, host,
	    CERT_BUNDLE_UBIQUITOUS, CERT_NOW_US, &ci, &err);
	if (cert_verbose)
		fprintf(stderr, "fuzz-cert: %s: %d %s\n", host, err.code, err.message);
	if (r != 0) {
		if (ci != NULL)
			cert_fail("cert_check", "info on failure");
		if (r == KC_ERR_INVALID && (err.status != KC_STATUS_INVALID_ARGUMENT ||
		    err.code < 1400 || err.code > 1499))
			cert_fail("cert_check", "refusal without an API code");
		return 0;
	}
	if (ci == NULL || ci->chain_pem == NULL || ci->serial == NULL ||
	    ci->signature == NULL || ci->issuer == NULL || ci->nhosts == 0 ||
	    ci->not_before_us > ci->not_after_us)
		cert_fail("cert_check", "incomplete info");
	memset(&err, 0, sizeof(err));
	if (cert_check(cert_store, ci->chain_pem, strlen(ci->chain_pem), spki, spkilen, host,
	    CERT_BUNDLE_UBIQUITOUS, CERT_NOW_US, &again, &err) != 0)
		cert_fail("normalized chain refused", err.message);
	if (strcmp(again->chain_pem, ci->chain_pem) != 0 ||
	    strcmp(again->serial, ci->serial) != 0)
		cert_fail("normalized chain", "differs when checked again");
	cert_info_free(again);
	cert_info_free(ci);
	return 0;
}
