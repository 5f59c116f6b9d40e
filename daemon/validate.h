/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * validate.h: the rules of API.md for what clients send (CSR subjects, SANs, hostnames,
 * key types, pagination), each failure with its API error code and message. Pure functions:
 * no I/O, no HSM, so every rule is unit-tested.
 */
#ifndef KC_VALIDATE_H
#define KC_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

#include "csr.h"

struct kc_error;

#define VAL_MAX_SANS		150
#define VAL_MAX_SUBJECT_LEN	64	/* RFC 5280 ub-* for C..CN */
#define VAL_MAX_NAME_LEN	253	/* DNS name */
#define VAL_MAX_FREE_TEXT	1024	/* name, description (extension) */

/* Why a DNS name (SAN or hostname) was refused, in the order the checks run. */
enum val_name {
	VAL_NAME_OK = 0,
	VAL_NAME_SYNTAX,	/* not LDH labels, IP address, special characters, bad '-' */
	VAL_NAME_NONASCII,	/* non-ASCII characters */
	VAL_NAME_RESERVED,	/* reserved TLD: test, example, invalid, localhost, ... */
	VAL_NAME_EXAMPLE,	/* example.com, example.net, example.org, or below */
	VAL_NAME_SUFFIX		/* itself a public suffix, or its suffix is unknown */
};

/**
 * Check one DNS name. Non-ASCII is reported before syntax; then reserved TLDs, example.*,
 * and the Public Suffix List (libpsl's built-in list).
 * @param allow_wildcard accept a single leading "*." label
 * @param reason for VAL_NAME_SUFFIX, a short reason ("... is a public suffix"); may be NULL
 */
enum val_name val_dns_name(const char *name, bool allow_wildcard, char *reason,
	    size_t reasonlen);

/* A create-CSR request as the daemon received it; NULL means the field was absent. */
struct val_csr_fields {
	struct csr_subject	 subject;	/* as the request has it (csr.h) */
	const char		*key_type;	/* NULL: the default, rsa2048 */
	const char		*name;
	const char		*description;
};

/**
 * Apply every rule of API.md "POST custom_csrs" in its order; the first failure fills err
 * (status INVALID_ARGUMENT, code 1405..1417, the message of API.md).
 * @retval 0 or KC_ERR_INVALID
 */
int	val_csr_fields(const struct val_csr_fields *f, struct kc_error *err);

/**
 * Pagination: page >= 1, per_page 5..50 (0 means absent: defaults 1 and 20).
 * @retval 0 or KC_ERR_INVALID with err filled (code 6008 with the detail in the message)
 */
int	val_pagination(unsigned int *page, unsigned int *per_page, struct kc_error *err);

/** A zone id: exactly 32 lowercase hex characters. */
bool	val_zone_id(const char *s);
/** An object id: a lowercase UUID, 36 characters, 8-4-4-4-12. */
bool	val_uuid(const char *s);

#endif /* KC_VALIDATE_H */
