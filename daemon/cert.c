/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * cert.c: the trust store and the checks of an uploaded certificate chain (PEM framing,
 * leaf, key, signature algorithms, path validation, key sizes on the path, hostname). The
 * only X509 parser. libpsl (shared with validate.c) decides which wildcards match nothing.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <libpsl.h>

#include "kc-err.h"
#include "kc-util.h"
#include "cert.h"

/* The system CA bundle on Debian; X509_get_default_cert_file() when it is absent. */
#define CERT_SYSTEM_BUNDLE	"/etc/ssl/certs/ca-certificates.crt"

#define CERT_MIN_RSA_BITS	2048	/* every key on the path, trust anchor included */
#define CERT_MIN_EC_BITS	256

/* Cloudflare's texts (1427, 1426, 1445, 1444, 1429, 1441), with their endings. */
#define CERT_MSG_END		" Check your input and try again."
#define CERT_MSG_EMPTY		"The certificate that you uploaded is empty." CERT_MSG_END
#define CERT_MSG_PARSE		"The certificate that you uploaded cannot be parsed." \
				    CERT_MSG_END
#define CERT_MSG_NO_LEAF	"The certificate chain that you uploaded has no leaf " \
				    "certificates." CERT_MSG_END
#define CERT_MSG_TWO_LEAVES	"The certificate chain that you uploaded has multiple " \
				    "leaf certificates." CERT_MSG_END
#define CERT_MSG_KEY		"The private key you uploaded does not match the " \
				    "certificate." CERT_MSG_END
/* Followed by OpenSSL's reason in parentheses, then CERT_MSG_END. */
#define CERT_MSG_BUNDLE		"The certificate that you uploaded is having trouble " \
				    "bundling against the public trust store."

struct cert_store {
	X509_STORE	*store;		/* the trust anchors (self-signed) */
	STACK_OF(X509)	*known;		/* the bundles' other CA certificates */
};

static const char *const cert_bundle_names[] = {
	[CERT_BUNDLE_UBIQUITOUS] = "ubiquitous",
	[CERT_BUNDLE_OPTIMAL] = "optimal",
	[CERT_BUNDLE_FORCE] = "force",
};

static int	cert_is_ca(X509 *);

int
cert_bundle_from_name(const char *name, enum cert_bundle *out)
{
	size_t	 i;

	for (i = 0; name != NULL && i < nitems(cert_bundle_names); i++)
		if (strcmp(name, cert_bundle_names[i]) == 0) {
			*out = (enum cert_bundle)i;
			return 0;
		}
	return KC_ERR_INVALID;
}

/* The accepted signature algorithms and the names the API reports them by. */
static const struct cert_sigalg {
	int		 nid;
	const char	*name;
} cert_sigalgs[] = {
	{ NID_sha256WithRSAEncryption,	"SHA256WithRSA" },
	{ NID_sha384WithRSAEncryption,	"SHA384WithRSA" },
	{ NID_sha512WithRSAEncryption,	"SHA512WithRSA" },
	{ NID_ecdsa_with_SHA256,	"ECDSAWithSHA256" },
	{ NID_ecdsa_with_SHA384,	"ECDSAWithSHA384" },
	{ NID_ecdsa_with_SHA512,	"ECDSAWithSHA512" },
};

static int	cert_reject(struct kc_error *, int, const char *, ...)
		    __attribute__((__format__(__printf__, 3, 4)));

/* Fill err with an INVALID_ARGUMENT answer carrying an API code; returns KC_ERR_INVALID. */
static int
cert_reject(struct kc_error *err, int code, const char *fmt, ...)
{
	va_list	ap;
	char	buf[sizeof(err->message)];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, code, "%s", buf);
	return KC_ERR_INVALID;
}

/*
 * Drain this thread's OpenSSL error queue; true when an allocation failure was among the
 * errors, so that out-of-memory is not reported as bad input.
 */
static int
cert_ossl_nomem(void)
{
	unsigned long	e;
	int		nomem = 0;

	while ((e = ERR_get_error()) != 0)
		if (ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE)
			nomem = 1;
	return nomem;
}

/* The answer for an unexpected OpenSSL failure: NOMEM when it says so, else INTERNAL. */
static int
cert_ossl_fail(struct kc_error *err)
{
	int	r;

	r = cert_ossl_nomem() ? KC_ERR_NOMEM : KC_ERR_INTERNAL;
	kc_error_from(err, r);
	return r;
}

/*
 * Add every certificate of one PEM bundle file to the store: a self-signed one as a trust
 * anchor, another CA certificate as a known intermediate (a leaf in a bundle is neither,
 * and is ignored); at least one certificate is required.
 */
static int
cert_store_load(struct cert_store *s, const char *path, char **cause)
{
	STACK_OF(X509_INFO)	*infos = NULL;
	X509_INFO		*xi;
	BIO			*bio = NULL;
	FILE			*fp;
	int			 i, n = 0, r;

	/* Open with stdio first so that an unreadable file is told by errno. */
	if ((fp = fopen(path, "r")) == NULL) {
		kc_cause(cause, "%s: %s", path, strerror(errno));
		return KC_ERR_IO;
	}
	if ((bio = BIO_new_fp(fp, BIO_CLOSE)) == NULL) {
		fclose(fp);
		r = KC_ERR_NOMEM;
		kc_cause(cause, "%s: out of memory", path);
		goto out;
	}
	ERR_clear_error();
	if ((infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL)) == NULL) {
		if (cert_ossl_nomem()) {
			r = KC_ERR_NOMEM;
			kc_cause(cause, "%s: out of memory", path);
		} else {
			r = KC_ERR_INVALID;
			kc_cause(cause, "%s: not a PEM certificate bundle", path);
		}
		goto out;
	}
	for (i = 0; i < sk_X509_INFO_num(infos); i++) {
		xi = sk_X509_INFO_value(infos, i);
		if (xi->x509 == NULL)
			continue;
		if ((X509_get_extension_flags(xi->x509) & EXFLAG_SS) == 0) {
			if (cert_is_ca(xi->x509) && (!sk_X509_push(s->known, xi->x509) ||
			    !X509_up_ref(xi->x509))) {
				r = KC_ERR_NOMEM;
				kc_cause(cause, "%s: out of memory", path);
				goto out;
			}
		} else if (!X509_STORE_add_cert(s->store, xi->x509)) {
			r = cert_ossl_nomem() ? KC_ERR_NOMEM : KC_ERR_INVALID;
			kc_cause(cause, "%s: cannot add certificate %d to the trust store",
			    path, n + 1);
			goto out;
		}
		n++;
	}
	if (n == 0) {
		r = KC_ERR_INVALID;
		kc_cause(cause, "%s: no certificate in the file", path);
		goto out;
	}
	r = 0;
 out:
	ERR_clear_error();
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	BIO_free(bio);
	return r;
}

/*
 * Build the trust store. Bundles are read here rather than with X509_STORE_load_file() so
 * that an unreadable file (KC_ERR_IO) and a file without certificates (KC_ERR_INVALID) are
 * told apart; CRLs in a bundle are ignored (revocation is not checked).
 */
int
cert_store_new(bool use_system, const char *const *bundles, size_t nbundles,
    struct cert_store **sp, char **cause)
{
	struct cert_store	*s;
	const char		*sys;
	size_t			 i;
	int			 r;

	*sp = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		kc_cause(cause, "out of memory");
		return KC_ERR_NOMEM;
	}
	if ((s->store = X509_STORE_new()) == NULL || (s->known = sk_X509_new_null()) == NULL) {
		r = KC_ERR_NOMEM;
		kc_cause(cause, "out of memory");
		goto out;
	}
	if (use_system) {
		sys = CERT_SYSTEM_BUNDLE;
		if (access(sys, R_OK) == -1)
			sys = X509_get_default_cert_file();
		if ((r = cert_store_load(s, sys, cause)) != 0)
			goto out;
	}
	for (i = 0; i < nbundles; i++) {
		if (bundles[i] == NULL) {
			r = KC_ERR_INVALID;
			kc_cause(cause, "trust bundle %zu has no file name", i);
			goto out;
		}
		if ((r = cert_store_load(s, bundles[i], cause)) != 0)
			goto out;
	}
	*sp = s;
	s = NULL;
	r = 0;
 out:
	cert_store_free(s);
	return r;
}

void
cert_store_free(struct cert_store *s)
{
	if (s == NULL)
		return;
	X509_STORE_free(s->store);
	sk_X509_pop_free(s->known, X509_free);
	free(s);
}

void
cert_info_free(struct cert_info *info)
{
	size_t	i;

	if (info == NULL)
		return;
	free(info->issuer);
	free(info->serial);
	free(info->signature);
	for (i = 0; i < info->nhosts; i++)
		free(info->hosts[i]);
	free(info->hosts);
	free(info->chain_pem);
	free(info);
}

/* Hex SHA-256 of x's DER into out (CERT_FINGERPRINT_LEN + 1 bytes). */
static int
cert_fingerprint_x509(X509 *x, char *out)
{
	unsigned char	 md[EVP_MAX_MD_SIZE];
	unsigned int	 mdlen = 0;

	if (!X509_digest(x, EVP_sha256(), md, &mdlen) || mdlen * 2 != CERT_FINGERPRINT_LEN) {
		ERR_clear_error();
		return KC_ERR_NOMEM;
	}
	kc_hex(md, mdlen, out);
	return 0;
}

int
cert_pem_fingerprint(const char *pem, char *out)
{
	BIO	*bio;
	X509	*x = NULL;
	int	 r = KC_ERR_INVALID;

	out[0] = '\0';
	if (pem == NULL)
		return KC_ERR_INVALID;
	if ((bio = BIO_new_mem_buf(pem, -1)) == NULL)
		return KC_ERR_NOMEM;
	if ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		r = cert_fingerprint_x509(x, out);
	ERR_clear_error();
	X509_free(x);
	BIO_free(bio);
	return r;
}

/* ASCII whitespace between and around PEM blocks. */
static int
cert_isblank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* How many of the len bytes at p are leading whitespace. */
static size_t
cert_blanks(const char *p, size_t len)
{
	size_t	i;

	for (i = 0; i < len && cert_isblank(p[i]); i++)
		;
	return i;
}

/*
 * True when p starts with a line that is exactly "-----BEGIN CERTIFICATE-----". Any other
 * line would be skipped by PEM_read_bio(), which looks for the next BEGIN line.
 */
static int
cert_begin_line(const char *p, size_t len)
{
	static const char	begin[] = "-----BEGIN " PEM_STRING_X509 "-----";
	size_t			n = sizeof(begin) - 1;

	if (len < n || memcmp(p, begin, n) != 0)
		return 0;
	if (len > n && p[n] == '\r')
		n++;
	return len == n || p[n] == '\n';
}

/*
 * Split the upload into certificates. PEM_read_bio_X509() would skip text between blocks
 * and blocks of other types (a PRIVATE KEY), so the framing is checked here: only
 * whitespace around "CERTIFICATE" blocks, no encapsulated headers (encryption), and each
 * block exactly one DER certificate. Returns 0, KC_ERR_INVALID (1426) or KC_ERR_NOMEM.
 */
static int
cert_parse(const char *pem, size_t pemlen, STACK_OF(X509) **chainp, struct kc_error *err)
{
	STACK_OF(X509)		*chain = NULL;
	X509			*x = NULL;
	BIO			*bio = NULL;
	char			*name = NULL, *header = NULL, *rest, skip[256];
	unsigned char		*data = NULL;
	const unsigned char	*p;
	long			 len, restlen;
	size_t			 ws;
	int			 n, r;

	*chainp = NULL;
	if (pemlen > INT_MAX) {
		r = cert_reject(err, 1426, CERT_MSG_PARSE);
		goto out;
	}
	if ((bio = BIO_new_mem_buf(pem, (int)pemlen)) == NULL ||
	    (chain = sk_X509_new_null()) == NULL) {
		r = cert_ossl_fail(err);
		goto out;
	}
	for (;;) {
		/* A read-only memory BIO reports what is left to read. */
		if ((restlen = BIO_get_mem_data(bio, &rest)) <= 0)
			break;
		if ((ws = cert_blanks(rest, (size_t)restlen)) == (size_t)restlen)
			break;
		/* Consume the whitespace so that PEM_read_bio() starts at the BEGIN line. */
		rest += ws;
		restlen -= (long)ws;
		while (ws > 0) {
			n = BIO_read(bio, skip, ws < sizeof(skip) ? (int)ws : (int)sizeof(skip));
			if (n <= 0) {
				r = cert_ossl_fail(err);
				goto out;
			}
			ws -= (size_t)n;
		}
		if (!cert_begin_line(rest, (size_t)restlen) ||
		    sk_X509_num(chain) >= CERT_MAX_CHAIN) {
			r = cert_reject(err, 1426, CERT_MSG_PARSE);
			goto out;
		}
		if (!PEM_read_bio(bio, &name, &header, &data, &len)) {
			if (cert_ossl_nomem()) {
				r = KC_ERR_NOMEM;
				kc_error_from(err, r);
			} else
				r = cert_reject(err, 1426, CERT_MSG_PARSE);
			goto out;
		}
		p = data;
		if (strcmp(name, PEM_STRING_X509) != 0 || header[0] != '\0' ||
		    (x = d2i_X509(NULL, &p, len)) == NULL || p != data + len) {
			if (cert_ossl_nomem()) {
				r = KC_ERR_NOMEM;
				kc_error_from(err, r);
			} else
				r = cert_reject(err, 1426, CERT_MSG_PARSE);
			goto out;
		}
		if (!sk_X509_push(chain, x)) {
			r = cert_ossl_fail(err);
			goto out;
		}
		x = NULL;
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(data);
		name = header = NULL;
		data = NULL;
	}
	if (sk_X509_num(chain) == 0) {
		r = cert_reject(err, 1426, CERT_MSG_PARSE);
		goto out;
	}
	*chainp = chain;
	chain = NULL;
	r = 0;
 out:
	X509_free(x);
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(data);
	sk_X509_pop_free(chain, X509_free);
	BIO_free(bio);
	ERR_clear_error();
	return r;
}

/*
 * Is x a CA (basicConstraints CA:TRUE)? A basicConstraints extension that does not decode,
 * or appears twice, makes the certificate unparseable (-1). Other inconsistent extensions
 * are left to path validation, which names them.
 */
static int
cert_is_ca(X509 *x)
{
	BASIC_CONSTRAINTS	*bc;
	int			 crit, ca;

	if ((bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL)) == NULL)
		return crit == -1 ? 0 : -1;
	ca = bc->ca != 0;
	BASIC_CONSTRAINTS_free(bc);
	return ca;
}

/*
 * Find the one leaf (no basicConstraints CA:TRUE) and move it to the front, the other
 * certificates keeping their upload order.
 */
static int
cert_find_leaf(STACK_OF(X509) *chain, struct kc_error *err)
{
	X509	*x;
	int	 i, ca, leaf = -1, nleaves = 0;

	for (i = 0; i < sk_X509_num(chain); i++) {
		if ((ca = cert_is_ca(sk_X509_value(chain, i))) == -1) {
			if (cert_ossl_nomem()) {
				kc_error_from(err, KC_ERR_NOMEM);
				return KC_ERR_NOMEM;
			}
			return cert_reject(err, 1426, CERT_MSG_PARSE);
		}
		if (!ca && nleaves++ == 0)
			leaf = i;
	}
	ERR_clear_error();
	if (nleaves == 0)
		return cert_reject(err, 1445, CERT_MSG_NO_LEAF);
	if (nleaves > 1)
		return cert_reject(err, 1444, CERT_MSG_TWO_LEAVES);
	if (leaf != 0) {
		x = sk_X509_delete(chain, leaf);
		if (!sk_X509_unshift(chain, x)) {
			X509_free(x);
			return cert_ossl_fail(err);
		}
	}
	return 0;
}

/*
 * The leaf's key against the CSR's SubjectPublicKeyInfo: the DER encodings are compared
 * first; when they differ the decoded keys are (the same EC point may be encoded
 * compressed), so that only a different key is refused.
 */
static int
cert_check_key(X509 *leaf, const uint8_t *spki, size_t spkilen, struct kc_error *err)
{
	EVP_PKEY		*pub, *csrkey = NULL;
	unsigned char		*der = NULL;
	const unsigned char	*p;
	int			 len, r;

	if (spki == NULL || spkilen == 0 || spkilen > LONG_MAX ||
	    (pub = X509_get0_pubkey(leaf)) == NULL) {
		r = cert_reject(err, 1429, CERT_MSG_KEY);
		goto out;
	}
	if ((len = i2d_PUBKEY(pub, &der)) <= 0) {
		r = cert_ossl_fail(err);
		goto out;
	}
	if ((size_t)len == spkilen && memcmp(der, spki, spkilen) == 0) {
		r = 0;
		goto out;
	}
	p = spki;
	if ((csrkey = d2i_PUBKEY(NULL, &p, (long)spkilen)) == NULL ||
	    p != spki + spkilen || EVP_PKEY_eq(pub, csrkey) != 1) {
		if (cert_ossl_nomem()) {
			r = KC_ERR_NOMEM;
			kc_error_from(err, r);
		} else
			r = cert_reject(err, 1429, CERT_MSG_KEY);
		goto out;
	}
	r = 0;
 out:
	ERR_clear_error();
	OPENSSL_free(der);
	EVP_PKEY_free(csrkey);
	return r;
}

/* The API name of a certificate's signature algorithm, NULL when it is not accepted. */
static const char *
cert_sigalg_name(X509 *x)
{
	size_t	i;
	int	nid;

	nid = X509_get_signature_nid(x);
	for (i = 0; i < sizeof(cert_sigalgs) / sizeof(cert_sigalgs[0]); i++)
		if (cert_sigalgs[i].nid == nid)
			return cert_sigalgs[i].name;
	return NULL;
}

/* Every uploaded certificate must be signed with an accepted algorithm (1447). */
static int
cert_check_sigalgs(STACK_OF(X509) *chain, struct kc_error *err)
{
	const X509_ALGOR	*alg;
	const ASN1_OBJECT	*obj;
	X509			*x;
	char			 oid[128];
	int			 i;

	for (i = 0; i < sk_X509_num(chain); i++) {
		x = sk_X509_value(chain, i);
		if (cert_sigalg_name(x) != NULL)
			continue;
		X509_get0_signature(NULL, &alg, x);
		X509_ALGOR_get0(&obj, NULL, NULL, alg);
		if (obj == NULL || OBJ_obj2txt(oid, sizeof(oid), obj, 0) <= 0)
			snprintf(oid, sizeof(oid), "unknown");
		ERR_clear_error();
		return cert_reject(err, 1447, "The certificate that you uploaded uses an "
		    "unsupported signature algorithm (%s). Only SHA-256, SHA-384 or SHA-512 "
		    "with RSA (PKCS#1 v1.5) or ECDSA are accepted. Review your input and try "
		    "again.", oid);
	}
	return 0;
}

/*
 * Every key on the validated path, the trust anchor included, must be RSA of at least
 * CERT_MIN_RSA_BITS or EC of at least CERT_MIN_EC_BITS: OpenSSL's default security level
 * lets a 1024-bit intermediate through, and an EC check needs a curve size anyway.
 */
static int
cert_check_key_sizes(STACK_OF(X509) *path, struct kc_error *err)
{
	EVP_PKEY	*pk;
	X509		*x;
	char		 who[256];
	int		 i, id, bits;

	for (i = 0; i < sk_X509_num(path); i++) {
		x = sk_X509_value(path, i);
		if ((pk = X509_get0_pubkey(x)) == NULL)
			return cert_reject(err, 1426, CERT_MSG_PARSE);
		id = EVP_PKEY_get_base_id(pk);
		bits = EVP_PKEY_get_bits(pk);
		if ((id == EVP_PKEY_RSA || id == EVP_PKEY_RSA_PSS) && bits >= CERT_MIN_RSA_BITS)
			continue;
		if (id == EVP_PKEY_EC && bits >= CERT_MIN_EC_BITS)
			continue;
		if (X509_NAME_oneline(X509_get_subject_name(x), who, sizeof(who)) == NULL)
			snprintf(who, sizeof(who), "?");
		ERR_clear_error();
		if (id == EVP_PKEY_RSA || id == EVP_PKEY_RSA_PSS || id == EVP_PKEY_EC)
			return cert_reject(err, 1441, CERT_MSG_BUNDLE " (%s key of %d bits in "
			    "%s: at least %d bits are required)." CERT_MSG_END,
			    id == EVP_PKEY_EC ? "EC" :
			    "RSA", bits, who, id == EVP_PKEY_EC ? CERT_MIN_EC_BITS :
			    CERT_MIN_RSA_BITS);
		return cert_reject(err, 1441, CERT_MSG_BUNDLE " (unsupported key type %s in "
		    "%s: only RSA and EC keys are accepted)." CERT_MSG_END, OBJ_nid2sn(id),
		    who);
	}
	return 0;
}

/*
 * What gets stored, in path order (leaf first): the uploaded certificates that lie on the
 * validated path, and with complete the known intermediates that completed it. An
 * uploaded certificate that is not on the path (an unrelated certificate, a second
 * intermediate, a cross-signed root the store did not need) is dropped and counted in
 * *dropped; the trust anchor is kept only when it was uploaded.
 */
static int
cert_path_stored(STACK_OF(X509) *chain, STACK_OF(X509) *path, int complete,
    STACK_OF(X509) **outp, size_t *dropped, struct kc_error *err)
{
	STACK_OF(X509)	*out;
	X509		*p;
	int		 i, j, kept = 0;

	*outp = NULL;
	if ((out = sk_X509_new_null()) == NULL)
		return cert_ossl_fail(err);
	for (i = 0; i < sk_X509_num(path); i++) {
		p = sk_X509_value(path, i);
		for (j = 0; j < sk_X509_num(chain); j++)
			if (X509_cmp(p, sk_X509_value(chain, j)) == 0)
				break;
		if (j < sk_X509_num(chain)) {
			p = sk_X509_value(chain, j);
			kept++;
		} else if (!complete || i == sk_X509_num(path) - 1)
			continue;
		if (!sk_X509_push(out, p) || !X509_up_ref(p)) {
			sk_X509_pop_free(out, X509_free);
			return cert_ossl_fail(err);
		}
	}
	*dropped = (size_t)(sk_X509_num(chain) - kept);
	*outp = out;
	return 0;
}

/* Append the certificates of from, from index first on, to to (borrowed). -1: no memory. */
static int
cert_push_all(STACK_OF(X509) *to, STACK_OF(X509) *from, int first)
{
	int	 i;

	for (i = first; i < sk_X509_num(from); i++)
		if (!sk_X509_push(to, sk_X509_value(from, i)))
			return -1;
	return 0;
}

/*
 * Path validation against the trust store at now_us, the other uploaded certificates (and
 * but for FORCE the store's known intermediates) as untrusted intermediates, for a TLS
 * server (the leaf's extendedKeyUsage, if any, must allow serverAuth), then the key sizes
 * on the path. A fresh X509_STORE_CTX per call: the store itself is only read. Partial
 * chains are not accepted: the chain must end at a root of the store. On success *pathp
 * (caller frees with sk_X509_pop_free) holds the path to store (cert_path_stored()).
 */
static int
cert_verify(const struct cert_store *s, STACK_OF(X509) *chain, enum cert_bundle bundle,
    int64_t now_us, STACK_OF(X509) **pathp, size_t *dropped, struct kc_error *err)
{
	X509_STORE_CTX		*ctx = NULL;
	STACK_OF(X509)		*untrusted = NULL;
	X509_VERIFY_PARAM	*param;
	int			 e, r;

	*pathp = NULL;
	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    (untrusted = sk_X509_new_null()) == NULL) {
		r = cert_ossl_fail(err);
		goto out;
	}
	/* Issuers are tried in this order: the preferred intermediates first. */
	if (bundle == CERT_BUNDLE_OPTIMAL && cert_push_all(untrusted, s->known, 0) != 0) {
		r = cert_ossl_fail(err);
		goto out;
	}
	if (cert_push_all(untrusted, chain, 1) != 0 || (bundle == CERT_BUNDLE_UBIQUITOUS &&
	    cert_push_all(untrusted, s->known, 0) != 0)) {
		r = cert_ossl_fail(err);
		goto out;
	}
	if (!X509_STORE_CTX_init(ctx, s->store, sk_X509_value(chain, 0), untrusted) ||
	    !X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER)) {
		r = cert_ossl_fail(err);
		goto out;
	}
	param = X509_STORE_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_clear_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
	X509_VERIFY_PARAM_set_time(param, (time_t)(now_us / 1000000));
	if (X509_verify_cert(ctx) == 1) {
		if ((r = cert_check_key_sizes(X509_STORE_CTX_get0_chain(ctx), err)) == 0)
			r = cert_path_stored(chain, X509_STORE_CTX_get0_chain(ctx),
			    bundle != CERT_BUNDLE_FORCE, pathp, dropped, err);
		goto out;
	}
	e = X509_STORE_CTX_get_error(ctx);
	if (e == X509_V_ERR_OUT_OF_MEM) {
		r = KC_ERR_NOMEM;
		kc_error_from(err, r);
		goto out;
	}
	if (e == X509_V_OK)
		e = X509_V_ERR_UNSPECIFIED;
	r = cert_reject(err, 1441, CERT_MSG_BUNDLE " (%s)." CERT_MSG_END,
	    X509_verify_cert_error_string(e));
 out:
	ERR_clear_error();
	/* The stack borrows the certificates of chain. */
	sk_X509_free(untrusted);
	X509_STORE_CTX_free(ctx);
	return r;
}

/* True when the DNS name (len bytes, not NUL-terminated) equals host, ignoring case. */
static int
cert_name_eq(const unsigned char *name, int len, const char *host)
{
	return len >= 0 && (size_t)len == strlen(host) &&
	    memchr(name, '\0', len) == NULL &&
	    strncasecmp((const char *)name, host, len) == 0;
}

/*
 * Does one dNSName (len bytes) cover the concrete hostname host? Equal names, ignoring
 * case and one trailing dot of the name; or a wildcard "*.rest" (the whole left-most
 * label, RFC 6125 6.4.3 with no partial labels) when host is one non-empty label then
 * ".rest", and rest has at least two labels and is not itself a public suffix (ICANN or
 * private section of the Public Suffix List, or its implicit "*" rule for an unknown
 * top-level domain): "*.co.uk" or "*.github.io" match nothing.
 */
static int
cert_dns_covers(const unsigned char *name, int len, const char *host)
{
	const psl_ctx_t	*psl;
	const char	*n = (const char *)name, *dot;
	char		*rest;
	size_t		 i, nlen, restlen;
	int		 suffix;

	if (len <= 0 || memchr(name, '\0', (size_t)len) != NULL)
		return 0;
	nlen = (size_t)len;
	if (nlen > 1 && n[nlen - 1] == '.')
		nlen--;
	if (nlen < 2 || n[0] != '*' || n[1] != '.')
		return memchr(n, '*', nlen) == NULL && nlen == strlen(host) &&
		    strncasecmp(n, host, nlen) == 0;
	restlen = nlen - 2;
	if (restlen == 0 || memchr(n + 2, '*', restlen) != NULL ||
	    memchr(n + 2, '.', restlen) == NULL)
		return 0;
	if ((dot = strchr(host, '.')) == NULL || dot == host ||
	    strlen(dot + 1) != restlen || strncasecmp(dot + 1, n + 2, restlen) != 0)
		return 0;
	/* psl_builtin() is read-only compiled-in data, safe to share between threads. */
	if ((psl = psl_builtin()) == NULL || (rest = strndup(n + 2, restlen)) == NULL)
		return 0;	/* fail closed */
	for (i = 0; i < restlen; i++)	/* the list is lowercase ASCII */
		if (rest[i] >= 'A' && rest[i] <= 'Z')
			rest[i] = (char)(rest[i] - 'A' + 'a');
	suffix = psl_is_public_suffix2(psl, rest, PSL_TYPE_ANY);
	free(rest);
	return !suffix;
}

/*
 * Does the leaf cover hostname? Only dNSName subjectAltNames count (never the subject CN).
 * A concrete hostname is matched by cert_dns_covers(): "*.acme-corp.co.uk" covers
 * "shop.acme-corp.co.uk", neither "a.b.acme-corp.co.uk" nor "acme-corp.co.uk", never
 * partial "f*.example.com", and a wildcard over a public suffix ("*.co.uk") covers
 * nothing. X509_check_host() is not used: it takes "*.co.uk" to cover acme-corp.co.uk. A
 * wildcard hostname ("*.shop.acme-corp.co.uk") is covered by the identical name only,
 * ignoring case. A leading '.' (any subdomain) is covered by nothing.
 */
static int
cert_check_host(X509 *leaf, const char *hostname, struct kc_error *err)
{
	GENERAL_NAMES	*gens = NULL;
	GENERAL_NAME	*gn;
	ASN1_IA5STRING	*dns;
	int		 i, type, wild, covered = 0, r;

	if (hostname != NULL && *hostname != '\0' && *hostname != '.') {
		wild = strchr(hostname, '*') != NULL;
		ERR_clear_error();
		gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
		if (gens == NULL && cert_ossl_nomem()) {
			r = KC_ERR_NOMEM;
			kc_error_from(err, r);
			goto out;
		}
		for (i = 0; i < sk_GENERAL_NAME_num(gens) && !covered; i++) {
			gn = sk_GENERAL_NAME_value(gens, i);
			dns = GENERAL_NAME_get0_value(gn, &type);
			if (type != GEN_DNS)
				continue;
			if (wild)
				covered = cert_name_eq(ASN1_STRING_get0_data(dns),
				    ASN1_STRING_length(dns), hostname);
			else
				covered = cert_dns_covers(ASN1_STRING_get0_data(dns),
				    ASN1_STRING_length(dns), hostname);
		}
	}
	if (!covered) {
		r = cert_reject(err, 1446, "The certificate that you uploaded does not include "
		    "the custom hostname - %s. Review your input and try again.",
		    hostname != NULL ? hostname : "");
		goto out;
	}
	r = 0;
 out:
	ERR_clear_error();
	GENERAL_NAMES_free(gens);
	return r;
}

/* Copy an OpenSSL-allocated string into a malloc'ed one (callers free with free()). */
static char *
cert_strdup_ossl(char *s)
{
	char	*p;

	if (s == NULL)
		return NULL;
	p = strdup(s);
	OPENSSL_free(s);
	return p;
}

/* One attribute of name as UTF-8, ASCII whitespace removed; *out NULL if absent or empty. */
static int
cert_name_attr(const X509_NAME *name, int nid, char **out)
{
	X509_NAME_ENTRY	*ne;
	unsigned char	*utf8 = NULL;
	char		*s, *d;
	int		 i, len;

	*out = NULL;
	if ((i = X509_NAME_get_index_by_NID(name, nid, -1)) < 0)
		return 0;
	ne = X509_NAME_get_entry(name, i);
	if ((len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(ne))) < 0) {
		/* Not convertible: treat as absent unless memory ran out. */
		return cert_ossl_nomem() ? KC_ERR_NOMEM : 0;
	}
	if ((s = malloc((size_t)len + 1)) == NULL) {
		OPENSSL_free(utf8);
		return KC_ERR_NOMEM;
	}
	d = s;
	for (i = 0; i < len && utf8[i] != '\0'; i++)
		if (utf8[i] != ' ' && (utf8[i] < '\t' || utf8[i] > '\r'))
			*d++ = (char)utf8[i];
	*d = '\0';
	OPENSSL_free(utf8);
	if (*s == '\0') {
		free(s);
		return 0;
	}
	*out = s;
	return 0;
}

/* An ASN1_TIME as microseconds since the epoch. */
static int
cert_time_us(const ASN1_TIME *t, int64_t *us)
{
	struct tm	tm;
	time_t		secs;

	memset(&tm, 0, sizeof(tm));
	if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
		return KC_ERR_INVALID;
	secs = timegm(&tm);
	*us = (int64_t)secs * 1000000;
	return 0;
}

/* The leaf's dNSName subjectAltNames in certificate order (names holding a NUL skipped). */
static int
cert_info_hosts(X509 *leaf, struct cert_info *ci)
{
	GENERAL_NAMES	*gens;
	GENERAL_NAME	*gn;
	ASN1_IA5STRING	*dns;
	const char	*p;
	int		 i, n, type, len, r = 0;

	gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	if ((n = sk_GENERAL_NAME_num(gens)) <= 0)
		goto out;
	if ((ci->hosts = calloc((size_t)n, sizeof(*ci->hosts))) == NULL) {
		r = KC_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		gn = sk_GENERAL_NAME_value(gens, i);
		dns = GENERAL_NAME_get0_value(gn, &type);
		if (type != GEN_DNS)
			continue;
		p = (const char *)ASN1_STRING_get0_data(dns);
		len = ASN1_STRING_length(dns);
		if (len < 0 || memchr(p, '\0', (size_t)len) != NULL)
			continue;
		if ((ci->hosts[ci->nhosts] = strndup(p, (size_t)len)) == NULL) {
			r = KC_ERR_NOMEM;
			goto out;
		}
		ci->nhosts++;
	}
 out:
	ERR_clear_error();
	GENERAL_NAMES_free(gens);
	return r;
}

/* The chain as normalized PEM, leaf first, in a malloc'ed NUL-terminated string. */
static int
cert_info_pem(STACK_OF(X509) *chain, struct cert_info *ci)
{
	BIO	*bio;
	char	*data;
	long	 len;
	int	 i, r = KC_ERR_NOMEM;

	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		return KC_ERR_NOMEM;
	for (i = 0; i < sk_X509_num(chain); i++)
		if (!PEM_write_bio_X509(bio, sk_X509_value(chain, i)))
			goto out;
	if ((len = BIO_get_mem_data(bio, &data)) <= 0 ||
	    (ci->chain_pem = malloc((size_t)len + 1)) == NULL)
		goto out;
	memcpy(ci->chain_pem, data, (size_t)len);
	ci->chain_pem[len] = '\0';
	r = 0;
 out:
	ERR_clear_error();
	BIO_free(bio);
	return r;
}

/* What the API reports about the accepted chain (leaf first). */
static int
cert_info_make(STACK_OF(X509) *chain, struct cert_info **infop, struct kc_error *err)
{
	struct cert_info	*ci;
	X509			*leaf = sk_X509_value(chain, 0);
	const X509_NAME		*issuer = X509_get_issuer_name(leaf);
	BIGNUM			*bn = NULL;
	const char		*sig;
	int			 r;

	if ((ci = calloc(1, sizeof(*ci))) == NULL) {
		r = KC_ERR_NOMEM;
		goto out;
	}
	if ((r = cert_name_attr(issuer, NID_organizationName, &ci->issuer)) != 0 ||
	    (ci->issuer == NULL &&
	    (r = cert_name_attr(issuer, NID_commonName, &ci->issuer)) != 0))
		goto out;
	if (ci->issuer == NULL && (ci->issuer = strdup("Unknown")) == NULL) {
		r = KC_ERR_NOMEM;
		goto out;
	}
	if ((bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL)) == NULL ||
	    (ci->serial = cert_strdup_ossl(BN_bn2dec(bn))) == NULL) {
		r = KC_ERR_NOMEM;
		goto out;
	}
	/* Checked by cert_check_sigalgs() already. */
	sig = cert_sigalg_name(leaf);
	if ((ci->signature = strdup(sig != NULL ? sig : "Unknown")) == NULL) {
		r = KC_ERR_NOMEM;
		goto out;
	}
	if (cert_time_us(X509_get0_notBefore(leaf), &ci->not_before_us) != 0 ||
	    cert_time_us(X509_get0_notAfter(leaf), &ci->not_after_us) != 0) {
		r = cert_reject(err, 1426, CERT_MSG_PARSE);
		goto out;
	}
	if ((r = cert_info_hosts(leaf, ci)) != 0 ||
	    (r = cert_info_pem(chain, ci)) != 0 ||
	    (r = cert_fingerprint_x509(leaf, ci->fingerprint)) != 0)
		goto out;
	*infop = ci;
	ci = NULL;
	r = 0;
 out:
	if (r == KC_ERR_NOMEM)
		kc_error_from(err, r);
	ERR_clear_error();
	BN_free(bn);
	cert_info_free(ci);
	return r;
}

/*
 * Check an uploaded chain in the order of cert.h, the first failure answering. A NULL
 * store or info is API misuse (KC_ERR_INTERNAL).
 */
int
cert_check(const struct cert_store *s, const char *pem, size_t pemlen,
    const uint8_t *spki, size_t spkilen, const char *hostname, enum cert_bundle bundle,
    int64_t now_us, struct cert_info **info, struct kc_error *err)
{
	STACK_OF(X509)	*chain = NULL, *path = NULL;
	size_t		 dropped = 0;
	int		 r;

	if (info != NULL)
		*info = NULL;
	if (s == NULL || info == NULL) {
		kc_error_from(err, KC_ERR_INTERNAL);
		return KC_ERR_INTERNAL;
	}
	if (pem == NULL || cert_blanks(pem, pemlen) == pemlen)
		return cert_reject(err, 1427, CERT_MSG_EMPTY);
	ERR_clear_error();
	if ((r = cert_parse(pem, pemlen, &chain, err)) != 0 ||
	    (r = cert_find_leaf(chain, err)) != 0 ||
	    (r = cert_check_key(sk_X509_value(chain, 0), spki, spkilen, err)) != 0 ||
	    (r = cert_check_sigalgs(chain, err)) != 0 ||
	    (r = cert_verify(s, chain, bundle, now_us, &path, &dropped, err)) != 0 ||
	    (r = cert_check_host(sk_X509_value(path, 0), hostname, err)) != 0 ||
	    (r = cert_info_make(path, info, err)) != 0)
		goto out;
	(*info)->dropped = dropped;
	r = 0;
 out:
	ERR_clear_error();
	sk_X509_pop_free(path, X509_free);
	sk_X509_pop_free(chain, X509_free);
	return r;
}
