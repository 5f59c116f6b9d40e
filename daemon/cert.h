/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * cert.h: checking uploaded certificate chains against a custom CSR's key, the trust store
 * and the custom hostname (API.md "custom hostnames"). cert.c is the only code that parses
 * or verifies X509 certificates. Pure apart from reading the trust bundles at start-up.
 */
#ifndef KC_CERT_H
#define KC_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kc_error;

#define CERT_MAX_CHAIN		16	/* certificates in one upload */
#define CERT_FINGERPRINT_LEN	64	/* hex SHA-256 of the leaf's DER */

struct cert_store;	/* trusted roots; shared read-only by every worker thread */

/* What the API reports about an accepted certificate. */
struct cert_info {
	char		 *issuer;	/* issuer O without spaces, else its CN */
	char		 *serial;	/* decimal */
	char		 *signature;	/* "SHA256WithRSA", "ECDSAWithSHA384", ... */
	int64_t		  not_before_us;
	int64_t		  not_after_us;
	char		**hosts;	/* the leaf's DNS subjectAltNames */
	size_t		  nhosts;
	char		 *chain_pem;	/* the validated path as bundle_method makes it
					   (enum cert_bundle), leaf first, normalized PEM */
	size_t		  dropped;	/* uploaded certificates not on the path, not kept */
	char		  fingerprint[CERT_FINGERPRINT_LEN + 1];	/* leaf's SHA-256 */
};

/*
 * ssl.bundle_method: how the stored chain is made from the upload.
 *   UBIQUITOUS (the default) and OPTIMAL complete the chain from the trust store's known
 *     intermediates (the CA certificates of the bundles that are not self-signed): a leaf
 *     uploaded without its intermediate is accepted when the store knows it, and the
 *     stored chain is the leaf and every intermediate on the validated path. UBIQUITOUS
 *     prefers the intermediates uploaded (the chain the customer chose, often the one
 *     cross-signed for old clients), OPTIMAL the store's own (the shortest, newest path).
 *   FORCE takes the chain as uploaded: only the uploaded intermediates are used, and
 *     only the uploaded certificates on the path are stored.
 * The trust anchor is stored only when it was uploaded.
 */
enum cert_bundle {
	CERT_BUNDLE_UBIQUITOUS,
	CERT_BUNDLE_OPTIMAL,
	CERT_BUNDLE_FORCE,
};

/**
 * The bundle method named name ("ubiquitous", "optimal", "force").
 * @retval 0 and *out, or KC_ERR_INVALID for any other name
 */
int	cert_bundle_from_name(const char *name, enum cert_bundle *out);

/**
 * Build the trust store: the system CA bundle when use_system, plus each bundle file.
 * Self-signed certificates become trust anchors; the other CA certificates of a bundle are
 * the known intermediates that complete an uploaded chain (enum cert_bundle).
 * @param cause on failure, which file and why (caller frees)
 * @retval 0, KC_ERR_IO (unreadable file), KC_ERR_INVALID (no certificate in a file)
 */
int	cert_store_new(bool use_system, const char *const *bundles, size_t nbundles,
	    struct cert_store **sp, char **cause);
void	cert_store_free(struct cert_store *s);

/**
 * Check an uploaded chain, in this order, the first failure filling err (status
 * INVALID_ARGUMENT, the code and message of API.md):
 *   1427 empty; 1426 not parseable PEM (or more than CERT_MAX_CHAIN certificates);
 *   1445 no leaf (every certificate is a CA) / 1444 more than one leaf;
 *   1429 the leaf's SubjectPublicKeyInfo differs from spki (the CSR's key);
 *   1447 signature algorithm not SHA-256/384/512 with RSA PKCS#1 v1.5 or ECDSA (leaf and
 *        intermediates);
 *   1441 does not verify against the trust store with the intermediates given (self-signed,
 *        expired, not yet valid at now_us, untrusted), or a key on the validated path
 *        (trust anchor included) is RSA under 2048 bits, EC under 256 bits or neither,
 *        the reason appended;
 *   1446 hostname not covered by the leaf's DNS names (RFC 6125 wildcards, no CN fallback;
 *        a wildcard whose remainder is a public suffix, "*.co.uk", covers nothing).
 * Uploaded certificates that are not on the validated path from the leaf to the trust
 * anchor are dropped (info->dropped counts them): info->chain_pem holds only the path,
 * completed from the known intermediates as bundle asks.
 * @param info on success, caller frees with cert_info_free()
 * @retval 0, KC_ERR_INVALID, KC_ERR_NOMEM
 */
int	cert_check(const struct cert_store *s, const char *pem, size_t pemlen,
	    const uint8_t *spki, size_t spkilen, const char *hostname, enum cert_bundle bundle,
	    int64_t now_us, struct cert_info **info, struct kc_error *err);

void	cert_info_free(struct cert_info *info);

/**
 * Hex SHA-256 of the DER of the first certificate in pem (a stored chain: its leaf).
 * @param out	CERT_FINGERPRINT_LEN + 1 bytes; "" on failure
 * @retval 0, KC_ERR_INVALID (no certificate), KC_ERR_NOMEM
 */
int	cert_pem_fingerprint(const char *pem, char *out);

#endif /* KC_CERT_H */
