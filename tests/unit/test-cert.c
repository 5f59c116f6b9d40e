/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * test-cert.c: unit tests of cert.c with a root, intermediates and leaves made here: the
 * trust store, every rejection in its order, hostname coverage, the reported fields, and
 * random mutations of a valid chain.
 */
#include "config.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "kc-err.h"
#include "cert.h"

#define TEST_NOW	1750000000L		/* 2025-06-15T15:06:40Z */
#define TEST_NOW_US	((int64_t)TEST_NOW * 1000000)
#define TEST_DAY	86400L
#define TEST_HOST	"shop.acme-corp.co.uk"
#define TEST_SANS	"DNS:shop.acme-corp.co.uk,DNS:www.acme-corp.co.uk,IP:192.0.2.1," \
			    "DNS:*.shop.acme-corp.co.uk"
#define TEST_END	((X509 *)NULL)		/* ends test_pem()'s list */
#define TEST_SERIAL	"123456789012345678901234567890123456789"

/* How to make one certificate. */
struct test_spec {
	EVP_PKEY	*key;		/* subject key; the signer too when self-signed */
	X509		*issuer;	/* NULL: self-signed */
	EVP_PKEY	*issuer_key;
	const EVP_MD	*md;
	int		 ca;
	int		 pss;		/* RSASSA-PSS signature */
	const char	*o;
	const char	*cn;
	const char	*sans;		/* "DNS:a,DNS:b" or NULL */
	long		 nb;		/* notBefore, seconds from TEST_NOW */
	long		 na;		/* notAfter, seconds from TEST_NOW */
	const char	*serial;	/* decimal; NULL: 4096 */
	const char	*eku;		/* leaf extendedKeyUsage; NULL: serverAuth */
};

struct test_fix {
	EVP_PKEY		*root_key;	/* P-256 */
	EVP_PKEY		*irsa_key;	/* RSA-2048 */
	EVP_PKEY		*iec_key;	/* P-384 */
	EVP_PKEY		*leaf_rsa_key;	/* RSA-2048 */
	EVP_PKEY		*leaf_ec_key;	/* P-256 */
	EVP_PKEY		*other_key;	/* P-256, nothing is issued to it */
	EVP_PKEY		*rogue_key;	/* P-256, an untrusted CA */
	X509			*root;
	X509			*irsa;		/* intermediate, RSA, under root */
	X509			*iec;		/* intermediate, EC, under root */
	X509			*rogue;		/* self-signed CA not in the store */
	X509			*leaf_rsa;	/* RSA leaf by irsa, SHA-256 */
	X509			*leaf_ec;	/* P-256 leaf by iec, SHA-384 */
	char			 bundle[64];
	struct cert_store	*store;
};

static struct test_fix	 fix;

static EVP_PKEY *
test_key_ec(const char *curve)
{
	EVP_PKEY	*k;

	k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
	assert_non_null(k);
	return k;
}

static EVP_PKEY *
test_key_rsa(void)
{
	EVP_PKEY	*k;

	k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	assert_non_null(k);
	return k;
}

static void
test_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION	*ext;

	ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

static void
test_name_add(X509_NAME *name, int nid, const char *value)
{
	if (value == NULL)
		return;
	assert_int_equal(X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8,
	    (const unsigned char *)value, -1, -1, 0), 1);
}

/* Make and sign one certificate as sp says. */
static X509 *
test_cert(const struct test_spec *sp)
{
	X509		*x;
	X509_NAME	*name;
	X509V3_CTX	 ctx;
	BIGNUM		*bn = NULL;
	ASN1_INTEGER	*serial;
	EVP_PKEY	*signer = sp->issuer != NULL ? sp->issuer_key : sp->key;
	EVP_MD_CTX	*mctx;
	EVP_PKEY_CTX	*pctx = NULL;

	assert_non_null(x = X509_new());
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_true(BN_dec2bn(&bn, sp->serial != NULL ? sp->serial : "4096") > 0);
	assert_non_null(serial = BN_to_ASN1_INTEGER(bn, NULL));
	assert_int_equal(X509_set_serialNumber(x, serial), 1);
	ASN1_INTEGER_free(serial);
	BN_free(bn);
	assert_non_null(X509_time_adj_ex(X509_getm_notBefore(x), 0, sp->nb,
	    &(time_t){ TEST_NOW }));
	assert_non_null(X509_time_adj_ex(X509_getm_notAfter(x), 0, sp->na,
	    &(time_t){ TEST_NOW }));
	name = X509_get_subject_name(x);
	test_name_add(name, NID_countryName, "GB");
	test_name_add(name, NID_organizationName, sp->o);
	test_name_add(name, NID_commonName, sp->cn);
	assert_int_equal(X509_set_issuer_name(x, sp->issuer != NULL ?
	    X509_get_subject_name(sp->issuer) : name), 1);
	assert_int_equal(X509_set_pubkey(x, sp->key), 1);

	X509V3_set_ctx(&ctx, sp->issuer != NULL ? sp->issuer : x, x, NULL, NULL, 0);
	if (sp->ca) {
		test_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE");
		test_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		test_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE");
		test_ext(x, &ctx, NID_key_usage, "critical,digitalSignature,"
		    "keyEncipherment");
		test_ext(x, &ctx, NID_ext_key_usage, sp->eku != NULL ? sp->eku :
		    "serverAuth");
	}
	test_ext(x, &ctx, NID_subject_key_identifier, "hash");
	if (sp->issuer != NULL)
		test_ext(x, &ctx, NID_authority_key_identifier, "keyid:always");
	if (sp->sans != NULL)
		test_ext(x, &ctx, NID_subject_alt_name, sp->sans);

	if (sp->pss) {
		assert_non_null(mctx = EVP_MD_CTX_new());
		assert_int_equal(EVP_DigestSignInit(mctx, &pctx, sp->md, NULL, signer), 1);
		assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
		assert_true(X509_sign_ctx(x, mctx) > 0);
		EVP_MD_CTX_free(mctx);
	} else
		assert_true(X509_sign(x, signer, sp->md) > 0);
	return x;
}

/* A leaf for key, signed by issuer with md, everything else the usual. */
static X509 *
test_leaf(EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, const EVP_MD *md,
    const char *sans)
{
	struct test_spec	 sp = {
		.key = key, .issuer = issuer, .issuer_key = issuer_key, .md = md,
		.o = "Acme Corp", .cn = TEST_HOST, .sans = sans,
		.nb = -TEST_DAY, .na = 90 * TEST_DAY, .serial = TEST_SERIAL,
	};

	return test_cert(&sp);
}

/* An intermediate CA under the root. */
static X509 *
test_inter(EVP_PKEY *key, const char *o, const char *cn, const EVP_MD *md)
{
	struct test_spec	 sp = {
		.key = key, .issuer = fix.root, .issuer_key = fix.root_key, .md = md,
		.ca = 1, .o = o, .cn = cn, .nb = -365 * TEST_DAY, .na = 3650 * TEST_DAY,
		.serial = "2",
	};

	return test_cert(&sp);
}

/* The PEM of the certificates given, the list ended by TEST_END; caller frees. */
static char *
test_pem(X509 *x, ...)
{
	va_list	 ap;
	BIO	*bio;
	char	*data, *s;
	long	 len;

	assert_non_null(bio = BIO_new(BIO_s_mem()));
	va_start(ap, x);
	for (; x != NULL; x = va_arg(ap, X509 *))
		assert_int_equal(PEM_write_bio_X509(bio, x), 1);
	va_end(ap);
	len = BIO_get_mem_data(bio, &data);
	assert_non_null(s = malloc((size_t)len + 1));
	memcpy(s, data, (size_t)len);
	s[len] = '\0';
	BIO_free(bio);
	return s;
}

/* Concatenate two strings; caller frees. */
static char *
test_cat(const char *a, const char *b)
{
	char	*s;

	assert_non_null(s = malloc(strlen(a) + strlen(b) + 1));
	strcpy(s, a);
	strcat(s, b);
	return s;
}

/* Check pem for key and host at TEST_NOW. */
static int
test_check(const char *pem, size_t len, EVP_PKEY *key, const char *host,
    struct cert_info **ci, struct kc_error *err)
{
	unsigned char	*spki = NULL;
	int		 n, r;

	memset(err, 0, sizeof(*err));
	assert_true((n = i2d_PUBKEY(key, &spki)) > 0);
	r = cert_check(fix.store, pem, len, spki, (size_t)n, host, CERT_BUNDLE_UBIQUITOUS,
	    TEST_NOW_US, ci, err);
	OPENSSL_free(spki);
	assert_int_equal(ERR_peek_error(), 0);
	return r;
}

/* pem must be refused with code, the message starting with msg (when not NULL). */
static void
test_reject(const char *pem, EVP_PKEY *key, const char *host, int code, const char *msg)
{
	struct cert_info	*ci = (struct cert_info *)1;
	struct kc_error		 err;

	assert_int_equal(test_check(pem, strlen(pem), key, host, &ci, &err),
	    KC_ERR_INVALID);
	assert_null(ci);
	assert_int_equal(err.status, KC_STATUS_INVALID_ARGUMENT);
	if (err.code != code)
		fail_msg("expected %d, got %d: %s", code, err.code, err.message);
	if (msg != NULL && strncmp(err.message, msg, strlen(msg)) != 0)
		fail_msg("message \"%s\" does not start with \"%s\"", err.message, msg);
}

/* The reason of a 1441 must mention what. */
static void
test_reject_1441(const char *pem, EVP_PKEY *key, const char *what)
{
	struct cert_info	*ci = NULL;
	struct kc_error		 err;
	const char		*pre = "The certificate that you uploaded is having "
				    "trouble bundling against the public trust store. (";

	assert_int_equal(test_check(pem, strlen(pem), key, TEST_HOST, &ci, &err),
	    KC_ERR_INVALID);
	assert_int_equal(err.code, 1441);
	assert_true(strncmp(err.message, pre, strlen(pre)) == 0);
	if (strstr(err.message, what) == NULL)
		fail_msg("\"%s\" does not mention \"%s\"", err.message, what);
}

static int
test_setup(void **state)
{
	struct test_spec	 sp;
	char			*pem;
	char			*cause = NULL;
	const char *const	 bundles[1] = { fix.bundle };
	int			 fd;

	fix.root_key = test_key_ec("P-256");
	fix.irsa_key = test_key_rsa();
	fix.iec_key = test_key_ec("P-384");
	fix.leaf_rsa_key = test_key_rsa();
	fix.leaf_ec_key = test_key_ec("P-256");
	fix.other_key = test_key_ec("P-256");
	fix.rogue_key = test_key_ec("P-256");

	memset(&sp, 0, sizeof(sp));
	sp.key = fix.root_key;
	sp.md = EVP_sha384();
	sp.ca = 1;
	sp.o = "Acme Test Trust Inc";
	sp.cn = "Acme Test Root CA";
	sp.nb = -3650 * TEST_DAY;
	sp.na = 3650 * TEST_DAY;
	sp.serial = "1";
	fix.root = test_cert(&sp);
	sp.key = fix.rogue_key;
	sp.o = "Rogue Trust";
	sp.cn = "Rogue Root CA";
	fix.rogue = test_cert(&sp);

	fix.irsa = test_inter(fix.irsa_key, "Acme Test Trust Inc", "Acme RSA CA 1",
	    EVP_sha256());
	fix.iec = test_inter(fix.iec_key, "Example  EC Trust Services", "Example EC CA",
	    EVP_sha384());
	fix.leaf_rsa = test_leaf(fix.leaf_rsa_key, fix.irsa, fix.irsa_key, EVP_sha256(),
	    TEST_SANS);
	fix.leaf_ec = test_leaf(fix.leaf_ec_key, fix.iec, fix.iec_key, EVP_sha384(),
	    TEST_SANS);

	snprintf(fix.bundle, sizeof(fix.bundle), "/tmp/test-cert.XXXXXX");
	assert_true((fd = mkstemp(fix.bundle)) != -1);
	pem = test_pem(fix.root, TEST_END);
	assert_int_equal(write(fd, pem, strlen(pem)), (ssize_t)strlen(pem));
	close(fd);
	free(pem);
	assert_int_equal(cert_store_new(false, bundles, 1, &fix.store, &cause), 0);
	assert_null(cause);
	return 0;
}

static int
test_teardown(void **state)
{
	cert_store_free(fix.store);
	unlink(fix.bundle);
	X509_free(fix.root);
	X509_free(fix.irsa);
	X509_free(fix.iec);
	X509_free(fix.rogue);
	X509_free(fix.leaf_rsa);
	X509_free(fix.leaf_ec);
	EVP_PKEY_free(fix.root_key);
	EVP_PKEY_free(fix.irsa_key);
	EVP_PKEY_free(fix.iec_key);
	EVP_PKEY_free(fix.leaf_rsa_key);
	EVP_PKEY_free(fix.leaf_ec_key);
	EVP_PKEY_free(fix.other_key);
	EVP_PKEY_free(fix.rogue_key);
	return 0;
}

/* Store: unreadable file (IO), a file without certificates (INVALID, named), system. */
static void
test_cert_store(void **state)
{
	struct cert_store	*s = (struct cert_store *)1;
	char			*cause = NULL, path[64], *pem;
	const char		*missing[] = { "/nonexistent/kc-bundle.pem" };
	const char		*keyonly[] = { path };
	BIO			*bio;
	FILE			*fp;
	int			 fd;

	assert_int_equal(cert_store_new(false, missing, 1, &s, &cause), KC_ERR_IO);
	assert_null(s);
	assert_non_null(cause);
	assert_non_null(strstr(cause, "/nonexistent/kc-bundle.pem"));
	free(cause);
	cause = NULL;

	snprintf(path, sizeof(path), "/tmp/test-cert-key.XXXXXX");
	assert_true((fd = mkstemp(path)) != -1);
	assert_non_null(fp = fdopen(fd, "w"));
	assert_non_null(bio = BIO_new_fp(fp, BIO_CLOSE));
	assert_int_equal(PEM_write_bio_PrivateKey(bio, fix.other_key, NULL, NULL, 0, NULL,
	    NULL), 1);
	BIO_free(bio);
	assert_int_equal(cert_store_new(false, keyonly, 1, &s, &cause), KC_ERR_INVALID);
	assert_null(s);
	assert_non_null(cause);
	assert_non_null(strstr(cause, path));
	free(cause);
	cause = NULL;

	/* Empty file. */
	assert_non_null(fp = fopen(path, "w"));
	fclose(fp);
	assert_int_equal(cert_store_new(false, keyonly, 1, &s, &cause), KC_ERR_INVALID);
	assert_non_null(strstr(cause, path));
	free(cause);
	cause = NULL;
	unlink(path);

	/* No bundle at all: an empty store trusts nothing. */
	assert_int_equal(cert_store_new(false, NULL, 0, &s, &cause), 0);
	cert_store_free(s);
	cert_store_free(NULL);

	if (access("/etc/ssl/certs/ca-certificates.crt", R_OK) == 0) {
		assert_int_equal(cert_store_new(true, NULL, 0, &s, &cause), 0);
		assert_null(cause);
		/* The test root is not publicly trusted. */
		{
			struct kc_error		 err;
			struct cert_info	*ci = NULL;
			unsigned char		*spki = NULL;
			int			 n;

			pem = test_pem(fix.leaf_ec, fix.iec, TEST_END);
			n = i2d_PUBKEY(fix.leaf_ec_key, &spki);
			assert_int_equal(cert_check(s, pem, strlen(pem), spki, (size_t)n,
			    TEST_HOST, CERT_BUNDLE_UBIQUITOUS, TEST_NOW_US, &ci, &err), KC_ERR_INVALID);
			assert_int_equal(err.code, 1441);
			OPENSSL_free(spki);
			free(pem);
		}
		cert_store_free(s);
	}
	cert_info_free(NULL);
}

/* 1427: nothing or whitespace only. */
static void
test_cert_empty(void **state)
{
	struct cert_info	*ci = NULL;
	struct kc_error		 err;
	const char		*msg = "The certificate that you uploaded is empty. Check "
				    "your input and try again.";

	test_reject("", fix.leaf_ec_key, TEST_HOST, 1427, msg);
	test_reject(" \r\n\t\n", fix.leaf_ec_key, TEST_HOST, 1427, msg);
	assert_int_equal(test_check(NULL, 0, fix.leaf_ec_key, TEST_HOST, &ci, &err),
	    KC_ERR_INVALID);
	assert_int_equal(err.code, 1427);
	assert_string_equal(err.message, msg);
}

/* 1426: garbage, non-certificate blocks, framing errors, too many certificates. */
static void
test_cert_unparseable(void **state)
{
	const char	*msg = "The certificate that you uploaded cannot be parsed.";
	char		*chain, *s, *key, *t;
	BIO		*bio;
	long		 len;
	unsigned char	*der = NULL, *der2;
	int		 n, i;

	chain = test_pem(fix.leaf_ec, fix.iec, TEST_END);

	test_reject("hello", fix.leaf_ec_key, TEST_HOST, 1426, msg);
	test_reject("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
	    fix.leaf_ec_key, TEST_HOST, 1426, msg);
	test_reject("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
	    fix.leaf_ec_key, TEST_HOST, 1426, msg);

	/* Trailing and leading garbage. */
	s = test_cat(chain, "garbage\n");
	test_reject(s, fix.leaf_ec_key, TEST_HOST, 1426, msg);
	free(s);
	s = test_cat("subject=CN = shop\n", chain);
	test_reject(s, fix.leaf_ec_key, TEST_HOST, 1426, msg);
	free(s);

	/* Garbage between blocks; a BEGIN line that is not one; an indented block is fine. */
	t = test_pem(fix.leaf_ec, TEST_END);
	key = test_pem(fix.iec, TEST_END);
	n = (int)(strlen(t) + strlen(key) + 64);
	assert_non_null(s = malloc((size_t)n));
	snprintf(s, (size_t)n, "%sjunk\n%s", t, key);
	test_reject(s, fix.leaf_ec_key, TEST_HOST, 1426, msg);
	snprintf(s, (size_t)n, "-----BEGIN junk\n%s%s", t, key);
	test_reject(s, fix.leaf_ec_key, TEST_HOST, 1426, msg);
	snprintf(s, (size_t)n, "-----BEGIN CERTIFICATE----- x\n%s%s", t, key);
	test_reject(s, fix.leaf_ec_key, TEST_HOST, 1426, msg);
	snprintf(s, (size_t)n, "%s-----END CERTIFICATE-----\n%s", t, key);
	test_reject(s, fix.leaf_ec_key, TEST_HOST, 1426, msg);
	snprintf(s, (size_t)n, "\n\n  \t%s\r\n   %s  \n\n", t, key);
	{
		struct cert_info	*ci = NULL;
		struct kc_error		 err;

		if (test_check(s, strlen(s), fix.leaf_ec_key, TEST_HOST, &ci, &err) != 0)
			fail_msg("blanks around blocks: %d %s", err.code, err.message);
		cert_info_free(ci);
	}
	/* A NUL byte after the chain is not whitespace. */
	{
		struct cert_info	*ci = NULL;
		struct kc_error		 err;

		snprintf(s, (size_t)n, "%s%s", t, key);
		assert_int_equal(test_check(s, strlen(s) + 1, fix.leaf_ec_key, TEST_HOST,
		    &ci, &err), KC_ERR_INVALID);
		assert_int_equal(err.code, 1426);
	}
	free(s);
	free(t);
	free(key);

	/* Two basicConstraints extensions: which one is meant cannot be told. */
	{
		X509		*x;
		X509V3_CTX	 ctx;

		x = test_leaf(fix.leaf_ec_key, fix.iec, fix.iec_key, EVP_sha256(), TEST_SANS);
		X509V3_set_ctx(&ctx, fix.iec, x, NULL, NULL, 0);
		test_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE");
		assert_true(X509_sign(x, fix.iec_key, EVP_sha256()) > 0);
		s = test_pem(x, fix.iec, TEST_END);
		test_reject(s, fix.leaf_ec_key, TEST_HOST, 1426, msg);
		free(s);
		X509_free(x);
	}

	/* Truncated: no END line. */
	assert_non_null(s = strdup(chain));
	s[strlen(s) - 30] = '\0';
	test_reject(s, fix.leaf_ec_key, TEST_HOST, 1426, msg);
	free(s);

	/* A private key, alone and after the chain. */
	assert_non_null(bio = BIO_new(BIO_s_mem()));
	assert_int_equal(PEM_write_bio_PrivateKey(bio, fix.leaf_ec_key, NULL, NULL, 0,
	    NULL, NULL), 1);
	len = BIO_get_mem_data(bio, &t);
	assert_non_null(key = strndup(t, (size_t)len));
	BIO_free(bio);
	test_reject(key, fix.leaf_ec_key, TEST_HOST, 1426, msg);
	s = test_cat(chain, key);
	test_reject(s, fix.leaf_ec_key, TEST_HOST, 1426, msg);
	free(s);
	free(key);

	/* A CERTIFICATE block whose DER has a trailing byte. */
	assert_true((n = i2d_X509(fix.leaf_ec, &der)) > 0);
	assert_non_null(der2 = malloc((size_t)n + 1));
	memcpy(der2, der, (size_t)n);
	der2[n] = 0;
	assert_non_null(bio = BIO_new(BIO_s_mem()));
	assert_true(PEM_write_bio(bio, "CERTIFICATE", "", der2, n + 1) > 0);
	len = BIO_get_mem_data(bio, &t);
	assert_non_null(s = strndup(t, (size_t)len));
	BIO_free(bio);
	test_reject(s, fix.leaf_ec_key, TEST_HOST, 1426, msg);
	free(s);
	free(der2);

	/* An encapsulated header (encrypted PEM). */
	assert_non_null(bio = BIO_new(BIO_s_mem()));
	assert_true(PEM_write_bio(bio, "CERTIFICATE", "Proc-Type: 4,ENCRYPTED\n", der,
	    n) > 0);
	len = BIO_get_mem_data(bio, &t);
	assert_non_null(s = strndup(t, (size_t)len));
	BIO_free(bio);
	test_reject(s, fix.leaf_ec_key, TEST_HOST, 1426, msg);
	free(s);
	OPENSSL_free(der);

	/* The leaf and 15, then 16, copies of the intermediate. */
	assert_non_null(s = strdup(chain));
	t = test_pem(fix.iec, TEST_END);
	for (i = 0; i < 14; i++) {
		key = test_cat(s, t);
		free(s);
		s = key;
	}
	/* 16 are still fine. */
	{
		struct cert_info	*ci = NULL;
		struct kc_error		 err;

		if (test_check(s, strlen(s), fix.leaf_ec_key, TEST_HOST, &ci, &err) != 0)
			fail_msg("16 certificates: %d %s", err.code, err.message);
		cert_info_free(ci);
	}
	key = test_cat(s, t);
	test_reject(key, fix.leaf_ec_key, TEST_HOST, 1426, msg);
	free(key);
	free(s);
	free(t);
	free(chain);
}

/* 1445 no leaf, 1444 two leaves. */
static void
test_cert_leaves(void **state)
{
	char	*s;

	s = test_pem(fix.iec, fix.root, TEST_END);
	test_reject(s, fix.leaf_ec_key, TEST_HOST, 1445, "The certificate chain that you "
	    "uploaded has no leaf certificates. Check your input and try again.");
	free(s);
	s = test_pem(fix.leaf_ec, fix.leaf_rsa, fix.iec, fix.irsa, TEST_END);
	test_reject(s, fix.leaf_ec_key, TEST_HOST, 1444, "The certificate chain that you "
	    "uploaded has multiple leaf certificates. Check your input and try again.");
	free(s);
}

/* 1429: the certificate is for another key. */
static void
test_cert_key_mismatch(void **state)
{
	struct cert_info	*ci = NULL;
	struct kc_error		 err;
	char			*s;
	const char		*msg = "The private key you uploaded does not match the "
				    "certificate.";

	s = test_pem(fix.leaf_ec, fix.iec, TEST_END);
	test_reject(s, fix.other_key, TEST_HOST, 1429, msg);
	test_reject(s, fix.leaf_rsa_key, TEST_HOST, 1429, msg);
	/* No SPKI at all, or bytes that are not one. */
	assert_int_equal(cert_check(fix.store, s, strlen(s), NULL, 0, TEST_HOST,
	    CERT_BUNDLE_UBIQUITOUS, TEST_NOW_US, &ci, &err), KC_ERR_INVALID);
	assert_int_equal(err.code, 1429);
	assert_int_equal(cert_check(fix.store, s, strlen(s), (const uint8_t *)"junk", 4,
	    TEST_HOST, CERT_BUNDLE_UBIQUITOUS, TEST_NOW_US, &ci, &err), KC_ERR_INVALID);
	assert_int_equal(err.code, 1429);
	assert_int_equal(ERR_peek_error(), 0);
	free(s);
}

/* 1447: SHA-1, RSA-PSS, on the leaf or the intermediate; checked before trust. */
static void
test_cert_sigalg(void **state)
{
	struct test_spec	 sp;
	X509			*x, *inter;
	char			*s;

	x = test_leaf(fix.leaf_rsa_key, fix.irsa, fix.irsa_key, EVP_sha1(), TEST_SANS);
	s = test_pem(x, fix.irsa, TEST_END);
	test_reject(s, fix.leaf_rsa_key, TEST_HOST, 1447, "The certificate that you "
	    "uploaded uses an unsupported signature algorithm (sha1WithRSAEncryption).");
	free(s);
	X509_free(x);

	memset(&sp, 0, sizeof(sp));
	sp.key = fix.leaf_rsa_key;
	sp.issuer = fix.irsa;
	sp.issuer_key = fix.irsa_key;
	sp.md = EVP_sha256();
	sp.pss = 1;
	sp.cn = TEST_HOST;
	sp.sans = TEST_SANS;
	sp.nb = -TEST_DAY;
	sp.na = TEST_DAY;
	x = test_cert(&sp);
	s = test_pem(x, fix.irsa, TEST_END);
	test_reject(s, fix.leaf_rsa_key, TEST_HOST, 1447, "The certificate that you "
	    "uploaded uses an unsupported signature algorithm (rsassaPss).");
	free(s);
	X509_free(x);

	/* ECDSA with SHA-1 on the leaf. */
	x = test_leaf(fix.leaf_ec_key, fix.iec, fix.iec_key, EVP_sha1(), TEST_SANS);
	s = test_pem(x, fix.iec, TEST_END);
	test_reject(s, fix.leaf_ec_key, TEST_HOST, 1447, "The certificate that you "
	    "uploaded uses an unsupported signature algorithm (ecdsa-with-SHA1).");
	free(s);
	X509_free(x);

	/* A SHA-1 intermediate under a good leaf. */
	inter = test_inter(fix.iec_key, "Example EC Trust Services", "Example EC CA",
	    EVP_sha1());
	s = test_pem(fix.leaf_ec, inter, TEST_END);
	test_reject(s, fix.leaf_ec_key, TEST_HOST, 1447, NULL);
	free(s);
	X509_free(inter);

	/* A self-signed SHA-1 leaf: 1447 comes before 1441. */
	memset(&sp, 0, sizeof(sp));
	sp.key = fix.leaf_ec_key;
	sp.md = EVP_sha1();
	sp.cn = TEST_HOST;
	sp.sans = TEST_SANS;
	sp.nb = -TEST_DAY;
	sp.na = TEST_DAY;
	x = test_cert(&sp);
	s = test_pem(x, TEST_END);
	test_reject(s, fix.leaf_ec_key, TEST_HOST, 1447, NULL);
	free(s);
	X509_free(x);
}

/* 1441: self-signed, untrusted CA, expired, not yet valid, missing intermediate. */
static void
test_cert_trust(void **state)
{
	struct test_spec	 sp;
	X509			*x;
	char			*s;

	memset(&sp, 0, sizeof(sp));
	sp.key = fix.leaf_ec_key;
	sp.md = EVP_sha256();
	sp.o = "Acme Corp";
	sp.cn = TEST_HOST;
	sp.sans = TEST_SANS;
	sp.nb = -TEST_DAY;
	sp.na = TEST_DAY;
	x = test_cert(&sp);
	s = test_pem(x, TEST_END);
	test_reject_1441(s, fix.leaf_ec_key, "self-signed certificate");
	free(s);
	X509_free(x);

	x = test_leaf(fix.leaf_ec_key, fix.rogue, fix.rogue_key, EVP_sha256(), TEST_SANS);
	s = test_pem(x, TEST_END);
	test_reject_1441(s, fix.leaf_ec_key, "unable to get local issuer certificate");
	free(s);
	/* With the untrusted root sent along. */
	s = test_pem(x, fix.rogue, TEST_END);
	test_reject_1441(s, fix.leaf_ec_key, "self-signed certificate in certificate chain");
	free(s);
	X509_free(x);

	sp.issuer = fix.iec;
	sp.issuer_key = fix.iec_key;
	sp.nb = -100 * TEST_DAY;
	sp.na = -TEST_DAY;
	x = test_cert(&sp);
	s = test_pem(x, fix.iec, TEST_END);
	test_reject_1441(s, fix.leaf_ec_key, "certificate has expired");
	free(s);
	X509_free(x);

	sp.nb = TEST_DAY;
	sp.na = 100 * TEST_DAY;
	x = test_cert(&sp);
	s = test_pem(x, fix.iec, TEST_END);
	test_reject_1441(s, fix.leaf_ec_key, "certificate is not yet valid");
	free(s);
	X509_free(x);

	/* Missing intermediate, and the wrong one. */
	s = test_pem(fix.leaf_ec, TEST_END);
	test_reject_1441(s, fix.leaf_ec_key, "unable to get local issuer certificate");
	free(s);
	s = test_pem(fix.leaf_ec, fix.irsa, TEST_END);
	test_reject_1441(s, fix.leaf_ec_key, "unable to get local issuer certificate");
	free(s);

	/* A certificate for TLS clients only. */
	sp.nb = -TEST_DAY;
	sp.na = TEST_DAY;
	sp.eku = "clientAuth";
	x = test_cert(&sp);
	s = test_pem(x, fix.iec, TEST_END);
	test_reject_1441(s, fix.leaf_ec_key, "unsuitable certificate purpose");
	free(s);
	X509_free(x);
	sp.eku = NULL;

	/* Expired and for another hostname: trust answers first. */
	sp.nb = -100 * TEST_DAY;
	sp.na = -TEST_DAY;
	x = test_cert(&sp);
	s = test_pem(x, fix.iec, TEST_END);
	test_reject(s, fix.leaf_ec_key, "other.example.org", 1441, NULL);
	free(s);
	X509_free(x);
}

/* Is host covered by a leaf with these SANs (subject CN always TEST_HOST)? */
static int
test_covers(const char *sans, const char *host)
{
	struct cert_info	*ci = NULL;
	struct kc_error		 err;
	X509			*x;
	char			*s, want[256];
	int			 r;

	x = test_leaf(fix.leaf_ec_key, fix.iec, fix.iec_key, EVP_sha256(), sans);
	s = test_pem(x, fix.iec, TEST_END);
	r = test_check(s, strlen(s), fix.leaf_ec_key, host, &ci, &err);
	if (r != 0) {
		assert_int_equal(r, KC_ERR_INVALID);
		assert_int_equal(err.code, 1446);
		snprintf(want, sizeof(want), "The certificate that you uploaded does not "
		    "include the custom hostname - %s. Review your input and try again.",
		    host);
		assert_string_equal(err.message, want);
		assert_null(ci);
	} else
		assert_non_null(ci);
	cert_info_free(ci);
	free(s);
	X509_free(x);
	return r == 0;
}

/* 1446 and RFC 6125 wildcards; the subject CN is never looked at. */
static void
test_cert_hostname(void **state)
{
	const char	*wild = "DNS:*.acme-corp.co.uk";

	assert_true(test_covers(TEST_SANS, TEST_HOST));
	assert_true(test_covers(TEST_SANS, "SHOP.Acme-Corp.CO.UK"));
	assert_false(test_covers(TEST_SANS, "acme-corp.co.uk"));
	assert_false(test_covers(TEST_SANS, "other.example.org"));

	assert_true(test_covers(wild, "shop.acme-corp.co.uk"));
	assert_false(test_covers(wild, "a.b.acme-corp.co.uk"));
	assert_false(test_covers(wild, "acme-corp.co.uk"));
	assert_false(test_covers(wild, ".acme-corp.co.uk"));
	assert_false(test_covers(wild, ""));
	/* No partial-label wildcard. */
	assert_false(test_covers("DNS:sh*.acme-corp.co.uk", "shop.acme-corp.co.uk"));

	/* A wildcard hostname needs the identical wildcard name. */
	assert_true(test_covers(TEST_SANS, "*.shop.acme-corp.co.uk"));
	assert_true(test_covers(TEST_SANS, "*.SHOP.acme-corp.co.uk"));
	assert_false(test_covers(wild, "*.shop.acme-corp.co.uk"));
	assert_false(test_covers("DNS:www.shop.acme-corp.co.uk",
	    "*.shop.acme-corp.co.uk"));
	assert_true(test_covers(wild, "*.acme-corp.co.uk"));
	/* And a concrete name under it is covered by the wildcard SAN. */
	assert_true(test_covers(TEST_SANS, "www.shop.acme-corp.co.uk"));

	/* CN only, or CN plus an unrelated SAN: the CN does not count. */
	assert_false(test_covers(NULL, TEST_HOST));
	assert_false(test_covers("DNS:www.acme-corp.co.uk", TEST_HOST));
	assert_false(test_covers("IP:192.0.2.1", "192.0.2.1"));
}

/* Issue 12: a weak key anywhere on the path is refused (1441), whatever the upload order. */
static void
test_cert_weak_keys(void **state)
{
	static const struct {
		const char	*alg;		/* "RSA" or "EC" */
		size_t		 bits;
		const char	*curve;
		const char	*what;
	} t[] = {
		{ "RSA", 512, NULL, "RSA key of 512 bits" },
		{ "RSA", 1024, NULL, "RSA key of 1024 bits" },
		{ "RSA", 2047, NULL, "RSA key of 2047 bits" },
		{ "EC", 0, "P-224", "EC key of 224 bits" },
		{ "EC", 0, "P-192", "EC key of 192 bits" },
	};
	struct cert_info	*ci = NULL;
	struct kc_error		 err;
	EVP_PKEY		*k;
	X509			*inter, *leaf;
	char			*s;
	size_t			 i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (t[i].curve != NULL)
			k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", t[i].curve);
		else
			k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", t[i].bits);
		assert_non_null(k);
		inter = test_inter(k, "Acme Test Trust Inc", "Weak CA", EVP_sha256());
		leaf = test_leaf(fix.leaf_ec_key, inter, k, EVP_sha256(), TEST_SANS);
		s = test_pem(leaf, inter, TEST_END);
		test_reject_1441(s, fix.leaf_ec_key, t[i].what);
		free(s);
		s = test_pem(inter, leaf, TEST_END);
		test_reject_1441(s, fix.leaf_ec_key, "Weak CA");
		free(s);
		X509_free(leaf);
		X509_free(inter);
		EVP_PKEY_free(k);
	}

	/* The limits themselves pass: RSA-2048 (irsa) and P-256 with a P-256 intermediate. */
	s = test_pem(fix.leaf_rsa, fix.irsa, TEST_END);
	assert_int_equal(test_check(s, strlen(s), fix.leaf_rsa_key, TEST_HOST, &ci, &err), 0);
	cert_info_free(ci);
	ci = NULL;
	free(s);
	k = test_key_ec("P-256");
	inter = test_inter(k, "Acme Test Trust Inc", "P-256 CA", EVP_sha256());
	leaf = test_leaf(fix.leaf_ec_key, inter, k, EVP_sha256(), TEST_SANS);
	s = test_pem(leaf, inter, TEST_END);
	assert_int_equal(test_check(s, strlen(s), fix.leaf_ec_key, TEST_HOST, &ci, &err), 0);
	cert_info_free(ci);
	free(s);
	X509_free(leaf);
	X509_free(inter);
	EVP_PKEY_free(k);
}

/* Issue 12: a wildcard whose remainder is a public suffix covers nothing. */
static void
test_cert_wildcard_public_suffix(void **state)
{
	assert_false(test_covers("DNS:*.co.uk", "acme-corp.co.uk"));
	assert_false(test_covers("DNS:*.CO.UK", "acme-corp.co.uk"));
	assert_false(test_covers("DNS:*.co.uk.", "acme-corp.co.uk"));
	assert_false(test_covers("DNS:*.com", "acme-corp.com"));
	assert_false(test_covers("DNS:*.uk", "co.uk"));
	/* Private section of the list too: github.io is a public suffix. */
	assert_false(test_covers("DNS:*.github.io", "acme-corp.github.io"));
	/* An unknown top-level domain is a public suffix by the implicit "*" rule. */
	assert_false(test_covers("DNS:*.notatld", "acme.notatld"));
	/* One label below a public suffix is a registrable domain: its wildcard works. */
	assert_true(test_covers("DNS:*.acme-corp.co.uk", "shop.acme-corp.co.uk"));
	assert_true(test_covers("DNS:*.acme-corp.github.io", "www.acme-corp.github.io"));
	/* The public-suffix wildcard is skipped, the exact SAN after it still counts. */
	assert_true(test_covers("DNS:*.co.uk,DNS:acme-corp.co.uk", "acme-corp.co.uk"));
	assert_false(test_covers("DNS:*.co.uk,DNS:www.acme-corp.co.uk", "acme-corp.co.uk"));
}

/* Issue 12: only the path from the leaf to the trust anchor is stored. */
static void
test_cert_unrelated_dropped(void **state)
{
	struct cert_info	*ci = NULL;
	struct kc_error		 err;
	char			*s, *want;

	/* An unrelated intermediate (EC) and an unrelated root (rogue) come along. */
	s = test_pem(fix.iec, fix.irsa, fix.rogue, fix.leaf_rsa, TEST_END);
	assert_int_equal(test_check(s, strlen(s), fix.leaf_rsa_key, TEST_HOST, &ci, &err), 0);
	want = test_pem(fix.leaf_rsa, fix.irsa, TEST_END);
	assert_string_equal(ci->chain_pem, want);
	assert_int_equal(ci->dropped, 2);
	cert_info_free(ci);
	ci = NULL;
	free(want);
	free(s);

	/* The root uploaded along is on the path: kept, in path order. */
	s = test_pem(fix.root, fix.iec, fix.leaf_rsa, fix.irsa, TEST_END);
	assert_int_equal(test_check(s, strlen(s), fix.leaf_rsa_key, TEST_HOST, &ci, &err), 0);
	want = test_pem(fix.leaf_rsa, fix.irsa, fix.root, TEST_END);
	assert_string_equal(ci->chain_pem, want);
	assert_int_equal(ci->dropped, 1);
	cert_info_free(ci);
	ci = NULL;
	free(want);
	free(s);

	/* Nothing extra: nothing dropped; the fingerprint is the leaf's. */
	s = test_pem(fix.leaf_ec, fix.iec, TEST_END);
	assert_int_equal(test_check(s, strlen(s), fix.leaf_ec_key, TEST_HOST, &ci, &err), 0);
	assert_int_equal(ci->dropped, 0);
	{
		unsigned char	 md[32];
		unsigned int	 mdlen = 0;
		char		 hex[65], fp[CERT_FINGERPRINT_LEN + 1];
		unsigned int	 j;

		assert_int_equal(X509_digest(fix.leaf_ec, EVP_sha256(), md, &mdlen), 1);
		for (j = 0; j < mdlen; j++)
			snprintf(hex + 2 * j, 3, "%02x", md[j]);
		assert_string_equal(ci->fingerprint, hex);
		assert_int_equal(cert_pem_fingerprint(ci->chain_pem, fp), 0);
		assert_string_equal(fp, hex);
		assert_int_equal(cert_pem_fingerprint("no certificate", fp), KC_ERR_INVALID);
		assert_string_equal(fp, "");
	}
	cert_info_free(ci);
	free(s);
}

/* The success path with the intermediate sent first; every field. */
static void
test_cert_ok_rsa(void **state)
{
	struct cert_info	*ci = NULL;
	struct kc_error		 err;
	char			*s, *want;

	s = test_pem(fix.irsa, fix.leaf_rsa, TEST_END);
	assert_int_equal(test_check(s, strlen(s), fix.leaf_rsa_key, TEST_HOST, &ci, &err),
	    0);
	assert_non_null(ci);
	assert_string_equal(ci->issuer, "AcmeTestTrustInc");
	assert_string_equal(ci->serial, TEST_SERIAL);
	assert_string_equal(ci->signature, "SHA256WithRSA");
	assert_true(ci->not_before_us == (int64_t)(TEST_NOW - TEST_DAY) * 1000000);
	assert_true(ci->not_after_us == (int64_t)(TEST_NOW + 90 * TEST_DAY) * 1000000);
	assert_int_equal(ci->nhosts, 3);
	assert_string_equal(ci->hosts[0], "shop.acme-corp.co.uk");
	assert_string_equal(ci->hosts[1], "www.acme-corp.co.uk");
	assert_string_equal(ci->hosts[2], "*.shop.acme-corp.co.uk");
	want = test_pem(fix.leaf_rsa, fix.irsa, TEST_END);
	assert_string_equal(ci->chain_pem, want);
	free(want);
	cert_info_free(ci);
	free(s);

	/* With the root sent along, CRLF line ends and no final newline. */
	{
		char	*crlf, *p, *q;

		s = test_pem(fix.leaf_rsa, fix.irsa, fix.root, TEST_END);
		assert_non_null(crlf = malloc(strlen(s) * 2 + 1));
		for (p = s, q = crlf; *p != '\0'; p++) {
			if (*p == '\n')
				*q++ = '\r';
			*q++ = *p;
		}
		q[-2] = '\0';
		ci = NULL;
		assert_int_equal(test_check(crlf, strlen(crlf), fix.leaf_rsa_key, TEST_HOST,
		    &ci, &err), 0);
		assert_string_equal(ci->chain_pem, s);
		cert_info_free(ci);
		free(crlf);
		free(s);
	}
}

/*
 * bundle_method: with the intermediate in a trust bundle (beside the root), a leaf alone
 * is completed by ubiquitous and optimal, stored with its intermediate, and refused by
 * force; a full chain is stored the same way by all three.
 */
static void
test_cert_bundle_methods(void **state)
{
	static const enum cert_bundle	 completing[] = { CERT_BUNDLE_UBIQUITOUS,
	    CERT_BUNDLE_OPTIMAL };
	struct cert_store		*s = NULL;
	struct cert_info		*ci = NULL;
	struct kc_error			 err;
	enum cert_bundle		 m;
	char				 path[64], *pem, *leaf, *full, *want, *cause = NULL;
	const char *const		 bundles[1] = { path };
	unsigned char			*spki = NULL;
	size_t				 i;
	int				 fd, n;

	(void)state;
	assert_int_equal(cert_bundle_from_name("optimal", &m), 0);
	assert_int_equal(m, CERT_BUNDLE_OPTIMAL);
	assert_int_equal(cert_bundle_from_name("Force", &m), KC_ERR_INVALID);
	assert_int_equal(cert_bundle_from_name(NULL, &m), KC_ERR_INVALID);

	snprintf(path, sizeof(path), "/tmp/test-cert-bundle.XXXXXX");
	assert_true((fd = mkstemp(path)) != -1);
	/* The intermediate first: the order of a bundle does not matter. */
	pem = test_pem(fix.irsa, fix.root, TEST_END);
	assert_int_equal(write(fd, pem, strlen(pem)), (ssize_t)strlen(pem));
	close(fd);
	free(pem);
	assert_int_equal(cert_store_new(false, bundles, 1, &s, &cause), 0);
	unlink(path);

	assert_true((n = i2d_PUBKEY(fix.leaf_rsa_key, &spki)) > 0);
	leaf = test_pem(fix.leaf_rsa, TEST_END);
	full = test_pem(fix.leaf_rsa, fix.irsa, TEST_END);
	want = test_pem(fix.leaf_rsa, fix.irsa, TEST_END);
	for (i = 0; i < sizeof(completing) / sizeof(*completing); i++) {
		memset(&err, 0, sizeof(err));
		assert_int_equal(cert_check(s, leaf, strlen(leaf), spki, (size_t)n, TEST_HOST,
		    completing[i], TEST_NOW_US, &ci, &err), 0);
		assert_string_equal(ci->chain_pem, want);
		assert_int_equal(ci->dropped, 0);
		cert_info_free(ci);
		ci = NULL;
	}
	memset(&err, 0, sizeof(err));
	assert_int_equal(cert_check(s, leaf, strlen(leaf), spki, (size_t)n, TEST_HOST,
	    CERT_BUNDLE_FORCE, TEST_NOW_US, &ci, &err), KC_ERR_INVALID);
	assert_int_equal(err.code, 1441);
	assert_null(ci);
	memset(&err, 0, sizeof(err));
	assert_int_equal(cert_check(s, full, strlen(full), spki, (size_t)n, TEST_HOST,
	    CERT_BUNDLE_FORCE, TEST_NOW_US, &ci, &err), 0);
	assert_string_equal(ci->chain_pem, want);
	cert_info_free(ci);
	/* The fixture's store knows no intermediate: a leaf alone stays refused. */
	memset(&err, 0, sizeof(err));
	ci = NULL;
	assert_int_equal(cert_check(fix.store, leaf, strlen(leaf), spki, (size_t)n, TEST_HOST,
	    CERT_BUNDLE_UBIQUITOUS, TEST_NOW_US, &ci, &err), KC_ERR_INVALID);
	assert_int_equal(err.code, 1441);
	OPENSSL_free(spki);
	free(leaf);
	free(full);
	free(want);
	cert_store_free(s);
	assert_int_equal(ERR_peek_error(), 0);
}

/* ECDSA and RSA with SHA-384/512, the issuer fallback to CN. */
static void
test_cert_ok_variants(void **state)
{
	static const struct {
		int		 ec;
		const char	*md;
		const char	*want;
	} t[] = {
		{ 1, "SHA256", "ECDSAWithSHA256" },
		{ 1, "SHA384", "ECDSAWithSHA384" },
		{ 1, "SHA512", "ECDSAWithSHA512" },
		{ 0, "SHA256", "SHA256WithRSA" },
		{ 0, "SHA384", "SHA384WithRSA" },
		{ 0, "SHA512", "SHA512WithRSA" },
	};
	struct cert_info	*ci = NULL;
	struct kc_error		 err;
	X509			*x, *inter;
	EVP_MD			*md;
	char			*s;
	size_t			 i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_non_null(md = EVP_MD_fetch(NULL, t[i].md, NULL));
		inter = t[i].ec ? fix.iec : fix.irsa;
		x = test_leaf(fix.leaf_ec_key, inter, t[i].ec ? fix.iec_key : fix.irsa_key, md,
		    "DNS:b.acme-corp.co.uk,DNS:a.acme-corp.co.uk");
		s = test_pem(x, inter, TEST_END);
		assert_int_equal(test_check(s, strlen(s), fix.leaf_ec_key, "a.acme-corp.co.uk",
		    &ci, &err), 0);
		assert_string_equal(ci->signature, t[i].want);
		assert_string_equal(ci->issuer, t[i].ec ? "ExampleECTrustServices" :
		    "AcmeTestTrustInc");
		assert_int_equal(ci->nhosts, 2);
		assert_string_equal(ci->hosts[0], "b.acme-corp.co.uk");
		assert_string_equal(ci->hosts[1], "a.acme-corp.co.uk");
		cert_info_free(ci);
		ci = NULL;
		free(s);
		X509_free(x);
		EVP_MD_free(md);
	}

	/* The fixture's P-256 leaf, signed by the P-384 intermediate with SHA-384. */
	s = test_pem(fix.leaf_ec, fix.iec, TEST_END);
	assert_int_equal(test_check(s, strlen(s), fix.leaf_ec_key, TEST_HOST, &ci, &err),
	    0);
	assert_string_equal(ci->signature, "ECDSAWithSHA384");
	assert_string_equal(ci->serial, TEST_SERIAL);
	cert_info_free(ci);
	ci = NULL;
	free(s);

	/* Issuer without O: its CN; without either: "Unknown". Small serial. */
	inter = test_inter(fix.iec_key, NULL, "Acme Fallback CA", EVP_sha256());
	x = test_leaf(fix.leaf_ec_key, inter, fix.iec_key, EVP_sha256(), TEST_SANS);
	s = test_pem(x, inter, TEST_END);
	assert_int_equal(test_check(s, strlen(s), fix.leaf_ec_key, TEST_HOST, &ci, &err),
	    0);
	assert_string_equal(ci->issuer, "AcmeFallbackCA");
	cert_info_free(ci);
	ci = NULL;
	free(s);
	X509_free(x);
	X509_free(inter);

	inter = test_inter(fix.iec_key, NULL, NULL, EVP_sha256());
	{
		struct test_spec	 sp = {
			.key = fix.leaf_ec_key, .issuer = inter, .issuer_key = fix.iec_key,
			.md = EVP_sha256(), .sans = TEST_SANS, .nb = -TEST_DAY,
			.na = TEST_DAY, .serial = "7",
		};

		x = test_cert(&sp);
	}
	s = test_pem(x, inter, TEST_END);
	assert_int_equal(test_check(s, strlen(s), fix.leaf_ec_key, TEST_HOST, &ci, &err),
	    0);
	assert_string_equal(ci->issuer, "Unknown");
	assert_string_equal(ci->serial, "7");
	cert_info_free(ci);
	free(s);
	X509_free(x);
	X509_free(inter);
}

struct test_thread {
	const char	*good;		/* accepted chain for leaf_ec_key */
	const char	*bad;		/* 1441 chain for leaf_ec_key */
	unsigned char	*spki;
	size_t		 spkilen;
	int		 failures;
};

/* One worker: the store is shared, everything else is per call. */
static void *
test_thread_main(void *arg)
{
	struct test_thread	*t = arg;
	struct cert_info	*ci;
	struct kc_error		 err;
	int			 i;

	for (i = 0; i < 40; i++) {
		ci = NULL;
		if (cert_check(fix.store, t->good, strlen(t->good), t->spki, t->spkilen,
		    TEST_HOST, CERT_BUNDLE_UBIQUITOUS, TEST_NOW_US, &ci, &err) != 0 || ci == NULL ||
		    strcmp(ci->signature, "ECDSAWithSHA384") != 0)
			t->failures++;
		cert_info_free(ci);
		ci = NULL;
		if (cert_check(fix.store, t->bad, strlen(t->bad), t->spki, t->spkilen,
		    TEST_HOST, CERT_BUNDLE_UBIQUITOUS, TEST_NOW_US, &ci, &err) != KC_ERR_INVALID ||
		    err.code != 1441 || ci != NULL)
			t->failures++;
	}
	return NULL;
}

/* Worker threads checking at once against the one store. */
static void
test_cert_threads(void **state)
{
	struct test_thread	 t[4];
	pthread_t		 tid[4];
	unsigned char		*spki = NULL;
	char			*good, *bad;
	int			 i, n;

	good = test_pem(fix.leaf_ec, fix.iec, TEST_END);
	bad = test_pem(fix.leaf_ec, TEST_END);
	assert_true((n = i2d_PUBKEY(fix.leaf_ec_key, &spki)) > 0);
	for (i = 0; i < 4; i++) {
		t[i].good = good;
		t[i].bad = bad;
		t[i].spki = spki;
		t[i].spkilen = (size_t)n;
		t[i].failures = 0;
		assert_int_equal(pthread_create(&tid[i], NULL, test_thread_main, &t[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(tid[i], NULL), 0);
		assert_int_equal(t[i].failures, 0);
	}
	OPENSSL_free(spki);
	free(good);
	free(bad);
}

/* A small deterministic generator (xorshift64*) for the mutations. */
static uint64_t	test_rng = 0x9e3779b97f4a7c15ULL;

static uint32_t
test_rand(uint32_t n)
{
	test_rng ^= test_rng >> 12;
	test_rng ^= test_rng << 25;
	test_rng ^= test_rng >> 27;
	return n == 0 ? 0 : (uint32_t)((test_rng * 0x2545f4914f6cdd1dULL) >> 32) % n;
}

/* Apply one to four random mutations to buf (len bytes of cap). */
static void
test_mutate(unsigned char *buf, size_t *lenp, size_t cap)
{
	static const char	 alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				    "0123456789+/=-\n\r \t\0*";
	size_t			 len = *lenp, pos, n, k;
	int			 m, nmut;

	nmut = 1 + (int)test_rand(4);
	for (m = 0; m < nmut && len > 0; m++) {
		pos = test_rand((uint32_t)len);
		switch (test_rand(7)) {
		case 0:		/* one byte from the PEM alphabet */
			buf[pos] = (unsigned char)alphabet[test_rand(sizeof(alphabet))];
			break;
		case 1:		/* any byte */
			buf[pos] = (unsigned char)test_rand(256);
			break;
		case 2:		/* delete a run */
			n = 1 + test_rand(64);
			if (n > len - pos)
				n = len - pos;
			memmove(buf + pos, buf + pos + n, len - pos - n);
			len -= n;
			break;
		case 3:		/* duplicate a run */
			n = 1 + test_rand(256);
			if (n > len - pos)
				n = len - pos;
			if (len + n > cap)
				break;
			memmove(buf + pos + n, buf + pos, len - pos);
			len += n;
			break;
		case 4:		/* truncate */
			len = pos;
			break;
		case 5:		/* flip a bit */
			buf[pos] ^= (unsigned char)(1 << test_rand(8));
			break;
		default:	/* insert random bytes */
			n = 1 + test_rand(8);
			if (len + n > cap)
				break;
			memmove(buf + pos + n, buf + pos, len - pos);
			for (k = 0; k < n; k++)
				buf[pos + k] = (unsigned char)test_rand(256);
			len += n;
			break;
		}
	}
	*lenp = len;
}

/*
 * Random mutations of a valid chain, never a crash, only 0 or KC_ERR_INVALID: odd rounds
 * mutate the PEM text, even rounds the DER of the leaf or of the intermediate (re-encoded
 * as PEM, so that the X509 decoder and the later checks are reached).
 */
static void
test_cert_mutations(void **state)
{
	struct cert_info	*ci;
	struct kc_error		 err;
	unsigned char		*spki = NULL, *der[2] = { NULL, NULL }, *buf;
	char			*orig, *pem[2], *t, *in;
	size_t			 olen, len, cap, dlen[2];
	int			 iter, which, spkilen, r, n, codes[22] = { 0 }, ok = 0;
	BIO			*bio;
	long			 blen;

	orig = test_pem(fix.leaf_ec, fix.iec, TEST_END);
	olen = strlen(orig);
	pem[0] = test_pem(fix.leaf_ec, TEST_END);
	pem[1] = test_pem(fix.iec, TEST_END);
	assert_true((n = i2d_X509(fix.leaf_ec, &der[0])) > 0);
	dlen[0] = (size_t)n;
	assert_true((n = i2d_X509(fix.iec, &der[1])) > 0);
	dlen[1] = (size_t)n;
	cap = olen * 3;
	assert_non_null(buf = malloc(cap));
	assert_true((spkilen = i2d_PUBKEY(fix.leaf_ec_key, &spki)) > 0);

	for (iter = 0; iter < 2000; iter++) {
		in = NULL;
		if (iter % 2 == 1) {
			memcpy(buf, orig, olen);
			len = olen;
			test_mutate(buf, &len, cap);
		} else {
			which = (int)test_rand(2);
			memcpy(buf, der[which], dlen[which]);
			len = dlen[which];
			test_mutate(buf, &len, cap);
			if (len == 0)
				len = 1;	/* PEM_write_bio() wants a byte */
			assert_non_null(bio = BIO_new(BIO_s_mem()));
			if (which == 1)
				BIO_puts(bio, pem[0]);
			assert_true(PEM_write_bio(bio, "CERTIFICATE", "", buf, (long)len) > 0);
			if (which == 0)
				BIO_puts(bio, pem[1]);
			blen = BIO_get_mem_data(bio, &t);
			assert_non_null(in = malloc((size_t)blen));
			memcpy(in, t, (size_t)blen);
			len = (size_t)blen;
			BIO_free(bio);
		}
		ci = NULL;
		memset(&err, 0, sizeof(err));
		r = cert_check(fix.store, in != NULL ? in : (char *)buf, len, spki,
		    (size_t)spkilen, TEST_HOST, CERT_BUNDLE_UBIQUITOUS, TEST_NOW_US, &ci, &err);
		if (r != 0 && r != KC_ERR_INVALID)
			fail_msg("iteration %d: %d", iter, r);
		if (r == 0) {
			assert_non_null(ci);
			ok++;
		} else {
			assert_null(ci);
			assert_int_equal(err.status, KC_STATUS_INVALID_ARGUMENT);
			assert_true(err.code >= 1426 && err.code <= 1447);
			codes[err.code - 1426]++;
		}
		assert_int_equal(ERR_peek_error(), 0);
		cert_info_free(ci);
		free(in);
	}
	print_message("mutations: accepted %d, 1426 %d, 1427 %d, 1429 %d, 1441 %d, "
	    "1444 %d, 1445 %d, 1446 %d, 1447 %d\n", ok, codes[0], codes[1], codes[3],
	    codes[15], codes[18], codes[19], codes[20], codes[21]);
	OPENSSL_free(spki);
	OPENSSL_free(der[0]);
	OPENSSL_free(der[1]);
	free(pem[0]);
	free(pem[1]);
	free(buf);
	free(orig);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cert_store),
		cmocka_unit_test(test_cert_empty),
		cmocka_unit_test(test_cert_unparseable),
		cmocka_unit_test(test_cert_leaves),
		cmocka_unit_test(test_cert_key_mismatch),
		cmocka_unit_test(test_cert_sigalg),
		cmocka_unit_test(test_cert_trust),
		cmocka_unit_test(test_cert_hostname),
		cmocka_unit_test(test_cert_weak_keys),
		cmocka_unit_test(test_cert_wildcard_public_suffix),
		cmocka_unit_test(test_cert_unrelated_dropped),
		cmocka_unit_test(test_cert_ok_rsa),
		cmocka_unit_test(test_cert_bundle_methods),
		cmocka_unit_test(test_cert_ok_variants),
		cmocka_unit_test(test_cert_threads),
		cmocka_unit_test(test_cert_mutations),
	};

	return cmocka_run_group_tests(tests, test_setup, test_teardown);
}
