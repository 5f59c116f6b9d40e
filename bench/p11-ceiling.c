/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * p11-ceiling.c: the physical ceiling for CSR creation: raw PKCS#11 on the token
 * (C_GenerateKeyPair with keycustodyd's template, public key read back, C_Sign over the
 * request, PEM encoding by daemon/csr.c) on T threads, one session each; no daemon, no store.
 * With -G it only generates key pairs: that is how bench/run pre-fills a token. With -X
 * each operation generates a pair (not timed) and destroys it with the two C_DestroyObject
 * calls keycustodyd's delete makes (private, then public): their p50 is what the daemon's
 * delete compares with (issue 14).
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/time.h>

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>

#include <p11-kit/pkcs11.h>

#include "csr.h"

#define CEIL_ID_LEN		16	/* as HSM_KEY_ID_LEN */
#define CEIL_LABEL_PREFIX	"keycustody:"	/* as HSM_LABEL_PREFIX */

static const uint8_t ceil_p256_oid[] = {
	0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07
};

struct ceil_conf {
	CK_FUNCTION_LIST_PTR	 f;
	CK_SLOT_ID		 slot;
	int			 rsa;		/* rsa2048, else p256v1 */
	int			 keygen_only;
	int			 destroy;	/* -X: time C_DestroyObject x2 */
	int			 serialize;	/* one C_GenerateKeyPair at a time */
	unsigned long		 count;		/* 0: run for secs */
	double			 secs;
	const char		*label_prefix;
	atomic_ulong		 started;
	atomic_ulong		 done;
	atomic_ulong		 failed;
	atomic_int		 stop;
	pthread_mutex_t		 gen_lock;
	double			 t_keygen, t_sign;	/* summed seconds, under stat_lock */
	double			*t_destroy;	/* -X: each pair's, under stat_lock */
	double			 cpu_destroy;	/* -X: summed thread CPU seconds */
	size_t			 ndestroy, capdestroy;
	pthread_mutex_t		 stat_lock;
};

struct ceil_thread {
	struct ceil_conf	*c;
	pthread_t		 tid;
	CK_SESSION_HANDLE	 sh;
	double			 t_keygen, t_sign;
	char			 err[160];
};

struct ceil_sign_ctx {
	struct ceil_thread	*t;
	CK_OBJECT_HANDLE	 priv;
};

static double
ceil_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CPU seconds, user + system, of the whole process: every thread's PKCS#11 work. */
static double
ceil_cpu(void)
{
	struct rusage	ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
	    ru.ru_stime.tv_usec / 1e6;
}

static void
ceil_usage(void)
{
	fprintf(stderr, "usage: p11-ceiling [-G | -X] [-S] [-d secs | -n count] [-k p256v1|rsa2048]"
	    " [-l label-prefix]\n\t[-m module] [-P pin-file | -p pin] [-t token-label]"
	    " [-T threads]\n");
	exit(2);
}

/* Generate a pair with keycustodyd's template (daemon/hsm.c, hsm_generate). */
static CK_RV
ceil_generate(struct ceil_thread *t, const uint8_t *id, const char *label,
    CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
	struct ceil_conf	*c = t->c;
	static CK_BYTE		 exponent[] = { 0x01, 0x00, 0x01 };
	CK_BBOOL		 yes = CK_TRUE, no = CK_FALSE;
	CK_OBJECT_CLASS		 pubclass = CKO_PUBLIC_KEY, privclass = CKO_PRIVATE_KEY;
	CK_KEY_TYPE		 ckk = c->rsa ? CKK_RSA : CKK_EC;
	CK_ULONG		 bits = 2048, lablen = strlen(label);
	CK_MECHANISM		 mech = { 0, NULL, 0 };
	CK_ATTRIBUTE		 pubt[] = {
		{ CKA_CLASS, &pubclass, sizeof(pubclass) },
		{ CKA_KEY_TYPE, &ckk, sizeof(ckk) },
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &no, sizeof(no) },
		{ CKA_VERIFY, &yes, sizeof(yes) },
		{ CKA_VERIFY_RECOVER, &no, sizeof(no) },
		{ CKA_ENCRYPT, &no, sizeof(no) },
		{ CKA_WRAP, &no, sizeof(no) },
		{ CKA_DERIVE, &no, sizeof(no) },
		{ CKA_ID, (void *)id, CEIL_ID_LEN },
		{ CKA_LABEL, (void *)label, lablen },
		{ 0, NULL, 0 },
		{ 0, NULL, 0 },
	};
	CK_ATTRIBUTE		 privt[] = {
		{ CKA_CLASS, &privclass, sizeof(privclass) },
		{ CKA_KEY_TYPE, &ckk, sizeof(ckk) },
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &yes, sizeof(yes) },
		{ CKA_SENSITIVE, &yes, sizeof(yes) },
		{ CKA_EXTRACTABLE, &no, sizeof(no) },
		{ CKA_SIGN, &yes, sizeof(yes) },
		{ CKA_SIGN_RECOVER, &no, sizeof(no) },
		{ CKA_DECRYPT, &no, sizeof(no) },
		{ CKA_UNWRAP, &no, sizeof(no) },
		{ CKA_DERIVE, &no, sizeof(no) },
		{ CKA_ID, (void *)id, CEIL_ID_LEN },
		{ CKA_LABEL, (void *)label, lablen },
	};
	CK_ULONG		 npub = 11;
	CK_RV			 rv;

	if (c->rsa) {
		mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
		pubt[npub].type = CKA_MODULUS_BITS;
		pubt[npub].pValue = &bits;
		pubt[npub++].ulValueLen = sizeof(bits);
		pubt[npub].type = CKA_PUBLIC_EXPONENT;
		pubt[npub].pValue = exponent;
		pubt[npub++].ulValueLen = sizeof(exponent);
	} else {
		mech.mechanism = CKM_EC_KEY_PAIR_GEN;
		pubt[npub].type = CKA_EC_PARAMS;
		pubt[npub].pValue = (void *)ceil_p256_oid;
		pubt[npub++].ulValueLen = sizeof(ceil_p256_oid);
	}
	if (c->serialize)
		pthread_mutex_lock(&c->gen_lock);
	rv = c->f->C_GenerateKeyPair(t->sh, &mech, pubt, npub, privt,
	    sizeof(privt) / sizeof(privt[0]), pub, priv);
	if (c->serialize)
		pthread_mutex_unlock(&c->gen_lock);
	return rv;
}

/* Read one attribute into a malloc'd buffer. */
static CK_RV
ceil_attr(struct ceil_thread *t, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type, uint8_t **v,
    CK_ULONG *len)
{
	CK_ATTRIBUTE	a = { type, NULL, 0 };
	CK_RV		rv;

	*v = NULL;
	if ((rv = t->c->f->C_GetAttributeValue(t->sh, o, &a, 1)) != CKR_OK)
		return rv;
	if ((a.pValue = malloc(a.ulValueLen ? a.ulValueLen : 1)) == NULL)
		return CKR_HOST_MEMORY;
	if ((rv = t->c->f->C_GetAttributeValue(t->sh, o, &a, 1)) != CKR_OK) {
		free(a.pValue);
		return rv;
	}
	*v = a.pValue;
	*len = a.ulValueLen;
	return CKR_OK;
}

/* The public half as an OpenSSL key, the way hsm_read_public() builds it. */
static EVP_PKEY *
ceil_public(struct ceil_thread *t, CK_OBJECT_HANDLE pub)
{
	OSSL_PARAM_BLD	*bld = NULL;
	OSSL_PARAM	*params = NULL;
	EVP_PKEY_CTX	*ctx = NULL;
	EVP_PKEY	*pkey = NULL;
	BIGNUM		*n = NULL, *e = NULL;
	uint8_t		*v1 = NULL, *v2 = NULL, *pt;
	CK_ULONG	 l1 = 0, l2 = 0, ptlen;

	if ((bld = OSSL_PARAM_BLD_new()) == NULL)
		goto out;
	if (t->c->rsa) {
		if (ceil_attr(t, pub, CKA_MODULUS, &v1, &l1) != CKR_OK ||
		    ceil_attr(t, pub, CKA_PUBLIC_EXPONENT, &v2, &l2) != CKR_OK)
			goto out;
		if ((n = BN_bin2bn(v1, (int)l1, NULL)) == NULL ||
		    (e = BN_bin2bn(v2, (int)l2, NULL)) == NULL ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
			goto out;
		ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	} else {
		if (ceil_attr(t, pub, CKA_EC_POINT, &v1, &l1) != CKR_OK || l1 < 65)
			goto out;
		/* DER OCTET STRING around the 65-byte uncompressed point, or the bare point. */
		pt = v1 + (l1 - 65);
		ptlen = 65;
		if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
		    "prime256v1", 0) ||
		    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, ptlen))
			goto out;
		ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	}
	if (ctx == NULL || (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		pkey = NULL;
 out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	free(v1);
	free(v2);
	return pkey;
}

/* csr_sign_fn: C_Sign on the new private key, as the daemon's direct signer does. */
static int
ceil_sign(void *arg, const uint8_t *tbs, size_t tbslen, uint8_t **sig, size_t *siglen)
{
	struct ceil_sign_ctx	*sc = arg;
	struct ceil_thread	*t = sc->t;
	CK_FUNCTION_LIST_PTR	 f = t->c->f;
	CK_MECHANISM		 mech = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	uint8_t			 md[32], raw[512];
	const uint8_t		*data = tbs;
	CK_ULONG		 len = tbslen, rawlen = sizeof(raw);
	ECDSA_SIG		*es = NULL;
	BIGNUM			*br, *bs;
	unsigned char		*p;
	unsigned int		 mdlen;
	int			 n, r = -1;
	double			 t0 = ceil_now();

	if (!t->c->rsa) {
		if (!EVP_Digest(tbs, tbslen, md, &mdlen, EVP_sha256(), NULL))
			return -1;
		mech.mechanism = CKM_ECDSA;
		data = md;
		len = mdlen;
	}
	if (f->C_SignInit(t->sh, &mech, sc->priv) != CKR_OK ||
	    f->C_Sign(t->sh, (CK_BYTE_PTR)data, len, raw, &rawlen) != CKR_OK)
		goto out;
	if (t->c->rsa) {
		if ((*sig = malloc(rawlen)) == NULL)
			goto out;
		memcpy(*sig, raw, rawlen);
		*siglen = rawlen;
		r = 0;
		goto out;
	}
	if ((es = ECDSA_SIG_new()) == NULL)
		goto out;
	br = BN_bin2bn(raw, (int)rawlen / 2, NULL);
	bs = BN_bin2bn(raw + rawlen / 2, (int)rawlen / 2, NULL);
	if (br == NULL || bs == NULL || !ECDSA_SIG_set0(es, br, bs)) {
		BN_free(br);
		BN_free(bs);
		goto out;
	}
	if ((n = i2d_ECDSA_SIG(es, NULL)) <= 0 || (*sig = malloc((size_t)n)) == NULL)
		goto out;
	p = *sig;
	i2d_ECDSA_SIG(es, &p);
	*siglen = (size_t)n;
	r = 0;
 out:
	ECDSA_SIG_free(es);
	t->t_sign += ceil_now() - t0;
	return r;
}

/* Destroy the pair as hsm_destroy() does, private half first; keep the time both took. */
static int
ceil_destroy(struct ceil_thread *t, CK_OBJECT_HANDLE pub, CK_OBJECT_HANDLE priv)
{
	struct ceil_conf	*c = t->c;
	struct timespec		 c0, c1;
	double			 t0, el, *v;
	CK_RV			 rv;

	/* The thread's CPU too: what the module spends, whatever else runs on the machine. */
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
	t0 = ceil_now();
	if ((rv = c->f->C_DestroyObject(t->sh, priv)) == CKR_OK)
		rv = c->f->C_DestroyObject(t->sh, pub);
	el = ceil_now() - t0;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
	if (rv != CKR_OK) {
		snprintf(t->err, sizeof(t->err), "C_DestroyObject: 0x%lx", (unsigned long)rv);
		return -1;
	}
	pthread_mutex_lock(&c->stat_lock);
	if (c->ndestroy == c->capdestroy) {
		c->capdestroy = c->capdestroy ? c->capdestroy * 2 : 1024;
		if ((v = realloc(c->t_destroy, c->capdestroy * sizeof(*v))) == NULL) {
			pthread_mutex_unlock(&c->stat_lock);
			snprintf(t->err, sizeof(t->err), "out of memory");
			return -1;
		}
		c->t_destroy = v;
	}
	c->t_destroy[c->ndestroy++] = el;
	c->cpu_destroy += (c1.tv_sec - c0.tv_sec) + (c1.tv_nsec - c0.tv_nsec) / 1e9;
	pthread_mutex_unlock(&c->stat_lock);
	return 0;
}

static int
ceil_cmp_double(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* One CSR (or, with -G, one key pair; with -X, one pair made and destroyed). */
static int
ceil_one(struct ceil_thread *t)
{
	static const char *const sans[] = { "app.acme-corp.co.uk", "www.acme-corp.co.uk",
	    "blog.acme-corp.co.uk", "acme-corp.co.uk" };
	struct csr_subject	 subj;
	struct ceil_sign_ctx	 sc;
	CK_OBJECT_HANDLE	 pub, priv;
	EVP_PKEY		*pkey = NULL;
	uint8_t			 id[CEIL_ID_LEN];
	char			 label[96], hex[2 * CEIL_ID_LEN + 1];
	char			*pem = NULL, *cause = NULL;
	CK_RV			 rv;
	double			 t0;
	size_t			 i;
	int			 r = -1;

	if (RAND_bytes(id, sizeof(id)) != 1)
		return -1;
	for (i = 0; i < CEIL_ID_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", id[i]);
	snprintf(label, sizeof(label), "%s%s", t->c->label_prefix, hex);
	t0 = ceil_now();
	rv = ceil_generate(t, id, label, &pub, &priv);
	t->t_keygen += ceil_now() - t0;
	if (rv != CKR_OK) {
		snprintf(t->err, sizeof(t->err), "C_GenerateKeyPair: 0x%lx", (unsigned long)rv);
		return -1;
	}
	if (t->c->keygen_only)
		return 0;
	if (t->c->destroy)
		return ceil_destroy(t, pub, priv);
	if ((pkey = ceil_public(t, pub)) == NULL) {
		snprintf(t->err, sizeof(t->err), "reading the public key");
		goto out;
	}
	memset(&subj, 0, sizeof(subj));
	subj.country = "US";
	subj.state = "MA";
	subj.locality = "Boston";
	subj.organization = "City of Boston";
	subj.organizational_unit = "Championship Parade Detail";
	subj.common_name = "app.acme-corp.co.uk";
	subj.sans = sans;
	subj.nsans = sizeof(sans) / sizeof(sans[0]);
	sc.t = t;
	sc.priv = priv;
	if (csr_make(&subj, pkey, ceil_sign, &sc, &pem, &cause) != 0) {
		snprintf(t->err, sizeof(t->err), "csr_make: %s", cause ? cause : "failed");
		goto out;
	}
	r = 0;
 out:
	free(pem);
	free(cause);
	EVP_PKEY_free(pkey);
	return r;
}

static void *
ceil_thread(void *arg)
{
	struct ceil_thread	*t = arg;
	struct ceil_conf	*c = t->c;

	while (!atomic_load(&c->stop)) {
		if (c->count > 0 && atomic_fetch_add(&c->started, 1) >= c->count)
			break;
		if (ceil_one(t) == 0)
			atomic_fetch_add(&c->done, 1);
		else if (atomic_fetch_add(&c->failed, 1) == 0)
			fprintf(stderr, "p11-ceiling: %s\n", t->err);
	}
	pthread_mutex_lock(&c->stat_lock);
	c->t_keygen += t->t_keygen;
	c->t_sign += t->t_sign;
	pthread_mutex_unlock(&c->stat_lock);
	return NULL;
}

/* The slot whose token has this label (padded with spaces to 32 bytes). */
static int
ceil_find_slot(CK_FUNCTION_LIST_PTR f, const char *label, CK_SLOT_ID *slot)
{
	CK_SLOT_ID	 slots[64];
	CK_ULONG	 n = 64, i;
	CK_TOKEN_INFO	 ti;
	char		 want[32];
	size_t		 len = strlen(label);

	if (len > sizeof(want))
		return -1;
	memset(want, ' ', sizeof(want));
	memcpy(want, label, len);
	if (f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
		return -1;
	for (i = 0; i < n; i++) {
		if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
		    memcmp(ti.label, want, sizeof(want)) == 0) {
			*slot = slots[i];
			return 0;
		}
	}
	return -1;
}

static char *
ceil_read_pin(const char *path)
{
	FILE	*fp;
	char	 buf[256];

	if ((fp = fopen(path, "r")) == NULL || fgets(buf, sizeof(buf), fp) == NULL) {
		fprintf(stderr, "p11-ceiling: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	fclose(fp);
	buf[strcspn(buf, "\r\n")] = '\0';
	return strdup(buf);
}

int
main(int argc, char *argv[])
{
	struct ceil_conf	 c;
	struct ceil_thread	*th;
	CK_C_GetFunctionList	 gfl;
	CK_C_INITIALIZE_ARGS	 ia;
	const char		*module = "/usr/lib/softhsm/libsofthsm2.so";
	const char		*token = "kc-test", *kt = "p256v1";
	char			*pin = NULL, *end;
	void			*dl;
	unsigned int		 nthreads = 1, i;
	double			 t0, el, rate, cpu0, cpu;
	CK_RV			 rv;
	int			 ch;

	memset(&c, 0, sizeof(c));
	c.secs = 10;
	c.label_prefix = CEIL_LABEL_PREFIX "ceiling-";
	while ((ch = getopt(argc, argv, "d:Gk:l:m:n:p:P:St:T:X")) != -1) {
		switch (ch) {
		case 'd':
			c.secs = strtod(optarg, &end);
			if (*end != '\0' || c.secs <= 0)
				ceil_usage();
			break;
		case 'G':
			c.keygen_only = 1;
			break;
		case 'k':
			kt = optarg;
			break;
		case 'l':
			c.label_prefix = optarg;
			break;
		case 'm':
			module = optarg;
			break;
		case 'n':
			c.count = strtoul(optarg, &end, 10);
			if (*end != '\0' || c.count == 0)
				ceil_usage();
			break;
		case 'p':
			pin = strdup(optarg);
			break;
		case 'P':
			pin = ceil_read_pin(optarg);
			break;
		case 'S':
			c.serialize = 1;
			break;
		case 't':
			token = optarg;
			break;
		case 'T':
			nthreads = (unsigned int)strtoul(optarg, &end, 10);
			if (*end != '\0' || nthreads == 0 || nthreads > 256)
				ceil_usage();
			break;
		case 'X':
			c.destroy = 1;
			break;
		default:
			ceil_usage();
		}
	}
	if (optind != argc || pin == NULL || (c.keygen_only && c.destroy))
		ceil_usage();
	if (strcmp(kt, "rsa2048") == 0)
		c.rsa = 1;
	else if (strcmp(kt, "p256v1") != 0) {
		fprintf(stderr, "p11-ceiling: key type %s: only p256v1 and rsa2048\n", kt);
		return 2;
	}
	pthread_mutex_init(&c.gen_lock, NULL);
	pthread_mutex_init(&c.stat_lock, NULL);

	if ((dl = dlopen(module, RTLD_NOW)) == NULL ||
	    (gfl = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList")) == NULL ||
	    gfl(&c.f) != CKR_OK) {
		fprintf(stderr, "p11-ceiling: %s: cannot load\n", module);
		return 1;
	}
	memset(&ia, 0, sizeof(ia));
	ia.flags = CKF_OS_LOCKING_OK;
	if ((rv = c.f->C_Initialize(&ia)) != CKR_OK) {
		fprintf(stderr, "p11-ceiling: C_Initialize: 0x%lx\n", (unsigned long)rv);
		return 1;
	}
	if (ceil_find_slot(c.f, token, &c.slot) != 0) {
		fprintf(stderr, "p11-ceiling: no token labelled %s\n", token);
		return 1;
	}
	th = calloc(nthreads, sizeof(*th));
	if (th == NULL)
		return 1;
	for (i = 0; i < nthreads; i++) {
		th[i].c = &c;
		if ((rv = c.f->C_OpenSession(c.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
		    NULL, &th[i].sh)) != CKR_OK) {
			fprintf(stderr, "p11-ceiling: C_OpenSession: 0x%lx\n", (unsigned long)rv);
			return 1;
		}
	}
	rv = c.f->C_Login(th[0].sh, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
	OPENSSL_cleanse(pin, strlen(pin));
	free(pin);
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
		fprintf(stderr, "p11-ceiling: C_Login: 0x%lx\n", (unsigned long)rv);
		return 1;
	}

	cpu0 = ceil_cpu();
	t0 = ceil_now();
	for (i = 0; i < nthreads; i++)
		if (pthread_create(&th[i].tid, NULL, ceil_thread, &th[i]) != 0)
			return 1;
	if (c.count == 0) {
		while (ceil_now() - t0 < c.secs)
			usleep(20000);
		atomic_store(&c.stop, 1);
	}
	for (i = 0; i < nthreads; i++)
		pthread_join(th[i].tid, NULL);
	el = ceil_now() - t0;
	cpu = ceil_cpu() - cpu0;
	rate = atomic_load(&c.done) / el;

	for (i = 0; i < nthreads; i++)
		c.f->C_CloseSession(th[i].sh);
	c.f->C_Finalize(NULL);
	free(th);

	printf("p11-ceiling: %s, %u thread(s)%s%s: %lu %s in %.2f s = %.2f/s, %lu failed\n",
	    kt, nthreads, c.serialize ? ", keygen serialized" : "",
	    c.keygen_only ? ", keygen only" : c.destroy ? ", keygen and destroy" : "",
	    atomic_load(&c.done), c.keygen_only || c.destroy ? "key pairs" : "CSRs", el, rate,
	    atomic_load(&c.failed));
	if (atomic_load(&c.done) > 0)
		printf("p11-ceiling: per operation: keygen %.2f ms, sign %.3f ms, rest %.3f ms"
		    " (thread time)\n", c.t_keygen * 1e3 / atomic_load(&c.done),
		    c.t_sign * 1e3 / atomic_load(&c.done),
		    (el * nthreads - c.t_keygen - c.t_sign) * 1e3 / atomic_load(&c.done));
	/* CPU per CSR compares with keycustody-bench's cpu_daemon_us, whatever the load. */
	printf("CEILING key=%s threads=%u serialize=%d keygen_only=%d ok=%lu failed=%lu "
	    "secs=%.3f rate=%.2f keygen_ms=%.3f sign_ms=%.3f cpu_us=%.1f\n", kt, nthreads,
	    c.serialize, c.keygen_only, atomic_load(&c.done), atomic_load(&c.failed), el, rate,
	    atomic_load(&c.done) ? c.t_keygen * 1e3 / atomic_load(&c.done) : 0.0,
	    atomic_load(&c.done) ? c.t_sign * 1e3 / atomic_load(&c.done) : 0.0,
	    atomic_load(&c.done) ? cpu * 1e6 / atomic_load(&c.done) : 0.0);
	if (c.destroy && c.ndestroy > 0) {
		qsort(c.t_destroy, c.ndestroy, sizeof(*c.t_destroy), ceil_cmp_double);
		printf("DESTROY key=%s threads=%u ok=%zu p50_ms=%.3f p99_ms=%.3f cpu_us=%.1f\n", kt,
		    nthreads, c.ndestroy, c.t_destroy[(c.ndestroy - 1) / 2] * 1e3,
		    c.t_destroy[(size_t)(0.99 * (double)(c.ndestroy - 1) + 0.5)] * 1e3,
		    c.cpu_destroy * 1e6 / (double)c.ndestroy);
	}
	free(c.t_destroy);
	return atomic_load(&c.failed) > 0 && atomic_load(&c.done) == 0 ? 1 : 0;
}
