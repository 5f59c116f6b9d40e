/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * p11-obj.h: the objects keycustody-pkcs11.so presents, built from the daemon's
 * SignerKeysResponse: their attributes (from the public key and the certificate), stable
 * handles, template matching and C_GetAttributeValue. Pure: no I/O, no locks.
 */
#ifndef P11_OBJ_H
#define P11_OBJ_H

#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

#include "keycustody.pb-c.h"

#define P11_KEY_ID_MAX		64	/* CKA_ID bytes kept; the daemon's are 16 */

struct p11_attr {
	CK_ATTRIBUTE_TYPE	 type;
	void			*value;		/* owned */
	CK_ULONG		 len;
};

/*
 * One object. For each key bound to a hostname there are three, all with the hostname as
 * CKA_LABEL and the key's id as CKA_ID: the private key, its public key and the hostname's
 * certificate (libp11 0.4.12 finds a private key for "object=" by its own CKA_LABEL, so a
 * key bound to two hostnames is presented as two private key objects sharing one id).
 */
struct p11_obj {
	CK_OBJECT_HANDLE	 handle;
	CK_OBJECT_CLASS		 klass;
	CK_KEY_TYPE		 key_type;	/* keys: CKK_RSA or CKK_EC */
	uint8_t			 key_id[P11_KEY_ID_MAX];
	size_t			 key_id_len;
	CK_ULONG		 key_bits;	/* keys: modulus or field bits */
	CK_ULONG		 sig_len;	/* private keys: signature bytes */
	struct p11_attr		*attrs;
	size_t			 nattrs;
};

struct p11_objset {
	struct p11_obj		*objs;
	size_t			 n;
	size_t			 skipped;	/* keys or certificates that did not parse */
};

/**
 * The stable handle of an object: a hash of its class, key id and hostname, in
 * 1 .. 2^31 - 1, so that it is the same in every process and after every reconnect.
 */
CK_OBJECT_HANDLE p11_obj_handle(CK_OBJECT_CLASS klass, const uint8_t *key_id,
	    size_t key_id_len, const char *hostname);

/**
 * Build the object set from a SignerKeysResponse. A key that is not RSA or EC, a public key
 * or certificate that does not parse, or a certificate whose key is not the key's, is
 * skipped (counted in skipped), never trusted.
 * @param setp caller frees with p11_objset_free()
 * @retval 0, KC_ERR_NOMEM
 */
int	 p11_objset_new(const Keycustody__SignerKeysResponse *resp,
	    struct p11_objset **setp);

/** Free a set. NULL is a no-op. */
void	 p11_objset_free(struct p11_objset *set);

/**
 * Add the three objects of one key and one hostname.
 * @retval 0, KC_ERR_INVALID (unusable key or certificate: nothing added), KC_ERR_NOMEM
 */
int	 p11_objset_add(struct p11_objset *set, const uint8_t *key_id, size_t key_id_len,
	    const uint8_t *spki, size_t spki_len, const char *hostname,
	    const uint8_t *cert, size_t cert_len);

/** The object with handle h; borrowed, valid until the set is freed. NULL if none. */
const struct p11_obj *p11_objset_find(const struct p11_objset *set, CK_OBJECT_HANDLE h);

/** Whether obj has every attribute of tmpl, with the same value. */
int	 p11_obj_match(const struct p11_obj *obj, const CK_ATTRIBUTE *tmpl, CK_ULONG n);

/**
 * C_GetAttributeValue over one object: lengths, values, CKR_ATTRIBUTE_SENSITIVE,
 * CKR_ATTRIBUTE_TYPE_INVALID and CKR_BUFFER_TOO_SMALL as PKCS#11 v2.40 section 5.7 says
 * (every attribute is processed; the unavailable ones get CK_UNAVAILABLE_INFORMATION).
 */
CK_RV	 p11_obj_get_attrs(const struct p11_obj *obj, CK_ATTRIBUTE *tmpl, CK_ULONG n);

/** The value of attribute type of obj (borrowed), or NULL. */
const struct p11_attr *p11_obj_attr(const struct p11_obj *obj, CK_ATTRIBUTE_TYPE type);

#endif /* P11_OBJ_H */
