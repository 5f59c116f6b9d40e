/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * p11-probe.c: a test tool that tries, as an attacker on the host with the PIN would, to
 * read the secret value of a private key the daemon made. pkcs11-tool cannot even try, so
 * this asks the token directly with C_GetAttributeValue.
 *
 * usage: p11-probe MODULE TOKEN-LABEL PIN-FILE OBJECT-LABEL
 * Exit 0 when the token refuses every secret attribute (CKR_ATTRIBUTE_SENSITIVE), 1 when a
 * secret was readable, 2 on any other problem (key not found, login failed...).
 */
#include "config.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

static int
probe(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o)
{
	static const struct { CK_ATTRIBUTE_TYPE type; const char *name; } secrets[] = {
		{ CKA_VALUE,		"CKA_VALUE" },
		{ CKA_PRIVATE_EXPONENT,	"CKA_PRIVATE_EXPONENT" },
		{ CKA_PRIME_1,		"CKA_PRIME_1" },
		{ CKA_PRIME_2,		"CKA_PRIME_2" },
	};
	CK_ATTRIBUTE	 a;
	CK_RV		 rv;
	size_t		 i;
	int		 leaked = 0;

	for (i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
		memset(&a, 0, sizeof(a));
		a.type = secrets[i].type;
		rv = f->C_GetAttributeValue(s, o, &a, 1);
		if (rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID)
			printf("%s: refused (0x%lx)\n", secrets[i].name, (unsigned long)rv);
		else {
			printf("%s: READABLE (rv 0x%lx, %lu bytes)\n", secrets[i].name,
			    (unsigned long)rv, (unsigned long)a.ulValueLen);
			leaked = 1;
		}
	}
	return leaked;
}

int
main(int argc, char *argv[])
{
	CK_C_GetFunctionList	 getfl;
	CK_FUNCTION_LIST_PTR	 f;
	CK_SLOT_ID		 slots[64];
	CK_ULONG		 nslots = 64, i, n;
	CK_TOKEN_INFO		 ti;
	CK_SESSION_HANDLE	 s;
	CK_OBJECT_HANDLE	 o;
	CK_OBJECT_CLASS		 cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE		 tmpl[2];
	char			 label[33], pin[256];
	void			*mod;
	FILE			*pf;
	size_t			 len;
	int			 found = 0, r;

	if (argc != 5) {
		fprintf(stderr, "usage: p11-probe module token-label pin-file object-label\n");
		return 2;
	}
	if ((mod = dlopen(argv[1], RTLD_NOW)) == NULL ||
	    (getfl = (CK_C_GetFunctionList)dlsym(mod, "C_GetFunctionList")) == NULL ||
	    getfl(&f) != CKR_OK || f->C_Initialize(NULL) != CKR_OK) {
		fprintf(stderr, "p11-probe: cannot load %s\n", argv[1]);
		return 2;
	}
	if (f->C_GetSlotList(CK_TRUE, slots, &nslots) != CKR_OK)
		return 2;
	for (i = 0; i < nslots; i++) {
		if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		memcpy(label, ti.label, 32);
		label[32] = '\0';
		for (len = 32; len > 0 && label[len - 1] == ' '; len--)
			label[len - 1] = '\0';
		if (strcmp(label, argv[2]) == 0) {
			found = 1;
			break;
		}
	}
	if (!found || (pf = fopen(argv[3], "r")) == NULL || fgets(pin, sizeof(pin), pf) == NULL)
		return 2;
	fclose(pf);
	pin[strcspn(pin, "\r\n")] = '\0';
	if (f->C_OpenSession(slots[i], CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK ||
	    f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)) != CKR_OK)
		return 2;
	tmpl[0].type = CKA_CLASS;
	tmpl[0].pValue = &cls;
	tmpl[0].ulValueLen = sizeof(cls);
	tmpl[1].type = CKA_LABEL;
	tmpl[1].pValue = argv[4];
	tmpl[1].ulValueLen = strlen(argv[4]);
	if (f->C_FindObjectsInit(s, tmpl, 2) != CKR_OK ||
	    f->C_FindObjects(s, &o, 1, &n) != CKR_OK || f->C_FindObjectsFinal(s) != CKR_OK ||
	    n != 1) {
		fprintf(stderr, "p11-probe: no private key labelled %s\n", argv[4]);
		return 2;
	}
	r = probe(f, s, o);
	f->C_Logout(s);
	f->C_CloseSession(s);
	f->C_Finalize(NULL);
	return r;
}
