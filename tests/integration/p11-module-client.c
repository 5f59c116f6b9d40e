/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * p11-module-client.c: a long-lived PKCS#11 application for test-pkcs11-module.sh, so that
 * what one process sees over time can be checked: the object list as hostnames come and
 * go, handles and signatures across a daemon restart, a child of fork() and threads. It
 * loads the module given as argv[1] and runs the commands read from standard input, one
 * a line, answering each with its lines and then "done":
 *	list			the private keys: "key <handle> <label>", sorted by label
 *	sign <label>		one signature (SHA-256 hashed by the module), verified here
 *				with the key's CKA_PUBLIC_KEY_INFO: "ok <handle>" or the CKR
 *	fork <label>		the same in a child of fork(): "child ok" or "child <CKR>"
 *	threads <label> T N	T threads each make N signatures: "threads <ok> <failed>"
 */
#include "config.h"

#include <sys/wait.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <p11-kit/pkcs11.h>

#define CLIENT_MAX_KEYS	64

static CK_FUNCTION_LIST	*p11;
static CK_SLOT_ID	 client_slot;

struct client_key {
	CK_OBJECT_HANDLE	 h;
	char			 label[256];
};

/* Every private key, by label. */
static int
client_keys(CK_SESSION_HANDLE s, struct client_key *keys, size_t *n)
{
	CK_OBJECT_CLASS		 klass = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE		 tmpl = { CKA_CLASS, &klass, sizeof(klass) };
	CK_OBJECT_HANDLE	 hs[CLIENT_MAX_KEYS];
	CK_ULONG		 count = 0, i;
	CK_ATTRIBUTE		 a;
	CK_RV			 rv;

	if ((rv = p11->C_FindObjectsInit(s, &tmpl, 1)) != CKR_OK)
		return (int)rv;
	rv = p11->C_FindObjects(s, hs, CLIENT_MAX_KEYS, &count);
	p11->C_FindObjectsFinal(s);
	if (rv != CKR_OK)
		return (int)rv;
	for (i = 0; i < count; i++) {
		keys[i].h = hs[i];
		memset(keys[i].label, 0, sizeof(keys[i].label));
		a = (CK_ATTRIBUTE){ CKA_LABEL, keys[i].label, sizeof(keys[i].label) - 1 };
		if ((rv = p11->C_GetAttributeValue(s, hs[i], &a, 1)) != CKR_OK)
			return (int)rv;
	}
	*n = count;
	return 0;
}

static int
client_key_cmp(const void *a, const void *b)
{
	return strcmp(((const struct client_key *)a)->label,
	    ((const struct client_key *)b)->label);
}

static CK_RV
client_find(CK_SESSION_HANDLE s, const char *label, CK_OBJECT_HANDLE *h)
{
	CK_OBJECT_CLASS		 klass = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE		 tmpl[2] = {
		{ CKA_CLASS, &klass, sizeof(klass) },
		{ CKA_LABEL, (void *)label, strlen(label) },
	};
	CK_ULONG		 count = 0;
	CK_RV			 rv;

	if ((rv = p11->C_FindObjectsInit(s, tmpl, 2)) != CKR_OK)
		return rv;
	rv = p11->C_FindObjects(s, h, 1, &count);
	p11->C_FindObjectsFinal(s);
	if (rv == CKR_OK && count != 1)
		rv = CKR_KEY_HANDLE_INVALID;
	return rv;
}

/* Verify sig over data with the key's public key info; r || s for EC. */
static int
client_verify(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_KEY_TYPE kt, const uint8_t *data,
    size_t len, const uint8_t *sig, size_t siglen)
{
	uint8_t			 spki[2048], *der = NULL;
	const unsigned char	*p = spki;
	CK_ATTRIBUTE		 a = { CKA_PUBLIC_KEY_INFO, spki, sizeof(spki) };
	EVP_PKEY		*pkey = NULL;
	EVP_MD_CTX		*ctx = NULL;
	ECDSA_SIG		*es = NULL;
	int			 ok = 0, n;

	if (p11->C_GetAttributeValue(s, h, &a, 1) != CKR_OK ||
	    (pkey = d2i_PUBKEY(NULL, &p, (long)a.ulValueLen)) == NULL)
		goto out;
	if (kt == CKK_EC) {
		if ((es = ECDSA_SIG_new()) == NULL ||
		    !ECDSA_SIG_set0(es, BN_bin2bn(sig, (int)siglen / 2, NULL),
		    BN_bin2bn(sig + siglen / 2, (int)siglen / 2, NULL)) ||
		    (n = i2d_ECDSA_SIG(es, &der)) <= 0)
			goto out;
		sig = der;
		siglen = (size_t)n;
	}
	ok = (ctx = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey) == 1 &&
	    EVP_DigestVerify(ctx, sig, siglen, data, len) == 1;
 out:
	ECDSA_SIG_free(es);
	OPENSSL_free(der);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	return ok;
}

/* One signature with the key labelled label, on a session of its own; verified. */
static CK_RV
client_sign(const char *label, CK_OBJECT_HANDLE *hp)
{
	CK_SESSION_HANDLE	 s;
	CK_OBJECT_HANDLE	 h;
	CK_KEY_TYPE		 kt;
	CK_ATTRIBUTE		 a = { CKA_KEY_TYPE, &kt, sizeof(kt) };
	CK_MECHANISM		 m = { 0, NULL, 0 };
	uint8_t			 data[100], sig[1024];
	CK_ULONG		 siglen = sizeof(sig);
	CK_RV			 rv;

	if (RAND_bytes(data, sizeof(data)) != 1)
		return CKR_GENERAL_ERROR;
	if ((rv = p11->C_OpenSession(client_slot, CKF_SERIAL_SESSION, NULL, NULL, &s)) !=
	    CKR_OK)
		return rv;
	if ((rv = client_find(s, label, &h)) != CKR_OK ||
	    (rv = p11->C_GetAttributeValue(s, h, &a, 1)) != CKR_OK)
		goto out;
	m.mechanism = kt == CKK_EC ? CKM_ECDSA_SHA256 : CKM_SHA256_RSA_PKCS;
	if ((rv = p11->C_SignInit(s, &m, h)) != CKR_OK ||
	    (rv = p11->C_Sign(s, data, sizeof(data), sig, &siglen)) != CKR_OK)
		goto out;
	if (!client_verify(s, h, kt, data, sizeof(data), sig, siglen))
		rv = CKR_SIGNATURE_INVALID;
	if (hp != NULL)
		*hp = h;
 out:
	p11->C_CloseSession(s);
	return rv;
}

struct client_thread {
	pthread_t	 t;
	const char	*label;
	int		 n, ok, failed;
};

static void *
client_thread_main(void *arg)
{
	struct client_thread	*ct = arg;
	int			 i;

	for (i = 0; i < ct->n; i++) {
		if (client_sign(ct->label, NULL) == CKR_OK)
			ct->ok++;
		else
			ct->failed++;
	}
	return NULL;
}

static void
client_threads(const char *label, int nt, int n)
{
	struct client_thread	 ts[32];
	int			 i, ok = 0, failed = 0;

	if (nt < 1 || nt > 32)
		nt = 1;
	for (i = 0; i < nt; i++) {
		ts[i] = (struct client_thread){ .label = label, .n = n };
		if (pthread_create(&ts[i].t, NULL, client_thread_main, &ts[i]) != 0)
			ts[i].failed = n;
	}
	for (i = 0; i < nt; i++) {
		pthread_join(ts[i].t, NULL);
		ok += ts[i].ok;
		failed += ts[i].failed;
	}
	printf("threads %d %d\n", ok, failed);
}

int
main(int argc, char **argv)
{
	CK_C_GetFunctionList	 get;
	CK_C_INITIALIZE_ARGS	 init = { .flags = CKF_OS_LOCKING_OK };
	CK_SESSION_HANDLE	 s;
	CK_OBJECT_HANDLE	 h;
	struct client_key	 keys[CLIENT_MAX_KEYS];
	char			 line[512], label[256];
	CK_ULONG		 nslots = 1;
	size_t			 n = 0, i;
	int			 status, t, k, r;
	void			*dl;
	pid_t			 pid;
	CK_RV			 rv;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 2 || (dl = dlopen(argv[1], RTLD_NOW)) == NULL ||
	    (get = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList")) == NULL ||
	    get(&p11) != CKR_OK || p11->C_Initialize(&init) != CKR_OK ||
	    p11->C_GetSlotList(CK_TRUE, &client_slot, &nslots) != CKR_OK) {
		fprintf(stderr, "usage: p11-module-client module.so (module did not load)\n");
		return 2;
	}
	while (fgets(line, sizeof(line), stdin) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (strcmp(line, "list") == 0) {
			if (p11->C_OpenSession(client_slot, CKF_SERIAL_SESSION, NULL, NULL, &s)
			    != CKR_OK) {
				printf("error open\n");
				goto next;
			}
			if ((r = client_keys(s, keys, &n)) != 0)
				printf("error 0x%x\n", r);
			else {
				qsort(keys, n, sizeof(keys[0]), client_key_cmp);
				for (i = 0; i < n; i++)
					printf("key %lu %s\n", (unsigned long)keys[i].h,
					    keys[i].label);
			}
			p11->C_CloseSession(s);
		} else if (sscanf(line, "sign %255s", label) == 1) {
			if ((rv = client_sign(label, &h)) == CKR_OK)
				printf("ok %lu\n", (unsigned long)h);
			else
				printf("error 0x%lx\n", (unsigned long)rv);
		} else if (sscanf(line, "fork %255s", label) == 1) {
			fflush(stdout);
			if ((pid = fork()) == 0) {
				rv = client_sign(label, NULL);
				if (rv == CKR_OK)
					printf("child ok\n");
				else
					printf("child 0x%lx\n", (unsigned long)rv);
				fflush(stdout);
				_exit(0);
			}
			waitpid(pid, &status, 0);
		} else if (sscanf(line, "threads %255s %d %d", label, &t, &k) == 3)
			client_threads(label, t, k);
		else
			printf("error command\n");
 next:
		printf("done\n");
	}
	p11->C_Finalize(NULL);
	return 0;
}
