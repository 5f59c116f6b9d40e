/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * test-hsm-softhsm.c: hsm.c (and csr.c on top of it) against a real SoftHSM2 token made in
 * a temporary directory: key generation and attributes, both signers, the map and the
 * search, listing, destruction, login errors, session recovery, threads.
 * Exits 77 (skipped) when SoftHSM2 or its tools are missing.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dlfcn.h>
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
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "kc-err.h"
#include "csr.h"
#include "hsm.h"

#define T_PIN		"1234"
#define T_LABEL		"kc-test"
#define T_NTHREADS	4
#define T_PERTHREAD	3

static char		 t_dir[] = "/tmp/kc-hsm-test.XXXXXX";
static const char	*t_module;
static uint8_t		 t_ids[HSM_KEY_NTYPES][HSM_KEY_ID_LEN];
static const uint8_t	 t_other_id[HSM_KEY_ID_LEN] = { 0x01 };

static const char *const t_sans[] = { "shop.acme-corp.co.uk", "www.acme-corp.co.uk" };
static const struct csr_subject t_subject = {
	.country = "GB", .state = "England", .locality = "London",
	.organization = "Acme Corp", .organizational_unit = "", .common_name = "shop",
	.sans = t_sans, .nsans = 2,
};

struct t_signer {
	struct hsm_session	*s;
	struct hsm_key		*k;
};

static int
t_run(const char *fmt, ...) __attribute__((__format__(__printf__, 1, 2)));

static int
t_run(const char *fmt, ...)
{
	va_list	 ap;
	char	*cmd;
	int	 st;

	va_start(ap, fmt);
	if (vasprintf(&cmd, fmt, ap) == -1)
		return -1;
	va_end(ap);
	st = system(cmd);
	free(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static struct hsm *
t_open(enum hsm_signer signer)
{
	struct hsm_config	 cfg = { .module = t_module, .token_label = T_LABEL, .signer = signer };
	struct hsm		*h = NULL;
	char			*cause = NULL;
	int			 r;

	r = hsm_open(&cfg, T_PIN, strlen(T_PIN), &h, &cause);
	if (r != 0)
		fail_msg("hsm_open: %d: %s", r, cause ? cause : "");
	assert_null(cause);
	assert_int_equal(hsm_get_state(h), HSM_STATE_OK);
	assert_string_equal(hsm_token_label(h), T_LABEL);
	assert_int_equal(hsm_get_signer(h), signer);
	return h;
}

static int
t_sign_cb(void *arg, const uint8_t *tbs, size_t tbslen, uint8_t **sig, size_t *siglen)
{
	struct t_signer	*ts = arg;

	return hsm_sign(ts->s, ts->k, tbs, tbslen, sig, siglen);
}

/* A CSR signed in the token verifies with OpenSSL, against the token's public key. */
static void
t_check_csr(const char *pem, EVP_PKEY *pub)
{
	BIO		*bio;
	X509_REQ	*req;

	bio = BIO_new_mem_buf(pem, -1);
	req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
	assert_non_null(req);
	assert_int_equal(X509_REQ_verify(req, pub), 1);
	assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(req), pub), 1);
	X509_REQ_free(req);
	BIO_free(bio);
}

/* hsm_sign's output is a valid SHA-256 signature (PKCS#1 v1.5 or DER ECDSA). */
static void
t_check_sign(struct hsm_session *s, struct hsm_key *k)
{
	static const uint8_t	 msg[] = "to be signed";
	EVP_MD_CTX		*md;
	uint8_t			*sig = NULL;
	size_t			 siglen = 0;

	assert_int_equal(hsm_sign(s, k, msg, sizeof(msg), &sig, &siglen), 0);
	assert_true(siglen > 0);
	md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL,
	    hsm_key_public(k)), 1);
	assert_int_equal(EVP_DigestVerify(md, sig, siglen, msg, sizeof(msg)), 1);
	/* A flipped bit must not verify. */
	sig[siglen / 2] ^= 0x01;
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL,
	    hsm_key_public(k)), 1);
	assert_int_not_equal(EVP_DigestVerify(md, sig, siglen, msg, sizeof(msg)), 1);
	EVP_MD_CTX_free(md);
	free(sig);
}

static void
t_check_direct_csr(struct hsm_session *s, struct hsm_key *k)
{
	struct t_signer	 ts = { s, k };
	char		*pem = NULL, *cause = NULL;
	int		 r;

	r = csr_make(&t_subject, hsm_key_public(k), t_sign_cb, &ts, &pem, &cause);
	if (r != 0)
		fail_msg("csr_make: %d: %s", r, cause ? cause : "");
	t_check_csr(pem, hsm_key_public(k));
	free(pem);
}

static int
t_setup(void **state)
{
	FILE		*f;
	char		 path[256];

	if (mkdtemp(t_dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/tokens", t_dir);
	if (mkdir(path, 0700) == -1)
		return -1;
	snprintf(path, sizeof(path), "%s/softhsm2.conf", t_dir);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fprintf(f, "directories.tokendir = %s/tokens\nobjectstore.backend = file\n"
	    "log.level = ERROR\nslots.removable = false\n", t_dir);
	fclose(f);
	setenv("SOFTHSM2_CONF", path, 1);
	if (t_run("softhsm2-util --init-token --free --label %s --pin %s "
	    "--so-pin 12345678 >/dev/null", T_LABEL, T_PIN) != 0)
		return -1;
	/* A key that is not ours: hsm_key_list must not report it. */
	if (t_run("pkcs11-tool --module %s --token-label %s --login --pin %s "
	    "--keypairgen --key-type EC:prime256v1 --label other --id 01 >/dev/null 2>&1",
	    t_module, T_LABEL, T_PIN) != 0)
		return -1;
	return 0;
}

static int
t_teardown(void **state)
{
	t_run("rm -rf %s", t_dir);
	return 0;
}

static void
test_keytype_names(void **state)
{
	enum hsm_keytype	 t;
	int			 i;

	for (i = 0; i < HSM_KEY_NTYPES; i++) {
		assert_int_equal(hsm_keytype_parse(hsm_keytype_name(i), &t), 0);
		assert_int_equal(t, i);
	}
	assert_string_equal(hsm_keytype_name(HSM_KEY_P256), "p256v1");
	assert_string_equal(hsm_keytype_name(HSM_KEY_P384), "p384v1");
	assert_null(hsm_keytype_name(HSM_KEY_NTYPES));
	assert_int_equal(hsm_keytype_parse("ed25519", &t), KC_ERR_INVALID);
	assert_int_equal(hsm_keytype_parse("RSA2048", &t), KC_ERR_INVALID);
}

static void
test_open_errors(void **state)
{
	struct hsm_config	 cfg = {
		.module = t_module, .token_label = T_LABEL, .signer = HSM_SIGNER_DIRECT
	};
	struct hsm		*h = NULL;
	char			*cause = NULL;

	assert_int_equal(hsm_open(&cfg, "9999", 4, &h, &cause), KC_ERR_PIN_INCORRECT);
	assert_null(h);
	assert_non_null(cause);
	assert_null(strstr(cause, "9999"));
	free(cause);

	cfg.token_label = "no-such-token";
	assert_int_equal(hsm_open(&cfg, T_PIN, 4, &h, &cause), KC_ERR_TOKEN_NOT_PRESENT);
	assert_null(h);
	assert_non_null(strstr(cause, "no-such-token"));
	fprintf(stderr, "unknown label: %s\n", cause);
	free(cause);

	cfg.token_label = T_LABEL;
	cfg.module = "/nonexistent/libnothing.so";
	assert_int_equal(hsm_open(&cfg, T_PIN, 4, &h, &cause), KC_ERR_HSM);
	assert_null(h);
	assert_non_null(cause);
	free(cause);

	/* After all that, the right PIN still works (nothing got locked). */
	hsm_close(t_open(HSM_SIGNER_DIRECT));
}

static void
test_keygen_all(void **state)
{
	struct hsm		*h = t_open(HSM_SIGNER_DIRECT);
	struct hsm_session	*s = NULL;
	struct hsm_key		*k, *k2;
	char			 label[32], *uri;
	int			 t, bits[] = { 2048, 256, 3072, 4096, 384 }, maybe;

	assert_int_equal(hsm_session_new(h, &s), 0);
	for (t = 0; t < HSM_KEY_NTYPES; t++) {
		assert_int_equal(RAND_bytes(t_ids[t], HSM_KEY_ID_LEN), 1);
		snprintf(label, sizeof(label), "t-%s", hsm_keytype_name(t));
		k = NULL;
		assert_int_equal(hsm_keygen(s, t, t_ids[t], label, &k, &maybe), 0);
		assert_int_equal(maybe, 0);
		assert_int_equal(hsm_key_type(k), t);
		assert_int_equal(EVP_PKEY_get_bits(hsm_key_public(k)), bits[t]);
		assert_int_equal(EVP_PKEY_is_a(hsm_key_public(k),
		    t == HSM_KEY_P256 || t == HSM_KEY_P384 ? "EC" : "RSA"), 1);
		t_check_sign(s, k);
		t_check_direct_csr(s, k);

		/* The map answers now, with the same public key. */
		assert_int_equal(hsm_key_find(s, t_ids[t], &k2), 0);
		assert_int_equal(hsm_key_type(k2), t);
		assert_int_equal(EVP_PKEY_eq(hsm_key_public(k), hsm_key_public(k2)), 1);
		hsm_key_free(k2);
		hsm_key_free(k);
	}

	uri = hsm_key_uri(h, t_ids[0]);
	assert_non_null(uri);
	assert_int_equal(strncmp(uri, "pkcs11:token=kc-test;id=%", 25), 0);
	assert_int_equal(strlen(uri), strlen("pkcs11:token=kc-test;id=") +
	    3 * HSM_KEY_ID_LEN + strlen(";type=private"));
	assert_string_equal(uri + strlen(uri) - 13, ";type=private");
	free(uri);

	hsm_session_free(s);
	hsm_close(h);
}

/* What pkcs11-tool sees of our keys: sign-only private keys, never extractable. */
static void
test_attributes_pkcs11_tool(void **state)
{
	FILE	*p;
	char	 cmd[512], line[1024], kind[16] = "";
	int	 ours = 0, npriv = 0, npub = 0;

	snprintf(cmd, sizeof(cmd), "pkcs11-tool --module %s --token-label %s --login "
	    "--pin %s --list-objects 2>/dev/null", t_module, T_LABEL, T_PIN);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (fgets(line, sizeof(line), p) != NULL) {
		if (strncmp(line, "Private Key Object", 18) == 0) {
			strcpy(kind, "priv");
			ours = 0;
		} else if (strncmp(line, "Public Key Object", 17) == 0) {
			strcpy(kind, "pub");
			ours = 0;
		} else if (line[0] != ' ')
			kind[0] = '\0';
		if (strstr(line, "label:") && strstr(line, "keycustody:t-")) {
			ours = 1;
			if (strcmp(kind, "priv") == 0)
				npriv++;
			else if (strcmp(kind, "pub") == 0)
				npub++;
		}
		if (!ours)
			continue;
		if (strcmp(kind, "priv") == 0 && strstr(line, "Usage:"))
			assert_string_equal(line, "  Usage:      sign\n");
		if (strcmp(kind, "priv") == 0 && strstr(line, "Access:"))
			assert_string_equal(line, "  Access:     sensitive, always sensitive, "
			    "never extractable, local\n");
		if (strcmp(kind, "pub") == 0 && strstr(line, "Usage:"))
			assert_string_equal(line, "  Usage:      verify\n");
	}
	assert_int_equal(pclose(p), 0);
	assert_int_equal(npriv, HSM_KEY_NTYPES);
	assert_int_equal(npub, HSM_KEY_NTYPES);
}

/* A fresh hsm has an empty map: keys are found by searching the token. */
static void
test_find_by_search(void **state)
{
	struct hsm		*h = t_open(HSM_SIGNER_DIRECT);
	struct hsm_session	*s = NULL;
	struct hsm_key		*k;
	uint8_t			 none[HSM_KEY_ID_LEN] = { 0xee };
	int			 t;

	assert_int_equal(hsm_session_new(h, &s), 0);
	for (t = 0; t < HSM_KEY_NTYPES; t++) {
		assert_int_equal(hsm_key_find(s, t_ids[t], &k), 0);
		assert_int_equal(hsm_key_type(k), t);
		t_check_sign(s, k);
		hsm_key_free(k);
	}
	assert_int_equal(hsm_key_find(s, none, &k), KC_ERR_NOT_FOUND);
	assert_null(k);
	hsm_session_free(s);
	hsm_close(h);
}

static int
t_has_id(const uint8_t *ids, size_t n, const uint8_t *id)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (memcmp(ids + i * HSM_KEY_ID_LEN, id, HSM_KEY_ID_LEN) == 0)
			return 1;
	return 0;
}

static void
test_key_list(void **state)
{
	struct hsm		*h = t_open(HSM_SIGNER_DIRECT);
	struct hsm_session	*s = NULL;
	uint8_t			*ids = NULL;
	size_t			 n = 0;
	int			 t;

	assert_int_equal(hsm_session_new(h, &s), 0);
	assert_int_equal(hsm_key_list(s, &ids, &n), 0);
	assert_int_equal(n, HSM_KEY_NTYPES);
	for (t = 0; t < HSM_KEY_NTYPES; t++)
		assert_true(t_has_id(ids, n, t_ids[t]));
	assert_false(t_has_id(ids, n, t_other_id));
	free(ids);
	hsm_session_free(s);
	hsm_close(h);
}

/*
 * Close every session of the application behind hsm.c's back (the same module, loaded a
 * second time, is the same instance): the token forgets the login. The next operation
 * must reopen its session, log in again and succeed.
 */
typedef unsigned long (*t_closeall_fn)(unsigned long);
typedef unsigned long (*t_slotlist_fn)(unsigned char, unsigned long *, unsigned long *);

static void
t_close_all_sessions(void)
{
	t_closeall_fn	 closeall;
	t_slotlist_fn	 slotlist;
	unsigned long	 slots[16], n = 16, i;
	void		*dl;

	dl = dlopen(t_module, RTLD_NOW | RTLD_LOCAL);
	assert_non_null(dl);
	closeall = (t_closeall_fn)dlsym(dl, "C_CloseAllSessions");
	slotlist = (t_slotlist_fn)dlsym(dl, "C_GetSlotList");
	assert_non_null(closeall);
	assert_non_null(slotlist);
	assert_int_equal(slotlist(1, slots, &n), 0);
	for (i = 0; i < n; i++)
		assert_int_equal(closeall(slots[i]), 0);
	dlclose(dl);
}

static void
test_session_recovery(void **state)
{
	struct hsm		*h = t_open(HSM_SIGNER_DIRECT);
	struct hsm_session	*s = NULL;
	struct hsm_key		*k = NULL;
	int			 maybe;
	uint8_t			 id[HSM_KEY_ID_LEN];

	assert_int_equal(hsm_session_new(h, &s), 0);
	assert_int_equal(hsm_key_find(s, t_ids[HSM_KEY_P256], &k), 0);

	t_close_all_sessions();
	t_check_sign(s, k);		/* C_Sign: session handle invalid, recovered */
	assert_int_equal(hsm_get_state(h), HSM_STATE_OK);

	t_close_all_sessions();
	assert_int_equal(RAND_bytes(id, sizeof(id)), 1);
	hsm_key_free(k);
	assert_int_equal(hsm_keygen(s, HSM_KEY_P256, id, "t-recovery", &k, &maybe), 0);
	hsm_key_free(k);
	assert_int_equal(hsm_key_destroy(s, id), 0);
	assert_int_equal(hsm_get_state(h), HSM_STATE_OK);

	hsm_session_free(s);
	hsm_close(h);
}

/* The engine signer: libp11 loads the key by URI, OpenSSL signs the request. */
static void
test_engine(void **state)
{
	struct hsm		*h = t_open(HSM_SIGNER_ENGINE);
	struct hsm_session	*s = NULL;
	struct hsm_key		*k;
	EVP_PKEY		*pkey;
	char			*pem, *cause;
	int			 t, r;

	assert_int_equal(hsm_session_new(h, &s), 0);
	for (t = 0; t < HSM_KEY_NTYPES; t++) {
		assert_int_equal(hsm_key_find(s, t_ids[t], &k), 0);
		pkey = NULL;
		assert_int_equal(hsm_engine_key(s, k, &pkey), 0);
		assert_non_null(pkey);
		pem = cause = NULL;
		r = csr_make_with_key(&t_subject, hsm_key_public(k), pkey, &pem, &cause);
		if (r != 0)
			fail_msg("csr_make_with_key: %d: %s", r, cause ? cause : "");
		t_check_csr(pem, hsm_key_public(k));
		free(pem);
		EVP_PKEY_free(pkey);
		/* The direct signer still works next to the engine. */
		t_check_direct_csr(s, k);
		hsm_key_free(k);
	}
	hsm_session_free(s);
	hsm_close(h);

	/* Not configured: KC_ERR_INVALID. */
	h = t_open(HSM_SIGNER_DIRECT);
	assert_int_equal(hsm_session_new(h, &s), 0);
	assert_int_equal(hsm_key_find(s, t_ids[0], &k), 0);
	assert_int_equal(hsm_engine_key(s, k, &pkey), KC_ERR_INVALID);
	hsm_key_free(k);
	hsm_session_free(s);
	hsm_close(h);
}

struct t_thread {
	struct hsm	*h;
	int		 n;
	int		 failed;
	char		 why[128];
};

/*
 * One worker: its own session; generate keys, list (a search while the others create
 * keys), sign with both signers, destroy.
 */
static void *
t_worker(void *arg)
{
	struct t_thread		*w = arg;
	struct hsm_session	*s = NULL;
	struct hsm_key		*k = NULL, *k2 = NULL;
	int			 maybe;
	struct t_signer		 ts;
	EVP_PKEY		*pkey = NULL;
	uint8_t			 id[HSM_KEY_ID_LEN], *ids = NULL;
	size_t			 n;
	char			 label[32], *pem = NULL, *cause = NULL;
	int			 i, r;

#define T_TRY(x) do {							\
	if ((r = (x)) != 0) {						\
		snprintf(w->why, sizeof(w->why), "%s: %d", #x, r);	\
		goto out;						\
	}								\
} while (0)
	T_TRY(hsm_session_new(w->h, &s));
	for (i = 0; i < T_PERTHREAD; i++) {
		RAND_bytes(id, sizeof(id));
		snprintf(label, sizeof(label), "t-thread-%d-%d", w->n, i);
		T_TRY(hsm_keygen(s, i == 1 ? HSM_KEY_RSA2048 : HSM_KEY_P256, id, label,
		    &k, &maybe));
		T_TRY(hsm_key_list(s, &ids, &n));
		free(ids);
		ids = NULL;
		ts.s = s;
		ts.k = k;
		T_TRY(csr_make(&t_subject, hsm_key_public(k), t_sign_cb, &ts, &pem,
		    &cause));
		free(pem);
		pem = NULL;
		T_TRY(hsm_engine_key(s, k, &pkey));
		T_TRY(csr_make_with_key(&t_subject, hsm_key_public(k), pkey, &pem,
		    &cause));
		free(pem);
		pem = NULL;
		EVP_PKEY_free(pkey);
		pkey = NULL;
		T_TRY(hsm_key_destroy(s, id));
		if (hsm_key_find(s, id, &k2) != KC_ERR_NOT_FOUND) {
			snprintf(w->why, sizeof(w->why), "key still there after destroy");
			goto out;
		}
		hsm_key_free(k);
		k = NULL;
	}
	w->failed = 0;
 out:
#undef T_TRY
	if (cause != NULL)
		snprintf(w->why + strlen(w->why), sizeof(w->why) - strlen(w->why),
		    " (%s)", cause);
	free(cause);
	free(pem);
	EVP_PKEY_free(pkey);
	hsm_key_free(k);
	hsm_key_free(k2);
	hsm_session_free(s);
	return NULL;
}

static void
test_threads(void **state)
{
	struct hsm	*h = t_open(HSM_SIGNER_ENGINE);
	struct t_thread	 w[T_NTHREADS];
	pthread_t	 tid[T_NTHREADS];
	int		 i;

	for (i = 0; i < T_NTHREADS; i++) {
		w[i].h = h;
		w[i].n = i;
		w[i].failed = 1;
		w[i].why[0] = '\0';
		assert_int_equal(pthread_create(&tid[i], NULL, t_worker, &w[i]), 0);
	}
	for (i = 0; i < T_NTHREADS; i++) {
		pthread_join(tid[i], NULL);
		if (w[i].failed)
			fail_msg("thread %d: %s", i, w[i].why);
	}
	assert_int_equal(hsm_get_state(h), HSM_STATE_OK);
	hsm_close(h);
}

static int
t_count_ours(void)
{
	FILE	*p;
	char	 cmd[512], line[1024];
	int	 n = 0;

	snprintf(cmd, sizeof(cmd), "pkcs11-tool --module %s --token-label %s --login "
	    "--pin %s --list-objects 2>/dev/null", t_module, T_LABEL, T_PIN);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (fgets(line, sizeof(line), p) != NULL)
		if (strstr(line, "label:") && strstr(line, "keycustody:"))
			n++;
	assert_int_equal(pclose(p), 0);
	return n;
}

static void
test_destroy(void **state)
{
	struct hsm		*h = t_open(HSM_SIGNER_DIRECT);
	struct hsm_session	*s = NULL;
	struct hsm_key		*k;
	uint8_t			*ids = NULL;
	size_t			 n;
	int			 t;

	assert_int_equal(t_count_ours(), 2 * HSM_KEY_NTYPES);
	assert_int_equal(hsm_session_new(h, &s), 0);
	/* One pair known to the map, the others only to the token. */
	assert_int_equal(hsm_key_find(s, t_ids[0], &k), 0);
	hsm_key_free(k);
	for (t = 0; t < HSM_KEY_NTYPES; t++) {
		assert_int_equal(hsm_key_destroy(s, t_ids[t]), 0);
		assert_int_equal(hsm_key_find(s, t_ids[t], &k), KC_ERR_NOT_FOUND);
		/* Nothing left: still 0. */
		assert_int_equal(hsm_key_destroy(s, t_ids[t]), 0);
	}
	assert_int_equal(t_count_ours(), 0);
	assert_int_equal(hsm_key_list(s, &ids, &n), 0);
	assert_int_equal(n, 0);
	free(ids);
	hsm_session_free(s);
	hsm_close(h);
}

/*
 * Issue 15: what SoftHSM2 offers is negotiated. Every type, RSA signed by the token's
 * own SHA-256 mechanism, EC over a digest made here; the engine signer needs CKM_RSA_PKCS.
 * No key has been read back yet, so no history attribute is reported missing.
 */
static void
test_negotiated(void **state)
{
	struct hsm	*h;
	char		 buf[256];
	int		 i;

	(void)state;
	h = t_open(HSM_SIGNER_DIRECT);
	for (i = 0; i < HSM_KEY_NTYPES; i++) {
		assert_true(hsm_keytype_offered(h, (enum hsm_keytype)i));
		assert_true(hsm_keytype_info(h, (enum hsm_keytype)i, buf, sizeof(buf)));
		if (i == HSM_KEY_P256 || i == HSM_KEY_P384)
			assert_non_null(strstr(buf, "CKM_ECDSA"));
		else
			assert_string_equal(buf, "CKM_SHA256_RSA_PKCS");
	}
	assert_false(hsm_keytype_offered(h, HSM_KEY_NTYPES));
	assert_null(hsm_history_missing(h));
	assert_true(hsm_mac_offered(h));
	hsm_close(h);

	h = t_open(HSM_SIGNER_ENGINE);
	assert_true(hsm_keytype_info(h, HSM_KEY_RSA2048, buf, sizeof(buf)));
	assert_string_equal(buf, "CKM_RSA_PKCS over a DigestInfo(SHA-256)");
	hsm_close(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keytype_names),
		cmocka_unit_test(test_negotiated),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_keygen_all),
		cmocka_unit_test(test_attributes_pkcs11_tool),
		cmocka_unit_test(test_find_by_search),
		cmocka_unit_test(test_key_list),
		cmocka_unit_test(test_session_recovery),
		cmocka_unit_test(test_engine),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_destroy),
	};

	if ((t_module = getenv("KC_TEST_MODULE")) == NULL)
		t_module = KC_DEFAULT_MODULE;
	if (access(t_module, R_OK) == -1 ||
	    t_run("command -v softhsm2-util pkcs11-tool >/dev/null") != 0) {
		fprintf(stderr, "SoftHSM2 or its tools missing: skipped\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, t_setup, t_teardown);
}
